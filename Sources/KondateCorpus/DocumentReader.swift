import Foundation
import KondateRecipe
import KondateSupport


/// What reading a source found: counts, and examples of lines that were skipped.
public struct ReadReport: Sendable {
    public var files: [String] = []
    public var lines = 0
    public var documents = 0
    public var bytes = 0
    public var skipped = 0
    /// Up to ten skipped lines with their reason.
    public var skippedExamples: [(origin: String, reason: String)] = []

    public var json: JSON {
        .object([("files", .array(files.map(JSON.string))), ("lines", .int(lines)), ("documents", .int(documents)), ("bytes", .int(bytes)),
                 ("skipped", .int(skipped)),
                 ("skipped_examples", .array(skippedExamples.map { .object([("origin", .string($0.origin)), ("reason", .string($0.reason))]) }))])
    }
}

/// Reads the documents of one source: JSON Lines (text field configurable, other fields kept as
/// metadata), whole text files, or blank-line-separated blocks; any of them gzip-compressed. Files are
/// read in sorted order, so the document order is deterministic.
public struct DocumentReader {
    /// The recipe's `corpus.sources.<s>.format` and `corpus.on_error`.
    public typealias Format = SourceFormat
    public typealias OnError = KondateRecipe.OnError

    public var files: [String]
    public var format: Format
    public var textField: String
    public var onError: OnError
    /// The longest document kept (`Limits.documentBytes`); longer ones are skipped and counted.
    public var maxDocumentBytes = Limits.documentBytes
    public private(set) var report = ReadReport()

    public init(files: [String], format: Format, textField: String = "text", onError: OnError = .skip) {
        self.files = files
        self.format = format
        self.textField = textField
        self.onError = onError
        report.files = files
    }

    /// Expands path patterns (already resolved against the recipe) to a sorted list of files.
    /// A pattern matching nothing is an error naming the pattern.
    public static func expand(_ patterns: [(pattern: String, location: SourceLocation?)]) throws -> [String] {
        var files = Set<String>()
        for (pattern, location) in patterns {
            let matched = PathCheck.matches(pattern).filter { path in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            }
            if matched.isEmpty { throw KondateError(.inputData, "'\(pattern)' matches no file", at: location) }
            files.formUnion(matched)
        }
        return files.sorted()
    }

    /// Expands a stage's input paths, each resolved against the file that wrote it.
    public static func expand(_ paths: InputPaths) throws -> [String] {
        try expand(paths.entries.map { ($0.resolved, $0.location) })
    }

    private mutating func skip(_ file: String, _ line: Int, _ reason: String) throws {
        if onError == .fail {
            throw KondateError(.inputData, "\(reason) (corpus.on_error is 'fail'; set it to 'skip' to count and skip such lines)",
                              at: SourceLocation(file: file, line: line, column: 1))
        }
        report.skipped += 1
        if report.skippedExamples.count < 10 { report.skippedExamples.append(("\(file):\(line)", reason)) }
    }

    /// A document over the size limit: skipped and counted, whatever `corpus.on_error` says.
    private mutating func skipOversized(_ file: String, _ line: Int, _ reason: String) {
        report.skipped += 1
        if report.skippedExamples.count < 10 { report.skippedExamples.append(("\(file):\(line)", reason)) }
    }

    /// Calls `body` with every document, in order.
    public mutating func forEach(_ body: (Document) throws -> Void) throws {
        for file in files {
            let reader: LineReader
            do { reader = try LineReader(path: file) } catch let e as LineReader.OpenError { throw KondateError(.inputData, e.reason, at: SourceLocation(file: file, line: 1, column: 1)) }
            reader.maxLineBytes = maxDocumentBytes
            do { try read(reader, file: file, body) } catch let e as LineReader.OpenError {
                throw KondateError(.inputData, e.reason, at: SourceLocation(file: file, line: max(1, reader.lineNumber), column: 1))
            }
        }
    }

    private mutating func read(_ reader: LineReader, file: String, _ body: (Document) throws -> Void) throws {
        do {
            switch format {
            case .jsonl:
                try reader.forEachLine({ bytes, line in
                    report.lines += 1
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return true }
                    let value: JSON
                    do throws(JSONParser.Failure) {
                        value = try JSONParser.parse(bytes)
                    } catch {
                        try skip(file, line, "malformed JSON: \(error.message) at column \(error.offset + 1)")
                        return true
                    }
                    guard case let .object(entries) = value else {
                        try skip(file, line, "the line is JSON but not an object")
                        return true
                    }
                    guard let index = entries.firstIndex(where: { $0.0 == textField }), case let .string(text) = entries[index].1 else {
                        try skip(file, line, "no string field '\(textField)' (corpus.sources.*.text_field)")
                        return true
                    }
                    var metadata = entries
                    metadata.remove(at: index)
                    report.documents += 1
                    report.bytes += text.utf8.count
                    try body(Document(text: text, file: file, line: line, metadata: metadata.isEmpty ? nil : .object(metadata)))
                    return true
                }, oversized: { line, length in
                    report.lines += 1
                    skipOversized(file, line, Self.oversized(length, reader))
                })
            case .text:
                guard let bytes = try reader.readAll() else {
                    skipOversized(file, 1, Self.oversized(reader.bytesRead, reader))
                    return
                }
                report.lines += bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    let bad = Self.firstInvalidLine(bytes)
                    try skip(file, bad, "invalid UTF-8")
                    return
                }
                if text.allSatisfy(\.isWhitespace) { return }
                report.documents += 1
                report.bytes += bytes.count
                try body(Document(text: text, file: file, line: 1))
            case .textBlocks:
                var block: [UInt8] = []
                var blockLine = 1
                var blockValid = true
                func flush() throws {
                    defer { block.removeAll(keepingCapacity: true); blockValid = true }
                    guard !block.isEmpty else { return }
                    if block.last == 0x0A { block.removeLast() }
                    guard blockValid, let text = String(validating: block, as: UTF8.self) else {
                        try skip(file, blockLine, "invalid UTF-8")
                        return
                    }
                    report.documents += 1
                    report.bytes += block.count
                    try body(Document(text: text, file: file, line: blockLine))
                }
                var blockTooLong = false
                try reader.forEachLine({ bytes, line in
                    report.lines += 1
                    let blank = bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                    if blank {
                        if blockTooLong { skipOversized(file, blockLine, Self.oversized(block.count, reader)); block.removeAll(); blockTooLong = false }
                        try flush()
                        return true
                    }
                    if block.isEmpty && !blockTooLong { blockLine = line }
                    if blockTooLong { return true }
                    if block.count + bytes.count + 1 > reader.maxLineBytes {
                        blockTooLong = true
                        return true
                    }
                    block.append(contentsOf: bytes)
                    block.append(0x0A)
                    return true
                }, oversized: { line, length in
                    report.lines += 1
                    if block.isEmpty && !blockTooLong { blockLine = line }
                    blockTooLong = true
                })
                if blockTooLong { skipOversized(file, blockLine, Self.oversized(block.count, reader)); block.removeAll() }
                try flush()
            }
        }
    }

    /// Why a document was skipped for its size.
    static func oversized(_ length: Int, _ reader: LineReader) -> String {
        "a document of more than \(reader.maxLineBytes) bytes (\(length) or more); raise KONDATE_MAX_DOCUMENT_BYTES to keep such documents"
    }

    static func firstInvalidLine(_ bytes: [UInt8]) -> Int {
        var line = 1, start = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            if String(validating: bytes[start..<i], as: UTF8.self) == nil { return line }
            line += 1
            start = i + 1
        }
        return line
    }
}
