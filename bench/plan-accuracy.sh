#!/usr/bin/env bash
# How well `kondate plan` predicts Kondate's CPU runtime: for the tiny and small configs of
# docs/runtime.md, in fp32 and bf16, with and without full recomputation, the plan's memory per rank
# and step time (examples/tiny/tiny-llama.yaml with the config's shape set on the command line) beside
# what `kondate bench train` measures on this machine (peak RSS, mean step time), and their ratio.
# Goals (issue 15): memory within 15%, step time within 25%.
#
#   bench/plan-accuracy.sh [tiny|small|all] [--no-build]      (default: all)
#
# The plan uses the catalog's `cpu` peak (180 GFLOP/s, the reference machine's sgemm) unless
# PEAK=<FLOP/s> is given, e.g. PEAK=400e9 for bf16 through oneDNN on a CPU with avx512_bf16.
# STEPS=N overrides the timed steps.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bench/plan-accuracy.sh [tiny|small|all] [--no-build]"
which=all
build=1
for arg in "$@"; do
  case $arg in
    tiny|small|all) which=$arg ;;
    --no-build) build=0 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [ "$build" = 1 ]; then
  swift build -c release --product kondate >/dev/null
fi
bin=.build/release/kondate
[ -x "$bin" ] || { echo "bench/plan-accuracy.sh: $bin does not exist; run without --no-build" >&2; exit 1; }

# hidden ffn layers heads vocab seq batch steps
shape() {
  case $1 in
    tiny)  echo "256 688 4 8 8000 256 8 5" ;;
    small) echo "512 1376 8 8 16000 512 4 3" ;;
  esac
}
case $which in
  all) configs=(tiny small) ;;
  *) configs=("$which") ;;
esac

rows=()
for name in "${configs[@]}"; do
  read -r hidden ffn layers heads vocab seq batch steps <<<"$(shape "$name")"
  steps=${STEPS:-$steps}
  for precision in fp32 bf16; do
    for recompute in none full; do
      bench=$("$bin" bench train --arch llama --hidden "$hidden" --ffn "$ffn" --layers "$layers" --heads "$heads" --vocab "$vocab" \
        --seq "$seq" --batch "$batch" --steps "$steps" --threads 2 --precision "$precision" --recompute "$recompute" --json | tail -n 1)
      sets=(--set model.arch=llama --set model.hidden="$hidden" --set model.ffn="$ffn" --set model.layers="$layers"
            --set model.heads="$heads" --set model.kv_heads="$heads" --set model.vocab_size="$vocab" --set model.seq_len="$seq"
            --set parallel.micro_batch="$batch" --set pretrain.global_batch="$batch" --set pretrain.precision="$precision"
            --set parallel.recompute="$recompute")
      if [ -n "${PEAK:-}" ]; then sets+=(--set cluster.peak_flops="$PEAK"); fi
      plan=$("$bin" plan examples/tiny/tiny-llama.yaml --json "${sets[@]}")
      rows+=("$name $precision $recompute" "$bench" "$plan")
      echo "measured $name $precision recompute $recompute" >&2
    done
  done
done

python3 - "${rows[@]}" <<'PY'
import json, sys
rest = sys.argv[1:]
row = "{:24s} {:>11s} {:>11s} {:>6s}   {:>10s} {:>10s} {:>6s}   {}"
print(row.format("config", "plan MiB", "RSS MiB", "ratio", "plan ms", "run ms", "ratio", "measured peak, bf16 route"))
worst_memory = worst_time = 0.0
for name, b, p in zip(rest[0::3], rest[1::3], rest[2::3]):
    b, p = json.loads(b), json.loads(p)
    plan_memory, rss = p["memory_per_device_bytes"], b["peak_rss_bytes"]
    plan_time, step = p["step_time"]["seconds"], b["step_seconds"]
    m, t = plan_memory / rss, plan_time / step
    worst_memory, worst_time = max(worst_memory, abs(m - 1)), max(worst_time, abs(t - 1))
    print(row.format(name, "{:.1f}".format(plan_memory / 2**20), "{:.1f}".format(rss / 2**20), "{:.2f}".format(m),
                     "{:.1f}".format(plan_time * 1e3), "{:.1f}".format(step * 1e3), "{:.2f}".format(t),
                     "{:.0f} GFLOP/s {}".format(b["peak_gflops"], b["peak_kernel"])))
print("largest error: memory {:.1%} (goal 15%), step time {:.1%} (goal 25%)".format(worst_memory, worst_time))
PY
