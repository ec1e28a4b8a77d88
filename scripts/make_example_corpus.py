#!/usr/bin/env python3
"""Generates the bundled example corpus under examples/tiny/data/ (deterministic; the output is
committed, this script only regenerates it). Text is procedural: Japanese and English sentences from
word lists and templates, and code snippets from templates. A few documents are exact or near
duplicates, link-heavy, symbol-heavy or too short, so the corpus filters have something to remove.

    python3 scripts/make_example_corpus.py
"""
import json
import os
import random

OUT = os.path.join(os.path.dirname(__file__), "..", "examples", "tiny", "data")
rng = random.Random(20241129)

JA_PLACES = ["東京", "大阪", "京都", "札幌", "福岡", "名古屋", "仙台", "広島", "那覇", "金沢", "奈良", "神戸", "横浜", "長崎", "函館"]
JA_PEOPLE = ["私", "母", "父", "兄", "姉", "友達", "先生", "学生", "研究者", "店員", "医者", "子供たち", "祖母", "隣の人", "旅行者"]
JA_THINGS = ["本", "手紙", "写真", "料理", "お茶", "映画", "音楽", "地図", "新聞", "論文", "自転車", "傘", "時計", "花", "絵"]
JA_VERBS = [("読みます", "読みました"), ("書きます", "書きました"), ("見ます", "見ました"), ("作ります", "作りました"),
            ("買います", "買いました"), ("送ります", "送りました"), ("探します", "探しました"), ("使います", "使いました")]
JA_ADJ = ["新しい", "古い", "大きな", "小さな", "美しい", "静かな", "便利な", "有名な", "珍しい", "面白い", "難しい", "暖かい"]
JA_TIME = ["今日", "昨日", "明日", "毎朝", "先週", "来月", "週末", "夜", "午後", "春になると", "雨の日に"]
JA_TOPICS = ["言語モデル", "機械学習", "自然言語処理", "日本語の文章", "大規模なコーパス", "計算機", "データの前処理", "評価の方法"]
JA_RARE = ["鬱", "齟齬", "魑魅魍魎", "躊躇", "薔薇", "檸檬", "顰蹙", "饂飩", "蹂躙", "囁く", "𠮷野家", "髙橋"]
JA_KATAKANA = ["コンピューター", "インターネット", "トークナイザー", "パラメータ", "データセット", "アルゴリズム", "ネットワーク", "ソフトウェア"]


def ja_sentence():
    kind = rng.randrange(6)
    if kind == 0:
        v = rng.choice(JA_VERBS)
        return f"{rng.choice(JA_TIME)}、{rng.choice(JA_PEOPLE)}は{rng.choice(JA_PLACES)}で{rng.choice(JA_ADJ)}{rng.choice(JA_THINGS)}を{rng.choice(v)}。"
    if kind == 1:
        return f"{rng.choice(JA_TOPICS)}について考えると、{rng.choice(JA_KATAKANA)}の役割はとても大きいです。"
    if kind == 2:
        n = rng.randrange(2, 999)
        return f"{rng.choice(JA_PLACES)}には{n}人の{rng.choice(JA_PEOPLE)}が住んでいて、{rng.choice(JA_ADJ)}{rng.choice(JA_THINGS)}が有名です。"
    if kind == 3:
        return f"「{rng.choice(JA_RARE)}」という字を知っていますか。{rng.choice(JA_PEOPLE)}は{rng.choice(JA_TIME)}それを書きました。"
    if kind == 4:
        return f"{rng.choice(JA_KATAKANA)}を使って{rng.choice(JA_TOPICS)}の実験をしました。結果は{rng.randrange(10, 99)}.{rng.randrange(0, 9)}%でした。"
    return f"{rng.choice(JA_PEOPLE)}が{rng.choice(JA_TIME)}{rng.choice(JA_PLACES)}から{rng.choice(JA_THINGS)}を送ってくれました。"


EN_NOUNS = ["model", "corpus", "tokenizer", "river", "mountain", "library", "teacher", "engine", "garden", "window",
            "student", "network", "museum", "harbour", "village", "compiler", "dataset", "bicycle", "letter", "kitchen"]
EN_ADJ = ["small", "large", "quiet", "famous", "ancient", "modern", "curious", "useful", "bright", "careful", "rare", "simple"]
EN_VERBS = ["reads", "builds", "visits", "measures", "describes", "finds", "compares", "trains", "repairs", "opens"]
EN_NAMES = ["Alice", "Bob", "Chen", "Dana", "Emeka", "Fatima", "Goro", "Hana", "Ivan", "Jun"]


def en_sentence():
    kind = rng.randrange(5)
    if kind == 0:
        return f"The {rng.choice(EN_ADJ)} {rng.choice(EN_NOUNS)} {rng.choice(EN_VERBS)} a {rng.choice(EN_ADJ)} {rng.choice(EN_NOUNS)}."
    if kind == 1:
        return f"{rng.choice(EN_NAMES)} {rng.choice(EN_VERBS)} the {rng.choice(EN_NOUNS)} near the {rng.choice(EN_NOUNS)} every morning."
    if kind == 2:
        return f"In {rng.randrange(1900, 2030)}, about {rng.randrange(1, 99999):,} people saw the {rng.choice(EN_ADJ)} {rng.choice(EN_NOUNS)}."
    if kind == 3:
        return f"Why does the {rng.choice(EN_NOUNS)} need {rng.randrange(2, 64)} {rng.choice(EN_NOUNS)}s? Nobody knows, but {rng.choice(EN_NAMES)} does."
    return f"A {rng.choice(EN_NOUNS)} isn't a {rng.choice(EN_NOUNS)}; it's {rng.choice(EN_ADJ)} and {rng.choice(EN_ADJ)}."


def paragraph(sentence, n):
    return "".join(sentence() + ("" if sentence is ja_sentence else " ") for _ in range(n)).strip()


def document(sentence):
    return "\n\n".join(paragraph(sentence, rng.randrange(2, 6)) for _ in range(rng.randrange(1, 5)))


CODE_TEMPLATES = [
    "def {f}({a}, {b}):\n    \"\"\"Return the {adj} {noun} of {a} and {b}.\"\"\"\n    if {a} < {b}:\n        return {a} * {n}\n    return {b} + {n}\n",
    "func {f}(_ {a}: Int, {b}: [Int]) -> Int {{\n    var total = {a}\n    for x in {b} where x % {n} == 0 {{\n        total += x\n    }}\n    return total\n}}\n",
    "struct {T} {{\n    var {a}: Double\n    var {b}: String\n\n    func {f}() -> String {{ \"\\({b}): \\({a} * {n})\" }}\n}}\n",
    "for (let {a} = 0; {a} < {n}; {a}++) {{\n  console.log(`{noun} ${{{a}}}`);\n}}\n",
    "SELECT {a}, COUNT(*) AS {b}\nFROM {noun}s\nWHERE {a} > {n}\nGROUP BY {a}\nORDER BY {b} DESC;\n",
    "#include <stdio.h>\n\nint {f}(int {a}) {{\n    return {a} * {n} + 1;\n}}\n\nint main(void) {{\n    printf(\"%d\\n\", {f}({n}));\n    return 0;\n}}\n",
]


def code_document():
    parts = []
    for _ in range(rng.randrange(1, 4)):
        t = rng.choice(CODE_TEMPLATES)
        parts.append(t.format(f=rng.choice(["compute", "merge", "score", "tokenize", "mix", "shard", "blend"]) + "_" + rng.choice(EN_NOUNS),
                              a=rng.choice(["x", "count", "left", "size", "i"]), b=rng.choice(["y", "items", "right", "label", "rows"]),
                              n=rng.randrange(2, 100), adj=rng.choice(EN_ADJ), noun=rng.choice(EN_NOUNS),
                              T=rng.choice(["Point", "Sample", "Record", "Batch"])))
    return "\n".join(parts)


def junk(kind):
    if kind == "links":
        return " ".join(f"https://example.com/{rng.randrange(10**6)}/{rng.choice(EN_NOUNS)}?id={rng.randrange(10**4)}" for _ in range(12))
    if kind == "symbols":
        return "".join(rng.choice("!@#$%^&*()[]{}<>|~=+-_/\\") for _ in range(300))
    return rng.choice(["はい。", "ok", "…"])


def write(name, docs):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        for i, text in enumerate(docs):
            f.write(json.dumps({"id": f"{name.split('.')[0]}-{i:05d}", "text": text}, ensure_ascii=False) + "\n")


def with_noise(docs, sentence):
    out = list(docs)
    for _ in range(len(docs) // 50):                  # exact duplicates
        out.append(rng.choice(docs))
    for _ in range(len(docs) // 50):                  # near duplicates: one sentence appended
        out.append(rng.choice(docs) + sentence())
    for kind in ["links", "symbols", "short"]:
        for _ in range(len(docs) // 100):
            out.append(junk(kind))
    rng.shuffle(out)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    write("ja.jsonl", with_noise([document(ja_sentence) for _ in range(2200)], ja_sentence))
    write("en.jsonl", with_noise([document(en_sentence) for _ in range(1800)], en_sentence))
    write("code.jsonl", [code_document() for _ in range(900)])
    for name in ["ja.jsonl", "en.jsonl", "code.jsonl"]:
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
