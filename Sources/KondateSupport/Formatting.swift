import Foundation

/// Human-readable numbers for plans and diffs.
public enum Format {
    /// 13681710080 -> "13,681,710,080".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// 13681710080 -> "13.68B"; uses K, M, B, T (decimal).
    public static func count(_ x: Double, digits: Int = 2) -> String {
        let a = abs(x)
        let (div, suffix): (Double, String) =
            a >= 1e12 ? (1e12, "T") : a >= 1e9 ? (1e9, "B") : a >= 1e6 ? (1e6, "M") : a >= 1e3 ? (1e3, "K") : (1, "")
        if suffix.isEmpty { return x == x.rounded() ? String(Int64(x)) : fixed(x, digits) }
        return fixed(x / div, digits) + suffix
    }

    /// Bytes in binary units: "24.31 GiB".
    public static func bytes(_ x: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = x, i = 0
        while abs(v) >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(Int64(v)) B" : fixed(v, 2) + " " + units[i]
    }

    /// FLOPs in scientific notation: "2.35e22".
    public static func scientific(_ x: Double, digits: Int = 3) -> String {
        guard x != 0, x.isFinite else { return "0" }
        let e = Int(floor(log10(abs(x))))
        let m = x / pow(10, Double(e))
        return fixed(m, digits - 1) + "e" + String(e)
    }

    /// Seconds as "17.3 days", "5.2 h", "42 min" or "12.0 s".
    public static func duration(_ s: Double) -> String {
        if s >= 2 * 86400 { return fixed(s / 86400, 1) + " days" }
        if s >= 2 * 3600 { return fixed(s / 3600, 1) + " h" }
        if s >= 120 { return fixed(s / 60, 0) + " min" }
        return fixed(s, 1) + " s"
    }

    public static func fixed(_ x: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", x)
    }

    /// Percentage with one decimal: 0.4 -> "40.0%".
    public static func percent(_ x: Double) -> String { fixed(x * 100, 1) + "%" }
}

public extension Int {
    /// Rounds toward zero and clamps to Int's range (no trap on huge or non-finite values; NaN → 0).
    init(saturating value: Double) {
        if value.isNaN { self = 0 } else if value >= 9.2e18 { self = Int.max } else if value <= -9.2e18 { self = Int.min } else { self = Int(value) }
    }
}

public extension Format {
    /// A number as a person writes it: integers without ".0", others in Swift's shortest form.
    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }
}

public extension Format {
    /// SI prefix form: si(312e12, "FLOP/s") -> "312 TFLOP/s".
    static func si(_ x: Double, _ unit: String) -> String {
        let prefixes: [(Double, String)] = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        for (scale, prefix) in prefixes where abs(x) >= scale {
            return number((x / scale * 100).rounded() / 100) + " " + prefix + unit
        }
        return number(x) + " " + unit
    }
}
