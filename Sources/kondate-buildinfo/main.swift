import Foundation

// kondate-buildinfo ROOT OUTPUT: writes OUTPUT, a Swift file stating the git commit of ROOT (nil when
// ROOT is not a git checkout or git is missing) and whether tracked files differ from it. Run by the
// BuildInfo build plugin; the `kondate` binary records these in every run manifest.
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: kondate-buildinfo ROOT OUTPUT\n".utf8))
    exit(2)
}
let root = arguments[1], output = arguments[2]

func git(_ args: [String]) -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "-C", root] + args
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

var commit = "nil"
var dirty = "false"
if FileManager.default.fileExists(atPath: root + "/.git"), let head = git(["rev-parse", "HEAD"]), head.count == 40,
   head.allSatisfy({ $0.isHexDigit }) {
    commit = "\"\(head)\""
    dirty = (git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty ? "false" : "true"
}
let text = """
// Generated at build time by kondate-buildinfo (Plugins/BuildInfoPlugin); do not edit.
enum BuildInfo {
    /// The git commit the binary was built from; nil outside a git checkout.
    static let commit: String? = \(commit)
    /// Whether tracked files differed from that commit when it was built.
    static let dirty = \(dirty)
}

"""
// Only rewrite when the text changes, so an unchanged commit does not recompile the target.
if (try? String(contentsOfFile: output, encoding: .utf8)) != text {
    do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch {
        FileHandle.standardError.write(Data("kondate-buildinfo: cannot write \(output): \(error)\n".utf8))
        exit(1)
    }
}
