import Foundation
import KondateCorpus
import KondateTokenizers
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
        guard let handle = FileHandle(forReadingAtPath: path) else { throw KondateError(.inputData, "cannot read \(path)") }
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

/// One stage of a run with its identity: the typed stage, the files it reads, and the key that
/// summarises its payload, its inputs' keys and those files.
public struct StagePlan: Sendable {
    public var stage: Stage
    public var id: String { stage.id }
    public var kind: StageKind { stage.kind }
    /// Where its outputs appear, relative to the run directory.
    public var directory: String { stage.directory }
    public var inputs: [String] { stage.inputs }
    /// The stage implementation's version: raised when the same inputs would give different outputs.
    public var version: Int { stage.kind.version }
    /// The payload as canonical JSON: every value the runner reads.
    public var config: JSON
    public var files: [FileFingerprint]
    /// SHA-256 (hex) of kind, version, payload, the inputs' keys and the files' contents.
    public var key: String
    /// Why the key is what it is, field by field, for `kondate diff`.
    public var keyMaterial: JSON
}

/// Computes every stage's key from its typed payload, without running anything.
///
/// A stage's key hashes (canonical JSON) the stage id and kind, its implementation version
/// (`StageKind.version`), its payload (`StagePayload.json`: exactly the configuration its runner reads),
/// the keys of the stages it reads from, and the fingerprints (size and SHA-256, not paths) of the files
/// it reads. Same key ⇒ same inputs ⇒ (runs being deterministic) same outputs, so a stage whose key has
/// finished outputs is skipped. docs/runs.md lists what each payload holds; `StageKeyCoverageTests`
/// changes every recipe key in turn and checks which keys move.
///
/// The thread count is not part of any key: results are bitwise identical for any thread count.
/// Nor is the layout (`parallel`: tensor, pipeline and data sizes, ZeRO, micro batch): it decides how
/// the same computation is split over ranks, whose results agree to float rounding (bitwise for the
/// same layout). The manifest records the layout, `kondate diff` shows it, and a pretraining stage can
/// resume from a checkpoint written at another layout. Checkpoint frequency and retention are not
/// part of a key either: they decide which intermediate states are kept, not the stage's result.
public enum StageKeys {
    public static func plan(recipe: Recipe, fullHash: Bool = false) throws -> [StagePlan] {
        try plan(graph: ExecutionGraph(recipe: recipe), fullHash: fullHash)
    }

    public static func plan(graph: ExecutionGraph, fullHash: Bool = false) throws -> [StagePlan] {
        func files(_ paths: InputPaths) throws -> [FileFingerprint] {
            try DocumentReader.expand(paths).map { try FileFingerprint.of($0, full: fullHash) }
        }
        var keys = [String: String]()
        var plans = [StagePlan]()
        for stage in graph.stages {
            var inputFiles = [FileFingerprint]()
            switch stage.payload {
            case let .corpusPrepare(c):
                inputFiles = try files(c.paths)
            case let .tokenizer(c):
                if let path = c.path {
                    guard let resolved = TokenizerLoader.file(at: path.resolved) else {
                        throw KondateError(.inputData, "tokenizer.path '\(path.written)' is not a tokenizer file or a directory holding one", at: path.location)
                    }
                    inputFiles = [try FileFingerprint.of(resolved, full: true)]
                }
            case .corpusTokenize, .corpusMix, .pretrain, .release:
                break
            case let .tune(c):
                for dataset in c.datasets { inputFiles += try files(dataset.paths) }
                if case let .huggingFace(path) = c.start {
                    let names = ((try? FileManager.default.contentsOfDirectory(atPath: path.resolved)) ?? []).sorted()
                    inputFiles += try names.map { try FileFingerprint.of(path.resolved + "/" + $0, full: fullHash) }
                }
            case let .eval(c):
                inputFiles = try files(c.datasetPaths)
            }
            let config = stage.payload.json
            let material = JSON.object([
                ("stage", .string(stage.id)), ("kind", .string(stage.kind.rawValue)), ("version", .int(stage.kind.version)),
                ("config", config),
                ("inputs", .object(stage.inputs.map { ($0, .string(keys[$0] ?? "")) })),
                ("files", .array(inputFiles.map { .object([("size", .int($0.size)), ("sha256", .string($0.sha256))]) })),
            ])
            let key = material.canonicalHash
            keys[stage.id] = key
            plans.append(StagePlan(stage: stage, config: config, files: inputFiles, key: key, keyMaterial: material))
        }
        return plans
    }
}
