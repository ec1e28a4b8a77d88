import Foundation
@testable import KondateCollectives
@testable import KondateModel
import KondateSupport
@testable import KondateTraining
import Testing

/// Model shards (tensor slices × pipeline stages): the shards of a model tile it exactly, initialise to
/// the whole model's values, and restore from a whole-model checkpoint. The distributed step itself is
/// tested under mpirun (`DistributedCLITests`).
@Suite struct ShardTests {
    static let llama = ModelConfig(arch: .llama, vocabSize: 64, hidden: 32, ffn: 80, layers: 3, heads: 4, kvHeads: 2, maxPositions: 32)
    static let gpt2 = ModelConfig(arch: .gpt2, vocabSize: 64, hidden: 32, ffn: 128, layers: 3, heads: 4, maxPositions: 32)
    static let llamaTied = ModelConfig(arch: .llama, vocabSize: 64, hidden: 32, ffn: 80, layers: 3, heads: 4, kvHeads: 2, maxPositions: 32,
                                       tieEmbeddings: true)

    static func shards(tensor: Int, pipeline: Int) -> [ModelShard] {
        (0..<pipeline).flatMap { p in (0..<tensor).map { t in ModelShard(tensorRank: t, tensorSize: tensor, pipelineRank: p, pipelineSize: pipeline) } }
    }

    @Test(arguments: [(llama, 2, 1), (llama, 1, 3), (llama, 2, 2), (gpt2, 2, 2), (gpt2, 4, 3), (llamaTied, 2, 2)])
    func shardsTileTheWholeModelAndInitialiseToItsValues(config: ModelConfig, tensor: Int, pipeline: Int) throws {
        let whole = try Transformer(config: config)
        whole.initialize(seed: 11)
        var rebuilt = [Float](repeating: .nan, count: whole.parameterCount)
        var covered = [Int](repeating: 0, count: whole.parameterCount)
        for shard in Self.shards(tensor: tensor, pipeline: pipeline) {
            let model = try Transformer(config: config, shard: shard, tensorGroup: tensor > 1 ? NoTransport(size: tensor) : nil)
            model.initialize(seed: 11)
            for t in model.layout.tensors {
                let full = try #require(whole.layout[t.name])
                #expect(t.fullShape == full.shape && t.count * (t.split == .replicated ? 1 : tensor) == full.count, "\(t.name)")
                for s in t.segments(rank: shard.tensorRank, parts: tensor) {
                    for j in 0..<s.count {
                        rebuilt[full.offset + s.full + j] = model.parameters[t.offset + s.local + j]
                        if !t.isTiedCopy && (t.split != .replicated || shard.tensorRank == 0) { covered[full.offset + s.full + j] += 1 }
                    }
                }
            }
            // copySlices cuts the same values out of the whole model.
            let copy = try Transformer(config: config, shard: shard, tensorGroup: tensor > 1 ? NoTransport(size: tensor) : nil)
            copy.copySlices(of: whole)
            #expect(Array(copy.parameters) == Array(model.parameters))
        }
        // Every element once (replicated tensors counted on tensor rank 0, a tied embedding on the first stage).
        #expect(covered.allSatisfy { $0 == 1 })
        #expect(rebuilt == Array(whole.parameters))
    }

    @Test func stagesSplitLayersEarlierStagesFirst() {
        let shard = ModelShard(pipelineRank: 0, pipelineSize: 2)
        #expect(shard.layers(of: 5, stage: 0) == 0..<3 && shard.layers(of: 5, stage: 1) == 3..<5)
        #expect((0..<4).map { shard.layers(of: 8, stage: $0 % 2) } == [0..<4, 4..<8, 0..<4, 4..<8])
    }

    @Test func shapesThatDoNotDivideAreRefusedByField() {
        #expect(throws: ModelError.invalidConfig(field: "kv_heads", message: "2 is not divisible by parallel.tensor 4")) {
            try ModelShard(tensorSize: 4).validate(Self.llama)
        }
        #expect(throws: ModelError.self) { try ModelShard(pipelineSize: 4).validate(Self.llama) }
        let vocab = ModelConfig(arch: .llama, vocabSize: 63, hidden: 32, ffn: 80, layers: 2, heads: 4, kvHeads: 2, maxPositions: 32)
        #expect(throws: ModelError.self) { try ModelShard(tensorSize: 2).validate(vocab) }
    }

    @Test func aWholeModelCheckpointRestoresIntoEveryShard() throws {
        let root = NSTemporaryDirectory() + "kondate-shard-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let whole = try Transformer(config: Self.gpt2)
        whole.initialize(seed: 3)
        let trainer = Trainer(model: whole, options: TrainingOptions(schedule: LearningRateSchedule(kind: .constant, maxLR: 1e-3, decaySteps: 10),
                                                                      adamw: AdamW.Hyperparameters()))
        var rng = SplitMix64(seed: 5)
        let batch = MicroBatch(samples: (0..<2).map { _ in (0...8).map { _ in Int32(rng.below(64)) } })
        _ = try trainer.step([batch], seq: 8)
        let directory = try Checkpoint.save(trainer, root: root, keep: 0)
        for shard in Self.shards(tensor: 2, pipeline: 2) {
            let model = try Transformer(config: Self.gpt2, shard: shard, tensorGroup: NoTransport(size: 2))
            let restored = Trainer(model: model, options: trainer.options)
            try Checkpoint.restore(directory, into: restored)
            let expected = try Transformer(config: Self.gpt2, shard: shard, tensorGroup: NoTransport(size: 2))
            expected.copySlices(of: whole)
            #expect(Array(model.parameters) == Array(expected.parameters))
            #expect(restored.step == 1 && restored.optimizer.step == 1)
            // The moments are the whole model's moments, cut the same way.
            for t in model.layout.tensors {
                let full = try #require(whole.layout[t.name])
                for s in t.segments(rank: shard.tensorRank, parts: 2) {
                    for j in 0..<s.count {
                        #expect(restored.optimizer.m[t.offset + s.local + j] == trainer.optimizer.m[full.offset + s.full + j])
                    }
                }
            }
        }
    }
}

/// A stand-in group for building shards without running them (no collective is called).
final class NoTransport: ProcessGroup, @unchecked Sendable {
    let size: Int
    let rank = 0
    init(size: Int) { self.size = size }
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReduceOperation) { Issue.record("unexpected collective") }
    func allReduce(_ value: Double) -> Double { Issue.record("unexpected collective"); return value }
    func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) { Issue.record("unexpected collective") }
    func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) { Issue.record("unexpected collective") }
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) { Issue.record("unexpected collective") }
    func send(_ values: [Float], to destination: Int, tag: Int) { Issue.record("unexpected send") }
    func finishSends() {}
    func receive(_ buffer: UnsafeMutableBufferPointer<Float>, from source: Int, tag: Int) { Issue.record("unexpected receive") }
    func startAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>) { Issue.record("unexpected collective") }
    func progress() {}
    func finishReductions() {}
}
