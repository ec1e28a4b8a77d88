import ArgumentParser
import Foundation
import KondateEval
import KondateRuntime
import KondateSupport
import KondateTokenizers

/// Loads a suite (dataset files and directories of them), reporting problems as input errors (exit 1).
private func loadSuite(_ paths: [String], command: String) throws -> [EvalDataset] {
    guard !paths.isEmpty else {
        printError("kondate \(command): give at least one --suite dataset file or directory\n")
        throw ExitCode(Exit.usage)
    }
    do { return try EvalDataset.loadSuite(paths: paths) } catch {
        printError("kondate \(command): \(error)\n")
        throw ExitCode(Exit.recipeErrors)
    }
}

/// Prints results as JSON or as the table, and writes the JSON to `out` when given.
private func emit(_ results: EvalResults, json: Bool, out: String?, command: String) throws {
    let rendered = results.json().rendered(pretty: true) + "\n"
    if let out {
        do { try rendered.write(toFile: out, atomically: true, encoding: .utf8) } catch {
            printError("kondate \(command): cannot write \(out): \(error.localizedDescription)\n")
            throw ExitCode(Exit.usage)
        }
    }
    print(json ? rendered.dropLast() : results.table().dropLast(), terminator: "\n")
}

struct EvalScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-score",
        abstract: "Score predictions made elsewhere against llm-jp-eval v1.3 datasets.",
        discussion: """
        The predictions file is JSON Lines, one object per line: {"dataset": NAME, "index": I, "prediction": TEXT}, \
        NAME being a dataset file name without .json and I an index into its samples. Predictions are \
        post-processed as llm-jp-eval does (text before the first blank line, NFKC, stripped); samples \
        without a prediction are scored as empty answers and counted in a warning. Exit status: 0 scored, \
        1 for problems in the suite or the predictions (file:line messages), 2 for usage errors.
        """)

    @Option(help: ArgumentHelp("A dataset JSON file, or a directory of them (repeatable).", valueName: "path"))
    var suite: [String] = []
    @Option(help: "The predictions file (JSON Lines).") var predictions: String
    @Option(help: "Score only the first N samples of each dataset (llm-jp-eval's max_num_samples).") var maxSamples: Int?
    @Flag(help: "JSON output: datasets, scores, categories, AVG, warnings, predictions.") var json = false
    @Option(help: "Also write the JSON results to this file.") var out: String?

    func validate() throws {
        if let maxSamples, maxSamples < 1 { throw ValidationError("--max-samples must be at least 1") }
    }

    func run() throws {
        let datasets = try loadSuite(suite, command: "eval-score")
        guard let data = FileManager.default.contents(atPath: predictions), let text = String(data: data, encoding: .utf8) else {
            printError("kondate eval-score: \(predictions): cannot read the predictions file\n")
            throw ExitCode(Exit.recipeErrors)
        }
        let results: EvalResults
        do { results = try Evaluation.score(datasets: datasets, predictionsJSONL: text, file: predictions, maxSamples: maxSamples) } catch {
            printError("kondate eval-score: \(error)\n")
            throw ExitCode(Exit.recipeErrors)
        }
        if results.missingPredictions > 0 {
            printError("kondate eval-score: warning: \(results.missingPredictions) samples have no prediction and are scored as empty answers\n")
        }
        try emit(results, json: json, out: out, command: "eval-score")
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on llm-jp-eval v1.3 datasets (greedy generation, llm-jp-eval's prompts and metrics).",
        discussion: """
        Each prompt is llm-jp-eval v1.3's default template with the dataset's first --few-shots few_shots; \
        it starts with the BOS token when the model's tokenizer_config.json sets add_bos_token. Generation is greedy, stops at the end-of-sequence token of generation_config.json / config.json \
        and after the dataset's output_length tokens; a prompt that leaves too little room in the model's \
        context is cut from the left (counted in a warning). Exit status: 0 evaluated, 1 for problems in \
        the suite, 2 for usage or model errors.
        """)

    @Option(help: "A Hugging Face model directory with a tokenizer.") var model: String
    @Option(help: ArgumentHelp("A dataset JSON file, or a directory of them (repeatable).", valueName: "path"))
    var suite: [String] = []
    @Option(help: "Few-shot examples per prompt, taken in order from each dataset's few_shots.") var fewShots: Int = 4
    @Option(help: "Evaluate only the first N samples of each dataset (llm-jp-eval's max_num_samples).") var maxSamples: Int?
    @Flag(help: "JSON output: datasets, scores, categories, AVG, warnings, predictions.") var json = false
    @Option(help: "Also write the JSON results to this file.") var out: String?

    func validate() throws {
        guard fewShots >= 0 else { throw ValidationError("--few-shots must be at least 0") }
        if let maxSamples, maxSamples < 1 { throw ValidationError("--max-samples must be at least 1") }
    }

    func run() throws {
        let datasets = try loadSuite(suite, command: "eval")
        let prompt: EvalPrompt
        do { prompt = try EvalPrompt(numFewShots: fewShots) } catch {
            printError("kondate eval: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        for dataset in datasets where dataset.fewShots.count < fewShots {
            printError("kondate eval: \(dataset.file): few_shots: --few-shots \(fewShots) but the dataset has only \(dataset.fewShots.count)\n")
            throw ExitCode(Exit.recipeErrors)
        }
        let generator: ModelTextGenerator
        do { generator = try ModelTextGenerator.load(directory: model) } catch {
            printError("kondate eval: \(error)\n  (eval needs a model directory with config.json, weights and tokenizer.json or tokenizer.model)\n")
            throw ExitCode(Exit.usage)
        }
        var results: EvalResults
        do {
            // A live counter on a terminal; otherwise one line per dataset when it is done.
            let live = isatty(STDERR_FILENO) == 1
            results = try Evaluation.run(datasets: datasets, generator: generator, prompt: prompt, maxSamples: maxSamples) { name, i, n in
                if json { return }
                if live {
                    printError("\r\(name) \(i)/\(n)" + (i == n ? "\n" : ""))
                } else if i == n {
                    printError("\(name): \(n) samples generated\n")
                }
            }
        } catch let error as EvalError {
            printError("kondate eval: \(error)\n")
            throw ExitCode(Exit.recipeErrors)
        } catch {
            printError("kondate eval: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        results.truncatedPrompts = generator.truncatedPrompts
        if results.truncatedPrompts > 0 {
            printError("kondate eval: warning: \(results.truncatedPrompts) prompts were cut from the left to fit the model's \(generator.model.config.maxPositions) positions\n")
        }
        try emit(results, json: json, out: out, command: "eval")
    }
}
