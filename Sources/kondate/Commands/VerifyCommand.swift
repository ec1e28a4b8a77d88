import ArgumentParser
import Foundation
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateSupport
import KondateTensor

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-execute a run (or the run behind a release) from its manifest and report whether it reproduces.",
        discussion: """
        Reads manifest.json, loads the recipe file it names with the same --set overrides (the resolved \
        recipe must hash as recorded), runs every stage the original run finished in a temporary \
        directory with the same thread count, and compares stage keys and artifacts (and, for a release, \
        every file of the release). On the CPU runtime, with the same layout, results must be bitwise \
        identical. Exit status: 0 reproduced, 1 not reproduced (the differences are listed), 2 when it \
        cannot be verified (no manifest, the recipe file changed or is gone).
        """)

    @Argument(help: "A run directory or a release directory.") var path: String
    @Option(help: "Re-execute into this directory and keep it (default: a temporary directory, removed afterwards).") var out: String?
    @Flag(help: "Print the comparison as JSON.") var json = false

    func run() throws {
        let path = URL(fileURLWithPath: self.path).standardizedFileURL.path
        let out = self.out.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let manifest: JSON
        do { manifest = try RunDiff.manifest(at: path) } catch {
            printError("kondate verify: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        guard let file = manifest["recipe"]?["file"]?.stringValue, let recorded = manifest["recipe"]?["sha256"]?.stringValue else {
            printError("kondate verify: \(path)/manifest.json names no recipe file\n")
            throw ExitCode(Exit.usage)
        }
        // Inputs are named by the paths the run used (relative to its working directory), and some
        // artifacts quote them (document origins, dataset files): re-execute from the same directory.
        if let cwd = manifest["cwd"]?.stringValue, !FileManager.default.changeCurrentDirectoryPath(cwd) {
            printError("kondate verify: the run was made in \(cwd), which does not exist here; inputs are named relative to it\n")
            throw ExitCode(Exit.usage)
        }
        let overrides = (manifest["recipe"]?["overrides"]?.arrayValue ?? []).compactMap(\.stringValue)
        let compilation = RecipeCompiler.compile(path: file, overrides: overrides.map(Override.init), engine: .kondate)
        guard let recipe = compilation.executable else {
            printError(DiagnosticRenderer(sources: compilation.loaded.sources, color: false).render(compilation.diagnostics))
            printError("kondate verify: the recipe \(file) no longer loads; cannot re-execute the run\n")
            throw ExitCode(Exit.usage)
        }
        guard recipe.tree.json.canonicalHash == recorded else {
            printError("kondate verify: \(file) (with \(overrides.isEmpty ? "no overrides" : overrides.joined(separator: " "))) resolves to a different recipe " +
                       "than the run used (SHA-256 \(recipe.tree.json.canonicalHash.prefix(12))… vs \(recorded.prefix(12))…); " +
                       "`kondate diff` the two to see how, or restore the recipe\n")
            throw ExitCode(Exit.usage)
        }
        let isRelease = FileManager.default.fileExists(atPath: path + "/model.safetensors")
        let stages = manifest["stages"]?.arrayValue ?? []
        let finished = stages.filter { $0["status"]?.stringValue != "not run" }.compactMap { $0["id"]?.stringValue }
        guard let last = isRelease ? "release" : finished.last else {
            printError("kondate verify: \(path) records no finished stage\n")
            throw ExitCode(Exit.usage)
        }
        let threads = manifest["layout"]?["threads"]?.intValue ?? ProcessInfo.processInfo.activeProcessorCount
        let directory = out ?? NSTemporaryDirectory() + "kondate-verify-\(UUID().uuidString)"
        defer { if out == nil { try? FileManager.default.removeItem(atPath: directory) } }
        Parallel.threads = threads
        var options = RunPipeline.Options()
        options.until = last
        options.threads = threads
        options.command = ["kondate"] + Array(CommandLine.arguments.dropFirst())
        options.overrides = overrides
        options.kondateVersion = Kondate.version
        options.kondateCommit = Kondate.sourceCommit()
        printError("verify: re-executing \(recipe.name) up to \(last) in \(directory) with \(threads) thread\(threads == 1 ? "" : "s")\n")
        do {
            _ = try RunPipeline(recipe: recipe, directory: directory, options: options, log: { printError("\($0)\n") }).run()
        } catch {
            printError("kondate verify: the re-execution failed: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        var diff = try RunDiff.compare(path, directory)
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
        if json {
            print(JSON.object([("reproduced", .bool(reproduced)), ("release_files_differing", .array(releaseDifferences.map(JSON.string))),
                               ("diff", diff.json)]).rendered())
        } else if reproduced {
            let artifacts = stages.filter { finished.contains($0["id"]?.stringValue ?? "") }
                .reduce(0) { $0 + ($1["outputs"]?.arrayValue?.filter { $0["log"]?.boolValue != true }.count ?? 0) }
            print("reproduced: \(finished.count) stages, \(artifacts) artifacts with identical SHA-256" +
                  (isRelease ? ", and every file of the release" : ""))
        } else {
            print("not reproduced")
            if !releaseDifferences.isEmpty { print("release files that differ: \(releaseDifferences.joined(separator: ", "))") }
            print(diff.text, terminator: "")
        }
        if !reproduced { throw ExitCode(1) }
    }
}
