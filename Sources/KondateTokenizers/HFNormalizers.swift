import Foundation

/// Text moving through the pipeline: UTF-8 bytes and, when the pipeline needs original offsets
/// (a Metaspace pre-tokenizer with prepend_scheme "first"), each byte's offset in the input — the
/// start of its alignment in `tokenizers`' NormalizedString.
struct HFText {
    var bytes: [UInt8]
    var orig: [Int32]?
    /// The bytes are raw input standing for their GPT-2 characters (set by the ByteLevel pre-tokenizer;
    /// the mapping is applied only if a later step needs the characters).
    var byteLevel = false

    init(bytes: [UInt8], orig: [Int32]?) {
        self.bytes = bytes
        self.orig = orig
    }

    /// The input offset of the first byte.
    var originalStart: Int { orig.map { $0.isEmpty ? 0 : Int($0[0]) } ?? 0 }

    func slice(_ start: Int, _ end: Int) -> HFText {
        var t = HFText(bytes: Array(bytes[start..<end]), orig: orig.map { Array($0[start..<end]) })
        t.byteLevel = byteLevel
        return t
    }

    /// Replaces raw bytes by the UTF-8 of their GPT-2 characters; each keeps its byte's offset.
    mutating func materializeByteLevel() {
        guard byteLevel else { return }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        var newOrig: [Int32]? = orig == nil ? nil : []
        for (i, b) in bytes.enumerated() {
            let mapped = HFUnicode.byteToUTF8[Int(b)]
            out += mapped
            if let o = orig { newOrig?.append(contentsOf: repeatElement(o[i], count: mapped.count)) }
        }
        bytes = out
        orig = newOrig
        byteLevel = false
    }
}

/// Builds a transformed HFText, carrying offsets when the source has them.
struct HFTextBuilder {
    var bytes: [UInt8] = []
    var orig: [Int32]?

    init(tracking: Bool, capacity: Int) {
        bytes.reserveCapacity(capacity)
        if tracking { orig = []; orig?.reserveCapacity(capacity) }
    }

    mutating func append<C: Collection>(_ b: C, offset: Int32) where C.Element == UInt8 {
        bytes.append(contentsOf: b)
        if orig != nil { orig?.append(contentsOf: repeatElement(offset, count: b.count)) }
    }

    mutating func appendScalar(_ c: UInt32, offset: Int32) {
        let before = bytes.count
        HFUnicode.appendUTF8(c, to: &bytes)
        if orig != nil { orig?.append(contentsOf: repeatElement(offset, count: bytes.count - before)) }
    }

    var text: HFText { HFText(bytes: bytes, orig: orig) }
}

/// A `{"String": …}` or `{"Regex": …}` pattern.
enum HFPattern: Sendable {
    case literal([UInt8])
    case regex(HFRegex)

    /// Non-overlapping matches as byte ranges.
    func matches(in bytes: [UInt8]) -> [(Int, Int)] {
        switch self {
        case .regex(let re):
            return re.matches(in: bytes)
        case .literal(let lit):
            if lit.isEmpty { return HFRegex(literal: "").matches(in: bytes) }
            var result = [(Int, Int)]()
            let n = bytes.count, m = lit.count
            guard n >= m else { return result }
            var i = 0
            let first = lit[0]
            while i <= n - m {
                if bytes[i] == first {
                    var j = 1
                    while j < m && bytes[i + j] == lit[j] { j += 1 }
                    if j == m { result.append((i, i + m)); i += m; continue }
                }
                i += 1
            }
            return result
        }
    }

    /// `tokenizers`' `Pattern::find_matches`: the ranges covering the text, each flagged as a match or not.
    func splits(in bytes: [UInt8]) -> [(Int, Int, Bool)] {
        if bytes.isEmpty { return [(0, 0, false)] }
        var out = [(Int, Int, Bool)]()
        var prev = 0
        for (s, e) in matches(in: bytes) {
            if prev != s { out.append((prev, s, false)) }
            out.append((s, e, true))
            prev = e
        }
        if prev != bytes.count { out.append((prev, bytes.count, false)) }
        return out
    }
}

/// A tokenizer.json normalizer.
indirect enum HFNormalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case strip(left: Bool, right: Bool)
    case replace(HFPattern, content: [UInt8])
    case prepend([UInt8])
    case precompiled(HFPrecompiled)
    case sequence([HFNormalizer])

    func apply(_ t: inout HFText) {
        switch self {
        case .nfc: unicodeNormalize(&t) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: unicodeNormalize(&t) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: unicodeNormalize(&t) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: unicodeNormalize(&t) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase: lowercase(&t)
        case .strip(let left, let right): strip(&t, left: left, right: right)
        case .replace(let pattern, let content): HFNormalizer.replace(&t, pattern, content)
        case .prepend(let prefix):
            guard !t.bytes.isEmpty else { return }  // NormalizedString::prepend leaves an empty string alone
            let offset = t.orig?[0] ?? 0
            t.bytes = prefix + t.bytes
            if let o = t.orig { t.orig = Array(repeating: offset, count: prefix.count) + o }
        case .precompiled(let map): map.apply(&t)
        case .sequence(let items): for n in items { n.apply(&t) }
        }
    }

    private func unicodeNormalize(_ t: inout HFText, _ form: (String) -> String) {
        // ASCII is invariant under all four forms.
        if !t.bytes.contains(where: { $0 >= 0x80 }) { return }
        let s = String(decoding: t.bytes, as: UTF8.self)
        let whole = Array(form(s).utf8)
        guard let orig = t.orig else { t.bytes = whole; return }
        // Offsets: normalise each starter-led run alone; every output character takes the offset of its
        // run's first character (as `tokenizers`' alignments do for composed and expanded characters).
        var builder = HFTextBuilder(tracking: true, capacity: whole.count)
        var runStart = 0
        var runScalars = String.UnicodeScalarView()
        var i = 0
        t.bytes.withUnsafeBufferPointer { p in
            while i < p.count {
                let (c, len) = HFUnicode.decode(p, i)
                let scalar = Unicode.Scalar(c) ?? "\u{FFFD}"
                if scalar.properties.canonicalCombiningClass == .notReordered && !runScalars.isEmpty {
                    builder.append(Array(form(String(runScalars)).utf8), offset: orig[runStart])
                    runScalars = String.UnicodeScalarView()
                    runStart = i
                }
                runScalars.append(scalar)
                i += len
            }
        }
        if !runScalars.isEmpty { builder.append(Array(form(String(runScalars)).utf8), offset: orig[runStart]) }
        if builder.bytes == whole {
            t.bytes = whole
            t.orig = builder.orig
        } else {
            t.bytes = whole
            t.orig = Array(repeating: orig.first ?? 0, count: whole.count)
        }
    }

    private func lowercase(_ t: inout HFText) {
        if !t.bytes.contains(where: { ($0 >= 65 && $0 <= 90) || $0 >= 0x80 }) { return }
        var b = HFTextBuilder(tracking: t.orig != nil, capacity: t.bytes.count)
        t.bytes.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                let (c, len) = HFUnicode.decode(p, i)
                let offset = t.orig?[i] ?? 0
                if c < 0x80 {
                    b.append(CollectionOfOne((c >= 65 && c <= 90) ? UInt8(c + 32) : UInt8(c)), offset: offset)
                } else if let scalar = Unicode.Scalar(c) {
                    // Rust's char::to_lowercase: the full per-character mapping, no context.
                    for l in scalar.properties.lowercaseMapping.unicodeScalars { b.appendScalar(l.value, offset: offset) }
                }
                i += len
            }
        }
        t = b.text
    }

    private func strip(_ t: inout HFText, left: Bool, right: Bool) {
        var start = 0, end = t.bytes.count
        t.bytes.withUnsafeBufferPointer { p in
            if left {
                while start < end {
                    let (c, len) = HFUnicode.decode(p, start)
                    guard HFUnicode.isWhitespace(c) else { break }
                    start += len
                }
            }
            if right {
                while end > start {
                    var s = end - 1
                    while s > start && p[s] & 0xC0 == 0x80 { s -= 1 }
                    let (c, _) = HFUnicode.decode(p, s)
                    guard HFUnicode.isWhitespace(c) else { break }
                    end = s
                }
            }
        }
        if start != 0 || end != t.bytes.count { t = t.slice(start, end) }
    }

    static func replace(_ t: inout HFText, _ pattern: HFPattern, _ content: [UInt8]) {
        let found = pattern.matches(in: t.bytes)
        if found.isEmpty { return }
        var b = HFTextBuilder(tracking: t.orig != nil, capacity: t.bytes.count + content.count * found.count)
        var last = 0
        for (s, e) in found {
            if last < s {
                b.bytes.append(contentsOf: t.bytes[last..<s])
                if let o = t.orig { b.orig?.append(contentsOf: o[last..<s]) }
            }
            // The replacement takes the alignment of the last replaced byte (or the byte before an
            // empty match), as NormalizedString::transform_range gives inserted characters.
            var offset: Int32 = 0
            if let o = t.orig {
                if e > s { offset = o[e - 1] } else if s > 0 { offset = o[s - 1] } else { offset = o.first ?? 0 }
            }
            b.append(content, offset: offset)
            last = e
        }
        if last < t.bytes.count {
            b.bytes.append(contentsOf: t.bytes[last...])
            if let o = t.orig { b.orig?.append(contentsOf: o[last...]) }
        }
        t = b.text
    }
}

/// SentencePiece's precompiled character map (the `Precompiled` normalizer of converted models): a
/// Darts double-array trie over UTF-8 keys whose values index NUL-terminated replacement strings.
/// Applied per grapheme as `tokenizers`' normalizers/precompiled.rs does.
struct HFPrecompiled: Sendable {
    let array: [UInt32]
    let normalized: [UInt8]

    /// Parses the charsmap blob: u32 LE trie size in bytes, the trie units, then the strings.
    init?(blob: [UInt8]) {
        guard blob.count >= 4 else { return nil }
        let size = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard size % 4 == 0, 4 + size <= blob.count, size > 0 else { return nil }
        var units = [UInt32]()
        units.reserveCapacity(size / 4)
        var i = 4
        while i < 4 + size {
            units.append(UInt32(blob[i]) | UInt32(blob[i + 1]) << 8 | UInt32(blob[i + 2]) << 16 | UInt32(blob[i + 3]) << 24)
            i += 4
        }
        array = units
        normalized = Array(blob[(4 + size)...])
        guard String(validating: normalized, as: UTF8.self) != nil else { return nil }
    }

    /// The replacement for the shortest key that prefixes `key`, if any.
    func transform<C: Collection>(_ key: C) -> ArraySlice<UInt8>? where C.Element == UInt8 {
        func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
        func label(_ u: UInt32) -> UInt32 { u & ((1 << 31) | 0xFF) }
        var pos = 0
        guard !array.isEmpty else { return nil }
        pos ^= offset(array[0])
        for c in key {
            if c == 0 { break }
            pos ^= Int(c)
            guard pos < array.count else { return nil }
            let unit = array[pos]
            if label(unit) != UInt32(c) { return nil }
            pos ^= offset(unit)
            guard pos < array.count else { return nil }
            if (unit >> 8) & 1 == 1 {
                let start = Int(array[pos] & ((1 << 31) - 1))
                guard start <= normalized.count else { return nil }
                var end = start
                while end < normalized.count && normalized[end] != 0 { end += 1 }
                // A value pointing inside a character would make invalid UTF-8 (tokenizers panics there).
                guard String(validating: normalized[start..<end], as: UTF8.self) != nil else { return nil }
                return normalized[start..<end]
            }
        }
        return nil
    }

    func apply(_ t: inout HFText) {
        let s = String(decoding: t.bytes, as: UTF8.self)
        var b = HFTextBuilder(tracking: t.orig != nil, capacity: t.bytes.count)
        var modified = false
        var at = 0
        for grapheme in s {
            let g = Array(grapheme.utf8)
            let offset = t.orig?[at] ?? 0
            defer { at += g.count }
            if g.count < 6, let norm = transform(g) {
                modified = true
                b.append(norm, offset: offset)
                continue
            }
            var i = 0
            while i < g.count {
                let len = HFUnicode.sequenceLength(g[i])
                let part = g[i..<min(g.count, i + len)]
                if let norm = transform(part) {
                    modified = true
                    b.append(norm, offset: t.orig?[at + i] ?? 0)
                } else {
                    b.append(part, offset: t.orig?[at + i] ?? 0)
                }
                i += len
            }
        }
        if modified { t = b.text }
    }
}
