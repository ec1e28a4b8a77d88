#!/usr/bin/env bash
# Corpus pipeline throughput and peak memory (release build).
#   bash bench/corpus.sh            the example recipe: filter + dedup MB/s per source, tokenize, mix
#   bash bench/corpus.sh --large    also a generated 1 GB corpus: wall time, MB/s and peak RSS
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product kondate >/dev/null
bin=$PWD/.build/release/kondate
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

report() {  # recipe out
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$bin" corpus "$1" --out "$2" --json > "$tmp/report.json"
  read -r seconds rss_kb < "$tmp/time"
  python3 - "$tmp/report.json" "$seconds" "$rss_kb" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); seconds, rss = float(sys.argv[2]), int(sys.argv[3])
total = 0
for s in r["sources"]:
    mb = s["read"]["bytes"] / 1e6; total += mb
    print(f"prepare {s['source']:<12} {mb:9.1f} MB  {mb / max(s['seconds'], 1e-9):8.1f} MB/s  "
          f"{s['read']['documents']} -> {s['documents_out']} documents")
for t in r["tokens"]:
    print(f"tokenize {t['source']:<11} {t['tokens']:>12,} tokens  {t['seconds']:.2f} s")
print(f"total: {total:.1f} MB in {seconds:.1f} s wall, peak RSS {rss / 1024:.0f} MiB")
PY
}

echo "== example recipe"
report examples/tiny/tiny-llama.yaml "$tmp/example"

if [ "${1:-}" = "--large" ]; then
  echo "== generated 1 GB corpus"
  mkdir -p "$tmp/large"
  python3 - "$tmp/large" <<'PY'
import json, os, random, re, sys
# Documents assembled from random sentences of the example corpus: mostly unique, so the
# deduplicators keep most of them and every stage works on the full gigabyte.
out, rng = sys.argv[1], random.Random(1)
sentences = []
for name in ("ja.jsonl", "en.jsonl"):
    for line in open(f"examples/tiny/data/{name}", encoding="utf-8"):
        sentences += [s for s in re.split(r"(?<=[。.?!])\s*", json.loads(line)["text"]) if len(s) > 8]
written = 0
with open(os.path.join(out, "web.jsonl"), "w", encoding="utf-8") as f:
    while written < 1_000_000_000:
        text = "".join(rng.choice(sentences) for _ in range(rng.randrange(4, 24)))
        line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
        f.write(line); written += len(line.encode())
PY
  cat > "$tmp/large/recipe.yaml" <<YAML
name: large
tokenizer:
  train: {algorithm: bpe, vocab_size: 8192, sample_size: 8MiB}
  special_tokens: {eos: "</s>"}
corpus:
  held_out: 1%
  sources:
    web:
      paths: [web.jsonl]
      weight: 1
      filters:
        - doc_length: {min_chars: 20}
        - link_ratio: {max: 0.3}
        - ng_words: {path: $PWD/examples/tiny/ngwords.txt, max_hits: 0}
        - dedup_exact
        - dedup_minhash: {shingle: 5, permutations: 64, bands: 16, rows: 4, threshold: 0.8}
model: {arch: llama, hidden: 64, layers: 2, heads: 4, seq_len: 512}
pretrain: {global_batch: 64, steps: 2000, optimizer: {lr: 1e-3}}
YAML
  report "$tmp/large/recipe.yaml" "$tmp/large/out"
fi
