import Foundation
@testable import KondateModel
import KondateSupport
import KondateTestSupport
@testable import KondateTraining
import Testing

/// Training loop, checkpoints, Hugging Face directories and decoding.
@Suite struct RuntimeTests {
    static let llama = ModelConfig(arch: .llama, vocabSize: 64, hidden: 32, ffn: 80, layers: 2, heads: 4, kvHeads: 2, maxPositions: 32)
    static let gpt2 = ModelConfig(arch: .gpt2, vocabSize: 64, hidden: 32, ffn: 128, layers: 2, heads: 4, maxPositions: 32)

    static func batch(_ seed: UInt64, rows: Int, seq: Int, vocab: Int) -> MicroBatch {
        var rng = SplitMix64(seed: seed)
        let samples = (0..<rows).map { _ in (0...seq).map { _ in Int32(rng.below(UInt64(vocab))) } }
        return MicroBatch(samples: samples)
    }

    static func options(steps: Int) -> TrainingOptions {
        TrainingOptions(schedule: LearningRateSchedule(kind: .cosine, maxLR: 3e-3, minLR: 3e-4, warmupSteps: 2, decaySteps: steps),
                        adamw: AdamW.Hyperparameters(), gradClip: 1.0)
    }

    static func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "kondate-runtime-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func initialisationIsDeterministicAndScaled() throws {
        let a = try Transformer(config: Self.llama), b = try Transformer(config: Self.llama)
        a.initialize(seed: 7)
        b.initialize(seed: 7)
        #expect(Array(a.parameters) == Array(b.parameters))
        b.initialize(seed: 8)
        #expect(Array(a.parameters) != Array(b.parameters))
        func std(_ name: String) -> Double {
            let v = Array(a.tensor(name)!).map(Double.init)
            return (v.map { $0 * $0 }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        #expect(abs(std("model.layers.0.mlp.up_proj.weight") - 0.02) < 0.002)
        #expect(abs(std("model.layers.0.mlp.down_proj.weight") - 0.02 / 2) < 0.001)   // 0.02 / √(2·2)
        #expect(Array(a.tensor("model.norm.weight")!).allSatisfy { $0 == 1 })
    }

    @Test func scheduleShapes() {
        let cosine = LearningRateSchedule(kind: .cosine, maxLR: 1, minLR: 0.1, warmupSteps: 10, decaySteps: 110)
        #expect(cosine.lr(at: 0) == 0.1)
        #expect(cosine.lr(at: 9) == 1)
        #expect(abs(cosine.lr(at: 60) - 0.55) < 1e-12)
        #expect(abs(cosine.lr(at: 110) - 0.1) < 1e-12)
        #expect(abs(cosine.lr(at: 500) - 0.1) < 1e-12)
        let linear = LearningRateSchedule(kind: .linear, maxLR: 1, minLR: 0, warmupSteps: 0, decaySteps: 100)
        #expect(abs(linear.lr(at: 25) - 0.75) < 1e-12)
        let constant = LearningRateSchedule(kind: .constant, maxLR: 0.5, warmupSteps: 4, decaySteps: 100)
        #expect(constant.lr(at: 1) == 0.25 && constant.lr(at: 50) == 0.5)
    }

    @Test func accumulationMatchesOneBigBatch() throws {
        let whole = Self.batch(1, rows: 4, seq: 8, vocab: 64)
        let halves = [MicroBatch(tokens: Array(whole.tokens[0..<16]), targets: Array(whole.targets[0..<16]), batch: 2),
                      MicroBatch(tokens: Array(whole.tokens[16...]), targets: Array(whole.targets[16...]), batch: 2)]
        var losses: [[Double]] = []
        var weights: [[Float]] = []
        for batches in [[whole], halves] {
            let model = try Transformer(config: Self.llama)
            model.initialize(seed: 3)
            let trainer = Trainer(model: model, options: Self.options(steps: 5))
            losses.append(try (0..<3).map { _ in try trainer.step(batches, seq: 8).loss })
            weights.append(Array(model.parameters))
        }
        for (a, b) in zip(losses[0], losses[1]) { #expect(abs(a - b) < 1e-5) }
        #expect(zip(weights[0], weights[1]).map { abs($0 - $1) }.max()! < 1e-5)
    }

    @Test func nanPolicy() throws {
        let model = try Transformer(config: Self.llama)
        model.initialize(seed: 1)
        model.tensor("model.norm.weight")![0] = .nan
        let stop = Trainer(model: model, options: Self.options(steps: 5))
        #expect {
            try stop.step([Self.batch(2, rows: 2, seq: 8, vocab: 64)], seq: 8)
        } throws: { error in
            "\(error)".contains("not finite") && "\(error)".contains("nan_policy")
        }
        var options = Self.options(steps: 5)
        options.nanPolicy = .skip
        let skip = Trainer(model: model, options: options)
        let before = Array(model.parameters)
        let report = try skip.step([Self.batch(2, rows: 2, seq: 8, vocab: 64)], seq: 8)
        #expect(report.skipped && skip.step == 1 && skip.optimizer.step == 0)
        #expect(Array(model.parameters).elementsEqual(before) { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    @Test func badTokensAndLengthsAreRefused() throws {
        let model = try Transformer(config: Self.gpt2)
        #expect(throws: ModelError.tokenOutOfRange(token: 64, position: 1, vocabSize: 64)) {
            try model.forward(tokens: [1, 64], batch: 1, seq: 2)
        }
        #expect(throws: ModelError.sequenceTooLong(length: 33, limit: 32)) {
            try model.forward(tokens: [Int32](repeating: 0, count: 33), batch: 1, seq: 33)
        }
        #expect(throws: ModelError.self) { try Transformer(config: ModelConfig(arch: .llama, vocabSize: 8, hidden: 30, ffn: 8, layers: 1, heads: 4, maxPositions: 8)) }
    }

    /// Interrupted at step k and resumed from the checkpoint, a run ends bitwise where an
    /// uninterrupted run ends.
    @Test(arguments: [Self.llama, Self.gpt2])
    func resumeIsBitExact(config: ModelConfig) throws {
        let root = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let batches = (0..<6).map { Self.batch(UInt64(100 + $0), rows: 2, seq: 8, vocab: 64) }
        func run(_ trainer: Trainer, _ range: Range<Int>) throws { for s in range { _ = try trainer.step([batches[s]], seq: 8) } }

        let straight = try Transformer(config: config)
        straight.initialize(seed: 11)
        let straightTrainer = Trainer(model: straight, options: Self.options(steps: 6))
        try run(straightTrainer, 0..<6)

        let first = try Transformer(config: config)
        first.initialize(seed: 11)
        let trainer = Trainer(model: first, options: Self.options(steps: 6))
        try run(trainer, 0..<3)
        try Checkpoint.save(trainer, extra: .object([("loader_step", .int(3))]), root: root, keep: 2)

        let resumed = try Transformer(config: config)
        let second = Trainer(model: resumed, options: Self.options(steps: 6))
        let state = try Checkpoint.restore(try #require(Checkpoint.list(root).last).path, into: second)
        #expect(state.extra["loader_step"]?.intValue == 3 && second.step == 3)
        try run(second, 3..<6)
        #expect(Array(resumed.parameters) == Array(straight.parameters))
        #expect(Array(second.optimizer.m) == Array(straightTrainer.optimizer.m))
        #expect(Array(second.optimizer.v) == Array(straightTrainer.optimizer.v))
    }

    @Test func checkpointsAreVerifiedAndRotated() throws {
        let root = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let model = try Transformer(config: Self.llama)
        model.initialize(seed: 5)
        let trainer = Trainer(model: model, options: Self.options(steps: 10))
        for _ in 0..<4 {
            _ = try trainer.step([Self.batch(9, rows: 2, seq: 8, vocab: 64)], seq: 8)
            try Checkpoint.save(trainer, root: root, keep: 2)
        }
        #expect(try Checkpoint.list(root).map(\.step) == [3, 4])
        // An interrupted write (a .tmp directory) is not a checkpoint.
        try FileManager.default.createDirectory(atPath: root + "/step_00000005.tmp", withIntermediateDirectories: false)
        #expect(try Checkpoint.list(root).map(\.step) == [3, 4])

        // One flipped byte in any file is refused, naming the file.
        let latest = try #require(Checkpoint.list(root).last).path
        for file in Checkpoint.files {
            let path = latest + "/" + file
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let fresh = Trainer(model: try Transformer(config: Self.llama), options: Self.options(steps: 10))
            #expect {
                try Checkpoint.restore(latest, into: fresh)
            } throws: { error in
                "\(error)".contains(file) && "\(error)".contains("checksum mismatch")
            }
            bytes[bytes.count / 2] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        try Checkpoint.verify(latest)
        // A checkpoint of another shape is refused.
        var other = Self.llama
        other.layers = 1
        #expect(throws: FileError.self) {
            try Checkpoint.restore(latest, into: Trainer(model: try Transformer(config: other), options: Self.options(steps: 10)))
        }
    }

    @Test(arguments: [Self.llama, Self.gpt2])
    func huggingFaceDirectoryRoundTrip(config: ModelConfig) throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Transformer(config: config)
        model.initialize(seed: 21)
        try HFModel.export(model, to: dir, extras: HFModel.Extras(bosTokenID: 1, eosTokenID: 2))
        for f in ["config.json", "generation_config.json", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f))
        }
        let file = try SafetensorsFile(path: dir + "/model.safetensors")
        if config.arch == .gpt2 {
            #expect(file.entry("transformer.h.0.attn.c_attn.weight")?.shape == [32, 96])   // Conv1D (in, out)
        }
        let loaded = try HFModel.load(directory: dir)
        #expect(loaded.config == model.config)
        #expect(Array(loaded.parameters) == Array(model.parameters))

        // Damaged directories are refused with the reason.
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        #expect { try HFModel.load(directory: dir) } throws: { "\($0)".contains("no model.safetensors") }
        try Data("{\"model_type\": \"mistral\"}".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect { try HFModel.load(directory: dir) } throws: { "\($0)".contains("model_type 'mistral'") }
    }

    /// A config.json from elsewhere is not trusted: sizes beyond the schema's caps, more parameters than
    /// the weight files can hold, and token ids outside 32 bits are refused with the file named, at
    /// once and before anything is allocated.
    @Test func hostileConfigsAreRefusedBeforeAllocating() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try HFModel.export(try Transformer(config: Self.llama), to: dir)
        let path = dir + "/config.json"
        // Without head_dim, which transformers derives (so hidden_size alone can be made hostile).
        guard case var .object(exported) = try JSONParser.parse(String(contentsOfFile: path, encoding: .utf8)) else { return }
        exported.removeAll { $0.0 == "head_dim" }
        let original = JSON.object(exported)
        func withConfig(_ key: String, _ value: String) throws {
            guard case var .object(fields) = original else { return }
            fields.removeAll { $0.0 == key }
            fields.append((key, try JSONParser.parse(value)))
            try Data(JSON.object(fields).rendered().utf8).write(to: URL(fileURLWithPath: path))
        }
        let started = Date()
        for (key, value, message) in [("hidden_size", "1e12", "hidden: 1000000000000 is beyond the limit"),
                                      ("num_hidden_layers", "1e9", "layers: 1000000000 is beyond the limit"),
                                      ("vocab_size", "4294967296", "vocab_size"),
                                      ("num_hidden_layers", "5000", "more than the"),
                                      ("intermediate_size", "4194304", "more than the")] {
            try withConfig(key, value)
            #expect { try HFModel.load(directory: dir) } throws: { "\($0)".contains(path) && "\($0)".contains(message) }
            try Data(original.rendered().utf8).write(to: URL(fileURLWithPath: path))
        }
        #expect(Date().timeIntervalSince(started) < 10)
        try? FileManager.default.removeItem(atPath: dir + "/generation_config.json")
        try withConfig("eos_token_id", "10000000000")
        #expect { try HFModel.endOfSequenceID(directory: dir) } throws: { "\($0)".contains("'eos_token_id' 10000000000 is not a token id") }
        try withConfig("eos_token_id", "[-3]")
        #expect { try HFModel.endOfSequenceID(directory: dir) } throws: { "\($0)".contains("config.json") }
    }

    @Test func missingAndUnexpectedTensorsAreNamed() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Transformer(config: Self.llama)
        try HFModel.export(model, to: dir)
        let tensors = model.layout.tensors.filter { $0.name != "model.norm.weight" }.map { ($0.name, $0.shape, [Float](repeating: 0, count: $0.count)) }
        try SafetensorsFile.write(tensors, to: dir + "/model.safetensors")
        #expect { try HFModel.load(directory: dir) } throws: { "\($0)".contains("missing 1 tensor(s): model.norm.weight") }
        try SafetensorsFile.write(tensors + [("model.extra.weight", [2], [0, 0]), ("model.norm.weight", [32], [Float](repeating: 1, count: 32))],
                                  to: dir + "/model.safetensors")
        #expect { try HFModel.load(directory: dir) } throws: { "\($0)".contains("unexpected tensor 'model.extra.weight'") }
    }

    /// Decoding token by token with the cache gives the logits of the full forward pass.
    @Test(arguments: [Self.llama, Self.gpt2])
    func kvCacheMatchesFullForward(config: ModelConfig) throws {
        let model = try Transformer(config: config)
        model.initialize(seed: 4)
        let tokens: [Int32] = [3, 17, 42, 5, 9, 63, 0, 21, 8, 8]
        try model.forward(tokens: tokens, batch: 1, seq: tokens.count)
        let full = Array(model.logits!)
        let session = DecodingSession(model: model)
        var worst: Float = 0
        for (i, token) in tokens.enumerated() {
            let step = Array(try session.append(token))
            let reference = full[(i * config.vocabSize)..<((i + 1) * config.vocabSize)]
            worst = max(worst, zip(step, reference).map { abs($0 - $1) }.max()!)
        }
        #expect(worst < 1e-5)
        #expect(throws: ModelError.self) {
            let s = DecodingSession(model: model, capacity: 2)
            for t in [Int32(1), 2, 3] { try s.append(t) }
        }
    }

    @Test func samplerIsSeededAndRespectsTopP() {
        let logits: [Float] = [2, 1, 0.5, -1, 3]
        logits.withUnsafeBufferPointer { l in
            var greedy = Sampler()
            #expect(greedy.next(l) == 4)
            var a = Sampler(temperature: 1, topP: 1, seed: 9), b = Sampler(temperature: 1, topP: 1, seed: 9)
            let drawsA = (0..<50).map { _ in a.next(l) }, drawsB = (0..<50).map { _ in b.next(l) }
            #expect(drawsA == drawsB && Set(drawsA).count > 1)
            var nucleus = Sampler(temperature: 1, topP: 0.5, seed: 1)
            // p(4) ≈ 0.61 ≥ 0.5: the nucleus is the single most likely token.
            #expect((0..<50).allSatisfy { _ in nucleus.next(l) == 4 })
        }
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)) ==
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var streamed = SHA256()
        for _ in 0..<1000 { streamed.update(Data(repeating: UInt8(ascii: "a"), count: 1000)) }
        #expect(streamed.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")   // 10⁶ × 'a'
    }
}
