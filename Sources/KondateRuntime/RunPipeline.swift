import Foundation
import KondateCorpus
import KondateTokenizers
import KondatePlan
import KondateRecipe
import KondateSupport

/// Executes a recipe's execution graph in a run directory, stage by stage, through the content-addressed
/// `ArtifactStore`:
///
/// - every stage's key is computed first (`StageKeys`), from the recipe and the input files alone;
/// - a stage whose key has a record and whose outputs verify is skipped (`cached`);
/// - a stage with a record whose outputs no longer verify (a deleted or corrupted file) is recomputed,
///   with a warning naming the file;
/// - a stage without a record runs; pretraining and tuning resume from their last checkpoint in the
///   store directory of the same key;
/// - `manifest.json` is rewritten after every stage, so an interrupted run still describes itself.
public struct RunPipeline {
    public struct Options: Sendable {
        /// Stop after this stage group (`corpus`, `pretrain`, `tune`, `eval`) or stage id.
        public var until: String?
        /// Run only these stages (ids or prefixes such as `eval.tasks`); their inputs must be complete.
        public var only: [String] = []
        /// Recompute these stages (ids, prefixes, or `all`) even when their outputs verify.
        public var force: [String] = []
        public var fullHash = false
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        /// The command line and `--set` overrides, for the manifest.
        public var command: [String] = []
        public var overrides: [String] = []
        public var kondateVersion = "unknown"
        /// The git commit of the Kondate source the binary was built from, when known.
        public var kondateCommit: String?
        /// The ranks and layout under mpirun, for the manifest (nil: one process).
        public var layout: JSON?
        /// The MPI job under mpirun (library, ranks), for the manifest (nil: one process, MPI not used).
        public var mpi: JSON?
        public init() {}
    }

    public enum Status: String, Sendable { case ran, cached, notRun = "not run" }

    public struct StageResult: Sendable {
        public var plan: StagePlan
        public var status: Status
        public var record: StageRecord?
        /// Why a stage was recomputed or not run.
        public var note: String?
    }

    public struct Outcome: Sendable {
        public var stages: [StageResult]
        public var evalSummaries: [EvalStage.Summary]
        /// Failures that did not stop the run (a judge that could not be reached).
        public var problems: [String]
        public var manifest: String
    }

    public var recipe: Recipe
    public var directory: String
    public var options: Options
    public var log: (String) -> Void
    /// The job's ranks when run under mpirun (this process is the leader, world rank 0).
    public var distributed: DistributedContext?
    /// Told about each stage as it is decided (the CLI prints these lines).
    public var report: (StageResult) -> Void
    /// Told after every training step (the CLI shows it as a live line on a terminal).
    public var progress: ((String) -> Void)?

    public init(recipe: Recipe, directory: String, options: Options, log: @escaping (String) -> Void = { _ in },
                report: @escaping (StageResult) -> Void = { _ in }) {
        self.recipe = recipe
        self.directory = directory
        self.options = options
        self.log = log
        self.report = report
    }

    /// Stage groups in execution order, for `--until`.
    static let groups = ["corpus", "pretrain", "tune", "eval", "release"]

    /// Whether `pattern` (an id, a dotted prefix of ids, a group, or `all`) names the stage.
    static func matches(_ pattern: String, _ plan: StagePlan) -> Bool {
        pattern == "all" || pattern == plan.id || plan.id.hasPrefix(pattern + ".") || plan.kind.group == pattern
    }

    public func run() throws -> Outcome {
        let lock = try RunLock(directory: directory, command: options.command.joined(separator: " "))
        defer { withExtendedLifetime(lock) {} }
        try checkRunDirectory()
        let plans = try StageKeys.plan(recipe: recipe, fullHash: options.fullHash)
        for pattern in options.only + options.force where !plans.contains(where: { Self.matches(pattern, $0) }) {
            throw KondateError(.unknownStage, "no stage matches '\(pattern)'; the stages are " + plans.map(\.id).joined(separator: ", "))
        }
        var lastIndex = plans.count - 1
        if let until = options.until {
            if let group = Self.groups.firstIndex(of: until) {
                lastIndex = plans.lastIndex { (Self.groups.firstIndex(of: $0.kind.group) ?? 0) <= group } ?? -1
            } else if let index = plans.firstIndex(where: { $0.id == until }) {
                lastIndex = index
            } else {
                throw KondateError(.unknownStage, "--until '\(until)' is neither a stage group (\(Self.groups.joined(separator: ", "))) nor a stage: " +
                                   plans.map(\.id).joined(separator: ", "))
            }
        }
        let store = ArtifactStore(root: directory)
        let context = StageContext(recipe: recipe, directory: directory, threads: options.threads, log: log)
        context.progress = progress
        context.distributed = distributed
        var results = [StageResult]()
        var summaries = [EvalStage.Summary]()
        var judgeFailures = [String: String]()
        var problems = [String]()
        for (index, plan) in plans.enumerated() {
            if index > lastIndex || (!options.only.isEmpty && !options.only.contains(where: { Self.matches($0, plan) })) {
                var result = StageResult(plan: plan, status: .notRun, record: store.record(plan))
                result.note = index > lastIndex ? "--until \(options.until ?? "")" : "--only"
                // The stage's path shows this key's outputs when they are complete, and nothing otherwise
                // (never the outputs of an earlier key).
                if let record = result.record, store.verify(plan, record).isEmpty { try store.link(plan) } else { store.unlink(plan) }
                results.append(result)
                continue
            }
            for input in plan.inputs {
                guard let done = results.first(where: { $0.plan.id == input }), done.status != .notRun || done.record != nil else {
                    throw KondateError(.stageInput, "\(plan.id) needs \(input), which has not run in \(directory); run it first (drop --only)")
                }
            }
            try store.link(plan)
            var note: String?
            let forced = options.force.contains { Self.matches($0, plan) }
            if let record = store.record(plan), !forced {
                let problems = store.verify(plan, record)
                if problems.isEmpty {
                    let result = StageResult(plan: plan, status: .cached, record: record, note: nil)
                    report(result)
                    results.append(result)
                    if plan.kind == .eval { collect(plan: plan, record: record, into: &summaries) }
                    continue
                }
                note = "recomputed: " + problems.joined(separator: "; ")
                log("warning: \(plan.id): \(problems.joined(separator: "; ")); recomputing")
            } else if forced {
                note = "forced"
            }
            if ProcessInfo.processInfo.environment["KONDATE_FAULT_INTERNAL"] == plan.id {
                // Lets the tests check how an internal error reaches the user (exit status 2).
                throw KondateError.bug("KONDATE_FAULT_INTERNAL: a failure injected at \(plan.id)")
            }
            try store.clear(plan, keepCheckpoints: !forced)
            let summary: JSON
            var failure: String?
            switch plan.stage.payload {
            case .release:
                // The release reads the suites' summaries.
                for summary in summaries { try summary.write(runDirectory: directory) }
                summary = try context.execute(plan.stage)
            case let .eval(config):
                let outcome = try context.evaluate(config, skipJudge: judgeFailures[config.suite.name])
                if let error = outcome.error {
                    judgeFailures[config.suite.name] = error
                    failure = "\(plan.id): \(error)"
                }
                summary = outcome.json
            case .pretrain where distributed != nil, .tune where distributed != nil:
                summary = try context.leadTraining(plan.stage)
            case .corpusPrepare, .tokenizer, .corpusTokenize, .corpusMix, .pretrain, .tune:
                summary = try context.execute(plan.stage)
            }
            var result = StageResult(plan: plan, status: .ran, record: nil, note: note)
            if let failure {
                // Not committed: the next run tries again.
                problems.append(failure)
                result.note = failure
                result.record = StageRecord(id: plan.id, key: plan.key, outputs: [], summary: summary)
            } else {
                result.record = try store.commit(plan, summary: summary)
            }
            report(result)
            results.append(result)
            if plan.kind == .eval, let record = result.record { collect(plan: plan, record: record, into: &summaries) }
            try RunManifest(recipe: recipe, directory: directory, options: options, stages: results + plans[(index + 1)...].map {
                StageResult(plan: $0, status: .notRun, record: nil, note: nil)
            }).write()
        }
        for summary in summaries { try summary.write(runDirectory: directory) }
        let manifest = RunManifest(recipe: recipe, directory: directory, options: options, stages: results)
        try manifest.write()
        return Outcome(stages: results, evalSummaries: summaries, problems: problems, manifest: manifest.path)
    }

    func collect(plan: StagePlan, record: StageRecord, into summaries: inout [EvalStage.Summary]) {
        guard case let .eval(config) = plan.stage.payload, let outcome = EvalStage.Outcome(json: record.summary) else { return }
        let suite = config.suite.name
        if let i = summaries.firstIndex(where: { $0.suite == suite }) {
            summaries[i].outcomes.append(outcome)
        } else {
            summaries.append(EvalStage.Summary(suite: suite, kind: config.suite.kind.rawValue, outcomes: [outcome]))
        }
    }

    /// A run directory belongs to one recipe (by name); another recipe's is refused unless forced.
    func checkRunDirectory() throws {
        let path = directory + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: path),
              let manifest = try? JSONParser.parse(String(decoding: data, as: UTF8.self)),
              let name = manifest["recipe"]?["name"]?.stringValue, name != recipe.name else { return }
        if options.force.isEmpty {
            throw KondateError(.runDirectory, "\(directory) holds a run of recipe '\(name)', not '\(recipe.name)'; use another --out directory, " +
                               "or --force all to reuse it")
        }
    }
}

/// What the stages share while a run executes: the corpus stages' runner, and the tokenizer and
/// mixture, loaded when a later stage first needs them (an earlier stage may have been cached). Each
/// runner takes its typed stage; none reads the recipe's tree by path.
final class StageContext {
    let recipe: Recipe
    let graph: ExecutionGraph
    let locations: RecipeLocations
    let directory: String
    let threads: Int
    let log: (String) -> Void
    var progress: ((String) -> Void)?
    let corpus: CorpusRun
    var distributed: DistributedContext?
    private var tokenizerCache: (file: String, tokenizer: any Tokenizer)?
    private var mixtureCache: Mixture?

    init(recipe: Recipe, directory: String, threads: Int, log: @escaping (String) -> Void) {
        self.recipe = recipe
        graph = ExecutionGraph(recipe: recipe)
        locations = RecipeLocations(recipe.tree)
        self.directory = directory
        self.threads = threads
        self.log = log
        corpus = CorpusRun(graph: graph, locations: locations, portablePath: { [recipe] in recipe.portablePath($0) }, directory: directory,
                           threads: threads, log: log)
    }

    func tokenizer() throws -> (file: String, tokenizer: any Tokenizer) {
        if let tokenizerCache { return tokenizerCache }
        guard case let .tokenizer(config)? = graph.stage("tokenizer")?.payload else { throw KondateError.bug("the recipe has no tokenizer section") }
        let loaded = try corpus.loadTokenizer(config)
        tokenizerCache = loaded
        return loaded
    }

    func mixture() throws -> Mixture {
        if let mixtureCache { return mixtureCache }
        guard case let .corpusMix(config)? = graph.stage("corpus.mix")?.payload else { throw KondateError.bug("the recipe has no corpus to mix") }
        let mixture = try corpus.mixture(config)
        mixtureCache = mixture
        return mixture
    }

    /// Runs one stage (other than eval) and returns its summary.
    func execute(_ stage: Stage) throws -> JSON {
        switch stage.payload {
        case let .corpusPrepare(config):
            return try corpus.prepare(config).json
        case let .tokenizer(config):
            let prepared = try corpus.prepareTokenizer(config)
            tokenizerCache = prepared
            return .object([("vocabulary_size", .int(prepared.tokenizer.vocabularySize)),
                            ("file", .string(config.path == nil ? "tokenizer.json" : prepared.file))])
        case let .corpusTokenize(config):
            let tokenizer = try tokenizer().tokenizer
            let started = Date()
            let (documents, tokens) = try corpus.tokenize(config, with: tokenizer)
            return .object([("documents", .int(documents)), ("tokens", .int(tokens)), ("seconds", .double(Date().timeIntervalSince(started)))])
        case .corpusMix:
            let mixture = try mixture()
            try corpus.writeMixture(mixture)
            return mixture.reportJSON
        case .pretrain, .tune:
            return try executeTraining(stage.id)
        case let .release(config):
            return try ReleaseStage(config: config, recipe: recipe, directory: directory, log: log).run()
        case .eval:
            throw KondateError.bug("eval stages run through evaluate(_:skipJudge:)")
        }
    }

    /// Runs a training stage; under mpirun every rank calls this together.
    func executeTraining(_ id: String) throws -> JSON {
        switch graph.stage(id)?.payload {
        case let .pretrain(config)?:
            let (file, tokenizer) = try self.tokenizer()
            var stage = PretrainStage(config: config, locations: locations, directory: directory, mixture: try mixture(), tokenizerPath: file,
                                      tokenizer: tokenizer, threads: threads, log: log)
            stage.progress = progress
            stage.distributed = distributed
            return try stage.run().json
        case let .tune(config)?:
            let file = graph.stage("tokenizer") == nil ? nil : try tokenizer().file
            var tune = TuneStage(config: config, locations: locations, directory: directory, tokenizerPath: file, threads: threads, log: log)
            tune.progress = progress
            tune.distributed = distributed
            return try tune.run().json
        default:
            throw KondateError.bug("\(id) is not a training stage")
        }
    }

    /// The leader's side of a training stage under mpirun: announce it, run it with every rank, and
    /// end the job if it fails in a way the other ranks cannot see.
    func leadTraining(_ stage: Stage) throws -> JSON {
        guard let distributed else { return try execute(stage) }
        try distributed.announce(.object([("stage", .string(stage.id))]))
        do {
            return try executeTraining(stage.id)
        } catch {
            if DistributedContext.isCollective(error) { throw error }
            distributed.abortJob("\(stage.id): \(error)")
        }
    }

    func evaluate(_ config: EvalConfig, skipJudge: String?) throws -> EvalStage.Outcome {
        try EvalStage(config: config, locations: locations, directory: directory, portablePath: { [recipe] in recipe.portablePath($0) }, log: log)
            .run(skipJudge: skipJudge)
    }
}

/// Paths inside a run directory that several stages agree on.
public enum RunPaths {
    /// The Hugging Face directory a checkpoint name refers to: `pretrain`, or a tune stage's name.
    public static func modelDirectory(checkpoint: String, runDirectory: String) -> String {
        checkpoint == "pretrain" ? runDirectory + "/pretrain/model" : runDirectory + "/tune/\(checkpoint)/model"
    }
}
