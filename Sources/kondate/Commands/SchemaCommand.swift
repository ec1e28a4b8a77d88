import ArgumentParser
import KondatePlan
import KondateRecipe

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the recipe JSON Schema (draft 2020-12) for editors.",
        discussion: "Save it (kondate schema > kondate.schema.json) and add '# yaml-language-server: $schema=kondate.schema.json' as a recipe's first line.")

    func run() throws {
        print(JSONSchemaExport.schema().rendered())
    }
}

struct DocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docs",
        abstract: "Print generated documentation: the language reference, the diagnostics catalogue, or the keys × engines table.")

    enum Topic: String, ExpressibleByArgument, CaseIterable { case reference, diagnostics, engines }

    @Argument(help: "reference, diagnostics or engines.")
    var topic: Topic

    func run() throws {
        switch topic {
        case .reference: print(ReferenceDoc.markdown(), terminator: "")
        case .diagnostics: print(ReferenceDoc.diagnosticsMarkdown(), terminator: "")
        case .engines: print(EngineSupport.markdown(), terminator: "")
        }
    }
}
