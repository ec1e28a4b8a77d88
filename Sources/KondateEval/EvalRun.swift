import Foundation
import KondateSupport

/// Something that continues a prompt: a model with its tokenizer, a server, or a test double.
/// `KondateEval` does not run models itself.
public protocol TextGenerator {
    /// The generated continuation of `prompt` (without the prompt), at most `maxNewTokens` tokens.
    func generate(prompt: String, maxNewTokens: Int) throws -> String
}

/// One scored answer.
public struct EvalPrediction: Sendable, Equatable {
    public var dataset: String
    /// The sample's index in the dataset's `samples`.
    public var index: Int
    /// The prompt given to the model (nil for predictions made elsewhere).
    public var prompt: String?
    /// The text as generated, before post-processing (nil for a missing external prediction).
    public var generated: String?
    /// `AnswerPostprocessing.prediction(fromGenerated:)` of `generated` (empty when missing).
    public var prediction: String
    /// `AnswerPostprocessing.gold(_:)` of the sample's output.
    public var gold: String
}

/// The scores of one dataset.
public struct EvalDatasetResult: Sendable, Equatable {
    public var name: String
    public var file: String
    /// How many samples were scored.
    public var samples: Int
    /// Metric name and score, in the dataset's metric order.
    public var scores: [String: Double]
    public var metricOrder: [String]
    /// Model-based metrics of the dataset that Kondate does not compute.
    public var unsupportedMetrics: [String]
}

/// The outcome of an evaluation: per-dataset scores, llm-jp-eval's categories and average, and every
/// scored answer.
public struct EvalResults: Sendable {
    public var datasets: [EvalDatasetResult]
    public var report: LLMJPCategories.Report
    public var predictions: [EvalPrediction]
    /// External predictions that were absent and scored as empty strings.
    public var missingPredictions = 0
    /// Prompts the generator had to shorten to fit the model (set by the caller that knows).
    public var truncatedPrompts = 0

    /// Every score keyed `{dataset}_{metric}`, as llm-jp-eval names them.
    public var scores: [String: Double] {
        var all = [String: Double]()
        for dataset in datasets { for (metric, score) in dataset.scores { all["\(dataset.name)_\(metric)"] = score } }
        return all
    }

    /// The results as JSON: `datasets` (name, file, samples, scores in metric order, unsupported metrics),
    /// `scores` (`{dataset}_{metric}` keys), `categories` (null where no score feeds one), `AVG` (the mean of
    /// the categories present; null when none), `complete` (whether every category has a score, i.e.
    /// whether `AVG` is llm-jp-eval's), `warnings` and `predictions`.
    public func json() -> JSON {
        func number(_ x: Double?) -> JSON { x.map(JSON.double) ?? .null }
        let datasetsJSON: [JSON] = datasets.map { d in
            .object([("name", .string(d.name)), ("file", .string(d.file)), ("samples", .int(d.samples)),
                     ("scores", .object(d.metricOrder.map { ($0, number(d.scores[$0])) })),
                     ("unsupported_metrics", .array(d.unsupportedMetrics.map(JSON.string)))])
        }
        let scoreKeys: [(String, JSON)] = datasets.flatMap { d in d.metricOrder.map { ("\(d.name)_\($0)", number(d.scores[$0])) } }
        let predictionsJSON: [JSON] = predictions.map { p in
            .object([("dataset", .string(p.dataset)), ("index", .int(p.index)),
                     ("prompt", p.prompt.map(JSON.string) ?? .null), ("generated", p.generated.map(JSON.string) ?? .null),
                     ("prediction", .string(p.prediction)), ("gold", .string(p.gold))])
        }
        return .object([
            ("datasets", .array(datasetsJSON)),
            ("scores", .object(scoreKeys)),
            ("categories", .object(report.categories.map { ($0.name, number($0.score)) })),
            ("AVG", number(report.average)),
            ("complete", .bool(report.isComplete)),
            ("warnings", .object([("missing_predictions", .int(missingPredictions)), ("truncated_prompts", .int(truncatedPrompts))])),
            ("predictions", .array(predictionsJSON)),
        ])
    }

    /// A plain-text table: one row per dataset score, then the categories and the average.
    public func table() -> String {
        func cell(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        func value(_ x: Double?) -> String { x.map { Format.fixed($0, 4) } ?? "-" }
        let nameWidth = max(8, datasets.map(\.name.count).max() ?? 0) + 2
        let metricWidth = max(7, datasets.flatMap(\.metricOrder).map(\.count).max() ?? 0) + 2
        var lines = [cell("dataset", nameWidth) + cell("samples", 9) + cell("metric", metricWidth) + "score"]
        for d in datasets {
            for (i, metric) in d.metricOrder.enumerated() {
                let head = i == 0 ? cell(d.name, nameWidth) + cell(String(d.samples), 9) : cell("", nameWidth + 9)
                let score = d.scores[metric].map { Format.fixed($0, 4) } ?? "not computed (needs a neural model)"
                lines.append(head + cell(metric, metricWidth) + score)
            }
        }
        lines.append("")
        lines.append(cell("category", 10) + "score")
        for category in report.categories { lines.append(cell(category.name, 10) + value(category.score)) }
        let present = report.categories.compactMap(\.score).count
        let note = report.isComplete || report.average == nil ? "" : "  (mean of \(present) of \(report.categories.count) categories; not llm-jp-eval's AVG)"
        lines.append(cell("AVG", 10) + value(report.average) + note)
        var warnings = [String]()
        if missingPredictions > 0 { warnings.append("\(missingPredictions) missing predictions scored as empty") }
        if truncatedPrompts > 0 { warnings.append("\(truncatedPrompts) prompts truncated from the left to fit the model") }
        if !warnings.isEmpty { lines.append(""); lines += warnings.map { "warning: \($0)" } }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Runs llm-jp-eval v1.3 evaluations and scores predictions made elsewhere.
///
/// Per dataset, as `evaluate` / `get_evaluation_result` in llm-jp-eval v1.3 (`src/llm_jp_eval/evaluator.py`,
/// `src/llm_jp_eval/utils.py`) do: the first `max_num_samples` samples (`if 0 < max_num_samples <
/// len(samples): samples = samples[:max_num_samples]`; all of them otherwise), one prompt each (see
/// `EvalPrompt`), generation with `max_new_tokens = output_length`, `y_pred` and `y_true` post-processed
/// by `AnswerPostprocessing`, then one score per metric of the dataset under the key
/// `f"{target_dataset_name}_{metric}"`, and the categories and AVG of `LLMJPCategories.report`.
public enum Evaluation {
    /// The samples llm-jp-eval evaluates for `maxSamples` (nil or ≤ 0: all).
    public static func selectedSamples(_ dataset: EvalDataset, maxSamples: Int?) -> [EvalSample] {
        guard let maxSamples, maxSamples > 0, maxSamples < dataset.samples.count else { return dataset.samples }
        return Array(dataset.samples.prefix(maxSamples))
    }

    /// Generates an answer for each selected sample of each dataset and scores them. `progress` is told
    /// the dataset name, the sample number (1-based) and the sample count before each generation.
    /// Errors of the generator propagate unchanged; prompt and scoring problems throw `EvalError`.
    public static func run(datasets: [EvalDataset], generator: any TextGenerator, prompt: EvalPrompt,
                           maxSamples: Int? = nil, progress: ((String, Int, Int) -> Void)? = nil) throws -> EvalResults {
        var predictions = [EvalPrediction]()
        for dataset in datasets {
            let samples = selectedSamples(dataset, maxSamples: maxSamples)
            let fewShots = try prompt.fewShots(of: dataset)
            for (index, sample) in samples.enumerated() {
                progress?(dataset.name, index + 1, samples.count)
                let text: String
                do { text = try prompt.prompt(instruction: dataset.instruction, fewShots: fewShots, input: sample.input) } catch {
                    throw EvalError(file: dataset.file, message: "samples[\(index)]: \(error.message)")
                }
                let generated = try generator.generate(prompt: text, maxNewTokens: dataset.outputLength)
                predictions.append(EvalPrediction(dataset: dataset.name, index: index, prompt: text, generated: generated,
                                                  prediction: AnswerPostprocessing.prediction(fromGenerated: generated),
                                                  gold: AnswerPostprocessing.gold(sample.output)))
            }
        }
        return try results(datasets: datasets, predictions: predictions, maxSamples: maxSamples)
    }

    /// Scores predictions made elsewhere. `jsonl` has one JSON object per line with `dataset` (a dataset
    /// name of the suite), `index` (into its `samples`) and `prediction` (the generated text; it is
    /// post-processed here like a generation, which leaves an already post-processed answer unchanged);
    /// blank lines are skipped and other keys ignored. Every selected sample without a prediction is
    /// scored as the empty string and counted in `missingPredictions`. `file` names the source in errors.
    public static func score(datasets: [EvalDataset], predictionsJSONL jsonl: String, file: String,
                             maxSamples: Int? = nil) throws(EvalError) -> EvalResults {
        let byName = Dictionary(datasets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var given = [String: [Int: (line: Int, text: String)]]()
        var lineNumber = 0
        for rawLine in jsonl.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy(\.isWhitespace) { continue }
            func fail(_ message: String) -> EvalError { EvalError(file: file, line: lineNumber, message: message) }
            let object: JSON
            do { object = try JSONParser.parse(String(line)) } catch { throw fail("invalid JSON: \(error)") }
            guard case .object = object else { throw fail("expected an object with dataset, index and prediction, found \(EvalDataset.kind(object))") }
            guard let datasetValue = object["dataset"] else { throw fail("missing field 'dataset'") }
            guard let name = datasetValue.stringValue else { throw fail("dataset: expected a string, found \(EvalDataset.kind(datasetValue))") }
            guard let dataset = byName[name] else {
                let hint = Suggestions.closest(to: name, in: datasets.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
                throw fail("unknown dataset '\(name)'\(hint); the suite has \(datasets.map(\.name).joined(separator: ", "))")
            }
            guard let indexValue = object["index"] else { throw fail("missing field 'index'") }
            guard case .int(let index) = indexValue else { throw fail("index: expected an integer, found \(EvalDataset.kind(indexValue))") }
            let count = selectedSamples(dataset, maxSamples: maxSamples).count
            guard index >= 0, index < count else {
                throw fail("index \(index) is out of range: dataset '\(name)' has \(count) samples to score (indices 0…\(count - 1))")
            }
            guard let predictionValue = object["prediction"] else { throw fail("missing field 'prediction'") }
            guard let text = predictionValue.stringValue else { throw fail("prediction: expected a string, found \(EvalDataset.kind(predictionValue))") }
            if let earlier = given[name]?[index] {
                throw fail("duplicate prediction for dataset '\(name)' index \(index) (first on line \(earlier.line))")
            }
            given[name, default: [:]][index] = (lineNumber, text)
        }
        var predictions = [EvalPrediction]()
        var missing = 0
        for dataset in datasets {
            for (index, sample) in selectedSamples(dataset, maxSamples: maxSamples).enumerated() {
                let generated = given[dataset.name]?[index]?.text
                if generated == nil { missing += 1 }
                predictions.append(EvalPrediction(dataset: dataset.name, index: index, prompt: nil, generated: generated,
                                                  prediction: generated.map(AnswerPostprocessing.prediction(fromGenerated:)) ?? "",
                                                  gold: AnswerPostprocessing.gold(sample.output)))
            }
        }
        var results = try results(datasets: datasets, predictions: predictions, maxSamples: maxSamples)
        results.missingPredictions = missing
        return results
    }

    /// Scores aligned predictions (in dataset order, each dataset's selected samples in order).
    static func results(datasets: [EvalDataset], predictions: [EvalPrediction], maxSamples: Int?) throws(EvalError) -> EvalResults {
        var datasetResults = [EvalDatasetResult]()
        for dataset in datasets {
            let own = predictions.filter { $0.dataset == dataset.name }
            var scores = [String: Double]()
            for metric in dataset.metrics {
                do {
                    scores[metric.name] = try metric.score(predictions: own.map(\.prediction), golds: own.map(\.gold))
                } catch {
                    throw EvalError(file: dataset.file, message: "metric \(metric.name): \(error)")
                }
            }
            datasetResults.append(EvalDatasetResult(name: dataset.name, file: dataset.file, samples: own.count, scores: scores,
                                                    metricOrder: dataset.metricNames, unsupportedMetrics: dataset.unsupportedMetrics))
        }
        let results = EvalResults(datasets: datasetResults, report: LLMJPCategories.report([:]), predictions: predictions)
        var complete = results
        complete.report = LLMJPCategories.report(results.scores)
        return complete
    }
}
