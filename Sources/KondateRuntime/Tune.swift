import Foundation
import KondateCorpus
import KondateKernels
import KondateModel
import KondatePlan
import KondateRecipe
import KondateSupport
import KondateTokenizers
import KondateTraining
import KondateTune

/// A `tune.<name>` stage: full fine-tuning on instruction data, as llm-jp-sft does it (AdamW with the
/// Hugging Face Trainer's betas (0.9, 0.999) and ε 1e-8, gradient clipping at 1.0, warm-up ratio and
/// cosine decay from the recipe), on the CPU runtime.
///
/// Data: every dataset's examples, each repeated `epochs × weight` times (a fractional part takes a
/// prefix), rendered with the stage's template and loss mask, tokenized (`TuneTokenizer`), shuffled
/// per stage epoch from the recipe seed, then one row per example or packed rows. Steps:
/// ⌈rows × stage epochs / global batch⌉.
///
/// Outputs under `directory/tune/<name>/`: `checkpoints/step_NNNNNNNN/` (every `checkpoint.every` steps,
/// a tenth of the stage by default, and at the end; the newest `checkpoint.keep` are kept), `model/`
/// (Hugging Face directory with the tokenizer), `metrics.jsonl`, `summary.json`. The stage starts from
/// `pretrain` (its exported model), another tune stage, or `hf:PATH`.
///
/// Resume: the rows are rebuilt from the recipe (deterministic), so a stage that finds a verified
/// checkpoint restores the model, AdamW state and step from it and continues, ending with the weights
/// an uninterrupted run gives, bit for bit. Checkpoints made from another starting model or other
/// rows (the starting stage was re-trained, the data or batch changed) are removed and the stage
/// starts over. A stage whose newest checkpoint is at its last step only re-exports the model. A
/// `StopRequest` (SIGINT, SIGTERM) stops the stage after the current step with a checkpoint there
/// (`StageInterrupted`).
public struct TuneStage {
    public var config: TuneConfig
    public var locations: RecipeLocations
    public var stage: Recipe.TuneStage { config.stage }
    public var directory: String
    public var tokenizerPath: String?
    public var threads: Int
    public var log: (String) -> Void
    /// Told after every step (a live line on a terminal).
    public var progress: ((String) -> Void)?
    /// The job's ranks under mpirun: every rank trains its part of the layout; the leader alone logs,
    /// writes metrics, the summary and the exported model.
    public var distributed: DistributedContext?

    public init(config: TuneConfig, locations: RecipeLocations, directory: String, tokenizerPath: String?,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount, log: @escaping (String) -> Void = { _ in }) {
        self.config = config
        self.locations = locations
        self.directory = directory
        self.tokenizerPath = tokenizerPath
        self.threads = threads
        self.log = log
    }

    public struct Summary: Sendable {
        public var examples: Int, rows: Int, steps: Int, trainedTokens: Int
        /// The checkpoint step the run continued from (equal to `steps`: the stage was already complete).
        public var resumedFrom: Int?
        public var firstLoss: Double?, finalLoss: Double, seconds: Double
        public var modelDirectory: String
        public var json: JSON {
            .object([("examples", .int(examples)), ("rows", .int(rows)), ("steps", .int(steps)), ("resumed_from", resumedFrom.map(JSON.int) ?? .null),
                     ("trained_tokens", .int(trainedTokens)), ("first_loss", firstLoss.map(JSON.double) ?? .null),
                     ("final_loss", .double(finalLoss)), ("seconds", .double(seconds)), ("model", .string(modelDirectory))])
        }
    }

    func path(_ parts: String...) -> String { ([directory, "tune", stage.name] + parts).joined(separator: "/") }
    func at(_ key: String) -> SourceLocation? { locations.at("tune.\(stage.name).\(key)") }

    /// The model directory a `from:` names.
    func sourceModel() throws -> String {
        switch config.start {
        case let .huggingFace(path): path.resolved
        case let .stage(name): RunPaths.modelDirectory(checkpoint: name, runDirectory: directory)
        }
    }

    public func run() throws -> Summary {
        let started = Date()
        let source = try sourceModel()
        let backend = try config.backend()
        let whole: Transformer
        do { whole = try backend.loadModel(directory: source, recompute: config.parallel.recompute) } catch {
            throw KondateError(.stageInput, "tune.\(stage.name): cannot load the starting model from \(source): \(error) " +
                               "(run the '\(stage.from)' stage first)", at: at("from"))
        }
        let groups = distributed?.groups
        let leader = distributed?.isLeader ?? true
        if leader, let fallback = backend.fallback { log("tune.\(stage.name): warning: \(fallback)") }
        // Under mpirun each rank keeps its own slices of the starting model.
        let model: Transformer
        if let groups {
            do {
                model = try backend.makeModel(config: whole.config, shard: groups.shard, tensorGroup: groups.tensor, recompute: config.parallel.recompute)
            } catch {
                throw KondateError(.tensorSplit, "tune.\(stage.name): \(error.description) (the layout is tensor \(groups.tensor.size) × pipeline \(groups.pipeline.size))",
                                   at: locations.at("parallel"))
            }
            model.copySlices(of: whole)
        } else {
            model = whole
        }
        let tokenizerFile = tokenizerPath ?? source
        let tokenizer: any Tokenizer
        do { tokenizer = try TokenizerLoader.load(path: tokenizerFile) } catch {
            throw KondateError(.stageInput, "tune.\(stage.name): no tokenizer: \(error)", at: at("from"))
        }
        let data: TuneExamples
        do { data = try TuneExamples(config: config, tokenizer: tokenizer) } catch let e as KondateError {
            throw KondateError(e.code, e.message, at: e.location ?? at("template"))
        }
        let tok = data.tokenizer, template = data.template
        let maxLength = min(stage.maxLength, model.config.maxPositions)

        // Examples, repeated by epochs × weight.
        var examples: [TokenizedExample] = []
        for input in config.datasets {
            let dataset = input.dataset
            var tokenized: [TokenizedExample] = []
            try data.forEachExample(of: input, maxLength: maxLength) { _, t in tokenized.append(t) }
            let repeats = dataset.epochs * dataset.weight
            for _ in 0..<Int(repeats) { examples += tokenized }
            examples += tokenized.prefix(Int(((repeats - repeats.rounded(.down)) * Double(tokenized.count)).rounded()))
        }
        guard !examples.isEmpty else { throw KondateError(.inputData, "tune.\(stage.name): the datasets hold no examples", at: at("datasets")) }
        let truncated = examples.filter(\.truncated).count
        if truncated > 0 { log("tune.\(stage.name): \(truncated) example(s) truncated to \(maxLength + 1) tokens") }

        // Rows per stage epoch, shuffled per epoch from the seed.
        var rng = SplitMix64(seed: SplitMix64.finalize(UInt64(config.seed)) ^ UInt64(stage.name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
        let epochs = max(1, Int(stage.epochs.rounded(.up)))
        var rows: [(tokens: [Int32], targets: [Int32])] = []
        for epoch in 0..<epochs {
            var order = Array(examples.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.below(UInt64(i + 1)))) }
            let shuffled = order.map { examples[$0] }
            var epochRows = stage.packing ? tok.packedRows(shuffled, maxLength: maxLength) : tok.rows(shuffled, maxLength: maxLength)
            if epoch == epochs - 1, stage.epochs < Double(epochs) {
                epochRows = Array(epochRows.prefix(Int((stage.epochs - Double(epochs - 1)) * Double(epochRows.count))))
            }
            rows += epochRows
        }
        let microBatch = min(stage.microBatch, stage.globalBatch)
        guard stage.globalBatch % microBatch == 0 else {
            throw KondateError(.batchSplit, "tune.\(stage.name).global_batch \(stage.globalBatch) is not a multiple of micro_batch \(microBatch)", at: at("global_batch"))
        }
        let steps = max(1, (rows.count + stage.globalBatch - 1) / stage.globalBatch)
        Kernels.setMatmulThreads(threads)
        let nanPolicy = config.nanPolicy
        let trainer = Trainer(model: model, options: TrainingOptions(
            schedule: LearningRateSchedule(stage.schedule, lr: stage.lr, steps: steps),
            adamw: AdamW.Hyperparameters(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: Float(stage.weightDecay)), gradClip: 1.0,
            nanPolicy: TrainingOptions.NaNPolicy(nanPolicy)), groups: groups)
        log("tune.\(stage.name): \(examples.count) examples, \(rows.count) rows of \(maxLength) tokens, \(steps) steps × \(stage.globalBatch), " +
            "template \(template.name), \(stage.lossMask == .all ? "loss on all tokens" : "loss on responses"); \(backend.rawValue): \(backend.execution)")
        let fm = FileManager.default
        let checkpoints = path("checkpoints")
        try fm.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
        let every = stage.checkpointEvery ?? max(1, steps / 10)
        let name = "tune.\(stage.name)"

        // What the checkpoints must agree on to be continued: the starting weights and the rows.
        var hasher = SHA256()
        hasher.update(UnsafeRawBufferPointer(whole.parameters))
        let startDigest = hasher.finalize()
        var rowHasher = SHA256()
        for row in rows {
            row.tokens.withUnsafeBytes { rowHasher.update($0) }
            row.targets.withUnsafeBytes { rowHasher.update($0) }
        }
        let rowsDigest = rowHasher.finalize()

        var resumedFrom: Int?
        var firstLoss: Double?, lastLoss = Double.nan, trainedTokens = 0
        // The metric lines so far, also saved in each checkpoint: a resumed stage rewrites metrics.jsonl
        // from them, so it holds one line per step even if the file was removed or is ahead of the checkpoint.
        var metricLines: [JSON] = []
        if let latest = try DistributedContext.agreedCheckpoint(checkpoints, distributed, stage: "tune.\(stage.name)") {
            let state: Checkpoint.State
            do { state = try Checkpoint.state(latest.path) } catch {
                throw KondateError(.checkpointFile, "\(name): cannot resume from \(latest.path): \(error); delete it to resume from the previous checkpoint")
            }
            let extra = state.extra
            let mismatch = [("starting model", extra["start_model_sha256"]?.stringValue != startDigest),
                            ("rows", extra["rows_sha256"]?.stringValue != rowsDigest || extra["steps"]?.intValue != steps
                                || extra["global_batch"]?.intValue != stage.globalBatch),
                            ("model configuration", state.config != model.config)].filter(\.1).map(\.0)
            if !mismatch.isEmpty {
                log("\(name): the checkpoints under \(checkpoints) were made from another \(mismatch.joined(separator: " and ")); " +
                    "removing them and starting over")
                // Only the leader deletes (ranks racing to delete the same files fail); the others wait.
                if leader { for old in try Checkpoint.list(checkpoints) { try fm.removeItem(atPath: old.path) } }
                DistributedContext.barrier(distributed)
            } else {
                do { try Checkpoint.restore(latest.path, into: trainer) } catch {
                    throw KondateError(.checkpointFile, "\(name): cannot resume from \(latest.path): \(error); delete it to resume from the previous checkpoint")
                }
                firstLoss = extra["first_loss"]?.doubleValue
                lastLoss = extra["loss"]?.doubleValue ?? .nan
                trainedTokens = extra["trained_tokens"]?.intValue ?? 0
                resumedFrom = trainer.step
                metricLines = (extra["metrics"]?.arrayValue ?? []).filter { ($0["step"]?.intValue ?? .max) <= trainer.step }
                if trainer.step >= steps {
                    log("\(name): already complete (\(steps) steps in \(checkpoints)); exporting the model again")
                } else {
                    log("\(name): resuming from \(latest.path) (step \(trainer.step)/\(steps))")
                }
            }
        }
        let metricsPath = path("metrics.jsonl")
        var metrics: MetricsLog?
        if leader {
            try AtomicFile.write(Data(metricLines.map { $0.rendered(pretty: false) + "\n" }.joined().utf8), to: metricsPath)
            metrics = try MetricsLog(path: metricsPath, truncateAfterStep: nil, tensorboard: path())
        }
        let stopAfter = StopRequest.stopAfterStep(stage: name)
        let loopStarted = Date(), firstStep = trainer.step
        DistributedContext.watchCollectives(distributed)
        defer { DistributedContext.stopWatchingCollectives() }
        while trainer.step < steps {
            let step = trainer.step
            let slice = rows[(step * stage.globalBatch)..<min(rows.count, (step + 1) * stage.globalBatch)]
            var batches: [MicroBatch] = []
            var i = slice.startIndex
            while i < slice.endIndex {
                let part = slice[i..<min(slice.endIndex, i + microBatch)]
                batches.append(MicroBatch(tokens: part.flatMap(\.tokens), targets: part.flatMap(\.targets), batch: part.count))
                i += microBatch
            }
            let counted = batches.reduce(0) { $0 + $1.counted }
            if counted > 0 {
                let report: StepReport
                do { report = try trainer.step(batches, seq: maxLength) } catch {
                    // Every rank sees a collective error together: it ends their stage without aborting the job.
                    if distributed != nil && DistributedContext.isCollective(error) { throw error }
                    throw KondateError(.inputData, "\(name): \(error)")
                }
                trainedTokens += counted
                if let progress {
                    progress(ProgressText.line(stage: name, step: step + 1, total: steps, loss: report.loss, stepsThisRun: step + 1 - firstStep,
                                               tokens: (step + 1 - firstStep) * stage.globalBatch * maxLength,
                                               seconds: Date().timeIntervalSince(loopStarted)))
                }
                if firstLoss == nil { firstLoss = report.loss }
                lastLoss = report.loss
                let line: JSON = .object([("step", .int(step + 1)), ("loss", .double(report.loss)), ("lr", .double(report.lr)),
                                          ("grad_norm", .double(report.gradNorm)), ("trained_tokens", .int(counted))])
                metricLines.append(line)
                try metrics?.append(line)
                if (step + 1) % max(1, steps / 10) == 0 || step + 1 == steps {
                    log("\(name): step \(step + 1)/\(steps)  loss \(Format.fixed(report.loss, 4))  lr \(String(format: "%.2e", report.lr))")
                }
            } else {
                log("\(name): step \(step + 1) has no trained tokens (all truncated); skipped")
                trainer.step += 1
            }
            let done = trainer.step
            func save() throws -> String {
                try Checkpoint.save(trainer, extra: .object([
                    ("loss", .double(lastLoss)), ("first_loss", firstLoss.map(JSON.double) ?? .null), ("trained_tokens", .int(trainedTokens)),
                    ("steps", .int(steps)), ("global_batch", .int(stage.globalBatch)), ("rows_sha256", .string(rowsDigest)),
                    ("start_model_sha256", .string(startDigest)), ("metrics", .array(metricLines)),
                ]), root: checkpoints, keep: stage.checkpointKeep)
            }
            var saved: String?
            if done % every == 0 || done == steps { saved = try save() }
            StopRequest.checkStopAfter(stopAfter, step: done)
            if let signal = DistributedContext.agreedStop(distributed) {
                let checkpoint = try saved ?? save()
                log("\(name): stopped by \(signal) after step \(done)/\(steps); checkpoint \(checkpoint)")
                throw StageInterrupted(stage: name, step: done, checkpoint: checkpoint, signal: signal)
            }
        }
        DistributedContext.stopWatchingCollectives()
        let out = path("model")
        var extras = HFModel.Extras(specialTokens: config.specialTokens, tokenizerFile: TokenizerLoader.file(at: tokenizerFile))
        extras.bosTokenID = tok.bos.map(Int.init)
        extras.eosTokenID = Int(tok.eos)
        if groups == nil {
            try HFModel.export(model, to: out, extras: extras)
        } else if leader {
            // The whole model, assembled from the final (sharded) checkpoint.
            guard let final = try Checkpoint.list(checkpoints).last, final.step == steps else {
                throw KondateError(.checkpointFile, "\(name): the final checkpoint is missing; run the same command again")
            }
            try Checkpoint.restoreParameters(final.path, into: whole)
            try HFModel.export(whole, to: out, extras: extras)
        }
        let summary = Summary(examples: examples.count, rows: rows.count, steps: steps, trainedTokens: trainedTokens, resumedFrom: resumedFrom,
                              firstLoss: firstLoss, finalLoss: lastLoss, seconds: Date().timeIntervalSince(started), modelDirectory: out)
        if leader { try AtomicFile.write(Data((summary.json.rendered() + "\n").utf8), to: path("summary.json")) }
        return summary
    }
}

/// A tune stage's examples as the stage trains on them: read from each dataset's files, rendered with
/// the stage's template and loss mask and tokenized with its special tokens. `kondate tune-preview`
/// shows them from the same source.
public struct TuneExamples {
    public var config: TuneConfig
    public let tokenizer: TuneTokenizer
    public let template: PromptTemplate

    /// Throws `KondateError` when the special tokens or the template cannot be used.
    public init(config: TuneConfig, tokenizer: any Tokenizer) throws {
        self.config = config
        self.tokenizer = try TuneTokenizer(tokenizer: tokenizer, specialTokens: config.specialTokens)
        template = try PromptTemplate(config.template)
    }

    /// Calls `body` with every example of one dataset, in file and line order, and its tokens cut to
    /// `maxLength` (+1 for the shifted target).
    public func forEachExample(of input: TuneDatasetInput, maxLength: Int,
                               _ body: (InstructionExample, TokenizedExample) throws -> Void) throws {
        let trainOnInput = config.stage.lossMask == .all
        for file in try DocumentReader.expand(input.paths) {
            for example in try InstructionData.read(path: file, format: input.dataset.format) {
                try body(example, tokenizer.tokenize(try template.render(example, trainOnInput: trainOnInput), maxLength: maxLength))
            }
        }
    }
}

extension PromptTemplate {
    /// The template a stage names: a built-in one, or one the recipe writes.
    init(_ ref: TemplateRef) throws {
        switch ref {
        case let .builtin(name): self = try PromptTemplate.builtin(name)
        case let .recipe(t): self.init(recipeTemplate: t)
        }
    }
}
