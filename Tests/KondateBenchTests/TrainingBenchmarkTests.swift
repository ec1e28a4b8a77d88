import Foundation
import KondateBench
import KondateModel
import KondateSupport
import Testing

@Suite struct TrainingBenchmarkTests {
    /// The FLOP count the benchmark reports is the planner's formula; checked here against a count made
    /// from the runtime's own parameter layout (every weight a matmul reads, plus the tied head).
    @Test(arguments: [
        ModelConfig(arch: .llama, vocabSize: 1000, hidden: 64, ffn: 172, layers: 3, heads: 8, kvHeads: 2, maxPositions: 128),
        ModelConfig(arch: .llama, vocabSize: 1000, hidden: 64, ffn: 172, layers: 3, heads: 4, maxPositions: 128, tieEmbeddings: true),
        ModelConfig(arch: .gpt2, vocabSize: 777, hidden: 48, ffn: 192, layers: 2, heads: 4, maxPositions: 64),
        ModelConfig(arch: .gpt2, vocabSize: 777, hidden: 48, ffn: 192, layers: 2, heads: 4, maxPositions: 64, tieEmbeddings: false),
    ])
    func flopsFollowTheLayout(config: ModelConfig) {
        let batch = 3, seq = 32
        let layout = ParameterLayout(config)
        let matmul = layout.tensors.filter { [.matrix, .outputProjection, .head].contains($0.role) }.reduce(0) { $0 + $1.count }
            + (config.tieEmbeddings ? config.vocabSize * config.hidden : 0)
        let expected = 6 * Double(matmul) * Double(batch * seq) + 12 * Double(batch * config.layers) * Double(seq * seq) * Double(config.hidden)
        #expect(TrainingBenchmark.flopsPerStep(config, batch: batch, seq: seq) == expected)
    }

    @Test func aSmallRunReportsConsistentFigures() throws {
        let config = ModelConfig(arch: .llama, vocabSize: 256, hidden: 32, ffn: 64, layers: 2, heads: 4, maxPositions: 16)
        let r = try #require(try TrainingBenchmark.run(.init(config: config, seq: 16, batch: 2, steps: 2, threads: 1)))
        #expect(r.layout.ranks == 1 && r.layout.data == 1 && r.layout.microBatch == 2)
        #expect(r.parameters == ParameterLayout(config).count)
        #expect(r.stepSeconds > 0 && r.tokensPerSecond == Double(2 * 16) / r.stepSeconds)
        #expect(abs(r.gflops - r.flopsPerStep / r.stepSeconds / 1e9) <= 1e-9 * r.gflops)
        #expect(r.kernels.last?.name == "other" && !r.kernels.contains { $0.name == "communication" })
        #expect(r.kernels.reduce(0) { $0 + $1.seconds } >= r.stepSeconds * (1 - 1e-9))
        #expect(r.json["flops_per_step"]?.doubleValue == r.flopsPerStep)
        // The allocation accounting: f32 parameters, gradients and two AdamW moments, and activations.
        let memory = Dictionary(uniqueKeysWithValues: r.memory.map { ($0.name, $0.bytes) })
        #expect(memory["parameters"] == r.parameters * 4 && memory["gradients"] == r.parameters * 4 && memory["optimizer"] == r.parameters * 8)
        #expect((memory["activations"] ?? 0) > 0 && memory["bf16_workspace"] == 0)
        #expect(r.json["memory_bytes"]?["total"]?.intValue == r.memory.reduce(0) { $0 + $1.bytes })
    }

    @Test func refusesImpossibleSettings() {
        let config = ModelConfig(arch: .llama, vocabSize: 256, hidden: 32, ffn: 64, layers: 2, heads: 4, maxPositions: 16)
        #expect(throws: TrainingBenchmark.UsageError.self) { try TrainingBenchmark.run(.init(config: config, seq: 1, batch: 2, steps: 1, threads: 1)) }
        #expect(throws: TrainingBenchmark.UsageError.self) {
            try TrainingBenchmark.run(.init(config: config, seq: 16, batch: 3, steps: 1, threads: 1, microBatch: 2))
        }
        let bad = ModelConfig(arch: .llama, vocabSize: 256, hidden: 30, ffn: 64, layers: 2, heads: 4, maxPositions: 16)
        #expect(throws: TrainingBenchmark.UsageError.self) { try TrainingBenchmark.run(.init(config: bad, seq: 16, batch: 2, steps: 1, threads: 1)) }
    }
}
