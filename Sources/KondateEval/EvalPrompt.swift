import KondateSupport

/// How llm-jp-eval v1.3 turns a dataset's instruction, its few-shot examples and one sample's input into
/// the text given to the model (`get_evaluation_prompt` in `src/llm_jp_eval/utils.py`, called from
/// `evaluate` in `src/llm_jp_eval/evaluator.py`; the same function is carried in the Nejumi leaderboard's
/// `evaluate_utils`).
///
/// Default template (no custom template configured):
///
/// ```python
/// system_message = f"以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n{instruction}"
/// for few_shot in few_shots:
///     system_message += f"\n\n### 入力:\n{few_shot.input}\n\n### 応答:\n{few_shot.output}"
/// system_message += "\n\n### 入力:\n{input}\n\n### 応答:\n"
/// return PromptTemplate(input_variables=["input"], template=system_message)
/// ```
///
/// With `custom_prompt_template` (a Python format string with `{instruction}`, `{input}` and, for
/// few-shot prompts, `{few_shots_text}` — the placeholders `config_base.yaml` documents), each few-shot is
/// rendered with `custom_fewshots_template` (`{input}`, `{output}`) when one is configured, else as the
/// default block `"\n\n### 入力:\n{input}\n\n### 応答:\n{output}"`; the blocks are concatenated into
/// `few_shots_text` and `custom_prompt_template.format(instruction=…, few_shots_text=…, input="{input}")`
/// becomes the template. `custom_fewshots_template` is used only together with `custom_prompt_template`.
///
/// Few-shots are the first `num_few_shots` examples, in order (`samples[:num_few_shots]`); llm-jp-eval
/// asserts that there are at least that many. llm-jp-eval v1.3's `get_few_shot_samples` reads them from
/// the `samples` of the same dataset's train split (`{dataset_dir}/../train/{name}.json`); Kondate reads
/// them from the dataset file's own `few_shots` list, so to reproduce a v1.3 run, put the first train
/// samples there.
///
/// Two deliberate differences, both for inputs on which llm-jp-eval fails rather than produces a prompt:
/// llm-jp-eval builds a langchain `PromptTemplate` from the text, so a `{` or `}` in an instruction or a
/// few-shot would be read as a placeholder; Kondate inserts dataset text verbatim. And a custom template
/// with `{few_shots_text}` used with zero few-shots raises `KeyError` there; Kondate fills in the empty
/// string. Template text follows Python's `str.format`: `{{` and `}}` are literal braces, `{name}` must be
/// one of the placeholders above, and format specs or conversions (`{input:>5}`, `{input!r}`) are rejected.
public struct EvalPrompt: Sendable, Equatable {
    /// llm-jp-eval's default system message, before `"\n\n### 指示:\n"` and the instruction.
    public static let defaultIntro = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"

    /// How many few-shot examples to put in every prompt (llm-jp-eval's `metainfo.num_few_shots`, 4 by default).
    public var numFewShots: Int
    /// llm-jp-eval's `custom_prompt_template`, or nil for the default template.
    public var customPromptTemplate: String?
    /// llm-jp-eval's `custom_fewshots_template`, or nil for the default few-shot block.
    public var customFewShotsTemplate: String?

    /// Checks the templates: the prompt template must contain `{instruction}` and `{input}`, and
    /// `{few_shots_text}` when `numFewShots > 0`; the few-shots template must contain `{input}` and
    /// `{output}` and needs a prompt template; no other placeholder may appear.
    public init(numFewShots: Int = 4, customPromptTemplate: String? = nil, customFewShotsTemplate: String? = nil) throws(EvalError) {
        guard numFewShots >= 0 else { throw EvalError(file: "", message: "the number of few-shots must be at least 0, found \(numFewShots)") }
        self.numFewShots = numFewShots
        self.customPromptTemplate = customPromptTemplate
        self.customFewShotsTemplate = customFewShotsTemplate
        if let template = customPromptTemplate {
            var required = ["instruction", "input"]
            if numFewShots > 0 { required.append("few_shots_text") }
            try Self.check(template, name: "custom prompt template", required: required,
                           allowed: ["instruction", "input", "few_shots_text"])
        }
        if let template = customFewShotsTemplate {
            guard customPromptTemplate != nil else {
                throw EvalError(file: "", message: "a custom few-shots template is used only with a custom prompt template (as in llm-jp-eval v1.3); give one too")
            }
            try Self.check(template, name: "custom few-shots template", required: ["input", "output"], allowed: ["input", "output"])
        }
    }

    /// The prompt for one input of `dataset`, with its first `numFewShots` few-shots. Throws when the
    /// dataset has fewer few-shots than that.
    public func prompt(for dataset: EvalDataset, input: String) throws(EvalError) -> String {
        try prompt(instruction: dataset.instruction, fewShots: try fewShots(of: dataset), input: input)
    }

    /// The first `numFewShots` few-shots of `dataset`.
    public func fewShots(of dataset: EvalDataset) throws(EvalError) -> [EvalSample] {
        guard dataset.fewShots.count >= numFewShots else {
            throw EvalError(file: dataset.file, message: "few_shots: \(numFewShots) few-shot examples requested but the dataset has only \(dataset.fewShots.count)")
        }
        return Array(dataset.fewShots.prefix(numFewShots))
    }

    /// The prompt for an instruction, the few-shots to show (all of them, in order) and an input.
    public func prompt(instruction: String, fewShots: [EvalSample], input: String) throws(EvalError) -> String {
        guard let template = customPromptTemplate else {
            var text = Self.defaultIntro + "\n\n### 指示:\n" + instruction
            for shot in fewShots { text += Self.defaultFewShot(shot) }
            return text + "\n\n### 入力:\n" + input + "\n\n### 応答:\n"
        }
        var fewShotsText = ""
        for shot in fewShots {
            if let shotTemplate = customFewShotsTemplate {
                fewShotsText += try Self.format(shotTemplate, ["input": shot.input, "output": shot.output], name: "custom few-shots template")
            } else {
                fewShotsText += Self.defaultFewShot(shot)
            }
        }
        return try Self.format(template, ["instruction": instruction, "few_shots_text": fewShotsText, "input": input],
                               name: "custom prompt template")
    }

    static func defaultFewShot(_ shot: EvalSample) -> String {
        "\n\n### 入力:\n" + shot.input + "\n\n### 応答:\n" + shot.output
    }

    // MARK: - Python str.format, named fields only

    private enum Piece { case text(String), field(String) }

    /// Splits a template the way `str.format` reads it: `{{`/`}}` are literal braces, `{name}` a field.
    private static func pieces(_ template: String, name: String) throws(EvalError) -> [Piece] {
        var pieces = [Piece](), text = ""
        let chars = Array(template)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "{" {
                if i + 1 < chars.count, chars[i + 1] == "{" { text.append("{"); i += 2; continue }
                guard let close = chars[(i + 1)...].firstIndex(of: "}") else {
                    throw EvalError(file: "", message: "\(name): single '{' without a closing '}' (write '{{' for a literal brace)")
                }
                let field = String(chars[(i + 1)..<close])
                guard !field.isEmpty, field.first!.isLetter || field.first! == "_",
                      field.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw EvalError(file: "", message: "\(name): unsupported placeholder '{\(field)}' (only named placeholders such as {input}; write '{{' and '}}' for literal braces)")
                }
                if !text.isEmpty { pieces.append(.text(text)); text = "" }
                pieces.append(.field(field))
                i = close + 1
            } else if c == "}" {
                guard i + 1 < chars.count, chars[i + 1] == "}" else {
                    throw EvalError(file: "", message: "\(name): single '}' (write '}}' for a literal brace)")
                }
                text.append("}")
                i += 2
            } else {
                text.append(c)
                i += 1
            }
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        return pieces
    }

    private static func check(_ template: String, name: String, required: [String], allowed: Set<String>) throws(EvalError) {
        let fields = try pieces(template, name: name).compactMap { piece -> String? in
            if case let .field(f) = piece { return f }
            return nil
        }
        for field in fields where !allowed.contains(field) {
            let hint = Suggestions.closest(to: field, in: allowed.sorted()).map { " (did you mean '{\($0)}'?)" } ?? ""
            throw EvalError(file: "", message: "\(name): unknown placeholder '{\(field)}'\(hint); it may contain \(allowed.sorted().map { "{\($0)}" }.joined(separator: ", "))")
        }
        for field in required where !fields.contains(field) {
            throw EvalError(file: "", message: "\(name): missing placeholder '{\(field)}'")
        }
    }

    /// `template.format(**values)`; values are inserted verbatim.
    static func format(_ template: String, _ values: [String: String], name: String) throws(EvalError) -> String {
        var out = ""
        for piece in try pieces(template, name: name) {
            switch piece {
            case let .text(t): out += t
            case let .field(f):
                guard let value = values[f] else { throw EvalError(file: "", message: "\(name): unknown placeholder '{\(f)}'") }
                out += value
            }
        }
        return out
    }
}
