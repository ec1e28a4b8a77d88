/// The typed recipe, built from a resolved tree that passed every check. The plan and the runtime
/// read these types; the tree (with provenance) stays available as `tree`.
public struct Recipe: Sendable {
    public struct Cluster: Sendable {
        public var nodes: Int, devicesPerNode: Int, device: String
        public var deviceMemory: Int, peakFlops: Double, assumedMFU: Double
        /// Links between devices (the device catalog's with the recipe's overrides) and the fraction
        /// of peak the compute kernels reach: the inputs of the plan's step-time model.
        public var interconnect = DeviceCatalog.cpuNode, computeEfficiency = 0.6
        public var world: Int { nodes * devicesPerNode }
        /// Slurm partition, account and wall-clock limit for `kondate launch --slurm`.
        public var partition: String?, account: String?, timeLimit: String?
    }

    public struct Tokenizer: Sendable {
        public var name: String?, path: String?, format: String?
        public var train: Training?
        public var vocabSize: Int?
        public var specialTokens: [String: String]
        public struct Training: Sendable {
            public var algorithm: String, vocabSize: Int, minFrequency: Int, sampleSize: Int
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
        public var name: String, paths: [String], format: String, textField: String
        public var language: String?, filters: [Filter]
        public var tokens: Int?, weight: Double?, budget: Int?, maxEpochs: Double?
    }

    public struct Corpus: Sendable {
        public var sources: [Source], onError: String, heldOut: Double
    }

    public struct Model: Sendable {
        public var arch: String, hidden: Int, ffn: Int, layers: Int, heads: Int, kvHeads: Int
        public var vocabSize: Int, seqLen: Int, maxPositions: Int, ropeTheta: Double?
        public var normEps: Double, activation: String, tieEmbeddings: Bool, initStd: Double
        public var dropout: Double, attentionDropout: Double, attentionKernel: String
        public var headDim: Int { hidden / max(heads, 1) }
    }

    public struct Parallel: Sendable {
        public var tensor: Int, pipeline: Int, data: Int, sequenceParallel: Bool
        public var zeroStage: Int, recompute: String, microBatch: Int
    }

    public struct Schedule: Sendable {
        public var kind: String, warmupSteps: Int?, warmupFraction: Double?, minLR: Double, decaySteps: Int?
    }

    public struct Pretrain: Sendable {
        public var globalBatch: Int, steps: Int, tokens: Int
        public var lr: Double, betas: [Double], eps: Double, weightDecay: Double, decayNormsAndBiases: Bool
        public var schedule: Schedule, gradClip: Double, precision: String
        public var checkpointEvery: Int, checkpointKeep: Int
        public var logInterval: Int, evalInterval: Int?, evalIters: Int, nanPolicy: String
    }

    public struct TuneDataset: Sendable {
        public var name: String, paths: [String], format: String, weight: Double, epochs: Double
    }

    public struct TuneStage: Sendable {
        public var name: String, from: String, datasets: [TuneDataset], template: String, lossMask: String
        public var epochs: Double, globalBatch: Int, microBatch: Int, lr: Double, weightDecay: Double
        public var schedule: Schedule, maxLength: Int, packing: Bool, precision: String
        /// Steps between checkpoints (nil: a tenth of the stage's steps, at least 1) and checkpoints kept (0: all).
        public var checkpointEvery: Int?, checkpointKeep: Int
    }

    public struct EvalSuite: Sendable {
        public var name: String, kind: String, datasets: [String], checkpoints: [String]
        public var fewShots: Int, maxSamples: Int?, metrics: [String]
        /// llm-jp-eval's `custom_prompt_template` and `custom_fewshots_template` (llm-jp-eval suites).
        public var promptTemplate: String?, fewShotsTemplate: String?
        /// Chat template, generation limit and temperature (generation suites).
        public var template: String, maxNewTokens: Int, temperature: Double
        public var judge: Judge?
    }

    public struct Judge: Sendable {
        public var endpoint: String, model: String, apiKeyEnv: String
    }

    public struct Release: Sendable {
        public var name: String, checkpoint: String, formats: [String], contents: [String], dtype: String
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
    public var tune: [TuneStage]
    public var eval: [EvalSuite]
    public var release: Release?
    /// The resolved tree with provenance.
    public var tree: RNode
    /// The file the recipe was loaded from.
    public var file: String

    /// Builds the typed recipe; nil only if the tree is not one that passed the checks.
    public init?(tree t: RNode, file: String) {
        let r = Reader(t)
        guard let name = r.string("name"), let arch = r.string("model.arch"), let hidden = r.int("model.hidden"),
              let layers = r.int("model.layers"), let heads = r.int("model.heads"), let seq = r.int("model.seq_len"),
              let vocab = r.int("model.vocab_size"), let ffn = r.int("model.ffn"), let data = r.int("parallel.data") else { return nil }
        self.tree = t
        self.file = file
        self.name = name
        description = r.string("description")
        seed = r.int("seed") ?? 1234
        cluster = Cluster(nodes: r.int("cluster.nodes") ?? 1, devicesPerNode: r.int("cluster.devices_per_node") ?? 1,
                          device: r.string("cluster.device") ?? "cpu", deviceMemory: r.int("cluster.device_memory") ?? 0,
                          peakFlops: r.double("cluster.peak_flops") ?? 0, assumedMFU: r.double("cluster.assumed_mfu") ?? 0.4)
        var ignored = DiagnosticSet() // the plan reports a bandwidth that does not parse
        cluster.interconnect = Interconnect.resolve(t, diagnostics: &ignored)
        cluster.computeEfficiency = r.double("cluster.compute_efficiency") ?? 0.6
        cluster.partition = r.string("cluster.partition")
        cluster.account = r.string("cluster.account")
        cluster.timeLimit = r.string("cluster.time_limit")
        if t.at("tokenizer") != nil {
            var special: [String: String] = [:]
            for role in ["bos", "eos", "pad", "unk"] { if let s = r.string("tokenizer.special_tokens.\(role)") { special[role] = s } }
            var training: Tokenizer.Training?
            if t.at("tokenizer.train") != nil {
                training = Tokenizer.Training(algorithm: r.string("tokenizer.train.algorithm") ?? "bpe", vocabSize: r.int("tokenizer.train.vocab_size") ?? 0,
                                              minFrequency: r.int("tokenizer.train.min_frequency") ?? 2,
                                              sampleSize: r.int("tokenizer.train.sample_size") ?? 0,
                                              sources: r.strings("tokenizer.train.sources"),
                                              byteFallback: r.bool("tokenizer.train.byte_fallback") ?? true,
                                              splitDigits: r.bool("tokenizer.train.split_digits") ?? false)
            }
            tokenizer = Tokenizer(name: r.string("tokenizer.name"), path: r.string("tokenizer.path"), format: r.string("tokenizer.format"),
                                  train: training, vocabSize: r.int("tokenizer.vocab_size"), specialTokens: special)
        }
        if let sources = t.at("corpus.sources")?.entries {
            corpus = Corpus(sources: sources.map { e in
                let s = Reader(e.node)
                let filters: [Filter] = (e.node["filters"]?.array ?? []).compactMap { f in
                    f.entries?.first.map { Filter(name: $0.key, parameters: $0.node) }
                }
                return Source(name: e.key, paths: s.strings("paths"), format: s.string("format") ?? "jsonl",
                              textField: s.string("text_field") ?? "text", language: s.string("language"), filters: filters,
                              tokens: s.int("tokens"), weight: s.double("weight"), budget: s.int("budget"),
                              maxEpochs: s.double("max_epochs"))
            }, onError: r.string("corpus.on_error") ?? "skip", heldOut: r.double("corpus.held_out") ?? 0)
        }
        model = Model(arch: arch, hidden: hidden, ffn: ffn, layers: layers, heads: heads, kvHeads: r.int("model.kv_heads") ?? heads,
                      vocabSize: vocab, seqLen: seq, maxPositions: r.int("model.max_positions") ?? seq, ropeTheta: r.double("model.rope_theta"),
                      normEps: r.double("model.norm_eps") ?? 1e-5, activation: r.string("model.activation") ?? "swiglu",
                      tieEmbeddings: r.bool("model.tie_embeddings") ?? false, initStd: r.double("model.init_std") ?? 0.02,
                      dropout: r.double("model.dropout") ?? 0, attentionDropout: r.double("model.attention_dropout") ?? 0,
                      attentionKernel: r.string("model.attention_kernel") ?? "flash")
        parallel = Parallel(tensor: r.int("parallel.tensor") ?? 1, pipeline: r.int("parallel.pipeline") ?? 1, data: data,
                            sequenceParallel: r.bool("parallel.sequence_parallel") ?? false, zeroStage: r.int("parallel.zero_stage") ?? 0,
                            recompute: r.string("parallel.recompute") ?? "none", microBatch: r.int("parallel.micro_batch") ?? 1)
        if t.at("pretrain") != nil {
            guard let gb = r.int("pretrain.global_batch"), let steps = r.int("pretrain.steps"), let tokens = r.int("pretrain.tokens"),
                  let lr = r.double("pretrain.optimizer.lr") else { return nil }
            pretrain = Pretrain(globalBatch: gb, steps: steps, tokens: tokens, lr: lr, betas: r.doubles("pretrain.optimizer.betas"),
                                eps: r.double("pretrain.optimizer.eps") ?? 1e-8, weightDecay: r.double("pretrain.optimizer.weight_decay") ?? 0,
                                decayNormsAndBiases: r.bool("pretrain.optimizer.decay_norms_and_biases") ?? false,
                                schedule: r.schedule("pretrain.schedule"), gradClip: r.double("pretrain.grad_clip") ?? 1,
                                precision: r.string("pretrain.precision") ?? "bf16", checkpointEvery: r.int("pretrain.checkpoint.every") ?? 1000,
                                checkpointKeep: r.int("pretrain.checkpoint.keep") ?? 3, logInterval: r.int("pretrain.log_interval") ?? 1,
                                evalInterval: r.int("pretrain.eval_interval"), evalIters: r.int("pretrain.eval_iters") ?? 10,
                                nanPolicy: r.string("pretrain.nan_policy") ?? "stop")
        }
        tune = (t.at("tune")?.entries ?? []).map { e in
            let p = "tune.\(e.key)"
            let datasets = (t.at("\(p).datasets")?.entries ?? []).map { d in
                TuneDataset(name: d.key, paths: r.strings("\(p).datasets.\(d.key).paths"), format: r.string("\(p).datasets.\(d.key).format") ?? "alpaca",
                            weight: r.double("\(p).datasets.\(d.key).weight") ?? 1, epochs: r.double("\(p).datasets.\(d.key).epochs") ?? 1)
            }
            return TuneStage(name: e.key, from: r.string("\(p).from") ?? "pretrain", datasets: datasets,
                             template: r.string("\(p).template") ?? "llm-jp-v1.1", lossMask: r.string("\(p).loss_mask") ?? "response_only",
                             epochs: r.double("\(p).epochs") ?? 1, globalBatch: r.int("\(p).global_batch") ?? 1, microBatch: r.int("\(p).micro_batch") ?? 1,
                             lr: r.double("\(p).lr") ?? 0, weightDecay: r.double("\(p).weight_decay") ?? 0, schedule: r.schedule("\(p).schedule"),
                             maxLength: r.int("\(p).max_length") ?? seq, packing: r.bool("\(p).packing") ?? false,
                             precision: r.string("\(p).precision") ?? "bf16", checkpointEvery: r.int("\(p).checkpoint.every"),
                             checkpointKeep: r.int("\(p).checkpoint.keep") ?? 2)
        }
        eval = (t.at("eval")?.entries ?? []).map { e in
            let p = "eval.\(e.key)"
            return EvalSuite(name: e.key, kind: r.string("\(p).kind") ?? "perplexity", datasets: r.strings("\(p).datasets"),
                             checkpoints: r.strings("\(p).checkpoints"), fewShots: r.int("\(p).few_shots") ?? 4,
                             maxSamples: r.int("\(p).max_samples"), metrics: r.strings("\(p).metrics"),
                             promptTemplate: r.string("\(p).prompt_template"), fewShotsTemplate: r.string("\(p).few_shots_template"),
                             template: r.string("\(p).template") ?? "llm-jp-v1.1", maxNewTokens: r.int("\(p).max_new_tokens") ?? 512,
                             temperature: r.double("\(p).temperature") ?? 0,
                             judge: r.string("\(p).judge.endpoint").map { endpoint in
                                 Judge(endpoint: endpoint, model: r.string("\(p).judge.model") ?? "",
                                       apiKeyEnv: r.string("\(p).judge.api_key_env") ?? "OPENAI_API_KEY")
                             })
        }
        if t.at("release") != nil {
            release = Release(name: r.string("release.name") ?? name, checkpoint: r.string("release.checkpoint") ?? "pretrain",
                              formats: r.strings("release.formats"), contents: r.strings("release.contents"), dtype: r.string("release.dtype") ?? "bf16")
        }
    }

    /// Path-based reads of a resolved tree.
    struct Reader {
        let tree: RNode
        init(_ tree: RNode) { self.tree = tree }
        func int(_ p: String) -> Int? { tree.at(p)?.int }
        func double(_ p: String) -> Double? { tree.at(p)?.double }
        func string(_ p: String) -> String? { tree.at(p)?.string }
        func bool(_ p: String) -> Bool? { tree.at(p)?.bool }
        func strings(_ p: String) -> [String] { tree.at(p)?.array?.compactMap(\.string) ?? [] }
        func doubles(_ p: String) -> [Double] { tree.at(p)?.array?.compactMap(\.double) ?? [] }
        func schedule(_ p: String) -> Schedule {
            Schedule(kind: string("\(p).kind") ?? "cosine", warmupSteps: int("\(p).warmup_steps"), warmupFraction: double("\(p).warmup_fraction"),
                     minLR: double("\(p).min_lr") ?? 0, decaySteps: int("\(p).decay_steps"))
        }
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
