import Foundation
import KondatePlan
import KondateRecipe
import KondateTestSupport
import Testing

/// The compile step and the engines' verdicts: every setting an engine cannot honour is an error at
/// its location, and the table in docs/engines.md is the code's.
@Suite("Engines: honour or reject, one compile step")
struct EngineSupportTests {
    static let tiny = repositoryRoot.appendingPathComponent("examples/tiny/tiny-llama.yaml").path

    func compile(_ path: String = tiny, set: [String] = [], engine: Engine? = nil) -> Compilation {
        RecipeCompiler.compile(path: path, overrides: set.map(Override.init), engine: engine)
    }

    @Test func defaultEngineFollowsTheDevice() throws {
        #expect(compile().engine == .kondate)
        #expect(compile(set: ["cluster.device=a100-40gb"]).engine == .megatron)
        let v2 = compile(repositoryRoot.appendingPathComponent("recipes/llm-jp-13b-v2.0.yaml").path)
        #expect(v2.engine == .megatron && !v2.diagnostics.hasErrors)
        #expect(compile().executable != nil)
    }

    /// Each setting Kondate's runtime cannot honour, set on the tiny example, is one error of code
    /// `engine` at the `--set` that wrote it, naming the key and what to do instead.
    @Test(arguments: [
        ("cluster.devices_per_node=2 parallel.tensor=2 parallel.sequence_parallel=true", "sequence_parallel: false"),
        ("cluster.device=a100-40gb", "--engine megatron"),
        ("model.attention_kernel=standard", "attention_kernel: flash"),
        ("parallel.zero_stage=3", "zero_stage: 2"),
        ("pretrain.precision=fp16", "set precision: bf16"),
        ("tune.qa.precision=fp16", "set precision: bf16"),
        ("tokenizer.train.algorithm=unigram", "algorithm: bpe"),
        ("tokenizer.train.byte_fallback=false", "remove the key"),
    ])
    func kondateRejectsAtTheKey(_ overrides: String, _ fix: String) throws {
        let sets = overrides.split(separator: " ").map(String.init)
        let override = sets.last!
        let c = compile(set: sets, engine: .kondate)
        let errors = c.diagnostics.errors
        #expect(errors.count == 1, "\(override): \(errors.map(\.message))")
        let e = try #require(errors.first)
        #expect(e.code == .engine)
        #expect(e.location?.file == "--set" && e.location?.line == sets.count, "\(override): \(String(describing: e.location))")
        #expect(e.message.contains(fix), "\(override): \(e.message)")
        #expect(c.executable == nil)
        // The verdict table says the key is rejected by this engine.
        let key = String(override.prefix { $0 != "=" }).replacingOccurrences(of: "tune.qa.", with: "tune.<stage>.")
        if case .rejected = EngineSupport.verdict(key: key, engine: .kondate) {} else { Issue.record("\(key) is not marked rejected") }
    }

    @Test func additionalSpecialTokensNeedATrainedTokenizer() throws {
        let dir = try temporaryRecipes(["r.yaml": """
            extends: \(Self.tiny)
            unset: [tokenizer.train]
            tokenizer:
              path: tokenizer.json
              vocab_size: 2048
              special_tokens: {additional: ["<mask>"]}
            """])
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = compile(dir.appendingPathComponent("r.yaml").path)
        let e = try #require(c.diagnostics.errors.first { $0.code == .engine })
        #expect(e.message.contains("special_tokens.additional") && e.location?.line == 6)
        // Trained: honoured (joins the vocabulary), no error.
        #expect(!compile(set: ["tokenizer.special_tokens.additional=[\"<mask>\"]"]).diagnostics.hasErrors)
    }

    /// Megatron-LM's refusals come through the same compile step, at their keys.
    @Test func megatronRefusalsAreValidationErrors() throws {
        let v2 = repositoryRoot.appendingPathComponent("recipes/llm-jp-13b-v2.0.yaml").path
        let c = compile(v2, set: ["parallel.zero_stage=2", "pretrain.nan_policy=skip"], engine: .megatron)
        #expect(c.diagnostics.errors.count == 2)
        #expect(c.diagnostics.errors.allSatisfy { $0.location?.file == "--set" })
        // The tiny example on Kondate's runtime is fine; for Megatron-LM its cpu device and keep: 2 are not.
        let tiny = compile(engine: .megatron)
        #expect(Set(tiny.diagnostics.errors.map { $0.location?.line ?? 0 }).count == 2)
    }

    @Test func everyRuleNamesASchemaKeyAndTheDocIsCurrent() throws {
        let keys = Set(EngineSupport.keyPaths())
        #expect(keys.contains("tune.<stage>.precision") && keys.contains("corpus.sources.<source>.max_epochs"))
        for rule in EngineSupport.rules { #expect(keys.contains(rule.key), "rule for unknown key \(rule.key)") }
        let committed = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/engines.md"), encoding: .utf8)
        #expect(committed == EngineSupport.markdown(), "docs/engines.md is stale: run `kondate docs engines > docs/engines.md`")
        // Every key has a row.
        for key in keys { #expect(committed.contains("| `\(key)` |"), "\(key) has no row") }
    }

    /// The typed recipe reads values and never supplies one: a default missing from the resolved tree is
    /// a Kondate bug, reported with the path.
    @Test func typingNeverInventsADefault() throws {
        let loaded = RecipeFrontend.load(path: Self.tiny)
        var tree = try #require(loaded.tree)
        #expect(throws: Never.self) { _ = try Recipe(tree: tree, file: Self.tiny) }
        tree.set("model.norm_eps", RNode(.string("small"), .defaulted))
        do {
            _ = try Recipe(tree: tree, file: Self.tiny)
            Issue.record("a tree with a string model.norm_eps was typed")
        } catch {
            #expect(error.path == "model.norm_eps" && error.description.contains("not a number"))
        }
    }
}
