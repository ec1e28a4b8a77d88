import Foundation
import KondateCollectives

/// Where every parameter tensor lives in the model's single parameter buffer (the gradient buffer and
/// the optimizer's moment buffers use the same offsets).
///
/// Tensors carry their Hugging Face names. Matrices are stored as `nn.Linear` weights, (out, in),
/// for both architectures; GPT-2's `Conv1D` weights, which Hugging Face stores (in, out), are marked
/// `transposedInHF` and transposed on import and export.
///
/// Order: LLaMA puts q, k and v of a layer back to back, and gate and up, so each group is one matrix.
///
/// A layout can describe one shard of the model (`ModelShard`): a pipeline stage holds a contiguous
/// range of layers (the first stage also the embedding, the last the final norm and the head), and a
/// tensor-parallel rank holds Megatron's slices — column-parallel matrices (q, k, v, gate, up, GPT-2's
/// `c_attn`, `c_fc`) and the vocabulary-parallel embedding and head split along their output rows,
/// row-parallel matrices (o, down, `c_proj`) along their input columns; norms and the biases of
/// row-parallel layers are replicated. Tensors keep their full-model names; `segments` maps a shard's
/// tensor to the full tensor, so shards can be cut from, and assembled into, whole-model files.
public struct ParameterLayout: Sendable, Equatable {
    public enum Role: String, Sendable {
        case embedding, positions, norm, bias, matrix, outputProjection, head
    }

    /// How tensor parallelism cuts a tensor (Megatron's column- and row-parallel linear layers).
    public enum Split: String, Sendable, Equatable, Codable {
        /// Every tensor-parallel rank holds the whole tensor.
        case replicated
        /// Dimension 0 (output features, or vocabulary rows) is cut into equal consecutive parts.
        case rows
        /// Dimension 0 holds three equal parts (GPT-2's fused q, k, v), each cut into equal consecutive parts.
        case fusedRows
        /// Dimension 1 (input features) is cut into equal consecutive parts.
        case columns
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        /// The shape in this layout (a shard's slice under tensor parallelism).
        public var shape: [Int]
        public var offset: Int
        public var role: Role
        public var transposedInHF: Bool
        /// The whole model's shape, and how tensor parallelism cuts it.
        public var fullShape: [Int]
        public var split: Split
        /// The tensor's index in the whole model's layout: its initialisation stream.
        public var fullIndex: Int
        /// The transformer block the tensor belongs to.
        public var layer: Int?
        /// The last pipeline stage's copy of a tied embedding (the head), kept equal to the first stage's.
        public var isTiedCopy = false
        public var count: Int { shape.reduce(1, *) }
        /// Norm weights and biases are not decayed by default (Megatron, HF Trainer).
        public var isNormOrBias: Bool { role == .norm || role == .bias }

        /// Contiguous runs (offset in the full tensor, offset in this shard's tensor, length) that make up
        /// tensor-parallel rank `rank`'s slice of `parts` parts.
        public func segments(rank: Int, parts: Int) -> [(full: Int, local: Int, count: Int)] {
            let total = fullShape.reduce(1, *)
            guard parts > 1, split != .replicated else { return [(0, 0, total)] }
            let rows = fullShape[0], rowLength = total / rows
            switch split {
            case .replicated: return [(0, 0, total)]
            case .rows:
                let mine = rows / parts
                return [(rank * mine * rowLength, 0, mine * rowLength)]
            case .fusedRows:
                let part = rows / 3, mine = part / parts
                return (0..<3).map { j in (j * part * rowLength + rank * mine * rowLength, j * mine * rowLength, mine * rowLength) }
            case .columns:
                let columns = fullShape[1], mine = columns / parts
                return (0..<rows).map { r in (r * columns + rank * mine, r * mine, mine) }
            }
        }
    }

    public let config: ModelConfig
    public private(set) var shard: ModelShard
    public private(set) var tensors: [Tensor] = []
    public private(set) var count = 0
    private var index: [String: Int] = [:]

    /// The layout of `shard` of the model (the whole model by default). The shard must be valid for
    /// the configuration (`ModelShard.validate`).
    public init(_ config: ModelConfig, shard: ModelShard = .whole) {
        let full = ParameterLayout(whole: config)
        guard shard != .whole else {
            self = full
            return
        }
        var whole = full
        whole.shard = shard
        whole.tensors.removeAll()
        whole.index.removeAll()
        whole.count = 0
        let layers = shard.layers(of: config.layers)
        let parts = shard.tensorSize
        for t in full.tensors {
            var keep: Bool
            var tiedCopy = false
            switch t.role {
            case .embedding:
                keep = shard.isFirstStage
                if !keep && shard.isLastStage && config.tieEmbeddings { keep = true; tiedCopy = true }
            case .positions: keep = shard.isFirstStage
            case .head: keep = shard.isLastStage
            default: keep = t.layer.map { layers.contains($0) } ?? shard.isLastStage   // the final norm
            }
            guard keep else { continue }
            var local = t
            local.offset = whole.count
            local.isTiedCopy = tiedCopy
            if parts > 1 {
                switch t.split {
                case .replicated: break
                case .rows, .fusedRows: local.shape[0] /= parts
                case .columns: local.shape[1] /= parts
                }
            }
            whole.index[t.name] = whole.tensors.count
            whole.tensors.append(local)
            whole.count += local.count
        }
        self = whole
    }

    /// The whole model's layout.
    private init(whole config: ModelConfig) {
        self.config = config
        shard = .whole
        let c = config.hidden, f = config.ffn, v = config.vocabSize
        switch config.arch {
        case .llama:
            add("model.embed_tokens.weight", [v, c], .embedding, .rows)
            for l in 0..<config.layers {
                let p = "model.layers.\(l)."
                add(p + "input_layernorm.weight", [c], .norm, layer: l)
                add(p + "self_attn.q_proj.weight", [config.qDim, c], .matrix, .rows, layer: l)
                add(p + "self_attn.k_proj.weight", [config.kvDim, c], .matrix, .rows, layer: l)
                add(p + "self_attn.v_proj.weight", [config.kvDim, c], .matrix, .rows, layer: l)
                add(p + "self_attn.o_proj.weight", [c, config.qDim], .outputProjection, .columns, layer: l)
                add(p + "post_attention_layernorm.weight", [c], .norm, layer: l)
                add(p + "mlp.gate_proj.weight", [f, c], .matrix, .rows, layer: l)
                add(p + "mlp.up_proj.weight", [f, c], .matrix, .rows, layer: l)
                add(p + "mlp.down_proj.weight", [c, f], .outputProjection, .columns, layer: l)
            }
            add("model.norm.weight", [c], .norm)
            if !config.tieEmbeddings { add("lm_head.weight", [v, c], .head, .rows) }
        case .gpt2:
            add("transformer.wte.weight", [v, c], .embedding, .rows)
            add("transformer.wpe.weight", [config.maxPositions, c], .positions)
            for l in 0..<config.layers {
                let p = "transformer.h.\(l)."
                add(p + "ln_1.weight", [c], .norm, layer: l)
                add(p + "ln_1.bias", [c], .bias, layer: l)
                add(p + "attn.c_attn.weight", [3 * c, c], .matrix, .fusedRows, transposed: true, layer: l)
                add(p + "attn.c_attn.bias", [3 * c], .bias, .fusedRows, layer: l)
                add(p + "attn.c_proj.weight", [c, c], .outputProjection, .columns, transposed: true, layer: l)
                add(p + "attn.c_proj.bias", [c], .bias, layer: l)
                add(p + "ln_2.weight", [c], .norm, layer: l)
                add(p + "ln_2.bias", [c], .bias, layer: l)
                add(p + "mlp.c_fc.weight", [f, c], .matrix, .rows, transposed: true, layer: l)
                add(p + "mlp.c_fc.bias", [f], .bias, .rows, layer: l)
                add(p + "mlp.c_proj.weight", [c, f], .outputProjection, .columns, transposed: true, layer: l)
                add(p + "mlp.c_proj.bias", [c], .bias, layer: l)
            }
            add("transformer.ln_f.weight", [c], .norm)
            add("transformer.ln_f.bias", [c], .bias)
            if !config.tieEmbeddings { add("lm_head.weight", [v, c], .head, .rows) }
        }
    }

    private mutating func add(_ name: String, _ shape: [Int], _ role: Role, _ split: Split = .replicated, transposed: Bool = false,
                              layer: Int? = nil) {
        index[name] = tensors.count
        let t = Tensor(name: name, shape: shape, offset: count, role: role, transposedInHF: transposed, fullShape: shape, split: split,
                       fullIndex: tensors.count, layer: layer)
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
        let c = config.hidden, localQ = config.qDim / shard.tensorSize
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
                         q: qkv, k: qkv + localQ * c, v: qkv + 2 * localQ * c, qBias: qkvBias, kBias: qkvBias + localQ, vBias: qkvBias + 2 * localQ,
                         o: offset(p + "attn.c_proj.weight"), oBias: offset(p + "attn.c_proj.bias"),
                         norm2: offset(p + "ln_2.weight"), norm2Bias: offset(p + "ln_2.bias"),
                         up: offset(p + "mlp.c_fc.weight"), upBias: offset(p + "mlp.c_fc.bias"), gate: nil,
                         down: offset(p + "mlp.c_proj.weight"), downBias: offset(p + "mlp.c_proj.bias"))
        }
    }

    var embeddingName: String { config.arch == .llama ? "model.embed_tokens.weight" : "transformer.wte.weight" }
    /// The token embedding (on the first pipeline stage; on the last too when tied, as the head).
    var embedding: Int { offset(embeddingName) }
    var positions: Int? { config.arch == .gpt2 && shard.isFirstStage ? offset("transformer.wpe.weight") : nil }
    var finalNorm: Int { offset(config.arch == .llama ? "model.norm.weight" : "transformer.ln_f.weight") }
    var finalNormBias: Int? { config.arch == .gpt2 ? offset("transformer.ln_f.bias") : nil }
    /// The output projection: `lm_head` when untied, the embedding otherwise.
    var head: Int { config.tieEmbeddings ? embedding : offset("lm_head.weight") }
}

/// Which part of the model one rank holds: its tensor-parallel rank among `tensorSize`, and its pipeline
/// stage among `pipelineSize` (a contiguous range of layers; earlier stages take one more layer when the
/// layers do not divide evenly).
public struct ModelShard: Sendable, Equatable, Hashable, Codable {
    public var tensorRank: Int, tensorSize: Int
    public var pipelineRank: Int, pipelineSize: Int

    public init(tensorRank: Int = 0, tensorSize: Int = 1, pipelineRank: Int = 0, pipelineSize: Int = 1) {
        self.tensorRank = tensorRank
        self.tensorSize = tensorSize
        self.pipelineRank = pipelineRank
        self.pipelineSize = pipelineSize
    }

    public static let whole = ModelShard()

    public var isFirstStage: Bool { pipelineRank == 0 }
    public var isLastStage: Bool { pipelineRank == pipelineSize - 1 }

    /// The layers of stage `stage` when `total` layers are split over the pipeline.
    public func layers(of total: Int, stage: Int? = nil) -> Range<Int> {
        let s = stage ?? pipelineRank
        let base = total / pipelineSize, extra = total % pipelineSize
        let start = s * base + min(s, extra)
        return start..<(start + base + (s < extra ? 1 : 0))
    }

    /// Checks that the model can be cut this way; the message names the model field and the size.
    public func validate(_ config: ModelConfig) throws(ModelError) {
        let t = tensorSize
        if t > 1 {
            for (field, value) in [("heads", config.heads), ("kv_heads", config.kvHeads), ("ffn", config.ffn), ("vocab_size", config.vocabSize)]
            where value % t != 0 {
                throw .invalidConfig(field: field, message: "\(value) is not divisible by parallel.tensor \(t)" +
                                     (field == "vocab_size" ? " (pad the vocabulary to a multiple of \(t), as Megatron-LM does)" : ""))
            }
        }
        if config.layers < pipelineSize {
            throw .invalidConfig(field: "layers", message: "\(config.layers) layers cannot fill parallel.pipeline \(pipelineSize) stages")
        }
    }
}

extension ParallelGroups {
    /// The part of the model this rank holds.
    public var shard: ModelShard {
        ModelShard(tensorRank: tensor.rank, tensorSize: tensor.size, pipelineRank: pipeline.rank, pipelineSize: pipeline.size)
    }
}
