import ArgumentParser
import Foundation
import KondateKernels
import KondatePlan
import KondateRecipe

/// Exit statuses: 0 clean, 1 recipe errors (or differences, for `diff`), 2 usage or internal errors.
enum Exit {
    static let recipeErrors: Int32 = 1
    static let usage: Int32 = 2
}

@main
struct Kondate: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "kondate",
        abstract: "A declarative experiment language and native runtime for training large language models.",
        discussion: """
        Exit status: 0 when clean, 1 when the recipe has errors (for diff: when the inputs differ), \
        2 for usage or internal errors.
        """,
        version: version,
        subcommands: [Validate.self, PlanCommand.self, GraphCommand.self, SchemaCommand.self, DiffCommand.self, CorpusCommand.self,
                      TokenizeCommand.self, DatasetCommand.self, RunCommand.self, VerifyCommand.self, CommCheckCommand.self, TunePreviewCommand.self, ScoreCommand.self, GenerateCommand.self, BenchCommand.self, EvalCommand.self, EvalScoreCommand.self,
                      DocsCommand.self, ReportCommand.self, LaunchCommand.self]
    )

    static func main() {
        selectBLASKernels()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch let error as InternalError {
            FileHandle.standardError.write(Data("kondate: internal error: \(error.description)\n".utf8))
            Foundation.exit(Exit.usage)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((message.isEmpty ? "\(error)" : message).utf8 + [0x0A]))
            Foundation.exit(Exit.usage)
        }
    }
}

/// Options shared by the commands that read a recipe.
struct RecipeOptions: ParsableArguments {
    @Argument(help: "The recipe file (YAML).")
    var recipe: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a value: dotted.path=value (repeatable; the value is YAML).", valueName: "path=value"))
    var overrides: [String] = []

    @Option(help: "Input paths missing on this machine: summary (one note), warn, or error.")
    var paths: PathPolicy = .summary

    @Flag(help: "Never colour the output.")
    var noColor = false

    /// The recipe compiled for `engine` (nil: the recipe's default engine).
    func compile(engine: Engine? = nil, mfu: Double? = nil) -> Compilation {
        RecipeCompiler.compile(path: recipe, overrides: overrides.map(Override.init), paths: paths, engine: engine, mfu: mfu)
    }

    func renderer(_ compilation: Compilation) -> DiagnosticRenderer {
        DiagnosticRenderer(sources: compilation.loaded.sources, color: !noColor && DiagnosticRenderer.wantsColor())
    }
}

extension PathPolicy: ExpressibleByArgument {}
extension Engine: ExpressibleByArgument {}

func printError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// When OpenBLAS did not recognise this CPU and loaded its generic kernels, runs this program again
/// with `OPENBLAS_CORETYPE` naming the kernels the CPU supports (the variable is read only when the
/// library loads). A value the user set is always respected; `KONDATE_BLAS_REEXEC` prevents loops.
func selectBLASKernels() {
    let environment = ProcessInfo.processInfo.environment
    guard environment["OPENBLAS_CORETYPE"] == nil, environment["KONDATE_BLAS_REEXEC"] == nil, BLAS.usesGenericKernels,
          let core = BLAS.coreTypeForThisCPU() else { return }
    setenv("OPENBLAS_CORETYPE", core, 1)
    setenv("KONDATE_BLAS_REEXEC", "1", 1)
    let arguments = CommandLine.arguments
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    argv.append(nil)
    execv("/proc/self/exe", &argv)
    // execv returns only on failure: carry on with the generic kernels.
}
