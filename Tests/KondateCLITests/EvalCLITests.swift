import Foundation
import Testing
import KondateSupport

@Suite("kondate eval and eval-score")
struct EvalCLITests {
    private func temporaryFile(_ name: String, _ contents: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-eval-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func evalScoreComputesScores() throws {
        // Sample 0 right after post-processing (text before the blank line), sample 1 wrong (NFKC "３" is "3", gold "2").
        let predictions = try temporaryFile("p.jsonl", """
            {"dataset": "tiny_qa", "index": 0, "prediction": "東京\\n\\n東京は首都です"}
            {"dataset": "tiny_qa", "index": 1, "prediction": "３"}
            """)
        defer { try? FileManager.default.removeItem(at: predictions.deletingLastPathComponent()) }
        let out = predictions.deletingLastPathComponent().appendingPathComponent("results.json")
        let result = try kondate(["eval-score", "--suite", "examples/tiny/eval/tiny_qa.json", "--predictions", predictions.path,
                                  "--json", "--out", out.path])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser.parse(result.stdout)
        #expect(json["scores"]?["tiny_qa_exact_match"] == .double(0.5))
        #expect(json["scores"]?["tiny_qa_char_f1"] == .double(0.5))
        #expect(json["datasets"]?.arrayValue?.first?["samples"] == .int(2))
        #expect(json["predictions"]?.arrayValue?.map { $0["prediction"]?.stringValue ?? "" } == ["東京", "3"])
        #expect(json["warnings"]?["missing_predictions"] == .int(0))
        #expect(try JSONParser.parse(String(contentsOf: out, encoding: .utf8)) == json)

        let suiteDirectory = predictions.deletingLastPathComponent().appendingPathComponent("suite")
        try FileManager.default.createDirectory(at: suiteDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: root.appendingPathComponent("examples/tiny/eval/tiny_qa.json"),
                                         to: suiteDirectory.appendingPathComponent("tiny_qa.json"))
        let table = try kondate(["eval-score", "--suite", suiteDirectory.path, "--predictions", predictions.path])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("tiny_qa   2        exact_match  0.5000"))
        #expect(table.stdout.contains("AVG"))
    }

    @Test func evalScoreReportsBadPredictionsWithFileAndLine() throws {
        let predictions = try temporaryFile("bad.jsonl", """
            {"dataset": "tiny_qa", "index": 0, "prediction": "東京"}
            {"dataset": "tiny_qa", "index": 7, "prediction": "2"}
            """)
        defer { try? FileManager.default.removeItem(at: predictions.deletingLastPathComponent()) }
        let result = try kondate(["eval-score", "--suite", "examples/tiny/eval/tiny_qa.json", "--predictions", predictions.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(predictions.path):2: index 7 is out of range: dataset 'tiny_qa' has 2 samples to score"))

        let missing = try temporaryFile("one.jsonl", "{\"dataset\": \"tiny_qa\", \"index\": 0, \"prediction\": \"東京\"}\n")
        defer { try? FileManager.default.removeItem(at: missing.deletingLastPathComponent()) }
        let partial = try kondate(["eval-score", "--suite", "examples/tiny/eval/tiny_qa.json", "--predictions", missing.path])
        #expect(partial.status == 0, "\(partial.stderr)")
        #expect(partial.stderr.contains("1 samples have no prediction"))

        let noSuite = try kondate(["eval-score", "--suite", "examples/tiny/eval/nope.json", "--predictions", missing.path])
        #expect(noSuite.status == 1)
        #expect(noSuite.stderr.contains("examples/tiny/eval/nope.json: no such dataset file or directory"))

        let usage = try kondate(["eval-score", "--suite", "examples/tiny/eval/tiny_qa.json"])
        #expect(usage.status == 2)
    }

    @Test func evalNeedsATokenizer() throws {
        let result = try kondate(["eval", "--model", "Tests/KondateModelTests/Fixtures/roundtrip/llama",
                                  "--suite", "examples/tiny/eval/tiny_qa.json", "--few-shots", "1"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("tokenizer"))
    }

    @Test func evalChecksFewShotsBeforeLoadingTheModel() throws {
        let result = try kondate(["eval", "--model", "Tests/KondateModelTests/Fixtures/roundtrip/llama",
                                  "--suite", "examples/tiny/eval/tiny_qa.json"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("tiny_qa.json: few_shots: --few-shots 4 but the dataset has only 1"))
    }
}
