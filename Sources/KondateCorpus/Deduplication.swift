import Foundation
import KondateSupport

/// 64-bit hashing that does not depend on the process (Swift's `Hasher` is randomly seeded).
public enum StableHash {
    /// FNV-1a over bytes, finished with a SplitMix64 avalanche.
    @inline(__always) public static func hash(_ bytes: UnsafeBufferPointer<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return mix(h)
    }

    /// One SplitMix64 step from `x`: a bijective avalanche of 64-bit values.
    @inline(__always) public static func mix(_ x: UInt64) -> UInt64 {
        SplitMix64.finalize(x &+ SplitMix64.increment)
    }

    public static func hash(_ text: String, seed: UInt64 = 0) -> UInt64 {
        var copy = text
        return copy.withUTF8 { hash($0, seed: seed) }
    }
}

/// Text normalisation for deduplication: NFKC, lower case, whitespace runs collapsed to one space, trimmed.
public enum DedupNormalizer {
    public static func normalize(_ text: String) -> String {
        // NFKC is the identity on ASCII, and Foundation's normalisation is the expensive step.
        let folded = (text.utf8.allSatisfy { $0 < 0x80 } ? text : text.precomposedStringWithCompatibilityMapping).lowercased()
        var out = [UInt8]()
        out.reserveCapacity(folded.utf8.count)
        var pendingSpace = false
        for s in folded.unicodeScalars {
            if TextStatistics.isWhitespace(s) {
                pendingSpace = !out.isEmpty
                continue
            }
            if pendingSpace { out.append(0x20); pendingSpace = false }
            if s.isASCII { out.append(UInt8(s.value)) } else { out.append(contentsOf: String(s).utf8) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An open-addressing hash table from well-mixed 64-bit keys to non-negative 32-bit values (12 bytes a
/// slot, at most 3/4 full), so dedup state stays small and avoids Swift's seeded SipHash `Hasher`.
struct U64Table: Sendable {
    private var keys: [UInt64]
    private var values: [Int32]   // -1: empty slot
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var n = 16
        while n * 3 < capacity * 4 { n <<= 1 }
        keys = [UInt64](repeating: 0, count: n)
        values = [Int32](repeating: -1, count: n)
    }

    private func slot(_ key: UInt64) -> Int {
        let mask = keys.count - 1
        var i = Int(truncatingIfNeeded: key) & mask
        while values[i] >= 0, keys[i] != key { i = (i + 1) & mask }
        return i
    }

    subscript(key: UInt64) -> Int32? {
        let v = values[slot(key)]
        return v >= 0 ? v : nil
    }

    /// Inserts or replaces; `value` must be non-negative.
    mutating func set(_ key: UInt64, _ value: Int32) {
        if (count + 1) * 4 > keys.count * 3 { grow() }
        let i = slot(key)
        if values[i] < 0 { count += 1 }
        keys[i] = key
        values[i] = value
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
        values = [Int32](repeating: -1, count: oldKeys.count * 2)
        count = 0
        for i in 0..<oldKeys.count where oldValues[i] >= 0 { set(oldKeys[i], oldValues[i]) }
    }
}

/// Exact deduplication: keeps the first document of each normalised text (128-bit fingerprints: the
/// first half addresses the table, the second is compared).
public struct ExactDeduplicator: Sendable {
    private var table = U64Table()
    private var second: [UInt64] = []

    public init() {}

    /// The key of a document (computable in parallel).
    public static func key(_ text: String) -> (UInt64, UInt64) {
        key(normalized: DedupNormalizer.normalize(text))
    }

    /// The key of an already normalised text.
    public static func key(normalized: String) -> (UInt64, UInt64) {
        var copy = normalized
        return copy.withUTF8 { (StableHash.hash($0, seed: 1), StableHash.hash($0, seed: 0x5851_F42D_4C95_7F2D)) }
    }

    /// True for the first document with this key.
    public mutating func keep(key: (UInt64, UInt64)) -> Bool {
        var probe = key.0
        while let index = table[probe] {
            if second[Int(index)] == key.1 { return false }
            probe = StableHash.mix(probe)   // same first half, different text: next address
        }
        table.set(probe, Int32(second.count))
        second.append(key.1)
        return true
    }
}

public struct MinHashParameters: Sendable, Equatable {
    public var shingle: Int
    public var permutations: Int
    public var bands: Int
    public var rows: Int
    public var threshold: Double
    public var seed: UInt64

    public init(shingle: Int, permutations: Int, bands: Int, rows: Int, threshold: Double, seed: UInt64) {
        self.shingle = max(1, shingle)
        self.permutations = max(1, permutations)
        self.bands = max(1, bands)
        self.rows = max(1, rows)
        self.threshold = threshold
        self.seed = seed
    }
}

/// Near-duplicate detection with MinHash and locality-sensitive hashing.
///
/// A document's shingles are its character n-grams (after `DedupNormalizer`), each hashed to 64 bits.
/// Each of `permutations` hash functions is a multiply-shift hash h_i(x) = ⌊(a_i·x + b_i mod 2⁶⁴) / 2³²⌋
/// with odd a_i and b_i drawn from the recipe seed; a signature value is the minimum of h_i over the
/// shingles. The signature is cut into `bands` bands of `rows` values; a document whose band matches a
/// band of a document already kept is compared with it, and dropped when the fraction of equal signature
/// values reaches `threshold`. Documents are processed in order, so the result depends only on the seed
/// and the order.
public struct MinHashDeduplicator: Sendable {
    public let parameters: MinHashParameters
    let a: [UInt64]
    let b: [UInt64]
    /// Signatures of kept documents, flat, 16 bits per value (enough to estimate similarity).
    private var signatures: [UInt16] = []
    /// Band key → the first kept document with that band.
    private var buckets = U64Table()

    public init(_ parameters: MinHashParameters) {
        self.parameters = parameters
        var rng = SplitMix64(seed: parameters.seed ^ 0x6D69_6E68_6173_6821)
        a = (0..<parameters.permutations).map { _ in rng.next() | 1 }
        b = (0..<parameters.permutations).map { _ in rng.next() }
    }

    /// The signature of a text (pure: computable in parallel).
    public func signature(_ text: String) -> [UInt32] {
        signature(normalized: DedupNormalizer.normalize(text))
    }

    /// The signature of an already normalised text.
    public func signature(normalized: String) -> [UInt32] {
        let scalars = Array(normalized.unicodeScalars.map(\.value))
        let n = parameters.shingle
        let count = max(1, scalars.count - n + 1)
        var shingles = [UInt64](repeating: 0, count: count)
        scalars.withUnsafeBufferPointer { s in
            for start in 0..<count {
                var h: UInt64 = 0xCBF2_9CE4_8422_2325
                for k in start..<min(s.count, start + n) { h = (h ^ UInt64(s[k])) &* 0x0000_0100_0000_01B3 }
                shingles[start] = StableHash.mix(h)
            }
        }
        var mins = [UInt32](repeating: UInt32.max, count: parameters.permutations)
        shingles.withUnsafeBufferPointer { xs in
            for i in 0..<mins.count {
                let ai = a[i], bi = b[i]
                var m = UInt64.max
                for x in xs { m = min(m, ai &* x &+ bi) }   // the top 32 bits order like the full value
                mins[i] = UInt32(truncatingIfNeeded: m >> 32)
            }
        }
        return mins
    }

    func bandKey(_ signature: [UInt32], band: Int) -> UInt64 {
        var h = UInt64(band) &* 0x9E37_79B9_7F4A_7C15
        let start = band * parameters.rows
        for i in start..<min(signature.count, start + parameters.rows) { h = StableHash.mix(h ^ UInt64(signature[i])) }
        return h
    }

    /// True if the document is kept; remembers kept documents.
    ///
    /// The document is compared with the first kept document of each band it shares (at most `bands`
    /// comparisons), which bounds the work per document even when many documents share a band.
    public mutating func keep(signature: [UInt32]) -> Bool {
        let bands = max(1, min(parameters.bands, signature.count / max(1, parameters.rows)))
        let width = signature.count
        let short = signature.map { UInt16(truncatingIfNeeded: $0) }
        var keys: [UInt64] = []
        keys.reserveCapacity(bands)
        var compared = Set<Int32>()
        for band in 0..<bands {
            let key = bandKey(signature, band: band)
            keys.append(key)
            guard let head = buckets[key], compared.insert(head).inserted else { continue }
            let base = Int(head) * width
            var equal = 0
            for i in 0..<width where signatures[base + i] == short[i] { equal += 1 }
            if Double(equal) / Double(width) >= parameters.threshold { return false }
        }
        let id = Int32(signatures.count / width)
        signatures += short
        for key in keys where buckets[key] == nil { buckets.set(key, id) }
        return true
    }
}
