import Foundation
import Testing
import KondatePlan
import KondateTestSupport
@testable import KondateRecipe

/// Loads a recipe (with `--set` overrides) that must pass every check.
func launchRecipe(_ file: String, set: [String] = []) throws -> Recipe {
    let path = file.hasPrefix("/") ? file : repositoryRoot.appendingPathComponent(file).path
    let loaded = RecipeFrontend.load(path: path, overrides: set.map(Override.init))
    return try #require(loaded.recipe, "\(file): \(loaded.diagnostics.errors.map(\.message))")
}

let runDirectory = "/shared/runs/llm-jp-13b-v2.0"

func launchSettings(recipe file: String = "recipes/llm-jp-13b-v2.0.yaml") -> LaunchSettings {
    var s = LaunchSettings(recipeFile: repositoryRoot.appendingPathComponent(file).path, runDirectory: runDirectory,
                           workingDirectory: repositoryRoot.path)
    s.kondateExecutable = "/opt/kondate/bin/kondate"
    return s
}

/// The refusal's diagnostics, failing the test when the launch was accepted.
func refusal(_ body: () throws -> Void) -> [Diagnostic] {
    do {
        try body()
    } catch let refused as LaunchRefused {
        return refused.diagnostics.items
    } catch {
        Issue.record("unexpected error \(error)")
        return []
    }
    Issue.record("the launch was not refused")
    return []
}

@Suite("kondate launch: quoting, mpirun, Slurm and Megatron-LM flags")
struct LaunchTests {
    // MARK: Quoting

    @Test func quotingKeepsPlainWordsAndQuotesTheRest() {
        #expect(ShellQuote.quote("runs/llm-jp-13b-v2.0") == "runs/llm-jp-13b-v2.0")
        #expect(ShellQuote.quote("--set") == "--set")
        #expect(ShellQuote.quote("model.hidden=64") == "model.hidden=64")
        #expect(ShellQuote.quote("a b") == "'a b'")
        #expect(ShellQuote.quote("it's") == "'it'\\''s'")
        #expect(ShellQuote.quote("$HOME") == "'$HOME'")
        #expect(ShellQuote.quote("") == "''")
        #expect(ShellQuote.quote("FOO=bar") == "'FOO=bar'")      // would be an assignment in command position
        #expect(ShellQuote.quote("line1\nline2") == "'line1\nline2'")
        #expect(ShellQuote.comment("a\nrm -rf /") == "a\\nrm -rf /")
    }

    /// The shell reads every quoted word back exactly: spaces, quotes, `$`, newlines, backslashes,
    /// backquotes, globs, `!`, `~`, an assignment, UTF-8 and the empty word.
    @Test func quotedWordsSurviveTheShell() throws {
        let words = ["plain", "two words", "it's", "say \"hi\"", "$HOME and ${PATH}", "line1\nline2\n", "back\\slash", "`date`", "$(date)",
                     "*", "~", "!event", "FOO=bar", "日本語 テキスト", "", "'", "''", "tab\there", "semi;colon&amp|pipe", "#not a comment"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "printf '%s\\0' " + ShellQuote.join(words)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        var parsed = String(decoding: data, as: UTF8.self).components(separatedBy: "\0")
        #expect(parsed.last == "")
        parsed.removeLast()
        #expect(parsed == words)
    }

    @Test func flagNumbers() {
        #expect(Launch.flagNumber(3e-4) == "3e-4")
        #expect(Launch.flagNumber(3e-5) == "3e-5")
        #expect(Launch.flagNumber(1e-5) == "1e-5")
        #expect(Launch.flagNumber(1e-8) == "1e-8")
        #expect(Launch.flagNumber(2.5e-4) == "2.5e-4")
        #expect(Launch.flagNumber(0.02) == "0.02")
        #expect(Launch.flagNumber(0.95) == "0.95")
        #expect(Launch.flagNumber(1) == "1.0")
        #expect(Launch.flagNumber(0) == "0.0")
    }

    // MARK: Slurm time limits

    @Test func slurmTimeLimits() {
        #expect(Recipe.Cluster.slurmTimeLimitSeconds("48:00:00") == 48 * 3600)
        #expect(Recipe.Cluster.slurmTimeLimitSeconds("90") == 90 * 60)
        #expect(Recipe.Cluster.slurmTimeLimitSeconds("90:30") == 90 * 60 + 30)
        #expect(Recipe.Cluster.slurmTimeLimitSeconds("1-12") == 36 * 3600)
        #expect(Recipe.Cluster.slurmTimeLimitSeconds("2-00:30") == 48 * 3600 + 30 * 60)
        #expect(Recipe.Cluster.slurmTimeLimitSeconds("7-23:59:59") == 7 * 86400 + 23 * 3600 + 59 * 60 + 59)
        for bad in ["48h", "", "0", "00:00:00", "1:60", "25:61:00", "1-24", "1-2-3", "-5", "1:2:3:4", "1-", " 48:00:00", "４８", "99999999999"] {
            #expect(Recipe.Cluster.slurmTimeLimitSeconds(bad) == nil, "\(bad)")
        }
    }

    /// Validation refuses a time limit Slurm would not read, at its key, so no launch sees one.
    @Test func badTimeLimitIsAnErrorAtItsKey() throws {
        let loaded = RecipeFrontend.load(path: repositoryRoot.appendingPathComponent("recipes/llm-jp-13b-v2.0.yaml").path,
                                         overrides: [Override("cluster.time_limit=48h")])
        #expect(loaded.recipe == nil)
        let d = loaded.diagnostics.errors
        #expect(d.count == 1)
        #expect(d.first?.message.contains("cluster.time_limit '48h' is not a Slurm time limit") == true)
        #expect(d.first?.location?.file == "--set" && d.first?.location?.line == 1)
    }

    // MARK: mpirun and Slurm for Kondate's runtime

    @Test func mpirunLineForThe13BRecipe() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml", set: ["seed=7"])
        var s = launchSettings()
        s.runAsRoot = true
        s.hostfile = "/etc/hosts file"
        s.overrides = ["seed=7"]
        s.extraArguments = ["--threads", "4"]
        let argv = Launch.kondateMpirun(r, settings: s)
        #expect(argv == ["mpirun", "--allow-run-as-root", "-np", "128", "--hostfile", "/etc/hosts file", "--map-by", "ppr:8:node", "--bind-to", "none",
                         "/opt/kondate/bin/kondate", "run", s.recipeFile, "--set", "seed=7", "--run-dir", runDirectory, "--threads", "4"])
        #expect(ShellQuote.join(argv).contains("--hostfile '/etc/hosts file'"))
        s.runAsRoot = false
        s.hostfile = nil
        s.extraArguments = ["--run-dir", "/elsewhere"]
        let plain = Launch.kondateMpirun(r, settings: s)
        #expect(!plain.contains("--allow-run-as-root") && !plain.contains("--hostfile"))
        #expect(plain.filter { $0 == "--run-dir" }.count == 1 && plain.last == "/elsewhere")
    }

    @Test func singleNodeNeedsNoMapping() throws {
        let r = try launchRecipe("examples/tiny/tiny-llama.yaml")
        let argv = Launch.kondateMpirun(r, settings: launchSettings(recipe: "examples/tiny/tiny-llama.yaml"))
        #expect(Array(argv.prefix(5)) == ["mpirun", "-np", "1", "--bind-to", "none"])
    }

    /// The script's nodes × tasks per node are the plan's world and tensor × pipeline × data.
    @Test func slurmCountsAgreeWithThePlan() throws {
        for (file, set) in [("recipes/llm-jp-13b-v2.0.yaml", [String]()), ("recipes/llm-jp-13b-v1.0.yaml", []), ("examples/tiny/tiny-llama.yaml", []),
                            ("examples/tiny/tiny-llama.yaml", ["cluster.nodes=2", "cluster.devices_per_node=3", "parallel.data=6", "pretrain.global_batch=24"])] {
            let p = try plan(file, set: set)
            let script = try Launch.kondateSlurmScript(p.recipe, settings: launchSettings(recipe: file))
            func sbatch(_ key: String) -> Int? {
                script.split(separator: "\n").first { $0.hasPrefix("#SBATCH --\(key)=") }.flatMap { Int($0.split(separator: "=").last!) }
            }
            let nodes = try #require(sbatch("nodes")), tasks = try #require(sbatch("ntasks-per-node"))
            #expect(nodes == p.recipe.cluster.nodes, "\(file)")
            #expect(nodes * tasks == p.world, "\(file)")
            #expect(nodes * tasks == p.recipe.parallel.tensor * p.recipe.parallel.pipeline * p.recipe.parallel.data, "\(file)")
            #expect((sbatch("gpus-per-node") != nil) == (p.recipe.cluster.device != .cpu), "\(file)")
            if let gpus = sbatch("gpus-per-node") { #expect(gpus == tasks) }
            #expect(script.contains("\nset -euo pipefail\nsrun --mpi=pmix "))
            #expect(script.contains("#SBATCH --job-name=\(p.recipe.name)\n"))
            #expect(script.contains("#SBATCH --output="))

            // Megatron-LM under Slurm: one torchrun per node, one process per device.
            guard p.recipe.cluster.device != .cpu else { continue }
            let megatron = try Launch.megatronScript(p.recipe, settings: launchSettings(recipe: file), mode: .slurm).text
            #expect(megatron.contains("#SBATCH --nodes=\(p.recipe.cluster.nodes)\n#SBATCH --ntasks-per-node=1\n"))
            #expect(megatron.contains("torchrun --nnodes=\(p.recipe.cluster.nodes) --nproc-per-node=\(p.recipe.cluster.devicesPerNode) "))
        }
    }

    @Test func slurmKeysFromTheRecipe() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml", set: ["cluster.partition=gpu-a100", "cluster.account=llm-jp", "cluster.time_limit=2-00:00:00"])
        let script = try Launch.kondateSlurmScript(r, settings: launchSettings())
        #expect(script.hasPrefix("#!/bin/bash\n#SBATCH --job-name=llm-jp-13b-v2.0\n#SBATCH --nodes=16\n#SBATCH --ntasks-per-node=8\n#SBATCH --gpus-per-node=8\n"
                                 + "#SBATCH --partition=gpu-a100\n#SBATCH --account=llm-jp\n#SBATCH --time=2-00:00:00\n#SBATCH --output=%x-%j.out\n"))
        #expect(script.hasSuffix("srun --mpi=pmix --kill-on-bad-exit=1 --cpu-bind=none /opt/kondate/bin/kondate run \(ShellQuote.quote(launchSettings().recipeFile)) --run-dir \(runDirectory)\n"))
        let bad = RecipeFrontend.load(path: repositoryRoot.appendingPathComponent("recipes/llm-jp-13b-v2.0.yaml").path,
                                      overrides: [Override("cluster.partition=gpu a100")])
        #expect(bad.diagnostics.errors.contains { $0.message.contains("cluster.partition") })
    }

    // MARK: Megatron-LM

    /// The published LLM-jp-13B v2.0 launch (llm-jp/Megatron-LM scripts/mdx/llm-jp-llama-2-13b/13b-llm-jp-v2_CC_100k.sh;
    /// shared reference llm-jp-facts.md §2.1), flag by flag.
    @Test func llmJp13bV2FlagsAreThePublishedLaunch() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml")
        let a = try Launch.megatronArguments(r, settings: launchSettings())
        let published: [(String, [String])] = [
            ("--tensor-model-parallel-size", ["2"]), ("--pipeline-model-parallel-size", ["4"]),
            ("--sequence-parallel", []), ("--use-distributed-optimizer", []),
            ("--num-layers", ["40"]), ("--hidden-size", ["5120"]), ("--ffn-hidden-size", ["13824"]), ("--num-attention-heads", ["40"]),
            ("--seq-length", ["4096"]), ("--max-position-embeddings", ["4096"]),
            ("--micro-batch-size", ["1"]), ("--global-batch-size", ["1024"]), ("--train-iters", ["61000"]),
            ("--tokenizer-type", ["SentencePieceTokenizer"]),
            ("--lr-decay-style", ["cosine"]), ("--lr-warmup-iters", ["2000"]), ("--optimizer", ["adam"]),
            ("--bf16", []), ("--untie-embeddings-and-output-weights", []), ("--use-rotary-position-embeddings", []),
            ("--normalization", ["RMSNorm"]), ("--no-position-embedding", []), ("--disable-bias-linear", []),
            ("--group-query-attention", []), ("--num-query-groups", ["40"]), ("--swiglu", []), ("--use-flash-attn", []),
            ("--recompute-activations", []), ("--recompute-granularity", ["selective"]),
        ]
        for (flag, values) in published {
            #expect(a.values(flag) == values, "\(flag): \(a.values(flag) ?? ["absent"])")
        }
        let numbers: [(String, Double)] = [
            ("--lr", 3e-4), ("--min-lr", 3e-5), ("--weight-decay", 0.1), ("--clip-grad", 1), ("--adam-beta1", 0.9), ("--adam-beta2", 0.95),
            ("--adam-eps", 1e-8), ("--init-method-std", 0.02), ("--norm-epsilon", 1e-5), ("--attention-dropout", 0), ("--hidden-dropout", 0),
        ]
        for (flag, value) in numbers {
            let text = try #require(a.values(flag)?.first, "\(flag) absent")
            #expect(Double(text) == value, "\(flag) \(text)")
        }
        // Megatron's defaults that the recipe matches: decay over --train-iters, no rotary base, vocabulary
        // 96 869 (+ SentencePieceTokenizer's specials) padded to 97 024 = a multiple of 128 × tensor 2.
        #expect(a.values("--lr-decay-iters") == ["61000"])
        #expect(a.values("--rotary-base") == nil)
        #expect(a.values("--make-vocab-size-divisible-by") == ["128"])
        #expect(a.values("--tokenizer-model") == [repositoryRoot.appendingPathComponent("recipes/tokenizers/code20k_en40k_ja60k.ver2.2.model").path])
        #expect(a.values("--seed") == ["1234"])
        #expect(a.values("--save") == ["\(runDirectory)/megatron/checkpoints"] && a.values("--load") == a.values("--save"))
        #expect(a.values("--save-interval") == ["1000"] && a.values("--log-interval") == ["1"])
        #expect(a.values("--eval-iters") == ["0"] && a.values("--eval-interval") == nil)
        #expect(a.values("--split") == ["100,0,0"])
        for absent in ["--fp16", "--recompute-method", "--no-bias-gelu-fusion", "--openai-gelu"] { #expect(a.values(absent) == nil, "\(absent)") }
        // Each flag once.
        #expect(Set(a.flags).count == a.flags.count)
        // On GPUs checkpoint.keep derives 0, what Megatron-LM does (keep every checkpoint): nothing to refuse.
        #expect(r.pretrain?.checkpointKeep == 0)
        #expect(!a.diagnostics.items.contains { $0.code == .checkpointing })
        #expect(a.notes.contains { $0.contains("tune stages (instruct)") && $0.contains("eval suites") && $0.contains("the release") })
    }

    /// All five v2.0 sources, each weighted by its share of the training tokens: the ratios of
    /// LLM-jp's TRAIN_DATA_PATH token counts.
    @Test func llmJp13bV2BlendHasTheFiveSources() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml")
        #expect(r.corpus?.sources.count == 5)
        let a = try Launch.megatronArguments(r, settings: launchSettings())
        let tokens: [String: Double] = ["ja_cc": 130.05e9, "ja_wiki": 1.44e9, "en_wiki": 4.70e9, "en_pile": 109.76e9, "code_stack": 8.67e9]
        let total = tokens.values.reduce(0, +)
        #expect(Set(a.blend.map(\.source)) == Set(tokens.keys))
        for entry in a.blend {
            #expect(abs(entry.weight - tokens[entry.source]! / total) < 1e-12, "\(entry.source)")
            #expect(entry.prefix == "\(runDirectory)/corpus/tokens/\(entry.source)/\(entry.source)")
        }
        #expect(abs(a.blend.map(\.weight).reduce(0, +) - 1) < 1e-12)
        // The argv carries weight/prefix pairs that parse back to the blend.
        let data = try #require(a.values("--data-path"))
        #expect(data.count == 10)
        for (k, entry) in a.blend.enumerated() {
            #expect(Double(data[2 * k]) == entry.weight && data[2 * k + 1] == entry.prefix)
        }
        // Measured shares (corpus/mix/mixture.json) replace the plan's.
        var s = launchSettings()
        s.measuredShares = ["ja_cc": 0.5, "ja_wiki": 0.1, "en_wiki": 0.1, "en_pile": 0.3, "code_stack": 0]
        let measured = try Launch.megatronArguments(r, settings: s)
        #expect(measured.blend.map(\.source) == ["ja_wiki", "en_wiki", "en_pile", "ja_cc"])   // the recipe's order; code_stack has no share
        #expect(measured.notes.contains { $0.contains("'code_stack' has no share") })
    }

    @Test func refusedFeaturesNameTheirKey() throws {
        let cases: [(String, String)] = [
            ("pretrain.nan_policy=skip", "pretrain.nan_policy"),
            ("pretrain.optimizer.decay_norms_and_biases=true", "pretrain.optimizer.decay_norms_and_biases"),
            ("parallel.zero_stage=2", "parallel.zero_stage"),
            ("model.rope_theta=10000.5", "model.rope_theta"),
        ]
        for (override, key) in cases {
            let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml", set: [override])
            let items = refusal { _ = try Launch.megatronArguments(r, settings: launchSettings()) }
            #expect(items.count == 1, "\(override): \(items.map(\.message))")
            #expect(items.first?.message.contains(key) == true, "\(override)")
            #expect(items.first?.location?.file == "--set", "\(override)")
        }
        // Every problem in one pass; a cpu cluster is refused at cluster.device (and its derived keep: 3
        // at pretrain.checkpoint.keep: Megatron-LM keeps every checkpoint).
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml", set: ["cluster.device=cpu", "pretrain.precision=fp32", "pretrain.nan_policy=skip"])
        let items = refusal { _ = try Launch.megatronArguments(r, settings: launchSettings()) }
        #expect(items.count == 3)
        #expect(items.contains { $0.message.contains("pretrain.checkpoint.keep 3") })
        #expect(items.contains { $0.message.contains("cluster.device is 'cpu'") && $0.location?.line == 1 })
    }

    /// Errors point at the file, line and column that set the value.
    @Test func refusalsPointIntoTheRecipeFile() throws {
        let v2 = repositoryRoot.appendingPathComponent("recipes/llm-jp-13b-v2.0.yaml").path
        let dir = try temporaryRecipes(["skip.yaml": """
            extends: \(v2)
            pretrain:
              nan_policy: skip
            parallel:
              zero_stage: 3
            """])
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("skip.yaml").path
        let r = try launchRecipe(file)
        let items = refusal { _ = try Launch.megatronArguments(r, settings: launchSettings()) }
        let nan = try #require(items.first { $0.message.contains("pretrain.nan_policy") })
        #expect(nan.location?.file.hasSuffix("skip.yaml") == true && nan.location?.line == 3 && nan.location?.column == 15)
        let zero = try #require(items.first { $0.message.contains("parallel.zero_stage 3") })
        #expect(zero.location?.file.hasSuffix("skip.yaml") == true && zero.location?.line == 5 && zero.location?.column == 15)
        // A value inherited from the base recipe is pointed at in the base file.
        let chain = try temporaryRecipes(["base.yaml": "extends: \(v2)\npretrain:\n  checkpoint: {keep: 5}\n", "child.yaml": "extends: base.yaml\n"])
        defer { try? FileManager.default.removeItem(at: chain) }
        let inherited = try launchRecipe(chain.appendingPathComponent("child.yaml").path)
        let keep = refusal { _ = try Launch.megatronArguments(inherited, settings: launchSettings()) }.first { $0.code == .checkpointing }
        #expect(keep?.location?.file.hasSuffix("base.yaml") == true && keep?.location?.line == 3)
        #expect(keep?.message.contains("pretrain.checkpoint.keep") == true)
    }

    @Test func gpt2RecipeMapsToLayerNormAndLearnedPositions() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v1.0.yaml")
        var s = launchSettings(recipe: "recipes/llm-jp-13b-v1.0.yaml")
        s.extraArguments = ["--wandb-project", "kondate"]
        let a = try Launch.megatronArguments(r, settings: s)
        #expect(a.values("--normalization") == ["LayerNorm"])
        #expect(a.values("--no-bias-gelu-fusion") == [])   // exact GELU
        #expect(a.values("--attention-dropout") == ["0.1"] && a.values("--hidden-dropout") == ["0.1"])
        for absent in ["--swiglu", "--use-rotary-position-embeddings", "--no-position-embedding", "--disable-bias-linear",
                       "--untie-embeddings-and-output-weights", "--group-query-attention", "--sequence-parallel"] {
            #expect(a.values(absent) == nil, "\(absent)")
        }
        #expect(a.values("--tensor-model-parallel-size") == ["1"] && a.values("--pipeline-model-parallel-size") == ["8"])
        #expect(a.blend.count == 5)
        #expect(Array(a.argv.suffix(2)) == ["--wandb-project", "kondate"])
        let tanh = try Launch.megatronArguments(try launchRecipe("recipes/llm-jp-13b-v1.0.yaml", set: ["model.activation=gelu_tanh"]), settings: s)
        #expect(tanh.values("--no-bias-gelu-fusion") == nil)   // Megatron's fused bias-GELU is the tanh approximation
    }

    @Test func scheduleAndVocabularyVariants() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml", set: [
            "pretrain.schedule.kind=linear", "pretrain.schedule.decay_steps=60000", "model.rope_theta=500000", "parallel.recompute=full",
            "model.vocab_size=97280", "pretrain.eval_interval=500", "corpus.held_out=1%", "pretrain.precision=fp16",
        ])
        let a = try Launch.megatronArguments(r, settings: launchSettings())
        #expect(a.values("--lr-warmup-iters") == ["2000"])
        #expect(a.values("--lr-decay-style") == ["linear"] && a.values("--lr-decay-iters") == ["60000"])
        #expect(a.values("--rotary-base") == ["500000"])
        #expect(a.values("--recompute-granularity") == ["full"] && a.values("--recompute-method") == ["uniform"]
                && a.values("--recompute-num-layers") == ["1"] && a.values("--recompute-activations") == nil)
        #expect(a.values("--make-vocab-size-divisible-by") == ["48640"])   // 97 280 / tensor 2: Megatron pads to exactly 97 280
        #expect(a.values("--eval-interval") == ["500"] && a.values("--eval-iters") == ["10"])
        #expect(a.values("--split") == ["99,1,0"])
        #expect(a.values("--fp16") == [] && a.values("--bf16") == nil)

        // warmup_fraction 10% of 200 steps → 20 iterations, as Kondate's runtime rounds it; a GQA model
        // with 2 key/value heads; weights as written in the recipe; the run's trained tokenizer.json.
        let tiny = try launchRecipe("examples/tiny/tiny-llama.yaml", set: ["cluster.device=h100-80gb", "pretrain.checkpoint.keep=0"])
        let t = try Launch.megatronArguments(tiny, settings: launchSettings(recipe: "examples/tiny/tiny-llama.yaml"))
        #expect(t.values("--lr-warmup-iters") == ["20"] && t.values("--lr-decay-iters") == ["200"])
        #expect(t.values("--num-attention-heads") == ["4"] && t.values("--num-query-groups") == ["2"])
        #expect(t.blend.map(\.source) == ["ja", "en", "code"])
        #expect(zip(t.blend.map(\.weight), [0.5, 0.4, 0.1]).allSatisfy { abs($0 - $1) < 1e-15 })
        #expect(t.values("--tokenizer-type") == ["HuggingFaceTokenizer"] && t.values("--tokenizer-model") == ["\(runDirectory)/tokenizer"])
        #expect(t.values("--make-vocab-size-divisible-by") == ["128"] && t.values("--split") == ["98,2,0"])
        #expect(t.values("--bf16") == [])   // bf16 on accelerators (derived)
        #expect(t.diagnostics.warnings.contains { $0.message.contains("tokenizer_config.json") })
        let fraction = try launchRecipe("examples/tiny/tiny-llama.yaml", set: ["cluster.device=h100-80gb", "pretrain.schedule.decay_steps=20", "pretrain.checkpoint.keep=0"])
        let tooLong = refusal { _ = try Launch.megatronArguments(fraction, settings: launchSettings(recipe: "examples/tiny/tiny-llama.yaml")) }
        #expect(tooLong.count == 1 && tooLong.first?.code == .schedule && tooLong.first?.message.contains("lr-warmup-iters < lr-decay-iters") == true)
    }

    @Test func megatronScriptsAreValidBash() throws {
        let r = try launchRecipe("recipes/llm-jp-13b-v2.0.yaml")
        var s = launchSettings()
        s.megatronPath = "/opt/Megatron LM"
        s.hostfile = "/etc/host's"
        s.runAsRoot = true
        for mode in [Launch.MegatronMode.torchrun, .slurm, .mpirun] {
            let text = try Launch.megatronScript(r, settings: s, mode: mode).text
            #expect(text.contains("'/opt/Megatron LM/pretrain_gpt.py' \"${ARGS[@]}\""), "\(mode)")
            #expect(text.contains("\n    --tensor-model-parallel-size 2\n"))
            #expect(text.contains("\n    --data-path\n        "))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-n"]
            let input = Pipe()
            process.standardInput = input
            try process.run()
            input.fileHandleForWriting.write(Data(text.utf8))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "bash -n rejects the \(mode) script")
        }
        let mpirun = try Launch.megatronScript(r, settings: s, mode: .mpirun).text
        #expect(mpirun.contains("MASTER_ADDR=$(awk 'NF && $1 !~ /^#/ { print $1; exit }' '/etc/host'\\''s')"))
        #expect(mpirun.contains("mpirun --allow-run-as-root -np 128 --hostfile '/etc/host'\\''s' --map-by ppr:8:node --bind-to none -x MASTER_ADDR"))
        let slurm = try Launch.megatronScript(r, settings: s, mode: .slurm).text
        #expect(slurm.contains("MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)"))
    }
}
