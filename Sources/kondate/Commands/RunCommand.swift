import ArgumentParser
import Foundation
import KondateCorpus
import KondateRecipe
import KondateRuntime
import KondateSupport
import KondateTensor

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Execute a recipe on the CPU runtime: corpus, tokenizer, mixture, pretraining, instruction tuning and evaluation.",
        discussion: """
        Stages executed: corpus.prepare.<source>, tokenizer, corpus.tokenize.<source>, corpus.mix, \
        pretrain, tune.<name> and eval.<name>. The release stage is not executed by this version; it is \
        listed as not run. Pretraining resumes from the newest complete checkpoint under \
        <out>/pretrain/checkpoints; the corpus stages are recomputed (they are deterministic).
        Outputs: <out>/corpus, <out>/tokenizer, <out>/pretrain/{checkpoints,metrics.jsonl,model,summary.json}, \
        <out>/tune/<name>/{metrics.jsonl,model,summary.json}, <out>/eval/<suite>/{summary.json,<checkpoint>/results.json}. \
        A tune stage has no intermediate checkpoints. An eval suite whose judge fails keeps its answers, \
        the other suites still run, and the command exits with status 1 after naming the failure.
        """)

    @OptionGroup var options: RecipeOptions

    @Option(help: "Run directory (default: runs/<recipe name>).")
    var out: String?

    @Option(help: "Stop after this stage: corpus (corpus and tokenizer stages), pretrain, tune (all tune stages), or eval (all eval suites; the default).")
    var until: RunUntil = .eval

    @Option(help: "Threads for the corpus stages, OpenBLAS and the kernels (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    enum RunUntil: String, ExpressibleByArgument { case corpus, pretrain, tune, eval }

    func run() throws {
        let loaded = options.load()
        let renderer = options.renderer(loaded)
        guard let recipe = loaded.recipe else {
            printError(renderer.render(loaded.diagnostics))
            throw ExitCode(Exit.recipeErrors)
        }
        let directory = out ?? "runs/\(recipe.name)"
        let log: (String) -> Void = { printError("\($0)\n") }
        func fail(_ message: String, at location: SourceLocation?) throws -> Never {
            var d = DiagnosticSet()
            d.error(.missingPath, message, at: location)
            printError(renderer.render(d))
            throw ExitCode(Exit.recipeErrors)
        }
        Parallel.threads = threads
        let corpus: CorpusRun.Result
        do {
            corpus = try CorpusRun(recipe: recipe, directory: directory, threads: threads, log: log).run()
        } catch let error as CorpusError {
            try fail(error.message, at: error.location)
        }
        if until == .corpus || recipe.pretrain == nil {
            print("Corpus and tokenizer stages done; outputs under \(directory)")
            return
        }
        guard let mixture = corpus.mixture else { try fail("the recipe has no pretrain section to mix for", at: nil) }
        let summary: PretrainStage.Summary
        do {
            summary = try PretrainStage(recipe: recipe, directory: directory, mixture: mixture, tokenizerPath: corpus.tokenizerPath,
                                        tokenizer: corpus.tokenizer, threads: threads, log: log).run()
        } catch let error as RuntimeError {
            try fail(error.message, at: error.location)
        }
        if let resumed = summary.resumedFrom, resumed >= summary.steps {
            print("pretrain: already complete (\(summary.steps) steps in \(directory)/pretrain/checkpoints), final loss \(Format.fixed(summary.finalLoss, 3))")
        } else {
            print("pretrain: \(summary.steps) steps, \(Format.grouped(summary.tokens)) tokens, loss \(summary.firstLoss.map { Format.fixed($0, 3) + " → " } ?? "")" +
              "\(Format.fixed(summary.finalLoss, 3))\(summary.heldOutLoss.map { ", held-out \(Format.fixed($0, 3))" } ?? ""), " +
              "\(Format.fixed(summary.seconds, 1)) s (\(Format.grouped(Int(summary.tokensPerSecond))) tokens/s)")
        }
        print("model: \(summary.modelDirectory) (Hugging Face format)")
        if until != .pretrain && !recipe.tune.isEmpty {
            // Tune stages in dependency order (a stage starting from another runs after it).
            var done: Set<String> = ["pretrain"]
            var pending = recipe.tune
            while let index = pending.firstIndex(where: { done.contains($0.from) || $0.from.hasPrefix("hf:") }) {
                let stage = pending.remove(at: index)
                let tuned: TuneStage.Summary
                do {
                    tuned = try TuneStage(recipe: recipe, stage: stage, directory: directory, tokenizerPath: corpus.tokenizerPath,
                                          threads: threads, log: log).run()
                } catch let error as RuntimeError {
                    try fail(error.message, at: error.location)
                }
                done.insert(stage.name)
                print("tune.\(stage.name): \(tuned.examples) examples, \(tuned.steps) steps, loss \(tuned.firstLoss.map { Format.fixed($0, 3) + " → " } ?? "")" +
                      "\(Format.fixed(tuned.finalLoss, 3)), \(Format.fixed(tuned.seconds, 1)) s; model: \(tuned.modelDirectory)")
            }
        }
        var problems = [String]()
        if until == .eval {
            for suite in recipe.eval {
                let result: EvalStage.Summary
                do { result = try EvalStage(recipe: recipe, suite: suite, directory: directory, log: log).run() } catch let error as RuntimeError {
                    try fail(error.message, at: error.location)
                }
                print("eval.\(suite.name) (\(suite.kind)): \(directory)/eval/\(suite.name)")
                print(result.table, terminator: "")
                problems += result.errors
            }
        }
        let skipped = (until == .pretrain ? recipe.tune.map { "tune.\($0.name)" } : []) + (until != .eval ? recipe.eval.map { "eval.\($0.name)" } : [])
        if !skipped.isEmpty { print("not run (--until \(until.rawValue)): \(skipped.joined(separator: ", "))") }
        if recipe.release != nil { print("not run by this version: release") }
        if !problems.isEmpty {
            for problem in problems { printError("error: \(problem)\n") }
            throw ExitCode(Exit.recipeErrors)
        }
    }
}
