import Foundation
import KondateKernels
import KondateModel
import Testing

/// The bf16 model against the f32 one (itself checked against transformers and finite differences):
/// same weights, same tokens. bf16 keeps 8 significant bits, so each matmul operand carries a relative
/// rounding error up to 2⁻⁹. Measured here: the loss moves by under 10⁻⁵ (relative) and the gradient by
/// 0.3% of its norm; the tolerances (10⁻³ of the loss, 2% of the gradient norm) leave room for other
/// shapes and seeds while still failing if any matmul were computed wrongly (that moves both by O(1)).
@Suite(.serialized) struct BF16ModelTests {
    static let configs = [
        ModelConfig(arch: .llama, vocabSize: 211, hidden: 64, ffn: 160, layers: 2, heads: 4, kvHeads: 2, maxPositions: 64),
        ModelConfig(arch: .gpt2, vocabSize: 173, hidden: 48, ffn: 192, layers: 2, heads: 4, maxPositions: 64),
    ]

    @Test(arguments: configs)
    func bf16FollowsF32(config: ModelConfig) throws {
        let f32 = try Transformer(config: config), bf16 = try Transformer(config: config, matmulPrecision: .bf16)
        f32.initialize(seed: 9)
        bf16.parameters.baseAddress!.update(from: f32.parameters.baseAddress!, count: f32.parameters.count)
        let (b, t) = (3, 32)
        let tokens = (0..<(b * t)).map { Int32(($0 * 7919 + 13) % config.vocabSize) }
        let targets = (0..<(b * t)).map { Int32(($0 * 104_729 + 5) % config.vocabSize) }
        var losses: [Float] = [], grads: [[Float]] = []
        for model in [f32, bf16] {
            model.zeroGradients()
            let loss = try #require(try model.forward(tokens: tokens, targets: targets, batch: b, seq: t)).loss
            model.backward(lossScale: 1)
            losses.append(loss)
            grads.append(Array(model.gradients!))
        }
        print("bf16 vs f32 \(config.arch.rawValue): loss \(losses[0]) → \(losses[1]) (relative \(abs(losses[1] - losses[0]) / losses[0]))")
        #expect(losses[0] != losses[1], "bf16 must round something")
        #expect(abs(losses[1] - losses[0]) <= 0.001 * losses[0], "loss f32 \(losses[0]) bf16 \(losses[1])")
        let diff = zip(grads[0], grads[1]).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
        let norm = grads[0].reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
        print("bf16 vs f32 \(config.arch.rawValue): gradient relative error \(diff / norm)")
        #expect(diff <= 0.02 * norm, "gradient relative error \(diff / norm)")
        #expect(bf16.matmulPrecision == .bf16 && f32.matmulPrecision == .fp32)
    }

    /// Training steps in bf16 give the same bits on a second run (fixed threads).
    @Test func bf16IsRepeatable() throws {
        let config = Self.configs[0]
        func run() throws -> [Float] {
            let model = try Transformer(config: config, matmulPrecision: .bf16)
            model.initialize(seed: 4)
            let tokens = (0..<64).map { Int32(($0 * 31 + 7) % config.vocabSize) }
            model.zeroGradients()
            try model.forward(tokens: tokens, targets: tokens.map { ($0 + 1) % Int32(config.vocabSize) }, batch: 2, seq: 32)
            model.backward(lossScale: 1)
            return Array(model.gradients!)
        }
        #expect(try run() == run())
    }
}
