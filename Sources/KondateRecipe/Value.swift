import KondateSupport

/// A typed, checked value of the resolved recipe.
public indirect enum Value: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([RNode])
    case object([REntry])

    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "list"
        case .object: return "mapping"
        }
    }
}

/// A node of the resolved recipe: a typed value and where it came from.
public struct RNode: Sendable, Equatable {
    public var value: Value
    public var provenance: Provenance

    public init(_ value: Value, _ provenance: Provenance) {
        self.value = value
        self.provenance = provenance
    }

    public static func == (a: RNode, b: RNode) -> Bool { a.value == b.value }

    public var location: SourceLocation? { provenance.location }

    public var int: Int? { if case let .int(i) = value { i } else { nil } }
    public var double: Double? {
        switch value {
        case let .double(d): return d
        case let .int(i): return Double(i)
        default: return nil
        }
    }
    public var string: String? { if case let .string(s) = value { s } else { nil } }
    public var bool: Bool? { if case let .bool(b) = value { b } else { nil } }
    public var array: [RNode]? { if case let .array(a) = value { a } else { nil } }
    public var entries: [REntry]? { if case let .object(e) = value { e } else { nil } }

    public subscript(key: String) -> RNode? {
        entries?.first { $0.key == key }?.node
    }

    /// The node at a dotted path ("model.hidden", "corpus.sources.ja_wiki.tokens").
    public func at(_ path: String) -> RNode? {
        var node: RNode? = self
        for segment in path.split(separator: ".") {
            guard let current = node else { return nil }
            if let entries = current.entries {
                node = entries.first { $0.key == segment }?.node
            } else if let items = current.array, let i = Int(segment), i >= 0, i < items.count {
                node = items[i]
            } else {
                return nil
            }
        }
        return node
    }

    /// Where the key of the entry at `path` is written, falling back to its value's location.
    public func keyLocation(_ path: String) -> SourceLocation? {
        let parts = path.split(separator: ".").map(String.init)
        guard let last = parts.last else { return location }
        let parent = parts.count == 1 ? self : at(parts.dropLast().joined(separator: "."))
        if let entry = parent?.entries?.first(where: { $0.key == last }) {
            return entry.keyLocation ?? entry.node.location
        }
        return nil
    }

    /// Where a diagnostic about `path` points: its value, else its key, else the key of the nearest
    /// written ancestor (defaults have no position). A mapping or list is pointed at by its key (its own
    /// position is that of its first child).
    public func diagnosticLocation(_ path: String) -> SourceLocation? {
        if let node = at(path), node.entries != nil || node.array != nil, let key = keyLocation(path) { return key }
        if let loc = at(path)?.location ?? keyLocation(path) { return loc }
        var parts = path.split(separator: ".").map(String.init)
        while parts.count > 1 {
            parts.removeLast()
            let p = parts.joined(separator: ".")
            if let loc = keyLocation(p) ?? at(p)?.location { return loc }
        }
        return location
    }

    /// Sets (or adds) the value at a dotted path whose parents exist.
    public mutating func set(_ path: String, _ node: RNode) {
        let parts = path.split(separator: ".").map(String.init)
        set(parts[...], node)
    }

    private mutating func set(_ parts: ArraySlice<String>, _ node: RNode) {
        guard let key = parts.first, var entries = self.entries else { return }
        if parts.count == 1 {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                entries[i].node = node
            } else {
                entries.append(REntry(key: key, keyLocation: nil, node: node))
            }
        } else if let i = entries.firstIndex(where: { $0.key == key }) {
            entries[i].node.set(parts.dropFirst(), node)
        }
        value = .object(entries)
    }

    /// JSON for output (`plan --json`, manifests): plain values, no provenance.
    public var json: JSON {
        switch value {
        case .null: return .null
        case let .bool(b): return .bool(b)
        case let .int(i): return .int(i)
        case let .double(d): return .double(d)
        case let .string(s): return .string(s)
        case let .array(items): return .array(items.map(\.json))
        case let .object(entries): return .object(entries.map { ($0.key, $0.node.json) })
        }
    }
}

public struct REntry: Sendable, Equatable {
    public var key: String
    public var keyLocation: SourceLocation?
    public var node: RNode

    public init(key: String, keyLocation: SourceLocation?, node: RNode) {
        self.key = key
        self.keyLocation = keyLocation
        self.node = node
    }

    public static func == (a: REntry, b: REntry) -> Bool { a.key == b.key && a.node == b.node }
}
