import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` into the `kondate` target at build time: the git commit of the sources the
/// binary is built from, and whether tracked files differed from it. The command re-runs when the
/// checkout moves (HEAD, the index, the branch's ref) or a source file changes.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo.swift")
        let fm = FileManager.default
        var inputs: [URL] = []
        let git = root.appending(path: ".git")
        for name in ["HEAD", "index", "packed-refs"] where fm.fileExists(atPath: git.appending(path: name).path) {
            inputs.append(git.appending(path: name))
        }
        if let head = try? String(contentsOf: git.appending(path: "HEAD"), encoding: .utf8), head.hasPrefix("ref: ") {
            let ref = git.appending(path: head.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines))
            if fm.fileExists(atPath: ref.path) { inputs.append(ref) }
        }
        if let files = fm.enumerator(at: root.appending(path: "Sources"), includingPropertiesForKeys: nil) {
            for case let file as URL in files where file.pathExtension == "swift" || file.pathExtension == "h" { inputs.append(file) }
        }
        return [.buildCommand(displayName: "Recording the commit Kondate is built from",
                              executable: try context.tool(named: "kondate-buildinfo").url,
                              arguments: [root.path, output.path], inputFiles: inputs, outputFiles: [output])]
    }
}
