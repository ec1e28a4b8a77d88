import Foundation
import KondateRecipe
import KondateSupport

/// Renders diagnostics for people (clang style, colour on a terminal) or machines (JSON).
struct DiagnosticRenderer {
    var sources: SourceStore
    var color: Bool

    static func wantsColor() -> Bool {
        isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    func paint(_ text: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }

    func label(_ severity: Severity) -> String {
        switch severity {
        case .error: return paint("error:", "1;31")
        case .warning: return paint("warning:", "1;35")
        case .note: return paint("note:", "1;36")
        }
    }

    func render(_ diagnostics: DiagnosticSet) -> String {
        var out = ""
        for d in diagnostics.sorted {
            let where_ = d.location.map { paint("\($0.file):\($0.line):\($0.column):", "1") + " " } ?? ""
            out += "\(where_)\(label(d.severity)) \(paint(d.message, "1")) [\(d.code.rawValue)]\n"
            if let loc = d.location { out += snippet(loc) }
            for note in d.notes {
                let at = note.location.map { "\($0.file):\($0.line):\($0.column): " } ?? "  "
                out += "\(at)\(label(.note)) \(note.message)\n"
            }
        }
        return out
    }

    /// The source line with a caret under the offending token.
    func snippet(_ loc: SourceLocation) -> String {
        guard let line = sources.line(loc.line, of: loc.file) else { return "" }
        let number = loc.file == "--set" ? "#\(loc.line)" : String(loc.line)
        let gutter = String(repeating: " ", count: number.count)
        let shown = loc.file == "--set" ? "--set " + line : line
        let offset = loc.file == "--set" ? 6 : 0
        let scalars = Array(line.unicodeScalars)
        let start = min(max(loc.column - 1, 0), scalars.count)
        var end = start
        let stops: Set<Unicode.Scalar> = [" ", ":", ",", "]", "}", "#", "\t", "="]
        while end < scalars.count, !stops.contains(scalars[end]) { end += 1 }
        let indent = scalars[..<start].reduce(offset) { $0 + Self.width($1) }
        let width = max(1, scalars[start..<end].reduce(0) { $0 + Self.width($1) })
        let marker = "^" + String(repeating: "~", count: width - 1)
        return " \(number) | \(shown)\n \(gutter) | \(String(repeating: " ", count: indent))\(paint(marker, "1;32"))\n"
    }

    /// Terminal columns of a scalar: East Asian wide characters take two.
    static func width(_ s: Unicode.Scalar) -> Int {
        switch s.value {
        case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
             0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            return 2
        default:
            return 1
        }
    }

    static func json(_ diagnostics: DiagnosticSet) -> JSON {
        func location(_ loc: SourceLocation?) -> [(String, JSON)] {
            guard let loc else { return [("file", .null), ("line", .null), ("column", .null)] }
            return [("file", .string(loc.file)), ("line", .int(loc.line)), ("column", .int(loc.column))]
        }
        return .array(diagnostics.sorted.map { d in
            .object([("severity", .string(d.severity.rawValue)), ("code", .string(d.code.rawValue)), ("message", .string(d.message))]
                + location(d.location)
                + [("notes", .array(d.notes.map { .object([("message", .string($0.message))] + location($0.location)) })),
                   ("fix_it", d.fixIt.map(JSON.string) ?? .null)])
        })
    }

    static func summary(_ diagnostics: DiagnosticSet) -> String {
        let e = diagnostics.errors.count, w = diagnostics.warnings.count
        return "\(e) error\(e == 1 ? "" : "s"), \(w) warning\(w == 1 ? "" : "s")"
    }
}
