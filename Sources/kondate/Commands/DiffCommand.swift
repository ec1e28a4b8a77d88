import ArgumentParser
import Foundation
import KondatePlan
import KondateRecipe
import KondateReport
import KondateRuntime
import KondateSupport

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Diff two recipes, two run directories or two releases.",
        discussion: """
        Two recipes: changed, added and removed values with where each side set them, then plan deltas. \
        Two run directories (or release directories): recipe changes, input files that changed, the stages \
        whose keys differ and the first input that made each differ, artifacts that differ for equal keys \
        (not reproduced), layout and environment, where the loss curves diverge, eval scores side by side, \
        and whether weights are bitwise identical (else the largest |Δ| per tensor). \
        Exit status: 0 when identical, 1 when they differ, 2 when an input has errors.
        """)

    @Argument(help: "The old recipe, run directory or release directory.") var a: String
    @Argument(help: "The new one.") var b: String

    @Flag(help: "Print the diff as JSON.") var json = false
    @Flag(help: "Never colour the output.") var noColor = false

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    func load(_ path: String) throws -> (Compilation, Recipe) {
        if Self.isDirectory(path) {
            printError("kondate diff: '\(path)' is a directory but the other side is a recipe file; compare two recipes or two run directories\n")
            throw ExitCode(Exit.usage)
        }
        // Two recipes are compared as typed and planned; errors of the engine or the plan do not stop a diff.
        let compilation = RecipeCompiler.compile(path: path)
        guard let recipe = compilation.recipe else {
            printError(DiagnosticRenderer(sources: compilation.loaded.sources, color: !noColor && DiagnosticRenderer.wantsColor()).render(compilation.diagnostics))
            printError("\(path): \(DiagnosticRenderer.summary(compilation.diagnostics)); cannot diff\n")
            throw ExitCode(Exit.usage)
        }
        return (compilation, recipe)
    }

    func run() throws {
        if Self.isDirectory(a) && Self.isDirectory(b) {
            let diff: RunDiff
            do { diff = try RunDiff.compare(a, b) } catch {
                printError("kondate diff: \(error)\n")
                throw ExitCode(Exit.usage)
            }
            print(json ? diff.json.rendered() : diff.text, terminator: json ? "\n" : "")
            if !diff.identical { throw ExitCode(1) }
            return
        }
        let (ca, ra) = try load(a)
        let (cb, rb) = try load(b)
        let changes = RecipeDiff.changes(from: ra.tree, to: rb.tree)
        let pa = ca.plan ?? Plan(recipe: ra), pb = cb.plan ?? Plan(recipe: rb)
        let deltas = PlanDelta.rows(pa, pb)
        if json {
            print(JSON.object([
                ("a", .string(a)), ("b", .string(b)),
                ("identical", .bool(changes.isEmpty)),
                ("changes", .array(changes.map(\.json))),
                ("plan", .array(deltas.map { .object([("quantity", .string($0.name)), ("old", $0.oldJSON), ("new", $0.newJSON)]) })),
            ]).rendered())
        } else {
            print(render(changes: changes, deltas: deltas, ra: ra, rb: rb), terminator: "")
        }
        if !changes.isEmpty { throw ExitCode(1) }
    }

    /// Where a side set a value, with the file's directory dropped.
    func origin(_ node: RNode?) -> String {
        guard let node else { return "" }
        if let loc = node.location, loc.file != "--set" {
            return (loc.file.split(separator: "/").last.map(String.init) ?? loc.file) + ":\(loc.line)"
        }
        return node.provenance.summary
    }

    func render(changes: [RecipeChange], deltas: [PlanDelta], ra: Recipe, rb: Recipe) -> String {
        let color = !noColor && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        var out = "\(ra.name) → \(rb.name)\n(\(a) → \(b))\n"
        if changes.isEmpty { return out + "\nThe resolved recipes are identical.\n" }
        out += "\n\(changes.count) change\(changes.count == 1 ? "" : "s")\n"
        var section = ""
        let width = min(44, (changes.map { $0.path.count - $0.section.count }.max() ?? 10) + 2)
        for change in changes {
            let heading = change.path.contains(".") ? change.section : "recipe"
            if heading != section {
                section = heading
                out += "\n" + paint(section, "1") + "\n"
            }
            if heading == "recipe" { section = "recipe" }
            var key = heading == "recipe" ? change.path : String(change.path.dropFirst(section.count))
            if key.hasPrefix(".") { key.removeFirst() }
            if key.isEmpty { key = change.path }
            key = key.count < width ? key + String(repeating: " ", count: width - key.count) : key + " "
            switch change.kind {
            case .changed:
                let old = change.old.map { RecipeDiff.show($0, limit: 60) } ?? "", new = change.new.map { RecipeDiff.show($0, limit: 60) } ?? ""
                out += "  " + paint("~", "33") + " \(key)\(old) → \(new)"
                out += paint("   (\(origin(change.old)) → \(origin(change.new)))", "2") + "\n"
            case .added:
                out += "  " + paint("+", "32") + " \(key)\(change.new.map { RecipeDiff.show($0) } ?? "")"
                out += paint("   (\(origin(change.new)))", "2") + "\n"
            case .removed:
                out += "  " + paint("-", "31") + " \(key)\(change.old.map { RecipeDiff.show($0) } ?? "")"
                out += paint("   (was \(origin(change.old)))", "2") + "\n"
            }
        }
        out += "\n" + paint("plan", "1") + "\n"
        for row in deltas {
            out += "    " + row.name + String(repeating: " ", count: max(1, 22 - row.name.count)) + row.old + " → " + row.new
            if let change = row.relative { out += "  (" + (change >= 0 ? "+" : "") + Format.fixed(change * 100, 1) + "%)" }
            out += "\n"
        }
        return out
    }
}
