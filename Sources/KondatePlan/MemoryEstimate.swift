import KondateRecipe

/// Memory per device during pretraining, for the most loaded pipeline stage.
///
/// The approach follows Megatron-LM's theoretical memory report
/// (`megatron/training/theoretical_memory_usage.py`) and Korthikanti et al., "Reducing Activation
/// Recomputation in Large Transformer Models" (2022), Table 2, generalised to GQA, SwiGLU, dropout
/// and each recompute policy; docs/plan.md gives every term. Not counted: framework workspace,
/// communication buffers, fragmentation (typically a few GiB on GPUs).
public struct MemoryEstimate: Sendable {
    public struct Stage: Sendable {
        public var index: Int
        public var parameters: Double
        public var weights: Double
        public var gradients: Double
        public var optimizer: Double
        public var activations: Double
        public var inFlightMicroBatches: Int
        public var total: Double { weights + gradients + optimizer + activations }
    }

    public var stages: [Stage]
    /// The stage with the largest total.
    public var peak: Stage
    public var deviceMemory: Int
    /// Bytes per parameter for weights, gradients and optimizer states (before sharding).
    public var bytesPerParameter: (weights: Double, gradients: Double, optimizer: Double)
    public var activationBytesPerLayer: Double

    public init(recipe: Recipe, parameters: ParameterCount) {
        let m = recipe.model, p = recipe.parallel
        let t = Double(p.tensor), d = Double(p.data)
        let mixed = recipe.trainingPrecision != .fp32

        // Weights, gradients and optimizer bytes per parameter, then ZeRO sharding over data ranks.
        // Mixed precision: 16-bit weights, fp32 gradient buffer, fp32 master + Adam m, v.
        // fp32: fp32 weights and gradients, Adam m, v.
        var w = mixed ? 2.0 : 4.0, g = 4.0, o = mixed ? 12.0 : 8.0
        if p.zeroStage >= 1 { o /= d }
        if p.zeroStage >= 2 { g /= d }
        if p.zeroStage >= 3 { w /= d }
        bytesPerParameter = (w, g, o)

        // Parameters per device for each pipeline stage.
        let layersPerStage = Double(m.layers) / Double(p.pipeline)
        let sharded = Double(parameters.perLayer - parameters.replicatedPerLayer) / t + Double(parameters.replicatedPerLayer)
        let embedding = Double(parameters.embedding) / t + Double(parameters.positions)
        let head = Double(parameters.head) / t
        // With a tied head and several stages, the last stage keeps its own copy of the embedding
        // (Megatron synchronises the two copies' gradients).
        let tiedCopy = m.tieEmbeddings && p.pipeline > 1 ? Double(parameters.embedding) / t : 0

        // Activations per layer and micro batch (bytes). a = bytes per activation element.
        let a: Double = mixed ? 2 : 4
        let s = Double(m.seqLen), b = Double(p.microBatch), h = Double(m.hidden), f = Double(m.ffn)
        let n = Double(m.heads), q = Double(m.heads * m.headDim), kv = Double(m.kvHeads * m.headDim)
        let dropout = m.dropout > 0 ? 1.0 : 0.0, attnDropout = m.attentionDropout > 0 ? 1.0 : 0.0
        let sp = p.sequenceParallel ? t : 1
        // Outside the tensor-parallel region: two norm inputs, QKV input, MLP input, dropout masks.
        let replicated = s * b * (a * h * 4 + dropout * 2 * h) / sp
        // Inside it: q, k, v; attention output (projection input); MLP intermediates.
        let mlpIntermediates = m.activation == .swiglu ? 3 * a * f : 2 * a * f
        var parallel = s * b * (a * (q + 2 * kv) + a * q + mlpIntermediates) / t
        // The (T, T) attention probabilities, unless a flash kernel or selective recompute avoids them.
        let scores = n * s * s * b * (a + attnDropout * (1 + a)) / t
        let logsumexp = 4 * n * s * b / t
        if m.attentionKernel == .standard && p.recompute == .none { parallel += scores } else { parallel += logsumexp }
        let fullLayer = replicated + parallel
        let storedPerLayer = p.recompute == .full ? s * b * a * h / sp : fullLayer
        activationBytesPerLayer = storedPerLayer

        let microBatches = max(1, (recipe.pretrain?.globalBatch ?? p.microBatch * p.data) / (p.microBatch * p.data))
        var stages: [Stage] = []
        for i in 0..<p.pipeline {
            var params = sharded * layersPerStage
            if i == 0 { params += embedding }
            if i == p.pipeline - 1 { params += head + Double(parameters.finalNorm) + (i == 0 ? 0 : tiedCopy) }
            // 1F1B: stage i holds activations of min(pipeline − i, micro batches) micro batches.
            let inFlight = min(p.pipeline - i, microBatches)
            var act = storedPerLayer * layersPerStage * Double(inFlight)
            if p.recompute == .full { act += fullLayer } // one layer recomputed at a time
            if i == 0 { act += Double(inFlight) * s * b * (a * h + dropout * h) / sp } // embedding output
            if i == p.pipeline - 1 {
                act += s * b * a * h / sp                 // final norm input
                act += s * b * Double(m.vocabSize) * (a + 4) / t // logits and fp32 softmax for the loss
            }
            stages.append(Stage(index: i, parameters: params, weights: params * w, gradients: params * g, optimizer: params * o,
                                activations: act, inFlightMicroBatches: inFlight))
        }
        self.stages = stages
        peak = stages.max { $0.total < $1.total } ?? stages[0]
        deviceMemory = recipe.cluster.deviceMemory
    }
}
