import ArgumentParser
import KondatePlan
import KondateRecipe

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "graph", abstract: "Print the execution graph of a recipe.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case dot, mermaid, json }

    @OptionGroup var options: RecipeOptions

    @Option(help: "dot (Graphviz), mermaid or json.")
    var format: Format = .dot

    func run() throws {
        let loaded = options.load()
        guard let recipe = loaded.recipe else {
            printError(options.renderer(loaded).render(loaded.diagnostics))
            throw ExitCode(Exit.recipeErrors)
        }
        let graph = ExecutionGraph(recipe: recipe)
        switch format {
        case .dot: print(graph.dot, terminator: "")
        case .mermaid: print(graph.mermaid, terminator: "")
        case .json: print(graph.json.rendered())
        }
    }
}
