import CZlib
import Foundation
import Testing
import KondateCorpus
import KondateRecipe
import KondateSupport
import KondateTestSupport

func gzip(_ text: String, to path: String) {
    let file = gzopen(path, "wb")
    _ = Array(text.utf8).withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    gzclose(file)
}

func readAll(_ reader: inout DocumentReader) throws -> [Document] {
    var out: [Document] = []
    try reader.forEach { out.append($0) }
    return out
}

@Suite("Corpus readers")
struct ReaderTests {
    @Test func jsonlKeepsMetadataAndSkipsMalformedLines() throws {
        let dir = try temporaryRecipes(["a.jsonl": """
        {"text": "first", "id": 1, "url": "u"}
        {"text": "second"
        not json at all
        {"body": "no text field"}
        {"text": "\\u65e5\\u672c"}

        {"text": 5}
        """])
        var reader = DocumentReader(files: [dir.appendingPathComponent("a.jsonl").path], format: .jsonl)
        let docs = try readAll(&reader)
        #expect(docs.map(\.text) == ["first", "日本"])
        #expect(docs[0].line == 1 && docs[1].line == 5)
        #expect(docs[0].metadata == .object([("id", .int(1)), ("url", .string("u"))]))
        #expect(reader.report.skipped == 4)
        #expect(reader.report.skippedExamples.first?.origin.hasSuffix("a.jsonl:2") == true)
        #expect(reader.report.skippedExamples.contains { $0.reason.contains("no string field 'text'") })
    }

    @Test func failPolicyNamesFileAndLine() throws {
        let dir = try temporaryRecipes(["a.jsonl": "{\"text\": \"ok\"}\n{broken\n"])
        var reader = DocumentReader(files: [dir.appendingPathComponent("a.jsonl").path], format: .jsonl, onError: .fail)
        do {
            _ = try readAll(&reader)
            Issue.record("expected an error")
        } catch let error as KondateError {
            #expect(error.location?.line == 2)
            #expect(error.location?.file.hasSuffix("a.jsonl") == true)
        }
    }

    @Test func gzipTextAndBlocks() throws {
        let dir = try temporaryRecipes(["one.txt": "a whole file\nis one document\n", "blocks.txt": "first block\nline two\n\n\n second block \n\nthird\n"])
        gzip("{\"text\": \"zipped\"}\n{\"text\": \"twice\"}\n", to: dir.appendingPathComponent("z.jsonl.gz").path)
        var gz = DocumentReader(files: [dir.appendingPathComponent("z.jsonl.gz").path], format: .jsonl)
        #expect(try readAll(&gz).map(\.text) == ["zipped", "twice"])
        var whole = DocumentReader(files: [dir.appendingPathComponent("one.txt").path], format: .text)
        #expect(try readAll(&whole).map(\.text) == ["a whole file\nis one document\n"])
        var blocks = DocumentReader(files: [dir.appendingPathComponent("blocks.txt").path], format: .textBlocks)
        let docs = try readAll(&blocks)
        #expect(docs.map(\.text) == ["first block\nline two", " second block ", "third"])
        #expect(docs.map(\.line) == [1, 5, 7])
    }

    /// A document over the size limit is skipped and counted — a line without a newline is never held
    /// whole — in every format, even with on_error: fail, and the documents around it are read.
    @Test func oversizedDocumentsAreSkippedAndCounted() throws {
        let long = String(repeating: "x", count: 3 << 20)
        let dir = try temporaryRecipes([
            "a.jsonl": "{\"text\": \"short\"}\n{\"text\": \"\(long)\"}\n{\"text\": \"after\"}\n{\"text\": \"\(long)",
            "whole.txt": long,
            "blocks.txt": "first\n\n\(long)\nmore\n\nlast\n",
        ])
        var jsonl = DocumentReader(files: [dir.appendingPathComponent("a.jsonl").path], format: .jsonl, onError: .fail)
        jsonl.maxDocumentBytes = 1 << 20
        #expect(try readAll(&jsonl).map(\.text) == ["short", "after"])
        #expect(jsonl.report.skipped == 2 && jsonl.report.lines == 4)
        #expect(jsonl.report.skippedExamples.map(\.origin).map { $0.hasSuffix("a.jsonl:2") || $0.hasSuffix("a.jsonl:4") } == [true, true])
        #expect(jsonl.report.skippedExamples.first?.reason.contains("more than 1048576 bytes") == true)
        var whole = DocumentReader(files: [dir.appendingPathComponent("whole.txt").path], format: .text)
        whole.maxDocumentBytes = 1 << 20
        #expect(try readAll(&whole).isEmpty && whole.report.skipped == 1)
        var blocks = DocumentReader(files: [dir.appendingPathComponent("blocks.txt").path], format: .textBlocks)
        blocks.maxDocumentBytes = 1 << 20
        let docs = try readAll(&blocks)
        #expect(docs.map(\.text) == ["first", "last"] && docs.map(\.line) == [1, 6] && blocks.report.skipped == 1)
        #expect(blocks.report.skippedExamples.first?.origin.hasSuffix("blocks.txt:3") == true)
    }

    /// A gzip file that decompresses to far more than its size is stopped as a decompression bomb,
    /// naming the file, before it is read through.
    @Test func gzipBombsAreStopped() throws {
        let dir = try temporaryRecipes([:])
        let path = dir.appendingPathComponent("bomb.jsonl.gz").path
        let file = gzopen(path, "wb9")
        let zeros = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<96 { _ = zeros.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) } }
        gzclose(file)
        let reader = try LineReader(path: path)
        reader.maxRatio = 50
        #expect { try reader.forEachLine { _, _ in true } } throws: { "\($0)".contains("bomb.jsonl.gz") && "\($0)".contains("decompression bomb") }
        #expect(reader.bytesRead < 96 << 20)
    }

    @Test func invalidUTF8IsSkippedWithItsLine() throws {
        let dir = try temporaryRecipes([:])
        let path = dir.appendingPathComponent("bad.txt").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("good\n\nbad \u{FF}".utf8.map { $0 } + [0xFF, 0x0A]))
        var blocks = DocumentReader(files: [path], format: .textBlocks)
        let docs = try readAll(&blocks)
        #expect(docs.map(\.text) == ["good"])
        #expect(blocks.report.skipped == 1)
        #expect(blocks.report.skippedExamples.first?.origin.hasSuffix("bad.txt:3") == true)
    }

    @Test func globsExpandSortedAndMissingOnesAreNamed() throws {
        let dir = try temporaryRecipes(["b.jsonl": "", "a.jsonl": "", "sub/c.jsonl": ""])
        let files = try DocumentReader.expand([(dir.path + "/*.jsonl", nil)])
        #expect(files.map { URL(fileURLWithPath: $0).lastPathComponent } == ["a.jsonl", "b.jsonl"])
        let at = SourceLocation(file: "r.yaml", line: 9, column: 15)
        #expect(throws: KondateError.self) { try DocumentReader.expand([(dir.path + "/none-*.jsonl", at)]) }
        do { _ = try DocumentReader.expand([(dir.path + "/none-*.jsonl", at)]) } catch let e as KondateError {
            #expect(e.location == at && e.message.contains("none-*.jsonl"))
        }
    }
}

@Suite("Filters and deduplication")
struct FilterTests {
    func filter(_ name: String, _ params: [(String, Value)] = []) throws -> CorpusFilter {
        let node = RNode(.object(params.map { REntry(key: $0.0, keyLocation: nil, node: RNode($0.1, .defaulted)) }), .defaulted)
        return try FilterRegistry.make(Recipe.Filter(name: name, parameters: node), seed: 1)
    }

    func keeps(_ f: CorpusFilter, _ text: String) -> Bool {
        if case let .text(_, keep) = f { return keep(text) }
        return true
    }

    @Test func registryCoversTheSchema() {
        #expect(Set(FilterRegistry.names) == Set(RecipeSchema.filterNames))
    }

    @Test func characterRatios() throws {
        let ja = try filter("japanese_ratio", [("min", .double(0.5))])
        #expect(keeps(ja, "日本語の文章です。"))
        #expect(!keeps(ja, "mostly English with 日本"))
        let hira = try filter("hiragana_ratio", [("min", .double(0.2))])
        #expect(keeps(hira, "これはひらがなが多い文です"))
        #expect(!keeps(hira, "東京都千代田区一丁目"))
        let sym = try filter("symbol_ratio", [("max", .double(0.3))])
        #expect(keeps(sym, "plain words, one comma."))
        #expect(!keeps(sym, "#### $$$$ !!!! ???? a"))
        let link = try filter("link_ratio", [("max", .double(0.5))])
        #expect(keeps(link, "see https://a.b for details about this long sentence"))
        #expect(!keeps(link, "https://example.com/a https://example.com/b x"))
    }

    @Test func lengthsAndRepetition() throws {
        let len = try filter("doc_length", [("min_chars", .int(5)), ("max_chars", .int(10))])
        #expect(keeps(len, "12345") && !keeps(len, "1234") && !keeps(len, "12345678901"))
        let sentences = try filter("sentence_length", [("max_mean", .double(10))])
        #expect(keeps(sentences, "短い文。短い文。"))
        #expect(!keeps(sentences, "これはとても長い長い長い長い長い文で終わりがありません"))
        let lines = try filter("repeated_lines", [("max_ratio", .double(0.3))])
        #expect(keeps(lines, "a\nb\nc\nd"))
        #expect(!keeps(lines, "a\na\na\nb"))
        let paragraphs = try filter("repeated_paragraphs", [("max_ratio", .double(0.3))])
        #expect(!keeps(paragraphs, "same para\n\nsame para\n\nother"))
        #expect(TextStatistics.paragraphs("p1 line\nstill p1\n\n\np2\n\n").map(String.init) == ["p1 line\nstill p1", "p2"])
        let mean = try filter("line_length", [("min_mean", .double(3)), ("max_mean", .double(5))])
        #expect(keeps(mean, "abcd\nabcd") && !keeps(mean, "a\nb"))
    }

    @Test func compressionCodeAndWords() throws {
        let z = try filter("compression_ratio", [("min", .double(0.3)), ("max", .double(0.9))])
        #expect(!keeps(z, String(repeating: "spam ", count: 200)))
        // Python: len(zlib.compress(s.encode())) / len(s.encode()) = 0.6482 for this text.
        let prose = "The quick brown fox jumps over the lazy dog, then naps under an old oak tree near the river. Later that evening, a curious owl asked the fox why it preferred oak trees to pines; the fox shrugged and said the shade was better. Nobody in the village believed the story, but the children repeated it for years."
        #expect(abs(TextStatistics.compressionRatio(prose) - 0.6482084690553745) < 1e-12)
        #expect(keeps(z, prose))
        let code = try filter("code", [("max_line_length", .int(20)), ("max_mean_line_length", .double(15)), ("min_alnum_fraction", .double(0.5))])
        #expect(keeps(code, "let x = 1\nlet y = 2"))
        #expect(!keeps(code, String(repeating: "x", count: 21)))
        #expect(!keeps(code, "{}[]();;\n{}[]();;"))
        let matcher = WordMatcher(words: ["悪い", "bad"])
        #expect(matcher.hits(in: "悪い言葉とbad word、また悪い") == 3)
    }

    @Test func exactDedupUsesNormalisedText() {
        var d = ExactDeduplicator()
        let kept = ["Hello  World\n", "hello world", "ｈｅｌｌｏ　ｗｏｒｌｄ", "hello there"].map { d.keep(key: ExactDeduplicator.key($0)) }
        // NFKC folds the full-width forms; case and whitespace runs are normalised.
        #expect(kept == [true, false, false, true])
    }

    @Test func minHashDropsNearDuplicatesDeterministically() {
        let base = (0..<40).map { "sentence number \($0) talks about a different topic entirely. " }.joined()
        let near = base + "One more sentence at the end."
        let other = (0..<40).map { "完全に別の文章 \($0) です。" }.joined()
        let p = MinHashParameters(shingle: 5, permutations: 128, bands: 16, rows: 8, threshold: 0.8, seed: 42)
        var d = MinHashDeduplicator(p)
        let kept = [base, near, other].map { d.keep(signature: d.signature($0)) }
        #expect(kept == [true, false, true])
        let again = MinHashDeduplicator(p)
        #expect(again.signature(base) == d.signature(base))
        #expect(MinHashDeduplicator(MinHashParameters(shingle: 5, permutations: 128, bands: 16, rows: 8, threshold: 0.8, seed: 43)).signature(base) != d.signature(base))
    }
}

@Suite("Megatron indexed datasets")
struct IndexedDatasetTests {
    @Test func writeAndReadBack() throws {
        let dir = try temporaryRecipes([:])
        let docs: [[Int32]] = [[1, 2, 3, 0], [], [65_000, 7, 0], (0..<1000).map { Int32($0) }]
        for dtype in [MegatronDType.uint16, .int32] {
            let prefix = dir.appendingPathComponent("ds-\(dtype.rawValue)").path
            let writer = try IndexedDatasetWriter(prefix: prefix, dtype: dtype)
            for d in docs { try writer.add(document: d) }
            try writer.finish()
            let ds = try IndexedDataset(prefix: prefix)
            #expect(ds.count == 4 && ds.dtype == dtype)
            #expect((0..<4).map { ds.tokens($0) } == docs)
            #expect(ds.tokens(3, offset: 10, length: 3) == [10, 11, 12])
            #expect(ds.documentIndices == [0, 1, 2, 3, 4])
            let idxSize = try FileManager.default.attributesOfItem(atPath: prefix + ".idx")[.size] as? Int
            #expect(idxSize == 34 + 4 * 12 + 5 * 8)
        }
        #expect(MegatronDType.optimal(vocabularySize: 65_499) == .uint16)
        #expect(MegatronDType.optimal(vocabularySize: 65_500) == .int32)
    }

    /// Float dtypes hold no token ids (they used to read as zeros), and an int64 id beyond 32 bits is
    /// refused (it used to be truncated).
    @Test func floatDtypesAndWideIdsAreRefused() throws {
        let dir = try temporaryRecipes([:])
        let prefix = dir.appendingPathComponent("ds").path
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .int32)
        try writer.add(document: [1, 2, 3])
        try writer.finish()
        var idx = try Data(contentsOf: URL(fileURLWithPath: prefix + ".idx"))
        idx[17] = MegatronDType.float32.rawValue
        try idx.write(to: URL(fileURLWithPath: prefix + ".idx"))
        #expect { try IndexedDataset(prefix: prefix) } throws: { "\($0)".contains("ds.idx") && "\($0)".contains("holds no token ids") }

        let wide = dir.appendingPathComponent("wide").path
        let writer64 = try IndexedDatasetWriter(prefix: wide, dtype: .int64)
        try writer64.add(document: [1, 2, 3])
        try writer64.finish()
        #expect(try IndexedDataset(prefix: wide).tokens(0) == [1, 2, 3])
        var bin = try Data(contentsOf: URL(fileURLWithPath: wide + ".bin"))
        withUnsafeBytes(of: Int64(1 << 40).littleEndian) { bin.replaceSubrange(8..<16, with: $0) }
        try bin.write(to: URL(fileURLWithPath: wide + ".bin"))
        #expect { try IndexedDataset(prefix: wide) } throws: { "\($0)".contains("wide.bin") && "\($0)".contains("token 1 of the int64 data") }
    }

    /// A dataset whose .bin is empty (every document empty) opens without mapping the empty file (a
    /// mapped read of an empty file leaked a page: fuzz/regressions/indexed-dataset/empty-bin-leak).
    @Test func anEmptyDataFileOpens() throws {
        let dir = try temporaryRecipes([:])
        let prefix = dir.appendingPathComponent("empty").path
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .uint16)
        try writer.add(document: [])
        try writer.finish()
        let ds = try IndexedDataset(prefix: prefix)
        #expect(ds.count == 1 && ds.tokens(0).isEmpty && ds.totalTokens == 0)
    }

    @Test func disagreeingPairIsAnErrorNamingBoth() throws {
        let dir = try temporaryRecipes([:])
        let prefix = dir.appendingPathComponent("ds").path
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .uint16)
        try writer.add(document: [1, 2, 3])
        try writer.finish()
        let handle = try #require(FileHandle(forWritingAtPath: prefix + ".bin"))
        try handle.truncate(atOffset: 4)
        try handle.close()
        do {
            _ = try IndexedDataset(prefix: prefix)
            Issue.record("expected an error")
        } catch let e as KondateError {
            #expect(e.message.contains("ds.bin") && e.message.contains("ds.idx"))
        }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: prefix + ".idx"))
        #expect(throws: KondateError.self) { try IndexedDataset(prefix: prefix) }
    }
}

@Suite("Mixture and loader")
struct MixtureTests {
    /// Three sources of different sizes with recognisable token ranges.
    func sources(_ dir: URL) throws -> [MixtureSource] {
        var out: [MixtureSource] = []
        for (k, (docs, length)) in [(300, 50), (100, 30), (50, 200)].enumerated() {
            let prefix = dir.appendingPathComponent("s\(k)").path
            let writer = try IndexedDatasetWriter(prefix: prefix, dtype: .uint16)
            for d in 0..<docs { try writer.add(document: (0..<length).map { Int32(k * 10_000 + (d * 7 + $0) % 9_000) } + [1]) }
            try writer.finish()
            out.append(MixtureSource(name: "s\(k)", prefix: prefix, weight: [0.5, 0.3, 0.2][k]))
        }
        return out
    }

    @Test func realisedSharesMatchRequestedAndSamplesAreWhole() throws {
        let dir = try temporaryRecipes([:])
        let mix = try Mixture(sources: sources(dir), samples: 1000, seqLen: 32, heldOut: 0.05, seed: 7)
        for share in mix.shares { #expect(abs(share.realisedShare - share.requestedShare) < 0.01) }
        for i in [0, 1, 500, 999] {
            let s = mix.sample(i)
            #expect(s.count == 33)
            // Tokens come from one source's id range.
            let source = Int(mix.sourceIndex[i])
            #expect(s.allSatisfy { $0 == 1 || ($0 / 10_000) == Int32(source) })
        }
        // Consecutive samples of one source overlap by exactly one token.
        let first = mix.sources[0]
        #expect(first.sample(0).last == first.sample(1).first)
        #expect(mix.validation.count == 3)
    }

    @Test func sameSeedSameStreamOtherSeedOtherStream() throws {
        let dir = try temporaryRecipes([:])
        let a = try Mixture(sources: sources(dir), samples: 300, seqLen: 16, heldOut: 0.1, seed: 7)
        let b = try Mixture(sources: sources(dir), samples: 300, seqLen: 16, heldOut: 0.1, seed: 7)
        let c = try Mixture(sources: sources(dir), samples: 300, seqLen: 16, heldOut: 0.1, seed: 8)
        #expect((0..<300).map(a.sample) == (0..<300).map(b.sample))
        #expect((0..<300).map(a.sample) != (0..<300).map(c.sample))
        try a.writeIndex(to: dir.appendingPathComponent("a").path)
        try b.writeIndex(to: dir.appendingPathComponent("b").path)
        for ext in [".source.u16", ".sample.i64"] {
            #expect(try Data(contentsOf: dir.appendingPathComponent("a" + ext)) == Data(contentsOf: dir.appendingPathComponent("b" + ext)))
        }
    }

    @Test func budgetsAndEpochCaps() throws {
        let dir = try temporaryRecipes([:])
        var s = try sources(dir)
        // Source 1 has 100 docs × 31 tokens ≈ 3 100 tokens; a budget of 6 000 needs about two epochs.
        s[1].weight = nil
        s[1].budget = 6_000
        #expect(throws: KondateError.self) { try Mixture(sources: s, samples: 1000, seqLen: 32, heldOut: 0, seed: 1) }
        do { _ = try Mixture(sources: s, samples: 1000, seqLen: 32, heldOut: 0, seed: 1) } catch let e as KondateError {
            #expect(e.message.contains("epochs") && e.message.contains("max_epochs"))
        }
        s[1].maxEpochs = 2
        let mix = try Mixture(sources: s, samples: 1000, seqLen: 32, heldOut: 0, seed: 1)
        #expect(abs(mix.shares[1].requestedShare - 6_000.0 / 32_000) < 1e-12)
        #expect(abs(mix.shares[1].realisedShare - mix.shares[1].requestedShare) < 0.01)
        #expect(mix.shares[1].epochs > 1.5)
    }

    @Test func loaderSplitsRanksAndResumes() throws {
        let dir = try temporaryRecipes([:])
        let mix = try Mixture(sources: sources(dir), samples: 64, seqLen: 8, heldOut: 0, seed: 3)
        let whole = try BatchLoader(mixture: mix, globalBatch: 8, microBatch: 2)
        let r0 = try BatchLoader(mixture: mix, globalBatch: 8, microBatch: 2, rank: 0, dataParallel: 2)
        let r1 = try BatchLoader(mixture: mix, globalBatch: 8, microBatch: 2, rank: 1, dataParallel: 2)
        #expect(whole.microBatchesPerStep == 4 && r0.microBatchesPerStep == 2)
        // Ranks 0 and 1 together see exactly the single-rank micro batches of the same step.
        #expect(whole.batch(step: 3, micro: 0).tokens + whole.batch(step: 3, micro: 1).tokens == r0.batch(step: 3, micro: 0).tokens + r0.batch(step: 3, micro: 1).tokens)
        #expect(whole.batch(step: 3, micro: 2).tokens == r1.batch(step: 3, micro: 0).tokens)
        let (tokens, targets) = whole.batch(step: 1, micro: 1)
        #expect(tokens.count == 16 && Array(tokens[1..<8]) == Array(targets[0..<7]))
        #expect(throws: KondateError.self) { try BatchLoader(mixture: mix, globalBatch: 7, microBatch: 2) }
    }
}
