import KondateSupport

/// The recipe schema: one description of every key, used by the validator, the JSON Schema export
/// and the generated language reference. Adding a key is adding a `Field` here.
public indirect enum SchemaType: Sendable {
    case object(ObjectSchema)
    /// User-named entries (corpus sources, tune stages, eval suites), all of one type.
    case dictionary(DictionarySchema)
    case array(ArraySchema)
    case string(StringSchema)
    /// One of a fixed set of words.
    case choice([String])
    case integer(IntegerSchema)
    case number(NumberSchema)
    case boolean
    /// The first alternative that accepts the value wins (e.g. an integer or `auto`).
    case oneOf([SchemaType])
    /// A one-key mapping whose key selects the variant, as in `- doc_length: {min_chars: 50}`.
    case tagged(TaggedSchema)

    /// Short type name for docs and messages.
    public var typeName: String {
        switch self {
        case let .object(o): return o.name
        case let .dictionary(d): return "map of name → \(d.value.typeName)"
        case let .array(a): return "list of \(a.item.typeName)"
        case let .string(s): return s.kind.rawValue
        case let .choice(words): return words.map { "`\($0)`" }.joined(separator: " \\| ")
        case let .integer(i):
            switch i.unit {
            case .none: return "integer"
            case .count: return "count"
            case .bytes: return "bytes"
            }
        case let .number(n): return n.percent ? "number or percent" : "number"
        case .boolean: return "boolean"
        case let .oneOf(types): return types.map(\.typeName).joined(separator: " or ")
        case let .tagged(t): return t.name
        }
    }
}

public final class ObjectSchema: Sendable {
    /// Name used in docs and as the JSON Schema `$defs` entry.
    public let name: String
    public let doc: String
    public let fields: [Field]
    /// Groups of keys of which at most one may be set.
    public let exclusive: [[String]]

    public init(_ name: String, _ doc: String, exclusive: [[String]] = [], fields: [Field]) {
        self.name = name
        self.doc = doc
        self.fields = fields
        self.exclusive = exclusive
    }

    public func field(_ name: String) -> Field? { fields.first { $0.name == name } }
}

public enum FieldDefault: Sendable {
    case none
    case value(Value)
    /// Computed from other values by `DerivedDefaults`; the text says how.
    case derived(String)
}

public struct Field: Sendable {
    public let name: String
    public let type: SchemaType
    public let doc: String
    public let defaultValue: FieldDefault
    /// Required after composition (a file meant to be extended may omit it).
    public let required: Bool
    /// A section whose presence means something (e.g. `tokenizer`): never created from defaults.
    public let presence: Bool
    /// What a number counts ("tokens", "steps", "sequences", "FLOP/s"); empty for non-numbers.
    public let unit: String

    public init(_ name: String, _ type: SchemaType, _ doc: String, default defaultValue: FieldDefault = .none, required: Bool = false,
                presence: Bool = false, unit: String = "") {
        self.name = name
        self.type = type
        self.doc = doc
        self.defaultValue = defaultValue
        self.required = required
        self.presence = presence
        self.unit = unit
    }
}

public struct DictionarySchema: Sendable {
    public let value: SchemaType
    /// What a key names ("source name").
    public let keyDoc: String
    public init(_ value: SchemaType, keyDoc: String) {
        self.value = value
        self.keyDoc = keyDoc
    }
    /// Names become stage ids and file names: letters, digits, `_` and `-`, starting with a letter.
    public static let namePattern = "^[A-Za-z][A-Za-z0-9_-]*$"
    /// Recipe and release names may also contain dots (`llm-jp-13b-v2.0`).
    public static let labelPattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$"
}

public struct ArraySchema: Sendable {
    public let item: SchemaType
    public let minItems: Int
    public let maxItems: Int?
    public init(_ item: SchemaType, minItems: Int = 0, maxItems: Int? = nil) {
        self.item = item
        self.minItems = minItems
        self.maxItems = maxItems
    }
}

public struct StringSchema: Sendable {
    public enum Kind: String, Sendable {
        case text = "string", path = "path", glob = "glob", name = "name", label = "label", url = "URL"
    }
    public let kind: Kind
    public init(_ kind: Kind) { self.kind = kind }
}

public struct IntegerSchema: Sendable {
    public enum Unit: Sendable { case none, count, bytes }
    public let unit: Unit
    public let min: Int?
    public let max: Int?
    public init(_ unit: Unit = .count, min: Int? = nil, max: Int? = nil) {
        self.unit = unit
        self.min = min
        self.max = max
    }
}

public struct NumberSchema: Sendable {
    public let min: Double?
    public let max: Double?
    public let exclusiveMin: Bool
    public let exclusiveMax: Bool
    /// Accepts `40%`.
    public let percent: Bool
    public init(min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false, exclusiveMax: Bool = false, percent: Bool = false) {
        self.min = min
        self.max = max
        self.exclusiveMin = exclusiveMin
        self.exclusiveMax = exclusiveMax
        self.percent = percent
    }

    /// The range in percent, for values written with `%`.
    public var percentRangeText: String {
        let lo = min.map { (exclusiveMin ? "(" : "[") + Format.number($0 * 100) + "%" } ?? "(-∞"
        let hi = max.map { Format.number($0 * 100) + "%" + (exclusiveMax ? ")" : "]") } ?? "∞)"
        return lo + ", " + hi
    }

    public var rangeText: String {
        let lo = min.map { (exclusiveMin ? "(" : "[") + Format.number($0) } ?? "(-∞"
        let hi = max.map { Format.number($0) + (exclusiveMax ? ")" : "]") } ?? "∞)"
        return lo + ", " + hi
    }

}

public final class TaggedSchema: Sendable {
    public let name: String
    public let doc: String
    public let variants: [ObjectSchema]
    public init(_ name: String, _ doc: String, variants: [ObjectSchema]) {
        self.name = name
        self.doc = doc
        self.variants = variants
    }
    public func variant(_ key: String) -> ObjectSchema? { variants.first { $0.name == key } }
}

/// Small constructors that keep the schema file readable.
public extension SchemaType {
    static let text = SchemaType.string(StringSchema(.text))
    static let path = SchemaType.string(StringSchema(.path))
    static let glob = SchemaType.string(StringSchema(.glob))
    static let name = SchemaType.string(StringSchema(.name))
    static let label = SchemaType.string(StringSchema(.label))
    static let url = SchemaType.string(StringSchema(.url))
    static func count(min: Int? = nil, max: Int? = nil) -> SchemaType { .integer(IntegerSchema(.count, min: min, max: max)) }
    static func plainInt(min: Int? = nil, max: Int? = nil) -> SchemaType { .integer(IntegerSchema(.none, min: min, max: max)) }
    static func bytes(min: Int? = nil) -> SchemaType { .integer(IntegerSchema(.bytes, min: min)) }
    static func real(min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false, exclusiveMax: Bool = false,
                     percent: Bool = false) -> SchemaType {
        .number(NumberSchema(min: min, max: max, exclusiveMin: exclusiveMin, exclusiveMax: exclusiveMax, percent: percent))
    }
    static func list(_ item: SchemaType, minItems: Int = 0, maxItems: Int? = nil) -> SchemaType {
        .array(ArraySchema(item, minItems: minItems, maxItems: maxItems))
    }
    static func map(_ value: SchemaType, key: String) -> SchemaType { .dictionary(DictionarySchema(value, keyDoc: key)) }
}
