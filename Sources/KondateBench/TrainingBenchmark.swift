import Foundation
import KondateCollectives
import KondateKernels
import KondateModel
import KondateMPI
import KondatePlan
import KondateRecipe
import KondateSupport
import KondateTraining

/// `kondate bench train`: the training-step throughput of a model shape on random tokens, with a
/// per-kernel time breakdown, in one process or distributed under mpirun.
///
/// FLOPs per step are the planner's model FLOPs (`TrainingCost.modelFlopsPerToken` over
/// `ParameterCount`, PaLM's count) times the tokens of the step, so a measured GFLOP/s and a plan's
/// predicted throughput use one formula.
public enum TrainingBenchmark {
    public struct Options: Sendable {
        public var config: ModelConfig
        public var seq: Int
        /// Global batch, in rows of `seq` tokens.
        public var batch: Int
        /// Timed steps (after one untimed warm-up step).
        public var steps: Int
        public var threads: Int
        /// Model-parallel sizes under mpirun; the remaining ranks are data parallel.
        public var tensor: Int, pipeline: Int
        /// Rows per micro-batch (nil: the batch shared evenly by the data-parallel ranks, or 1 row with a pipeline).
        public var microBatch: Int?
        /// ZeRO stage over the data-parallel ranks: 1 shards the optimizer state, 2 the gradients too.
        public var zeroStage: Int
        /// The linear layers' matmuls: f32 (OpenBLAS) or bf16 (oneDNN) with f32 accumulation.
        public var precision: MatmulPrecision
        /// How bf16 matmuls run (nil: the machine's default, `Kernels.bf16Route`).
        public var bf16Route: Kernels.BF16Route?
        /// `parallel.recompute`: `full` recomputes each layer before its backward.
        public var recompute: Recompute

        public init(config: ModelConfig, seq: Int, batch: Int, steps: Int, threads: Int, tensor: Int = 1, pipeline: Int = 1,
                    microBatch: Int? = nil, zeroStage: Int = 0, precision: MatmulPrecision = .fp32, bf16Route: Kernels.BF16Route? = nil,
                    recompute: Recompute = .none) {
            self.config = config
            self.seq = seq
            self.batch = batch
            self.steps = steps
            self.threads = threads
            self.tensor = tensor
            self.pipeline = pipeline
            self.microBatch = microBatch
            self.zeroStage = zeroStage
            self.precision = precision
            self.bf16Route = bf16Route
            self.recompute = recompute
        }
    }

    /// A setting the benchmark cannot run with (a usage error, exit status 64 in the CLI).
    public struct UsageError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public struct Layout: Sendable {
        public var ranks: Int, tensor: Int, pipeline: Int, data: Int, zeroStage: Int, microBatch: Int
    }

    public struct Result: Sendable {
        public var options: Options
        public var layout: Layout
        /// Parameters of the whole model.
        public var parameters: Int
        public var stepSeconds: Double
        public var tokensPerSecond: Double
        public var flopsPerStep: Double
        public var gflops: Double
        /// The matmul the linear layers use on 1024³ with the same thread count, measured in the same
        /// process: cblas_sgemm for fp32, oneDNN's bf16 matmul (or the rounded-sgemm fallback) for bf16.
        public var peakGFLOPS: Double
        /// What `peakGFLOPS` measured.
        public var peakKernel: String
        /// GFLOP/s over (ranks × peak).
        public var fractionOfPeak: Double
        /// The process's peak resident memory (VmHWM) after the timed steps, in bytes (rank 0's).
        public var peakResidentBytes: Int?
        /// What the model and trainer allocate, in bytes (rank 0's): parameters, gradients, optimizer
        /// state (AdamW's moments), activations (every in-flight slot) and the bf16 operand workspace.
        public var memory: [(name: String, bytes: Int)]
        /// Seconds per step by kernel, in `KernelProfile.Kernel` order, then `optimizer`, then `other`
        /// (the step time no kernel accounts for). Without ranks there is no `communication`.
        public var kernels: [(name: String, seconds: Double)]
    }

    /// Model FLOPs of one step of `batch` rows of `seq` tokens: the planner's formula.
    public static func flopsPerStep(_ config: ModelConfig, batch: Int, seq: Int) -> Double {
        let parameters = ParameterCount(arch: config.arch == .gpt2 ? .gpt2 : .llama, hidden: config.hidden, ffn: config.ffn,
                                        layers: config.layers, heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim,
                                        vocabSize: config.vocabSize, maxPositions: config.maxPositions,
                                        tieEmbeddings: config.tieEmbeddings)
        return TrainingCost.modelFlopsPerToken(parameters: parameters, layers: config.layers, attentionWidth: config.qDim, seqLen: seq)
            * Double(batch * seq)
    }

    /// Runs the benchmark. Under an MPI launcher with more than one rank, every rank takes part and the
    /// result is returned on rank 0 only (nil elsewhere); MPI is finalised before returning.
    public static func run(_ o: Options) throws -> Result? {
        guard o.steps >= 1, o.threads >= 1, o.batch >= 1, o.seq >= 2, o.tensor >= 1, o.pipeline >= 1 else {
            throw UsageError(description: "--steps, --threads, --batch, --tensor and --pipeline must be at least 1 and --seq at least 2")
        }
        var groups: ParallelGroups?
        var world: Communicator?
        if Communicator.launchedByLauncher, let w = try? Communicator.world(), w.size > 1 {
            world = w
        }
        defer { if world != nil { Communicator.finalize() } }
        guard (0...2).contains(o.zeroStage) else {
            throw UsageError(description: "--zero-stage \(o.zeroStage): the runtime implements ZeRO stages 0, 1 and 2")
        }
        if let w = world {
            guard w.size % (o.tensor * o.pipeline) == 0 else {
                throw UsageError(description: "\(w.size) ranks are not a multiple of --tensor \(o.tensor) × --pipeline \(o.pipeline)")
            }
            groups = try ParallelGroups.mpi(world: w, layout: ParallelLayout(tensor: o.tensor, pipeline: o.pipeline, data: w.size / (o.tensor * o.pipeline)),
                                            zeroStage: o.zeroStage)
        }
        if let route = o.bf16Route { Kernels.bf16Route = route }
        let data = groups?.data.size ?? 1
        let micro = o.microBatch ?? (o.pipeline > 1 ? 1 : max(1, o.batch / data))
        guard micro >= 1, o.batch % (micro * data) == 0 else {
            throw UsageError(description: "--batch \(o.batch) is not a multiple of --micro-batch \(micro) × \(data) data-parallel ranks")
        }
        let model: Transformer
        do {
            model = try Transformer(config: o.config, shard: groups?.shard ?? .whole, tensorGroup: groups?.tensor, matmulPrecision: o.precision,
                                    recomputeLayers: o.recompute == .full)
        } catch {
            throw UsageError(description: "\(error)")
        }
        Kernels.setMatmulThreads(o.threads)
        Parallel.threads = o.threads
        let peak = matmulPeak(o.precision)
        model.initialize(seed: 1)
        var rng = SplitMix64(seed: 2)
        let vocab = UInt64(o.config.vocabSize)
        let samples = (0..<o.batch).map { _ in (0...o.seq).map { _ in Int32(rng.below(vocab)) } }
        let batches = stride(from: 0, to: o.batch, by: micro).map { MicroBatch(samples: Array(samples[$0..<($0 + micro)])) }
        let trainer = Trainer(model: model, options: TrainingOptions(
            schedule: LearningRateSchedule(kind: .constant, maxLR: 1e-4, decaySteps: o.steps + 1), adamw: AdamW.Hyperparameters()),
                              groups: groups)
        _ = try trainer.step(batches, seq: o.seq)
        let profile = KernelProfile()
        model.profile = profile
        var total = 0.0, optimizer = 0.0, communication = 0.0
        for _ in 0..<o.steps {
            let report = try trainer.step(batches, seq: o.seq)
            total += report.seconds
            optimizer += trainer.lastUpdateSeconds
            communication += trainer.lastCommunicationSeconds
        }
        // The ranks' mean step time is the job's.
        if let groups { total = groups.world.allReduce(total) / Double(groups.world.size) }
        if let world, world.rank != 0 { return nil }

        let steps = Double(o.steps)
        let stepSeconds = total / steps
        let flops = flopsPerStep(o.config, batch: o.batch, seq: o.seq)
        let gflops = flops / stepSeconds / 1e9
        let ranks = groups?.world.size ?? 1
        var kernels: [(name: String, seconds: Double)] = KernelProfile.Kernel.allCases.filter { $0 != .optimizer }.map {
            ($0.rawValue, profile.seconds($0) / steps)
        }
        kernels.append(("optimizer", optimizer / steps))
        if groups != nil {
            // Tensor-parallel reductions are timed by the model (`communication`); data-parallel
            // reductions, gathers and pipeline waits by the trainer.
            kernels = kernels.map { $0.name == "communication" ? ($0.name, $0.seconds + communication / steps) : $0 }
        } else {
            kernels.removeAll { $0.name == "communication" }
        }
        let accounted = kernels.reduce(0.0) { $0 + $1.seconds }
        kernels.append(("other", max(0, stepSeconds - accounted)))
        let layout = Layout(ranks: ranks, tensor: groups?.tensor.size ?? 1, pipeline: groups?.pipeline.size ?? 1, data: data,
                            zeroStage: groups?.zeroStage ?? 0, microBatch: micro)
        return Result(options: o, layout: layout, parameters: ParameterLayout(o.config).count, stepSeconds: stepSeconds,
                      tokensPerSecond: Double(o.batch * o.seq) / stepSeconds, flopsPerStep: flops, gflops: gflops,
                      peakGFLOPS: peak, peakKernel: peakKernel(o.precision), fractionOfPeak: gflops / (peak * Double(ranks)),
                      peakResidentBytes: peakResidentBytes(), memory: [
                        ("parameters", model.parameters.count * 4), ("gradients", trainer.gradientBytes),
                        ("optimizer", (trainer.optimizer.m.count + trainer.optimizer.v.count) * 4), ("activations", model.activationBytes),
                        ("bf16_workspace", o.precision == .bf16 ? Kernels.bf16WorkspaceBytes : 0),
                      ], kernels: kernels)
    }

    /// The kernel `matmulPeak` measures.
    public static func peakKernel(_ precision: MatmulPrecision) -> String {
        switch precision {
        case .fp32: "OpenBLAS sgemm"
        case .bf16: Kernels.bf16Route == .oneDNN ? "oneDNN bf16 matmul" : "bf16-rounded OpenBLAS sgemm"
        }
    }

    /// Best GFLOP/s of the linear layers' matmul at `precision` on 1024³ (C = A·Bᵀ, as a layer's forward
    /// pass), with the current threads.
    public static func matmulPeak(_ precision: MatmulPrecision) -> Double {
        let n = 1024
        var rng = SplitMix64(seed: 3)
        let a = (0..<(n * n)).map { _ in Float(rng.below(1000)) / 1000 }, b = a
        var c = [Float](repeating: 0, count: n * n)
        var best = 0.0
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        Kernels.gemm(precision, transA: false, transB: true, m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!,
                                     ldb: n, beta: 0, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = max(best, 2 * Double(n * n * n) / seconds / 1e9)
        }
        return best
    }

    /// VmHWM of /proc/self/status in bytes (nil where there is no /proc).
    public static func peakResidentBytes() -> Int? { ProcessMemory.peakResidentBytes() }
}

extension TrainingBenchmark.Result {
    /// The figures as `kondate bench train --json` prints them.
    public var json: JSON {
        let c = options.config
        return .object([
            ("config", .object([("arch", .string(c.arch.rawValue)), ("hidden", .int(c.hidden)), ("ffn", .int(c.ffn)), ("layers", .int(c.layers)),
                                ("heads", .int(c.heads)), ("kv_heads", .int(c.kvHeads)), ("vocab", .int(c.vocabSize)), ("seq", .int(options.seq)),
                                ("batch", .int(options.batch)), ("parameters", .int(parameters))])),
            ("threads", .int(options.threads)), ("steps", .int(options.steps)),
            ("layout", .object([("ranks", .int(layout.ranks)), ("tensor", .int(layout.tensor)), ("pipeline", .int(layout.pipeline)),
                                ("data", .int(layout.data)), ("zero_stage", .int(layout.zeroStage)), ("micro_batch", .int(layout.microBatch))])),
            ("tokens_per_second", .double(tokensPerSecond)), ("step_seconds", .double(stepSeconds)),
            ("flops_per_step", .double(flopsPerStep)),
            ("precision", .string(options.precision.rawValue)), ("recompute", .string(options.recompute.rawValue)),
            ("gflops", .double(gflops)), ("peak_gflops", .double(peakGFLOPS)), ("peak_kernel", .string(peakKernel)),
            ("fraction_of_peak", .double(fractionOfPeak)), ("peak_rss_bytes", peakResidentBytes.map(JSON.int) ?? .null),
            ("memory_bytes", .object(memory.map { ($0.name, .int($0.bytes)) } + [("total", .int(memory.reduce(0) { $0 + $1.bytes }))])),
            ("kernels", .object(kernels.map { ($0.name, .double($0.seconds)) })),
        ])
    }
}
