import KondateSupport

/// A list of input paths as a recipe wrote them, each with the pattern resolved against the file that
/// wrote it (the working directory for `--set`).
public struct InputPaths: Sendable {
    public struct Entry: Sendable {
        public var written: String
        public var resolved: String
        public var location: SourceLocation?
    }
    /// The recipe key (`corpus.sources.ja.paths`), for messages.
    public var key: String
    public var entries: [Entry]

    public init(_ tree: RNode, _ key: String) {
        self.key = key
        entries = (tree.at(key)?.array ?? []).compactMap { item in
            item.string.map { Entry(written: $0, resolved: PathCheck.resolve($0, relativeTo: item.location), location: item.location) }
        }
    }

    /// The patterns as written: what a key hashes (the files' contents are hashed separately), so a
    /// recipe and its data moved together keep their keys.
    public var json: JSON { .array(entries.map { .string($0.written) }) }
}

/// A resolved input path that is one file or directory (`tokenizer.path`, `hf:` models).
public struct InputPath: Sendable {
    public var written: String
    public var resolved: String
    public var location: SourceLocation?

    /// The value at `key` of `tree`, resolved against the file that wrote it.
    public init?(_ tree: RNode, _ key: String) {
        guard let node = tree.at(key), let written = node.string else { return nil }
        self.init(written: written, location: node.location)
    }

    public init(written: String, location: SourceLocation?) {
        self.written = written
        self.resolved = PathCheck.resolve(written, relativeTo: location)
        self.location = location
    }
}


/// Where a recipe wrote its keys, for a runner's error messages: locations only, never values (a
/// runner reads its values from its typed stage).
public struct RecipeLocations: Sendable {
    let tree: RNode
    public init(_ tree: RNode) { self.tree = tree }
    /// The key's value, else the key, else its nearest written ancestor.
    public func at(_ key: String) -> SourceLocation? { tree.diagnosticLocation(key) }
}
