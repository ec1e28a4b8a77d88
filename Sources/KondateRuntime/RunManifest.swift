import Foundation
import KondateKernels
import KondatePlan
import KondateRecipe
import KondateSupport

/// `manifest.json` of a run directory: everything that made the run, in canonical JSON (keys in byte
/// order), so that two runs can be compared field by field (`kondate diff`) and re-executed
/// (`kondate verify`).
///
/// - `recipe`: name, file (as given on the command line, relative to `cwd`), SHA-256 of the canonical
///   resolved recipe, the resolved recipe itself, and the `--set` overrides; `command` and `cwd`;
/// - `kondate`: version and the git commit of the source it was built from (when that checkout exists);
/// - `environment`: OS, CPU, cores, BLAS library and kernels, MPI (library and ranks under mpirun),
///   thread count;
/// - `layout`: the parallel layout and ranks; `seed`;
/// - `inputs`: every input file with its stage, path, name (relative to the recipe's directory), size and
///   SHA-256 (see `FileFingerprint`);
/// - `stages`: for each stage its key, status (`ran`, `cached`, `not run`), directory, outputs with
///   sizes and SHA-256, and its summary (losses, tokens, scores);
/// - `metrics` and `eval`: the headline numbers, copied from the stage summaries.
public struct RunManifest {
    public var recipe: Recipe
    public var directory: String
    public var options: RunPipeline.Options
    public var stages: [RunPipeline.StageResult]

    public var path: String { directory + "/manifest.json" }

    public static let format = "kondate-run-manifest/1"

    public var json: JSON {
        // `name`: the path relative to the recipe's directory, the same wherever the run was made from.
        func name(_ path: String) -> String { recipe.portablePath(path) }
        var inputs = [JSON]()
        for stage in stages {
            for file in stage.plan.files {
                inputs.append(.object([("stage", .string(stage.plan.id)), ("name", .string(name(file.path)))] + (file.json.objectEntries ?? [])))
            }
        }
        let stageJSON: [JSON] = stages.map { s in
            .object([("id", .string(s.plan.id)), ("kind", .string(s.plan.kind.rawValue)), ("key", .string(s.plan.key)),
                     ("version", .int(s.plan.version)), ("config", s.plan.config),
                     ("status", .string(s.status.rawValue)), ("directory", .string(s.plan.directory)),
                     ("inputs", .array(s.plan.inputs.map(JSON.string))),
                     ("outputs", .array((s.record?.outputs ?? []).map(\.json))),
                     ("summary", s.record?.summary ?? .null), ("note", s.note.map(JSON.string) ?? .null)])
        }
        var metrics = [(String, JSON)]()
        var evalScores = [(String, JSON)]()
        for s in stages {
            guard let summary = s.record?.summary else { continue }
            switch s.plan.kind {
            case .pretrain, .tune:
                let keys = ["steps", "tokens", "trained_tokens", "first_loss", "final_loss", "held_out_loss", "examples"]
                metrics.append((s.plan.id, .object(keys.compactMap { k in summary[k].map { (k, $0) } })))
            case .eval:
                evalScores.append((s.plan.id, summary["scores"] ?? .null))
            case .corpusPrepare, .tokenizerTrain, .tokenizerLoad, .corpusTokenize, .corpusMix, .release:
                break
            }
        }
        let tokenizer = stages.first { $0.plan.id == "tokenizer" }
        let tokenizerFile = tokenizer?.record?.outputs.first { $0.path.hasPrefix("tokenizer.") } ?? tokenizer?.plan.files.first.map {
            OutputFile(path: $0.path, size: $0.size, sha256: $0.sha256, isLog: false)
        }
        return JSON.object([
            ("format", .string(Self.format)),
            ("kondate", .object([("version", .string(options.kondateVersion)), ("git_commit", options.kondateCommit.map(JSON.string) ?? .null)])),
            ("recipe", .object([("name", .string(recipe.name)), ("file", .string(recipe.file)), ("sha256", .string(recipe.tree.json.canonicalHash)),
                                ("resolved", recipe.tree.json), ("overrides", .array(options.overrides.map(JSON.string)))])),
            ("command", .array(options.command.map(JSON.string))),
            ("cwd", .string(FileManager.default.currentDirectoryPath)),
            ("seed", .int(recipe.seed)),
            ("environment", Self.environment(threads: options.threads, mpi: options.mpi)),
            ("layout", Self.layout(options)),
            ("inputs", .array(inputs)),
            ("tokenizer", tokenizerFile.map { .object([("file", .string($0.path)), ("size", .int($0.size)), ("sha256", .string($0.sha256))]) } ?? .null),
            ("stages", .array(stageJSON)),
            ("metrics", .object(metrics)),
            ("eval", .object(evalScores)),
        ]).canonical
    }

    /// Ranks, tensor × pipeline × data sizes, ZeRO and threads per rank (a single process: all 1).
    static func layout(_ options: RunPipeline.Options) -> JSON {
        var entries: [(String, JSON)] = [("ranks", .int(1)), ("tensor", .int(1)), ("pipeline", .int(1)), ("data", .int(1)), ("zero", .bool(false)), ("zero_stage", .int(0))]
        if case let .object(given)? = options.layout { entries = given }
        return .object(entries + [("threads", .int(options.threads))])
    }

    public func write() throws {
        try AtomicFile.write(Data((json.rendered() + "\n").utf8), to: path)
    }

    /// The machine: OS, kernel, CPU model, cores, memory, BLAS build and kernels, oneDNN and the bf16
    /// route, MPI.
    public static func environment(threads: Int, mpi: JSON? = nil) -> JSON {
        func firstLine(_ file: String, prefix: String) -> String? {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
            return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { line in
                String(line.dropFirst(prefix.count)).trimmingCharacters(in: CharacterSet(charactersIn: " \t:=\""))
            }
        }
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return .object([
            ("os", .string(firstLine("/etc/os-release", prefix: "PRETTY_NAME") ?? field(name.sysname))),
            ("kernel", .string(field(name.sysname) + " " + field(name.release))),
            ("machine", .string(field(name.machine))),
            ("cpu", .string(firstLine("/proc/cpuinfo", prefix: "model name") ?? "unknown")),
            ("cores", .int(ProcessInfo.processInfo.activeProcessorCount)),
            ("memory_bytes", .int(Int(ProcessInfo.processInfo.physicalMemory))),
            ("blas", .object([("library", .string(BLAS.configuration)), ("kernels", .string(BLAS.coreName))])),
            // Where bf16 matmuls run on this machine (bf16 stages' results depend on it; fp32 ones do not).
            ("onednn", .object([("version", .string(OneDNN.version)), ("isa", .string(OneDNN.isa)),
                                ("bf16_route", .string(Kernels.bf16Route.rawValue))])),
            ("mpi", mpi ?? .string("not used (single process)")),
            ("threads", .int(threads)),
        ])
    }
}

extension JSON {
    /// The entries of an object, else nil.
    var objectEntries: [(String, JSON)]? { if case let .object(e) = self { e } else { nil } }
}
