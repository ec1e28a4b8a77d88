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
        let h = m.hidden, f = m.ffn, V = m.vocabSize
        let q = m.heads * m.headDim, kv = m.kvHeads * m.headDim
        embedding = V * h
        if m.arch == .gpt2 {
            positions = m.maxPositions * h
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
        layers = m.layers
        head = m.tieEmbeddings ? 0 : V * h
        let matricesPerLayer = h * (q + 2 * kv) + q * h + (m.arch == .gpt2 ? 2 : 3) * h * f
        matmul = matricesPerLayer * m.layers + V * h
    }
}
