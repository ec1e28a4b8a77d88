import KondateRecipe
import Foundation
import KondateTokenizers

/// An example as token ids with a per-token loss flag.
public struct TokenizedExample: Sendable, Equatable {
    public var ids: [Int32]
    /// trained[i]: token i is a prediction target (its loss counts).
    public var trained: [Bool]
    /// Whether the example was cut to the maximum length.
    public var truncated: Bool

    public var trainedCount: Int { trained.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// Rendering to tokens, loss masks, and rows for training.
///
/// - Each segment is encoded on its own (no special tokens), so a trained span starts exactly at a
///   token boundary; a BOS id starts every example when the tokenizer defines one, and an EOS id
///   follows every assistant response (and is trained with it).
/// - Without packing, each example is one row: cut to `maxLength + 1` tokens (the inputs are the first
///   `maxLength`, the targets the last `maxLength`), padded with the pad id (EOS, or 0, when the
///   tokenizer has none) whose targets are ignored.
/// - With packing, examples are concatenated in order and cut into rows of `maxLength + 1` tokens
///   that overlap by one, so every token is a target exactly once. Attention is causal over the whole
///   row: a packed example can attend to the examples before it in the same row (no per-example
///   mask), as in Megatron's and many SFT trainers' packing; positions continue across examples.
public struct TuneTokenizer: Sendable {
    public let tokenizer: any Tokenizer
    public let bos: Int32?
    public let eos: Int32
    public let pad: Int32

    public init(tokenizer: any Tokenizer, specialTokens: [String: String] = [:]) throws {
        self.tokenizer = tokenizer
        func id(_ role: String) -> Int32? { tokenizer.id(forRole: role, declared: specialTokens) }
        guard let eos = id("eos") else {
            throw KondateError(.inputData, "the tokenizer has no end-of-sequence token; set tokenizer.special_tokens.eos")
        }
        self.eos = eos
        bos = id("bos")
        pad = id("pad") ?? eos
    }

    public func tokenize(_ segments: [Segment], maxLength: Int) -> TokenizedExample {
        var ids: [Int32] = [], trained: [Bool] = []
        if let bos {
            ids.append(bos)
            trained.append(false)
        }
        for segment in segments {
            let encoded = segment.text.isEmpty ? [] : tokenizer.encode(segment.text)
            ids += encoded
            trained += Array(repeating: segment.trained, count: encoded.count)
            if segment.endOfSequence {
                ids.append(eos)
                trained.append(segment.trained)
            }
        }
        let limit = maxLength + 1
        let truncated = ids.count > limit
        if truncated {
            ids.removeLast(ids.count - limit)
            trained.removeLast(trained.count - limit)
        }
        return TokenizedExample(ids: ids, trained: trained, truncated: truncated)
    }

    /// One row of `maxLength` inputs and targets per example (targets −100 where not trained or padded).
    public func rows(_ examples: [TokenizedExample], maxLength: Int) -> [(tokens: [Int32], targets: [Int32])] {
        examples.map { e in
            var tokens = [Int32](repeating: pad, count: maxLength), targets = [Int32](repeating: -100, count: maxLength)
            for i in 0..<min(maxLength, e.ids.count) { tokens[i] = e.ids[i] }
            for i in 0..<min(maxLength, max(0, e.ids.count - 1)) where e.trained[i + 1] { targets[i] = e.ids[i + 1] }
            return (tokens, targets)
        }
    }

    /// Packed rows: the examples' tokens in order, cut into rows of `maxLength + 1` that overlap by one.
    public func packedRows(_ examples: [TokenizedExample], maxLength: Int) -> [(tokens: [Int32], targets: [Int32])] {
        let ids = examples.flatMap(\.ids), trained = examples.flatMap(\.trained)
        var rows: [(tokens: [Int32], targets: [Int32])] = []
        var start = 0
        while start + 1 < ids.count {
            var tokens = [Int32](repeating: pad, count: maxLength), targets = [Int32](repeating: -100, count: maxLength)
            for i in 0..<maxLength where start + i < ids.count {
                tokens[i] = ids[start + i]
                if start + i + 1 < ids.count, trained[start + i + 1] { targets[i] = ids[start + i + 1] }
            }
            rows.append((tokens, targets))
            start += maxLength
        }
        return rows
    }
}
