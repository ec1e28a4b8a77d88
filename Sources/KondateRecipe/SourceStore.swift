import Foundation

/// The text of every file (and `--set` argument) read while loading a recipe, so diagnostics can show
/// the offending line with a caret.
public struct SourceStore: Sendable {
    private var lines: [String: [String]] = [:]

    public init() {}

    public mutating func register(file: String, text: String) {
        lines[file] = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
    }

    public mutating func register(file: String, lines: [String]) {
        self.lines[file] = lines
    }

    /// The 1-based line `line` of `file`, if known.
    public func line(_ line: Int, of file: String) -> String? {
        guard let all = lines[file], line >= 1, line <= all.count else { return nil }
        return all[line - 1]
    }
}
