import ArgumentParser
import Foundation
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateSupport
import KondateTokenizers
import KondateTune

struct TunePreviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune-preview",
        abstract: "Show a tune stage's examples as the model will see them, with the trained spans marked and token counts.",
        discussion: """
        Trained text (the loss is computed on it) is shown in green on a terminal and between ⟦ ⟧ \
        otherwise; </s> marks the end-of-sequence token that follows each response. The tokenizer is \
        --tokenizer, else tokenizer.path of the recipe, else the one `kondate run` trained under --out.
        """)

    @OptionGroup var options: RecipeOptions

    @Option(help: "The tune stage (a key under tune:).") var stage: String
    @Option(help: "Examples to show.") var n: Int = 3
    @Option(help: "A tokenizer.json or SentencePiece .model (default: see below).") var tokenizer: String?
    @Option(help: "Run directory holding a trained tokenizer (default: runs/<recipe name>).") var out: String?

    func run() throws {
        let compilation = options.compile()
        let renderer = options.renderer(compilation)
        guard let recipe = compilation.executable else {
            printError(renderer.render(compilation.diagnostics))
            throw ExitCode(Exit.recipeErrors)
        }
        func fail(_ message: String, at location: SourceLocation? = nil, code: DiagnosticCode = .invalidValue) throws -> Never {
            var d = DiagnosticSet()
            d.error(code, message, at: location)
            printError(renderer.render(d))
            throw ExitCode(code == .internalError ? Exit.usage : Exit.recipeErrors)
        }
        guard let tune = recipe.tune.first(where: { $0.name == stage }) else {
            let names = recipe.tune.map(\.name)
            let hint = Suggestions.closest(to: stage, in: names).map { "; did you mean '\($0)'?" } ?? ""
            try fail("no tune stage '\(stage)'\(hint) (stages: \(names.isEmpty ? "none" : names.joined(separator: ", ")))", code: .unknownStage)
        }
        let tokenizerPath: String
        if let tokenizer {
            tokenizerPath = tokenizer
        } else if let declared = recipe.tokenizer?.path {
            tokenizerPath = PathCheck.resolve(declared, relativeTo: recipe.tree.at("tokenizer.path")?.location)
        } else {
            tokenizerPath = (out ?? "runs/\(recipe.name)") + "/tokenizer/tokenizer.json"
            guard FileManager.default.fileExists(atPath: tokenizerPath) else {
                try fail("the recipe trains its tokenizer and \(tokenizerPath) does not exist yet; run `kondate run \(options.recipe) --until corpus` first or pass --tokenizer", code: .missingPath)
            }
        }
        guard case let .tune(config)? = compilation.plan?.graph.stage("tune.\(stage)")?.payload else {
            try fail("tune.\(stage) is not in the execution graph", code: .internalError)
        }
        let data: TuneExamples
        do { data = try TuneExamples(config: config, tokenizer: try TokenizerLoader.load(path: tokenizerPath)) } catch let e as KondateError {
            try fail(e.message, at: e.location ?? recipe.tree.at("tune.\(stage).template")?.location, code: e.code)
        } catch {
            try fail("\(error)")
        }
        let colour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        var shown = 0
        var totals = (examples: 0, tokens: 0, trained: 0, truncated: 0)
        print("tune.\(stage): template \(data.template.name), loss on \(tune.lossMask == .all ? "all tokens" : "responses only"), max length \(tune.maxLength)\(tune.packing ? ", packed" : "")")
        for input in config.datasets {
            do {
                try data.forEachExample(of: input, maxLength: tune.maxLength) { example, t in
                    totals.examples += 1
                    totals.tokens += t.ids.count
                    totals.trained += t.trainedCount
                    totals.truncated += t.truncated ? 1 : 0
                    guard shown < n else { return }
                    shown += 1
                    print("\n── \(input.dataset.name) · \(example.origin) · \(t.ids.count) tokens, \(t.trainedCount) trained\(t.truncated ? " (truncated)" : "")")
                    print(Self.marked(t, tokenizer: data.tokenizer, colour: colour))
                }
            } catch let e as KondateError {
                try fail(e.message, at: e.location, code: e.code)
            }
        }
        print("\n\(Format.grouped(totals.examples)) examples, \(Format.grouped(totals.tokens)) tokens, \(Format.grouped(totals.trained)) trained" +
              " (\(Format.percent(Double(totals.trained) / Double(max(1, totals.tokens)))))" +
              (totals.truncated > 0 ? ", \(totals.truncated) truncated to \(tune.maxLength + 1) tokens" : ""))
    }

    /// The example's tokens decoded run by run, trained runs marked.
    static func marked(_ t: TokenizedExample, tokenizer tok: TuneTokenizer, colour: Bool) -> String {
        var out = ""
        var i = 0
        while i < t.ids.count {
            var j = i
            while j < t.ids.count && t.trained[j] == t.trained[i] { j += 1 }
            var text = ""
            var run: [Int32] = []
            for id in t.ids[i..<j] {
                if id == tok.eos || id == tok.bos {
                    text += tok.tokenizer.decode(run) + (tok.tokenizer.token(of: id) ?? "<special>")
                    run = []
                } else {
                    run.append(id)
                }
            }
            text += tok.tokenizer.decode(run)
            if t.trained[i] {
                out += colour ? "\u{1B}[32m" + text + "\u{1B}[0m" : "⟦" + text + "⟧"
            } else {
                out += text
            }
            i = j
        }
        return out
    }
}
