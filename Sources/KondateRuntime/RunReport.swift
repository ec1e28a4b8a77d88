import Foundation
import KondateSupport

// MARK: - Reading a run directory

/// The parts of a run directory that `kondate report` shows, read without interpreting the recipe:
///
/// - `manifest.json` (required): recipe name and hash, Kondate version and commit, environment, seed,
///   layout, stages with their keys, statuses and summaries;
/// - `pretrain/metrics.jsonl`: training lines (`step`, `loss`, `lr`, `tokens_per_second`, …) and
///   held-out lines (`step`, `held_out_loss`);
/// - `tune/<name>/metrics.jsonl` for each tune stage;
/// - `corpus/mix/mixture.json`: requested and realised shares, drawn tokens and epochs per source;
/// - `eval/<suite>/summary.json` for each eval suite.
///
/// Everything but the manifest is optional: a run stopped with `--until`, or a file that cannot be read,
/// leaves its field empty and, for unreadable files, a line in `problems`.
public struct ReportedRun: Sendable {
    /// The directory as given on the command line.
    public var path: String
    /// The directory's last path component, used to name the run in legends and tables.
    public var name: String
    public var manifest: JSON
    public var pretrain: MetricsRecords?
    /// Tune stages in manifest order, then any further `tune/` directories in name order.
    public var tunes: [(name: String, log: MetricsRecords)]
    public var mixture: JSON?
    /// Eval suites in manifest order, then any further `eval/` directories in name order.
    public var evalSuites: [(name: String, summary: JSON)]
    /// Files that exist but could not be read or parsed, one line each.
    public var problems: [String]

    public var recipeName: String { manifest["recipe"]?["name"]?.stringValue ?? "(unnamed recipe)" }

    /// The manifest's stages (an empty array when the field is missing).
    public var stages: [JSON] { manifest["stages"]?.arrayValue ?? [] }

    /// Why a directory cannot be reported on.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads the run directory at `path`. Throws when it does not exist, is not a directory, or has no
    /// readable `manifest.json`; every other file is optional.
    public static func load(_ path: String) throws(Failure) -> ReportedRun {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Failure(description: "\(path): no such run directory")
        }
        guard isDirectory.boolValue else { throw Failure(description: "\(path): not a directory") }
        let manifestPath = path + "/manifest.json"
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw Failure(description: "\(path): no manifest.json; not a run directory written by `kondate run`")
        }
        guard let text = try? String(contentsOfFile: manifestPath, encoding: .utf8) else {
            throw Failure(description: "\(manifestPath): cannot be read as UTF-8 text")
        }
        let manifest: JSON
        do { manifest = try JSONParser.parse(text) } catch {
            throw Failure(description: "\(manifestPath): not valid JSON: \(error)")
        }
        guard case .object = manifest else { throw Failure(description: "\(manifestPath): not a JSON object") }

        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        var run = ReportedRun(path: path, name: URL(fileURLWithPath: trimmed).standardizedFileURL.lastPathComponent,
                              manifest: manifest, pretrain: nil, tunes: [], mixture: nil, evalSuites: [], problems: [])
        run.pretrain = run.metrics(at: "pretrain/metrics.jsonl")
        for name in run.stageNames(kind: "tune", directory: "tune") {
            if let log = run.metrics(at: "tune/\(name)/metrics.jsonl") { run.tunes.append((name, log)) }
        }
        run.mixture = run.object(at: "corpus/mix/mixture.json")
        for name in run.stageNames(kind: "eval", directory: "eval") {
            if let summary = run.object(at: "eval/\(name)/summary.json") { run.evalSuites.append((name, summary)) }
        }
        return run
    }

    /// Names of the tune stages or eval suites: the second component of the manifest's stage ids of
    /// `kind` (`tune.qa` → `qa`, `eval.tasks.pretrain` → `tasks`), then subdirectories of `directory`
    /// not already named.
    private func stageNames(kind: String, directory: String) -> [String] {
        var names: [String] = []
        for stage in stages where stage["kind"]?.stringValue == kind {
            guard let id = stage["id"]?.stringValue else { continue }
            let parts = id.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count >= 2, !names.contains(String(parts[1])) { names.append(String(parts[1])) }
        }
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: path + "/" + directory)) ?? []
        for entry in listed.sorted() where !names.contains(entry) && !entry.hasPrefix(".") { names.append(entry) }
        return names
    }

    /// The text of a file of the run; nil when absent, and noted when unreadable.
    private mutating func text(at relative: String) -> String? {
        let file = path + "/" + relative
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            problems.append("\(relative): cannot be read as UTF-8 text")
            return nil
        }
        return text
    }

    private mutating func object(at relative: String) -> JSON? {
        guard let text = text(at: relative) else { return nil }
        do { return try JSONParser.parse(text) } catch {
            problems.append("\(relative): not valid JSON (\(error))")
            return nil
        }
    }

    private mutating func metrics(at relative: String) -> MetricsRecords? {
        guard let text = text(at: relative) else { return nil }
        let (log, bad) = MetricsRecords.parse(text)
        if bad > 0 { problems.append("\(relative): \(bad) line\(bad == 1 ? "" : "s") skipped (not a JSON object)") }
        return log
    }
}

/// The records of a `metrics.jsonl` file. A resumed stage may log a step twice; the later line wins,
/// and records are ordered by step.
public struct MetricsRecords: Sendable {
    public var records: [JSON]

    /// Parses JSON Lines, returning the log and the number of non-blank lines that were not JSON objects.
    public static func parse(_ text: String) -> (MetricsRecords, skipped: Int) {
        // Training and evaluation lines share step numbers: a repeat replaces the earlier line of its kind.
        var latest: [Int: Int] = [:]            // (step × 2 + kind) → index into `numbered`
        var numbered: [(step: Int, training: Bool, value: JSON)] = []
        var unnumbered: [JSON] = []
        var skipped = 0
        for line in text.split(whereSeparator: \.isNewline) where !line.allSatisfy(\.isWhitespace) {
            guard let value = try? JSONParser.parse(String(line)), case .object = value else { skipped += 1; continue }
            guard let step = value["step"]?.intValue else { unnumbered.append(value); continue }
            let training = value["loss"] != nil || value["held_out_loss"] == nil
            let slot = step &* 2 &+ (training ? 0 : 1)
            if let index = latest[slot] {
                numbered[index].value = value
            } else {
                latest[slot] = numbered.count
                numbered.append((step, training, value))
            }
        }
        numbered.sort { a, b in a.step != b.step ? a.step < b.step : a.training && !b.training }
        return (MetricsRecords(records: numbered.map(\.value) + unnumbered), skipped)
    }

    /// `(step, value)` for every record holding a finite number under `key`.
    public func series(_ key: String) -> [(x: Double, y: Double)] {
        records.compactMap { record in
            guard let x = record["step"]?.doubleValue, let y = record[key]?.doubleValue, y.isFinite else { return nil }
            return (x, y)
        }
    }
}

// MARK: - SVG plots

/// Text measurement and escaping shared by the SVG figures and the HTML page.
enum Markup {
    /// Escapes `&`, `<`, `>`, `"` and `'`, so text is safe in element content and in quoted attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}", "\u{7F}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// An estimate of the rendered width of `text` in a sans-serif face: 0.6 em per narrow character,
    /// 1 em per East Asian wide character.
    static func width(_ text: String, fontSize: Double) -> Double {
        text.unicodeScalars.reduce(0) { sum, scalar in
            sum + fontSize * (scalar.value >= 0x1100 ? 1.0 : scalar.value < 0x20 ? 0 : 0.6)
        }
    }

    /// `text` shortened with "…" to fit `maxWidth` at `fontSize`.
    static func truncated(_ text: String, maxWidth: Double, fontSize: Double) -> String {
        guard width(text, fontSize: fontSize) > maxWidth else { return text }
        var out = ""
        for ch in text {
            if width(out + String(ch) + "…", fontSize: fontSize) > maxWidth { break }
            out.append(ch)
        }
        return out + "…"
    }

    /// A coordinate with one decimal.
    static func coordinate(_ x: Double) -> String {
        let r = (x * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }
}

/// Axis ticks: about `count` values at 1, 2 or 5 times a power of ten that span the data.
public enum Ticks {
    /// Tick values covering `[lower, upper]`: the first is at or below `lower`, the last at or above
    /// `upper`, and consecutive ticks are one "nice" step apart (1, 2 or 5 × 10ⁿ, and at least
    /// `minimumStep`: 1 for an axis of whole numbers such as steps). A zero-width or non-finite range is
    /// widened so that at least two ticks result.
    public static func nice(from lower: Double, to upper: Double, count: Int = 5, minimumStep: Double = 0) -> [Double] {
        guard lower.isFinite, upper.isFinite else { return [0, 1] }
        var lo = min(lower, upper), hi = max(lower, upper)
        if hi - lo <= max(abs(lo), abs(hi)) * 1e-12 {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        let step = max(niceStep((hi - lo) / Double(max(1, count - 1))), minimumStep)
        let first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
        return stride(from: first, through: last, by: 1).map { i in
            let t = i * step
            return abs(t) < step * 1e-9 ? 0 : t
        }
    }

    /// The value 1, 2 or 5 × 10ⁿ nearest to `x` (by the usual thresholds 1.5, 3, 7).
    static func niceStep(_ x: Double) -> Double {
        let exponent = (log10(x)).rounded(.down)
        let fraction = x / pow(10, exponent)
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        return nice * pow(10, exponent)
    }

    /// Labels for `ticks` with as many decimals as the step needs: `K`/`M`/`B` suffixes from 10 000 up,
    /// scientific notation below 0.001, fixed decimals otherwise.
    public static func labels(_ ticks: [Double]) -> [String] {
        let step = ticks.count > 1 ? abs(ticks[1] - ticks[0]) : 1
        let largest = ticks.map(abs).max() ?? 0
        func decimals(_ step: Double) -> Int { max(0, min(8, Int((-log10(step) - 1e-9).rounded(.up)))) }
        return ticks.map { t in
            if t == 0 { return "0" }
            if largest >= 1e4 {
                let (scale, suffix): (Double, String) = largest >= 1e9 ? (1e9, "B") : largest >= 1e6 ? (1e6, "M") : (1e3, "K")
                return String(format: "%.\(decimals(step / scale))f", t / scale) + suffix
            }
            if largest < 1e-3 { return Format.scientific(t, digits: 2) }
            return String(format: "%.\(decimals(step))f", t)
        }
    }

    /// Labels as percentages (0.25 → "25%").
    public static func percentLabels(_ ticks: [Double]) -> [String] {
        labels(ticks.map { $0 * 100 }).map { $0 + "%" }
    }
}

/// A legend laid out in rows across the top of a figure.
struct SVGLegend {
    enum Swatch: Sendable { case line(dashed: Bool), marker, bar(opacity: Double) }
    struct Entry { var label: String; var color: String; var swatch: Swatch }

    static let fontSize = 11.0
    static let rowHeight = 16.0

    var entries: [Entry]
    /// The rows, each a list of (entry, x offset), fitted to `maxWidth`.
    var rows: [[(entry: Entry, x: Double)]]

    init(entries: [Entry], maxWidth: Double) {
        self.entries = entries
        var rows: [[(entry: Entry, x: Double)]] = []
        var current: [(entry: Entry, x: Double)] = []
        var x = 0.0
        for entry in entries {
            let label = Markup.truncated(entry.label, maxWidth: maxWidth - 24, fontSize: Self.fontSize)
            let itemWidth = 22 + Markup.width(label, fontSize: Self.fontSize) + 16
            if x > 0, x + itemWidth > maxWidth {
                rows.append(current)
                current = []
                x = 0
            }
            current.append((Entry(label: label, color: entry.color, swatch: entry.swatch), x))
            x += itemWidth
        }
        if !current.isEmpty { rows.append(current) }
        self.rows = rows
    }

    var height: Double { Double(rows.count) * Self.rowHeight }

    /// The legend's markup with its first row's baseline at `y`.
    func svg(x left: Double, y top: Double) -> String {
        var out = ""
        for (r, row) in rows.enumerated() {
            let y = top + Double(r) * Self.rowHeight
            for (entry, dx) in row {
                let x = left + dx
                switch entry.swatch {
                case let .line(dashed):
                    let dash = dashed ? #" stroke-dasharray="5 3""# : ""
                    out += #"<line x1="\#(Markup.coordinate(x))" y1="\#(Markup.coordinate(y - 4))" x2="\#(Markup.coordinate(x + 18))" y2="\#(Markup.coordinate(y - 4))" stroke="\#(entry.color)" stroke-width="2"\#(dash)/>"#
                case .marker:
                    out += #"<circle cx="\#(Markup.coordinate(x + 8))" cy="\#(Markup.coordinate(y - 4))" r="4.5" fill="\#(entry.color)" stroke="white" stroke-width="1.5"/>"#
                case let .bar(opacity):
                    out += #"<rect x="\#(Markup.coordinate(x + 2))" y="\#(Markup.coordinate(y - 9))" width="12" height="10" fill="\#(entry.color)" fill-opacity="\#(opacity)"/>"#
                }
                out += #"<text x="\#(Markup.coordinate(x + 21))" y="\#(Markup.coordinate(y))" class="legend">\#(Markup.escape(entry.label))</text>"#
                out += "\n"
            }
        }
        return out
    }
}

/// A line chart as inline SVG: a title, a legend, axes with about five nice ticks each, and one
/// polyline (or a set of markers) per series. Non-finite values break a line; the axes span every
/// series. All text is escaped.
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public enum Style: Sendable { case line, markers }
        public var label: String
        /// A CSS colour.
        public var color: String
        public var style: Style
        /// Whether a line is dashed, so that a line drawn over an identical one leaves it visible.
        public var dashed: Bool
        public var points: [(x: Double, y: Double)]

        public init(label: String, color: String, style: Style = .line, dashed: Bool = false, points: [(x: Double, y: Double)]) {
            self.label = label
            self.color = color
            self.style = style
            self.dashed = dashed
            self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 640.0
    public var height = 260.0
    /// Whether the y axis includes zero (for rates and shares rather than losses).
    public var yFromZero = false
    /// Whether x values are whole numbers (steps), so that x ticks are too.
    public var xIntegers = true

    public init(title: String, xLabel: String, yLabel: String, series: [Series], yFromZero: Bool = false) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.yFromZero = yFromZero
    }

    /// Whether any series has a point to draw.
    public var hasData: Bool { series.contains { !$0.points.isEmpty } }

    /// The figure as an `<svg>` element.
    public func svg() -> String {
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xs = points.map(\.x), ys = points.map(\.y)
        let xTicks = Ticks.nice(from: xs.min() ?? 0, to: xs.max() ?? 1, minimumStep: xIntegers ? 1 : 0)
        var yLower = ys.min() ?? 0, yUpper = ys.max() ?? 1
        if yFromZero { yLower = min(0, yLower); yUpper = max(0, yUpper) }
        let yTicks = Ticks.nice(from: yLower, to: yUpper)
        let xLabels = Ticks.labels(xTicks), yLabels = Ticks.labels(yTicks)

        let fontSize = 11.0
        let left = max(72, 30 + (yLabels.map { Markup.width($0, fontSize: fontSize) }.max() ?? 0) + 8)
        let right = 16.0
        let legend = SVGLegend(entries: series.map {
            SVGLegend.Entry(label: $0.label, color: $0.color, swatch: $0.style == .line ? .line(dashed: $0.dashed) : .marker)
        }, maxWidth: width - left - right)
        let top = 26 + legend.height + 8
        let bottom = 42.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let (x0, x1) = (xTicks.first!, xTicks.last!), (y0, y1) = (yTicks.first!, yTicks.last!)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - y0) / (y1 - y0) * plotHeight }
        let c = Markup.coordinate

        var out = #"<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="\#(c(width))" height="\#(c(height))" viewBox="0 0 \#(c(width)) \#(c(height))" role="img">"#
        out += "\n<title>\(Markup.escape(title))</title>\n"
        out += #"<text x="\#(c(left))" y="17" class="title">\#(Markup.escape(Markup.truncated(title, maxWidth: width - left - right, fontSize: 13)))</text>"#
        out += "\n" + legend.svg(x: left, y: 38)
        // Grid and tick labels.
        for (tick, label) in zip(yTicks, yLabels) {
            let y = c(py(tick))
            out += #"<line x1="\#(c(left))" y1="\#(y)" x2="\#(c(left + plotWidth))" y2="\#(y)" class="grid"/>"#
            out += #"<text x="\#(c(left - 6))" y="\#(y)" dy="0.35em" class="tick" text-anchor="end">\#(Markup.escape(label))</text>"#
            out += "\n"
        }
        // x labels: drop every other one when they would touch.
        let widest = xLabels.map { Markup.width($0, fontSize: fontSize) }.max() ?? 0
        let spacing = xTicks.count > 1 ? plotWidth / Double(xTicks.count - 1) : plotWidth
        let every = max(1, Int((widest + 8) / max(spacing, 1)) + 1)
        for (i, (tick, label)) in zip(xTicks, xLabels).enumerated() {
            let x = c(px(tick))
            out += #"<line x1="\#(x)" y1="\#(c(top))" x2="\#(x)" y2="\#(c(top + plotHeight))" class="grid"/>"#
            if i % every == 0 {
                out += #"<text x="\#(x)" y="\#(c(top + plotHeight + 15))" class="tick" text-anchor="middle">\#(Markup.escape(label))</text>"#
            }
            out += "\n"
        }
        out += #"<rect x="\#(c(left))" y="\#(c(top))" width="\#(c(plotWidth))" height="\#(c(plotHeight))" class="frame"/>"#
        out += "\n"
        out += #"<text x="\#(c(left + plotWidth / 2))" y="\#(c(height - 8))" class="axis" text-anchor="middle">\#(Markup.escape(xLabel))</text>"#
        out += #"<text transform="translate(13 \#(c(top + plotHeight / 2))) rotate(-90)" class="axis" text-anchor="middle">\#(Markup.escape(yLabel))</text>"#
        out += "\n"
        // Series: lines first, so markers stay visible on top.
        for s in series where s.style == .line {
            var segment: [String] = []
            func flush() {
                if segment.count == 1 {
                    let xy = segment[0].split(separator: ",")
                    out += #"<circle cx="\#(xy[0])" cy="\#(xy[1])" r="2" fill="\#(s.color)"/>"#
                } else if segment.count > 1 {
                    out += #"<polyline points="\#(segment.joined(separator: " "))" fill="none" stroke="\#(s.color)" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"\#(s.dashed ? #" stroke-dasharray="6 4""# : "")/>"#
                }
                out += segment.isEmpty ? "" : "\n"
                segment = []
            }
            for p in s.points {
                if p.x.isFinite, p.y.isFinite { segment.append(c(px(p.x)) + "," + c(py(p.y))) } else { flush() }
            }
            flush()
        }
        for s in series where s.style == .markers {
            for p in s.points where p.x.isFinite && p.y.isFinite {
                out += #"<circle cx="\#(c(px(p.x)))" cy="\#(c(py(p.y)))" r="4.5" fill="\#(s.color)" stroke="white" stroke-width="1.5"/>"#
            }
            out += "\n"
        }
        out += "</svg>"
        return out
    }
}

/// A horizontal bar chart as inline SVG: one band per category, one bar per group within it, the value
/// printed at the end of each bar, and a shared value axis from zero.
public struct SVGBarChart: Sendable {
    public struct Group: Sendable {
        public var label: String
        public var color: String
        public var opacity: Double
        /// One value per category; nil draws no bar.
        public var values: [Double?]

        public init(label: String, color: String, opacity: Double = 1, values: [Double?]) {
            self.label = label
            self.color = color
            self.opacity = opacity
            self.values = values
        }
    }

    public var title: String
    public var valueLabel: String
    public var categories: [String]
    public var groups: [Group]
    /// Whether values are fractions shown as percentages.
    public var percent: Bool
    public var width = 640.0

    public init(title: String, valueLabel: String, categories: [String], groups: [Group], percent: Bool) {
        self.title = title
        self.valueLabel = valueLabel
        self.categories = categories
        self.groups = groups
        self.percent = percent
    }

    /// The figure as an `<svg>` element; its height grows with the number of bars.
    public func svg() -> String {
        let values = groups.flatMap(\.values).compactMap { $0 }.filter(\.isFinite)
        let ticks = Ticks.nice(from: 0, to: max(values.max() ?? 1, 0) == 0 ? 1 : max(values.max() ?? 1, 0))
        let tickLabels = percent ? Ticks.percentLabels(ticks) : Ticks.labels(ticks)
        let fontSize = 11.0
        let names = categories.map { Markup.truncated($0, maxWidth: 180, fontSize: fontSize) }
        let left = 16 + (names.map { Markup.width($0, fontSize: fontSize) }.max() ?? 0) + 8
        let right = 56.0
        let legend = SVGLegend(entries: groups.map { SVGLegend.Entry(label: $0.label, color: $0.color, swatch: .bar(opacity: $0.opacity)) },
                               maxWidth: width - left - right)
        let top = 26 + legend.height + 8
        let barHeight = 11.0, barGap = 2.0, bandPadding = 10.0
        let band = Double(groups.count) * (barHeight + barGap) - barGap + bandPadding
        let plotHeight = max(band * Double(categories.count), 20)
        let height = top + plotHeight + 40
        let plotWidth = width - left - right
        let upper = ticks.last!
        func px(_ v: Double) -> Double { left + v / upper * plotWidth }
        let c = Markup.coordinate

        var out = #"<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="\#(c(width))" height="\#(c(height))" viewBox="0 0 \#(c(width)) \#(c(height))" role="img">"#
        out += "\n<title>\(Markup.escape(title))</title>\n"
        out += #"<text x="\#(c(left))" y="17" class="title">\#(Markup.escape(Markup.truncated(title, maxWidth: width - left - right, fontSize: 13)))</text>"#
        out += "\n" + legend.svg(x: left, y: 38)
        for (tick, label) in zip(ticks, tickLabels) {
            let x = c(px(tick))
            out += #"<line x1="\#(x)" y1="\#(c(top))" x2="\#(x)" y2="\#(c(top + plotHeight))" class="grid"/>"#
            out += #"<text x="\#(x)" y="\#(c(top + plotHeight + 15))" class="tick" text-anchor="middle">\#(Markup.escape(label))</text>"#
            out += "\n"
        }
        for (i, name) in names.enumerated() {
            let bandTop = top + Double(i) * band + bandPadding / 2
            let middle = bandTop + (band - bandPadding) / 2
            out += #"<text x="\#(c(left - 6))" y="\#(c(middle))" dy="0.35em" class="tick" text-anchor="end">\#(Markup.escape(name))</text>"#
            out += "\n"
            for (g, group) in groups.enumerated() {
                guard i < group.values.count, let value = group.values[i], value.isFinite else { continue }
                let y = bandTop + Double(g) * (barHeight + barGap)
                let w = max(0, px(max(value, 0)) - left)
                out += #"<rect x="\#(c(left))" y="\#(c(y))" width="\#(c(w))" height="\#(c(barHeight))" fill="\#(group.color)" fill-opacity="\#(group.opacity)"/>"#
                let text = percent ? Format.percent(value) : Format.number(value)
                out += #"<text x="\#(c(left + w + 4))" y="\#(c(y + barHeight / 2))" dy="0.35em" class="value">\#(Markup.escape(text))</text>"#
                out += "\n"
            }
        }
        out += #"<line x1="\#(c(left))" y1="\#(c(top))" x2="\#(c(left))" y2="\#(c(top + plotHeight))" class="axisline"/>"#
        out += #"<text x="\#(c(left + plotWidth / 2))" y="\#(c(height - 8))" class="axis" text-anchor="middle">\#(Markup.escape(valueLabel))</text>"#
        out += "\n</svg>"
        return out
    }
}

// MARK: - HTML

/// A self-contained HTML page assembled section by section: inline CSS, inline SVG, no scripts and
/// no external resources. Text arguments are escaped; only `raw` inserts markup as given.
public struct HTMLReport {
    /// A table cell: its text, and whether it holds a number (right-aligned, tabular figures).
    public struct Cell {
        public var text: String
        public var numeric: Bool
        /// A CSS colour for a small swatch before the text (a run's colour).
        public var swatch: String?
        /// An extra CSS class (`better`, `worse`, `muted`).
        public var style: String?

        public init(_ text: String, numeric: Bool = false, swatch: String? = nil, style: String? = nil) {
            self.text = text
            self.numeric = numeric
            self.swatch = swatch
            self.style = style
        }
    }

    public var title: String
    private var body = ""

    public init(title: String) { self.title = title }

    public static func escape(_ text: String) -> String { Markup.escape(text) }

    public mutating func heading(_ text: String, level: Int, id: String? = nil) {
        let anchor = id.map { #" id="\#(Markup.escape($0))""# } ?? ""
        body += "<h\(level)\(anchor)>\(Markup.escape(text))</h\(level)>\n"
    }

    public mutating func paragraph(_ text: String) {
        body += "<p>\(Markup.escape(text))</p>\n"
    }

    /// A one-line remark that a section or figure was skipped, and why.
    public mutating func note(_ text: String) {
        body += "<p class=\"note\">\(Markup.escape(text))</p>\n"
    }

    public mutating func table(header: [Cell], rows: [[Cell]], caption: String? = nil) {
        func cell(_ c: Cell, tag: String) -> String {
            let classes = [c.numeric ? "num" : nil, c.style].compactMap { $0 }
            let attribute = classes.isEmpty ? "" : #" class="\#(classes.joined(separator: " "))""#
            let swatch = c.swatch.map { #"<span class="swatch" style="background:\#(Markup.escape($0))"></span>"# } ?? ""
            return "<\(tag)\(attribute)>\(swatch)\(Markup.escape(c.text))</\(tag)>"
        }
        body += "<table>\n"
        if let caption { body += "<caption>\(Markup.escape(caption))</caption>\n" }
        body += "<thead><tr>" + header.map { cell($0, tag: "th") }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows { body += "<tr>" + row.map { cell($0, tag: "td") }.joined() + "</tr>\n" }
        body += "</tbody>\n</table>\n"
    }

    /// A figure produced by `SVGPlot` or `SVGBarChart`.
    public mutating func figure(_ svg: String) {
        body += "<figure>\n\(svg)\n</figure>\n"
    }

    /// Markup inserted as given; callers escape any text in it.
    public mutating func raw(_ html: String) { body += html }

    public static let css = """
    body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK JP",sans-serif;color:#1d2430;
    margin:24px auto;max-width:1100px;padding:0 20px;line-height:1.45;font-size:14px;background:#fff}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #d7dce3}
    h3{font-size:15px;margin:18px 0 6px}p{margin:6px 0}p.note{color:#6b7380;font-style:italic}p.meta{color:#4b5563}
    table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}caption{text-align:left;font-weight:600;padding:4px 0}
    th,td{border:1px solid #d7dce3;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f2f4f7;font-weight:600}
    td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}td.mono{font-family:ui-monospace,Menlo,Consolas,monospace}
    td.better{color:#0a7a32}td.worse{color:#b3261e}td.muted{color:#8a919c}
    .swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
    figure{margin:8px 0 14px}.figures{display:flex;flex-wrap:wrap;gap:8px 20px}
    svg.plot{font-family:inherit;background:#fff;overflow:visible}
    svg .title{font-size:13px;font-weight:600;fill:#1d2430}svg .legend,svg .tick,svg .value{font-size:11px;fill:#4b5563}
    svg .axis{font-size:11px;fill:#1d2430}svg .grid{stroke:#e6e9ee;stroke-width:1}
    svg .frame{fill:none;stroke:#9aa3ae;stroke-width:1}svg .axisline{stroke:#9aa3ae;stroke-width:1}
    footer{margin-top:32px;color:#8a919c;font-size:12px}
    """

    /// The complete document.
    public func rendered() -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(Markup.escape(title))</title>
        <style>
        \(Self.css)
        </style>
        </head>
        <body>
        \(body)</body>
        </html>

        """
    }
}

// MARK: - The report

/// `kondate report`: an HTML page describing one run, or two runs overlaid (two colours, legends naming
/// each run by its directory and recipe). Sections, in order: header and environment, stages,
/// pretraining, tuning, corpus mixture, evaluation. A section whose files are missing is replaced by a
/// one-line note. The page depends only on the run directories and `created`.
public enum RunReport {
    /// Colours for the first and second run, and lighter companions for secondary series.
    static let colors = ["#1f6fb4", "#d9480f"]
    static let secondaryColors = ["#0b3d66", "#8a2c06"]

    /// The report on `runs` (one or two), stamped with `created`.
    public static func html(runs: [ReportedRun], created: Date) -> String {
        precondition(!runs.isEmpty, "a report needs at least one run")
        let labels = runLabels(runs)
        var page = HTMLReport(title: "Kondate report: " + labels.joined(separator: " vs "))
        header(&page, runs, labels, created: created)
        stages(&page, runs, labels)
        pretraining(&page, runs, labels)
        tuning(&page, runs, labels)
        mixture(&page, runs, labels)
        evaluation(&page, runs, labels)
        page.raw("<footer>Written by kondate report. Self-contained: inline CSS and SVG only.</footer>\n")
        return page.rendered()
    }

    /// "dir (recipe)" per run, for legends and the run tables.
    static func runLabels(_ runs: [ReportedRun]) -> [String] {
        zip(runTags(runs), runs).map { "\($0) (\($1.recipeName))" }
    }

    /// The directory name per run, for column headers; when both directories have the same name,
    /// their paths as given.
    static func runTags(_ runs: [ReportedRun]) -> [String] {
        let sameName = runs.count > 1 && Set(runs.map(\.name)).count < runs.count
        return runs.map { sameName ? $0.path : $0.name }
    }

    private static func runHeaders(_ runs: [ReportedRun], _ labels: [String]) -> [HTMLReport.Cell] {
        runs.indices.map { HTMLReport.Cell(labels[$0], swatch: colors[$0 % colors.count]) }
    }

    // MARK: Header

    private static func header(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String], created: Date) {
        let names = runs.map(\.recipeName)
        page.heading(Set(names).count == 1 ? names[0] : names.joined(separator: " vs "), level: 1)
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        page.raw("<p class=\"meta\">Report on \(runs.count == 1 ? "one run" : "two runs, overlaid"); created \(Markup.escape(formatter.string(from: created))).</p>\n")

        var rows: [[HTMLReport.Cell]] = []
        func row(_ name: String, mono: Bool = false, _ value: (ReportedRun) -> String?) {
            rows.append([HTMLReport.Cell(name)] + runs.map { HTMLReport.Cell(value($0) ?? "—", style: mono ? "mono" : nil) })
        }
        row("directory") { $0.path }
        row("recipe") { $0.recipeName }
        row("recipe file") { $0.manifest["recipe"]?["file"]?.stringValue }
        row("recipe SHA-256", mono: true) { $0.manifest["recipe"]?["sha256"]?.stringValue.map { String($0.prefix(16)) } }
        row("overrides") { run in
            (run.manifest["recipe"]?["overrides"]?.arrayValue).map { $0.compactMap(\.stringValue).joined(separator: " ") }.flatMap { $0.isEmpty ? "none" : $0 }
        }
        row("kondate version") { $0.manifest["kondate"]?["version"]?.stringValue }
        row("git commit", mono: true) { $0.manifest["kondate"]?["git_commit"]?.stringValue.map { String($0.prefix(12)) } }
        row("seed") { $0.manifest["seed"].map(display) }
        row("layout") { run in
            guard case let .object(entries)? = run.manifest["layout"] else { return nil }
            return entries.map { "\($0.0) \(display($0.1))" }.joined(separator: ", ")
        }
        page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: rows, caption: "Runs")

        // Environment: every key either run records, objects flattened as `blas.library`.
        var keys: [String] = []
        var values: [[String: String]] = []
        for run in runs {
            var flat: [String: String] = [:]
            func add(_ prefix: String, _ value: JSON) {
                if case let .object(entries) = value {
                    for (k, v) in entries { add(prefix.isEmpty ? k : prefix + "." + k, v) }
                } else {
                    if !keys.contains(prefix) { keys.append(prefix) }
                    flat[prefix] = prefix == "memory_bytes" ? value.doubleValue.map(Format.bytes) ?? display(value) : display(value)
                }
            }
            if let environment = run.manifest["environment"] { add("", environment) }
            values.append(flat)
        }
        if keys.isEmpty {
            page.note("No environment recorded in manifest.json.")
        } else {
            let rows = keys.map { key in [HTMLReport.Cell(key == "memory_bytes" ? "memory" : key)] + values.map { HTMLReport.Cell($0[key] ?? "—") } }
            page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: rows, caption: "Environment")
        }
        for (i, run) in runs.enumerated() {
            for problem in run.problems { page.note("\(labels[i]): \(problem)") }
        }
    }

    // MARK: Stages

    private static func stages(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Stages", level: 2, id: "stages")
        var ids: [String] = []
        var kinds: [String: String] = [:]
        var byRun: [[String: JSON]] = []
        for run in runs {
            var map: [String: JSON] = [:]
            for stage in run.stages {
                guard let id = stage["id"]?.stringValue else { continue }
                if !ids.contains(id) { ids.append(id) }
                kinds[id] = kinds[id] ?? stage["kind"]?.stringValue
                map[id] = stage
            }
            byRun.append(map)
        }
        guard !ids.isEmpty else { page.note("No stages recorded in manifest.json."); return }
        var header = [HTMLReport.Cell("stage"), HTMLReport.Cell("kind")]
        for i in runs.indices {
            let suffix = runs.count > 1 ? " (\(runTags(runs)[i]))" : ""
            header += [HTMLReport.Cell("status" + suffix, swatch: runs.count > 1 ? colors[i] : nil), HTMLReport.Cell("key" + suffix)]
        }
        if runs.count > 1 { header.append(HTMLReport.Cell("same key")) }
        let rows: [[HTMLReport.Cell]] = ids.map { id in
            var row = [HTMLReport.Cell(id, style: "mono"), HTMLReport.Cell(kinds[id] ?? "")]
            var keys: [String?] = []
            for map in byRun {
                let stage = map[id]
                let status = stage?["status"]?.stringValue
                let key = stage?["key"]?.stringValue
                keys.append(key)
                row.append(HTMLReport.Cell(status ?? "—", style: status == "not run" ? "muted" : nil))
                row.append(HTMLReport.Cell(key.map { String($0.prefix(12)) } ?? "—", style: "mono"))
            }
            if runs.count > 1 {
                let same = keys.allSatisfy { $0 != nil && $0 == keys[0] }
                row.append(HTMLReport.Cell(same ? "yes" : "no", style: same ? nil : "muted"))
            }
            return row
        }
        page.table(header: header, rows: rows)
    }

    // MARK: Pretraining

    private static func pretraining(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Pretraining", level: 2, id: "pretraining")
        summaryTable(&page, runs, labels, stage: "pretrain",
                     keys: ["steps", "tokens", "first_loss", "final_loss", "held_out_loss"])
        let logs = runs.map(\.pretrain)
        for (i, log) in logs.enumerated() where log == nil {
            page.note("\(labels[i]): no pretrain/metrics.jsonl; pretraining has not run or was not logged.")
        }
        guard logs.contains(where: { $0 != nil }) else { return }
        var lossSeries: [SVGPlot.Series] = [], lrSeries: [SVGPlot.Series] = [], speedSeries: [SVGPlot.Series] = []
        for (i, log) in logs.enumerated() {
            guard let log else { continue }
            let prefix = runs.count > 1 ? labels[i] + " " : ""
            lossSeries.append(.init(label: prefix + "training loss", color: colors[i], points: log.series("loss")))
            let heldOut = log.series("held_out_loss")
            if !heldOut.isEmpty {
                lossSeries.append(.init(label: prefix + "held-out loss", color: secondaryColors[i], style: .markers, points: heldOut))
            }
            lrSeries.append(.init(label: prefix.isEmpty ? "learning rate" : labels[i], color: colors[i], dashed: i > 0, points: log.series("lr")))
            speedSeries.append(.init(label: prefix.isEmpty ? "tokens/s" : labels[i], color: colors[i], points: log.series("tokens_per_second")))
        }
        figures(&page, [
            SVGPlot(title: "Pretraining loss", xLabel: "step", yLabel: "loss", series: lossSeries),
            SVGPlot(title: "Pretraining learning rate", xLabel: "step", yLabel: "learning rate", series: lrSeries, yFromZero: true),
            SVGPlot(title: "Pretraining throughput", xLabel: "step", yLabel: "tokens/s", series: speedSeries, yFromZero: true),
        ])
    }

    /// Headline numbers from the manifest's `metrics.<stage>`, one column per run.
    private static func summaryTable(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String], stage: String, keys: [String]) {
        let metrics = runs.map { $0.manifest["metrics"]?[stage] }
        guard metrics.contains(where: { $0 != nil }) else { return }
        let rows: [[HTMLReport.Cell]] = keys.compactMap { key in
            let values = metrics.map { $0?[key] }
            guard values.contains(where: { $0 != nil }) else { return nil }
            return [HTMLReport.Cell(key.replacingOccurrences(of: "_", with: " "))] + values.map { value in
                guard let value, let number = value.doubleValue else { return HTMLReport.Cell("—", numeric: true) }
                return HTMLReport.Cell(value.intValue != nil && !key.hasSuffix("loss") ? Format.grouped(value.intValue!) : score(number), numeric: true)
            }
        }
        guard !rows.isEmpty else { return }
        page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: rows)
    }

    /// Draws the plots that have data side by side and notes the ones that have none.
    private static func figures(_ page: inout HTMLReport, _ plots: [SVGPlot]) {
        page.raw("<div class=\"figures\">\n")
        for plot in plots where plot.hasData { page.figure(plot.svg()) }
        page.raw("</div>\n")
        for plot in plots where !plot.hasData { page.note("\(plot.title): no values logged.") }
    }

    // MARK: Tuning

    private static func tuning(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Tuning", level: 2, id: "tuning")
        var names: [String] = []
        for run in runs { for (name, _) in run.tunes where !names.contains(name) { names.append(name) } }
        guard !names.isEmpty else { page.note("No tune stage metrics (tune/<name>/metrics.jsonl) in \(runs.count == 1 ? "this run" : "either run")."); return }
        for name in names {
            page.heading("tune." + name, level: 3)
            summaryTable(&page, runs, labels, stage: "tune." + name, keys: ["examples", "steps", "trained_tokens", "first_loss", "final_loss"])
            var lossSeries: [SVGPlot.Series] = [], lrSeries: [SVGPlot.Series] = []
            for (i, run) in runs.enumerated() {
                guard let log = run.tunes.first(where: { $0.name == name })?.log else {
                    page.note("\(labels[i]): no tune/\(name)/metrics.jsonl.")
                    continue
                }
                let prefix = runs.count > 1 ? labels[i] + " " : ""
                lossSeries.append(.init(label: prefix + "training loss", color: colors[i], points: log.series("loss")))
                let heldOut = log.series("held_out_loss")
                if !heldOut.isEmpty {
                    lossSeries.append(.init(label: prefix + "held-out loss", color: secondaryColors[i], style: .markers, points: heldOut))
                }
                lrSeries.append(.init(label: prefix.isEmpty ? "learning rate" : labels[i], color: colors[i], dashed: i > 0, points: log.series("lr")))
            }
            guard !lossSeries.isEmpty else { continue }
            figures(&page, [
                SVGPlot(title: "tune.\(name) loss", xLabel: "step", yLabel: "loss", series: lossSeries),
                SVGPlot(title: "tune.\(name) learning rate", xLabel: "step", yLabel: "learning rate", series: lrSeries, yFromZero: true),
            ])
        }
    }

    // MARK: Mixture

    private static func mixture(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Corpus mixture", level: 2, id: "mixture")
        for (i, run) in runs.enumerated() where run.mixture == nil {
            page.note("\(labels[i]): no corpus/mix/mixture.json; the mix stage has not run.")
        }
        let mixtures = runs.map { $0.mixture }
        guard mixtures.contains(where: { $0 != nil }) else { return }

        // Totals.
        let totalKeys = ["samples", "seq_len", "tokens"]
        let totals: [[HTMLReport.Cell]] = totalKeys.map { key in
            [HTMLReport.Cell(key.replacingOccurrences(of: "_", with: " "))] + mixtures.map { mix in
                HTMLReport.Cell(mix?[key]?.intValue.map(Format.grouped) ?? "—", numeric: true)
            }
        }
        page.table(header: [HTMLReport.Cell("")] + runHeaders(runs, labels), rows: totals)

        var sources: [String] = []
        let byRun: [[String: JSON]] = mixtures.map { mix in
            var map: [String: JSON] = [:]
            for source in mix?["sources"]?.arrayValue ?? [] {
                guard let name = source["name"]?.stringValue else { continue }
                if !sources.contains(name) { sources.append(name) }
                map[name] = source
            }
            return map
        }
        for source in byRun.flatMap(\.keys) where !sources.contains(source) { sources.append(source) }
        guard !sources.isEmpty else { page.note("mixture.json lists no sources."); return }

        var groups: [SVGBarChart.Group] = []
        for (i, map) in byRun.enumerated() where mixtures[i] != nil {
            let prefix = runs.count > 1 ? labels[i] + " " : ""
            groups.append(.init(label: prefix + "requested", color: colors[i], opacity: 0.35,
                                 values: sources.map { map[$0]?["requested_share"]?.doubleValue }))
            groups.append(.init(label: prefix + "realised", color: colors[i], opacity: 1,
                                values: sources.map { map[$0]?["realised_share"]?.doubleValue }))
        }
        page.figure(SVGBarChart(title: "Share of pretraining tokens per source", valueLabel: "share of tokens",
                                categories: sources, groups: groups, percent: true).svg())

        var header = [HTMLReport.Cell("source")]
        for i in runs.indices where mixtures[i] != nil {
            let suffix = runs.count > 1 ? " (\(runTags(runs)[i]))" : ""
            header += [HTMLReport.Cell("drawn tokens" + suffix, numeric: true, swatch: runs.count > 1 ? colors[i] : nil),
                       HTMLReport.Cell("available tokens" + suffix, numeric: true), HTMLReport.Cell("epochs" + suffix, numeric: true)]
        }
        let rows: [[HTMLReport.Cell]] = sources.map { name in
            var row = [HTMLReport.Cell(name)]
            for (i, map) in byRun.enumerated() where mixtures[i] != nil {
                let source = map[name]
                row.append(HTMLReport.Cell(source?["drawn_tokens"]?.intValue.map(Format.grouped) ?? "—", numeric: true))
                row.append(HTMLReport.Cell(source?["available_tokens"]?.intValue.map(Format.grouped) ?? "—", numeric: true))
                row.append(HTMLReport.Cell(source?["epochs"]?.doubleValue.map { Format.fixed($0, 3) } ?? "—", numeric: true))
            }
            return row
        }
        page.table(header: header, rows: rows)
    }

    // MARK: Evaluation

    private static func evaluation(_ page: inout HTMLReport, _ runs: [ReportedRun], _ labels: [String]) {
        page.heading("Evaluation", level: 2, id: "evaluation")
        var suites: [String] = []
        for run in runs { for (name, _) in run.evalSuites where !suites.contains(name) { suites.append(name) } }
        guard !suites.isEmpty else {
            page.note("No eval summaries (eval/<suite>/summary.json) in \(runs.count == 1 ? "this run" : "either run").")
            return
        }
        for suite in suites {
            let summaries = runs.map { run in run.evalSuites.first { $0.name == suite }?.summary }
            let kind = summaries.compactMap { $0?["kind"]?.stringValue }.first
            page.heading("eval." + suite + (kind.map { " (\($0))" } ?? ""), level: 3)
            for (i, summary) in summaries.enumerated() where summary == nil {
                page.note("\(labels[i]): no eval/\(suite)/summary.json.")
            }
            // checkpoint → score name → value, per run.
            var checkpoints: [String] = []
            var scoreNames: [String] = []
            var scores: [[String: [String: JSON]]] = []
            for (i, summary) in summaries.enumerated() {
                var map: [String: [String: JSON]] = [:]
                for entry in summary?["checkpoints"]?.arrayValue ?? [] {
                    guard let checkpoint = entry["checkpoint"]?.stringValue else { continue }
                    if !checkpoints.contains(checkpoint) { checkpoints.append(checkpoint) }
                    var values: [String: JSON] = [:]
                    if case let .object(entries)? = entry["scores"] {
                        for (name, value) in entries {
                            if !scoreNames.contains(name) { scoreNames.append(name) }
                            values[name] = value
                        }
                    }
                    map[checkpoint] = values
                    if let error = entry["error"]?.stringValue, !error.isEmpty {
                        page.note("\(runs.count > 1 ? labels[i] + ", " : "")\(checkpoint): \(error)")
                    }
                }
                scores.append(map)
            }
            guard !checkpoints.isEmpty, !scoreNames.isEmpty else {
                page.note(kind == "generation" ? "No scores: the answers are scored only when the suite names a judge." : "No scores recorded.")
                continue
            }
            let present = summaries.indices.filter { summaries[$0] != nil }
            var header = [HTMLReport.Cell("score")]
            for checkpoint in checkpoints {
                if present.count > 1 {
                    for i in present {
                        header.append(HTMLReport.Cell("\(checkpoint) (\(runTags(runs)[i]))", numeric: true, swatch: colors[i]))
                    }
                    header.append(HTMLReport.Cell("\(checkpoint) Δ", numeric: true))
                } else {
                    header.append(HTMLReport.Cell(checkpoint, numeric: true))
                }
            }
            let lowerIsBetter = kind == "perplexity"
            let rows: [[HTMLReport.Cell]] = scoreNames.map { name in
                var row = [HTMLReport.Cell(name)]
                for checkpoint in checkpoints {
                    let values = present.map { scores[$0][checkpoint]?[name]?.doubleValue }
                    for value in values { row.append(HTMLReport.Cell(value.map(score) ?? "—", numeric: true)) }
                    if present.count > 1 {
                        if let a = values[0], let b = values[1] {
                            let delta = b - a
                            let better = lowerIsBetter || name.contains("loss") || name.contains("perplexity") ? delta < 0 : delta > 0
                            row.append(HTMLReport.Cell((delta > 0 ? "+" : "") + score(delta), numeric: true,
                                                       style: delta == 0 ? "muted" : better ? "better" : "worse"))
                        } else {
                            row.append(HTMLReport.Cell("—", numeric: true))
                        }
                    }
                }
                return row
            }
            page.table(header: header, rows: rows)
            if present.count > 1 {
                page.note("Δ is \(runTags(runs)[present[1]]) minus \(runTags(runs)[present[0]]).")
            }
        }
    }

    // MARK: Formatting

    /// A score or loss with about four significant digits: 0.4312, 12.35, 1234.6, 13,468.
    static func score(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "NaN" : (x > 0 ? "∞" : "−∞") }
        if x == 0 { return "0" }
        if abs(x) >= 1e4 { return (x < 0 ? "-" : "") + Format.grouped(Int(saturating: abs(x).rounded())) }
        if abs(x) >= 1e3 { return Format.fixed(x, 1) }
        if abs(x) < 1e-4 { return String(format: "%.3e", x) }
        return String(format: "%.4g", x)
    }

    /// A scalar as text; arrays and objects in compact JSON.
    static func display(_ value: JSON) -> String {
        switch value {
        case .null: "—"
        case let .string(s): s
        case let .int(i): String(i)
        case let .double(d): Format.number(d)
        case let .bool(b): b ? "yes" : "no"
        case .array, .object: value.rendered(pretty: false)
        }
    }
}
