import Foundation
import KondateCorpus
import KondateData
import KondateRecipe
import KondateSupport
import KondateTensor
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
/// Outputs under `directory/tune/<name>/`: `model/` (Hugging Face directory with the tokenizer),
/// `metrics.jsonl`, `summary.json`. The stage starts from `pretrain` (its exported model), another tune
/// stage, or `hf:PATH`. It has no intermediate checkpoints: an interrupted stage starts over.
public struct TuneStage {
    public var recipe: Recipe
    public var stage: Recipe.TuneStage
    public var directory: String
    public var tokenizerPath: String?
    public var threads: Int
    public var log: (String) -> Void

    public init(recipe: Recipe, stage: Recipe.TuneStage, directory: String, tokenizerPath: String?,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount, log: @escaping (String) -> Void = { _ in }) {
        self.recipe = recipe
        self.stage = stage
        self.directory = directory
        self.tokenizerPath = tokenizerPath
        self.threads = threads
        self.log = log
    }

    public struct Summary: Sendable {
        public var examples: Int, rows: Int, steps: Int, trainedTokens: Int
        public var firstLoss: Double?, finalLoss: Double, seconds: Double
        public var modelDirectory: String
        public var json: JSON {
            .object([("examples", .int(examples)), ("rows", .int(rows)), ("steps", .int(steps)), ("trained_tokens", .int(trainedTokens)),
                     ("first_loss", firstLoss.map(JSON.double) ?? .null), ("final_loss", .double(finalLoss)), ("seconds", .double(seconds)),
                     ("model", .string(modelDirectory))])
        }
    }

    func path(_ parts: String...) -> String { ([directory, "tune", stage.name] + parts).joined(separator: "/") }
    func at(_ key: String) -> SourceLocation? { recipe.tree.at("tune.\(stage.name).\(key)")?.location }

    /// The model directory a `from:` names.
    func sourceModel() throws -> String {
        let from = stage.from
        if from.hasPrefix("hf:") { return PathCheck.resolve(String(from.dropFirst(3)), relativeTo: at("from")) }
        if from == "pretrain" { return directory + "/pretrain/model" }
        return directory + "/tune/\(from)/model"
    }

    public func run() throws -> Summary {
        let started = Date()
        let source = try sourceModel()
        let model: Transformer
        do { model = try HFModel.load(directory: source) } catch {
            throw RuntimeError("tune.\(stage.name): cannot load the starting model from \(source): \(error) " +
                               "(run the '\(stage.from)' stage first)", at: at("from"))
        }
        let tokenizerFile = tokenizerPath ?? source
        let tokenizer: any Tokenizer
        do { tokenizer = try TokenizerLoader.load(path: tokenizerFile) } catch {
            throw RuntimeError("tune.\(stage.name): no tokenizer: \(error)", at: at("from"))
        }
        let tok: TuneTokenizer
        let template: PromptTemplate
        do {
            tok = try TuneTokenizer(tokenizer: tokenizer, specialTokens: recipe.tokenizer?.specialTokens ?? [:])
            template = try PromptTemplate.named(stage.template, in: recipe)
        } catch let e as TuneDataError { throw RuntimeError(e.message, at: at("template")) }
        let maxLength = min(stage.maxLength, model.config.maxPositions)

        // Examples, repeated by epochs × weight.
        var examples: [TokenizedExample] = []
        for dataset in stage.datasets {
            var tokenized: [TokenizedExample] = []
            let format = InstructionData.Format(rawValue: dataset.format) ?? .alpaca
            do {
                for file in try DocumentReader.expand(recipe: recipe, at: "tune.\(stage.name).datasets.\(dataset.name).paths") {
                    for example in try InstructionData.read(path: file, format: format) {
                        tokenized.append(tok.tokenize(try template.render(example, trainOnInput: stage.lossMask == "all"), maxLength: maxLength))
                    }
                }
            } catch let e as TuneDataError { throw RuntimeError(e.message, at: e.location) } catch let e as CorpusError {
                throw RuntimeError(e.message, at: e.location)
            }
            let repeats = dataset.epochs * dataset.weight
            for _ in 0..<Int(repeats) { examples += tokenized }
            examples += tokenized.prefix(Int(((repeats - repeats.rounded(.down)) * Double(tokenized.count)).rounded()))
        }
        guard !examples.isEmpty else { throw RuntimeError("tune.\(stage.name): the datasets hold no examples", at: at("datasets")) }
        let truncated = examples.filter(\.truncated).count
        if truncated > 0 { log("tune.\(stage.name): \(truncated) example(s) truncated to \(maxLength + 1) tokens") }

        // Rows per stage epoch, shuffled per epoch from the seed.
        var rng = SplitMix64(seed: SplitMix64.finalize(UInt64(recipe.seed)) ^ UInt64(stage.name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
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
            throw RuntimeError("tune.\(stage.name).global_batch \(stage.globalBatch) is not a multiple of micro_batch \(microBatch)", at: at("global_batch"))
        }
        let steps = max(1, (rows.count + stage.globalBatch - 1) / stage.globalBatch)
        BLAS.setThreads(threads)
        let trainer = Trainer(model: model, options: TrainingOptions(
            schedule: LearningRateSchedule(stage.schedule, lr: stage.lr, steps: steps),
            adamw: AdamW.Hyperparameters(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: Float(stage.weightDecay)), gradClip: 1.0,
            nanPolicy: TrainingOptions.NaNPolicy(rawValue: recipe.pretrain?.nanPolicy ?? "stop") ?? .stop))
        log("tune.\(stage.name): \(examples.count) examples, \(rows.count) rows of \(maxLength) tokens, \(steps) steps × \(stage.globalBatch), " +
            "template \(template.name), \(stage.lossMask == "all" ? "loss on all tokens" : "loss on responses")")
        try FileManager.default.createDirectory(atPath: path(), withIntermediateDirectories: true)
        let metrics = try MetricsLog(path: path("metrics.jsonl"), truncateAfterStep: nil)
        var firstLoss: Double?, lastLoss = Double.nan, trainedTokens = 0
        for step in 0..<steps {
            let slice = rows[(step * stage.globalBatch)..<min(rows.count, (step + 1) * stage.globalBatch)]
            var batches: [MicroBatch] = []
            var i = slice.startIndex
            while i < slice.endIndex {
                let part = slice[i..<min(slice.endIndex, i + microBatch)]
                batches.append(MicroBatch(tokens: part.flatMap(\.tokens), targets: part.flatMap(\.targets), batch: part.count))
                i += microBatch
            }
            let counted = batches.reduce(0) { $0 + $1.counted }
            guard counted > 0 else {
                log("tune.\(stage.name): step \(step + 1) has no trained tokens (all truncated); skipped")
                trainer.step += 1
                continue
            }
            let report: StepReport
            do { report = try trainer.step(batches, seq: maxLength) } catch { throw RuntimeError("tune.\(stage.name): \(error)") }
            trainedTokens += counted
            if firstLoss == nil { firstLoss = report.loss }
            lastLoss = report.loss
            try metrics.append(.object([("step", .int(step + 1)), ("loss", .double(report.loss)), ("lr", .double(report.lr)),
                                        ("grad_norm", .double(report.gradNorm)), ("trained_tokens", .int(counted))]))
            if (step + 1) % max(1, steps / 10) == 0 || step + 1 == steps {
                log("tune.\(stage.name): step \(step + 1)/\(steps)  loss \(Format.fixed(report.loss, 4))  lr \(String(format: "%.2e", report.lr))")
            }
        }
        let out = path("model")
        var extras = HFModel.Extras(specialTokens: recipe.tokenizer?.specialTokens ?? [:], tokenizerFile: TokenizerLoader.file(at: tokenizerFile))
        extras.bosTokenID = tok.bos.map(Int.init)
        extras.eosTokenID = Int(tok.eos)
        try HFModel.export(model, to: out, extras: extras)
        let summary = Summary(examples: examples.count, rows: rows.count, steps: steps, trainedTokens: trainedTokens, firstLoss: firstLoss,
                              finalLoss: lastLoss, seconds: Date().timeIntervalSince(started), modelDirectory: out)
        try AtomicFile.write(Data((summary.json.rendered() + "\n").utf8), to: path("summary.json"))
        return summary
    }
}
