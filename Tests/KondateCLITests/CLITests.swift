import Foundation
import Testing
import KondateSupport

import KondateTestSupport

/// Runs the built `kondate` binary and checks exit codes and output, as a user sees them.
let root = repositoryRoot

/// The directory holding the test bundle also holds the `kondate` product.
let binary: URL = {
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("kondate")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir.deleteLastPathComponent()
    }
    return Bundle.main.bundleURL.appendingPathComponent("kondate")
}()

struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
    var signalled: Bool
}

func kondate(_ arguments: [String], cwd: URL = root) throws -> Result {
    try runProcess(binary, arguments, cwd: cwd)
}

/// Runs a program to completion with no standard input, `NO_COLOR=1`, the test's environment changed by
/// `environment` (a nil value removes a variable), and returns its status and output.
func runProcess(_ executable: URL, _ arguments: [String], cwd: URL = root, environment: [String: String?] = [:]) throws -> Result {
    let (process, out, err) = testProcess(executable, arguments, cwd: cwd, environment: environment)
    try process.run()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Result(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                  stderr: String(decoding: stderrData, as: UTF8.self), signalled: process.terminationReason == .uncaughtSignal)
}

/// A process with no standard input, `NO_COLOR=1`, the test's environment changed by `environment` (a nil
/// value removes a variable), and pipes for its standard output and error; not started.
func testProcess(_ executable: URL, _ arguments: [String], cwd: URL, environment: [String: String?]) -> (Process, out: Pipe, err: Pipe) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = cwd
    var env = ProcessInfo.processInfo.environment
    env["NO_COLOR"] = "1"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    return (process, out, err)
}

@Suite("kondate command line")
struct CLITests {
    @Test func validateExitCodes() throws {
        let ok = try kondate(["validate", "recipes/llm-jp-13b-v2.0.yaml"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("valid"))
        let bad = try kondate(["validate", "recipes/llm-jp-13b-v2.0.yaml", "--set", "model.hiden=1"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("--set:1:7: error: unknown key 'hiden' in 'model'; did you mean 'hidden'?"))
        #expect(bad.stderr.contains("--set model.hiden=1"))
        let usage = try kondate(["validate", "--no-such-flag", "x.yaml"])
        #expect(usage.status == 2)
        let noCommand = try kondate(["frobnicate"])
        #expect(noCommand.status == 2)
        let help = try kondate(["--help"])
        #expect(help.status == 0 && help.stdout.contains("validate"))
    }

    @Test func validateJSON() throws {
        let r = try kondate(["validate", "Tests/KondateRecipeTests/Fixtures/bad/unknown-key-model.yaml", "--json"])
        #expect(r.status == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["valid"] as? Bool == false)
        let first = try #require((json["diagnostics"] as? [[String: Any]])?.first)
        #expect(first["line"] as? Int == 8 && first["column"] as? Int == 3)
        #expect(first["code"] as? String == "unknown-key")
        #expect(first["fix_it"] as? String == "hidden")
    }

    @Test func planJSONHasTheDocumentedKeys() throws {
        let r = try kondate(["plan", "recipes/llm-jp-13b-v2.0.yaml", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["parameters"] as? Int == 13_681_710_080)
        #expect(json["training_tokens"] as? Int == 255_852_544_000)
        #expect(json["steps"] as? Int == 61_000)
        let parallel = try #require(json["parallel"] as? [String: Any])
        #expect(parallel["tensor"] as? Int == 2 && parallel["pipeline"] as? Int == 4 && parallel["data"] as? Int == 16)
        #expect((json["flops"] as? Double ?? 0) > 1e22)
        let memory = try #require(json["memory_per_device_bytes"] as? Int)
        #expect(memory > 0 && memory < 40 << 30)
        #expect((json["estimated_seconds"] as? Double ?? 0) > 0)
        let stages = try #require(json["stages"] as? [[String: Any]])
        #expect(stages.contains { $0["id"] as? String == "pretrain" && $0["kind"] as? String == "pretrain" && ($0["inputs"] as? [String])?.contains("corpus.mix") == true })
        #expect((json["recipe"] as? [String: Any])?["name"] as? String == "llm-jp-13b-v2.0")
    }

    @Test func planTextAndMFUOverride() throws {
        let r = try kondate(["plan", "recipes/llm-jp-13b-v2.0.yaml", "--mfu", "0.5", "--resolved"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("13,681,710,080"))
        #expect(r.stdout.contains("50.0% MFU"))
        #expect(r.stdout.contains("arch: llama"))
        #expect(r.stdout.contains("llm-jp-13b-v1.0.yaml:"), "resolved values name their origin file")
        #expect(try kondate(["plan", "recipes/llm-jp-13b-v2.0.yaml", "--mfu", "7"]).status == 2)
    }

    @Test func diffOfTheTwoReleasesReadsLikeReleaseNotes() throws {
        let r = try kondate(["diff", "recipes/llm-jp-13b-v1.0.yaml", "recipes/llm-jp-13b-v2.0.yaml"])
        #expect(r.status == 1)
        for fragment in ["arch", "gpt2 → llama", "seq_len", "2048 → 4096", "activation", "gelu → swiglu", "ffn", "20480 → 13824",
                         "sources.ja_mc4", "sources.ja_cc", "130,050,000,000", "code10k_en20k_ja30k.ver2.1.model → tokenizers/code20k_en40k_ja60k.ver2.2.model",
                         "tensor", "1 → 2", "pipeline", "8 → 4", "steps", "87870 → 61000", "parameters", "12.86B → 13.68B", "1×8×12 → 2×4×16",
                         "answer_carefully"] {
            #expect(r.stdout.contains(fragment), "diff lacks '\(fragment)'")
        }
        let same = try kondate(["diff", "recipes/llm-jp-13b-v2.0.yaml", "recipes/llm-jp-13b-v2.0.yaml"])
        #expect(same.status == 0 && same.stdout.contains("identical"))
        let json = try kondate(["diff", "recipes/llm-jp-13b-v1.0.yaml", "recipes/llm-jp-13b-v2.0.yaml", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let changes = try #require(object["changes"] as? [[String: Any]])
        #expect(changes.contains { $0["path"] as? String == "model.arch" && $0["old"] as? String == "gpt2" && $0["new"] as? String == "llama" })
        #expect(try kondate(["diff", "recipes/llm-jp-13b-v2.0.yaml", "Tests/KondateRecipeTests/Fixtures/bad/unknown-key-model.yaml"]).status == 2)
    }

    @Test func graphFormats() throws {
        let dot = try kondate(["graph", "examples/tiny/tiny-llama.yaml"])
        #expect(dot.status == 0 && dot.stdout.hasPrefix("digraph"))
        let mermaid = try kondate(["graph", "examples/tiny/tiny-llama.yaml", "--format", "mermaid"])
        #expect(mermaid.stdout.hasPrefix("flowchart LR"))
        let json = try kondate(["graph", "examples/tiny/tiny-llama.yaml", "--format", "json"])
        let stages = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(stages.first { $0["id"] as? String == "tokenizer" }?["kind"] as? String == "tokenizer.train")
    }

    @Test func schemaIsJSON() throws {
        let r = try kondate(["schema"])
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
    }

    /// Random mutations of a real recipe never crash or hang the tool; exit codes stay 0, 1 or 2.
    @Test func mutatedRecipesNeverCrash() throws {
        let v1 = try String(contentsOf: root.appendingPathComponent("recipes/llm-jp-13b-v1.0.yaml"), encoding: .utf8)
        let v2 = try String(contentsOf: root.appendingPathComponent("recipes/llm-jp-13b-v2.0.yaml"), encoding: .utf8)
        let dir = try temporaryRecipes(["llm-jp-13b-v1.0.yaml": v1])
        var rng = SplitMix64(seed: 20241129)
        let inserts = [":", " ", "\n", "[", "]", "{", "}", "&a", "*a", "!", "#", "'", "\"", "${", "}", "-", "0", "9e99", "\t", "？"]
        var lines = v2.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for round in 0..<40 {
            var mutated = lines
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(mutated.count))
                switch rng.next() % 4 {
                case 0: mutated.remove(at: i)
                case 1: mutated.insert(mutated[Int(rng.next() % UInt64(mutated.count))], at: i)
                case 2:
                    var chars = Array(mutated[i])
                    let at = chars.isEmpty ? 0 : Int(rng.next() % UInt64(chars.count))
                    chars.insert(contentsOf: inserts[Int(rng.next() % UInt64(inserts.count))], at: at)
                    mutated[i] = String(chars)
                default:
                    var chars = Array(mutated[i])
                    if !chars.isEmpty { chars.remove(at: Int(rng.next() % UInt64(chars.count))) }
                    mutated[i] = String(chars)
                }
            }
            let file = dir.appendingPathComponent("mutant-\(round).yaml")
            try Data(mutated.joined(separator: "\n").utf8).write(to: file)
            let r = try kondate(["validate", file.path])
            #expect(!r.signalled && [0, 1, 2].contains(r.status), "mutant \(round) exited \(r.status): \(r.stderr.suffix(300))")
            if round % 10 == 9 { lines = mutated }
        }
    }
}

@Suite("Extreme values never trap")
struct ExtremeValueTests {
    @Test func hugeBudgetsAndTinyPeaksAreReportedNotCrashed() throws {
        let recipe = """
        name: extreme
        cluster: {peak_flops: 1e-300, device_memory: 1}
        tokenizer: {path: t.json, vocab_size: 16777216}
        corpus:
          sources:
            a: {paths: [a.jsonl], budget: 8000000000000000000}
            b: {paths: [b.jsonl], budget: 8000000000000000000}
        model: {arch: gpt2, hidden: 1048576, layers: 10000, heads: 65536, seq_len: 16777216, vocab_size: auto}
        pretrain: {global_batch: 1073741824, steps: 8000000000000000000, optimizer: {lr: 1e-3}}
        """
        let dir = try temporaryRecipes(["r.yaml": recipe])
        for command in [["validate"], ["plan"], ["plan", "--json"], ["graph"]] {
            let r = try kondate(command + [dir.appendingPathComponent("r.yaml").path])
            #expect(!r.signalled && [0, 1, 2].contains(r.status), "\(command) exited \(r.status): \(r.stderr.suffix(400))")
        }
    }
}

@Suite("kondate tokenize and dataset")
struct TokenizeCLITests {
    let spm = "Tests/KondateTokenizersTests/Fixtures/tokenizers/spm/llmjp-unigram.model"
    let hf = "Tests/KondateTokenizersTests/Fixtures/tokenizers/hf/bytelevel-bpe.json"

    @Test func encodeAndDecodeRoundTrip() throws {
        for tokenizer in [spm, hf] {
            let encoded = try kondate(["tokenize", "--tokenizer", tokenizer, "--text", "日本語と English 123"])
            #expect(encoded.status == 0, "\(encoded.stderr)")
            let ids = encoded.stdout.trimmingCharacters(in: .newlines)
            #expect(!ids.isEmpty && ids.split(separator: " ").allSatisfy { Int($0) != nil })
            let decoded = try kondate(["tokenize", "--tokenizer", tokenizer, "--decode", "--text", ids])
            #expect(decoded.stdout == "日本語と English 123\n")
        }
    }

    @Test func fileInputGivesJSONLinesInOrder() throws {
        let dir = try temporaryRecipes(["in.txt": "first line\n二行目\n\nlast\n"])
        let r = try kondate(["tokenize", "--tokenizer", spm, "--file", dir.appendingPathComponent("in.txt").path, "--json"])
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 4)
        let arrays = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Int]) }
        #expect(arrays[2].isEmpty)
        let single = try kondate(["tokenize", "--tokenizer", spm, "--text", "二行目", "--json"])
        #expect(single.stdout.trimmingCharacters(in: .newlines) == String(lines[1]))
    }

    @Test func badInputsExitCleanly() throws {
        #expect(try kondate(["tokenize", "--tokenizer", "no-such.model", "--text", "x"]).status == 1)
        #expect(try kondate(["tokenize", "--tokenizer", spm]).status == 2)
        #expect(try kondate(["tokenize", "--tokenizer", spm, "--decode", "--text", "1 two 3"]).status == 1)
        #expect(try kondate(["tokenize", "--tokenizer", spm, "--decode", "--text", "99999999"]).status == 1)
        let dir = try temporaryRecipes(["garbage.model": "\u{08}\u{FF}not a protobuf at all"])
        let garbage = try kondate(["tokenize", "--tokenizer", dir.appendingPathComponent("garbage.model").path, "--text", "x"])
        #expect(garbage.status == 1 && garbage.stderr.contains("garbage.model"))
        #expect(try kondate(["dataset", "info", dir.appendingPathComponent("nothing").path]).status == 1)
    }
}
