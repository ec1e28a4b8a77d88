import KondateSupport

/// One document of a corpus source, with where it came from.
public struct Document: Sendable {
    public var text: String
    /// The file it was read from and its 1-based line (JSONL) or first line (text blocks).
    public var file: String
    public var line: Int
    /// Other JSONL fields, kept as metadata (nil for text files).
    public var metadata: JSON?

    public init(text: String, file: String, line: Int, metadata: JSON? = nil) {
        self.text = text
        self.file = file
        self.line = line
        self.metadata = metadata
    }

    public var origin: String { "\(file):\(line)" }
}
