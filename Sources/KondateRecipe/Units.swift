import Foundation

/// Numbers with units, as written in recipes.
///
/// Counts (tokens, steps, sizes): `4096`, `2_000`, `4k` (4 000), `1.5M`, `260B` (260 × 10⁹), `2T`,
/// `4Ki` (4 096), `1Mi`; scientific `3e9`. The suffixes are decimal SI except the `i` forms.
/// Bytes: `512`, `40GB` (40 × 10⁹), `40GiB` (40 × 2³⁰), also `KB MB TB KiB MiB TiB`.
/// Reals: `3e-4`, `0.95`, `1_000.5`, percentages `40%` (= 0.4), and the count suffixes (`312T` FLOP/s).
/// Bandwidths (bytes per second): `300GB/s`, `25GiB/s`, and bits per second as links are sold:
/// `200Gb/s` (= 25 GB/s), `100Gbps`, `4x200Gb/s` (four links).
public enum Units {
    public enum Failure: Error, Equatable {
        case notANumber
        case unknownSuffix(String)
        case notWhole
        case tooLarge
    }

    static let countSuffixes: [String: Double] = [
        "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12,
        "Ki": 1024, "Mi": 1_048_576, "Gi": 1_073_741_824, "Ti": 1_099_511_627_776,
    ]
    static let byteSuffixes: [String: Double] = [
        "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
        "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824, "TiB": 1_099_511_627_776,
    ]

    public static let countSuffixList = "k, M, B (10⁹), T, Ki, Mi, Gi, Ti"
    public static let byteSuffixList = "KB, MB, GB, TB, KiB, MiB, GiB, TiB"

    /// Bytes per second for each bandwidth unit; a lower-case `b` is a bit (÷ 8).
    static let bandwidthSuffixes: [String: Double] = [
        "B/s": 1, "kB/s": 1e3, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12,
        "KiB/s": 1024, "MiB/s": 1_048_576, "GiB/s": 1_073_741_824, "TiB/s": 1_099_511_627_776,
        "b/s": 0.125, "kb/s": 125, "Kb/s": 125, "Mb/s": 125e3, "Gb/s": 125e6, "Tb/s": 125e9,
        "bps": 0.125, "kbps": 125, "Kbps": 125, "Mbps": 125e3, "Gbps": 125e6, "Tbps": 125e9,
    ]
    public static let bandwidthSuffixList = "B/s, KB/s, MB/s, GB/s, TB/s, KiB/s, MiB/s, GiB/s, TiB/s (bytes) or b/s, Kb/s, Mb/s, Gb/s, Tb/s, Gbps (bits)"

    /// Splits "260B" into (260.0, "B"); underscores between digits are dropped.
    static func split(_ text: String) -> (Double, String)? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { return nil }
        var numberEnd = t.startIndex
        var sawDigit = false
        var i = t.startIndex
        // Accept: sign, digits, underscores, '.', exponent.
        if t[i] == "+" || t[i] == "-" { i = t.index(after: i) }
        while i < t.endIndex {
            let c = t[i]
            if c.isASCII && c.isNumber { sawDigit = true; i = t.index(after: i); numberEnd = i; continue }
            if c == "_" || c == "." { i = t.index(after: i); numberEnd = i; continue }
            if (c == "e" || c == "E"), sawDigit {
                var j = t.index(after: i)
                if j < t.endIndex, t[j] == "+" || t[j] == "-" { j = t.index(after: j) }
                if j < t.endIndex, t[j].isASCII, t[j].isNumber {
                    i = j
                    while i < t.endIndex, (t[i].isASCII && t[i].isNumber) || t[i] == "_" { i = t.index(after: i) }
                    numberEnd = i
                }
                break
            }
            break
        }
        guard sawDigit else { return nil }
        let numberText = t[..<numberEnd]
        // Underscores only between digits.
        let chars = Array(numberText)
        for (k, c) in chars.enumerated() where c == "_" {
            guard k > 0, k + 1 < chars.count, chars[k - 1].isNumber, chars[k + 1].isNumber else { return nil }
        }
        guard let value = Double(numberText.replacingOccurrences(of: "_", with: "")) else { return nil }
        let suffix = String(t[numberEnd...]).trimmingCharacters(in: .whitespaces)
        return (value, suffix)
    }

    static func whole(_ value: Double) -> Result<Int, Failure> {
        guard value.isFinite else { return .failure(.tooLarge) }
        guard value == value.rounded() else { return .failure(.notWhole) }
        guard abs(value) < 9.0e18 else { return .failure(.tooLarge) }
        return .success(Int(value))
    }

    /// An integer count, with SI or binary suffix.
    public static func count(_ text: String) -> Result<Int, Failure> {
        integer(text, suffixes: countSuffixes)
    }

    /// A byte size.
    public static func bytes(_ text: String) -> Result<Int, Failure> {
        integer(text, suffixes: byteSuffixes)
    }

    /// Integers are scaled in decimal arithmetic so `130.05B` is exactly 130 050 000 000.
    static func integer(_ text: String, suffixes: [String: Double]) -> Result<Int, Failure> {
        guard let (value, suffix) = split(text) else { return .failure(.notANumber) }
        var scale = 1.0
        if !suffix.isEmpty {
            guard let s = suffixes[suffix] else { return .failure(.unknownSuffix(suffix)) }
            scale = s
        }
        guard abs(value * scale) < 9.0e18 else { return .failure(.tooLarge) }
        let numberText = String(text.trimmingCharacters(in: .whitespaces).dropLast(suffix.count))
            .trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
        guard let decimal = Decimal(string: numberText, locale: Locale(identifier: "en_US_POSIX")) else { return whole(value * scale) }
        let scaled = decimal * Decimal(string: String(format: "%.0f", scale))!
        var rounded = Decimal()
        var copy = scaled
        NSDecimalRound(&rounded, &copy, 0, .plain)
        guard rounded == scaled else { return .failure(.notWhole) }
        return .success(NSDecimalNumber(decimal: rounded).intValue)
    }

    /// A real number, with `%` or a count suffix.
    public static func real(_ text: String) -> Result<Double, Failure> {
        guard let (value, suffix) = split(text) else { return .failure(.notANumber) }
        guard value.isFinite else { return .failure(.tooLarge) }
        if suffix.isEmpty { return .success(value) }
        if suffix == "%" { return .success(value / 100) }
        guard let scale = countSuffixes[suffix] else { return .failure(.unknownSuffix(suffix)) }
        return .success(value * scale)
    }

    /// A bandwidth in bytes per second: `300GB/s`, `200Gb/s` (bits: 25 GB/s), `4x200Gb/s` (a whole
    /// number of links, `x` or `×`, times one link's rate). The unit is required, since bytes and bits
    /// differ by eight: a bare number fails with `.unknownSuffix("")`. Zero and negative values parse;
    /// callers check the range.
    public static func bandwidth(_ text: String) -> Result<Double, Failure> {
        var rate = text.trimmingCharacters(in: .whitespaces)
        var links = 1.0
        if let times = rate.firstIndex(where: { $0 == "x" || $0 == "×" }) {
            let count = rate[..<times].trimmingCharacters(in: .whitespaces)
            guard let n = Int(count), n >= 1 else { return .failure(.notANumber) }
            links = Double(n)
            rate = String(rate[rate.index(after: times)...])
        }
        guard let (value, suffix) = split(rate) else { return .failure(.notANumber) }
        guard let scale = bandwidthSuffixes[suffix] else { return .failure(.unknownSuffix(suffix)) }
        let bytesPerSecond = links * value * scale
        guard bytesPerSecond.isFinite, bytesPerSecond < 1e18 else { return .failure(.tooLarge) }
        return .success(bytesPerSecond)
    }
}
