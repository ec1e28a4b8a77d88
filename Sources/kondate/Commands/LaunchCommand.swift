import ArgumentParser
import Foundation
import KondateCorpus
import KondatePlan
import KondateRecipe
import KondateSupport

struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Print (or run) the mpirun line, sbatch script or Megatron-LM launch that trains a recipe on its cluster.",
        discussion: """
        --engine kondate (the default) runs `kondate run RECIPE` on tensor × pipeline × data ranks: \
        --mpirun prints the mpirun line (--execute runs it), --slurm writes an sbatch script that starts the \
        ranks with srun --mpi=pmix. --engine megatron writes a bash script that runs Megatron-LM's \
        pretrain_gpt.py with the flags equivalent to the recipe (torchrun on each node by default, or \
        --slurm, or --mpirun); a recipe value Megatron-LM cannot express is an error at its file:line:col. \
        Arguments after `--` are passed to `kondate run` (or to pretrain_gpt.py). The run directory must be \
        on a filesystem every node shares. docs/launch.md has the flag mapping.
        """)

    @OptionGroup var options: RecipeOptions

    @Option(help: "kondate: `kondate run` on every rank; megatron: Megatron-LM's pretrain_gpt.py.")
    var engine: Engine = .kondate

    @Flag(help: "Launch with mpirun (the default for --engine kondate).")
    var mpirun = false

    @Flag(help: "Write an sbatch script (cluster.partition, cluster.account and cluster.time_limit fill its #SBATCH lines).")
    var slurm = false

    @Option(help: "mpirun hostfile (mpirun launches only).")
    var hostfile: String?

    @Flag(help: "Run the mpirun line instead of printing it (--engine kondate --mpirun); exits with mpirun's status.")
    var execute = false

    @Option(help: "Write the script to this file (made executable) instead of standard output.")
    var output: String?

    @Option(help: "Run directory (default: runs/<recipe name>), made absolute.")
    var runDir: String?

    @Option(help: "Megatron-LM checkout holding pretrain_gpt.py (--engine megatron; default: run from the checkout).")
    var megatronPath: String?

    @Argument(parsing: .postTerminator, help: "Arguments after `--`, passed to `kondate run` (or pretrain_gpt.py).")
    var passthrough: [String] = []

    func validate() throws {
        if mpirun && slurm { throw ValidationError("--mpirun and --slurm exclude each other; choose one") }
        if hostfile != nil && (slurm || (engine == .megatron && !mpirun)) {
            throw ValidationError("--hostfile applies to mpirun launches (--mpirun; Slurm allocates the nodes itself, torchrun takes MASTER_ADDR)")
        }
        if execute && (engine == .megatron || slurm) {
            throw ValidationError("--execute runs the mpirun line of --engine kondate --mpirun; run a generated script with bash (or sbatch for --slurm)")
        }
        if execute && output != nil { throw ValidationError("--execute runs the launch; --output writes it: choose one") }
        if megatronPath != nil && engine != .megatron { throw ValidationError("--megatron-path applies to --engine megatron") }
        if runDir != nil, engine == .kondate,
           passthrough.contains(where: { ["--run-dir", "--out"].contains($0) || $0.hasPrefix("--run-dir=") || $0.hasPrefix("--out=") }) {
            throw ValidationError("the run directory is given twice (--run-dir and after `--`); give it once")
        }
    }

    func run() throws {
        let compilation = options.compile(engine: engine)
        let renderer = options.renderer(compilation)
        var diagnostics = compilation.diagnostics
        guard let recipe = compilation.recipe, !diagnostics.hasErrors else {
            printError(renderer.render(diagnostics))
            printError("\(options.recipe): \(DiagnosticRenderer.summary(diagnostics)); nothing launched (--engine \(engine.rawValue))\n")
            throw ExitCode(Exit.recipeErrors)
        }

        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String { Composer.normalize(path.hasPrefix("/") ? path : cwd + "/" + path) }
        var settings = LaunchSettings(recipeFile: absolute(options.recipe), runDirectory: absolute(runDir ?? "runs/\(recipe.name)"),
                                      workingDirectory: cwd)
        settings.overrides = options.overrides
        settings.kondateExecutable = Self.executablePath()
        settings.hostfile = hostfile.map(absolute)
        settings.runAsRoot = getuid() == 0
        settings.megatronPath = megatronPath.map(absolute)
        settings.extraArguments = passthrough
        if engine == .kondate, let given = Self.runDirectory(in: passthrough) { settings.runDirectory = absolute(given) }

        let text: String
        var notes: [String] = []
        do {
            switch engine {
            case .kondate where slurm:
                text = try Launch.kondateSlurmScript(recipe, settings: settings)
            case .kondate:
                let argv = Launch.kondateMpirun(recipe, settings: settings)
                if execute {
                    if !diagnostics.items.isEmpty { printError(renderer.render(diagnostics)) }
                    try Self.exec(argv)
                }
                text = ShellQuote.join(argv) + "\n"
            case .megatron:
                let mixture = settings.runDirectory + "/corpus/mix/mixture.json"
                if let shares = Mixture.recordedShares(mixture, recipe: recipe, note: { notes.append($0) }) {
                    settings.measuredShares = shares
                    settings.measuredSharesFile = mixture
                }
                let script = try Launch.megatronScript(recipe, settings: settings, mode: slurm ? .slurm : mpirun ? .mpirun : .torchrun)
                diagnostics.append(contentsOf: script.diagnostics)
                notes += script.notes
                text = script.text
            }
        } catch let refused as LaunchRefused {
            diagnostics.append(contentsOf: refused.diagnostics)
            printError(renderer.render(diagnostics))
            printError("\(options.recipe): \(DiagnosticRenderer.summary(diagnostics)); nothing launched (--engine \(engine.rawValue))\n")
            throw ExitCode(Exit.recipeErrors)
        }

        if let output {
            do {
                try AtomicFile.write(Data(text.utf8), to: output)
                if text.hasPrefix("#!") {
                    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: output)
                }
            } catch {
                printError("kondate launch: cannot write \(output): \(error)\n")
                throw ExitCode(Exit.usage)
            }
            notes.append("wrote \(output)")
        } else {
            print(text, terminator: "")
        }
        if !diagnostics.items.isEmpty { printError(renderer.render(diagnostics)) }
        for note in notes { printError("note: \(note)\n") }
    }

    /// The binary the ranks run: this one, by its absolute path.
    static func executablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return Bundle.main.executablePath ?? "kondate"
    }

    /// The run directory named after `--`, if any (`--run-dir D`, `--out D`, `--run-dir=D`, `--out=D`).
    static func runDirectory(in arguments: [String]) -> String? {
        for (i, a) in arguments.enumerated() {
            for flag in ["--run-dir", "--out"] {
                if a == flag, i + 1 < arguments.count { return arguments[i + 1] }
                if a.hasPrefix(flag + "=") { return String(a.dropFirst(flag.count + 1)) }
            }
        }
        return nil
    }

    /// Replaces this process with `argv[0]` found on PATH; returns only by throwing.
    static func exec(_ argv: [String]) throws -> Never {
        printError("+ \(ShellQuote.join(argv))\n")
        fflush(nil)
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArguments.append(nil)
        execvp(argv[0], &cArguments)
        let reason = String(cString: strerror(errno))
        printError("kondate launch: cannot run \(argv[0]): \(reason)\(errno == ENOENT ? " (not on PATH; install Open MPI, e.g. scripts/setup.sh)" : "")\n")
        throw ExitCode(Exit.usage)
    }
}
