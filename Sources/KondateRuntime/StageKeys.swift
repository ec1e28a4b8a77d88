import Foundation
import KondateCorpus
import KondateData
import KondatePlan
import KondateRecipe
import KondateSupport

/// An input file as a stage key sees it: its content, not its name or time stamp.
///
/// Files up to `FileFingerprint.fullHashLimit` (64 MiB) are hashed whole (`sha256`). Larger files get a
/// sampled fingerprint (`sha256-sampled`): SHA-256 of the size and of three 4 MiB windows (start,
/// middle, end). It changes with any edit that moves bytes or changes the length, and costs 12 MiB of
/// reading per file whatever its size; an edit that keeps the length and touches none of the windows
/// goes unseen. `kondate run --full-hash` hashes every file whole.
public struct FileFingerprint: Sendable, Equatable {
    public var path: String
    public var size: Int
    public var sha256: String
    public var method: String

    public static let fullHashLimit = 64 << 20
    static let window = 4 << 20

    public static func of(_ path: String, full: Bool = false) throws -> FileFingerprint {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        if full || size <= fullHashLimit {
            return FileFingerprint(path: path, size: size, sha256: try SHA256.hex(file: path), method: "sha256")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw RuntimeError("cannot read \(path)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        hasher.update(Array(String(size).utf8))
        for offset in [0, size / 2 - window / 2, size - window] {
            try handle.seek(toOffset: UInt64(offset))
            hasher.update(try handle.read(upToCount: window) ?? Data())
        }
        return FileFingerprint(path: path, size: size, sha256: hasher.finalize(), method: "sha256-sampled")
    }

    public var json: JSON {
        .object([("path", .string(path)), ("size", .int(size)), ("sha256", .string(sha256)), ("method", .string(method))])
    }

    public init(path: String, size: Int, sha256: String, method: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.method = method
    }

    public init?(json: JSON) {
        guard let path = json["path"]?.stringValue, let size = json["size"]?.intValue, let sha = json["sha256"]?.stringValue else { return nil }
        self.init(path: path, size: size, sha256: sha, method: json["method"]?.stringValue ?? "sha256")
    }
}

/// One stage of a run with its identity: what it computes from (the recipe keys it reads, the stages
/// it reads from, the files it reads) and the key that summarises all of that.
public struct StagePlan: Sendable {
    public var id: String
    public var kind: String
    /// Where its outputs appear, relative to the run directory.
    public var directory: String
    /// The stage implementation's version: raised when the same inputs would give different outputs.
    public var version: Int
    /// The recipe values it reads, as canonical JSON.
    public var config: JSON
    public var inputs: [String]
    public var files: [FileFingerprint]
    /// SHA-256 (hex) of kind, version, config, the inputs' keys and the files' contents.
    public var key: String
    /// Why the key is what it is, field by field, for `kondate diff`.
    public var keyMaterial: JSON
}

/// Computes every stage's key from the resolved recipe, without running anything.
///
/// A stage's key hashes (canonical JSON): the stage id and kind, its implementation version, the
/// recipe values it reads, the keys of the stages it reads from, and the fingerprints (size and
/// SHA-256, not paths) of the files it reads. Same key ⇒ same inputs ⇒ (runs being deterministic) same
/// outputs, so a stage whose key has finished outputs is skipped. What each stage reads:
///
/// | stage | recipe values | files |
/// |---|---|---|
/// | `corpus.prepare.<s>` | `corpus.sources.<s>` without `weight`/`budget`/`max_epochs`, `corpus.on_error`, `seed` | the source's files |
/// | `tokenizer` | `tokenizer`, `seed` | `tokenizer.path` when loaded |
/// | `corpus.tokenize.<s>` | `tokenizer.special_tokens`, `model.vocab_size` | — |
/// | `corpus.mix` | `corpus.held_out`, each source's `weight`/`budget`/`max_epochs`, `model.seq_len`, `pretrain.steps`, `pretrain.global_batch`, `seed` | — |
/// | `pretrain` | `model`, `pretrain` except `checkpoint`, `tokenizer.special_tokens`, `seed` | — |
/// | `tune.<t>` | `tune.<t>` except `checkpoint`, its recipe template, `tokenizer.special_tokens`, `pretrain.nan_policy`, `seed` | the datasets' files; `hf:` model files |
/// | `eval.<e>.<c>` | `eval.<e>`, its recipe template, `tokenizer.special_tokens`, `seed` | the datasets' files |
/// | `release` | `release`, `name` | — |
///
/// The thread count is not part of any key: results are bitwise identical for any thread count.
/// Nor is the layout (`parallel`: tensor, pipeline and data sizes, ZeRO, micro-batch, recomputation):
/// it decides how the same computation is split over ranks, whose results agree to float rounding
/// (bitwise for the same layout). The manifest records the layout, `kondate diff` shows it, and a
/// pretraining stage can resume from a checkpoint written at another layout.
public enum StageKeys {
    /// Implementation versions per stage kind.
    public static let versions: [String: Int] = [
        "corpus.prepare": 2, "tokenizer.train": 1, "tokenizer.load": 1, "corpus.tokenize": 2, "corpus.mix": 1,
        "pretrain": 2, "tune": 2, "eval": 2, "release": 1,
    ]

    public static func plan(recipe: Recipe, fullHash: Bool = false) throws -> [StagePlan] {
        let graph = ExecutionGraph(recipe: recipe)
        let tree = recipe.tree
        func value(_ path: String) -> JSON { tree.at(path)?.json ?? .null }
        func files(at path: String) throws -> [FileFingerprint] {
            do {
                return try DocumentReader.expand(recipe: recipe, at: path).map { try FileFingerprint.of($0, full: fullHash) }
            } catch let e as CorpusError {
                throw RuntimeError(e.message, at: e.location)
            }
        }
        func without(_ json: JSON, _ key: String) -> JSON {
            if case let .object(entries) = json { return .object(entries.filter { $0.0 != key }) }
            return json
        }
        var keys = [String: String]()
        var plans = [StagePlan]()
        for stage in graph.stages {
            var config = [(String, JSON)]()
            var inputFiles = [FileFingerprint]()
            var directory = stage.id
            switch stage.kind {
            case "corpus.prepare":
                let name = String(stage.id.dropFirst("corpus.prepare.".count))
                var source = value("corpus.sources.\(name)")
                if case let .object(entries) = source { source = .object(entries.filter { !["weight", "budget", "max_epochs"].contains($0.0) }) }
                config = [("source", source), ("on_error", value("corpus.on_error")), ("seed", value("seed"))]
                inputFiles = try files(at: "corpus.sources.\(name).paths")
                directory = CorpusRun.stageDirectory(stage.id)!
            case "tokenizer.train", "tokenizer.load":
                config = [("tokenizer", value("tokenizer")), ("seed", value("seed"))]
                if let declared = recipe.tokenizer?.path {
                    let file = PathCheck.resolve(declared, relativeTo: tree.at("tokenizer.path")?.location)
                    guard let resolved = TokenizerLoader.file(at: file) else {
                        throw RuntimeError("tokenizer.path '\(declared)' is not a tokenizer file or a directory holding one", at: tree.at("tokenizer.path")?.location)
                    }
                    inputFiles = [try FileFingerprint.of(resolved, full: true)]
                }
                directory = "tokenizer"
            case "corpus.tokenize":
                config = [("special_tokens", value("tokenizer.special_tokens")), ("vocab_size", value("model.vocab_size"))]
                directory = CorpusRun.stageDirectory(stage.id)!
            case "corpus.mix":
                let sources: [(String, JSON)] = (tree.at("corpus.sources")?.entries ?? []).map { e in
                    (e.key, .object(["weight", "budget", "max_epochs"].map { ($0, value("corpus.sources.\(e.key).\($0)")) }))
                }
                config = [("held_out", value("corpus.held_out")), ("sources", .object(sources)), ("seq_len", value("model.seq_len")),
                          ("steps", value("pretrain.steps")), ("global_batch", value("pretrain.global_batch")), ("seed", value("seed"))]
                directory = "corpus/mix"
            case "pretrain":
                config = [("model", value("model")), ("pretrain", without(value("pretrain"), "checkpoint")),
                          ("special_tokens", value("tokenizer.special_tokens")), ("seed", value("seed"))]
                directory = "pretrain"
            case "tune":
                let name = String(stage.id.dropFirst("tune.".count))
                let template = recipe.tune.first { $0.name == name }?.template ?? ""
                config = [("stage", without(value("tune.\(name)"), "checkpoint")), ("template", value("templates.\(template)")),
                          ("special_tokens", value("tokenizer.special_tokens")), ("nan_policy", value("pretrain.nan_policy")), ("seed", value("seed"))]
                for dataset in tree.at("tune.\(name).datasets")?.entries ?? [] {
                    inputFiles += try files(at: "tune.\(name).datasets.\(dataset.key).paths")
                }
                if let from = recipe.tune.first(where: { $0.name == name })?.from, from.hasPrefix("hf:") {
                    let dir = PathCheck.resolve(String(from.dropFirst(3)), relativeTo: tree.at("tune.\(name).from")?.location)
                    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
                    inputFiles += try names.map { try FileFingerprint.of(dir + "/" + $0, full: fullHash) }
                }
                directory = "tune/\(name)"
            case "eval":
                let parts = stage.id.split(separator: ".", maxSplits: 2).map(String.init)
                let suite = parts[1], checkpoint = parts[2]
                let template = recipe.eval.first { $0.name == suite }?.template ?? ""
                config = [("suite", value("eval.\(suite)")), ("checkpoint", .string(checkpoint)), ("template", value("templates.\(template)")),
                          ("special_tokens", value("tokenizer.special_tokens")), ("seed", value("seed"))]
                inputFiles = try files(at: "eval.\(suite).datasets")
                directory = "eval/\(suite)/\(checkpoint)"
            case "release":
                config = [("release", value("release")), ("name", value("name"))]
                directory = "release"
            default:
                config = []
            }
            let version = versions[stage.kind] ?? 1
            let material = JSON.object([
                ("stage", .string(stage.id)), ("kind", .string(stage.kind)), ("version", .int(version)),
                ("config", .object(config)),
                ("inputs", .object(stage.inputs.map { ($0, .string(keys[$0] ?? "")) })),
                ("files", .array(inputFiles.map { .object([("size", .int($0.size)), ("sha256", .string($0.sha256))]) })),
            ])
            let key = material.canonicalHash
            keys[stage.id] = key
            plans.append(StagePlan(id: stage.id, kind: stage.kind, directory: directory, version: version, config: .object(config),
                                   inputs: stage.inputs, files: inputFiles, key: key, keyMaterial: material))
        }
        return plans
    }
}
