#!/usr/bin/env bash
# Latency of the front end in a release build: validate and plan of the LLM-jp-13B v2.0 recipe, and
# validation of a generated 10 000-line recipe. Prints one line per measurement (milliseconds, the
# median of N runs, wall clock including process start).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
swift build -c release --product kondate >/dev/null
bin=.build/release/kondate

median_ms() {  # command...
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || [ $? -le 1 ]
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A 10 000-line recipe: the tiny example with 1 000 extra corpus sources of ten lines each.
{
  sed -n '1,/^corpus:/p' examples/tiny/tiny-llama.yaml | sed 's|data/|'"$PWD"'/examples/tiny/data/|'
  echo "  sources:"
  for i in $(seq 1 1000); do
    cat <<SRC
    source_$i:
      language: ja
      paths: [data/part-$i/*.jsonl]
      tokens: ${i}M
      filters:
        - doc_length: {min_chars: 50}
        - hiragana_ratio: {min: 0.1}
        - compression_ratio: {min: 0.3, max: 0.7}
        - dedup_exact
      max_epochs: 4
SRC
  done
  sed -n '/^model:/,$p' examples/tiny/tiny-llama.yaml
} > "$tmp/large.yaml"
lines=$(wc -l < "$tmp/large.yaml")

echo "validate llm-jp-13b-v2.0: $(median_ms $bin validate recipes/llm-jp-13b-v2.0.yaml) ms (median of $runs)"
echo "plan llm-jp-13b-v2.0:     $(median_ms $bin plan recipes/llm-jp-13b-v2.0.yaml) ms"
echo "plan --json:              $(median_ms $bin plan recipes/llm-jp-13b-v2.0.yaml --json) ms"
echo "validate $lines-line recipe: $(RUNS=5 median_ms $bin validate "$tmp/large.yaml") ms"
