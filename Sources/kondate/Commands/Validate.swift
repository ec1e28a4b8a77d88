import ArgumentParser
import KondatePlan
import KondateRecipe
import KondateSupport

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a recipe without running it; report every problem with file:line:col.")

    @OptionGroup var options: RecipeOptions

    @Flag(help: "Print diagnostics as JSON on standard output.")
    var json = false

    func run() throws {
        let loaded = options.load()
        var diagnostics = loaded.diagnostics
        if let recipe = loaded.recipe { diagnostics.append(contentsOf: Plan(recipe: recipe).diagnostics) }
        if json {
            print(JSON.object([
                ("recipe", .string(options.recipe)),
                ("files", .array(loaded.files.map(JSON.string))),
                ("valid", .bool(!diagnostics.hasErrors)),
                ("errors", .int(diagnostics.errors.count)),
                ("warnings", .int(diagnostics.warnings.count)),
                ("diagnostics", DiagnosticRenderer.json(diagnostics)),
            ]).rendered())
        } else {
            printError(options.renderer(loaded).render(diagnostics))
            let files = loaded.files.count
            if diagnostics.hasErrors {
                printError("\(options.recipe): \(DiagnosticRenderer.summary(diagnostics))\n")
            } else {
                print("\(options.recipe): valid (\(files) file\(files == 1 ? "" : "s"); \(DiagnosticRenderer.summary(diagnostics)))")
            }
        }
        if diagnostics.hasErrors { throw ExitCode(Exit.recipeErrors) }
    }
}
