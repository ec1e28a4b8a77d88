import ArgumentParser
import KondatePlan
import KondateRecipe
import KondateSupport

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a recipe without running it; report every problem with file:line:col.",
        discussion: """
        The recipe is checked for the engine that will execute it: --engine kondate (Kondate's runtime, \
        `kondate run`) or --engine megatron (`kondate launch --engine megatron`); by default Kondate's runtime \
        for `cpu` devices and Megatron-LM for GPUs. A setting the engine cannot honour is an error at its \
        file:line:col (docs/engines.md lists every key × engine). `kondate run` refuses exactly what \
        `kondate validate --engine kondate` rejects.
        """)

    @OptionGroup var options: RecipeOptions

    @Option(help: "The engine to check for: kondate or megatron (default: kondate for cpu devices, megatron for GPUs).")
    var engine: Engine?

    @Flag(help: "Print diagnostics as JSON on standard output.")
    var json = false

    func run() throws {
        let compilation = options.compile(engine: engine)
        let diagnostics = compilation.diagnostics
        let files = compilation.loaded.files
        if json {
            print(JSON.object([
                ("recipe", .string(options.recipe)),
                ("files", .array(files.map(JSON.string))),
                ("engine", compilation.recipe == nil ? .null : .string(compilation.engine.rawValue)),
                ("valid", .bool(!diagnostics.hasErrors)),
                ("errors", .int(diagnostics.errors.count)),
                ("warnings", .int(diagnostics.warnings.count)),
                ("diagnostics", DiagnosticRenderer.json(diagnostics)),
            ]).rendered())
        } else {
            printError(options.renderer(compilation).render(diagnostics))
            if diagnostics.hasErrors {
                printError("\(options.recipe): \(DiagnosticRenderer.summary(diagnostics))\n")
            } else {
                print("\(options.recipe): valid for \(compilation.engine.command) (\(files.count) file\(files.count == 1 ? "" : "s"); \(DiagnosticRenderer.summary(diagnostics)))")
            }
        }
        if diagnostics.hasErrors { throw ExitCode(Exit.recipeErrors) }
    }
}
