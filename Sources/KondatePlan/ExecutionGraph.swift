import KondateRecipe
import KondateSupport

/// The stages a recipe compiles to, in an order where every stage follows its inputs.
///
///     corpus.prepare.<src> ─▶ tokenizer (when trained) ─▶ corpus.tokenize.<src> ─▶ corpus.mix ─▶ pretrain
///     ─▶ tune.<stage> ─▶ eval.<suite>.<checkpoint> ─▶ release
public struct ExecutionGraph: Sendable {
    public struct Stage: Sendable, Equatable {
        public var id: String
        public var kind: String
        public var inputs: [String]
        /// One line saying what the stage does.
        public var summary: String
    }

    public var stages: [Stage]

    public init(recipe r: Recipe) {
        var stages: [Stage] = []
        let sources = r.corpus?.sources ?? []
        for s in sources {
            let filters = s.filters.map(\.name)
            stages.append(Stage(id: "corpus.prepare.\(s.name)", kind: "corpus.prepare", inputs: [],
                                summary: "read \(s.paths.count) path\(s.paths.count == 1 ? "" : "s") (\(s.format))" +
                                    (filters.isEmpty ? "" : ", filters: " + filters.joined(separator: ", "))))
        }
        if let tok = r.tokenizer {
            if let train = tok.train {
                stages.append(Stage(id: "tokenizer", kind: "tokenizer.train", inputs: train.sources.map { "corpus.prepare.\($0)" },
                                    summary: "train \(train.algorithm) tokenizer, vocabulary \(train.vocabSize)"))
            } else {
                stages.append(Stage(id: "tokenizer", kind: "tokenizer.load", inputs: [],
                                    summary: "load \(tok.path ?? "?")" + (tok.name.map { " (\($0))" } ?? "")))
            }
        }
        let tokenizerInput = r.tokenizer == nil ? [] : ["tokenizer"]
        for s in sources {
            stages.append(Stage(id: "corpus.tokenize.\(s.name)", kind: "corpus.tokenize", inputs: ["corpus.prepare.\(s.name)"] + tokenizerInput,
                                summary: "tokenize to Megatron .bin/.idx"))
        }
        if !sources.isEmpty {
            stages.append(Stage(id: "corpus.mix", kind: "corpus.mix", inputs: sources.map { "corpus.tokenize.\($0.name)" },
                                summary: "blend \(sources.count) source\(sources.count == 1 ? "" : "s") by token share"))
        }
        if let p = r.pretrain {
            stages.append(Stage(id: "pretrain", kind: "pretrain", inputs: (sources.isEmpty ? [] : ["corpus.mix"]) + tokenizerInput,
                                summary: "\(Format.grouped(p.steps)) steps × \(p.globalBatch) × \(r.model.seqLen) tokens"))
        }
        // Tune stages in dependency order.
        var pending = r.tune
        var placed = Set<String>()
        while !pending.isEmpty {
            let before = pending.count
            pending.removeAll { t in
                let parent = t.from.hasPrefix("hf:") || t.from == "pretrain" ? nil : t.from
                if let parent, !placed.contains("tune.\(parent)") { return false }
                let input = t.from.hasPrefix("hf:") ? [] : [t.from == "pretrain" ? "pretrain" : "tune.\(t.from)"]
                stages.append(Stage(id: "tune.\(t.name)", kind: "tune", inputs: input + tokenizerInput,
                                    summary: "\(t.datasets.count) dataset\(t.datasets.count == 1 ? "" : "s"), template \(t.template), \(Format.number(t.epochs)) epoch\(t.epochs == 1 ? "" : "s")" +
                                        (t.from.hasPrefix("hf:") ? ", from \(t.from)" : "")))
                placed.insert("tune.\(t.name)")
                return true
            }
            if pending.count == before { break } // a cycle; validation reports it
        }
        var evalIDs: [String] = []
        for suite in r.eval {
            for checkpoint in suite.checkpoints {
                let source = checkpoint == "pretrain" ? "pretrain" : "tune.\(checkpoint)"
                let id = "eval.\(suite.name).\(checkpoint)"
                evalIDs.append(id)
                stages.append(Stage(id: id, kind: "eval", inputs: [source] + tokenizerInput,
                                    summary: "\(suite.kind) on \(suite.datasets.count) dataset path\(suite.datasets.count == 1 ? "" : "s")"))
            }
        }
        if let rel = r.release {
            let source = rel.checkpoint == "pretrain" ? "pretrain" : "tune.\(rel.checkpoint)"
            stages.append(Stage(id: "release", kind: "release", inputs: [source] + tokenizerInput + evalIDs,
                                summary: "\(rel.name): " + rel.formats.map(\.rawValue).joined(separator: ", ") + " (\(rel.dtype.rawValue))"))
        }
        self.stages = stages
    }

    public var json: JSON {
        .array(stages.map { .object([("id", .string($0.id)), ("kind", .string($0.kind)),
                                     ("inputs", .array($0.inputs.map { .string($0) })), ("summary", .string($0.summary))]) })
    }

    /// Graphviz.
    public var dot: String {
        var out = "digraph kondate {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n"
        for s in stages { out += "  \(JSON.quoted(s.id)) [label=\(JSON.quoted(s.id + "\\n" + s.kind))];\n" }
        for s in stages { for i in s.inputs { out += "  \(JSON.quoted(i)) -> \(JSON.quoted(s.id));\n" } }
        return out + "}\n"
    }

    /// Mermaid flowchart (renders in GitHub Markdown).
    public var mermaid: String {
        var ids: [String: String] = [:]
        for (i, s) in stages.enumerated() { ids[s.id] = "s\(i)" }
        var out = "flowchart LR\n"
        for s in stages { out += "  \(ids[s.id]!)[\"\(s.id)<br/><small>\(s.kind)</small>\"]\n" }
        for s in stages { for i in s.inputs { if let from = ids[i] { out += "  \(from) --> \(ids[s.id]!)\n" } } }
        return out
    }
}
