import KondateSupport

/// Resolves `${dotted.path}` references in the composed tree.
///
/// A scalar that is exactly `${path}` becomes a copy of the referenced value, whatever its type;
/// `${path}` inside a longer string is replaced by the referenced scalar's text. `$${` writes a literal `${`.
/// References see the composed recipe (after extends and --set), not schema defaults.
public struct Interpolator {
    public var diagnostics = DiagnosticSet()
    private let root: YAMLNode
    private var memo: [String: YAMLNode] = [:]
    private var inProgress: [String] = []
    private var failed: Set<String> = []
    /// What references may still copy (nodes) and produce (bytes of text), in all: references to
    /// references multiply, so a few hundred bytes could otherwise ask for gigabytes.
    private var nodeBudget = Limits.interpolationNodes
    private var byteBudget = Limits.interpolationBytes
    private var reportedTooLarge = false

    public init(root: YAMLNode) {
        self.root = root
    }

    /// Takes `node`'s size from the budgets; false (reported once) when it does not fit.
    private mutating func charge(_ node: YAMLNode, at location: SourceLocation?) -> Bool {
        var nodes = 0, bytes = 0
        func walk(_ n: YAMLNode) -> Bool {
            nodes += 1
            switch n.kind {
            case let .scalar(text, _): bytes += text.utf8.count
            case let .mapping(entries): for e in entries where !walk(e.value) { return false }
            case let .sequence(items): for item in items where !walk(item) { return false }
            }
            return nodes <= nodeBudget && bytes <= byteBudget
        }
        guard walk(node) else { return tooLarge(at: location) }
        nodeBudget -= nodes
        byteBudget -= bytes
        return true
    }

    private mutating func tooLarge(at location: SourceLocation?) -> Bool {
        if !reportedTooLarge {
            reportedTooLarge = true
            diagnostics.error(.interpolationTooLarge,
                              "'${…}' references copy more than \(Limits.interpolationNodes) nodes or \(Limits.interpolationBytes) bytes of text in all; " +
                              "references to references multiply: refer to the values once, or raise KONDATE_MAX_INTERPOLATION_NODES / " +
                              "KONDATE_MAX_INTERPOLATION_BYTES for this command", at: location)
        }
        return false
    }

    public mutating func resolve() -> YAMLNode {
        interpolate(root)
    }

    private mutating func interpolate(_ node: YAMLNode) -> YAMLNode {
        switch node.kind {
        case let .scalar(text, _):
            guard text.contains("${") || text.contains("$${") else { return node }
            return substitute(node, text: text)
        case let .mapping(entries):
            var copy = node
            copy.kind = .mapping(entries.map { YAMLEntry(key: $0.key, keyLocation: $0.keyLocation, value: interpolate($0.value)) })
            return copy
        case let .sequence(items):
            var copy = node
            copy.kind = .sequence(items.map { interpolate($0) })
            return copy
        }
    }

    private enum Piece { case text(String), reference(String, column: Int) }

    private mutating func pieces(of text: String, at location: SourceLocation?) -> [Piece]? {
        var result: [Piece] = []
        var literal = ""
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if scalars[i] == "$", i + 2 < scalars.count, scalars[i + 1] == "$", scalars[i + 2] == "{" {
                literal += "${"
                i += 3
                continue
            }
            if scalars[i] == "$", i + 1 < scalars.count, scalars[i + 1] == "{" {
                guard let close = scalars[(i + 2)...].firstIndex(of: "}") else {
                    diagnostics.error(.interpolationInvalid, "'${' is not closed by '}'; write '$${' for a literal '${'", at: location)
                    return nil
                }
                let name = String(String.UnicodeScalarView(scalars[(i + 2)..<close])).trimmingCharacters(in: .whitespaces)
                if name.isEmpty || name.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                    diagnostics.error(.interpolationInvalid, "'${\(name)}' is not a dotted path such as '${model.hidden}'", at: location)
                    return nil
                }
                if !literal.isEmpty { result.append(.text(literal)); literal = "" }
                result.append(.reference(name, column: i))
                i = close + 1
                continue
            }
            literal.unicodeScalars.append(scalars[i])
            i += 1
        }
        if !literal.isEmpty { result.append(.text(literal)) }
        return result
    }

    private func unresolved(_ node: YAMLNode) -> YAMLNode {
        var copy = node
        copy.provenance.steps.append(.unresolved)
        return copy
    }

    private mutating func substitute(_ node: YAMLNode, text: String) -> YAMLNode {
        guard let parts = pieces(of: text, at: node.location) else { return unresolved(node) }
        if parts.count == 1, case let .reference(name, _) = parts[0] {
            guard var target = lookup(name, at: node.location) else { return unresolved(node) }
            guard charge(target, at: node.location) else { return unresolved(node) }
            let from = target.location
            let wasUnresolved = target.provenance.isUnresolved
            target.provenance = Provenance(location: node.location,
                                           steps: node.provenance.steps + [.interpolated(reference: name, from: from)] + (wasUnresolved ? [.unresolved] : []))
            return target
        }
        var out = ""
        for part in parts {
            switch part {
            case let .text(s): out += s
            case let .reference(name, _):
                guard let target = lookup(name, at: node.location), !target.provenance.isUnresolved else { return unresolved(node) }
                guard let s = target.scalarText else {
                    diagnostics.error(.interpolationInvalid,
                                      "'${\(name)}' is \(target.kindName) and cannot be embedded in a string; use it as the whole value",
                                      at: node.location)
                    return unresolved(node)
                }
                guard s.utf8.count <= byteBudget else {
                    _ = tooLarge(at: node.location)
                    return unresolved(node)
                }
                byteBudget -= s.utf8.count
                out += s
            }
        }
        var copy = node
        copy.kind = .scalar(out, quoted: false)
        return copy
    }

    /// The fully interpolated value at `name`, or nil after reporting why not.
    private mutating func lookup(_ name: String, at location: SourceLocation?) -> YAMLNode? {
        if let done = memo[name] { return done }
        if failed.contains(name) { return nil }
        if let start = inProgress.firstIndex(of: name) {
            let cycle = (inProgress[start...] + [name]).map { "${\($0)}" }.joined(separator: " → ")
            diagnostics.error(.interpolationCycle, "interpolation cycle: \(cycle)", at: location)
            failed.insert(name)
            return nil
        }
        var node = root
        var walked: [String] = []
        for segment in name.split(separator: ".").map(String.init) {
            switch node.kind {
            case let .mapping(entries):
                guard let entry = entries.first(where: { $0.key == segment }) else {
                    var message = "'${\(name)}' refers to '\(segment)', which is not set" +
                        (walked.isEmpty ? "" : " in '\(walked.joined(separator: "."))'")
                    let suggestion = Suggestions.closest(to: segment, in: entries.map(\.key))
                    if let suggestion { message += "; did you mean '\(suggestion)'?" }
                    diagnostics.error(.interpolationUnknown, message, at: location, fixIt: suggestion)
                    failed.insert(name)
                    return nil
                }
                node = entry.value
            case let .sequence(items):
                guard let index = Int(segment), index >= 0, index < items.count else {
                    diagnostics.error(.interpolationUnknown,
                                      "'${\(name)}': '\(walked.joined(separator: "."))' is a list of \(items.count); '\(segment)' is not an index into it",
                                      at: location)
                    failed.insert(name)
                    return nil
                }
                node = items[index]
            case .scalar:
                diagnostics.error(.interpolationUnknown,
                                  "'${\(name)}': '\(walked.joined(separator: "."))' is a scalar and has no '\(segment)'", at: location)
                failed.insert(name)
                return nil
            }
            walked.append(segment)
        }
        inProgress.append(name)
        let resolved = interpolate(node)
        inProgress.removeLast()
        if failed.contains(name) { return nil }
        memo[name] = resolved
        return resolved
    }
}
