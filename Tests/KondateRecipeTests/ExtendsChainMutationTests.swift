import Foundation
import KondatePlan
import KondateRecipe
import KondateTestSupport
import Testing

/// Every file of an `extends` chain is checked against the schema on its own: a typo in a key or a value
/// of the wrong type anywhere in a parent is an error at the parent's line, even where a later file
/// overrides or unsets the value.
///
/// The mutations are systematic, over every file of every shipped recipe's chain: each key the schema
/// defines (not user-chosen names such as source or stage names, whose "typo" is another valid name)
/// gets `_typo` appended, and each scalar value is replaced by a value of another type (`abc` for a
/// number, `[1, 2]` for a string, a non-word for a choice). `kondate validate` of the child must then
/// report an error at the mutated file and line.
@Suite("extends chains: every file checked on its own")
struct ExtendsChainMutationTests {
    struct Site: CustomStringConvertible {
        var file: String, line: Int, column: Int, length: Int, replacement: String
        var description: String { "\(URL(fileURLWithPath: file).lastPathComponent):\(line):\(column) → \(replacement)" }
    }

    /// A value of another type than `type` accepts.
    static func wrongValue(for type: SchemaType) -> String {
        switch type {
        case .integer, .number: "abc"
        case .boolean: "maybe"
        case .choice: "not_a_choice"
        case .string, .oneOf: "[1, 2]"
        case .object, .dictionary, .array, .tagged: "7"
        }
    }

    /// The sites of one file's document: keys the schema names and scalar values.
    static func sites(in node: YAMLNode, type: SchemaType, lines: [String], root: Bool = false) -> [Site] {
        var out: [Site] = []
        func source(_ location: KondateRecipe.SourceLocation, is text: String) -> Int? {
            guard location.line - 1 < lines.count else { return nil }
            let line = Array(lines[location.line - 1].unicodeScalars)
            let start = location.column - 1
            for candidate in [text, "\"\(text)\"", "'\(text)'"] {
                let c = Array(candidate.unicodeScalars)
                if start + c.count <= line.count, Array(line[start..<(start + c.count)]) == c { return c.count }
            }
            return nil
        }
        func key(_ entry: YAMLEntry) {
            guard let at = entry.keyLocation, let length = source(at, is: entry.key) else { return }
            out.append(Site(file: at.file, line: at.line, column: at.column, length: length, replacement: entry.key + "_typo"))
        }
        switch type {
        case let .object(o):
            for entry in node.entries ?? [] {
                if root, ["extends", "unset"].contains(entry.key) { continue }
                guard !entry.key.hasSuffix("+"), let field = o.field(entry.key) else { continue }
                key(entry)
                out += sites(in: entry.value, type: field.type, lines: lines)
            }
        case let .dictionary(d):
            for entry in node.entries ?? [] { out += sites(in: entry.value, type: d.value, lines: lines) }
        case let .array(a):
            if case let .sequence(items) = node.kind { for item in items { out += sites(in: item, type: a.item, lines: lines) } }
        case let .tagged(t):
            if let entry = node.entries?.first, let variant = t.variant(entry.key) {
                key(entry)
                out += sites(in: entry.value, type: .object(variant), lines: lines)
            }
        case .string, .choice, .integer, .number, .boolean, .oneOf:
            guard case let .scalar(text, _) = node.kind, !node.isNull, !text.contains("\n"), !text.contains("${"),
                  let at = node.location, let length = source(at, is: text) else { break }
            out.append(Site(file: at.file, line: at.line, column: at.column, length: length, replacement: wrongValue(for: type)))
        }
        return out
    }

    static func mutate(_ text: String, _ site: Site) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        var line = lines[site.line - 1]
        line.replaceSubrange((site.column - 1)..<(site.column - 1 + site.length), with: Array(site.replacement.unicodeScalars))
        lines[site.line - 1] = line
        return lines.map { String(String.UnicodeScalarView($0)) }.joined(separator: "\n")
    }

    @Test func everyMutationOfEveryChainFileIsAnErrorAtItsLine() throws {
        // A private copy of the shipped recipes (their relative input paths need not exist).
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kondate-chains-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let shipped = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("recipes").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        for name in shipped {
            try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("recipes/\(name)"), to: dir.appendingPathComponent(name))
        }
        var mutations = 0, parentMutations = 0
        var missed: [String] = []
        for child in shipped {
            let childPath = dir.appendingPathComponent(child).path
            let clean = RecipeCompiler.compile(path: childPath)
            #expect(!clean.diagnostics.hasErrors, "\(child) does not validate unmutated")
            let chain = clean.loaded.files
            guard chain.count > 1 else { continue }   // recipes that extend nothing are the parents' own test
            for file in chain {
                let original = try String(contentsOfFile: file, encoding: .utf8)
                var diagnostics = DiagnosticSet()
                let document = try #require(YAMLLoader().load(data: Data(original.utf8), file: file, into: &diagnostics))
                let lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                for site in Self.sites(in: document, type: RecipeSchema.root, lines: lines, root: true) {
                    try Data(Self.mutate(original, site).utf8).write(to: URL(fileURLWithPath: file))
                    let result = RecipeCompiler.compile(path: childPath)
                    mutations += 1
                    if file != chain[0] { parentMutations += 1 }
                    let hit = result.diagnostics.errors.contains { $0.location?.file == file && $0.location?.line == site.line }
                    if !hit { missed.append("\(child): \(site): " + result.diagnostics.errors.prefix(2).map { "\($0.location?.description ?? "-") \($0.message)" }.joined(separator: "; ")) }
                }
                try Data(original.utf8).write(to: URL(fileURLWithPath: file))
            }
        }
        let shown = missed.prefix(20).joined(separator: "\n")
        #expect(missed.isEmpty, "\(missed.count) of \(mutations) mutations not reported at their line:\n\(shown)")
        // The chains are long enough for this to mean something.
        #expect(parentMutations > 500, "only \(parentMutations) mutations in parent files")
        print("extends chains: \(mutations) mutations (\(parentMutations) in parents), \(missed.count) missed")
    }
}
