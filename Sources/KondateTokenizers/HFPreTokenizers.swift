import Foundation

/// `SplitDelimiterBehavior` of `tokenizers`.
enum HFSplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// Metaspace's `prepend_scheme`.
enum HFPrependScheme: String, Sendable {
    case first, never, always
}

/// A tokenizer.json pre-tokenizer.
indirect enum HFPreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: UInt32, prepend: HFPrependScheme, split: Bool)
    case split(HFPattern, behavior: HFSplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case whitespace
    case whitespaceSplit
    case punctuation(HFSplitBehavior)
    case charDelimiter(UInt32)
    case bert
    case sequence([HFPreTokenizer])

    /// Whether any step needs the input offsets of pieces (Metaspace with prepend_scheme "first").
    var needsOffsets: Bool {
        switch self {
        case .metaspace(_, let prepend, _): return prepend == .first
        case .sequence(let items): return items.contains { $0.needsOffsets }
        default: return false
        }
    }

    /// Splits each piece; empty pieces are dropped (PreTokenizedString::split does the same).
    func apply(_ pieces: [HFText]) -> [HFText] {
        switch self {
        case .sequence(let items):
            var current = pieces
            for item in items { current = item.apply(current) }
            return current
        default:
            var out = [HFText]()
            out.reserveCapacity(pieces.count)
            for var piece in pieces {
                if case .byteLevel = self {} else { piece.materializeByteLevel() }
                for p in applyOne(piece) where !p.bytes.isEmpty { out.append(p) }
            }
            return out
        }
    }

    private func applyOne(_ t: HFText) -> [HFText] {
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            var t = t
            t.materializeByteLevel()
            if addPrefixSpace && !t.bytes.isEmpty && t.bytes[0] != 0x20 {
                let offset = t.orig?[0] ?? 0
                t.bytes.insert(0x20, at: 0)
                t.orig?.insert(offset, at: 0)
            }
            var pieces: [HFText]
            if useRegex {
                var ranges = [(Int, Int)]()
                t.bytes.withUnsafeBufferPointer { p in
                    HFPreTokenizer.gpt2Split(p, 0, p.count) { ranges.append(($0, $1)) }
                }
                pieces = ranges.map { t.slice($0.0, $0.1) }
            } else {
                pieces = [t]
            }
            for i in pieces.indices { pieces[i].byteLevel = true }
            return pieces
        case .metaspace(let replacement, let prepend, let split):
            var rep = [UInt8]()
            HFUnicode.appendUTF8(replacement, to: &rep)
            var t = t
            if t.bytes.contains(0x20) { HFNormalizer.replace(&t, .literal([0x20]), rep) }
            let startsWithReplacement = t.bytes.starts(with: rep)
            switch prepend {
            case .always where !startsWithReplacement, .first where !startsWithReplacement && t.originalStart == 0:
                if !t.bytes.isEmpty {
                    let offset = t.orig?[0] ?? 0
                    t.bytes = rep + t.bytes
                    if let o = t.orig { t.orig = Array(repeating: offset, count: rep.count) + o }
                }
            default: break
            }
            guard split else { return [t] }
            return HFPreTokenizer.splitPiece(t, HFPreTokenizer.predicateSplits(t.bytes) { $0 == replacement }, .mergedWithNext)
        case .split(let pattern, let behavior, let invert):
            var splits = pattern.splits(in: t.bytes)
            if invert { splits = splits.map { ($0.0, $0.1, !$0.2) } }
            return HFPreTokenizer.splitPiece(t, splits, behavior)
        case .digits(let individual):
            return HFPreTokenizer.splitPiece(t, HFPreTokenizer.predicateSplits(t.bytes, HFUnicode.isNumeric),
                                             individual ? .isolated : .contiguous)
        case .whitespace:
            // `\w+|[^\w\s]+` (Rust regex), inverted and removed: keep the runs, drop the whitespace.
            var splits = [(Int, Int, Bool)]()
            t.bytes.withUnsafeBufferPointer { p in
                var i = 0, prev = 0
                while i < p.count {
                    let (c, len) = HFUnicode.decode(p, i)
                    if HFUnicode.isWhitespace(c) { i += len; continue }
                    let word = HFUnicode.isRustWord(c)
                    var j = i + len
                    while j < p.count {
                        let (d, l) = HFUnicode.decode(p, j)
                        if HFUnicode.isWhitespace(d) || HFUnicode.isRustWord(d) != word { break }
                        j += l
                    }
                    if prev < i { splits.append((prev, i, true)) }
                    splits.append((i, j, false))
                    prev = j
                    i = j
                }
                if prev < p.count { splits.append((prev, p.count, true)) }
            }
            return HFPreTokenizer.splitPiece(t, splits, .removed)
        case .whitespaceSplit:
            return HFPreTokenizer.splitPiece(t, HFPreTokenizer.predicateSplits(t.bytes, HFUnicode.isWhitespace), .removed)
        case .punctuation(let behavior):
            return HFPreTokenizer.splitPiece(t, HFPreTokenizer.predicateSplits(t.bytes, HFUnicode.isPunctuation), behavior)
        case .charDelimiter(let delimiter):
            return HFPreTokenizer.splitPiece(t, HFPreTokenizer.predicateSplits(t.bytes) { $0 == delimiter }, .removed)
        case .bert:
            return HFPreTokenizer.splitPiece(t, HFPreTokenizer.predicateSplits(t.bytes, HFUnicode.isWhitespace), .removed)
                .flatMap { HFPreTokenizer.splitPiece($0, HFPreTokenizer.predicateSplits($0.bytes, HFUnicode.isPunctuation), .isolated) }
        case .sequence:
            return apply([t])
        }
    }

    /// `Pattern::find_matches` for a character predicate: each matching character is its own match.
    static func predicateSplits(_ bytes: [UInt8], _ predicate: (UInt32) -> Bool) -> [(Int, Int, Bool)] {
        if bytes.isEmpty { return [(0, 0, false)] }
        var out = [(Int, Int, Bool)]()
        bytes.withUnsafeBufferPointer { p in
            var last = 0, i = 0
            while i < p.count {
                let (c, len) = HFUnicode.decode(p, i)
                if predicate(c) {
                    if last < i { out.append((last, i, false)) }
                    out.append((i, i + len, true))
                    last = i + len
                }
                i += len
            }
            if p.count > last { out.append((last, p.count, false)) }
        }
        return out
    }

    /// NormalizedString::split: applies the behaviour to the flagged ranges and slices.
    static func splitPiece(_ t: HFText, _ matches: [(Int, Int, Bool)], _ behavior: HFSplitBehavior) -> [HFText] {
        var ranges = [(Int, Int, Bool)]()  // (start, end, remove)
        switch behavior {
        case .isolated:
            ranges = matches.map { ($0.0, $0.1, false) }
        case .removed:
            ranges = matches
        case .contiguous:
            var previous = false
            for m in matches {
                if m.2 == previous, !ranges.isEmpty {
                    ranges[ranges.count - 1].1 = m.1
                } else {
                    ranges.append((m.0, m.1, false))
                }
                previous = m.2
            }
        case .mergedWithPrevious:
            var previous = false
            for m in matches {
                if m.2 && !previous, !ranges.isEmpty {
                    ranges[ranges.count - 1].1 = m.1
                } else {
                    ranges.append((m.0, m.1, false))
                }
                previous = m.2
            }
        case .mergedWithNext:
            var previous = false
            for m in matches.reversed() {
                if m.2 && !previous, !ranges.isEmpty {
                    ranges[ranges.count - 1].0 = m.0
                } else {
                    ranges.append((m.0, m.1, false))
                }
                previous = m.2
            }
            ranges.reverse()
        }
        if ranges.count == 1 && !ranges[0].2 && ranges[0].0 == 0 && ranges[0].1 == t.bytes.count { return [t] }
        return ranges.compactMap { $0.2 ? nil : t.slice($0.0, $0.1) }
    }

    /// The GPT-2 pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// as Oniguruma matches it; it matches every character, so the matches cover `start..<end`.
    static func gpt2Split(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ emit: (Int, Int) -> Void) {
        var i = start
        while i < end {
            let (c, len) = HFUnicode.decode(p, i)
            // 's 't 're 've 'm 'll 'd (case-sensitive)
            if c == 0x27 && i + 1 < end {
                let n1 = p[i + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { emit(i, i + 2); i += 2; continue }
                if i + 2 < end {
                    let n2 = p[i + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        emit(i, i + 3); i += 3; continue
                    }
                }
            }
            var cls = HFUnicode.gpt2Class(c)
            var runStart = i
            if c == 0x20 && i + 1 < end {
                // ` ?` takes the space when the next character starts a letter, number or other run.
                let (d, _) = HFUnicode.decode(p, i + 1)
                let next = HFUnicode.gpt2Class(d)
                if next != 3 { cls = next; runStart = i + 1 }
            }
            if cls != 3 {
                var j = runStart
                while j < end {
                    let (d, l) = HFUnicode.decode(p, j)
                    if HFUnicode.gpt2Class(d) != cls { break }
                    j += l
                }
                emit(i, j)
                i = j
                continue
            }
            // Whitespace: `\s+(?!\S)` leaves the last space for a following word; `\s+` takes a lone one.
            var j = i + len
            var lastStart = i
            while j < end {
                let (d, l) = HFUnicode.decode(p, j)
                if !HFUnicode.isWhitespace(d) { break }
                lastStart = j
                j += l
            }
            if j < end && lastStart > i { j = lastStart }
            emit(i, j)
            i = j
        }
    }
}
