import Foundation
@testable import KondateRecipe

/// An independent, minimal JSON Schema (draft 2020-12) validator for the keywords the exported schema
/// uses, so the tests can check recipes against it without Python. It works on JSONSerialization
/// values; YAML is converted with the YAML 1.2 core schema, as yaml-language-server reads it.
enum MiniJSONSchema {
    static func validate(_ instance: Any, against schema: [String: Any], root: [String: Any], path: String = "$") -> [String] {
        var errors: [String] = []
        if let ref = schema["$ref"] as? String {
            let name = ref.replacingOccurrences(of: "#/$defs/", with: "")
            guard let defs = root["$defs"] as? [String: Any], let target = defs[name] as? [String: Any] else { return ["\(path): unresolved \(ref)"] }
            errors += validate(instance, against: target, root: root, path: path)
        }
        if let type = schema["type"] as? String, !matchesType(instance, type) { return errors + ["\(path): expected \(type), found \(instance)"] }
        if let options = schema["enum"] as? [Any], !options.contains(where: { equal($0, instance) }) {
            errors.append("\(path): \(instance) not in enum")
        }
        if let s = instance as? String {
            if let pattern = schema["pattern"] as? String, s.range(of: pattern, options: .regularExpression) == nil {
                errors.append("\(path): '\(s)' does not match \(pattern)")
            }
            if let min = schema["minLength"] as? Int, s.count < min { errors.append("\(path): shorter than \(min)") }
        }
        if let x = number(instance) {
            if let m = schema["minimum"].flatMap(number), x < m { errors.append("\(path): \(x) < \(m)") }
            if let m = schema["maximum"].flatMap(number), x > m { errors.append("\(path): \(x) > \(m)") }
            if let m = schema["exclusiveMinimum"].flatMap(number), x <= m { errors.append("\(path): \(x) <= \(m)") }
            if let m = schema["exclusiveMaximum"].flatMap(number), x >= m { errors.append("\(path): \(x) >= \(m)") }
        }
        if let object = instance as? [String: Any] {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, value) in object {
                if let sub = properties[key] as? [String: Any] {
                    errors += validate(value, against: sub, root: root, path: "\(path).\(key)")
                } else if let additional = schema["additionalProperties"] {
                    if let allowed = additional as? Bool, !allowed, schema["properties"] != nil || schema["additionalProperties"] != nil {
                        errors.append("\(path): unknown property '\(key)'")
                    } else if let sub = additional as? [String: Any] {
                        errors += validate(value, against: sub, root: root, path: "\(path).\(key)")
                    }
                }
                if let names = schema["propertyNames"] as? [String: Any] {
                    errors += validate(key, against: names, root: root, path: "\(path).<\(key)>")
                }
            }
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { errors.append("\(path): missing '\(key)'") }
        }
        if let array = instance as? [Any] {
            if let items = schema["items"] as? [String: Any] {
                for (i, item) in array.enumerated() { errors += validate(item, against: items, root: root, path: "\(path)[\(i)]") }
            }
            if let min = schema["minItems"] as? Int, array.count < min { errors.append("\(path): fewer than \(min) items") }
            if let max = schema["maxItems"] as? Int, array.count > max { errors.append("\(path): more than \(max) items") }
        }
        if let anyOf = schema["anyOf"] as? [[String: Any]] {
            if !anyOf.contains(where: { validate(instance, against: $0, root: root, path: path).isEmpty }) {
                errors.append("\(path): matches no alternative of anyOf (\(instance))")
            }
        }
        if let oneOf = schema["oneOf"] as? [[String: Any]] {
            let passing = oneOf.filter { validate(instance, against: $0, root: root, path: path).isEmpty }.count
            if passing != 1 { errors.append("\(path): matches \(passing) alternatives of oneOf") }
        }
        return errors
    }

    /// Instances use native Swift values (Bool, Int, Double), so a boolean is never a number.
    static func isBool(_ x: Any) -> Bool { x is Bool }

    static func number(_ x: Any) -> Double? {
        if x is Bool { return nil }
        if let i = x as? Int { return Double(i) }
        if let d = x as? Double { return d }
        if let n = x as? NSNumber { return n.doubleValue }
        return nil
    }

    static func matchesType(_ x: Any, _ type: String) -> Bool {
        switch type {
        case "string": return x is String
        case "boolean": return isBool(x)
        case "integer": return number(x).map { $0 == $0.rounded() } ?? false
        case "number": return number(x) != nil
        case "object": return x is [String: Any]
        case "array": return x is [Any]
        case "null": return x is NSNull
        default: return false
        }
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        if let x = a as? String, let y = b as? String { return x == y }
        if let x = number(a), let y = number(b) { return x == y }
        return false
    }

    /// YAML 1.2 core schema resolution of plain scalars.
    static func json(from node: YAMLNode) -> Any {
        switch node.kind {
        case let .mapping(entries):
            var out: [String: Any] = [:]
            for e in entries { out[e.key] = json(from: e.value) }
            return out
        case let .sequence(items):
            return items.map(json(from:))
        case let .scalar(text, quoted):
            if quoted { return text }
            if ["", "~", "null", "Null", "NULL"].contains(text) { return NSNull() }
            if ["true", "True", "TRUE"].contains(text) { return true }
            if ["false", "False", "FALSE"].contains(text) { return false }
            if text.range(of: "^[-+]?[0-9]+$", options: .regularExpression) != nil, let i = Int(text) { return i }
            if text.range(of: #"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil, let d = Double(text) {
                return d
            }
            return text
        }
    }
}
