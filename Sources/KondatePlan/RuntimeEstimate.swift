import KondateRecipe

/// Memory and time of one rank of Kondate's CPU runtime during pretraining (`cluster.device: cpu`),
/// from what the runtime really allocates and runs — not the GPU estimate of `MemoryEstimate`, which
/// follows Megatron-LM's accounting.
///
/// **Memory** of pipeline stage s, in bytes (docs/plan.md gives the terms): f32 parameters, their
/// gradients (under ZeRO-2 only the largest part held at one time plus the shard), AdamW's two f32
/// moments (sharded with ZeRO), the activation buffers of the micro-batches in flight (the element
/// counts `Transformer.Activations` allocates, per precision and recompute), the bf16 operand buffers
/// (sized for the rounded-sgemm route, 4 bytes per element; oneDNN's bf16 route needs half),
/// communication buffers, and the process's own baseline (the Swift runtime, OpenBLAS, oneDNN and
/// MPI libraries and buffers: `processBaselineBytes`, measured on the reference machine).
/// `Tests/KondateRuntimeTests/RuntimeEstimateTests.swift` checks the allocation terms against a
/// model's own accounting, byte for byte, and the total against a measured peak RSS.
///
/// **Time** of a micro-batch on a stage: each kernel class at its own rate, scaled from the reference
/// machine (2 cores, OpenBLAS sgemm ≈ 180 GFLOP/s) by `cluster.peak_flops`:
/// - matrix products: their FLOPs at `peak_flops` (the catalog's `cpu` peak is the measured sgemm peak);
/// - attention: per causal score element (b · heads · T²/2 per layer) `attentionElementSeconds`
///   plus `attentionFlopSeconds` per head dimension — the blocked kernel's exponentials cost more
///   than its FLOPs;
/// - element-wise kernels (norms, RoPE, activation, residuals, embedding): per row and layer
///   `elementwiseSeconds` × (hidden + ffn);
/// - cross-entropy: `crossEntropySeconds` per logit.
/// Full recomputation adds the forward of every layer but the last of the stage (the last layer's
/// values stay in the shared region). Per step: the AdamW update and zeroing the gradients,
/// `updateSeconds` per parameter. The communication, pipeline bubble and steps are the step-time
/// model's (`CommunicationCost`), given these compute times.
public struct RuntimeEstimate: Sendable {
    public struct Stage: Sendable, Equatable {
        public var index: Int
        public var layers: Int
        /// Parameters this rank holds (its tensor slice of the stage).
        public var parameters: Int
        public var weights: Int
        public var gradients: Int
        public var optimizer: Int
        public var activations: Int
        public var inFlightMicroBatches: Int
        public var bf16Workspace: Int
        public var communication: Int
        public var baseline: Int
        public var total: Int { weights + gradients + optimizer + activations + bf16Workspace + communication + baseline }
        /// Forward and backward of one micro-batch, with recomputation.
        public var microBatchSeconds: Double
    }

    /// Resident memory of the process before the model allocates anything, measured on the reference
    /// machine (`kondate bench train`'s peak RSS minus what it allocates: 51–70 MiB).
    public static let processBaselineBytes = 56 << 20
    /// Calibration of the reference machine (2 threads, sgemm peak 180 GFLOP/s; `bench/plan-accuracy.sh`).
    public static let referencePeak = 180e9
    public static let attentionElementSeconds = 9.2e-9
    public static let attentionFlopSeconds = 0.075e-9
    public static let elementwiseSeconds = 5.5e-9
    public static let crossEntropySeconds = 2.1e-9
    public static let updateSeconds = 5.8e-9

    public var stages: [Stage]
    /// The stage with the largest memory.
    public var peak: Stage
    /// AdamW and zeroing per step, on the stage with the most parameters.
    public var stepUpdateSeconds: Double

    public init(recipe: Recipe, parameters: ParameterCount) {
        let m = recipe.model, p = recipe.parallel
        let t = max(1, p.tensor), pp = max(1, p.pipeline), d = max(1, p.data)
        let llama = m.arch == .llama
        let c = m.hidden, f = m.ffn / t, heads = m.heads / t, qd = heads * m.headDim, kvd = (m.kvHeads / t) * m.headDim, vt = m.vocabSize / t
        let n = p.microBatch * m.seqLen
        let recompute = p.recompute == .full
        let bf16 = recipe.trainingPrecision == .bf16
        let globalBatch = recipe.pretrain?.globalBatch ?? p.microBatch * d
        let local = max(1, (globalBatch / max(1, p.microBatch)) / d)

        // Parameters per rank, as `ParameterLayout` cuts them.
        let layerMatrices = parameters.perLayer - parameters.replicatedPerLayer
        let perLayer = layerMatrices / t + parameters.replicatedPerLayer
        let embedding = parameters.embedding / t
        let scale = Self.referencePeak / max(1, recipe.cluster.peakFlops)
        var stages: [Stage] = []
        for s in 0..<pp {
            let layers = m.layers / pp + (s < m.layers % pp ? 1 : 0)
            let first = s == 0, last = s == pp - 1
            let tiedCopy = m.tieEmbeddings && pp > 1 && last
            let before = (first ? embedding + parameters.positions : 0) + (tiedCopy ? embedding : 0)
            let after = last ? parameters.finalNorm + parameters.head / t : 0
            let count = before + layers * perLayer + after
            let shard = (count + d - 1) / d

            var gradients = count
            if p.zeroStage >= 2 && d > 1 {
                let held = m.tieEmbeddings && pp > 1 ? before + max(after, perLayer) : max(before, after, perLayer)
                gradients = held + shard
            }
            let optimizer = 2 * (p.zeroStage >= 1 && d > 1 ? shard : count)

            // `Transformer.Activations`: layer inputs, the stored values of every layer (one with full
            // recomputation), the final norm and logits on the last stage, and the backward's scratch.
            let stored = layers == 0 ? 0 : (recompute ? 1 : layers)
            var elements = (layers + 1) * n * c
            elements += stored * n * (3 * c + 2 * qd + 2 * kvd + heads + 4 + (llama ? 3 : 2) * f)
            if last { elements += n * c + 2 * n + n * vt + 3 * n }
            elements += n * c + n * (2 * c + 2 * qd + 2 * kvd + 3 * f)
            let inFlight = max(1, min(local, pp - s))

            // bf16 operands: inputs and output gradients, weights, and inputs again in the backward pass.
            var workspace = 0
            if bf16 {
                let widest = max(c, qd, f)
                let rowsA = n * max(widest, last ? vt : 0), weights = c * max(qd, f, last ? vt : 0), rowsB = n * widest
                workspace = 4 * (rowsA + weights + rowsB)
            }
            // ZeRO-1's reduce-scatter receives the shard; pipeline stages keep received activations and gradients.
            var communication = p.zeroStage == 1 && d > 1 ? 4 * (shard + 1) : 0
            if pp > 1 { communication += 4 * n * c * (inFlight + 1) }

            // Time of one micro-batch (seconds).
            let forwardLayers = Double(layers) + (recompute ? Double(max(0, layers - 1)) : 0)
            let matrixFlops = 2 * Double(layerMatrices / t) * Double(n) * (3 * Double(layers) + (recompute ? Double(max(0, layers - 1)) : 0))
                + (last ? 6 * Double(parameters.embedding / t) * Double(n) : 0)
            let scores = Double(p.microBatch * heads) * Double(m.seqLen) * Double(m.seqLen) / 2
            let attentionPerLayer = scores * (Self.attentionElementSeconds + Double(m.headDim) * Self.attentionFlopSeconds)
            // Forward is about a third of a layer's attention and element-wise time.
            let layerWork = Double(layers) + (forwardLayers - Double(layers)) / 3
            var seconds = matrixFlops / max(1, recipe.cluster.peakFlops)
            seconds += scale * layerWork * (attentionPerLayer + Double(n) * Double(c + f) * Self.elementwiseSeconds)
            if last { seconds += scale * Double(n) * Double(vt) * Self.crossEntropySeconds }

            stages.append(Stage(index: s, layers: layers, parameters: count, weights: 4 * count, gradients: 4 * gradients,
                                optimizer: 4 * optimizer, activations: 4 * elements * inFlight, inFlightMicroBatches: inFlight,
                                bf16Workspace: workspace, communication: communication, baseline: Self.processBaselineBytes,
                                microBatchSeconds: seconds))
        }
        self.stages = stages
        peak = stages.max { $0.total < $1.total } ?? stages[0]
        let most = stages.map(\.parameters).max() ?? 0
        stepUpdateSeconds = scale * Double(most) * Self.updateSeconds
    }
}
