/// The Kondate recipe language: every key, its type, default and meaning.
/// docs/reference.md and `kondate schema` are generated from this file.
public enum RecipeSchema {
    public static let deviceTypes = DeviceType.words
    public static let architectures = Architecture.words
    public static let activations = Activation.words
    public static let filterNames = filter.variants.map(\.name)
    public static let metricNames = MetricName.words
    public static let builtinTemplates = ["llm-jp-v1.1", "llm-jp-v2-chat"]
    /// The template of tune stages and generation suites that name none.
    public static let defaultTemplate = builtinTemplates[0]

    public static let cluster = ObjectSchema("Cluster", "The machines a recipe runs on; the plan's topology, memory check and time estimate use it.", fields: [
        Field("nodes", .count(min: 1, max: 1_000_000), "Number of nodes.", default: .value(.int(1)), unit: "nodes"),
        Field("devices_per_node", .count(min: 1, max: 4096), "Accelerators (or CPU ranks) per node.", default: .value(.int(1)), unit: "devices"),
        Field("device", .choice(deviceTypes),
              "Device type from the catalog; it supplies peak bf16/fp32 FLOP/s and memory (docs/plan.md lists the figures).",
              default: .value(.string("cpu"))),
        Field("device_memory", .bytes(min: 1), "Overrides the catalog's memory per device, e.g. `80GiB`. For `cpu`, memory per rank.",
              default: .derived("from the device catalog"), unit: "bytes"),
        Field("peak_flops", .real(min: 0, exclusiveMin: true), "Overrides the catalog's peak FLOP/s per device for the training precision, e.g. `312T`.",
              default: .derived("from the device catalog and pretrain.precision"), unit: "FLOP/s"),
        Field("assumed_mfu", .real(min: 0, max: 1, exclusiveMin: true, percent: true),
              "Model FLOPs utilisation assumed by the plan's MFU-based time estimate, shown next to the step-time model's (`kondate plan --mfu` overrides it).",
              default: .value(.double(0.4)), unit: "fraction"),
        Field("compute_efficiency", .real(min: 0, max: 1, exclusiveMin: true, percent: true),
              "Fraction of peak FLOP/s the compute kernels reach between communications, used by the plan's step-time model (docs/cost-model.md). Not MFU: MFU also pays for communication and pipeline bubbles, which the model adds itself.",
              default: .value(.double(0.6)), unit: "fraction"),
        Field("intra_node_bandwidth", .text,
              "Bandwidth from one device to another in the same node, per direction, with its unit: `300GB/s` (bytes) or `200Gb/s` (bits). NVIDIA quotes NVLink in both directions: A100's 600 GB/s is 300 GB/s each way.",
              default: .derived("from the device catalog: " + DeviceCatalog.bandwidthDefaults(\.intraNodeBandwidth)), unit: "bytes/s"),
        Field("inter_node_bandwidth", .text,
              "Network bandwidth of one node, per direction, all its adapters together, e.g. `4x200Gb/s` (four InfiniBand HDR links = 100 GB/s) or `400GB/s`.",
              default: .derived("from the device catalog: " + DeviceCatalog.bandwidthDefaults(\.interNodeBandwidth)), unit: "bytes/s"),
        Field("intra_node_latency", .real(min: 0), "Seconds per message inside a node (one step of a ring collective, or one point-to-point transfer), e.g. `3.4e-6`.",
              default: .derived("from the device catalog: " + DeviceCatalog.latencyDefaults(\.intraNodeLatency)), unit: "seconds"),
        Field("inter_node_latency", .real(min: 0), "Seconds per message between nodes, e.g. `9.6e-6`.",
              default: .derived("from the device catalog: " + DeviceCatalog.latencyDefaults(\.interNodeLatency)), unit: "seconds"),
        Field("partition", .label, "Slurm partition for `kondate launch --slurm` (`#SBATCH --partition`); the cluster's default when absent."),
        Field("account", .label, "Slurm account the job is charged to (`#SBATCH --account`); the user's default when absent."),
        Field("time_limit", .text,
              "Slurm wall-clock limit for `kondate launch --slurm` (`#SBATCH --time`): `minutes`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS`, e.g. `48:00:00` (48 hours); the partition's default when absent.",
              unit: "duration"),
    ])

    public static let specialTokens = ObjectSchema("SpecialTokens", "Special tokens by role.", fields: [
        Field("bos", .text, "Beginning-of-sequence token."),
        Field("eos", .text, "End-of-sequence (end-of-document) token, appended to every document."),
        Field("pad", .text, "Padding token."),
        Field("unk", .text, "Unknown token."),
        Field("additional", .list(.text), "Further special tokens, never split by the tokenizer: added to a trained tokenizer's vocabulary (a loaded tokenizer declares its own).", default: .value(.array([]))),
    ])

    public static let tokenizerTraining = ObjectSchema("TokenizerTraining", "Train a tokenizer on the recipe's corpus.", fields: [
        Field("algorithm", .choice(of: TokenizerAlgorithm.self), "`bpe`: byte-level BPE saved as tokenizer.json; `unigram`: SentencePiece-style unigram.", required: true),
        Field("vocab_size", .count(min: 2, max: 16_777_216), "Vocabulary size including special tokens.", required: true, unit: "tokens"),
        Field("min_frequency", .count(min: 1), "Minimum pair (BPE) or piece frequency.", default: .value(.int(2)), unit: "occurrences"),
        Field("sample_size", .bytes(min: 1), "Bytes of text sampled from the sources for training.", default: .value(.int(1 << 30)), unit: "bytes"),
        Field("sources", .list(.name), "Corpus sources to sample from (default: all).", default: .derived("all corpus sources")),
        Field("byte_fallback", .boolean, "Fall back to byte tokens for characters outside the vocabulary (always so for byte-level BPE, which refuses false).", default: .value(.bool(true))),
        Field("split_digits", .boolean, "Split numbers into single digits (a `Digits` pre-tokenizer before the byte-level split).", default: .value(.bool(false))),
    ])

    public static let tokenizer = ObjectSchema("Tokenizer", "The tokenizer: loaded from a file (`path`) or trained (`train`).",
                                               exclusive: [["path", "train"]], fields: [
        Field("name", .text, "Human label, e.g. `llm-jp-tokenizer v2.2`; shown in plans, diffs and model cards."),
        Field("path", .path, "A Hugging Face `tokenizer.json` or a SentencePiece `.model` to load. Relative to the recipe file."),
        Field("format", .choice(of: TokenizerFormat.self), "File format of `path`.",
              default: .derived("`.model` → sentencepiece, otherwise tokenizer_json")),
        Field("train", .object(tokenizerTraining), "Train a tokenizer instead of loading one."),
        Field("vocab_size", .count(min: 2, max: 16_777_216),
              "Tokenizer vocabulary size. Declared for `path` (checked against the file when it is read), taken from `train` otherwise.",
              default: .derived("train.vocab_size"), unit: "tokens"),
        Field("special_tokens", .object(specialTokens), "Special tokens by role."),
    ])

    // MARK: Corpus

    static func filterVariant(_ name: String, _ doc: String, _ fields: [Field]) -> ObjectSchema {
        ObjectSchema(name, doc, fields: fields)
    }

    public static let filter = TaggedSchema("filter", "A document filter with its parameters, written `- name: {param: value}`.", variants: [
        filterVariant("doc_length", "Keep documents whose length in characters is within bounds.", [
            Field("min_chars", .count(min: 0), "Minimum characters.", default: .value(.int(0)), unit: "characters"),
            Field("max_chars", .count(min: 1), "Maximum characters (unbounded if absent).", unit: "characters"),
        ]),
        filterVariant("japanese_ratio", "Keep documents with enough Japanese characters (hiragana, katakana, kanji).", [
            Field("min", .real(min: 0, max: 1, percent: true), "Minimum fraction of Japanese characters.", required: true),
        ]),
        filterVariant("hiragana_ratio", "Keep documents with enough hiragana (a strong signal of natural Japanese prose).", [
            Field("min", .real(min: 0, max: 1, percent: true), "Minimum fraction of hiragana.", required: true),
        ]),
        filterVariant("symbol_ratio", "Drop documents dominated by symbols and punctuation.", [
            Field("max", .real(min: 0, max: 1, percent: true), "Maximum fraction of symbol characters.", required: true),
        ]),
        filterVariant("link_ratio", "Drop documents whose characters are mostly inside URLs.", [
            Field("max", .real(min: 0, max: 1, percent: true), "Maximum fraction of link characters.", required: true),
        ]),
        filterVariant("line_length", "Keep documents whose mean line length is within bounds.", [
            Field("min_mean", .real(min: 0), "Minimum mean characters per line.", unit: "characters"),
            Field("max_mean", .real(min: 0), "Maximum mean characters per line.", unit: "characters"),
        ]),
        filterVariant("sentence_length", "Drop documents with run-on sentences (mean characters between 。/./!/?).", [
            Field("max_mean", .real(min: 0, exclusiveMin: true), "Maximum mean sentence length.", required: true, unit: "characters"),
        ]),
        filterVariant("repeated_lines", "Drop documents with many duplicated lines.", [
            Field("max_ratio", .real(min: 0, max: 1, percent: true), "Maximum fraction of lines that repeat an earlier line.", required: true, unit: "fraction"),
        ]),
        filterVariant("repeated_paragraphs", "Drop documents with many duplicated paragraphs.", [
            Field("max_ratio", .real(min: 0, max: 1, percent: true), "Maximum fraction of paragraphs that repeat.", required: true, unit: "fraction"),
        ]),
        filterVariant("compression_ratio", "Keep documents whose zlib compressed/original size ratio is in a band (too low = repetitive, too high = noise).", [
            Field("min", .real(min: 0), "Lower bound of compressed/original.", default: .value(.double(0))),
            Field("max", .real(min: 0), "Upper bound of compressed/original.", default: .value(.double(1))),
        ]),
        filterVariant("ng_words", "Drop documents with too many hits from a word list (one word per line).", [
            Field("path", .path, "Word-list file, relative to the recipe.", required: true),
            Field("max_hits", .count(min: 0), "Documents with more hits are dropped.", default: .value(.int(3)), unit: "hits"),
        ]),
        filterVariant("code", "Filters for source code (RedPajama-style).", [
            Field("max_line_length", .count(min: 1), "Maximum length of any line.", default: .value(.int(1000)), unit: "characters"),
            Field("max_mean_line_length", .real(min: 0, exclusiveMin: true), "Maximum mean line length.", default: .value(.double(100)), unit: "characters"),
            Field("min_alnum_fraction", .real(min: 0, max: 1, percent: true), "Minimum fraction of alphanumeric characters.", default: .value(.double(0.25)), unit: "fraction"),
        ]),
        filterVariant("dedup_exact", "Drop exact duplicates of normalised text (NFKC, whitespace collapsed).", []),
        filterVariant("dedup_minhash", "Drop near-duplicates with MinHash LSH, deterministic under the recipe seed.", [
            Field("shingle", .count(min: 1, max: 64), "Character n-gram size.", default: .value(.int(5)), unit: "characters"),
            Field("permutations", .count(min: 1, max: 4096), "Number of hash permutations; must equal bands × rows.", default: .value(.int(128)), unit: "hashes"),
            Field("bands", .count(min: 1), "LSH bands.", default: .value(.int(16)), unit: "bands"),
            Field("rows", .count(min: 1), "Rows per band.", default: .value(.int(8)), unit: "rows"),
            Field("threshold", .real(min: 0, max: 1), "Estimated Jaccard similarity above which documents are duplicates.", default: .value(.double(0.8)), unit: "Jaccard similarity"),
        ]),
    ])

    public static let corpusSource = ObjectSchema("CorpusSource",
        "One named source of documents. Its share of training is set by `weight` (relative, token level) or `budget` (absolute tokens); " +
        "with neither, the weight is its size `tokens`, i.e. the natural mix.",
        exclusive: [["weight", "budget"]], fields: [
        Field("paths", .list(.glob, minItems: 1), "Files or globs, relative to the recipe file.", required: true),
        Field("format", .choice(of: SourceFormat.self),
              "`jsonl`: one JSON object per line; `text`: each file is one document; `text_blocks`: documents separated by blank lines. Files may be gzip-compressed.",
              default: .value(.string("jsonl"))),
        Field("text_field", .text, "JSONL field holding the text; other fields are kept as metadata.", default: .value(.string("text"))),
        Field("language", .text, "Label for reports and the model card, e.g. `ja`, `en`, `code`."),
        Field("description", .text, "Free text."),
        Field("filters", .list(.tagged(filter)), "Filters applied in order.", default: .value(.array([]))),
        Field("tokens", .count(min: 1), "Size of the source in tokens after filtering (declared; measured when the corpus is prepared).", unit: "tokens"),
        Field("weight", .real(min: 0), "Relative share of training tokens (token level).", unit: "relative"),
        Field("budget", .count(min: 0), "Absolute number of training tokens drawn from this source.", unit: "tokens"),
        Field("max_epochs", .real(min: 0, exclusiveMin: true), "Warn when the mix draws more than this many passes over the source.", unit: "epochs"),
    ])

    public static let corpus = ObjectSchema("Corpus", "Pretraining data: named sources and how they mix.", fields: [
        Field("sources", .map(.object(corpusSource), key: "source name"), "Sources by name.", required: true),
        Field("on_error", .choice(of: OnError.self), "What to do with malformed lines or invalid UTF-8: skip them (counted in the report) or stop.",
              default: .value(.string("skip"))),
        Field("held_out", .real(min: 0, max: 0.5, percent: true), "Fraction of documents held out for validation loss.", default: .value(.double(0)), unit: "fraction of documents"),
    ])

    // MARK: Model

    public static let model = ObjectSchema("Model",
        "Architecture. `llama` matches Hugging Face `LlamaForCausalLM` (RMSNorm, RoPE, SwiGLU, no biases); " +
        "`gpt2` matches `GPT2LMHeadModel` (LayerNorm, learned positions, GELU, biases).", fields: [
        Field("arch", .choice(architectures), "Architecture family.", required: true),
        Field("hidden", .count(min: 1, max: 1 << 20), "Hidden size (d_model).", required: true, unit: "dimensions"),
        Field("ffn", .count(min: 1, max: 1 << 22), "Feed-forward inner size.",
              default: .derived("gpt2: 4 × hidden; llama: ⌊(8/3 × hidden) / 64⌋ × 64 (Megatron's SwiGLU default)"), unit: "dimensions"),
        Field("layers", .count(min: 1, max: 10_000), "Number of transformer layers.", required: true, unit: "layers"),
        Field("heads", .count(min: 1, max: 65_536), "Attention (query) heads.", required: true, unit: "heads"),
        Field("kv_heads", .count(min: 1, max: 65_536), "Key/value heads (grouped-query attention when fewer than heads).", default: .derived("heads"), unit: "heads"),
        Field("vocab_size", .oneOf([.count(min: 1, max: 16_777_216), .choice(["auto"])]),
              "Embedding rows. `auto`: the tokenizer's vocabulary padded up to a multiple of `pad_vocab_multiple × parallel.tensor` (Megatron's rule).",
              default: .value(.string("auto")), unit: "tokens"),
        Field("pad_vocab_multiple", .count(min: 1, max: 65_536), "Vocabulary padding multiple (Megatron's `make-vocab-size-divisible-by`).",
              default: .value(.int(128)), unit: "tokens"),
        Field("seq_len", .count(min: 1, max: 1 << 24), "Training sequence length in tokens.", required: true, unit: "tokens"),
        Field("max_positions", .count(min: 1, max: 1 << 24), "Maximum positions (HF `max_position_embeddings` / `n_positions`).", default: .derived("seq_len"), unit: "positions"),
        Field("rope_theta", .real(min: 0, exclusiveMin: true), "RoPE base (llama only).", default: .derived("llama: 10000; gpt2: not applicable"), unit: "base"),
        Field("norm_eps", .real(min: 0, max: 1, exclusiveMin: true), "Epsilon of RMSNorm / LayerNorm.", default: .value(.double(1e-5))),
        Field("activation", .choice(activations), "MLP activation: `swiglu` (llama), `gelu` exact or `gelu_tanh` (gpt2's `gelu_new`).",
              default: .derived("llama: swiglu; gpt2: gelu_tanh")),
        Field("tie_embeddings", .boolean, "Share the input embedding with the output head.", default: .derived("llama: false; gpt2: true")),
        Field("init_std", .real(min: 0, exclusiveMin: true), "Standard deviation of the normal initialisation.", default: .value(.double(0.02))),
        Field("dropout", .real(min: 0, max: 1, exclusiveMax: true), "Dropout on embeddings and residual branches.", default: .value(.double(0)), unit: "probability"),
        Field("attention_dropout", .real(min: 0, max: 1, exclusiveMax: true), "Dropout on attention probabilities.", default: .value(.double(0)), unit: "probability"),
        Field("attention_kernel", .choice(of: AttentionKernel.self),
              "`flash`: blocked attention that never stores the (T, T) score matrix; `standard`: stores it (counted by the memory plan).",
              default: .value(.string("flash"))),
    ])

    // MARK: Parallelism and training

    public static let parallel = ObjectSchema("Parallel", "How training is split over devices (Megatron-style).", fields: [
        Field("tensor", .count(min: 1, max: 65_536), "Tensor-parallel size.", default: .value(.int(1)), unit: "ranks"),
        Field("pipeline", .count(min: 1, max: 65_536), "Pipeline-parallel size (1F1B schedule).", default: .value(.int(1)), unit: "stages"),
        Field("data", .oneOf([.count(min: 1, max: 16_777_216), .choice(["auto"])]),
              "Data-parallel size, or `auto` = devices / (tensor × pipeline).", default: .value(.string("auto")), unit: "ranks"),
        Field("sequence_parallel", .boolean, "Shard norm and dropout activations along the sequence over the tensor group.", default: .value(.bool(false))),
        Field("zero_stage", .plainInt(min: 0, max: 3), "ZeRO stage: 0 none, 1 optimizer states sharded (Megatron's distributed optimizer), 2 also gradients, 3 also weights.",
              default: .value(.int(0))),
        Field("recompute", .choice(of: Recompute.self),
              "Activation recomputation: `selective` recomputes the attention core, `full` stores only each layer's input.", default: .value(.string("none"))),
        Field("micro_batch", .count(min: 1, max: 1 << 20), "Sequences per micro batch per data-parallel rank.", default: .value(.int(1)), unit: "sequences"),
    ])

    public static let optimizer = ObjectSchema("Optimizer", "AdamW with decoupled weight decay.", fields: [
        Field("kind", .choice(of: OptimizerKind.self), "Optimizer.", default: .value(.string("adamw"))),
        Field("lr", .real(min: 0, exclusiveMin: true), "Peak learning rate.", required: true, unit: "per step"),
        Field("betas", .list(.real(min: 0, max: 1, exclusiveMax: true), minItems: 2, maxItems: 2), "Adam β1, β2.",
              default: .value(.array([RNode(.double(0.9), .defaulted), RNode(.double(0.999), .defaulted)]))),
        Field("eps", .real(min: 0, exclusiveMin: true), "Adam ε.", default: .value(.double(1e-8))),
        Field("weight_decay", .real(min: 0), "Decoupled weight decay.", default: .value(.double(0))),
        Field("decay_norms_and_biases", .boolean, "Also decay norm weights and biases (off, as in Megatron and HF).", default: .value(.bool(false))),
    ])

    public static let schedule = ObjectSchema("Schedule", "Learning-rate schedule: linear warm-up, then decay to `min_lr`.",
                                              exclusive: [["warmup_steps", "warmup_fraction"]], fields: [
        Field("kind", .choice(of: ScheduleKind.self), "Decay shape after warm-up.", default: .value(.string("cosine"))),
        Field("warmup_steps", .count(min: 0), "Warm-up steps.", unit: "steps"),
        Field("warmup_fraction", .real(min: 0, max: 1, exclusiveMax: true, percent: true), "Warm-up as a fraction of the steps.", unit: "fraction of steps"),
        Field("min_lr", .real(min: 0), "Learning rate at the end of the decay.", default: .value(.double(0)), unit: "per step"),
        Field("decay_steps", .count(min: 1), "Steps over which the rate decays (Megatron's `lr-decay-iters`).", default: .derived("the stage's steps"), unit: "steps"),
    ])

    public static let checkpointing = ObjectSchema("Checkpointing", "When checkpoints are written and how many are kept.", fields: [
        Field("every", .count(min: 1), "Steps between checkpoints (one is always written at the end).", default: .value(.int(1000)), unit: "steps"),
        Field("keep", .count(min: 0), "Checkpoints kept (0 keeps all).",
              default: .derived("3 on `cpu`; 0 on GPUs (every checkpoint kept, as Megatron-LM does)"), unit: "checkpoints"),
    ])

    public static let tuneCheckpointing = ObjectSchema("TuneCheckpointing",
        "When a tune stage writes checkpoints (under `tune/<name>/checkpoints`, resumed automatically) and how many are kept.", fields: [
        Field("every", .count(min: 1), "Steps between checkpoints (one is always written at the end).",
              default: .derived("a tenth of the stage's steps, at least 1"), unit: "steps"),
        Field("keep", .count(min: 0), "Checkpoints kept (0 keeps all).", default: .value(.int(2)), unit: "checkpoints"),
    ])

    public static let pretrain = ObjectSchema("Pretrain", "Pretraining on the corpus mix.", fields: [
        Field("global_batch", .count(min: 1, max: 1 << 30), "Sequences per optimizer step, over all data-parallel ranks.", required: true, unit: "sequences"),
        Field("steps", .count(min: 1), "Optimizer steps.", default: .derived("⌈tokens / (global_batch × seq_len)⌉"), unit: "steps"),
        Field("tokens", .count(min: 1), "Training tokens; with `steps`, must agree within one step.", default: .derived("steps × global_batch × seq_len"), unit: "tokens"),
        Field("optimizer", .object(optimizer), "Optimizer.", required: true),
        Field("schedule", .object(schedule), "Learning-rate schedule."),
        Field("grad_clip", .real(min: 0), "Clip the global gradient norm (0 disables).", default: .value(.double(1)), unit: "L2 norm"),
        Field("precision", .choice(of: Precision.self), "Training precision (mixed precision keeps fp32 master weights).",
              default: .derived("fp32 on `cpu` devices (Kondate's CPU runtime also runs bf16 mixed precision when asked), bf16 otherwise")),
        Field("checkpoint", .object(checkpointing), "Checkpointing."),
        Field("log_interval", .count(min: 1), "Steps between metric lines.", default: .value(.int(1)), unit: "steps"),
        Field("eval_interval", .count(min: 1), "Steps between validation-loss evaluations on the held-out split (absent: none).", unit: "steps"),
        Field("eval_iters", .count(min: 1), "Batches per validation-loss evaluation.", default: .value(.int(10)), unit: "batches"),
        Field("nan_policy", .choice(of: NaNPolicy.self), "On a NaN/Inf loss or gradient: skip the step or stop the run.", default: .value(.string("stop"))),
    ])

    // MARK: Tuning

    public static let tuneDataset = ObjectSchema("TuneDataset", "An instruction dataset.", fields: [
        Field("paths", .list(.glob, minItems: 1), "JSONL files or globs, relative to the recipe.", required: true),
        Field("format", .choice(of: TuneDataFormat.self),
              "`alpaca`: instruction/input/output; `chat`: messages with role/content; `jaster`: llm-jp-eval's tuning format.",
              default: .value(.string("alpaca"))),
        Field("weight", .real(min: 0), "Relative sampling weight.", default: .value(.double(1)), unit: "relative"),
        Field("epochs", .real(min: 0, exclusiveMin: true), "Passes over this dataset per stage epoch (e.g. 16 to up-sample).", default: .value(.double(1)), unit: "epochs"),
        Field("description", .text, "Free text, e.g. the Hugging Face dataset id."),
    ])

    public static let template = ObjectSchema("Template", "A prompt template written in the recipe.", fields: [
        Field("prompt", .text, "Text before the response; must contain `{instruction}`, may contain `{input}`.", required: true),
        Field("prompt_with_input", .text, "Variant used when the example has a non-empty input; must contain `{instruction}` and `{input}`."),
        Field("system", .text, "System text placed first, if any."),
    ])

    public static let tuneStage = ObjectSchema("TuneStage", "A supervised fine-tuning stage.", fields: [
        Field("from", .text, "Starting checkpoint: `pretrain`, another tune stage's name, or `hf:PATH` for a Hugging Face model directory.", required: true),
        Field("datasets", .map(.object(tuneDataset), key: "dataset name"), "Datasets by name.", required: true),
        Field("template", .text, "Prompt template: `llm-jp-v1.1`, `llm-jp-v2-chat`, or a name under `templates`.", default: .value(.string(defaultTemplate))),
        Field("loss_mask", .choice(of: LossMask.self), "Tokens that carry loss: only the response (default) or the whole text (train on input).",
              default: .value(.string("response_only"))),
        Field("epochs", .real(min: 0, exclusiveMin: true), "Passes over the data.", default: .value(.double(1)), unit: "epochs"),
        Field("global_batch", .count(min: 1), "Sequences per optimizer step.", required: true, unit: "sequences"),
        Field("micro_batch", .count(min: 1), "Sequences per micro batch per data-parallel rank.", default: .value(.int(1)), unit: "sequences"),
        Field("lr", .real(min: 0, exclusiveMin: true), "Peak learning rate.", required: true, unit: "per step"),
        Field("weight_decay", .real(min: 0), "Decoupled weight decay.", default: .value(.double(0))),
        Field("schedule", .object(schedule), "Learning-rate schedule."),
        Field("max_length", .count(min: 1), "Maximum tokens per example; longer ones are truncated.", default: .derived("model.seq_len"), unit: "tokens"),
        Field("packing", .boolean, "Pack several short examples into one sequence.", default: .value(.bool(false))),
        Field("precision", .choice(of: Precision.self), "Training precision.", default: .derived("pretrain.precision; without pretraining fp32 on cpu, bf16 otherwise")),
        Field("checkpoint", .object(tuneCheckpointing), "Checkpointing; an interrupted stage resumes from its newest checkpoint."),
    ])

    // MARK: Evaluation and release

    public static let judge = ObjectSchema("Judge", "An LLM judge behind an OpenAI-compatible endpoint, scoring 1–10 with `[[rating]]`.", fields: [
        Field("endpoint", .url, "Base URL of the OpenAI-compatible API.", required: true),
        Field("model", .text, "Judge model name.", required: true),
        Field("api_key_env", .text, "Environment variable holding the API key.", default: .value(.string("OPENAI_API_KEY"))),
    ])

    public static let evalSuite = ObjectSchema("EvalSuite", "An evaluation suite run on one or more checkpoints.", fields: [
        Field("kind", .choice(of: EvalKind.self), "Suite kind.", required: true),
        Field("datasets", .list(.glob, minItems: 1), "Dataset files or globs, relative to the recipe.", required: true),
        Field("checkpoints", .list(.text, minItems: 1), "Checkpoints to evaluate: `pretrain` and/or tune stage names.", required: true),
        Field("few_shots", .count(min: 0, max: 64), "Few-shot examples per prompt (llm-jp-eval `num_few_shots`).", default: .value(.int(4)), unit: "examples"),
        Field("max_samples", .oneOf([.count(min: 1), .choice(["all"])]), "Samples per dataset: llm-jp-eval's `max_num_samples`; for perplexity, windows of `model.seq_len` tokens per file; for generation, questions per file.",
              default: .value(.int(100)), unit: "samples per dataset"),
        Field("metrics", .list(.choice(metricNames)), "Metrics; llm-jp-eval datasets name their own when absent.", default: .value(.array([]))),
        Field("prompt_template", .text,
              "llm-jp-eval suites: llm-jp-eval's `custom_prompt_template`, with `{instruction}`, `{input}` and (with few-shots) `{few_shots_text}`; its default template when absent."),
        Field("few_shots_template", .text,
              "llm-jp-eval suites: llm-jp-eval's `custom_fewshots_template` for each few-shot, with `{input}` and `{output}`; needs `prompt_template`."),
        Field("template", .text, "Generation suites: the chat template that renders the conversation (`llm-jp-v1.1`, `llm-jp-v2-chat`, or a name under `templates`).",
              default: .derived("generation suites: `llm-jp-v1.1`; other kinds take no template")),
        Field("max_new_tokens", .count(min: 1), "Generation limit for `generation` suites.", default: .value(.int(512)), unit: "tokens"),
        Field("temperature", .real(min: 0), "Sampling temperature for `generation` suites (0 is greedy).", default: .value(.double(0))),
        Field("judge", .object(judge), "Optional judge for `generation` suites."),
    ])

    public static let release = ObjectSchema("Release", "What is published and from which checkpoint.", fields: [
        Field("name", .label, "Release name, e.g. `llm-jp-13b-v2.0`.", required: true),
        Field("checkpoint", .text, "Checkpoint to release: `pretrain` or a tune stage name.", required: true),
        Field("formats", .list(.choice(of: ReleaseFormat.self), minItems: 1), "Output formats (`hf`: a transformers model directory).",
              default: .value(.array([RNode(.string("hf"), .defaulted)]))),
        Field("contents", .list(.choice(of: ReleaseContent.self), minItems: 1), "Files in the bundle.",
              default: .value(.array(ReleaseContent.words.map { RNode(.string($0), .defaulted) }))),
        Field("dtype", .choice(of: Precision.self), "Weight dtype in the release.", default: .value(.string("bf16"))),
        Field("license", .text, "License identifier for the model card."),
    ])

    // MARK: Root

    public static let recipe = ObjectSchema("Recipe", "A Kondate recipe: one experiment from corpus to release.", fields: [
        Field("name", .label, "Recipe name (letters, digits, `.`, `_`, `-`); names run directories.", required: true),
        Field("description", .text, "What this recipe is."),
        Field("seed", .count(min: 0, max: Int(UInt32.max)), "Seed for initialisation, data order, dropout and dedup hashing.", default: .value(.int(1234))),
        Field("cluster", .object(cluster), "Hardware."),
        Field("tokenizer", .object(tokenizer), "Tokenizer.", presence: true),
        Field("corpus", .object(corpus), "Pretraining corpus."),
        Field("model", .object(model), "Model architecture.", required: true),
        Field("parallel", .object(parallel), "Parallel layout."),
        Field("pretrain", .object(pretrain), "Pretraining stage."),
        Field("templates", .map(.object(template), key: "template name"), "Prompt templates written in the recipe."),
        Field("tune", .map(.object(tuneStage), key: "stage name"), "Fine-tuning stages by name."),
        Field("eval", .map(.object(evalSuite), key: "suite name"), "Evaluation suites by name."),
        Field("release", .object(release), "Release bundle."),
    ])

    /// Composition directives, removed before the schema check; listed so editors complete them.
    public static let directives: [Field] = [
        Field("extends", .oneOf([.path, .list(.path, minItems: 1)]), "Recipe file(s) this one builds on, relative to this file; merged in order."),
        Field("unset", .list(.text), "Dotted paths of inherited keys to delete, e.g. `corpus.sources.ja_mc4`."),
    ]

    public static let root = SchemaType.object(recipe)
}
