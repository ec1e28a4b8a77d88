#!/usr/bin/env bash
# libFuzzer campaigns on Kondate's readers of untrusted input (docs/security.md).
#
#   bash scripts/fuzz.sh --list                      the target names
#   bash scripts/fuzz.sh TARGET [--seconds N] [--runs N] [-- LIBFUZZER-OPTIONS…]
#
# Builds fuzz/ (a package of its own, depending on this one) with AddressSanitizer and libFuzzer's
# coverage for every module (libFuzzer's runtime in the fuzz targets only), seeds the
# corpus fuzz/corpus/TARGET from the repository's fixtures, and runs TARGET for N seconds (default 60)
# or N executions. Exits non-zero on a crash, a leak or a timeout (5 s per input), leaving the
# reproducer under fuzz/crashes/ (replay it with: fuzz/.build/debug/fuzz-TARGET fuzz/crashes/FILE).
# Once fixed, a reproducer goes to fuzz/regressions/TARGET/, which every campaign replays first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"

targets=(recipe tokenizer-json sentencepiece safetensors hf-config indexed-dataset eval-dataset)
seeds() {  # target → seed files
  case $1 in
    recipe) ls examples/tiny/*.yaml recipes/*.yaml Tests/KondateRecipeTests/Fixtures/bad/*.yaml ;;
    tokenizer-json) ls Tests/KondateTokenizersTests/Fixtures/hf/*.json ;;
    sentencepiece) find Tests/KondateTokenizersTests/Fixtures -name '*.model' ;;
    safetensors) find Tests/KondateModelTests/Fixtures -name '*.safetensors' -size -2M ;;
    hf-config) find Tests/KondateModelTests/Fixtures -name 'config.json' ;;
    indexed-dataset) ;;   # made below: length-prefixed .idx + .bin pairs
    eval-dataset) ls examples/tiny/eval/*.json ;;
  esac
}

if [ "${1:-}" = "--list" ]; then printf '%s\n' "${targets[@]}"; exit 0; fi
target=${1:-}
[[ " ${targets[*]} " == *" $target "* ]] || { echo "usage: scripts/fuzz.sh --list | TARGET [--seconds N] [--runs N]" >&2; exit 2; }
shift
seconds=60 runs=-1 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "scripts/fuzz.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

swift build -c debug --package-path fuzz --product "fuzz-$target" -Xswiftc -sanitize=address \
  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp -Xswiftc -use-ld=lld >&2
binary=fuzz/.build/debug/fuzz-$target
corpus=fuzz/corpus/$target
mkdir -p "$corpus" fuzz/crashes
for f in $(seeds "$target"); do cp "$f" "$corpus/seed-$(basename "$f")"; done
# Inputs that once crashed or leaked (fuzz/regressions/TARGET) are replayed first in every campaign.
if [ -d "fuzz/regressions/$target" ]; then
  for f in "fuzz/regressions/$target"/*; do cp "$f" "$corpus/regression-$(basename "$f")"; done
fi
if [ "$target" = indexed-dataset ] && [ ! -e "$corpus/seed-small" ]; then
  python3 - "$corpus/seed-small" <<'PY'
import struct, sys
lengths, docs = [3, 0, 2], [0, 1, 2, 3]
idx = b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + bytes([8]) + struct.pack("<QQ", len(lengths), len(docs))
idx += struct.pack("<%di" % len(lengths), *lengths)
offset, pointers = 0, []
for n in lengths: pointers.append(offset); offset += 2 * n
idx += struct.pack("<%dq" % len(pointers), *pointers) + struct.pack("<%dq" % len(docs), *docs)
open(sys.argv[1], "wb").write(struct.pack("<H", len(idx)) + idx + struct.pack("<5H", 1, 2, 3, 4, 5))
PY
fi
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
exec "$binary" "$corpus" -max_total_time="$seconds" -runs="$runs" -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix="fuzz/crashes/$target-" -print_final_stats=1 "${extra[@]}"
