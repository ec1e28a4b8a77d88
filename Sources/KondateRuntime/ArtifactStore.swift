import KondateRecipe
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KondateSupport

/// One output file of a finished stage.
public struct OutputFile: Sendable, Equatable {
    /// Relative to the stage directory.
    public var path: String
    public var size: Int
    public var sha256: String
    /// A log (time stamps, throughput: differs between identical runs) rather than an artifact.
    public var isLog: Bool

    /// Files whose content includes timing or the machine: `metrics.jsonl`, `summary.json`, TensorBoard
    /// event files, the corpus filter reports and a release's copy of the run manifest. Everything else a stage writes is an artifact, identical between runs
    /// of the same key.
    public static func isLog(_ path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        return name == "metrics.jsonl" || name == "summary.json" || name == "manifest.json" || name.hasPrefix("events.out.tfevents.") || name.hasSuffix(".report.json")
    }

    public var json: JSON {
        .object([("path", .string(path)), ("size", .int(size)), ("sha256", .string(sha256))] + (isLog ? [("log", .bool(true))] : []))
    }

    public init(path: String, size: Int, sha256: String, isLog: Bool) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.isLog = isLog
    }

    init?(json: JSON) {
        guard let path = json["path"]?.stringValue, let size = json["size"]?.intValue, let sha = json["sha256"]?.stringValue else { return nil }
        self.init(path: path, size: size, sha256: sha, isLog: json["log"]?.boolValue ?? false)
    }
}

/// What a finished stage leaves in its store directory (`stage.json`): its key and every output file
/// with its size and SHA-256. Written last, so its presence marks a complete stage.
public struct StageRecord: Sendable {
    public var id: String
    public var key: String
    public var outputs: [OutputFile]
    /// The stage's own summary (loss, tokens, scores…).
    public var summary: JSON

    public var json: JSON {
        .object([("stage", .string(id)), ("key", .string(key)), ("outputs", .array(outputs.map(\.json))), ("summary", summary)])
    }

    init?(json: JSON) {
        guard let id = json["stage"]?.stringValue, let key = json["key"]?.stringValue, let outputs = json["outputs"]?.arrayValue else { return nil }
        self.id = id
        self.key = key
        self.outputs = outputs.compactMap(OutputFile.init(json:))
        summary = json["summary"] ?? .null
    }

    init(id: String, key: String, outputs: [OutputFile], summary: JSON) {
        self.id = id
        self.key = key
        self.outputs = outputs
        self.summary = summary
    }
}

/// The content-addressed store of a run directory.
///
/// Each stage's outputs live in `store/<stage id>/<first 16 hex digits of its key>/`; the stage's
/// directory in the run (`pretrain`, `corpus/tokens/ja`, `eval/tasks/qa`…) is a relative symbolic link
/// to it, so paths stay readable while a changed recipe writes next to, not over, earlier results.
/// Switching back to an earlier recipe finds its outputs still there.
///
/// Intermediate checkpoints (`checkpoints/`) are not outputs: they carry their own checksums and exist
/// to resume the stage that writes them.
public struct ArtifactStore {
    public let root: String

    public init(root: String) { self.root = root }

    public static let recordName = "stage.json"

    public func storeDirectory(_ plan: StagePlan) -> String { "\(root)/store/\(plan.id)/\(plan.key.prefix(16))" }
    public func linkPath(_ plan: StagePlan) -> String { "\(root)/\(plan.directory)" }

    /// Points the stage's run path at its store directory (creating both), replacing an earlier link.
    /// A real directory in the way (a run directory from an older layout) is an error naming it.
    public func link(_ plan: StagePlan) throws {
        let fm = FileManager.default
        let target = storeDirectory(plan), link = linkPath(plan)
        try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let depth = plan.directory.split(separator: "/").count - 1
        let relative = String(repeating: "../", count: depth) + "store/\(plan.id)/\(plan.key.prefix(16))"
        if let existing = try? fm.destinationOfSymbolicLink(atPath: link) {
            if existing == relative { return }
            try fm.removeItem(atPath: link)
        } else if fm.fileExists(atPath: link) {
            throw KondateError(.runDirectory, "\(link) is a real directory, not a link into \(root)/store; it was made by an older Kondate: move it away or use another run directory")
        }
        try fm.createSymbolicLink(atPath: link, withDestinationPath: relative)
    }

    /// Removes the stage's run path when it is a link (into the store); a real directory is left alone.
    public func unlink(_ plan: StagePlan) {
        let link = linkPath(plan)
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != nil { try? FileManager.default.removeItem(atPath: link) }
    }

    /// The record of a finished stage with this key, if any.
    public func record(_ plan: StagePlan) -> StageRecord? {
        let path = storeDirectory(plan) + "/" + Self.recordName
        guard let data = FileManager.default.contents(atPath: path),
              let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), let record = StageRecord(json: json),
              record.key == plan.key else { return nil }
        return record
    }

    /// Problems with a finished stage's outputs: missing files, changed sizes, changed contents.
    public func verify(_ plan: StagePlan, _ record: StageRecord) -> [String] {
        let dir = storeDirectory(plan)
        var problems = [String]()
        for output in record.outputs {
            let path = dir + "/" + output.path
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
                problems.append("\(plan.directory)/\(output.path) is missing")
                continue
            }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
            if size != output.size {
                problems.append("\(plan.directory)/\(output.path) has \(size) bytes, \(output.size) recorded")
            } else if (try? SHA256.hex(file: path)) != output.sha256 {
                problems.append("\(plan.directory)/\(output.path) does not match its recorded SHA-256")
            }
        }
        return problems
    }

    /// Hashes every output of a stage that has just run and writes its record (atomically, last).
    @discardableResult
    public func commit(_ plan: StagePlan, summary: JSON) throws -> StageRecord {
        let dir = storeDirectory(plan)
        var outputs = [OutputFile]()
        for relative in try Self.files(under: dir) where relative != Self.recordName && !relative.hasPrefix("checkpoints/") {
            let path = dir + "/" + relative
            let size = ((try FileManager.default.attributesOfItem(atPath: path))[.size] as? NSNumber)?.intValue ?? 0
            outputs.append(OutputFile(path: relative, size: size, sha256: try SHA256.hex(file: path), isLog: OutputFile.isLog(relative)))
        }
        let record = StageRecord(id: plan.id, key: plan.key, outputs: outputs, summary: summary)
        try AtomicFile.write(Data((record.json.rendered() + "\n").utf8), to: dir + "/" + Self.recordName)
        return record
    }

    /// Clears a stage's store directory before it runs again, keeping `checkpoints/` and `metrics.jsonl`
    /// (a resumable stage restarts from them and keeps the metrics up to its checkpoint) unless
    /// `keepCheckpoints` is false.
    public func clear(_ plan: StagePlan, keepCheckpoints: Bool) throws {
        let dir = storeDirectory(plan)
        let fm = FileManager.default
        for entry in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where !(keepCheckpoints && (entry == "checkpoints" || entry == "metrics.jsonl")) {
            try fm.removeItem(atPath: dir + "/" + entry)
        }
    }

    /// Regular files under `dir`, relative, sorted; temporary `*.tmp` files are skipped.
    static func files(under dir: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out = [String]()
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue,
               !relative.hasSuffix(".tmp") {
                out.append(relative)
            }
        }
        return out.sorted()
    }
}

/// An exclusive lock on a run directory, held for the life of the process (`flock` on `run.lock`, so
/// it is released when the process ends, even by SIGKILL). The file names the holder.
public final class RunLock {
    let fd: Int32
    public let path: String

    /// Takes the lock or throws a message naming the process that holds it. A filesystem that cannot
    /// lock (some network and FUSE mounts answer `flock` with ENOLCK or EOPNOTSUPP) is said to be one,
    /// not taken for another run; `KONDATE_RUN_LOCK=off` runs there without the lock, at the user's word
    /// that no other run uses the directory. `lock` is `flock` (replaced by tests).
    public init(directory: String, command: String, lock: (Int32, Int32) -> Int32 = { flock($0, $1) }) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/run.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KondateError(.disk, "cannot open \(path): \(String(cString: strerror(errno)))") }
        var status = lock(fd, LOCK_EX | LOCK_NB)
        var error = status == 0 ? 0 : errno
        while status != 0 && error == EINTR {
            status = lock(fd, LOCK_EX | LOCK_NB)
            error = status == 0 ? 0 : errno
        }
        if status != 0 {
            if error == EWOULDBLOCK || error == EAGAIN {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw KondateError(.runDirectory, "\(directory) is in use by another kondate run (\(holder.isEmpty ? "holder unknown" : holder)); " +
                                   "wait for it to finish, or use another --out directory")
            }
            guard ProcessInfo.processInfo.environment["KONDATE_RUN_LOCK"] == "off" else {
                close(fd)
                throw KondateError(.runDirectory, "cannot lock \(path): the filesystem does not support locking (flock: " +
                                   "\(String(cString: strerror(error)))); use an --out directory on a local filesystem, or set KONDATE_RUN_LOCK=off " +
                                   "to run without the lock if you make sure no other run uses this directory")
            }
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let text = "pid \(getpid()) on \(hostName) since \(ISO8601DateFormatter().string(from: Date())): \(command)\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        _ = ftruncate(fd, 0)
        close(fd)
    }
}
