import ArgumentParser
import Foundation
import KondateBench
import KondateKernels
import KondateModel
import KondateRecipe
import KondateSupport

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (build with -c release).",
        subcommands: [BenchTokenize.self, BenchTrain.self])
}

struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenization throughput in MB/s of UTF-8 text on 1..N threads.",
        discussion: "Inputs: a JSON Lines file with a text field (e.g. examples/tiny/data/ja.jsonl) or a plain text file (one text per line).")

    @Option(help: "A tokenizer.json or SentencePiece .model file.") var tokenizer: String
    @Option(help: "Input file: JSON Lines with a 'text' field, or plain lines.") var file: String
    @Option(help: "Largest thread count to measure.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Repetitions; the best is reported.") var repeats: Int = 3
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let result: TokenizationBenchmark.Result
        do { result = try TokenizationBenchmark.run(tokenizer: tokenizer, file: file, threads: threads, repeats: repeats) } catch let e as FileError {
            printError("kondate bench tokenize: \(e.description)\n")
            throw ExitCode(Exit.recipeErrors)
        }
        if json {
            print(result.json.rendered())
            return
        }
        for row in result.rows {
            print("kondate \(URL(fileURLWithPath: tokenizer).lastPathComponent): \(row.threads) thread\(row.threads == 1 ? "" : "s"): " +
                  "\(Format.fixed(row.megabytesPerSecond, 2)) MB/s (\(Format.grouped(result.bytes)) bytes, \(Format.grouped(row.tokens)) tokens)")
        }
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training-step throughput of a model shape on random tokens, with a per-kernel time breakdown.",
        discussion: """
        FLOPs per step: the planner's model FLOPs (`kondate plan`): 6 × (matmul parameters: every \
        projection and the output head, not the input embedding) × tokens + 12 × batch × layers × seq² × \
        hidden for attention (PaLM's count; the causal kernel skips about half of that work). \
        peak_gflops is measured in the same process on 1024×1024 matrices with the same thread count, with \
        the kernel the linear layers use: cblas_sgemm for --precision fp32, oneDNN's bf16 matmul for bf16. \
        peak_rss_bytes is the process's peak resident memory. Under mpirun the step is distributed: --tensor and --pipeline set the model-parallel \
        sizes, the remaining ranks are data parallel (--zero-stage 1 or 2 for ZeRO), the batch is the global batch in \
        micro-batches of --micro-batch rows, and rank 0 prints the global tokens/s and the share of the step \
        spent communicating (tensor-parallel reductions, data-parallel reductions and gathers, pipeline waits).
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
    @Option(help: "ZeRO stage over the data-parallel ranks: 1 shards the optimizer state, 2 the gradients too.") var zeroStage: Int = 0
    @Option(help: "fp32, or bf16 (bf16 matmuls with f32 accumulation and master weights).") var precision: MatmulPrecision = .fp32
    @Option(help: "How bf16 matmuls run: onednn or rounded-sgemm (default: onednn where the CPU has bf16 instructions).")
    var bf16Route: Kernels.BF16Route?
    @Option(help: "Activation recomputation: none, selective (what the attention kernel always does) or full.") var recompute: Recompute = .none
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let config = ModelConfig(arch: arch, vocabSize: vocab, hidden: hidden, ffn: ffn, layers: layers, heads: heads,
                                 kvHeads: kvHeads, maxPositions: seq)
        let options = TrainingBenchmark.Options(config: config, seq: seq, batch: batch, steps: steps, threads: threads, tensor: tensor,
                                                pipeline: pipeline, microBatch: microBatch, zeroStage: zeroStage, precision: precision, bf16Route: bf16Route,
                                                recompute: recompute)
        let outcome: TrainingBenchmark.Result?
        do { outcome = try TrainingBenchmark.run(options) } catch let e as TrainingBenchmark.UsageError {
            printError("kondate bench train: \(e.description)\n")
            throw ExitCode(Exit.usage)
        }
        guard let r = outcome else { return }  // not rank 0
        if json {
            print(r.json.rendered(pretty: false))
            return
        }
        let l = r.layout
        let ranks = l.ranks > 1 ? ", \(l.ranks) ranks (tensor \(l.tensor) × pipeline \(l.pipeline) × data \(l.data)\(l.zeroStage > 0 ? ", ZeRO-\(l.zeroStage)" : ""))" : ""
        print("\(arch.rawValue) \(Format.grouped(r.parameters)) parameters, batch \(batch) × seq \(seq), \(precision.rawValue)" +
              (recompute == .full ? ", full recomputation" : "") + ", " +
              "\(threads) thread\(threads == 1 ? "" : "s")\(ranks)")
        print("  \(Format.grouped(Int(r.tokensPerSecond))) tokens/s, \(Format.fixed(r.stepSeconds * 1000, 1)) ms/step, " +
              "\(Format.fixed(r.gflops, 1)) GFLOP/s = \(Format.fixed(100 * r.fractionOfPeak, 1))% of " +
              (l.ranks > 1 ? "\(l.ranks) × " : "") + "\(r.peakKernel) peak \(Format.fixed(r.peakGFLOPS, 1)) GFLOP/s" +
              (r.peakResidentBytes.map { ", peak RSS \(Format.bytes(Double($0)))" } ?? ""))
        let allocated = r.memory.reduce(0) { $0 + $1.bytes }
        print("  allocated \(Format.bytes(Double(allocated))): " + r.memory.filter { $0.bytes > 0 }.map { "\($0.name) \(Format.bytes(Double($0.bytes)))" }
            .joined(separator: ", "))
        for (name, s) in r.kernels {
            print("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(Format.fixed(s * 1000, 1).leftPadded(8)) ms  \(Format.fixed(100 * s / r.stepSeconds, 1).leftPadded(5))%")
        }
    }
}

extension MatmulPrecision: ExpressibleByArgument {}
extension Kernels.BF16Route: ExpressibleByArgument {}
extension Recompute: ExpressibleByArgument {}
