import Foundation

/// A JSON value whose objects keep their key order, so output is stable and reads in a chosen order.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Looks up a key of an object (nil for other values).
    public subscript(key: String) -> JSON? {
        if case let .object(entries) = self { return entries.first { $0.0 == key }?.1 }
        return nil
    }

    /// Serialises the value. `pretty` indents by two spaces; keys keep their order.
    public func rendered(pretty: Bool = true) -> String {
        var out = ""
        write(to: &out, indent: pretty ? 0 : nil)
        return out
    }

    private func write(to out: inout String, indent: Int?) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d): out += JSON.format(double: d)
        case let .string(s): JSON.quote(s, into: &out)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: "  ", count: indent + 1) }
                item.write(to: &out, indent: indent.map { $0 + 1 })
            }
            if let indent { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case let .object(entries):
            if entries.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (key, value)) in entries.enumerated() {
                if i > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: "  ", count: indent + 1) }
                JSON.quote(key, into: &out)
                out += indent == nil ? ":" : ": "
                value.write(to: &out, indent: indent.map { $0 + 1 })
            }
            if let indent { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    /// Shortest decimal text that reads back as the same Double; non-finite values become null.
    public static func format(double d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) + ".0" }
        return "\(d)"
    }

    public static func quote(_ s: String, into out: inout String) {
        var bytes: [UInt8] = [0x22]
        bytes.reserveCapacity(s.utf8.count + 2)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for b in s.utf8 {
            switch b {
            case 0x22: bytes += [0x5C, 0x22]
            case 0x5C: bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, 0x6E]
            case 0x0D: bytes += [0x5C, 0x72]
            case 0x09: bytes += [0x5C, 0x74]
            case 0..<0x20: bytes += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: bytes.append(b)   // UTF-8 bytes of other characters pass through unchanged
            }
        }
        bytes.append(0x22)
        out += String(decoding: bytes, as: UTF8.self)
    }

    public static func quoted(_ s: String) -> String {
        var out = ""
        quote(s, into: &out)
        return out
    }
}

extension JSON {
    /// The value as a number (ints widen), else nil.
    public var doubleValue: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }
    /// The value as an integer (doubles only when integral), else nil.
    public var intValue: Int? {
        switch self {
        case let .int(i): i
        case let .double(d) where d.rounded() == d && abs(d) < 9e15: Int(d)
        default: nil
        }
    }
    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [JSON]? { if case let .array(a) = self { a } else { nil } }
}

extension JSON {
    /// The same value with every object's keys in byte order, recursively: two values that differ only
    /// in key order have the same canonical form, so `canonical.rendered(pretty: false)` can be hashed.
    public var canonical: JSON {
        switch self {
        case let .array(items): return .array(items.map(\.canonical))
        case let .object(entries):
            return .object(entries.map { ($0.0, $0.1.canonical) }.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) })
        default: return self
        }
    }

    /// SHA-256 (hex) of the compact canonical rendering.
    public var canonicalHash: String { SHA256.hex(Array(canonical.rendered(pretty: false).utf8)) }
}
