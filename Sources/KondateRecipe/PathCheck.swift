import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `validate` treats input paths that do not exist on this machine.
///
/// A recipe written for a cluster names corpus files that a laptop does not have, and it must still
/// validate there. So by default missing inputs are counted in one note; `warn` lists each one as a
/// warning and `error` makes each an error (use it on the machine that will run the recipe).
public enum PathPolicy: String, Sendable, CaseIterable {
    case summary, warn, error
}

/// Finds input paths and globs of a resolved recipe, resolved against the file that wrote them.
public enum PathCheck {
    public struct Input: Sendable {
        /// Dotted path of the value in the recipe.
        public var key: String
        /// As written.
        public var pattern: String
        /// Resolved against the directory of the file that set it.
        public var resolved: String
        public var location: SourceLocation?
    }

    /// Every input path the recipe names.
    public static func inputs(of tree: RNode) -> [Input] {
        var out: [Input] = []
        func add(_ key: String) {
            guard let node = tree.at(key) else { return }
            let nodes = node.array ?? [node]
            for (i, item) in nodes.enumerated() {
                guard var text = item.string else { continue }
                if key.hasSuffix(".from") {
                    guard text.hasPrefix("hf:") else { continue }
                    text = String(text.dropFirst(3))
                }
                out.append(Input(key: node.array == nil ? key : "\(key).\(i)", pattern: text,
                                 resolved: resolve(text, relativeTo: item.location), location: item.location))
            }
        }
        add("tokenizer.path")
        for source in tree.at("corpus.sources")?.entries ?? [] {
            add("corpus.sources.\(source.key).paths")
            for (i, filter) in (source.node["filters"]?.array ?? []).enumerated() where filter["ng_words"] != nil {
                add("corpus.sources.\(source.key).filters.\(i).ng_words.path")
            }
        }
        for stage in tree.at("tune")?.entries ?? [] {
            add("tune.\(stage.key).from")
            for dataset in stage.node["datasets"]?.entries ?? [] { add("tune.\(stage.key).datasets.\(dataset.key).paths") }
        }
        for suite in tree.at("eval")?.entries ?? [] { add("eval.\(suite.key).datasets") }
        return out
    }

    /// Relative paths are relative to the directory of the recipe file that wrote them (the working
    /// directory for `--set` values).
    public static func resolve(_ path: String, relativeTo location: SourceLocation?) -> String {
        if path.hasPrefix("/") { return path }
        guard let file = location?.file, file != "--set" else { return Composer.normalize(path) }
        return Composer.normalize(Composer.join(Composer.directory(of: file), path))
    }

    /// Files matching a path or glob.
    public static func matches(_ pattern: String) -> [String] {
        if !pattern.contains(where: { "*?[".contains($0) }) {
            return FileManager.default.fileExists(atPath: pattern) ? [pattern] : []
        }
        var g = glob_t()
        defer { globfree(&g) }
        guard glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { i in g.gl_pathv[i].map { String(cString: $0) } }
    }

    public static func check(_ tree: RNode, policy: PathPolicy, into diagnostics: inout DiagnosticSet) {
        let missing = inputs(of: tree).filter { matches($0.resolved).isEmpty }
        guard !missing.isEmpty else { return }
        switch policy {
        case .summary:
            let examples = missing.prefix(3).map { "'\($0.pattern)'" }.joined(separator: ", ")
            diagnostics.note(.missingPath,
                             "\(missing.count) input path\(missing.count == 1 ? "" : "s") not found on this machine (\(examples)\(missing.count > 3 ? ", …" : "")); fine for a dry run, use --paths error where the recipe will run",
                             at: nil)
        case .warn, .error:
            for input in missing {
                diagnostics.add(Diagnostic(policy == .error ? .error : .warning, .missingPath,
                                           "\(input.key): '\(input.pattern)' matches no file (resolved to '\(input.resolved)')",
                                           at: input.location))
            }
        }
    }
}

extension Recipe {
    /// A resolved input path as artifacts and manifests name it: relative to the recipe file's directory
    /// when it lies under it, so that outputs do not depend on where the run was started from or where
    /// the checkout lives. Other paths (absolute, or reached through `..` from a base recipe) are kept.
    public func portablePath(_ path: String) -> String {
        let directory = Composer.directory(of: file)
        guard !directory.isEmpty, directory != "." else { return path }
        return path.hasPrefix(directory + "/") ? String(path.dropFirst(directory.count + 1)) : path
    }
}
