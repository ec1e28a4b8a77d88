import Foundation
import KondateCorpus
import KondateEval
import KondateModel
import KondatePlan
import KondateRecipe
import KondateSupport
import KondateTokenizers
import KondateTune

/// An `eval.<name>` stage: one suite run on each of its checkpoints (`pretrain` or tune stage names),
/// from the Hugging Face directories those stages exported.
///
/// Kinds:
/// - `llm-jp-eval`: llm-jp-eval v1.3 datasets, prompts (`few_shots`, `max_samples`, `prompt_template`,
///   `few_shots_template`), greedy generation up to each dataset's `output_length`, its post-processing,
///   metrics, categories and AVG (see `KondateEval.Evaluation`). `metrics`, when given, replaces the
///   datasets' own.
/// - `perplexity`: token-level loss on held-out text. JSON Lines (`text` field) or plain-text files are
///   tokenized document by document with EOS after each, as the corpus stages do; Megatron `.idx`/`.bin`
///   datasets are read as written. The stream is cut into windows of `model.seq_len + 1` tokens that
///   overlap by one (as pretraining samples are), at most `max_samples` windows per file; a file shorter
///   than one window is one shorter window. Reported: mean loss in nats per token and its exponential.
/// - `generation`: MT-Bench / Vicuna-QA question files (`GenerationSuite`), each turn rendered with the
///   suite's chat `template` as in tuning (BOS, the template's turns, EOS after earlier answers), answered
///   up to `max_new_tokens` at `temperature` (seeded by the recipe seed), written as FastChat answer
///   files; with a `judge`, every turn is rated through the OpenAI-compatible endpoint.
///
/// Outputs under `directory/eval/<suite>/<checkpoint>/`: `results.json`, and for generation suites
/// `<file>.answers.jsonl` and `<file>.judgments.jsonl`; `directory/eval/<suite>/summary.json` holds the
/// headline scores of every checkpoint.
///
/// A judge that cannot be reached or that fails does not stop the stage: the answers are kept, the
/// error is recorded in `results.json` and `Summary.errors`, and the other checkpoints and suites run.
public struct EvalStage {
    public var config: EvalConfig
    public var locations: RecipeLocations
    public var suite: Recipe.EvalSuite { config.suite }
    public var directory: String
    /// How results name dataset files (relative to the recipe's directory).
    public var portablePath: (String) -> String
    public var log: (String) -> Void

    public init(config: EvalConfig, locations: RecipeLocations, directory: String, portablePath: @escaping (String) -> String,
                log: @escaping (String) -> Void = { _ in }) {
        self.config = config
        self.locations = locations
        self.directory = directory
        self.portablePath = portablePath
        self.log = log
    }

    /// One checkpoint's outcome: headline scores by name (nil where not computed), the rows of the
    /// terminal table, and a problem that did not stop the stage (a failed judge).
    public struct Outcome: Sendable {
        public var checkpoint: String
        public var scores: [(name: String, value: Double?)]
        public var rows: [(label: String, value: String)]
        public var error: String?

        public var json: JSON {
            .object([("checkpoint", .string(checkpoint)),
                     ("scores", .object(scores.map { ($0.name, $0.value.map(JSON.double) ?? .null) })),
                     ("rows", .array(rows.map { .array([.string($0.label), .string($0.value)]) })),
                     ("error", error.map(JSON.string) ?? .null)])
        }

        public init(checkpoint: String, scores: [(name: String, value: Double?)], rows: [(label: String, value: String)], error: String?) {
            self.checkpoint = checkpoint
            self.scores = scores
            self.rows = rows
            self.error = error
        }

        public init?(json: JSON) {
            guard let checkpoint = json["checkpoint"]?.stringValue, case let .object(scores)? = json["scores"] else { return nil }
            self.checkpoint = checkpoint
            self.scores = scores.map { ($0.0, $0.1.doubleValue) }
            rows = (json["rows"]?.arrayValue ?? []).compactMap { row in
                guard let cells = row.arrayValue, cells.count == 2, let a = cells[0].stringValue, let b = cells[1].stringValue else { return nil }
                return (a, b)
            }
            error = json["error"]?.stringValue
        }
    }

    public struct Summary: Sendable {
        public var suite: String
        public var kind: String
        public var outcomes: [Outcome]
        /// Side by side: one row per score, one column per checkpoint.
        public var table: String { EvalStage.sideBySide(outcomes.map { ($0.checkpoint, $0.rows) }) }
        /// Problems that did not stop the stage (a failed judge).
        public var errors: [String] { outcomes.compactMap { o in o.error.map { "eval.\(suite) (\(o.checkpoint)): \($0)" } } }

        public var json: JSON {
            .object([("suite", .string(suite)), ("kind", .string(kind)),
                     ("checkpoints", .array(outcomes.map { o in
                         .object([("checkpoint", .string(o.checkpoint)), ("results", .string("\(o.checkpoint)/results.json")),
                                  ("scores", .object(o.scores.map { ($0.name, $0.value.map(JSON.double) ?? .null) })),
                                  ("error", o.error.map(JSON.string) ?? .null)])
                     })),
                     ("errors", .array(errors.map(JSON.string)))])
        }

        public init(suite: String, kind: String, outcomes: [Outcome]) {
            self.suite = suite
            self.kind = kind
            self.outcomes = outcomes
        }

        /// Writes `eval/<suite>/summary.json` under a run directory.
        public func write(runDirectory: String) throws {
            let dir = "\(runDirectory)/eval/\(suite)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try AtomicFile.write(Data((json.rendered() + "\n").utf8), to: dir + "/summary.json")
        }
    }

    func at(_ key: String) -> SourceLocation? { locations.at("eval.\(suite.name).\(key)") }
    func path(_ parts: String...) -> String { ([directory, "eval", suite.name] + parts).joined(separator: "/") }

    /// The dataset files of the suite.
    func datasetFiles() throws -> [String] {
        do { return try DocumentReader.expand(config.datasetPaths) } catch let e as KondateError {
            throw KondateError(e.code, "eval.\(suite.name): \(e.message)", at: e.location ?? at("datasets"))
        }
    }

    /// The suite on its checkpoint (the stage `eval.<suite>.<checkpoint>`), writing
    /// `eval/<suite>/<checkpoint>/`. `skipJudge` is an earlier judge failure of this suite: judging is
    /// then not tried again.
    public func run(skipJudge: String? = nil) throws -> Outcome {
        let checkpoint = config.checkpoint
        let files = try datasetFiles()
        let modelDirectory = RunPaths.modelDirectory(checkpoint: checkpoint, runDirectory: directory)
        let stageName = checkpoint == "pretrain" ? "pretrain" : "tune.\(checkpoint)"
        guard FileManager.default.fileExists(atPath: modelDirectory + "/config.json") else {
            throw KondateError(.stageInput, "eval.\(suite.name): checkpoint '\(checkpoint)' has no model at \(modelDirectory) (run the \(stageName) stage first)",
                               at: at("checkpoints"))
        }
        let sampler = Sampler(temperature: suite.temperature, seed: UInt64(config.seed))
        let generator: ModelTextGenerator
        do { generator = try ModelTextGenerator.load(directory: modelDirectory, sampler: sampler) } catch {
            throw KondateError(.stageInput, "eval.\(suite.name): cannot load checkpoint '\(checkpoint)' from \(modelDirectory): \(error)", at: at("checkpoints"))
        }
        try FileManager.default.createDirectory(atPath: path(checkpoint), withIntermediateDirectories: true)
        let started = Date()
        let outcome: Outcome
        switch suite.kind {
        case .llmJPEval: outcome = try llmJPEval(files: files, checkpoint: checkpoint, generator: generator)
        case .perplexity: outcome = try perplexity(files: files, checkpoint: checkpoint, generator: generator)
        case .generation: outcome = try generation(files: files, checkpoint: checkpoint, generator: generator, skipJudge: skipJudge)
        }
        log("eval.\(suite.name): \(checkpoint) done in \(Format.fixed(Date().timeIntervalSince(started), 1)) s")
        return outcome
    }

    // MARK: llm-jp-eval

    func llmJPEval(files: [String], checkpoint: String, generator: ModelTextGenerator) throws -> Outcome {
        var datasets: [EvalDataset]
        let prompt: EvalPrompt
        do {
            datasets = try EvalDataset.loadSuite(paths: files)
            prompt = try EvalPrompt(numFewShots: suite.fewShots, customPromptTemplate: suite.promptTemplate,
                                    customFewShotsTemplate: suite.fewShotsTemplate)
        } catch {
            throw KondateError(.inputData, "eval.\(suite.name): \(error)", at: at("datasets"))
        }
        for i in datasets.indices { datasets[i].file = portablePath(datasets[i].file) }
        if !suite.metrics.isEmpty {
            for i in datasets.indices {
                datasets[i].metricNames = suite.metrics.map(\.rawValue)
                datasets[i].metrics = try suite.metrics.map { name in
                    do { return try Metrics.metric(named: name.rawValue) } catch { throw KondateError(.inputData, "eval.\(suite.name).metrics: \(error)", at: at("metrics")) }
                }
                datasets[i].unsupportedMetrics = []
            }
        }
        var results: EvalResults
        do {
            results = try Evaluation.run(datasets: datasets, generator: generator, prompt: prompt, maxSamples: suite.maxSamples) { name, i, n in
                if i == n { log("eval.\(suite.name): \(checkpoint): \(name) \(n) samples generated") }
            }
        } catch let e as EvalError {
            throw KondateError(.inputData, "eval.\(suite.name): \(e)", at: at("datasets"))
        }
        results.truncatedPrompts = generator.truncatedPrompts
        try write(results.json(), to: path(checkpoint, "results.json"))
        var scores = [(String, Double?)]()
        for d in results.datasets { for m in d.metricOrder { scores.append(("\(d.name)_\(m)", d.scores[m])) } }
        for c in results.report.categories where c.score != nil { scores.append((c.name, c.score)) }
        scores.append(("AVG", results.report.average))
        let rows = scores.map { ($0.0, $0.1.map { Format.fixed($0, 4) } ?? "-") }
        return Outcome(checkpoint: checkpoint, scores: scores, rows: rows, error: nil)
    }

    // MARK: Perplexity

    /// The token stream of a file: documents with EOS after each, or a Megatron dataset as written;
    /// reading stops once `limit` tokens are there.
    static func tokens(file: String, tokenizer: any Tokenizer, eos: Int32, limit: Int) throws -> [Int32] {
        var stream = [Int32]()
        if file.hasSuffix(".idx") || file.hasSuffix(".bin") {
            let dataset = try IndexedDataset(prefix: String(file.dropLast(4)))
            for i in 0..<dataset.count where stream.count < limit { stream += dataset.tokens(i) }
            return stream
        }
        struct Enough: Error {}
        let format: DocumentReader.Format = file.hasSuffix(".jsonl") || file.hasSuffix(".jsonl.gz") ? .jsonl : .text
        var reader = DocumentReader(files: [file], format: format, onError: .fail)
        do {
            try reader.forEach { doc in
                stream += tokenizer.encode(doc.text)
                stream.append(eos)
                if stream.count >= limit { throw Enough() }
            }
        } catch is Enough {}
        return stream
    }

    func perplexity(files: [String], checkpoint: String, generator: ModelTextGenerator) throws -> Outcome {
        let model = generator.model
        let seq = model.config.maxPositions
        let windows = suite.maxSamples ?? Int.max / (seq + 1) - 1
        guard let eos = generator.endOfSequence ?? generator.tokenizer.specialIDs["eos"] else {
            throw KondateError(.inputData, "eval.\(suite.name): the model of '\(checkpoint)' has no end-of-sequence token to separate documents", at: at("checkpoints"))
        }
        var perFile = [JSON](), scores = [(String, Double?)](), rows = [(String, String)]()
        var totalLoss = 0.0, totalTokens = 0
        for file in files {
            let stream: [Int32]
            do { stream = try Self.tokens(file: file, tokenizer: generator.tokenizer, eos: eos, limit: windows * seq + 1) } catch {
                throw KondateError(.inputData, "eval.\(suite.name): \(error)", at: at("datasets"))
            }
            guard stream.count >= 2 else { throw KondateError(.inputData, "eval.\(suite.name): \(file) has fewer than two tokens to score", at: at("datasets")) }
            let t = min(seq, stream.count - 1)
            let count = min(windows, (stream.count - 1) / t)
            var lossSum = 0.0, scored = 0
            let batch = 4
            var w = 0
            while w < count {
                let b = min(batch, count - w)
                var tokens = [Int32](), targets = [Int32]()
                for r in w..<(w + b) {
                    tokens += stream[(r * t)..<(r * t + t)]
                    targets += stream[(r * t + 1)..<(r * t + t + 1)]
                }
                guard let (loss, n) = try model.forward(tokens: tokens, targets: targets, batch: b, seq: t) else { break }
                lossSum += Double(loss) * Double(n)
                scored += n
                w += b
            }
            let mean = lossSum / Double(max(scored, 1))
            totalLoss += lossSum
            totalTokens += scored
            let name = (file as NSString).lastPathComponent
            perFile.append(.object([("file", .string(portablePath(file))), ("windows", .int(count)), ("tokens", .int(scored)),
                                    ("loss", .double(mean)), ("perplexity", .double(exp(mean)))]))
            scores.append(("\(name)_perplexity", exp(mean)))
            rows.append(("\(name) perplexity", Format.fixed(exp(mean), 3)))
            rows.append(("\(name) loss", Format.fixed(mean, 4)))
            log("eval.\(suite.name): \(checkpoint): \(name) \(scored) tokens, loss \(Format.fixed(mean, 4))")
        }
        let mean = totalLoss / Double(max(totalTokens, 1))
        if files.count > 1 {
            scores.append(("perplexity", exp(mean)))
            rows.append(("all perplexity", Format.fixed(exp(mean), 3)))
        }
        try write(.object([("kind", .string("perplexity")), ("checkpoint", .string(checkpoint)), ("seq_len", .int(seq)),
                           ("tokens", .int(totalTokens)), ("loss", .double(mean)), ("perplexity", .double(exp(mean))),
                           ("files", .array(perFile))]), to: path(checkpoint, "results.json"))
        return Outcome(checkpoint: checkpoint, scores: scores, rows: rows, error: nil)
    }

    // MARK: Generation

    func generation(files: [String], checkpoint: String, generator: ModelTextGenerator, skipJudge: String?) throws -> Outcome {
        let template: PromptTemplate
        let tok: TuneTokenizer
        do {
            // A generation suite always has a template (the schema derives one).
            template = try PromptTemplate(config.template ?? .builtin(RecipeSchema.defaultTemplate))
            tok = try TuneTokenizer(tokenizer: generator.tokenizer, specialTokens: config.specialTokens)
        } catch let e as KondateError { throw KondateError(.template, "eval.\(suite.name): \(e.message)", at: at("template")) }
        let judge: OpenAICompatibleJudge? = suite.judge.map { j in
            OpenAICompatibleJudge(endpoint: j.endpoint, model: j.model, apiKey: ProcessInfo.processInfo.environment[j.apiKeyEnv])
        }
        var perFile = [JSON](), scores = [(String, Double?)](), rows = [(String, String)]()
        var judgeError = skipJudge.map { "judging skipped after an earlier failure: \($0)" }
        var everyAnswer = [GenerationAnswer]()
        for file in files {
            let questions: [GenerationQuestion]
            do { questions = try GenerationSuite.load(path: file) } catch { throw KondateError(.inputData, "eval.\(suite.name): \(error)", at: at("datasets")) }
            let stem = Self.stem(file)
            var answers: [GenerationAnswer]
            do {
                answers = try GenerationSuite.answer(questions, maxQuestions: suite.maxSamples) { userTurns, earlier in
                    var turns = [InstructionExample.Turn]()
                    for (i, user) in userTurns.enumerated() {
                        turns.append(.init(.user, user))
                        turns.append(.init(.assistant, i < earlier.count ? earlier[i] : ""))
                    }
                    let example = userTurns.count == 1
                        ? InstructionExample(instruction: userTurns[0], input: "", output: "", origin: SourceLocation(file: file, line: 1, column: 1))
                        : InstructionExample(turns: turns, origin: SourceLocation(file: file, line: 1, column: 1))
                    var segments = try template.render(example)
                    // The answer to write is the last, empty assistant turn: drop it and its EOS.
                    while let last = segments.last, last.trained { segments.removeLast() }
                    let ids = tok.tokenize(segments, maxLength: Int.max - 1).ids
                    return try generator.generate(tokens: ids, maxNewTokens: suite.maxNewTokens)
                } progress: { i, n in
                    if i == n { log("eval.\(suite.name): \(checkpoint): \(stem) answering question \(n) of \(n)") }
                }
            } catch let e as KondateError {
                throw KondateError(e.code, "eval.\(suite.name): \(e.message)", at: e.location ?? at("template"))
            }
            try write(GenerationSuite.answersJSONL(answers, modelID: checkpoint), to: path(checkpoint, "\(stem).answers.jsonl"))
            if let judge, judgeError == nil {
                do {
                    try GenerationSuite.judge(&answers, judge: judge) { i, n in
                        if i == n { log("eval.\(suite.name): \(checkpoint): \(stem) judged \(n) answers") }
                    }
                    try write(GenerationSuite.judgmentsJSONL(answers, modelID: checkpoint, judgeModel: judge.model),
                              to: path(checkpoint, "\(stem).judgments.jsonl"))
                } catch {
                    judgeError = "\(error) (eval.\(suite.name).judge)"
                }
            }
            let fileScores = GenerationScores(answers)
            perFile.append(.object([("file", .string(portablePath(file))), ("answers", .string("\(stem).answers.jsonl")),
                                    ("scores", fileScores.json)]))
            rows.append(("\(stem) answered", String(answers.count)))
            if judge != nil {
                scores.append(("\(stem)_judge_score", fileScores.mean))
                rows.append(("\(stem) judge_score", fileScores.mean.map { Format.fixed($0, 2) } ?? "-"))
            }
            everyAnswer += answers
        }
        let overall = GenerationScores(everyAnswer)
        if judge != nil, files.count > 1 {
            scores.append(("judge_score", overall.mean))
            rows.append(("all judge_score", overall.mean.map { Format.fixed($0, 2) } ?? "-"))
        }
        try write(.object([("kind", .string("generation")), ("checkpoint", .string(checkpoint)), ("template", .string(template.name)),
                           ("max_new_tokens", .int(suite.maxNewTokens)), ("temperature", .double(suite.temperature)),
                           ("judge", suite.judge.map { .object([("endpoint", .string($0.endpoint)), ("model", .string($0.model))]) } ?? .null),
                           ("judge_error", judgeError.map(JSON.string) ?? .null),
                           ("scores", overall.json), ("files", .array(perFile))]), to: path(checkpoint, "results.json"))
        return Outcome(checkpoint: checkpoint, scores: scores, rows: rows, error: judgeError)
    }

    static func stem(_ file: String) -> String {
        var name = (file as NSString).lastPathComponent
        for ext in [".jsonl", ".json"] where name.hasSuffix(ext) { name.removeLast(ext.count) }
        return name
    }

    // MARK: Output

    func write(_ json: JSON, to file: String) throws { try write(json.rendered() + "\n", to: file) }
    func write(_ text: String, to file: String) throws { try AtomicFile.write(Data(text.utf8), to: file) }

    /// Rows of every checkpoint, merged by label in first-seen order, one column per checkpoint.
    static func sideBySide(_ sections: [(checkpoint: String, rows: [(label: String, value: String)])]) -> String {
        var labels = [String]()
        for s in sections { for row in s.rows where !labels.contains(row.label) { labels.append(row.label) } }
        let widths = [max(10, labels.map(\.count).max() ?? 0) + 2] + sections.map { max(8, $0.checkpoint.count) + 2 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0 + String(repeating: " ", count: max(0, $1 - $0.count)) }.joined()
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = [line([""] + sections.map(\.checkpoint))]
        for label in labels {
            out.append(line([label] + sections.map { s in s.rows.first { $0.label == label }?.value ?? "" }))
        }
        return out.joined(separator: "\n") + "\n"
    }
}
