import Foundation
import KondateTokenizers
import KondateRecipe
import KondateTestSupport
import Testing
@testable import KondateTune

/// One token per Unicode scalar (id = scalar value + 3); 0 = <pad>, 1 = <s>, 2 = </s>. Token
/// positions then equal character positions, so masked ranges can be stated exactly.
struct ScalarTokenizer: Tokenizer {
    var vocabularySize: Int { 0x110000 + 3 }
    func encode(_ text: String) -> [Int32] { text.unicodeScalars.map { Int32($0.value) + 3 } }
    func decode(_ ids: [Int32]) -> String {
        String(String.UnicodeScalarView(ids.compactMap { $0 >= 3 ? Unicode.Scalar(UInt32($0 - 3)) : nil }))
    }
    func id(of token: String) -> Int32? { ["<pad>": 0, "<s>": 1, "</s>": 2][token] }
    func token(of id: Int32) -> String? { id < 3 ? ["<pad>", "<s>", "</s>"][Int(id)] : decode([id]) }
    var specialIDs: [String: Int32] { ["pad": 0, "bos": 1, "eos": 2] }
}

@Suite struct TemplateTests {
    let origin = SourceLocation(file: "t.jsonl", line: 1, column: 1)

    @Test func llmJPv11SingleTurn() throws {
        let e = InstructionExample(instruction: "日本で一番高い山は？", input: "", output: "富士山", origin: origin)
        let segments = try PromptTemplate.llmJPv11.render(e)
        #expect(segments == [
            Segment("以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n日本で一番高い山は？\n\n### 応答:\n", trained: false),
            Segment("富士山", trained: true, endOfSequence: true),
        ])
        let withInput = InstructionExample(instruction: "要約しなさい。", input: "長い文章", output: "短い", origin: origin)
        #expect(try PromptTemplate.llmJPv11.render(withInput)[0].text ==
                "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n### 指示:\n要約しなさい。\n\n### 入力:\n長い文章\n\n### 応答:\n")
    }

    /// An instruction or input that mentions a placeholder keeps it as text: the template is filled in
    /// one pass, so `{input}` inside the instruction is not replaced by the input.
    @Test func placeholdersInsideExamplesStayText() throws {
        let e = InstructionExample(instruction: "Explain the template \"{input}\" and {instruction}.", input: "x = {input}", output: "ok", origin: origin)
        let text = try PromptTemplate.llmJPv11.render(e)[0].text
        #expect(text.contains("### 指示:\nExplain the template \"{input}\" and {instruction}.\n\n### 入力:\nx = {input}\n"), "\(text)")
        #expect(PromptTemplate.fill("{a}{b}{c} {", ["a": "{b}", "b": "B"]) == "{b}B{c} {")
    }

    /// The v2.0 chat template: the system sentence only where a system message is, its content unused.
    @Test func llmJPv2ChatConversation() throws {
        let e = InstructionExample(turns: [.init(.system, "ignored"), .init(.user, "こんにちは"), .init(.assistant, "どうも"),
                                           .init(.user, "元気？"), .init(.assistant, "はい")], origin: origin)
        let text = try PromptTemplate.llmJPv2Chat.render(e).map { $0.text + ($0.endOfSequence ? "</s>" : "") }.joined()
        #expect(text == "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。\n\n### 指示:\nこんにちは\n\n### 応答:\nどうも</s>\n\n### 指示:\n元気？\n\n### 応答:\nはい</s>")
        let noSystem = InstructionExample(turns: [.init(.user, "a"), .init(.assistant, "b")], origin: origin)
        #expect(try PromptTemplate.llmJPv2Chat.render(noSystem).map(\.text).joined() == "\n\n### 指示:\na\n\n### 応答:\nb")
    }

    /// Loss only on response tokens and the EOS after each: exact positions.
    @Test func lossMaskRanges() throws {
        let tok = try TuneTokenizer(tokenizer: ScalarTokenizer())
        let e = InstructionExample(turns: [.init(.user, "ab"), .init(.assistant, "cd"), .init(.user, "e"), .init(.assistant, "f")], origin: origin)
        let t = tok.tokenize(try PromptTemplate.llmJPv2Chat.render(e), maxLength: 512)
        // <s> + "\n\n### 指示:\nab" (12) + "\n\n### 応答:\n" (10) + "cd" + </s> + "\n\n### 指示:\ne" (11) + prefix (10) + "f" + </s>
        let trainedPositions = t.trained.enumerated().filter(\.element).map(\.offset)
        #expect(trainedPositions == [23, 24, 25, 47, 48])
        #expect(t.ids.count == 49 && t.ids[25] == 2 && t.ids[48] == 2 && t.ids[0] == 1)
        #expect(tok.tokenizer.decode(Array(t.ids[23...24])) == "cd")
        // Train on input: every token but BOS.
        let all = tok.tokenize(try PromptTemplate.llmJPv2Chat.render(e, trainOnInput: true), maxLength: 512)
        #expect(all.trained == [false] + Array(repeating: true, count: all.ids.count - 1))
    }

    @Test func rowsShiftTargetsAndPad() throws {
        let tok = try TuneTokenizer(tokenizer: ScalarTokenizer())
        let e = InstructionExample(instruction: "q", input: "", output: "ok", origin: origin)
        let template = PromptTemplate(name: "t", system: nil, prompt: "Q:{instruction} A:", promptWithInput: nil, userPrefix: nil, assistantPrefix: nil,
                                      systemAlways: true)
        let t = tok.tokenize(try template.render(e), maxLength: 16)
        #expect(t.ids.count == 1 + 6 + 2 + 1)   // <s> "Q:q A:" "ok" </s>
        let row = tok.rows([t], maxLength: 12)[0]
        #expect(row.tokens.count == 12 && row.targets.count == 12)
        // Position 6 (the last prompt token ':') predicts 'o'; 7 predicts 'k'; 8 predicts </s>.
        #expect(row.targets == [-100, -100, -100, -100, -100, -100, Int32(Character("o").unicodeScalars.first!.value) + 3,
                                Int32(Character("k").unicodeScalars.first!.value) + 3, 2, -100, -100, -100])
        #expect(Array(row.tokens[10...]) == [0, 0])
        // Truncation keeps maxLength + 1 tokens.
        let short = tok.tokenize(try template.render(e), maxLength: 4)
        #expect(short.truncated && short.ids.count == 5 && short.trainedCount == 0)
    }

    /// Packing: every token is a target exactly once, across row boundaries.
    @Test func packingCoversEveryTargetOnce() throws {
        let tok = try TuneTokenizer(tokenizer: ScalarTokenizer())
        let examples = try (0..<5).map { i in
            tok.tokenize(try PromptTemplate.llmJPv11.render(InstructionExample(instruction: "問\(i)", input: "", output: String(repeating: "答", count: i + 1),
                                                                               origin: origin)), maxLength: 512)
        }
        let rows = tok.packedRows(examples, maxLength: 32)
        let trainedTargets = rows.flatMap(\.targets).filter { $0 != -100 }.count
        #expect(trainedTargets == examples.reduce(0) { $0 + $1.trainedCount })
        #expect(rows.allSatisfy { $0.tokens.count == 32 })
        let total = examples.reduce(0) { $0 + $1.ids.count }
        #expect(rows.count == (total - 1 + 31) / 32)
    }

    @Test func readersNameTheBadLine() throws {
        let dir = NSTemporaryDirectory() + "kondate-tune-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/d.jsonl"
        try Data("{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"c\"}\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect { try InstructionData.read(path: path, format: .alpaca) } throws: { "\($0)".contains("d.jsonl:3:1: example has no 'output'") }
        try Data("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect { try InstructionData.read(path: path, format: .chat) } throws: { "\($0)".contains("last message must be the assistant's") }
        try Data("[{\"ID\": \"j-0\", \"instruction\": \"i\", \"input\": \"x\", \"output\": \"y\"}]".utf8).write(to: URL(fileURLWithPath: path))
        let jaster = try InstructionData.read(path: path, format: .jaster)
        #expect(jaster.count == 1 && jaster[0].input == "x")
        let example = try InstructionData.read(path: repositoryRoot.path + "/examples/tiny/tuning/qa.jsonl", format: .alpaca)
        #expect(!example.isEmpty)
    }

    @Test func recipeTemplatesAreSingleTurn() throws {
        let t = PromptTemplate(name: "mine", system: "SYS", prompt: "I:{instruction}\nA:", promptWithInput: "I:{instruction}\nIN:{input}\nA:",
                               userPrefix: nil, assistantPrefix: nil, systemAlways: true)
        let e = InstructionExample(instruction: "x", input: "y", output: "z", origin: origin)
        #expect(try t.render(e).map(\.text) == ["SYS", "I:x\nIN:y\nA:", "z"])
        let chat = InstructionExample(turns: [.init(.user, "a"), .init(.assistant, "b"), .init(.user, "c"), .init(.assistant, "d")], origin: origin)
        #expect(throws: KondateError.self) { try t.render(chat) }
    }
}
