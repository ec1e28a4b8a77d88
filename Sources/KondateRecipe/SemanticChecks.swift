import KondateSupport

/// Consistency checks across sections, on the resolved tree. Every check runs whenever its inputs are
/// present and valid, so one pass reports all problems; checks on derived quantities (memory, corpus
/// epochs) live in KondatePlan.
public struct SemanticChecks {
    let tree: RNode
    /// Values present in the file but rejected by the schema check.
    let invalid: Set<String>
    public private(set) var diagnostics = DiagnosticSet()

    public init(tree: RNode, invalid: Set<String> = []) {
        self.tree = tree
        self.invalid = invalid
    }

    public static func run(on tree: RNode, invalid: Set<String> = []) -> DiagnosticSet {
        var checks = SemanticChecks(tree: tree, invalid: invalid)
        checks.checkSections()
        checks.checkTopology()
        checks.checkModel()
        checks.checkTraining()
        checks.checkTokenizer()
        checks.checkCorpus()
        checks.checkStages()
        return checks.diagnostics
    }

    // MARK: Access helpers

    func int(_ path: String) -> Int? { tree.at(path)?.int }
    func double(_ path: String) -> Double? { tree.at(path)?.double }
    func string(_ path: String) -> String? { tree.at(path)?.string }
    func has(_ path: String) -> Bool { tree.at(path) != nil || invalid.contains(path) }
    /// Set in a file or on the command line (not a default).
    func isWritten(_ path: String) -> Bool { tree.at(path)?.location != nil }

    /// Where to point for `path`: its value, else its key, else the key of the nearest written ancestor.
    func location(_ path: String) -> SourceLocation? { tree.diagnosticLocation(path) }

    /// "model.heads = 40, set at base.yaml:12" as a note pointing at the value.
    func note(_ path: String) -> DiagnosticNote {
        guard let node = tree.at(path) else { return DiagnosticNote("\(path) is not set") }
        let shown: String
        switch node.value {
        case let .int(i): shown = Format.grouped(i)
        case let .double(d): shown = Format.number(d)
        case let .string(s): shown = s
        case let .bool(b): shown = String(b)
        default: shown = node.value.kindName
        }
        if let location = node.location { return DiagnosticNote("\(path) = \(shown)", at: location) }
        return DiagnosticNote("\(path) = \(shown) (\(node.provenance.summary))")
    }

    mutating func error(_ code: DiagnosticCode, _ message: String, at path: String, related: [String] = []) {
        let notes = (tree.at(path)?.provenance.notes ?? []) + related.map(note)
        diagnostics.error(code, message, at: location(path), notes: notes)
    }

    mutating func warning(_ code: DiagnosticCode, _ message: String, at path: String, related: [String] = []) {
        let notes = (tree.at(path)?.provenance.notes ?? []) + related.map(note)
        diagnostics.warning(code, message, at: location(path), notes: notes)
    }

    // MARK: Sections

    mutating func checkSections() {
        if has("pretrain") {
            if !has("tokenizer") { error(.missingKey, "'pretrain' needs a 'tokenizer' section", at: "pretrain") }
            if !has("corpus") { error(.missingKey, "'pretrain' needs a 'corpus' section to train on", at: "pretrain") }
        }
    }

    // MARK: Topology

    mutating func checkTopology() {
        // Bandwidths are text with units; a value that does not parse is reported at its file:line:col.
        _ = Interconnect.resolve(tree, diagnostics: &diagnostics)
        if let limit = string("cluster.time_limit"), Recipe.Cluster.slurmTimeLimitSeconds(limit) == nil {
            error(.invalidValue, "cluster.time_limit '\(limit)' is not a Slurm time limit; write minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM " +
                  "or D-HH:MM:SS, e.g. \"48:00:00\"", at: "cluster.time_limit")
        }
        let nodes = int("cluster.nodes") ?? 1, perNode = int("cluster.devices_per_node") ?? 1
        let world = nodes * perNode
        guard let tp = int("parallel.tensor"), let pp = int("parallel.pipeline") else { return }
        if let dp = int("parallel.data") {
            let product = tp * pp * dp
            if product != world {
                error(.worldSize,
                      "tensor \(tp) × pipeline \(pp) × data \(dp) = \(product) ranks, but the cluster has \(nodes) node\(nodes == 1 ? "" : "s") × \(perNode) device\(perNode == 1 ? "" : "s") = \(world)",
                      at: isWritten("parallel.data") ? "parallel.data" : "parallel.tensor",
                      related: ["cluster.nodes", "cluster.devices_per_node"])
            }
        } else if string("parallel.data") == "auto" {
            error(.worldSize,
                  "cannot derive parallel.data: the cluster's \(world) devices are not divisible by tensor \(tp) × pipeline \(pp) = \(tp * pp)",
                  at: !(isWritten("parallel.tensor") && tp > 1) && isWritten("parallel.pipeline") && pp > 1 ? "parallel.pipeline" : "parallel.tensor",
                  related: ["cluster.nodes", "cluster.devices_per_node"])
        }
        if let heads = int("model.heads"), heads % tp != 0 {
            error(.tensorSplit, "parallel.tensor \(tp) does not divide model.heads \(heads); each tensor rank needs whole heads",
                  at: "parallel.tensor", related: ["model.heads"])
        }
        if let kv = int("model.kv_heads"), kv % tp != 0, (int("model.heads") ?? 0) % tp == 0 {
            error(.tensorSplit, "parallel.tensor \(tp) does not divide model.kv_heads \(kv); each tensor rank needs whole key/value heads",
                  at: "parallel.tensor", related: ["model.kv_heads"])
        }
        if let ffn = int("model.ffn"), ffn % tp != 0 {
            error(.tensorSplit, "parallel.tensor \(tp) does not divide model.ffn \(ffn) (the MLP is split column-wise)",
                  at: "parallel.tensor", related: ["model.ffn"])
        }
        if let vocab = int("model.vocab_size"), vocab % tp != 0 {
            error(.tensorSplit, "parallel.tensor \(tp) does not divide model.vocab_size \(vocab) (the embedding is split by vocabulary); use vocab_size: auto to pad it",
                  at: "model.vocab_size", related: ["parallel.tensor"])
        }
        if let layers = int("model.layers") {
            if pp > layers {
                error(.pipelineSplit, "parallel.pipeline \(pp) has more stages than model.layers \(layers)", at: "parallel.pipeline", related: ["model.layers"])
            } else if layers % pp != 0 {
                error(.pipelineSplit, "parallel.pipeline \(pp) does not divide model.layers \(layers); stages need equal layer counts",
                      at: "parallel.pipeline", related: ["model.layers"])
            }
        }
        if tree.at("parallel.sequence_parallel")?.bool == true {
            if tp == 1 {
                error(.sequenceParallel, "sequence_parallel needs parallel.tensor > 1 (it shards over the tensor group)",
                      at: "parallel.sequence_parallel", related: ["parallel.tensor"])
            } else if let seq = int("model.seq_len"), seq % tp != 0 {
                error(.sequenceParallel, "sequence_parallel needs model.seq_len \(seq) divisible by parallel.tensor \(tp)",
                      at: "parallel.sequence_parallel", related: ["model.seq_len", "parallel.tensor"])
            }
        }
        if let zero = int("parallel.zero_stage"), zero > 0, int("parallel.data") == 1 {
            warning(.worldSize, "zero_stage \(zero) shards over data-parallel ranks, but parallel.data is 1: it saves nothing",
                    at: "parallel.zero_stage")
        }
    }

    // MARK: Model

    mutating func checkModel() {
        guard let arch = string("model.arch") else { return }
        if let hidden = int("model.hidden"), let heads = int("model.heads"), hidden % heads != 0 {
            error(.attentionShape, "model.heads \(heads) does not divide model.hidden \(hidden); head size must be whole",
                  at: "model.heads", related: ["model.hidden"])
        }
        if let heads = int("model.heads"), let kv = int("model.kv_heads") {
            if kv > heads || heads % kv != 0 {
                error(.attentionShape, "model.kv_heads \(kv) must divide model.heads \(heads) (each key/value head serves a whole group of query heads)",
                      at: "model.kv_heads", related: ["model.heads"])
            } else if arch == "gpt2", kv != heads {
                error(.archOption, "gpt2 has no grouped-query attention: model.kv_heads must equal model.heads (\(heads))",
                      at: "model.kv_heads", related: ["model.arch"])
            }
        }
        if let seq = int("model.seq_len"), let positions = int("model.max_positions"), seq > positions {
            error(.positions, "model.seq_len \(seq) exceeds model.max_positions \(positions)", at: "model.seq_len", related: ["model.max_positions"])
        }
        if let activation = string("model.activation") {
            if arch == "llama", activation != "swiglu" {
                error(.archOption, "llama uses the swiglu activation, not '\(activation)'", at: "model.activation", related: ["model.arch"])
            }
            if arch == "gpt2", activation == "swiglu" {
                error(.archOption, "gpt2 uses gelu or gelu_tanh, not swiglu; use arch: llama for a gated MLP",
                      at: "model.activation", related: ["model.arch"])
            }
        }
        if arch == "gpt2", isWritten("model.rope_theta") {
            error(.archOption, "rope_theta applies to arch llama (RoPE); gpt2 uses learned positions — remove it (or 'unset: [model.rope_theta]' when inherited)",
                  at: "model.rope_theta", related: ["model.arch"])
        }
        if string("model.vocab_size") == "auto", int("tokenizer.vocab_size") == nil {
            error(.vocabulary, "model.vocab_size is 'auto' but the tokenizer's vocabulary size is unknown; set tokenizer.vocab_size (or model.vocab_size)",
                  at: "model.vocab_size")
        }
        if let modelVocab = int("model.vocab_size"), let tokVocab = int("tokenizer.vocab_size"), modelVocab < tokVocab {
            error(.vocabulary, "model.vocab_size \(modelVocab) is smaller than the tokenizer's \(tokVocab) tokens; ids ≥ \(modelVocab) would have no embedding",
                  at: "model.vocab_size", related: ["tokenizer.vocab_size"])
        }
    }

    // MARK: Training

    mutating func checkTraining() {
        guard has("pretrain") else { return }
        let micro = int("parallel.micro_batch") ?? 1
        if let gb = int("pretrain.global_batch"), let dp = int("parallel.data"), gb % (micro * dp) != 0 {
            error(.batchSplit,
                  "pretrain.global_batch \(gb) is not divisible by micro_batch \(micro) × data \(dp) = \(micro * dp); gradient accumulation must be whole",
                  at: "pretrain.global_batch", related: ["parallel.micro_batch", "parallel.data"])
        } else if let gb = int("pretrain.global_batch"), let dp = int("parallel.data"), let pp = int("parallel.pipeline"), pp > 1,
                  gb / (micro * dp) < pp {
            warning(.batchSplit,
                    "\(gb / (micro * dp)) micro batches per step is fewer than the \(pp) pipeline stages: the 1F1B pipeline never fills",
                    at: "pretrain.global_batch", related: ["parallel.pipeline"])
        }
        let stepsWritten = isWritten("pretrain.steps"), tokensWritten = isWritten("pretrain.tokens")
        if !has("pretrain.steps"), !has("pretrain.tokens"), has("pretrain.global_batch") {
            error(.trainingLength, "pretrain needs 'steps' or 'tokens'", at: "pretrain")
        }
        if stepsWritten, tokensWritten, let steps = int("pretrain.steps"), let tokens = int("pretrain.tokens"),
           let gb = int("pretrain.global_batch"), let seq = int("model.seq_len") {
            let perStep = gb * seq
            let implied = steps.multipliedReportingOverflow(by: perStep)
            if implied.overflow || abs(implied.partialValue - tokens) >= perStep {
                error(.trainingLength,
                      "pretrain.tokens \(Format.grouped(tokens)) disagrees with steps \(Format.grouped(steps)) × global_batch \(gb) × seq_len \(seq) = \(implied.overflow ? "overflow" : Format.grouped(implied.partialValue)); give one of them, or make them agree",
                      at: "pretrain.tokens", related: ["pretrain.steps"])
            }
        }
        if let steps = int("pretrain.steps") {
            checkSchedule(prefix: "pretrain", lr: double("pretrain.optimizer.lr"), lrPath: "pretrain.optimizer.lr", steps: steps)
            if let every = int("pretrain.checkpoint.every"), every > steps, isWritten("pretrain.checkpoint.every") {
                warning(.checkpointing, "checkpoint.every \(every) exceeds the \(steps) steps: only the final checkpoint is written",
                        at: "pretrain.checkpoint.every")
            }
            if let interval = int("pretrain.eval_interval"), interval > steps {
                warning(.checkpointing, "eval_interval \(interval) exceeds the \(steps) steps: validation loss is never computed",
                        at: "pretrain.eval_interval")
            }
        }
        if has("pretrain.eval_interval"), (double("corpus.held_out") ?? 0) == 0 {
            warning(.checkpointing, "pretrain.eval_interval is set but corpus.held_out is 0: there is no validation data",
                    at: "pretrain.eval_interval", related: ["corpus.held_out"])
        }
    }

    mutating func checkSchedule(prefix: String, lr: Double?, lrPath: String, steps: Int?) {
        let s = "\(prefix).schedule"
        if let lr, let minLR = double("\(s).min_lr"), minLR > lr {
            error(.schedule, "\(s).min_lr \(Format.number(minLR)) is above the peak learning rate \(Format.number(lr))",
                  at: "\(s).min_lr", related: [lrPath])
        }
        guard let steps else { return }
        if let warmup = int("\(s).warmup_steps"), warmup >= steps {
            error(.schedule, "\(s).warmup_steps \(warmup) is not shorter than the \(steps) training steps", at: "\(s).warmup_steps",
                  related: ["\(prefix).steps"])
        }
        if let decay = int("\(s).decay_steps"), decay > steps, isWritten("\(s).decay_steps") {
            warning(.schedule, "\(s).decay_steps \(decay) exceeds the \(steps) training steps: the rate never reaches min_lr",
                    at: "\(s).decay_steps")
        }
    }

    // MARK: Tokenizer and corpus

    mutating func checkTokenizer() {
        guard has("tokenizer") else { return }
        if !has("tokenizer.path"), !has("tokenizer.train"), tree.at("tokenizer")?.location != nil {
            error(.vocabulary, "tokenizer needs 'path' (load a tokenizer.json or .model file) or 'train' (train one)", at: "tokenizer")
        }
        if has("tokenizer.train"), !has("corpus") {
            error(.missingKey, "tokenizer.train samples its text from the corpus sources, but the recipe has no 'corpus' section; " +
                  "add corpus sources or load a tokenizer with tokenizer.path", at: "tokenizer.train")
        }
        if let sources = tree.at("tokenizer.train.sources")?.array {
            let known = tree.at("corpus.sources")?.entries?.map(\.key) ?? []
            for (i, source) in sources.enumerated() {
                guard let name = source.string, !known.contains(name) else { continue }
                let suggestion = Suggestions.closest(to: name, in: known)
                error(.unknownStage, "tokenizer.train.sources names '\(name)', which is not a corpus source" + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                      at: "tokenizer.train.sources.\(i)")
            }
        }
    }

    mutating func checkCorpus() {
        guard let sources = tree.at("corpus.sources")?.entries else { return }
        if sources.isEmpty { error(.corpusBudget, "corpus.sources is empty", at: "corpus.sources") }
        for source in sources {
            let p = "corpus.sources.\(source.key)"
            let node = source.node
            let invalid = self.invalid
            let present = { (key: String) in node[key] != nil || invalid.contains("\(p).\(key)") }
            if !present("tokens"), !present("weight"), !present("budget") {
                error(.corpusBudget, "source '\(source.key)' needs 'tokens' (its size), 'weight' or 'budget' to take part in the mix", at: p)
            }
            if present("max_epochs"), !present("tokens") {
                warning(.corpusBudget, "source '\(source.key)' sets max_epochs without 'tokens': its epochs cannot be computed", at: "\(p).max_epochs")
            }
            for (i, filter) in (node["filters"]?.array ?? []).enumerated() {
                guard let entry = filter.entries?.first else { continue }
                let f = "\(p).filters.\(i).\(entry.key)"
                let int = { (key: String) in entry.node[key]?.int }
                let double = { (key: String) in entry.node[key]?.double }
                switch entry.key {
                case "dedup_minhash":
                    if let perms = int("permutations"), let bands = int("bands"), let rows = int("rows"), bands * rows != perms {
                        error(.invalidValue, "dedup_minhash: bands \(bands) × rows \(rows) = \(bands * rows) must equal permutations \(perms)",
                              at: "\(f).bands", related: ["\(f).rows", "\(f).permutations"])
                    }
                case "compression_ratio":
                    if let lo = double("min"), let hi = double("max"), lo >= hi {
                        error(.invalidValue, "compression_ratio: min \(Format.number(lo)) must be below max \(Format.number(hi))", at: "\(f).min")
                    }
                case "doc_length":
                    if let lo = int("min_chars"), let hi = int("max_chars"), lo > hi {
                        error(.invalidValue, "doc_length: min_chars \(lo) exceeds max_chars \(hi)", at: "\(f).min_chars")
                    }
                case "line_length":
                    if let lo = double("min_mean"), let hi = double("max_mean"), lo > hi {
                        error(.invalidValue, "line_length: min_mean exceeds max_mean", at: "\(f).min_mean")
                    }
                default: break
                }
            }
        }
    }

    // MARK: Stages

    /// Names a checkpoint reference may use.
    var checkpointNames: [String] {
        (has("pretrain") ? ["pretrain"] : []) + (tree.at("tune")?.entries?.map(\.key) ?? [])
    }

    mutating func checkReference(_ value: String, at path: String, what: String) {
        if value == "pretrain", has("pretrain") { return }
        if tree.at("tune")?.entries?.contains(where: { $0.key == value }) == true { return }
        let suggestion = Suggestions.closest(to: value, in: checkpointNames)
        var message = "\(what) '\(value)' names no stage of this recipe"
        if value == "pretrain" { message = "\(what) is 'pretrain', but the recipe has no 'pretrain' section" }
        if let suggestion, suggestion != value { message += "; did you mean '\(suggestion)'?" }
        else if !checkpointNames.isEmpty { message += "; stages: " + checkpointNames.joined(separator: ", ") }
        diagnostics.error(.unknownStage, message, at: location(path), notes: tree.at(path)?.provenance.notes ?? [], fixIt: suggestion)
    }

    mutating func checkStages() {
        let templates = tree.at("templates")?.entries?.map(\.key) ?? []
        // Templates written in the recipe.
        for template in tree.at("templates")?.entries ?? [] {
            let t = "templates.\(template.key)"
            if let prompt = string("\(t).prompt") { checkPlaceholders(prompt, at: "\(t).prompt", required: ["instruction"], allowed: ["instruction", "input"]) }
            if let prompt = string("\(t).prompt_with_input") {
                checkPlaceholders(prompt, at: "\(t).prompt_with_input", required: ["instruction", "input"], allowed: ["instruction", "input"])
            }
        }
        // Tune stages.
        var parents: [String: String] = [:]
        for stage in tree.at("tune")?.entries ?? [] {
            let t = "tune.\(stage.key)"
            if let from = string("\(t).from") {
                if from.hasPrefix("hf:") {
                    if from.count == 3 { error(.unknownStage, "\(t).from 'hf:' needs a model directory after the colon", at: "\(t).from") }
                } else {
                    checkReference(from, at: "\(t).from", what: "\(t).from")
                    parents[stage.key] = from
                }
            }
            checkTemplateName(at: "\(t).template", recipeTemplates: templates)
            checkTemplateRendersData(stage: stage.key, recipeTemplates: templates)
            checkSchedule(prefix: t, lr: double("\(t).lr"), lrPath: "\(t).lr", steps: nil)
            if let maxLength = int("\(t).max_length"), let positions = int("model.max_positions"), maxLength > positions {
                error(.positions, "\(t).max_length \(maxLength) exceeds model.max_positions \(positions)", at: "\(t).max_length")
            }
        }
        // Cycles among tune stages, each reported once (at its first member in file order).
        var reported = Set<String>()
        for start in (tree.at("tune")?.entries ?? []).map(\.key) where parents[start] != nil {
            var seen = [start]
            var current = start
            while let next = parents[current] {
                if next == start {
                    let members = seen.sorted().joined(separator: ",")
                    if reported.insert(members).inserted {
                        error(.stageCycle, "tune stages start from each other in a cycle: " + (seen + [start]).joined(separator: " → "), at: "tune.\(start).from")
                    }
                    break
                }
                if seen.contains(next) { break }
                seen.append(next)
                current = next
            }
        }
        // Eval suites.
        for suite in tree.at("eval")?.entries ?? [] {
            let e = "eval.\(suite.key)"
            for (i, checkpoint) in (tree.at("\(e).checkpoints")?.array ?? []).enumerated() {
                if let name = checkpoint.string { checkReference(name, at: "\(e).checkpoints.\(i)", what: "\(e).checkpoints entry") }
            }
            let kind = string("\(e).kind")
            if has("\(e).judge"), kind != "generation" {
                error(.invalidValue, "\(e).judge applies to generation suites, not '\(kind ?? "?")'", at: "\(e).judge")
            }
            if let endpoint = string("\(e).judge.endpoint"), let why = SecretPolicy.refusalToSendKey(to: endpoint) {
                error(.invalidValue, "judge endpoint \(why)", at: "\(e).judge.endpoint")
            }
            if let variable = string("\(e).judge.api_key_env"), !SecretPolicy.keyVariableAllowed(variable) {
                error(.invalidValue, "api_key_env '\(variable)': the judge sends this variable's value to its endpoint, so a recipe may name only " +
                      "variables ending in _API_KEY; name such a variable, or allow this one yourself with " +
                      "\(SecretPolicy.allowVariable)=\(variable) in the environment of the command", at: "\(e).judge.api_key_env")
            }
            let metrics = (tree.at("\(e).metrics")?.array ?? []).compactMap(\.string)
            switch kind {
            case "llm-jp-eval":
                if has("\(e).template") {
                    error(.invalidValue, "\(e).template applies to generation suites; an llm-jp-eval suite takes prompt_template " +
                          "(llm-jp-eval's custom_prompt_template) and few_shots_template", at: "\(e).template")
                }
                let fewShots = int("\(e).few_shots") ?? 4
                if let prompt = string("\(e).prompt_template") {
                    checkPlaceholders(prompt, at: "\(e).prompt_template",
                                      required: ["instruction", "input"] + (fewShots > 0 ? ["few_shots_text"] : []),
                                      allowed: ["instruction", "input", "few_shots_text"])
                }
                if let shots = string("\(e).few_shots_template") {
                    if !has("\(e).prompt_template") {
                        error(.invalidValue, "few_shots_template is used only with prompt_template (as in llm-jp-eval); add prompt_template",
                              at: "\(e).few_shots_template")
                    }
                    checkPlaceholders(shots, at: "\(e).few_shots_template", required: ["input", "output"], allowed: ["input", "output"])
                }
                if let bad = metrics.first(where: { $0 == "perplexity" || $0 == "judge_score" }) {
                    error(.invalidValue, "'\(bad)' is not an llm-jp-eval metric; an llm-jp-eval suite takes exact_match, char_f1, set_f1, " +
                          "pearson, spearman, bleu_en or bleu_ja", at: "\(e).metrics")
                }
            case "perplexity":
                if metrics.contains(where: { $0 != "perplexity" }) {
                    error(.invalidValue, "a perplexity suite reports only the 'perplexity' metric", at: "\(e).metrics")
                }
            case "generation":
                checkTemplateName(at: "\(e).template", recipeTemplates: templates)
                if metrics.contains(where: { $0 != "judge_score" }) {
                    error(.invalidValue, "a generation suite reports only 'judge_score' (with a judge)", at: "\(e).metrics")
                }
            default: break
            }
            if kind != "llm-jp-eval" {
                for key in ["prompt_template", "few_shots_template", "few_shots"] where isWritten("\(e).\(key)") || invalid.contains("\(e).\(key)") {
                    error(.invalidValue, "\(e).\(key) applies to llm-jp-eval suites, not '\(kind ?? "?")'; remove it", at: "\(e).\(key)")
                }
            }
            if kind != "generation" {
                // llm-jp-eval decodes greedily up to each dataset's output_length; perplexity generates nothing.
                for key in ["max_new_tokens", "temperature"] where isWritten("\(e).\(key)") || invalid.contains("\(e).\(key)") {
                    error(.invalidValue, "\(e).\(key) applies to generation suites, not '\(kind ?? "?")'" +
                          (kind == "llm-jp-eval" ? " (llm-jp-eval decodes greedily up to each dataset's output_length)" : "") + "; remove it",
                          at: "\(e).\(key)")
                }
            }
        }
        if let checkpoint = string("release.checkpoint") {
            checkReference(checkpoint, at: "release.checkpoint", what: "release.checkpoint")
        }
    }

    /// A template written in the recipe has a prompt for one instruction and one response; it cannot
    /// render a conversation (`chat` data), which needs a chat template with turn prefixes.
    mutating func checkTemplateRendersData(stage: String, recipeTemplates: [String]) {
        let t = "tune.\(stage)"
        guard let template = string("\(t).template"), recipeTemplates.contains(template) else { return }
        for dataset in tree.at("\(t).datasets")?.entries ?? [] where dataset.node["format"]?.string == TuneDataFormat.chat.rawValue {
            error(.dataFormat, "dataset '\(dataset.key)' holds conversations (format: chat), which template '\(template)' cannot render: a template " +
                  "written under 'templates' has one prompt and one response; use a chat template (" +
                  RecipeSchema.builtinTemplates.joined(separator: ", ") + ") for this stage, or give the dataset as instruction/output pairs (format: alpaca)",
                  at: "\(t).datasets.\(dataset.key).format", related: ["\(t).template"])
        }
    }

    mutating func checkTemplateName(at path: String, recipeTemplates: [String]) {
        guard let template = string(path), !RecipeSchema.builtinTemplates.contains(template), !recipeTemplates.contains(template) else { return }
        let suggestion = Suggestions.closest(to: template, in: RecipeSchema.builtinTemplates + recipeTemplates)
        diagnostics.error(.template, "unknown template '\(template)'; built-in: " + RecipeSchema.builtinTemplates.joined(separator: ", ") +
                          (recipeTemplates.isEmpty ? "" : "; recipe: " + recipeTemplates.joined(separator: ", ")) + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                          at: location(path), notes: tree.at(path)?.provenance.notes ?? [], fixIt: suggestion)
    }

    mutating func checkPlaceholders(_ text: String, at path: String, required: [String], allowed: [String]) {
        var found: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "}") else { break }
            let name = String(after[..<close])
            if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0 == "_" }) { found.append(name) }
            rest = after[after.index(after: close)...]
        }
        // A missing placeholder that a misspelt one stands for is reported once, as the misspelling.
        let misspelt = Set(found.filter { !allowed.contains($0) }.compactMap { Suggestions.closest(to: $0, in: allowed) })
        for name in required where !found.contains(name) && !misspelt.contains(name) {
            error(.template, "template text must contain '{\(name)}'", at: path)
        }
        for name in found where !allowed.contains(name) {
            let hint = Suggestions.closest(to: name, in: allowed).map { "; did you mean '{\($0)}'?" } ?? ""
            let names = allowed.map { "{\($0)}" }
            error(.template, "unknown placeholder '{\(name)}'; templates use " +
                  (names.count == 2 ? names.joined(separator: " and ") : names.joined(separator: ", ")) + hint, at: path)
        }
    }
}
