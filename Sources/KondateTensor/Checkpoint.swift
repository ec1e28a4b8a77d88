import Foundation
import KondateSupport

public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

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
public enum Checkpoint {
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
            throw CheckpointError(final, "cannot write the checkpoint: \(error)\(previous); free space and run the same command again to resume")
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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func encoded<T: Encodable>(_ value: T) throws -> JSON { try JSONParser.parse(String(decoding: try encoder.encode(value), as: UTF8.self)) }
        let state: JSON = .object([
            ("format", .string("kondate-checkpoint-1")),
            ("step", .int(trainer.step)),
            ("optimizer_step", .int(optimizer.step)),
            ("model", try encoded(model.config)),
            ("schedule", try encoded(trainer.options.schedule)),
            ("adamw", try encoded(trainer.options.adamw)),
            ("grad_clip", .double(trainer.options.gradClip)),
            ("extra", extra),
        ])
        try AtomicFile.write(Data((state.rendered(pretty: true) + "\n").utf8), to: dir.appendingPathComponent("trainer.json"))
        var sums = ""
        for f in files { sums += "\(try SHA256.hex(file: dir.appendingPathComponent(f)))  \(f)\n" }
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
            throw CheckpointError(directory, "no SHA256SUMS: the checkpoint is incomplete (interrupted while writing?)")
        }
        var expected: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].count == 64 else { throw CheckpointError(sumsPath, "malformed line '\(line)'") }
            expected[parts[1].trimmingCharacters(in: .whitespaces)] = String(parts[0])
        }
        for f in files {
            guard let want = expected[f] else { throw CheckpointError(sumsPath, "no checksum for \(f)") }
            let path = dir.appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError(path, "missing from the checkpoint") }
            let got = try SHA256.hex(file: path)
            if got != want {
                throw CheckpointError(path, "checksum mismatch (SHA-256 \(got.prefix(16))…, SHA256SUMS says \(want.prefix(16))…): " +
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
            throw CheckpointError(path, "not a Kondate checkpoint state (format kondate-checkpoint-1)")
        }
        let config = try JSONDecoder().decode(ModelConfig.self, from: Data(model.rendered(pretty: false).utf8))
        return State(step: step, optimizerStep: optimizerStep, config: config, extra: json["extra"] ?? .object([]))
    }

    /// Restores parameters, AdamW moments and step counters into `trainer`, whose model must have the
    /// checkpoint's configuration. Returns the saved state (its `extra` carries the loader position).
    @discardableResult
    public static func restore(_ directory: String, into trainer: Trainer) throws -> State {
        let state = try state(directory)
        guard state.config == trainer.model.config else {
            throw CheckpointError(directory, "the checkpoint's model configuration differs from the recipe's; start a new run directory")
        }
        let dir = directory as NSString
        let weights = try SafetensorsFile(path: dir.appendingPathComponent("model.safetensors"))
        let moments = try SafetensorsFile(path: dir.appendingPathComponent("optimizer.safetensors"))
        for t in trainer.model.layout.tensors {
            try weights.read(t.name, into: trainer.model.tensor(t.name)!)
            try moments.read("exp_avg." + t.name, into: UnsafeMutableBufferPointer(rebasing: trainer.optimizer.m[t.offset..<(t.offset + t.count)]))
            try moments.read("exp_avg_sq." + t.name, into: UnsafeMutableBufferPointer(rebasing: trainer.optimizer.v[t.offset..<(t.offset + t.count)]))
        }
        trainer.step = state.step
        trainer.optimizer.step = state.optimizerStep
        return state
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
