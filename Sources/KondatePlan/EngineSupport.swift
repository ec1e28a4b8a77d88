import KondateRecipe
import KondateSupport

/// What executes a recipe.
public enum Engine: String, CaseIterable, Sendable {
    /// Kondate's own runtime: `kondate run`, in one process or under mpirun; computes on the CPU in fp32.
    case kondate
    /// Megatron-LM, started by `kondate launch --engine megatron`: the pretraining stage on CUDA GPUs.
    /// Kondate's runtime prepares its corpus and tokenizer (`kondate run --until corpus`).
    case megatron

    /// The engine a command targets when it is not told: Kondate's runtime for `cpu` devices,
    /// Megatron-LM for GPUs (Kondate's runtime computes on the CPU only).
    public static func `default`(for recipe: Recipe) -> Engine { recipe.cluster.device.isGPU ? .megatron : .kondate }

    /// The command that executes a recipe on this engine, for messages.
    public var command: String {
        switch self {
        case .kondate: "kondate run"
        case .megatron: "kondate launch --engine megatron"
        }
    }

    /// A name for humans.
    public var title: String {
        switch self {
        case .kondate: "Kondate's runtime"
        case .megatron: "Megatron-LM"
        }
    }
}

/// How an engine treats one recipe key.
public enum EngineVerdict: Sendable {
    /// Applied as the schema documents it; the text says how when it is not obvious.
    case honoured(String)
    /// Refused by validation, at the key, under the condition the text states.
    case rejected(String)
    /// Read by the plan or by a launcher (`kondate plan`, `kondate launch`), not by the computation.
    case planning(String)
    /// The engine does not run the stage that reads the key.
    case notRun(String)

    public var label: String {
        switch self {
        case .honoured: "honoured"
        case .rejected: "rejected"
        case .planning: "planning"
        case .notRun: "not run"
        }
    }

    public var text: String {
        switch self {
        case let .honoured(t), let .rejected(t), let .planning(t), let .notRun(t): t
        }
    }
}

/// Every recipe key × engine: honoured, or rejected by `kondate validate` at its location with the
/// reason and the alternative. `rules` states the exceptions to each engine's default (`verdict`);
/// `check` finds the rejected settings of a recipe. docs/engines.md is generated from this file
/// (`kondate docs engines`), and a test keeps it in sync and checks that every rule names a schema key.
public enum EngineSupport {
    /// A key pattern: a dotted schema path where `<name>` stands for any user-named entry
    /// (`tune.<stage>.precision`).
    public struct Rule: Sendable {
        public var key: String
        public var engine: Engine
        public var verdict: EngineVerdict
    }

    static let cpuOnly = "Kondate's runtime computes on the CPU (fp32, or bf16 mixed precision)"

    /// The verdicts that differ from each engine's default.
    public static let rules: [Rule] = [
        // Kondate's runtime.
        Rule(key: "cluster.device", engine: .kondate, verdict: .rejected(
            "when it names a GPU: \(cpuOnly); pretrain on GPUs with `kondate launch --engine megatron`, or smoke-test the recipe here with `--set cluster.device=cpu`")),
        Rule(key: "cluster.nodes", engine: .kondate, verdict: .honoured(
            "under mpirun the ranks are the ones mpirun starts (`kondate launch --mpirun` starts nodes × devices_per_node); without mpirun one process computes the whole layout")),
        Rule(key: "cluster.devices_per_node", engine: .kondate, verdict: .honoured("as cluster.nodes")),
        Rule(key: "parallel.data", engine: .kondate, verdict: .honoured("the ranks mpirun starts divided by tensor × pipeline; one process without mpirun")),
        Rule(key: "parallel.sequence_parallel", engine: .kondate, verdict: .rejected(
            "when true: sequence parallelism is not implemented in Kondate's runtime; set it to false (it changes memory, not results)")),
        Rule(key: "parallel.zero_stage", engine: .kondate, verdict: .rejected(
            "when 3: Kondate's runtime shards optimizer states (ZeRO-1) and gradients (ZeRO-2), not parameters; set zero_stage to 2, 1 or 0")),
        Rule(key: "parallel.recompute", engine: .kondate, verdict: .honoured(
            "full: each layer's forward is recomputed before its backward, keeping only layer inputs (bitwise the same results); selective: the attention kernel never stores the (T, T) scores, which is what selective recomputation discards")),
        Rule(key: "model.dropout", engine: .kondate, verdict: .honoured(
            "in pretraining, on the embeddings' output and each attention and MLP output (Megatron-LM's hidden dropout), masks seeded by step and row; tune stages train without dropout")),
        Rule(key: "model.attention_dropout", engine: .kondate, verdict: .honoured("in pretraining, on the attention probabilities; as model.dropout")),
        Rule(key: "model.attention_kernel", engine: .kondate, verdict: .rejected(
            "when standard: Kondate's runtime computes attention in blocks and never stores the (T, T) scores; set attention_kernel: flash")),
        Rule(key: "pretrain.precision", engine: .kondate, verdict: .rejected(
            "when fp16: Kondate's runtime has no fp16 loss scaling; use bf16 (mixed precision: bf16 matmuls, f32 master weights, gradients and optimizer) or fp32")),
        Rule(key: "tune.<stage>.precision", engine: .kondate, verdict: .rejected("as pretrain.precision")),
        Rule(key: "release.dtype", engine: .kondate, verdict: .honoured("weights are rounded to it when the release is written")),
        Rule(key: "tokenizer.train.algorithm", engine: .kondate, verdict: .rejected(
            "when unigram: Kondate trains byte-level BPE only; use algorithm: bpe, or load a SentencePiece unigram model with tokenizer.path")),
        Rule(key: "tokenizer.train.byte_fallback", engine: .kondate, verdict: .rejected(
            "when false: byte-level BPE encodes every character through its 256 byte tokens, so byte fallback cannot be turned off; remove the key")),
        Rule(key: "tokenizer.train.split_digits", engine: .kondate, verdict: .honoured(
            "numeric characters are isolated before the byte-level split in training and in the written tokenizer.json (`Digits` pre-tokenizer)")),
        Rule(key: "tokenizer.special_tokens.additional", engine: .kondate, verdict: .rejected(
            "with tokenizer.path: a loaded tokenizer declares its special tokens in its file; with tokenizer.train they join the trained vocabulary")),
        Rule(key: "tokenizer.special_tokens.additional", engine: .megatron, verdict: .rejected("as for Kondate's runtime, which prepares the tokenizer")),
        Rule(key: "corpus.sources.<source>.max_epochs", engine: .kondate, verdict: .honoured("a warning from the plan when the mix draws more passes")),

        // Megatron-LM (checked by `Launch.megatronArguments`).
        Rule(key: "cluster.device", engine: .megatron, verdict: .rejected("when cpu: Megatron-LM trains on CUDA GPUs; use `kondate run`")),
        Rule(key: "cluster.partition", engine: .megatron, verdict: .honoured("`#SBATCH --partition` with `--slurm`")),
        Rule(key: "cluster.account", engine: .megatron, verdict: .honoured("`#SBATCH --account` with `--slurm`")),
        Rule(key: "cluster.time_limit", engine: .megatron, verdict: .honoured("`#SBATCH --time` with `--slurm`")),
        Rule(key: "parallel.zero_stage", engine: .megatron, verdict: .rejected(
            "when 2 or 3: Megatron-LM's distributed optimizer shards optimizer states only (ZeRO-1); set zero_stage to 0 or 1")),
        Rule(key: "model.vocab_size", engine: .megatron, verdict: .rejected(
            "when Megatron cannot reach it by padding the tokenizer's vocabulary to a multiple of --make-vocab-size-divisible-by × tensor")),
        Rule(key: "model.rope_theta", engine: .megatron, verdict: .rejected("when not a whole number: --rotary-base is an integer")),
        Rule(key: "pretrain.optimizer.decay_norms_and_biases", engine: .megatron, verdict: .rejected("when true: Megatron-LM never decays biases and norm weights")),
        Rule(key: "pretrain.nan_policy", engine: .megatron, verdict: .rejected("when skip: Megatron-LM stops on a NaN or infinite loss and cannot skip the step")),
        Rule(key: "pretrain.schedule.warmup_steps", engine: .megatron, verdict: .rejected("when not shorter than the decay: Megatron requires lr-warmup-iters < lr-decay-iters")),
        Rule(key: "pretrain.schedule.warmup_fraction", engine: .megatron, verdict: .rejected("as warmup_steps")),
        Rule(key: "pretrain.checkpoint.keep", engine: .megatron, verdict: .rejected(
            "when above 0: Megatron-LM keeps every checkpoint it saves; set keep: 0 and delete old iter_* directories yourself")),
        Rule(key: "tokenizer.path", engine: .megatron, verdict: .rejected(
            "when a tokenizer.json file is not named tokenizer.json: Megatron's HuggingFaceTokenizer loads a directory")),
        Rule(key: "tokenizer.train.algorithm", engine: .megatron, verdict: .rejected("when unigram: Kondate trains byte-level BPE only")),
        Rule(key: "tokenizer.train.byte_fallback", engine: .megatron, verdict: .rejected("as for Kondate's runtime, which trains the tokenizer")),
        Rule(key: "tokenizer.train.split_digits", engine: .megatron, verdict: .honoured("by Kondate's tokenizer stage, whose tokenizer.json Megatron-LM loads")),
    ]

    static let planningKeys: Set<String> = [
        "cluster.device_memory", "cluster.peak_flops", "cluster.assumed_mfu", "cluster.compute_efficiency",
        "cluster.intra_node_bandwidth", "cluster.inter_node_bandwidth", "cluster.intra_node_latency", "cluster.inter_node_latency",
        "cluster.partition", "cluster.account", "cluster.time_limit",
    ]

    /// The verdict of `engine` on `key` (a schema path with `<name>` for user-named entries).
    public static func verdict(key: String, engine: Engine) -> EngineVerdict {
        if let rule = rules.first(where: { $0.key == key && $0.engine == engine }) { return rule.verdict }
        if planningKeys.contains(key) { return .planning("plan estimates and launch scripts") }
        switch engine {
        case .kondate:
            return .honoured("")
        case .megatron:
            let section = key.split(separator: ".").first.map(String.init) ?? key
            switch section {
            case "tune", "eval", "templates", "release", "description":
                return .notRun("Megatron-LM runs the pretraining only; tuning, evaluation and the release run on Kondate's runtime")
            case "corpus", "tokenizer":
                return .honoured("by Kondate's corpus stages (`kondate run --until corpus`), whose .bin/.idx files Megatron-LM reads")
            default:
                return .honoured("")
            }
        }
    }

    /// The settings of `recipe` that `engine` cannot honour, each an error at its key with the reason
    /// and the alternative.
    public static func check(_ recipe: Recipe, engine: Engine) -> DiagnosticSet {
        switch engine {
        case .kondate:
            return checkKondate(recipe)
        case .megatron:
            // Kondate's runtime still prepares the tokenizer and the corpus Megatron-LM reads.
            var diagnostics = checkKondateTokenizers(recipe)
            let settings = LaunchSettings(recipeFile: recipe.file, runDirectory: "runs/\(recipe.name)", workingDirectory: ".")
            let launch: DiagnosticSet
            do { launch = try Launch.megatronArguments(recipe, settings: settings).diagnostics } catch { launch = error.diagnostics }
            // Refusals only (the launch's warnings name its run directory; `kondate launch` prints them). A
            // setting both refuse (a unigram tokenizer) is reported once.
            let reported = Set(diagnostics.items.compactMap(\.location))
            for d in launch.errors where d.location.map({ !reported.contains($0) }) ?? true { diagnostics.add(d) }
            return diagnostics
        }
    }

    /// An `engine` error at the key, with the notes of where its value came from.
    static func refuse(_ d: inout DiagnosticSet, _ r: Recipe, _ path: String, _ message: String) {
        d.error(.engine, message, at: r.tree.diagnosticLocation(path), notes: r.tree.at(path)?.provenance.notes ?? [])
    }

    /// The stages Kondate's runtime runs for every engine: the tokenizer (and corpus).
    static func checkKondateTokenizers(_ r: Recipe) -> DiagnosticSet {
        var d = DiagnosticSet()
        func reject(_ path: String, _ message: String) { refuse(&d, r, path, message) }
        if let t = r.tokenizer, t.path != nil, !t.additionalSpecialTokens.isEmpty {
            reject("tokenizer.special_tokens.additional", "special_tokens.additional adds tokens to a tokenizer Kondate trains; a loaded " +
                   "tokenizer (tokenizer.path) declares its special tokens in its own file: remove the key, or add the tokens to the file")
        }
        if let train = r.tokenizer?.train {
            if train.algorithm == .unigram {
                reject("tokenizer.train.algorithm", "algorithm: unigram: Kondate trains byte-level BPE only; use algorithm: bpe, " +
                       "or load a SentencePiece unigram model with tokenizer.path")
            }
            if !train.byteFallback {
                reject("tokenizer.train.byte_fallback", "byte_fallback: false cannot be honoured: byte-level BPE encodes every character " +
                       "through its 256 byte tokens; remove the key")
            }
        }
        return d
    }

    static func checkKondate(_ r: Recipe) -> DiagnosticSet {
        var d = DiagnosticSet()
        let tree = r.tree
        func reject(_ path: String, _ message: String) { refuse(&d, r, path, message) }
        let run = "Kondate's runtime (kondate run)"
        if r.cluster.device.isGPU {
            reject("cluster.device", "cluster.device '\(r.cluster.device.rawValue)' is a GPU, but \(run) computes on the CPU: pretrain on GPUs with " +
                   "`kondate launch --engine megatron`, or smoke-test the recipe on this machine with `--set cluster.device=cpu`")
        }
        let p = r.parallel
        if p.sequenceParallel {
            reject("parallel.sequence_parallel", "sequence parallelism is not implemented in \(run); set sequence_parallel: false " +
                   "(it changes memory, not results)")
        }
        if p.zeroStage >= 3 {
            reject("parallel.zero_stage", "zero_stage \(p.zeroStage): \(run) shards optimizer states and gradients (ZeRO stage 2), not the " +
                   "parameters; set zero_stage: 2 (or 1, or 0)")
        }
        let m = r.model
        if m.attentionKernel == .standard {
            reject("model.attention_kernel", "attention_kernel: standard: \(run) computes attention in blocks and never stores the (T, T) " +
                   "scores; set attention_kernel: flash")
        }
        // A precision derived from a GPU device, or a tune stage's from pretraining's, is not reported
        // again: the error at its source says what to change.
        func written(_ path: String) -> Bool { tree.at(path)?.location != nil }
        if let pre = r.pretrain, pre.precision == .fp16, written("pretrain.precision") || !r.cluster.device.isGPU {
            reject("pretrain.precision", "precision fp16: \(run) has no fp16 loss scaling; set precision: bf16 (mixed precision with f32 master " +
                   "weights) or fp32")
        }
        for t in r.tune where t.precision == .fp16 && written("tune.\(t.name).precision") {
            reject("tune.\(t.name).precision", "precision fp16: \(run) has no fp16 loss scaling; set precision: bf16 (mixed precision with f32 " +
                   "master weights) or fp32")
        }
        d.append(contentsOf: checkKondateTokenizers(r))
        return d
    }
}

extension EngineSupport {
    /// Every key of the recipe language as a dotted path, `<name>` standing for user-named entries
    /// (`tune.<stage>.precision`), in schema order.
    public static func keyPaths() -> [String] {
        var out: [String] = []
        func walk(_ type: SchemaType, _ prefix: String) {
            switch type {
            case let .object(o):
                for field in o.fields {
                    let path = prefix.isEmpty ? field.name : prefix + "." + field.name
                    out.append(path)
                    walk(field.type, path)
                }
            case let .dictionary(d):
                walk(d.value, prefix + ".<" + (d.keyDoc.split(separator: " ").first.map(String.init) ?? "name") + ">")
            case .array, .string, .choice, .integer, .number, .boolean, .oneOf, .tagged:
                break
            }
        }
        walk(RecipeSchema.root, "")
        return out
    }

    /// docs/engines.md: every key × engine.
    public static func markdown() -> String {
        var out = """
        # Keys × engines

        Generated by `kondate docs engines` from `Sources/KondatePlan/EngineSupport.swift`; a test keeps it in sync.

        Every recipe key is either honoured by the engine that executes it or rejected by `kondate validate` at
        its `file:line:col`, with the reason and what to do instead. `kondate validate --engine E` checks a recipe
        for engine E (by default Kondate's runtime for `cpu` devices, Megatron-LM for GPUs); `kondate run`
        refuses exactly what `kondate validate --engine kondate` rejects, and `kondate launch --engine megatron`
        what `--engine megatron` rejects.

        - **honoured**: applied as docs/reference.md documents it (a note says how where it is not obvious);
        - **rejected**: refused at validation under the stated condition (other values are honoured);
        - **planning**: read by `kondate plan` and the launchers, not by the computation;
        - **not run**: the engine does not run the stage that reads the key.

        | key | Kondate's runtime (`kondate run`) | Megatron-LM (`kondate launch --engine megatron`) |
        |---|---|---|

        """
        func cell(_ v: EngineVerdict) -> String {
            let text = v.text.replacingOccurrences(of: "|", with: "\\|")
            return text.isEmpty ? v.label : "\(v.label): \(text)"
        }
        for key in keyPaths() {
            out += "| `\(key)` | \(cell(verdict(key: key, engine: .kondate))) | \(cell(verdict(key: key, engine: .megatron))) |\n"
        }
        return out
    }
}
