import Foundation
import KondateKernels
import KondateModel
import Testing

/// Full activation recomputation changes memory, not results: the loss and every gradient are
/// bitwise those of the model that stores every layer's activations.
@Suite struct RecomputeTests {
    static let configs = [
        ModelConfig(arch: .llama, vocabSize: 97, hidden: 32, ffn: 80, layers: 3, heads: 4, kvHeads: 2, maxPositions: 32),
        ModelConfig(arch: .gpt2, vocabSize: 89, hidden: 32, ffn: 128, layers: 3, heads: 4, maxPositions: 32),
    ]

    @Test(arguments: configs, MatmulPrecision.allCases)
    func recomputationIsBitwiseEqual(config: ModelConfig, precision: MatmulPrecision) throws {
        let (b, t) = (2, 16)
        let tokens = (0..<(b * t)).map { Int32(($0 * 37 + 3) % config.vocabSize) }
        let targets = (0..<(b * t)).map { $0 % 5 == 0 ? Kernels.ignoreIndex : Int32(($0 * 11 + 1) % config.vocabSize) }
        var results: [(loss: Float, gradients: [Float], bytes: Int)] = []
        for recompute in [false, true] {
            let model = try Transformer(config: config, matmulPrecision: precision, recomputeLayers: recompute)
            model.initialize(seed: 21)
            model.zeroGradients()
            // Two micro-batches accumulate, as a training step does.
            var loss: Float = 0
            for _ in 0..<2 {
                loss = try #require(try model.forward(tokens: tokens, targets: targets, batch: b, seq: t)).loss
                model.backward(lossScale: 0.5)
            }
            results.append((loss, Array(model.gradients!), model.activationBytes))
        }
        #expect(results[0].loss == results[1].loss)
        #expect(results[0].gradients == results[1].gradients)
        // Two of the three layers' stored values are gone: per layer the norms' outputs and statistics,
        // q, k, v, the attention output and its log-sum-exp, the residual h and the MLP's activations.
        let n = b * t, c = config.hidden, f = config.ffn
        let perLayer = 3 * n * c + 4 * n + 2 * n * config.qDim + 2 * n * config.kvDim + n * config.heads + (config.arch == .llama ? 3 : 2) * n * f
        #expect(results[0].bytes - results[1].bytes == (config.layers - 1) * perLayer * 4, "\(results[1].bytes) vs \(results[0].bytes)")
    }
}
