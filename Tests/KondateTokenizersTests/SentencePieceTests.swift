import Foundation
import Testing
import KondateSupport
import KondateTestSupport
@testable import KondateTokenizers

/// Fixtures written by scripts/tokenizer_fixtures_spm.py with the Python `sentencepiece` package; the
/// tests read only the committed files.
private let spmFixtures = repositoryRoot.appendingPathComponent("Tests/KondateTokenizersTests/Fixtures/tokenizers/spm")
private let mixedTexts = repositoryRoot.appendingPathComponent("Tests/KondateTokenizersTests/Fixtures/tokenizers/mixed.jsonl")

private struct ExpectedLine: Decodable {
    var ids: [Int32]
    var decoded: String
}

private struct TextLine: Decodable {
    var text: String
}

private struct ProbeLine: Decodable {
    var text: String
    var ids: [Int32]
    var decoded: String
}

private func readJSONLines<T: Decodable>(_ url: URL, as: T.Type) throws -> [T] {
    let data = try Data(contentsOf: url)
    let decoder = JSONDecoder()
    var rows: [T] = []
    for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
        rows.append(try decoder.decode(T.self, from: Data(line)))
    }
    return rows
}

private func loadTokenizer(_ name: String) throws -> SentencePieceTokenizer {
    try SentencePieceTokenizer(path: spmFixtures.appendingPathComponent("\(name).model").path)
}

private func manifest() throws -> [String: Any] {
    let data = try Data(contentsOf: spmFixtures.appendingPathComponent("manifest.json"))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Shows ids with their pieces, for failure messages.
private func describe(_ ids: [Int32], _ tokenizer: SentencePieceTokenizer) -> String {
    ids.map { "\($0):\(String(reflecting: tokenizer.token(of: $0) ?? "?"))" }.joined(separator: " ")
}

private let fixtureModels = ["llmjp-unigram", "nfkc-unigram", "bpe-bytefallback", "suffix-bpe"]

@Suite("SentencePiece parity with the Python sentencepiece package")
struct SentencePieceTests {
    @Test("encode and decode equal sentencepiece on every fixture text", arguments: fixtureModels)
    func everyFixtureLine(name: String) throws {
        let tokenizer = try loadTokenizer(name)
        let texts = try readJSONLines(mixedTexts, as: TextLine.self).map(\.text)
        let expected = try readJSONLines(spmFixtures.appendingPathComponent("\(name).expected.jsonl"), as: ExpectedLine.self)
        #expect(texts.count == 2130)
        #expect(expected.count == texts.count)
        var encodeMismatches: [String] = []
        var decodeMismatches: [String] = []
        var encodeFailures = 0, decodeFailures = 0
        for (line, (text, want)) in zip(texts, expected).enumerated() {
            let ids = tokenizer.encode(text)
            if ids != want.ids {
                encodeFailures += 1
                if encodeMismatches.count < 5 {
                    encodeMismatches.append("line \(line + 1): \(String(reflecting: text))\n  expected \(describe(want.ids, tokenizer))\n  actual   \(describe(ids, tokenizer))")
                }
            }
            let decoded = tokenizer.decode(want.ids)
            if decoded != want.decoded {
                decodeFailures += 1
                if decodeMismatches.count < 5 {
                    decodeMismatches.append("line \(line + 1): ids \(describe(want.ids, tokenizer))\n  expected \(String(reflecting: want.decoded))\n  actual   \(String(reflecting: decoded))")
                }
            }
        }
        #expect(encodeFailures == 0, "\(name): \(encodeFailures) of \(texts.count) lines encode differently; first ones:\n\(encodeMismatches.joined(separator: "\n"))")
        #expect(decodeFailures == 0, "\(name): \(decodeFailures) of \(texts.count) lines decode differently; first ones:\n\(decodeMismatches.joined(separator: "\n"))")
    }

    @Test("hand-built and custom-rule models: ties, UNUSED pieces, fractional BPE scores, re-centered scores, denormalizer",
          arguments: ["edge-unigram", "edge-bpe", "rules-unigram", "rules-noescape"])
    func probeModels(name: String) throws {
        let tokenizer = try loadTokenizer(name)
        let rows = try readJSONLines(spmFixtures.appendingPathComponent("\(name).expected.jsonl"), as: ProbeLine.self)
        let info = try #require((try manifest()["models"] as? [String: Any])?[name] as? [String: Any])
        #expect(rows.count == info["expected_lines"] as? Int)
        #expect(tokenizer.vocabularySize == info["pieces"] as? Int)
        for (line, row) in rows.enumerated() {
            let ids = tokenizer.encode(row.text)
            #expect(ids == row.ids, "\(name) line \(line + 1): \(String(reflecting: row.text))\n  expected \(describe(row.ids, tokenizer))\n  actual   \(describe(ids, tokenizer))")
            #expect(tokenizer.decode(row.ids) == row.decoded, "\(name) line \(line + 1)")
        }
    }

    @Test("decode equals sentencepiece on random id sequences (byte runs, control and unknown ids)", arguments: fixtureModels)
    func decodeRandomIDs(name: String) throws {
        let tokenizer = try loadTokenizer(name)
        let rows = try readJSONLines(spmFixtures.appendingPathComponent("\(name).decode.jsonl"), as: ExpectedLine.self)
        #expect(rows.count == 400)
        var mismatches: [String] = []
        for (line, row) in rows.enumerated() {
            let decoded = tokenizer.decode(row.ids)
            if decoded != row.decoded, mismatches.count < 5 {
                mismatches.append("line \(line + 1): ids \(describe(row.ids, tokenizer))\n  expected \(String(reflecting: row.decoded))\n  actual   \(String(reflecting: decoded))")
            }
        }
        #expect(mismatches.isEmpty, "\(name):\n\(mismatches.joined(separator: "\n"))")
    }

    @Test("decode(encode(x)) gives x back wherever sentencepiece does", arguments: fixtureModels)
    func roundTrip(name: String) throws {
        let tokenizer = try loadTokenizer(name)
        let texts = try readJSONLines(mixedTexts, as: TextLine.self).map(\.text)
        let expected = try readJSONLines(spmFixtures.appendingPathComponent("\(name).expected.jsonl"), as: ExpectedLine.self)
        let info = try #require((try manifest()["models"] as? [String: Any])?[name] as? [String: Any])
        var roundTrips = 0
        for (text, want) in zip(texts, expected) where want.decoded == text {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text, "\(name): \(String(reflecting: text))")
            roundTrips += 1
        }
        #expect(roundTrips == info["round_trips"] as? Int)
        if name == "llmjp-unigram" || name == "bpe-bytefallback" {
            // Identity normalization with byte fallback loses nothing but what whitespace handling drops.
            #expect(roundTrips >= 2100)
        }
    }

    @Test("special ids, vocabulary size and model options match the manifest", arguments: fixtureModels)
    func specialIDs(name: String) throws {
        let tokenizer = try loadTokenizer(name)
        let info = try #require((try manifest()["models"] as? [String: Any])?[name] as? [String: Any])
        #expect(tokenizer.vocabularySize == info["pieces"] as? Int)
        for role in ["unk", "bos", "eos", "pad"] {
            let id = try #require(info["\(role)_id"] as? Int)
            #expect(tokenizer.specialIDs[role] == (id >= 0 ? Int32(id) : nil), "\(name) \(role)")
        }
        let model = tokenizer.model
        #expect(model.pieces.count == tokenizer.vocabularySize)
        #expect(model.trainerSpec.modelType == (name.contains("bpe") ? .bpe : .unigram))
        #expect(model.normalizerSpec.name == (name == "llmjp-unigram" || name == "bpe-bytefallback" ? "identity" : name == "suffix-bpe" ? "nmt_nfkc_cf" : "nmt_nfkc"))
        #expect(model.normalizerSpec.precompiledCharsmap.isEmpty == (model.normalizerSpec.name == "identity"))
        #expect(model.trainerSpec.byteFallback == name.hasSuffix("bytefallback") || name == "llmjp-unigram")
        #expect(model.trainerSpec.treatWhitespaceAsSuffix == (name == "suffix-bpe"))
    }

    @Test func llmjpModelOptions() throws {
        let tokenizer = try loadTokenizer("llmjp-unigram")
        let model = tokenizer.model
        #expect(model.trainerSpec.splitDigits)
        #expect(model.trainerSpec.userDefinedSymbols == ["\n"])
        #expect(model.trainerSpec.maxSentencepieceLength == 16)
        #expect(model.trainerSpec.vocabSize == 3000)
        #expect(!model.normalizerSpec.removeExtraWhitespaces && model.normalizerSpec.addDummyPrefix && model.normalizerSpec.escapeWhitespaces)
        #expect(tokenizer.specialIDs == ["unk": 0, "bos": 1, "eos": 2])
        #expect(model.pieces[0] == .init(piece: "<unk>", score: 0, type: .unknown))
        #expect(model.pieces[1].type == .control && model.pieces[2].type == .control)
        #expect(model.pieces.filter { $0.type == .byte }.count == 256)
        #expect(model.pieces.filter { $0.type == .userDefined }.map(\.piece) == ["\n"])
        // Every normal piece has a score; the user-defined one has 0.
        #expect(model.pieces.filter { $0.type == .normal }.allSatisfy { $0.score < 0 })
    }

    @Test func customRulesAndDenormalizer() throws {
        let rules = try loadTokenizer("rules-unigram")
        #expect(rules.model.normalizerSpec.name == "user_defined")
        #expect(rules.model.denormalizerSpec?.precompiledCharsmap.isEmpty == false)
        #expect(rules.normalize("AB abc THE") == "▁ab▁abc▁the")
        // The denormalizer rewrites "ab" in decoded text.
        #expect(rules.decode(rules.encode("ab cab")) == "AB cAB")
        let noEscape = try loadTokenizer("rules-noescape")
        #expect(!noEscape.model.normalizerSpec.escapeWhitespaces)
        #expect(noEscape.normalize("  a  b  ") == " a b")
    }

    @Test func tokenAndIDAreInverse() throws {
        for name in fixtureModels {
            let tokenizer = try loadTokenizer(name)
            for id in 0..<Int32(tokenizer.vocabularySize) {
                let token = try #require(tokenizer.token(of: id))
                #expect(tokenizer.id(of: token) == id, "\(name) \(id) \(token)")
            }
            #expect(tokenizer.token(of: -1) == nil)
            #expect(tokenizer.token(of: Int32(tokenizer.vocabularySize)) == nil)
            #expect(tokenizer.id(of: "definitely not a piece ∰") == nil)
            #expect(tokenizer.id(of: "") == nil)
        }
        let llmjp = try loadTokenizer("llmjp-unigram")
        // "\n" (user-defined) is id 3, right after <unk>, <s>, </s>; the 256 byte pieces follow.
        let byteA: Int32 = 4 + 0x41
        #expect(llmjp.id(of: "<0x41>") == byteA)
        #expect(llmjp.id(of: "<s>") == 1)
        #expect(llmjp.id(of: "\n") != nil)
    }

    @Test func knownSegmentations() throws {
        let llmjp = try loadTokenizer("llmjp-unigram")
        #expect(llmjp.encode("") == [])
        #expect(llmjp.decode([]) == "")
        // Digits are single pieces (split_digits) and "\n" is its user-defined piece.
        let digits = llmjp.encode("12345\n6")
        let newline = try #require(llmjp.id(of: "\n"))
        #expect(digits.contains(newline))
        #expect(digits.compactMap { llmjp.token(of: $0) }.allSatisfy { $0.filter(\.isNumber).count <= 1 })
        // An emoji outside the vocabulary falls back to its four UTF-8 bytes.
        let emoji = llmjp.encode("😀")
        #expect(emoji.suffix(4) == [0xF0, 0x9F, 0x98, 0x80].map { Int32(4 + $0) })
        #expect(llmjp.decode(emoji) == "😀")
        // Control pieces decode to nothing; an unknown id reads " ⁇ ".
        #expect(llmjp.decode([1, 2]) == "")
        #expect(llmjp.decode([0]) == " \u{2047} ")
        // A lone continuation byte and a truncated sequence become one U+FFFD per byte.
        #expect(llmjp.decode([4 + 0x80, 4 + 0xE3, 4 + 0x81]) == "\u{FFFD}\u{FFFD}\u{FFFD}")
        // Ids outside the vocabulary are skipped.
        #expect(llmjp.decode([-1, Int32(llmjp.vocabularySize)]) == "")

        let nfkc = try loadTokenizer("nfkc-unigram")
        // A run of unknown characters is one <unk> without byte fallback.
        let unknown = nfkc.encode("𩸽𩸽𩸽")
        #expect(unknown.filter { $0 == 0 }.count == 1)
        // Full-width letters normalize to ASCII under nmt_nfkc.
        #expect(nfkc.encode("ＡＢＣ") == nfkc.encode("ABC"))
        #expect(nfkc.normalize("  ＡＢＣ   ｄｅｆ  ") == "▁ABC▁def")
    }

    @Test func encodeBatchMatchesSequential() throws {
        let tokenizer = try loadTokenizer("llmjp-unigram")
        let texts = Array(try readJSONLines(mixedTexts, as: TextLine.self).map(\.text).prefix(300))
        #expect(tokenizer.encodeBatch(texts, threads: 4) == texts.map(tokenizer.encode))
    }

    @Test func refusesFilesThatAreNotModels() throws {
        func error(_ bytes: [UInt8]) -> String? {
            do {
                _ = try SentencePieceTokenizer(data: Data(bytes), file: "bad.model")
                return nil
            } catch let e as FileError {
                #expect(e.path == "bad.model")
                return e.reason
            } catch {
                return "unexpected error type \(error)"
            }
        }
        #expect(error([])?.contains("empty") == true)
        #expect(error(Array("{\"version\": \"1.0\", \"model\": {}}".utf8))?.contains("JSON") == true)
        #expect(error(Array("hello world, this is text".utf8)) != nil)
        // A valid protobuf without an unknown piece.
        #expect(error([0x0A, 0x05, 0x0A, 0x03, 0x61, 0x62, 0x63])?.contains("unk") == true)
        // A length running past the end.
        #expect(error([0x0A, 0x7F, 0x0A])?.contains("truncated") == true)
        // An over-long varint.
        #expect(error([0x08] + [UInt8](repeating: 0xFF, count: 11)) != nil)
        #expect(throws: FileError.self) { try SentencePieceTokenizer(path: "/nonexistent/dir/x.model") }
    }

    @Test func truncatedAndCorruptedModelsThrowOrLoadButNeverCrash() throws {
        var generator = SplitMix64(seed: 42)
        for name in fixtureModels {
            let data = try Data(contentsOf: spmFixtures.appendingPathComponent("\(name).model"))
            let bytes = [UInt8](data)
            // Truncations: every one of the first 32 lengths, then spread over the file.
            var lengths = Array(0..<min(32, bytes.count))
            for _ in 0..<48 { lengths.append(Int(generator.next() % UInt64(bytes.count))) }
            var thrown = 0
            for length in lengths {
                do {
                    let t = try SentencePieceTokenizer(data: Data(bytes[0..<length]), file: name)
                    _ = t.decode(t.encode("truncated 日本語 text 123"))
                } catch is FileError {
                    thrown += 1
                }
            }
            #expect(thrown > lengths.count / 2, "\(name): most truncations must be refused")
            // Random byte corruption anywhere (pieces, specs, the charsmap's double array).
            for _ in 0..<48 {
                var corrupted = bytes
                for _ in 0..<(1 + Int(generator.next() % 8)) {
                    corrupted[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
                if let t = try? SentencePieceTokenizer(data: Data(corrupted), file: name) {
                    _ = t.decode(t.encode("  ＡＢＣ　全角 😀 text\twith\ncontrols \u{1} 123 "))
                    _ = t.decode((0..<40).map { _ in Int32(truncatingIfNeeded: generator.next() % UInt64(t.vocabularySize + 5)) })
                }
            }
        }
        // Garbage that is not a model at all.
        for _ in 0..<200 {
            let garbage = (0..<Int(generator.next() % 400)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            #expect(throws: FileError.self) { try SentencePieceTokenizer(data: Data(garbage), file: "garbage") }
        }
    }

    @Test func brokenCharsmapIsRefused() throws {
        var model = try loadTokenizer("nfkc-unigram").model
        let good = model.normalizerSpec.precompiledCharsmap
        let trieSize = Int(good[0]) | Int(good[1]) << 8 | Int(good[2]) << 16 | Int(good[3]) << 24
        #expect(refuses(model) == nil)
        model.normalizerSpec.precompiledCharsmap = Array(good.prefix(3))
        #expect(refuses(model)?.contains("precompiled_charsmap") == true)
        // A trie size larger than the blob.
        model.normalizerSpec.precompiledCharsmap = [0xFF, 0xFF, 0, 0] + Array(good.dropFirst(4).prefix(100))
        #expect(refuses(model)?.contains("precompiled_charsmap") == true)
        // Outputs without their NUL terminators.
        model.normalizerSpec.precompiledCharsmap = Array(good.prefix(4 + trieSize)) + good.dropFirst(4 + trieSize).map { $0 == 0 ? 1 : $0 }
        #expect(refuses(model)?.contains("NUL") == true)
        // A double array whose units point outside it.
        model.normalizerSpec.precompiledCharsmap = Array(good.prefix(4)) + [UInt8](repeating: 0xFF, count: trieSize) + good.dropFirst(4 + trieSize)
        #expect(refuses(model) != nil)
    }

    @Test func modelChecksMirrorSentencePiece() throws {
        let base = try loadTokenizer("llmjp-unigram").model
        #expect(refuses(base) == nil)
        var model = base
        model.pieces[5].piece = model.pieces[6].piece
        #expect(refuses(model)?.contains("already defined") == true)
        model = base
        model.pieces[10].piece = ""
        #expect(refuses(model)?.contains("empty") == true)
        model = base
        model.pieces[0].type = .normal
        #expect(refuses(model)?.contains("unk is not defined") == true)
        model = base
        model.pieces[1].type = .unknown
        #expect(refuses(model)?.contains("unk is already defined") == true)
        model = base
        model.pieces.removeAll { $0.piece == "<0x41>" }
        #expect(refuses(model)?.contains("256 byte pieces") == true)
        model = base
        model.pieces[4 + 0x41].piece = "<0x4g>"
        #expect(refuses(model)?.contains("invalid") == true)
        model = base
        model.trainerSpec.modelType = .word
        #expect(refuses(model)?.contains("unsupported") == true)
        model = base
        model.trainerSpec.modelType = .char
        #expect(refuses(model)?.contains("unsupported") == true)
        model = base
        model.trainerSpec.byteFallback = false
        #expect(refuses(model)?.contains("byte_fallback is false") == true)
        model = base
        model.pieces[20].piece = "a\u{0}b"
        #expect(refuses(model)?.contains("NUL") == true)
    }
}

/// The reason a model is refused, or nil when it loads.
private func refuses(_ model: SentencePieceModel) -> String? {
    do {
        _ = try SentencePieceTokenizer(model: model, file: "edited.model")
        return nil
    } catch let error as FileError {
        return error.reason
    } catch {
        return "unexpected error \(error)"
    }
}
