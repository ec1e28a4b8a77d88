import Foundation
import KondateTokenizers
import KondateRecipe

/// A piece of rendered text and whether its tokens carry loss.
public struct Segment: Sendable, Equatable {
    public var text: String
    public var trained: Bool
    /// The end-of-sequence token follows this segment (it is an id, not text).
    public var endOfSequence: Bool
    public init(_ text: String, trained: Bool, endOfSequence: Bool = false) {
        self.text = text
        self.trained = trained
        self.endOfSequence = endOfSequence
    }
}

/// How an example becomes text. Built in:
///
/// - `llm-jp-v1.1` — llm-jp-sft's prompt (LLM-jp v1.1 and v2.0 instruct models):
///   `以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n{instruction}\n\n### 応答:\n`,
///   and, for examples with an input, llm-jp-eval's variant with `\n\n### 入力:\n{input}`
///   (`以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。…`). Conversations continue with
///   `\n\n### 指示:\n` before each user turn and `\n\n### 応答:\n` before each assistant turn.
/// - `llm-jp-v2-chat` — the chat template of the LLM-jp v2.0 instruct tokenizers: the fixed system
///   sentence where a system message appears (its content is not used), `\n\n### 指示:\n` + user
///   content, `\n\n### 応答:\n` + assistant content + EOS.
///
/// Recipe templates (`templates:` in a recipe) are single-turn: `prompt` with `{instruction}` (and
/// optionally `{input}`), `prompt_with_input` for examples with an input, and an optional `system`
/// text placed first.
///
/// With the default loss mask only the assistant's content and the EOS after it are trained.
public struct PromptTemplate: Sendable, Equatable {
    public var name: String
    public var system: String?
    public var prompt: String?
    public var promptWithInput: String?
    /// Multi-turn markers (built-in templates only).
    public var userPrefix: String?
    public var assistantPrefix: String?
    /// Whether the system sentence is always placed first (`llm-jp-v1.1`) or only where the
    /// conversation has a system message (`llm-jp-v2-chat`).
    public var systemAlways: Bool

    static let header = "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"
    static let headerWithInput = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"

    public static let llmJPv11 = PromptTemplate(
        name: "llm-jp-v1.1", system: nil,
        prompt: header + "\n\n### 指示:\n{instruction}\n\n### 応答:\n",
        promptWithInput: headerWithInput + "\n\n### 指示:\n{instruction}\n\n### 入力:\n{input}\n\n### 応答:\n",
        userPrefix: "\n\n### 指示:\n", assistantPrefix: "\n\n### 応答:\n", systemAlways: true)

    public static let llmJPv2Chat = PromptTemplate(
        name: "llm-jp-v2-chat", system: header, prompt: nil, promptWithInput: nil,
        userPrefix: "\n\n### 指示:\n", assistantPrefix: "\n\n### 応答:\n", systemAlways: false)

    public static let builtins = [llmJPv11, llmJPv2Chat]

    /// A built-in template by name.
    public static func builtin(_ name: String) throws -> PromptTemplate {
        guard let t = builtins.first(where: { $0.name == name }) else {
            throw KondateError(.template, "unknown template '\(name)'; built in: \(builtins.map(\.name).joined(separator: ", ")), or define it under templates:")
        }
        return t
    }

    /// The example as segments: prompt text untrained, responses trained (everything trained with
    /// `trainOnInput`). An EOS follows every assistant response.
    public func render(_ example: InstructionExample, trainOnInput: Bool = false) throws -> [Segment] {
        var segments: [Segment] = []
        func add(_ text: String, _ trained: Bool, eos: Bool = false) {
            guard !text.isEmpty || eos else { return }
            segments.append(Segment(text, trained: trained || trainOnInput, endOfSequence: eos))
        }
        // Single-turn examples use the prompt when the template has one.
        if let instruction = example.instruction, let prompt, example.turns.count == 2 {
            let input = example.input ?? ""
            if let system { add(system, false) }
            let body = !input.isEmpty ? (promptWithInput ?? prompt) : prompt
            add(Self.fill(body, ["instruction": instruction, "input": input]), false)
            add(example.turns[1].content, true, eos: true)
            return segments
        }
        guard let userPrefix, let assistantPrefix else {
            throw KondateError(.template, "template '\(name)' renders single-turn examples only (instruction/input/output); " +
                                "conversations need llm-jp-v1.1 or llm-jp-v2-chat", at: example.origin)
        }
        if systemAlways, let header = system ?? (prompt.map { _ in Self.header }) { add(header, false) }
        for turn in example.turns {
            switch turn.role {
            case .system: if !systemAlways, let system { add(system, false) }
            case .user: add(userPrefix + turn.content, false)
            case .assistant:
                add(assistantPrefix, false)
                add(turn.content, true, eos: true)
            }
        }
        return segments
    }
}

extension PromptTemplate {
    /// `template` with each `{name}` of `values` replaced in one pass over the template: text that a
    /// value brings in (an instruction that mentions `{input}`) is never substituted again.
    static func fill(_ template: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let after = rest[rest.index(after: open)...]
            if let close = after.firstIndex(of: "}"), let value = values[String(after[..<close])] {
                out += value
                rest = after[after.index(after: close)...]
            } else {
                out += "{"
                rest = after
            }
        }
        return out + rest
    }

    /// A template written under `templates:` (single-turn: one prompt, one response).
    public init(recipeTemplate t: Recipe.Template) {
        self.init(name: t.name, system: t.system, prompt: t.prompt, promptWithInput: t.promptWithInput, userPrefix: nil, assistantPrefix: nil,
                  systemAlways: true)
    }
}
