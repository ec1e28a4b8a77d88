import ArgumentParser
import Foundation
import KondateCorpus
import KondateKernels
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateSupport

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Execute a recipe's execution graph on the CPU runtime, skipping stages whose outputs already exist.",
        discussion: """
        Stages, in order: corpus.prepare.<source>, tokenizer, corpus.tokenize.<source>, corpus.mix, pretrain, \
        tune.<name>, eval.<suite>.<checkpoint>, release. Each stage's key hashes the recipe values and files \
        it reads and the keys of the stages it reads from; its outputs live in <out>/store/<stage>/<key>/ and \
        appear under <out>/<stage directory> (corpus/prepared/<source>, tokenizer, corpus/tokens/<source>, \
        corpus/mix, pretrain, tune/<name>, eval/<suite>/<checkpoint>, release). A stage whose key has \
        verified outputs is skipped; one whose outputs were changed or deleted is recomputed with a warning; \
        pretraining and tuning resume from their last checkpoint. <out>/manifest.json records the run.
        SIGINT or SIGTERM stops training after a checkpoint (exit 130 or 143); run the same command to resume. \
        An eval suite whose judge fails keeps its answers, the other stages still run, and the command exits \
        with status 1 after naming the failure. Two runs cannot share a run directory at once.
        Under mpirun (see kondate launch), rank 0 runs the data stages, evaluation and the release, and every \
        rank runs the training stages in the recipe's tensor × pipeline × data layout; the run directory must \
        be on a filesystem every rank sees.
        """)

    @OptionGroup var options: RecipeOptions

    @Option(name: [.customLong("out"), .customLong("run-dir")], help: "Run directory (default: runs/<recipe name>).")
    var out: String?

    @Option(help: "Stop after this stage group (corpus, pretrain, tune, eval, release) or stage id.")
    var until: String?

    @Option(help: ArgumentHelp("Run only this stage (an id or a prefix such as eval.tasks; repeatable). Its inputs must be complete.", valueName: "stage"))
    var only: [String] = []

    @Option(help: ArgumentHelp("Recompute this stage even when its outputs verify (an id, a prefix, a group, or all; repeatable).", valueName: "stage"))
    var force: [String] = []

    @Flag(help: "Hash every input file whole (by default files over 64 MiB get a sampled fingerprint).")
    var fullHash = false

    @Option(help: "Threads for the corpus stages, OpenBLAS and the kernels (default: all cores; under mpirun, the cores shared by the node's ranks).")
    var threads: Int?

    func validate() throws {
        guard (threads ?? 1) >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        // Exactly what `kondate validate --engine kondate` rejects is refused here, with the same output.
        let compilation = options.compile(engine: .kondate)
        let renderer = options.renderer(compilation)
        guard let recipe = compilation.executable else {
            printError(renderer.render(compilation.diagnostics))
            printError("\(options.recipe): \(DiagnosticRenderer.summary(compilation.diagnostics)); nothing run\n")
            throw ExitCode(Exit.recipeErrors)
        }
        if !compilation.diagnostics.items.isEmpty { printError(renderer.render(compilation.diagnostics)) }
        let directory = out ?? "runs/\(recipe.name)"
        /// Any failure as one diagnostic with its code; exit 1 for what the user fixes, 2 for a bug in Kondate.
        func fail(_ error: any Error) throws -> Never {
            let (diagnostic, status) = FailureReport.of(error)
            var d = DiagnosticSet()
            d.add(diagnostic)
            printError(renderer.render(d))
            throw ExitCode(status)
        }
        let distributed: DistributedContext?
        do { distributed = try DistributedContext.start(recipe: recipe) } catch { try fail(error) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = self.threads ?? (distributed == nil ? cores : max(1, cores / DistributedContext.localRanks))
        Parallel.threads = threads
        guard let distributed else { return try run(recipe: recipe, directory: directory, threads: threads, distributed: nil, fail: fail) }
        StopRequest.install()
        distributed.runJob(recipe: recipe, directory: directory, threads: threads) {
            do {
                try run(recipe: recipe, directory: directory, threads: threads, distributed: distributed, fail: fail)
                return 0
            } catch let exit as ExitCode {
                return exit.rawValue
            } catch {
                return FailureReport.of(error).status
            }
        }
    }

    func run(recipe: Recipe, directory: String, threads: Int, distributed: DistributedContext?,
             fail: (any Error) throws -> Never) throws {
        StopRequest.install()
        var pipelineOptions = RunPipeline.Options()
        pipelineOptions.until = until
        pipelineOptions.only = only
        pipelineOptions.force = force
        pipelineOptions.fullHash = fullHash
        pipelineOptions.threads = threads
        pipelineOptions.command = ["kondate"] + Array(CommandLine.arguments.dropFirst())
        pipelineOptions.overrides = options.overrides
        pipelineOptions.kondateVersion = Kondate.version
        pipelineOptions.kondateCommit = Kondate.sourceCommit
        pipelineOptions.layout = distributed?.layoutJSON
        pipelineOptions.mpi = distributed?.mpiJSON
        let live = LiveLine()
        var pipeline = RunPipeline(recipe: recipe, directory: directory, options: pipelineOptions,
                                   log: { live.clear(); printError("\($0)\n") },
                                   report: { live.clear(); print(Self.line(for: $0, directory: directory)) })
        if live.enabled { pipeline.progress = { live.show($0) } }
        pipeline.distributed = distributed
        let outcome: RunPipeline.Outcome
        defer { live.clear() }
        do {
            outcome = try pipeline.run()
        } catch let stop as StageInterrupted {
            printError("\(stop)\n")
            throw ExitCode(stop.signal == "SIGTERM" ? 143 : 130)
        } catch let error as ExitCode {
            throw error
        } catch {
            try fail(error)
        }
        for summary in outcome.evalSummaries {
            print("eval.\(summary.suite) (\(summary.kind)): \(directory)/eval/\(summary.suite)")
            print(summary.table, terminator: "")
        }
        let ran = outcome.stages.filter { $0.status == .ran }.count, cached = outcome.stages.filter { $0.status == .cached }.count
        let notRun = outcome.stages.filter { $0.status == .notRun }.map(\.plan.id)
        if !notRun.isEmpty { print("not run (\(until.map { "--until \($0)" } ?? "--only")): \(notRun.joined(separator: ", "))") }
        if outcome.stages.contains(where: { $0.plan.id == "release" && $0.status != .notRun }) { print("release: \(directory)/release") }
        print("run: \(ran) stage\(ran == 1 ? "" : "s") ran, \(cached) cached; manifest: \(outcome.manifest)")
        if !outcome.problems.isEmpty {
            for problem in outcome.problems { printError("error: \(problem)\n") }
            throw ExitCode(Exit.recipeErrors)
        }
    }

    /// One line per stage: what it did, from its summary.
    static func line(for result: RunPipeline.StageResult, directory: String) -> String {
        let id = result.plan.id
        let s = result.record?.summary ?? .null
        func loss(_ key: String) -> String? { s[key]?.doubleValue.map { Format.fixed($0, 3) } }
        if result.status == .cached {
            var detail = ""
            if let final = loss("final_loss") { detail = ", loss \(final)" }
            return "\(id): cached (key \(result.plan.key.prefix(12)))\(detail)"
        }
        let recomputed = result.note.map { $0.hasPrefix("recomputed") || $0 == "forced" ? " (\($0))" : "" } ?? ""
        switch result.plan.kind {
        case .pretrain:
            let steps = s["steps"]?.intValue ?? 0, tokens = s["tokens"]?.intValue ?? 0
            var line = "pretrain: \(steps) steps, \(Format.grouped(tokens)) tokens, loss " + (loss("first_loss").map { "\($0) → " } ?? "") + (loss("final_loss") ?? "?")
            if let held = loss("held_out_loss") { line += ", held-out \(held)" }
            if let seconds = s["seconds"]?.doubleValue, let rate = s["tokens_per_second"]?.doubleValue {
                line += ", \(Format.fixed(seconds, 1)) s (\(Format.grouped(Int(rate))) tokens/s)"
            }
            if let resumed = s["resumed_from"]?.intValue { line += ", resumed from step \(resumed)" }
            return line + recomputed + "; model: \(directory)/pretrain/model"
        case .tune:
            return "\(id): \(s["examples"]?.intValue ?? 0) examples, \(s["steps"]?.intValue ?? 0) steps, loss " +
                (loss("first_loss").map { "\($0) → " } ?? "") + (loss("final_loss") ?? "?") +
                (s["seconds"]?.doubleValue.map { ", \(Format.fixed($0, 1)) s" } ?? "") + recomputed + "; model: \(directory)/\(result.plan.directory)/model"
        case .corpusPrepare:
            return "\(id): \(Format.grouped(s["documents_out"]?.intValue ?? 0)) documents kept, \(Format.bytes(Double(s["bytes_out"]?.intValue ?? 0)))" + recomputed
        case .tokenizerTrain, .tokenizerLoad:
            return "tokenizer: \(Format.grouped(s["vocabulary_size"]?.intValue ?? 0)) tokens" + recomputed
        case .corpusTokenize:
            return "\(id): \(Format.grouped(s["documents"]?.intValue ?? 0)) documents, \(Format.grouped(s["tokens"]?.intValue ?? 0)) tokens" + recomputed
        case .corpusMix:
            return "corpus.mix: \(Format.grouped(s["samples"]?.intValue ?? 0)) samples of \((s["seq_len"]?.intValue ?? 0) + 1) tokens" + recomputed
        case .eval:
            if let error = s["error"]?.stringValue { return "\(id): \(error)" }
            let scores: [(String, JSON)] = if case let .object(entries)? = s["scores"] { entries } else { [] }
            let shown = scores.prefix(3).map { "\($0.0) \($0.1.doubleValue.map { Format.fixed($0, 4) } ?? "-")" }
            return "\(id): " + (shown.isEmpty ? "done" : shown.joined(separator: ", ") + (scores.count > 3 ? ", …" : "")) + recomputed
        case .release:
            return "release: \(s["name"]?.stringValue ?? "") (\(s["dtype"]?.stringValue ?? "")) from \(s["checkpoint"]?.stringValue ?? "")" + recomputed
        }
    }
}

extension Kondate {
    /// The git commit of the source this binary was built from (with `+dirty` when tracked files
    /// differed from it), fixed at build time by the BuildInfo plugin; nil outside a git checkout.
    static var sourceCommit: String? { BuildInfo.commit.map { $0 + (BuildInfo.dirty ? "+dirty" : "") } }
}

/// A status line that rewrites itself on a terminal (standard error), cleared before any other output.
/// Off when standard error is not a terminal, or with `TERM=dumb`.
final class LiveLine {
    let enabled = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    private var shown = false
    private var last = Date.distantPast

    func show(_ text: String) {
        guard enabled, Date().timeIntervalSince(last) >= 0.1 else { return }
        last = Date()
        printError("\r\u{1B}[2K" + text)
        shown = true
    }

    func clear() {
        guard shown else { return }
        printError("\r\u{1B}[2K")
        shown = false
    }
}
