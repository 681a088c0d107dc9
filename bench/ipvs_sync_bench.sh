#!/usr/bin/env bash
# The IPVS sync benchmark (bench/ipvs_sync_bench.cc) inside the vm tier's guest, where ip_vs
# is a loadable module: Debian's stock kernel under qemu (test/vm/run; this machine's kernel
# has no IPVS).
#   sudo bench/ipvs_sync_bench.sh [BUILD_DIR] [--services N]...
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
shift || true
[ "$(id -u)" -eq 0 ] || { echo "run as root (the VM harness)" >&2; exit 77; }
exec test/vm/run --timeout 900 -- "$(realpath "$build/bench/kproxy_bench_ipvs_sync")" "$@"
