#!/usr/bin/env python3
"""Encode throughput of the Python `sentencepiece` package on the example corpus, the reference for
SentencePieceTokenizer's speed. Prints one line per measurement: MB/s of UTF-8 text (best of --repeat
runs), single-threaded (one `encode` call per text, which includes Python's per-call overhead, and
`encode` on the whole list with num_threads=1, which is close to the C++ speed) and with `--threads`
workers (`encode` on the whole list).

    python3 bench/tokenize_spm.py [--model PATH] [--repeat N] [--threads 2]
"""
import argparse
import json
import os
import time

import sentencepiece as spm

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULT_MODEL = os.path.join(ROOT, "Tests", "KondateTokenizersTests", "Fixtures", "tokenizers", "spm", "llmjp-unigram.model")


def corpus():
    texts = []
    for name in ("ja.jsonl", "en.jsonl", "code.jsonl"):
        with open(os.path.join(ROOT, "examples", "tiny", "data", name), encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts


def best_of(repeat, run):
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    sp = spm.SentencePieceProcessor(model_file=args.model)
    texts = corpus()
    size = sum(len(t.encode("utf-8")) for t in texts)
    name = os.path.basename(args.model)
    print(f"sentencepiece {spm.__version__}, {name}: {len(texts)} texts, {size} bytes")

    seconds, ids = best_of(args.repeat, lambda: [sp.encode(t) for t in texts])
    tokens = sum(len(x) for x in ids)
    print(f"sentencepiece encode, 1 thread: {size / seconds / 1e6:.2f} MB/s ({tokens} tokens, {seconds:.3f} s)")

    seconds, batch = best_of(args.repeat, lambda: sp.encode(texts, num_threads=1))
    assert batch == ids
    print(f"sentencepiece encode, num_threads=1 (list): {size / seconds / 1e6:.2f} MB/s ({seconds:.3f} s)")

    seconds, batch = best_of(args.repeat, lambda: sp.encode(texts, num_threads=args.threads))
    assert batch == ids
    print(f"sentencepiece encode, num_threads={args.threads} (list): {size / seconds / 1e6:.2f} MB/s ({seconds:.3f} s)")


if __name__ == "__main__":
    main()
