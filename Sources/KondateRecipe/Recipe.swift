/// The typed recipe, built from a resolved tree that passed every check. The plan and the runtime
/// read these types; the tree (with provenance) stays available as `tree`.
///
/// Every default is stated once, in the schema (`RecipeSchema`) or in `DerivedDefaults`, and is
/// already in the resolved tree: `init(tree:file:)` reads values, it never supplies one. A value the
/// schema gives a default but the tree lacks is a Kondate bug, reported as `RecipeTypingError`.
/// Optionals are the keys that may be absent (the schema gives them no default).
public struct Recipe: Sendable {
    public struct Cluster: Sendable {
        public var nodes: Int, devicesPerNode: Int, device: DeviceType
        public var deviceMemory: Int, peakFlops: Double, assumedMFU: Double
        /// Links between devices (the device catalog's with the recipe's overrides) and the fraction
        /// of peak the compute kernels reach: the inputs of the plan's step-time model.
        public var interconnect: Interconnect, computeEfficiency: Double
        public var world: Int { nodes * devicesPerNode }
        /// Slurm partition, account and wall-clock limit for `kondate launch --slurm`.
        public var partition: String?, account: String?, timeLimit: String?
    }

    public struct Tokenizer: Sendable {
        public var name: String?, path: String?, format: TokenizerFormat
        public var train: Training?
        public var vocabSize: Int?
        /// Special tokens by role (`bos`, `eos`, `pad`, `unk`), as written.
        public var specialTokens: [String: String]
        public var additionalSpecialTokens: [String]
        public struct Training: Sendable {
            public var algorithm: TokenizerAlgorithm, vocabSize: Int, minFrequency: Int, sampleSize: Int
            public var sources: [String], byteFallback: Bool, splitDigits: Bool
        }
    }

    public struct Filter: Sendable {
        public var name: String
        /// Parameters as resolved (defaults filled).
        public var parameters: RNode
        public init(name: String, parameters: RNode) {
            self.name = name
            self.parameters = parameters
        }
    }

    public struct Source: Sendable {
        public var name: String, paths: [String], format: SourceFormat, textField: String
        public var language: String?, description: String?, filters: [Filter]
        public var tokens: Int?, weight: Double?, budget: Int?, maxEpochs: Double?
    }

    public struct Corpus: Sendable {
        public var sources: [Source], onError: OnError, heldOut: Double
    }

    public struct Model: Sendable {
        public var arch: Architecture, hidden: Int, ffn: Int, layers: Int, heads: Int, kvHeads: Int
        public var vocabSize: Int, padVocabMultiple: Int, seqLen: Int, maxPositions: Int
        /// RoPE base; nil for `gpt2` (learned positions).
        public var ropeTheta: Double?
        public var normEps: Double, activation: Activation, tieEmbeddings: Bool, initStd: Double
        public var dropout: Double, attentionDropout: Double, attentionKernel: AttentionKernel
        public var headDim: Int { hidden / max(heads, 1) }
    }

    public struct Parallel: Sendable {
        public var tensor: Int, pipeline: Int, data: Int, sequenceParallel: Bool
        public var zeroStage: Int, recompute: Recompute, microBatch: Int
    }

    public struct Schedule: Sendable {
        public var kind: ScheduleKind, warmupSteps: Int?, warmupFraction: Double?, minLR: Double
        /// nil: the stage's steps (known for a tune stage only when its data is read).
        public var decaySteps: Int?
    }

    public struct Pretrain: Sendable {
        public var globalBatch: Int, steps: Int, tokens: Int
        public var optimizer: OptimizerKind
        public var lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, decayNormsAndBiases: Bool
        public var schedule: Schedule, gradClip: Double, precision: Precision
        public var checkpointEvery: Int, checkpointKeep: Int
        public var logInterval: Int, evalInterval: Int?, evalIters: Int, nanPolicy: NaNPolicy
        public var betas: [Double] { [beta1, beta2] }
    }

    public struct Template: Sendable {
        public var name: String, prompt: String, promptWithInput: String?, system: String?
    }

    public struct TuneDataset: Sendable {
        public var name: String, paths: [String], format: TuneDataFormat, weight: Double, epochs: Double
        public var description: String?
    }

    public struct TuneStage: Sendable {
        public var name: String, from: String, datasets: [TuneDataset], template: String, lossMask: LossMask
        public var epochs: Double, globalBatch: Int, microBatch: Int, lr: Double, weightDecay: Double
        public var schedule: Schedule, maxLength: Int, packing: Bool, precision: Precision
        /// Steps between checkpoints (nil: a tenth of the stage's steps, at least 1) and checkpoints kept (0: all).
        public var checkpointEvery: Int?, checkpointKeep: Int
    }

    public struct EvalSuite: Sendable {
        public var name: String, kind: EvalKind, datasets: [String], checkpoints: [String]
        /// Samples per dataset; nil for `all`.
        public var fewShots: Int, maxSamples: Int?, metrics: [MetricName]
        /// llm-jp-eval's `custom_prompt_template` and `custom_fewshots_template` (llm-jp-eval suites).
        public var promptTemplate: String?, fewShotsTemplate: String?
        /// Chat template (generation suites; nil for the other kinds), generation limit and temperature.
        public var template: String?, maxNewTokens: Int, temperature: Double
        public var judge: Judge?
    }

    public struct Judge: Sendable {
        public var endpoint: String, model: String, apiKeyEnv: String
    }

    public struct Release: Sendable {
        public var name: String, checkpoint: String, formats: [ReleaseFormat], contents: [ReleaseContent], dtype: Precision
        public var license: String?
    }

    public var name: String
    public var description: String?
    public var seed: Int
    public var cluster: Cluster
    public var tokenizer: Tokenizer?
    public var corpus: Corpus?
    public var model: Model
    public var parallel: Parallel
    public var pretrain: Pretrain?
    public var templates: [Template]
    public var tune: [TuneStage]
    public var eval: [EvalSuite]
    public var release: Release?
    /// The resolved tree with provenance.
    public var tree: RNode
    /// The file the recipe was loaded from.
    public var file: String
    /// The `--set` overrides it was loaded with, in order (part of the tree; kept for commands that
    /// must say how to reproduce it).
    public var overrides: [String] = []

    /// Builds the typed recipe from a resolved tree that passed every check.
    public init(tree t: RNode, file: String) throws(RecipeTypingError) {
        let r = TreeReader(t)
        tree = t
        self.file = file
        name = try r.string("name")
        description = r.optional("description", \.string)
        seed = try r.int("seed")
        let device: DeviceType = try r.choice("cluster.device")
        var interconnectProblems = DiagnosticSet()
        let interconnect = Interconnect.resolve(t, diagnostics: &interconnectProblems)
        if let problem = interconnectProblems.errors.first { throw RecipeTypingError(path: "cluster", problem: problem.message) }
        cluster = Cluster(nodes: try r.int("cluster.nodes"), devicesPerNode: try r.int("cluster.devices_per_node"), device: device,
                          deviceMemory: try r.int("cluster.device_memory"), peakFlops: try r.double("cluster.peak_flops"),
                          assumedMFU: try r.double("cluster.assumed_mfu"), interconnect: interconnect,
                          computeEfficiency: try r.double("cluster.compute_efficiency"),
                          partition: r.optional("cluster.partition", \.string), account: r.optional("cluster.account", \.string),
                          timeLimit: r.optional("cluster.time_limit", \.string))
        if t.at("tokenizer") != nil {
            var special: [String: String] = [:]
            for role in ["bos", "eos", "pad", "unk"] { if let s = r.optional("tokenizer.special_tokens.\(role)", \.string) { special[role] = s } }
            var training: Tokenizer.Training?
            if t.at("tokenizer.train") != nil {
                training = Tokenizer.Training(algorithm: try r.choice("tokenizer.train.algorithm"), vocabSize: try r.int("tokenizer.train.vocab_size"),
                                              minFrequency: try r.int("tokenizer.train.min_frequency"),
                                              sampleSize: try r.int("tokenizer.train.sample_size"),
                                              sources: try r.strings("tokenizer.train.sources"),
                                              byteFallback: try r.bool("tokenizer.train.byte_fallback"),
                                              splitDigits: try r.bool("tokenizer.train.split_digits"))
            }
            tokenizer = Tokenizer(name: r.optional("tokenizer.name", \.string), path: r.optional("tokenizer.path", \.string),
                                  format: try r.choice("tokenizer.format"), train: training,
                                  vocabSize: r.optional("tokenizer.vocab_size", \.int), specialTokens: special,
                                  additionalSpecialTokens: t.at("tokenizer.special_tokens") == nil ? [] : try r.strings("tokenizer.special_tokens.additional"))
        }
        if t.at("corpus") != nil {
            corpus = Corpus(sources: try r.entries("corpus.sources").map { e throws(RecipeTypingError) in
                let p = "corpus.sources.\(e.key)"
                let filters: [Filter] = try r.array("\(p).filters").enumerated().map { i, f throws(RecipeTypingError) in
                    guard let entry = f.entries?.first else { throw RecipeTypingError(path: "\(p).filters.\(i)", problem: "not a one-key mapping") }
                    return Filter(name: entry.key, parameters: entry.node)
                }
                return Source(name: e.key, paths: try r.strings("\(p).paths"), format: try r.choice("\(p).format"),
                              textField: try r.string("\(p).text_field"), language: r.optional("\(p).language", \.string),
                              description: r.optional("\(p).description", \.string), filters: filters,
                              tokens: r.optional("\(p).tokens", \.int), weight: r.optional("\(p).weight", \.double),
                              budget: r.optional("\(p).budget", \.int), maxEpochs: r.optional("\(p).max_epochs", \.double))
            }, onError: try r.choice("corpus.on_error"), heldOut: try r.double("corpus.held_out"))
        }
        let arch: Architecture = try r.choice("model.arch")
        model = Model(arch: arch, hidden: try r.int("model.hidden"), ffn: try r.int("model.ffn"), layers: try r.int("model.layers"),
                      heads: try r.int("model.heads"), kvHeads: try r.int("model.kv_heads"), vocabSize: try r.int("model.vocab_size"),
                      padVocabMultiple: try r.int("model.pad_vocab_multiple"), seqLen: try r.int("model.seq_len"),
                      maxPositions: try r.int("model.max_positions"),
                      ropeTheta: arch == .llama ? try r.double("model.rope_theta") : nil,
                      normEps: try r.double("model.norm_eps"), activation: try r.choice("model.activation"),
                      tieEmbeddings: try r.bool("model.tie_embeddings"), initStd: try r.double("model.init_std"),
                      dropout: try r.double("model.dropout"), attentionDropout: try r.double("model.attention_dropout"),
                      attentionKernel: try r.choice("model.attention_kernel"))
        parallel = Parallel(tensor: try r.int("parallel.tensor"), pipeline: try r.int("parallel.pipeline"), data: try r.int("parallel.data"),
                            sequenceParallel: try r.bool("parallel.sequence_parallel"), zeroStage: try r.int("parallel.zero_stage"),
                            recompute: try r.choice("parallel.recompute"), microBatch: try r.int("parallel.micro_batch"))
        if t.at("pretrain") != nil {
            let betas = try r.doubles("pretrain.optimizer.betas")
            guard betas.count == 2 else { throw RecipeTypingError(path: "pretrain.optimizer.betas", problem: "needs two values") }
            pretrain = Pretrain(globalBatch: try r.int("pretrain.global_batch"), steps: try r.int("pretrain.steps"), tokens: try r.int("pretrain.tokens"),
                                optimizer: try r.choice("pretrain.optimizer.kind"),
                                lr: try r.double("pretrain.optimizer.lr"), beta1: betas[0], beta2: betas[1],
                                eps: try r.double("pretrain.optimizer.eps"), weightDecay: try r.double("pretrain.optimizer.weight_decay"),
                                decayNormsAndBiases: try r.bool("pretrain.optimizer.decay_norms_and_biases"),
                                schedule: try r.schedule("pretrain.schedule"), gradClip: try r.double("pretrain.grad_clip"),
                                precision: try r.choice("pretrain.precision"), checkpointEvery: try r.int("pretrain.checkpoint.every"),
                                checkpointKeep: try r.int("pretrain.checkpoint.keep"), logInterval: try r.int("pretrain.log_interval"),
                                evalInterval: r.optional("pretrain.eval_interval", \.int), evalIters: try r.int("pretrain.eval_iters"),
                                nanPolicy: try r.choice("pretrain.nan_policy"))
        }
        templates = try (t.at("templates")?.entries ?? []).map { e throws(RecipeTypingError) in
            let p = "templates.\(e.key)"
            return Template(name: e.key, prompt: try r.string("\(p).prompt"), promptWithInput: r.optional("\(p).prompt_with_input", \.string),
                            system: r.optional("\(p).system", \.string))
        }
        tune = try (t.at("tune")?.entries ?? []).map { e throws(RecipeTypingError) in
            let p = "tune.\(e.key)"
            let datasets = try r.entries("\(p).datasets").map { d throws(RecipeTypingError) in
                let q = "\(p).datasets.\(d.key)"
                return TuneDataset(name: d.key, paths: try r.strings("\(q).paths"), format: try r.choice("\(q).format"),
                                   weight: try r.double("\(q).weight"), epochs: try r.double("\(q).epochs"),
                                   description: r.optional("\(q).description", \.string))
            }
            return TuneStage(name: e.key, from: try r.string("\(p).from"), datasets: datasets,
                             template: try r.string("\(p).template"), lossMask: try r.choice("\(p).loss_mask"),
                             epochs: try r.double("\(p).epochs"), globalBatch: try r.int("\(p).global_batch"), microBatch: try r.int("\(p).micro_batch"),
                             lr: try r.double("\(p).lr"), weightDecay: try r.double("\(p).weight_decay"), schedule: try r.schedule("\(p).schedule"),
                             maxLength: try r.int("\(p).max_length"), packing: try r.bool("\(p).packing"),
                             precision: try r.choice("\(p).precision"), checkpointEvery: r.optional("\(p).checkpoint.every", \.int),
                             checkpointKeep: try r.int("\(p).checkpoint.keep"))
        }
        eval = try (t.at("eval")?.entries ?? []).map { e throws(RecipeTypingError) in
            let p = "eval.\(e.key)"
            let kind: EvalKind = try r.choice("\(p).kind")
            var judge: Judge?
            if t.at("\(p).judge") != nil {
                judge = Judge(endpoint: try r.string("\(p).judge.endpoint"), model: try r.string("\(p).judge.model"),
                              apiKeyEnv: try r.string("\(p).judge.api_key_env"))
            }
            return EvalSuite(name: e.key, kind: kind, datasets: try r.strings("\(p).datasets"),
                             checkpoints: try r.strings("\(p).checkpoints"), fewShots: try r.int("\(p).few_shots"),
                             maxSamples: t.at("\(p).max_samples")?.string == "all" ? nil : try r.int("\(p).max_samples"),
                             metrics: try r.choices("\(p).metrics"),
                             promptTemplate: r.optional("\(p).prompt_template", \.string), fewShotsTemplate: r.optional("\(p).few_shots_template", \.string),
                             template: kind == .generation ? try r.string("\(p).template") : nil,
                             maxNewTokens: try r.int("\(p).max_new_tokens"), temperature: try r.double("\(p).temperature"), judge: judge)
        }
        if t.at("release") != nil {
            release = Release(name: try r.string("release.name"), checkpoint: try r.string("release.checkpoint"),
                              formats: try r.choices("release.formats"), contents: try r.choices("release.contents"),
                              dtype: try r.choice("release.dtype"), license: r.optional("release.license", \.string))
        }
    }

    /// The precision training runs in: pretraining's, else the first tune stage's, else the schema's
    /// derived default for the device (fp32 on `cpu`, bf16 on GPUs). Used by the plan's estimates.
    public var trainingPrecision: Precision {
        pretrain?.precision ?? tune.first?.precision ?? (cluster.device.isGPU ? .bf16 : .fp32)
    }

    /// The recipe template named `name`, if the recipe defines one.
    public func template(named name: String) -> Template? { templates.first { $0.name == name } }
}

/// A resolved tree that passed every check but lacks a value the typed recipe needs, or holds one of
/// another type: a bug in Kondate (a default missing from the schema or `DerivedDefaults`, or a check
/// missing from validation), never a user error.
public struct RecipeTypingError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var problem: String
    public var description: String { "the resolved recipe's '\(path)' \(problem)" }
}

/// Reads a resolved tree by path for `Recipe.init`: a required value that is absent or of another type
/// throws `RecipeTypingError`.
struct TreeReader {
    let tree: RNode
    init(_ tree: RNode) { self.tree = tree }

    func required<T>(_ p: String, _ read: (RNode) -> T?, _ what: String) throws(RecipeTypingError) -> T {
        guard let node = tree.at(p) else { throw RecipeTypingError(path: p, problem: "is missing (no default reached the tree)") }
        guard let value = read(node) else { throw RecipeTypingError(path: p, problem: "is a \(node.value.kindName), not \(what)") }
        return value
    }
    func optional<T>(_ p: String, _ read: (RNode) -> T?) -> T? { tree.at(p).flatMap(read) }
    func int(_ p: String) throws(RecipeTypingError) -> Int { try required(p, \.int, "an integer") }
    func double(_ p: String) throws(RecipeTypingError) -> Double { try required(p, \.double, "a number") }
    func string(_ p: String) throws(RecipeTypingError) -> String { try required(p, \.string, "a string") }
    func bool(_ p: String) throws(RecipeTypingError) -> Bool { try required(p, \.bool, "a boolean") }
    func array(_ p: String) throws(RecipeTypingError) -> [RNode] { try required(p, \.array, "a list") }
    func entries(_ p: String) throws(RecipeTypingError) -> [REntry] { try required(p, \.entries, "a mapping") }
    func strings(_ p: String) throws(RecipeTypingError) -> [String] {
        try array(p).enumerated().map { i, node throws(RecipeTypingError) in
            guard let s = node.string else { throw RecipeTypingError(path: "\(p).\(i)", problem: "is not a string") }
            return s
        }
    }
    func doubles(_ p: String) throws(RecipeTypingError) -> [Double] {
        try array(p).enumerated().map { i, node throws(RecipeTypingError) in
            guard let d = node.double else { throw RecipeTypingError(path: "\(p).\(i)", problem: "is not a number") }
            return d
        }
    }
    func choice<C: RecipeChoice>(_ p: String) throws(RecipeTypingError) -> C {
        let word = try string(p)
        guard let value = C(rawValue: word) else { throw RecipeTypingError(path: p, problem: "is '\(word)', not one of \(C.words.joined(separator: ", "))") }
        return value
    }
    func choices<C: RecipeChoice>(_ p: String) throws(RecipeTypingError) -> [C] {
        try strings(p).enumerated().map { i, word throws(RecipeTypingError) in
            guard let value = C(rawValue: word) else { throw RecipeTypingError(path: "\(p).\(i)", problem: "is '\(word)', not one of \(C.words.joined(separator: ", "))") }
            return value
        }
    }
    func schedule(_ p: String) throws(RecipeTypingError) -> Recipe.Schedule {
        Recipe.Schedule(kind: try choice("\(p).kind"), warmupSteps: optional("\(p).warmup_steps", \.int),
                        warmupFraction: optional("\(p).warmup_fraction", \.double), minLR: try double("\(p).min_lr"),
                        decaySteps: optional("\(p).decay_steps", \.int))
    }
}

extension Recipe.Cluster {
    /// Seconds of a Slurm time limit (`--time`): `minutes`, `minutes:seconds`, `hours:minutes:seconds`,
    /// `days-hours`, `days-hours:minutes` or `days-hours:minutes:seconds`; nil when `text` is not one
    /// of these or is zero (which Slurm reads as no limit).
    public static func slurmTimeLimitSeconds(_ text: String) -> Int? {
        func number(_ s: Substring, below limit: Int? = nil) -> Int? {
            guard !s.isEmpty, s.count <= 9, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else { return nil }
            if let limit, n >= limit { return nil }
            return n
        }
        let dayParts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard dayParts.count <= 2 else { return nil }
        let clock = dayParts.last!.split(separator: ":", omittingEmptySubsequences: false)
        var seconds: Int
        if dayParts.count == 2 {
            guard let days = number(dayParts[0]), clock.count <= 3, let hours = number(clock[0], below: 24) else { return nil }
            seconds = (days * 24 + hours) * 3600
            if clock.count >= 2 { guard let minutes = number(clock[1], below: 60) else { return nil }; seconds += minutes * 60 }
            if clock.count == 3 { guard let s = number(clock[2], below: 60) else { return nil }; seconds += s }
        } else {
            switch clock.count {
            case 1:
                guard let minutes = number(clock[0]) else { return nil }
                seconds = minutes * 60
            case 2:
                guard let minutes = number(clock[0]), let s = number(clock[1], below: 60) else { return nil }
                seconds = minutes * 60 + s
            case 3:
                guard let hours = number(clock[0]), let minutes = number(clock[1], below: 60), let s = number(clock[2], below: 60) else { return nil }
                seconds = hours * 3600 + minutes * 60 + s
            default:
                return nil
            }
        }
        return seconds > 0 ? seconds : nil
    }
}
