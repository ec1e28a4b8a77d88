import Foundation
import KondateRuntime
import KondateSupport
import KondateTestSupport
import Testing

/// `kondate run`, `score`, `generate` and `bench train` as a user runs them.
@Suite("kondate runtime commands", .serialized)
struct RuntimeCLITests {
    static let llamaExport = root.path + "/Tests/KondateModelTests/Fixtures/roundtrip/llama"

    static func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "kondate-cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func json(_ text: String) throws -> JSON {
        try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// A short run of the example recipe: the loss falls, a Hugging Face model and checkpoints are
    /// written; running again skips every finished stage; a damaged output is recomputed (pretraining
    /// resumes from its last checkpoint and gives the same bytes); a damaged checkpoint is named.
    @Test func runPretrainsCachesAndRecomputes() throws {
        let out = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let arguments = ["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--set", "pretrain.steps=12", "--set", "pretrain.checkpoint.every=6",
                         "--set", "pretrain.log_interval=3", "--set", "pretrain.eval_interval=6", "--set", "tune.qa.epochs=0.05",
                         "--until", "tune"]
        let first = try kondate(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("pretrain: 12 steps"))
        #expect(first.stdout.contains("not run (--until tune): eval.tasks.pretrain, eval.tasks.qa, eval.held_out.pretrain"), "\(first.stdout)")
        #expect(first.stdout.contains("tune.qa: 324 examples, 2 steps"), "\(first.stdout)")
        #expect(first.stdout.contains("run: 10 stages ran, 0 cached; manifest: \(out)/manifest.json"), "\(first.stdout)")
        for f in ["model/model.safetensors", "model/tokenizer.json", "metrics.jsonl", "summary.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/tune/qa/" + f), "\(f)")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/pretrain").hasPrefix("store/pretrain/"))
        let summary = try Self.json(try String(contentsOfFile: out + "/pretrain/summary.json", encoding: .utf8))
        let firstLoss = try #require(summary["first_loss"]?.doubleValue), finalLoss = try #require(summary["final_loss"]?.doubleValue)
        #expect(finalLoss < firstLoss - 0.5, "loss \(firstLoss) → \(finalLoss)")
        for f in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/pretrain/model/" + f), "\(f)")
        }
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: out + "/pretrain/checkpoints").sorted()
        #expect(checkpoints == ["step_00000006", "step_00000012"])
        let metrics = try String(contentsOfFile: out + "/pretrain/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 4 + 2)   // steps 3, 6, 9, 12 and two held-out evaluations
        // The same scalars for TensorBoard.
        let events = try #require(try FileManager.default.contentsOfDirectory(atPath: out + "/pretrain").first { $0.hasPrefix("events.out.tfevents.") })
        let scalars = try TensorBoardReader.scalars(path: out + "/pretrain/" + events)
        #expect(scalars.filter { $0.tag == "train/loss" }.map(\.step) == [3, 6, 9, 12])
        #expect(scalars.filter { $0.tag == "eval/held_out_loss" }.map(\.step) == [6, 12])
        let lastLoss = try Self.json(String(metrics[4]))["loss"]?.doubleValue
        #expect(scalars.last { $0.tag == "train/loss" }?.value == lastLoss.map { Double(Float($0)) })
        let weightsPath = out + "/pretrain/model/model.safetensors"
        let weights = try Data(contentsOf: URL(fileURLWithPath: weightsPath))

        let again = try kondate(arguments)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("pretrain: cached (key "), "\(again.stdout)")
        #expect(again.stdout.contains("run: 0 stages ran, 10 cached"), "\(again.stdout)")

        // A damaged output: the stage runs again, resumes from its step-12 checkpoint, and writes the same bytes.
        var bytes = [UInt8](weights)
        bytes[bytes.count - 5] ^= 0x80
        try Data(bytes).write(to: URL(fileURLWithPath: weightsPath))
        let repaired = try kondate(arguments)
        #expect(repaired.status == 0, "\(repaired.stderr)")
        #expect(repaired.stderr.contains("warning: pretrain: pretrain/model/model.safetensors does not match its recorded SHA-256; recomputing"),
                "\(repaired.stderr)")
        #expect(repaired.stderr.contains("resuming from"))
        #expect(repaired.stdout.contains("run: 1 stage ran, 9 cached"), "\(repaired.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: weightsPath)) == weights)

        // A damaged checkpoint stops the resume with the file named.
        let optimizer = out + "/pretrain/checkpoints/step_00000012/optimizer.safetensors"
        var state = [UInt8](try Data(contentsOf: URL(fileURLWithPath: optimizer)))
        state[state.count - 5] ^= 0x80
        try Data(state).write(to: URL(fileURLWithPath: optimizer))
        try FileManager.default.removeItem(atPath: weightsPath)
        let corrupt = try kondate(arguments)
        #expect(corrupt.status == 1)
        #expect(corrupt.stderr.contains("optimizer.safetensors: checksum mismatch"), "\(corrupt.stderr)")

        // Another seed, stopped early: the run's paths no longer show the outputs of the earlier key,
        // which stay in the store.
        let reseeded = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--set", "seed=7", "--until", "corpus.prepare.ja"])
        #expect(reseeded.status == 0, "\(reseeded.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/pretrain")) == nil)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/corpus/prepared/en")) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/store/pretrain").count == 1)
    }

    /// Same recipe and seed: the same weights, bit for bit, whatever the thread count.
    @Test func runIsBitwiseReproducibleAcrossThreadCounts() throws {
        var digests: [String] = []
        for threads in ["1", "2"] {
            let out = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: out) }
            let result = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--threads", threads, "--set", "pretrain.steps=4", "--until", "pretrain"])
            #expect(result.status == 0, "\(result.stderr)")
            digests.append(SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: out + "/pretrain/model/model.safetensors"))))
        }
        #expect(digests[0] == digests[1])
    }

    /// bf16 mixed precision on the example: the stage says which backend and route compute it, the
    /// manifest records the route, and the loss follows fp32's (within 2% after a few steps in this debug
    /// build; the whole example ends within 0.02%, docs/runtime.md). In both precisions the process's
    /// peak resident memory is within 15% of what `kondate plan` predicts per rank, and every metrics
    /// line's step time is its window's (a last, shorter window included).
    @Test func bf16PretrainingFollowsFP32() throws {
        var losses: [Double] = []
        let out = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        for precision in ["fp32", "bf16"] {
            // The same run directory: the corpus stages are cached, pretraining runs again for its new precision.
            let sets = ["--set", "pretrain.precision=\(precision)", "--set", "pretrain.steps=4", "--set", "pretrain.log_interval=3"]
            let result = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--until", "pretrain"] + sets)
            #expect(result.status == 0, "\(result.stderr)")
            let plan = try kondate(["plan", "examples/tiny/tiny-llama.yaml", "--json"] + sets)
            let predicted = try #require(try Self.json(plan.stdout)["memory_per_device_bytes"]?.doubleValue)
            let run = try JSONParser.parse(try String(contentsOfFile: out + "/pretrain/summary.json", encoding: .utf8))
            let rss = try #require(run["peak_rss_bytes"]?.doubleValue)
            #expect(abs(predicted / rss - 1) <= 0.15, "\(precision): plan \(predicted) bytes, peak RSS \(rss) bytes")
            let lines = try String(contentsOfFile: out + "/pretrain/metrics.jsonl", encoding: .utf8).split(separator: "\n")
                .map { try JSONParser.parse(String($0)) }.filter { $0["step_seconds"] != nil }
            #expect(lines.compactMap { $0["step"]?.intValue } == [3, 4])
            for line in lines {
                let seconds = try #require(line["step_seconds"]?.doubleValue), rate = try #require(line["tokens_per_second"]?.doubleValue)
                #expect(abs(seconds * rate / 2048 - 1) < 1e-9, "step \(line["step"]?.intValue ?? 0): \(seconds) s/step at \(rate) tokens/s")
            }
            #expect(result.stderr.contains("cpu-\(precision): "), "\(result.stderr)")
            let manifest = try JSONParser.parse(try String(contentsOfFile: out + "/manifest.json", encoding: .utf8))
            let route = try #require(manifest["environment"]?["onednn"]?["bf16_route"]?.stringValue)
            // A fallback is announced exactly when bf16 does not run on oneDNN.
            #expect(result.stderr.contains("warning: this CPU has no bf16 instructions") == (precision == "bf16" && route != "onednn"))
            let summary = try JSONParser.parse(try String(contentsOfFile: out + "/pretrain/summary.json", encoding: .utf8))
            losses.append(try #require(summary["final_loss"]?.doubleValue))
        }
        #expect(losses[0] != losses[1] && abs(losses[1] - losses[0]) <= 0.02 * losses[0], "fp32 \(losses[0]), bf16 \(losses[1])")
    }

    @Test func runRefusesWhatTheRuntimeCannotDo() throws {
        let out = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        for override in ["model.attention_kernel=standard", "parallel.zero_stage=3", "cluster.device=a100-40gb", "tokenizer.train.algorithm=unigram"] {
            let result = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", out, "--set", override])
            #expect(result.status == 1)
            #expect(result.stderr.contains("--set:1:") && result.stderr.contains("[engine]"), "\(result.stderr)")
            #expect(result.stderr.contains("nothing run"))
            // Exactly what `validate --engine kondate` reports, rendered the same; only the summary line differs.
            let validate = try kondate(["validate", "examples/tiny/tiny-llama.yaml", "--engine", "kondate", "--set", override])
            #expect(validate.status == 1)
            let body = { (s: String) in s.split(separator: "\n").dropLast().joined(separator: "\n") }
            #expect(body(result.stderr) == body(validate.stderr), "\(override)")
            #expect(!FileManager.default.fileExists(atPath: out + "/manifest.json"))
        }
    }

    /// The loss transformers computes with labels=input_ids (from the round-trip fixture's logits).
    @Test func scoreMatchesTransformers() throws {
        let expected = try SafetensorsReference(path: Self.llamaExport + "/expected.safetensors")
        let ids = expected.inputIDs[0]
        let result = try kondate(["score", "--model", Self.llamaExport, "--tokens", ids.map(String.init).joined(separator: ","), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try Self.json(result.stdout)
        let logprobs = (json["logprobs"]?.arrayValue ?? []).compactMap(\.doubleValue)
        #expect(logprobs.count == ids.count - 1)
        let reference = expected.logprobs(row: 0)
        for (a, b) in zip(logprobs, reference) { #expect(abs(a - b) < 1e-4) }
        let loss = try #require(json["loss"]?.doubleValue)
        #expect(abs(loss - (-reference.reduce(0, +) / Double(reference.count))) < 1e-4)

        let tooShort = try kondate(["score", "--model", Self.llamaExport, "--tokens", "5"])
        #expect(tooShort.status == 2 && tooShort.stderr.contains("at least 2 tokens"))
        let outOfRange = try kondate(["score", "--model", Self.llamaExport, "--tokens", "1,99999"])
        #expect(outOfRange.status == 2 && outOfRange.stderr.contains("outside the vocabulary"))
        let notAModel = try kondate(["score", "--model", root.path + "/examples", "--tokens", "1,2"])
        #expect(notAModel.status == 2 && notAModel.stderr.contains("no config.json"))
        let noText = try kondate(["score", "--model", Self.llamaExport, "--text", "hello"])
        #expect(noText.status == 2 && noText.stderr.contains("tokenizer"))
    }

    @Test func benchTrainReportsItsFigures() throws {
        let result = try kondate(["bench", "train", "--hidden", "32", "--ffn", "64", "--layers", "1", "--heads", "4", "--kv-heads", "2",
                                  "--vocab", "128", "--seq", "16", "--batch", "2", "--steps", "1", "--threads", "1", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try Self.json(result.stdout)
        for key in ["tokens_per_second", "step_seconds", "gflops", "peak_gflops", "fraction_of_peak"] {
            #expect((json[key]?.doubleValue ?? 0) > 0, "\(key)")
        }
        #expect(json["kernels"]?["matmul"]?.doubleValue != nil && json["kernels"]?["attention"]?.doubleValue != nil)
        let bad = try kondate(["bench", "train", "--hidden", "30", "--heads", "4"])
        #expect(bad.status == 2 && bad.stderr.contains("not divisible"))
    }
}

/// The round-trip fixture's input ids and transformers' logits, as log-probabilities.
struct SafetensorsReference {
    let inputIDs: [[Int]]
    let logits: [Float]
    let vocab: Int

    init(path: String) throws {
        // A minimal reader for this one file (F32 tensors): the test must not share the code it checks.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = Int(data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONParser.parse(String(decoding: data[8..<(8 + n)], as: UTF8.self))
        func tensor(_ name: String) -> (shape: [Int], values: [Float]) {
            let shape = header[name]!["shape"]!.arrayValue!.map { $0.intValue! }
            let offsets = header[name]!["data_offsets"]!.arrayValue!.map { $0.intValue! }
            let bytes = data[(8 + n + offsets[0])..<(8 + n + offsets[1])]
            let values = bytes.withUnsafeBytes { raw in (0..<(bytes.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
            return (shape, values)
        }
        let ids = tensor("input_ids")
        inputIDs = (0..<ids.shape[0]).map { r in (0..<ids.shape[1]).map { Int(ids.values[r * ids.shape[1] + $0]) } }
        let l = tensor("logits")
        logits = l.values
        vocab = l.shape[2]
    }

    func logprobs(row: Int) -> [Double] {
        let ids = inputIDs[row], t = ids.count
        return (0..<(t - 1)).map { i in
            let base = (row * t + i) * vocab
            let slice = logits[base..<(base + vocab)].map(Double.init)
            let m = slice.max()!
            return slice[ids[i + 1]] - (m + log(slice.reduce(0) { $0 + exp($1 - m) }))
        }
    }
}

@Suite("kondate tune-preview")
struct TunePreviewCLITests {
    static let tokenizer = root.path + "/Tests/KondateTokenizersTests/Fixtures/tokenizers/hf/metaspace-bpe-bytefallback.json"

    @Test func marksTheTrainedSpans() throws {
        let result = try kondate(["tune-preview", "examples/tiny/tiny-llama.yaml", "--stage", "qa", "--n", "1", "--tokenizer", Self.tokenizer])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("tune.qa: template llm-jp-v1.1, loss on responses only"))
        #expect(result.stdout.contains("### 指示:\n日本で一番高い山は？\n\n### 応答:\n⟦富士山</s>⟧"), "\(result.stdout)")
        #expect(result.stdout.contains("examples/tiny/tuning/qa.jsonl:1:1"))
        let all = try kondate(["tune-preview", "examples/tiny/tiny-llama.yaml", "--stage", "qa", "--n", "1", "--tokenizer", Self.tokenizer,
                               "--set", "tune.qa.loss_mask=all"])
        #expect(all.stdout.contains("<s>⟦以下は、タスクを説明する指示です。"), "\(all.stdout)")
    }

    @Test func errorsNameTheProblem() throws {
        let stage = try kondate(["tune-preview", "examples/tiny/tiny-llama.yaml", "--stage", "q", "--tokenizer", Self.tokenizer])
        #expect(stage.status == 1 && stage.stderr.contains("no tune stage 'q'; did you mean 'qa'?"))
        let missing = try kondate(["tune-preview", "examples/tiny/tiny-llama.yaml", "--stage", "qa", "--out", "/nonexistent-run"])
        #expect(missing.status == 1 && missing.stderr.contains("--until corpus"))
    }
}
