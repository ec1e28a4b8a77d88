import KondateRecipe

/// Training FLOPs and time.
///
/// Model FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B): 6·N + 12·L·d·T, where N
/// counts the weights used in matrix multiplications (layers' matrices and the output head; not the
/// embedding lookup, norms or biases), L the layers, d = heads × head_dim and T the sequence length;
/// the attention term counts QKᵀ and AV over the full (T, T) square, as Megatron does. Recomputation
/// adds hardware FLOPs but not model FLOPs: `full` one more forward (2·N + 4·L·d·T per token),
/// `selective` the attention core's forward (4·L·d·T). Time = model FLOPs / (devices × peak × MFU).
public struct TrainingCost: Sendable {
    public var modelFlopsPerToken: Double
    public var modelFlops: Double
    public var hardwareFlops: Double
    /// The common 6·N·D estimate with N = all parameters, for comparison.
    public var sixND: Double
    public var seconds: Double
    public var deviceHours: Double
    public var mfu: Double
    public var tokensPerSecond: Double

    public init(recipe: Recipe, parameters: ParameterCount, tokens: Int, mfu: Double) {
        let m = recipe.model
        let attention = 12 * Double(m.layers) * Double(m.heads * m.headDim) * Double(m.seqLen)
        modelFlopsPerToken = 6 * Double(parameters.matmul) + attention
        let D = Double(tokens)
        modelFlops = modelFlopsPerToken * D
        var extra = 0.0
        switch recipe.parallel.recompute {
        case "full": extra = 2 * Double(parameters.matmul) + attention / 3
        case "selective": extra = attention / 3
        default: break
        }
        hardwareFlops = (modelFlopsPerToken + extra) * D
        sixND = 6 * Double(parameters.total) * D
        self.mfu = mfu
        let throughput = Double(recipe.cluster.world) * recipe.cluster.peakFlops * mfu
        seconds = throughput > 0 ? modelFlops / throughput : .infinity
        deviceHours = seconds * Double(recipe.cluster.world) / 3600
        tokensPerSecond = seconds > 0 ? D / seconds : 0
    }
}
