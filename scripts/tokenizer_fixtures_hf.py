#!/usr/bin/env python3
"""Writes the Hugging Face tokenizer.json parity fixtures under
Tests/KondateTokenizersTests/Fixtures/tokenizers/hf/ (deterministic; the outputs are committed and the Swift
tests read them without Python):

- bytelevel-bpe.json                 ByteLevelBPETokenizer trained by `tokenizers` (GPT-2 style), vocab 3000,
                                     special tokens <|endoftext|> and <pad>.
- metaspace-bpe-bytefallback.json    LLaMA-style BPE: a SentencePiece BPE model (byte_fallback) converted with
                                     transformers' LlamaConverter (non-legacy: Metaspace pre-tokenizer, decoder
                                     Sequence[Replace, ByteFallback, Fuse, Strip]).
- unigram-bytefallback.json          a SentencePiece Unigram model (identity normalization, split_digits,
                                     user-defined "\\n", byte_fallback) converted the way transformers converts a
                                     bare .model (Replace normalizers, Metaspace + Split(Regex) pre-tokenizers).
- <name>.expected.jsonl              for every text of ../mixed.jsonl: {"ids": encode(text,
                                     add_special_tokens=False).ids, "decoded": decode(ids,
                                     skip_special_tokens=False)}; "decoded" is left out when it equals the text,
                                     which keeps the files small.
- components.jsonl                   variants of the fixtures above with other normalizers, pre-tokenizers,
                                     decoders, added tokens and model flags, each with the ids and decoded text
                                     `tokenizers` gives for a subset of mixed.jsonl: {"name", "base", "patch"
                                     (top-level keys replaced in the base JSON), "model_patch" (keys replaced in
                                     "model"), "added_tokens" (replaces the base list when present), "texts"
                                     (indices into mixed.jsonl), "ids", "decoded" (null where it equals the text)}.

Needs `tokenizers`, `sentencepiece`, `transformers` and `protobuf` (installed when missing).

    python3 scripts/tokenizer_fixtures_hf.py
"""
import copy
import io
import json
import os
import subprocess
import sys


def ensure(module, package):
    try:
        __import__(module)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", package])


ensure("tokenizers", "tokenizers")
ensure("sentencepiece", "sentencepiece")
ensure("transformers", "transformers")
ensure("google.protobuf", "protobuf")

import sentencepiece as spm  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from tokenizers.implementations import ByteLevelBPETokenizer  # noqa: E402
import importlib  # noqa: E402

converters = importlib.import_module("transformers.convert_slow_tokenizer")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "KondateTokenizersTests", "Fixtures", "tokenizers")
OUT = os.path.join(FIXTURES, "hf")


def corpus_texts():
    texts = []
    for name in ("ja.jsonl", "en.jsonl", "code.jsonl"):
        with open(os.path.join(ROOT, "examples", "tiny", "data", name), encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts


def mixed_texts():
    with open(os.path.join(FIXTURES, "mixed.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def save_tokenizer(tok, name):
    # Re-serialise through json so the committed file is stable, compact and readable.
    data = json.loads(tok.to_str())
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    return Tokenizer.from_file(os.path.join(OUT, name))


def write_expected(tok, name, texts):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            row = {"ids": ids}
            decoded = tok.decode(ids, skip_special_tokens=False)
            if decoded != text:
                row["decoded"] = decoded
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def train_spm(model_type, vocab_size, **extra):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        # One sentence a line: sentencepiece skips sentences longer than max_sentence_length.
        sentence_iterator=(line for text in corpus_texts() for line in text.split("\n") if line.strip()),
        model_writer=model, model_type=model_type,
        vocab_size=vocab_size, byte_fallback=True, character_coverage=0.9995, num_threads=1,
        minloglevel=2, **extra)
    return model.getvalue()


def bytelevel_bpe():
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus_texts(), vocab_size=3000, min_frequency=2,
                            special_tokens=["<|endoftext|>", "<pad>"], show_progress=False)
    return save_tokenizer(tok, "bytelevel-bpe.json")


def llama_bpe():
    # transformers' LlamaConverter (non-legacy) assembled by hand: its BPE path cannot read a bare .model
    # in transformers 5, so the vocab and score-ranked merges come from its own generate_merges.
    from tokenizers import AddedToken, decoders, models, pre_tokenizers
    from transformers.tokenization_utils_base import generate_merges
    proto = converters.import_protobuf().ModelProto()
    proto.ParseFromString(train_spm("bpe", 3000))
    scores = [(p.piece, p.score) for p in proto.pieces]
    vocab = {piece: i for i, (piece, _) in enumerate(scores)}
    tok = Tokenizer(models.BPE(vocab, generate_merges(vocab, scores), unk_token=proto.trainer_spec.unk_piece,
                               fuse_unk=True, byte_fallback=True, dropout=None))
    tok.add_tokens([AddedToken(p.piece, normalized=False, special=p.type == 3)
                    for p in proto.pieces if p.type in (3, 4)])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1)])
    return save_tokenizer(tok, "metaspace-bpe-bytefallback.json")


def unigram():
    data = train_spm("unigram", 5000, normalization_rule_name="identity", split_digits=True,
                     user_defined_symbols=["\n"], remove_extra_whitespaces=False,
                     allow_whitespace_only_pieces=True)
    proto = converters.import_protobuf().ModelProto()
    proto.ParseFromString(data)
    vocab = [(p.piece, p.score) for p in proto.pieces]
    tok = converters.SpmConverter.build_tokenizer_from_spm_proto(proto, vocab)
    # Control pieces are special added tokens, user-defined pieces plain ones (as SpmConverter.tokenizer does).
    from tokenizers import AddedToken
    tok.add_tokens([AddedToken(p.piece, normalized=False, special=p.type == 3)
                    for p in proto.pieces if p.type in (3, 4)])
    return save_tokenizer(tok, "unigram-bytefallback.json")


def small_charsmap():
    """A SentencePiece precompiled charsmap from a handful of custom rules (full-width digits and
    letters, ideographic space, ligature fi, a/e + combining acute, circled one, …), base64 as in
    tokenizer.json; the builtin nmt_nfkc map would make the fixture 300 KB larger."""
    import base64
    import tempfile
    rules = {"FF11": "31", "FF12": "32", "FF21": "41", "3000": "20", "FB01": "66 69", "FF71": "30A2",
             "61 301": "E1", "65 301": "E9", "2460": "28 31 29", "FF08": "28", "FF09": "29", "2028": "20"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rules.tsv")
        with open(path, "w", encoding="utf-8") as f:
            for k, v in rules.items():
                f.write(f"{k}\t{v}\n")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(["abc def ghi"] * 50), model_writer=model,
                                       vocab_size=20, normalization_rule_tsv=path, minloglevel=2,
                                       hard_vocab_limit=False, num_threads=1)
    proto = converters.import_protobuf().ModelProto()
    proto.ParseFromString(model.getvalue())
    return base64.b64encode(proto.normalizer_spec.precompiled_charsmap).decode("ascii")


def component_cases(bases):
    """Variants of the fixtures: one component changed each, checked on a subset of the texts."""
    mixed = mixed_texts()
    # The stress texts (emoji, whitespace, controls …), then a spread of the corpus lines.
    subset = list(range(1700, 1730)) + list(range(0, 1700, 97)) + list(range(1730, len(mixed), 61))
    bl, ms, un = "bytelevel-bpe.json", "metaspace-bpe-bytefallback.json", "unigram-bytefallback.json"
    charsmap = small_charsmap()
    seq = lambda kind, key, items: {"type": "Sequence", key: items}  # noqa: E731
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    added = lambda content, **kw: dict({"id": None, "content": content, "single_word": False, "lstrip": False,  # noqa: E731
                                        "rstrip": False, "normalized": False, "special": False}, **kw)
    cases = [
        ("bytelevel-prefix-space", bl, {"pre_tokenizer": dict(byte_level, add_prefix_space=True)}, {}, None),
        ("bytelevel-no-regex", bl, {"pre_tokenizer": dict(byte_level, use_regex=False)}, {}, None),
        ("bytelevel-nfkc-lowercase", bl, {"normalizer": seq("n", "normalizers", [{"type": "NFKC"}, {"type": "Lowercase"}])}, {}, None),
        ("bytelevel-nfd", bl, {"normalizer": {"type": "NFD"}}, {}, None),
        ("bytelevel-nfkd-strip", bl, {"normalizer": seq("n", "normalizers", [{"type": "NFKD"}, {"type": "Strip", "strip_left": True, "strip_right": True}])}, {}, None),
        ("bytelevel-nfc-replace", bl, {"normalizer": seq("n", "normalizers", [{"type": "NFC"}, {"type": "Replace", "pattern": {"String": "の"}, "content": "ノ"}])}, {}, None),
        ("bytelevel-digits", bl, {"pre_tokenizer": seq("p", "pretokenizers", [{"type": "Digits", "individual_digits": True}, byte_level])}, {}, None),
        ("bytelevel-digits-grouped", bl, {"pre_tokenizer": seq("p", "pretokenizers", [{"type": "Digits", "individual_digits": False}, byte_level])}, {}, None),
        ("bytelevel-whitespace", bl, {"pre_tokenizer": seq("p", "pretokenizers", [{"type": "Whitespace"}, byte_level])}, {}, None),
        ("bytelevel-whitespace-split", bl, {"pre_tokenizer": seq("p", "pretokenizers", [{"type": "WhitespaceSplit"}, byte_level])}, {}, None),
        ("bytelevel-punctuation", bl, {"pre_tokenizer": seq("p", "pretokenizers", [{"type": "Punctuation", "behavior": "Isolated"}, byte_level])}, {}, None),
        ("bytelevel-llama3-split", bl, {"pre_tokenizer": seq("p", "pretokenizers", [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
             "behavior": "Isolated", "invert": False}, dict(byte_level, use_regex=False)])}, {}, None),
    ]
    for behavior in ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        cases.append((f"bytelevel-split-{behavior.lower()}", bl, {"pre_tokenizer": seq("p", "pretokenizers", [
            {"type": "Split", "pattern": {"String": " "}, "behavior": behavior, "invert": False}, byte_level])}, {}, None))
    cases += [
        ("bytelevel-split-invert", bl, {"pre_tokenizer": seq("p", "pretokenizers", [
            {"type": "Split", "pattern": {"Regex": r"\p{N}+"}, "behavior": "Isolated", "invert": True}, byte_level])}, {}, None),
        ("bytelevel-legacy-merges", bl, {}, {"merges": "legacy"}, None),
        ("bytelevel-ignore-merges", bl, {}, {"ignore_merges": True}, None),
        ("bytelevel-added-tokens", bl, {}, {}, [
            added("<|endoftext|>", special=True), added("<pad>", special=True),
            added("です", lstrip=True), added("the", single_word=True), added(" and", rstrip=True, normalized=True),
            added("[CLS]", special=True, lstrip=True, rstrip=True), added("😀", normalized=True)]),
        ("bytelevel-added-normalized-lowercase", bl, {"normalizer": {"type": "Lowercase"}}, {}, [
            added("<|endoftext|>", special=True), added("<pad>", special=True),
            added("def", normalized=True), added("The", normalized=False), added("<UNK>", normalized=True, single_word=True)]),
        ("metaspace-legacy-normalizer", ms, {"normalizer": seq("n", "normalizers", [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]),
            "pre_tokenizer": None}, {}, None),
        ("metaspace-always-split", ms, {"pre_tokenizer": metaspace}, {}, None),
        ("metaspace-never", ms, {"pre_tokenizer": dict(metaspace, prepend_scheme="never", split=False)}, {}, None),
        ("metaspace-first-split-after-digits", ms, {"pre_tokenizer": seq("p", "pretokenizers", [
            {"type": "Digits", "individual_digits": True}, dict(metaspace, prepend_scheme="first")])}, {}, None),
        ("metaspace-decoder", ms, {"decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}}, {}, None),
        ("metaspace-no-decoder", ms, {"decoder": None}, {}, None),
        ("metaspace-no-byte-fallback", ms, {}, {"byte_fallback": False}, None),
        ("metaspace-no-fuse-unk", ms, {}, {"byte_fallback": False, "fuse_unk": False}, None),
        ("metaspace-strip-normalizer", ms, {"normalizer": seq("n", "normalizers", [
            {"type": "Strip", "strip_left": False, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}])}, {}, None),
        ("unigram-no-byte-fallback", un, {}, {"byte_fallback": False}, None),
        ("unigram-precompiled", un, {"normalizer": seq("n", "normalizers", [
            {"type": "Precompiled", "precompiled_charsmap": charsmap}] + bases[un]["normalizer"]["normalizers"])}, {}, None),
        ("bytelevel-precompiled", bl, {"normalizer": {"type": "Precompiled", "precompiled_charsmap": charsmap}}, {}, None),
        ("unigram-nfkc-metaspace-decoder", un, {"normalizer": seq("n", "normalizers", [{"type": "NFKC"}] +
            bases[un]["normalizer"]["normalizers"]), "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}}, {}, None),
        ("unigram-metaspace-first", un, {"normalizer": None, "pre_tokenizer": dict(metaspace, prepend_scheme="first", split=False)}, {}, None),
        ("unigram-whitespace-split", un, {"normalizer": None, "pre_tokenizer": seq("p", "pretokenizers", [
            {"type": "WhitespaceSplit"}, dict(metaspace, prepend_scheme="always", split=False)])}, {}, None),
    ]
    rows = []
    for name, base, patch, model_patch, added_tokens in cases:
        data = copy.deepcopy(bases[base])
        for k, v in patch.items():
            data[k] = v
        for k, v in model_patch.items():
            if k == "merges" and v == "legacy":
                data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
            else:
                data["model"][k] = v
        if added_tokens is not None:
            next_id = max(data["model"]["vocab"].values()) + 1
            kept = []
            for t in added_tokens:
                t = dict(t)
                t["id"] = data["model"]["vocab"].get(t["content"], next_id)
                if t["id"] == next_id:
                    next_id += 1
                kept.append(t)
            data["added_tokens"] = kept
        tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
        ids = [tok.encode(mixed[i], add_special_tokens=False).ids for i in subset]
        # null where the decoded text equals the input.
        decoded = [tok.decode(x, skip_special_tokens=False) for x in ids]
        decoded = [None if d == mixed[i] else d for d, i in zip(decoded, subset)]
        row = {"name": name, "base": base, "patch": patch,
               "model_patch": model_patch, "texts": subset, "ids": ids, "decoded": decoded}
        if added_tokens is not None:
            row["added_tokens"] = data["added_tokens"]
        rows.append(row)
    with open(os.path.join(OUT, "components.jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    return len(rows), len(subset)


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = mixed_texts()
    bases = {}
    for build, name in ((bytelevel_bpe, "bytelevel-bpe"), (llama_bpe, "metaspace-bpe-bytefallback"),
                        (unigram, "unigram-bytefallback")):
        tok = build()
        write_expected(tok, name + ".expected.jsonl", texts)
        with open(os.path.join(OUT, name + ".json"), encoding="utf-8") as f:
            bases[name + ".json"] = json.load(f)
        print(name, tok.get_vocab_size(), "ids,", len(texts), "texts")
    count, per = component_cases(bases)
    print(count, "component cases of", per, "texts ->", OUT)


main()
