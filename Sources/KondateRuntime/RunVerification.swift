import Foundation
import KondateKernels
import KondatePlan
import KondateRecipe
import KondateReport
import KondateSupport

/// `kondate verify`: re-executes a run (or the run behind a release) from its manifest in the same
/// layout and compares every stage key and artifact (and, for a release, every file of the release).
///
/// - The recipe file is loaded with the recorded `--set` overrides from the recorded working directory,
///   and must resolve to the recorded SHA-256.
/// - A single-process run is re-executed in this process with the recorded thread count. A run made
///   under mpirun is re-executed under `mpirun -np <ranks>` (this machine, `--oversubscribe
///   --bind-to none`) with the recorded threads per rank, so the same tensor × pipeline × data layout
///   gives bitwise-identical results.
/// - Only the stages the original run finished are compared.
public struct RunVerification {
    /// Why a run cannot be verified (the command exits with status 2).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        /// Diagnostics of a recipe that no longer loads.
        public var diagnostics: DiagnosticSet?
        public var sources: SourceStore?
        public var description: String { message }
    }

    public struct Outcome {
        public var reproduced: Bool
        /// The stages the original run finished (the ones compared).
        public var finished: [String]
        /// Artifacts (not logs) of those stages.
        public var artifacts: Int
        public var isRelease: Bool
        public var releaseDifferences: [String]
        public var diff: RunDiff
        /// How the run was re-executed: "in one process with 2 threads", "under mpirun with 2 ranks × 1 thread".
        public var reExecution: String
    }

    /// The run or release directory to verify.
    public var path: String
    /// Where to re-execute (nil: a temporary directory, removed afterwards).
    public var out: String?
    /// The `kondate` binary mpirun starts on every rank.
    public var executable: String
    public var kondateVersion = "unknown"
    public var kondateCommit: String?
    public var log: (String) -> Void = { _ in }
    /// The user vouches for the manifest (`--trust-manifest`): its recipe path and working directory
    /// may lie outside this directory and the run's, and its overrides may set a judge.
    public var trustManifest = false

    public init(path: String, out: String?, executable: String) {
        self.path = path
        self.out = out
        self.executable = executable
    }

    public func run() throws(Failure) -> Outcome {
        func fail(_ message: String) -> Failure { Failure(message: message) }
        let manifest: JSON
        do { manifest = try RunDiff.manifest(at: path) } catch { throw fail("\(error)") }
        guard let file = manifest["recipe"]?["file"]?.stringValue, let recorded = manifest["recipe"]?["sha256"]?.stringValue else {
            throw fail("\(path)/manifest.json names no recipe file")
        }
        let overrides = (manifest["recipe"]?["overrides"]?.arrayValue ?? []).compactMap(\.stringValue)
        // A manifest is text from whoever made the run or the release: what it names is followed only
        // where the user already is (this directory, the run's), and it cannot point the judge anywhere.
        if !trustManifest {
            let here = FileManager.default.currentDirectoryPath
            func inside(_ candidate: String, relativeTo base: String) -> Bool {
                let full = URL(fileURLWithPath: candidate, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path
                return [here, path].contains { full == $0 || full.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }
            }
            let cwd = manifest["cwd"]?.stringValue ?? here
            for (what, value, base) in [("working directory", cwd, here), ("recipe file", file, cwd)] where !inside(value, relativeTo: base) {
                throw fail("the manifest names the \(what) \(value), outside this directory and \(path); a manifest is not trusted to point " +
                           "elsewhere: run kondate verify from where the run was made, or pass --trust-manifest if you trust its author")
            }
            if let judge = overrides.first(where: { $0.split(separator: "=").first?.contains(".judge") == true }) {
                throw fail("the manifest's overrides set a judge ('\(judge)'): a manifest cannot choose where a key is sent; " +
                           "pass --trust-manifest if you trust its author")
            }
        }
        // Inputs are named by the paths the run used (relative to its working directory), and some
        // artifacts quote them (document origins, dataset files): re-execute from the same directory.
        if let cwd = manifest["cwd"]?.stringValue, !FileManager.default.changeCurrentDirectoryPath(cwd) {
            throw fail("the run was made in \(cwd), which does not exist here; inputs are named relative to it")
        }
        let compilation = RecipeCompiler.compile(path: file, overrides: overrides.map(Override.init), engine: .kondate)
        guard let recipe = compilation.executable else {
            throw Failure(message: "the recipe \(file) no longer loads; cannot re-execute the run", diagnostics: compilation.diagnostics,
                          sources: compilation.loaded.sources)
        }
        guard recipe.tree.json.canonicalHash == recorded else {
            throw fail("\(file) (with \(overrides.isEmpty ? "no overrides" : overrides.joined(separator: " "))) resolves to a different recipe " +
                       "than the run used (SHA-256 \(recipe.tree.json.canonicalHash.prefix(12))… vs \(recorded.prefix(12))…); " +
                       "`kondate diff` the two to see how, or restore the recipe")
        }
        let isRelease = FileManager.default.fileExists(atPath: path + "/model.safetensors")
        let stages = manifest["stages"]?.arrayValue ?? []
        let finished = stages.filter { $0["status"]?.stringValue != "not run" }.compactMap { $0["id"]?.stringValue }
        guard let last = isRelease ? "release" : finished.last else { throw fail("\(path) records no finished stage") }
        let threads = manifest["layout"]?["threads"]?.intValue ?? ProcessInfo.processInfo.activeProcessorCount
        let ranks = manifest["layout"]?["ranks"]?.intValue ?? 1
        let directory = out ?? NSTemporaryDirectory() + "kondate-verify-\(UUID().uuidString)"
        defer { if out == nil { try? FileManager.default.removeItem(atPath: directory) } }

        let reExecution: String
        if ranks > 1 {
            reExecution = "under mpirun with \(ranks) ranks × \(threads) thread\(threads == 1 ? "" : "s")"
            log("verify: re-executing \(recipe.name) up to \(last) in \(directory) \(reExecution)")
            try reExecuteUnderMPI(file: file, overrides: overrides, directory: directory, until: last, ranks: ranks, threads: threads)
            let layout = (try? RunDiff.manifest(at: directory))?["layout"]
            guard layout == manifest["layout"] else {
                throw fail("the re-execution ran in layout \(layout?.rendered(pretty: false) ?? "?"), not the recorded " +
                           (manifest["layout"]?.rendered(pretty: false) ?? "?"))
            }
        } else {
            reExecution = "in one process with \(threads) thread\(threads == 1 ? "" : "s")"
            log("verify: re-executing \(recipe.name) up to \(last) in \(directory) \(reExecution)")
            Parallel.threads = threads
            var options = RunPipeline.Options()
            options.until = last
            options.threads = threads
            options.command = ["kondate", "verify", path]
            options.overrides = overrides
            options.kondateVersion = kondateVersion
            options.kondateCommit = kondateCommit
            do {
                _ = try RunPipeline(recipe: recipe, directory: directory, options: options, log: log).run()
            } catch {
                throw fail("the re-execution failed: \(error)")
            }
        }
        var diff: RunDiff
        do { diff = try RunDiff.compare(path, directory) } catch { throw fail("\(error)") }
        // The stages the original did not finish are not compared.
        diff.stages.removeAll { change in !finished.contains(change.id) && !(isRelease && change.id == "release") }
        var releaseDifferences = [String]()
        if isRelease {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != "manifest.json" && $0 != "stage.json" }.sorted()
            for name in names where (try? SHA256.hex(file: path + "/" + name)) != (try? SHA256.hex(file: directory + "/release/" + name)) {
                releaseDifferences.append(name)
            }
        }
        let reproduced = diff.stages.isEmpty && diff.outputs.isEmpty && diff.inputs.isEmpty && releaseDifferences.isEmpty &&
            diff.weights.allSatisfy(\.identical)
        let artifacts = stages.filter { finished.contains($0["id"]?.stringValue ?? "") }
            .reduce(0) { $0 + ($1["outputs"]?.arrayValue?.filter { $0["log"]?.boolValue != true }.count ?? 0) }
        return Outcome(reproduced: reproduced, finished: finished, artifacts: artifacts, isRelease: isRelease,
                       releaseDifferences: releaseDifferences, diff: diff, reExecution: reExecution)
    }

    /// `mpirun -np <ranks> kondate run …` on this machine, its output passed through.
    func reExecuteUnderMPI(file: String, overrides: [String], directory: String, until: String, ranks: Int, threads: Int) throws(Failure) {
        guard let mpirun = Self.which("mpirun") else {
            throw Failure(message: "the run was made under mpirun with \(ranks) ranks, and mpirun is not installed here (apt-get install " +
                          "openmpi-bin); in one process it would differ by float rounding, so it cannot be verified bitwise")
        }
        let arguments = (geteuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), executable,
                         "run", file] + overrides.flatMap { ["--set", $0] } + ["--out", directory, "--until", until, "--threads", String(threads)]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        process.arguments = arguments
        log("verify: " + ShellQuote.join([mpirun] + arguments))
        do { try process.run() } catch { throw Failure(message: "cannot start \(mpirun): \(error)") }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(message: "the re-execution under mpirun failed (exit status \(process.terminationStatus))")
        }
    }

    /// The first executable `name` on PATH.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
