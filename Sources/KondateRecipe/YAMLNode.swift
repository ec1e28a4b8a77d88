/// A YAML node with the position of every key and value: the input to composition.
public struct YAMLNode: Sendable {
    public enum Kind: Sendable {
        /// A scalar's text; `quoted` is true for single-, double-quoted and block scalars,
        /// which are always strings.
        case scalar(String, quoted: Bool)
        case mapping([YAMLEntry])
        case sequence([YAMLNode])
    }

    public var kind: Kind
    public var provenance: Provenance

    public var location: SourceLocation? { provenance.location }

    public init(_ kind: Kind, provenance: Provenance) {
        self.kind = kind
        self.provenance = provenance
    }

    public init(_ kind: Kind, at location: SourceLocation) {
        self.init(kind, provenance: Provenance(location: location))
    }

    public var entries: [YAMLEntry]? {
        if case let .mapping(e) = kind { return e }
        return nil
    }

    public var scalarText: String? {
        if case let .scalar(s, _) = kind { return s }
        return nil
    }

    /// A plain scalar that YAML reads as null (`~`, `null`, empty).
    public var isNull: Bool {
        if case let .scalar(s, quoted) = kind, !quoted { return s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL" }
        return false
    }

    public var kindName: String {
        switch kind {
        case .scalar: return isNull ? "null" : "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    public subscript(key: String) -> YAMLNode? {
        entries?.first { $0.key == key }?.value
    }

    /// Number of nodes in this subtree.
    public var nodeCount: Int {
        switch kind {
        case .scalar: return 1
        case let .mapping(entries): return entries.reduce(1) { $0 + $1.value.nodeCount }
        case let .sequence(items): return items.reduce(1) { $0 + $1.nodeCount }
        }
    }

    /// Applies `transform` to the provenance of every node in the subtree.
    public func mapProvenance(_ transform: (inout Provenance) -> Void) -> YAMLNode {
        var copy = self
        transform(&copy.provenance)
        switch kind {
        case .scalar: break
        case let .mapping(entries):
            copy.kind = .mapping(entries.map {
                YAMLEntry(key: $0.key, keyLocation: $0.keyLocation, value: $0.value.mapProvenance(transform))
            })
        case let .sequence(items):
            copy.kind = .sequence(items.map { $0.mapProvenance(transform) })
        }
        return copy
    }
}

public struct YAMLEntry: Sendable {
    public var key: String
    /// Where the key is written; nil when it was created by composition (e.g. a `--set` path).
    public var keyLocation: SourceLocation?
    public var value: YAMLNode

    public init(key: String, keyLocation: SourceLocation?, value: YAMLNode) {
        self.key = key
        self.keyLocation = keyLocation
        self.value = value
    }
}
