import Foundation

/// 64-bit hashing that does not depend on the process (Swift's `Hasher` is randomly seeded).
public enum StableHash {
    /// FNV-1a over bytes, finished with a SplitMix64 avalanche.
    @inline(__always) public static func hash(_ bytes: UnsafeBufferPointer<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return mix(h)
    }

    @inline(__always) public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public static func hash(_ text: String, seed: UInt64 = 0) -> UInt64 {
        var copy = text
        return copy.withUTF8 { hash($0, seed: seed) }
    }
}

/// The seeded generator used for every shuffle and permutation in the data pipeline.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform integer in 0..<bound without modulo bias (Lemire's method).
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}

/// Text normalisation for deduplication: NFKC, lower case, whitespace runs collapsed to one space, trimmed.
public enum DedupNormalizer {
    public static func normalize(_ text: String) -> String {
        let folded = text.precomposedStringWithCompatibilityMapping.lowercased()
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for s in folded.unicodeScalars {
            if s.properties.isWhitespace {
                pendingSpace = !out.isEmpty
                continue
            }
            if pendingSpace { out.append(" "); pendingSpace = false }
            out.append(s)
        }
        return String(out)
    }
}

/// Exact deduplication: keeps the first document of each normalised text (128-bit fingerprints).
public struct ExactDeduplicator: Sendable {
    struct Fingerprint: Hashable { var a: UInt64; var b: UInt64 }
    private var seen = Set<Fingerprint>()

    public init() {}

    /// The key of a document (computable in parallel).
    public static func key(_ text: String) -> (UInt64, UInt64) {
        var normalized = DedupNormalizer.normalize(text)
        return normalized.withUTF8 { (StableHash.hash($0, seed: 1), StableHash.hash($0, seed: 0x5851_F42D_4C95_7F2D)) }
    }

    /// True for the first document with this key.
    public mutating func keep(key: (UInt64, UInt64)) -> Bool {
        seen.insert(Fingerprint(a: key.0, b: key.1)).inserted
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
/// A document's shingles are its character n-grams (after `DedupNormalizer`); each of `permutations`
/// hash functions h_i(x) = (a_i·x + b_i) mod (2⁶¹ − 1), with a_i, b_i drawn from the recipe seed, gives
/// one signature value (the minimum over shingles). The signature is cut into `bands` bands of `rows`
/// values; a document whose band matches a band of a document already kept is compared with it, and
/// dropped when the fraction of equal signature values reaches `threshold`. Documents are processed in
/// order, so the result depends only on the seed and the order.
public struct MinHashDeduplicator: Sendable {
    public let parameters: MinHashParameters
    let a: [UInt64]
    let b: [UInt64]
    static let prime: UInt64 = (1 << 61) - 1
    /// Signatures of kept documents (32 bits per value, enough to estimate similarity).
    private var signatures: [[UInt32]] = []
    private var buckets: [UInt64: [Int32]] = [:]

    public init(_ parameters: MinHashParameters) {
        self.parameters = parameters
        var rng = SplitMix64(seed: parameters.seed ^ 0x6D69_6E68_6173_6821)
        a = (0..<parameters.permutations).map { _ in 1 + rng.below(Self.prime - 1) }
        b = (0..<parameters.permutations).map { _ in rng.below(Self.prime) }
    }

    @inline(__always) static func mulmod(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let p = x.multipliedFullWidth(by: y)
        // (high·2⁶⁴ + low) mod (2⁶¹ − 1), using 2⁶¹ ≡ 1.
        let low = p.low & prime, mid = (p.low >> 61) | (p.high << 3)
        var r = low &+ (mid & prime) &+ (mid >> 61)
        while r >= prime { r -= prime }
        return r
    }

    /// The signature of a text (pure: computable in parallel).
    public func signature(_ text: String) -> [UInt32] {
        let scalars = Array(DedupNormalizer.normalize(text).unicodeScalars.map(\.value))
        var mins = [UInt64](repeating: UInt64.max, count: parameters.permutations)
        let n = parameters.shingle
        let count = max(1, scalars.count - n + 1)
        scalars.withUnsafeBufferPointer { s in
            for start in 0..<count {
                let end = min(s.count, start + n)
                var h: UInt64 = 0xCBF2_9CE4_8422_2325
                for k in start..<end { h = (h ^ UInt64(s[k])) &* 0x0000_0100_0000_01B3 }
                let x = StableHash.mix(h) & Self.prime
                for i in 0..<mins.count {
                    var v = Self.mulmod(a[i], x) &+ b[i]
                    if v >= Self.prime { v -= Self.prime }
                    if v < mins[i] { mins[i] = v }
                }
            }
        }
        return mins.map { UInt32(truncatingIfNeeded: $0) }
    }

    func bandKey(_ signature: [UInt32], band: Int) -> UInt64 {
        var h = UInt64(band) &* 0x9E37_79B9_7F4A_7C15
        let start = band * parameters.rows
        for i in start..<min(signature.count, start + parameters.rows) { h = StableHash.mix(h ^ UInt64(signature[i])) }
        return h
    }

    /// True if the document is kept (no kept document is a near duplicate); remembers kept documents.
    public mutating func keep(signature: [UInt32]) -> Bool {
        let bands = min(parameters.bands, signature.count / max(1, parameters.rows))
        var candidates = Set<Int32>()
        var keys: [UInt64] = []
        for band in 0..<max(1, bands) {
            let key = bandKey(signature, band: band)
            keys.append(key)
            if let docs = buckets[key] { candidates.formUnion(docs) }
        }
        for c in candidates.sorted() {
            let other = signatures[Int(c)]
            var equal = 0
            for i in 0..<signature.count where signature[i] == other[i] { equal += 1 }
            if Double(equal) / Double(signature.count) >= parameters.threshold { return false }
        }
        let id = Int32(signatures.count)
        signatures.append(signature)
        for key in keys { buckets[key, default: []].append(id) }
        return true
    }
}
