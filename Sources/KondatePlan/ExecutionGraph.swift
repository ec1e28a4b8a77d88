import KondateRecipe
import KondateSupport

/// The stages a recipe compiles to, in an order where every stage follows its inputs. Each stage is a
/// typed value (`Stage`): its kind, the exact configuration its runner reads (`StagePayload`), the
/// stages it reads from and the engine that executes it.
///
///     corpus.prepare.<src> ─▶ tokenizer (trained or loaded) ─▶ corpus.tokenize.<src> ─▶ corpus.mix ─▶ pretrain
///     ─▶ tune.<stage> ─▶ eval.<suite>.<checkpoint> ─▶ release
public struct ExecutionGraph: Sendable {
    public var stages: [Stage]

    public func stage(_ id: String) -> Stage? { stages.first { $0.id == id } }

    public init(recipe r: Recipe) {
        let tree = r.tree
        var stages: [Stage] = []
        let sources = r.corpus?.sources ?? []
        let special = r.tokenizer?.specialTokens ?? [:]
        func add(_ id: String, _ payload: StagePayload, kind: StageKind, inputs: [String], engine: Engine = .kondate, directory: String, _ summary: String) {
            stages.append(Stage(id: id, kind: kind, payload: payload, inputs: inputs, engine: engine, summary: summary, directory: directory))
        }
        for s in sources {
            let filters = s.filters.map(\.name)
            add("corpus.prepare.\(s.name)", .corpusPrepare(CorpusPrepareConfig(source: s, paths: InputPaths(tree, "corpus.sources.\(s.name).paths"),
                                                                                onError: r.corpus!.onError, seed: r.seed)),
                kind: .corpusPrepare, inputs: [], directory: "corpus/prepared/\(s.name)",
                "read \(s.paths.count) path\(s.paths.count == 1 ? "" : "s") (\(s.format))" + (filters.isEmpty ? "" : ", filters: " + filters.joined(separator: ", ")))
        }
        if let tok = r.tokenizer {
            let config = TokenizerConfig(format: tok.format,
                                         path: InputPath(tree, "tokenizer.path"),
                                         train: tok.train, vocabSize: tok.vocabSize, specialTokens: special, additionalSpecialTokens: tok.additionalSpecialTokens)
            if let train = tok.train {
                add("tokenizer", .tokenizer(config), kind: .tokenizerTrain, inputs: train.sources.map { "corpus.prepare.\($0)" }, directory: "tokenizer",
                    "train \(train.algorithm) tokenizer, vocabulary \(train.vocabSize)")
            } else {
                add("tokenizer", .tokenizer(config), kind: .tokenizerLoad, inputs: [], directory: "tokenizer",
                    "load \(tok.path ?? "?")" + (tok.name.map { " (\($0))" } ?? ""))
            }
        }
        let tokenizerInput = r.tokenizer == nil ? [] : ["tokenizer"]
        for s in sources {
            add("corpus.tokenize.\(s.name)", .corpusTokenize(CorpusTokenizeConfig(source: s.name, endOfDocument: special["eos"], modelVocabSize: r.model.vocabSize)),
                kind: .corpusTokenize, inputs: ["corpus.prepare.\(s.name)"] + tokenizerInput, directory: "corpus/tokens/\(s.name)",
                "tokenize to Megatron .bin/.idx")
        }
        let training = Engine.default(for: r)
        if let corpus = r.corpus, let p = r.pretrain, !sources.isEmpty {
            let mix = CorpusMixConfig(sources: sources.map { .init(name: $0.name, weight: $0.weight, budget: $0.budget, maxEpochs: $0.maxEpochs) },
                                      samples: p.steps.multipliedReportingOverflow(by: p.globalBatch).partialValue, seqLen: r.model.seqLen,
                                      heldOut: corpus.heldOut, seed: r.seed)
            add("corpus.mix", .corpusMix(mix), kind: .corpusMix, inputs: sources.map { "corpus.tokenize.\($0.name)" }, directory: "corpus/mix",
                "blend \(sources.count) source\(sources.count == 1 ? "" : "s") by token share")
        }
        if let p = r.pretrain {
            add("pretrain", .pretrain(PretrainConfig(model: r.model, pretrain: p, parallel: r.parallel, seed: r.seed, specialTokens: special)),
                kind: .pretrain, inputs: (stages.contains { $0.id == "corpus.mix" } ? ["corpus.mix"] : []) + tokenizerInput, engine: training,
                directory: "pretrain", "\(Format.grouped(p.steps)) steps × \(p.globalBatch) × \(r.model.seqLen) tokens")
        }
        func template(_ name: String) -> TemplateRef { r.template(named: name).map(TemplateRef.recipe) ?? .builtin(name) }
        // Tune stages in dependency order.
        var pending = r.tune
        var placed = Set<String>()
        while !pending.isEmpty {
            let before = pending.count
            pending.removeAll { t in
                let start: TuneStart
                if t.from.hasPrefix("hf:") {
                    start = .huggingFace(InputPath(written: String(t.from.dropFirst(3)), location: tree.at("tune.\(t.name).from")?.location))
                } else {
                    start = .stage(t.from)
                }
                let parent = t.from.hasPrefix("hf:") || t.from == "pretrain" ? nil : t.from
                if let parent, !placed.contains("tune.\(parent)") { return false }
                let input = t.from.hasPrefix("hf:") ? [] : [t.from == "pretrain" ? "pretrain" : "tune.\(t.from)"]
                let datasets = t.datasets.map { TuneDatasetInput(dataset: $0, paths: InputPaths(tree, "tune.\(t.name).datasets.\($0.name).paths")) }
                let config = TuneConfig(stage: t, start: start, template: template(t.template), datasets: datasets, specialTokens: special,
                                        nanPolicy: r.pretrain?.nanPolicy ?? .stop, parallel: r.parallel, seed: r.seed)
                add("tune.\(t.name)", .tune(config), kind: .tune, inputs: input + tokenizerInput, directory: "tune/\(t.name)",
                    "\(t.datasets.count) dataset\(t.datasets.count == 1 ? "" : "s"), template \(t.template), \(Format.number(t.epochs)) epoch\(t.epochs == 1 ? "" : "s")" +
                        (t.from.hasPrefix("hf:") ? ", from \(t.from)" : ""))
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
                let config = EvalConfig(suite: suite, checkpoint: checkpoint, datasetPaths: InputPaths(tree, "eval.\(suite.name).datasets"),
                                        template: suite.template.map(template), specialTokens: special, seed: r.seed)
                add(id, .eval(config), kind: .eval, inputs: [source] + tokenizerInput, directory: "eval/\(suite.name)/\(checkpoint)",
                    "\(suite.kind) on \(suite.datasets.count) dataset path\(suite.datasets.count == 1 ? "" : "s")")
            }
        }
        if let rel = r.release {
            // The model card reads the mixture's report and every training stage's summary.
            let source = rel.checkpoint == "pretrain" ? "pretrain" : "tune.\(rel.checkpoint)"
            let read = stages.filter { [.corpusMix, .pretrain, .tune].contains($0.kind) }.map(\.id)
            let inputs = [source] + tokenizerInput + read.filter { $0 != source } + evalIDs
            let config = ReleaseConfig(release: rel, recipeName: r.name, recipeFile: r.file, recipeSHA256: tree.json.canonicalHash, overrides: r.overrides)
            add("release", .release(config), kind: .release, inputs: inputs, directory: "release",
                "\(rel.name): " + rel.formats.map(\.rawValue).joined(separator: ", ") + " (\(rel.dtype.rawValue))")
        }
        self.stages = stages
    }

    public var json: JSON {
        .array(stages.map { .object([("id", .string($0.id)), ("kind", .string($0.kind.rawValue)), ("engine", .string($0.engine.rawValue)),
                                     ("inputs", .array($0.inputs.map { .string($0) })), ("summary", .string($0.summary))]) })
    }

    /// Graphviz.
    public var dot: String {
        var out = "digraph kondate {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n"
        for s in stages { out += "  \(JSON.quoted(s.id)) [label=\(JSON.quoted(s.id + "\\n" + s.kind.rawValue))];\n" }
        for s in stages { for i in s.inputs { out += "  \(JSON.quoted(i)) -> \(JSON.quoted(s.id));\n" } }
        return out + "}\n"
    }

    /// Mermaid flowchart (renders in GitHub Markdown).
    public var mermaid: String {
        var ids: [String: String] = [:]
        for (i, s) in stages.enumerated() { ids[s.id] = "s\(i)" }
        var out = "flowchart LR\n"
        for s in stages { out += "  \(ids[s.id]!)[\"\(s.id)<br/><small>\(s.kind.rawValue)</small>\"]\n" }
        for s in stages { for i in s.inputs { if let from = ids[i] { out += "  \(from) --> \(ids[s.id]!)\n" } } }
        return out
    }
}
