import KondateSupport
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
    /// The id of a special role ("bos", "eos", "pad", "unk"): the token a recipe declares for it when
    /// that token is in the vocabulary, else the tokenizer's own.
    func id(forRole role: String, declared: [String: String] = [:]) -> Int32? {
        declared[role].flatMap { id(of: $0) } ?? specialIDs[role]
    }

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

/// A tokenizer read from one file.
public protocol TokenizerFile: Tokenizer {
    /// Parses file contents; `file` names the source in errors.
    init(data: Data, file: String) throws
}

public extension TokenizerFile {
    /// Loads the file at `path`.
    init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw FileError(.tokenizer, path, "cannot read: \(error.localizedDescription)")
        }
        try self.init(data: data, file: path)
    }
}


/// Opens a tokenizer file by its format: a Hugging Face `tokenizer.json` (JSON) or a SentencePiece `.model`.
public enum TokenizerLoader {
    /// The tokenizer file a path names: the file itself, or a directory's `tokenizer.json` (preferred)
    /// or `tokenizer.model`; nil when there is none.
    public static func file(at path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        guard isDirectory.boolValue else { return path }
        for name in ["tokenizer.json", "tokenizer.model"] {
            let candidate = (path as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return nil
    }

    public static func load(path: String) throws -> any Tokenizer {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError(.tokenizer, path, "no such file") }
        guard let file = file(at: path) else {
            throw FileError(.tokenizer, path, "is a directory without a tokenizer.json or tokenizer.model")
        }
        if file != path { return try load(path: file) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileError(.tokenizer, path, "cannot read the file (no permission?)")
        }
        let firstByte = data.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) })
        if path.hasSuffix(".json") || firstByte == UInt8(ascii: "{") {
            return try HFTokenizer(data: data, file: path)
        }
        return try SentencePieceTokenizer(data: data, file: path)
    }
}
