import Foundation
import KondateCorpus
import KondateKernels
import KondateModel
import KondatePlan
import KondateRecipe
import KondateSupport
import KondateTokenizers
import KondateTraining


extension ModelConfig {
    /// The runtime's model for a recipe's `model` section.
    public init(recipe: Recipe) throws {
        try self.init(model: recipe.model, locations: RecipeLocations(recipe.tree))
    }

    /// The runtime's model for a typed `model` section.
    public init(model m: Recipe.Model, locations: RecipeLocations) throws {
        let at = locations.at
        let arch: ModelConfig.Architecture = switch m.arch {
        case .llama: .llama
        case .gpt2: .gpt2
        }
        let activation: ModelConfig.Activation = switch m.activation {
        case .swiglu: .swiglu
        case .gelu: .gelu
        case .geluTanh: .geluTanh
        }
        // Dropout is refused by validation for this engine (EngineSupport), so it never reaches here.
        // gpt2 has no RoPE: its config carries a base it never reads.
        self.init(arch: arch, vocabSize: m.vocabSize, hidden: m.hidden, ffn: m.ffn, layers: m.layers, heads: m.heads, kvHeads: m.kvHeads,
                  maxPositions: m.maxPositions, normEps: Float(m.normEps), ropeTheta: m.ropeTheta.map { Float($0) } ?? ModelConfig.unusedRopeTheta,
                  tieEmbeddings: m.tieEmbeddings, activation: activation, initStd: Float(m.initStd))
        do { try validate() } catch { throw KondateError(.inputData, error.description, at: at("model")) }
    }
}

extension TrainingOptions.NaNPolicy {
    public init(_ policy: NaNPolicy) {
        self = switch policy {
        case .skip: .skip
        case .stop: .stop
        }
    }
}

extension LearningRateSchedule {
    public init(_ s: Recipe.Schedule, lr: Double, steps: Int) {
        let warmup = s.warmupSteps ?? Int(((s.warmupFraction ?? 0) * Double(steps)).rounded())
        let kind: Kind = switch s.kind {
        case .cosine: .cosine
        case .linear: .linear
        case .constant: .constant
        }
        self.init(kind: kind, maxLR: lr, minLR: s.minLR, warmupSteps: warmup, decaySteps: s.decaySteps ?? steps)
    }
}

/// The `pretrain` stage: trains the recipe's model on the blended corpus, with periodic held-out
/// loss, checkpoints (resumed automatically), metrics and a Hugging Face export. A `StopRequest`
/// (SIGINT, SIGTERM) stops it after the current step with a checkpoint there (`StageInterrupted`).
///
/// Outputs under `directory/pretrain/`:
///
///     checkpoints/step_NNNNNNNN/   model, optimizer and trainer state with SHA256SUMS
///     metrics.jsonl                one JSON object per logged step (and per evaluation)
///     model/                       the final model as a Hugging Face directory (with tokenizer)
///     summary.json                 steps, tokens, final and held-out loss, throughput
public struct PretrainStage {
    public var config: PretrainConfig
    public var locations: RecipeLocations
    public var directory: String
    public var mixture: Mixture
    public var tokenizerPath: String?
    public var tokenizer: (any Tokenizer)?
    public var threads: Int
    public var log: (String) -> Void
    /// Told after every step: stage, step/total, loss, tokens/s and the estimated time left (for a live
    /// line on a terminal).
    public var progress: ((String) -> Void)?
    /// The job's ranks under mpirun: every rank runs this stage on its part of the layout; the leader
    /// alone logs, writes metrics, the summary and the exported model.
    public var distributed: DistributedContext?

    public init(config: PretrainConfig, locations: RecipeLocations, directory: String, mixture: Mixture, tokenizerPath: String?, tokenizer: (any Tokenizer)?,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount, log: @escaping (String) -> Void = { _ in }) {
        self.config = config
        self.locations = locations
        self.directory = directory
        self.mixture = mixture
        self.tokenizerPath = tokenizerPath
        self.tokenizer = tokenizer
        self.threads = threads
        self.log = log
    }

    public struct Summary: Sendable {
        public var steps: Int
        public var resumedFrom: Int?
        public var tokens: Int
        public var firstLoss: Double?
        public var finalLoss: Double
        public var heldOutLoss: Double?
        public var seconds: Double
        public var tokensPerSecond: Double
        public var modelDirectory: String
        /// The process's peak resident memory at the end of the stage (this rank's), for comparison with
        /// `kondate plan`'s memory per rank.
        public var peakResidentBytes: Int?
        public var json: JSON {
            .object([("steps", .int(steps)), ("resumed_from", resumedFrom.map(JSON.int) ?? .null), ("tokens", .int(tokens)),
                     ("first_loss", firstLoss.map(JSON.double) ?? .null), ("final_loss", .double(finalLoss)),
                     ("held_out_loss", heldOutLoss.map(JSON.double) ?? .null), ("seconds", .double(seconds)),
                     ("tokens_per_second", .double(tokensPerSecond)), ("model", .string(modelDirectory)),
                     ("peak_rss_bytes", peakResidentBytes.map(JSON.int) ?? .null)])
        }
    }

    func path(_ parts: String...) -> String { ([directory, "pretrain"] + parts).joined(separator: "/") }

    public func run() throws -> Summary {
        let p = self.config.pretrain
        let config = try ModelConfig(model: self.config.model, locations: locations)
        let microBatch = self.config.parallel.microBatch
        guard p.globalBatch % microBatch == 0 else {
            throw KondateError(.batchSplit, "pretrain.global_batch \(p.globalBatch) is not a multiple of parallel.micro_batch \(microBatch)",
                               at: locations.at("pretrain.global_batch"))
        }
        let loader = try BatchLoader(mixture: mixture, globalBatch: p.globalBatch, microBatch: microBatch)
        let groups = distributed?.groups
        let leader = distributed?.isLeader ?? true
        if let groups, loader.microBatchesPerStep % groups.data.size != 0 {
            throw KondateError(.batchSplit, "pretrain.global_batch \(p.globalBatch) = \(loader.microBatchesPerStep) micro-batches of \(microBatch), which " +
                               "\(groups.data.size) data-parallel ranks cannot share; make it a multiple of micro_batch × \(groups.data.size)",
                               at: locations.at("pretrain.global_batch"))
        }
        Kernels.setMatmulThreads(threads)
        let options = TrainingOptions(
            schedule: LearningRateSchedule(p.schedule, lr: p.lr, steps: p.steps),
            adamw: AdamW.Hyperparameters(beta1: Float(p.beta1), beta2: Float(p.beta2), eps: Float(p.eps),
                                         weightDecay: Float(p.weightDecay), decayNormsAndBiases: p.decayNormsAndBiases),
            gradClip: p.gradClip, nanPolicy: TrainingOptions.NaNPolicy(p.nanPolicy), dropoutSeed: UInt64(self.config.seed))
        let backend = try self.config.backend()
        if leader, let fallback = backend.fallback { log("pretrain: warning: \(fallback)") }
        let model: Transformer
        do {
            model = try backend.makeModel(config: config, shard: groups?.shard ?? .whole, tensorGroup: groups?.tensor,
                                          recompute: self.config.parallel.recompute,
                                          dropout: DropoutRates(hidden: Float(self.config.model.dropout), attention: Float(self.config.model.attentionDropout)))
        } catch {
            throw KondateError(.tensorSplit, "\(error.description) (the layout is tensor \(groups?.tensor.size ?? 1) × pipeline \(groups?.pipeline.size ?? 1))",
                               at: locations.at("parallel"))
        }
        model.initialize(seed: UInt64(self.config.seed))
        let trainer = Trainer(model: model, options: options, groups: groups)
        let fm = FileManager.default
        try fm.createDirectory(atPath: path("checkpoints"), withIntermediateDirectories: true)

        var resumedFrom: Int?
        var firstLoss: Double?, lastLoss = Double.nan, heldOut: Double?
        if let latest = try DistributedContext.agreedCheckpoint(path("checkpoints"), distributed, stage: "pretrain") {
            do {
                let state = try Checkpoint.restore(latest.path, into: trainer)
                lastLoss = state.extra["loss"]?.doubleValue ?? .nan
                firstLoss = state.extra["first_loss"]?.doubleValue
            } catch {
                throw KondateError(.checkpointFile, "cannot resume from \(latest.path): \(error); delete it to resume from the previous checkpoint")
            }
            resumedFrom = trainer.step
            log("pretrain: resuming from \(latest.path) (step \(trainer.step))")
        }
        let metricsPath = path("metrics.jsonl")
        if resumedFrom == nil && leader { try? fm.removeItem(atPath: metricsPath) }
        let metrics = leader ? try MetricsLog(path: metricsPath, truncateAfterStep: resumedFrom, tensorboard: path()) : nil

        log("pretrain: \(config.arch.rawValue) \(Format.grouped(ParameterLayout(config).count)) parameters, \(p.steps) steps × \(p.globalBatch) × \(mixture.seqLen) tokens, " +
            "\(loader.microBatchesPerStep) micro-batch\(loader.microBatchesPerStep == 1 ? "" : "es") of \(microBatch); \(backend.rawValue): \(backend.execution)" +
            (self.config.parallel.recompute == .full ? "; full activation recomputation" : ""))
        if let distributed {
            let l = distributed.layout
            log("pretrain: \(distributed.world.size) ranks: tensor \(l.tensor) × pipeline \(l.pipeline) × data \(l.data)" +
                (groups!.zero ? ", ZeRO-\(groups!.zeroStage)" : "") + ", \(threads) thread\(threads == 1 ? "" : "s") each")
        }
        let fault = Self.injectedFault(rank: distributed?.rank)
        let started = Date()
        var windowTokens = 0, windowSeconds = 0.0, windowSteps = 0
        let stopAfter = StopRequest.stopAfterStep(stage: "pretrain")
        DistributedContext.watchCollectives(distributed)
        defer { DistributedContext.stopWatchingCollectives() }
        while trainer.step < p.steps {
            let step = trainer.step
            DistributedContext.hangIfInjected(rank: distributed?.rank, step: step)
            let batches = (0..<loader.microBatchesPerStep).map { micro -> MicroBatch in
                let b = loader.batch(step: step, micro: micro)
                return MicroBatch(tokens: b.tokens, targets: b.targets, batch: microBatch)
            }
            if fault == step {
                FileHandle.standardError.write(Data(("kondate: rank \(distributed?.rank ?? 0): KONDATE_FAULT_KILL_RANK kills this rank at step \(step) " +
                                                     "(unix time \(Date().timeIntervalSince1970))\n").utf8))
                kill(getpid(), SIGKILL)
            }
            let report = try trainer.step(batches, seq: mixture.seqLen)
            if let progress {
                let stepsThisRun = trainer.step - (resumedFrom ?? 0)
                progress(ProgressText.line(stage: "pretrain", step: trainer.step, total: p.steps, loss: report.loss, stepsThisRun: stepsThisRun,
                                           tokens: stepsThisRun * p.globalBatch * mixture.seqLen, seconds: Date().timeIntervalSince(started)))
            }
            if firstLoss == nil { firstLoss = report.loss }
            lastLoss = report.loss
            windowTokens += report.tokens
            windowSeconds += report.seconds
            windowSteps += 1
            if report.skipped { log("pretrain: step \(step + 1) skipped (loss \(report.loss), grad norm \(report.gradNorm))") }
            let done = trainer.step
            if done % p.logInterval == 0 || done == p.steps {
                let throughput = Double(windowTokens) / max(windowSeconds, 1e-9)
                var entries: [(String, JSON)] = [("step", .int(done)), ("loss", .double(report.loss)), ("lr", .double(report.lr)),
                                                 ("grad_norm", .double(report.gradNorm)), ("tokens", .int(done * p.globalBatch * mixture.seqLen)),
                                                 ("step_seconds", .double(windowSeconds / Double(max(1, windowSteps)))),
                                                 ("tokens_per_second", .double(throughput)), ("skipped", .bool(report.skipped))]
                if groups != nil { entries.append(("communication_seconds", .double(trainer.lastCommunicationSeconds))) }
                try metrics?.append(.object(entries))
                log("pretrain: step \(done)/\(p.steps)  loss \(Format.fixed(report.loss, 4))  lr \(String(format: "%.2e", report.lr))  " +
                    "grad norm \(Format.fixed(report.gradNorm, 3))  \(Format.grouped(Int(throughput))) tokens/s")
                windowTokens = 0
                windowSeconds = 0
                windowSteps = 0
            }
            if let interval = p.evalInterval, done % interval == 0 || done == p.steps, !mixture.validation.isEmpty {
                heldOut = try evaluate(trainer, iters: p.evalIters, microBatch: microBatch)
                try metrics?.append(.object([("step", .int(done)), ("held_out_loss", .double(heldOut!))]))
                log("pretrain: step \(done) held-out loss \(Format.fixed(heldOut!, 4))")
            }
            func save() throws -> String {
                try Checkpoint.save(trainer, extra: .object([("loader", .object([("next_step", .int(done))])), ("loss", .double(report.loss)),
                                                             ("first_loss", firstLoss.map(JSON.double) ?? .null)]),
                                    root: path("checkpoints"), keep: p.checkpointKeep)
            }
            var saved: String?
            if done % p.checkpointEvery == 0 || done == p.steps { saved = try save() }
            StopRequest.checkStopAfter(stopAfter, step: done)
            if let signal = DistributedContext.agreedStop(distributed) {
                let checkpoint = try saved ?? save()
                log("pretrain: stopped by \(signal) after step \(done)/\(p.steps); checkpoint \(checkpoint)")
                throw StageInterrupted(stage: "pretrain", step: done, checkpoint: checkpoint, signal: signal)
            }
        }
        if heldOut == nil, !mixture.validation.isEmpty { heldOut = try evaluate(trainer, iters: p.evalIters, microBatch: microBatch) }
        DistributedContext.stopWatchingCollectives()
        let modelDirectory = path("model")
        if groups == nil {
            try export(model, to: modelDirectory)
        } else if leader {
            // The whole model, assembled from the final (sharded) checkpoint.
            guard let final = try Checkpoint.list(path("checkpoints")).last, final.step == p.steps else {
                throw KondateError(.checkpointFile, "pretrain: the final checkpoint is missing; run the same command again")
            }
            let whole = try backend.makeModel(config: config)
            try Checkpoint.restoreParameters(final.path, into: whole)
            try export(whole, to: modelDirectory)
        }
        let seconds = Date().timeIntervalSince(started)
        let trainedTokens = (p.steps - (resumedFrom ?? 0)) * p.globalBatch * mixture.seqLen
        let summary = Summary(steps: p.steps, resumedFrom: resumedFrom, tokens: p.steps * p.globalBatch * mixture.seqLen, firstLoss: firstLoss,
                              finalLoss: lastLoss, heldOutLoss: heldOut, seconds: seconds,
                              tokensPerSecond: Double(trainedTokens) / max(seconds, 1e-9), modelDirectory: modelDirectory,
                              peakResidentBytes: ProcessMemory.peakResidentBytes())
        if leader { try AtomicFile.write(Data((summary.json.rendered() + "\n").utf8), to: path("summary.json")) }
        return summary
    }

    /// `KONDATE_FAULT_KILL_RANK=R:STEP` kills world rank R with SIGKILL as it starts step STEP (0-based),
    /// so tests can check that a dead rank ends the job instead of hanging it.
    static func injectedFault(rank: Int?) -> Int? {
        guard let rank, let text = ProcessInfo.processInfo.environment["KONDATE_FAULT_KILL_RANK"] else { return nil }
        let parts = text.split(separator: ":").compactMap { Int($0) }
        return parts.count == 2 && parts[0] == rank ? parts[1] : nil
    }

    /// Mean loss over the first `iters` micro-batches of held-out samples (all sources, in order).
    func evaluate(_ trainer: Trainer, iters: Int, microBatch: Int) throws -> Double {
        var samples: [[Int32]] = []
        outer: for source in mixture.validation {
            for k in 0..<source.count {
                samples.append(source.sample(k))
                if samples.count >= iters * microBatch { break outer }
            }
        }
        var batches: [MicroBatch] = []
        var i = 0
        while i < samples.count {
            batches.append(MicroBatch(samples: Array(samples[i..<min(samples.count, i + microBatch)])))
            i += microBatch
        }
        return try trainer.evaluate(batches, seq: mixture.seqLen)
    }

    func export(_ model: Transformer, to dir: String) throws {
        var extras = HFModel.Extras(specialTokens: config.specialTokens, tokenizerFile: tokenizerPath)
        if let tokenizer {
            func id(_ role: String) -> Int? { tokenizer.id(forRole: role, declared: config.specialTokens).map(Int.init) }
            extras.bosTokenID = id("bos")
            extras.eosTokenID = id("eos")
            extras.padTokenID = id("pad")
        }
        try HFModel.export(model, to: dir, extras: extras)
    }
}
