import KondateSupport

/// Exports the recipe schema as JSON Schema (draft 2020-12) for editors (yaml-language-server).
///
/// It describes files as written, before composition: no key is required (a file meant to be
/// extended may omit anything; required keys are checked after composition), unknown keys are
/// rejected, numbers may carry units (`260B`, `40GiB`, `40%`) and any value may be a `${…}`
/// interpolation. Every list key also accepts the append form `key+`.
public enum JSONSchemaExport {
    public static let id = "https://kondate.dev/schema/recipe.schema.json"

    static let interpolation = #"\$\{[^}]+\}"#
    static let numberCore = #"[+-]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"#
    static let countPattern = "^" + numberCore + #"\s*(k|K|M|B|G|T|Ki|Mi|Gi|Ti)?$"#
    static let realPattern = "^" + numberCore + #"\s*(k|K|M|B|G|T|Ki|Mi|Gi|Ti|%)?$"#
    static let bytesPattern = "^" + numberCore + #"\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$"#

    public static func schema() -> JSON {
        var defs: [(String, JSON)] = [("Interpolation", .object([
            ("type", .string("string")), ("pattern", .string(interpolation)),
            ("description", .string("A `${dotted.path}` reference to another value of the recipe.")),
        ]))]
        var seen = Set<String>()
        collect(RecipeSchema.recipe, into: &defs, seen: &seen, directives: RecipeSchema.directives)
        return .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("$id", .string(id)),
            ("title", .string("Kondate recipe")),
            ("description", .string(RecipeSchema.recipe.doc)),
            ("$ref", .string("#/$defs/Recipe")),
            ("$defs", .object(defs)),
        ])
    }

    static func collect(_ object: ObjectSchema, into defs: inout [(String, JSON)], seen: inout Set<String>, directives: [Field] = []) {
        guard !seen.contains(object.name) else { return }
        seen.insert(object.name)
        var properties: [(String, JSON)] = []
        for field in directives + object.fields {
            properties.append((field.name, property(field, defs: &defs, seen: &seen)))
            if case .array = field.type {
                properties.append((field.name + "+", .object([
                    ("description", .string("Appends to the inherited `\(field.name)`.")),
                    ("anyOf", .array([type(field.type, defs: &defs, seen: &seen), ref("Interpolation")])),
                ])))
            }
        }
        defs.append((object.name, .object([
            ("type", .string("object")),
            ("description", .string(object.doc)),
            ("properties", .object(properties)),
            ("additionalProperties", .bool(false)),
        ])))
    }

    static func ref(_ name: String) -> JSON { .object([("$ref", .string("#/$defs/\(name)"))]) }

    static func property(_ field: Field, defs: inout [(String, JSON)], seen: inout Set<String>) -> JSON {
        var description = field.doc
        switch field.defaultValue {
        case let .value(v): description += " Default: `\(RNode(v, .defaulted).json.rendered(pretty: false))`."
        case let .derived(text): description += " Default: \(text)."
        case .none: break
        }
        if field.required { description += " Required (after composition)." }
        return .object([
            ("description", .string(description)),
            ("anyOf", .array([type(field.type, defs: &defs, seen: &seen), ref("Interpolation")])),
        ])
    }

    static func type(_ t: SchemaType, defs: inout [(String, JSON)], seen: inout Set<String>) -> JSON {
        switch t {
        case let .object(o):
            collect(o, into: &defs, seen: &seen)
            return ref(o.name)
        case let .dictionary(d):
            return .object([
                ("type", .string("object")),
                ("propertyNames", .object([("pattern", .string(DictionarySchema.namePattern))])),
                ("additionalProperties", .object([("anyOf", .array([type(d.value, defs: &defs, seen: &seen), ref("Interpolation")]))])),
            ])
        case let .array(a):
            var entries: [(String, JSON)] = [("type", .string("array")),
                                             ("items", .object([("anyOf", .array([type(a.item, defs: &defs, seen: &seen), ref("Interpolation")]))]))]
            if a.minItems > 0 { entries.append(("minItems", .int(a.minItems))) }
            if let max = a.maxItems { entries.append(("maxItems", .int(max))) }
            return .object(entries)
        case let .string(s):
            if s.kind == .name { return .object([("type", .string("string")), ("pattern", .string(DictionarySchema.namePattern))]) }
            if s.kind == .label { return .object([("type", .string("string")), ("pattern", .string(DictionarySchema.labelPattern))]) }
            return .object([("type", .string("string")), ("minLength", .int(1))])
        case let .choice(words):
            return .object([("enum", .array(words.map(JSON.string)))])
        case let .integer(i):
            var numeric: [(String, JSON)] = [("type", .string("integer"))]
            if let min = i.min { numeric.append(("minimum", .int(min))) }
            if let max = i.max { numeric.append(("maximum", .int(max))) }
            let pattern = i.unit == .bytes ? bytesPattern : countPattern
            return .object([("anyOf", .array([.object(numeric), .object([("type", .string("string")), ("pattern", .string(pattern))])]))])
        case let .number(n):
            var numeric: [(String, JSON)] = [("type", .string("number"))]
            if let min = n.min { numeric.append((n.exclusiveMin ? "exclusiveMinimum" : "minimum", .double(min))) }
            if let max = n.max { numeric.append((n.exclusiveMax ? "exclusiveMaximum" : "maximum", .double(max))) }
            return .object([("anyOf", .array([.object(numeric), .object([("type", .string("string")), ("pattern", .string(realPattern))])]))])
        case .boolean:
            return .object([("type", .string("boolean"))])
        case let .oneOf(alternatives):
            return .object([("anyOf", .array(alternatives.map { type($0, defs: &defs, seen: &seen) }))])
        case let .tagged(tagged):
            var variants: [JSON] = []
            var bare: [JSON] = []
            for v in tagged.variants {
                collect(v, into: &defs, seen: &seen)
                variants.append(.object([
                    ("type", .string("object")),
                    ("properties", .object([(v.name, .object([("anyOf", .array([ref(v.name), .object([("type", .string("null"))])]))]))])),
                    ("required", .array([.string(v.name)])),
                    ("additionalProperties", .bool(false)),
                ]))
                if !v.fields.contains(where: \.required) { bare.append(.string(v.name)) }
            }
            if !bare.isEmpty { variants.append(.object([("enum", .array(bare))])) }
            return .object([("description", .string(tagged.doc)), ("oneOf", .array(variants))])
        }
    }
}
