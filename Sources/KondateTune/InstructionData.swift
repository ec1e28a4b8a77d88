import Foundation
import KondateRecipe
import KondateSupport

/// One instruction-tuning example: a conversation of turns. Alpaca and jaster examples are one
/// user turn (instruction, optional input) and one assistant turn (output).
public struct InstructionExample: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public struct Turn: Sendable, Equatable {
        public var role: Role
        public var content: String
        public init(_ role: Role, _ content: String) {
            self.role = role
            self.content = content
        }
    }

    /// For single-turn examples: the instruction and the input (empty when absent).
    public var instruction: String?
    public var input: String?
    public var turns: [Turn]
    /// file:line the example came from.
    public var origin: SourceLocation

    public init(instruction: String, input: String, output: String, origin: SourceLocation) {
        self.instruction = instruction
        self.input = input
        turns = [Turn(.user, input.isEmpty ? instruction : instruction + "\n\n" + input), Turn(.assistant, output)]
        self.origin = origin
    }

    public init(turns: [Turn], origin: SourceLocation) {
        self.turns = turns
        self.origin = origin
    }
}


/// Readers for the tuning formats: JSON Lines (one object per line) or a JSON array of objects.
///
/// - `alpaca`: `instruction`, `output`, optional `input` (the Stanford Alpaca / llm-jp-sft layout);
/// - `jaster`: llm-jp-eval's tuning files, `{"ID", "instruction", "input", "output"}`;
/// - `chat`: `messages`, a list of `{"role": "system"|"user"|"assistant", "content"}`, ending with an
///   assistant turn.
///
/// A malformed example is an error naming the file and line and the missing or wrong field.
public enum InstructionData {
    /// The recipe's `tune.<t>.datasets.<d>.format`.
    public typealias Format = TuneDataFormat

    public static func read(path: String, format: Format) throws -> [InstructionExample] {
        guard let data = FileManager.default.contents(atPath: path) else { throw KondateError(.inputData, "\(path): cannot read the file") }
        let text = String(decoding: data, as: UTF8.self)
        var objects: [(JSON, Int)] = []
        let trimmed = text.drop { $0.isWhitespace }
        if trimmed.first == "[" {
            let json: JSON
            do { json = try JSONParser.parse(text) } catch {
                throw KondateError(.inputData, "not valid JSON: \(error.description)", at: SourceLocation(file: path, line: 1, column: 1))
            }
            guard let items = json.arrayValue else { throw KondateError(.inputData, "expected a JSON array of examples", at: SourceLocation(file: path, line: 1, column: 1)) }
            // Line numbers of array items are not tracked; report the item index as a line-like position.
            objects = items.enumerated().map { ($1, $0 + 1) }
        } else {
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let s = line.trimmingCharacters(in: .whitespaces)
                if s.isEmpty { continue }
                do { objects.append((try JSONParser.parse(String(s)), i + 1)) } catch {
                    throw KondateError(.inputData, "not valid JSON: \(error.description)", at: SourceLocation(file: path, line: i + 1, column: 1))
                }
            }
        }
        return try objects.map { object, line in
            let at = SourceLocation(file: path, line: line, column: 1)
            func string(_ key: String, required: Bool) throws -> String? {
                guard let v = object[key], v != .null else {
                    if required { throw KondateError(.inputData, "example has no '\(key)' (the \(format.rawValue) format needs \(fields(format)))", at: at) }
                    return nil
                }
                guard let s = v.stringValue else { throw KondateError(.inputData, "'\(key)' must be a string", at: at) }
                return s
            }
            switch format {
            case .alpaca, .jaster:
                return InstructionExample(instruction: try string("instruction", required: true)!, input: try string("input", required: false) ?? "",
                                          output: try string("output", required: true)!, origin: at)
            case .chat:
                guard let messages = object["messages"]?.arrayValue, !messages.isEmpty else {
                    throw KondateError(.inputData, "example has no 'messages' list (the chat format needs messages: [{role, content}])", at: at)
                }
                var turns: [InstructionExample.Turn] = []
                for (k, m) in messages.enumerated() {
                    guard let roleName = m["role"]?.stringValue, let role = InstructionExample.Role(rawValue: roleName) else {
                        throw KondateError(.inputData, "message \(k + 1) needs a role of system, user or assistant", at: at)
                    }
                    guard let content = m["content"]?.stringValue else { throw KondateError(.inputData, "message \(k + 1) needs a string 'content'", at: at) }
                    turns.append(.init(role, content))
                }
                guard turns.last?.role == .assistant else { throw KondateError(.inputData, "the last message must be the assistant's (there is nothing to learn otherwise)", at: at) }
                return InstructionExample(turns: turns, origin: at)
            }
        }
    }

    static func fields(_ format: Format) -> String {
        switch format {
        case .alpaca: "instruction, output and optionally input"
        case .jaster: "instruction, input and output"
        case .chat: "messages"
        }
    }
}
