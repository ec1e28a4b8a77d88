/// The words a recipe may choose from, one enum per choice. The schema's `.choice` lists are built from
/// these (`SchemaType.choice(of:)`), and the typed `Recipe` holds them, so a word is spelt in one place
/// and every `switch` over a choice is checked by the compiler for completeness.
public protocol RecipeChoice: RawRepresentable, CaseIterable, Sendable, Hashable, CustomStringConvertible where RawValue == String {}

public extension RecipeChoice {
    /// The word as the recipe writes it.
    var description: String { rawValue }

    /// The words, in declaration order.
    static var words: [String] { allCases.map(\.rawValue) }
}

/// `cluster.device`: a device type from `DeviceCatalog`.
public enum DeviceType: String, RecipeChoice {
    case a100_40gb = "a100-40gb", a100_80gb = "a100-80gb", h100_80gb = "h100-80gb", h200_141gb = "h200-141gb", cpu
    public var isGPU: Bool { self != .cpu }
}

/// `model.arch`.
public enum Architecture: String, RecipeChoice { case llama, gpt2 }

/// `model.activation`.
public enum Activation: String, RecipeChoice {
    case swiglu, gelu
    case geluTanh = "gelu_tanh"
}

/// `model.attention_kernel`.
public enum AttentionKernel: String, RecipeChoice { case flash, standard }

/// `pretrain.precision`, `tune.<t>.precision`, `release.dtype`.
public enum Precision: String, RecipeChoice { case bf16, fp16, fp32 }

/// `parallel.recompute`.
public enum Recompute: String, RecipeChoice { case none, selective, full }

/// `pretrain.optimizer.kind`.
public enum OptimizerKind: String, RecipeChoice { case adamw }

/// `*.schedule.kind`.
public enum ScheduleKind: String, RecipeChoice { case cosine, linear, constant }

/// `pretrain.nan_policy`.
public enum NaNPolicy: String, RecipeChoice { case skip, stop }

/// `tokenizer.train.algorithm`.
public enum TokenizerAlgorithm: String, RecipeChoice { case bpe, unigram }

/// `tokenizer.format`.
public enum TokenizerFormat: String, RecipeChoice {
    case tokenizerJSON = "tokenizer_json", sentencepiece
}

/// `corpus.sources.<s>.format`.
public enum SourceFormat: String, RecipeChoice {
    case jsonl, text
    case textBlocks = "text_blocks"
}

/// `corpus.on_error`.
public enum OnError: String, RecipeChoice { case skip, fail }

/// `tune.<t>.datasets.<d>.format`.
public enum TuneDataFormat: String, RecipeChoice { case alpaca, chat, jaster }

/// `tune.<t>.loss_mask`.
public enum LossMask: String, RecipeChoice {
    case responseOnly = "response_only", all
}

/// `eval.<e>.kind`.
public enum EvalKind: String, RecipeChoice {
    case llmJPEval = "llm-jp-eval", perplexity, generation
}

/// `eval.<e>.metrics`.
public enum MetricName: String, RecipeChoice {
    case exactMatch = "exact_match", charF1 = "char_f1", setF1 = "set_f1", pearson, spearman
    case bleuEN = "bleu_en", bleuJA = "bleu_ja", perplexity
    case judgeScore = "judge_score"
}

/// `release.formats`.
public enum ReleaseFormat: String, RecipeChoice { case hf }

/// `release.contents`.
public enum ReleaseContent: String, RecipeChoice {
    case model, tokenizer, manifest
    case modelCard = "model_card", evalResults = "eval_results"
}

public extension SchemaType {
    /// One of the words of a `RecipeChoice`.
    static func choice<C: RecipeChoice>(of _: C.Type) -> SchemaType { .choice(C.words) }
}
