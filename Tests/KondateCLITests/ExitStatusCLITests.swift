import Foundation
import KondateTestSupport
import Testing

/// Exit statuses (docs/runs.md): 0 clean, 1 for what the user fixes — a recipe error, a bad input, a
/// missing stage input, another recipe's run directory — with a diagnostic that carries its code, 2 for
/// usage errors and for bugs in Kondate (which say so), 130/143 for a stop by SIGINT/SIGTERM.
@Suite("Exit statuses and runtime diagnostics", .serialized)
struct ExitStatusCLITests {
    @Test func usageAndRecipeErrors() throws {
        #expect(try kondate(["validate", "examples/tiny/tiny-llama.yaml"]).status == 0)
        #expect(try kondate(["validate", "examples/tiny/tiny-llama.yaml", "--set", "model.hiden=3"]).status == 1)
        #expect(try kondate(["validate", "examples/tiny/tiny-llama.yaml", "--no-such-flag"]).status == 2)
        #expect(try kondate(["run", "examples/tiny/tiny-llama.yaml", "--until", "nowhere"]).status == 1)
    }

    /// A failure injected as a broken invariant exits 2 and names itself a bug in Kondate.
    @Test func anInternalErrorExitsTwoAndSaysItIsABug() throws {
        let out = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try runProcess(binary, ["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--until", "corpus"],
                               environment: ["KONDATE_FAULT_INTERNAL": "corpus.prepare.code"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("internal error: KONDATE_FAULT_INTERNAL") && r.stderr.contains("bug in Kondate") && r.stderr.contains("[internal-error]"),
                "\(r.stderr)")
    }

    /// Runtime failures carry their own codes, at the file and line at fault.
    @Test func runtimeFailuresHaveTheirCodes() throws {
        let base = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        // A malformed corpus line with on_error: fail → input-data at that line.
        let example = base + "/example"
        try FileManager.default.copyItem(atPath: root.path + "/examples/tiny", toPath: example)
        let code = example + "/data/code.jsonl"
        let text = try String(contentsOfFile: code, encoding: .utf8)
        try ("{\"text\": \"broken\n" + text).write(toFile: code, atomically: true, encoding: .utf8)
        let bad = try kondate(["run", example + "/tiny-llama.yaml", "--out", base + "/bad", "--until", "corpus", "--set", "corpus.on_error=fail"])
        #expect(bad.status == 1, "\(bad.stderr)")
        #expect(bad.stderr.contains("code.jsonl:1:1: error: malformed JSON") && bad.stderr.contains("[input-data]"), "\(bad.stderr)")
        // A stage whose input has not run → stage-input.
        let only = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", base + "/empty", "--only", "pretrain"])
        #expect(only.status == 1 && only.stderr.contains("[stage-input]"), "\(only.stderr)")
        // Another recipe's run directory → run-directory.
        let first = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", base + "/dir", "--until", "corpus.prepare.code", "--only", "corpus.prepare.code"])
        #expect(first.status == 0, "\(first.stderr)")
        let other = try kondate(["run", "examples/tiny/pretrain-small.yaml", "--out", base + "/dir", "--until", "corpus"])
        #expect(other.status == 1 && other.stderr.contains("[run-directory]"), "\(other.stderr)")
    }
}
