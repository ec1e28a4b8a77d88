import ArgumentParser
import KondatePlan
import KondateRecipe
import KondateSupport

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Dry run: topology, batch arithmetic, parameters, FLOPs, memory per device, time, corpus mix and the execution graph.")

    @OptionGroup var options: RecipeOptions

    @Flag(help: "Print the plan as JSON.")
    var json = false

    @Option(help: "Model FLOPs utilisation for the time estimate (overrides cluster.assumed_mfu), e.g. 0.45.")
    var mfu: Double?

    @Flag(help: "Also print the resolved recipe, each value annotated with where it was set.")
    var resolved = false

    @Option(help: "The engine to check for: kondate or megatron (default: kondate for cpu devices, megatron for GPUs).")
    var engine: Engine?

    func validate() throws {
        if let mfu, !(mfu > 0 && mfu <= 1) { throw ValidationError("--mfu must be in (0, 1], e.g. 0.4") }
    }

    func run() throws {
        let compilation = options.compile(engine: engine, mfu: mfu)
        let renderer = options.renderer(compilation)
        let diagnostics = compilation.diagnostics
        guard let recipe = compilation.recipe, let plan = compilation.plan else {
            printError(renderer.render(diagnostics))
            printError("\(options.recipe): \(DiagnosticRenderer.summary(diagnostics)); no plan\n")
            throw ExitCode(Exit.recipeErrors)
        }
        if json {
            var object = plan.json
            if case var .object(entries) = object {
                entries.insert(("diagnostics", DiagnosticRenderer.json(diagnostics)), at: 2)
                object = .object(entries)
            }
            print(object.rendered())
        } else {
            print(PlanRenderer(plan: plan).render(), terminator: "")
            if resolved {
                print("\nResolved recipe")
                print(ResolvedYAML.render(recipe.tree, root: recipe.file), terminator: "")
            }
        }
        if !diagnostics.items.isEmpty { printError(renderer.render(diagnostics)) }
        if diagnostics.hasErrors { throw ExitCode(Exit.recipeErrors) }
    }
}
