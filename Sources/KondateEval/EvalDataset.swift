import Foundation
import KondateSupport

/// A problem with an evaluation input (a dataset file, a suite, a predictions file, a prompt template),
/// located as precisely as the input allows: `file:line: message` when a line is known, `file: message`
/// otherwise. Field paths inside a dataset (`samples[3].output`) are part of the message.
public struct EvalError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file the problem is in (empty for problems with no file, such as a template given on the command line).
    public var file: String
    /// The 1-based line, when the input is line-oriented (predictions JSONL).
    public var line: Int?
    public var message: String

    public init(file: String, line: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if file.isEmpty { return message }
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// One `{input, output}` pair of a dataset's `few_shots` or `samples`.
public struct EvalSample: Sendable, Equatable {
    public var input: String
    public var output: String

    public init(input: String, output: String) {
        self.input = input
        self.output = output
    }
}

/// An llm-jp-eval v1.3 evaluation dataset: one JSON file of the form documented in llm-jp-eval's
/// `DATASET.md`:
///
/// ```json
/// {"instruction": "質問を入力とし、回答を出力してください。…",
///  "output_length": 15,
///  "metrics": ["char_f1"],
///  "few_shots": [{"input": "質問：…", "output": "…"}, …],
///  "samples":   [{"input": "質問：…", "output": "…"}, …]}
/// ```
///
/// The dataset's name is the file name without `.json` (llm-jp-eval opens `{dataset_dir}/{name}.json`
/// and names its scores `{name}_{metric}`), so `jsquad.json` yields the score key `jsquad_char_f1`.
/// Fields other than these five are ignored, so files written by later llm-jp-eval versions (which add
/// `label_list`, `answer_extract_pattern`, …) load too.
public struct EvalDataset: Sendable {
    /// The file name without `.json`.
    public var name: String
    /// The file the dataset was read from, as given.
    public var file: String
    public var instruction: String
    /// The most tokens to generate for one answer (llm-jp-eval's `max_new_tokens`).
    public var outputLength: Int
    /// Every metric name of the file, in its order (including model-based ones Kondate cannot compute).
    public var metricNames: [String]
    /// The metrics Kondate computes for this dataset, in the file's order.
    public var metrics: [Metric]
    /// Model-based metrics of the file (`comet_wmt22`, `bert_score_*`), which Kondate does not compute.
    public var unsupportedMetrics: [String]
    public var fewShots: [EvalSample]
    public var samples: [EvalSample]

    /// Reads and validates a dataset file.
    public static func load(path: String) throws(EvalError) -> EvalDataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvalError(file: path, message: "cannot read the dataset file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EvalError(file: path, message: "the dataset file is not UTF-8")
        }
        return try parse(text, file: path)
    }

    /// The dataset name for a file path: the last path component without a trailing `.json`.
    public static func name(forFile path: String) -> String {
        let last = (path as NSString).lastPathComponent
        return last.hasSuffix(".json") ? String(last.dropLast(5)) : last
    }

    /// Parses and validates dataset JSON text; `file` names the source in errors and gives the name.
    public static func parse(_ text: String, file: String) throws(EvalError) -> EvalDataset {
        let root: JSON
        do { root = try JSONParser.parse(text) } catch {
            throw EvalError(file: file, message: "invalid JSON: \(error)")
        }
        guard case .object = root else {
            throw EvalError(file: file, message: "expected a JSON object with instruction, output_length, metrics, few_shots and samples, found \(kind(root))")
        }
        func field(_ key: String) throws(EvalError) -> JSON {
            guard let value = root[key] else { throw EvalError(file: file, message: "missing field '\(key)'") }
            return value
        }
        func string(_ value: JSON, _ path: String) throws(EvalError) -> String {
            guard let s = value.stringValue else {
                throw EvalError(file: file, message: "\(path): expected a string, found \(kind(value))")
            }
            return s
        }
        func pairs(_ key: String) throws(EvalError) -> [EvalSample] {
            let value = try field(key)
            guard let items = value.arrayValue else {
                throw EvalError(file: file, message: "\(key): expected an array of {\"input\", \"output\"} objects, found \(kind(value))")
            }
            var result = [EvalSample]()
            for (i, item) in items.enumerated() {
                guard case .object = item else {
                    throw EvalError(file: file, message: "\(key)[\(i)]: expected an object with \"input\" and \"output\", found \(kind(item))")
                }
                guard let input = item["input"] else { throw EvalError(file: file, message: "\(key)[\(i)]: missing field 'input'") }
                guard let output = item["output"] else { throw EvalError(file: file, message: "\(key)[\(i)]: missing field 'output'") }
                result.append(EvalSample(input: try string(input, "\(key)[\(i)].input"),
                                         output: try string(output, "\(key)[\(i)].output")))
            }
            return result
        }

        let instruction = try string(try field("instruction"), "instruction")
        let lengthValue = try field("output_length")
        guard let outputLength = lengthValue.intValue else {
            throw EvalError(file: file, message: "output_length: expected an integer, found \(kind(lengthValue))")
        }
        guard outputLength > 0 else {
            throw EvalError(file: file, message: "output_length: must be at least 1, found \(outputLength)")
        }
        let metricsValue = try field("metrics")
        guard let metricItems = metricsValue.arrayValue else {
            throw EvalError(file: file, message: "metrics: expected an array of metric names, found \(kind(metricsValue))")
        }
        var names = [String](), metrics = [Metric](), unsupported = [String]()
        for (i, item) in metricItems.enumerated() {
            let name = try string(item, "metrics[\(i)]")
            names.append(name)
            do {
                metrics.append(try Metrics.metric(named: name))
            } catch let error {
                if case .unsupportedMetric = error { unsupported.append(name); continue }
                throw EvalError(file: file, message: "metrics[\(i)]: \(error)")
            }
        }
        let fewShots = try pairs("few_shots")
        let samples = try pairs("samples")
        guard !samples.isEmpty else { throw EvalError(file: file, message: "samples: the dataset has no samples to evaluate") }
        return EvalDataset(name: name(forFile: file), file: file, instruction: instruction, outputLength: outputLength,
                           metricNames: names, metrics: metrics, unsupportedMetrics: unsupported,
                           fewShots: fewShots, samples: samples)
    }

    /// The datasets of a suite: each path is a dataset file, or a directory whose `*.json` files (not
    /// recursively, in name order) are dataset files. Two datasets with the same name are an error,
    /// since their scores would share keys.
    public static func loadSuite(paths: [String]) throws(EvalError) -> [EvalDataset] {
        var files = [String]()
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw EvalError(file: path, message: "no such dataset file or directory")
            }
            if isDirectory.boolValue {
                let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                    .filter { $0.hasSuffix(".json") }.sorted()
                guard !entries.isEmpty else { throw EvalError(file: path, message: "the directory holds no *.json dataset files") }
                files += entries.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        var datasets = [EvalDataset]()
        for file in files {
            let dataset = try load(path: file)
            if let other = datasets.first(where: { $0.name == dataset.name }) {
                throw EvalError(file: file, message: "dataset '\(dataset.name)' is already in the suite (from \(other.file))")
            }
            datasets.append(dataset)
        }
        return datasets
    }

    /// A JSON value's type, for error messages.
    static func kind(_ value: JSON) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
