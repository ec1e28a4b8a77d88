#!/usr/bin/env python3
"""Throughput of the Python `tokenizers` package on the example corpus, for comparison with Kondate's
HFTokenizer: MB/s of UTF-8 input for `encode` in a loop (one thread) and `encode_batch` with
RAYON_NUM_THREADS=1 and 2 (each measured in a fresh process, since rayon reads it once).

    python3 bench/tokenize_hf.py [--tokenizer PATH ...] [--repeat N]

Default tokenizers: the committed fixtures under Tests/KondateTokenizersTests/Fixtures/tokenizers/hf/.
Corpus: every "text" of examples/tiny/data/{ja,en,code}.jsonl. Best of --repeat runs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "KondateTokenizersTests", "Fixtures", "tokenizers", "hf")
DEFAULT = [os.path.join(FIXTURES, n + ".json") for n in
           ("bytelevel-bpe", "metaspace-bpe-bytefallback", "unigram-bytefallback")]


def corpus():
    texts = []
    for name in ("ja.jsonl", "en.jsonl", "code.jsonl"):
        with open(os.path.join(ROOT, "examples", "tiny", "data", name), encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts


def measure(path, mode, repeat):
    """Runs in the child process: prints MB/s and the id count."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    texts = corpus()
    size = sum(len(t.encode("utf-8")) for t in texts)
    best = float("inf")
    ids = 0
    for _ in range(repeat):
        # A fresh tokenizer each run, so the BPE word cache starts cold as in a single pass.
        tok = Tokenizer.from_file(path)
        start = time.perf_counter()
        if mode == "loop":
            out = [tok.encode(t, add_special_tokens=False).ids for t in texts]
        else:
            out = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        best = min(best, time.perf_counter() - start)
        ids = sum(len(x) for x in out)
    print(json.dumps({"mb_per_s": size / best / 1e6, "bytes": size, "ids": ids, "seconds": best}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", action="append")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        measure(args.child[0], args.child[1], args.repeat)
        return
    import tokenizers
    print(f"tokenizers {tokenizers.__version__}, corpus examples/tiny/data (best of {args.repeat})")
    for path in args.tokenizer or DEFAULT:
        for label, mode, threads in (("encode loop, 1 thread", "loop", "1"),
                                     ("encode_batch, RAYON_NUM_THREADS=1", "batch", "1"),
                                     ("encode_batch, RAYON_NUM_THREADS=2", "batch", "2")):
            env = dict(os.environ, RAYON_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="true")
            out = subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--child", path, mode],
                                 env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{os.path.basename(path):40s} {label:36s} {r['mb_per_s']:7.2f} MB/s "
                  f"({r['bytes']} bytes, {r['ids']} ids, {r['seconds']:.3f} s)")


if __name__ == "__main__":
    main()
