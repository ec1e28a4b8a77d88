import Foundation
import KondatePlan
import KondateRecipe
import KondateRuntime
import KondateSupport
import KondateTestSupport
import Testing

/// Keys from the payload: for every recipe value a stage reads, changing it changes that stage's key
/// and its dependants' keys; changing a value no stage reads leaves every key unchanged (and the
/// stages cached). The release's model card quotes the whole recipe by its SHA-256, so the release
/// reads every value.
///
/// The table states, for one change to the tiny example each, the stages that read the value (the
/// expectation, written by hand from what each runner reads); the test adds their dependants through
/// the graph and compares with the keys that moved.
@Suite("Stage keys cover what each stage reads")
struct StageKeyCoverageTests {
    static let tiny = repositoryRoot.appendingPathComponent("examples/tiny/tiny-llama.yaml").path
    static let prepare = ["corpus.prepare.ja", "corpus.prepare.en", "corpus.prepare.code"]
    static let tokenize = ["corpus.tokenize.ja", "corpus.tokenize.en", "corpus.tokenize.code"]
    static let evals = ["eval.tasks.pretrain", "eval.tasks.qa", "eval.held_out.pretrain", "eval.held_out.qa", "eval.questions.qa"]

    static func keys(_ overrides: [String]) throws -> (keys: [String: String], graph: ExecutionGraph) {
        let c = RecipeCompiler.compile(path: tiny, overrides: overrides.map(Override.init), engine: .kondate)
        let recipe = try #require(c.executable, "\(overrides): \(c.diagnostics.errors.map(\.message))")
        let plans = try StageKeys.plan(recipe: recipe)
        return (Dictionary(uniqueKeysWithValues: plans.map { ($0.id, $0.key) }), ExecutionGraph(recipe: recipe))
    }

    /// `ids` and every stage that reads from them, transitively.
    static func closure(_ ids: Set<String>, in graph: ExecutionGraph) -> Set<String> {
        var out = ids
        for stage in graph.stages where stage.inputs.contains(where: out.contains) { out.insert(stage.id) }
        return out
    }

    static let table: [(String, [String])] = [
        // Read by no runner: only the release (its card names the recipe's SHA-256) moves.
        ("description=another description", []),
        ("tokenizer.name=another tokenizer", []),
        ("corpus.sources.ja.language=jp", []),
        ("corpus.sources.ja.tokens=1M", []),
        ("cluster.assumed_mfu=50%", []),
        ("cluster.compute_efficiency=50%", []),
        ("cluster.device_memory=8GiB", []),
        // Layout and checkpointing: how the computation is split or kept, not its result.
        ("parallel.micro_batch=2", []),
        ("pretrain.checkpoint.every=25", []),
        ("pretrain.checkpoint.keep=5", []),
        ("tune.qa.checkpoint.every=3", []),
        ("tune.qa.checkpoint.keep=4", []),
        ("release.license=MIT", []),
        ("release.dtype=bf16", []),
        // Corpus.
        ("corpus.on_error=fail", prepare),
        ("corpus.sources.en.text_field=body", ["corpus.prepare.en"]),
        ("corpus.sources.en.format=text_blocks", ["corpus.prepare.en"]),
        ("seed=7", prepare + ["corpus.mix", "pretrain", "tune.qa"] + evals),
        ("tokenizer.train.min_frequency=3", ["tokenizer"]),
        ("tokenizer.train.sample_size=512KiB", ["tokenizer"]),
        ("tokenizer.train.vocab_size=1024", ["tokenizer", "corpus.tokenize.ja", "corpus.tokenize.en", "corpus.tokenize.code", "pretrain"]),
        ("tokenizer.special_tokens.eos=</eos>", ["tokenizer"] + tokenize + ["pretrain", "tune.qa"] + evals),
        ("model.vocab_size=4096", tokenize + ["pretrain"]),
        ("corpus.held_out=5%", ["corpus.mix"]),
        ("corpus.sources.ja.weight=0.6", ["corpus.mix"]),
        ("pretrain.steps=100", ["corpus.mix", "pretrain"]),
        ("pretrain.global_batch=16", ["corpus.mix", "pretrain"]),
        // Model and pretraining.
        ("model.seq_len=128", ["corpus.mix", "pretrain", "tune.qa"]),
        ("model.max_positions=512", ["pretrain"]),
        ("model.init_std=0.01", ["pretrain"]),
        ("model.norm_eps=1e-6", ["pretrain"]),
        ("model.rope_theta=500000", ["pretrain"]),
        ("pretrain.optimizer.lr=1e-3", ["pretrain"]),
        ("pretrain.optimizer.betas=[0.9, 0.99]", ["pretrain"]),
        ("pretrain.schedule.min_lr=1e-4", ["pretrain"]),
        ("pretrain.grad_clip=0.5", ["pretrain"]),
        ("pretrain.log_interval=5", ["pretrain"]),
        ("pretrain.eval_iters=3", ["pretrain"]),
        ("pretrain.nan_policy=skip", ["pretrain", "tune.qa"]),
        // Tuning, evaluation, release.
        ("tune.qa.lr=1e-3", ["tune.qa"]),
        ("tune.qa.packing=false", ["tune.qa"]),
        ("tune.qa.loss_mask=all", ["tune.qa"]),
        ("tune.qa.template=llm-jp-v2-chat", ["tune.qa"]),
        ("tune.qa.datasets.tasks.weight=2", ["tune.qa"]),
        ("eval.tasks.max_samples=5", ["eval.tasks.pretrain", "eval.tasks.qa"]),
        ("eval.tasks.few_shots=1", ["eval.tasks.pretrain", "eval.tasks.qa"]),
        ("eval.held_out.max_samples=3", ["eval.held_out.pretrain", "eval.held_out.qa"]),
        ("eval.questions.max_new_tokens=8", ["eval.questions.qa"]),
        ("eval.questions.temperature=0.7", ["eval.questions.qa"]),
        ("eval.questions.template=llm-jp-v2-chat", ["eval.questions.qa"]),
        ("release.name=other-name", []),
        ("release.contents=[model, tokenizer]", []),
    ]

    @Test func eachChangeMovesExactlyTheKeysOfItsReadersAndTheirDependants() throws {
        let (base, graph) = try Self.keys([])
        #expect(base.count == graph.stages.count && base.count == 16)
        for (override, readers) in Self.table {
            let (changed, _) = try Self.keys([override])
            let moved = Set(base.keys.filter { base[$0] != changed[$0] })
            // The release reads the whole recipe (its SHA-256): every change moves it.
            let expected = Self.closure(Set(readers), in: graph).union(["release"])
            #expect(moved == expected, "\(override): moved \(moved.subtracting(expected).sorted()) unexpectedly, kept \(expected.subtracting(moved).sorted())")
        }
    }

    /// A key depends on the payload, not on where the recipe's values were written.
    @Test func keysIgnoreHowAValueWasWritten() throws {
        let (base, _) = try Self.keys([])
        // The same values restated on the command line.
        let (same, _) = try Self.keys(["pretrain.steps=200", "model.hidden=64", "pretrain.optimizer.lr=3e-3"])
        for (id, key) in base where id != "release" { #expect(same[id] == key, "\(id)") }
    }

    /// Stage kinds and versions are part of every key; a graph has every kind the example uses.
    @Test func kindsAreTypedAndVersioned() throws {
        let (_, graph) = try Self.keys([])
        #expect(Set(graph.stages.map(\.kind)) == Set(StageKind.allCases).subtracting([.tokenizerLoad]))
        for stage in graph.stages { #expect(stage.kind.version >= 1) }
        #expect(graph.stage("pretrain")?.engine == .kondate)
        let gpu = RecipeCompiler.compile(path: Self.tiny, overrides: [Override("cluster.device=a100-40gb")])
        #expect(gpu.plan?.graph.stage("pretrain")?.engine == .megatron)
    }
}
