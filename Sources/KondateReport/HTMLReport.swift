import Foundation
import KondateSupport

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
