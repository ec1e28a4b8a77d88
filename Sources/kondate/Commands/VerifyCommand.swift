import ArgumentParser
import Foundation
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateSupport

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-execute a run (or the run behind a release) from its manifest and report whether it reproduces.",
        discussion: """
        Reads manifest.json, loads the recipe file it names with the same --set overrides (the resolved \
        recipe must hash as recorded), runs every stage the original run finished in a temporary \
        directory in the same layout — in this process with the same thread count, or, for a run made \
        under mpirun, under `mpirun -np <ranks>` with the same threads per rank — and compares stage keys \
        and artifacts (and, for a release, every file of the release). On the CPU runtime, with the same \
        layout, results must be bitwise identical. Exit status: 0 reproduced, 1 not reproduced (the differences are listed), 2 when it \
        cannot be verified (no manifest, the recipe file changed or is gone, or the manifest points outside \
        this directory and the run's, or sets a judge, without --trust-manifest: a manifest is not trusted).
        """)

    @Argument(help: "A run directory or a release directory.") var path: String
    @Option(help: "Re-execute into this directory and keep it (default: a temporary directory, removed afterwards).") var out: String?
    @Flag(help: "Print the comparison as JSON.") var json = false
    @Flag(help: "Follow a recipe path or working directory the manifest names outside this directory and the run's, and judge settings in its overrides (a manifest is not trusted otherwise).")
    var trustManifest = false

    func run() throws {
        let path = URL(fileURLWithPath: self.path).standardizedFileURL.path
        var verification = RunVerification(path: path, out: out.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                                           executable: Self.executablePath())
        verification.kondateVersion = Kondate.version
        verification.kondateCommit = Kondate.sourceCommit
        verification.log = { printError("\($0)\n") }
        verification.trustManifest = trustManifest
        let outcome: RunVerification.Outcome
        do {
            outcome = try verification.run()
        } catch {
            if let diagnostics = error.diagnostics, let sources = error.sources {
                printError(DiagnosticRenderer(sources: sources, color: false).render(diagnostics))
            }
            printError("kondate verify: \(error.message)\n")
            throw ExitCode(Exit.usage)
        }
        let diff = outcome.diff
        if json {
            print(JSON.object([("reproduced", .bool(outcome.reproduced)), ("re_execution", .string(outcome.reExecution)),
                               ("release_files_differing", .array(outcome.releaseDifferences.map(JSON.string))),
                               ("diff", diff.json)]).rendered())
        } else if outcome.reproduced {
            print("reproduced: \(outcome.finished.count) stages, \(outcome.artifacts) artifacts with identical SHA-256" +
                  (outcome.isRelease ? ", and every file of the release" : "") + " (re-executed \(outcome.reExecution))")
        } else {
            print("not reproduced (re-executed \(outcome.reExecution))")
            if !outcome.releaseDifferences.isEmpty { print("release files that differ: \(outcome.releaseDifferences.joined(separator: ", "))") }
            print(diff.text, terminator: "")
        }
        if !outcome.reproduced { throw ExitCode(1) }
    }

    /// This binary, for mpirun to start on every rank.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
