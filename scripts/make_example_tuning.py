#!/usr/bin/env python3
"""Generates the bundled example's tuning and evaluation data (deterministic; the output is committed,
this script only regenerates it):

  examples/tiny/tuning/tasks.jsonl   alpaca-style instructions for two tasks the tiny corpus supports:
                                     repeating a word, and naming the place in a sentence
  examples/tiny/eval/repeat.json     the same tasks in llm-jp-eval v1.3's dataset format, with
  examples/tiny/eval/places.json     sentences and words drawn separately from the tuning data
  examples/tiny/eval/questions.jsonl a generation suite in MT-Bench's question format (two turns each)
  examples/tiny/eval/held_out.jsonl  fresh documents from the corpus generator, for a perplexity suite

The words and sentence patterns come from scripts/make_example_corpus.py, so the pretrained model has
seen them; the instructions and answer format are only in the tuning data. Tuning should therefore
raise exact_match on these suites well above the untuned model's.

    python3 scripts/make_example_tuning.py
"""
import importlib.util
import json
import os
import random

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
spec = importlib.util.spec_from_file_location("corpus", os.path.join(ROOT, "scripts", "make_example_corpus.py"))
corpus = importlib.util.module_from_spec(spec)
# The corpus script writes files only under `if __name__ == "__main__"`; loading it gives its word lists.
spec.loader.exec_module(corpus)

rng = random.Random(20261129)
REPEAT = "次の語をそのまま書きなさい。"
PLACE = "次の文に出てくる地名を答えなさい。"
WORDS = corpus.JA_PLACES + corpus.JA_THINGS + corpus.JA_KATAKANA + corpus.EN_NOUNS + corpus.EN_NAMES


def place_sentence(place):
    v = rng.choice(corpus.JA_VERBS)
    patterns = [
        f"{rng.choice(corpus.JA_TIME)}、{rng.choice(corpus.JA_PEOPLE)}は{place}で{rng.choice(corpus.JA_ADJ)}{rng.choice(corpus.JA_THINGS)}を{rng.choice(v)}。",
        f"{place}には{rng.randrange(2, 999)}人の{rng.choice(corpus.JA_PEOPLE)}が住んでいます。",
        f"{rng.choice(corpus.JA_PEOPLE)}が{place}から{rng.choice(corpus.JA_THINGS)}を送ってくれました。",
    ]
    return rng.choice(patterns)


def main():
    tuning = []
    for _ in range(160):
        w = rng.choice(WORDS)
        tuning.append({"instruction": REPEAT, "input": w, "output": w})
    for _ in range(160):
        p = rng.choice(corpus.JA_PLACES)
        tuning.append({"instruction": PLACE, "input": place_sentence(p), "output": p})
    rng.shuffle(tuning)
    with open(os.path.join(ROOT, "examples", "tiny", "tuning", "tasks.jsonl"), "w", encoding="utf-8") as f:
        for example in tuning:
            f.write(json.dumps(example, ensure_ascii=False) + "\n")

    def dataset(instruction, pairs, few):
        return {"instruction": instruction, "output_length": 8, "metrics": ["exact_match", "char_f1"],
                "few_shots": [{"input": i, "output": o} for i, o in few],
                "samples": [{"input": i, "output": o} for i, o in pairs]}

    words = [rng.choice(WORDS) for _ in range(42)]
    repeat = dataset(REPEAT, [(w, w) for w in words[2:]], [(w, w) for w in words[:2]])
    places = [rng.choice(corpus.JA_PLACES) for _ in range(42)]
    place = dataset(PLACE, [(place_sentence(p), p) for p in places[2:]], [(place_sentence(p), p) for p in places[:2]])
    for name, data in [("repeat", repeat), ("places", place)]:
        with open(os.path.join(ROOT, "examples", "tiny", "eval", f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")

    # MT-Bench layout: question_id, category, turns.
    with open(os.path.join(ROOT, "examples", "tiny", "eval", "questions.jsonl"), "w", encoding="utf-8") as f:
        for i in range(8):
            p, w = rng.choice(corpus.JA_PLACES), rng.choice(WORDS)
            turns = [f"{PLACE}\n\n{place_sentence(p)}", f"{REPEAT}\n\n{w}"]
            f.write(json.dumps({"question_id": i + 1, "category": "extraction", "turns": turns}, ensure_ascii=False) + "\n")

    # Documents the corpus never held: the corpus generator, reseeded.
    corpus.rng.seed(20261130)
    with open(os.path.join(ROOT, "examples", "tiny", "eval", "held_out.jsonl"), "w", encoding="utf-8") as f:
        docs = [corpus.document(corpus.ja_sentence) for _ in range(40)] + [corpus.document(corpus.en_sentence) for _ in range(40)]
        for i, text in enumerate(docs):
            f.write(json.dumps({"id": f"held_out-{i:03d}", "text": text}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
