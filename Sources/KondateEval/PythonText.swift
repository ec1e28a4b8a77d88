/// Python 3 `str` semantics on Unicode code points, for the parts of the reference implementations that
/// depend on them: `str.isspace`/`split()`/`strip()`, `str.lower()`, the `\w` class of `re`, code-point
/// equality and ordering.
///
/// Swift's `String` compares and hashes by canonical equivalence and iterates grapheme clusters, while
/// Python compares, hashes and iterates code points; everything here therefore works on
/// `[Unicode.Scalar]`. Character properties come from the Unicode tables of the Swift runtime, which can
/// be a newer Unicode version than the Python that produced a reference number; only characters assigned
/// between the two versions can differ.
enum PythonText {
    typealias CodePoints = [Unicode.Scalar]

    /// `str.isspace()` for one code point (CPython's `Py_UNICODE_ISSPACE`: bidirectional classes WS, B
    /// and S plus category Zs).
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
             0x3000:
            return true
        default:
            return false
        }
    }

    /// Whether a code point matches `\w` in a `str` pattern: `str.isalnum()` (a letter of category
    /// Lu/Ll/Lt/Lm/Lo, or any character with a numeric type) or the underscore.
    static func isWord(_ c: Unicode.Scalar) -> Bool {
        if c == "_" { return true }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return true
        default:
            return c.properties.numericType != nil
        }
    }

    /// `str.strip()` with no argument.
    static func strip(_ s: CodePoints) -> CodePoints {
        var start = s.startIndex, end = s.endIndex
        while start < end, isSpace(s[start]) { start += 1 }
        while end > start, isSpace(s[end - 1]) { end -= 1 }
        return Array(s[start..<end])
    }

    /// `str.rstrip()` with no argument.
    static func rstrip(_ s: CodePoints) -> CodePoints {
        var end = s.endIndex
        while end > s.startIndex, isSpace(s[end - 1]) { end -= 1 }
        return Array(s[..<end])
    }

    /// `str.split()` with no argument: runs of whitespace separate fields, empty fields are dropped.
    static func splitWhitespace(_ s: CodePoints) -> [CodePoints] {
        var fields = [CodePoints]()
        var current = CodePoints()
        for c in s {
            if isSpace(c) {
                if !current.isEmpty { fields.append(current); current.removeAll(keepingCapacity: true) }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { fields.append(current) }
        return fields
    }

    /// `str.split(sep)` for a one-code-point separator: every occurrence splits, empty fields are kept.
    static func split(_ s: CodePoints, on separator: Unicode.Scalar) -> [CodePoints] {
        var fields = [CodePoints]()
        var current = CodePoints()
        for c in s {
            if c == separator { fields.append(current); current.removeAll(keepingCapacity: true) } else { current.append(c) }
        }
        fields.append(current)
        return fields
    }

    /// `str.split(sep)` for a separator of any length: non-overlapping occurrences from the left.
    static func split(_ s: CodePoints, on separator: CodePoints) -> [CodePoints] {
        precondition(!separator.isEmpty, "empty separator")
        var fields = [CodePoints]()
        var current = CodePoints()
        var i = 0
        while i < s.count {
            if matches(s, at: i, separator) {
                fields.append(current)
                current.removeAll(keepingCapacity: true)
                i += separator.count
            } else {
                current.append(s[i])
                i += 1
            }
        }
        fields.append(current)
        return fields
    }

    /// `str.replace(old, new)`: non-overlapping occurrences from the left.
    static func replace(_ s: CodePoints, _ old: CodePoints, with new: CodePoints) -> CodePoints {
        precondition(!old.isEmpty, "empty pattern")
        var out = CodePoints()
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if matches(s, at: i, old) {
                out += new
                i += old.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    private static func matches(_ s: CodePoints, at i: Int, _ pattern: CodePoints) -> Bool {
        guard i + pattern.count <= s.count else { return false }
        for k in 0..<pattern.count where s[i + k] != pattern[k] { return false }
        return true
    }

    /// `str.lower()`: the full lowercase mapping of every code point (SpecialCasing's unconditional
    /// entries included, so `İ` becomes `i` + U+0307), with CPython's Final_Sigma rule for `Σ`.
    static func lower(_ s: CodePoints) -> CodePoints {
        var out = CodePoints()
        out.reserveCapacity(s.count)
        for (i, c) in s.enumerated() {
            if c.value == 0x3A3 {
                out.append(Unicode.Scalar(isFinalSigma(s, at: i) ? 0x3C2 : 0x3C3)!)
            } else {
                out += c.properties.lowercaseMapping.unicodeScalars
            }
        }
        return out
    }

    /// The Final_Sigma context: a cased letter before (skipping case-ignorable ones) and no cased letter
    /// after (skipping case-ignorable ones).
    private static func isFinalSigma(_ s: CodePoints, at i: Int) -> Bool {
        var j = i - 1
        while j >= 0, s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, s[j].properties.isCased else { return false }
        var k = i + 1
        while k < s.count, s[k].properties.isCaseIgnorable { k += 1 }
        return k == s.count || !s[k].properties.isCased
    }

    /// Python's `<` on `str`: lexicographic by code point value.
    static func less(_ a: CodePoints, _ b: CodePoints) -> Bool {
        a.lexicographicallyPrecedes(b) { $0.value < $1.value }
    }

    static func codePoints(_ s: String) -> CodePoints { Array(s.unicodeScalars) }

    static func string(_ s: CodePoints) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: s)
        return String(out)
    }

    /// Python's `float(text)` for a `str`: surrounding whitespace, a sign, digits with single underscores
    /// between them (any Unicode decimal digit counts), an optional fraction and exponent, or
    /// `inf`/`infinity`/`nan` in any case. Nil where Python raises `ValueError`.
    static func parseFloat(_ text: String) -> Double? {
        var s = strip(codePoints(text))
        // Unicode decimal digits read as their ASCII counterparts, as CPython does.
        s = s.map { c in
            if c.value > 0x7F, c.properties.numericType == .decimal, let v = c.properties.numericValue {
                return Unicode.Scalar(UInt8(0x30 + Int(v)))
            }
            return c
        }
        guard s.allSatisfy({ $0.isASCII }) else { return nil }
        var body = string(s)
        var sign = ""
        if let first = body.first, first == "+" || first == "-" {
            sign = first == "-" ? "-" : ""
            body.removeFirst()
        }
        switch body.lowercased() {
        case "inf", "infinity": return sign == "-" ? -.infinity : .infinity
        case "nan": return .nan
        default: break
        }
        guard isDecimalLiteral(Array(body.utf8)) else { return nil }
        return Double(sign + body.replacingOccurrences(of: "_", with: ""))
    }

    /// digitpart? ("." digitpart?)? exponent? with at least one mantissa digit, where digitpart is
    /// digits separated by single underscores.
    private static func isDecimalLiteral(_ b: [UInt8]) -> Bool {
        var i = 0
        func digitPart() -> Bool {
            guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return false }
            while i < b.count {
                if b[i] >= 0x30, b[i] <= 0x39 { i += 1; continue }
                if b[i] == UInt8(ascii: "_"), i + 1 < b.count, b[i + 1] >= 0x30, b[i + 1] <= 0x39 { i += 1; continue }
                break
            }
            return true
        }
        let integer = digitPart()
        var fraction = false
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            fraction = digitPart()
        }
        guard integer || fraction else { return false }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digitPart() else { return false }
        }
        return i == b.count
    }
}
