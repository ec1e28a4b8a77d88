import Foundation
import Testing
import KondatePlan
import KondateTestSupport
@testable import KondateRecipe


func plan(_ file: String, set: [String] = []) throws -> Plan {
    let loaded = RecipeFrontend.load(path: repositoryRoot.appendingPathComponent(file).path, overrides: set.map(Override.init))
    let recipe = try #require(loaded.recipe, "\(file): \(loaded.diagnostics.errors.map(\.message))")
    return Plan(recipe: recipe)
}

@Suite("Plan numbers against hand-computed values")
struct PlanTests {
    @Test func llmJp13bV2() throws {
        let p = try plan("recipes/llm-jp-13b-v2.0.yaml")
        // 2·97 024·5 120 + 40·(4·5 120² + 3·5 120·13 824 + 2·5 120) + 5 120
        #expect(p.parameters.total == 13_681_710_080)
        #expect(p.parameters.total == 2 * 97_024 * 5_120 + 40 * (4 * 5_120 * 5_120 + 3 * 5_120 * 13_824 + 2 * 5_120) + 5_120)
        #expect(p.recipe.parallel.tensor == 2 && p.recipe.parallel.pipeline == 4 && p.recipe.parallel.data == 16)
        #expect(p.steps == 61_000)
        #expect(p.trainingTokens == 255_852_544_000)
        #expect(p.gradientAccumulation == 64)
        #expect(p.recipe.model.vocabSize == 97_024) // 96 869 padded to a multiple of 128 × 2
        #expect(p.memory.peak.total < Double(40 << 30))
        #expect(!p.diagnostics.hasErrors)
    }

    @Test func flopsFollowThePaLMFormula() throws {
        let p = try plan("recipes/llm-jp-13b-v2.0.yaml")
        let cost = try #require(p.cost)
        // N (matmul weights) = 40·(4h² + 3hf) + V·h; attention 12·L·h·T.
        let n = 40 * (4 * 5_120 * 5_120 + 3 * 5_120 * 13_824) + 97_024 * 5_120
        #expect(p.parameters.matmul == n)
        #expect(cost.modelFlopsPerToken == Double(6 * n + 12 * 40 * 5_120 * 4_096))
        #expect(cost.modelFlops == cost.modelFlopsPerToken * 255_852_544_000)
        // The MFU estimate; `seconds` (the plan's time line) is the step-time model's (CommunicationCostTests).
        #expect(abs(cost.mfuSeconds - cost.modelFlops / (128 * 312e12 * 0.4)) < 1e-6 * cost.mfuSeconds)
        // Selective recompute adds the attention core's forward to the hardware count only.
        #expect(cost.hardwareFlops > cost.modelFlops)
    }

    @Test func memoryTermsForV2() throws {
        let p = try plan("recipes/llm-jp-13b-v2.0.yaml")
        let m = p.memory
        // Mixed precision with the distributed optimizer over 16 ranks: 2 + 4 + 12/16 bytes per parameter.
        #expect(m.bytesPerParameter.weights == 2 && m.bytesPerParameter.gradients == 4 && m.bytesPerParameter.optimizer == 0.75)
        // Per layer (s = 4096, h = 5120, f = 13824, t = 2, sequence parallel, no score matrix):
        // replicated 8·s·h/2 + parallel (6·s·h + 2·s·h + 6·s·f)/2 + log-sum-exp 4·40·s/2 bytes.
        let s = 4096.0, h = 5120.0, f = 13824.0
        let expected = 8 * s * h / 2 + (6 * s * h + 2 * s * h + 6 * s * f) / 2 + 4 * 40 * s / 2
        #expect(m.activationBytesPerLayer == expected)
        #expect(m.peak.index == 0)
        #expect(m.peak.inFlightMicroBatches == 4)
        // Stage 0: 10 layers of sharded weights plus half the embedding.
        let perLayer = Double(p.parameters.perLayer - p.parameters.replicatedPerLayer) / 2 + Double(p.parameters.replicatedPerLayer)
        #expect(m.stages[0].parameters == 10 * perLayer + Double(97_024 * 5_120) / 2)
    }

    @Test func recomputePoliciesOrderActivations() throws {
        let none = try plan("recipes/llm-jp-13b-v2.0.yaml", set: ["parallel.recompute=none", "model.attention_kernel=standard"]).memory
        let selective = try plan("recipes/llm-jp-13b-v2.0.yaml", set: ["parallel.recompute=selective"]).memory
        let full = try plan("recipes/llm-jp-13b-v2.0.yaml", set: ["parallel.recompute=full"]).memory
        #expect(none.activationBytesPerLayer > selective.activationBytesPerLayer)
        #expect(full.activationBytesPerLayer < selective.activationBytesPerLayer)
        // Full recompute stores only each layer's input: s·h bytes·2 over the tensor group.
        let layerInput: Double = 4096 * 5120 * 2 / 2
        #expect(full.activationBytesPerLayer == layerInput)
        // The standard kernel without recompute keeps the (T, T) probabilities: 40·T²·2 bytes / t.
        let scores: Double = 40 * 4096 * 4096 * 2 / 2
        let logsumexp: Double = 4 * 40 * 4096 / 2
        #expect(none.activationBytesPerLayer - selective.activationBytesPerLayer == scores - logsumexp)
    }

    @Test func zeroStagesShardOverDataRanks() throws {
        let z0 = try plan("recipes/llm-jp-13b-v2.0.yaml", set: ["parallel.zero_stage=0"]).memory.bytesPerParameter
        let z3 = try plan("recipes/llm-jp-13b-v2.0.yaml", set: ["parallel.zero_stage=3"]).memory.bytesPerParameter
        #expect(z0.weights + z0.gradients + z0.optimizer == 18)
        #expect(z3.weights + z3.gradients + z3.optimizer == 18.0 / 16)
    }

    @Test func llmJp13bV1MatchesTheGPT2Formula() throws {
        let p = try plan("recipes/llm-jp-13b-v1.0.yaml")
        // V·h + P·h + L·(4h² + 2hf + 9h + f) + 2h, tied head (docs/plan.md).
        #expect(p.parameters.total == 50_688 * 5_120 + 2_048 * 5_120 + 40 * (4 * 5_120 * 5_120 + 2 * 5_120 * 20_480 + 9 * 5_120 + 20_480) + 2 * 5_120)
        #expect(p.parameters.total == 12_855_592_960)
        #expect(p.recipe.model.vocabSize == 50_688)
        #expect(p.steps == 87_870)
        #expect(p.memory.peak.total < Double(40 << 30))
    }

    @Test func llmJp3Family() throws {
        #expect(try plan("recipes/llm-jp-3-1.8b.yaml").parameters.total == 1_867_614_208)
        let big = try plan("recipes/llm-jp-3-172b.yaml")
        // GQA: q h·h, k and v h·(16·128) each, o h·h.
        let (V, h, kv, f, L) = (99_840, 12_288, 2_048, 38_464, 96)
        #expect(big.parameters.total == 2 * V * h + L * (h * (h + 2 * kv) + h * h + 3 * h * f + 2 * h) + h)
        #expect(big.recipe.model.vocabSize == 99_840) // 99 574 padded to a multiple of 128 × 4
        #expect(try plan("recipes/llm-jp-3-13b.yaml").recipe.model.vocabSize == 99_584)
    }

    @Test func corpusMixSharesAndEpochs() throws {
        let p = try plan("recipes/llm-jp-13b-v2.0.yaml")
        let mix = try #require(p.mix)
        let available = 130.05e9 + 1.44e9 + 4.70e9 + 109.76e9 + 8.67e9
        for share in mix.shares {
            #expect(abs((share.epochs ?? 0) - 255_852_544_000 / available) < 1e-9)
        }
        #expect(abs(mix.shares.map(\.fraction).reduce(0, +) - 1) < 1e-12)
    }

    @Test func budgetsAreTakenFirstThenWeights() throws {
        let example = repositoryRoot.appendingPathComponent("examples/tiny/tiny-llama.yaml").path
        let dir = try temporaryRecipes(["r.yaml": "extends: \(example)\nunset: [corpus.sources.code.weight]\ncorpus: {sources: {code: {budget: 4096}}}\n"])
        let loaded = RecipeFrontend.load(path: dir.appendingPathComponent("r.yaml").path)
        let recipe = try #require(loaded.recipe, "\(loaded.diagnostics.errors.map(\.message))")
        let mix = try #require(Plan(recipe: recipe).mix)
        // 409 600 training tokens: 4 096 for code, the rest split 0.5 : 0.4.
        let drawn = Dictionary(uniqueKeysWithValues: mix.shares.map { ($0.source, $0.drawn) })
        #expect(drawn["code"] == 4096)
        #expect(abs((drawn["ja"] ?? 0) - (409_600 - 4096) * 5 / 9) < 1e-6)
        #expect(abs((drawn["en"] ?? 0) - (409_600 - 4096) * 4 / 9) < 1e-6)
    }

    @Test func theGraphOrdersStagesAfterTheirInputs() throws {
        let g = try plan("recipes/llm-jp-13b-v2.0.yaml").graph
        var seen = Set<String>()
        for stage in g.stages {
            for input in stage.inputs { #expect(seen.contains(input), "\(stage.id) comes before its input \(input)") }
            seen.insert(stage.id)
        }
        let ids = g.stages.map(\.id)
        #expect(ids.contains("corpus.tokenize.ja_cc") && ids.contains("tune.instruct") && ids.last == "release")
        #expect(g.stages.first { $0.id == "eval.ja_mt_bench.instruct" }?.inputs.first == "tune.instruct")
        #expect(g.mermaid.hasPrefix("flowchart LR"))
        #expect(g.dot.contains("\"corpus.mix\" -> \"pretrain\""))
    }
}
