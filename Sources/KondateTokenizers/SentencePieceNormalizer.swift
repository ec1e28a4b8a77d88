import KondateSupport
/// SentencePiece's text normalizer (normalizer.cc), on UTF-8 bytes: user-defined symbols are kept as
/// written, everything else goes through the precompiled charsmap when the model has one (nmt_nfkc,
/// nfkc, …; "identity" has none), then whitespace is trimmed, collapsed and escaped to "▁" as the spec
/// says, with the dummy "▁" prefix (or suffix).
///
/// Immutable after `init` and owns its buffers, so it may be shared across threads.
final class SentencePieceNormalizer: @unchecked Sendable {
    let addDummyPrefix: Bool
    let removeExtraWhitespaces: Bool
    let escapeWhitespaces: Bool
    let treatWhitespaceAsSuffix: Bool
    /// User-defined symbols, matched before the charsmap and copied unchanged.
    private let matcher: SentencePieceTrie?
    private let charsmap: SentencePieceCharsmap?

    init(spec: SentencePieceModel.NormalizerSpec, treatWhitespaceAsSuffix: Bool, userDefinedSymbols: [[UInt8]], file: String) throws {
        addDummyPrefix = spec.addDummyPrefix
        removeExtraWhitespaces = spec.removeExtraWhitespaces
        escapeWhitespaces = spec.escapeWhitespaces
        self.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix
        matcher = userDefinedSymbols.isEmpty ? nil
            : SentencePieceTrie(keys: userDefinedSymbols, values: userDefinedSymbols.indices.map { Int32($0) })
        charsmap = spec.precompiledCharsmap.isEmpty ? nil : try SentencePieceCharsmap(spec.precompiledCharsmap, file: file)
    }

    /// One step of normalization: the bytes that replace a prefix of the input, and how many input
    /// bytes they replace. `bytes` points into the input, the charsmap or a constant.
    struct Segment {
        var bytes: UnsafePointer<UInt8>
        var count: Int
        var consumed: Int
    }

    /// The longest user-defined symbol or charsmap rule at `input[position...]`, else one character
    /// (U+FFFD for one byte of malformed UTF-8). NormalizePrefix in normalizer.cc.
    @inline(__always)
    func prefix(_ input: UnsafeBufferPointer<UInt8>, _ position: Int) -> Segment {
        // The caller guarantees position < input.count, so the base address exists.
        let start = input.baseAddress.unsafelyUnwrapped + position
        if let matcher {
            let length = matcher.longestPrefix(input, position, input.count)
            if length > 0 { return Segment(bytes: start, count: length, consumed: length) }
        }
        if let charsmap, let rule = charsmap.longestRule(input, position) {
            return Segment(bytes: rule.bytes, count: rule.count, consumed: rule.consumed)
        }
        let length = SentencePieceUTF8.validCharacterLength(input, position)
        if length == 0 {
            return Segment(bytes: SentencePieceUTF8.replacementCharacter, count: 3, consumed: 1)
        }
        return Segment(bytes: start, count: length, consumed: length)
    }

    /// Normalizes `input` into `output` (replacing its contents). Normalizer::Normalize.
    func normalize(_ input: UnsafeBufferPointer<UInt8>, into output: inout SentencePieceByteBuffer) {
        output.count = 0
        let n = input.count
        var position = 0
        if removeExtraWhitespaces {
            // Leading input whose normalized form is exactly one space is dropped.
            while position < n {
                let segment = prefix(input, position)
                guard segment.count == 1, segment.bytes[0] == 0x20 else { break }
                position += segment.consumed
            }
        }
        // Empty or all whitespace: no dummy prefix either.
        guard position < n else { return }
        output.reserve((n - position) + 16)
        if !treatWhitespaceAsSuffix, addDummyPrefix { appendSpace(&output) }
        var isPreviousSpace = removeExtraWhitespaces
        let identity = charsmap == nil
        while position < n {
            // Fast path without a charsmap: a character that starts no user-defined symbol is copied
            // as is (a space is a one-byte segment " ", and well-formed multi-byte characters contain
            // no space), which is what the general path below does with its one-character segment.
            let lead = input[position]
            if identity, !(matcher?.mayStart(with: lead) ?? false) {
                let length = lead < 0x80 ? 1 : SentencePieceUTF8.validCharacterLength(input, position)
                if lead == 0x20 {
                    if !isPreviousSpace {
                        appendSpace(&output)
                        isPreviousSpace = true
                    }
                } else if length > 0 {
                    output.reserve(output.count + length)
                    for k in 0..<length { output.base[output.count + k] = input[position + k] }
                    output.count += length
                    isPreviousSpace = false
                } else {
                    output.reserve(output.count + 3)
                    output.base[output.count] = 0xEF; output.base[output.count + 1] = 0xBF; output.base[output.count + 2] = 0xBD
                    output.count += 3
                    isPreviousSpace = false
                }
                position += max(length, 1)
                if !removeExtraWhitespaces { isPreviousSpace = false }
                continue
            }
            let segment = prefix(input, position)
            var k = 0
            if isPreviousSpace {
                while k < segment.count, segment.bytes[k] == 0x20 { k += 1 }
            }
            if k < segment.count {
                output.reserve(output.count + 3 * (segment.count - k))
                let out = output.base
                var at = output.count
                while k < segment.count {
                    let b = segment.bytes[k]
                    if b == 0x20, escapeWhitespaces {
                        out[at] = 0xE2; out[at + 1] = 0x96; out[at + 2] = 0x81
                        at += 3
                    } else {
                        out[at] = b
                        at += 1
                    }
                    k += 1
                }
                output.count = at
                isPreviousSpace = segment.bytes[segment.count - 1] == 0x20
            }
            position += segment.consumed
            if !removeExtraWhitespaces { isPreviousSpace = false }
        }
        if removeExtraWhitespaces {
            let out = output.base
            if escapeWhitespaces {
                while output.count >= 3, out[output.count - 3] == 0xE2, out[output.count - 2] == 0x96, out[output.count - 1] == 0x81 {
                    output.count -= 3
                }
            } else {
                while output.count > 0, out[output.count - 1] == 0x20 { output.count -= 1 }
            }
        }
        if treatWhitespaceAsSuffix, addDummyPrefix { appendSpace(&output) }
    }

    /// Normalizes a whole byte string (the denormalizer on decoded text, and `normalize(_:)`).
    func normalize(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var output = SentencePieceByteBuffer()
        defer { output.deallocate() }
        normalize(text, into: &output)
        return Array(UnsafeBufferPointer(start: output.base, count: output.count))
    }

    private func appendSpace(_ output: inout SentencePieceByteBuffer) {
        output.reserve(output.count + 3)
        if escapeWhitespaces {
            output.base[output.count] = 0xE2; output.base[output.count + 1] = 0x96; output.base[output.count + 2] = 0x81
            output.count += 3
        } else {
            output.base[output.count] = 0x20
            output.count += 1
        }
    }
}

/// A growable byte buffer for the normalized text: writes without per-byte capacity or uniqueness
/// checks. The owner calls `deallocate()`.
struct SentencePieceByteBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int = 64) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    /// Makes room for `size` bytes in total, keeping the contents.
    @inline(__always)
    mutating func reserve(_ size: Int) {
        guard size > capacity else { return }
        let grown = max(size, capacity * 2)
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        new.update(from: base, count: count)
        base.deallocate()
        base = new
        capacity = grown
    }

    func deallocate() {
        base.deallocate()
    }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }
}

/// A precompiled charsmap: `<trie size: UInt32 LE><Darts-clone double array><NUL-terminated outputs>`.
///
/// The double array is read as stored and walked like Darts::DoubleArray::commonPrefixSearch. Every
/// unit reachable from the root is checked once at load (indices in range, outputs NUL-terminated), so
/// a corrupted file fails there instead of reading out of bounds later.
final class SentencePieceCharsmap: @unchecked Sendable {
    private let units: UnsafeMutableBufferPointer<UInt32>
    private let normalized: UnsafeMutableBufferPointer<UInt8>

    init(_ blob: [UInt8], file: String) throws {
        guard blob.count > 4 else { throw FileError(.tokenizer, file, "precompiled_charsmap is broken: \(blob.count) bytes") }
        let trieSize = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieSize <= blob.count - 4, trieSize >= 4, trieSize % 4 == 0 else {
            throw FileError(.tokenizer, file, "precompiled_charsmap is broken: trie of \(trieSize) bytes in a \(blob.count)-byte blob")
        }
        let unitCount = trieSize / 4
        units = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: unitCount)
        for i in 0..<unitCount {
            let at = 4 + 4 * i
            units[i] = UInt32(blob[at]) | UInt32(blob[at + 1]) << 8 | UInt32(blob[at + 2]) << 16 | UInt32(blob[at + 3]) << 24
        }
        let rest = blob[(4 + trieSize)...]
        normalized = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(rest.count, 1))
        _ = normalized.initialize(from: rest)
        if rest.isEmpty { normalized[0] = 0 }
        do {
            try validate(outputCount: rest.count)
        } catch let reason as SentencePieceProtoReader.Failure {
            throw FileError(.tokenizer, file, "precompiled_charsmap is broken: \(reason.reason)")
        }
    }

    deinit {
        units.deallocate()
        normalized.deallocate()
    }

    @inline(__always) private static func offset(_ unit: UInt32) -> Int {
        Int((unit >> 10) << ((unit & (1 << 9)) >> 6))
    }

    @inline(__always) private static func label(_ unit: UInt32) -> UInt32 {
        unit & ((1 << 31) | 0xFF)
    }

    @inline(__always) private static func hasLeaf(_ unit: UInt32) -> Bool {
        (unit >> 8) & 1 == 1
    }

    @inline(__always) private static func value(_ unit: UInt32) -> Int {
        Int(unit & ((1 << 31) - 1))
    }

    /// Walks every unit reachable from the root once.
    private func validate(outputCount: Int) throws {
        let count = units.count
        // The last NUL in the outputs: an output starting at or before it is terminated.
        var lastNul = outputCount - 1
        while lastNul >= 0, normalized[lastNul] != 0 { lastNul -= 1 }
        guard Self.offset(units[0]) < count else { throw SentencePieceProtoReader.Failure(reason: "the root unit points outside the trie") }
        var visited = [Bool](repeating: false, count: count)
        visited[0] = true
        var stack = [0]
        while let node = stack.popLast() {
            let base = node ^ Self.offset(units[node])
            for c in 0...255 {
                let child = base ^ c
                guard child < count else { continue }
                let unit = units[child]
                guard Self.label(unit) == UInt32(c) else { continue }
                if Self.hasLeaf(unit) {
                    let leaf = child ^ Self.offset(unit)
                    guard leaf < count else { throw SentencePieceProtoReader.Failure(reason: "leaf unit \(leaf) is out of range") }
                    let v = Self.value(units[leaf])
                    guard v <= lastNul else { throw SentencePieceProtoReader.Failure(reason: "output offset \(v) is not NUL-terminated") }
                }
                if !visited[child] {
                    visited[child] = true
                    stack.append(child)
                }
            }
        }
    }

    /// The replacement for the longest rule matching a prefix of `input[position...]`, with the number
    /// of input bytes it replaces; nil when no rule matches.
    @inline(__always)
    func longestRule(_ input: UnsafeBufferPointer<UInt8>, _ position: Int) -> (bytes: UnsafePointer<UInt8>, count: Int, consumed: Int)? {
        let count = units.count
        var node = Self.offset(units[0])
        var longest = 0
        var longestValue = 0
        var i = position
        while i < input.count {
            let c = input[i]
            node ^= Int(c)
            guard node < count else { break }
            let unit = units[node]
            guard Self.label(unit) == UInt32(c) else { break }
            node ^= Self.offset(unit)
            i += 1
            if Self.hasLeaf(unit), node < count {
                longest = i - position
                longestValue = Self.value(units[node])
            }
        }
        guard longest > 0 else { return nil }
        // Validated at load: the output starts inside the buffer and a NUL follows it.
        var end = longestValue
        while end < normalized.count, normalized[end] != 0 { end += 1 }
        let start = UnsafePointer(normalized.baseAddress.unsafelyUnwrapped) + longestValue
        return (start, end - longestValue, longest)
    }
}

/// UTF-8 helpers with sentencepiece's exact rules (util.h / util.cc).
enum SentencePieceUTF8 {
    /// U+FFFD, for malformed input bytes.
    nonisolated(unsafe) static let replacementCharacter: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 3)
        p[0] = 0xEF; p[1] = 0xBF; p[2] = 0xBD
        return UnsafePointer(p)
    }()

    /// string_util::OneCharLen: the length a lead byte announces (1 for continuation bytes).
    @inline(__always)
    static func oneCharLength(_ lead: UInt8) -> Int {
        switch lead >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    /// The length of the well-formed character at `bytes[position...]`, or 0 when it is malformed
    /// (string_util::IsValidDecodeUTF8: shortest form, no surrogates, at most U+10FFFF).
    @inline(__always)
    static func validCharacterLength(_ bytes: UnsafeBufferPointer<UInt8>, _ position: Int) -> Int {
        let b0 = UInt32(bytes[position])
        if b0 < 0x80 { return 1 }
        let remaining = bytes.count - position
        @inline(__always) func trail(_ k: Int) -> UInt32? {
            let b = UInt32(bytes[position + k])
            return b & 0xC0 == 0x80 ? b & 0x3F : nil
        }
        if remaining >= 2, b0 & 0xE0 == 0xC0 {
            guard let b1 = trail(1) else { return 0 }
            let cp = (b0 & 0x1F) << 6 | b1
            return cp >= 0x80 ? 2 : 0
        }
        if remaining >= 3, b0 & 0xF0 == 0xE0 {
            guard let b1 = trail(1), let b2 = trail(2) else { return 0 }
            let cp = (b0 & 0x0F) << 12 | b1 << 6 | b2
            return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? 3 : 0
        }
        if remaining >= 4, b0 & 0xF8 == 0xF0 {
            guard let b1 = trail(1), let b2 = trail(2), let b3 = trail(3) else { return 0 }
            let cp = (b0 & 0x07) << 18 | b1 << 12 | b2 << 6 | b3
            return cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0
        }
        return 0
    }
}
