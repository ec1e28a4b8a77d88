import ArgumentParser
import Foundation
import KondateCorpus
import KondateData
import KondateSupport

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (build with -c release).",
        subcommands: [BenchTokenize.self, BenchTrain.self])
}

struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenization throughput in MB/s of UTF-8 text on 1..N threads.",
        discussion: "Inputs: a JSON Lines file with a text field (e.g. examples/tiny/data/ja.jsonl) or a plain text file (one text per line).")

    @Option(help: "A tokenizer.json or SentencePiece .model file.") var tokenizer: String
    @Option(help: "Input file: JSON Lines with a 'text' field, or plain lines.") var file: String
    @Option(help: "Largest thread count to measure.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Repetitions; the best is reported.") var repeats: Int = 3
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let tok: any Tokenizer
        do { tok = try TokenizerLoader.load(path: tokenizer) } catch let e as FileError {
            printError("kondate bench tokenize: \(e.description)\n")
            throw ExitCode(Exit.recipeErrors)
        }
        var texts: [String] = []
        let reader = try LineReader(path: file)
        try reader.forEachLine { line, _ in
            if case let .object(entries)? = try? JSONParser.parse(line), case let .string(text)? = entries.first(where: { $0.0 == "text" })?.1 {
                texts.append(text)
            } else if let text = String(validating: line, as: UTF8.self) {
                texts.append(text)
            }
            return true
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        var rows: [(Int, Double, Int)] = []
        for t in Array(Set([1, max(1, threads)])).sorted() {
            var best = Double.infinity
            var tokens = 0
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                let ids = tok.encodeBatch(texts, threads: t)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                best = min(best, seconds)
                tokens = ids.reduce(0) { $0 + $1.count }
            }
            rows.append((t, Double(bytes) / 1e6 / best, tokens))
        }
        if json {
            print(JSON.object([("tokenizer", .string(tokenizer)), ("file", .string(file)), ("bytes", .int(bytes)), ("texts", .int(texts.count)),
                               ("results", .array(rows.map { .object([("threads", .int($0.0)), ("mb_per_second", .double($0.1)), ("tokens", .int($0.2))]) }))]).rendered())
        } else {
            for (t, mbps, tokens) in rows {
                print("kondate \(URL(fileURLWithPath: tokenizer).lastPathComponent): \(t) thread\(t == 1 ? "" : "s"): \(Format.fixed(mbps, 2)) MB/s (\(Format.grouped(bytes)) bytes, \(Format.grouped(tokens)) tokens)")
            }
        }
    }
}
