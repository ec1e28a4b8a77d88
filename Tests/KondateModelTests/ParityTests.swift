import Foundation
@testable import KondateKernels
@testable import KondateModel
import KondateSupport
import KondateTestSupport
@testable import KondateTraining
import Testing

/// Parity with transformers: fixtures made by scripts/make_parity_fixtures.py (float64 reference from
/// LlamaForCausalLM / GPT2LMHeadModel with random weights). Tolerances: logits and loss 1e-4 absolute,
/// gradients 1e-3 relative (max |Δ| over max |reference| per tensor), 10 AdamW losses 1e-4.
@Suite struct ParityTests {
    static let fixtures = ["llama_mha_untied", "llama_mha_tied", "llama_gqa_untied", "llama_gqa_tied", "gpt2", "gpt2_gelu_exact"]

    struct Fixture {
        let file: SafetensorsFile
        let model: Transformer
        let tokens: [Int32]
        let targets: [Int32]
        let batch: Int
        let seq: Int

        init(_ name: String, precision: MatmulPrecision = .fp32) throws {
            let path = repositoryRoot.path + "/Tests/KondateModelTests/Fixtures/parity/\(name).safetensors"
            file = try SafetensorsFile(path: path)
            let config = try HFModel.config(from: try JSONParser.parse(file.metadata["config"] ?? ""), file: path)
            model = try Transformer(config: config, matmulPrecision: precision)
            for t in model.layout.tensors {
                let values = try file.floats("param." + t.name)
                if t.transposedInHF {
                    HFModel.transpose(values, rows: t.shape[1], cols: t.shape[0], into: model.tensor(t.name)!)
                } else {
                    _ = model.tensor(t.name)!.update(from: values)
                }
            }
            let shape = file.entry("input_ids")!.shape
            batch = shape[0]
            seq = shape[1]
            tokens = try file.floats("input_ids").map { Int32($0) }
            // transformers shifts labels inside the loss: position t predicts labels[t + 1].
            let labels = try file.floats("labels").map { Int32($0) }
            var targets = [Int32](repeating: Kernels.ignoreIndex, count: labels.count)
            for b in 0..<batch {
                for t in 0..<(seq - 1) { targets[b * seq + t] = labels[b * seq + t + 1] }
            }
            self.targets = targets
        }

        func reference(_ name: String) throws -> [Float] { try file.floats(name) }

        /// The reference gradient in Kondate's layout.
        func referenceGradient(_ t: ParameterLayout.Tensor) throws -> [Float] {
            let values = try file.floats("grad." + t.name)
            guard t.transposedInHF else { return values }
            var out = [Float](repeating: 0, count: values.count)
            out.withUnsafeMutableBufferPointer { HFModel.transpose(values, rows: t.shape[1], cols: t.shape[0], into: $0) }
            return out
        }
    }

    @Test(arguments: fixtures)
    func logitsLossAndGradients(name: String) throws {
        let f = try Fixture(name)
        try f.model.forward(tokens: f.tokens, batch: f.batch, seq: f.seq)
        let logits = Array(f.model.logits!)
        let result = try #require(try f.model.forward(tokens: f.tokens, targets: f.targets, batch: f.batch, seq: f.seq))
        #expect(f.model.logits == nil)   // with targets the buffer holds probabilities
        let expectedLoss = try f.reference("loss")[0]
        let expectedLogits = try f.reference("logits")
        #expect(logits.count == expectedLogits.count)
        let logitError = zip(logits, expectedLogits).map { abs($0 - $1) }.max()!
        #expect(logitError < 1e-4, "\(name): max |Δlogit| = \(logitError)")
        #expect(abs(result.loss - expectedLoss) < 1e-4, "\(name): loss \(result.loss) vs \(expectedLoss)")

        f.model.zeroGradients()
        f.model.backward(lossScale: 1 / Float(result.count))
        var worst = (name: "", error: Float(0))
        for t in f.model.layout.tensors {
            let got = Array(f.model.gradient(t.name)!)
            let want = try f.referenceGradient(t)
            let scale = want.map(abs).max()!
            let error = zip(got, want).map { abs($0 - $1) }.max()! / max(scale, 1e-12)
            #expect(error < 1e-3, "\(name): gradient of \(t.name) differs by \(error) (relative to max |g| = \(scale))")
            if error > worst.error { worst = (t.name, error) }
        }
        print("parity \(name): max |Δlogit| \(logitError), |Δloss| \(abs(result.loss - expectedLoss)), worst gradient \(worst.name) \(worst.error)")
    }

    /// bf16 against transformers under `torch.autocast("cpu", bfloat16)` (fixtures of
    /// scripts/make_bf16_parity_fixtures.py). Both round the linear layers' operands to bf16, so neither
    /// matches the float64 reference to fp32 rounding; autocast also returns bf16 from every matmul
    /// (attention's included), where Kondate keeps f32 accumulations and f32 attention. Tolerance: Kondate's
    /// logits must be at least as close to the float64 reference as autocast's (max |Δ|, with 10% slack
    /// for which inputs happen to round which way), within 2 × autocast's own error of autocast's
    /// logits (the two errors are independent roundings of the same size), and its loss within 1e-3.
    @Test(arguments: fixtures)
    func bf16FollowsAutocast(name: String) throws {
        let f = try Fixture(name, precision: .bf16)
        let autocast = try SafetensorsFile(path: repositoryRoot.path + "/Tests/KondateModelTests/Fixtures/parity-bf16/\(name).safetensors")
        try f.model.forward(tokens: f.tokens, batch: f.batch, seq: f.seq)
        let logits = Array(f.model.logits!)
        let result = try #require(try f.model.forward(tokens: f.tokens, targets: f.targets, batch: f.batch, seq: f.seq))
        let reference = try f.reference("logits"), torch = try autocast.floats("logits_autocast")
        try #require(logits.count == reference.count && torch.count == reference.count)
        func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }
        let kondateError = maxDifference(logits, reference), torchError = maxDifference(torch, reference)
        let between = maxDifference(logits, torch)
        #expect(kondateError > 0 && kondateError <= 1.1 * torchError, "\(name): Kondate bf16 \(kondateError), autocast \(torchError) from float64")
        #expect(between <= 2 * torchError, "\(name): Kondate bf16 and autocast differ by \(between)")
        let loss = try f.reference("loss")[0], torchLoss = try autocast.floats("loss_autocast")[0]
        #expect(abs(result.loss - loss) < 1e-3 && abs(result.loss - torchLoss) < 1e-3,
                "\(name): loss \(result.loss), float64 \(loss), autocast \(torchLoss)")
        print("parity bf16 \(name) (\(Kernels.bf16Route.rawValue)): max |Δlogit| from float64 \(kondateError) (autocast \(torchError)), " +
              "from autocast \(between); loss \(result.loss) vs \(loss) (autocast \(torchLoss))")
    }

    @Test(arguments: fixtures)
    func tenAdamWSteps(name: String) throws {
        let f = try Fixture(name)
        let settings = try JSONParser.parse(f.file.metadata["adamw"] ?? "")
        let betas = (settings["betas"]?.arrayValue ?? []).compactMap(\.doubleValue)
        try #require(betas.count == 2)
        let options = TrainingOptions(
            schedule: LearningRateSchedule(kind: .constant, maxLR: try #require(settings["lr"]?.doubleValue), decaySteps: 10),
            adamw: AdamW.Hyperparameters(beta1: Float(betas[0]), beta2: Float(betas[1]), eps: Float(try #require(settings["eps"]?.doubleValue)),
                                         weightDecay: Float(try #require(settings["weight_decay"]?.doubleValue))),
            gradClip: try #require(settings["clip"]?.doubleValue))
        let trainer = Trainer(model: f.model, options: options)
        let expected = try f.reference("adamw_losses")
        let expectedNorms = try f.reference("grad_norms")
        var worst: Double = 0
        for step in 0..<expected.count {
            let report = try trainer.step([MicroBatch(tokens: f.tokens, targets: f.targets, batch: f.batch)], seq: f.seq)
            let error = abs(report.loss - Double(expected[step]))
            worst = max(worst, error)
            #expect(error < 1e-4, "\(name) step \(step): loss \(report.loss) vs \(expected[step])")
            #expect(abs(report.gradNorm - Double(expectedNorms[step])) <= 1e-3 * Double(expectedNorms[step]),
                    "\(name) step \(step): grad norm \(report.gradNorm) vs \(expectedNorms[step])")
        }
        print("parity \(name): 10 AdamW losses, max |Δ| \(worst)")
    }
}

/// Models Kondate trained and exported (scripts/make_roundtrip_fixture.py), loaded by transformers:
/// Kondate reading the same directory must give transformers' logits.
@Suite struct ExportRoundTripTests {
    @Test(arguments: ["llama", "gpt2"])
    func transformersLogitsOfAKondateExport(name: String) throws {
        let dir = repositoryRoot.path + "/Tests/KondateModelTests/Fixtures/roundtrip/\(name)"
        let model = try HFModel.load(directory: dir)
        let expected = try SafetensorsFile(path: dir + "/expected.safetensors")
        let shape = try #require(expected.entry("input_ids")?.shape)
        let tokens = try expected.floats("input_ids").map { Int32($0) }
        try model.forward(tokens: tokens, batch: shape[0], seq: shape[1])
        let reference = try expected.floats("logits")
        let logits = Array(model.logits!)
        #expect(logits.count == reference.count)
        let error = zip(logits, reference).map { abs($0 - $1) }.max()!
        #expect(error < 1e-4, "\(name): max |Δlogit| \(error)")
        // Re-exporting writes the same tensors.
        let out = NSTemporaryDirectory() + "kondate-reexport-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try HFModel.export(model, to: out)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors")) ==
                Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors")))
    }
}

@Suite struct TokenizerExportTests {
    static let byteLevel = #"{"version": "1.0", "added_tokens": [{"id": 0, "content": "<s>", "special": true}], "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}, "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1}, "merges": []}}"#

    /// An exported tokenizer.json adds BOS in Hugging Face tokenizers, keeping the byte-level post-processor.
    @Test func exportAddsTheBeginningOfSequenceTemplate() throws {
        let data = try HFModel.addingBeginningOfSequence(tokenizerJSON: Data(Self.byteLevel.utf8), token: "<s>", id: 0, file: "t.json")
        let json = try JSONParser.parse(String(decoding: data, as: UTF8.self))
        let processor = try #require(json["post_processor"])
        #expect(processor["type"] == .string("Sequence"))
        let processors = try #require(processor["processors"]?.arrayValue)
        #expect(processors.first?["type"] == .string("ByteLevel"))
        let template = try #require(processors.last)
        #expect(template["type"] == .string("TemplateProcessing"))
        #expect(template["single"]?.arrayValue?.first?["SpecialToken"]?["id"] == .string("<s>"))
        #expect(template["single"]?.arrayValue?.last?["Sequence"]?["id"] == .string("A"))
        #expect(template["special_tokens"]?["<s>"]?["ids"] == .array([.int(0)]))
        // Everything else is unchanged, and a file that already has a template is left alone.
        let original = try JSONParser.parse(Self.byteLevel)
        #expect(json["model"] == original["model"] && json["added_tokens"] == original["added_tokens"])
        let single = try HFModel.addingBeginningOfSequence(
            tokenizerJSON: Data(JSON.object([("post_processor", template)]).rendered().utf8), token: "<s>", id: 0, file: "t.json")
        #expect(try JSONParser.parse(String(decoding: single, as: UTF8.self))["post_processor"] == template)
    }
}
