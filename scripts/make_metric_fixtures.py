#!/usr/bin/env python3
"""Writes Tests/KondateEvalTests/Fixtures/metrics.json: reference values for KondateEval's metrics,
computed with the libraries llm-jp-eval v1.3 scores with. The output is deterministic (sorted keys, fixed
inputs) and committed; the Swift tests read it without Python.

Reference packages (installed by hand; this script installs nothing):

    pip install "fuzzywuzzy==0.18.0" python-Levenshtein scipy sacrebleu

- char_f1: `fuzzywuzzy.fuzz.token_sort_ratio(pred, gold) / 100` with python-Levenshtein present (as in
  llm-jp-eval's dependencies; without it fuzzywuzzy falls back to difflib and gives other numbers, so the
  script refuses to run then).
- set_f1: llm-jp-eval's own function, reproduced below verbatim in behaviour.
- exact_match: `sklearn.metrics.accuracy_score` on strings equals the share of pairs whose strings are
  equal; that is computed directly so scikit-learn is not needed.
- pearson / spearman: `scipy.stats.pearsonr` / `spearmanr` of `float(gold)` against `parse_float(pred)`
  (llm-jp-eval's fallback: digits and dots kept, -2.0 when that is not a number), NaN reported as 0.0.
- BLEU: `sacrebleu.BLEU(...).corpus_score(hyps, refs)` with the 13a tokenizer (bleu_en) and the char
  tokenizer (Kondate's bleu_ja), plus a few non-default settings of the same code path.
- post-processing: `unicodedata.normalize("NFKC", generated.split("\\n\\n")[0]).strip()` for the
  prediction and NFKC alone for the gold answer.

    python3 scripts/make_metric_fixtures.py
"""
import json
import math
import random
import re
import sys
import unicodedata
import warnings
from importlib.metadata import version
from pathlib import Path
from statistics import mean

from fuzzywuzzy import fuzz
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from sacrebleu.tokenizers.tokenizer_char import TokenizerChar
from scipy.stats import pearsonr, spearmanr

OUT = Path(__file__).resolve().parent.parent / "Tests" / "KondateEvalTests" / "Fixtures" / "metrics.json"


def require_levenshtein_backend():
    """fuzzywuzzy only matches llm-jp-eval when it uses python-Levenshtein's ratio."""
    if fuzz.SequenceMatcher.__module__ != "fuzzywuzzy.StringMatcher":
        sys.exit("fuzzywuzzy is using difflib; install python-Levenshtein")


# ---------------------------------------------------------------------------------------------------
# llm-jp-eval v1.3 definitions (behaviour reproduced; see docs/eval-metrics.md)


def normalize(text):
    return unicodedata.normalize("NFKC", text)


def postprocess_prediction(generated):
    return normalize(generated.split("\n\n")[0]).strip()


def parse_float(text):
    cleaned = re.sub(r"[^0-9.]", "", str(text))
    try:
        return float(cleaned)
    except ValueError:
        return -2.0


def set_f1(y_pred, y_true):
    set_y_true = [x.strip() for x in y_true.split("\n")]
    set_y_pred = list({x.strip() for x in y_pred.split("\n")})
    set_pre = sum([1 if y in set_y_true else 0 for y in set_y_pred]) / len(set_y_pred)
    set_rec = sum([1 if y in set_y_true else 0 for y in set_y_pred]) / len(set_y_true)
    return 2 * (set_pre * set_rec) / (set_pre + set_rec) if (set_pre + set_rec) != 0 else 0


def finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------
# Inputs

# (prediction, gold) pairs for the pairwise string metrics.
PAIRS = [
    ("", ""),
    ("", "東京"),
    ("東京", ""),
    ("東京", "東京"),
    ("東京都", "東京"),
    ("東京 大阪", "大阪 東京"),
    ("とうきょう", "トウキョウ"),
    ("ダイ・ハード", "ダイ・ハード"),
    ("ダイ・ハード", "ダイハード"),
    ("YES", "YES"),
    ("yes", "YES"),
    ("Yes.", "YES"),
    ("NO", "YES"),
    ("fuzzy wuzzy was a bear", "wuzzy fuzzy was a bear"),
    ("fuzzy was a bear", "fuzzy fuzzy was a bear"),
    ("P.F. Chang's", "PF Changs"),
    ("Chick Fil A", "Chick-Fil-A"),
    ("New York Mets vs Atlanta Braves", "Atlanta Braves vs New York Mets"),
    ("this is a test", "this is a test!"),
    ("!!!", "???"),
    ("!!!", "abc"),
    ("   ", "東京"),
    ("café", "cafe"),
    ("naïve résumé", "naive resume"),
    ("Ｔｏｋｙｏ　２０２０", "tokyo 2020"),
    ("ｶﾀｶﾅ", "カタカナ"),
    ("①②③", "123"),
    ("ΟΔΟΣ", "οδος"),
    ("ΣΑΣ ΟΔΟΣ", "σας οδος"),
    ("İstanbul", "istanbul"),
    ("Straße", "STRASSE"),
    ("under_score", "under score"),
    ("a-b_c d", "d c b a"),
    ("2024年1月1日", "2024年1月1日です"),
    ("平成31年", "令和元年"),
    ("明治維新", "明治 維新"),
    ("徳川家康", "徳川 家康"),
    ("しゅうぎいん", "しゅうぎいん"),
    ("しゅうぎいん", "しゅぎいん"),
    ("ABCD", "abcd"),
    ("abcdefgh", "abcdxyz"),
    ("12345678", "1234"),
    ("the the the", "the"),
    ("a a a b", "a b b b"),
    ("東京\n大阪", "東京 大阪"),
    ("東京\t大阪", "大阪\n東京"),
    ("Tokyo Tower (東京タワー)", "東京タワー Tokyo Tower"),
    ("100%", "100 %"),
    ("3.14", "3,14"),
    ("e=mc^2", "E = MC 2"),
    ("emoji 😀 ok", "emoji ok"),
    ("ｱｲｳｴｵ 日本語 English 123", "123 English 日本語 アイウエオ"),
    ("ー々〆", "ー 々 〆"),
    ("か\u3099", "が"),
    ("Ⅻ", "xii"),
    ("½", "1/2"),
    ("x" * 40, "x" * 39 + "y"),
    ("abcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcba"),
    ("positive negative neutral", "neutral positive"),
    ("富士山 3776m", "富士山 3,776m"),
    ("織田信長（おだのぶなが）", "織田信長"),
]

# Extra pairs whose ratio lands on or near a .5 boundary before rounding (checks the rounding rule).
ROUNDING_PAIRS = [
    ("abcd", "abce"),        # 6/8 -> 75
    ("abcdefgh", "abcdefgx"),  # 14/16 -> 87.5 -> 88
    ("abc", "abd"),          # 4/6 -> 66.67
    ("abcde", "abcdf"),      # 8/10 -> 80
    ("ab", "ac"),            # 2/4 -> 50
    ("abcdefghijklmnop", "abcdefghijklmnoq"),  # 30/32 -> 93.75
    ("abcdefgh", "abcdwxyz"),  # 8/16 -> 50
    ("abcdefghijklmnopqrst", "abcdefghijklmnopqrsX"),  # 38/40 -> 95
    ("abcdefghijklmnopqrs", "abcdefghijklmnopqrX"),    # 36/38 -> 94.74
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
    ("abcdefghij" * 2, "abcdefghij" + "klmnopqrst"),
    ("aaaaabbbbb", "aaaaa"),  # 10/15 -> 66.67
    ("aaaaaaa", "a"),        # 2/8 -> 25
    ("aaaaaaaaaaaaaaa", "a"),  # 2/16 -> 12.5 -> 12
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a"),  # 2/40 -> 5
    ("aaa", "a"),            # 2/4 -> 50
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a"),  # 2/64 -> 3.125 -> 3
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a"),  # 2/80 -> 2.5 -> 2
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a"),
]

# Multi-line (prediction, gold) pairs in the shape of chabsa / wiki_* answers, for set_f1.
SET_PAIRS = [
    ("", ""),
    ("", "a"),
    ("a", ""),
    ("a", "a"),
    ("a\nb", "a\nb"),
    ("a\nb", "b\na"),
    ("a\na\na", "a"),
    ("a", "a\na\na"),
    ("a\nb\nc", "a\nb"),
    ("a\nb", "a\nb\nc"),
    ("x\ny", "a\nb"),
    ("a\n\nb", "a\nb"),
    ("a\nb\n", "a\nb"),
    (" a \n b ", "a\nb"),
    ("a\r\nb", "a\nb"),
    ("a\u3000\nb", "a\nb"),
    ("売上高 positive\n営業利益 negative", "売上高 positive\n営業利益 negative"),
    ("売上高 positive\n営業利益 positive", "売上高 positive\n営業利益 negative"),
    ("売上高 positive", "売上高 positive\n営業利益 negative\n経常利益 neutral"),
    ("売上高 positive\n売上高 positive\n売上高 positive", "売上高 positive\n売上高 positive"),
    ("彼 -> 行った\n本 -> 読んだ", "本 -> 読んだ\n彼 -> 行った\n私 -> 見た"),
    ("東京（地名）\n徳川家康（人名）", "東京（地名）"),
    ("A\nB\nC\nD", "D\nC\nB\nA\nE\nF"),
    ("A\nA\nB", "A\nB\nB"),
    ("\n\n", "\n"),
    ("a\tb\nc", "a\tb\nc"),
    ("Ａ\nＢ", "A\nB"),
]

# (predictions, golds) lists for the list-level metrics.
EXACT_MATCH_LISTS = [
    (["entailment", "neutral", "contradiction"], ["entailment", "neutral", "neutral"]),
    (["0", "1", "2", "3", "4"], ["0", "1", "2", "3", "4"]),
    (["A"], ["B"]),
    (["", "a"], ["", "b"]),
    (["yes", "Yes", "YES "], ["yes", "yes", "yes"]),
    (["é", "e\u0301"], ["é", "é"]),
    (["東京", "とうきょう", "トウキョウ", "Tokyo"], ["東京", "東京", "東京", "東京"]),
]

PEARSON_LISTS = [
    (["1.0", "2.0", "3.0", "4.0"], ["1.0", "2.0", "3.0", "4.0"]),
    (["4", "3", "2", "1"], ["1.0", "2.0", "3.0", "4.0"]),
    (["1.2", "3.5", "2.0", "4.8", "0.3"], ["1.0", "3.2", "2.4", "5.0", "0.0"]),
    (["3", "3", "3"], ["1.0", "2.0", "4.0"]),
    (["1", "2", "3"], ["2.0", "2.0", "2.0"]),
    (["abc", "2.5", "4"], ["1.0", "2.4", "4.0"]),
    (["類似度は3.5です", "2", "4.0点"], ["3.6", "2.2", "3.8"]),
    (["-3", "1.5.2", ".5"], ["0.2", "1.0", "0.4"]),
    (["5.", "", "0"], ["5.0", "0.0", "0.2"]),
    (["1", "2"], ["1.0", "3.0"]),
    (["2", "1"], ["1.0", "3.0"]),
    (["1e3", "2", "3"], ["1.0", "2.0", "3.0"]),
    (["3.8", "2.2", "4.1", "1.0", "0.6", "3.3", "2.9", "4.9"], ["4.0", "2.0", "3.8", "1.2", "0.0", "3.0", "3.2", "5.0"]),
    (["1", "1", "2", "2", "3"], ["0.5", "1.5", "1.5", "3.0", "3.0"]),
    (["nan", "x", "?"], ["1.0", "2.0", "3.0"]),
]

PARSE_FLOAT_INPUTS = ["1", "1.5", ".5", "5.", "-3", "+2", "1e5", "1.2.3", ".", "", "abc", "3.5点", "約 2.0",
                      "0001.100", "１２", "4,000", "..5", "1..", "123456789012345678901234567890", "0.0"]

# BLEU corpora: (name, hyps, list of reference streams).
BLEU_EN = [
    ("identical", ["The cat sat on the mat."], [["The cat sat on the mat."]]),
    ("sacrebleu-readme", ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."],
     [["The dog bit the man.", "It was not unexpected.", "The man bit him first."]]),
    ("two-references", ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."],
     [["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
      ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]]),
    ("zero-matches", ["alpha beta gamma delta"], [["one two three four five"]]),
    ("short-hypothesis", ["the cat"], [["the cat sat on the mat"]]),
    ("brevity-penalty", ["the cat sat on the"], [["the cat sat on the mat today in the sun"]]),
    ("longer-hypothesis", ["the cat sat on the mat today in the warm sun again"], [["the cat sat on the mat"]]),
    ("no-4gram-match", ["a b c x d e f"], [["a b c y d e f"]]),
    ("empty-hypothesis", [""], [["the cat sat"]]),
    ("empty-both", [""], [[""]]),
    ("mixed-empty", ["the cat sat on the mat", ""], [["the cat sat on the mat", "a dog"]]),
    ("punctuation", ["Hello, world! (This is \"quoted\") & more; 3.14, 1,000 - x-ray 5-6 end."],
     [["Hello , world ! ( This is \"quoted\" ) & more ; 3.14 , 1,000 - x-ray 5 - 6 end ."]]),
    ("html-entities", ["Tom &amp; Jerry &quot;fun&quot; &lt;b&gt; <skipped> done"], [["Tom & Jerry \"fun\" <b> done"]]),
    ("hyphen-newline", ["inter-\nnational news\ntoday"], [["international news today"]]),
    ("trailing-space", ["the cat sat   \n"], [["the cat sat"]]),
    ("case", ["THE CAT SAT ON THE MAT"], [["the cat sat on the mat"]]),
    ("digits-dots", ["Version 2.0.1 costs $3.50, ok.", "Call 555-1234 at 10.30."],
     [["Version 2.0.1 costs $ 3.50 , ok .", "Call 555 - 1234 at 10.30 ."]]),
    ("japanese-13a", ["東京は日本の首都です。"], [["日本の首都は東京です。"]]),
    ("long", [
        "Kyoto was the imperial capital of Japan for more than one thousand years, and many temples remain.",
        "The Kamo River flows through the city from north to south.",
        "Kinkaku-ji, the Golden Pavilion, was built in 1397 as a retirement villa for the shogun.",
        "Many visitors come in autumn to see the red leaves in the mountains around the city.",
        "The city is famous for its traditional wooden houses called machiya.",
        "Gion is the best known geisha district of Kyoto.",
    ], [[
        "Kyoto was Japan's imperial capital for over a thousand years, and many of its temples survive.",
        "The Kamo River runs through the city from the north to the south.",
        "Kinkaku-ji, or the Golden Pavilion, was built in 1397 as a retirement villa for a shogun.",
        "In autumn many tourists come to see the red leaves on the mountains surrounding the city.",
        "Kyoto is famous for traditional wooden town houses known as machiya.",
        "Gion is Kyoto's most famous geisha district.",
    ]]),
    ("repeated-tokens", ["the the the the the the the"], [["the cat is on the mat"]]),
    ("unicode-spaces", ["the\u00a0cat\u3000sat\u2003down"], [["the cat sat down"]]),
]

BLEU_JA = [
    ("identical", ["東京は日本の首都です。"], [["東京は日本の首都です。"]]),
    ("reordered", ["東京は日本の首都です。"], [["日本の首都は東京です。"]]),
    ("alt-like", ["彼は昨日、5人の女性を殺害した罪で有罪判決を受けた。", "英国の大手慈善団体が資金を投資した。"],
     [["昨日、スティーヴ・ライトは、5人の女性を殺害した罪で有罪判決を受けた。", "英国の大手慈善団体コミック・リリーフは資金を投資した。"]]),
    ("zero-matches", ["あいうえお"], [["かきくけこ"]]),
    ("brevity-penalty", ["京都"], [["京都は千年以上にわたって日本の都でした。"]]),
    ("spaces-ignored", ["東京 タワー は 高い"], [["東京タワーは高い"]]),
    ("mixed-script", ["Kyotoは2024年に観光客が増えた。"], [["京都は2024年に観光客が増加した。"]]),
    ("full-width", ["ＡＢＣ１２３です"], [["ABC123です"]]),
    ("empty-hypothesis", [""], [["京都"]]),
    ("short", ["京"], [["京都"]]),
    ("long", [
        "京都は千年以上にわたり日本の都であり、多くの寺院が今も残っている。",
        "鴨川は市内を北から南へ流れている。",
        "金閣寺は1397年に将軍の別荘として建てられた。",
        "秋には多くの観光客が紅葉を見に訪れる。",
        "祇園は京都で最も有名な花街である。",
    ], [[
        "京都は千年以上の間日本の首都であり、多くの寺院が残っています。",
        "鴨川は市の北から南へと流れています。",
        "金閣寺は1397年に将軍の隠居所として建立された。",
        "秋になると紅葉を見に多くの観光客が訪れます。",
        "祇園は京都で一番よく知られた花街です。",
    ]]),
]

# Non-default BLEU settings exercised through the same code path:
# (name, settings, hyps, refs) with settings passed to sacrebleu's BLEU.
README_HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
README_REFS = [["The dog bit the man.", "It was not unexpected.", "The man bit him first."]]
BLEU_VARIANTS = [
    ("sentence-effective-order", {"effective_order": True}, ["the cat"], [["the cat sat on the mat"]]),
    ("effective-order-no-match", {"effective_order": True}, ["x y"], [["a b"]]),
    ("effective-order-long", {"effective_order": True}, ["the cat sat on the mat today"], [["the cat sat on the mat"]]),
    ("char-effective-order", {"tokenize": "char", "effective_order": True}, ["京都"], [["京都府"]]),
    ("char-effective-order-single", {"tokenize": "char", "effective_order": True}, ["京"], [["京都"]]),
    ("corpus-short-no-effective", {}, ["the cat", "a dog"], [["the cat sat", "a dog ran"]]),
    ("lowercase", {"lowercase": True}, ["THE CAT SAT ON THE MAT"], [["the cat sat on the mat"]]),
    ("smooth-none", {"smooth_method": "none"}, README_HYPS, README_REFS),
    ("smooth-none-no-4gram", {"smooth_method": "none"}, ["a b c x d e f"], [["a b c y d e f"]]),
    ("smooth-floor", {"smooth_method": "floor"}, ["a b c x d e f"], [["a b c y d e f"]]),
    ("smooth-floor-value", {"smooth_method": "floor", "smooth_value": 0.5}, ["a b c x d e f"], [["a b c y d e f"]]),
    ("smooth-add-k", {"smooth_method": "add-k"}, ["a b c x d e f"], [["a b c y d e f"]]),
    ("smooth-add-k-value", {"smooth_method": "add-k", "smooth_value": 2}, README_HYPS, README_REFS),
    ("max-order-2", {"max_ngram_order": 2}, README_HYPS, README_REFS),
    ("max-order-6-char", {"tokenize": "char", "max_ngram_order": 6}, ["京都は日本の古都です"], [["京都は日本の古い都です"]]),
]

TOKENIZE_INPUTS = [
    "Hello, world!", "It's 3.14 or 1,000.", "a-b 5-6 x - y", "(a) [b] {c} <d>", "A&B &amp; &quot;q&quot; &lt;&gt;",
    "<skipped> text", "line-\nbreak\nnext", "  spaces   inside  ", "東京、大阪。", "$5.00!", "end.", ".start",
    "a.b,c", "1.2.3", "x,1", "1,x", "tab\there", "e-mail@example.com", "~`^_|\\", "\u00a0nbsp\u3000ideographic",
]

POSTPROCESS_INPUTS = [
    "東京",
    " 東京 ",
    "東京\n\n説明: 日本の首都",
    "\n\n東京",
    "東京\n大阪\n\n名古屋",
    "ＹＥＳ",
    "ｶﾀｶﾅ\u3000です",
    "①\n②\n\n③",
    "  \u3000answer\u3000  ",
    "a\r\n\r\nb",
    "㍻31年",
    "entailment\n\n\n",
    "",
    "\n\n",
    "売上高 positive\n営業利益 negative\n\n以上です。",
    "x\u2028y\n\nz",
    "\u200bzero width",
]


# ---------------------------------------------------------------------------------------------------


def char_f1_cases():
    cases = []
    for pred, gold in PAIRS + ROUNDING_PAIRS:
        ratio = fuzz.token_sort_ratio(pred, gold)
        cases.append({"pred": pred, "gold": gold, "token_sort_ratio": ratio, "score": ratio / 100.0,
                      "processed_pred": fuzz._process_and_sort(pred, True), "processed_gold": fuzz._process_and_sort(gold, True)})
    return cases


def mean_case(preds, golds, pair_metric):
    return {"preds": preds, "golds": golds, "score": mean(pair_metric(p, g) for p, g in zip(preds, golds))}


def bleu_case(name, settings, hyps, refs):
    settings = {"tokenize": "13a", "effective_order": False, "lowercase": False, "smooth_method": "exp",
                "smooth_value": None, "max_ngram_order": 4, **settings}
    result = BLEU(**settings).corpus_score(hyps, refs)
    # add-k adds k to the statistics in place, so sacrebleu's counts are not the raw counts then.
    raw = settings["smooth_method"] != "add-k"
    return {"name": name, "settings": settings, "hyps": hyps, "refs": refs, "score": result.score,
            "counts": list(result.counts) if raw else None, "totals": list(result.totals) if raw else None,
            "precisions": list(result.precisions), "bp": result.bp, "sys_len": result.sys_len, "ref_len": result.ref_len}


def random_text(rng, alphabet, max_words):
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(0, max_words))]
    separators = [" ", " ", " ", "  ", "\n", "\t", "\u3000", ", ", ". ", "-"]
    text = ""
    for i, word in enumerate(words):
        text += (rng.choice(separators) if i else "") + word
    return text


# Mixed Japanese / Latin / digits / punctuation / Latin-1 / combining marks for the random char_f1 pairs.
ALPHABET = list("abcdeABCDE01234あいうえおアイウエオ東京都大阪ー・々_.,!?()（）「」éüß") + ["\u3099", "Σ", "ｱ"]


def random_char_f1_cases(count, seed):
    """Random pairs, most of them near-duplicates so that the ratios spread over the whole range."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        a = random_text(rng, ALPHABET, 6)
        b = a if rng.random() < 0.5 else random_text(rng, ALPHABET, 6)
        if rng.random() < 0.7 and a:
            chars = list(a)
            for _ in range(rng.randint(1, 3)):
                chars[rng.randrange(len(chars))] = rng.choice(ALPHABET)
            b = "".join(chars)
        ratio = fuzz.token_sort_ratio(a, b)
        cases.append({"pred": a, "gold": b, "token_sort_ratio": ratio, "score": ratio / 100.0,
                      "processed_pred": fuzz._process_and_sort(a, True), "processed_gold": fuzz._process_and_sort(b, True)})
    return cases


def random_bleu_cases(count, seed):
    rng = random.Random(seed)
    words = "the a cat dog sat ran on in mat house , . ! 's 3.5 10,000 - e-mail 東京 京都 です。".split()
    cases = []
    for i in range(count):
        tokenize = "13a" if i % 2 == 0 else "char"
        refs, hyps = [], []
        for _ in range(rng.randint(1, 6)):
            ref = " ".join(rng.choice(words) for _ in range(rng.randint(1, 15)))
            hyp_words = ref.split()
            for _ in range(rng.randint(0, 4)):
                op = rng.random()
                if op < 0.4 and hyp_words:
                    hyp_words[rng.randrange(len(hyp_words))] = rng.choice(words)
                elif op < 0.7 and hyp_words:
                    del hyp_words[rng.randrange(len(hyp_words))]
                else:
                    hyp_words.insert(rng.randint(0, len(hyp_words)), rng.choice(words))
            refs.append(ref)
            hyps.append(" ".join(hyp_words))
        cases.append(bleu_case(f"random-{i}", {"tokenize": tokenize}, hyps, [refs]))
    return cases


def correlation_cases():
    cases = []
    for preds, golds in PEARSON_LISTS:
        xs = list(map(float, golds))
        ys = list(map(parse_float, preds))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConstantInputWarning for the NaN cases
            p = float(pearsonr(xs, ys)[0])
            s = float(spearmanr(xs, ys)[0])
        cases.append({"preds": preds, "golds": golds,
                      "pearson_raw": finite_or_none(p), "spearman_raw": finite_or_none(s),
                      "pearson": 0.0 if math.isnan(p) else p, "spearman": 0.0 if math.isnan(s) else s})
    return cases


def main():
    require_levenshtein_backend()
    tok13a, tokchar = Tokenizer13a(), TokenizerChar()

    fixtures = {
        "generator": {
            "script": "scripts/make_metric_fixtures.py",
            "packages": {name: version(name) for name in ["fuzzywuzzy", "python-Levenshtein", "scipy", "sacrebleu"]},
            "python": ".".join(map(str, sys.version_info[:3])),
            "unicodedata": unicodedata.unidata_version,
        },
        "char_f1": char_f1_cases(),
        "char_f1_mean": [mean_case([p for p, _ in PAIRS[:12]], [g for _, g in PAIRS[:12]],
                                   lambda p, g: fuzz.token_sort_ratio(p, g) / 100.0),
                         mean_case([p for p, _ in PAIRS[20:40]], [g for _, g in PAIRS[20:40]],
                                   lambda p, g: fuzz.token_sort_ratio(p, g) / 100.0)],
        "set_f1": [{"pred": p, "gold": g, "score": float(set_f1(p, g))} for p, g in SET_PAIRS],
        "set_f1_mean": [mean_case([p for p, _ in SET_PAIRS], [g for _, g in SET_PAIRS], set_f1)],
        "exact_match": [{"preds": p, "golds": g, "score": sum(a == b for a, b in zip(p, g)) / len(p)}
                        for p, g in EXACT_MATCH_LISTS],
        "parse_float": [{"input": s, "value": finite_or_none(parse_float(s))} for s in PARSE_FLOAT_INPUTS],
        "correlation": correlation_cases(),
        "char_f1_random": random_char_f1_cases(300, 20240601),
        "bleu_en": [bleu_case(name, {}, h, r) for name, h, r in BLEU_EN],
        "bleu_ja": [bleu_case(name, {"tokenize": "char"}, h, r) for name, h, r in BLEU_JA],
        "bleu_variants": [bleu_case(name, settings, h, r) for name, settings, h, r in BLEU_VARIANTS],
        "bleu_random": random_bleu_cases(40, 7),
        "tokenize_13a": [{"input": s, "output": tok13a(s.rstrip())} for s in TOKENIZE_INPUTS],
        "tokenize_char": [{"input": s, "output": tokchar(s.rstrip())} for s in TOKENIZE_INPUTS],
        "postprocess": [{"generated": s, "pred": postprocess_prediction(s), "gold": normalize(s)}
                        for s in POSTPROCESS_INPUTS],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixtures, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts = {k: len(v) for k, v in fixtures.items() if isinstance(v, list)}
    print(f"wrote {OUT} {counts}")


if __name__ == "__main__":
    main()
