#!/usr/bin/env bash
# The vm tier's harness itself (test/vm/run): the command's exit status and output come back,
# its working directory and KPROXY_* variables reach it, the guest may write anywhere without
# touching the host, the cached modules are at /lib/modules/<release> and load on demand, and no qemu process
# outlives the harness, whether the VM runs out of time or the harness is killed outright.
# Exit 77 (CTest SKIP_RETURN_CODE) when test/vm/run skips.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=$here/run
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# Every VM of this test gets a work folder under $scratch, so its qemu is recognisable by
# command line (pgrep -f) and none of another test's VMs is mistaken for it.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kproxy-vm-harness.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
qemus() { pgrep -f "qemu-system-x86_64.*$scratch" || true; }

# 1. status, output, working directory, environment, writes, on-demand modules: one boot.
out=$(TMPDIR=$scratch KPROXY_VM_HARNESS_MARK=marked-$$ "$run" --cwd "$here" --timeout 240 -- bash -c '
  echo "cwd=$(pwd)"
  echo "mark=$KPROXY_VM_HARNESS_MARK"
  echo "kernel=$(uname -r)"
  echo written >"'"$here"'/.guest-write" && echo "write=$(cat "'"$here"'/.guest-write")"
  [ -f "/lib/modules/$(uname -r)/modules.dep" ] && modinfo sctp >/dev/null && echo "modules=in-place"
  ipvsadm -Ln >/dev/null && [ -d /sys/module/ip_vs ] && echo "ip_vs=loaded"
  touch /run/netns/probe && echo "run-netns=writable"
  exit 7' 2>"$scratch/stderr")
status=$?
if [ "$status" -eq 77 ]; then
  echo "SKIPPED: $(cat "$scratch/stderr")$out"
  exit 77
fi
[ "$status" -eq 7 ] && pass "exit status 7 came back" || fail "exit status $status, expected 7"
for want in "cwd=$here" "mark=marked-$$" "write=written" "modules=in-place" "ip_vs=loaded" "run-netns=writable"; do
  grep -qxF "$want" <<<"$out" && pass "$want" || fail "no line '$want' in the output"
done
grep -qx 'kernel=.*-amd64' <<<"$out" && pass "$(grep '^kernel=' <<<"$out")" || fail "not a Debian amd64 kernel"
[ ! -e "$here/.guest-write" ] && pass "the guest's write stayed in the guest" || fail "the guest wrote into the host"
grep -q 'guest console' "$scratch/stderr" && pass "a failing command shows the guest console" ||
  fail "no guest console on failure"
[ -z "$(qemus)" ] && pass "no qemu left after a normal run" || fail "qemu left behind: $(qemus)"
echo "---- test/vm/run's stderr ----"; cat "$scratch/stderr"; echo "----"

# 2. out of time: exit 124, the console is shown, qemu is gone.
TMPDIR=$scratch "$run" --timeout 3 -- sleep 600 >"$scratch/out2" 2>&1
status=$?
[ "$status" -eq 124 ] && pass "timeout gives 124" || { fail "timeout gave $status"; cat "$scratch/out2"; }
grep -q 'timed out after 3 s' "$scratch/out2" && pass "timeout is reported" || fail "timeout not reported"
[ -z "$(qemus)" ] && pass "no qemu left after a timeout" || fail "qemu left behind after a timeout: $(qemus)"

# 3. the harness killed outright (SIGKILL: no trap runs): qemu dies with it (PR_SET_PDEATHSIG).
TMPDIR=$scratch "$run" --timeout 120 -- sleep 600 >"$scratch/out3" 2>&1 &
harness=$!
for _ in $(seq 1 100); do [ -n "$(qemus)" ] && break; sleep 0.1; done
[ -n "$(qemus)" ] || fail "qemu did not start"
kill -KILL "$harness"
wait "$harness" 2>/dev/null
for _ in $(seq 1 50); do [ -z "$(qemus)" ] && break; sleep 0.1; done
[ -z "$(qemus)" ] && pass "no qemu left after SIGKILL of test/vm/run" || {
  fail "qemu outlived a killed test/vm/run: $(qemus)"
  pkill -KILL -f "qemu-system-x86_64.*$scratch"
}

if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all harness checks passed"
