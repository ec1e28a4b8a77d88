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
import json, os, sys
out = sys.argv[1]
src = [json.loads(l)["text"] for l in open("examples/tiny/data/ja.jsonl", encoding="utf-8")]
src += [json.loads(l)["text"] for l in open("examples/tiny/data/en.jsonl", encoding="utf-8")]
written, i = 0, 0
with open(os.path.join(out, "web.jsonl"), "w", encoding="utf-8") as f:
    while written < 1_000_000_000:
        line = json.dumps({"text": f"{src[i % len(src)]}\n\n(copy {i // len(src)})"}, ensure_ascii=False) + "\n"
        f.write(line); written += len(line.encode()); i += 1
PY
  sed -e "s|data/ja.jsonl|$tmp/large/web.jsonl|" -e '/^    en:/,/^    code:/d' -e '/^    code:/,/^$/d' examples/tiny/tiny-llama.yaml \
    | sed 's|path: ngwords.txt|path: '"$PWD"'/examples/tiny/ngwords.txt|' > "$tmp/large/recipe.yaml"
  sed -i 's|^    ja:|    web:|' "$tmp/large/recipe.yaml"
  report "$tmp/large/recipe.yaml" "$tmp/large/out"
fi
