import Foundation
import KondateSupport
import Testing

/// `kondate report` on real run directories, as a user runs it.
@Suite("kondate report", .serialized)
struct ReportCLITests {
    /// Checks that `html` is a self-contained page: no scripts, no external resources, balanced SVG.
    static func expectSelfContained(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!html.contains("<script"), sourceLocation: sourceLocation)
        #expect(!html.contains("<link"), sourceLocation: sourceLocation)
        #expect(!html.contains("<img"), sourceLocation: sourceLocation)
        #expect(!html.contains("url("), sourceLocation: sourceLocation)
        let withoutNamespace = html.replacingOccurrences(of: #"xmlns="http://www.w3.org/2000/svg""#, with: "")
        #expect(!withoutNamespace.contains("http://") && !withoutNamespace.contains("https://"), sourceLocation: sourceLocation)
        let opened = html.components(separatedBy: "<svg").count - 1
        let closed = html.components(separatedBy: "</svg>").count - 1
        #expect(opened > 0 && opened == closed, "\(opened) <svg, \(closed) </svg>", sourceLocation: sourceLocation)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("</html>"), sourceLocation: sourceLocation)
    }

    /// `object` with the string at `path` replaced by `value`.
    static func replacing(_ path: [String], in object: JSON, with value: String) -> JSON {
        guard let key = path.first, case let .object(entries) = object else { return .string(value) }
        return .object(entries.map { $0.0 == key ? ($0.0, replacing(Array(path.dropFirst()), in: $0.1, with: value)) : $0 })
    }

    /// A short run (four pretraining steps, a fraction of a tuning epoch) stopped after tuning: the report has pretraining and tuning plots and the mixture,
    /// and notes that evaluation has not run. A copy with a recipe name full of markup overlays it (the
    /// name is escaped). A directory holding only the manifest still gets a report.
    @Test func reportsOnOneRunAndOnTwo() throws {
        let base = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let runA = base + "/run-a"
        let made = try kondate(["run", "examples/tiny/tiny-llama.yaml", "--out", runA, "--set", "pretrain.steps=4",
                                "--set", "pretrain.log_interval=1", "--set", "pretrain.eval_interval=2",
                                "--set", "tune.qa.epochs=0.05", "--until", "tune"])
        try #require(made.status == 0, "\(made.stderr)")

        let single = try kondate(["report", runA])
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stdout == runA + "/report.html\n", "\(single.stdout)")
        let html = try String(contentsOfFile: runA + "/report.html", encoding: .utf8)
        Self.expectSelfContained(html)
        for text in ["tiny-llama", "Pretraining", "Pretraining loss", "Pretraining learning rate", "Pretraining throughput",
                     "tune.qa loss", "Corpus mixture", "Share of pretraining tokens per source", "corpus.prepare.ja",
                     "No eval summaries (eval/&lt;suite&gt;/summary.json) in this run."] {
            #expect(html.contains(text), "missing \(text)")
        }

        // A second run directory: a copy whose recipe name needs escaping.
        let runB = base + "/run-b"
        try FileManager.default.copyItem(atPath: runA, toPath: runB)
        let manifest = try RuntimeCLITests.json(try String(contentsOfFile: runB + "/manifest.json", encoding: .utf8))
        let renamed = Self.replacing(["recipe", "name"], in: manifest, with: "<b>tiny & \"friends\"</b>")
        try (renamed.rendered() + "\n").write(toFile: runB + "/manifest.json", atomically: true, encoding: .utf8)
        let out = base + "/compare.html"
        let pair = try kondate(["report", runA, runB, "--out", out])
        #expect(pair.status == 0, "\(pair.stderr)")
        #expect(pair.stdout == out + "\n")
        let overlay = try String(contentsOfFile: out, encoding: .utf8)
        Self.expectSelfContained(overlay)
        #expect(overlay.contains("run-a (tiny-llama)") && overlay.contains("run-b (&lt;b&gt;tiny &amp; &quot;friends&quot;&lt;/b&gt;)"))
        #expect(!overlay.contains("<b>tiny"))
        #expect(overlay.contains("run-b (&lt;b&gt;tiny &amp; &quot;friends&quot;&lt;/b&gt;) training loss"))

        // Only the manifest and a damaged metrics file: every other section is a note.
        let bare = base + "/bare"
        try FileManager.default.createDirectory(atPath: bare + "/pretrain", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: runA + "/manifest.json", toPath: bare + "/manifest.json")
        try "not json\n{\"step\": 1, \"loss\": 2.5, \"lr\": 0.001}\n".write(toFile: bare + "/pretrain/metrics.jsonl", atomically: true, encoding: .utf8)
        let partial = try kondate(["report", bare])
        #expect(partial.status == 0, "\(partial.stderr)")
        let notes = try String(contentsOfFile: bare + "/report.html", encoding: .utf8)
        #expect(notes.contains("pretrain/metrics.jsonl: 1 line skipped (not a JSON object)"))
        #expect(notes.contains("no corpus/mix/mixture.json"))
        #expect(notes.contains("No tune stage metrics"))
        #expect(notes.contains("Pretraining loss"))
    }

    /// A missing directory, a directory without a manifest and a wrong number of arguments are named.
    @Test func errorsNameTheDirectory() throws {
        let missing = try kondate(["report", "/nonexistent-kondate-run"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("kondate report: /nonexistent-kondate-run: no such run directory"), "\(missing.stderr)")

        let empty = RuntimeCLITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let noManifest = try kondate(["report", empty])
        #expect(noManifest.status == 1)
        #expect(noManifest.stderr.contains("\(empty): no manifest.json"), "\(noManifest.stderr)")
        #expect(!FileManager.default.fileExists(atPath: empty + "/report.html"))

        try "{not json".write(toFile: empty + "/manifest.json", atomically: true, encoding: .utf8)
        let broken = try kondate(["report", empty])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("\(empty)/manifest.json: not valid JSON"), "\(broken.stderr)")

        let none = try kondate(["report"])
        #expect(none.status == 2 && none.stderr.contains("give a run directory"), "\(none.stderr)")
        let three = try kondate(["report", "a", "b", "c"])
        #expect(three.status == 2 && three.stderr.contains("at most two run directories"), "\(three.stderr)")
    }
}
