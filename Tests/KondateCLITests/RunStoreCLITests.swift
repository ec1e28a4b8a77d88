import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KondateSupport
import KondateTestSupport
import Testing

/// Stage keys, the content-addressed store, the run manifest and the run-directory lock, as
/// `kondate run` users meet them.
@Suite("kondate run: stage keys, store, manifest and lock", .serialized)
struct RunStoreCLITests {
    static func manifest(_ dir: String) throws -> JSON {
        try JSONParser.parse(try String(contentsOfFile: dir + "/manifest.json", encoding: .utf8))
    }

    static func keys(_ manifest: JSON) -> [String: String] {
        var keys = [String: String]()
        for stage in manifest["stages"]?.arrayValue ?? [] {
            if let id = stage["id"]?.stringValue, let key = stage["key"]?.stringValue { keys[id] = key }
        }
        return keys
    }

    /// Artifact outputs (logs excluded) of every stage that ran or was cached: "stage/path" → SHA-256.
    static func artifacts(_ manifest: JSON) -> [String: String] {
        var out = [String: String]()
        for stage in manifest["stages"]?.arrayValue ?? [] {
            for file in stage["outputs"]?.arrayValue ?? [] where file["log"]?.boolValue != true {
                out["\(stage["id"]?.stringValue ?? "")/\(file["path"]?.stringValue ?? "")"] = file["sha256"]?.stringValue
            }
        }
        return out
    }

    @Test func identicalRunsHaveIdenticalKeysAndOutputs() throws {
        let base = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let arguments = ["run", "examples/tiny/tiny-llama.yaml", "--set", "pretrain.steps=4", "--until", "pretrain"]
        for name in ["a", "b"] {
            let result = try kondate(arguments + ["--out", base + "/" + name, "--threads", name == "a" ? "1" : "2"])
            #expect(result.status == 0, "\(result.stderr)")
        }
        let a = try Self.manifest(base + "/a"), b = try Self.manifest(base + "/b")
        #expect(Self.keys(a) == Self.keys(b))
        let artifacts = Self.artifacts(a)
        #expect(artifacts["pretrain/model/model.safetensors"] != nil)
        #expect(artifacts.count > 10)
        #expect(artifacts == Self.artifacts(b))
        #expect(a["recipe"]?["sha256"] == b["recipe"]?["sha256"])
        // The commit the binary was built from, fixed at build time: a commit of this repository.
        let commit = try #require(a["kondate"]?["git_commit"]?.stringValue, "no git_commit in the manifest")
        let sha = String(commit.prefix { $0 != "+" })
        #expect(sha.count == 40 && sha.allSatisfy(\.isHexDigit) && (commit == sha || commit == sha + "+dirty"), "\(commit)")
        let known = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["git", "-C", root.path, "cat-file", "-e", sha + "^{commit}"])
        #expect(known.status == 0, "\(sha) is not a commit of \(root.path)")
        #expect(a["environment"]?["blas"] != nil && a["layout"]?["threads"] == .int(1))
        #expect(a["inputs"]?.arrayValue?.contains { $0["stage"] == .string("corpus.prepare.ja") && $0["sha256"]?.stringValue?.count == 64 } == true)
        let statuses = (a["stages"]?.arrayValue ?? []).map { "\($0["id"]?.stringValue ?? "") \($0["status"]?.stringValue ?? "")" }
        #expect(statuses.contains("pretrain ran") && statuses.contains("tune.qa not run") && statuses.contains("release not run"))

        // diff says identical; verify re-executes the run elsewhere and reproduces it.
        let diff = try kondate(["diff", base + "/a", base + "/b"])
        #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)")
        #expect(diff.stdout.contains("Identical: same recipe, inputs and stage keys; every artifact has the same SHA-256."))
        #expect(diff.stdout.contains("Weights: 1 of 1 files bitwise identical"), "\(diff.stdout)")
        #expect(diff.stdout.contains("layout.threads: 1 → 2"), "\(diff.stdout)")
        let verify = try kondate(["verify", base + "/a"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("reproduced: 9 stages"), "\(verify.stdout)")

        // A manifest is not trusted: it cannot send verify to another directory, nor set a judge.
        guard case let .object(fields) = a else { return }
        func edited(_ key: String, _ change: (JSON) -> JSON) throws {
            let text = JSON.object(fields.map { $0.0 == key ? ($0.0, change($0.1)) : $0 }).rendered()
            try text.write(toFile: base + "/a/manifest.json", atomically: true, encoding: .utf8)
        }
        try edited("cwd") { _ in .string("/") }
        let elsewhere = try kondate(["verify", base + "/a"])
        #expect(elsewhere.status == 2 && elsewhere.stderr.contains("names the working directory /, outside this directory"),
                "\(elsewhere.stderr)")
        #expect(elsewhere.stderr.contains("--trust-manifest"))
        try edited("recipe") { recipe in
            guard case let .object(entries) = recipe else { return recipe }
            return .object(entries.map { $0.0 == "overrides" ? ($0.0, .array([.string("eval.questions.judge.endpoint=https://judge.example/v1")])) : $0 })
        }
        let judged = try kondate(["verify", base + "/a"])
        #expect(judged.status == 2 && judged.stderr.contains("the manifest's overrides set a judge"), "\(judged.stderr)")
    }

    @Test func keysNameWhatAChangeInvalidates() throws {
        let base = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        // A copy of the example whose English corpus lost its last document.
        let example = base + "/example"
        try FileManager.default.copyItem(atPath: root.path + "/examples/tiny", toPath: example)
        let reference = try kondate(["run", example + "/tiny-llama.yaml", "--out", base + "/ref", "--until", "corpus"])
        #expect(reference.status == 0, "\(reference.stderr)")
        let en = example + "/data/en.jsonl"
        var lines = try String(contentsOfFile: en, encoding: .utf8).split(separator: "\n")
        lines.removeLast()
        try (lines.joined(separator: "\n") + "\n").write(toFile: en, atomically: true, encoding: .utf8)
        let edited = try kondate(["run", example + "/tiny-llama.yaml", "--out", base + "/ref", "--until", "corpus"])
        #expect(edited.status == 0, "\(edited.stderr)")
        #expect(edited.stdout.contains("corpus.prepare.ja: cached"), "\(edited.stdout)")
        // Compare with a run of the unchanged example.
        let original = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", base + "/orig", "--until", "corpus"])
        #expect(original.status == 0, "\(original.stderr)")
        let old = Self.keys(try Self.manifest(base + "/orig")), new = Self.keys(try Self.manifest(base + "/ref"))
        let changed = Set(old.keys.filter { old[$0] != new[$0] })
        let expected: Set<String> = ["corpus.prepare.en", "tokenizer", "corpus.tokenize.ja", "corpus.tokenize.en", "corpus.tokenize.code",
                                     "corpus.mix", "pretrain", "tune.qa", "eval.tasks.pretrain", "eval.tasks.qa", "eval.held_out.pretrain",
                                     "eval.held_out.qa", "eval.questions.qa", "release"]
        #expect(changed == expected)
        let diff = try kondate(["diff", base + "/orig", base + "/ref"])
        #expect(diff.status == 1)
        #expect(diff.stdout.contains("Input files (1)\n  corpus.prepare.en  data/en.jsonl: "), "\(diff.stdout)")
        #expect(diff.stdout.contains("Stages invalidated (14)"), "\(diff.stdout)")
        #expect(diff.stdout.contains("(input file data/en.jsonl)"))
        #expect(diff.stdout.contains("  tokenizer: ") && diff.stdout.contains("(input stage corpus.prepare.en)"))
        #expect(!diff.stdout.contains("  corpus.prepare.ja: "))

        // Another seed changes every key (deduplication hashes with it).
        let seeded = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", base + "/seed", "--until", "corpus.prepare.ja", "--set", "seed=7"])
        #expect(seeded.status == 0, "\(seeded.stderr)")
        let seedKeys = Self.keys(try Self.manifest(base + "/seed"))
        #expect(old.keys.allSatisfy { old[$0] != seedKeys[$0] })
        let seedDiff = try kondate(["diff", base + "/orig", base + "/seed"])
        #expect(seedDiff.status == 1)
        #expect(seedDiff.stdout.contains("Recipe (1 change)\n  seed: 42 → 7"), "\(seedDiff.stdout)")
        #expect(seedDiff.stdout.contains("corpus.prepare.ja: ") && seedDiff.stdout.contains("(recipe value seed)"))
    }

    /// A stage is reused exactly when nothing it reads changed: an edit no runner reads re-runs only the
    /// release (whose model card then shows it), an edit one suite reads re-runs that suite's stage and
    /// the release.
    @Test func unrelatedEditsKeepStagesCachedAndRelevantOnesRerunThem() throws {
        let out = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let small = ["--set", "pretrain.steps=4", "--set", "tune.qa.epochs=0.5", "--set", "eval.tasks.max_samples=2",
                     "--set", "eval.held_out.max_samples=2", "--set", "eval.questions.max_samples=1"]
        func run(_ extra: [String]) throws -> (stdout: String, stderr: String) {
            let r = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out] + small + extra)
            #expect(r.status == 0, "\(r.stderr)")
            return (r.stdout, r.stderr)
        }
        let first = try run([])
        #expect(first.stdout.contains("run: 16 stages ran, 0 cached"), "\(first.stdout)")
        let described = try run(["--set", "description=A described recipe"])
        #expect(described.stdout.contains("run: 1 stage ran, 15 cached"), "\(described.stdout)")
        #expect(described.stdout.contains("release: tiny-llama-qa"))
        let card = try String(contentsOfFile: out + "/release/README.md", encoding: .utf8)
        #expect(card.contains("A described recipe"))
        #expect(card.contains("--set 'description=A described recipe'"), "\(card)")
        let manifest = try Self.manifest(out)
        #expect(card.contains(String(manifest["recipe"]?["sha256"]?.stringValue?.prefix(16) ?? "?")))
        let shorter = try run(["--set", "description=A described recipe", "--set", "eval.questions.max_new_tokens=8"])
        #expect(shorter.stdout.contains("run: 2 stages ran, 14 cached"), "\(shorter.stdout)")
        #expect(!shorter.stdout.contains("eval.questions.qa: cached") && shorter.stdout.contains("eval.tasks.qa: cached"))
    }

    @Test func aRunDirectoryHasOneRecipeAndOneRunAtATime() throws {
        let out = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let first = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--until", "corpus.prepare.code"])
        #expect(first.status == 0, "\(first.stderr)")

        // --only runs just the named stages, and only when their inputs are finished; --force reruns a finished one.
        let only = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--only", "corpus.prepare.en", "--force", "corpus.prepare.en"])
        #expect(only.status == 0, "\(only.stderr)")
        #expect(only.stdout.contains("corpus.prepare.en: 1,806 documents kept") && only.stdout.contains("(forced)"), "\(only.stdout)")
        #expect(only.stdout.contains("run: 1 stage ran, 0 cached"), "\(only.stdout)")
        let early = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--only", "corpus.tokenize.ja"])
        #expect(early.status == 1)
        #expect(early.stderr.contains("corpus.tokenize.ja needs tokenizer, which has not run"), "\(early.stderr)")

        // Another recipe is refused unless forced.
        let other = try kondate(["run", "examples/tiny/pretrain-small.yaml", "--out", out, "--until", "corpus.prepare.code"])
        #expect(other.status == 1)
        #expect(other.stderr.contains("holds a run of recipe 'tiny-llama', not 'tiny-llama-pretrain'"), "\(other.stderr)")

        // A second run while the directory is locked names the holder.
        let fd = open(out + "/run.lock", O_RDWR)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        _ = ftruncate(fd, 0)
        _ = "pid 4242 on testhost: kondate run\n".withCString { pwrite(fd, $0, strlen($0), 0) }
        let locked = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--until", "corpus.prepare.code"])
        #expect(locked.status == 1)
        #expect(locked.stderr.contains("is in use by another kondate run (pid 4242 on testhost: kondate run)"), "\(locked.stderr)")
    }

    /// SIGKILL during pretraining, then the same command: the run resumes from the last checkpoint and
    /// ends with the bytes of a run that was never interrupted.
    @Test func aRunKilledDuringPretrainingEndsWithTheSameBytes() throws {
        let base = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        // Short sequences: debug builds (CI) train slowly.
        let arguments = ["run", "examples/tiny/tiny-llama.yaml", "--until", "pretrain", "--set", "model.seq_len=64", "--set", "pretrain.steps=40",
                         "--set", "pretrain.checkpoint.every=5", "--set", "pretrain.checkpoint.keep=50"]
        let reference = try kondate(arguments + ["--out", base + "/ref"])
        #expect(reference.status == 0, "\(reference.stderr)")

        let out = base + "/killed"
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments + ["--out", out]
        process.currentDirectoryURL = root
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: out + "/pretrain/checkpoints/step_00000010"), process.isRunning, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(!FileManager.default.fileExists(atPath: out + "/pretrain/model/model.safetensors"), "killed too late to test a resume")

        let resumed = try kondate(arguments + ["--out", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming from"), "\(resumed.stderr)")
        #expect(Self.artifacts(try Self.manifest(out)) == Self.artifacts(try Self.manifest(base + "/ref")))
        let a = try Data(contentsOf: URL(fileURLWithPath: out + "/pretrain/model/model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: base + "/ref/pretrain/model/model.safetensors"))
        #expect(a == b)
    }

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), to fill a disk on purpose.
    static let canMountTmpfs: Bool = {
        guard geteuid() == 0 else { return false }
        let dir = NSTemporaryDirectory() + "kondate-mount-probe-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard command("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]) == 0 else { return false }
        _ = command("/bin/umount", [dir])
        return true
    }()

    @discardableResult
    static func command(_ path: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The disk fills while a checkpoint is written: the run stops with a message that says so, the
    /// earlier checkpoint is intact and nothing half-written is left behind.
    @Test(.enabled(if: canMountTmpfs, "needs to mount a small tmpfs (root)"))
    func aFullDiskLeavesThePreviousCheckpoint() throws {
        let out = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let arguments = ["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--set", "pretrain.steps=12", "--set", "pretrain.checkpoint.every=6",
                         "--set", "pretrain.checkpoint.keep=5"]
        let corpus = try kondate(arguments + ["--until", "corpus"])
        #expect(corpus.status == 0, "\(corpus.stderr)")
        let key = try #require(Self.keys(try Self.manifest(out))["pretrain"])
        // The pretrain stage's store directory on a 6 MiB file system: one checkpoint (4.4 MB) fits, two do not.
        let store = out + "/store/pretrain/" + key.prefix(16)
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        #expect(Self.command("/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", store]) == 0)
        defer { Self.command("/bin/umount", [store]) }
        let full = try kondate(arguments + ["--until", "pretrain"])
        #expect(full.status == 1)
        #expect(full.stderr.contains("step_00000012: cannot write the checkpoint"), "\(full.stderr)")
        #expect(full.stderr.contains("the previous checkpoint step_00000006 is intact; free space and run the same command again to resume"))
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: store + "/checkpoints").sorted()
        #expect(checkpoints == ["step_00000006"])
        #expect(FileManager.default.fileExists(atPath: store + "/checkpoints/step_00000006/SHA256SUMS"))
    }
}
