import KondateSupport

/// Checks a composed `YAMLNode` tree against the schema in one pass, reporting every problem, and
/// produces the typed `RNode` tree with static defaults filled in and keys in schema order.
public struct SchemaChecker {
    public var diagnostics = DiagnosticSet()
    /// Dotted paths of values that were present but invalid (so later checks do not also call them missing).
    public private(set) var invalidPaths: Set<String> = []
    /// Checks one file of an `extends` chain on its own: unknown keys and values of the wrong type or out
    /// of range, but no required keys or exclusive groups (a parent may leave them to its children), no
    /// defaults, `key+` read as `key`, and `${…}` values skipped (they resolve only in the composed recipe).
    public var partial = false

    public init() {}

    public init(partial: Bool) { self.partial = partial }

    public mutating func check(_ node: YAMLNode, against type: SchemaType, path: [String] = [],
                               keyLocation: SourceLocation? = nil) -> RNode? {
        let here = node.location ?? keyLocation
        if node.provenance.isUnresolved { return nil } // its ${…} error is already reported
        if partial, let text = node.scalarText, text.contains("${") { return nil }
        switch type {
        case let .object(schema):
            return checkObject(node, schema, path: path, keyLocation: keyLocation)
        case let .dictionary(schema):
            guard let entries = node.entries else { return mismatch(node, expected: "a mapping of names to entries", path: path, at: here) }
            var out: [REntry] = []
            for entry in entries {
                if !Self.isName(entry.key) {
                    error(.invalidValue,
                          "'\(entry.key)' is not a valid name for \(schema.keyDoc) in '\(Self.show(path))': use letters, digits, '_' or '-', starting with a letter",
                          at: entry.keyLocation ?? here, node)
                    continue
                }
                if let child = check(entry.value, against: schema.value, path: path + [entry.key], keyLocation: entry.keyLocation) {
                    out.append(REntry(key: entry.key, keyLocation: entry.keyLocation, node: child))
                }
            }
            return RNode(.object(out), node.provenance)
        case let .array(schema):
            guard case let .sequence(items) = node.kind else {
                return mismatch(node, expected: "a list", path: path, at: here)
            }
            if items.count < schema.minItems, !partial {
                error(.outOfRange, "'\(Self.show(path))' needs at least \(schema.minItems) item\(schema.minItems == 1 ? "" : "s"), found \(items.count)",
                      at: here, node)
            }
            if let max = schema.maxItems, items.count > max {
                error(.outOfRange, "'\(Self.show(path))' takes at most \(max) item\(max == 1 ? "" : "s"), found \(items.count)", at: here, node)
            }
            var out: [RNode] = []
            var ok = true
            for (i, item) in items.enumerated() {
                if let child = check(item, against: schema.item, path: path + [String(i)], keyLocation: item.location ?? here) {
                    out.append(child)
                } else {
                    ok = false
                }
            }
            return ok ? RNode(.array(out), node.provenance) : nil
        case let .tagged(schema):
            return checkTagged(node, schema, path: path, at: here)
        case let .oneOf(alternatives):
            for alternative in alternatives {
                var trial = SchemaChecker(partial: partial)
                if let result = trial.check(node, against: alternative, path: path, keyLocation: keyLocation), !trial.diagnostics.hasErrors {
                    return result
                }
            }
            let expected = alternatives.map(Self.describe).joined(separator: " or ")
            return mismatch(node, expected: expected, path: path, at: here)
        case .string, .choice, .integer, .number, .boolean:
            return checkScalar(node, type, path: path, at: here)
        }
    }

    // MARK: Objects

    private mutating func checkObject(_ node: YAMLNode, _ schema: ObjectSchema, path: [String], keyLocation: SourceLocation?) -> RNode? {
        let here = node.location ?? keyLocation
        guard let entries = node.entries else {
            return mismatch(node, expected: "a mapping (\(schema.name))", path: path, at: here)
        }
        var checked: [String: REntry] = [:]
        for written in entries {
            var entry = written
            let appends = partial && entry.key.hasSuffix("+")
            if appends { entry.key.removeLast() }   // `key+:` appends to the inherited list
            // Appending to what is not a list is the composer's error; its value is not checked again.
            if appends, let field = schema.field(entry.key) {
                guard case .array = field.type else { continue }
            }
            guard let field = schema.field(entry.key) else {
                let candidates = schema.fields.map(\.name)
                let suggestion = Suggestions.closest(to: entry.key, in: candidates)
                var message = path.isEmpty ? "unknown top-level key '\(entry.key)'" : "unknown key '\(entry.key)' in '\(Self.show(path))'"
                if let suggestion { message += "; did you mean '\(suggestion)'?" } else {
                    message += "; valid keys: " + candidates.joined(separator: ", ")
                }
                error(.unknownKey, message, at: entry.keyLocation ?? entry.value.location, entry.value, fixIt: suggestion)
                continue
            }
            if let value = check(entry.value, against: field.type, path: path + [entry.key], keyLocation: entry.keyLocation) {
                checked[entry.key] = REntry(key: entry.key, keyLocation: entry.keyLocation, node: value)
            } else {
                invalidPaths.insert(Self.show(path + [entry.key]))
            }
        }
        if partial { return RNode(.object(Array(checked.values)), node.provenance) }
        for group in schema.exclusive {
            // Report at the key written last (by position), naming the one it conflicts with.
            let present = entries.filter { group.contains($0.key) }.sorted {
                ($0.keyLocation?.line ?? 0, $0.keyLocation?.column ?? 0) < ($1.keyLocation?.line ?? 0, $1.keyLocation?.column ?? 0)
            }
            if present.count > 1, let second = present.last {
                error(.conflictingKeys,
                      "'\(Self.show(path + [second.key]))' conflicts with '\(present[0].key)'; set only one of " + group.map { "'\($0)'" }.joined(separator: ", "),
                      at: second.keyLocation, second.value)
            }
        }
        var out: [REntry] = []
        for field in schema.fields {
            if let entry = checked[field.name] {
                out.append(entry)
                continue
            }
            if entries.contains(where: { $0.key == field.name }) { continue } // present but invalid: already reported
            if field.required {
                let message = path.isEmpty ? "missing required top-level key '\(field.name)'"
                    : "missing required key '\(field.name)' in '\(Self.show(path))'"
                diagnostics.error(.missingKey, message + " (\(Self.firstSentence(field.doc)))", at: keyLocation ?? here,
                                  notes: node.provenance.notes)
                continue
            }
            switch field.defaultValue {
            case let .value(v):
                out.append(REntry(key: field.name, keyLocation: nil, node: RNode(v, .defaulted)))
            case .none:
                if !field.presence, case let .object(sub) = field.type, !sub.fields.contains(where: \.required) {
                    let empty = YAMLNode(.mapping([]), provenance: .defaulted)
                    if let filled = checkObject(empty, sub, path: path + [field.name], keyLocation: nil) {
                        out.append(REntry(key: field.name, keyLocation: nil, node: filled))
                    }
                }
            case .derived:
                break
            }
        }
        return RNode(.object(out), node.provenance)
    }

    private mutating func checkTagged(_ node: YAMLNode, _ schema: TaggedSchema, path: [String], at here: SourceLocation?) -> RNode? {
        let names = schema.variants.map(\.name)
        let keyEntry: YAMLEntry
        switch node.kind {
        case let .mapping(entries) where entries.count == 1:
            keyEntry = entries[0]
        case let .scalar(text, _) where !node.isNull:
            // A bare name (`- dedup_exact`) means the variant with no parameters.
            keyEntry = YAMLEntry(key: text, keyLocation: node.location, value: YAMLNode(.mapping([]), provenance: node.provenance))
        default:
            error(.typeMismatch,
                  "each item of '\(Self.show(path.dropLast()))' is one \(schema.name) written as a one-key mapping, e.g. '- \(names[0]): {…}'",
                  at: here, node)
            return nil
        }
        guard let variant = schema.variant(keyEntry.key) else {
            let suggestion = Suggestions.closest(to: keyEntry.key, in: names)
            var message = "unknown \(schema.name) '\(keyEntry.key)'"
            message += suggestion.map { "; did you mean '\($0)'?" } ?? "; known: " + names.joined(separator: ", ")
            error(.invalidValue, message, at: keyEntry.keyLocation ?? here, node, fixIt: suggestion)
            return nil
        }
        var body = keyEntry.value
        if body.isNull { body = YAMLNode(.mapping([]), provenance: body.provenance) }
        guard let checked = checkObject(body, variant, path: path + [keyEntry.key], keyLocation: keyEntry.keyLocation) else { return nil }
        return RNode(.object([REntry(key: keyEntry.key, keyLocation: keyEntry.keyLocation, node: checked)]), node.provenance)
    }

    // MARK: Scalars

    private mutating func checkScalar(_ node: YAMLNode, _ type: SchemaType, path: [String], at here: SourceLocation?) -> RNode? {
        guard case let .scalar(text, quoted) = node.kind else {
            return mismatch(node, expected: Self.describe(type), path: path, at: here)
        }
        if node.isNull {
            error(.typeMismatch, "'\(Self.show(path))' has no value; expected \(Self.describe(type))", at: here, node)
            return nil
        }
        let p = node.provenance
        switch type {
        case let .string(schema):
            if schema.kind == .name, !Self.isName(text) {
                error(.invalidValue, "'\(text)' is not a valid name for '\(Self.show(path))': use letters, digits, '_' or '-', starting with a letter",
                      at: here, node)
                return nil
            }
            if schema.kind == .label, !Self.isLabel(text) {
                error(.invalidValue, "'\(text)' is not a valid '\(Self.show(path))': use letters, digits, '.', '_' or '-', starting with a letter or digit",
                      at: here, node)
                return nil
            }
            if text.isEmpty {
                error(.invalidValue, "'\(Self.show(path))' must not be empty", at: here, node)
                return nil
            }
            return RNode(.string(text), p)
        case let .choice(words):
            if words.contains(text) { return RNode(.string(text), p) }
            let suggestion = Suggestions.closest(to: text, in: words)
            var message = "'\(text)' is not a valid '\(Self.show(path))'; expected one of " + words.joined(separator: ", ")
            if let suggestion { message += "; did you mean '\(suggestion)'?" }
            error(.invalidValue, message, at: here, node, fixIt: suggestion)
            return nil
        case .boolean:
            if !quoted {
                if ["true", "True", "TRUE"].contains(text) { return RNode(.bool(true), p) }
                if ["false", "False", "FALSE"].contains(text) { return RNode(.bool(false), p) }
            }
            let hint = ["yes", "no", "on", "off", "y", "n"].contains(text.lowercased()) ? " (YAML 1.2 reads '\(text)' as a string)" : ""
            error(.typeMismatch, "'\(Self.show(path))' must be true or false, found '\(text)'\(hint)", at: here, node)
            return nil
        case let .integer(schema):
            if quoted {
                error(.typeMismatch, "'\(Self.show(path))' expects \(Self.describe(type)), found the quoted string \"\(text)\"; remove the quotes",
                      at: here, node)
                return nil
            }
            let parsed: Result<Int, Units.Failure> = schema.unit == .bytes ? Units.bytes(text) : Units.count(text)
            switch parsed {
            case let .success(value):
                if let min = schema.min, value < min {
                    error(.outOfRange, "'\(Self.show(path))' must be at least \(min), found \(text)", at: here, node)
                    return nil
                }
                if let max = schema.max, value > max {
                    error(.outOfRange, "'\(Self.show(path))' must be at most \(Format.grouped(max)), found \(text)", at: here, node)
                    return nil
                }
                return RNode(.int(value), p)
            case let .failure(failure):
                unitError(failure, text: text, type: type, unit: schema.unit, path: path, at: here, node)
                return nil
            }
        case let .number(schema):
            if quoted {
                error(.typeMismatch, "'\(Self.show(path))' expects a number, found the quoted string \"\(text)\"; remove the quotes", at: here, node)
                return nil
            }
            switch Units.real(text) {
            case let .success(value):
                if text.hasSuffix("%"), !schema.percent {
                    error(.typeMismatch, "'\(Self.show(path))' does not take a percentage; write a plain number", at: here, node)
                    return nil
                }
                let belowMin = schema.min.map { schema.exclusiveMin ? value <= $0 : value < $0 } ?? false
                let aboveMax = schema.max.map { schema.exclusiveMax ? value >= $0 : value > $0 } ?? false
                if belowMin || aboveMax {
                    let range = text.hasSuffix("%") ? schema.percentRangeText : schema.rangeText
                    error(.outOfRange, "'\(Self.show(path))' must be in \(range), found \(text)", at: here, node)
                    return nil
                }
                return RNode(.double(value), p)
            case let .failure(failure):
                unitError(failure, text: text, type: type, unit: nil, path: path, at: here, node)
                return nil
            }
        default:
            return nil
        }
    }

    private mutating func unitError(_ failure: Units.Failure, text: String, type: SchemaType, unit: IntegerSchema.Unit?,
                                    path: [String], at here: SourceLocation?, _ node: YAMLNode) {
        let what = "'\(Self.show(path))'"
        switch failure {
        case .notANumber:
            error(.typeMismatch, "\(what) expects \(Self.describe(type)), found '\(text)'", at: here, node)
        case let .unknownSuffix(suffix):
            let list = unit == .bytes ? Units.byteSuffixList : Units.countSuffixList + (unit == nil ? ", %" : "")
            error(.typeMismatch, "unknown unit '\(suffix)' in '\(text)' for \(what); use one of \(list)", at: here, node)
        case .notWhole:
            error(.typeMismatch, "\(what) must be a whole number, found \(text)", at: here, node)
        case .tooLarge:
            error(.outOfRange, "\(what) is too large: \(text)", at: here, node)
        }
    }

    // MARK: Helpers

    private mutating func mismatch(_ node: YAMLNode, expected: String, path: [String], at here: SourceLocation?) -> RNode? {
        var found = node.kindName
        if let text = node.scalarText, !node.isNull { found = "'\(text)'" }
        let what = path.isEmpty ? "the recipe" : "'\(Self.show(path))'"
        error(.typeMismatch, "\(what) expects \(expected), found \(found)", at: here, node)
        return nil
    }

    private mutating func error(_ code: DiagnosticCode, _ message: String, at location: SourceLocation?, _ node: YAMLNode,
                                fixIt: String? = nil) {
        diagnostics.error(code, message, at: location, notes: node.provenance.notes, fixIt: fixIt)
    }

    static func describe(_ type: SchemaType) -> String {
        switch type {
        case .object(let o): return "a mapping (\(o.name))"
        case .dictionary: return "a mapping of names"
        case .array: return "a list"
        case .string: return "a string"
        case let .choice(words): return "one of " + words.joined(separator: ", ")
        case let .integer(i):
            switch i.unit {
            case .none: return "an integer"
            case .count: return "an integer (units allowed: 4k, 260B, 4Ki)"
            case .bytes: return "a size in bytes (e.g. 40GiB)"
            }
        case .number: return "a number"
        case .boolean: return "true or false"
        case let .oneOf(alternatives): return alternatives.map(describe).joined(separator: " or ")
        case let .tagged(t): return "a \(t.name)"
        }
    }

    /// The doc text up to the first ". " (a period inside `tokenizer.json` or `e.g.` does not end it).
    static func firstSentence(_ doc: String) -> String {
        var text = doc
        if let end = doc.range(of: ". ") { text = String(doc[..<end.lowerBound]) }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    static func show<S: Sequence>(_ path: S) -> String where S.Element == String {
        path.joined(separator: ".")
    }

    static func isLabel(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || ("0"..."9").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    static func isName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.properties.isASCIIHexDigit || ("A"..."Z").contains(first) || ("a"..."z").contains(first) else {
            return false
        }
        guard ("A"..."Z").contains(first) || ("a"..."z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }
}
