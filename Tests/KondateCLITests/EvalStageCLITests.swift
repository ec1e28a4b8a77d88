import Foundation
import KondateSupport
import KondateTestSupport
import Testing

/// The eval stages of `kondate run`: llm-jp-eval, perplexity and generation suites on the example's
/// checkpoints, with a judge served locally, and with a judge that cannot be reached.
@Suite("kondate run: eval stages", .serialized)
struct EvalStageCLITests {
    static let judgeReply = #"{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Clear and short. Rating: [[7]]"}, "finish_reason": "stop"}]}"#

    /// A recipe extending the example with short stages and small suites; `judge` is the endpoint.
    static func recipe(in dir: String, judge: String) throws -> String {
        let document = "東京は日本の首都です。The quick brown fox jumps over the lazy dog."
        try (JSON.object([("text", .string(document))]).rendered(pretty: false) + "\n")
            .write(toFile: dir + "/one.jsonl", atomically: true, encoding: .utf8)
        let text = """
            extends: \(root.path)/examples/tiny/tiny-llama.yaml
            pretrain: {steps: 12, checkpoint: {every: 6}}
            tune: {qa: {epochs: 0.05}}
            eval:
              tasks: {max_samples: 2}
              held_out: {datasets: [one.jsonl]}
              questions:
                max_samples: 2
                judge: {endpoint: "\(judge)", model: judge-model, api_key_env: KONDATE_TEST_JUDGE_API_KEY}
            """
        let path = dir + "/recipe.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func json(_ path: String) throws -> JSON { try JSONParser.parse(try String(contentsOfFile: path, encoding: .utf8)) }

    @Test func evalSuitesRunOnEachCheckpoint() throws {
        let dir = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LocalHTTPServer(responses: [.json(Self.judgeReply)])
        defer { server.stop() }
        setenv("KONDATE_TEST_JUDGE_API_KEY", "sk-local-test", 1)
        let recipe = try Self.recipe(in: dir, judge: server.baseURL + "/v1")
        let out = dir + "/run"
        let run = try kondate(["run", recipe, "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("eval.tasks (llm-jp-eval): \(out)/eval/tasks"), "\(run.stdout)")

        // llm-jp-eval: one results file per checkpoint, two samples per dataset, scores side by side.
        for checkpoint in ["pretrain", "qa"] {
            let results = try Self.json(out + "/eval/tasks/\(checkpoint)/results.json")
            #expect(results["datasets"]?.arrayValue?.map { $0["samples"] } == [.int(2), .int(2), .int(2)])
            #expect(results["scores"]?["places_exact_match"]?.doubleValue != nil)
            #expect(results["predictions"]?.arrayValue?.first?["prompt"]?.stringValue?.hasSuffix("### 応答:\n") == true)
        }
        let summary = try Self.json(out + "/eval/tasks/summary.json")
        #expect(summary["checkpoints"]?.arrayValue?.map { $0["checkpoint"] } == [.string("pretrain"), .string("qa")])
        #expect(run.stdout.contains("places_exact_match"))

        // Perplexity: the one document and its EOS scored as one window, as `kondate score` scores those tokens.
        let model = out + "/tune/qa/model"
        let encoded = try kondate(["score", "--model", model, "--text", "東京は日本の首都です。The quick brown fox jumps over the lazy dog.", "--json"])
        #expect(encoded.status == 0, "\(encoded.stderr)")
        let eos = try #require(try Self.json(model + "/generation_config.json")["eos_token_id"]?.intValue)
        let ids = (try JSONParser.parse(encoded.stdout)["tokens"]?.arrayValue ?? []).compactMap(\.intValue) + [eos]
        let scored = try kondate(["score", "--model", model, "--tokens", ids.map(String.init).joined(separator: ","), "--json"])
        let reference = try #require(try JSONParser.parse(scored.stdout)["loss"]?.doubleValue)
        let perplexity = try Self.json(out + "/eval/held_out/qa/results.json")
        let loss = try #require(perplexity["loss"]?.doubleValue)
        #expect(perplexity["tokens"] == .int(ids.count - 1))
        #expect(abs(loss - reference) <= 1e-5 * reference, "perplexity suite \(loss), kondate score \(reference)")
        #expect(abs((perplexity["perplexity"]?.doubleValue ?? 0) - exp(loss)) <= 1e-9 * exp(loss))

        // Generation: FastChat answer lines, and every turn rated through the local judge with the key from the environment.
        let answers = try String(contentsOfFile: out + "/eval/questions/qa/questions.answers.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(answers.count == 2)
        let first = try JSONParser.parse(String(answers[0]))
        #expect(first["question_id"] == .int(1) && first["model_id"] == .string("qa"))
        #expect(first["choices"]?.arrayValue?.first?["turns"]?.arrayValue?.count == 2)
        let requests = server.receivedRequests()
        #expect(requests.count == 4)
        #expect(requests.allSatisfy { $0.path == "/v1/chat/completions" && $0.headers["authorization"] == "Bearer sk-local-test" })
        #expect(requests.first?.bodyText.contains("次の文に出てくる地名を答えなさい。") == true)
        let judgments = try String(contentsOfFile: out + "/eval/questions/qa/questions.judgments.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(judgments.count == 4 && judgments.allSatisfy { $0.contains(#""score":7"#) })
        let generation = try Self.json(out + "/eval/questions/qa/results.json")
        #expect(generation["scores"]?["judge_score"] == .double(7))
        // The key went to the judge and nowhere else: no file of the run (manifest, logs, metrics, results,
        // report, release) and no output holds it.
        let key = Data("sk-local-test".utf8)
        #expect(!run.stdout.contains("sk-local-test") && !run.stderr.contains("sk-local-test"))
        let report = try kondate(["report", out, "--out", dir + "/report.html"])
        #expect(report.status == 0, "\(report.stderr)")
        var scanned = 0
        for base in [out, dir + "/report.html"] {
            let files = (FileManager.default.enumerator(atPath: base)?.allObjects as? [String] ?? []).map { base + "/" + $0 } + [base]
            for file in files {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue,
                      let data = FileManager.default.contents(atPath: file) else { continue }
                scanned += 1
                #expect(data.range(of: key) == nil, "\(file) holds the judge's API key")
            }
        }
        #expect(scanned > 20)
        #expect(generation["judge_error"] == .null)

        // The release: a transformers directory with the tuned weights, the manifest, the scores and a model card.
        let release = out + "/release"
        for f in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "manifest.json",
                  "eval_results.json", "README.md"] {
            #expect(FileManager.default.fileExists(atPath: release + "/" + f), "\(f)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: release + "/model.safetensors")) == Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors")))
        let card = try String(contentsOfFile: release + "/README.md", encoding: .utf8)
        #expect(card.hasPrefix("---\n") && card.contains("# tiny-llama-qa") && card.contains("## Pretraining data") && card.contains("| ja | 50.0% |"))
        #expect(card.contains("| tasks | places_exact_match |") && card.contains("kondate run"), "\(card)")
        #expect(try Self.json(release + "/eval_results.json")["questions"]?["questions_judge_score"] == .double(7))

        // In bf16 only the release runs again; its weights are the fp32 ones rounded to bfloat16.
        let bf16 = try kondate(["run", recipe, "--out", out, "--set", "release.dtype=bf16"])
        #expect(bf16.status == 0, "\(bf16.stderr)")
        #expect(bf16.stdout.contains("run: 1 stage ran, 15 cached"), "\(bf16.stdout)")
        let header = try Self.safetensorsHeader(release + "/model.safetensors")
        #expect(header["model.embed_tokens.weight"]?["dtype"] == .string("BF16"))
        #expect(try Self.json(release + "/config.json")["torch_dtype"] == .string("bfloat16"))
        let full = try kondate(["score", "--model", model, "--tokens", ids.map(String.init).joined(separator: ","), "--json"])
        let half = try kondate(["score", "--model", release, "--tokens", ids.map(String.init).joined(separator: ","), "--json"])
        let a = try #require(try JSONParser.parse(full.stdout)["loss"]?.doubleValue), b = try #require(try JSONParser.parse(half.stdout)["loss"]?.doubleValue)
        #expect(a != b && abs(a - b) < 0.05 * a, "fp32 loss \(a), bf16 loss \(b)")
    }

    static func safetensorsHeader(_ path: String) throws -> JSON {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return try JSONParser.parse(String(decoding: data[8..<(8 + length)], as: UTF8.self))
    }

    @Test func anUnreachableJudgeFailsOnlyItsSuite() throws {
        let dir = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let endpoint = "http://127.0.0.1:\(LocalHTTPServer.unusedPort())/v1"
        let recipe = try Self.recipe(in: dir, judge: endpoint)
        let out = dir + "/run"
        let run = try kondate(["run", recipe, "--out", out])
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: eval.questions.qa: judge endpoint \(endpoint)/chat/completions is unreachable: connection refused"),
                "\(run.stderr)")
        // The other suites completed, and the answers were kept.
        #expect(FileManager.default.fileExists(atPath: out + "/eval/tasks/summary.json"))
        #expect(FileManager.default.fileExists(atPath: out + "/eval/held_out/qa/results.json"))
        #expect(FileManager.default.fileExists(atPath: out + "/eval/questions/qa/questions.answers.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: out + "/eval/questions/qa/questions.judgments.jsonl"))
        let results = try Self.json(out + "/eval/questions/qa/results.json")
        #expect(results["judge_error"]?.stringValue?.contains("unreachable") == true)
    }
}
