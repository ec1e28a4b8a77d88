import Foundation
import KondateModel
import KondateSupport


/// Training checkpoints. Each lives in its own directory `step_NNNNNNNN/`:
///
/// - `model.safetensors` — parameters under their HF names (Kondate's `nn.Linear` layout);
/// - `optimizer.safetensors` — AdamW moments `exp_avg.NAME` and `exp_avg_sq.NAME`;
/// - `trainer.json` — step, optimizer step, model config, schedule and optimizer settings, and the
///   caller's state (data-loader position, RNG state) as JSON;
/// - `SHA256SUMS` — the SHA-256 of the three files, in `sha256sum` format (`sha256sum -c` checks it).
///
/// A checkpoint is written into `step_NNNNNNNN.tmp/`, every file fsynced, then the directory is
/// renamed into place: a crash or a full disk leaves the previous checkpoints intact and at most a
/// `.tmp` directory, which is ignored and replaced. Loading checks every checksum first.
///
/// A distributed trainer writes a sharded checkpoint instead (`Checkpoint+Sharded.swift`): one model
/// file per tensor × pipeline shard, one optimizer file per ZeRO shard, and `layout.json`. Either kind
/// restores into any layout (`restore`), since every tensor keeps its whole-model name.
public enum Checkpoint {
    /// The files of a single-process checkpoint.
    public static let files = ["model.safetensors", "optimizer.safetensors", "trainer.json"]

    public struct State: Sendable {
        public var step: Int
        public var optimizerStep: Int
        public var config: ModelConfig
        /// Whatever the caller needs to continue exactly (loader position, RNG state, metrics).
        public var extra: JSON
    }

    public static func directoryName(step: Int) -> String {
        let digits = String(step)
        return "step_" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// Writes the trainer's state at `root/step_N/` and keeps only the newest `keep` checkpoints
    /// (0 keeps all). Returns the checkpoint directory.
    @discardableResult
    public static func save(_ trainer: Trainer, extra: JSON = .object([]), root: String, keep: Int) throws -> String {
        if let groups = trainer.groups { return try saveSharded(trainer, groups: groups, extra: extra, root: root, keep: keep) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let final = (root as NSString).appendingPathComponent(directoryName(step: trainer.step))
        let tmp = final + ".tmp"
        if fm.fileExists(atPath: tmp) { try fm.removeItem(atPath: tmp) }
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        do {
            try write(trainer, extra: extra, into: tmp)
        } catch {
            // A full disk (or any failed write) leaves the earlier checkpoints as they were.
            try? fm.removeItem(atPath: tmp)
            let previous = (try? list(root))?.last.map { "; the previous checkpoint \(($0.path as NSString).lastPathComponent) is intact" } ?? ""
            throw FileError(.checkpoint, final, "cannot write the checkpoint: \(error)\(previous); free space and run the same command again to resume")
        }
        if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
        try AtomicFile.commit(tmp, to: final)
        if keep > 0 {
            for old in try list(root).dropLast(keep) { try fm.removeItem(atPath: old.path) }
        }
        return final
    }

    /// The checkpoint's files, written into `directory`.
    static func write(_ trainer: Trainer, extra: JSON, into directory: String) throws {
        let dir = directory as NSString
        let model = trainer.model, optimizer = trainer.optimizer
        try HFModel.writeWeightsLinear(model, to: dir.appendingPathComponent("model.safetensors"))
        var moments: [SafetensorsFile.TensorSource] = []
        for t in model.layout.tensors {
            for (prefix, buffer) in [("exp_avg.", optimizer.m), ("exp_avg_sq.", optimizer.v)] {
                moments.append((prefix + t.name, t.shape, { body in try body(UnsafeBufferPointer(rebasing: buffer[t.offset..<(t.offset + t.count)])) }))
            }
        }
        try SafetensorsFile.write(moments, to: dir.appendingPathComponent("optimizer.safetensors"))
        try writeState(trainer, extra: extra, layout: nil, into: directory)
        try writeChecksums(files, in: directory)
    }

    /// `trainer.json`: step counters, model, schedule and optimizer settings, the caller's `extra`, and
    /// for a sharded checkpoint its layout.
    static func writeState(_ trainer: Trainer, extra: JSON, layout: JSON?, into directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func encoded<T: Encodable>(_ value: T) throws -> JSON { try JSONParser.parse(String(decoding: try encoder.encode(value), as: UTF8.self)) }
        var entries: [(String, JSON)] = [
            ("format", .string("kondate-checkpoint-1")),
            ("step", .int(trainer.step)),
            ("optimizer_step", .int(trainer.optimizer.step)),
            ("model", try encoded(trainer.model.config)),
            ("schedule", try encoded(trainer.options.schedule)),
            ("adamw", try encoded(trainer.options.adamw)),
            ("grad_clip", .double(trainer.options.gradClip)),
            ("extra", extra),
        ]
        if let layout { entries.append(("layout", layout)) }
        try AtomicFile.write(Data((JSON.object(entries).rendered(pretty: true) + "\n").utf8),
                             to: (directory as NSString).appendingPathComponent("trainer.json"))
    }

    /// SHA256SUMS for `names` in `directory` (`sha256sum -c` format).
    static func writeChecksums(_ names: [String], in directory: String) throws {
        let dir = directory as NSString
        var sums = ""
        for f in names { sums += "\(try SHA256.hex(file: dir.appendingPathComponent(f)))  \(f)\n" }
        try AtomicFile.write(Data(sums.utf8), to: dir.appendingPathComponent("SHA256SUMS"))
    }

    /// Complete checkpoints under `root` (directories named step_N with a SHA256SUMS), oldest first.
    public static func list(_ root: String) throws -> [(step: Int, path: String)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("step_"), !name.hasSuffix(".tmp"), let step = Int(name.dropFirst(5)) else { return nil }
            let path = (root as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("SHA256SUMS")) else { return nil }
            return (step, path)
        }.sorted { $0.0 < $1.0 }
    }

    /// Checks every file against SHA256SUMS; the error names the file that differs.
    public static func verify(_ directory: String) throws {
        let dir = directory as NSString
        let sumsPath = dir.appendingPathComponent("SHA256SUMS")
        guard let text = try? String(contentsOfFile: sumsPath, encoding: .utf8) else {
            throw FileError(.checkpoint, directory, "no SHA256SUMS: the checkpoint is incomplete (interrupted while writing?)")
        }
        var expected: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            let name = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            guard parts.count == 2, parts[0].count == 64, !name.isEmpty, !name.contains("/") else {
                throw FileError(.checkpoint, sumsPath, "malformed line '\(line)'")
            }
            expected[name] = String(parts[0])
        }
        let required = expected["layout.json"] != nil ? ["trainer.json", "layout.json"] : files
        for f in required where expected[f] == nil { throw FileError(.checkpoint, sumsPath, "no checksum for \(f)") }
        for f in expected.keys.sorted() {
            let want = expected[f]!
            let path = dir.appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: path) else { throw FileError(.checkpoint, path, "missing from the checkpoint") }
            let got = try SHA256.hex(file: path)
            if got != want {
                throw FileError(.checkpoint, path, "checksum mismatch (SHA-256 \(got.prefix(16))…, SHA256SUMS says \(want.prefix(16))…): " +
                                      "the file is corrupt; resume from an earlier checkpoint")
            }
        }
    }

    /// Reads a checkpoint's state (after verifying it) without loading tensors.
    public static func state(_ directory: String) throws -> State {
        try verify(directory)
        let path = (directory as NSString).appendingPathComponent("trainer.json")
        guard let data = FileManager.default.contents(atPath: path),
              let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)),
              json["format"]?.stringValue == "kondate-checkpoint-1",
              let step = json["step"]?.intValue, let optimizerStep = json["optimizer_step"]?.intValue, let model = json["model"] else {
            throw FileError(.checkpoint, path, "not a Kondate checkpoint state (format kondate-checkpoint-1)")
        }
        let config = try JSONDecoder().decode(ModelConfig.self, from: Data(model.rendered(pretty: false).utf8))
        return State(step: step, optimizerStep: optimizerStep, config: config, extra: json["extra"] ?? .object([]))
    }

    /// Restores parameters, AdamW moments and step counters into `trainer`, whose model must have the
    /// checkpoint's configuration; the checkpoint may come from any layout (single process or sharded,
    /// any tensor, pipeline or data-parallel size, with or without ZeRO). Returns the saved state (its
    /// `extra` carries the loader position).
    @discardableResult
    public static func restore(_ directory: String, into trainer: Trainer) throws -> State {
        let state = try state(directory)
        guard state.config == trainer.model.config else {
            throw FileError(.checkpoint, directory, "the checkpoint's model configuration differs from the recipe's; start a new run directory")
        }
        let reader = try CheckpointReader(directory: directory, config: state.config)
        let model = trainer.model, optimizer = trainer.optimizer
        let range = optimizer.range
        for t in model.layout.tensors {
            try reader.read(t.name, .parameters, shard: model.shard, tensor: t, into: model.parameters.baseAddress! + t.offset)
            // The optimizer holds the moments of `range` only (a ZeRO-1 shard).
            let lo = max(t.offset, range.lowerBound), hi = min(t.offset + t.count, range.upperBound)
            guard lo < hi else { continue }
            for (kind, buffer) in [(CheckpointReader.Kind.expAvg, optimizer.m), (.expAvgSq, optimizer.v)] {
                if lo == t.offset && hi == t.offset + t.count {
                    try reader.read(t.name, kind, shard: model.shard, tensor: t, into: buffer.baseAddress! + (t.offset - range.lowerBound))
                } else {
                    var local = [Float](repeating: 0, count: t.count)
                    try local.withUnsafeMutableBufferPointer { try reader.read(t.name, kind, shard: model.shard, tensor: t, into: $0.baseAddress!) }
                    for i in lo..<hi { buffer[i - range.lowerBound] = local[i - t.offset] }
                }
            }
        }
        trainer.step = state.step
        trainer.optimizer.step = state.optimizerStep
        return state
    }
}

extension Checkpoint {
    /// Loads the parameters of a checkpoint of any layout into `model` (its own shard of them).
    public static func restoreParameters(_ directory: String, into model: any TrainableModel) throws {
        let state = try state(directory)
        guard state.config == model.config else {
            throw FileError(.checkpoint, directory, "the checkpoint's model configuration differs from the model's")
        }
        let reader = try CheckpointReader(directory: directory, config: state.config)
        for t in model.layout.tensors {
            try reader.read(t.name, .parameters, shard: model.shard, tensor: t, into: model.parameters.baseAddress! + t.offset)
        }
    }
}

extension HFModel {
    /// The parameters in Kondate's own layout (every matrix (out, in)), for checkpoints.
    static func writeWeightsLinear(_ model: any TrainableModel, to path: String) throws {
        let sources: [SafetensorsFile.TensorSource] = model.layout.tensors.map { t in
            (t.name, t.shape, { body in try body(UnsafeBufferPointer(model.tensor(t.name)!)) })
        }
        try SafetensorsFile.write(sources, metadata: ["format": "kondate"], to: path)
    }
}
