import Foundation

/// The sizes Kondate accepts from files it does not control (docs/limits.md lists each with the
/// error it gives). Each can be raised for one command by the environment variable named beside it,
/// for a user who legitimately needs more; nothing in a recipe can raise them.
public enum Limits {
    /// Nodes that `${…}` references may copy into a recipe, in all.
    public static var interpolationNodes: Int { value("KONDATE_MAX_INTERPOLATION_NODES", 100_000) }
    /// Bytes of text that `${…}` references may produce, in all.
    public static var interpolationBytes: Int { value("KONDATE_MAX_INTERPOLATION_BYTES", 16 << 20) }
    /// Distinct recipe files one recipe may extend, itself included.
    public static var extendsFiles: Int { value("KONDATE_MAX_EXTENDS_FILES", 256) }

    /// Bytes of one corpus document (a JSONL line, a text file, a text block); longer ones are skipped
    /// and counted in the filter report.
    public static var documentBytes: Int { value("KONDATE_MAX_DOCUMENT_BYTES", 64 << 20) }
    /// How many times its own size a gzip file may decompress to (beyond the first 64 MiB).
    public static var gzipRatio: Int { value("KONDATE_MAX_GZIP_RATIO", 1_000) }

    /// `name` from the environment when it is a positive integer, else `fallback`.
    public static func value(_ name: String, _ fallback: Int) -> Int {
        guard let text = ProcessInfo.processInfo.environment[name], let v = Int(text), v > 0 else { return fallback }
        return v
    }
}
