import Foundation
import KondateKernels
import KondateModel
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateTestSupport
import Testing

/// `kondate plan`'s memory for Kondate's CPU runtime (`RuntimeEstimate`) counts what the model really
/// allocates: for each stage of each layout, the parameters and the activation buffers of one
/// micro-batch equal, to the byte, what a `Transformer` of that shard holds after a training step.
/// (The total against a measured peak RSS: `RuntimeCLITests.bf16PretrainingFollowsFP32`.)
@Suite("The plan's CPU runtime memory")
struct RuntimeEstimateTests {
    static let tiny = repositoryRoot.appendingPathComponent("examples/tiny/tiny-llama.yaml").path
    static let gpt2 = ["model.arch=gpt2", "model.kv_heads=4", "model.activation=gelu_tanh", "model.tie_embeddings=true", "model.max_positions=256"]

    @Test(arguments: [
        [String](),
        ["parallel.recompute=full"],
        ["pretrain.precision=bf16", "parallel.recompute=full", "model.layers=3"],
        gpt2,
        gpt2 + ["parallel.recompute=full"],
        ["cluster.devices_per_node=2", "parallel.pipeline=2", "model.layers=4", "parallel.micro_batch=2"],
        gpt2 + ["cluster.devices_per_node=2", "parallel.pipeline=2", "parallel.micro_batch=2"],
    ])
    func allocationsAreTheModelsOwn(_ overrides: [String]) throws {
        let c = RecipeCompiler.compile(path: Self.tiny, overrides: overrides.map(Override.init), engine: .kondate)
        let recipe = try #require(c.executable, "\(overrides): \(c.diagnostics.errors.map(\.message))")
        let estimate = RuntimeEstimate(recipe: recipe, parameters: ParameterCount(model: recipe.model))
        let config = try ModelConfig(recipe: recipe)
        let p = recipe.parallel, seq = recipe.model.seqLen, batch = p.microBatch
        #expect(estimate.stages.count == p.pipeline)
        for stage in estimate.stages {
            let shard = ModelShard(pipelineRank: stage.index, pipelineSize: p.pipeline)
            let model = try Transformer(config: config, shard: shard, matmulPrecision: recipe.trainingPrecision == .bf16 ? .bf16 : .fp32,
                                        recomputeLayers: p.recompute == .full)
            model.initialize(seed: 1)
            #expect(model.layout.count == stage.parameters, "\(overrides) stage \(stage.index)")
            #expect(stage.weights == 4 * stage.parameters && stage.gradients == 4 * stage.parameters && stage.optimizer == 8 * stage.parameters)
            let tokens = (0..<(batch * seq)).map { Int32($0 % 97) }
            let hidden = [Float](repeating: 0.01, count: batch * seq * config.hidden)
            try hidden.withUnsafeBufferPointer { h in
                try model.forward(tokens: tokens, targets: shard.isLastStage ? tokens : nil, batch: batch, seq: seq, slot: 0,
                                  input: shard.isFirstStage ? nil : h.baseAddress)
                model.backward(lossScale: 1, slot: 0, outputGradient: shard.isLastStage ? nil : h.baseAddress)
            }
            #expect(model.activationBytes * stage.inFlightMicroBatches == stage.activations, "\(overrides) stage \(stage.index)")
        }
    }

    /// ZeRO shards the optimizer (stage 1) and the gradients (stage 2) as the trainer does; the plan's
    /// step time is the runtime's kernels plus the update, not the GPU model's FLOPs at 60%.
    @Test func zeroAndTimeFollowTheRuntime() throws {
        func plan(_ overrides: [String]) throws -> Plan {
            let c = RecipeCompiler.compile(path: Self.tiny, overrides: overrides.map(Override.init), engine: .kondate)
            return try #require(c.plan, "\(overrides): \(c.diagnostics.errors.map(\.message))")
        }
        let base = ["cluster.devices_per_node=2"]
        let z0 = try #require(try plan(base).runtime?.peak), z1 = try #require(try plan(base + ["parallel.zero_stage=1"]).runtime?.peak)
        let z2 = try #require(try plan(base + ["parallel.zero_stage=2"]).runtime?.peak)
        let shard = (z0.parameters + 1) / 2
        #expect(z1.optimizer == 8 * shard && z1.gradients == z0.gradients)
        #expect(z2.optimizer == 8 * shard && z2.gradients < z1.gradients && z2.gradients >= 4 * shard)
        #expect(z2.total < z1.total && z1.total < z0.total)
        // The step time adds the update; recomputation costs time and saves activations.
        let none = try plan([]), full = try plan(["parallel.recompute=full"])
        let step = try #require(none.cost?.step), fullStep = try #require(full.cost?.step)
        #expect(step.update > 0 && abs(step.total - step.compute - step.update) < 1e-12)
        #expect(fullStep.compute > step.compute)
        #expect(try #require(full.runtime?.peak.activations) < (try #require(none.runtime?.peak.activations)))
    }
}
