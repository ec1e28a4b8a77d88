#!/usr/bin/env python3
"""Trains the SentencePiece parity fixtures and writes what the Swift tests compare against, into
Tests/KondateTokenizersTests/Fixtures/tokenizers/spm/:

    <name>.model           the model, trained with the `sentencepiece` package on examples/tiny/data
    <name>.expected.jsonl  {"ids": [...], "decoded": "..."} for every text of ../mixed.jsonl, in order:
                           ids = sp.encode(text), decoded = sp.decode(ids)
    <name>.decode.jsonl    {"ids": [...], "decoded": "..."} for seeded random id sequences (byte pieces
                           that form invalid UTF-8, control and unk ids, leading "▁" pieces):
                           decoded = sp.decode(ids)
    edge-<kind>.model      small hand-built models for corner cases training never produces (UNUSED
                           pieces, exact score ties, fractional BPE scores, single-character control
                           pieces, user-defined symbols against longer paths, path scores past
                           ±100 000), with edge-<kind>.expected.jsonl: {"text", "ids", "decoded"}
                           for the probe texts below
    rules-<kind>.model     a model trained with custom normalization and denormalization rule TSVs
                           (a small charsmap of our own, and a denormalizer that decode applies), and
                           the same model with escape_whitespaces switched off; .expected.jsonl as for
                           the edge models, on every 7th mixed text plus the edge probes
    manifest.json          the sentencepiece version, the training options and the line counts

Deterministic: one training thread, no input sampling or shuffling, a fixed seed for the random id
sequences. Running it twice gives byte-identical files for the same sentencepiece version.

    python3 scripts/tokenizer_fixtures_spm.py
"""
import io
import json
import os
import random

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "KondateTokenizersTests", "Fixtures", "tokenizers")
OUT = os.path.join(FIXTURES, "spm")
MIXED = os.path.join(FIXTURES, "mixed.jsonl")

# Options every model shares: deterministic training on all input lines.
COMMON = dict(
    num_threads=1,
    input_sentence_size=0,
    shuffle_input_sentence=False,
    minloglevel=2,
)

MODELS = [
    # The options LLM-jp's tokenizers were trained with (llm-jp-tokenizer, howToCreateModel_ver2.md):
    # identity normalization, byte fallback, split digits, "\n" as a user-defined symbol; whitespace
    # is kept as written (code), so runs of spaces reach the model.
    ("llmjp-unigram", dict(
        model_type="unigram",
        vocab_size=3000,
        normalization_rule_name="identity",
        byte_fallback=True,
        split_digits=True,
        user_defined_symbols=["\n"],
        max_sentencepiece_length=16,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
    )),
    # The sentencepiece defaults: nmt_nfkc through the precompiled charsmap, extra whitespace removed,
    # no byte fallback (unknown characters become <unk>, and runs of them merge into one id). A pad
    # piece and a control symbol so special ids and control pieces are covered. The user-defined
    # symbols are ones nmt_nfkc would rewrite ("ＡＩ" to "AI", "\n" to " "): they must stay as written.
    ("nfkc-unigram", dict(
        model_type="unigram",
        vocab_size=2000,
        pad_id=3,
        control_symbols=["<sep>"],
        user_defined_symbols=["ＡＩ", "\n"],
    )),
    # BPE in the LLaMA style: identity, byte fallback, split digits, whitespace kept; two
    # multi-character user-defined symbols that occur in the test text (frozen during merges).
    ("bpe-bytefallback", dict(
        model_type="bpe",
        vocab_size=2000,
        normalization_rule_name="identity",
        byte_fallback=True,
        split_digits=True,
        remove_extra_whitespaces=False,
        user_defined_symbols=["[CLS]", "<|endoftext|>", "\n"],
    )),
    # The less common switches: whitespace as a suffix, nmt_nfkc_cf (case folding), BPE without
    # byte fallback (unknown runs merge into one <unk>).
    ("suffix-bpe", dict(
        model_type="bpe",
        vocab_size=1000,
        normalization_rule_name="nmt_nfkc_cf",
        treat_whitespace_as_suffix=True,
        control_symbols=["<ctl>"],
    )),
]


NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED = 1, 2, 3, 4, 5

# Hand-built models: (name, model_type, normalizer options, pieces as (piece, score, type), probe texts).
EDGE_MODELS = [
    ("edge-unigram", 1, dict(add_dummy_prefix=False, remove_extra_whitespaces=False), [
        ("<unk>", 0, UNKNOWN), ("<s>", 0, CONTROL), ("</s>", 0, CONTROL),
        ("x", -1000, NORMAL),            # a long run of x passes the ±100 000 re-centering threshold
        ("a", -1, NORMAL), ("b", -1, NORMAL),
        ("ab", -2.0005, NORMAL),         # a hair worse than a + b, lost to float rounding near -1e5
        ("c", -2, NORMAL), ("abc", -0.5, UNUSED),
        ("日", -3, NORMAL), ("本", -3, NORMAL), ("語", -2, NORMAL),
        ("日本", 0, USER_DEFINED),        # 6 bytes: scores 0.1 * 5
        ("日本語", 0, USER_DEFINED),
        ("é", -1, NORMAL), ("éa", 0, USER_DEFINED),
        ("▁", -2, NORMAL), ("▁▁", -4, NORMAL),   # an exact tie: the first path found wins
        ("y", -0.3, NORMAL), ("yy", -0.6, NORMAL), ("yyy", -0.9, NORMAL),
        ("q", 0, CONTROL),                # a control piece is never matched in text
        ("zz", -50, NORMAL),
    ], ["ab", "abc", "xab", "x" * 50 + "ab", "x" * 100 + "ab", "x" * 101 + "ab", "x" * 150 + "ab",
        "x" * 202 + "ab", "x" * 303 + "ab" * 3, "x" * 1000 + "abab", "日本", "日本語", "日本日本語語", "éa", "éaé",
        "  ", "a b  c   ", "yyyyyyy", "yy yyy", "q", "aqb", "zzz", "<s>", "ab</s>", "😀日本😀", ""]),
    ("edge-bpe", 2, dict(add_dummy_prefix=True, remove_extra_whitespaces=True), [
        ("<unk>", 0, UNKNOWN), ("<s>", 0, CONTROL), ("</s>", 0, CONTROL),
        ("a", 0, NORMAL), ("b", 0, NORMAL), ("c", 0, NORMAL), ("d", 0, NORMAL), ("e", 0, NORMAL),
        ("ab", -1.5, NORMAL), ("bc", -1.2, NORMAL), ("ca", -1.2, NORMAL),   # fractional scores, a tie
        ("abc", -2, NORMAL),
        ("dd", -0.5, UNUSED), ("ddd", -3, NORMAL),   # merged through an UNUSED piece, then split back
        ("ee", -0.25, UNUSED),                       # an UNUSED piece left as the final symbol
        ("▁", 0, NORMAL), ("▁a", -0.5, NORMAL), ("▁ab", -1.7, NORMAL),
        ("[X]", 0, USER_DEFINED), ("[X]a", 0, USER_DEFINED),
        ("q", 0, CONTROL),
        ("<", -1, NORMAL), ("s", -1, NORMAL), (">", -1, NORMAL), ("<s", -2, NORMAL),
    ], ["abc", "bcab", "cabc", "bca", "abcabc", "dd", "ddd", "dddd", "ddddd", "ee", "eee", "eeee",
        "ab[X]ab", "[X]a[X]", "[X][X]aa", "q", "aqa", "zz", "zzazz", "ab  ab", "  abc  ", "<s>", "a<s>b",
        "😀", "a😀😀b", ""]),
]


# Custom rules (TSV: source code points, tab, target code points, in hex). The normalizer lower-cases
# A and B, maps full-width Ａ and U+3000 and rewrites "THE"; the denormalizer turns "ab" into "AB".
NORMALIZATION_RULES = "41\t61\n42\t62\nFF21\t61\n3000\t20\n54 48 45\t74 68 65\n"
DENORMALIZATION_RULES = "61 62\t41 42\n"


def build_edge_model(model_type, normalizer, pieces):
    proto = model_pb2.ModelProto()
    for piece, score, kind in pieces:
        p = proto.pieces.add()
        p.piece, p.score, p.type = piece, score, kind
    proto.trainer_spec.model_type = model_type
    proto.normalizer_spec.name = "identity"
    for key, value in normalizer.items():
        setattr(proto.normalizer_spec, key, value)
    return proto.SerializeToString()


def train_rules_model(lines):
    """A small unigram model (English lines only) with the custom rule TSVs above."""
    tmp = os.path.join(OUT, ".rules-tmp")
    os.makedirs(tmp, exist_ok=True)
    try:
        with open(os.path.join(tmp, "norm.tsv"), "w", encoding="utf-8") as f:
            f.write(NORMALIZATION_RULES)
        with open(os.path.join(tmp, "denorm.tsv"), "w", encoding="utf-8") as f:
            f.write(DENORMALIZATION_RULES)
        model_io = io.BytesIO()
        english = [line for line in lines if line.isascii()]
        spm.SentencePieceTrainer.train(sentence_iterator=iter(english), model_writer=model_io, model_type="unigram",
                                       vocab_size=400, normalization_rule_tsv=os.path.join(tmp, "norm.tsv"),
                                       denormalization_rule_tsv=os.path.join(tmp, "denorm.tsv"), **COMMON)
        return model_io.getvalue()
    finally:
        for name in ("norm.tsv", "denorm.tsv"):
            if os.path.exists(os.path.join(tmp, name)):
                os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)


def training_lines():
    """Every non-empty line of the example corpus, in file order (ja, en, code)."""
    lines = []
    for name in ("ja.jsonl", "en.jsonl", "code.jsonl"):
        with open(os.path.join(ROOT, "examples", "tiny", "data", name), encoding="utf-8") as f:
            for row in f:
                for line in json.loads(row)["text"].split("\n"):
                    if line.strip():
                        lines.append(line)
    return lines


def mixed_texts():
    with open(MIXED, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def random_id_sequences(sp, rng, count):
    """Id sequences that exercise decode: byte pieces (often invalid UTF-8), control and unknown ids,
    pieces with and without a leading "▁", at random positions."""
    size = sp.get_piece_size()
    byte_ids = [i for i in range(size) if sp.is_byte(i)]
    special = [i for i in range(size) if sp.is_control(i) or sp.is_unknown(i)]
    space = [i for i in range(size) if sp.id_to_piece(i).startswith("\u2581")]
    sequences = []
    for _ in range(count):
        ids = []
        for _ in range(rng.randrange(0, 12)):
            kind = rng.randrange(6)
            if kind == 0 and byte_ids:
                ids.append(rng.choice(byte_ids))
            elif kind == 1 and byte_ids:
                # A run of byte pieces: sometimes a valid multi-byte character, sometimes not.
                lead = rng.choice([0xE3, 0xF0, 0xC3, 0x80, 0xE2, 0xFF])
                run = [lead] + [rng.choice([0x81, 0x82, 0x9F, 0xBF, 0x41]) for _ in range(rng.randrange(0, 4))]
                ids += [sp.piece_to_id("<0x%02X>" % b) for b in run]
            elif kind == 2 and special:
                ids.append(rng.choice(special))
            elif kind == 3 and space:
                ids.append(rng.choice(space))
            else:
                ids.append(rng.randrange(size))
        sequences.append(ids)
    return sequences


def write_jsonl(path, rows):
    with io.open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = training_lines()
    texts = mixed_texts()
    manifest = {"sentencepiece_version": spm.__version__, "mixed_texts": len(texts), "models": {}}
    print(f"sentencepiece {spm.__version__}; {len(lines)} training lines; {len(texts)} test texts")

    for name, options in MODELS:
        model_io = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model_io,
                                       **COMMON, **options)
        model = model_io.getvalue()
        with open(os.path.join(OUT, f"{name}.model"), "wb") as f:
            f.write(model)
        sp = spm.SentencePieceProcessor(model_proto=model)

        rows = []
        for text in texts:
            ids = sp.encode(text)
            rows.append({"ids": ids, "decoded": sp.decode(ids)})
        write_jsonl(os.path.join(OUT, f"{name}.expected.jsonl"), rows)

        rng = random.Random(f"decode-{name}")
        decode_rows = [{"ids": ids, "decoded": sp.decode(ids)} for ids in random_id_sequences(sp, rng, 400)]
        write_jsonl(os.path.join(OUT, f"{name}.decode.jsonl"), decode_rows)

        round_trips = sum(1 for text, row in zip(texts, rows) if row["decoded"] == text)
        manifest["models"][name] = {
            "options": {k: v for k, v in options.items()},
            "pieces": sp.get_piece_size(),
            "model_bytes": len(model),
            "expected_lines": len(rows),
            "decode_lines": len(decode_rows),
            "round_trips": round_trips,
            "unk_id": sp.unk_id(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "pad_id": sp.pad_id(),
        }
        print(f"{name}: {sp.get_piece_size()} pieces, {len(model)} bytes, {len(rows)} expected lines "
              f"({round_trips} round-trip exactly), {len(decode_rows)} decode lines")

    probe_models = [(name, build_edge_model(model_type, normalizer, pieces), probes)
                     for name, model_type, normalizer, pieces, probes in EDGE_MODELS]
    rules = train_rules_model(lines)
    rules_probes = texts[::7] + [text for _, _, _, _, probes in EDGE_MODELS for text in probes] + ["AB abc THE the", "ＡＢ\u3000x"]
    probe_models.append(("rules-unigram", rules, rules_probes))
    proto = model_pb2.ModelProto()
    proto.ParseFromString(rules)
    proto.normalizer_spec.escape_whitespaces = False
    probe_models.append(("rules-noescape", proto.SerializeToString(), rules_probes))
    for name, model, probes in probe_models:
        with open(os.path.join(OUT, f"{name}.model"), "wb") as f:
            f.write(model)
        sp = spm.SentencePieceProcessor(model_proto=model)
        rows = []
        for text in probes:
            ids = sp.encode(text)
            rows.append({"text": text, "ids": ids, "decoded": sp.decode(ids)})
        write_jsonl(os.path.join(OUT, f"{name}.expected.jsonl"), rows)
        manifest["models"][name] = {"pieces": sp.get_piece_size(), "model_bytes": len(model), "expected_lines": len(rows),
                                    "unk_id": sp.unk_id(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "pad_id": sp.pad_id()}
        print(f"{name}: {sp.get_piece_size()} pieces, {len(model)} bytes, {len(rows)} probe lines")

    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
