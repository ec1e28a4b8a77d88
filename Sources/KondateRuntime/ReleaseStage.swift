import Foundation
import KondateModel
import KondatePlan
import KondateRecipe
import KondateSupport
import KondateTraining

/// The `release` stage: a directory that transformers loads as it is and that says exactly what made it.
///
/// `release/` holds, as `release.contents` lists:
/// - `model`: config.json (with `torch_dtype` set to `release.dtype`), generation_config.json and
///   model.safetensors in that dtype (BF16 and F16 rounded to nearest even from the fp32 weights);
/// - `tokenizer`: the checkpoint's tokenizer files;
/// - `manifest`: the run's manifest.json as it stood when the release was made (every earlier stage);
/// - `eval_results`: eval_results.json, the scores of every eval suite on the released checkpoint;
/// - `model_card`: README.md in the layout of Hugging Face model cards: front matter, architecture,
///   data mix with tokens, training hyperparameters, evaluation table, and how to reproduce it.
///
/// The model card holds no times or paths of the machine, so two runs of a recipe give the same card.
public struct ReleaseStage {
    public var config: ReleaseConfig
    /// The recipe the model card describes (its key holds the recipe's SHA-256, so the card is never stale).
    public var recipe: Recipe
    public var directory: String
    public var log: (String) -> Void

    public init(config: ReleaseConfig, recipe: Recipe, directory: String, log: @escaping (String) -> Void = { _ in }) {
        self.config = config
        self.recipe = recipe
        self.directory = directory
        self.log = log
    }

    /// The safetensors dtype and transformers' `torch_dtype` of a release dtype.
    static func dtypes(_ dtype: Precision) -> (safetensors: String, torch: String) {
        switch dtype {
        case .fp32: ("F32", "float32")
        case .bf16: ("BF16", "bfloat16")
        case .fp16: ("F16", "float16")
        }
    }

    public func run() throws -> JSON {
        let release = config.release
        let locations = RecipeLocations(recipe.tree)
        let at = { (key: String) in locations.at("release.\(key)") }
        let source = RunPaths.modelDirectory(checkpoint: release.checkpoint, runDirectory: directory)
        let out = directory + "/release"
        let fm = FileManager.default
        guard fm.fileExists(atPath: source + "/config.json") else {
            throw KondateError(.stageInput, "release: checkpoint '\(release.checkpoint)' has no model at \(source)", at: at("checkpoint"))
        }
        let (safetensorsDType, torchDType) = Self.dtypes(release.dtype)
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let contents = Set(release.contents)
        var written = [String]()
        func copy(_ name: String) throws {
            guard fm.fileExists(atPath: source + "/" + name) else { return }
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: source + "/" + name)), to: out + "/" + name)
            written.append(name)
        }
        if contents.contains(.model) {
            let model = try ComputeBackend.cpuFP32.loadModel(directory: source)
            try HFModel.writeWeights(model, to: out + "/model.safetensors", dtype: safetensorsDType)
            var config = try JSONParser.parse(try String(contentsOfFile: source + "/config.json", encoding: .utf8))
            if case var .object(entries) = config, let i = entries.firstIndex(where: { $0.0 == "torch_dtype" }) {
                entries[i].1 = .string(torchDType)
                config = .object(entries)
            }
            try AtomicFile.write(Data((config.rendered() + "\n").utf8), to: out + "/config.json")
            written += ["config.json", "model.safetensors"]
            try copy("generation_config.json")
        }
        if contents.contains(.tokenizer) {
            for name in ["tokenizer.json", "tokenizer.model", "tokenizer_config.json"] { try copy(name) }
        }
        if contents.contains(.manifest), fm.fileExists(atPath: directory + "/manifest.json") {
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: directory + "/manifest.json")), to: out + "/manifest.json")
            written.append("manifest.json")
        }
        let scores = evalScores(checkpoint: release.checkpoint)
        if contents.contains(.evalResults) {
            try AtomicFile.write(Data((JSON.object(scores.map { ($0.suite, .object($0.scores.map { ($0.0, $0.1.map(JSON.double) ?? .null) })) })
                .rendered() + "\n").utf8), to: out + "/eval_results.json")
            written.append("eval_results.json")
        }
        if contents.contains(.modelCard) {
            try AtomicFile.write(Data(modelCard(release: release, scores: scores).utf8), to: out + "/README.md")
            written.append("README.md")
        }
        log("release: \(release.name) (\(release.dtype.rawValue)) from \(release.checkpoint): \(written.sorted().joined(separator: ", "))")
        return .object([("name", .string(release.name)), ("checkpoint", .string(release.checkpoint)), ("dtype", .string(release.dtype.rawValue)),
                        ("files", .array(written.sorted().map(JSON.string)))])
    }

    /// Each suite's headline scores on a checkpoint, from `eval/<suite>/summary.json`.
    func evalScores(checkpoint: String) -> [(suite: String, scores: [(String, Double?)])] {
        recipe.eval.compactMap { suite in
            guard suite.checkpoints.contains(checkpoint),
                  let data = FileManager.default.contents(atPath: "\(directory)/eval/\(suite.name)/summary.json"),
                  let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)),
                  let entry = json["checkpoints"]?.arrayValue?.first(where: { $0["checkpoint"]?.stringValue == checkpoint }),
                  case let .object(scores)? = entry["scores"] else { return nil }
            return (suite.name, scores.map { ($0.0, $0.1.doubleValue) })
        }
    }

    func modelCard(release: Recipe.Release, scores: [(suite: String, scores: [(String, Double?)])]) -> String {
        let m = recipe.model
        func json(_ path: String) -> JSON? {
            guard let data = FileManager.default.contents(atPath: directory + "/" + path) else { return nil }
            return try? JSONParser.parse(String(decoding: data, as: UTF8.self))
        }
        var card = "---\n"
        if let license = release.license { card += "license: \(license)\n" }
        let languages = Set((recipe.corpus?.sources ?? []).compactMap(\.language).filter { $0.count == 2 }).sorted()
        if !languages.isEmpty { card += "language:\n" + languages.map { "- \($0)\n" }.joined() }
        card += "library_name: transformers\npipeline_tag: text-generation\ntags:\n- kondate\n---\n\n"
        card += "# \(release.name)\n\n"
        if let description = recipe.description { card += description + "\n\n" }
        card += "Trained with Kondate from the recipe `\(config.recipeName)` (recipe SHA-256 `\(config.recipeSHA256.prefix(16))…`); "
        card += "released from the `\(release.checkpoint)` checkpoint in \(release.dtype).\n\n"

        card += "## Model\n\n| | |\n|---|---|\n"
        card += "| architecture | \(m.arch == .llama ? "LlamaForCausalLM" : "GPT2LMHeadModel") |\n"
        card += "| hidden size | \(m.hidden) |\n| FFN size | \(m.ffn) |\n| layers | \(m.layers) |\n"
        card += "| attention heads | \(m.heads) (key/value heads \(m.kvHeads)) |\n| context length | \(m.seqLen) |\n| vocabulary | \(m.vocabSize) |\n"
        if let pretrain = json("pretrain/summary.json"), let params = json("pretrain/model/config.json") {
            _ = params
            if let tokens = pretrain["tokens"]?.intValue { card += "| pretraining tokens | \(Format.grouped(tokens)) |\n" }
        }
        card += "\n"

        if let mix = json("corpus/mix/mixture.json"), let sources = mix["sources"]?.arrayValue {
            card += "## Pretraining data\n\n| source | share | tokens drawn | epochs |\n|---|---|---|---|\n"
            for s in sources {
                card += "| \(s["name"]?.stringValue ?? "?") | \(Format.percent(s["realised_share"]?.doubleValue ?? 0)) | " +
                    "\(Format.grouped(s["drawn_tokens"]?.intValue ?? 0)) | \(Format.fixed(s["epochs"]?.doubleValue ?? 0, 3)) |\n"
            }
            card += "\n"
        }

        card += "## Training\n\n"
        if let p = recipe.pretrain {
            card += "- Pretraining: \(Format.grouped(p.steps)) steps × \(p.globalBatch) sequences × \(m.seqLen) tokens; AdamW (lr \(p.lr), " +
                "betas \(p.betas.map { String($0) }.joined(separator: ", ")), weight decay \(p.weightDecay)), \(p.schedule.kind) schedule, " +
                "gradient clipping \(p.gradClip), seed \(recipe.seed)."
            if let summary = json("pretrain/summary.json"), let loss = summary["final_loss"]?.doubleValue {
                card += " Final loss \(Format.fixed(loss, 3))" + (summary["held_out_loss"]?.doubleValue.map { ", held-out \(Format.fixed($0, 3))" } ?? "") + "."
            }
            card += "\n"
        }
        for t in recipe.tune {
            card += "- Tuning `\(t.name)` (from `\(t.from)`): \(t.datasets.map(\.name).joined(separator: ", ")); template `\(t.template)`, " +
                "\(Format.number(t.epochs)) epochs, lr \(t.lr), global batch \(t.globalBatch)\(t.packing ? ", packed" : "")."
            if let summary = json("tune/\(t.name)/summary.json"), let loss = summary["final_loss"]?.doubleValue {
                card += " Final loss \(Format.fixed(loss, 3))."
            }
            card += "\n"
        }
        card += "\n"

        if !scores.isEmpty {
            card += "## Evaluation\n\nScores of the released checkpoint (`\(release.checkpoint)`):\n\n| suite | metric | score |\n|---|---|---|\n"
            for suite in scores {
                for (metric, value) in suite.scores {
                    card += "| \(suite.suite) | \(metric) | \(value.map { Format.fixed($0, 4) } ?? "-") |\n"
                }
            }
            card += "\n"
        }

        card += "## How to reproduce\n\n```sh\n"
        card += ShellQuote.join(["kondate", "run", (config.recipeFile as NSString).lastPathComponent] + config.overrides.flatMap { ["--set", $0] } +
                                ["--out", "runs/\(config.recipeName)"]) + "\n"
        card += "kondate verify release/   # re-executes the run in manifest.json and compares every output\n```\n\n"
        card += "`manifest.json` lists the resolved recipe, every input file with its SHA-256, each stage's key and outputs, and the environment.\n"
        return card
    }
}
