import KondateRecipe
import ArgumentParser
import Foundation
import KondateCorpus
import KondateTokenizers
import KondateSupport

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to ids (or decode ids to text) with a tokenizer.json or SentencePiece .model.",
        discussion: """
        With --file each line is one input. Output: one line per input, ids separated by spaces, or with --json one JSON \
        array of ids per line (JSON Lines). With --decode the inputs are ids ("1 2 3" or "[1, 2, 3]") and the output is \
        text (a JSON string per line with --json). No BOS/EOS is added.
        """)

    @Option(help: "A tokenizer.json or SentencePiece .model file.")
    var tokenizer: String

    @Option(help: "The text (or ids with --decode).")
    var text: String?

    @Option(help: "A file with one input per line.")
    var file: String?

    @Flag(help: "Decode ids to text.")
    var decode = false

    @Flag(help: "JSON Lines output.")
    var json = false

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give exactly one of --text and --file") }
    }

    func run() throws {
        let tok: any Tokenizer
        do { tok = try TokenizerLoader.load(path: tokenizer) } catch let e as FileError {
            printError("kondate tokenize: \(e.description)\n")
            throw ExitCode(Exit.recipeErrors)
        }
        var inputs: [String] = []
        if let text { inputs = [text] }
        if let file {
            guard let data = FileManager.default.contents(atPath: file), let content = String(data: data, encoding: .utf8) else {
                printError("kondate tokenize: cannot read '\(file)' as UTF-8 text\n")
                throw ExitCode(Exit.recipeErrors)
            }
            inputs = content.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if content.hasSuffix("\n") { inputs.removeLast() }
        }
        var out = ""
        for (n, input) in inputs.enumerated() {
            if decode {
                guard let ids = Self.parseIDs(input) else {
                    printError("kondate tokenize: line \(n + 1): '\(input.prefix(40))' is not a list of ids\n")
                    throw ExitCode(Exit.recipeErrors)
                }
                if let bad = ids.first(where: { $0 < 0 || Int($0) >= tok.vocabularySize }) {
                    printError("kondate tokenize: line \(n + 1): id \(bad) is outside the vocabulary (0..<\(tok.vocabularySize))\n")
                    throw ExitCode(Exit.recipeErrors)
                }
                let text = tok.decode(ids)
                out += json ? JSON.quoted(text) + "\n" : text + "\n"
            } else {
                let ids = tok.encode(input)
                out += json ? "[" + ids.map(String.init).joined(separator: ", ") + "]\n" : ids.map(String.init).joined(separator: " ") + "\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    static func parseIDs(_ text: String) -> [Int32]? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let body = trimmed.hasPrefix("[") && trimmed.hasSuffix("]") ? String(trimmed.dropFirst().dropLast()) : trimmed
        var ids: [Int32] = []
        for part in body.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) {
            guard let id = Int32(part) else { return nil }
            ids.append(id)
        }
        return ids
    }
}

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Inspect a Megatron .bin/.idx pair: a summary, or every document as a JSON array of ids.")

    enum Action: String, ExpressibleByArgument, CaseIterable { case info, dump }

    @Argument(help: "info or dump.") var action: Action
    @Argument(help: "Path prefix of the pair (without .bin/.idx).") var prefix: String

    func run() throws {
        let ds: IndexedDataset
        do { ds = try IndexedDataset(prefix: prefix) } catch let e as KondateError {
            printError("kondate dataset: \(e.description)\n")
            throw ExitCode(Exit.recipeErrors)
        }
        switch action {
        case .info:
            print(JSON.object([("prefix", .string(prefix)), ("dtype", .int(Int(ds.dtype.rawValue))), ("documents", .int(ds.documentIndices.count - 1)),
                               ("sequences", .int(ds.count)), ("tokens", .int(ds.totalTokens))]).rendered())
        case .dump:
            var out = ""
            for i in 0..<ds.count {
                out += "[" + ds.tokens(i).map(String.init).joined(separator: ", ") + "]\n"
                if out.utf8.count > 1 << 20 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}
