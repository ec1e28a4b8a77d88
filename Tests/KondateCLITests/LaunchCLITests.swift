import Foundation
import Testing

/// `kondate launch`: exit statuses, the printed mpirun line, scripts that bash accepts, refusals at
/// file:line:col, `--execute` through a stand-in mpirun, and the Megatron data paths on a real corpus.
@Suite("kondate launch")
struct LaunchCLITests {
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-launch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The 13B recipe as a CPU smoke test on Kondate's runtime (which refuses its GPUs, bf16,
    /// recomputation and sequence parallelism).
    static let onCPU = ["--set", "cluster.device=cpu", "--set", "pretrain.precision=fp32", "--set", "cluster.device_memory=1TiB",
                        "--set", "parallel.recompute=none", "--set", "parallel.sequence_parallel=false"]

    @Test func megatronLaunchOfThe13BRecipe() throws {
        let r = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--engine", "megatron"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["--tensor-model-parallel-size 2", "--pipeline-model-parallel-size 4", "--tokenizer-type SentencePieceTokenizer",
                     "--global-batch-size 1024", "--train-iters 61000", "--lr 3e-4", "--min-lr 3e-5", "--num-query-groups 40"] {
            #expect(r.stdout.contains("\n    \(line)\n"), "\(line)")
        }
        for source in ["ja_cc", "ja_wiki", "en_wiki", "en_pile", "code_stack"] {
            #expect(r.stdout.contains(" \(root.path)/runs/llm-jp-13b-v2.0/corpus/tokens/\(source)/\(source)\n"), "\(source)")
        }
        #expect(r.stdout.contains("exec torchrun --nnodes=16 --nproc-per-node=8 "))
        #expect(!r.stderr.contains("keeps every checkpoint"))   // keep derives 0 on GPUs
        #expect(r.stderr.contains("note: Megatron-LM runs the pretraining only"))
    }

    @Test func mpirunLineQuotesPaths() throws {
        // Kondate's runtime refuses the GPU recipe as written, naming the key and the alternatives.
        let gpu = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--mpirun"])
        #expect(gpu.status == 1 && gpu.stderr.contains("cluster.device 'a100-40gb' is a GPU") && gpu.stderr.contains("nothing launched (--engine kondate)"))
        let r = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--mpirun", "--hostfile", "hosts file", "--run-dir", "/tmp/run dir"] + Self.onCPU + ["--", "--threads", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = r.stdout.trimmingCharacters(in: .newlines)
        #expect(!line.contains("\n"))
        #expect(line.hasPrefix(getuid() == 0 ? "mpirun --allow-run-as-root -np 128 " : "mpirun -np 128 "))
        #expect(line.contains("--hostfile '\(root.path)/hosts file' --map-by ppr:8:node --bind-to none "))
        #expect(line.contains(" run \(root.path)/recipes/llm-jp-13b-v2.0.yaml --set cluster.device=cpu "))   // the overrides travel with it
        #expect(line.hasSuffix(" --run-dir '/tmp/run dir' --threads 4"))
        // The default engine and mode are the same line.
        let plain = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--run-dir", "/tmp/run dir"] + Self.onCPU)
        #expect(plain.status == 0 && plain.stdout.hasPrefix("mpirun "))
    }

    @Test func scriptsAreWrittenExecutableAndParse() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [[String]] = [
            ["--slurm", "--set", "cluster.partition=gpu", "--set", "cluster.time_limit=48:00:00"] + Self.onCPU,
            ["--engine", "megatron"], ["--engine", "megatron", "--slurm"], ["--engine", "megatron", "--mpirun", "--megatron-path", "/opt/Megatron-LM"],
        ]
        for (k, options) in cases.enumerated() {
            let file = dir.appendingPathComponent("launch \(k).sh").path
            let r = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--run-dir", dir.appendingPathComponent("it's a run").path, "--output", file] + options)
            #expect(r.status == 0, "\(options): \(r.stderr)")
            #expect(r.stdout.isEmpty)
            let permissions = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(permissions == 0o755)
            let check = try runProcess(URL(fileURLWithPath: "/bin/bash"), ["-n", file])
            #expect(check.status == 0, "\(options): \(check.stderr)")
            let text = try String(contentsOfFile: file, encoding: .utf8)
            if options.contains("--slurm") { #expect(text.contains("#SBATCH --nodes=16\n")) }
            if options.first == "--slurm" { #expect(text.contains("#SBATCH --partition=gpu\n") && text.contains("#SBATCH --time=48:00:00\n")) }
            #expect(text.contains("'\(dir.path)/it'\\''s a run"), "\(options)")
        }
    }

    @Test func refusalsAndUsageErrors() throws {
        let refused = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--engine", "megatron", "--set", "pretrain.nan_policy=skip"])
        #expect(refused.status == 1)
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderr.contains("--set:1:21: error: pretrain.nan_policy 'skip' cannot be expressed in Megatron-LM"))
        #expect(refused.stderr.contains("nothing launched (--engine megatron)"))
        let time = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--slurm", "--set", "cluster.time_limit=2 days"])
        #expect(time.status == 1)
        #expect(time.stderr.contains("--set:1:20: error: cluster.time_limit '2 days' is not a Slurm time limit"))
        let invalid = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml", "--set", "model.hiden=1"])
        #expect(invalid.status == 1 && invalid.stderr.contains("nothing launched"))
        for usage in [["--mpirun", "--slurm"], ["--engine", "megatron", "--execute"], ["--slurm", "--hostfile", "h"], ["--engine", "megatron", "--hostfile", "h"],
                      ["--megatron-path", "/opt/m"], ["--execute", "--output", "x"], ["--engine", "deepspeed"],
                      ["--run-dir", "a", "--", "--run-dir", "b"]] {
            let r = try kondate(["launch", "recipes/llm-jp-13b-v2.0.yaml"] + usage)
            #expect(r.status == 2, "\(usage): \(r.stderr)")
        }
    }

    /// `--execute` replaces kondate with mpirun (found on PATH) and so exits with its status.
    @Test func executeRunsMpirun() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("mpirun")
        try Data("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/arguments\"\nexit 3\n".utf8).write(to: fake)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let path = dir.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try runProcess(binary, ["launch", "examples/tiny/tiny-llama.yaml", "--mpirun", "--execute", "--run-dir", "/tmp/x y", "--", "--until", "corpus"],
                               environment: ["PATH": path])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("+ mpirun "))
        let arguments = try String(contentsOf: dir.appendingPathComponent("arguments"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(arguments.contains("-np") && arguments[arguments.firstIndex(of: "-np")! + 1] == "1")
        #expect(Array(arguments.suffix(6)) == ["run", "\(root.path)/examples/tiny/tiny-llama.yaml", "--run-dir", "/tmp/x y", "--until", "corpus"])
        let missing = try runProcess(binary, ["launch", "examples/tiny/tiny-llama.yaml", "--execute"], environment: ["PATH": dir.appendingPathComponent("none").path])
        #expect(missing.status == 2 && missing.stderr.contains("cannot run mpirun"))
    }

    /// On a corpus Kondate prepared, every Megatron data prefix names a .bin/.idx pair and the weights
    /// are the corpus.mix stage's shares.
    @Test func megatronDataPathsExistAfterTheCorpusStages() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = try kondate(["corpus", "examples/tiny/tiny-llama.yaml", "--out", dir.path])
        #expect(corpus.status == 0, "\(corpus.stderr)")
        let r = try kondate(["launch", "examples/tiny/tiny-llama.yaml", "--engine", "megatron", "--set", "cluster.device=a100-40gb",
                             "--set", "pretrain.checkpoint.keep=0", "--run-dir", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("measured by the corpus.mix stage (\(dir.path)/corpus/mix/mixture.json)"))
        let mixture = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("corpus/mix/mixture.json"))) as? [String: Any])
        let shares = Dictionary(uniqueKeysWithValues: ((mixture["sources"] as? [[String: Any]]) ?? []).map { ($0["name"] as! String, $0["requested_share"] as! Double) })
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let start = try #require(lines.firstIndex(of: "    --data-path"))
        var found: [String: Double] = [:]
        for line in lines[(start + 1)...] where line.hasPrefix("        ") {
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: " ").map(String.init)
            #expect(parts.count == 2)
            let prefix = parts[1]
            #expect(FileManager.default.fileExists(atPath: prefix + ".bin") && FileManager.default.fileExists(atPath: prefix + ".idx"), "\(prefix)")
            found[URL(fileURLWithPath: prefix).lastPathComponent] = Double(parts[0])
        }
        #expect(found == shares)
        #expect(r.stdout.contains("\n    --split 98,2,0\n"))
        #expect(r.stdout.contains("\n    --tokenizer-type HuggingFaceTokenizer\n    --tokenizer-model \(dir.path)/tokenizer\n"))
        #expect(r.stderr.contains("tokenizer_config.json"))
    }
}
