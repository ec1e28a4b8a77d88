import Foundation
import KondateKernels
import KondateModel
import KondateTraining
import Testing

/// Dropout in the model: gradients through the masks, masks keyed by step and global row (so the
/// micro-batch split does not change them), evaluation without dropout, and recomputation unchanged.
@Suite(.serialized) struct DropoutModelTests {
    static let rates = DropoutRates(hidden: 0.2, attention: 0.3)
    static let configs = [
        ModelConfig(arch: .llama, vocabSize: 61, hidden: 16, ffn: 40, layers: 2, heads: 4, kvHeads: 2, maxPositions: 16),
        ModelConfig(arch: .gpt2, vocabSize: 53, hidden: 16, ffn: 64, layers: 2, heads: 4, maxPositions: 16),
    ]

    static func batch(_ config: ModelConfig, rows: Int, t: Int, seed: Int) -> [[Int32]] {
        (0..<rows).map { r in (0...t).map { Int32((($0 + 3) * 17 + r * 29 + seed) % config.vocabSize) } }
    }

    /// The analytic gradient of the loss with dropout (a fixed mask) against central differences of
    /// the same function, for parameters of every kind.
    @Test(arguments: configs)
    func gradientsFollowTheMasks(config: ModelConfig) throws {
        let model = try Transformer(config: config, dropout: Self.rates)
        model.initialize(seed: 2)
        // Twice the initialisation's weights, so that the loss moves measurably in f32 for a step of 10⁻²
        // (much larger weights saturate the softmax and the central difference stops being accurate).
        for i in 0..<model.parameters.count { model.parameters[i] *= 2 }
        let mb = MicroBatch(samples: Self.batch(config, rows: 2, t: 8, seed: 1))
        let context = DropoutContext(seed: 5, step: 3, firstRow: 2)
        func loss() throws -> Double {
            model.dropoutContext = context
            defer { model.dropoutContext = nil }
            return Double(try #require(try model.forward(tokens: mb.tokens, targets: mb.targets, batch: 2, seq: 8)).loss)
        }
        model.zeroGradients()
        _ = try loss()
        // backward adds the gradient of lossScale × Σ token losses; the loss is their mean.
        model.backward(lossScale: 1 / Float(mb.counted))
        let analytic = Array(model.gradients!)
        var checked = 0
        for tensor in model.layout.tensors {
            // The largest gradient of each tensor.
            let range = tensor.offset..<(tensor.offset + tensor.count)
            let i = range.max { abs(analytic[$0]) < abs(analytic[$1]) }!
            guard abs(analytic[i]) > 1e-3 else { continue }
            let saved = model.parameters[i], h: Float = 1e-2
            model.parameters[i] = saved + h
            let up = try loss()
            model.parameters[i] = saved - h
            let down = try loss()
            model.parameters[i] = saved
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(analytic[i])) <= 0.05 * abs(numeric) + 1e-4, "\(tensor.name): analytic \(analytic[i]), numeric \(numeric)")
            checked += 1
        }
        #expect(checked >= 6)
    }

    /// One micro-batch of 4 rows or two of 2: the same masks, so the same loss and (to f32 summation)
    /// the same update; and a step later, other masks.
    @Test(arguments: configs)
    func masksFollowRowsNotMicroBatches(config: ModelConfig) throws {
        let samples = Self.batch(config, rows: 4, t: 8, seed: 3)
        var results: [(loss: Double, parameters: [Float])] = []
        for split in [[4], [2, 2], [1, 3]] {
            let model = try Transformer(config: config, dropout: Self.rates)
            model.initialize(seed: 4)
            let trainer = Trainer(model: model, options: TrainingOptions(
                schedule: LearningRateSchedule(kind: .constant, maxLR: 1e-2, decaySteps: 10), adamw: AdamW.Hyperparameters(), dropoutSeed: 11))
            var start = 0
            let batches = split.map { n in defer { start += n }; return MicroBatch(samples: Array(samples[start..<(start + n)])) }
            let report = try trainer.step(batches, seq: 8)
            results.append((report.loss, Array(model.parameters)))
            #expect(model.dropoutContext == nil, "the trainer clears the context after the step")
        }
        for r in results.dropFirst() {
            #expect(abs(r.loss - results[0].loss) <= 1e-6 * results[0].loss)
            let diff = zip(r.parameters, results[0].parameters).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-6, "\(diff)")
        }
    }

    /// Without a context (evaluation) a model with dropout computes exactly the model without it;
    /// with one, dropout changes the loss; full recomputation regenerates the same masks.
    @Test(arguments: configs)
    func evaluationHasNoDropoutAndRecomputationKeepsTheMasks(config: ModelConfig) throws {
        let mb = MicroBatch(samples: Self.batch(config, rows: 2, t: 8, seed: 5))
        let plain = try Transformer(config: config)
        plain.initialize(seed: 6)
        let reference = try #require(try plain.forward(tokens: mb.tokens, targets: mb.targets, batch: 2, seq: 8)).loss
        var trained: [(Float, [Float])] = []
        for recompute in [false, true] {
            let model = try Transformer(config: config, recomputeLayers: recompute, dropout: Self.rates)
            model.initialize(seed: 6)
            #expect(try model.forward(tokens: mb.tokens, targets: mb.targets, batch: 2, seq: 8)?.loss == reference)
            model.dropoutContext = DropoutContext(seed: 1, step: 0, firstRow: 0)
            model.zeroGradients()
            let loss = try #require(try model.forward(tokens: mb.tokens, targets: mb.targets, batch: 2, seq: 8)).loss
            model.backward(lossScale: 1)
            #expect(loss != reference)
            trained.append((loss, Array(model.gradients!)))
        }
        #expect(trained[0].0 == trained[1].0 && trained[0].1 == trained[1].1)
    }
}
