import Foundation
import KondateSupport

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
