#!/usr/bin/env bash
# Training throughput, Kondate against PyTorch + transformers on the same model shapes, in fp32 and in
# bf16 mixed precision (Kondate's --precision bf16; PyTorch's torch.autocast("cpu", bfloat16)): f32
# weights, AdamW(lr 1e-4, weight_decay 0.1), gradient clipping at 1.0 and a fixed random token batch,
# 2 threads. Each reference config and precision runs `kondate bench train` and bench/train_torch.py
# (the faster of transformers' eager and sdpa attention) in the same run, then a table compares tokens
# per second, gives Kondate's fraction of its kernel's measured peak and its peak RSS, and the ratios
# against the goals.
#
#   bench/train.sh [tiny|small|all] [--no-build]      (default: all)
#
#   tiny   llama hidden 256, ffn 688, 4 layers, 8 heads, vocab 8000, seq 256, batch 8, 10 steps
#   small  llama hidden 512, ffn 1376, 8 layers, 8 heads, vocab 16000, seq 512, batch 4, 5 steps
#
# STEPS=N overrides the timed steps of every config. --no-build uses the existing
# .build/release/kondate instead of running `swift build -c release` first.
# Needs: python3 with torch and transformers.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bench/train.sh [tiny|small|all] [--no-build]"
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
if [ ! -x "$bin" ]; then
  echo "bench/train.sh: $bin does not exist; run without --no-build" >&2
  exit 1
fi
# An unknown subcommand makes ArgumentParser print the parent's help and exit 0, so look for
# `train` in the list of bench subcommands instead of relying on the exit status.
bench_help=$("$bin" bench --help 2>&1 || true)
if ! grep -Eq '^[[:space:]]+train([[:space:]]|$)' <<<"$bench_help"; then
  echo "bench/train.sh: $bin has no 'bench train' subcommand; build a Kondate that has it" >&2
  exit 1
fi

# Model flags and default timed steps of each reference config.
config_args() {  # name
  case $1 in
    tiny)  echo "--arch llama --hidden 256 --ffn 688 --layers 4 --heads 8 --vocab 8000 --seq 256 --batch 8" ;;
    small) echo "--arch llama --hidden 512 --ffn 1376 --layers 8 --heads 8 --vocab 16000 --seq 512 --batch 4" ;;
  esac
}
config_steps() {  # name
  case $1 in
    tiny) echo 10 ;;
    small) echo 5 ;;
  esac
}

# The last non-empty line of a command's output, which must be one JSON object. The commands run in
# plain assignments (out=$(...)) first so that a failing one stops the script under set -e.
json_line() {
  printf '%s\n' "$1" | awk 'NF {line = $0} END {print line}'
}

case $which in
  all) configs=(tiny small) ;;
  *) configs=("$which") ;;
esac

rows=()
for name in "${configs[@]}"; do
  read -r -a args <<<"$(config_args "$name")"
  steps=${STEPS:-$(config_steps "$name")}
  for precision in fp32 bf16; do
    echo "== $name $precision: ${args[*]} --steps $steps --threads 2"

    out=$("$bin" bench train "${args[@]}" --steps "$steps" --threads 2 --precision "$precision" --json)
    kondate=$(json_line "$out")
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("kondate: {tokens_per_second:,.0f} tokens/s, {step_seconds:.3f} s/step, {gflops:.1f} GFLOP/s, "
      "{fraction_of_peak:.1%} of {peak_kernel} peak {peak_gflops:.1f} GFLOP/s, peak RSS {rss:.0f} MiB".format(
          rss=r["peak_rss_bytes"] / 2**20, **r))
kernels = sorted(r.get("kernels", {}).items(), key=lambda kv: -kv[1])
if kernels:
    print("  kernels (s/step): " + ", ".join("{} {:.3f}".format(k, v) for k, v in kernels))
' "$kondate"

    out=$(python3 bench/train_torch.py "${args[@]}" --steps "$steps" --threads 2 --precision "$precision" --json)
    torch=$(json_line "$out")
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
others = ", ".join("{} {:.3f} s/step".format(a, s) for a, s in r["step_seconds_by_attn"].items()
                   if a != r["attn_implementation"])
print("torch {torch} {precision}: {tokens_per_second:,.0f} tokens/s, {step_seconds:.3f} s/step, {gflops:.1f} GFLOP/s, "
      "attention {attn_implementation}".format(**r) + (" (slower: " + others + ")" if others else ""))
' "$torch"

    rows+=("$name" "$precision" "$kondate" "$torch")
  done
done

# Table: one row per config and precision, then Kondate bf16 against both PyTorch columns.
echo
python3 -c '
import json, sys
rest = sys.argv[1:]
runs = {}
for name, precision, k, t in zip(rest[0::4], rest[1::4], rest[2::4], rest[3::4]):
    runs[(name, precision)] = (json.loads(k), json.loads(t))
row = "{:8s} {:6s} {:>14s} {:>14s} {:>7s} {:>20s} {:>9s}  {}"
print(row.format("config", "prec", "Kondate tok/s", "PyTorch tok/s", "ratio", "Kondate % of peak", "RSS MiB", "peak kernel; torch attention"))
for (name, precision), (k, t) in runs.items():
    print(row.format(name, precision, "{:,.0f}".format(k["tokens_per_second"]), "{:,.0f}".format(t["tokens_per_second"]),
                     "{:.2f}".format(k["tokens_per_second"] / t["tokens_per_second"]),
                     "{:.1%} of {:.0f} GF/s".format(k["fraction_of_peak"], k["peak_gflops"]),
                     "{:.0f}".format(k["peak_rss_bytes"] / 2**20), k["peak_kernel"] + "; " + t["attn_implementation"]))
print()
print("goals: Kondate bf16 >= 1.5x PyTorch bf16 autocast and >= 2x PyTorch fp32; Kondate fp32 >= 1.15x PyTorch fp32")
for name in dict.fromkeys(n for n, _ in runs):
    if (name, "fp32") in runs and (name, "bf16") in runs:
        kf, tf = runs[(name, "fp32")]
        kb, tb = runs[(name, "bf16")]
        print("{:8s} bf16/torch-bf16 {:.2f}x  bf16/torch-fp32 {:.2f}x  fp32/torch-fp32 {:.2f}x".format(
            name, kb["tokens_per_second"] / tb["tokens_per_second"], kb["tokens_per_second"] / tf["tokens_per_second"],
            kf["tokens_per_second"] / tf["tokens_per_second"]))
' "${rows[@]}"
