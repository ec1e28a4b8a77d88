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
        let compilation = options.compile()
        guard let graph = compilation.plan?.graph, !compilation.diagnostics.hasErrors else {
            printError(options.renderer(compilation).render(compilation.diagnostics))
            throw ExitCode(Exit.recipeErrors)
        }
        switch format {
        case .dot: print(graph.dot, terminator: "")
        case .mermaid: print(graph.mermaid, terminator: "")
        case .json: print(graph.json.rendered())
        }
    }
}
