import Foundation
import KondateRecipe
import KondateSupport

/// `kondate launch`: the commands and job scripts that run a recipe on a cluster, either with
/// Kondate's own runtime (`kondate run` on every rank, under mpirun or Slurm) or with Megatron-LM
/// (`pretrain_gpt.py` with the flags equivalent to the recipe). Pure functions from a typed recipe
/// and `LaunchSettings` to argument vectors and script text; the CLI does the file system work.
/// docs/launch.md describes the output and the recipe key → Megatron flag mapping.
public enum Launch {}

// MARK: Shell quoting

/// POSIX shell quoting: a word made only of characters no shell treats specially stays as it is,
/// anything else is wrapped in single quotes (inside which nothing is special) with each `'` written
/// as `'\''`. Newlines, `$`, backquotes, `\`, `!` and globs are therefore all literal.
public enum ShellQuote {
    static let safe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-".unicodeScalars)

    public static func quote(_ word: String) -> String {
        if !word.isEmpty, word.unicodeScalars.allSatisfy(safe.contains), !looksLikeAssignment(word) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Words quoted and joined with spaces: one command line.
    public static func join(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }

    /// `NAME=value` in command position would be a variable assignment, so it is quoted.
    static func looksLikeAssignment(_ word: String) -> Bool {
        guard let eq = word.firstIndex(of: "=") else { return false }
        let name = Array(word[..<eq].unicodeScalars)
        func letter(_ c: Unicode.Scalar) -> Bool { c == "_" || ("A"..."Z").contains(c) || ("a"..."z").contains(c) }
        guard let first = name.first, letter(first) else { return false }
        return name.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }

    /// Text for a `#` comment line: control characters (a newline would end the comment and start a
    /// command) are written as escapes.
    public static func comment(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += " "
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\x" + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}

// MARK: Settings and results

/// Where things are on the cluster. Every path is absolute (the CLI resolves them against the
/// working directory): ranks start on other nodes, whose working directory need not be this one.
public struct LaunchSettings: Sendable {
    /// The recipe file given to `kondate run`.
    public var recipeFile: String
    /// `--set` overrides, forwarded to `kondate run` (the Megatron flags already include them).
    public var overrides: [String] = []
    /// The `kondate` binary the ranks run.
    public var kondateExecutable: String = "kondate"
    /// The run directory: Kondate's outputs, and (Megatron) its tokenized corpus and checkpoints.
    public var runDirectory: String
    /// The working directory, for the recipe's relative paths that are not relative to a recipe file.
    public var workingDirectory: String
    /// An mpirun hostfile.
    public var hostfile: String?
    /// Add `--allow-run-as-root` to mpirun (the generating user is root, as in most containers).
    public var runAsRoot: Bool = false
    /// A Megatron-LM checkout; nil runs `pretrain_gpt.py` from the working directory.
    public var megatronPath: String?
    /// Arguments after `--`: appended to `kondate run`, or to `pretrain_gpt.py`.
    public var extraArguments: [String] = []
    /// Each source's share of training tokens measured by the run's `corpus.mix` stage
    /// (`corpus/mix/mixture.json`, `requested_share`); nil uses the plan's shares from the recipe.
    public var measuredShares: [String: Double]?
    /// Where the measured shares were read, for the script's comment.
    public var measuredSharesFile: String?

    public init(recipeFile: String, runDirectory: String, workingDirectory: String) {
        self.recipeFile = recipeFile
        self.runDirectory = runDirectory
        self.workingDirectory = workingDirectory
    }
}

/// A recipe that cannot be launched as asked: every reason, each at the recipe key it concerns.
public struct LaunchRefused: Error, Sendable {
    public var diagnostics: DiagnosticSet
}

/// A generated script or command line, with the warnings and notes that go with it.
public struct LaunchScript: Sendable {
    public var text: String
    /// Warnings at recipe keys (what the target cannot do exactly as the recipe says).
    public var diagnostics: DiagnosticSet
    /// What the launch leaves out (stages Megatron-LM does not run, omitted sources).
    public var notes: [String]
}

// MARK: Recipe keys for the launch

public extension Launch {
    /// MPI ranks of the recipe's layout: tensor × pipeline × data (= nodes × devices_per_node).
    static func ranks(_ recipe: Recipe) -> Int {
        recipe.parallel.tensor * recipe.parallel.pipeline * recipe.parallel.data
    }

    /// The cluster's devices are GPUs (every catalog device except `cpu`).
    static func usesGPUs(_ recipe: Recipe) -> Bool { recipe.cluster.device.isGPU }

    /// "tensor 2 × pipeline 4 × data 16 = 128 ranks on 16 nodes × 8 a100-40gb"
    static func layoutSummary(_ recipe: Recipe) -> String {
        let p = recipe.parallel, c = recipe.cluster
        return "tensor \(p.tensor) × pipeline \(p.pipeline) × data \(p.data) = \(ranks(recipe)) rank\(ranks(recipe) == 1 ? "" : "s") on \(c.nodes) node\(c.nodes == 1 ? "" : "s") × \(c.devicesPerNode) \(c.device)"
    }
}

// MARK: Kondate's runtime: mpirun and Slurm

public extension Launch {
    /// `kondate run RECIPE [--set …] --run-dir DIR [extra…]`.
    static func kondateRunArguments(_ recipe: Recipe, settings s: LaunchSettings) -> [String] {
        var argv = [s.kondateExecutable, "run", s.recipeFile]
        for o in s.overrides { argv += ["--set", o] }
        let namesRunDirectory = s.extraArguments.contains { a in
            ["--run-dir", "--out"].contains(a) || a.hasPrefix("--run-dir=") || a.hasPrefix("--out=")
        }
        if !namesRunDirectory { argv += ["--run-dir", s.runDirectory] }
        return argv + s.extraArguments
    }

    /// The mpirun options for the recipe's layout: one rank per device, `devices_per_node` ranks on
    /// each node, no CPU binding (each rank's OpenBLAS or data-loader threads spread over the cores).
    static func mpirunOptions(_ recipe: Recipe, settings s: LaunchSettings) -> [String] {
        var argv = ["mpirun"]
        if s.runAsRoot { argv.append("--allow-run-as-root") }
        argv += ["-np", String(ranks(recipe))]
        if let hostfile = s.hostfile { argv += ["--hostfile", hostfile] }
        if recipe.cluster.nodes > 1 { argv += ["--map-by", "ppr:\(recipe.cluster.devicesPerNode):node"] }
        argv += ["--bind-to", "none"]
        return argv
    }

    /// `mpirun … kondate run RECIPE …` as an argument vector (what `--execute` runs).
    static func kondateMpirun(_ recipe: Recipe, settings: LaunchSettings) -> [String] {
        mpirunOptions(recipe, settings: settings) + kondateRunArguments(recipe, settings: settings)
    }

    /// An sbatch script that runs `kondate run` on every rank with `srun --mpi=pmix`.
    static func kondateSlurmScript(_ recipe: Recipe, settings s: LaunchSettings) throws(LaunchRefused) -> String {
        var lines = sbatchHeader(recipe, tasksPerNode: recipe.cluster.devicesPerNode)
        lines += [
            "#",
            "# " + ShellQuote.comment("Generated by `kondate launch --slurm` from \(s.recipeFile) (recipe \(recipe.name)):"),
            "# " + ShellQuote.comment(layoutSummary(recipe) + "; one `kondate run` process per rank."),
            "# " + ShellQuote.comment("The run directory must be on a filesystem every node shares: \(s.runDirectory)"),
            "set -euo pipefail",
            ShellQuote.join(["srun", "--mpi=pmix", "--kill-on-bad-exit=1", "--cpu-bind=none"] + kondateRunArguments(recipe, settings: s)),
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `#!/bin/bash` and the `#SBATCH` lines: job name, nodes, tasks per node, GPUs per node (GPU
    /// devices only; a `cpu` cluster's ranks are processes), partition, account, time limit, log.
    /// Every value is a recipe label, a number or a checked time limit, so none needs quoting.
    static func sbatchHeader(_ recipe: Recipe, tasksPerNode: Int) -> [String] {
        let c = recipe.cluster
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(recipe.name)", "#SBATCH --nodes=\(c.nodes)", "#SBATCH --ntasks-per-node=\(tasksPerNode)"]
        if usesGPUs(recipe) { lines.append("#SBATCH --gpus-per-node=\(c.devicesPerNode)") }
        if let partition = c.partition { lines.append("#SBATCH --partition=\(partition)") }
        if let account = c.account { lines.append("#SBATCH --account=\(account)") }
        if let time = c.timeLimit { lines.append("#SBATCH --time=\(time)") }
        lines.append("#SBATCH --output=%x-%j.out")
        return lines
    }
}

// MARK: Megatron-LM

/// `pretrain_gpt.py`'s arguments for a recipe, grouped one flag (with its values) per group.
public struct MegatronArguments: Sendable {
    public struct BlendEntry: Sendable {
        public var source: String
        /// The source's share of training tokens in Kondate's mix (the weights sum to 1).
        public var weight: Double
        /// Path prefix of its `.bin/.idx` pair.
        public var prefix: String
    }

    public var groups: [[String]]
    public var blend: [BlendEntry]
    /// Where the blend weights come from, for the script's comment.
    public var blendOrigin: String
    public var diagnostics: DiagnosticSet
    public var notes: [String]

    public var argv: [String] { groups.flatMap { $0 } }

    /// The values after `flag` (empty for a switch), nil when the flag is absent.
    public func values(_ flag: String) -> [String]? {
        groups.first { $0.first == flag }.map { Array($0.dropFirst()) }
    }

    /// The flags in order, without their values.
    public var flags: [String] { groups.compactMap(\.first) }
}

public extension Launch {
    /// Where Megatron-LM runs: one torchrun per node started by hand, an sbatch script, or mpirun.
    enum MegatronMode: Sendable { case torchrun, slurm, mpirun }

    /// The Megatron `.bin/.idx` prefix of a source in a run directory: the layout of Kondate's
    /// `corpus.tokenize.<source>` stage (`CorpusRun.tokensPrefix`: corpus/tokens/<source>/<source>).
    static func tokensPrefix(runDirectory: String, source: String) -> String {
        "\(runDirectory)/corpus/tokens/\(source)/\(source)"
    }

    /// Megatron-LM's SentencePieceTokenizer appends `<CLS>`, `<SEP>`, `<EOD>` and `<MASK>`, and a
    /// `<PAD>`, `<BOS>` or `<EOS>` that the model lacks, to the vocabulary before padding it.
    static let sentencePieceExtraTokens = 7

    /// The flags equivalent to the recipe's pretraining, or every reason it cannot be expressed.
    static func megatronArguments(_ recipe: Recipe, settings s: LaunchSettings) throws(LaunchRefused) -> MegatronArguments {
        var refuse = DiagnosticSet()
        var warnings = DiagnosticSet()
        var notes: [String] = []
        let tree = recipe.tree
        /// The key's value, else its key, else the nearest written ancestor (defaults have no position).
        func at(_ path: String) -> SourceLocation? { tree.diagnosticLocation(path) }
        func provenance(_ path: String) -> [DiagnosticNote] { tree.at(path)?.provenance.notes ?? [] }
        func error(_ path: String, _ message: String, notes extra: [DiagnosticNote] = [], code: DiagnosticCode = .invalidValue) {
            refuse.error(code, message, at: at(path), notes: provenance(path) + extra)
        }
        let kondateEngine = "or launch with --engine kondate"

        let m = recipe.model, p = recipe.parallel
        if !usesGPUs(recipe) {
            error("cluster.device", "Megatron-LM trains on CUDA GPUs; cluster.device is 'cpu': set cluster.device to a GPU (\(DeviceCatalog.all.map(\.name).filter { $0 != "cpu" }.joined(separator: ", "))) \(kondateEngine)")
        }
        if recipe.tokenizer == nil {
            refuse.error(.missingKey, "the recipe has no tokenizer section; Megatron-LM needs one (--tokenizer-type, --tokenizer-model) to size the vocabulary: add `tokenizer:` with a `path` or `train`", at: tree.location)
        }
        if recipe.corpus == nil {
            refuse.error(.missingKey, "the recipe has no corpus section; Megatron-LM's --data-path reads the .bin/.idx files Kondate's corpus stages write from it: add `corpus:`", at: tree.location)
        }
        guard let pre = recipe.pretrain else {
            refuse.error(.missingKey, "the recipe has no pretrain section; `--engine megatron` launches pretraining: add `pretrain:`", at: tree.location)
            throw LaunchRefused(diagnostics: refuse)
        }

        var groups: [[String]] = []
        func add(_ flag: String, _ values: String...) { groups.append([flag] + values) }

        // Parallel layout.
        add("--tensor-model-parallel-size", String(p.tensor))
        add("--pipeline-model-parallel-size", String(p.pipeline))
        if p.sequenceParallel { add("--sequence-parallel") }
        switch p.zeroStage {
        case 0: break
        case 1: add("--use-distributed-optimizer")
        default:
            error("parallel.zero_stage", "parallel.zero_stage \(p.zeroStage) cannot be expressed in Megatron-LM, whose distributed optimizer (--use-distributed-optimizer) shards the optimizer states only (ZeRO stage 1): set parallel.zero_stage to 0 or 1 \(kondateEngine)")
        }

        // Model shape.
        add("--num-layers", String(m.layers))
        add("--hidden-size", String(m.hidden))
        add("--ffn-hidden-size", String(m.ffn))
        add("--num-attention-heads", String(m.heads))
        if m.arch == .llama || m.kvHeads != m.heads {
            // LLM-jp passes --group-query-attention with as many groups as heads (plain multi-head attention).
            add("--group-query-attention")
            add("--num-query-groups", String(m.kvHeads))
        }
        add("--seq-length", String(m.seqLen))
        add("--max-position-embeddings", String(m.maxPositions))

        // Vocabulary: Megatron pads the tokenizer's vocabulary to a multiple of
        // make-vocab-size-divisible-by × tensor; choose the divisor that gives model.vocab_size.
        let sentencePiece = recipe.tokenizer?.format == .sentencepiece
        let extra = sentencePiece ? sentencePieceExtraTokens : 0
        let multiple = m.padVocabMultiple
        func padded(_ v: Int, _ divisor: Int) -> Int { let q = divisor * p.tensor; return (v + q - 1) / q * q }
        if let v = recipe.tokenizer?.vocabSize, padded(v, multiple) == m.vocabSize, padded(v + extra, multiple) == m.vocabSize {
            add("--make-vocab-size-divisible-by", String(multiple))
        } else if m.vocabSize % p.tensor == 0, (recipe.tokenizer?.vocabSize).map({ $0 + extra <= m.vocabSize }) ?? true {
            add("--make-vocab-size-divisible-by", String(m.vocabSize / p.tensor))
        } else {
            let tokenizerSize = recipe.tokenizer?.vocabSize.map { "the tokenizer's \(Format.grouped($0)) tokens\(extra > 0 ? " (plus up to \(extra) special tokens Megatron's SentencePieceTokenizer appends)" : "")" } ?? "the tokenizer's vocabulary"
            error("model.vocab_size", "model.vocab_size \(Format.grouped(m.vocabSize)) cannot be expressed in Megatron-LM, which pads \(tokenizerSize) to a multiple of --make-vocab-size-divisible-by × tensor \(p.tensor): use a multiple of parallel.tensor at least \(Format.grouped((recipe.tokenizer?.vocabSize ?? 0) + extra)), or `vocab_size: auto`",
                  code: .vocabulary)
        }

        // Architecture.
        switch m.arch {
        case .llama:
            add("--normalization", "RMSNorm")
            add("--norm-epsilon", flagNumber(m.normEps))
            add("--swiglu")
            add("--use-rotary-position-embeddings")
            add("--no-position-embedding")
            if let theta = m.ropeTheta, theta != 10_000 {
                if theta == theta.rounded(), theta > 0, theta < 9e15 {
                    add("--rotary-base", String(Int64(theta)))
                } else {
                    error("model.rope_theta", "model.rope_theta \(Format.number(theta)) cannot be expressed in Megatron-LM, whose --rotary-base is an integer: use a whole number \(kondateEngine)")
                }
            }
            add("--disable-bias-linear")
        case .gpt2:
            add("--normalization", "LayerNorm")
            add("--norm-epsilon", flagNumber(m.normEps))
            // Learned absolute positions and biases are Megatron's defaults. The default fused bias-GELU
            // kernel is the tanh approximation (gelu_tanh); exact GELU needs the unfused F.gelu.
            if m.activation == .gelu { add("--no-bias-gelu-fusion") }
        }
        if !m.tieEmbeddings { add("--untie-embeddings-and-output-weights") }
        add("--attention-dropout", flagNumber(m.attentionDropout))
        add("--hidden-dropout", flagNumber(m.dropout))
        if m.attentionKernel == .flash { add("--use-flash-attn") }
        add("--init-method-std", flagNumber(m.initStd))

        // Optimizer (Megatron's adam is AdamW: decoupled weight decay, as Kondate's).
        add("--optimizer", "adam")
        add("--lr", flagNumber(pre.lr))
        add("--min-lr", flagNumber(pre.schedule.minLR))
        add("--adam-beta1", flagNumber(pre.betas.first ?? 0.9))
        add("--adam-beta2", flagNumber(pre.betas.count > 1 ? pre.betas[1] : 0.999))
        add("--adam-eps", flagNumber(pre.eps))
        add("--weight-decay", flagNumber(pre.weightDecay))
        if pre.decayNormsAndBiases {
            error("pretrain.optimizer.decay_norms_and_biases", "pretrain.optimizer.decay_norms_and_biases true cannot be expressed in Megatron-LM, which never decays biases and norm weights (no flag changes it): set it to false \(kondateEngine)")
        }
        add("--clip-grad", flagNumber(pre.gradClip))

        // Schedule: warm-up in iterations, computed as Kondate's runtime does for warmup_fraction.
        let warmup = pre.schedule.warmupSteps ?? Int(((pre.schedule.warmupFraction ?? 0) * Double(pre.steps)).rounded())
        let decay = pre.schedule.decaySteps ?? pre.steps
        add("--lr-decay-style", pre.schedule.kind.rawValue)
        add("--lr-warmup-iters", String(warmup))
        add("--lr-decay-iters", String(decay))
        if warmup >= decay {
            error(tree.at("pretrain.schedule.warmup_steps") != nil ? "pretrain.schedule.warmup_steps" : "pretrain.schedule.warmup_fraction",
                  "a warm-up of \(warmup) steps is not shorter than the \(decay) decay steps; Megatron-LM requires lr-warmup-iters < lr-decay-iters: shorten the warm-up or lengthen pretrain.schedule.decay_steps",
                  code: .schedule)
        }
        add("--train-iters", String(pre.steps))
        add("--micro-batch-size", String(p.microBatch))
        add("--global-batch-size", String(pre.globalBatch))

        // Precision and recomputation.
        switch pre.precision {
        case .bf16: add("--bf16")
        case .fp16: add("--fp16")
        case .fp32: break   // Megatron's default
        }
        switch p.recompute {
        case .selective:
            add("--recompute-activations")
            add("--recompute-granularity", "selective")
        case .full:
            add("--recompute-granularity", "full")
            add("--recompute-method", "uniform")
            add("--recompute-num-layers", "1")
        case .none: break
        }
        if pre.nanPolicy == .skip {
            error("pretrain.nan_policy", "pretrain.nan_policy 'skip' cannot be expressed in Megatron-LM, which stops on a NaN or infinite loss or gradient (--check-for-nan-in-loss-and-grad) and has no flag to skip the step: set pretrain.nan_policy: stop \(kondateEngine)")
        }

        // Tokenizer.
        if let t = recipe.tokenizer {
            if t.format == .sentencepiece {
                if let path = t.path {
                    add("--tokenizer-type", "SentencePieceTokenizer")
                    add("--tokenizer-model", absolute(PathCheck.resolve(path, relativeTo: tree.at("tokenizer.path")?.location), settings: s))
                } else {
                    error("tokenizer.train.algorithm", "a trained SentencePiece tokenizer cannot be launched: Kondate trains byte-level BPE (algorithm: bpe) only; load a SentencePiece .model with tokenizer.path")
                }
            } else {
                let directory: String
                if let path = t.path {
                    let file = absolute(PathCheck.resolve(path, relativeTo: tree.at("tokenizer.path")?.location), settings: s)
                    directory = Composer.normalize(file + "/..")
                    if !file.hasSuffix("/tokenizer.json") && file != "tokenizer.json" {
                        error("tokenizer.path", "Megatron-LM's HuggingFaceTokenizer loads a directory with transformers.AutoTokenizer, which reads the file 'tokenizer.json'; '\(path)' has another name: copy it to a directory as tokenizer.json and point tokenizer.path there")
                    }
                } else {
                    directory = "\(s.runDirectory)/tokenizer"   // the tokenizer stage's output
                }
                add("--tokenizer-type", "HuggingFaceTokenizer")
                add("--tokenizer-model", directory)
                warnings.warning(.vocabulary,
                                 "Megatron-LM's HuggingFaceTokenizer loads \(directory) with transformers.AutoTokenizer, which also needs a tokenizer_config.json there (e.g. {\"tokenizer_class\": \"PreTrainedTokenizerFast\"}); Kondate's tokenizer stage writes tokenizer.json only",
                                 at: at(t.path != nil ? "tokenizer.path" : "tokenizer.train"))
            }
        }

        // Data: the blend of the tokenized sources, split into train and validation as corpus.held_out.
        var blend: [MegatronArguments.BlendEntry] = []
        var origin = ""
        if let corpus = recipe.corpus {
            var shares: [(String, Double)] = []
            if let measured = s.measuredShares {
                shares = corpus.sources.map { ($0.name, measured[$0.name] ?? 0) }
                origin = "requested shares measured by the corpus.mix stage (\(s.measuredSharesFile ?? "mixture.json"))"
            } else {
                var mixDiagnostics = DiagnosticSet()
                let mix = CorpusMix(corpus: corpus, trainingTokens: pre.tokens, diagnostics: &mixDiagnostics, tree: tree)
                for d in mixDiagnostics.errors { refuse.add(d) }
                shares = mix.shares.map { ($0.source, $0.fraction) }
                origin = "the plan's token-level shares from the recipe's tokens, weight and budget"
            }
            for (name, share) in shares {
                if share > 0 {
                    blend.append(.init(source: name, weight: share, prefix: tokensPrefix(runDirectory: s.runDirectory, source: name)))
                } else {
                    notes.append("corpus source '\(name)' has no share of the training tokens and is left out of --data-path")
                }
            }
            if !blend.isEmpty {
                groups.append(["--data-path"] + blend.flatMap { [flagNumber($0.weight), $0.prefix] })
            }
            add("--data-cache-path", "\(s.runDirectory)/megatron/data-cache")
            let heldOut = (corpus.heldOut * 100 * 1e6).rounded() / 1e6
            add("--split", "\(Format.number(100 - heldOut)),\(Format.number(heldOut)),0")
        }

        // Checkpoints, logging, evaluation, seed.
        let checkpoints = "\(s.runDirectory)/megatron/checkpoints"
        add("--save", checkpoints)
        add("--load", checkpoints)
        add("--save-interval", String(pre.checkpointEvery))
        if pre.checkpointKeep > 0 {
            error("pretrain.checkpoint.keep", "pretrain.checkpoint.keep \(pre.checkpointKeep) cannot be expressed in Megatron-LM, which keeps every checkpoint it saves (no flag keeps the last \(pre.checkpointKeep)): set keep: 0 and delete old iter_* directories under \(checkpoints) yourself \(kondateEngine)",
                  code: .checkpointing)
        }
        add("--log-interval", String(pre.logInterval))
        if let interval = pre.evalInterval {
            add("--eval-interval", String(interval))
            add("--eval-iters", String(pre.evalIters))
        } else {
            add("--eval-iters", "0")    // no pretrain.eval_interval: no validation loss
        }
        add("--tensorboard-dir", "\(s.runDirectory)/megatron/tensorboard")
        add("--seed", String(recipe.seed))
        if !s.extraArguments.isEmpty { groups.append(s.extraArguments) }

        // What a Megatron-LM pretraining launch does not run.
        var later: [String] = []
        if !recipe.tune.isEmpty { later.append("tune stages (\(recipe.tune.map(\.name).joined(separator: ", ")))") }
        if !recipe.eval.isEmpty { later.append("eval suites (\(recipe.eval.map(\.name).joined(separator: ", ")))") }
        if recipe.release != nil { later.append("the release") }
        if !later.isEmpty {
            let listed = later.count == 1 ? later[0] : later.dropLast().joined(separator: ", ") + " and " + later.last!
            notes.append("Megatron-LM runs the pretraining only; the recipe's \(listed) \(later.count == 1 && recipe.release != nil ? "is" : "are") not part of this launch")
        }
        if refuse.hasErrors { throw LaunchRefused(diagnostics: refuse) }
        return MegatronArguments(groups: groups, blend: blend, blendOrigin: origin, diagnostics: warnings, notes: notes)
    }

    /// The Megatron-LM launch as a bash script: torchrun on each node (started by hand), an sbatch
    /// script (srun starts one torchrun per node, the rendezvous at the first node of the allocation),
    /// or mpirun (one process per GPU, torch.distributed's variables from Open MPI's).
    static func megatronScript(_ recipe: Recipe, settings s: LaunchSettings, mode: MegatronMode) throws(LaunchRefused) -> LaunchScript {
        let arguments = try megatronArguments(recipe, settings: s)
        let c = recipe.cluster
        let script = s.megatronPath.map { "\($0)/pretrain_gpt.py" } ?? "pretrain_gpt.py"
        var lines: [String]
        switch mode {
        case .slurm: lines = sbatchHeader(recipe, tasksPerNode: 1) + ["#"]
        case .torchrun, .mpirun: lines = ["#!/usr/bin/env bash"]
        }
        let how: String
        switch mode {
        case .torchrun: how = "Run it on each of the \(c.nodes) node\(c.nodes == 1 ? "" : "s") with NODE_RANK (0…\(c.nodes - 1)) and MASTER_ADDR (node 0's address) set."
        case .slurm: how = "Submit it with sbatch; srun starts one torchrun per node, which starts one process per GPU."
        case .mpirun: how = "Run it on the first node; mpirun starts one process per GPU."
        }
        lines += [
            "# " + ShellQuote.comment("Megatron-LM pretraining equivalent to \(s.recipeFile) (recipe \(recipe.name)), generated by `kondate launch --engine megatron`:"),
            "# " + ShellQuote.comment(layoutSummary(recipe) + ". " + how),
            "# " + ShellQuote.comment(s.megatronPath == nil ? "Run from the Megatron-LM checkout (or pass --megatron-path)." : "Megatron-LM: \(s.megatronPath!)"),
            "# " + ShellQuote.comment("Data: the .bin/.idx files of Kondate's corpus stages; prepare them first with"),
            "#   " + ShellQuote.comment(ShellQuote.join([s.kondateExecutable, "run", s.recipeFile] + s.overrides.flatMap { ["--set", $0] } + ["--run-dir", s.runDirectory, "--until", "corpus"])),
            "# " + ShellQuote.comment("Blend weights: each source's share of the training tokens, \(arguments.blendOrigin)."),
            "# " + ShellQuote.comment("The run directory must be on a filesystem every node shares: \(s.runDirectory)"),
            "set -euo pipefail",
        ]
        switch mode {
        case .torchrun: break
        case .slurm:
            lines += ["MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)", "MASTER_PORT=${MASTER_PORT:-29500}"]
        case .mpirun:
            if let hostfile = s.hostfile {
                lines.append("MASTER_ADDR=$(awk 'NF && $1 !~ /^#/ { print $1; exit }' \(ShellQuote.quote(hostfile)))")
            } else {
                lines.append("MASTER_ADDR=$(hostname)")
            }
            lines.append("MASTER_PORT=${MASTER_PORT:-29500}")
        }
        if mode != .torchrun { lines.append("export MASTER_ADDR MASTER_PORT") }
        lines.append("export CUDA_DEVICE_MAX_CONNECTIONS=1   # Megatron-LM's requirement for sequence parallelism and communication overlap")
        lines.append("ARGS=(")
        for group in arguments.groups {
            if group.first == "--data-path", group.count > 3 {
                lines.append("    --data-path")
                for k in stride(from: 1, to: group.count - 1, by: 2) { lines.append("        " + ShellQuote.join([group[k], group[k + 1]])) }
            } else {
                lines.append("    " + ShellQuote.join(group))
            }
        }
        lines.append(")")
        switch mode {
        case .torchrun:
            lines.append("exec torchrun --nnodes=\(c.nodes) --nproc-per-node=\(c.devicesPerNode) --node-rank=\"${NODE_RANK:?set NODE_RANK to this node's index, 0 to \(c.nodes - 1)}\" "
                         + "--master-addr=\"${MASTER_ADDR:?set MASTER_ADDR to node 0's address}\" --master-port=\"${MASTER_PORT:-29500}\" "
                         + ShellQuote.quote(script) + " \"${ARGS[@]}\"")
        case .slurm:
            lines.append("srun --ntasks-per-node=1 --kill-on-bad-exit=1 torchrun --nnodes=\(c.nodes) --nproc-per-node=\(c.devicesPerNode) "
                         + "--rdzv-id=\"$SLURM_JOB_ID\" --rdzv-backend=c10d --rdzv-endpoint=\"$MASTER_ADDR:$MASTER_PORT\" "
                         + ShellQuote.quote(script) + " \"${ARGS[@]}\"")
        case .mpirun:
            let options = mpirunOptions(recipe, settings: s) + ["-x", "MASTER_ADDR", "-x", "MASTER_PORT", "-x", "CUDA_DEVICE_MAX_CONNECTIONS", "-x", "PATH"]
            let rankEnvironment = "export RANK=$OMPI_COMM_WORLD_RANK LOCAL_RANK=$OMPI_COMM_WORLD_LOCAL_RANK WORLD_SIZE=$OMPI_COMM_WORLD_SIZE; exec python \"$@\""
            lines.append(ShellQuote.join(options) + " \\")
            lines.append("    " + ShellQuote.join(["bash", "-c", rankEnvironment, "megatron", script]) + " \"${ARGS[@]}\"")
        }
        return LaunchScript(text: lines.joined(separator: "\n") + "\n", diagnostics: arguments.diagnostics, notes: arguments.notes)
    }

    /// A number as a Megatron flag value: the shortest text that reads back as the same double,
    /// small numbers in exponent form (`3e-4`, `1e-5`), whole numbers with `.0`.
    static func flagNumber(_ x: Double) -> String {
        if x != 0, abs(x) < 1e-3 {
            for digits in 0..<17 {
                let text = String(format: "%.\(digits)e", x)
                if Double(text) == x {
                    // "3e-04" -> "3e-4"
                    let parts = text.split(separator: "e")
                    guard parts.count == 2, let exponent = Int(parts[1]) else { return text }
                    return "\(parts[0])e\(exponent)"
                }
            }
        }
        return "\(x)"
    }

    static func absolute(_ path: String, settings s: LaunchSettings) -> String {
        path.hasPrefix("/") ? Composer.normalize(path) : Composer.normalize(s.workingDirectory + "/" + path)
    }
}
