import KondateRecipe
import KondateSupport

/// The kinds of stage a recipe compiles to. A `switch` over it has no `default:`: a new kind makes the
/// compiler list every place that must handle it (graph, keys, runners, reports).
public enum StageKind: String, CaseIterable, Sendable {
    case corpusPrepare = "corpus.prepare"
    case tokenizerTrain = "tokenizer.train"
    case tokenizerLoad = "tokenizer.load"
    case corpusTokenize = "corpus.tokenize"
    case corpusMix = "corpus.mix"
    case pretrain, tune, eval, release

    /// The implementation's version, part of every key of this kind: raised when the same inputs would
    /// give different outputs (a fixed bug, a changed format).
    public var version: Int {
        switch self {
        case .corpusPrepare: 2
        case .tokenizerTrain, .tokenizerLoad: 1
        case .corpusTokenize: 2
        case .corpusMix: 1
        case .pretrain: 2
        case .tune: 2
        case .eval: 2
        // 2: the key is the release's typed payload (the model card's recipe, command and inputs).
        case .release: 2
        }
    }

    /// The group `kondate run --until` names: corpus, pretrain, tune, eval or release.
    public var group: String {
        switch self {
        case .corpusPrepare, .tokenizerTrain, .tokenizerLoad, .corpusTokenize, .corpusMix: "corpus"
        case .pretrain: "pretrain"
        case .tune: "tune"
        case .eval: "eval"
        case .release: "release"
        }
    }
}

// MARK: Payloads: exactly what each runner reads

/// `corpus.prepare.<source>`: read, filter and deduplicate one source.
public struct CorpusPrepareConfig: Sendable {
    public var source: Recipe.Source
    public var paths: InputPaths
    public var onError: OnError
    /// Seeds the MinHash permutations of `dedup_minhash`.
    public var seed: Int

    public var json: JSON {
        .object([("source", .string(source.name)), ("paths", paths.json), ("format", .string(source.format.rawValue)),
                 ("text_field", .string(source.textField)),
                 ("filters", .array(source.filters.map { .object([($0.name, $0.parameters.json)]) })),
                 ("on_error", .string(onError.rawValue)), ("seed", .int(seed))])
    }
}

/// `tokenizer`: load a tokenizer file, or train a byte-level BPE on the prepared sources.
public struct TokenizerConfig: Sendable {
    public var format: TokenizerFormat
    /// The file to load (`tokenizer.load`).
    public var path: InputPath?
    /// The training settings (`tokenizer.train`).
    public var train: Recipe.Tokenizer.Training?
    /// Declared vocabulary size, checked against a loaded file.
    public var vocabSize: Int?
    /// Role tokens (`bos`, `eos`, `pad`, `unk`) and `additional` ones, added to a trained vocabulary.
    public var specialTokens: [String: String]
    public var additionalSpecialTokens: [String]

    public var json: JSON {
        var entries: [(String, JSON)] = [("format", .string(format.rawValue)), ("path", path.map { .string($0.written) } ?? .null)]
        if let t = train {
            entries.append(("train", .object([("algorithm", .string(t.algorithm.rawValue)), ("vocab_size", .int(t.vocabSize)),
                                              ("min_frequency", .int(t.minFrequency)), ("sample_size", .int(t.sampleSize)),
                                              ("sources", .array(t.sources.map(JSON.string))), ("byte_fallback", .bool(t.byteFallback)),
                                              ("split_digits", .bool(t.splitDigits))])))
        }
        entries += [("vocab_size", vocabSize.map(JSON.int) ?? .null), ("special_tokens", specialTokensJSON(specialTokens)),
                    ("additional_special_tokens", .array(additionalSpecialTokens.map(JSON.string)))]
        return .object(entries)
    }
}

/// `corpus.tokenize.<source>`: encode a prepared source to Megatron `.bin/.idx`.
public struct CorpusTokenizeConfig: Sendable {
    public var source: String
    /// The end-of-document token appended to every document (nil: the tokenizer's own).
    public var endOfDocument: String?
    /// The model's embedding rows: every id must be below it; it also picks the `.bin` dtype.
    public var modelVocabSize: Int

    public var json: JSON {
        .object([("source", .string(source)), ("eos", endOfDocument.map(JSON.string) ?? .null), ("model_vocab_size", .int(modelVocabSize))])
    }
}

/// `corpus.mix`: the pretraining sample index over the tokenized sources.
public struct CorpusMixConfig: Sendable {
    public struct Source: Sendable {
        public var name: String, weight: Double?, budget: Int?, maxEpochs: Double?
    }
    public var sources: [Source]
    /// Samples to draw: pretrain.steps × pretrain.global_batch.
    public var samples: Int
    public var seqLen: Int
    public var heldOut: Double
    public var seed: Int

    public var json: JSON {
        .object([("sources", .array(sources.map { s in
            .object([("name", .string(s.name)), ("weight", s.weight.map(JSON.double) ?? .null), ("budget", s.budget.map(JSON.int) ?? .null),
                     ("max_epochs", s.maxEpochs.map(JSON.double) ?? .null)])
        })), ("samples", .int(samples)), ("seq_len", .int(seqLen)), ("held_out", .double(heldOut)), ("seed", .int(seed))])
    }
}

/// `pretrain`: train the model on the mixture.
///
/// The key leaves out what changes how the computation is split or kept, not its result: the parallel
/// layout and micro batch (results agree to float rounding; the manifest records them) and checkpoint
/// frequency and retention.
public struct PretrainConfig: Sendable {
    public var model: Recipe.Model
    public var pretrain: Recipe.Pretrain
    public var parallel: Recipe.Parallel
    public var seed: Int
    /// Written into the exported model's configuration.
    public var specialTokens: [String: String]

    public var json: JSON {
        let p = pretrain
        return .object([
            ("model", modelJSON(model)),
            ("global_batch", .int(p.globalBatch)), ("steps", .int(p.steps)),
            ("optimizer", .object([("kind", .string(p.optimizer.rawValue)), ("lr", .double(p.lr)), ("betas", .array([.double(p.beta1), .double(p.beta2)])),
                                   ("eps", .double(p.eps)), ("weight_decay", .double(p.weightDecay)),
                                   ("decay_norms_and_biases", .bool(p.decayNormsAndBiases))])),
            ("schedule", scheduleJSON(p.schedule)), ("grad_clip", .double(p.gradClip)), ("precision", .string(p.precision.rawValue)),
            ("log_interval", .int(p.logInterval)), ("eval_interval", p.evalInterval.map(JSON.int) ?? .null), ("eval_iters", .int(p.evalIters)),
            ("nan_policy", .string(p.nanPolicy.rawValue)), ("seed", .int(seed)), ("special_tokens", specialTokensJSON(specialTokens)),
        ])
    }
}

/// Where a tune stage starts.
public enum TuneStart: Sendable {
    /// The model of a stage of this recipe (`pretrain` or a tune stage).
    case stage(String)
    /// A Hugging Face model directory (`hf:PATH`).
    case huggingFace(InputPath)

    public var json: JSON {
        switch self {
        case let .stage(name): .string(name)
        case let .huggingFace(path): .string("hf:" + path.written)
        }
    }
}

/// A prompt template: one of the built-in ones by name, or one the recipe writes.
public enum TemplateRef: Sendable {
    case builtin(String)
    case recipe(Recipe.Template)

    public var name: String {
        switch self {
        case let .builtin(name): name
        case let .recipe(t): t.name
        }
    }

    public var json: JSON {
        switch self {
        case let .builtin(name): .string(name)
        case let .recipe(t):
            .object([("name", .string(t.name)), ("prompt", .string(t.prompt)), ("prompt_with_input", t.promptWithInput.map(JSON.string) ?? .null),
                     ("system", t.system.map(JSON.string) ?? .null)])
        }
    }
}

/// A tune stage's dataset with its resolved paths.
public struct TuneDatasetInput: Sendable {
    public var dataset: Recipe.TuneDataset
    public var paths: InputPaths
}

/// `tune.<name>`: supervised fine-tuning.
public struct TuneConfig: Sendable {
    public var stage: Recipe.TuneStage
    public var start: TuneStart
    public var template: TemplateRef
    /// The stage's datasets, in recipe order.
    public var datasets: [TuneDatasetInput]
    public var specialTokens: [String: String]
    /// Pretraining's NaN policy (tune stages follow it; `stop` without pretraining, the schema's default).
    public var nanPolicy: NaNPolicy
    public var parallel: Recipe.Parallel
    public var seed: Int

    public var json: JSON {
        let t = stage
        return .object([
            ("name", .string(t.name)), ("from", start.json),
            ("datasets", .array(datasets.map { input in
                let d = input.dataset
                return .object([("name", .string(d.name)), ("paths", input.paths.json), ("format", .string(d.format.rawValue)),
                                ("weight", .double(d.weight)), ("epochs", .double(d.epochs))])
            })),
            ("template", template.json), ("loss_mask", .string(t.lossMask.rawValue)), ("epochs", .double(t.epochs)),
            ("global_batch", .int(t.globalBatch)), ("micro_batch", .int(t.microBatch)), ("lr", .double(t.lr)), ("weight_decay", .double(t.weightDecay)),
            ("schedule", scheduleJSON(t.schedule)), ("max_length", .int(t.maxLength)), ("packing", .bool(t.packing)),
            ("precision", .string(t.precision.rawValue)), ("special_tokens", specialTokensJSON(specialTokens)),
            ("nan_policy", .string(nanPolicy.rawValue)), ("seed", .int(seed)),
        ])
    }
}

/// `eval.<suite>.<checkpoint>`: one suite on one checkpoint.
public struct EvalConfig: Sendable {
    public var suite: Recipe.EvalSuite
    public var checkpoint: String
    public var datasetPaths: InputPaths
    /// The chat template of a generation suite.
    public var template: TemplateRef?
    public var specialTokens: [String: String]
    public var seed: Int

    public var json: JSON {
        let s = suite
        var entries: [(String, JSON)] = [("suite", .string(s.name)), ("kind", .string(s.kind.rawValue)), ("checkpoint", .string(checkpoint)),
                                         ("datasets", datasetPaths.json), ("max_samples", s.maxSamples.map(JSON.int) ?? .string("all")),
                                         ("metrics", .array(s.metrics.map { .string($0.rawValue) }))]
        switch s.kind {
        case .llmJPEval:
            entries += [("few_shots", .int(s.fewShots)), ("prompt_template", s.promptTemplate.map(JSON.string) ?? .null),
                        ("few_shots_template", s.fewShotsTemplate.map(JSON.string) ?? .null)]
        case .perplexity:
            break
        case .generation:
            entries += [("template", template?.json ?? .null), ("max_new_tokens", .int(s.maxNewTokens)), ("temperature", .double(s.temperature)),
                        ("judge", s.judge.map { j in .object([("endpoint", .string(j.endpoint)), ("model", .string(j.model)),
                                                            ("api_key_env", .string(j.apiKeyEnv))]) } ?? .null)]
        }
        entries += [("special_tokens", specialTokensJSON(specialTokens)), ("seed", .int(seed))]
        return .object(entries)
    }
}

/// `release`: the bundle, with a model card that describes the whole recipe.
public struct ReleaseConfig: Sendable {
    public var release: Recipe.Release
    /// The model card quotes the recipe (its description, model, training and tuning) and names it by
    /// its SHA-256, and tells how to reproduce it (file and `--set` overrides): all of it is read.
    public var recipeName: String
    public var recipeFile: String
    public var recipeSHA256: String
    public var overrides: [String]

    public var json: JSON {
        let r = release
        return .object([("name", .string(r.name)), ("checkpoint", .string(r.checkpoint)), ("formats", .array(r.formats.map { .string($0.rawValue) })),
                        ("contents", .array(r.contents.map { .string($0.rawValue) })), ("dtype", .string(r.dtype.rawValue)),
                        ("license", r.license.map(JSON.string) ?? .null), ("recipe", .string(recipeName)),
                        ("recipe_file", .string(lastPathComponent(recipeFile))), ("recipe_sha256", .string(recipeSHA256)),
                        ("overrides", .array(overrides.map(JSON.string)))])
    }
}

/// What a stage computes, with exactly the configuration its runner reads.
public enum StagePayload: Sendable {
    case corpusPrepare(CorpusPrepareConfig)
    case tokenizer(TokenizerConfig)
    case corpusTokenize(CorpusTokenizeConfig)
    case corpusMix(CorpusMixConfig)
    case pretrain(PretrainConfig)
    case tune(TuneConfig)
    case eval(EvalConfig)
    case release(ReleaseConfig)

    /// The key's material: every value the runner reads, as canonical JSON. One function per kind.
    public var json: JSON {
        switch self {
        case let .corpusPrepare(c): c.json
        case let .tokenizer(c): c.json
        case let .corpusTokenize(c): c.json
        case let .corpusMix(c): c.json
        case let .pretrain(c): c.json
        case let .tune(c): c.json
        case let .eval(c): c.json
        case let .release(c): c.json
        }
    }
}

/// One stage of the execution graph: a typed value.
public struct Stage: Sendable {
    public var id: String
    public var kind: StageKind
    public var payload: StagePayload
    /// The stages it reads from.
    public var inputs: [String]
    /// What executes it.
    public var engine: Engine
    /// One line saying what the stage does.
    public var summary: String
    /// Where its outputs appear, relative to the run directory.
    public var directory: String
}

// MARK: JSON helpers

func specialTokensJSON(_ tokens: [String: String]) -> JSON {
    .object(tokens.keys.sorted().map { ($0, .string(tokens[$0]!)) })
}

func scheduleJSON(_ s: Recipe.Schedule) -> JSON {
    .object([("kind", .string(s.kind.rawValue)), ("warmup_steps", s.warmupSteps.map(JSON.int) ?? .null),
             ("warmup_fraction", s.warmupFraction.map(JSON.double) ?? .null), ("min_lr", .double(s.minLR)),
             ("decay_steps", s.decaySteps.map(JSON.int) ?? .null)])
}

func modelJSON(_ m: Recipe.Model) -> JSON {
    .object([("arch", .string(m.arch.rawValue)), ("hidden", .int(m.hidden)), ("ffn", .int(m.ffn)), ("layers", .int(m.layers)),
             ("heads", .int(m.heads)), ("kv_heads", .int(m.kvHeads)), ("vocab_size", .int(m.vocabSize)), ("seq_len", .int(m.seqLen)),
             ("max_positions", .int(m.maxPositions)), ("rope_theta", m.ropeTheta.map(JSON.double) ?? .null), ("norm_eps", .double(m.normEps)),
             ("activation", .string(m.activation.rawValue)), ("tie_embeddings", .bool(m.tieEmbeddings)), ("init_std", .double(m.initStd)),
             ("dropout", .double(m.dropout)), ("attention_dropout", .double(m.attentionDropout)),
             ("attention_kernel", .string(m.attentionKernel.rawValue))])
}

func lastPathComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
