import Foundation

/// Every key of the recipe language with a non-default value on the tiny example, and what must happen:
/// refused by validation at its `--set`, or applied — visible in the payload of the stage that reads it
/// (the manifest's `stages[].config`), or read by no stage (plans, launchers and the model card read it).
/// `KeyCoverageTests` (validation and payloads, every row) and `EveryKeyCLITests` (runs, by group) use it;
/// a test checks that every schema key has a row.
/// The smallest valid `model` section (a 2-layer LLaMA), followed by a blank line, for recipes that tests write.
public let minimalModelYAML = """
model:
  arch: llama
  hidden: 64
  layers: 2
  heads: 4
  seq_len: 128
  vocab_size: 256

"""

public struct KeyCase: Sendable {
    public enum Expectation: Sendable {
        /// Refused at the first `--set` that names the key, the message containing `fix`.
        case rejected(fix: String)
        /// The payload of stage `stage` (canonical JSON, no spaces) contains `fragment`.
        case applied(stage: String, fragment: String)
        /// Read by no stage: only the release's key moves (its card quotes the recipe).
        case notRead(String)
    }

    /// The schema key (`tune.<stage>.lr`).
    public var key: String
    /// `--set` overrides; `$DATA` stands for the directory of `KeyTable.writeData`.
    public var set: [String]
    public var expect: Expectation
    /// The run group of `EveryKeyCLITests` (nil: not run, with `why`).
    public var group: String?
    /// A child recipe to load instead of the tiny example (`$TINY` is its absolute path), for keys that
    /// need another key unset.
    public var recipe: String?

    init(_ key: String, _ set: [String], _ expect: Expectation, group: String?, recipe: String? = nil) {
        self.key = key
        self.set = set
        self.expect = expect
        self.group = group
        self.recipe = recipe
    }
}

public enum KeyTable {
    /// Applied before every row's overrides: a short run of the example (two pretraining steps, a
    /// fifth of the tuning epochs, one sample per eval dataset).
    public static let base = ["pretrain.steps=2", "tune.qa.epochs=0.2", "eval.tasks.max_samples=1", "eval.held_out.max_samples=1",
                              "eval.questions.max_samples=1", "eval.questions.max_new_tokens=2"]

    /// Section keys: a mapping whose leaves have rows of their own.
    public static let sections: Set<String> = [
        "cluster", "tokenizer", "tokenizer.train", "tokenizer.special_tokens", "corpus", "corpus.sources", "model", "parallel",
        "pretrain", "pretrain.optimizer", "pretrain.schedule", "pretrain.checkpoint", "templates", "tune", "tune.<stage>.datasets",
        "tune.<stage>.schedule", "tune.<stage>.checkpoint", "eval", "eval.<suite>.judge", "release",
    ]

    /// Keys with one allowed value (nothing else to try).
    public static let single: [String: String] = [
        "pretrain.optimizer.kind": "adamw is the only optimizer",
        "release.formats": "hf is the only format",
    ]

    static func a(_ stage: String, _ fragment: String) -> KeyCase.Expectation { .applied(stage: stage, fragment: fragment) }
    static let layout = "the layout decides how the computation is split over ranks, not its result"
    static let plan = "read by kondate plan and the launchers"
    static let card = "quoted by the model card"

    static let tokenizerPath = """
        extends: $TINY
        unset: [tokenizer]
        tokenizer:
          path: $ROOT/Tests/KondateTokenizersTests/Fixtures/tokenizers/hf/kondate-trained-bpe.json
          vocab_size: 2000
          special_tokens: {eos: "<|endoftext|>", pad: "<pad>"}
        """
    static let tokenizerModel = """
        extends: $TINY
        unset: [tokenizer]
        tokenizer:
          path: $ROOT/Tests/KondateTokenizersTests/Fixtures/tokenizers/spm/llmjp-unigram.model
          format: sentencepiece
          vocab_size: 3000
          special_tokens: {bos: "<s>", eos: "</s>", unk: "<unk>"}
        """
    static let budget = """
        extends: $TINY
        unset: [corpus.sources.code.weight]
        corpus: {sources: {code: {budget: 400}}}
        """
    static let pretrainWarmup = """
        extends: $TINY
        unset: [pretrain.schedule.warmup_fraction]
        pretrain: {schedule: {warmup_steps: 1}}
        """
    static let tuneWarmup = """
        extends: $TINY
        unset: [tune.qa.schedule.warmup_fraction]
        tune: {qa: {schedule: {warmup_steps: 1}}}
        """

    public static let cases: [KeyCase] = [
        // Root
        KeyCase("name", ["name=tiny-renamed"], a("release", #""recipe":"tiny-renamed""#), group: "rename"),
        KeyCase("description", ["description=A described recipe"], .notRead(card), group: "release"),
        KeyCase("seed", ["seed=43"], a("corpus.prepare.ja", #""seed":43"#), group: "corpus"),
        // Cluster
        KeyCase("cluster.nodes", ["cluster.nodes=2", "parallel.tensor=2"], .notRead(layout), group: "pretrain3"),
        KeyCase("cluster.devices_per_node", ["cluster.devices_per_node=2", "parallel.pipeline=2", "parallel.data=1"], .notRead(layout), group: "pretrain2"),
        KeyCase("cluster.device", ["cluster.device=a100-40gb"], .rejected(fix: "--engine megatron"), group: nil),
        KeyCase("cluster.device_memory", ["cluster.device_memory=8GiB"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.peak_flops", ["cluster.peak_flops=100G"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.assumed_mfu", ["cluster.assumed_mfu=50%"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.compute_efficiency", ["cluster.compute_efficiency=50%"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.intra_node_bandwidth", ["cluster.intra_node_bandwidth=20GB/s"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.inter_node_bandwidth", ["cluster.inter_node_bandwidth=10Gb/s"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.intra_node_latency", ["cluster.intra_node_latency=2e-6"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.inter_node_latency", ["cluster.inter_node_latency=1e-4"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.partition", ["cluster.partition=cpu"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.account", ["cluster.account=lab"], .notRead(plan), group: "pretrain2"),
        KeyCase("cluster.time_limit", ["cluster.time_limit=1:00:00"], .notRead(plan), group: "pretrain2"),
        // Tokenizer
        KeyCase("tokenizer.name", ["tokenizer.name=another"], .notRead(card), group: "release"),
        KeyCase("tokenizer.path", [], a("tokenizer", "kondate-trained-bpe.json"), group: "tokenizer-path", recipe: tokenizerPath),
        KeyCase("tokenizer.format", [], a("tokenizer", #""format":"sentencepiece""#), group: "tokenizer-model", recipe: tokenizerModel),
        KeyCase("tokenizer.vocab_size", [], a("tokenizer", #""vocab_size":2000"#), group: "tokenizer-path", recipe: tokenizerPath),
        KeyCase("tokenizer.train.algorithm", ["tokenizer.train.algorithm=unigram"], .rejected(fix: "algorithm: bpe"), group: nil),
        KeyCase("tokenizer.train.vocab_size", ["tokenizer.train.vocab_size=1024"], a("tokenizer", #""vocab_size":1024"#), group: "corpus"),
        KeyCase("tokenizer.train.min_frequency", ["tokenizer.train.min_frequency=3"], a("tokenizer", #""min_frequency":3"#), group: "corpus"),
        KeyCase("tokenizer.train.sample_size", ["tokenizer.train.sample_size=512KiB"], a("tokenizer", #""sample_size":524288"#), group: "corpus"),
        KeyCase("tokenizer.train.sources", ["tokenizer.train.sources=[ja, en]"], a("tokenizer", #""sources":["ja","en"]"#), group: "corpus"),
        KeyCase("tokenizer.train.byte_fallback", ["tokenizer.train.byte_fallback=false"], .rejected(fix: "remove the key"), group: nil),
        KeyCase("tokenizer.train.split_digits", ["tokenizer.train.split_digits=true"], a("tokenizer", #""split_digits":true"#), group: "corpus"),
        KeyCase("tokenizer.special_tokens.bos", ["tokenizer.special_tokens.bos=<bos>"], a("tokenizer", #""bos":"<bos>""#), group: "corpus"),
        KeyCase("tokenizer.special_tokens.eos", ["tokenizer.special_tokens.eos=</eos>"], a("corpus.tokenize.ja", #""eos":"</eos>""#), group: "corpus"),
        KeyCase("tokenizer.special_tokens.pad", ["tokenizer.special_tokens.pad=<padding>"], a("tokenizer", #""pad":"<padding>""#), group: "corpus"),
        KeyCase("tokenizer.special_tokens.unk", ["tokenizer.special_tokens.unk=<unknown>"], a("tokenizer", #""unk":"<unknown>""#), group: "corpus"),
        KeyCase("tokenizer.special_tokens.additional", ["tokenizer.special_tokens.additional=[<mask>]"],
                a("tokenizer", #""additional_special_tokens":["<mask>"]"#), group: "corpus"),
        // Corpus
        KeyCase("corpus.sources.<source>.paths", ["corpus.sources.en.paths=[examples/tiny/data/en.jsonl, examples/tiny/eval/held_out.jsonl]"],
                a("corpus.prepare.en", #""paths":["examples/tiny/data/en.jsonl","examples/tiny/eval/held_out.jsonl"]"#), group: "corpus"),
        KeyCase("corpus.sources.<source>.format", ["corpus.sources.blocks={paths: [$DATA/blocks.txt], format: text_blocks, weight: 0.05}"],
                a("corpus.prepare.blocks", #""format":"text_blocks""#), group: "corpus"),
        KeyCase("corpus.sources.<source>.text_field", ["corpus.sources.body={paths: [$DATA/body.jsonl], text_field: body, weight: 0.05}"],
                a("corpus.prepare.body", #""text_field":"body""#), group: "corpus"),
        KeyCase("corpus.sources.<source>.language", ["corpus.sources.ja.language=japanese"], .notRead(card), group: "release"),
        KeyCase("corpus.sources.<source>.description", ["corpus.sources.ja.description=text"], .notRead("free text"), group: "release"),
        KeyCase("corpus.sources.<source>.filters", ["corpus.sources.code.filters=[dedup_exact]"], a("corpus.prepare.code", #""filters":[{"dedup_exact":{}}]"#), group: "corpus"),
        KeyCase("corpus.sources.<source>.tokens", ["corpus.sources.ja.tokens=1M"], .notRead(plan + " (the mix measures the tokens)"), group: "release"),
        KeyCase("corpus.sources.<source>.weight", ["corpus.sources.ja.weight=0.6"], a("corpus.mix", #""weight":0.6"#), group: "corpus"),
        KeyCase("corpus.sources.<source>.budget", [], a("corpus.mix", #""budget":400"#), group: "budget", recipe: budget),
        KeyCase("corpus.sources.<source>.max_epochs", ["corpus.sources.ja.max_epochs=50"], a("corpus.mix", #""max_epochs":50"#), group: "corpus"),
        KeyCase("corpus.on_error", ["corpus.on_error=fail"], a("corpus.prepare.ja", #""on_error":"fail""#), group: "corpus"),
        KeyCase("corpus.held_out", ["corpus.held_out=5%"], a("corpus.mix", #""held_out":0.05"#), group: "corpus"),
        // Model
        KeyCase("model.arch", ["model.arch=gpt2", "model.kv_heads=4"], a("pretrain", #""arch":"gpt2""#), group: "gpt2"),
        KeyCase("model.hidden", ["model.hidden=96"], a("pretrain", #""hidden":96"#), group: "pretrain1"),
        KeyCase("model.ffn", ["model.ffn=128"], a("pretrain", #""ffn":128"#), group: "pretrain1"),
        KeyCase("model.layers", ["model.layers=1"], a("pretrain", #""layers":1"#), group: "pretrain1"),
        KeyCase("model.heads", ["model.heads=2"], a("pretrain", #""heads":2"#), group: "pretrain2"),
        KeyCase("model.kv_heads", ["model.kv_heads=4"], a("pretrain", #""kv_heads":4"#), group: "pretrain1"),
        KeyCase("model.vocab_size", ["model.vocab_size=4096"], a("pretrain", #""vocab_size":4096"#), group: "pretrain1"),
        KeyCase("model.pad_vocab_multiple", ["model.pad_vocab_multiple=3000"], a("pretrain", #""vocab_size":3000"#), group: "pretrain2"),
        KeyCase("model.seq_len", ["model.seq_len=128"], a("pretrain", #""seq_len":128"#), group: "pretrain1"),
        KeyCase("model.max_positions", ["model.max_positions=512"], a("pretrain", #""max_positions":512"#), group: "pretrain1"),
        KeyCase("model.rope_theta", ["model.rope_theta=500000"], a("pretrain", #""rope_theta":500000"#), group: "pretrain1"),
        KeyCase("model.norm_eps", ["model.norm_eps=0.0001"], a("pretrain", #""norm_eps":0.0001"#), group: "pretrain1"),
        KeyCase("model.activation", ["model.arch=gpt2", "model.kv_heads=4", "model.activation=gelu"], a("pretrain", #""activation":"gelu""#), group: "gpt2"),
        KeyCase("model.tie_embeddings", ["model.tie_embeddings=true"], a("pretrain", #""tie_embeddings":true"#), group: "pretrain1"),
        KeyCase("model.init_std", ["model.init_std=0.01"], a("pretrain", #""init_std":0.01"#), group: "pretrain1"),
        KeyCase("model.dropout", ["model.dropout=0.1"], a("pretrain", #""dropout":0.1"#), group: "pretrain1"),
        KeyCase("model.attention_dropout", ["model.attention_dropout=0.1"], a("pretrain", #""attention_dropout":0.1"#), group: "pretrain1"),
        KeyCase("model.attention_kernel", ["model.attention_kernel=standard"], .rejected(fix: "attention_kernel: flash"), group: nil),
        // Parallel layout
        KeyCase("parallel.tensor", ["cluster.nodes=2", "parallel.tensor=2"], .notRead(layout), group: "pretrain3"),
        KeyCase("parallel.pipeline", ["cluster.devices_per_node=2", "parallel.pipeline=2", "parallel.data=1"], .notRead(layout), group: "pretrain2"),
        KeyCase("parallel.data", ["cluster.devices_per_node=2", "parallel.pipeline=2", "parallel.data=1"], .notRead(layout), group: "pretrain2"),
        KeyCase("parallel.sequence_parallel", ["cluster.devices_per_node=2", "parallel.tensor=2", "parallel.sequence_parallel=true"],
                .rejected(fix: "sequence_parallel: false"), group: nil),
        KeyCase("parallel.zero_stage", ["parallel.zero_stage=3"], .rejected(fix: "zero_stage: 2"), group: nil),
        KeyCase("parallel.recompute", ["parallel.recompute=full"], .notRead("recomputation trades time for memory; results are bitwise those without it (RecomputeTests)"),
                group: "pretrain1"),
        KeyCase("parallel.micro_batch", ["parallel.micro_batch=2"], .notRead(layout), group: "pretrain2"),
        // Pretraining
        KeyCase("pretrain.global_batch", ["pretrain.global_batch=4"], a("pretrain", #""global_batch":4"#), group: "pretrain1"),
        KeyCase("pretrain.steps", ["pretrain.steps=3"], a("pretrain", #""steps":3"#), group: "pretrain1"),
        KeyCase("pretrain.tokens", ["pretrain.tokens=4096"], .notRead("pretrain.steps is what training reads (tokens must agree with it)"), group: "pretrain2"),
        KeyCase("pretrain.optimizer.lr", ["pretrain.optimizer.lr=1e-3"], a("pretrain", #""lr":0.001"#), group: "pretrain1"),
        KeyCase("pretrain.optimizer.betas", ["pretrain.optimizer.betas=[0.8, 0.9]"], a("pretrain", #""betas":[0.8,0.9]"#), group: "pretrain1"),
        KeyCase("pretrain.optimizer.eps", ["pretrain.optimizer.eps=0.0001"], a("pretrain", #""eps":0.0001"#), group: "pretrain1"),
        KeyCase("pretrain.optimizer.weight_decay", ["pretrain.optimizer.weight_decay=0.01"], a("pretrain", #""weight_decay":0.01"#), group: "pretrain1"),
        KeyCase("pretrain.optimizer.decay_norms_and_biases", ["pretrain.optimizer.decay_norms_and_biases=true"],
                a("pretrain", #""decay_norms_and_biases":true"#), group: "pretrain1"),
        KeyCase("pretrain.schedule.kind", ["pretrain.schedule.kind=linear"], a("pretrain", #""kind":"linear""#), group: "pretrain1"),
        KeyCase("pretrain.schedule.warmup_steps", [], a("pretrain", #""warmup_steps":1"#), group: "pretrain-warmup", recipe: pretrainWarmup),
        KeyCase("pretrain.schedule.warmup_fraction", ["pretrain.schedule.warmup_fraction=20%"], a("pretrain", #""warmup_fraction":0.2"#), group: "pretrain1"),
        KeyCase("pretrain.schedule.min_lr", ["pretrain.schedule.min_lr=0.0001"], a("pretrain", #""min_lr":0.0001"#), group: "pretrain1"),
        KeyCase("pretrain.schedule.decay_steps", ["pretrain.schedule.decay_steps=1"], a("pretrain", #""decay_steps":1"#), group: "pretrain1"),
        KeyCase("pretrain.grad_clip", ["pretrain.grad_clip=0.5"], a("pretrain", #""grad_clip":0.5"#), group: "pretrain1"),
        KeyCase("pretrain.precision", ["pretrain.precision=bf16"], a("pretrain", #""precision":"bf16""#), group: "pretrain2"),
        KeyCase("pretrain.checkpoint.every", ["pretrain.checkpoint.every=1"], .notRead("which checkpoints are kept, not the result"), group: "pretrain2"),
        KeyCase("pretrain.checkpoint.keep", ["pretrain.checkpoint.keep=1"], .notRead("which checkpoints are kept, not the result"), group: "pretrain2"),
        KeyCase("pretrain.log_interval", ["pretrain.log_interval=1"], a("pretrain", #""log_interval":1"#), group: "pretrain1"),
        KeyCase("pretrain.eval_interval", ["pretrain.eval_interval=1"], a("pretrain", #""eval_interval":1"#), group: "pretrain1"),
        KeyCase("pretrain.eval_iters", ["pretrain.eval_iters=1"], a("pretrain", #""eval_iters":1"#), group: "pretrain1"),
        KeyCase("pretrain.nan_policy", ["pretrain.nan_policy=skip"], a("pretrain", #""nan_policy":"skip""#), group: "pretrain1"),
        // Templates and tuning
        KeyCase("templates.<template>.prompt", ["templates.mine.prompt='Q: {instruction} A:'", "tune.qa.template=mine"],
                a("tune.qa", #""prompt":"Q: {instruction} A:""#), group: "tune1"),
        KeyCase("templates.<template>.prompt_with_input", ["templates.mine.prompt='Q: {instruction} A:'", "templates.mine.prompt_with_input='Q: {instruction} ({input}) A:'",
                                                           "tune.qa.template=mine"], a("tune.qa", #""prompt_with_input":"Q: {instruction} ({input}) A:""#), group: "tune1"),
        KeyCase("templates.<template>.system", ["templates.mine.prompt='Q: {instruction} A:'", "templates.mine.system=Answer briefly.", "tune.qa.template=mine"],
                a("tune.qa", #""system":"Answer briefly.""#), group: "tune1"),
        KeyCase("tune.<stage>.from", ["tune.more={from: qa, datasets: {chat: {paths: [$DATA/chat.jsonl], format: chat}}, global_batch: 4, lr: 1e-4}"],
                a("tune.more", #""from":"qa""#), group: "tune2"),
        KeyCase("tune.<stage>.datasets.<dataset>.paths", ["tune.qa.datasets.tiny_qa.paths=[examples/tiny/tuning/qa.jsonl, examples/tiny/tuning/tasks.jsonl]"],
                a("tune.qa", #""paths":["examples/tiny/tuning/qa.jsonl","examples/tiny/tuning/tasks.jsonl"]"#), group: "tune1"),
        KeyCase("tune.<stage>.datasets.<dataset>.format", ["tune.more={from: qa, datasets: {chat: {paths: [$DATA/chat.jsonl], format: chat}}, global_batch: 4, lr: 1e-4}"],
                a("tune.more", #""format":"chat""#), group: "tune2"),
        KeyCase("tune.<stage>.datasets.<dataset>.weight", ["tune.qa.datasets.tasks.weight=2"], a("tune.qa", #""weight":2"#), group: "tune1"),
        KeyCase("tune.<stage>.datasets.<dataset>.epochs", ["tune.qa.datasets.tasks.epochs=2"], a("tune.qa", #"{"epochs":2.0,"format":"alpaca","name":"tasks""#), group: "tune1"),
        KeyCase("tune.<stage>.datasets.<dataset>.description", ["tune.qa.datasets.tasks.description=made up"], .notRead("free text"), group: "release"),
        KeyCase("tune.<stage>.template", ["tune.qa.template=llm-jp-v2-chat"], a("tune.qa", #""template":"llm-jp-v2-chat""#), group: "tune2"),
        KeyCase("tune.<stage>.loss_mask", ["tune.qa.loss_mask=all"], a("tune.qa", #""loss_mask":"all""#), group: "tune1"),
        KeyCase("tune.<stage>.epochs", ["tune.qa.epochs=0.02"], a("tune.qa", #""epochs":0.02,"from""#), group: "tune1"),
        KeyCase("tune.<stage>.global_batch", ["tune.qa.global_batch=4"], a("tune.qa", #""global_batch":4"#), group: "tune1"),
        KeyCase("tune.<stage>.micro_batch", ["tune.qa.micro_batch=2"], a("tune.qa", #""micro_batch":2"#), group: "tune1"),
        KeyCase("tune.<stage>.lr", ["tune.qa.lr=1e-3"], a("tune.qa", #""lr":0.001"#), group: "tune1"),
        KeyCase("tune.<stage>.weight_decay", ["tune.qa.weight_decay=0.01"], a("tune.qa", #""weight_decay":0.01"#), group: "tune1"),
        KeyCase("tune.<stage>.schedule.kind", ["tune.qa.schedule.kind=linear"], a("tune.qa", #""kind":"linear""#), group: "tune1"),
        KeyCase("tune.<stage>.schedule.warmup_steps", [], a("tune.qa", #""warmup_steps":1"#), group: "tune-warmup", recipe: tuneWarmup),
        KeyCase("tune.<stage>.schedule.warmup_fraction", ["tune.qa.schedule.warmup_fraction=20%"], a("tune.qa", #""warmup_fraction":0.2"#), group: "tune1"),
        KeyCase("tune.<stage>.schedule.min_lr", ["tune.qa.schedule.min_lr=0.0001"], a("tune.qa", #""min_lr":0.0001"#), group: "tune1"),
        KeyCase("tune.<stage>.schedule.decay_steps", ["tune.qa.schedule.decay_steps=2"], a("tune.qa", #""decay_steps":2"#), group: "tune1"),
        KeyCase("tune.<stage>.max_length", ["tune.qa.max_length=128"], a("tune.qa", #""max_length":128"#), group: "tune1"),
        KeyCase("tune.<stage>.packing", ["tune.qa.packing=false"], a("tune.qa", #""packing":false"#), group: "tune1"),
        KeyCase("tune.<stage>.precision", ["tune.qa.precision=bf16"], a("tune.qa", #""precision":"bf16""#), group: "tune1"),
        KeyCase("tune.<stage>.checkpoint.every", ["tune.qa.checkpoint.every=1"], .notRead("which checkpoints are kept, not the result"), group: "tune1"),
        KeyCase("tune.<stage>.checkpoint.keep", ["tune.qa.checkpoint.keep=1"], .notRead("which checkpoints are kept, not the result"), group: "tune1"),
        // Evaluation
        KeyCase("eval.<suite>.kind", ["eval.ppl={kind: perplexity, datasets: [examples/tiny/eval/held_out.jsonl], checkpoints: [pretrain], max_samples: 1}"],
                a("eval.ppl.pretrain", #""kind":"perplexity""#), group: "eval"),
        KeyCase("eval.<suite>.datasets", ["eval.tasks.datasets=[examples/tiny/eval/tiny_qa.json]"],
                a("eval.tasks.qa", #""datasets":["examples/tiny/eval/tiny_qa.json"]"#), group: "eval"),
        KeyCase("eval.<suite>.checkpoints", ["eval.questions.checkpoints=[pretrain, qa]"], a("eval.questions.pretrain", #""checkpoint":"pretrain""#), group: "eval"),
        KeyCase("eval.<suite>.few_shots", ["eval.tasks.few_shots=1"], a("eval.tasks.qa", #""few_shots":1"#), group: "eval"),
        KeyCase("eval.<suite>.max_samples", ["eval.tasks.max_samples=2"], a("eval.tasks.qa", #""max_samples":2"#), group: "eval"),
        KeyCase("eval.<suite>.metrics", ["eval.tasks.metrics=[exact_match]"], a("eval.tasks.qa", #""metrics":["exact_match"]"#), group: "eval"),
        KeyCase("eval.<suite>.prompt_template", ["eval.tasks.prompt_template='{instruction}{few_shots_text} Q: {input} A:'", "eval.tasks.few_shots=1"],
                a("eval.tasks.qa", #""prompt_template":"{instruction}{few_shots_text} Q: {input} A:""#), group: "eval"),
        KeyCase("eval.<suite>.few_shots_template", ["eval.tasks.prompt_template='{instruction}{few_shots_text} Q: {input} A:'", "eval.tasks.few_shots=1",
                                                    "eval.tasks.few_shots_template=' Q: {input} A: {output}'"],
                a("eval.tasks.qa", #""few_shots_template":" Q: {input} A: {output}""#), group: "eval"),
        KeyCase("eval.<suite>.template", ["eval.questions.template=llm-jp-v2-chat"], a("eval.questions.qa", #""template":"llm-jp-v2-chat""#), group: "eval"),
        KeyCase("eval.<suite>.max_new_tokens", ["eval.questions.max_new_tokens=4"], a("eval.questions.qa", #""max_new_tokens":4"#), group: "eval"),
        KeyCase("eval.<suite>.temperature", ["eval.questions.temperature=0.5"], a("eval.questions.qa", #""temperature":0.5"#), group: "eval"),
        // A run with a judge needs a judge server: EvalCLITests runs one against a local server.
        KeyCase("eval.<suite>.judge.endpoint", ["eval.questions.judge={endpoint: http://127.0.0.1:9/v1, model: judge}"],
                a("eval.questions.qa", #""endpoint":"http://127.0.0.1:9/v1""#), group: nil),
        KeyCase("eval.<suite>.judge.model", ["eval.questions.judge={endpoint: http://127.0.0.1:9/v1, model: another-judge}"],
                a("eval.questions.qa", #""model":"another-judge""#), group: nil),
        KeyCase("eval.<suite>.judge.api_key_env", ["eval.questions.judge={endpoint: http://127.0.0.1:9/v1, model: judge, api_key_env: JUDGE_API_KEY}"],
                a("eval.questions.qa", #""api_key_env":"JUDGE_API_KEY""#), group: nil),
        // Release
        KeyCase("release.name", ["release.name=another-release"], a("release", #""name":"another-release""#), group: "release"),
        KeyCase("release.checkpoint", ["release.checkpoint=pretrain"], a("release", #""checkpoint":"pretrain""#), group: "release2"),
        KeyCase("release.contents", ["release.contents=[model, tokenizer]"], a("release", #""contents":["model","tokenizer"]"#), group: "release2"),
        KeyCase("release.dtype", ["release.dtype=bf16"], a("release", #""dtype":"bf16""#), group: "release"),
        KeyCase("release.license", ["release.license=MIT"], a("release", #""license":"MIT""#), group: "release"),
    ]

    /// Fixture files some rows read: blank-line separated text, JSONL with another text field, chat data.
    public static func writeData(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let paragraphs = (0..<40).map { i in
            "Block \(i): the library near the river opens every morning, and the readers who come early find the newest books on the long table."
        }
        try (paragraphs.joined(separator: "\n\n") + "\n").write(to: directory.appendingPathComponent("blocks.txt"), atomically: true, encoding: .utf8)
        let bodies = (0..<40).map { i in
            "{\"body\": \"Body \(i): a short note about the weather, the trains and the market, written for the field test of text_field.\"}"
        }
        try (bodies.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("body.jsonl"), atomically: true, encoding: .utf8)
        let chats = (0..<8).map { i in
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Say \(i).\"}, {\"role\": \"assistant\", \"content\": \"\(i)\"}]}"
        }
        try (chats.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("chat.jsonl"), atomically: true, encoding: .utf8)
    }

    /// The overrides with `$DATA` replaced.
    public static func overrides(_ c: KeyCase, data: URL) -> [String] {
        c.set.map { $0.replacingOccurrences(of: "$DATA", with: data.path) }
    }

    /// The child recipe of a row written to `directory` (nil: the tiny example itself).
    public static func recipeFile(_ c: KeyCase, in directory: URL) throws -> String {
        let tiny = repositoryRoot.appendingPathComponent("examples/tiny/tiny-llama.yaml").path
        guard let text = c.recipe else { return tiny }
        let file = directory.appendingPathComponent("child-\(c.group ?? "x").yaml")
        try text.replacingOccurrences(of: "$TINY", with: tiny).replacingOccurrences(of: "$ROOT", with: repositoryRoot.path)
            .write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }
}
