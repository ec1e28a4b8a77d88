import Foundation

/// Where every parameter tensor lives in the model's single parameter buffer (the gradient buffer and
/// the optimizer's moment buffers use the same offsets).
///
/// Tensors carry their Hugging Face names. Matrices are stored as `nn.Linear` weights, (out, in),
/// for both architectures; GPT-2's `Conv1D` weights, which Hugging Face stores (in, out), are marked
/// `transposedInHF` and transposed on import and export.
///
/// Order: LLaMA puts q, k and v of a layer back to back, and gate and up, so each group is one matrix.
public struct ParameterLayout: Sendable, Equatable {
    public enum Role: String, Sendable {
        case embedding, positions, norm, bias, matrix, outputProjection, head
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var offset: Int
        public var role: Role
        public var transposedInHF: Bool
        public var count: Int { shape.reduce(1, *) }
        /// Norm weights and biases are not decayed by default (Megatron, HF Trainer).
        public var isNormOrBias: Bool { role == .norm || role == .bias }
    }

    public let config: ModelConfig
    public private(set) var tensors: [Tensor] = []
    public private(set) var count = 0
    private var index: [String: Int] = [:]

    public init(_ config: ModelConfig) {
        self.config = config
        let c = config.hidden, f = config.ffn, v = config.vocabSize
        switch config.arch {
        case .llama:
            add("model.embed_tokens.weight", [v, c], .embedding)
            for l in 0..<config.layers {
                let p = "model.layers.\(l)."
                add(p + "input_layernorm.weight", [c], .norm)
                add(p + "self_attn.q_proj.weight", [config.qDim, c], .matrix)
                add(p + "self_attn.k_proj.weight", [config.kvDim, c], .matrix)
                add(p + "self_attn.v_proj.weight", [config.kvDim, c], .matrix)
                add(p + "self_attn.o_proj.weight", [c, config.qDim], .outputProjection)
                add(p + "post_attention_layernorm.weight", [c], .norm)
                add(p + "mlp.gate_proj.weight", [f, c], .matrix)
                add(p + "mlp.up_proj.weight", [f, c], .matrix)
                add(p + "mlp.down_proj.weight", [c, f], .outputProjection)
            }
            add("model.norm.weight", [c], .norm)
            if !config.tieEmbeddings { add("lm_head.weight", [v, c], .head) }
        case .gpt2:
            add("transformer.wte.weight", [v, c], .embedding)
            add("transformer.wpe.weight", [config.maxPositions, c], .positions)
            for l in 0..<config.layers {
                let p = "transformer.h.\(l)."
                add(p + "ln_1.weight", [c], .norm)
                add(p + "ln_1.bias", [c], .bias)
                add(p + "attn.c_attn.weight", [3 * c, c], .matrix, transposed: true)
                add(p + "attn.c_attn.bias", [3 * c], .bias)
                add(p + "attn.c_proj.weight", [c, c], .outputProjection, transposed: true)
                add(p + "attn.c_proj.bias", [c], .bias)
                add(p + "ln_2.weight", [c], .norm)
                add(p + "ln_2.bias", [c], .bias)
                add(p + "mlp.c_fc.weight", [f, c], .matrix, transposed: true)
                add(p + "mlp.c_fc.bias", [f], .bias)
                add(p + "mlp.c_proj.weight", [c, f], .outputProjection, transposed: true)
                add(p + "mlp.c_proj.bias", [c], .bias)
            }
            add("transformer.ln_f.weight", [c], .norm)
            add("transformer.ln_f.bias", [c], .bias)
            if !config.tieEmbeddings { add("lm_head.weight", [v, c], .head) }
        }
    }

    private mutating func add(_ name: String, _ shape: [Int], _ role: Role, transposed: Bool = false) {
        index[name] = tensors.count
        let t = Tensor(name: name, shape: shape, offset: count, role: role, transposedInHF: transposed)
        tensors.append(t)
        count += t.count
    }

    public subscript(name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// Offset of a tensor that the layout always has (a programming error otherwise).
    func offset(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return tensors[i].offset
    }

    /// Offsets of one transformer block's tensors, so the forward and backward passes read them
    /// without string look-ups.
    struct Block {
        var norm1: Int, norm1Bias: Int?
        var q: Int, k: Int, v: Int, qBias: Int?, kBias: Int?, vBias: Int?
        var o: Int, oBias: Int?
        var norm2: Int, norm2Bias: Int?
        var up: Int, upBias: Int?, gate: Int?
        var down: Int, downBias: Int?
    }

    func block(_ l: Int) -> Block {
        let c = config.hidden
        switch config.arch {
        case .llama:
            let p = "model.layers.\(l)."
            return Block(norm1: offset(p + "input_layernorm.weight"), norm1Bias: nil,
                         q: offset(p + "self_attn.q_proj.weight"), k: offset(p + "self_attn.k_proj.weight"),
                         v: offset(p + "self_attn.v_proj.weight"), qBias: nil, kBias: nil, vBias: nil,
                         o: offset(p + "self_attn.o_proj.weight"), oBias: nil,
                         norm2: offset(p + "post_attention_layernorm.weight"), norm2Bias: nil,
                         up: offset(p + "mlp.up_proj.weight"), upBias: nil, gate: offset(p + "mlp.gate_proj.weight"),
                         down: offset(p + "mlp.down_proj.weight"), downBias: nil)
        case .gpt2:
            let p = "transformer.h.\(l)."
            let qkv = offset(p + "attn.c_attn.weight"), qkvBias = offset(p + "attn.c_attn.bias")
            return Block(norm1: offset(p + "ln_1.weight"), norm1Bias: offset(p + "ln_1.bias"),
                         q: qkv, k: qkv + c * c, v: qkv + 2 * c * c, qBias: qkvBias, kBias: qkvBias + c, vBias: qkvBias + 2 * c,
                         o: offset(p + "attn.c_proj.weight"), oBias: offset(p + "attn.c_proj.bias"),
                         norm2: offset(p + "ln_2.weight"), norm2Bias: offset(p + "ln_2.bias"),
                         up: offset(p + "mlp.c_fc.weight"), upBias: offset(p + "mlp.c_fc.bias"), gate: nil,
                         down: offset(p + "mlp.c_proj.weight"), downBias: offset(p + "mlp.c_proj.bias"))
        }
    }

    var embedding: Int { tensors[0].offset }
    var positions: Int? { config.arch == .gpt2 ? offset("transformer.wpe.weight") : nil }
    var finalNorm: Int { offset(config.arch == .llama ? "model.norm.weight" : "transformer.ln_f.weight") }
    var finalNormBias: Int? { config.arch == .gpt2 ? offset("transformer.ln_f.bias") : nil }
    /// The output projection: `lm_head` when untied, the embedding otherwise.
    var head: Int { config.tieEmbeddings ? embedding : offset("lm_head.weight") }
}
