import CZlib
import Foundation

/// Character-level measurements the filters use. "Characters" are Unicode scalars throughout, and
/// ratios are taken over non-whitespace characters unless stated otherwise.
public enum TextStatistics {
    @inline(__always) public static func isHiragana(_ v: UInt32) -> Bool { v >= 0x3041 && v <= 0x309F }

    @inline(__always) public static func isKatakana(_ v: UInt32) -> Bool {
        (v >= 0x30A0 && v <= 0x30FF) || (v >= 0x31F0 && v <= 0x31FF) || (v >= 0xFF66 && v <= 0xFF9F)
    }

    /// CJK ideographs (unified, extension A, extensions B and later, compatibility) and 々 〆.
    @inline(__always) public static func isKanji(_ v: UInt32) -> Bool {
        (v >= 0x4E00 && v <= 0x9FFF) || (v >= 0x3400 && v <= 0x4DBF) || (v >= 0x20000 && v <= 0x3FFFF) || (v >= 0xF900 && v <= 0xFAFF)
            || v == 0x3005 || v == 0x3006
    }

    @inline(__always) public static func isJapanese(_ v: UInt32) -> Bool { isHiragana(v) || isKatakana(v) || isKanji(v) }

    /// Unicode White_Space, without the property lookup (the set is small and fixed).
    @inline(__always) public static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        switch v {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Punctuation (P*) or symbol (S*) general category.
    public static func isSymbol(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
             .otherPunctuation, .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return true
        default:
            return false
        }
    }

    public struct Counts {
        public var characters = 0
        public var nonWhitespace = 0
        public var japanese = 0
        public var hiragana = 0
        public var symbols = 0
        public var alphanumeric = 0
    }

    /// Characters matching `predicate` (by scalar value) over non-whitespace characters; nil for blank text.
    @inline(__always) public static func ratio(_ text: String, _ predicate: (UInt32) -> Bool) -> Double? {
        var matching = 0, nonWhitespace = 0
        for s in text.unicodeScalars where !isWhitespace(s) {
            nonWhitespace += 1
            if predicate(s.value) { matching += 1 }
        }
        return nonWhitespace == 0 ? nil : Double(matching) / Double(nonWhitespace)
    }

    public static func counts(_ text: String) -> Counts {
        var c = Counts()
        for s in text.unicodeScalars {
            c.characters += 1
            if isWhitespace(s) { continue }
            c.nonWhitespace += 1
            let v = s.value
            if isJapanese(v) { c.japanese += 1 }
            if isHiragana(v) { c.hiragana += 1 }
            if isSymbol(s) { c.symbols += 1 }
            if s.properties.isAlphabetic || s.properties.numericType != nil { c.alphanumeric += 1 }
        }
        return c
    }

    /// Characters that belong to `http://` or `https://` URLs (up to the next whitespace), over all characters.
    public static func linkCharacterRatio(_ text: String) -> Double {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return 0 }
        var inLink = 0
        var i = 0
        while i < scalars.count {
            if scalars[i] == "h", Self.startsURL(scalars, at: i) {
                var j = i
                while j < scalars.count, !isWhitespace(scalars[j]) { j += 1 }
                inLink += j - i
                i = j
            } else {
                i += 1
            }
        }
        return Double(inLink) / Double(scalars.count)
    }

    static func startsURL(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        for prefix in ["http://", "https://"] {
            let p = Array(prefix.unicodeScalars)
            if i + p.count <= s.count, Array(s[i..<(i + p.count)]) == p { return true }
        }
        return false
    }

    /// Lines (split on "\n") that are not blank, with their lengths in characters.
    public static func lineLengths(_ text: String) -> [Int] {
        text.split(separator: "\n", omittingEmptySubsequences: true).compactMap { line in
            line.allSatisfy(\.isWhitespace) ? nil : line.unicodeScalars.count
        }
    }

    /// Mean characters per sentence; sentences end at 。．！？.!? or a line break.
    public static func meanSentenceLength(_ text: String) -> Double {
        var lengths: [Int] = []
        var current = 0
        for s in text.unicodeScalars {
            switch s {
            case "。", "．", "！", "？", ".", "!", "?", "\n":
                if current > 0 { lengths.append(current + (s == "\n" ? 0 : 1)) }
                current = 0
            default:
                if !(current == 0 && isWhitespace(s)) { current += 1 }
            }
        }
        if current > 0 { lengths.append(current) }
        return lengths.isEmpty ? 0 : Double(lengths.reduce(0, +)) / Double(lengths.count)
    }

    /// Fraction of units (non-blank lines, or paragraphs) that repeat an earlier unit exactly.
    public static func repeatedRatio(_ units: [Substring]) -> Double {
        let nonBlank = units.filter { !$0.allSatisfy(\.isWhitespace) }
        guard !nonBlank.isEmpty else { return 0 }
        var seen = Set<Substring>()
        var repeats = 0
        for u in nonBlank { if !seen.insert(u).inserted { repeats += 1 } }
        return Double(repeats) / Double(nonBlank.count)
    }

    public static func paragraphs(_ text: String) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        var newlines = 0
        while index < text.endIndex {
            let c = text[index]
            if c == "\n" {
                newlines += 1
                if newlines == 2 {
                    out.append(text[start..<text.index(before: index)])
                    start = text.index(after: index)
                }
            } else if !c.isWhitespace {
                if newlines >= 2 { start = index }
                newlines = 0
            }
            index = text.index(after: index)
        }
        out.append(text[start...])
        return out.map { $0.trimmingCharacters(in: .whitespacesAndNewlines)[...] }.filter { !$0.isEmpty }
    }

    /// zlib-compressed size over UTF-8 size (level 6, as Python's `zlib.compress` by default).
    public static func compressionRatio(_ text: String) -> Double {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return 0 }
        var destLength = compressBound(uLong(bytes.count))
        var dest = [UInt8](repeating: 0, count: Int(destLength))
        let status = dest.withUnsafeMutableBufferPointer { d in
            bytes.withUnsafeMutableBufferPointer { s in compress2(d.baseAddress, &destLength, s.baseAddress, uLong(s.count), 6) }
        }
        guard status == Z_OK else { return 1 }
        return Double(destLength) / Double(bytes.count)
    }
}
