import Foundation
import KondateSupport
import Testing
import KondateTokenizers
import KondateTestSupport

/// The fixed training input of the committed trainer fixture: the first 150 documents of each
/// example corpus file.
private func trainerCorpus() -> [String] {
    var texts = [String]()
    for name in ["ja", "en", "code"] {
        let url = repositoryRoot.appendingPathComponent("examples/tiny/data/\(name).jsonl")
        texts += hfJSONLines(url).prefix(150).map { ($0["text"] as? String) ?? "" }
    }
    return texts
}

private func trainFixture(threads: Int = 1, splitDigits: Bool = false) throws -> Data {
    var trainer = BPETrainer(vocabularySize: 2000, minFrequency: 2, specialTokens: ["<|endoftext|>", "<pad>"], threads: threads,
                             splitDigits: splitDigits)
    trainer.add(texts: trainerCorpus())
    return try trainer.train().tokenizerJSON()
}

private let trainedFixture = hfFixtures.appendingPathComponent("kondate-trained-bpe.json")
/// The same training with `split_digits` (a `Digits` pre-tokenizer before ByteLevel).
private let digitsFixture = hfFixtures.appendingPathComponent("kondate-trained-bpe-digits.json")

@Suite("BPETrainer", .serialized)
struct BPETrainerTests {
    /// Regenerate with `KONDATE_RECORD_TRAINER_FIXTURE=1 swift test --filter BPETrainer`, then
    /// `python3 scripts/check_trained_tokenizer.py --write-expected` for the ids of `tokenizers`.
    @Test func retrainingReproducesTheCommittedFile() throws {
        let data = try trainFixture()
        if ProcessInfo.processInfo.environment["KONDATE_RECORD_TRAINER_FIXTURE"] == "1" {
            try data.write(to: trainedFixture)
        }
        let committed = try Data(contentsOf: trainedFixture)
        #expect(data == committed, "the trainer no longer reproduces \(trainedFixture.lastPathComponent)")
    }

    @Test func deterministicAcrossRunsThreadsAndBatches() throws {
        let once = try trainFixture()
        #expect(try trainFixture() == once)
        #expect(try trainFixture(threads: 3) == once)
        // Counting in several add calls gives the same words, so the same file.
        var trainer = BPETrainer(vocabularySize: 2000, minFrequency: 2, specialTokens: ["<|endoftext|>", "<pad>"])
        let corpus = trainerCorpus()
        trainer.add(texts: Array(corpus[..<100]))
        trainer.add(texts: Array(corpus[100...]))
        #expect(try trainer.train().tokenizerJSON() == once)
    }

    /// The committed Kondate-trained file encodes mixed.jsonl to the ids the Python `tokenizers`
    /// package gives (written by scripts/check_trained_tokenizer.py).
    @Test func tokenizersAgreesOnTheTrainedFile() throws {
        let tokenizer = try HFTokenizer(path: trainedFixture.path)
        let expected = hfJSONLines(hfFixtures.appendingPathComponent("kondate-trained-bpe.expected.jsonl"))
        try #require(expected.count == hfMixedTexts.count)
        let problems = hfParityMismatches(tokenizer, texts: hfMixedTexts, ids: expected.map { hfInt32s($0["ids"]) },
                                          decoded: expected.map { $0["decoded"] as? String })
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(tokenizer.vocabularySize == 2000)
        #expect(tokenizer.specialIDs == ["eos": 0, "pad": 1])
    }

    /// `split_digits`: every numeric character is its own pre-token in training and in the written file,
    /// which the Python `tokenizers` package loads and encodes to the same ids (the expected file is
    /// written by `python3 scripts/check_trained_tokenizer.py --tokenizer <fixture> --write-expected`).
    @Test func splitDigitsIsolatesNumeralsAndTokenizersAgrees() throws {
        let data = try trainFixture(splitDigits: true)
        if ProcessInfo.processInfo.environment["KONDATE_RECORD_TRAINER_FIXTURE"] == "1" { try data.write(to: digitsFixture) }
        #expect(data == (try Data(contentsOf: digitsFixture)), "the trainer no longer reproduces \(digitsFixture.lastPathComponent)")
        #expect(try trainFixture(threads: 3, splitDigits: true) == data)
        let tokenizer = try HFTokenizer(path: digitsFixture.path)
        // No token holds two ASCII digits (byte-level strings spell them as themselves), and a number
        // encodes one token per digit.
        let model = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let vocab = try #require((model["model"] as? [String: Any])?["vocab"] as? [String: Any])
        #expect(!vocab.keys.contains { $0.filter { ("0"..."9").contains($0) }.count > 1 })
        let plain = try #require(try JSONSerialization.jsonObject(with: try trainFixture()) as? [String: Any])
        #expect(((plain["model"] as? [String: Any])?["vocab"] as? [String: Any])?.keys.contains { $0.filter { ("0"..."9").contains($0) }.count > 1 } == true)
        #expect(tokenizer.encode("2024").count == 4)
        let expected = hfJSONLines(hfFixtures.appendingPathComponent("kondate-trained-bpe-digits.expected.jsonl"))
        try #require(expected.count == hfMixedTexts.count)
        let problems = hfParityMismatches(tokenizer, texts: hfMixedTexts, ids: expected.map { hfInt32s($0["ids"]) },
                                          decoded: expected.map { $0["decoded"] as? String })
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test func smallCorpusMergesAndRoundTrips() throws {
        var trainer = BPETrainer(vocabularySize: 256 + 1 + 5, minFrequency: 1, specialTokens: ["<s>"])
        trainer.add(texts: ["low low low lower lowest", "new newer"])
        let model = try trainer.train()
        #expect(model.vocabulary.count == 262 && model.specialCount == 1)
        // "Ġ" (space) + "l" and "l" + "o" are the most frequent pairs; ties go to the smaller ids.
        #expect(model.merges.first.map { [$0.0, $0.1] } == ["l", "o"])
        let tokenizer = try HFTokenizer(data: model.tokenizerJSON(), file: "trained.json")
        for text in ["low lower", "unseen bytes: 日本語 😀", "<s>low"] {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        }
        #expect(tokenizer.encode("<s>").first == 0)
    }

    @Test func rejectsAVocabularyBelowTheAlphabet() {
        let trainer = BPETrainer(vocabularySize: 100)
        #expect(throws: FileError.self) { try trainer.train() }
    }
}
