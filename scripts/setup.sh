#!/usr/bin/env bash
# Installs what Kondate needs on Debian 12 besides the Swift 6 toolchain: OpenBLAS, oneDNN and OpenMPI
# (the native runtime's kernels — f32 sgemm, bf16 matmul — and transport), zlib, libcurl (the eval judge's HTTP client), and iproute2
# (the two-host MPI test's network namespaces). Idempotent; runs apt only when something is missing.
set -euo pipefail

packages=(libopenblas-dev libdnnl-dev libopenmpi-dev openmpi-bin pkg-config zlib1g-dev libcurl4 iproute2)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "setup: Swift is at /opt/swift/usr/bin; add it to PATH" >&2
  else
    echo "setup: Kondate needs the Swift 6 toolchain (https://www.swift.org/install/linux/)" >&2
  fi
  exit 1
fi
