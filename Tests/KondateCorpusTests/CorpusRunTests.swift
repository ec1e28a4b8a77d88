import Foundation
import Testing
import KondateCorpus
import KondateTokenizers
import KondateRecipe
import KondateSupport
import KondateTestSupport

/// The corpus stages of a small recipe over a slice of the example corpus, end to end.
@Suite("Corpus run")
struct CorpusRunTests {
    /// A recipe over the first `lines` documents of each example source.
    static func recipe(lines: Int = 300, extra: String = "", sources: String? = nil) throws -> (URL, String) {
        var files: [String: String] = [:]
        for name in ["ja", "en", "code"] {
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/tiny/data/\(name).jsonl"), encoding: .utf8)
            files["data/\(name).jsonl"] = text.split(separator: "\n").prefix(lines).joined(separator: "\n") + "\n"
        }
        files["recipe.yaml"] = """
        name: slice
        seed: 11
        tokenizer:
          train: {algorithm: bpe, vocab_size: 600, sample_size: 200KiB}
          special_tokens: {eos: "</s>", pad: "<pad>"}
        corpus:
          held_out: 5%
          sources:
        \(sources ?? """
            ja:
              paths: [data/ja.jsonl]
              weight: 0.5
              filters: [{doc_length: {min_chars: 20}}, dedup_exact, {dedup_minhash: {permutations: 32, bands: 8, rows: 4}}]
            en:
              paths: [data/en.jsonl]
              weight: 0.3
              filters: [{symbol_ratio: {max: 0.3}}, {link_ratio: {max: 0.3}}, dedup_exact]
            code:
              paths: [data/code.jsonl]
              weight: 0.2
        """)
        model: {arch: llama, hidden: 32, layers: 1, heads: 2, seq_len: 64}
        pretrain: {global_batch: 8, steps: 50, optimizer: {lr: 1e-3}}
        \(extra)
        """
        let dir = try temporaryRecipes(files)
        return (dir, dir.appendingPathComponent("recipe.yaml").path)
    }

    struct Invalid: Error, CustomStringConvertible { var description: String }

    static func load(_ path: String, set: [String] = []) throws -> Recipe {
        let loaded = RecipeFrontend.load(path: path, overrides: set.map(Override.init))
        guard let recipe = loaded.recipe else { throw Invalid(description: loaded.diagnostics.errors.map(\.message).joined(separator: "; ")) }
        return recipe
    }

    static func files(under dir: String) -> [String: Data] {
        var out: [String: Data] = [:]
        let walker = FileManager.default.enumerator(atPath: dir)
        while let file = walker?.nextObject() as? String {
            if let data = FileManager.default.contents(atPath: dir + "/" + file), !file.hasSuffix("/") { out[file] = data }
        }
        return out
    }

    @Test func runsEndToEndDeterministicallyForAnyThreadCount() throws {
        let (dir, path) = try Self.recipe()
        let recipe = try Self.load(path)
        let a = try CorpusRun(recipe: recipe, directory: dir.path + "/out-a", threads: 2).run()
        _ = try CorpusRun(recipe: recipe, directory: dir.path + "/out-b", threads: 1).run()
        let filesA = Self.files(under: dir.path + "/out-a"), filesB = Self.files(under: dir.path + "/out-b")
        #expect(filesA.count >= 14)
        #expect(filesA == filesB, "outputs differ: \(filesA.keys.filter { filesA[$0] != filesB[$0] })")

        // Filters dropped the planted duplicates and junk; the report says so.
        let ja = try #require(a.filterReports.first { $0.source == "ja" })
        #expect(ja.steps.map(\.filter) == ["doc_length", "dedup_exact", "dedup_minhash"])
        #expect(ja.steps[1].documentsOut < ja.steps[1].documentsIn)

        // Realised shares within 1% of the requested ones.
        let mixture = try #require(a.mixture)
        #expect(mixture.count == 400)
        for share in mixture.shares { #expect(abs(share.realisedShare - share.requestedShare) < 0.01) }

        // The .bin/.idx holds exactly the tokenizer's encoding of each prepared document plus EOD.
        let tokenizer = try TokenizerLoader.load(path: dir.path + "/out-a/tokenizer/tokenizer.json")
        let eod = try #require(tokenizer.id(of: "</s>"))
        let dataset = try IndexedDataset(prefix: dir.path + "/out-a/corpus/tokens/en/en")
        let prepared = try String(contentsOfFile: dir.path + "/out-a/corpus/prepared/en/en.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(dataset.count == prepared.count)
        for (i, line) in prepared.prefix(50).enumerated() {
            guard case let .string(text)? = try JSONParser.parse(String(line))["text"] else { Issue.record("bad line"); continue }
            #expect(dataset.tokens(i) == tokenizer.encode(text) + [eod])
        }
        #expect(dataset.dtype == .uint16)

        // Batches: inputs and targets are the same sample shifted by one.
        let loader = try BatchLoader(mixture: mixture, globalBatch: 8, microBatch: 4)
        let (tokens, targets) = loader.batch(step: 2, micro: 1)
        #expect(tokens.count == 256 && Array(tokens[1..<64]) == Array(targets[0..<63]))
    }

    @Test func aLoadedTokenizerMustMatchItsDeclaredSizeAndFitTheModel() throws {
        let spm = repositoryRoot.appendingPathComponent("Tests/KondateTokenizersTests/Fixtures/tokenizers/spm/llmjp-unigram.model").path
        let (dir, path) = try Self.recipe(lines: 40)
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "  train: {algorithm: bpe, vocab_size: 600, sample_size: 200KiB}", with: "  path: \(spm)")
        text = text.replacingOccurrences(of: "special_tokens: {eos: \"</s>\", pad: \"<pad>\"}", with: "special_tokens: {eos: \"</s>\"}")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let wrongSize = try Self.load(path, set: ["tokenizer.vocab_size=3001"])
        do {
            _ = try CorpusRun(recipe: wrongSize, directory: dir.path + "/out").run()
            Issue.record("expected a vocabulary error")
        } catch let e as KondateError {
            #expect(e.message.contains("tokenizer.vocab_size is 3001") && e.location?.file == "--set")
        }
        let small = try Self.load(path, set: ["model.vocab_size=2000"])
        do {
            _ = try CorpusRun(recipe: small, directory: dir.path + "/out").run()
            Issue.record("expected a model vocabulary error")
        } catch let e as KondateError {
            #expect(e.message.contains("model.vocab_size is 2000"))
        }
        let ok = try Self.load(path, set: ["tokenizer.vocab_size=3000"])
        let result = try CorpusRun(recipe: ok, directory: dir.path + "/out").run()
        #expect(result.tokenizer?.vocabularySize == 3000)
        #expect(try IndexedDataset(prefix: dir.path + "/out/corpus/tokens/ja/ja").count > 0)
    }

    @Test func badInputsAreNamed() throws {
        // A glob matching nothing names the pattern and its recipe line.
        let (dir, path) = try Self.recipe(lines: 40, sources: """
            ja:
              paths: [data/ja.jsonl, data/missing-*.jsonl]
              weight: 1
        """)
        do {
            _ = try CorpusRun(recipe: try Self.load(path), directory: dir.path + "/out").run()
            Issue.record("expected an error")
        } catch let e as KondateError {
            #expect(e.message.contains("missing-*.jsonl") && e.location?.line == 10 && e.location?.column == 30)
        }
        // A source that filtering empties.
        let (dir2, path2) = try Self.recipe(lines: 40, sources: """
            ja:
              paths: [data/ja.jsonl]
              filters: [{doc_length: {min_chars: 1000000}}]
              weight: 1
        """)
        do {
            _ = try CorpusRun(recipe: try Self.load(path2), directory: dir2.path + "/out").run()
            Issue.record("expected an error")
        } catch let e as KondateError {
            #expect(e.message.contains("no documents left"))
        }
        // A budget beyond the available tokens says how many epochs it would take.
        let (dir3, path3) = try Self.recipe(lines: 40, sources: """
            ja:
              paths: [data/ja.jsonl]
              budget: 20000
            en:
              paths: [data/en.jsonl]
              weight: 1
        """)
        do {
            _ = try CorpusRun(recipe: try Self.load(path3), directory: dir3.path + "/out").run()
            Issue.record("expected an error")
        } catch let e as KondateError {
            #expect(e.message.contains("would take") && e.message.contains("epochs"))
        }
        // A corrupted tokenizer file is a clear error, not a crash.
        let (dir4, path4) = try Self.recipe(lines: 40, extra: "")
        try Data("{\"model\": {\"type\": \"BPE\", \"vocab\": 3}}".utf8).write(to: dir4.appendingPathComponent("broken.json"))
        var text = try String(contentsOfFile: path4, encoding: .utf8)
        text = text.replacingOccurrences(of: "  train: {algorithm: bpe, vocab_size: 600, sample_size: 200KiB}", with: "  path: broken.json")
        try text.write(toFile: path4, atomically: true, encoding: .utf8)
        do {
            _ = try CorpusRun(recipe: try Self.load(path4, set: ["model.vocab_size=1024"]), directory: dir4.path + "/out").run()
            Issue.record("expected an error")
        } catch let e as KondateError {
            #expect(e.message.contains("broken.json"))
        }
    }
}
