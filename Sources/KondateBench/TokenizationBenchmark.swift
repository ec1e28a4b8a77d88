import Foundation
import KondateCorpus
import KondateSupport
import KondateTokenizers

/// `kondate bench tokenize`: encoding throughput in MB/s of UTF-8 text, on one thread and on N.
public enum TokenizationBenchmark {
    public struct Row: Sendable {
        public var threads: Int
        public var megabytesPerSecond: Double
        public var tokens: Int
    }

    public struct Result: Sendable {
        public var tokenizer: String
        public var file: String
        public var bytes: Int
        public var texts: Int
        public var rows: [Row]
    }

    /// The texts of `file`: the `text` field of each JSON Lines object, or each line as it is.
    public static func texts(file: String) throws -> [String] {
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
        return texts
    }

    /// Encodes every text of `file` `repeats` times on 1 thread and on `threads`, keeping the best time of each.
    /// Throws `FileError` for a tokenizer or input that cannot be read.
    public static func run(tokenizer path: String, file: String, threads: Int, repeats: Int) throws -> Result {
        let tok = try TokenizerLoader.load(path: path)
        let texts = try texts(file: file)
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        var rows: [Row] = []
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
            rows.append(Row(threads: t, megabytesPerSecond: Double(bytes) / 1e6 / best, tokens: tokens))
        }
        return Result(tokenizer: path, file: file, bytes: bytes, texts: texts.count, rows: rows)
    }
}

extension TokenizationBenchmark.Result {
    /// The figures as `kondate bench tokenize --json` prints them.
    public var json: JSON {
        .object([("tokenizer", .string(tokenizer)), ("file", .string(file)), ("bytes", .int(bytes)), ("texts", .int(texts)),
                 ("results", .array(rows.map { .object([("threads", .int($0.threads)), ("mb_per_second", .double($0.megabytesPerSecond)),
                                                         ("tokens", .int($0.tokens))]) }))])
    }
}
