import Foundation

/// A tokenizer: text to ids and back. Implementations match a reference library exactly
/// (`SentencePieceTokenizer` ↔ the Python `sentencepiece` package, `HFTokenizer` ↔ `tokenizers`).
///
/// `encode` adds no BOS/EOS and applies no post-processor (like `sentencepiece`'s `encode` and
/// `tokenizers`' `encode(text, add_special_tokens=False)`); callers add special tokens themselves.
public protocol Tokenizer: Sendable {
    /// Number of ids (the largest id + 1).
    var vocabularySize: Int { get }
    func encode(_ text: String) -> [Int32]
    func decode(_ ids: [Int32]) -> String
    /// The id of a piece or token, if it is in the vocabulary.
    func id(of token: String) -> Int32?
    /// The piece or token of an id.
    func token(of id: Int32) -> String?
    /// Ids of the special roles the tokenizer defines ("bos", "eos", "pad", "unk").
    var specialIDs: [String: Int32] { get }
}

public extension Tokenizer {
    /// Encodes many texts using `threads` workers; the result is in input order and independent of
    /// the thread count.
    func encodeBatch(_ texts: [String], threads: Int = 1) -> [[Int32]] {
        guard threads > 1, texts.count > 1 else { return texts.map(encode) }
        var results = [[Int32]](repeating: [], count: texts.count)
        let chunk = (texts.count + threads - 1) / threads
        results.withUnsafeMutableBufferPointer { out in
            // Each worker writes a disjoint range of slots.
            nonisolated(unsafe) let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let start = t * chunk, end = min(texts.count, start + chunk)
                guard start < end else { return }
                for i in start..<end { base[i] = encode(texts[i]) }
            }
        }
        return results
    }
}

/// Why a tokenizer file could not be used.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var reason: String
    public init(file: String, _ reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { "\(file): \(reason)" }
}
