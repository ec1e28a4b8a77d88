import ArgumentParser
import Foundation
import KondateMPI
import KondatePlan
import KondateModel
import KondateRuntime
import KondateSupport
import KondateTokenizers

/// Loads a Hugging Face model directory, reporting failures as a usage error with the reason.
func loadModel(_ directory: String, command: String) throws -> Transformer {
    do { return try ComputeBackend.cpuFP32.loadModel(directory: directory) } catch {
        printError("kondate \(command): \(error)\n")
        throw ExitCode(Exit.usage)
    }
}

func loadTokenizer(modelDirectory: String, command: String) throws -> any Tokenizer {
    do { return try TokenizerLoader.load(path: modelDirectory) } catch {
        printError("kondate \(command): \(error)\n  (--text and --prompt need tokenizer.json or tokenizer.model in the model directory)\n")
        throw ExitCode(Exit.usage)
    }
}

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Mean next-token loss and per-token log-probabilities of a sequence under a model.",
        discussion: """
        The loss is what transformers computes with labels=input_ids: the mean over positions 1…n−1 of \
        −log p(token | previous tokens). logprobs[i] is log p(token[i+1] | token[0…i]). Text is encoded \
        with the model directory's tokenizer exactly as `kondate tokenize` encodes it.
        """)

    @Option(help: "A Hugging Face model directory (config.json, model.safetensors).") var model: String
    @Option(help: "Token ids, comma-separated.") var tokens: String?
    @Option(help: "A file of token ids (comma or whitespace separated).") var tokensFile: String?
    @Option(help: "Text, encoded with the model's tokenizer.") var text: String?
    @Flag(help: "JSON output: loss, logprobs, tokens.") var json = false

    func run() throws {
        let given = [tokens, tokensFile, text].compactMap { $0 }.count
        guard given == 1 else {
            printError("kondate score: give exactly one of --tokens, --tokens-file or --text\n")
            throw ExitCode(Exit.usage)
        }
        let transformer = try loadModel(model, command: "score")
        var ids: [Int32]
        if let text {
            ids = try loadTokenizer(modelDirectory: model, command: "score").encode(text)
        } else {
            let source: String
            if let tokensFile {
                guard let s = try? String(contentsOfFile: tokensFile, encoding: .utf8) else {
                    printError("kondate score: cannot read \(tokensFile)\n")
                    throw ExitCode(Exit.usage)
                }
                source = s
            } else {
                source = tokens!
            }
            ids = []
            for (i, field) in source.split(whereSeparator: { $0 == "," || $0.isWhitespace }).enumerated() {
                guard let id = Int32(field) else {
                    printError("kondate score: token \(i + 1) '\(field)' is not an integer id\n")
                    throw ExitCode(Exit.usage)
                }
                ids.append(id)
            }
        }
        let score: SequenceScore
        do { score = try transformer.score(ids) } catch {
            printError("kondate score: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        let loss = score.loss, logprobs = score.logprobs
        if json {
            print(JSON.object([("loss", .double(loss)), ("logprobs", .array(logprobs.map(JSON.double))),
                               ("tokens", .array(ids.map { .int(Int($0)) }))]).rendered(pretty: false))
        } else {
            print("loss \(Format.fixed(loss, 6))  perplexity \(Format.fixed(exp(loss), 3))  over \(logprobs.count) predicted tokens")
        }
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model (key/value cache; greedy at temperature 0, else top-p sampling).",
        discussion: "Generation stops at the end-of-sequence token of generation_config.json / config.json, or after --max-tokens.")

    @Option(help: "A Hugging Face model directory with a tokenizer.") var model: String
    @Option(help: "The prompt text.") var prompt: String
    @Option(help: "Most tokens to generate.") var maxTokens: Int = 64
    @Option(help: "Sampling temperature (0: greedy).") var temperature: Double = 0
    @Option(help: "Nucleus sampling mass.") var topP: Double = 1
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0
    @Flag(help: "JSON output: prompt, completion, tokens, tokens_per_second.") var json = false

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be at least 0") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be at least 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        let transformer = try loadModel(model, command: "generate")
        let tokenizer = try loadTokenizer(modelDirectory: model, command: "generate")
        let promptIDs = tokenizer.encode(prompt)
        guard !promptIDs.isEmpty else {
            printError("kondate generate: the prompt encodes to no tokens\n")
            throw ExitCode(Exit.usage)
        }
        let eos = try HFModel.endOfSequenceID(directory: model)
        var sampler = Sampler(temperature: temperature, topP: topP, seed: seed)
        let started = Date()
        let generated: [Int32]
        do {
            generated = try DecodingSession(model: transformer).generate(prompt: promptIDs, maxNewTokens: maxTokens, sampler: &sampler,
                                                                         endOfSequence: eos)
        } catch {
            printError("kondate generate: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        let seconds = Date().timeIntervalSince(started)
        let completion = tokenizer.decode(generated)
        if json {
            print(JSON.object([("prompt", .string(prompt)), ("completion", .string(completion)),
                               ("tokens", .array(generated.map { .int(Int($0)) })),
                               ("tokens_per_second", .double(Double(promptIDs.count + generated.count) / max(seconds, 1e-9)))]).rendered(pretty: false))
        } else {
            print(prompt + completion)
        }
    }
}

extension ModelConfig.Architecture: ExpressibleByArgument {}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
