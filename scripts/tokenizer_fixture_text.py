#!/usr/bin/env python3
"""Writes the mixed text the tokenizer parity fixtures are computed on:
Tests/KondateTokenizersTests/Fixtures/tokenizers/mixed.jsonl, one {"text": ...} per line (texts may hold
newlines). Deterministic. Japanese, English and code lines from the example corpus, plus lines made to
stress tokenizers: emoji (with ZWJ sequences and skin tones), odd whitespace (tabs, runs of spaces,
U+3000, NBSP, leading and trailing spaces, CR), rare and astral kanji, long numbers, full-width
forms, combining marks, URLs, mixed scripts and control characters.

    python3 scripts/tokenizer_fixture_text.py
"""
import json
import os
import random

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "Tests", "KondateTokenizersTests", "Fixtures", "tokenizers", "mixed.jsonl")
rng = random.Random(7)


def corpus_lines(name, limit):
    lines = []
    with open(os.path.join(ROOT, "examples", "tiny", "data", name), encoding="utf-8") as f:
        for row in f:
            for line in json.loads(row)["text"].split("\n"):
                if line.strip():
                    lines.append(line)
    rng.shuffle(lines)
    return lines[:limit]


SPECIAL = [
    "😀 😃 😄 👍🏽 👩‍👩‍👧‍👦 🇯🇵 ❤️‍🔥 🧑‍💻 🍣🍜🍙",
    "絵文字と日本語：今日は🍣を食べた😋！",
    "tab\there\t\tand  two  spaces   three",
    "   leading spaces and trailing   ",
    "\u3000全角スペース\u3000で\u3000区切る\u3000",
    "non\u00a0breaking\u00a0space",
    "carriage\rreturn",
    "line one\nline two\n\nline four after a blank line",
    "\n\nstarts with newlines",
    "ends with a newline\n",
    "𠮷野家の𩸽と𠀋、髙橋さんと﨑山さん",
    "魑魅魍魎、齟齬、躊躇、顰蹙、薔薇、檸檬、鬱、饂飩",
    "3141592653589793238462643383279502884197169399375105820974944592",
    "1,234,567,890 and 0.000001 and -42 and 1e-10 and 12345678901234567890",
    "２０２４年１１月２９日　ＡＢＣ　ｱｲｳｴｵ",
    "e\u0301 a\u0300 n\u0303 (combining marks) café naïve",
    "https://example.com/path/to/page?query=値&x=1#fragment",
    "user@example.org, C++ / C# / F#, x86_64, UTF-8",
    "Ελληνικά, русский, العربية, עברית, हिन्दी, 한국어, 中文简体",
    "control \u0001 \u0007 \u001b characters",
    "<s> </s> <unk> <pad> [CLS] <|endoftext|> literal markup",
    "    def indented(self):\n        return {'a': [1, 2, 3]}\n",
    "if (x != y && z >= 10) { return a->b; } // comment",
    "ＡＩ（人工知能）は「学習」する。――そう、本当に。",
    "ｶﾀｶﾅ half-width katakana ﾃｽﾄ",
    "",
    " ",
    "a",
    "▁ already has the metaspace character ▁▁",
    "Ġ and Ċ look like byte-level symbols",
]


def main():
    texts = []
    texts += corpus_lines("ja.jsonl", 900)
    texts += corpus_lines("en.jsonl", 500)
    texts += corpus_lines("code.jsonl", 300)
    texts += SPECIAL
    # Combinations: pieces of each kind joined with odd separators.
    pool = texts[:]
    for _ in range(400):
        parts = [rng.choice(pool)[: rng.randrange(1, 60)] for _ in range(rng.randrange(2, 4))]
        sep = rng.choice([" ", "", "\t", "  ", "\n", "\u3000", " 123 ", "😀"])
        texts.append(sep.join(parts))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    print(len(texts), "texts ->", OUT)


main()
