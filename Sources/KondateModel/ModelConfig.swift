import Foundation

/// The shape of a decoder-only transformer, as the runtime needs it. `llama` is Hugging Face's
/// `LlamaForCausalLM` (RMSNorm, RoPE with `rotate_half`, SwiGLU, no biases, optional GQA and tying);
/// `gpt2` is `GPT2LMHeadModel` (LayerNorm with bias, learned positions, GELU, biases everywhere).
public struct ModelConfig: Sendable, Equatable, Codable {
    public enum Architecture: String, Sendable, Codable, CaseIterable { case llama, gpt2 }
    public enum Activation: String, Sendable, Codable, CaseIterable {
        case swiglu, gelu
        case geluTanh = "gelu_tanh"
    }

    public var arch: Architecture
    public var vocabSize: Int
    public var hidden: Int
    public var ffn: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    /// Longest sequence the model accepts (the size of `wpe` for GPT-2; RoPE needs no table).
    public var maxPositions: Int
    public var normEps: Float
    public var ropeTheta: Float
    /// The RoPE base a `gpt2` configuration carries (learned positions never read it).
    public static let unusedRopeTheta: Float = 10_000
    public var tieEmbeddings: Bool
    public var activation: Activation
    public var initStd: Float

    public init(arch: Architecture, vocabSize: Int, hidden: Int, ffn: Int, layers: Int, heads: Int, kvHeads: Int? = nil,
                maxPositions: Int, normEps: Float = 1e-5, ropeTheta: Float = 10_000, tieEmbeddings: Bool? = nil,
                activation: Activation? = nil, initStd: Float = 0.02) {
        self.arch = arch
        self.vocabSize = vocabSize
        self.hidden = hidden
        self.ffn = ffn
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        self.maxPositions = maxPositions
        self.normEps = normEps
        self.ropeTheta = ropeTheta
        self.tieEmbeddings = tieEmbeddings ?? (arch == .gpt2)
        self.activation = activation ?? (arch == .llama ? .swiglu : .geluTanh)
        self.initStd = initStd
    }

    public var headDim: Int { hidden / heads }
    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }
    public var hasBiases: Bool { arch == .gpt2 }

    /// Checks the shape is one the kernels can run; the message names the field.
    public func validate() throws(ModelError) {
        func fail(_ field: String, _ message: String) throws(ModelError) { throw ModelError.invalidConfig(field: field, message: message) }
        for (field, value) in [("vocab_size", vocabSize), ("hidden", hidden), ("ffn", ffn), ("layers", layers), ("heads", heads),
                               ("kv_heads", kvHeads), ("max_positions", maxPositions)] where value < 1 {
            try fail(field, "must be at least 1 (got \(value))")
        }
        if hidden % heads != 0 { try fail("heads", "hidden \(hidden) is not divisible by heads \(heads)") }
        if heads % kvHeads != 0 { try fail("kv_heads", "heads \(heads) is not divisible by kv_heads \(kvHeads)") }
        if arch == .llama && headDim % 2 != 0 { try fail("heads", "RoPE needs an even head dimension (hidden/heads = \(headDim))") }
        if arch == .llama && activation != .swiglu { try fail("activation", "llama uses swiglu (got \(activation.rawValue))") }
        if arch == .gpt2 && activation == .swiglu { try fail("activation", "gpt2 uses gelu or gelu_tanh (got swiglu)") }
        if arch == .gpt2 && kvHeads != heads { try fail("kv_heads", "gpt2 has no grouped-query attention (kv_heads must equal heads)") }
        if !(normEps > 0) { try fail("norm_eps", "must be positive") }
        if !(initStd > 0) { try fail("init_std", "must be positive") }
        if vocabSize > Int(Int32.max) { try fail("vocab_size", "exceeds the 32-bit token id range") }
        // The recipe schema's caps: a configuration beyond them is a damaged or hostile file, refused before
        // anything is allocated (and they keep every size computation far inside Int).
        for (field, value, cap) in [("vocab_size", vocabSize, Self.caps.vocab), ("hidden", hidden, Self.caps.hidden), ("ffn", ffn, Self.caps.ffn),
                                    ("layers", layers, Self.caps.layers), ("heads", heads, Self.caps.heads), ("kv_heads", kvHeads, Self.caps.heads),
                                    ("max_positions", maxPositions, Self.caps.positions)] where value > cap {
            try fail(field, "\(value) is beyond the limit of \(cap) (the recipe schema's)")
        }
    }

    /// Largest sizes accepted, as the recipe schema's `model` fields cap them.
    public static let caps = (vocab: 16_777_216, hidden: 1 << 20, ffn: 1 << 22, layers: 10_000, heads: 65_536, positions: 1 << 24)
}

public enum ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidConfig(field: String, message: String)
    case sequenceTooLong(length: Int, limit: Int)
    case tokenOutOfRange(token: Int32, position: Int, vocabSize: Int)
    case batchTooLarge(rows: Int, capacity: Int)
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .invalidConfig(field, message): "model.\(field): \(message)"
        case let .sequenceTooLong(length, limit): "sequence of \(length) tokens exceeds the model's \(limit) positions"
        case let .tokenOutOfRange(token, position, vocabSize):
            "token id \(token) at position \(position) is outside the vocabulary (0..<\(vocabSize)); was the data tokenized with another tokenizer?"
        case let .batchTooLarge(rows, capacity): "batch of \(rows) rows exceeds the \(capacity) the activations were sized for"
        case let .invalidInput(message): message
        }
    }
}
