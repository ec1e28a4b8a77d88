/// Fills the defaults that depend on other values (`FieldDefault.derived` in the schema), so the
/// resolved recipe states every value a run uses. Runs after the schema check; values it cannot
/// derive (because an input is missing or invalid) stay absent and the checks report why.
public enum DerivedDefaults {
    public static func apply(to tree: inout RNode, diagnostics: inout DiagnosticSet) {
        func set(_ path: String, _ value: Value, _ reason: String) {
            if tree.at(path) == nil { tree.set(path, RNode(value, .derived(reason))) }
        }
        let arch = tree.at("model.arch")?.string

        // Precision and checkpoint retention follow the device.
        if tree.at("pretrain") != nil {
            let cpu = (tree.at("cluster.device")?.string ?? "cpu") == "cpu"
            set("pretrain.precision", .string(cpu ? "fp32" : "bf16"), cpu ? "fp32 on cpu devices" : "bf16 on accelerators")
            set("pretrain.checkpoint.keep", .int(cpu ? 3 : 0), cpu ? "3 on cpu devices" : "every checkpoint kept on GPUs, as Megatron-LM does")
        }

        // Cluster figures from the catalog.
        if let device = tree.at("cluster.device")?.string, let spec = DeviceCatalog.spec(device) {
            set("cluster.device_memory", .int(spec.memoryBytes), "memory of \(device) from the device catalog")
            let precision = tree.at("pretrain.precision")?.string ?? (device == "cpu" ? "fp32" : "bf16")
            set("cluster.peak_flops", .double(spec.peak(precision: precision)), "\(precision) peak of \(device) from the device catalog")
        }

        // Tokenizer.
        if tree.at("tokenizer") != nil {
            if let path = tree.at("tokenizer.path")?.string {
                set("tokenizer.format", .string(path.hasSuffix(".model") ? "sentencepiece" : "tokenizer_json"), "from the extension of tokenizer.path")
            } else if tree.at("tokenizer.train") != nil {
                set("tokenizer.format", .string(tree.at("tokenizer.train.algorithm")?.string == "unigram" ? "sentencepiece" : "tokenizer_json"),
                    "from tokenizer.train.algorithm")
            }
            if let v = tree.at("tokenizer.train.vocab_size")?.int {
                set("tokenizer.vocab_size", .int(v), "tokenizer.train.vocab_size")
            }
            if tree.at("tokenizer.train") != nil, let sources = tree.at("corpus.sources")?.entries {
                set("tokenizer.train.sources", .array(sources.map { RNode(.string($0.key), .derived("all corpus sources")) }), "all corpus sources")
            }
        }

        // Model shape.
        if let hidden = tree.at("model.hidden")?.int, let arch {
            let ffn = arch == "gpt2" ? 4 * hidden : (8 * hidden / 3) / 64 * 64
            set("model.ffn", .int(max(ffn, 1)), arch == "gpt2" ? "4 × model.hidden" : "⌊8/3 × model.hidden / 64⌋ × 64")
        }
        if let heads = tree.at("model.heads")?.int { set("model.kv_heads", .int(heads), "model.heads") }
        if let seq = tree.at("model.seq_len")?.int { set("model.max_positions", .int(seq), "model.seq_len") }
        if arch == "llama" { set("model.rope_theta", .double(10_000), "llama default") }
        if let arch {
            set("model.activation", .string(arch == "gpt2" ? "gelu_tanh" : "swiglu"), "\(arch) default")
            set("model.tie_embeddings", .bool(arch == "gpt2"), "\(arch) default")
        }

        // Parallel layout.
        let world = (tree.at("cluster.nodes")?.int ?? 1) * (tree.at("cluster.devices_per_node")?.int ?? 1)
        let tp = tree.at("parallel.tensor")?.int ?? 1
        let pp = tree.at("parallel.pipeline")?.int ?? 1
        if tree.at("parallel.data")?.string == "auto", tp * pp > 0, world % (tp * pp) == 0 {
            tree.set("parallel.data", RNode(.int(world / (tp * pp)), .derived("\(world) devices / (tensor \(tp) × pipeline \(pp))")))
        }

        // Vocabulary padding (Megatron: multiple of make-vocab-size-divisible-by × tensor).
        if tree.at("model.vocab_size")?.string == "auto", let tokenizerVocab = tree.at("tokenizer.vocab_size")?.int,
           let multiple = tree.at("model.pad_vocab_multiple")?.int {
            let m = multiple * tp
            let padded = (tokenizerVocab + m - 1) / m * m
            tree.set("model.vocab_size", RNode(.int(padded),
                .derived("tokenizer.vocab_size \(tokenizerVocab) padded to a multiple of \(multiple) × tensor \(tp) = \(m)")))
        }

        // Training length.
        if tree.at("pretrain") != nil, let gb = tree.at("pretrain.global_batch")?.int, let seq = tree.at("model.seq_len")?.int, gb > 0, seq > 0 {
            let perStep = gb.multipliedReportingOverflow(by: seq)
            if !perStep.overflow {
                if let steps = tree.at("pretrain.steps")?.int, tree.at("pretrain.tokens") == nil {
                    let tokens = steps.multipliedReportingOverflow(by: perStep.partialValue)
                    if !tokens.overflow {
                        set("pretrain.tokens", .int(tokens.partialValue), "steps × global_batch × seq_len")
                    } else {
                        diagnostics.error(.trainingLength, "steps \(steps) × global_batch \(gb) × seq_len \(seq) tokens is beyond any training run (integer overflow)",
                                          at: tree.at("pretrain.steps")?.location, notes: tree.at("pretrain.steps")?.provenance.notes ?? [])
                    }
                } else if let tokens = tree.at("pretrain.tokens")?.int, tree.at("pretrain.steps") == nil {
                    let steps = (tokens + perStep.partialValue - 1) / perStep.partialValue
                    set("pretrain.steps", .int(steps), "⌈tokens / (global_batch × seq_len)⌉")
                }
            }
            if let steps = tree.at("pretrain.steps")?.int, tree.at("pretrain.schedule") != nil {
                set("pretrain.schedule.decay_steps", .int(steps), "pretrain.steps")
            }
        }

        // Generation suites render with a chat template.
        for suite in tree.at("eval")?.entries ?? [] where suite.node["kind"]?.string == EvalKind.generation.rawValue {
            set("eval.\(suite.key).template", .string(RecipeSchema.defaultTemplate), "generation suites' default chat template")
        }

        // Tune stages.
        if let stages = tree.at("tune")?.entries {
            for stage in stages {
                if let seq = tree.at("model.seq_len")?.int { set("tune.\(stage.key).max_length", .int(seq), "model.seq_len") }
                let device = tree.at("cluster.device")?.string ?? "cpu"
                set("tune.\(stage.key).precision", .string(tree.at("pretrain.precision")?.string ?? (device == "cpu" ? "fp32" : "bf16")),
                    "pretrain.precision, else by device")
            }
        }
    }
}
