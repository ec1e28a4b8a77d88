import KondateRecipe

/// Exact parameter counts of the two architectures, matching the Hugging Face implementations.
///
/// llama (`LlamaForCausalLM`): embedding V·h; per layer q h·(n·d), k and v h·(k·d) each, o (n·d)·h,
/// gate/up/down 3·h·f, two RMSNorm weights 2h; final norm h; head V·h unless tied.
/// gpt2 (`GPT2LMHeadModel`): token embedding V·h, positions P·h; per layer two LayerNorms 4h,
/// c_attn h·3h + 3h, c_proj h·h + h, c_fc h·f + f, mlp c_proj f·h + h; final LayerNorm 2h; head tied
/// unless `tie_embeddings: false` (then + V·h).
public struct ParameterCount: Sendable, Equatable {
    public var embedding: Int
    public var positions: Int
    /// One transformer layer.
    public var perLayer: Int
    public var attentionPerLayer: Int
    public var mlpPerLayer: Int
    public var normsPerLayer: Int
    public var layers: Int
    public var finalNorm: Int
    /// Output head (0 when tied to the embedding).
    public var head: Int
    /// Weights that enter matrix multiplications per token (layers' matrices plus the output head),
    /// used by the FLOP formula.
    public var matmul: Int
    /// Parameters of one layer that tensor parallelism does not split (norms, row-parallel biases).
    public var replicatedPerLayer: Int

    public var total: Int { embedding + positions + perLayer * layers + finalNorm + head }

    public init(model m: Recipe.Model) {
        self.init(arch: m.arch, hidden: m.hidden, ffn: m.ffn, layers: m.layers, heads: m.heads, kvHeads: m.kvHeads,
                  headDim: m.headDim, vocabSize: m.vocabSize, maxPositions: m.maxPositions, tieEmbeddings: m.tieEmbeddings)
    }

    /// The same counts from the shape alone (for a model that no recipe describes, as `kondate bench train` measures).
    public init(arch: Architecture, hidden h: Int, ffn f: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int,
                vocabSize V: Int, maxPositions: Int, tieEmbeddings: Bool) {
        let q = heads * headDim, kv = kvHeads * headDim
        embedding = V * h
        if arch == .gpt2 {
            positions = maxPositions * h
            attentionPerLayer = h * (q + 2 * kv) + (q + 2 * kv) + q * h + h
            mlpPerLayer = h * f + f + f * h + h
            normsPerLayer = 4 * h
            finalNorm = 2 * h
            replicatedPerLayer = 4 * h + 2 * h
        } else {
            positions = 0
            attentionPerLayer = h * q + 2 * h * kv + q * h
            mlpPerLayer = 3 * h * f
            normsPerLayer = 2 * h
            finalNorm = h
            replicatedPerLayer = 2 * h
        }
        perLayer = attentionPerLayer + mlpPerLayer + normsPerLayer
        self.layers = layers
        head = tieEmbeddings ? 0 : V * h
        let matricesPerLayer = h * (q + 2 * kv) + q * h + (arch == .gpt2 ? 2 : 3) * h * f
        matmul = matricesPerLayer * layers + V * h
    }
}
