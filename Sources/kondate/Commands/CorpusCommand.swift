import ArgumentParser
import Foundation
import KondateCorpus
import KondateRecipe
import KondateRuntime
import KondateSupport

struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Run a recipe's tokenizer and corpus stages: read, filter, deduplicate, tokenize to Megatron .bin/.idx, and mix.",
        discussion: "Outputs go under --out (default runs/<recipe name>): corpus/prepared, tokenizer, corpus/tokens, corpus/mix, with JSON reports.")

    @OptionGroup var options: RecipeOptions

    @Option(help: "Output directory (default: runs/<recipe name>).")
    var out: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print the reports as JSON.")
    var json = false

    func run() throws {
        // The corpus stages run on Kondate's runtime for every engine (Megatron-LM reads their output).
        let compilation = options.compile()
        let renderer = options.renderer(compilation)
        guard let recipe = compilation.executable else {
            printError(renderer.render(compilation.diagnostics))
            throw ExitCode(Exit.recipeErrors)
        }
        let directory = out ?? "runs/\(recipe.name)"
        let run = CorpusRun(recipe: recipe, directory: directory, threads: threads) { printError("\($0)\n") }
        let result: CorpusRun.Result
        do {
            result = try run.run()
        } catch {
            let (diagnostic, status) = FailureReport.of(error)
            var d = DiagnosticSet()
            d.add(diagnostic)
            printError(renderer.render(d))
            throw ExitCode(status)
        }
        if json {
            print(JSON.object([
                ("directory", .string(directory)),
                ("sources", .array(result.filterReports.map { report in
                    guard case var .object(entries) = report.json else { return report.json }
                    entries.append(("seconds", .double(report.seconds)))
                    return .object(entries)
                })),
                ("tokenizer", result.tokenizerPath.map(JSON.string) ?? .null),
                ("tokens", .array(result.tokenReports.map { .object([("source", .string($0.source)), ("documents", .int($0.documents)), ("tokens", .int($0.tokens)), ("seconds", .double($0.seconds))]) })),
                ("mixture", result.mixture?.reportJSON ?? .null),
            ]).rendered())
            return
        }
        print(CorpusReportRenderer.render(result), terminator: "")
        print("\nOutputs under \(directory)")
    }
}

enum CorpusReportRenderer {
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

    static func render(_ r: CorpusRun.Result) -> String {
        var out = ""
        for report in r.filterReports {
            let mb = Double(report.read.bytes) / 1e6
            out += "\n\(report.source): \(Format.grouped(report.read.documents)) documents read from \(report.read.files.count) file\(report.read.files.count == 1 ? "" : "s")"
            out += " (\(Format.fixed(mb, 1)) MB, \(Format.fixed(mb / max(report.seconds, 1e-9), 1)) MB/s)"
            if report.read.skipped > 0 { out += ", \(report.read.skipped) lines skipped" }
            out += "\n  " + pad("filter", 20) + lpad("docs in", 10) + lpad("docs out", 10) + lpad("chars out", 12) + "  dropped example\n"
            for step in report.steps {
                out += "  " + pad(step.filter, 20) + lpad(Format.grouped(step.documentsIn), 10) + lpad(Format.grouped(step.documentsOut), 10)
                out += lpad(Format.grouped(step.charactersOut), 12)
                if let first = step.dropped.first {
                    let excerpt = first.excerpt.replacingOccurrences(of: "\n", with: "⏎").prefix(40)
                    out += "  \(first.origin): \(excerpt)"
                }
                out += "\n"
            }
        }
        if !r.tokenReports.isEmpty {
            out += "\nTokens\n"
            for t in r.tokenReports {
                out += "  " + pad(t.source, 20) + lpad(Format.grouped(t.documents), 10) + " documents" + lpad(Format.grouped(t.tokens), 14) + " tokens\n"
            }
        }
        if let mix = r.mixture {
            out += "\nMixture: \(Format.grouped(mix.count)) samples × \(mix.seqLen) tokens\n"
            out += "  " + pad("source", 20) + lpad("requested", 10) + lpad("realised", 10) + lpad("available", 12) + lpad("drawn", 12) + lpad("epochs", 8) + "\n"
            for s in mix.shares {
                out += "  " + pad(s.name, 20) + lpad(Format.percent(s.requestedShare), 10) + lpad(Format.percent(s.realisedShare), 10)
                out += lpad(Format.count(Double(s.availableTokens)), 12) + lpad(Format.count(Double(s.drawnTokens)), 12) + lpad(Format.fixed(s.epochs, 3), 8) + "\n"
            }
        }
        return out
    }
}
