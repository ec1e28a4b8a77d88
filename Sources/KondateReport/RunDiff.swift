import Foundation
import KondateModel
import KondateRecipe
import KondateSupport

/// The differences between two runs (or two releases), from their manifests and outputs:
///
/// - `configuration`: resolved-recipe values that differ (dotted paths);
/// - `inputs`: input files added, removed or changed (by stage and path);
/// - `stages`: stages whose keys differ, each with the first reason — its implementation version, the
///   recipe values it reads, one of its input files, or an input stage whose key differs;
/// - `layout` and `environment` differences (threads, BLAS kernels, CPU…), which do not change keys;
/// - `outputs`: artifacts (not logs) whose hashes differ for stages with equal keys — a
///   reproducibility failure — and for stages with different keys;
/// - `losses`: per training stage, the first logged step where the loss differs and the final losses;
/// - `eval`: every score side by side;
/// - `weights`: per model file, identical bytes or the largest absolute difference per tensor.
///
/// `identical` means equal keys and equal artifacts for every stage both runs finished.
public struct RunDiff {
    public struct Change: Sendable { public var path: String; public var a: JSON?; public var b: JSON? }
    public struct StageChange: Sendable { public var id: String; public var keyA: String?; public var keyB: String?; public var reason: String }
    public struct OutputChange: Sendable { public var stage: String; public var path: String; public var sameKey: Bool }
    public struct LossDivergence: Sendable { public var stage: String; public var step: Int?; public var a: Double?; public var b: Double?; public var finalA: Double?; public var finalB: Double? }
    public struct ScoreRow: Sendable { public var stage: String; public var name: String; public var a: Double?; public var b: Double? }
    public struct WeightComparison: Sendable {
        public var file: String
        public var identical: Bool
        /// Tensor name and max |a − b|, largest first (when not identical).
        public var tensors: [(name: String, maxAbsDiff: Double)]
        public var note: String?
    }

    public var a: String, b: String
    public var configuration: [Change] = []
    public var inputs: [Change] = []
    public var stages: [StageChange] = []
    public var layout: [Change] = []
    public var outputs: [OutputChange] = []
    public var losses: [LossDivergence] = []
    public var scores: [ScoreRow] = []
    public var weights: [WeightComparison] = []

    public var identical: Bool {
        configuration.isEmpty && inputs.isEmpty && stages.isEmpty && outputs.isEmpty && weights.allSatisfy(\.identical)
    }

    /// The manifest of a run directory or of a release directory.
    public static func manifest(at directory: String) throws -> JSON {
        let path = directory + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KondateError(.runDirectory, "\(directory) has no manifest.json; give a run directory (kondate run --out) or a release directory")
        }
        do { return try JSONParser.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw KondateError(.runDirectory, "\(path): not valid JSON: \(error)")
        }
    }

    public static func compare(_ a: String, _ b: String) throws -> RunDiff {
        let ma = try manifest(at: a), mb = try manifest(at: b)
        var diff = RunDiff(a: a, b: b)
        diff.configuration = leafChanges(ma["recipe"]?["resolved"], mb["recipe"]?["resolved"], prefix: "")
        if ma["seed"] != mb["seed"], !diff.configuration.contains(where: { $0.path == "seed" }) {
            diff.configuration.append(Change(path: "seed", a: ma["seed"], b: mb["seed"]))
        }
        diff.layout = leafChanges(ma["layout"], mb["layout"], prefix: "layout.") +
            leafChanges(ma["environment"], mb["environment"], prefix: "environment.")

        // Input files by stage and path.
        func files(_ m: JSON) -> [String: JSON] {
            var out = [String: JSON]()
            for f in m["inputs"]?.arrayValue ?? [] {
                out["\(f["stage"]?.stringValue ?? "")  \(f["name"]?.stringValue ?? f["path"]?.stringValue ?? "")"] = f
            }
            return out
        }
        let fa = files(ma), fb = files(mb)
        for name in Set(fa.keys).union(fb.keys).sorted() where fa[name]?["sha256"] != fb[name]?["sha256"] {
            diff.inputs.append(Change(path: name, a: fa[name]?["sha256"], b: fb[name]?["sha256"]))
        }

        // Stages: keys and the first reason they differ; outputs.
        func stages(_ m: JSON) -> [(String, JSON)] { (m["stages"]?.arrayValue ?? []).compactMap { s in s["id"]?.stringValue.map { ($0, s) } } }
        let sa = Dictionary(stages(ma), uniquingKeysWith: { x, _ in x }), sb = Dictionary(stages(mb), uniquingKeysWith: { x, _ in x })
        let order = stages(ma).map(\.0) + stages(mb).map(\.0).filter { sa[$0] == nil }
        for id in order {
            let x = sa[id], y = sb[id]
            let keyA = x?["key"]?.stringValue, keyB = y?["key"]?.stringValue
            if keyA != keyB {
                diff.stages.append(StageChange(id: id, keyA: keyA, keyB: keyB, reason: reason(id, x, y, fa: fa, fb: fb, sa: sa, sb: sb)))
            }
            guard let x, let y, x["status"]?.stringValue != "not run", y["status"]?.stringValue != "not run" else { continue }
            let oa = artifacts(x), ob = artifacts(y)
            for path in Set(oa.keys).union(ob.keys).sorted() where oa[path] != ob[path] {
                diff.outputs.append(OutputChange(stage: id, path: path, sameKey: keyA == keyB))
            }
        }

        // Losses and scores.
        for id in order where ["pretrain", "tune"].contains(sa[id]?["kind"]?.stringValue ?? sb[id]?["kind"]?.stringValue ?? "") {
            let dir = (sa[id] ?? sb[id])?["directory"]?.stringValue ?? id
            let la = losses(a + "/" + dir + "/metrics.jsonl"), lb = losses(b + "/" + dir + "/metrics.jsonl")
            if la.isEmpty && lb.isEmpty { continue }
            var divergence = LossDivergence(stage: id, step: nil, a: nil, b: nil, finalA: la.last?.1, finalB: lb.last?.1)
            for (step, value) in la {
                let other = lb.first { $0.0 == step }?.1
                if other != value { divergence.step = step; divergence.a = value; divergence.b = other; break }
            }
            diff.losses.append(divergence)
        }
        for id in order where (sa[id]?["kind"] ?? sb[id]?["kind"]) == .string("eval") {
            let xa = scoreList(sa[id]), xb = scoreList(sb[id])
            for name in (xa.map(\.0) + xb.map(\.0).filter { n in !xa.contains { $0.0 == n } }) {
                diff.scores.append(ScoreRow(stage: id, name: name, a: xa.first { $0.0 == name }?.1, b: xb.first { $0.0 == name }?.1))
            }
        }

        // Weights of every model both have.
        for id in order {
            guard let x = sa[id], let y = sb[id] else { continue }
            let dir = x["directory"]?.stringValue ?? id
            for file in artifacts(x).keys.sorted() where file.hasSuffix(".safetensors") && artifacts(y)[file] != nil {
                let pa = "\(a)/\(dir)/\(file)", pb = "\(b)/\(dir)/\(file)"
                guard FileManager.default.fileExists(atPath: pa), FileManager.default.fileExists(atPath: pb) else { continue }
                diff.weights.append(compareWeights(pa, pb, label: "\(dir)/\(file)"))
            }
        }
        // A release directory: its own weights.
        if FileManager.default.fileExists(atPath: a + "/model.safetensors"), FileManager.default.fileExists(atPath: b + "/model.safetensors") {
            diff.weights.append(compareWeights(a + "/model.safetensors", b + "/model.safetensors", label: "model.safetensors"))
        }
        return diff
    }

    static func artifacts(_ stage: JSON) -> [String: String] {
        var out = [String: String]()
        for f in stage["outputs"]?.arrayValue ?? [] where f["log"]?.boolValue != true {
            if let p = f["path"]?.stringValue { out[p] = f["sha256"]?.stringValue }
        }
        return out
    }

    static func scoreList(_ stage: JSON?) -> [(String, Double?)] {
        guard case let .object(entries)? = stage?["summary"]?["scores"] else { return [] }
        return entries.map { ($0.0, $0.1.doubleValue) }
    }

    /// Why a stage's key differs: the first of version, recipe values, input files, input stages.
    static func reason(_ id: String, _ x: JSON?, _ y: JSON?, fa: [String: JSON], fb: [String: JSON], sa: [String: JSON], sb: [String: JSON]) -> String {
        guard let x, let y else { return x == nil ? "only in B" : "only in A" }
        if x["version"] != y["version"] {
            return "implementation version \(x["version"]?.intValue ?? 0) → \(y["version"]?.intValue ?? 0)"
        }
        let config = leafChanges(x["config"], y["config"], prefix: "")
        if let first = config.first {
            return "recipe value \(first.path)" + (config.count > 1 ? " (and \(config.count - 1) more)" : "")
        }
        let changedFile = Set(fa.keys).union(fb.keys).sorted().first { name in
            name.hasPrefix(id + "  ") && fa[name]?["sha256"] != fb[name]?["sha256"]
        }
        if let changedFile { return "input file \(changedFile.dropFirst(id.count + 2))" }
        for input in x["inputs"]?.arrayValue?.compactMap(\.stringValue) ?? [] where sa[input]?["key"] != sb[input]?["key"] {
            return "input stage \(input)"
        }
        return "key differs"
    }

    /// Leaf values that differ between two JSON values, by dotted path (array items by index).
    static func leafChanges(_ a: JSON?, _ b: JSON?, prefix: String) -> [Change] {
        switch (a, b) {
        case let (.object(x)?, .object(y)?):
            let keys = x.map(\.0) + y.map(\.0).filter { k in !x.contains { $0.0 == k } }
            return keys.flatMap { k in leafChanges(x.first { $0.0 == k }?.1, y.first { $0.0 == k }?.1, prefix: prefix + k + ".") }
        case let (.array(x)?, .array(y)?) where x.count == y.count:
            return x.indices.flatMap { leafChanges(x[$0], y[$0], prefix: prefix + "\($0).") }
        default:
            return a == b ? [] : [Change(path: String(prefix.dropLast()), a: a, b: b)]
        }
    }

    /// (step, loss) of the training lines of a metrics.jsonl.
    static func losses(_ path: String) -> [(Int, Double)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let json = try? JSONParser.parse(String(line)), let step = json["step"]?.intValue, let loss = json["loss"]?.doubleValue else { return nil }
            return (step, loss)
        }
    }

    static func compareWeights(_ a: String, _ b: String, label: String) -> WeightComparison {
        if let x = try? SHA256.hex(file: a), let y = try? SHA256.hex(file: b), x == y {
            return WeightComparison(file: label, identical: true, tensors: [], note: nil)
        }
        do {
            let fa = try SafetensorsFile(path: a), fb = try SafetensorsFile(path: b)
            var tensors = [(String, Double)]()
            var notes = [String]()
            for entry in fa.entries {
                guard let other = fb.entry(entry.name) else { notes.append("\(entry.name) only in A"); continue }
                guard other.shape == entry.shape else { notes.append("\(entry.name): shape \(entry.shape) vs \(other.shape)"); continue }
                let x = try fa.floats(entry.name), y = try fb.floats(entry.name)
                var m = 0.0
                for i in x.indices { m = max(m, Double(abs(x[i] - y[i]))) }
                tensors.append((entry.name, m))
            }
            for entry in fb.entries where fa.entry(entry.name) == nil { notes.append("\(entry.name) only in B") }
            tensors.sort { $0.1 > $1.1 }
            return WeightComparison(file: label, identical: false, tensors: tensors, note: notes.isEmpty ? nil : notes.joined(separator: "; "))
        } catch {
            return WeightComparison(file: label, identical: false, tensors: [], note: "cannot compare: \(error)")
        }
    }

    // MARK: Output

    public var json: JSON {
        func changes(_ list: [Change]) -> JSON { .array(list.map { .object([("path", .string($0.path)), ("a", $0.a ?? .null), ("b", $0.b ?? .null)]) }) }
        func number(_ x: Double?) -> JSON { x.map(JSON.double) ?? .null }
        return .object([
            ("a", .string(a)), ("b", .string(b)), ("identical", .bool(identical)),
            ("configuration", changes(configuration)), ("inputs", changes(inputs)),
            ("stages", .array(stages.map { .object([("id", .string($0.id)), ("key_a", $0.keyA.map(JSON.string) ?? .null),
                                                    ("key_b", $0.keyB.map(JSON.string) ?? .null), ("reason", .string($0.reason))]) })),
            ("layout", changes(layout)),
            ("outputs", .array(outputs.map { .object([("stage", .string($0.stage)), ("path", .string($0.path)), ("same_key", .bool($0.sameKey))]) })),
            ("losses", .array(losses.map { .object([("stage", .string($0.stage)), ("diverges_at_step", $0.step.map(JSON.int) ?? .null),
                                                    ("a", number($0.a)), ("b", number($0.b)), ("final_a", number($0.finalA)), ("final_b", number($0.finalB))]) })),
            ("eval", .array(scores.map { .object([("stage", .string($0.stage)), ("score", .string($0.name)), ("a", number($0.a)), ("b", number($0.b))]) })),
            ("weights", .array(weights.map { w in .object([("file", .string(w.file)), ("identical", .bool(w.identical)),
                                                            ("max_abs_diff", .object(w.tensors.map { ($0.name, .double($0.maxAbsDiff)) })),
                                                            ("note", w.note.map(JSON.string) ?? .null)]) })),
        ])
    }

    public var text: String {
        func show(_ x: JSON?) -> String { x.map { $0.rendered(pretty: false) } ?? "(absent)" }
        func short(_ k: String?) -> String { k.map { String($0.prefix(12)) } ?? "—" }
        var out = "\(a) → \(b)\n"
        if identical {
            out += "\nIdentical: same recipe, inputs and stage keys; every artifact has the same SHA-256.\n"
        }
        if !configuration.isEmpty {
            out += "\nRecipe (\(configuration.count) change\(configuration.count == 1 ? "" : "s"))\n"
            for c in configuration { out += "  \(c.path): \(show(c.a)) → \(show(c.b))\n" }
        }
        if !inputs.isEmpty {
            out += "\nInput files (\(inputs.count))\n"
            for c in inputs { out += "  \(c.path): \(c.a?.stringValue.map { String($0.prefix(12)) } ?? "absent") → \(c.b?.stringValue.map { String($0.prefix(12)) } ?? "absent")\n" }
        }
        if !stages.isEmpty {
            out += "\nStages invalidated (\(stages.count))\n"
            for s in stages { out += "  \(s.id): \(short(s.keyA)) → \(short(s.keyB))  (\(s.reason))\n" }
        }
        let sameKeyOutputs = outputs.filter(\.sameKey)
        // Another layout (ranks, tensor, pipeline, data, ZeRO) computes the same thing split differently:
        // its training artifacts agree to float rounding, not bitwise.
        let layoutChanged = layout.contains { ["layout.ranks", "layout.tensor", "layout.pipeline", "layout.data", "layout.zero", "layout.zero_stage"].contains($0.path) }
        if !sameKeyOutputs.isEmpty {
            out += layoutChanged
                ? "\nSame key, another parallel layout: artifacts differ by float rounding (\(sameKeyOutputs.count))\n"
                : "\nNot reproduced: same key, different artifacts (\(sameKeyOutputs.count))\n"
            for o in sameKeyOutputs { out += "  \(o.stage): \(o.path)\n" }
        }
        if !layout.isEmpty {
            out += "\nLayout and environment (no effect on keys)\n"
            for c in layout where !c.path.hasPrefix("environment.memory") { out += "  \(c.path): \(show(c.a)) → \(show(c.b))\n" }
        }
        if losses.contains(where: { $0.step != nil || $0.finalA != $0.finalB }) {
            out += "\nLoss curves\n"
            for l in losses {
                if let step = l.step {
                    out += "  \(l.stage): diverge at step \(step) (\(l.a.map { Format.fixed($0, 6) } ?? "-") vs \(l.b.map { Format.fixed($0, 6) } ?? "-")); " +
                        "final \(l.finalA.map { Format.fixed($0, 4) } ?? "-") vs \(l.finalB.map { Format.fixed($0, 4) } ?? "-")\n"
                } else {
                    out += "  \(l.stage): identical\n"
                }
            }
        }
        let changedScores = scores.filter { $0.a != $0.b }
        if !changedScores.isEmpty {
            out += "\nEval scores\n"
            for s in changedScores {
                let delta = (s.a != nil && s.b != nil) ? String(format: "  (%+.4f)", s.b! - s.a!) : ""
                out += "  \(s.stage) \(s.name): \(s.a.map { Format.fixed($0, 4) } ?? "-") → \(s.b.map { Format.fixed($0, 4) } ?? "-")\(delta)\n"
            }
        }
        let differentWeights = weights.filter { !$0.identical }
        if !weights.isEmpty {
            out += "\nWeights: \(weights.count - differentWeights.count) of \(weights.count) files bitwise identical\n"
            for w in differentWeights {
                let top = w.tensors.prefix(3).map { "\($0.name) \(Format.scientific($0.maxAbsDiff))" }.joined(separator: ", ")
                out += "  \(w.file): max |Δ| \(w.tensors.first.map { Format.scientific($0.maxAbsDiff) } ?? "?")" + (top.isEmpty ? "" : " (\(top))") +
                    (w.note.map { "; \($0)" } ?? "") + "\n"
            }
        }
        return out
    }
}
