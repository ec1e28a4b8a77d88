import KondateSupport

/// A semantic difference between two resolved recipes.
public struct RecipeChange: Sendable {
    public enum Kind: String, Sendable { case changed, added, removed }
    public var kind: Kind
    /// Dotted path.
    public var path: String
    public var old: RNode?
    public var new: RNode?

    public var section: String { String(path.prefix { $0 != "." }) }

    public var json: JSON {
        .object([
            ("kind", .string(kind.rawValue)),
            ("path", .string(path)),
            ("old", old?.json ?? .null),
            ("new", new?.json ?? .null),
            ("old_origin", old.map { .string($0.provenance.summary) } ?? .null),
            ("new_origin", new.map { .string($0.provenance.summary) } ?? .null),
        ])
    }
}

/// Diffs resolved trees key by key. Mappings recurse; named entries that exist on one side only are
/// reported whole; lists and scalars are compared as values. Provenance is ignored.
public enum RecipeDiff {
    public static func changes(from a: RNode, to b: RNode, path: [String] = []) -> [RecipeChange] {
        let here = path.joined(separator: ".")
        guard let ea = a.entries, let eb = b.entries else {
            return a.value == b.value ? [] : [RecipeChange(kind: .changed, path: here, old: a, new: b)]
        }
        var out: [RecipeChange] = []
        for entry in ea {
            let p = path + [entry.key]
            if let other = eb.first(where: { $0.key == entry.key }) {
                out += changes(from: entry.node, to: other.node, path: p)
            } else {
                out.append(RecipeChange(kind: .removed, path: p.joined(separator: "."), old: entry.node, new: nil))
            }
        }
        for entry in eb where !ea.contains(where: { $0.key == entry.key }) {
            out.append(RecipeChange(kind: .added, path: (path + [entry.key]).joined(separator: "."), old: nil, new: entry.node))
        }
        return out
    }

    /// A short rendering of a value for diffs: `13,824`, `260B`-style counts, `[0.9, 0.95]`, `{tokens: 136B, …}`.
    public static func show(_ node: RNode, limit: Int = 120) -> String {
        let text = render(node)
        return text.count > limit ? String(text.prefix(limit - 1)) + "…" : text
    }

    static func render(_ node: RNode) -> String {
        switch node.value {
        case .null: return "null"
        case let .bool(b): return String(b)
        case let .int(i): return abs(i) >= 100_000 ? Format.grouped(i) + " (\(Format.count(Double(i))))" : String(i)
        case let .double(d): return Format.number(d)
        case let .string(s): return s
        case let .array(items): return "[" + items.map(render).joined(separator: ", ") + "]"
        case let .object(entries):
            // Numbers and flags first (they carry the news), then words, then lists and mappings.
            func rank(_ v: Value) -> Int {
                switch v {
                case .int, .double, .bool: return 0
                case .string: return 1
                default: return 2
                }
            }
            let written = entries.filter { !$0.node.provenance.isDefault }.enumerated()
                .sorted { (rank($0.element.node.value), $0.offset) < (rank($1.element.node.value), $1.offset) }.map(\.element)
            return "{" + written.map { entry in
                var text = render(entry.node)
                if case .string = entry.node.value, text.count > 40 { text = String(text.prefix(39)) + "…" }
                return "\(entry.key): \(text)"
            }.joined(separator: ", ") + "}"
        }
    }
}
