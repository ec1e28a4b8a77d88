import Foundation
import Testing
import KondatePlan
import KondateSupport
import KondateTestSupport
@testable import KondateRecipe

/// A 2-layer LLaMA (h 64, 4 heads, f 192, V 256, T 32) on tensor 2 × pipeline 2 × data 2, with round
/// interconnect figures so every number below can be computed by hand.
func smallRecipe(nodes: Int = 2, devicesPerNode: Int = 4, tensor: Int = 2, pipeline: Int = 2, globalBatch: Int = 8,
                 parallel extra: String = "") -> String {
    """
    name: small
    cluster:
      nodes: \(nodes)
      devices_per_node: \(devicesPerNode)
      device: a100-80gb
      compute_efficiency: 0.5
      intra_node_bandwidth: 100GB/s
      inter_node_bandwidth: 800Gb/s
      intra_node_latency: 1e-6
      inter_node_latency: 1e-5
    model: {arch: llama, hidden: 64, ffn: 192, layers: 2, heads: 4, seq_len: 32, vocab_size: 256}
    parallel: {tensor: \(tensor), pipeline: \(pipeline), micro_batch: 1\(extra)}
    pretrain:
      global_batch: \(globalBatch)
      steps: 10
      precision: bf16
      optimizer: {lr: 1.0e-3}
    tokenizer: {path: tokenizer.json, vocab_size: 256}
    corpus: {sources: {web: {paths: [web.jsonl], tokens: 1M}}}
    """
}

/// Loads a recipe text; the plan must have no errors unless `allowErrors`.
func planOf(_ text: String, allowErrors: Bool = false) throws -> Plan {
    let dir = try temporaryRecipes(["r.yaml": text])
    let loaded = RecipeFrontend.load(path: dir.appendingPathComponent("r.yaml").path)
    let errors = loaded.diagnostics.errors.map(\.message)
    guard let recipe = loaded.recipe else {
        Issue.record("the recipe does not load: \(errors)")
        throw CancellationError()
    }
    let plan = Plan(recipe: recipe)
    if !allowErrors { #expect(!plan.diagnostics.hasErrors, "\(plan.diagnostics.errors.map(\.message))") }
    return plan
}

func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-9) -> Bool { abs(a - b) <= tolerance * max(abs(a), abs(b)) }

@Suite("Communication cost model (docs/cost-model.md)")
struct CommunicationCostTests {
    @Test func ringAllReduceAndBubbleFormulas() {
        // 2(k−1)/k·S/B + 2(k−1)·α: 1 GB over 4 ranks at 100 GB/s = 15 ms, plus 6 messages.
        #expect(close(CommunicationCost.ringAllReduceSeconds(bytes: 1e9, ranks: 4, bandwidth: 100e9, latency: 0), 0.015))
        #expect(close(CommunicationCost.ringAllReduceSeconds(bytes: 1e9, ranks: 4, bandwidth: 100e9, latency: 1e-5), 0.015 + 6e-5))
        // Two ranks send half of the all-reduce volume of many: 2·1/2 = 1 vs 2·15/16.
        #expect(close(CommunicationCost.ringAllReduceSeconds(bytes: 1e9, ranks: 2, bandwidth: 1e9, latency: 0), 1))
        #expect(close(CommunicationCost.ringAllReduceSeconds(bytes: 1e9, ranks: 16, bandwidth: 1e9, latency: 0), 1.875))
        #expect(CommunicationCost.ringAllReduceSeconds(bytes: 1e9, ranks: 1, bandwidth: 1e9, latency: 1) == 0)
        // 1F1B bubble (p−1)/(m+p−1).
        #expect(close(CommunicationCost.bubbleFraction(stages: 4, microBatches: 64), 3.0 / 67))
        #expect(CommunicationCost.bubbleFraction(stages: 1, microBatches: 8) == 0)
        #expect(close(CommunicationCost.bubbleFraction(stages: 2, microBatches: 4), 1.0 / 5))
    }

    @Test func bandwidthUnits() {
        #expect(Units.bandwidth("300GB/s") == .success(300e9))
        #expect(Units.bandwidth("200Gb/s") == .success(25e9))
        #expect(Units.bandwidth("4x200Gb/s") == .success(100e9))
        #expect(Units.bandwidth("8 × 400Gb/s") == .success(400e9))
        #expect(Units.bandwidth("100Gbps") == .success(12.5e9))
        #expect(Units.bandwidth("10 GiB/s") == .success(10 * 1_073_741_824))
        #expect(Units.bandwidth("1.6Tb/s") == .success(200e9))
        #expect(Units.bandwidth("300") == .failure(.unknownSuffix("")))
        #expect(Units.bandwidth("300GBs") == .failure(.unknownSuffix("GBs")))
        #expect(Units.bandwidth("fast") == .failure(.notANumber))
        #expect(Units.bandwidth("0x200Gb/s") == .failure(.notANumber))
    }

    /// Every volume and time of the small configuration, by hand.
    @Test func smallConfigurationByHand() throws {
        let plan = try planOf(smallRecipe())
        let cost = try #require(plan.cost)
        let s = cost.step
        #expect(plan.recipe.parallel.data == 2 && plan.gradientAccumulation == 4 && s.microBatches == 4)
        #expect(s.interconnect.intraNodeBandwidth == 100e9 && s.interconnect.interNodeBandwidth == 100e9)

        // Compute per micro batch (32 tokens) and device (÷ t = 2), 156 TFLOP/s = 312 T × 0.5.
        // Per token and layer: 6 × matrices (h·3h q,k,v + h·h o + 3·h·f = 53 248) + 12·h·T = 344 064;
        // the head on the last stage: 6·V·h = 98 304.
        let matrices: Int = 64 * 192 + 64 * 64 + 3 * 64 * 192
        let attention: Int = 12 * 64 * 32
        let layer = Double(6 * matrices + attention), head = Double(6 * 256 * 64)
        #expect(layer == 344_064)
        let stage0: Double = layer * 32 / 2 / 156e12
        let stage1: Double = (layer + head) * 32 / 2 / 156e12
        #expect(close(s.stageSeconds[0], stage0) && close(s.stageSeconds[1], stage1))
        #expect(s.slowestStage == 1)
        #expect(close(s.compute, 4 * stage1))

        // Tensor: 4 all-reduces per layer and micro batch of b·s·h·2 = 4 096 bytes, 1 layer per stage,
        // 4 micro batches: 16, each 2·(1/2)·4 096 bytes and 2 messages, inside a node.
        let tensor = try #require(s.tensor)
        #expect(tensor.collective == "all-reduce" && tensor.link == .intraNode && tensor.group == 2)
        #expect(tensor.operations == 16 && tensor.bytesPerOperation == 4096 && tensor.bytesPerStep == 16 * 4096)
        #expect(close(tensor.seconds, 16 * 4096 / 100e9 + 32 * 1e-6))
        #expect(tensor.exposedFraction == 1)

        // Pipeline: ranks 0–3 (stage 0, node 0) send to ranks 4–7 (stage 1, node 1): four senders share
        // the node's 100 GB/s. 2·(m + p − 1) = 10 transfers of 4 096 bytes on the critical path.
        let pipe = try #require(s.pipeline)
        #expect(pipe.link == .interNode && pipe.sharing == 4 && pipe.bandwidth == 25e9)
        #expect(pipe.operations == 10 && pipe.bytesPerOperation == 4096 && pipe.bytesPerStep == 2 * 4 * 4096)
        #expect(close(pipe.seconds, 10 * (4096 / 25e9 + 1e-5)))

        // Data: ranks 0 and 2 (tensor rank 0, stage 0) are both on node 0. Stage 1 holds the most
        // parameters per device: (53 376 − 128)/2 + 128 sharded layer + 64 final norm + 256·64/2 head = 35 008,
        // fp32 gradients 140 032 bytes, one bucket (fully exposed), all-reduce 2·(1/2)·140 032 bytes.
        let data = try #require(s.data)
        #expect(plan.memory.stages.map(\.parameters) == [34_944, 35_008])
        #expect(data.collective == "all-reduce" && data.link == .intraNode && data.group == 2)
        #expect(data.operations == 1 && data.bytesPerOperation == 140_032 && data.bytesPerStep == 140_032)
        #expect(data.exposedFraction == 1)
        #expect(close(data.seconds, 140_032 / 100e9 + 2 * 1e-6))

        // Bubble: (p − 1) slots of compute and tensor communication; 1/5 of the pipeline.
        #expect(close(s.bubble, stage1 + tensor.seconds / 4))
        #expect(close(s.bubbleFraction, 0.2))
        #expect(close(s.total, s.compute + tensor.seconds + pipe.seconds + data.seconds + s.bubble))
        #expect(close(cost.seconds, 10 * s.total))
        #expect(close(cost.deviceHours, cost.seconds * 8 / 3600))
    }

    @Test func zeroOneAndSequenceParallelKeepTheVolumes() throws {
        let plain = try #require(try planOf(smallRecipe()).cost?.step)
        let zero = try #require(try planOf(smallRecipe(parallel: ", zero_stage: 1")).cost?.step)
        let data = try #require(zero.data)
        // Reduce-scatter of the fp32 gradients + all-gather of the bf16 weights: (1/2)·(4 + 2)·35 008.
        #expect(data.collective == "reduce-scatter + all-gather")
        #expect(data.bytesPerStep == 0.5 * 6 * 35_008)
        #expect(close(data.seconds, 0.5 * 6 * 35_008 / 100e9 + 2 * 1e-6))
        // Sequence parallelism: reduce-scatter + all-gather of the same bytes as the all-reduce; the
        // pipeline sends 1/t of the activation.
        let sp = try #require(try planOf(smallRecipe(parallel: ", sequence_parallel: true")).cost?.step)
        #expect(sp.tensor?.collective == "reduce-scatter + all-gather")
        #expect(sp.tensor?.bytesPerStep == plain.tensor?.bytesPerStep)
        #expect(sp.pipeline?.bytesPerOperation == 2048)
        // Full recomputation runs the forward's two all-reduces again.
        let full = try #require(try planOf(smallRecipe(parallel: ", recompute: full")).cost?.step)
        #expect(full.tensor?.operations == 24)
    }

    @Test func moreDataParallelAcrossNodesCostsMore() throws {
        // One node of 8: tensor pairs, the data group {0, 2} and the stages all inside the node.
        let inside = try #require(try planOf(smallRecipe(nodes: 1, devicesPerNode: 8)).cost?.step)
        #expect(inside.data?.link == .intraNode && inside.pipeline?.link == .intraNode)
        // Four nodes of 2: each tensor pair fills a node, so the data group {0, 2} crosses nodes.
        let spread = try #require(try planOf(smallRecipe(nodes: 4, devicesPerNode: 2)).cost?.step)
        let data = try #require(spread.data), before = try #require(inside.data)
        #expect(data.link == .interNode && data.nodes == 2 && data.sharing == 2)
        #expect(data.bandwidth == 50e9) // the node's 100 GB/s shared by its two data groups (tensor ranks 0 and 1)
        #expect(data.bytesPerStep == before.bytesPerStep)
        #expect(data.seconds > before.seconds)
        #expect(spread.total > inside.total)

        // A wider data group over more nodes sends 2(D−1)/D of the gradients: more time for D = 8 than 2.
        let wide = try #require(try planOf(smallRecipe(nodes: 8, devicesPerNode: 2, pipeline: 1, globalBatch: 16)).cost?.step)
        let narrow = try #require(try planOf(smallRecipe(nodes: 2, devicesPerNode: 2, pipeline: 1, globalBatch: 16)).cost?.step)
        let w = try #require(wide.data), n = try #require(narrow.data)
        #expect(w.group == 8 && n.group == 2 && w.nodes == 8 && n.nodes == 2)
        #expect(w.seconds > n.seconds)
        #expect(wide.pipeline == nil && wide.bubble == 0)
    }

    @Test func badBandwidthsAreReportedAtTheirLine() throws {
        let text = smallRecipe().replacingOccurrences(of: "inter_node_bandwidth: 800Gb/s", with: "inter_node_bandwidth: 100GBs")
            .replacingOccurrences(of: "intra_node_bandwidth: 100GB/s", with: "intra_node_bandwidth: 300")
        // The front end reports them (there is no typed recipe to plan).
        let dir = try temporaryRecipes(["r.yaml": text])
        let compilation = RecipeCompiler.compile(path: dir.appendingPathComponent("r.yaml").path)
        #expect(compilation.recipe == nil)
        let errors = compilation.diagnostics.errors
        let unit = try #require(errors.first { $0.message.contains("inter_node_bandwidth") })
        #expect(unit.message.contains("unknown bandwidth unit 'GBs'") && unit.message.contains("did you mean 'GB/s'?") && unit.message.contains("Gb/s"))
        #expect(unit.location?.line == 8 && unit.location?.column == 25)
        #expect(unit.code == .typeMismatch)
        let bare = try #require(errors.first { $0.message.contains("intra_node_bandwidth") })
        #expect(bare.message.contains("needs a unit") && bare.location?.line == 7)
        // Non-positive bandwidths are out of range.
        let zeroDir = try temporaryRecipes(["r.yaml": smallRecipe().replacingOccurrences(of: "800Gb/s", with: "0Gb/s")])
        let zero = RecipeCompiler.compile(path: zeroDir.appendingPathComponent("r.yaml").path)
        #expect(zero.diagnostics.errors.contains { $0.code == .outOfRange && $0.message.contains("positive") })
    }

    @Test func catalogDefaultsApplyWithoutOverrides() throws {
        let p = try plan("recipes/llm-jp-13b-v2.0.yaml")
        let link = p.recipe.cluster.interconnect
        #expect(link.intraNodeBandwidth == 300e9 && link.interNodeBandwidth == 100e9 && link.overrides.isEmpty)
        #expect(p.recipe.cluster.computeEfficiency == 0.6)
        let h100 = try plan("recipes/llm-jp-13b-v2.0.yaml", set: ["cluster.device=h100-80gb", "cluster.inter_node_bandwidth=8x400Gb/s"])
        #expect(h100.recipe.cluster.interconnect.intraNodeBandwidth == 450e9 && h100.recipe.cluster.interconnect.interNodeBandwidth == 400e9)
        #expect(h100.recipe.cluster.interconnect.overrides == ["inter_node_bandwidth"])
        let cpu = try #require(DeviceCatalog.spec("cpu")?.interconnect)
        #expect(cpu.intraNodeBandwidth == 10e9 && cpu.interNodeBandwidth == 1.25e9)
    }

    /// LLM-jp-13B v2.0: 128 A100-40GB (16 mdx-like nodes), tensor 2 × pipeline 4 × data 16, sequence
    /// parallel, distributed optimizer, selective recomputation, 64 micro batches per step, 61 000 steps.
    @Test func llmJp13bV2StepTimeIsPlausible() throws {
        let p = try plan("recipes/llm-jp-13b-v2.0.yaml")
        let cost = try #require(p.cost)
        let s = cost.step
        let data = try #require(s.data), tensor = try #require(s.tensor), pipe = try #require(s.pipeline)
        print("""
            LLM-jp-13B v2.0 step time: \(Format.fixed(s.total, 3)) s = compute \(Format.fixed(s.compute, 3)) s \
            + tensor \(Format.fixed(s.tensorSeconds, 3)) s + pipeline \(Format.fixed(s.pipelineSeconds, 3)) s \
            + data \(Format.fixed(s.dataSeconds, 4)) s (of \(Format.fixed(data.seconds, 3)) s) + bubble \(Format.fixed(s.bubble, 3)) s; \
            61,000 steps → \(Format.fixed(cost.seconds / 86400, 2)) days (MFU estimate at 40%: \(Format.fixed(cost.mfuSeconds / 86400, 2)) days); \
            implied MFU \(Format.percent(cost.impliedMFU))
            """)
        #expect(s.microBatches == 64)
        #expect(close(s.bubbleFraction, 3.0 / 67))
        // Layout: tensor pairs inside a node; the data group (stride 2, 16 ranks) spans 4 nodes with two
        // groups per node; every stage boundary (32 ranks on) crosses nodes, 8 senders per node.
        #expect(tensor.link == .intraNode && tensor.bandwidth == 300e9)
        #expect(data.link == .interNode && data.nodes == 4 && data.sharing == 2 && data.bandwidth == 50e9)
        #expect(pipe.link == .interNode && pipe.sharing == 8 && pipe.bandwidth == 12.5e9)
        #expect(tensor.collective == "reduce-scatter + all-gather" && data.collective == "reduce-scatter + all-gather")
        // Per micro batch and layer 4 collectives of 1·4096·5120·2 bytes; 10 layers per stage; 64 micro batches.
        #expect(tensor.operations == 64 * 10 * 4 && tensor.bytesPerOperation == 4096 * 5120 * 2)
        // Pipeline sends the (s/t, b, h) shard: 4096·5120·2/2 bytes.
        #expect(pipe.bytesPerOperation == 4096 * 5120 && pipe.operations == 2 * 67)
        // Compute dominates; the total is within a plausible band around the 40%-MFU figure.
        #expect(s.compute > 0.8 * s.total)
        #expect(s.total > 10 && s.total < 40)
        #expect(cost.impliedMFU > 0.3 && cost.impliedMFU < 0.65)
        #expect(close(cost.seconds, 61_000 * s.total))
        // The step-time model and the MFU estimate are both there, and the MFU one is unchanged.
        #expect(close(cost.mfuSeconds, cost.modelFlops / (128 * 312e12 * 0.4)))
    }
}
