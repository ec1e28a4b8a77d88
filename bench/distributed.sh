#!/usr/bin/env bash
# Distributed training throughput on this machine: one process using every core against ranks of one
# thread each, under mpirun, for the data-, tensor- and pipeline-parallel layouts, with the share of the
# step spent communicating (tensor-parallel all-reduces, data-parallel reductions and gathers, pipeline
# waits), as `kondate bench train` measures them on rank 0, and rank 0's gradient and optimizer memory
# (what ZeRO-1 and ZeRO-2 shard) and peak RSS.
#
#   bench/distributed.sh [--no-build]
#
# Model: llama hidden 256, ffn 688, 4 layers, 8 heads, vocab 8000, seq 256, global batch 8 (STEPS=N timed
# steps, default 5). Needs: mpirun (OpenMPI) and python3 (standard library) to read the JSON figures.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "usage: bench/distributed.sh [--no-build]" >&2; exit 2 ;;
  esac
done
[ "$build" = 1 ] && swift build -c release --product kondate >/dev/null
bin=.build/release/kondate
[ -x "$bin" ] || { echo "bench/distributed.sh: $bin does not exist; run without --no-build" >&2; exit 1; }
cores=$(nproc)
steps=${STEPS:-5}
mpirun=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() {  # name ranks args...
  local name=$1 ranks=$2; shift 2
  if [ "$ranks" = 1 ]; then
    "$bin" bench train --steps "$steps" --json "$@" > "$out/$name.json"
  else
    "${mpirun[@]}" -np "$ranks" "$bin" bench train --steps "$steps" --json "$@" > "$out/$name.json"
  fi
}

run "1 rank × $cores threads" 1 --threads "$cores"
run "$cores ranks × 1 thread, data $cores" "$cores" --threads 1
run "$cores ranks × 1 thread, data $cores, ZeRO-1" "$cores" --threads 1 --zero-stage 1
run "$cores ranks × 1 thread, data $cores, ZeRO-2" "$cores" --threads 1 --zero-stage 2
run "$cores ranks × 1 thread, tensor $cores" "$cores" --threads 1 --tensor "$cores"
run "$cores ranks × 1 thread, pipeline $cores" "$cores" --threads 1 --pipeline "$cores" --micro-batch 1

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for name in sorted(os.listdir(out), key=lambda n: os.path.getmtime(os.path.join(out, n))):
    with open(os.path.join(out, name)) as f:
        r = json.loads(f.read().strip().splitlines()[-1])
    comm = r["kernels"].get("communication", 0.0)
    memory = r.get("memory_bytes", {})
    rows.append((name[:-5], r["tokens_per_second"], r["step_seconds"], comm / r["step_seconds"],
                 memory.get("gradients", 0) / 2**20, memory.get("optimizer", 0) / 2**20, r.get("peak_rss_bytes", 0) / 2**20))
base = rows[0][1]
print(f"{'layout':44} {'tokens/s':>9} {'ms/step':>8} {'vs first':>8} {'comm share':>10} {'grads MiB':>10} {'optim MiB':>10} {'RSS MiB':>8}")
for name, tps, step, share, grads, optim, rss in rows:
    print(f"{name:44} {tps:9.0f} {step*1000:8.1f} {tps/base:8.2f} {100*share:9.1f}% {grads:10.1f} {optim:10.1f} {rss:8.0f}")
PY
