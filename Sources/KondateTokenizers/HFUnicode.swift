import Foundation

/// Character classes with the exact definitions `tokenizers` gets from its regex engines:
/// Oniguruma for the GPT-2 and Split patterns, Rust's `regex` and `char` for the rest.
enum HFUnicode {
    /// `\s` in Oniguruma and Rust alike: the White_Space property.
    @inline(__always)
    static func isWhitespace(_ c: UInt32) -> Bool {
        if c < 0x80 { return c == 0x20 || (c >= 0x09 && c <= 0x0D) }
        switch c {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Bits of `Unicode.GeneralCategory`, so a class can test several categories at once.
    @inline(__always)
    static func categoryBit(_ c: UInt32) -> UInt32 {
        if c < 0x10000 { return 1 << UInt32(bmpCategories[Int(c)]) }
        guard let scalar = Unicode.Scalar(c) else { return 1 << 29 }  // surrogates: Cs
        return 1 << categoryIndex(scalar.properties.generalCategory)
    }

    /// The category index of every BMP scalar, built once: the stdlib lookup is the hot spot when
    /// splitting Japanese text.
    static let bmpCategories: [UInt8] = (0..<0x10000).map { c -> UInt8 in
        guard let scalar = Unicode.Scalar(UInt32(c)) else { return 29 }
        return UInt8(categoryIndex(scalar.properties.generalCategory))
    }

    static func categoryIndex(_ g: Unicode.GeneralCategory) -> UInt32 {
        switch g {
        case .uppercaseLetter: return 0
        case .lowercaseLetter: return 1
        case .titlecaseLetter: return 2
        case .modifierLetter: return 3
        case .otherLetter: return 4
        case .nonspacingMark: return 5
        case .spacingMark: return 6
        case .enclosingMark: return 7
        case .decimalNumber: return 8
        case .letterNumber: return 9
        case .otherNumber: return 10
        case .connectorPunctuation: return 11
        case .dashPunctuation: return 12
        case .openPunctuation: return 13
        case .closePunctuation: return 14
        case .initialPunctuation: return 15
        case .finalPunctuation: return 16
        case .otherPunctuation: return 17
        case .mathSymbol: return 18
        case .currencySymbol: return 19
        case .modifierSymbol: return 20
        case .otherSymbol: return 21
        case .spaceSeparator: return 22
        case .lineSeparator: return 23
        case .paragraphSeparator: return 24
        case .control: return 25
        case .format: return 26
        case .privateUse: return 27
        case .unassigned: return 28
        case .surrogate: return 29
        @unknown default: return 28
        }
    }

    static let letterMask: UInt32 = 0b11111
    static let markMask: UInt32 = 0b111 << 5
    static let numberMask: UInt32 = 0b111 << 8
    static let punctuationMask: UInt32 = 0b1111111 << 11
    static let symbolMask: UInt32 = 0b1111 << 18
    static let separatorMask: UInt32 = 0b111 << 22
    static let otherMask: UInt32 = 0b11111 << 25

    /// Masks for the names Oniguruma accepts in `\p{…}` (general categories only).
    static func categoryMask(named name: String) -> UInt32? {
        let key = name.replacingOccurrences(of: "_", with: "").replacingOccurrences(of: " ", with: "").lowercased()
        let table: [String: UInt32] = [
            "l": letterMask, "letter": letterMask, "lu": 1 << 0, "uppercaseletter": 1 << 0, "ll": 1 << 1,
            "lowercaseletter": 1 << 1, "lt": 1 << 2, "titlecaseletter": 1 << 2, "lm": 1 << 3, "modifierletter": 1 << 3,
            "lo": 1 << 4, "otherletter": 1 << 4, "m": markMask, "mark": markMask, "combiningmark": markMask,
            "mn": 1 << 5, "nonspacingmark": 1 << 5, "mc": 1 << 6, "spacingmark": 1 << 6, "me": 1 << 7,
            "enclosingmark": 1 << 7, "n": numberMask, "number": numberMask, "nd": 1 << 8, "decimalnumber": 1 << 8,
            "digit": 1 << 8, "nl": 1 << 9, "letternumber": 1 << 9, "no": 1 << 10, "othernumber": 1 << 10,
            "p": punctuationMask, "punctuation": punctuationMask, "punct": punctuationMask, "pc": 1 << 11,
            "connectorpunctuation": 1 << 11, "pd": 1 << 12, "dashpunctuation": 1 << 12, "ps": 1 << 13,
            "openpunctuation": 1 << 13, "pe": 1 << 14, "closepunctuation": 1 << 14, "pi": 1 << 15,
            "initialpunctuation": 1 << 15, "pf": 1 << 16, "finalpunctuation": 1 << 16, "po": 1 << 17,
            "otherpunctuation": 1 << 17, "s": symbolMask, "symbol": symbolMask, "sm": 1 << 18, "mathsymbol": 1 << 18,
            "sc": 1 << 19, "currencysymbol": 1 << 19, "sk": 1 << 20, "modifiersymbol": 1 << 20, "so": 1 << 21,
            "othersymbol": 1 << 21, "z": separatorMask, "separator": separatorMask, "zs": 1 << 22,
            "spaceseparator": 1 << 22, "zl": 1 << 23, "lineseparator": 1 << 23, "zp": 1 << 24,
            "paragraphseparator": 1 << 24, "c": otherMask, "other": otherMask, "cc": 1 << 25, "control": 1 << 25,
            "cntrl": 1 << 25, "cf": 1 << 26, "format": 1 << 26, "co": 1 << 27, "privateuse": 1 << 27, "cn": 1 << 28,
            "unassigned": 1 << 28, "cs": 1 << 29, "surrogate": 1 << 29, "any": 0x3FFF_FFFF,
        ]
        return table[key]
    }

    /// ASCII fast table for the GPT-2 pattern: 1 letter, 2 number, 3 whitespace, 0 other.
    static let asciiClass: [UInt8] = (0..<128).map { c -> UInt8 in
        let u = UInt8(c)
        if (u >= 65 && u <= 90) || (u >= 97 && u <= 122) { return 1 }
        if u >= 48 && u <= 57 { return 2 }
        if u == 0x20 || (u >= 0x09 && u <= 0x0D) { return 3 }
        return 0
    }

    /// The GPT-2 pattern's classes: 1 `\p{L}`, 2 `\p{N}`, 3 `\s`, 0 anything else.
    @inline(__always)
    static func gpt2Class(_ c: UInt32) -> UInt8 {
        if c < 0x80 { return asciiClass[Int(c)] }
        if isWhitespace(c) { return 3 }
        let bit = categoryBit(c)
        if bit & letterMask != 0 { return 1 }
        if bit & numberMask != 0 { return 2 }
        return 0
    }

    /// Rust `char::is_numeric`: general categories Nd, Nl and No.
    static func isNumeric(_ c: UInt32) -> Bool {
        if c < 0x80 { return c >= 48 && c <= 57 }
        return categoryBit(c) & numberMask != 0
    }

    /// `tokenizers`' punctuation test: ASCII punctuation or a Unicode P* category.
    static func isPunctuation(_ c: UInt32) -> Bool {
        if c < 0x80 {
            return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E)
        }
        return categoryBit(c) & punctuationMask != 0
    }

    /// Rust `regex`'s `\w`: Alphabetic, marks, decimal numbers, connector punctuation, join controls.
    static func isRustWord(_ c: UInt32) -> Bool {
        if c < 0x80 { return asciiClass[Int(c)] == 1 || asciiClass[Int(c)] == 2 || c == 0x5F }
        if c == 0x200C || c == 0x200D { return true }
        guard let scalar = Unicode.Scalar(c) else { return false }
        if scalar.properties.isAlphabetic { return true }
        let bit = categoryBit(c)
        return bit & (markMask | (1 << 8) | (1 << 11)) != 0
    }

    /// Oniguruma's Unicode `\w`: letters, marks, decimal numbers and connector punctuation.
    static func isOnigWord(_ c: UInt32) -> Bool {
        if c < 0x80 { return asciiClass[Int(c)] == 1 || asciiClass[Int(c)] == 2 || c == 0x5F }
        return categoryBit(c) & (letterMask | markMask | (1 << 8) | (1 << 11)) != 0
    }

    /// Simple case folding for case-insensitive regex matching (with the two non-ASCII letters
    /// that fold onto ASCII: long s and the Kelvin sign).
    static func fold(_ c: UInt32) -> UInt32 {
        if c < 0x80 { return (c >= 65 && c <= 90) ? c + 32 : c }
        if c == 0x17F { return 0x73 }
        if c == 0x212A { return 0x6B }
        guard let scalar = Unicode.Scalar(c) else { return c }
        let lower = scalar.properties.lowercaseMapping.unicodeScalars
        if lower.count == 1, let first = lower.first { return first.value }
        return c
    }

    /// Decodes the scalar at `i` of valid UTF-8.
    @inline(__always)
    static func decode(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> (scalar: UInt32, length: Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6 | UInt32(p[i + 3] & 0x3F), 4)
    }

    /// Length of the UTF-8 sequence that starts with `b`.
    @inline(__always)
    static func sequenceLength(_ b: UInt8) -> Int {
        b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
    }

    static func appendUTF8(_ c: UInt32, to out: inout [UInt8]) {
        if c < 0x80 {
            out.append(UInt8(c))
        } else if c < 0x800 {
            out.append(UInt8(0xC0 | (c >> 6))); out.append(UInt8(0x80 | (c & 0x3F)))
        } else if c < 0x10000 {
            out.append(UInt8(0xE0 | (c >> 12))); out.append(UInt8(0x80 | ((c >> 6) & 0x3F))); out.append(UInt8(0x80 | (c & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (c >> 18))); out.append(UInt8(0x80 | ((c >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((c >> 6) & 0x3F))); out.append(UInt8(0x80 | (c & 0x3F)))
        }
    }

    /// Decodes bytes like Rust's `String::from_utf8_lossy`: each maximal invalid subpart becomes one U+FFFD.
    static func lossyString(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + 8)
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 { out.append(b); i += 1; continue }
            // Expected length and the allowed range of the second byte (Unicode Table 3-7).
            var need = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: need = 0
            }
            if need == 0 { out += [0xEF, 0xBF, 0xBD]; i += 1; continue }
            var j = i + 1
            var ok = true
            for k in 0..<need {
                guard j < n else { ok = false; break }
                let c = bytes[j]
                let (l, h) = k == 0 ? (lo, hi) : (UInt8(0x80), UInt8(0xBF))
                if c < l || c > h { ok = false; break }
                j += 1
            }
            if ok {
                out += bytes[i..<j]
            } else {
                out += [0xEF, 0xBF, 0xBD]
            }
            i = j
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100 + n in order.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// The inverse of `byteToScalar`.
    static let scalarToByte: [UInt32: UInt8] = {
        var map = [UInt32: UInt8]()
        for b in 0..<256 { map[byteToScalar[b]] = UInt8(b) }
        return map
    }()

    /// UTF-8 of each byte's GPT-2 character.
    static let byteToUTF8: [[UInt8]] = byteToScalar.map { c in
        var out = [UInt8]()
        appendUTF8(c, to: &out)
        return out
    }
}
