/// A failure, as a value: what went wrong, where (a recipe key's position or an input file's line),
/// and its code in the diagnostics catalogue (docs/diagnostics.md). Recipe problems found while running
/// and runtime failures (input data, stage outputs, checkpoints, disk, MPI, numerics) share this
/// shape; the CLI renders it as a diagnostic and exits with `exitStatus`.
public struct KondateError: Error, CustomStringConvertible, Sendable {
    public var code: DiagnosticCode
    public var message: String
    public var location: SourceLocation?

    public init(_ code: DiagnosticCode, _ message: String, at location: SourceLocation? = nil) {
        self.code = code
        self.message = message
        self.location = location
    }

    /// A bug in Kondate (a check missing from validation, a broken invariant): exit status 2.
    public static func bug(_ message: String, at location: SourceLocation? = nil) -> KondateError {
        KondateError(.internalError, message, at: location)
    }

    public var description: String { (location.map { "\($0): " } ?? "") + message }

    /// 1 for a problem the user fixes (the recipe, an input, the machine), 2 for a bug in Kondate.
    public var exitStatus: Int32 { code == .internalError ? 2 : 1 }

    /// The diagnostic the CLI renders; an internal error says it is a bug and asks for a report.
    public var diagnostic: Diagnostic {
        let text = code == .internalError
            ? "internal error: \(message); this is a bug in Kondate, not in the recipe: please report it with the recipe and this message"
            : message
        return Diagnostic(.error, code, text, at: location)
    }
}
