import Foundation
import KondateSupport
import Testing
import KondateTokenizers
import KondateTestSupport

/// Fixtures written by scripts/tokenizer_fixtures_hf.py with the Python `tokenizers` package.
let hfFixtures = repositoryRoot.appendingPathComponent("Tests/KondateTokenizersTests/Fixtures/tokenizers/hf")

/// The texts of Fixtures/tokenizers/mixed.jsonl.
let hfMixedTexts: [String] = {
    let url = repositoryRoot.appendingPathComponent("Tests/KondateTokenizersTests/Fixtures/tokenizers/mixed.jsonl")
    return hfJSONLines(url).map { ($0["text"] as? String) ?? "" }
}()

func hfJSONLines(_ url: URL) -> [[String: Any]] {
    guard let data = try? Data(contentsOf: url), let text = String(data: data, encoding: .utf8) else { return [] }
    return text.split(separator: "\n", omittingEmptySubsequences: true).compactMap {
        (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
    }
}

func hfInt32s(_ value: Any?) -> [Int32] {
    ((value as? [Any]) ?? []).compactMap { ($0 as? NSNumber).map { Int32(truncating: $0) } }
}

/// Compares every text's ids and decoded text; returns the first mismatches, described.
func hfParityMismatches(_ tokenizer: HFTokenizer, texts: [String], ids: [[Int32]], decoded: [String?], limit: Int = 5) -> [String] {
    var problems = [String]()
    for (i, text) in texts.enumerated() {
        let got = tokenizer.encode(text)
        if got != ids[i] {
            problems.append("encode #\(i) \(text.debugDescription.prefix(120)): expected \(ids[i].prefix(40)) got \(got.prefix(40))")
        }
        let expectedText = decoded[i] ?? text
        let gotText = tokenizer.decode(ids[i])
        if gotText != expectedText {
            problems.append("decode #\(i) \(ids[i].prefix(20)): expected \(expectedText.debugDescription.prefix(120)) got \(gotText.debugDescription.prefix(120))")
        }
        if problems.count >= limit { break }
    }
    return problems
}

@Suite("HFTokenizer against the Python tokenizers package")
struct HFTokenizerTests {
    @Test(arguments: ["bytelevel-bpe", "metaspace-bpe-bytefallback", "unigram-bytefallback"])
    func fixtureParity(name: String) throws {
        let tokenizer = try HFTokenizer(path: hfFixtures.appendingPathComponent("\(name).json").path)
        let expected = hfJSONLines(hfFixtures.appendingPathComponent("\(name).expected.jsonl"))
        try #require(expected.count == hfMixedTexts.count && hfMixedTexts.count == 2130)
        let problems = hfParityMismatches(tokenizer, texts: hfMixedTexts, ids: expected.map { hfInt32s($0["ids"]) },
                                        decoded: expected.map { $0["decoded"] as? String })
        #expect(problems.isEmpty, "\(name): \(problems.joined(separator: "\n"))")
    }

    /// Variants of the fixtures with other normalizers, pre-tokenizers, decoders, added tokens and
    /// model flags (components.jsonl), each checked on a subset of the texts.
    @Test func componentVariants() throws {
        let cases = hfJSONLines(hfFixtures.appendingPathComponent("components.jsonl"))
        #expect(cases.count >= 30)
        var bases = [String: [String: Any]]()
        for c in cases {
            let name = (c["name"] as? String) ?? "?"
            let baseName = (c["base"] as? String) ?? ""
            if bases[baseName] == nil {
                let data = try Data(contentsOf: hfFixtures.appendingPathComponent(baseName))
                bases[baseName] = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            }
            var json = try #require(bases[baseName])
            for (k, v) in (c["patch"] as? [String: Any]) ?? [:] { json[k] = v }
            var model = try #require(json["model"] as? [String: Any])
            for (k, v) in (c["model_patch"] as? [String: Any]) ?? [:] {
                if k == "merges", (v as? String) == "legacy" {
                    model["merges"] = ((model["merges"] as? [[String]]) ?? []).map { $0.joined(separator: " ") }
                } else {
                    model[k] = v
                }
            }
            json["model"] = model
            if let added = c["added_tokens"] { json["added_tokens"] = added }
            let data = try JSONSerialization.data(withJSONObject: json)
            let tokenizer = try HFTokenizer(data: data, file: name)
            let indices = ((c["texts"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.intValue }
            let ids = ((c["ids"] as? [Any]) ?? []).map(hfInt32s)
            let decoded = ((c["decoded"] as? [Any]) ?? []).map { $0 as? String }
            try #require(ids.count == indices.count && decoded.count == indices.count, "\(name): malformed case")
            let problems = hfParityMismatches(tokenizer, texts: indices.map { hfMixedTexts[$0] }, ids: ids, decoded: decoded)
            #expect(problems.isEmpty, "\(name): \(problems.joined(separator: "\n"))")
        }
    }

    @Test func specialRolesAndLookups() throws {
        let byteLevel = try HFTokenizer(path: hfFixtures.appendingPathComponent("bytelevel-bpe.json").path)
        #expect(byteLevel.specialIDs == ["eos": 0, "pad": 1])
        #expect(byteLevel.vocabularySize == 3000)
        #expect(byteLevel.id(of: "<pad>") == 1 && byteLevel.token(of: 1) == "<pad>")
        #expect(byteLevel.token(of: -1) == nil && byteLevel.token(of: 3000) == nil)
        #expect(byteLevel.encode("") == [])
        let unigram = try HFTokenizer(path: hfFixtures.appendingPathComponent("unigram-bytefallback.json").path)
        #expect(unigram.specialIDs == ["unk": 0, "bos": 1, "eos": 2])
        let llama = try HFTokenizer(path: hfFixtures.appendingPathComponent("metaspace-bpe-bytefallback.json").path)
        #expect(llama.specialIDs["unk"] == 0 && llama.specialIDs["bos"] == 1 && llama.specialIDs["eos"] == 2)
        // Special tokens in the text are matched; unknown ids decode to nothing.
        #expect(llama.encode("<s>").first == 1)
        #expect(llama.decode([999_999]) == "")
    }

    /// A tiny hand-written BPE: both merges formats, and the added-token rules.
    func tiny(merges: Any, added: [[String: Any]] = [], normalizer: Any = NSNull()) throws -> HFTokenizer {
        let vocab: [String: Int] = ["a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, " ": 5, "x": 6]
        let json: [String: Any] = [
            "version": "1.0", "added_tokens": added, "normalizer": normalizer, "pre_tokenizer": NSNull(),
            "decoder": NSNull(),
            "model": ["type": "BPE", "vocab": vocab, "merges": merges, "unk_token": NSNull(), "byte_fallback": false],
        ]
        return try HFTokenizer(data: JSONSerialization.data(withJSONObject: json), file: "tiny.json")
    }

    @Test func bothMergesFormats() throws {
        let legacy = try tiny(merges: ["a b", "ab c"])
        let pairs = try tiny(merges: [["a", "b"], ["ab", "c"]])
        for text in ["abc", "abcab", "cab a", "aabbcc"] {
            #expect(legacy.encode(text) == pairs.encode(text))
        }
        #expect(legacy.encode("abcab") == [4, 3])
        // No unk token: unknown characters are dropped, as tokenizers does, and the rest still merge.
        #expect(legacy.encode("azb") == [3])
        // Without a decoder the tokens are joined by spaces.
        #expect(legacy.decode([4, 3]) == "abc ab")
    }

    /// Tokens are bytes: "é" precomposed and decomposed are two tokens, though Swift Strings compare equal.
    @Test func canonicallyEquivalentTokensStayApart() throws {
        let json = #"{"version": "1.0", "model": {"type": "BPE", "vocab": {"\u00e9": 0, "e": 1, "\u0301": 2, "e\u0301": 3}, "merges": [["e", "\u0301"]]}}"#
        let tok = try HFTokenizer(data: Data(json.utf8), file: "nfc.json")
        #expect(tok.encode("\u{e9}e\u{301}") == [0, 3])
        #expect(tok.vocabularySize == 4)
        #expect(tok.id(of: "e\u{301}") == 3 && tok.id(of: "\u{e9}") == 0)
        #expect(tok.token(of: 3).map { Array($0.unicodeScalars) } == ["e", "\u{301}"])
    }

    @Test func addedTokenRules() throws {
        func token(_ content: String, id: Int, _ extra: [String: Any] = [:]) -> [String: Any] {
            var t: [String: Any] = ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                                    "normalized": false, "special": true]
            for (k, v) in extra { t[k] = v }
            return t
        }
        let tok = try tiny(merges: [["a", "b"], ["ab", "c"]], added: [
            token("<x>", id: 7), token("<xy>", id: 8), token("ab", id: 3, ["single_word": true, "special": false]),
            token("[L]", id: 9, ["lstrip": true]), token("[R]", id: 10, ["rstrip": true]),
        ])
        // Longest match first: <xy> over <x>.
        #expect(tok.encode("a<xy>b<x>") == [0, 8, 1, 7])
        // single_word: "ab" inside a word is not the added token (the model still merges it).
        #expect(tok.encode("ab c") == [3, 5, 2])
        #expect(tok.encode("abc") == [4])
        // lstrip/rstrip swallow the surrounding spaces.
        #expect(tok.encode("a  [L]b") == [0, 9, 1])
        #expect(tok.encode("a[R]  b") == [0, 10, 1])
        #expect(tok.vocabularySize == 11)
        #expect(tok.id(of: "<xy>") == 8 && tok.token(of: 9) == "[L]")
    }

    @Test func corruptFilesThrow() throws {
        let good = try Data(contentsOf: hfFixtures.appendingPathComponent("bytelevel-bpe.json"))
        let cases: [(Data, String)] = [
            (Data(), "not valid JSON"),
            (good.prefix(good.count / 2), "not valid JSON"),
            (Data("[1, 2]".utf8), "not a JSON object"),
            (Data("{\"version\": \"1.0\"}".utf8), "missing \"model\""),
            (Data("{\"version\": \"2.0\", \"model\": {}}".utf8), "unknown tokenizer version"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}".utf8), "merges[0]"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}".utf8), "'b' is not in the vocabulary"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}}".utf8), "not a valid id"),
            (Data("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\"]], \"unk_id\": 0}}".utf8), "not [piece, score]"),
            (Data("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]], \"unk_id\": 3}}".utf8), "outside the vocab"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"unk_token\": \"<unk>\"}}".utf8), "'<unk>' is not in the vocabulary"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2000000000}, \"merges\": []}}".utf8), "far beyond"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"decoder\": {\"type\": \"Strip\", \"content\": \" \", \"start\": -1, \"stop\": 0}}".utf8), "must not be negative"),
            (Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AAAA\"}}".utf8), "not a valid SentencePiece charsmap"),
        ]
        for (data, reason) in cases {
            do {
                _ = try HFTokenizer(data: data, file: "bad.json")
                Issue.record("expected an error containing \(reason)")
            } catch let error as FileError {
                #expect(error.path == "bad.json")
                #expect(error.reason.contains(reason), "\(error.reason)")
            }
        }
        #expect(throws: FileError.self) { try HFTokenizer(path: "/nonexistent/tokenizer.json") }
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let data = try Data(contentsOf: hfFixtures.appendingPathComponent("bytelevel-bpe.json"))
        let base = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases: [(String, Any, String)] = [
            ("pre_tokenizer", ["type": "UnicodeScripts"], "pre_tokenizer type 'UnicodeScripts' is not supported"),
            ("normalizer", ["type": "BertNormalizer"], "normalizer type 'BertNormalizer' is not supported"),
            ("decoder", ["type": "WordPiece", "prefix": "##"], "decoder type 'WordPiece' is not supported"),
            ("model", ["type": "WordPiece", "vocab": [:]], "model type 'WordPiece' is not supported"),
            ("pre_tokenizer", ["type": "Split", "pattern": ["Regex": "(?<=a)b"], "behavior": "Isolated", "invert": false],
             "look-behind"),
            ("pre_tokenizer", ["type": "Split", "pattern": ["Regex": "\\p{Han}+"], "behavior": "Isolated", "invert": false],
             "\\p{Han}"),
            ("pre_tokenizer", ["type": "Split", "pattern": ["Regex": " "], "behavior": "Sideways", "invert": false],
             "behavior 'Sideways'"),
            ("pre_tokenizer", ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"], "prepend_scheme 'sometimes'"),
        ]
        for (key, value, reason) in cases {
            var json = base
            json[key] = value
            do {
                _ = try HFTokenizer(data: JSONSerialization.data(withJSONObject: json), file: "t.json")
                Issue.record("expected an error containing \(reason)")
            } catch let error as FileError {
                #expect(error.reason.contains(reason), "\(error.reason)")
            }
        }
        var dropout = base
        var model = try #require(base["model"] as? [String: Any])
        model["dropout"] = 0.1
        dropout["model"] = model
        #expect(throws: FileError.self) { try HFTokenizer(data: JSONSerialization.data(withJSONObject: dropout), file: "t.json") }
    }

    @Test func batchEqualsSingle() throws {
        let tokenizer = try HFTokenizer(path: hfFixtures.appendingPathComponent("bytelevel-bpe.json").path)
        let texts = Array(hfMixedTexts.prefix(400))
        #expect(tokenizer.encodeBatch(texts, threads: 4) == texts.map(tokenizer.encode))
    }
}

/// A tokenizer.json is not trusted: a regular expression nested 100 000 groups deep (which would
/// overflow the parser's and the matcher's stacks) is refused when the file is loaded, naming the
/// file and the limit, with the pattern's start quoted, not all of it.
@Suite("Hostile tokenizer files")
struct HostileTokenizerTests {
    @Test func deeplyNestedRegexIsRefusedAtLoad() throws {
        let data = try Data(contentsOf: hfFixtures.appendingPathComponent("bytelevel-bpe.json"))
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func nested(_ n: Int) -> String { String(repeating: "(", count: n) + "a" + String(repeating: ")", count: n) }
        for (pattern, limit) in [(nested(1_000), "nested deeper than 64"), (nested(100_000), "the limit is 65536"),
                                 (String(repeating: "a", count: 70_000), "the limit is 65536")] {
            json["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false]
            let started = Date()
            #expect { try HFTokenizer(data: try JSONSerialization.data(withJSONObject: json), file: "hostile.json") } throws: { error in
                let message = "\(error)"
                return message.contains("hostile.json") && message.contains(limit) && message.count < 1_000
            }
            #expect(Date().timeIntervalSince(started) < 10)
        }
    }
}
