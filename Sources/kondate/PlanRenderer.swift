import Foundation
import KondatePlan
import KondateRecipe
import KondateSupport

/// The human-readable plan.
struct PlanRenderer {
    let plan: Plan

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

    func render() -> String {
        let r = plan.recipe, p = r.parallel, m = r.model, c = r.cluster
        var out = "\(r.name) — \(r.file)\n"
        if let d = r.description { out += d.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n" }
        out += "\n"
        let spec = DeviceCatalog.spec(c.device.rawValue)
        out += pad("Topology", 13) + "\(c.nodes) node\(c.nodes == 1 ? "" : "s") × \(c.devicesPerNode) \(c.device.rawValue) = \(plan.world) device\(plan.world == 1 ? "" : "s")"
        out += " (\(Format.bytes(Double(c.deviceMemory))), \(Format.si(c.peakFlops, "FLOP/s")) \(r.trainingPrecision.rawValue) each)\n"
        if let spec { out += pad("", 13) + spec.description + "\n" }
        var features: [String] = []
        if p.sequenceParallel { features.append("sequence parallel") }
        if p.zeroStage > 0 { features.append("ZeRO-\(p.zeroStage)") }
        features.append("recompute \(p.recompute)")
        out += pad("Parallelism", 13) + "tensor \(p.tensor) × pipeline \(p.pipeline) × data \(p.data); " + features.joined(separator: ", ") + "\n"
        if let pre = r.pretrain {
            out += pad("Batch", 13) + "global \(Format.grouped(pre.globalBatch)) = micro \(p.microBatch) × data \(p.data) × accumulation \(plan.gradientAccumulation)"
            out += " → \(Format.grouped(plan.tokensPerStep)) tokens/step\n"
            out += pad("Training", 13) + "\(Format.grouped(plan.steps)) steps → \(Format.grouped(plan.trainingTokens)) tokens (\(Format.count(Double(plan.trainingTokens))))\n"
            out += pad("Schedule", 13) + "lr \(Format.number(pre.lr)) → \(Format.number(pre.schedule.minLR)) \(pre.schedule.kind)"
            if let w = pre.schedule.warmupSteps { out += ", warm-up \(Format.grouped(w)) steps" }
            if let f = pre.schedule.warmupFraction { out += ", warm-up \(Format.percent(f))" }
            out += "; AdamW β \(pre.betas.map(Format.number).joined(separator: "/")), wd \(Format.number(pre.weightDecay)), clip \(Format.number(pre.gradClip)); \(pre.precision)\n"
        }

        // Parameters
        let n = plan.parameters
        out += "\nParameters" + lpad(Format.grouped(n.total), 40) + "  (\(Format.count(Double(n.total))))\n"
        func row(_ label: String, _ detail: String, _ value: Int) -> String {
            "  " + pad(label, 16) + pad(detail, 24) + lpad(Format.grouped(value), 16) + "\n"
        }
        out += row("embedding", "\(Format.grouped(m.vocabSize)) × \(Format.grouped(m.hidden))", n.embedding)
        if n.positions > 0 { out += row("positions", "\(Format.grouped(m.maxPositions)) × \(Format.grouped(m.hidden))", n.positions) }
        out += row("layers", "\(m.layers) × \(Format.grouped(n.perLayer))", n.perLayer * n.layers)
        out += row("  attention", "per layer", n.attentionPerLayer)
        out += row("  mlp", "per layer (\(m.activation))", n.mlpPerLayer)
        out += row("  norms", "per layer", n.normsPerLayer)
        out += row("final norm", "", n.finalNorm)
        out += row("head", m.tieEmbeddings ? "tied to the embedding" : "untied", n.head)

        // Compute
        if let cost = plan.cost {
            out += "\nCompute (model FLOPs per token 6N + 12·L·d·T; docs/plan.md)\n"
            out += "  per token     \(Format.scientific(cost.modelFlopsPerToken)) FLOPs (N = \(Format.count(Double(n.matmul))) matmul weights)\n"
            out += "  total         \(Format.scientific(cost.modelFlops)) model FLOPs; \(Format.scientific(cost.hardwareFlops)) with recompute; 6ND \(Format.scientific(cost.sixND))\n"
            let step = cost.step
            out += "  time          \(Format.duration(cost.seconds)) = \(seconds(step.total)) per step (step-time model below) × \(Format.grouped(plan.steps)) steps"
            out += " → \(Format.grouped(Int(saturating: cost.deviceHours.rounded()))) device-hours, \(Format.count(cost.tokensPerSecond)) tokens/s\n"
            out += "  at MFU        \(Format.duration(cost.mfuSeconds)) at \(Format.percent(cost.mfu)) MFU → \(Format.grouped(Int(saturating: cost.mfuDeviceHours.rounded()))) device-hours"
            out += " (cluster.assumed_mfu, --mfu); the step-time model implies \(Format.percent(cost.impliedMFU)) MFU\n"
            out += stepTime(cost)
        }

        // Memory
        let mem = plan.memory, peak = mem.peak
        let limit = Double(mem.deviceMemory)
        if let runtime = plan.runtime {
            out += runtimeMemory(runtime, limit: limit)
        } else {
        out += "\nMemory per device (peak: pipeline stage \(peak.index) of \(p.pipeline))"
        out += "  \(Format.bytes(peak.total)) of \(Format.bytes(limit)) (\(Format.percent(peak.total / limit)))\n"
        let b = mem.bytesPerParameter
        out += "  weights       " + lpad(Format.bytes(peak.weights), 11) + "  \(Format.count(peak.parameters)) parameters × \(Format.number(b.weights)) B\n"
        out += "  gradients     " + lpad(Format.bytes(peak.gradients), 11) + "  × \(Format.number((b.gradients * 100).rounded() / 100)) B\n"
        out += "  optimizer     " + lpad(Format.bytes(peak.optimizer), 11) + "  × \(Format.number((b.optimizer * 100).rounded() / 100)) B (zero_stage \(p.zeroStage))\n"
        out += "  activations   " + lpad(Format.bytes(peak.activations), 11) + "  \(Format.bytes(mem.activationBytesPerLayer))/layer × \(m.layers / p.pipeline) layers × \(peak.inFlightMicroBatches) in flight (recompute \(p.recompute), \(m.attentionKernel) attention)\n"
        if mem.stages.count > 1 {
            out += "  by stage      " + mem.stages.map { "\($0.index): \(Format.bytes($0.total))" }.joined(separator: " · ") + "\n"
        }
        }

        // Corpus
        if let mix = plan.mix {
            out += "\nCorpus mix (token shares of \(Format.count(Double(mix.trainingTokens))) training tokens)\n"
            out += "  " + pad("source", 18) + pad("lang", 6) + lpad("available", 11) + lpad("drawn", 11) + lpad("share", 8) + lpad("epochs", 9) + "\n"
            for s in mix.shares {
                out += "  " + pad(s.source, 18) + pad(s.language ?? "", 6) + lpad(s.available.map { Format.count(Double($0)) } ?? "?", 11)
                out += lpad(Format.count(s.drawn), 11) + lpad(Format.percent(s.fraction), 8) + lpad(s.epochs.map { Format.fixed($0, 3) } ?? "?", 9) + "\n"
            }
        }

        // Graph
        out += "\nExecution graph (\(plan.graph.stages.count) stages)\n"
        let width = min(36, (plan.graph.stages.map(\.id.count).max() ?? 10) + 2)
        for s in plan.graph.stages {
            out += "  " + pad(s.id, width) + s.summary
            if !s.inputs.isEmpty { out += "  ← " + (s.inputs.count > 3 ? "\(s.inputs.count) inputs" : s.inputs.joined(separator: ", ")) }
            out += "\n"
        }
        return out
    }
}

extension PlanRenderer {
    /// What Kondate's CPU runtime allocates per rank (docs/plan.md, "Kondate's CPU runtime").
    func runtimeMemory(_ runtime: RuntimeEstimate, limit: Double) -> String {
        let r = plan.recipe, p = r.parallel, peak = runtime.peak
        func line(_ label: String, _ bytes: Int, _ detail: String) -> String {
            "  " + pad(label, 14) + lpad(Format.bytes(Double(bytes)), 11) + (detail.isEmpty ? "" : "  " + detail) + "\n"
        }
        var out = "\nMemory per rank, Kondate's CPU runtime (peak: pipeline stage \(peak.index) of \(p.pipeline))"
        out += "  \(Format.bytes(Double(peak.total))) of \(Format.bytes(limit)) (\(Format.percent(Double(peak.total) / limit)))\n"
        out += line("weights", peak.weights, "\(Format.count(Double(peak.parameters))) parameters × 4 B (f32 master weights)")
        out += line("gradients", peak.gradients, p.zeroStage >= 2 && p.data > 1 ? "f32, ZeRO-2: the largest part held at a time + the shard" : "f32")
        out += line("optimizer", peak.optimizer, "AdamW m and v, f32" + (p.zeroStage >= 1 && p.data > 1 ? ", sharded over \(p.data) data ranks" : ""))
        out += line("activations", peak.activations, "\(peak.layers) layers × \(peak.inFlightMicroBatches) in flight (recompute \(p.recompute))")
        if peak.bf16Workspace > 0 { out += line("bf16 operands", peak.bf16Workspace, "rounded-sgemm route (oneDNN's bf16 needs half)") }
        if peak.communication > 0 { out += line("communication", peak.communication, "") }
        out += line("process", peak.baseline, "Swift runtime and libraries, measured")
        if runtime.stages.count > 1 {
            out += "  by stage      " + runtime.stages.map { "\($0.index): \(Format.bytes(Double($0.total)))" }.joined(separator: " · ") + "\n"
        }
        return out
    }

    /// "17.63 s", "358.2 ms", "4.5 µs".
    func seconds(_ x: Double) -> String {
        guard x.isFinite else { return "∞" }
        if x >= 1 || x == 0 { return Format.fixed(x, 2) + " s" }
        if x >= 1e-3 { return Format.fixed(x * 1e3, 1) + " ms" }
        return Format.fixed(x * 1e6, 1) + " µs"
    }

    /// The step-time model's breakdown (docs/cost-model.md).
    func stepTime(_ cost: TrainingCost) -> String {
        let s = cost.step, link = s.interconnect, c = plan.recipe.cluster
        var out = "\nStep time (docs/cost-model.md; the time line above uses it: unlike one assumed MFU it follows the layout and the interconnect)\n"
        func line(_ label: String, _ value: Double, _ detail: String) -> String {
            "  " + pad(label, 12) + lpad(seconds(value), 10) + "  " + detail + "\n"
        }
        let bandwidth = { (x: Double) in Format.si(x, "B/s") }
        var links = "\(bandwidth(link.intraNodeBandwidth)) within a node, \(bandwidth(link.interNodeBandwidth)) per node between nodes (per direction);"
        links += " latency \(Format.fixed(link.intraNodeLatency * 1e6, 1)) / \(Format.fixed(link.interNodeLatency * 1e6, 1)) µs"
        out += "  " + pad("interconnect", 24) + links + "\n"
        let origin = link.overrides.isEmpty ? "the \(c.device) catalog" : "cluster." + link.overrides.joined(separator: ", ") + ", else the \(c.device) catalog"
        out += "  " + pad("", 24) + "from \(origin): \(link.description)\n"
        let stage = s.stageSeconds.count > 1 ? " on stage \(s.slowestStage) of \(s.stageSeconds.count) (the slowest)" : ""
        let rate = plan.runtime == nil ? "at \(Format.percent(s.computeEfficiency)) of \(Format.si(c.peakFlops, "FLOP/s"))"
            : "Kondate's CPU kernels scaled to \(Format.si(c.peakFlops, "FLOP/s")) sgemm (docs/plan.md)"
        out += line("compute", s.compute, "\(s.microBatches) micro batch\(s.microBatches == 1 ? "" : "es") × \(seconds(s.stageSeconds[s.slowestStage]))\(stage) \(rate)")
        func traffic(_ t: CommunicationCost.Traffic) -> String {
            let place: String
            switch t.link {
            case .interNode:
                let sharing = t.sharing > 1 ? ", \(t.sharing) \(t.kind == "pipeline" ? "senders" : "groups") per node share its network" : ""
                place = t.kind == "pipeline" ? "between nodes\(sharing)" : "\(t.group) ranks on \(t.nodes) nodes\(sharing)"
            default: place = t.kind == "pipeline" ? "within a node" : "\(t.group) ranks within a node"
            }
            let what: String
            if t.kind == "data" {
                let params = Format.count(plan.memory.stages.map(\.parameters).max() ?? 0)
                let buckets = Int(t.operations)
                what = "\(t.collective) of \(params) parameters per device in \(buckets) bucket\(buckets == 1 ? "" : "s")"
            } else {
                what = "\(Format.grouped(Int(t.operations))) × \(t.collective) of \(Format.bytes(t.bytesPerOperation))"
            }
            var text = "\(what), \(place), \(bandwidth(t.bandwidth)) per rank"
            if t.exposedFraction < 1 { text += "; \(Format.percent(t.exposedFraction)) of \(seconds(t.seconds)) exposed" }
            return text
        }
        if let t = s.tensor { out += line("tensor", t.exposedSeconds, traffic(t) + (plan.recipe.parallel.sequenceParallel ? " (sequence parallel)" : "") + ", not overlapped") }
        if let t = s.pipeline { out += line("pipeline", t.exposedSeconds, traffic(t) + ", 2 per slot of the 1F1B schedule") }
        if let t = s.data {
            let note = t.exposedFraction < 1 ? " (overlapped with the backward pass but the last bucket)"
                : t.operations == 1 ? " (one bucket: not overlapped)" : " (not overlapped)"
            out += line("data", t.exposedSeconds, traffic(t) + note)
        }
        if s.stageSeconds.count > 1 {
            let p = s.stageSeconds.count
            out += line("bubble", s.bubble, "(p−1)/(m+p−1) = \(p - 1)/\(s.microBatches + p - 1) = \(Format.percent(s.bubbleFraction)) of the pipeline")
        }
        if s.update > 0 { out += line("update", s.update, "AdamW and zeroing the gradients") }
        out += line("step", s.total, "compute + tensor + pipeline + exposed data + bubble" + (s.update > 0 ? " + update" : ""))
        return out
    }
}

/// The resolved recipe as YAML, each scalar annotated with where it was set.
enum ResolvedYAML {
    static func render(_ node: RNode, root: String) -> String {
        var out = ""
        write(node, indent: 0, into: &out)
        return out
    }

    static func scalar(_ node: RNode) -> String? {
        switch node.value {
        case .null: return "null"
        case let .bool(b): return String(b)
        case let .int(i): return String(i)
        case let .double(d): return Format.number(d)
        case let .string(s):
            let plain = !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || "-_./@+".contains($0) } && !["true", "false", "null", "yes", "no"].contains(s)
                && !(s.first.map { $0.isNumber || $0 == "-" || $0 == "." } ?? false)
            return plain ? s : JSON.quoted(s)
        case let .array(items):
            let parts = items.compactMap { item -> String? in if case .object = item.value { return nil } else { return scalar(item) } }
            return parts.count == items.count ? "[" + parts.joined(separator: ", ") + "]" : nil
        case .object: return nil
        }
    }

    static func write(_ node: RNode, indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent)
        for entry in node.entries ?? [] {
            if let text = scalar(entry.node) {
                let line = "\(pad)\(entry.key): \(text)"
                let spacing = String(repeating: " ", count: max(1, 56 - line.count))
                out += line + spacing + "# " + entry.node.provenance.summary + "\n"
            } else if let items = entry.node.array {
                out += "\(pad)\(entry.key):\n"
                for item in items {
                    out += "\(pad)  -\n"
                    write(item, indent: indent + 2, into: &out)
                }
            } else {
                out += "\(pad)\(entry.key):\n"
                write(entry.node, indent: indent + 1, into: &out)
            }
        }
    }
}
