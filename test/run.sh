#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine, as root:
#   ./test/run.sh
# Installs what it needs (deploy/setup.sh), builds each configuration once and runs every tier:
#   1. release  - g++ 12, -Werror:               unit, netns, vm
#   2. asan     - clang 14, ASan + UBSan:         unit, netns; plus the libFuzzer targets,
#                 each run for a bounded time ($KPROXY_FUZZ_SECONDS, default 60)
# Select parts with KPROXY_TEST_CONFIGS="release asan" and KPROXY_TEST_LABELS="unit netns vm".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

configs=${KPROXY_TEST_CONFIGS:-"release asan"}
labels=${KPROXY_TEST_LABELS:-"unit netns vm"}
fuzz_seconds=${KPROXY_FUZZ_SECONDS:-60}
jobs=$(nproc)

if [ "$(id -u)" -eq 0 ]; then
  ./deploy/setup.sh
else
  echo "test/run.sh: not root: skipping deploy/setup.sh; the netns and vm tiers will skip" >&2
fi

step() { printf '\n=== %s ===\n' "$*"; }

run_tiers() {
  local dir=$1
  for label in $labels; do
    step "ctest -L $label ($dir)"
    # --no-tests=ignore: a tier may be empty in a configuration (e.g. vm before its harness).
    ctest --test-dir "$dir" -L "^${label}\$" --output-on-failure --no-tests=ignore -j "$jobs" --timeout 600
  done
}

for config in $configs; do
  case "$config" in
    release)
      step "configure + build: release (g++)"
      cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null
      cmake --build build/release -j "$jobs"
      run_tiers build/release
      ;;
    asan)
      step "configure + build: asan (clang, ASan + UBSan, libFuzzer)"
      cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
        -DKPROXY_SANITIZE=ON -DKPROXY_FUZZ=ON -DKPROXY_BENCH=OFF >/dev/null
      cmake --build build/asan -j "$jobs"
      export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
      export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
      # The vm tier runs the release build's binaries inside the guest; not repeated here.
      labels=${labels/vm/} run_tiers build/asan
      if [ "$fuzz_seconds" -gt 0 ]; then
        for fuzzer in build/asan/test/fuzz/*_fuzz; do
          [ -x "$fuzzer" ] || continue
          name=$(basename "$fuzzer")
          step "fuzz: $name for ${fuzz_seconds}s"
          work=$(mktemp -d)
          cp -r "$root/test/fuzz/corpus/." "$work/" 2>/dev/null || true
          "$fuzzer" -max_total_time="$fuzz_seconds" -print_final_stats=1 -artifact_prefix="$root/build/asan/" \
            "$work" "$root/test/fixtures/k8s-testdata" 2>&1 | tail -n 15
          rm -rf "$work"
        done
      fi
      ;;
    *) echo "test/run.sh: unknown configuration $config" >&2; exit 2 ;;
  esac
done
step "all tests passed"
