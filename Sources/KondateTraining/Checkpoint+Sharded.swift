import Foundation
import KondateCollectives
import KondateModel
import KondateSupport

/// Sharded checkpoints of distributed training. `step_NNNNNNNN/` holds:
///
/// - `model-tpTT-ppPP.safetensors` — the parameters of tensor rank TT and pipeline stage PP (written by
///   data rank 0), under their whole-model names with the shard's shapes;
/// - `optimizer-tpTT-ppPP-dpDD.safetensors` — 1-D tensors `exp_avg` and `exp_avg_sq` holding the AdamW
///   moments of a contiguous range of that shard's parameter buffer: data rank DD's ZeRO-1 shard, or
///   the whole buffer from data rank 0 without ZeRO;
/// - `layout.json` — the layout (tensor, pipeline, data, zero) and every optimizer file's range;
/// - `trainer.json` and `SHA256SUMS` as in a single-process checkpoint (written by world rank 0).
///
/// Every rank writes its files into the `.tmp` directory; the ranks then agree (a sum over the world)
/// that all writes succeeded before rank 0 writes the checksums and renames the directory into place.
extension Checkpoint {
    static func modelFile(tensor: Int, pipeline: Int) -> String { String(format: "model-tp%02d-pp%02d.safetensors", tensor, pipeline) }
    static func optimizerFile(tensor: Int, pipeline: Int, data: Int) -> String {
        String(format: "optimizer-tp%02d-pp%02d-dp%02d.safetensors", tensor, pipeline, data)
    }

    static func saveSharded(_ trainer: Trainer, groups g: ParallelGroups, extra: JSON, root: String, keep: Int) throws -> String {
        let fm = FileManager.default
        let final = (root as NSString).appendingPathComponent(directoryName(step: trainer.step))
        let tmp = final + ".tmp"
        let leader = g.world.rank == 0
        /// Every rank learns whether any rank failed; on failure rank 0 removes the partial directory.
        func agree(_ failure: String?) throws {
            let failures = g.world.allReduce(failure == nil ? 0 : 1)
            guard failures > 0 else { return }
            if leader { try? fm.removeItem(atPath: tmp) }
            let previous = (try? list(root))?.last.map { "; the previous checkpoint \(($0.path as NSString).lastPathComponent) is intact" } ?? ""
            throw FileError(.checkpoint, final, "cannot write the checkpoint: \(failure ?? "another rank could not write its part")\(previous); " +
                                  "free space and run the same command again to resume")
        }
        var failure: String?
        if leader {
            do {
                try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
                if fm.fileExists(atPath: tmp) { try fm.removeItem(atPath: tmp) }
                try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false)
            } catch { failure = "\(error)" }
        }
        try agree(failure)

        let model = trainer.model, optimizer = trainer.optimizer, shard = model.shard
        let dir = tmp as NSString
        do {
            if g.data.rank == 0 {
                try HFModel.writeWeightsLinear(model, to: dir.appendingPathComponent(modelFile(tensor: shard.tensorRank, pipeline: shard.pipelineRank)))
            }
            if g.zero || g.data.rank == 0 {
                let moments: [SafetensorsFile.TensorSource] = [("exp_avg", [optimizer.m.count], { body in try body(UnsafeBufferPointer(optimizer.m)) }),
                                                               ("exp_avg_sq", [optimizer.v.count], { body in try body(UnsafeBufferPointer(optimizer.v)) })]
                try SafetensorsFile.write(moments, metadata: ["start": String(optimizer.range.lowerBound)], to: dir.appendingPathComponent(
                    optimizerFile(tensor: shard.tensorRank, pipeline: shard.pipelineRank, data: g.zero ? g.data.rank : 0)))
            }
        } catch { failure = "rank \(g.world.rank): \(error)" }
        try agree(failure)

        if leader {
            do {
                let dp = g.data.size, count = { (t: Int, p: Int) in
                    ParameterLayout(model.config, shard: ModelShard(tensorRank: t, tensorSize: shard.tensorSize, pipelineRank: p,
                                                                     pipelineSize: shard.pipelineSize)).count
                }
                var shards: [JSON] = []
                for p in 0..<shard.pipelineSize {
                    for t in 0..<shard.tensorSize {
                        let total = count(t, p)
                        let blocks = g.zero ? ParallelGroups.blocks(total, parts: dp) : [total]
                        var start = 0
                        for (d, n) in blocks.enumerated() {
                            shards.append(.object([("tensor", .int(t)), ("pipeline", .int(p)), ("data", .int(d)), ("start", .int(start)),
                                                   ("count", .int(n)), ("file", .string(optimizerFile(tensor: t, pipeline: p, data: d)))]))
                            start += n
                        }
                    }
                }
                let layout: JSON = .object([("format", .string("kondate-sharded-checkpoint-1")), ("tensor", .int(shard.tensorSize)),
                                            ("pipeline", .int(shard.pipelineSize)), ("data", .int(dp)), ("zero", .bool(g.zero)),
                                            ("optimizer_shards", .array(shards))])
                try AtomicFile.write(Data((layout.rendered(pretty: true) + "\n").utf8), to: dir.appendingPathComponent("layout.json"))
                try writeState(trainer, extra: extra, layout: .object([("tensor", .int(shard.tensorSize)), ("pipeline", .int(shard.pipelineSize)),
                                                                       ("data", .int(dp)), ("zero", .bool(g.zero))]), into: tmp)
                let names = try fm.contentsOfDirectory(atPath: tmp).filter { $0 != "SHA256SUMS" }.sorted()
                try writeChecksums(names, in: tmp)
                if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
                try AtomicFile.commit(tmp, to: final)
                if keep > 0 {
                    for old in try list(root).dropLast(keep) { try fm.removeItem(atPath: old.path) }
                }
            } catch { failure = "\(error)" }
        }
        try agree(failure)
        return final
    }
}

/// Reads whole-model tensors (parameters and AdamW moments) from a checkpoint of any layout, and cuts
/// them for the shard being restored.
final class CheckpointReader {
    enum Kind { case parameters, expAvg, expAvgSq }

    struct OptimizerShard { var tensor: Int, pipeline: Int, start: Int, count: Int, file: String }

    let directory: String
    let config: ModelConfig
    /// Single-process checkpoint files.
    private var weights: SafetensorsFile?
    private var moments: SafetensorsFile?
    /// A sharded checkpoint's layout.
    private var tensorSize = 1, pipelineSize = 1
    private var optimizerShards: [OptimizerShard] = []
    private var files: [String: SafetensorsFile] = [:]
    private var layouts: [ModelShard: ParameterLayout] = [:]
    private var flatMoments: [String: [Float]] = [:]

    init(directory: String, config: ModelConfig) throws {
        self.directory = directory
        self.config = config
        let layoutPath = path("layout.json")
        guard FileManager.default.fileExists(atPath: layoutPath) else {
            weights = try SafetensorsFile(path: path("model.safetensors"))
            moments = try SafetensorsFile(path: path("optimizer.safetensors"))
            return
        }
        guard let data = FileManager.default.contents(atPath: layoutPath), let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)),
              json["format"]?.stringValue == "kondate-sharded-checkpoint-1", let t = json["tensor"]?.intValue, let p = json["pipeline"]?.intValue,
              case let .array(shards)? = json["optimizer_shards"] else {
            throw FileError(.checkpoint, layoutPath, "not a Kondate sharded checkpoint layout (format kondate-sharded-checkpoint-1)")
        }
        tensorSize = t
        pipelineSize = p
        for s in shards {
            guard let t = s["tensor"]?.intValue, let p = s["pipeline"]?.intValue, let start = s["start"]?.intValue, let count = s["count"]?.intValue,
                  let file = s["file"]?.stringValue, !file.contains("/") else {
                throw FileError(.checkpoint, layoutPath, "malformed optimizer shard \(s.rendered(pretty: false))")
            }
            optimizerShards.append(OptimizerShard(tensor: t, pipeline: p, start: start, count: count, file: file))
        }
    }

    private func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    private func file(_ name: String) throws -> SafetensorsFile {
        if let f = files[name] { return f }
        let f = try SafetensorsFile(path: path(name))
        files[name] = f
        return f
    }

    private func layout(tensor t: Int, pipeline p: Int) -> ParameterLayout {
        let shard = ModelShard(tensorRank: t, tensorSize: tensorSize, pipelineRank: p, pipelineSize: pipelineSize)
        if let l = layouts[shard] { return l }
        let l = ParameterLayout(config, shard: shard)
        layouts[shard] = l
        return l
    }

    /// The moments of shard (t, p)'s whole parameter buffer, assembled from its optimizer files.
    private func flat(_ kind: Kind, tensor t: Int, pipeline p: Int) throws -> [Float] {
        let key = "\(kind)-\(t)-\(p)"
        if let f = flatMoments[key] { return f }
        var out = [Float](repeating: 0, count: layout(tensor: t, pipeline: p).count)
        var covered = 0
        for s in optimizerShards where s.tensor == t && s.pipeline == p {
            guard s.start >= 0, s.start + s.count <= out.count else { throw FileError(.checkpoint, path(s.file), "range outside the shard's parameters") }
            try out.withUnsafeMutableBufferPointer { buffer in
                try file(s.file).read(kind == .expAvg ? "exp_avg" : "exp_avg_sq", into: UnsafeMutableBufferPointer(rebasing: buffer[s.start..<(s.start + s.count)]))
            }
            covered += s.count
        }
        guard covered == out.count else {
            throw FileError(.checkpoint, directory, "the optimizer files of tensor rank \(t), pipeline stage \(p) cover \(covered) of \(out.count) moments")
        }
        flatMoments[key] = out
        return out
    }

    /// The whole-model values of tensor `name`.
    func full(_ name: String, _ kind: Kind) throws -> [Float] {
        if let weights, let moments {
            switch kind {
            case .parameters: return try weights.floats(name)
            case .expAvg: return try moments.floats("exp_avg." + name)
            case .expAvgSq: return try moments.floats("exp_avg_sq." + name)
            }
        }
        guard let p = (0..<pipelineSize).first(where: { layout(tensor: 0, pipeline: $0)[name] != nil }) else {
            throw FileError(.checkpoint, directory, "no shard holds \(name)")
        }
        var whole: [Float] = []
        for t in 0..<tensorSize {
            let local = layout(tensor: t, pipeline: p)
            guard let tensor = local[name] else { throw FileError(.checkpoint, directory, "tensor rank \(t) of stage \(p) lacks \(name)") }
            if whole.isEmpty { whole = [Float](repeating: 0, count: tensor.fullShape.reduce(1, *)) }
            let values: [Float]
            switch kind {
            case .parameters: values = try file(Checkpoint.modelFile(tensor: t, pipeline: p)).floats(name)
            case .expAvg, .expAvgSq: values = Array(try flat(kind, tensor: t, pipeline: p)[tensor.offset..<(tensor.offset + tensor.count)])
            }
            guard values.count == tensor.count else { throw FileError(.checkpoint, directory, "\(name) of tensor rank \(t) has \(values.count) values, not \(tensor.count)") }
            for s in tensor.segments(rank: t, parts: tensorSize) {
                for j in 0..<s.count { whole[s.full + j] = values[s.local + j] }
            }
            if tensor.split == .replicated { break }
        }
        return whole
    }

    /// Writes the slice of tensor `name` that `shard` holds (laid out as `tensor`) to `out`.
    func read(_ name: String, _ kind: Kind, shard: ModelShard, tensor: ParameterLayout.Tensor, into out: UnsafeMutablePointer<Float>) throws {
        let whole = try full(name, kind)
        guard whole.count == tensor.fullShape.reduce(1, *) else {
            throw FileError(.checkpoint, directory, "\(name) has \(whole.count) values, the model expects \(tensor.fullShape)")
        }
        for s in tensor.segments(rank: shard.tensorRank, parts: shard.tensorSize) {
            whole.withUnsafeBufferPointer { (out + s.local).update(from: $0.baseAddress! + s.full, count: s.count) }
        }
    }
}
