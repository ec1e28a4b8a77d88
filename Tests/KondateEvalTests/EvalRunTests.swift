import Foundation
import Testing
import KondateSupport
import KondateTestSupport
@testable import KondateEval

/// A two-sample dataset with two few-shots.
private let qaJSON = """
{"instruction": "質問に答えてください。", "output_length": 8, "metrics": ["exact_match", "char_f1"],
 "few_shots": [{"input": "日本で一番高い山は？", "output": "富士山"}, {"input": "1たす2は？", "output": "3"}],
 "samples": [{"input": "日本の首都は？", "output": "東京"}, {"input": "1たす1は？", "output": "2"}]}
"""

private func dataset(_ json: String = qaJSON, file: String = "suite/jqa.json") throws -> EvalDataset {
    try EvalDataset.parse(json, file: file)
}

/// Returns a canned answer per sample input and records the prompts it was given.
private final class CannedGenerator: TextGenerator {
    var answers: [String: String]
    var calls: [(prompt: String, maxNewTokens: Int)] = []
    init(_ answers: [String: String]) { self.answers = answers }
    func generate(prompt: String, maxNewTokens: Int) throws -> String {
        calls.append((prompt, maxNewTokens))
        for (input, answer) in answers where prompt.hasSuffix("### 入力:\n\(input)\n\n### 応答:\n") { return answer }
        return ""
    }
}

@Suite("Evaluation prompts (llm-jp-eval v1.3 get_evaluation_prompt)")
struct EvalPromptTests {
    @Test func defaultTemplateWithoutFewShots() throws {
        let prompt = try EvalPrompt(numFewShots: 0).prompt(for: try dataset(), input: "日本の首都は？")
        #expect(prompt == "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n質問に答えてください。\n\n### 入力:\n日本の首都は？\n\n### 応答:\n")
    }

    @Test func defaultTemplateWithTwoFewShots() throws {
        let prompt = try EvalPrompt(numFewShots: 2).prompt(for: try dataset(), input: "日本の首都は？")
        #expect(prompt == """
            以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。

            ### 指示:
            質問に答えてください。

            ### 入力:
            日本で一番高い山は？

            ### 応答:
            富士山

            ### 入力:
            1たす2は？

            ### 応答:
            3

            ### 入力:
            日本の首都は？

            ### 応答:

            """)
    }

    @Test func fewShotsAreTakenInOrderAndMustExist() throws {
        let one = try EvalPrompt(numFewShots: 1).prompt(for: try dataset(), input: "x")
        #expect(one.contains("富士山") && !one.contains("1たす2は？"))
        #expect(throws: EvalError(file: "suite/jqa.json", message: "few_shots: 3 few-shot examples requested but the dataset has only 2")) {
            try EvalPrompt(numFewShots: 3).prompt(for: try dataset(), input: "x")
        }
    }

    @Test func customPromptTemplate() throws {
        let template = "指示: {instruction}{few_shots_text}\n問: {input}\n答: "
        let withShots = try EvalPrompt(numFewShots: 1, customPromptTemplate: template).prompt(for: try dataset(), input: "Q")
        #expect(withShots == "指示: 質問に答えてください。\n\n### 入力:\n日本で一番高い山は？\n\n### 応答:\n富士山\n問: Q\n答: ")
        let custom = try EvalPrompt(numFewShots: 2, customPromptTemplate: template, customFewShotsTemplate: "[{input}={output}]")
        #expect(try custom.prompt(for: try dataset(), input: "Q") == "指示: 質問に答えてください。[日本で一番高い山は？=富士山][1たす2は？=3]\n問: Q\n答: ")
        let zero = try EvalPrompt(numFewShots: 0, customPromptTemplate: "{instruction}|{input}|{{literal}}")
        #expect(try zero.prompt(for: try dataset(), input: "{Q}") == "質問に答えてください。|{Q}|{literal}")
    }

    @Test func placeholderErrors() {
        #expect(throws: EvalError(file: "", message: "custom prompt template: missing placeholder '{input}'")) {
            try EvalPrompt(numFewShots: 0, customPromptTemplate: "{instruction}")
        }
        #expect(throws: EvalError(file: "", message: "custom prompt template: missing placeholder '{instruction}'")) {
            try EvalPrompt(numFewShots: 0, customPromptTemplate: "{input}")
        }
        #expect(throws: EvalError(file: "", message: "custom prompt template: missing placeholder '{few_shots_text}'")) {
            try EvalPrompt(numFewShots: 4, customPromptTemplate: "{instruction}{input}")
        }
        #expect(throws: EvalError(file: "", message: "custom few-shots template: missing placeholder '{output}'")) {
            try EvalPrompt(numFewShots: 1, customPromptTemplate: "{instruction}{few_shots_text}{input}", customFewShotsTemplate: "{input}")
        }
        #expect(throws: EvalError(file: "", message: "custom prompt template: unknown placeholder '{inptu}' (did you mean '{input}'?); it may contain {few_shots_text}, {input}, {instruction}")) {
            try EvalPrompt(numFewShots: 0, customPromptTemplate: "{instruction}{input}{inptu}")
        }
        #expect(throws: EvalError.self) { try EvalPrompt(numFewShots: 0, customPromptTemplate: "{instruction}{input} }") }
        #expect(throws: EvalError.self) { try EvalPrompt(numFewShots: 0, customPromptTemplate: "{instruction}{input:>4}") }
        #expect(throws: EvalError.self) { try EvalPrompt(numFewShots: 0, customFewShotsTemplate: "{input}{output}") }
    }
}

@Suite("Evaluation datasets")
struct EvalDatasetTests {
    @Test func parsesTheDocumentedFormat() throws {
        let d = try dataset()
        #expect(d.name == "jqa")
        #expect(d.outputLength == 8)
        #expect(d.metricNames == ["exact_match", "char_f1"])
        #expect(d.fewShots.count == 2 && d.samples == [EvalSample(input: "日本の首都は？", output: "東京"), EvalSample(input: "1たす1は？", output: "2")])
        #expect(EvalDataset.name(forFile: "/a/b/wiki_ner.json") == "wiki_ner")
    }

    @Test func loadsTheBundledExample() throws {
        let d = try EvalDataset.load(path: repositoryRoot.appendingPathComponent("examples/tiny/eval/tiny_qa.json").path)
        #expect(d.name == "tiny_qa" && d.samples.count == 2)
    }

    @Test func modelBasedMetricsAreKeptAsUnsupported() throws {
        let d = try dataset(qaJSON.replacingOccurrences(of: "\"char_f1\"]", with: "\"char_f1\", \"comet_wmt22\"]"))
        #expect(d.metrics.map(\.name) == ["exact_match", "char_f1"])
        #expect(d.unsupportedMetrics == ["comet_wmt22"])
    }

    private func error(_ json: String) -> String {
        do { _ = try dataset(json); return "no error" } catch { return "\(error)" }
    }

    @Test func validationErrorsNameFileFieldAndIndex() {
        #expect(error("[1]") == "suite/jqa.json: expected a JSON object with instruction, output_length, metrics, few_shots and samples, found an array")
        #expect(error("{") .hasPrefix("suite/jqa.json: invalid JSON: "))
        #expect(error(qaJSON.replacingOccurrences(of: "\"instruction\"", with: "\"instructions\"")) == "suite/jqa.json: missing field 'instruction'")
        #expect(error(qaJSON.replacingOccurrences(of: "\"output_length\": 8", with: "\"output_length\": \"8\"")) == "suite/jqa.json: output_length: expected an integer, found a string")
        #expect(error(qaJSON.replacingOccurrences(of: "\"output_length\": 8", with: "\"output_length\": 0")) == "suite/jqa.json: output_length: must be at least 1, found 0")
        #expect(error(qaJSON.replacingOccurrences(of: "\"output_length\": 8", with: "\"output_length\": -3")) == "suite/jqa.json: output_length: must be at least 1, found -3")
        #expect(error(qaJSON.replacingOccurrences(of: "\"char_f1\"]", with: "\"char_f2\"]")).hasPrefix("suite/jqa.json: metrics[1]: unknown metric 'char_f2' (did you mean 'char_f1'?)"))
        #expect(error(qaJSON.replacingOccurrences(of: "\"output\": \"2\"", with: "\"output\": 2")) == "suite/jqa.json: samples[1].output: expected a string, found a number")
        #expect(error(qaJSON.replacingOccurrences(of: "{\"input\": \"1たす1は？\", \"output\": \"2\"}", with: "{\"input\": \"1たす1は？\"}")) == "suite/jqa.json: samples[1]: missing field 'output'")
        #expect(error(qaJSON.replacingOccurrences(of: "{\"input\": \"1たす2は？\", \"output\": \"3\"}", with: "\"x\"")) == "suite/jqa.json: few_shots[1]: expected an object with \"input\" and \"output\", found a string")
        #expect(error(qaJSON.replacingOccurrences(of: "\"metrics\": [\"exact_match\", \"char_f1\"]", with: "\"metrics\": \"exact_match\"")) == "suite/jqa.json: metrics: expected an array of metric names, found a string")
    }

    @Test func suitesReadDirectoriesAndRejectDuplicateNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("other"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try qaJSON.write(to: dir.appendingPathComponent("b.json"), atomically: true, encoding: .utf8)
        try qaJSON.write(to: dir.appendingPathComponent("a.json"), atomically: true, encoding: .utf8)
        try "not a dataset".write(to: dir.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        try qaJSON.write(to: dir.appendingPathComponent("other/a.json"), atomically: true, encoding: .utf8)
        #expect(try EvalDataset.loadSuite(paths: [dir.path]).map(\.name) == ["a", "b"])
        #expect(throws: EvalError.self) { try EvalDataset.loadSuite(paths: [dir.path, dir.appendingPathComponent("other/a.json").path]) }
        #expect(throws: EvalError(file: dir.appendingPathComponent("missing.json").path, message: "no such dataset file or directory")) {
            try EvalDataset.loadSuite(paths: [dir.appendingPathComponent("missing.json").path])
        }
    }
}

@Suite("Evaluation runs and prediction scoring")
struct EvaluationTests {
    @Test func runsAGeneratorEndToEnd() throws {
        let generator = CannedGenerator(["日本の首都は？": " 東京\n\n東京は日本の首都です。", "1たす1は？": "２"])
        let results = try Evaluation.run(datasets: [try dataset()], generator: generator, prompt: try EvalPrompt(numFewShots: 2))
        #expect(generator.calls.count == 2)
        #expect(generator.calls.allSatisfy { $0.maxNewTokens == 8 })
        #expect(results.scores == ["jqa_exact_match": 1.0, "jqa_char_f1": 1.0])
        #expect(results.predictions.map(\.prediction) == ["東京", "2"])
        #expect(results.predictions[0].generated == " 東京\n\n東京は日本の首都です。")
        #expect(results.predictions[0].prompt == generator.calls[0].prompt)
        #expect(results.predictions.map(\.gold) == ["東京", "2"])
        #expect(results.datasets[0].samples == 2)
    }

    @Test func maxSamplesTakesTheFirstSamples() throws {
        let generator = CannedGenerator(["日本の首都は？": "京都"])
        let results = try Evaluation.run(datasets: [try dataset()], generator: generator, prompt: try EvalPrompt(numFewShots: 0), maxSamples: 1)
        #expect(generator.calls.count == 1)
        #expect(results.scores["jqa_exact_match"] == 0.0)
        #expect(results.scores["jqa_char_f1"] == 0.5)
        #expect(Evaluation.selectedSamples(try dataset(), maxSamples: 5).count == 2)
        #expect(Evaluation.selectedSamples(try dataset(), maxSamples: -1).count == 2)
    }

    @Test func categoriesUseLLMJPEvalKeys() throws {
        let jemhopqa = try dataset(file: "d/jemhopqa.json"), niilc = try dataset(file: "d/niilc.json")
        let generator = CannedGenerator(["日本の首都は？": "東京", "1たす1は？": "3"])
        let results = try Evaluation.run(datasets: [jemhopqa, niilc], generator: generator, prompt: try EvalPrompt(numFewShots: 0))
        #expect(results.scores["jemhopqa_char_f1"] == 0.5)
        #expect(results.report.score(of: "QA") == 0.5)
        #expect(results.report.average == 0.5)
        #expect(!results.report.isComplete)
        let json = results.json()
        #expect(json["AVG"] == .double(0.5))
        #expect(json["scores"]?["niilc_exact_match"] == .double(0.5))
        #expect(json["categories"]?["QA"] == .double(0.5))
        #expect(json["categories"]?["NLI"] == .null)
        let table = results.table()
        #expect(table.contains("jemhopqa"))
        #expect(table.contains("QA        0.5000"))
        #expect(table.contains("mean of 1 of 9 categories"))
    }

    @Test func scoresPredictionsMadeElsewhere() throws {
        let jsonl = """
            {"dataset": "jqa", "index": 1, "prediction": "2\\n\\nbecause"}

            {"dataset": "jqa", "index": 0, "prediction": "東京", "extra": true}
            """
        let results = try Evaluation.score(datasets: [try dataset()], predictionsJSONL: jsonl, file: "p.jsonl")
        #expect(results.scores == ["jqa_exact_match": 1.0, "jqa_char_f1": 1.0])
        #expect(results.missingPredictions == 0)
        #expect(results.predictions[1].generated == "2\n\nbecause" && results.predictions[1].prediction == "2")
        #expect(results.predictions[0].prompt == nil)
    }

    @Test func missingPredictionsAreEmpty() throws {
        let results = try Evaluation.score(datasets: [try dataset()], predictionsJSONL: "{\"dataset\": \"jqa\", \"index\": 0, \"prediction\": \"東京\"}\n", file: "p.jsonl")
        #expect(results.missingPredictions == 1)
        #expect(results.scores["jqa_exact_match"] == 0.5)
        #expect(results.predictions[1].generated == nil && results.predictions[1].prediction == "")
        #expect(results.json()["warnings"]?["missing_predictions"] == .int(1))
        #expect(results.table().contains("warning: 1 missing predictions scored as empty"))
    }

    private func scoringError(_ jsonl: String) -> String {
        do { _ = try Evaluation.score(datasets: [try dataset()], predictionsJSONL: jsonl, file: "p.jsonl"); return "no error" } catch {
            return "\(error)"
        }
    }

    @Test func predictionErrorsNameFileAndLine() {
        let ok = "{\"dataset\": \"jqa\", \"index\": 0, \"prediction\": \"a\"}\n"
        #expect(scoringError(ok + "{\"dataset\": \"jq\", \"index\": 1, \"prediction\": \"a\"}") == "p.jsonl:2: unknown dataset 'jq' (did you mean 'jqa'?); the suite has jqa")
        #expect(scoringError(ok + "{\"dataset\": \"jqa\", \"index\": 2, \"prediction\": \"a\"}") == "p.jsonl:2: index 2 is out of range: dataset 'jqa' has 2 samples to score (indices 0…1)")
        #expect(scoringError(ok + "{\"dataset\": \"jqa\", \"index\": -1, \"prediction\": \"a\"}").hasPrefix("p.jsonl:2: index -1 is out of range"))
        #expect(scoringError(ok + "\n" + ok) == "p.jsonl:3: duplicate prediction for dataset 'jqa' index 0 (first on line 1)")
        #expect(scoringError("{\"dataset\": \"jqa\", \"index\": \"0\", \"prediction\": \"a\"}") == "p.jsonl:1: index: expected an integer, found a string")
        #expect(scoringError("{\"dataset\": \"jqa\", \"index\": 0}") == "p.jsonl:1: missing field 'prediction'")
        #expect(scoringError("{\"index\": 0, \"prediction\": \"a\"}") == "p.jsonl:1: missing field 'dataset'")
        #expect(scoringError("{\"dataset\": \"jqa\", \"index\": 0, \"prediction\": null}") == "p.jsonl:1: prediction: expected a string, found null")
        #expect(scoringError(ok + "[1]") == "p.jsonl:2: expected an object with dataset, index and prediction, found an array")
        #expect(scoringError("{oops").hasPrefix("p.jsonl:1: invalid JSON: "))
    }

    @Test func scoringProblemsNameTheDataset() {
        let json = qaJSON.replacingOccurrences(of: "[\"exact_match\", \"char_f1\"]", with: "[\"pearson\"]")
        #expect(throws: EvalError(file: "suite/jqa.json", message: "metric pearson: pearson: the gold answer '東京' is not a number")) {
            try Evaluation.score(datasets: [try dataset(json)], predictionsJSONL: "", file: "p.jsonl")
        }
    }
}
