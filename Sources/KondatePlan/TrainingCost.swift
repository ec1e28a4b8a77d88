import KondateRecipe

/// Training FLOPs and time.
///
/// Model FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B): 6·N + 12·L·d·T, where N
/// counts the weights used in matrix multiplications (layers' matrices and the output head; not the
/// embedding lookup, norms or biases), L the layers, d = heads × head_dim and T the sequence length;
/// the attention term counts QKᵀ and AV over the full (T, T) square, as Megatron does. Recomputation
/// adds hardware FLOPs but not model FLOPs: `full` one more forward (2·N + 4·L·d·T per token),
/// `selective` the attention core's forward (4·L·d·T).
///
/// Two time estimates:
/// - the step-time model (`step`, `CommunicationCost`): compute at `cluster.compute_efficiency` of
///   peak plus the data, tensor and pipeline communication of the layout over the cluster's
///   interconnect plus the pipeline bubble, times the steps. `seconds` and `deviceHours` — the plan's
///   "time" line — are this one, because it changes with the parallel layout and the interconnect;
/// - the MFU estimate, model FLOPs / (devices × peak × MFU) (`mfuSeconds`), shown alongside: one
///   assumed utilisation for every layout, useful as a sanity check against published MFUs.
public struct TrainingCost: Sendable {
    public var modelFlopsPerToken: Double
    public var modelFlops: Double
    public var hardwareFlops: Double
    /// The common 6·N·D estimate with N = all parameters, for comparison.
    public var sixND: Double
    /// Step-time model × steps: the plan's time estimate.
    public var seconds: Double
    public var deviceHours: Double
    public var tokensPerSecond: Double
    /// The step-time model.
    public var step: CommunicationCost
    /// MFU the step-time model implies: model FLOPs per step / (devices × peak × step time).
    public var impliedMFU: Double
    /// The MFU-based estimate and the MFU it assumes (`cluster.assumed_mfu` or `--mfu`).
    public var mfu: Double
    public var mfuSeconds: Double
    public var mfuDeviceHours: Double

    /// - Parameters:
    ///   - memory: the memory estimate, whose per-stage parameter counts size the gradients.
    ///   - exposedDataParallel: passed to `CommunicationCost` (nil: its last-bucket default).
    ///   - runtime: Kondate's CPU runtime estimate (`cluster.device: cpu`), whose kernel times replace
    ///     the FLOPs at `compute_efficiency`.
    public init(recipe: Recipe, parameters: ParameterCount, memory: MemoryEstimate, tokens: Int, mfu: Double,
                exposedDataParallel: Double? = nil, runtime: RuntimeEstimate? = nil) {
        let m = recipe.model, p = recipe.parallel
        let attention = Self.attentionFlopsPerToken(layers: m.layers, attentionWidth: m.heads * m.headDim, seqLen: m.seqLen)
        modelFlopsPerToken = Self.modelFlopsPerToken(parameters: parameters, layers: m.layers, attentionWidth: m.heads * m.headDim,
                                                     seqLen: m.seqLen)
        let D = Double(tokens)
        modelFlops = modelFlopsPerToken * D
        var extra = 0.0
        switch p.recompute {
        case .full: extra = 2 * Double(parameters.matmul) + attention / 3
        case .selective: extra = attention / 3
        case .none: break
        }
        hardwareFlops = (modelFlopsPerToken + extra) * D
        sixND = 6 * Double(parameters.total) * D
        let devices = Double(recipe.cluster.world)

        self.mfu = mfu
        let throughput = devices * recipe.cluster.peakFlops * mfu
        mfuSeconds = throughput > 0 ? modelFlops / throughput : .infinity
        mfuDeviceHours = mfuSeconds * devices / 3600

        let globalBatch = recipe.pretrain?.globalBatch ?? p.microBatch * p.data
        let microBatches = max(1, globalBatch / max(1, p.microBatch * p.data))
        step = CommunicationCost(recipe: recipe, parameters: parameters, microBatches: microBatches,
                                 stageParameters: memory.stages.map(\.parameters), exposedDataParallel: exposedDataParallel,
                                 runtime: runtime)
        let steps = Double(recipe.pretrain?.steps ?? 0)
        seconds = step.total * steps
        deviceHours = seconds * devices / 3600
        tokensPerSecond = seconds > 0 && seconds.isFinite ? D / seconds : 0
        let flopsPerStep = modelFlopsPerToken * Double(globalBatch * m.seqLen)
        let stepThroughput = devices * recipe.cluster.peakFlops * step.total
        impliedMFU = stepThroughput > 0 && stepThroughput.isFinite ? flopsPerStep / stepThroughput : 0
    }

    /// Model FLOPs per token: 6·N (N = `parameters.matmul`) plus the attention term.
    public static func modelFlopsPerToken(parameters: ParameterCount, layers: Int, attentionWidth: Int, seqLen: Int) -> Double {
        6 * Double(parameters.matmul) + attentionFlopsPerToken(layers: layers, attentionWidth: attentionWidth, seqLen: seqLen)
    }

    /// 12·L·d·T: QKᵀ and AV, forward and backward, over the full (T, T) square.
    public static func attentionFlopsPerToken(layers: Int, attentionWidth: Int, seqLen: Int) -> Double {
        12 * Double(layers) * Double(attentionWidth) * Double(seqLen)
    }
}
