import Foundation
import KondateKernels
import KondateSupport


/// Hugging Face model directories: `config.json` for `LlamaForCausalLM` or `GPT2LMHeadModel`,
/// `model.safetensors` (or shards with `model.safetensors.index.json`), `generation_config.json`
/// and the tokenizer files. Directories Kondate writes load in transformers and vLLM; directories
/// written by transformers load here.
public enum HFModel {
    /// Token ids and files that travel with an exported model.
    public struct Extras: Sendable {
        public var bosTokenID: Int?
        public var eosTokenID: Int?
        public var padTokenID: Int?
        /// Special-token strings for `tokenizer_config.json` (keys bos, eos, unk, pad).
        public var specialTokens: [String: String]
        /// A tokenizer.json or SentencePiece .model to copy.
        public var tokenizerFile: String?
        public init(bosTokenID: Int? = nil, eosTokenID: Int? = nil, padTokenID: Int? = nil, specialTokens: [String: String] = [:],
                    tokenizerFile: String? = nil) {
            self.bosTokenID = bosTokenID
            self.eosTokenID = eosTokenID
            self.padTokenID = padTokenID
            self.specialTokens = specialTokens
            self.tokenizerFile = tokenizerFile
        }
    }

    // MARK: config.json

    public static func configJSON(_ c: ModelConfig, extras: Extras = Extras()) -> JSON {
        var fields: [(String, JSON)]
        switch c.arch {
        case .llama:
            fields = [
                ("architectures", .array([.string("LlamaForCausalLM")])), ("model_type", .string("llama")),
                ("vocab_size", .int(c.vocabSize)), ("hidden_size", .int(c.hidden)), ("intermediate_size", .int(c.ffn)),
                ("num_hidden_layers", .int(c.layers)), ("num_attention_heads", .int(c.heads)), ("num_key_value_heads", .int(c.kvHeads)),
                ("head_dim", .int(c.headDim)), ("max_position_embeddings", .int(c.maxPositions)), ("rms_norm_eps", .double(Double(c.normEps))),
                ("rope_theta", .double(Double(c.ropeTheta))), ("rope_scaling", .null), ("hidden_act", .string("silu")),
                ("attention_bias", .bool(false)), ("mlp_bias", .bool(false)), ("attention_dropout", .double(0)),
                ("initializer_range", .double(Double(c.initStd))), ("tie_word_embeddings", .bool(c.tieEmbeddings)),
            ]
        case .gpt2:
            fields = [
                ("architectures", .array([.string("GPT2LMHeadModel")])), ("model_type", .string("gpt2")),
                ("vocab_size", .int(c.vocabSize)), ("n_embd", .int(c.hidden)), ("n_inner", .int(c.ffn)), ("n_layer", .int(c.layers)),
                ("n_head", .int(c.heads)), ("n_positions", .int(c.maxPositions)), ("n_ctx", .int(c.maxPositions)),
                ("activation_function", .string(c.activation == .gelu ? "gelu" : "gelu_new")),
                ("layer_norm_epsilon", .double(Double(c.normEps))), ("resid_pdrop", .double(0)), ("embd_pdrop", .double(0)),
                ("attn_pdrop", .double(0)), ("scale_attn_weights", .bool(true)), ("scale_attn_by_inverse_layer_idx", .bool(false)),
                ("reorder_and_upcast_attn", .bool(false)), ("initializer_range", .double(Double(c.initStd))),
                ("tie_word_embeddings", .bool(c.tieEmbeddings)),
            ]
        }
        if let bos = extras.bosTokenID { fields.append(("bos_token_id", .int(bos))) }
        if let eos = extras.eosTokenID { fields.append(("eos_token_id", .int(eos))) }
        if let pad = extras.padTokenID { fields.append(("pad_token_id", .int(pad))) }
        fields.append(("torch_dtype", .string("float32")))
        return .object(fields.sorted { $0.0 < $1.0 })
    }

    /// Reads a model configuration from a `config.json`, refusing what the runtime cannot run
    /// (rope scaling, biases on LLaMA, other activations) with the field named.
    public static func config(from json: JSON, file: String) throws -> ModelConfig {
        func fail(_ why: String) -> FileError { FileError(.model, file, why) }
        func int(_ key: String) throws -> Int {
            guard let v = json[key]?.intValue else { throw fail("'\(key)' is missing or not an integer") }
            return v
        }
        func double(_ key: String, default value: Double) throws -> Double {
            guard let v = json[key], v != .null else { return value }
            guard let d = v.doubleValue else { throw fail("'\(key)' is not a number") }
            return d
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let v = json[key], v != .null else { return value }
            guard let b = v.boolValue else { throw fail("'\(key)' is not true/false") }
            return b
        }
        let type = json["model_type"]?.stringValue ?? ""
        let config: ModelConfig
        switch type {
        case "llama":
            let act = json["hidden_act"]?.stringValue ?? "silu"
            guard act == "silu" else { throw fail("hidden_act '\(act)' is not supported (LLaMA uses silu)") }
            if try bool("attention_bias", default: false) { throw fail("attention_bias: true is not supported") }
            if try bool("mlp_bias", default: false) { throw fail("mlp_bias: true is not supported") }
            if let s = json["rope_scaling"], s != .null { throw fail("rope_scaling is not supported (found \(s.rendered(pretty: false)))") }
            let heads = try int("num_attention_heads"), hidden = try int("hidden_size")
            if let hd = json["head_dim"]?.intValue, hd != hidden / max(heads, 1) {
                throw fail("head_dim \(hd) differs from hidden_size / num_attention_heads = \(hidden / max(heads, 1)); not supported")
            }
            config = ModelConfig(arch: .llama, vocabSize: try int("vocab_size"), hidden: hidden, ffn: try int("intermediate_size"),
                                 layers: try int("num_hidden_layers"), heads: heads, kvHeads: json["num_key_value_heads"]?.intValue ?? heads,
                                 maxPositions: try int("max_position_embeddings"), normEps: Float(try double("rms_norm_eps", default: 1e-6)),
                                 ropeTheta: Float(try double("rope_theta", default: 10_000)),
                                 tieEmbeddings: try bool("tie_word_embeddings", default: false), activation: .swiglu,
                                 initStd: Float(try double("initializer_range", default: 0.02)))
        case "gpt2":
            let act = json["activation_function"]?.stringValue ?? "gelu_new"
            let activation: ModelConfig.Activation
            switch act {
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .geluTanh
            case "gelu": activation = .gelu
            default: throw fail("activation_function '\(act)' is not supported (gelu, gelu_new)")
            }
            if try bool("scale_attn_by_inverse_layer_idx", default: false) { throw fail("scale_attn_by_inverse_layer_idx: true is not supported") }
            if !(try bool("scale_attn_weights", default: true)) { throw fail("scale_attn_weights: false is not supported") }
            let hidden = try int("n_embd")
            config = ModelConfig(arch: .gpt2, vocabSize: try int("vocab_size"), hidden: hidden,
                                 ffn: json["n_inner"]?.intValue ?? 4 * hidden, layers: try int("n_layer"), heads: try int("n_head"),
                                 maxPositions: try int("n_positions"), normEps: Float(try double("layer_norm_epsilon", default: 1e-5)),
                                 tieEmbeddings: try bool("tie_word_embeddings", default: true), activation: activation,
                                 initStd: Float(try double("initializer_range", default: 0.02)))
        default:
            throw fail("model_type '\(type)' is not supported; Kondate runs 'llama' (LlamaForCausalLM) and 'gpt2' (GPT2LMHeadModel)")
        }
        do { try config.validate() } catch { throw fail(error.description) }
        return config
    }

    // MARK: Import

    /// The end-of-sequence id of a model directory: `eos_token_id` of generation_config.json, else of
    /// config.json (the first when it is a list).
    public static func endOfSequenceID(directory: String) throws -> Int32? { try tokenID("eos_token_id", directory: directory) }

    /// The beginning-of-sequence id of a model directory: `bos_token_id` of generation_config.json, else
    /// of config.json.
    public static func beginningOfSequenceID(directory: String) throws -> Int32? { try tokenID("bos_token_id", directory: directory) }

    /// A token id a model directory's JSON names; an id outside the 32-bit range (no vocabulary is that
    /// large) is an error naming the file.
    static func tokenID(_ key: String, directory: String) throws -> Int32? {
        for file in ["generation_config.json", "config.json"] {
            guard let json = readJSON(directory, file), let value = json[key] else { continue }
            guard let id = value.intValue ?? value.arrayValue?.first?.intValue else { continue }
            guard let small = Int32(exactly: id), small >= 0 else {
                throw FileError(.model, (directory as NSString).appendingPathComponent(file), "'\(key)' \(id) is not a token id (0 to \(Int32.max))")
            }
            return small
        }
        return nil
    }

    /// Whether the model's tokenizer starts encoded text with its BOS token: `add_bos_token` of
    /// tokenizer_config.json; when absent, true for a SentencePiece model without tokenizer.json
    /// (transformers' `LlamaTokenizer` default) and false otherwise.
    public static func addsBeginningOfSequence(directory: String) -> Bool {
        if let add = readJSON(directory, "tokenizer_config.json")?["add_bos_token"]?.boolValue { return add }
        let fm = FileManager.default
        return fm.fileExists(atPath: (directory as NSString).appendingPathComponent("tokenizer.model")) &&
            !fm.fileExists(atPath: (directory as NSString).appendingPathComponent("tokenizer.json"))
    }

    private static func readJSON(_ directory: String, _ file: String) -> JSON? {
        guard let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(file)) else { return nil }
        return try? JSONParser.parse(String(decoding: data, as: UTF8.self))
    }

    /// Loads a model directory written by transformers or by Kondate.
    public static func load(directory: String, matmulPrecision: MatmulPrecision = .fp32, recomputeLayers: Bool = false) throws -> Transformer {
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw FileError(.model, directory, "no config.json; is this a Hugging Face model directory?")
        }
        let json: JSON
        do { json = try JSONParser.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw FileError(.model, configPath, "invalid JSON: \(error.description)")
        }
        let config = try config(from: json, file: configPath)
        let files = try weightFiles(directory)
        try checkWeightsCanHold(config, files: files, configPath: configPath)
        let model = try Transformer(config: config, matmulPrecision: matmulPrecision, recomputeLayers: recomputeLayers)
        try loadWeights(into: model, files: files)
        return model
    }

    /// Refuses a config.json that describes more parameters than its weight files can hold (2 bytes each
    /// at least), before the model is allocated: a damaged or hostile config cannot ask for terabytes.
    static func checkWeightsCanHold(_ config: ModelConfig, files: [String], configPath: String) throws {
        let parameters = ParameterLayout(config).count
        var bytes = 0
        for file in files {
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
            bytes += size ?? 0
        }
        let (needed, overflow) = parameters.multipliedReportingOverflow(by: 2)
        if overflow || needed > bytes {
            throw FileError(.model, configPath, "describes \(parameters) parameters, more than the \(bytes) bytes of its safetensors files can hold; " +
                            "the config does not belong to these weights")
        }
    }

    /// The safetensors files of a directory: the shards of `model.safetensors.index.json`, or
    /// `model.safetensors`.
    public static func weightFiles(_ directory: String) throws -> [String] {
        let dir = directory as NSString
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        if let data = FileManager.default.contents(atPath: index) {
            guard let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), case let .object(map)? = json["weight_map"] else {
                throw FileError(.model, index, "invalid index: expected {\"weight_map\": {tensor: file}}")
            }
            var files: [String] = []
            for (_, v) in map {
                guard let f = v.stringValue, !f.contains("/") else { throw FileError(.model, index, "weight_map entries must be file names in the directory") }
                if !files.contains(f) { files.append(f) }
            }
            return files.sorted().map { dir.appendingPathComponent($0) }
        }
        let single = dir.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: single) else {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("pytorch_model.bin")) {
                throw FileError(.model, directory, "only pytorch_model.bin found; Kondate reads safetensors (convert with transformers' save_pretrained(safe_serialization=True))")
            }
            throw FileError(.model, directory, "no model.safetensors or model.safetensors.index.json")
        }
        return [single]
    }

    /// Tensors a loader may meet and ignore: rotary caches and GPT-2's attention-mask buffers.
    static func isIgnorable(_ name: String) -> Bool {
        name.hasSuffix("rotary_emb.inv_freq") || name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias")
    }

    /// Fills the model's parameters from safetensors files with HF names. Every parameter must be
    /// present exactly once with its shape; unknown tensors are an error (a different architecture).
    public static func loadWeights(into model: any TrainableModel, files: [String]) throws {
        let layout = model.layout
        var loaded = Set<String>()
        for path in files {
            let file = try SafetensorsFile(path: path)
            for entry in file.entries {
                var name = entry.name
                if model.config.arch == .gpt2 && !name.hasPrefix("transformer.") && name != "lm_head.weight" { name = "transformer." + name }
                if isIgnorable(name) { continue }
                if name == "lm_head.weight" && model.config.tieEmbeddings { continue }   // saved tied copy
                guard let t = layout[name] else {
                    throw FileError(.model, path, "unexpected tensor '\(entry.name)' for a \(model.config.arch.rawValue) model of this shape")
                }
                guard loaded.insert(name).inserted else { throw FileError(.model, path, "tensor '\(entry.name)' appears in more than one file") }
                let expected = t.transposedInHF ? [t.shape[1], t.shape[0]] : t.shape
                guard entry.shape == expected else {
                    throw FileError(.model, path, "tensor '\(entry.name)' has shape \(entry.shape); config.json implies \(expected)")
                }
                let target = model.tensor(name)!
                if t.transposedInHF {
                    let values = try file.floats(entry.name)
                    transpose(values, rows: expected[0], cols: expected[1], into: target)
                } else {
                    try file.read(entry.name, into: target)
                }
            }
        }
        let missing = layout.tensors.map(\.name).filter { !loaded.contains($0) }
        if !missing.isEmpty {
            throw FileError(.model, files.first ?? "", "missing \(missing.count) tensor(s): \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", …" : "")")
        }
    }

    static func transpose(_ values: [Float], rows: Int, cols: Int, into out: UnsafeMutableBufferPointer<Float>) {
        for r in 0..<rows {
            for c in 0..<cols { out[c * rows + r] = values[r * cols + c] }
        }
    }

    // MARK: Export

    /// Writes a directory transformers loads with `AutoModelForCausalLM.from_pretrained`.
    public static func export(_ model: any TrainableModel, to directory: String, extras: Extras = Extras()) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let dir = directory as NSString
        try AtomicFile.write(Data((configJSON(model.config, extras: extras).rendered(pretty: true) + "\n").utf8),
                             to: dir.appendingPathComponent("config.json"))
        var generation: [(String, JSON)] = [("_from_model_config", .bool(true))]
        if let bos = extras.bosTokenID { generation.append(("bos_token_id", .int(bos))) }
        if let eos = extras.eosTokenID { generation.append(("eos_token_id", .int(eos))) }
        if let pad = extras.padTokenID { generation.append(("pad_token_id", .int(pad))) }
        try AtomicFile.write(Data((JSON.object(generation).rendered(pretty: true) + "\n").utf8),
                             to: dir.appendingPathComponent("generation_config.json"))
        try writeWeights(model, to: dir.appendingPathComponent("model.safetensors"))
        if let tokenizer = extras.tokenizerFile {
            let isSentencePiece = tokenizer.hasSuffix(".model")
            let destination = dir.appendingPathComponent(isSentencePiece ? "tokenizer.model" : "tokenizer.json")
            guard var bytes = fm.contents(atPath: tokenizer) else { throw FileError(.model, tokenizer, "cannot read the tokenizer file") }
            if !isSentencePiece, let bos = extras.specialTokens["bos"], let id = extras.bosTokenID {
                bytes = try addingBeginningOfSequence(tokenizerJSON: bytes, token: bos, id: id, file: tokenizer)
            }
            try AtomicFile.write(bytes, to: destination)
            var config: [(String, JSON)] = [
                ("tokenizer_class", .string(isSentencePiece ? "LlamaTokenizer" : "PreTrainedTokenizerFast")),
                ("model_max_length", .int(model.config.maxPositions)), ("clean_up_tokenization_spaces", .bool(false)),
                // Tuning starts every example with BOS; generation and evaluation read this to do the same.
                ("add_bos_token", .bool(extras.bosTokenID != nil)), ("add_eos_token", .bool(false)),
            ]
            for role in ["bos", "eos", "unk", "pad"] {
                if let s = extras.specialTokens[role] { config.append(("\(role)_token", .string(s))) }
            }
            try AtomicFile.write(Data((JSON.object(config.sorted { $0.0 < $1.0 }).rendered(pretty: true) + "\n").utf8),
                                 to: dir.appendingPathComponent("tokenizer_config.json"))
        }
    }

    /// A tokenizer.json whose post-processor starts every encoding with `token`, so that Hugging Face
    /// tokenizers (`add_special_tokens=True`, their default) encode as Kondate's tuning and evaluation
    /// do. The existing post-processor is kept first in a `Sequence` (a byte-level one only adjusts
    /// offsets); a file whose post-processor is already a `TemplateProcessing` is left as it is.
    static func addingBeginningOfSequence(tokenizerJSON data: Data, token: String, id: Int, file: String) throws -> Data {
        let json: JSON
        do { json = try JSONParser.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw FileError(.model, file, "not valid JSON: \(error.description)")
        }
        guard case var .object(entries) = json else { throw FileError(.model, file, "expected a JSON object") }
        let existing = json["post_processor"] ?? .null
        if existing["type"]?.stringValue == "TemplateProcessing" { return data }
        func special(_ typeID: Int) -> JSON { .object([("SpecialToken", .object([("id", .string(token)), ("type_id", .int(typeID))]))]) }
        func sequence(_ name: String, _ typeID: Int) -> JSON { .object([("Sequence", .object([("id", .string(name)), ("type_id", .int(typeID))]))]) }
        let template = JSON.object([
            ("type", .string("TemplateProcessing")),
            ("single", .array([special(0), sequence("A", 0)])),
            ("pair", .array([special(0), sequence("A", 0), special(1), sequence("B", 1)])),
            ("special_tokens", .object([(token, .object([("id", .string(token)), ("ids", .array([.int(id)])), ("tokens", .array([.string(token)]))]))])),
        ])
        let processor: JSON = existing == .null ? template : .object([("type", .string("Sequence")), ("processors", .array([existing, template]))])
        if let index = entries.firstIndex(where: { $0.0 == "post_processor" }) {
            entries[index].1 = processor
        } else {
            entries.append(("post_processor", processor))
        }
        return Data((JSON.object(entries).rendered(pretty: true) + "\n").utf8)
    }

    /// The parameters under their HF names and layouts (Conv1D weights transposed back).
    public static func writeWeights(_ model: any TrainableModel, to path: String, dtype: String = "F32") throws {
        let sources: [SafetensorsFile.TensorSource] = model.layout.tensors.map { t in
            let buffer = model.tensor(t.name)!
            if t.transposedInHF {
                let rows = t.shape[0], cols = t.shape[1]
                return (t.name, [cols, rows], { body in
                    var out = [Float](repeating: 0, count: t.count)
                    out.withUnsafeMutableBufferPointer { o in transpose(Array(buffer), rows: rows, cols: cols, into: o) }
                    try out.withUnsafeBufferPointer { try body($0) }
                })
            }
            return (t.name, t.shape, { body in try body(UnsafeBufferPointer(buffer)) })
        }
        try SafetensorsFile.write(sources, metadata: ["format": "pt"], dtype: dtype, to: path)
    }
}
