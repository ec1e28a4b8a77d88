import KondateRecipe

/// The time of one pretraining step on a real cluster: compute, the communication of data, tensor and
/// pipeline parallelism, and the pipeline bubble. docs/cost-model.md gives the formulas, a worked
/// example and what the model ignores; in short:
///
/// - Ranks are laid out as Megatron-LM does: tensor fastest, then data, then pipeline, so
///   rank = tensor rank + t·(data rank + D·pipeline stage), and node = rank ÷ devices per node.
/// - Collectives are NCCL rings. Over k ranks an all-reduce of S bytes sends 2(k−1)/k·S bytes per
///   rank in 2(k−1) messages; a reduce-scatter or an all-gather half of each. A ring that leaves a node
///   sends all of that through the node's network adapters, which the groups of that node crossing
///   nodes at the same time share.
/// - Time of a collective = bytes per rank / bandwidth + messages × latency (NCCL's tuning model, with
///   its split of the messages into intra- and inter-node ones).
/// - 1F1B pipeline with m micro batches per step per data-parallel rank: (m + p − 1) slots, each one
///   micro batch's forward and backward on the slowest stage, its tensor-parallel collectives (not
///   overlapped) and two point-to-point transfers; the p − 1 extra slots are the bubble,
///   (p − 1)/(m + p − 1) of the pipeline.
/// - Data-parallel communication runs once per step, overlapped with the backward pass except for
///   `exposedDataParallel` of it (default: the last bucket).
public struct CommunicationCost: Sendable {
    /// Where a kind of traffic travels.
    public enum Link: String, Sendable {
        case none, intraNode = "intra-node", interNode = "inter-node"
    }

    /// One kind of traffic in a step, as seen by one device of the slowest stage.
    public struct Traffic: Sendable {
        /// "data", "tensor" or "pipeline".
        public var kind: String
        /// "all-reduce", "reduce-scatter + all-gather", "send/receive", …
        public var collective: String
        /// Ranks in the group (2 for point-to-point).
        public var group: Int
        /// Nodes one group spans.
        public var nodes: Int
        public var link: Link
        /// Groups (or senders) of one node crossing nodes at the same time, sharing its adapters.
        public var sharing: Int
        /// Bytes/s one rank gets on the slowest link of its group.
        public var bandwidth: Double
        /// Collectives (or transfers on the critical path) per step.
        public var operations: Double
        /// Payload of one collective (S) or transfer.
        public var bytesPerOperation: Double
        /// Bytes one rank sends per step.
        public var bytesPerStep: Double
        /// Messages per step (latency terms), and how many of them cross nodes.
        public var messages: Double, interNodeMessages: Double
        /// Time of all of it per step, before overlap.
        public var seconds: Double
        /// Fraction of `seconds` on the critical path.
        public var exposedFraction: Double
        public var exposedSeconds: Double { seconds * exposedFraction }
    }

    /// Micro batches per step per data-parallel rank (m = gradient accumulation).
    public var microBatches: Int
    /// Compute time of one micro batch (forward and backward, with recomputation) on each pipeline
    /// stage, and the index of the slowest.
    public var stageSeconds: [Double]
    public var slowestStage: Int
    /// m × the slowest stage's micro-batch time.
    public var compute: Double
    public var data: Traffic?
    public var tensor: Traffic?
    public var pipeline: Traffic?
    /// (p − 1) slots of compute and tensor-parallel communication.
    public var bubble: Double
    /// (p − 1)/(m + p − 1).
    public var bubbleFraction: Double
    /// The optimizer update and gradient zeroing per step (Kondate's CPU runtime; 0 otherwise).
    public var update: Double
    /// compute + exposed communication + bubble + update.
    public var total: Double
    public var computeEfficiency: Double
    public var interconnect: Interconnect

    /// Exposed communication by kind, zero where there is none.
    public var dataSeconds: Double { data?.exposedSeconds ?? 0 }
    public var tensorSeconds: Double { tensor?.exposedSeconds ?? 0 }
    public var pipelineSeconds: Double { pipeline?.exposedSeconds ?? 0 }

    /// Megatron's default gradient bucket, in elements: max(40M, 1M × data-parallel size)
    /// (`megatron/core/distributed/distributed_data_parallel.py`).
    public static func bucketElements(dataParallel d: Int) -> Double { max(40e6, 1e6 * Double(d)) }

    /// - Parameters:
    ///   - microBatches: m, micro batches per step per data-parallel rank.
    ///   - stageParameters: parameters per device of each pipeline stage (the memory estimate's).
    ///   - exposedDataParallel: fraction of the data-parallel communication not hidden behind the
    ///     backward pass; nil = one gradient bucket of the stage's parameters (overlapped gradient
    ///     reduction, the last bucket exposed).
    ///   - runtime: Kondate's CPU runtime estimate, whose per-stage micro-batch times replace the
    ///     FLOPs at `compute_efficiency` and whose optimizer update is added once per step.
    public init(recipe: Recipe, parameters: ParameterCount, microBatches: Int, stageParameters: [Double], exposedDataParallel: Double? = nil,
                runtime: RuntimeEstimate? = nil) {
        let m = recipe.model, p = recipe.parallel, c = recipe.cluster
        let link = c.interconnect
        let t = p.tensor, pp = p.pipeline, d = p.data, g = max(1, c.devicesPerNode)
        let mb = max(1, microBatches)
        let activationBytes: Double = recipe.trainingPrecision == .fp32 ? 4 : 2
        let weightBytes: Double = recipe.trainingPrecision == .fp32 ? 4 : 2
        // Megatron reduces gradients in its fp32 main-grad buffer (forced for bf16 by arguments.py), the
        // 4 bytes per parameter the memory estimate counts.
        let gradientBytes: Double = 4
        let tokensPerMicroBatch = Double(p.microBatch * m.seqLen)
        let activation = tokensPerMicroBatch * Double(m.hidden) * activationBytes
        interconnect = link
        computeEfficiency = c.computeEfficiency
        self.microBatches = mb

        // Compute per micro batch per device and stage: the layers' matrices (6 FLOPs per weight per
        // token), attention over the (T, T) square (12·n·d·T per token), recomputation, the head on the
        // last stage; all divided over the tensor group.
        let matricesPerLayer = Double(parameters.matmul - parameters.embedding) / Double(max(1, m.layers))
        let attention = 12 * Double(m.heads * m.headDim) * Double(m.seqLen)
        var recompute = 0.0
        switch p.recompute {
        case .full: recompute = 2 * matricesPerLayer + attention / 3
        case .selective: recompute = attention / 3
        case .none: break
        }
        let layerFlops = 6 * matricesPerLayer + attention + recompute
        let headFlops = 6 * Double(parameters.embedding)
        let layersPerStage = Double(m.layers) / Double(pp)
        let rate = c.peakFlops * c.computeEfficiency
        let stages = runtime?.stages.map(\.microBatchSeconds) ?? (0..<pp).map { i in
            let flops = (layersPerStage * layerFlops + (i == pp - 1 ? headFlops : 0)) * tokensPerMicroBatch / Double(t)
            return rate > 0 ? flops / rate : .infinity
        }
        let slowest = stages.indices.max { stages[$0] < stages[$1] } ?? 0
        stageSeconds = stages
        slowestStage = slowest
        let perMicroBatch = stages[slowest]
        compute = Double(mb) * perMicroBatch

        let layout = Layout(tensor: t, data: d, pipeline: pp, devicesPerNode: g)

        // Tensor parallelism: per layer and micro batch 2 all-reduces of b·s·h in the forward pass and 2
        // in the backward (reduce-scatter + all-gather pairs with sequence parallelism: the same bytes),
        // 2 more with full recomputation (the forward is run again). Not overlapped.
        if t > 1 {
            let perLayer = 4.0 + (p.recompute == .full ? 2 : 0)
            let placement = layout.group(stride: 1, size: t)
            tensor = Self.ring(kind: "tensor", collective: p.sequenceParallel ? "reduce-scatter + all-gather" : "all-reduce",
                               placement: placement, link: link, size: t,
                               payloads: [(activation, 2)], operations: Double(mb) * layersPerStage * perLayer, exposed: 1)
        }
        // Pipeline: each slot sends one micro batch's activations forward and its gradients backward,
        // b·s·h elements, split over the tensor group with sequence parallelism (Megatron sends the
        // (s/t, b, h) shard).
        if pp > 1 {
            let bytes = activation / Double(p.sequenceParallel ? t : 1)
            let placement = layout.sends(stride: t * d, stages: pp)
            let bandwidth = placement.crossing ? link.interNodeBandwidth / Double(max(1, placement.sharing)) : link.intraNodeBandwidth
            let latency = placement.crossing ? link.interNodeLatency : link.intraNodeLatency
            let transfers = 2 * Double(mb + pp - 1)
            pipeline = Traffic(kind: "pipeline", collective: "send/receive", group: 2, nodes: placement.crossing ? 2 : 1,
                               link: placement.crossing ? .interNode : .intraNode, sharing: placement.sharing, bandwidth: bandwidth,
                               operations: transfers, bytesPerOperation: bytes, bytesPerStep: 2 * Double(mb) * bytes,
                               messages: transfers, interNodeMessages: placement.crossing ? transfers : 0,
                               seconds: transfers * (bytes / bandwidth + latency), exposedFraction: 1)
        }
        // Data parallelism, once per step, on the stage with the most parameters: an all-reduce of the
        // gradients; with ZeRO-1/2 (Megatron's distributed optimizer) a reduce-scatter of the gradients
        // and an all-gather of the updated 16-bit weights, the same 2(D−1)/D elements; ZeRO-3 gathers
        // the weights twice (forward and backward). One collective per bucket.
        if d > 1 {
            let params = stageParameters.max() ?? 0
            let placement = layout.group(stride: t, size: d)
            let bucket = Self.bucketElements(dataParallel: d)
            let buckets = max(1, (params / bucket).rounded(.up))
            let exposed = exposedDataParallel ?? min(1, 1 / buckets)
            let grads = params * gradientBytes, weights = params * weightBytes
            let payloads: [(Double, Double)]
            let collective: String
            switch p.zeroStage {
            case 0: payloads = [(grads, 2)]; collective = "all-reduce"
            case 1, 2: payloads = [(grads, 1), (weights, 1)]; collective = "reduce-scatter + all-gather"
            default: payloads = [(grads, 1), (weights, 2)]; collective = "reduce-scatter + 2 all-gathers"
            }
            data = Self.ring(kind: "data", collective: collective, placement: placement, link: link, size: d,
                             payloads: payloads.map { ($0.0 / buckets, $0.1) }, operations: buckets, exposed: exposed)
        }

        let slots = Double(mb + pp - 1)
        let tensorPerMicroBatch = (tensor?.seconds ?? 0) / Double(mb)
        bubble = Double(pp - 1) * (perMicroBatch + tensorPerMicroBatch)
        bubbleFraction = Double(pp - 1) / slots
        update = runtime?.stepUpdateSeconds ?? 0
        total = compute + (tensor?.exposedSeconds ?? 0) + bubble + (pipeline?.exposedSeconds ?? 0) + (data?.exposedSeconds ?? 0) + update
    }

    /// Time of a ring collective, NCCL's way: each payload (S, phases) sends phases·(k−1)/k·S bytes per
    /// rank in phases·(k−1) messages, phases·(n−1) of them between nodes when the ring spans n nodes.
    /// An all-reduce is 2 phases, a reduce-scatter or an all-gather 1.
    static func ring(kind: String, collective: String, placement: Layout.Group, link: Interconnect, size k: Int,
                     payloads: [(bytes: Double, phases: Double)], operations: Double, exposed: Double) -> Traffic {
        let kk = Double(k), n = Double(placement.nodes)
        let perOperation = payloads.reduce(0) { $0 + $1.phases * (kk - 1) / kk * $1.bytes }
        let phases = payloads.reduce(0) { $0 + $1.phases }
        let messages = phases * (kk - 1) * operations
        let inter = placement.nodes > 1 ? phases * (n - 1) * operations : 0
        let bandwidth = Self.ringBandwidth(placement: placement, link: link)
        let seconds = operations * perOperation / bandwidth + (messages - inter) * link.intraNodeLatency + inter * link.interNodeLatency
        return Traffic(kind: kind, collective: collective, group: k, nodes: placement.nodes,
                       link: placement.nodes > 1 ? .interNode : .intraNode, sharing: placement.sharing, bandwidth: bandwidth,
                       operations: operations, bytesPerOperation: payloads.reduce(0) { $0 + $1.bytes }, bytesPerStep: operations * perOperation,
                       messages: messages, interNodeMessages: inter, seconds: seconds, exposedFraction: exposed)
    }

    /// Bandwidth per rank of a ring: the device link inside a node; for a ring across nodes, the
    /// node's network share (every ring that leaves a node sends all its bytes through the node's
    /// adapters, shared by the node's crossing groups), and the device link too where the ring has
    /// more than one member on a node.
    static func ringBandwidth(placement: Layout.Group, link: Interconnect) -> Double {
        guard placement.nodes > 1 else { return link.intraNodeBandwidth }
        let network = link.interNodeBandwidth / Double(max(1, placement.sharing))
        return placement.membersPerNode > 1 ? min(network, link.intraNodeBandwidth) : network
    }

    /// All-reduce of S bytes over k ranks on one kind of link: 2(k−1)/k·S / B + 2(k−1)·α.
    public static func ringAllReduceSeconds(bytes: Double, ranks k: Int, bandwidth: Double, latency: Double) -> Double {
        guard k > 1 else { return 0 }
        let kk = Double(k)
        return 2 * (kk - 1) / kk * bytes / bandwidth + 2 * (kk - 1) * latency
    }

    /// The 1F1B bubble: (p − 1)/(m + p − 1) of the pipeline's time.
    public static func bubbleFraction(stages p: Int, microBatches m: Int) -> Double {
        Double(p - 1) / Double(m + p - 1)
    }

    /// Megatron's rank layout over nodes: rank = tensor + t·(data + D·stage), node = rank ÷ devices per
    /// node. Nodes are examined one by one (the first 256; the layout repeats) for the groups that
    /// leave them.
    struct Layout {
        var tensor: Int, data: Int, pipeline: Int, devicesPerNode: Int
        var world: Int { tensor * data * pipeline }
        var nodes: Int { (world + devicesPerNode - 1) / devicesPerNode }

        struct Group {
            /// Most nodes one group spans; members of a group on one node (at most).
            var nodes: Int, membersPerNode: Int
            /// Most groups of one node that span nodes.
            var sharing: Int
        }

        /// Groups of `size` ranks `stride` apart: the tensor group (stride 1), the data group (stride t).
        func group(stride: Int, size: Int) -> Group {
            let g = devicesPerNode
            var widest = 1, members = 1, sharing = 0
            for node in 0..<min(nodes, 256) {
                var crossing = Set<Int>()
                for rank in node * g..<min(world, (node + 1) * g) {
                    let base = rank / (stride * size) * (stride * size) + rank % stride
                    let first = base / g, last = (base + (size - 1) * stride) / g
                    let spanned = stride >= g ? size : last - first + 1
                    widest = max(widest, spanned)
                    // Members j with node·g ≤ base + j·stride < (node + 1)·g.
                    let from = max(0, ceilDiv(node * g - base, stride)), to = min(size, ceilDiv((node + 1) * g - base, stride))
                    members = max(members, to - from)
                    if spanned > 1 { crossing.insert(base) }
                }
                sharing = max(sharing, crossing.count)
            }
            return Group(nodes: widest, membersPerNode: members, sharing: sharing)
        }

        func ceilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

        struct Sends {
            var crossing: Bool
            /// Most ranks of one node sending to another node at once.
            var sharing: Int
        }

        /// Point-to-point sends from each stage to the next, `stride` = t·D ranks on.
        func sends(stride: Int, stages: Int) -> Sends {
            let g = devicesPerNode
            var crossing = false, sharing = 0
            for node in 0..<min(nodes, 256) {
                var count = 0
                for rank in node * g..<min(world, (node + 1) * g) where rank / stride < stages - 1 {
                    if (rank + stride) / g != node { count += 1 }
                }
                if count > 0 { crossing = true }
                sharing = max(sharing, count)
            }
            return Sends(crossing: crossing, sharing: sharing)
        }
    }
}
