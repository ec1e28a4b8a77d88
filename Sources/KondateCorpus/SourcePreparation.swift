import Foundation
import KondateRecipe
import KondateSupport

/// What each filter of a source did.
public struct FilterReport: Sendable {
    public struct Step: Sendable {
        public var filter: String
        public var documentsIn = 0
        public var documentsOut = 0
        public var charactersIn = 0
        public var charactersOut = 0
        /// Up to three dropped documents: origin and the first 160 characters.
        public var dropped: [(origin: String, excerpt: String)] = []
    }

    public var source: String
    public var read: ReadReport
    public var steps: [Step]
    public var documentsOut = 0
    public var charactersOut = 0
    public var bytesOut = 0
    public var seconds = 0.0

    /// The report as written to disk: no timings, so the same inputs give the same bytes.
    public var json: JSON {
        .object([
            ("source", .string(source)),
            ("read", read.json),
            ("filters", .array(steps.map { s in .object([
                ("filter", .string(s.filter)), ("documents_in", .int(s.documentsIn)), ("documents_out", .int(s.documentsOut)),
                ("characters_in", .int(s.charactersIn)), ("characters_out", .int(s.charactersOut)),
                ("dropped_examples", .array(s.dropped.map { .object([("origin", .string($0.origin)), ("excerpt", .string($0.excerpt))]) })),
            ]) })),
            ("documents_out", .int(documentsOut)), ("characters_out", .int(charactersOut)), ("bytes_out", .int(bytesOut)),
        ])
    }
}

/// Reads one source, applies its filters in recipe order and writes the surviving documents as JSON
/// Lines (`{"text", "origin", "meta"}`) — the `corpus.prepare.<source>` stage.
///
/// Documents are processed in chunks: text filters and dedup keys are computed in parallel, then a
/// sequential pass over the chunk, in document order, applies the deduplicators. The output is the
/// same for any thread count.
public struct SourcePreparation {
    public var source: Recipe.Source
    public var files: [String]
    public var onError: DocumentReader.OnError
    public var seed: Int
    public var threads: Int
    public var chunkSize = 2048
    /// How a document's file is named in its `origin` (e.g. relative to the recipe, so the prepared
    /// file does not depend on where the run started).
    public var originPath: @Sendable (String) -> String = { $0 }

    public init(source: Recipe.Source, files: [String], onError: DocumentReader.OnError, seed: Int,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.source = source
        self.files = files
        self.onError = onError
        self.seed = seed
        self.threads = max(1, threads)
    }

    /// Per document, what the parallel pass found.
    enum Precomputed {
        case text(Bool)
        case exact((UInt64, UInt64))
        case minHash([UInt32])
        case skipped
    }

    public func run(output: String) throws -> FilterReport {
        let started = Date()
        let filters = try source.filters.map { try FilterRegistry.make($0, seed: seed) }
        let format = source.format
        var reader = DocumentReader(files: files, format: format, textField: source.textField, onError: onError)
        var report = FilterReport(source: source.name, read: ReadReport(), steps: filters.map { FilterReport.Step(filter: $0.name) })
        var exact = filters.map { filter -> ExactDeduplicator? in if case .exactDedup = filter { ExactDeduplicator() } else { nil } }
        var minHash = filters.map { filter -> MinHashDeduplicator? in if case let .minHash(p) = filter { MinHashDeduplicator(p) } else { nil } }
        let minHashers = minHash

        try FileManager.default.createDirectory(at: URL(fileURLWithPath: output).deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = output + ".tmp"
        _ = FileManager.default.createFile(atPath: tmp, contents: nil)
        guard let out = FileHandle(forWritingAtPath: tmp) else { throw KondateError(.inputData, "cannot write '\(tmp)'") }
        defer { try? out.close() }
        var pending = Data()

        var chunk: [Document] = []
        chunk.reserveCapacity(chunkSize)

        func process() throws {
            guard !chunk.isEmpty else { return }
            let documents = chunk
            var results = [[Precomputed]](repeating: [], count: documents.count)
            let workers = min(threads, documents.count)
            let per = (documents.count + workers - 1) / workers
            results.withUnsafeMutableBufferPointer { buffer in
                nonisolated(unsafe) let base = buffer.baseAddress!
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for i in (w * per)..<min(documents.count, (w + 1) * per) {
                        var row: [Precomputed] = []
                        row.reserveCapacity(filters.count)
                        var dropped = false
                        var normalized: String?   // shared by the deduplicators
                        for (j, filter) in filters.enumerated() {
                            if dropped { row.append(.skipped); continue }
                            switch filter {
                            case let .text(_, keep):
                                let ok = keep(documents[i].text)
                                row.append(.text(ok))
                                dropped = !ok
                            case .exactDedup:
                                if normalized == nil { normalized = DedupNormalizer.normalize(documents[i].text) }
                                row.append(.exact(ExactDeduplicator.key(normalized: normalized!)))
                            case .minHash:
                                if normalized == nil { normalized = DedupNormalizer.normalize(documents[i].text) }
                                row.append(.minHash(minHashers[j]!.signature(normalized: normalized!)))
                            }
                        }
                        base[i] = row
                    }
                }
            }
            for (i, document) in documents.enumerated() {
                let characters = document.text.unicodeScalars.count
                var kept = true
                for j in filters.indices {
                    report.steps[j].documentsIn += 1
                    report.steps[j].charactersIn += characters
                    switch results[i][j] {
                    case let .text(ok): kept = ok
                    case let .exact(key): kept = exact[j]!.keep(key: key)
                    case let .minHash(signature): kept = minHash[j]!.keep(signature: signature)
                    case .skipped: kept = false
                    }
                    if !kept {
                        if report.steps[j].dropped.count < 3 {
                            report.steps[j].dropped.append(("\(originPath(document.file)):\(document.line)", String(document.text.prefix(160))))
                        }
                        break
                    }
                    report.steps[j].documentsOut += 1
                    report.steps[j].charactersOut += characters
                }
                guard kept else { continue }
                var entry: [(String, JSON)] = [("text", .string(document.text)), ("origin", .string("\(originPath(document.file)):\(document.line)"))]
                if let meta = document.metadata { entry.append(("meta", meta)) }
                let line = JSON.object(entry).rendered(pretty: false) + "\n"
                pending.append(contentsOf: Array(line.utf8))
                report.documentsOut += 1
                report.charactersOut += characters
                report.bytesOut += document.text.utf8.count
            }
            if pending.count > 1 << 20 {
                try out.write(contentsOf: pending)
                pending.removeAll(keepingCapacity: true)
            }
            chunk.removeAll(keepingCapacity: true)
        }

        try reader.forEach { document in
            chunk.append(document)
            if chunk.count >= chunkSize { try process() }
        }
        try process()
        try out.write(contentsOf: pending)
        try out.synchronize()
        try out.close()
        if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
        try FileManager.default.moveItem(atPath: tmp, toPath: output)
        report.read = reader.report
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
