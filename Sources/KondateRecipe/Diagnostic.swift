/// A position in a recipe file, or in a `--set` override (file `--set`, line = the override's ordinal).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in Unicode scalars.
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
    /// `file:line`, the short form used in notes.
    public var short: String { "\(file):\(line)" }
}

public enum Severity: String, Sendable, Comparable {
    case error, warning, note

    private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// A secondary message attached to a diagnostic ("inherited from base.yaml:12").
public struct DiagnosticNote: Sendable, Hashable {
    public var message: String
    public var location: SourceLocation?

    public init(_ message: String, at location: SourceLocation? = nil) {
        self.message = message
        self.location = location
    }
}

/// One finding about a recipe. Diagnostics are values: passes collect them, the driver renders them.
public struct Diagnostic: Sendable, Hashable {
    public var severity: Severity
    /// Stable identifier, listed in docs/diagnostics.md.
    public var code: DiagnosticCode
    public var message: String
    public var location: SourceLocation?
    public var notes: [DiagnosticNote]
    /// A replacement the user probably meant (for "did you mean").
    public var fixIt: String?

    public init(_ severity: Severity, _ code: DiagnosticCode, _ message: String,
                at location: SourceLocation?, notes: [DiagnosticNote] = [], fixIt: String? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
        self.notes = notes
        self.fixIt = fixIt
    }
}

/// Diagnostics gathered over all passes, in the order they were found.
public struct DiagnosticSet: Sendable {
    public private(set) var items: [Diagnostic] = []
    private var seen: Set<Diagnostic> = []

    public init() {}

    /// Adds a diagnostic unless the same one (message, location, notes) is already there.
    public mutating func add(_ d: Diagnostic) {
        if seen.insert(d).inserted { items.append(d) }
    }

    public mutating func error(_ code: DiagnosticCode, _ message: String, at location: SourceLocation?,
                               notes: [DiagnosticNote] = [], fixIt: String? = nil) {
        add(Diagnostic(.error, code, message, at: location, notes: notes, fixIt: fixIt))
    }

    public mutating func warning(_ code: DiagnosticCode, _ message: String, at location: SourceLocation?,
                                 notes: [DiagnosticNote] = [], fixIt: String? = nil) {
        add(Diagnostic(.warning, code, message, at: location, notes: notes, fixIt: fixIt))
    }

    public mutating func note(_ code: DiagnosticCode, _ message: String, at location: SourceLocation?,
                              notes: [DiagnosticNote] = []) {
        add(Diagnostic(.note, code, message, at: location, notes: notes))
    }

    public mutating func append(contentsOf other: DiagnosticSet) {
        for d in other.items { add(d) }
    }

    public var hasErrors: Bool { items.contains { $0.severity == .error } }
    public var errors: [Diagnostic] { items.filter { $0.severity == .error } }
    public var warnings: [Diagnostic] { items.filter { $0.severity == .warning } }

    /// Diagnostics sorted by file, line and column; unlocated ones last. Stable for equal positions.
    public var sorted: [Diagnostic] {
        items.enumerated().sorted { a, b in
            switch (a.element.location, b.element.location) {
            case let (x?, y?):
                if x.file != y.file { return a.offset < b.offset }
                if x.line != y.line { return x.line < y.line }
                if x.column != y.column { return x.column < y.column }
                return a.offset < b.offset
            case (nil, nil): return a.offset < b.offset
            case (nil, _): return false
            case (_, nil): return true
            }
        }.map(\.element)
    }
}

/// A failure of Kondate itself (not of the recipe): reported with exit code 2.
public struct InternalError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
