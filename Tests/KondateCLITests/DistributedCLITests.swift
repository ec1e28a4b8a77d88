import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KondateSupport
import Testing

/// `kondate run` under a real `mpirun`: every parallel layout trains the single-process model (same
/// global batch) to float rounding, checkpoints reshard, and a dead rank ends the job.
@Suite("kondate run under mpirun", .serialized)
struct DistributedCLITests {
    /// A small pretraining set-up of the example recipe: 4 sequences of 32 tokens per step, in micro-batches of 1.
    static let small = ["--set", "model.seq_len=32", "--set", "pretrain.global_batch=4", "--set", "parallel.micro_batch=1",
                        "--set", "pretrain.log_interval=1", "--set", "pretrain.checkpoint.every=5"]
    static let gpt2 = ["--set", "model.arch=gpt2", "--set", "model.kv_heads=4", "--set", "model.activation=gelu_tanh",
                       "--set", "model.tie_embeddings=true", "--set", "model.max_positions=32"]

    /// A run directory whose corpus stages are done (once per test process), copied for each run.
    static let corpus: String? = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-dist-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        guard let result = try? kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", dir + "/corpus", "--until", "corpus"] + small),
              result.status == 0 else { return nil }
        return dir
    }()

    static func fresh(_ name: String) throws -> String {
        let base = try #require(corpus, "the corpus stages of the example failed")
        let dir = base + "/" + name
        try? FileManager.default.removeItem(atPath: dir)
        let copy = try runProcess(URL(fileURLWithPath: "/bin/cp"), ["-a", base + "/corpus", dir])
        try #require(copy.status == 0, "\(copy.stderr)")
        return dir
    }

    /// `kondate run … --until pretrain` on `ranks` processes (1: no mpirun), the cluster sized to match.
    static func train(_ dir: String, ranks: Int, steps: Int, _ extra: [String] = [], environment: [String: String?] = [:]) throws -> Result {
        let arguments = ["run", "examples/tiny/tiny-llama.yaml", "--out", dir, "--until", "pretrain", "--set", "pretrain.steps=\(steps)",
                         "--set", "cluster.devices_per_node=\(ranks)"] + small + extra
        if ranks == 1 { return try runProcess(binary, arguments, environment: environment) }
        // A hang fails the test instead of blocking CI.
        return try runProcess(URL(fileURLWithPath: "/usr/bin/timeout"), ["--kill-after=10", "240", "mpirun"] +
                              (geteuid() == 0 ? ["--allow-run-as-root"] : []) +
                              ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), binary.path] + arguments, environment: environment)
    }

    /// The training losses (then the held-out losses) of a run's metrics.
    static func losses(_ dir: String) throws -> (train: [Double], heldOut: [Double]) {
        let text = try String(contentsOfFile: dir + "/pretrain/metrics.jsonl", encoding: .utf8)
        let lines = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        return (lines.compactMap { $0["loss"]?.doubleValue }, lines.compactMap { $0["held_out_loss"]?.doubleValue })
    }

    static func expectClose(_ a: [Double], _ b: [Double], relative tolerance: Double, _ what: String) {
        #expect(a.count == b.count && !a.isEmpty, "\(what): \(a.count) vs \(b.count) losses")
        for (i, (x, y)) in zip(a, b).enumerated() {
            #expect(abs(x - y) <= tolerance * abs(x), "\(what): step \(i + 1) loss \(y) vs single-process \(x)")
        }
    }

    /// Single-process references, computed once.
    static let references: [String: (train: [Double], heldOut: [Double])] = {
        var out: [String: (train: [Double], heldOut: [Double])] = [:]
        for (name, steps, extra) in [("llama-20", 20, [String]()), ("llama-8", 8, []), ("gpt2-8", 8, gpt2)] {
            guard let dir = try? fresh("reference-" + name), let result = try? train(dir, ranks: 1, steps: steps, extra), result.status == 0,
                  let losses = try? losses(dir) else { continue }
            out[name] = losses
        }
        return out
    }()

    /// ZeRO-1 shards the optimizer state, ZeRO-2 the gradients too (reduce-scattered layer by layer
    /// during each backward pass): the losses stay the single process's.
    @Test(arguments: [0, 1, 2])
    func dataParallelGivesTheSingleProcessLosses(zero: Int) throws {
        let reference = try #require(Self.references["llama-20"])
        let dir = try Self.fresh("data2-zero\(zero)")
        let result = try Self.train(dir, ranks: 2, steps: 20, ["--set", "parallel.zero_stage=\(zero)"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("2 ranks: tensor 1 × pipeline 1 × data 2" + (zero > 0 ? ", ZeRO-\(zero)" : ",")), "\(result.stderr)")
        let losses = try Self.losses(dir)
        Self.expectClose(reference.train, losses.train, relative: 1e-5, "data 2, ZeRO-\(zero)")
        Self.expectClose(reference.heldOut, losses.heldOut, relative: 1e-5, "held-out")
        // The checkpoint is sharded: one optimizer file per data rank with ZeRO, one without.
        let checkpoint = dir + "/pretrain/checkpoints/step_00000020"
        let files = try FileManager.default.contentsOfDirectory(atPath: checkpoint).sorted()
        #expect(files.contains("layout.json") && files.contains("model-tp00-pp00.safetensors"), "\(files)")
        #expect(files.filter { $0.hasPrefix("optimizer-") }.count == (zero > 0 ? 2 : 1), "\(files)")
        let manifest = try JSONParser.parse(String(contentsOfFile: dir + "/manifest.json", encoding: .utf8))
        #expect(manifest["layout"]?["ranks"]?.intValue == 2 && manifest["layout"]?["data"]?.intValue == 2)
        #expect(manifest["layout"]?["zero"]?.boolValue == (zero > 0) && manifest["layout"]?["zero_stage"]?.intValue == zero)
        // kondate diff explains the difference from the single-process run by the layout.
        let diff = try kondate(["diff", try #require(Self.corpus) + "/reference-llama-20", dir])
        #expect(diff.stdout.contains("layout.data: 1 → 2") && diff.stdout.contains("layout.ranks: 1 → 2"), "\(diff.stdout)")
        #expect(!diff.stdout.contains("Not reproduced"), "\(diff.stdout)")
    }

    /// `kondate verify` re-executes a run made under mpirun in the same layout (starting mpirun itself)
    /// and reproduces it bit for bit; the manifest names the MPI library and the ranks.
    @Test func verifyReproducesATwoRankRunUnderMPI() throws {
        let dir = try Self.fresh("verify-data2")
        let result = try Self.train(dir, ranks: 2, steps: 4)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let manifest = try JSONParser.parse(String(contentsOfFile: dir + "/manifest.json", encoding: .utf8))
        let mpi = manifest["environment"]?["mpi"]
        #expect(mpi?["ranks"]?.intValue == 2 && mpi?["library"]?.stringValue?.contains("MPI") == true, "\(mpi?.rendered() ?? "nil")")
        let verify = try runProcess(URL(fileURLWithPath: "/usr/bin/timeout"), ["--kill-after=10", "300", binary.path, "verify", dir])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("reproduced: ") && verify.stdout.contains("re-executed under mpirun with 2 ranks"), "\(verify.stdout)")
        #expect(verify.stderr.contains("mpirun") && verify.stderr.contains("-np 2"), "\(verify.stderr)")
        // Without mpirun on PATH the run cannot be verified bitwise: status 2, saying why.
        let bare = try runProcess(binary, ["verify", dir], environment: ["PATH": "/nonexistent"])
        #expect(bare.status == 2 && bare.stderr.contains("mpirun is not installed"), "\(bare.stderr)")
    }

    @Test(arguments: [("tensor 2", 2, "llama-8", ["--set", "parallel.tensor=2"]),
                      ("pipeline 2", 2, "llama-8", ["--set", "parallel.pipeline=2"]),
                      ("tensor 2 × pipeline 2", 4, "llama-8", ["--set", "parallel.tensor=2", "--set", "parallel.pipeline=2"]),
                      ("tensor 2 × pipeline 2, full recomputation", 4, "llama-8",
                       ["--set", "parallel.tensor=2", "--set", "parallel.pipeline=2", "--set", "parallel.recompute=full"]),
                      ("gpt2 tensor 2 × pipeline 2, tied", 4, "gpt2-8", gpt2 + ["--set", "parallel.tensor=2", "--set", "parallel.pipeline=2"]),
                      // ZeRO-2 with two micro-batches per rank and the tied embedding summed across stages.
                      ("gpt2 pipeline 2 × data 2, tied, ZeRO-2", 4, "gpt2-8", gpt2 + ["--set", "parallel.pipeline=2", "--set", "parallel.zero_stage=2"])])
    func modelParallelLayoutsGiveTheSingleProcessLosses(name: String, ranks: Int, reference: String, extra: [String]) throws {
        let expected = try #require(Self.references[reference])
        let dir = try Self.fresh(name.replacingOccurrences(of: " ", with: "-"))
        let result = try Self.train(dir, ranks: ranks, steps: 8, extra)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let losses = try Self.losses(dir)
        Self.expectClose(expected.train, losses.train, relative: 1e-4, name)
        Self.expectClose(expected.heldOut, losses.heldOut, relative: 1e-4, name + " held-out")
        // The exported model is whole: the single-process export's tensors and shapes.
        let model = try String(contentsOfFile: dir + "/pretrain/model/config.json", encoding: .utf8)
        #expect(model.contains("\"num_hidden_layers\"") || model.contains("\"n_layer\""))
    }

    /// Data parallel across two hosts (network namespaces joined by a veth pair, MPI over TCP only):
    /// the single-process losses, and the gradients really crossed the link.
    @Test(.enabled(if: TwoHosts.unavailableReason == nil, Comment(rawValue: TwoHosts.unavailableReason ?? "")))
    func dataParallelAcrossTwoHostsOverTCP() throws {
        let reference = try #require(Self.references["llama-8"])
        let dir = try Self.fresh("two-hosts")
        let arguments = [binary.path, "run", "examples/tiny/tiny-llama.yaml", "--out", dir, "--until", "pretrain", "--set", "pretrain.steps=8",
                         "--set", "cluster.devices_per_node=2"] + Self.small
        try withTwoHosts { hosts in
            let before = try hosts.trafficOfHost1()
            let run = try hosts.run(arguments, timeout: 240)
            let after = try hosts.trafficOfHost1()
            #expect(run.status == 0 && !run.timedOut, "\(run.output)")
            #expect(run.stderr.contains("2 ranks: tensor 1 × pipeline 1 × data 2"), "\(run.output)")
            let losses = try Self.losses(dir)
            Self.expectClose(reference.train, losses.train, relative: 1e-5, "data 2 across two hosts")
            // Each step all-reduces every gradient: at least the parameters' bytes each way per step.
            let parameters = 360_768, volume = 8 * parameters * MemoryLayout<Float>.size
            #expect(after.tx - before.tx >= volume && after.rx - before.rx >= volume,
                    "the veth carried \(after.tx - before.tx) / \(after.rx - before.rx) bytes, less than \(volume)")
        }
    }

    @Test func aCheckpointWrittenAtDataTwoResumesOnOneProcess() throws {
        let reference = try #require(Self.references["llama-20"])
        let dir = try Self.fresh("reshard")
        let first = try Self.train(dir, ranks: 2, steps: 20, ["--set", "parallel.zero_stage=1"],
                                   environment: ["KONDATE_STOP_AFTER_STEP": "pretrain:10"])
        #expect(first.status != 0, "the run should stop after step 10")
        let layout = try JSONParser.parse(String(contentsOfFile: dir + "/pretrain/checkpoints/step_00000010/layout.json", encoding: .utf8))
        #expect(layout["data"]?.intValue == 2 && layout["zero"]?.boolValue == true)
        let second = try Self.train(dir, ranks: 1, steps: 20)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("resumed from step 10"), "\(second.stdout)")
        Self.expectClose(reference.train, try Self.losses(dir).train, relative: 1e-5, "data 2 then data 1")
        // And the other way: a single-process checkpoint resumes at tensor 2 × pipeline 2.
        let other = try Self.fresh("reshard-up")
        _ = try Self.train(other, ranks: 1, steps: 20, environment: ["KONDATE_STOP_AFTER_STEP": "pretrain:5"])
        let up = try Self.train(other, ranks: 4, steps: 20, ["--set", "parallel.tensor=2", "--set", "parallel.pipeline=2"])
        #expect(up.status == 0, "\(up.stdout)\(up.stderr)")
        Self.expectClose(reference.train, try Self.losses(other).train, relative: 1e-4, "data 1 then tensor 2 × pipeline 2")
    }

    @Test func aKilledRankEndsTheJobAndTheRunResumes() throws {
        let dir = try Self.fresh("fault")
        let started = Date()
        let killed = try Self.train(dir, ranks: 2, steps: 12, environment: ["KONDATE_FAULT_KILL_RANK": "1:7"])
        let ended = Date().timeIntervalSince1970
        #expect(killed.status != 0, "status \(killed.status): \(killed.stderr)")
        let output = killed.stdout + killed.stderr
        #expect(output.contains("rank 1") && output.contains("signal 9"), "\(output)")
        // The job ends within seconds of the kill, not at the test's timeout.
        let line = try #require(output.split(separator: "\n").first { $0.contains("KONDATE_FAULT_KILL_RANK kills this rank") })
        let killedAt = try #require(Double(line.split(separator: " ").last!.dropLast()))
        print("a killed rank: the job ended \(String(format: "%.1f", ended - killedAt)) s after the kill")
        #expect(ended - killedAt < 30, "the job took \(ended - killedAt) s to end after the kill (\(Date().timeIntervalSince(started)) s in all)")
        // Rank 0 chooses the checkpoint; a rank that does not see it (a filesystem not shared) ends the job
        // at once, naming itself, instead of resuming elsewhere and running mismatched collectives.
        let hidden = try Self.train(dir, ranks: 2, steps: 12, environment: ["KONDATE_FAULT_HIDE_CHECKPOINTS": "1"])
        #expect(hidden.status == 1, "status \(hidden.status): \(hidden.stderr)")
        #expect(hidden.stderr.contains("rank 1: pretrain: checkpoint step 5 is not under") &&
                hidden.stderr.contains("rank 0 resumes from step 5") && hidden.stderr.contains("1 rank does not see that checkpoint"),
                "\(hidden.stdout)\(hidden.stderr)")
        // The last complete checkpoint (step 5) is where the next run starts.
        let again = try Self.train(dir, ranks: 2, steps: 12)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("resumed from step 5"), "\(again.stdout)")
    }

    /// A rank that stops without dying (here: sleeps at step 3) names itself once it has made no MPI call
    /// for the collective deadline, and the job ends instead of waiting for ever.
    @Test func aHungRankEndsTheJobNamingItself() throws {
        let dir = try Self.fresh("hang")
        let started = Date()
        let hung = try Self.train(dir, ranks: 2, steps: 8, environment: ["KONDATE_FAULT_HANG_RANK": "1:3", "KONDATE_COLLECTIVE_DEADLINE": "5"])
        let seconds = Date().timeIntervalSince(started)
        let output = hung.stdout + hung.stderr
        #expect(hung.status != 0 && hung.status != 124 && hung.status != 137, "status \(hung.status): \(output)")
        #expect(output.contains("rank 1 has made no MPI call for") && output.contains("this rank is hung"), "\(output)")
        #expect(seconds < 90, "the job took \(seconds) s to end")
    }

    @Test func aWorldTheLayoutDoesNotDivideIsRefused() throws {
        let dir = try Self.fresh("mismatch")
        let result = try Self.train(dir, ranks: 3, steps: 2, ["--set", "parallel.tensor=2", "--set", "cluster.devices_per_node=4"])
        #expect(result.status != 0)
        // Named at the --set that chose the tensor size.
        #expect(result.stderr.contains("mpirun started 3 ranks, which parallel.tensor 2") && result.stderr.contains("--set"), "\(result.stderr)")
    }
}
