import KondateRecipe
import KondateSupport

/// Everything a dry run knows about a recipe: topology, batch arithmetic, parameters, FLOPs,
/// memory, time, the corpus mix and the execution graph. Pure: no I/O.
public struct Plan: Sendable {
    public var recipe: Recipe
    public var parameters: ParameterCount
    public var world: Int
    public var gradientAccumulation: Int
    public var tokensPerStep: Int
    public var steps: Int
    public var trainingTokens: Int
    public var cost: TrainingCost?
    public var memory: MemoryEstimate
    /// What Kondate's CPU runtime allocates and how long its kernels take (`cluster.device: cpu`).
    public var runtime: RuntimeEstimate?
    public var mix: CorpusMix?
    public var graph: ExecutionGraph
    /// Findings about derived quantities (memory, corpus epochs).
    public var diagnostics: DiagnosticSet

    /// - Parameter mfu: overrides `cluster.assumed_mfu`.
    public init(recipe: Recipe, mfu: Double? = nil) {
        self.recipe = recipe
        var diagnostics = DiagnosticSet()
        parameters = ParameterCount(model: recipe.model)
        world = recipe.cluster.world
        let p = recipe.parallel
        let pre = recipe.pretrain
        gradientAccumulation = pre.map { $0.globalBatch / max(1, p.microBatch * p.data) } ?? 1
        tokensPerStep = (pre?.globalBatch ?? 0) * recipe.model.seqLen
        steps = pre?.steps ?? 0
        trainingTokens = pre?.tokens ?? 0
        memory = MemoryEstimate(recipe: recipe, parameters: parameters)
        runtime = recipe.cluster.device.isGPU ? nil : RuntimeEstimate(recipe: recipe, parameters: parameters)
        if pre != nil {
            cost = TrainingCost(recipe: recipe, parameters: parameters, memory: memory, tokens: trainingTokens, mfu: mfu ?? recipe.cluster.assumedMFU,
                                runtime: runtime)
        }
        if let corpus = recipe.corpus, pre != nil {
            mix = CorpusMix(corpus: corpus, trainingTokens: trainingTokens, diagnostics: &diagnostics, tree: recipe.tree)
        }
        graph = ExecutionGraph(recipe: recipe)

        let peak = memory.peak
        let limit = Double(memory.deviceMemory)
        let peakTotal = runtime.map { Double($0.peak.total) } ?? peak.total
        if peakTotal > limit || peakTotal > 0.9 * limit {
            var breakdown = [
                DiagnosticNote("pipeline stage \(peak.index) of \(p.pipeline) holds \(Format.count(peak.parameters)) parameters per device"),
                DiagnosticNote("weights \(Format.bytes(peak.weights)), gradients \(Format.bytes(peak.gradients)), optimizer states \(Format.bytes(peak.optimizer)) (zero_stage \(p.zeroStage))"),
                DiagnosticNote("activations \(Format.bytes(peak.activations)) (recompute \(p.recompute), \(peak.inFlightMicroBatches) micro batch\(peak.inFlightMicroBatches == 1 ? "" : "es") in flight)"),
                DiagnosticNote("options: raise parallel.tensor or parallel.pipeline, zero_stage, recompute: selective/full, or lower micro_batch"),
            ]
            if let r = runtime?.peak {
                breakdown = [
                    DiagnosticNote("pipeline stage \(r.index) of \(p.pipeline) holds \(Format.count(Double(r.parameters))) parameters per rank"),
                    DiagnosticNote("Kondate's CPU runtime: weights \(Format.bytes(Double(r.weights))), gradients \(Format.bytes(Double(r.gradients))), " +
                                   "optimizer states \(Format.bytes(Double(r.optimizer))) (zero_stage \(p.zeroStage)), activations " +
                                   "\(Format.bytes(Double(r.activations))) (recompute \(p.recompute), \(r.inFlightMicroBatches) in flight), " +
                                   "bf16 workspace \(Format.bytes(Double(r.bf16Workspace))), process \(Format.bytes(Double(r.baseline)))"),
                    breakdown[3],
                ]
            }
            let device = "\(recipe.cluster.device) (\(Format.bytes(limit)))"
            let location = recipe.tree.at("cluster.device")?.location ?? recipe.tree.keyLocation("parallel") ?? recipe.tree.keyLocation("cluster")
                ?? recipe.tree.keyLocation("model")
            if peakTotal > limit {
                diagnostics.error(.memory, "estimated \(Format.bytes(peakTotal)) per device exceeds the \(device) memory", at: location, notes: breakdown)
            } else {
                diagnostics.warning(.memory, "estimated \(Format.bytes(peakTotal)) per device is over 90% of the \(device) memory", at: location, notes: breakdown)
            }
        }
        self.diagnostics = diagnostics
    }

    public var json: JSON {
        let r = recipe, p = r.parallel
        var entries: [(String, JSON)] = [
            ("name", .string(r.name)),
            ("file", .string(r.file)),
            ("parameters", .int(parameters.total)),
            ("parameter_breakdown", .object([
                ("embedding", .int(parameters.embedding)), ("positions", .int(parameters.positions)),
                ("per_layer", .int(parameters.perLayer)), ("attention_per_layer", .int(parameters.attentionPerLayer)),
                ("mlp_per_layer", .int(parameters.mlpPerLayer)), ("norms_per_layer", .int(parameters.normsPerLayer)),
                ("layers", .int(parameters.layers)), ("final_norm", .int(parameters.finalNorm)), ("head", .int(parameters.head)),
                ("matmul", .int(parameters.matmul)),
            ])),
            ("topology", .object([
                ("nodes", .int(r.cluster.nodes)), ("devices_per_node", .int(r.cluster.devicesPerNode)), ("device", .string(r.cluster.device.rawValue)),
                ("world", .int(world)), ("device_memory_bytes", .int(r.cluster.deviceMemory)), ("peak_flops", .double(r.cluster.peakFlops)),
            ])),
            ("parallel", .object([
                ("tensor", .int(p.tensor)), ("pipeline", .int(p.pipeline)), ("data", .int(p.data)),
                ("sequence_parallel", .bool(p.sequenceParallel)), ("zero_stage", .int(p.zeroStage)), ("recompute", .string(p.recompute.rawValue)),
                ("micro_batch", .int(p.microBatch)), ("gradient_accumulation", .int(gradientAccumulation)),
            ])),
            ("steps", .int(steps)),
            ("training_tokens", .int(trainingTokens)),
            ("tokens_per_step", .int(tokensPerStep)),
        ]
        if let cost {
            entries += [
                ("flops", .double(cost.modelFlops)),
                ("hardware_flops", .double(cost.hardwareFlops)),
                ("flops_per_token", .double(cost.modelFlopsPerToken)),
                ("six_n_d", .double(cost.sixND)),
                ("assumed_mfu", .double(cost.mfu)),
                ("estimated_seconds", .double(finite(cost.seconds))),
                ("device_hours", .double(finite(cost.deviceHours))),
                ("time_estimate", .string("step_time")),
                ("mfu_estimated_seconds", .double(finite(cost.mfuSeconds))),
                ("mfu_device_hours", .double(finite(cost.mfuDeviceHours))),
                ("step_time", stepTimeJSON(cost)),
            ]
        }
        let peak = memory.peak
        entries += [
            ("memory_per_device_bytes", .int(runtime?.peak.total ?? Int(saturating: peak.total.rounded(.up)))),
            ("memory", .object([
                ("peak_stage", .int(peak.index)),
                ("device_memory_bytes", .int(memory.deviceMemory)),
                ("stages", .array(memory.stages.map { s in .object([
                    ("stage", .int(s.index)), ("parameters", .int(Int(saturating: s.parameters.rounded()))),
                    ("weights_bytes", .int(Int(saturating: s.weights.rounded()))), ("gradients_bytes", .int(Int(saturating: s.gradients.rounded()))),
                    ("optimizer_bytes", .int(Int(saturating: s.optimizer.rounded()))), ("activations_bytes", .int(Int(saturating: s.activations.rounded()))),
                    ("total_bytes", .int(Int(saturating: s.total.rounded(.up)))), ("in_flight_micro_batches", .int(s.inFlightMicroBatches)),
                ]) })),
            ])),
        ]
        if let runtime {
            entries.append(("runtime", .object([
                ("peak_stage", .int(runtime.peak.index)),
                ("step_update_seconds", .double(runtime.stepUpdateSeconds)),
                ("stages", .array(runtime.stages.map { s in .object([
                    ("stage", .int(s.index)), ("layers", .int(s.layers)), ("parameters", .int(s.parameters)),
                    ("weights_bytes", .int(s.weights)), ("gradients_bytes", .int(s.gradients)), ("optimizer_bytes", .int(s.optimizer)),
                    ("activations_bytes", .int(s.activations)), ("in_flight_micro_batches", .int(s.inFlightMicroBatches)),
                    ("bf16_workspace_bytes", .int(s.bf16Workspace)), ("communication_bytes", .int(s.communication)),
                    ("process_bytes", .int(s.baseline)), ("total_bytes", .int(s.total)),
                    ("micro_batch_seconds", .double(s.microBatchSeconds)),
                ]) })),
            ])))
        }
        if let mix {
            entries.append(("corpus", .array(mix.shares.map { s in .object([
                ("source", .string(s.source)), ("language", s.language.map(JSON.string) ?? .null),
                ("available_tokens", s.available.map(JSON.int) ?? .null), ("drawn_tokens", .int(Int(saturating: s.drawn.rounded()))),
                ("share", .double(s.fraction)), ("epochs", s.epochs.map(JSON.double) ?? .null),
            ]) })))
        }
        entries.append(("stages", graph.json))
        entries.append(("recipe", r.tree.json))
        return .object(entries)
    }

    /// -1 stands for a time that cannot be estimated (a zero peak or bandwidth).
    func finite(_ x: Double) -> Double { x.isFinite ? x : -1 }

    /// The step-time model (docs/cost-model.md): seconds per step by part, and each kind of traffic.
    func stepTimeJSON(_ cost: TrainingCost) -> JSON {
        let s = cost.step, link = s.interconnect
        func traffic(_ t: CommunicationCost.Traffic) -> JSON {
            .object([
                ("kind", .string(t.kind)), ("collective", .string(t.collective)), ("group", .int(t.group)), ("nodes", .int(t.nodes)),
                ("link", .string(t.link.rawValue)), ("sharing", .int(t.sharing)), ("bandwidth", .double(t.bandwidth)),
                ("operations", .double(t.operations)), ("bytes_per_operation", .double(t.bytesPerOperation)),
                ("bytes_per_step", .double(t.bytesPerStep)), ("messages", .double(t.messages)),
                ("inter_node_messages", .double(t.interNodeMessages)), ("seconds", .double(finite(t.seconds))),
                ("exposed_fraction", .double(t.exposedFraction)), ("exposed_seconds", .double(finite(t.exposedSeconds))),
            ])
        }
        return .object([
            ("seconds", .double(finite(s.total))),
            ("compute_seconds", .double(finite(s.compute))),
            ("data_parallel_seconds", .double(finite(s.dataSeconds))),
            ("tensor_parallel_seconds", .double(finite(s.tensorSeconds))),
            ("pipeline_seconds", .double(finite(s.pipelineSeconds))),
            ("bubble_seconds", .double(finite(s.bubble))),
            ("bubble_fraction", .double(s.bubbleFraction)),
            ("update_seconds", .double(finite(s.update))),
            ("micro_batches", .int(s.microBatches)),
            ("slowest_stage", .int(s.slowestStage)),
            ("stage_micro_batch_seconds", .array(s.stageSeconds.map { .double(finite($0)) })),
            ("compute_efficiency", .double(s.computeEfficiency)),
            ("implied_mfu", .double(cost.impliedMFU)),
            ("interconnect", .object([
                ("intra_node_bandwidth", .double(link.intraNodeBandwidth)), ("inter_node_bandwidth", .double(link.interNodeBandwidth)),
                ("intra_node_latency", .double(link.intraNodeLatency)), ("inter_node_latency", .double(link.interNodeLatency)),
                ("description", .string(link.description)), ("overrides", .array(link.overrides.map(JSON.string))),
            ])),
            ("traffic", .array([s.data, s.tensor, s.pipeline].compactMap { $0 }.map(traffic))),
        ])
    }
}
