import Foundation
import KondateSupport
import Testing
@testable import KondateRecipe

@Suite("Composition: extends, unset, appends, overrides, interpolation, origins")
struct CompositionTests {
    func load(_ files: [String: String], root: String = "main.yaml", set: [String] = []) throws -> (LoadedRecipe, DiagnosticSet, URL) {
        let dir = try temporaryRecipes(files)
        let (loaded, diagnostics) = validate(dir.appendingPathComponent(root).path, overrides: set)
        return (loaded, diagnostics, dir)
    }

    @Test func extendsChainKeepsOriginsOfInheritedValues() throws {
        let (loaded, d, _) = try load([
            "base.yaml": minimalRecipe + "seed: 7\n",
            "middle.yaml": "extends: base.yaml\nname: middle\nmodel:\n  layers: 4\n",
            "main.yaml": "extends: middle.yaml\nname: main\n",
        ])
        #expect(!d.hasErrors, "\(d.items.map(\.message))")
        let tree = try #require(loaded.tree)
        #expect(tree.at("name")?.string == "main")
        #expect(tree.at("model.layers")?.int == 4)
        #expect(tree.at("model.hidden")?.int == 64)
        let seed = try #require(tree.at("seed"))
        #expect(seed.location?.file.hasSuffix("base.yaml") == true)
        #expect(seed.location?.line == 9)
        // base.yaml's value reached main through middle: both steps are recorded.
        let inherited = seed.provenance.steps.compactMap { step -> String? in
            if case let .inheritedBy(file) = step { return file } else { return nil }
        }
        #expect(inherited == ["middle.yaml", "main.yaml"])
        // layers was overridden by middle: the replaced location is kept.
        let layers = try #require(tree.at("model.layers"))
        #expect(layers.location?.file.hasSuffix("middle.yaml") == true)
        #expect(layers.provenance.steps.contains { if case let .replaced(old) = $0 { old.file.hasSuffix("base.yaml") && old.line == 5 } else { false } })
        #expect(loaded.files.count == 3)
    }

    /// A file that many parents extend is read once; a wide diamond of 40 × 40 extends (1 600 parses
    /// without caching, 40⁴⁰ paths for a deeper one) costs 41 files. More files than the limit, in all,
    /// is an error at the reference that crossed it.
    @Test func extendsReadsEachFileOnceAndHasALimit() throws {
        var files = ["base.yaml": minimalRecipe]
        for i in 0..<40 {
            files["mid\(i).yaml"] = "extends: base.yaml\nseed: \(i)\n"
        }
        files["main.yaml"] = "extends: [" + (0..<40).map { "mid\($0).yaml" }.joined(separator: ", ") + "]\nname: wide\n"
        let (loaded, d, _) = try load(files)
        #expect(!d.hasErrors, "\(d.items.map(\.message))")
        #expect(loaded.files.count == 42 && Set(loaded.files).count == 42, "\(loaded.files.count) files read")
        #expect(loaded.tree?.at("seed")?.int == 39)

        var chain = ["base.yaml": minimalRecipe]
        for i in 0..<300 { chain["f\(i).yaml"] = "extends: \(i == 0 ? "base" : "f\(i - 1)").yaml\n" }
        chain["main.yaml"] = "extends: f299.yaml\n"
        let (_, long, _) = try load(chain)
        let error = try #require(long.items.first { $0.code == .extendsTooMany }, "\(long.items.map(\.message))")
        #expect(error.message.contains("more than \(Limits.extendsFiles) files") && error.message.contains("KONDATE_MAX_EXTENDS_FILES"))
        #expect(long.errors.count == 1, "\(long.errors.map(\.message))")
    }

    /// Whole-value references copy nodes: eight references to a list of eight references to … would
    /// copy 8¹⁰ nodes; the budget stops them with one error.
    @Test func interpolationCopiesAreBudgeted() throws {
        var text = minimalRecipe + "templates:\n  t0: {format: \"{input}\", keys: [a, b, c, d, e, f, g, h]}\n"
        for level in 1...10 {
            text += "  t\(level): [" + Array(repeating: "\"${templates.t\(level - 1)}\"", count: 8).joined(separator: ", ") + "]\n"
        }
        let started = Date()
        let (_, d, _) = try load(["main.yaml": text])
        #expect(Date().timeIntervalSince(started) < 10)
        let errors = d.items.filter { $0.code == .interpolationTooLarge }
        #expect(errors.count == 1, "\(d.items.map(\.message))")
        #expect(errors.first?.message.contains("more than \(Limits.interpolationNodes) nodes") == true)
    }

    @Test func laterParentsWinThenTheChild() throws {
        let (loaded, d, _) = try load([
            "a.yaml": minimalRecipe + "seed: 1\ndescription: from a\n",
            "b.yaml": "name: b\nseed: 2\nmodel:\n  layers: 6\n",
            "main.yaml": "extends: [a.yaml, b.yaml]\nname: main\ndescription: from main\n",
        ])
        #expect(!d.hasErrors, "\(d.items.map(\.message))")
        let tree = try #require(loaded.tree)
        #expect(tree.at("seed")?.int == 2)
        #expect(tree.at("model.layers")?.int == 6)
        #expect(tree.at("model.hidden")?.int == 64)
        #expect(tree.at("description")?.string == "from main")
    }

    @Test func listsReplaceUnlessAppended() throws {
        let base = minimalRecipe + """
        tokenizer: {path: t.model, vocab_size: 200}
        corpus:
          sources:
            web: {paths: [a.jsonl, b.jsonl], tokens: 1M}
        eval:
          ppl: {kind: perplexity, datasets: [x.jsonl], checkpoints: [pretrain], metrics: [perplexity]}
        pretrain: {global_batch: 8, steps: 10, optimizer: {lr: 1e-3}}

        """
        let (loaded, d, _) = try load([
            "base.yaml": base,
            "main.yaml": """
            extends: base.yaml
            corpus:
              sources:
                web:
                  paths+: [c.jsonl]
            eval:
              ppl:
                datasets: [y.jsonl]
            """,
        ])
        #expect(!d.hasErrors, "\(d.items.map(\.message))")
        let tree = try #require(loaded.tree)
        #expect(tree.at("corpus.sources.web.paths")?.array?.compactMap(\.string) == ["a.jsonl", "b.jsonl", "c.jsonl"])
        #expect(tree.at("eval.ppl.datasets")?.array?.compactMap(\.string) == ["y.jsonl"])
    }

    @Test func unsetDeletesInheritedKeys() throws {
        let base = minimalRecipe.replacingOccurrences(of: "  vocab_size: 256\n", with: "  vocab_size: 256\n  rope_theta: 500000\n")
            + "description: gone\n"
        let (loaded, d, _) = try load([
            "base.yaml": base,
            "main.yaml": "extends: base.yaml\nunset: [description, model.rope_theta]\n",
        ])
        #expect(!d.hasErrors, "\(d.items.map(\.message))")
        let tree = try #require(loaded.tree)
        #expect(tree.at("description") == nil)
        // rope_theta is gone from the file, so the llama default (derived) applies again.
        #expect(tree.at("model.rope_theta")?.double == 10_000)
        #expect(tree.at("model.rope_theta")?.location == nil)
    }

    @Test func unsetOfAMissingPathSuggests() throws {
        let (_, d, _) = try load([
            "base.yaml": minimalRecipe,
            "main.yaml": "extends: base.yaml\nunset: [model.hiden]\n",
        ])
        let error = try #require(d.errors.first { $0.code == .unsetInvalid })
        #expect(error.message.contains("did you mean 'hidden'?"))
        #expect(error.location?.line == 2)
        #expect(error.location?.column == 9)
    }

    @Test func overridesAreTypedAndLast() throws {
        let (loaded, d, _) = try load(["main.yaml": minimalRecipe],
                                      set: ["model.layers=8", "seed=2_000", "parallel.recompute=full", "model.dropout=10%"])
        // dropout takes no percentage: one error, at the fourth --set.
        #expect(d.errors.count == 1)
        #expect(d.errors.first?.location == SourceLocation(file: "--set", line: 4, column: 15))
        _ = loaded
        let (ok, d2, _) = try load(["main.yaml": minimalRecipe], set: ["model.layers=8", "seed=2_000", "parallel.recompute=full"])
        // The composition is clean, and Kondate's runtime honours recomputation.
        #expect(d2.errors.isEmpty, "\(d2.errors)")
        let tree = try #require(ok.tree)
        #expect(tree.at("model.layers")?.int == 8)
        #expect(tree.at("seed")?.int == 2000)
        #expect(tree.at("parallel.recompute")?.string == "full")
        let layers = try #require(tree.at("model.layers"))
        #expect(layers.provenance.isFromCommandLine)
        #expect(layers.provenance.steps.contains { if case let .replaced(old) = $0 { old.line == 5 } else { false } })
    }

    @Test func interpolationCopiesTypedValuesAndEmbedsStrings() throws {
        let (loaded, d, _) = try load(["main.yaml": minimalRecipe + """
        description: "a ${model.hidden}-wide model, literal $${not.a.ref}"
        tokenizer: {path: t.model, vocab_size: 256}
        corpus: {sources: {web: {paths: [w.jsonl], tokens: 1M}}}
        pretrain:
          global_batch: 8
          steps: 100
          optimizer: {lr: 1e-3}
          schedule: {warmup_steps: 10, decay_steps: "${pretrain.steps}"}

        """])
        #expect(!d.hasErrors, "\(d.items.map(\.message))")
        let tree = try #require(loaded.tree)
        #expect(tree.at("description")?.string == "a 64-wide model, literal ${not.a.ref}")
        #expect(tree.at("pretrain.schedule.decay_steps")?.int == 100)
        let decay = try #require(tree.at("pretrain.schedule.decay_steps"))
        #expect(decay.provenance.steps.contains { if case let .interpolated(reference, _) = $0 { reference == "pretrain.steps" } else { false } })
    }

    @Test func interpolationCyclesAndUnknownPathsAreErrors() throws {
        let (_, d, _) = try load(["main.yaml": minimalRecipe + "description: ${seed}\nseed: ${description}\n"])
        #expect(d.errors.contains { $0.code == .interpolationCycle && $0.message.contains("${") })
        let (_, d2, _) = try load(["main.yaml": minimalRecipe + "description: ${model.hiden}\n"])
        #expect(d2.errors.contains { $0.code == .interpolationUnknown && $0.message.contains("did you mean 'hidden'") })
    }

    @Test func extendsCycleIsReported() throws {
        let (_, d, _) = try load(["a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "extends: a.yaml\nname: b\n"], root: "a.yaml")
        let error = try #require(d.errors.first { $0.code == .extendsCycle })
        #expect(error.message.contains("a.yaml → b.yaml → a.yaml"))
    }

    @Test func inheritedErrorNamesTheParentAndTheChain() throws {
        let (_, d, _) = try load([
            "base.yaml": minimalRecipe + "parallel: {tensor: 3}\n",
            "main.yaml": "extends: base.yaml\nname: main\n",
        ])
        let error = try #require(d.errors.first { $0.code == .tensorSplit })
        #expect(error.location?.file.hasSuffix("base.yaml") == true)
        #expect(error.notes.contains { $0.message.contains("inherited by main.yaml") })
    }
}
