import ArgumentParser
import Foundation
import KondateData
import KondateMPI
import KondateRuntime
import KondateSupport
import KondateTensor

/// Loads a Hugging Face model directory, reporting failures as a usage error with the reason.
func loadModel(_ directory: String, command: String) throws -> Transformer {
    do { return try HFModel.load(directory: directory) } catch {
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
        guard ids.count >= 2 else {
            printError("kondate score: need at least 2 tokens to score a next-token prediction (got \(ids.count))\n")
            throw ExitCode(Exit.usage)
        }
        do { try transformer.forward(tokens: ids, batch: 1, seq: ids.count) } catch {
            printError("kondate score: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        let v = transformer.config.vocabSize
        let logits = transformer.logits!
        let logprobs: [Double] = (0..<(ids.count - 1)).map { i in
            let row = logits[(i * v)..<((i + 1) * v)]
            let m = Double(row.max()!)
            let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
            return Double(row[row.startIndex + Int(ids[i + 1])]) - lse
        }
        let loss = -logprobs.reduce(0, +) / Double(logprobs.count)
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
        let eos = HFModel.endOfSequenceID(directory: model)
        let session = DecodingSession(model: transformer)
        var sampler = Sampler(temperature: temperature, topP: topP, seed: seed)
        var generated: [Int32] = []
        let started = Date()
        do {
            var logits: UnsafeBufferPointer<Float>?
            for id in promptIDs { logits = try session.append(id) }
            while generated.count < maxTokens, session.length < session.capacity, let l = logits {
                let next = sampler.next(l)
                if next == eos { break }
                generated.append(next)
                if session.length < session.capacity { logits = try session.append(next) } else { logits = nil }
            }
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

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training-step throughput of a model shape on random tokens, with a per-kernel time breakdown.",
        discussion: """
        FLOPs per step: 6 × (matmul parameters: every projection and the output head, not the input \
        embedding) × tokens + 12 × batch × layers × seq² × hidden for attention (PaLM's count, as \
        `kondate plan` uses; the causal kernel skips about half of that work). sgemm_peak_gflops \
        is measured in the same process: cblas_sgemm on 1024×1024 matrices with the same thread count. \
        Under mpirun the step is distributed: --tensor and --pipeline set the model-parallel sizes, the \
        remaining ranks are data parallel (--zero for ZeRO-1), the batch is the global batch in micro-batches \
        of --micro-batch rows, and rank 0 prints the global tokens/s and the share of the step spent \
        communicating (tensor-parallel reductions, data-parallel reductions and gathers, pipeline waits).
        """)

    @Option(help: "llama or gpt2.") var arch: ModelConfig.Architecture = .llama
    @Option var hidden: Int = 256
    @Option var ffn: Int = 688
    @Option var layers: Int = 4
    @Option var heads: Int = 8
    @Option var kvHeads: Int?
    @Option var vocab: Int = 8000
    @Option var seq: Int = 256
    @Option var batch: Int = 8
    @Option(help: "Timed steps (after one untimed warm-up step).") var steps: Int = 5
    @Option(help: "Threads for OpenBLAS and the elementwise kernels.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Tensor-parallel size (under mpirun).") var tensor: Int = 1
    @Option(help: "Pipeline-parallel size (under mpirun).") var pipeline: Int = 1
    @Option(help: "Rows per micro-batch (default: the batch shared evenly by the data-parallel ranks, or 1 row with a pipeline).")
    var microBatch: Int?
    @Flag(help: "ZeRO-1: shard the optimizer state over the data-parallel ranks.") var zero = false
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        guard steps >= 1, threads >= 1, batch >= 1, seq >= 2, tensor >= 1, pipeline >= 1 else {
            printError("kondate bench train: --steps, --threads, --batch, --tensor and --pipeline must be at least 1 and --seq at least 2\n")
            throw ExitCode(Exit.usage)
        }
        let config = ModelConfig(arch: arch, vocabSize: vocab, hidden: hidden, ffn: ffn, layers: layers, heads: heads,
                                 kvHeads: kvHeads, maxPositions: seq)
        // Under mpirun: the ranks' layout.
        var groups: ParallelGroups?
        var world: Communicator?
        if DistributedContext.launchedByMPI, let w = try? Communicator.world(), w.size > 1 {
            world = w
            guard w.size % (tensor * pipeline) == 0 else {
                printError("kondate bench train: \(w.size) ranks are not a multiple of --tensor \(tensor) × --pipeline \(pipeline)\n")
                Communicator.finalize()
                throw ExitCode(Exit.usage)
            }
            groups = try ParallelGroups.mpi(world: w, layout: ParallelLayout(tensor: tensor, pipeline: pipeline, data: w.size / (tensor * pipeline)),
                                            zero: zero)
        }
        defer { if world != nil { Communicator.finalize() } }
        let data = groups?.data.size ?? 1
        let micro = microBatch ?? (pipeline > 1 ? 1 : max(1, batch / data))
        guard batch % (micro * data) == 0 else {
            printError("kondate bench train: --batch \(batch) is not a multiple of --micro-batch \(micro) × \(data) data-parallel ranks\n")
            throw ExitCode(Exit.usage)
        }
        let model: Transformer
        do { model = try Transformer(config: config, shard: groups?.shard ?? .whole, tensorGroup: groups?.tensor) } catch {
            printError("kondate bench train: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        BLAS.setThreads(threads)
        Parallel.threads = threads
        let peak = Self.sgemmPeak()
        model.initialize(seed: 1)
        var rng = SplitMix64(seed: 2)
        let samples = (0..<batch).map { _ in (0...seq).map { _ in Int32(rng.below(UInt64(vocab))) } }
        let batches = stride(from: 0, to: batch, by: micro).map { MicroBatch(samples: Array(samples[$0..<($0 + micro)])) }
        let trainer = Trainer(model: model, options: TrainingOptions(
            schedule: LearningRateSchedule(kind: .constant, maxLR: 1e-4, decaySteps: steps + 1), adamw: AdamW.Hyperparameters()),
                              groups: groups)
        _ = try trainer.step(batches, seq: seq)
        let profile = KernelProfile()
        model.profile = profile
        var total = 0.0, optimizer = 0.0, communication = 0.0
        for _ in 0..<steps {
            let report = try trainer.step(batches, seq: seq)
            total += report.seconds
            optimizer += trainer.lastUpdateSeconds
            communication += trainer.lastCommunicationSeconds
        }
        // The slowest rank's step time is the job's.
        if let groups { total = groups.world.allReduce(total) / Double(groups.world.size) }
        if let world, world.rank != 0 { return }
        let stepSeconds = total / Double(steps)
        let tokens = batch * seq
        let whole = ParameterLayout(config)
        let matmulParameters = whole.tensors.filter { [.matrix, .outputProjection, .head].contains($0.role) }
            .reduce(0) { $0 + $1.count } + (config.tieEmbeddings ? vocab * hidden : 0)
        let flops = 6 * Double(matmulParameters) * Double(tokens) + 12 * Double(batch * layers) * Double(seq * seq) * Double(hidden)
        let gflops = flops / stepSeconds / 1e9
        // Each rank measured the peak of its own threads.
        let ranksCount = groups?.world.size ?? 1
        var kernels: [(String, JSON)] = KernelProfile.Kernel.allCases.filter { $0 != .optimizer }.map {
            ($0.rawValue, .double(profile.seconds($0) / Double(steps)))
        }
        kernels.append(("optimizer", .double(optimizer / Double(steps))))
        if groups != nil {
            // Tensor-parallel reductions are timed by the model (`communication`); data-parallel
            // reductions, gathers and pipeline waits by the trainer.
            kernels = kernels.map { $0.0 == "communication" ? ($0.0, .double(($0.1.doubleValue ?? 0) + communication / Double(steps))) : $0 }
        } else {
            kernels.removeAll { $0.0 == "communication" }
        }
        let accounted = kernels.reduce(0.0) { $0 + ($1.1.doubleValue ?? 0) }
        kernels.append(("other", .double(max(0, stepSeconds - accounted))))
        let result: JSON = .object([
            ("config", .object([("arch", .string(arch.rawValue)), ("hidden", .int(hidden)), ("ffn", .int(ffn)), ("layers", .int(layers)),
                                ("heads", .int(heads)), ("kv_heads", .int(config.kvHeads)), ("vocab", .int(vocab)), ("seq", .int(seq)),
                                ("batch", .int(batch)), ("parameters", .int(whole.count))])),
            ("threads", .int(threads)), ("steps", .int(steps)),
            ("layout", .object([("ranks", .int(groups?.world.size ?? 1)), ("tensor", .int(groups?.tensor.size ?? 1)),
                                ("pipeline", .int(groups?.pipeline.size ?? 1)), ("data", .int(data)), ("zero", .bool(groups?.zero ?? false)),
                                ("micro_batch", .int(micro))])),
            ("tokens_per_second", .double(Double(tokens) / stepSeconds)), ("step_seconds", .double(stepSeconds)),
            ("gflops", .double(gflops)), ("sgemm_peak_gflops", .double(peak)), ("fraction_of_peak", .double(gflops / (peak * Double(ranksCount)))),
            ("kernels", .object(kernels)),
        ])
        if json {
            print(result.rendered(pretty: false))
            return
        }
        let ranks = groups.map { g in ", \(g.world.size) ranks (tensor \(g.tensor.size) × pipeline \(g.pipeline.size) × data \(g.data.size)\(g.zero ? ", ZeRO-1" : ""))" } ?? ""
        print("\(arch.rawValue) \(Format.grouped(whole.count)) parameters, batch \(batch) × seq \(seq), \(threads) thread\(threads == 1 ? "" : "s")\(ranks)")
        print("  \(Format.grouped(Int(Double(tokens) / stepSeconds))) tokens/s, \(Format.fixed(stepSeconds * 1000, 1)) ms/step, " +
              "\(Format.fixed(gflops, 1)) GFLOP/s = \(Format.fixed(100 * gflops / (peak * Double(ranksCount)), 1))% of " +
              (ranksCount > 1 ? "\(ranksCount) × " : "") + "sgemm peak \(Format.fixed(peak, 1)) GFLOP/s")
        for (name, value) in kernels {
            let s = value.doubleValue ?? 0
            print("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(Format.fixed(s * 1000, 1).leftPadded(8)) ms  \(Format.fixed(100 * s / stepSeconds, 1).leftPadded(5))%")
        }
    }

    /// Best GFLOP/s of cblas_sgemm on 1024³ over a few repetitions.
    static func sgemmPeak() -> Double {
        let n = 1024
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = 0.0
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: pa.baseAddress!, lda: n,
                                   b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = max(best, 2 * Double(n * n * n) / seconds / 1e9)
        }
        return best
    }
}

extension ModelConfig.Architecture: ExpressibleByArgument {}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
