/// Where a value came from and how it reached the resolved recipe.
public struct Provenance: Sendable, Hashable {
    /// The position that set the value; nil for defaults.
    public var location: SourceLocation?
    /// How it travelled, oldest first.
    public var steps: [Step]

    public enum Step: Sendable, Hashable {
        /// The file that set it was extended by this file.
        case inheritedBy(file: String)
        /// It replaced a value set at this location.
        case replaced(SourceLocation)
        /// It was copied by `${reference}` from the value set at `from` (nil when that was a default).
        case interpolated(reference: String, from: SourceLocation?)
        /// It is a default from the schema.
        case defaulted
        /// It is a default computed from other values (the reason says from what).
        case derived(String)
        /// A `${…}` reference here could not be resolved (already reported).
        case unresolved
    }

    public var isUnresolved: Bool { steps.contains { if case .unresolved = $0 { true } else { false } } }

    public init(location: SourceLocation?, steps: [Step] = []) {
        self.location = location
        self.steps = steps
    }

    public static let defaulted = Provenance(location: nil, steps: [.defaulted])

    public static func derived(_ reason: String) -> Provenance {
        Provenance(location: nil, steps: [.derived(reason)])
    }

    public var isDefault: Bool {
        location == nil && steps.contains { if case .defaulted = $0 { true } else { false } }
    }

    public var isFromCommandLine: Bool { location?.file == "--set" }

    /// A short human account: "llm-jp-13b-v1.0.yaml:34", "--set #1", "default", "derived: ...".
    public var summary: String {
        if let location {
            if location.file == "--set" { return "--set #\(location.line)" }
            return location.short
        }
        for step in steps {
            if case let .derived(reason) = step { return "derived: \(reason)" }
        }
        return "default"
    }

    /// Notes explaining the value's history, for diagnostics.
    public var notes: [DiagnosticNote] {
        var notes: [DiagnosticNote] = []
        for step in steps {
            switch step {
            case let .inheritedBy(file):
                notes.append(DiagnosticNote("inherited by \(file) through 'extends'", at: nil))
            case let .replaced(old):
                notes.append(DiagnosticNote("overrides the value set here", at: old))
            case let .interpolated(reference, from):
                notes.append(DiagnosticNote("copied from '${\(reference)}'" + (from == nil ? " (a default)" : ", set here"), at: from))
            case .defaulted:
                notes.append(DiagnosticNote("this is the default value"))
            case let .derived(reason):
                notes.append(DiagnosticNote("derived: \(reason)"))
            case .unresolved:
                break
            }
        }
        if let location, location.file == "--set" {
            notes.insert(DiagnosticNote("set on the command line with --set"), at: 0)
        }
        return notes
    }
}
