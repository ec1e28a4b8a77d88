import ArgumentParser
import Foundation
import KondateReport
import KondateSupport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report on a run directory, or on two overlaid.",
        discussion: """
        Reads RUN_DIR/manifest.json (required), pretrain/metrics.jsonl, tune/<name>/metrics.jsonl, \
        corpus/mix/mixture.json and eval/<suite>/summary.json, and writes one HTML file with inline CSS \
        and SVG plots (no scripts, no external resources): run and environment tables, stages, pretraining \
        loss (held-out losses as markers), learning rate and throughput, each tune stage's loss and learning \
        rate, the corpus mixture, and the eval scores. With a second run directory both runs are drawn in \
        the same plots, in two colours, and the eval tables gain a Δ column. Missing files skip their \
        section with a note. Prints the path written. Exit status: 0 written, 1 when a run directory is \
        missing or has no readable manifest.json, 2 for usage errors or when the report cannot be written.
        """)

    @Argument(help: ArgumentHelp("One run directory, or two to overlay.", valueName: "run-dir"))
    var runs: [String] = []

    @Option(help: ArgumentHelp("The HTML file to write (default: <first run-dir>/report.html).", valueName: "file"))
    var out: String?

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give a run directory (or two to compare)") }
        guard runs.count <= 2 else { throw ValidationError("give at most two run directories (got \(runs.count))") }
    }

    func run() throws {
        var loaded: [ReportedRun] = []
        for path in runs {
            do { loaded.append(try ReportedRun.load(path)) } catch {
                printError("kondate report: \(error.description)\n")
                throw ExitCode(Exit.recipeErrors)
            }
        }
        let html = RunReport.html(runs: loaded, created: Date())
        let destination = out ?? (runs[0].hasSuffix("/") ? runs[0] + "report.html" : runs[0] + "/report.html")
        do { try AtomicFile.write(Data(html.utf8), to: destination) } catch {
            printError("kondate report: cannot write \(destination): \(error)\n")
            throw ExitCode(Exit.usage)
        }
        print(destination)
    }
}
