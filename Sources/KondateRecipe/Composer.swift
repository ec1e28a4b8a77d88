import Foundation
import KondateSupport

/// One `--set dotted.path=value` override as typed on the command line.
public struct Override: Sendable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
}

/// Composition: `extends` (deep merge), `unset`, `key+` list appends, `--set` overrides.
///
/// Merge rules (docs/language.md, "Composition"):
/// - parents are merged in the order listed, then the file's own keys on top;
/// - mappings merge key by key, recursively; anything else (scalars, lists) is replaced whole;
/// - `key+: [...]` appends to the inherited list instead of replacing it;
/// - `unset: [dotted.path, ...]` deletes inherited keys before the file's own keys apply;
/// - `--set a.b=v` overrides apply last, in command-line order.
public struct Composer {
    public var diagnostics = DiagnosticSet()
    public var sources = SourceStore()
    /// Every file read, in order (the root first), with its display path.
    public private(set) var files: [String] = []
    /// Each file's own keys (without `extends` and `unset`), as written, for the per-file schema check.
    public private(set) var documents: [(file: String, node: YAMLNode)] = []
    private let loader = YAMLLoader()
    /// Each file composed so far (with its own parents), by identity: a file that several parents
    /// extend is read and composed once.
    private var composed: [String: YAMLNode] = [:]
    private var failedFiles: Set<String> = []
    private var reportedTooMany = false

    public init() {}

    /// Loads `path` with everything it extends, then applies `overrides`.
    public mutating func compose(path: String, overrides: [Override] = []) -> YAMLNode? {
        let display = Self.normalize(path)
        guard var root = loadFile(display: display, chain: [], referencedAt: nil) else { return nil }
        if !overrides.isEmpty {
            sources.register(file: "--set", lines: overrides.map(\.text))
            for (i, override) in overrides.enumerated() {
                if let patch = parseOverride(override.text, index: i + 1), checkOverridePath(patch, in: root) {
                    root = merge(root, patch)
                }
            }
        }
        return root
    }

    // MARK: - Files

    private mutating func loadFile(display: String, chain: [String], referencedAt: SourceLocation?) -> YAMLNode? {
        let identity = Self.identity(of: display)
        if let cycleStart = chain.firstIndex(of: identity) {
            let names = (chain[cycleStart...].map { Self.lastComponent($0) } + [Self.lastComponent(identity)]).joined(separator: " → ")
            diagnostics.error(.extendsCycle, "'extends' forms a cycle: \(names)", at: referencedAt)
            return nil
        }
        if let done = composed[identity] { return done }
        if failedFiles.contains(identity) { return nil }
        guard files.count < Limits.extendsFiles else {
            if !reportedTooMany {
                reportedTooMany = true
                diagnostics.error(.extendsTooMany, "the recipe extends more than \(Limits.extendsFiles) files in all; '\(display)' is one too many " +
                                  "(KONDATE_MAX_EXTENDS_FILES raises the limit for one command)", at: referencedAt)
            }
            return nil
        }
        let result = readAndCompose(display: display, identity: identity, chain: chain, referencedAt: referencedAt)
        if let result { composed[identity] = result } else { failedFiles.insert(identity) }
        return result
    }

    private mutating func readAndCompose(display: String, identity: String, chain: [String], referencedAt: SourceLocation?) -> YAMLNode? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: display, isDirectory: &isDirectory) else {
            if referencedAt == nil {
                diagnostics.error(.fileNotFound, "no such recipe file: \(display)", at: nil)
            } else {
                diagnostics.error(.extendsInvalid, "extended file '\(display)' does not exist", at: referencedAt,
                                  notes: [DiagnosticNote("paths in 'extends' are relative to the file that names them")])
            }
            return nil
        }
        // An empty file is read as empty data: Foundation's read of an empty file leaks a page (found by
        // scripts/fuzz.sh recipe), and an empty recipe is reported as one below.
        let size = (try? FileManager.default.attributesOfItem(atPath: display))?[.size] as? Int
        guard !isDirectory.boolValue, let data = size == 0 ? Data() : FileManager.default.contents(atPath: display) else {
            diagnostics.error(.fileUnreadable, "cannot read '\(display)'" + (isDirectory.boolValue ? ": it is a directory" : ""),
                              at: referencedAt)
            return nil
        }
        files.append(display)
        if !data.contains(0), let text = String(data: data, encoding: .utf8) { sources.register(file: display, text: text) }
        guard let document = loader.load(data: data, file: display, into: &diagnostics) else { return nil }
        guard var entries = document.entries else {
            diagnostics.error(.typeMismatch, "a recipe must be a mapping of keys to values, not \(document.kindName)",
                              at: document.location)
            return nil
        }

        // Parents
        var base = YAMLNode(.mapping([]), provenance: document.provenance)
        var hasBase = false
        if let extendsIndex = entries.firstIndex(where: { $0.key == "extends" }) {
            let extendsEntry = entries.remove(at: extendsIndex)
            var parentFailed = false
            var listed: [String: SourceLocation?] = [:]
            for (parentPath, at) in parentPaths(extendsEntry) {
                let parentDisplay = Self.normalize(Self.join(Self.directory(of: display), parentPath))
                if let first = listed[Self.identity(of: parentDisplay)] {
                    diagnostics.error(.extendsTooMany, "'\(parentPath)' is listed twice in 'extends'; remove one", at: at,
                                      notes: [DiagnosticNote("listed first here", at: first)])
                    parentFailed = true
                    continue
                }
                listed[Self.identity(of: parentDisplay)] = at
                guard let parent = loadFile(display: parentDisplay, chain: chain + [identity], referencedAt: at) else {
                    parentFailed = true
                    continue
                }
                let inherited = parent.mapProvenance { $0.steps.append(.inheritedBy(file: Self.lastComponent(display))) }
                base = hasBase ? merge(base, inherited) : inherited
                hasBase = true
            }
            // Without its parents the file cannot be checked meaningfully: stop at the extends error.
            if parentFailed { return nil }
        }
        // Deletions
        if let unsetIndex = entries.firstIndex(where: { $0.key == "unset" }) {
            let unsetEntry = entries.remove(at: unsetIndex)
            applyUnset(unsetEntry, to: &base, hasBase: hasBase)
        }
        let own = YAMLNode(.mapping(entries), provenance: document.provenance)
        documents.append((display, own))
        return hasBase ? merge(base, own) : resolveAppends(own)
    }

    private mutating func parentPaths(_ entry: YAMLEntry) -> [(String, SourceLocation?)] {
        switch entry.value.kind {
        case let .scalar(text, _) where !entry.value.isNull && !text.isEmpty:
            return [(text, entry.value.location)]
        case let .sequence(items):
            var out: [(String, SourceLocation?)] = []
            for item in items {
                if let text = item.scalarText, !item.isNull, !text.isEmpty {
                    out.append((text, item.location))
                } else {
                    diagnostics.error(.extendsInvalid, "each 'extends' entry must be a path to a recipe file", at: item.location)
                }
            }
            return out
        default:
            diagnostics.error(.extendsInvalid, "'extends' must be a path or a list of paths, not \(entry.value.kindName)",
                              at: entry.value.location ?? entry.keyLocation)
            return []
        }
    }

    private mutating func applyUnset(_ entry: YAMLEntry, to base: inout YAMLNode, hasBase: Bool) {
        let items: [YAMLNode]
        switch entry.value.kind {
        case .sequence(let list): items = list
        case .scalar where !entry.value.isNull: items = [entry.value]
        default:
            diagnostics.error(.unsetInvalid, "'unset' must be a list of dotted paths such as 'model.dropout'",
                              at: entry.value.location ?? entry.keyLocation)
            return
        }
        if !hasBase {
            diagnostics.error(.unsetInvalid, "'unset' removes inherited keys, but this file extends nothing", at: entry.keyLocation)
            return
        }
        for item in items {
            guard let text = item.scalarText, !item.isNull else {
                diagnostics.error(.unsetInvalid, "each 'unset' entry must be a dotted path such as 'model.dropout'", at: item.location)
                continue
            }
            let path = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if path.contains(where: \.isEmpty) {
                diagnostics.error(.unsetInvalid, "'\(text)' is not a dotted path", at: item.location)
                continue
            }
            if let failure = Self.remove(path: path[...], from: &base) {
                var message = "cannot unset '\(text)': the inherited recipe has no '\(failure.missing)'"
                if let parent = failure.parentPath, !parent.isEmpty { message += " in '\(parent)'" }
                let suggestion = Suggestions.closest(to: failure.missing, in: failure.candidates)
                if let suggestion { message += "; did you mean '\(suggestion)'?" }
                diagnostics.error(.unsetInvalid, message, at: item.location, fixIt: suggestion)
            }
        }
    }

    private struct RemoveFailure { var missing: String; var parentPath: String?; var candidates: [String] }

    private static func remove(path: ArraySlice<String>, from node: inout YAMLNode, walked: [String] = []) -> RemoveFailure? {
        guard let key = path.first else { return nil }
        guard var entries = node.entries else {
            return RemoveFailure(missing: key, parentPath: walked.joined(separator: "."), candidates: [])
        }
        guard let index = entries.firstIndex(where: { $0.key == key }) else {
            return RemoveFailure(missing: key, parentPath: walked.joined(separator: "."), candidates: entries.map(\.key))
        }
        if path.count == 1 {
            entries.remove(at: index)
        } else {
            var child = entries[index].value
            if let failure = remove(path: path.dropFirst(), from: &child, walked: walked + [key]) { return failure }
            entries[index].value = child
        }
        node.kind = .mapping(entries)
        return nil
    }

    // MARK: - Merge

    /// Deep-merges `over` onto `base` (see the type's documentation for the rules).
    public mutating func merge(_ base: YAMLNode, _ over: YAMLNode) -> YAMLNode {
        guard var baseEntries = base.entries, let overEntries = over.entries else {
            var replacement = resolveAppends(over)
            if let old = base.location, old != over.location { replacement.provenance.steps.append(.replaced(old)) }
            return replacement
        }
        for entry in overEntries {
            var key = entry.key
            let append = key.count > 1 && key.hasSuffix("+")
            if append { key.removeLast() }
            if let i = baseEntries.firstIndex(where: { $0.key == key }) {
                let old = baseEntries[i].value
                let merged: YAMLNode
                if append {
                    merged = appendList(old, entry)
                } else {
                    merged = merge(old, entry.value)
                }
                baseEntries[i] = YAMLEntry(key: key, keyLocation: entry.keyLocation ?? baseEntries[i].keyLocation, value: merged)
            } else {
                if append, case .scalar = entry.value.kind {
                    diagnostics.error(.appendInvalid, "'\(entry.key)' appends to a list, so its value must be a list",
                                      at: entry.value.location ?? entry.keyLocation)
                }
                baseEntries.append(YAMLEntry(key: key, keyLocation: entry.keyLocation, value: resolveAppends(entry.value)))
            }
        }
        var result = base
        result.kind = .mapping(baseEntries)
        if over.location != nil { result.provenance = over.provenance }
        return result
    }

    private mutating func appendList(_ old: YAMLNode, _ entry: YAMLEntry) -> YAMLNode {
        guard case let .sequence(oldItems) = old.kind else {
            diagnostics.error(.appendInvalid, "'\(entry.key)' appends to a list, but the inherited '\(entry.key.dropLast())' is \(old.kindName)",
                              at: entry.keyLocation, notes: old.location.map { [DiagnosticNote("inherited value set here", at: $0)] } ?? [])
            return old
        }
        guard case let .sequence(newItems) = entry.value.kind else {
            diagnostics.error(.appendInvalid, "'\(entry.key)' appends to a list, so its value must be a list",
                              at: entry.value.location ?? entry.keyLocation)
            return old
        }
        var result = entry.value
        result.kind = .sequence(oldItems + newItems.map { resolveAppends($0) })
        return result
    }

    /// A mapping with no inherited counterpart: `key+` simply sets `key`.
    private mutating func resolveAppends(_ node: YAMLNode) -> YAMLNode {
        guard node.entries != nil else { return node }
        return merge(YAMLNode(.mapping([]), provenance: node.provenance), node)
    }

    // MARK: - Overrides

    /// An override may create mappings but not walk into a scalar or a list.
    private mutating func checkOverridePath(_ patch: YAMLNode, in root: YAMLNode) -> Bool {
        var target: YAMLNode? = root
        var node = patch
        var walked: [String] = []
        while let entry = node.entries?.first, node.entries?.count == 1 {
            var key = entry.key
            if key.hasSuffix("+") { key.removeLast() }
            guard let current = target else { return true }
            guard current.entries != nil else {
                diagnostics.error(.overrideInvalid,
                                  "--set cannot set '\(entry.key)' inside '\(walked.joined(separator: "."))', which is \(current.kindName)",
                                  at: entry.keyLocation, notes: current.location.map { [DiagnosticNote("'\(walked.joined(separator: "."))' is set here", at: $0)] } ?? [])
                return false
            }
            walked.append(key)
            target = current[key]
            if case .mapping = entry.value.kind { node = entry.value } else { break }
        }
        return true
    }

    private mutating func parseOverride(_ text: String, index: Int) -> YAMLNode? {
        let at = { (column: Int) in SourceLocation(file: "--set", line: index, column: column) }
        guard let eq = text.firstIndex(of: "=") else {
            diagnostics.error(.overrideInvalid, "--set needs the form 'dotted.path=value', e.g. --set model.hidden=4096", at: at(1))
            return nil
        }
        let pathText = String(text[..<eq])
        let valueText = String(text[text.index(after: eq)...])
        let segments = pathText.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var column = 1
        var keyColumns: [Int] = []
        for segment in segments {
            keyColumns.append(column)
            if segment.isEmpty || segment.contains(where: { $0.isWhitespace }) {
                diagnostics.error(.overrideInvalid, "'\(pathText)' is not a dotted path (empty or blank segment)", at: at(column))
                return nil
            }
            column += segment.unicodeScalars.count + 1
        }
        let valueLocation = at(pathText.unicodeScalars.count + 2)
        guard let value = loader.loadFragment(valueText, location: valueLocation, into: &diagnostics) else { return nil }
        var node = value
        for (segment, col) in zip(segments, keyColumns).reversed() {
            node = YAMLNode(.mapping([YAMLEntry(key: segment, keyLocation: at(col), value: node)]), at: at(col))
        }
        return node
    }

    // MARK: - Paths

    /// Lexically normalised path ("a/./b/../c" → "a/c"), kept relative when given relative.
    public static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            if part == "..", absolute { continue }
            parts.append(String(part))
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func join(_ directory: String, _ path: String) -> String {
        if path.hasPrefix("/") || directory == "." { return path }
        return directory + "/" + path
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// Absolute, symlink-resolved path for cycle detection.
    static func identity(of path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}
