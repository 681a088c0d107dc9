#!/usr/bin/env bash
# netns tier: deploy/demo.sh end to end with the binaries of this build (KPROXY_BIN,
# KPROXY_TESTPEER_BIN, set by CTest), no build step. Passes when the demo exits 0 (every
# request answered by a pod of its Service, no rules for the headless Service) and no
# namespace of that demo run (kpd-<its pid>-*) is left behind. Skips, saying why, when not root.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "demo_test: SKIPPED: needs root (netns tier)"
  exit 0
fi
: "${KPROXY_BIN:?set KPROXY_BIN to the kproxy binary}"
: "${KPROXY_TESTPEER_BIN:?set KPROXY_TESTPEER_BIN to the kproxy-testpeer binary}"
export KPROXY_BIN KPROXY_TESTPEER_BIN
export KPROXY_DEMO_SKIP_BUILD=1

out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$SECONDS
rc=0
"$root/deploy/demo.sh" >"$out" 2>&1 &
demo_pid=$!
wait "$demo_pid" || rc=$?
cat "$out"
echo "demo_test: deploy/demo.sh exited $rc after $((SECONDS - start)) s"

status=0
if [ "$rc" -ne 0 ]; then
  echo "demo_test: FAIL: deploy/demo.sh exited $rc"
  status=1
fi
for expected in "FROM" "headless epc/hss: no KUBE-SVC chain" "KUBE-NODEPORTS"; do
  if ! grep -q "$expected" "$out"; then
    echo "demo_test: FAIL: the output has no \"$expected\""
    status=1
  fi
done
left=$(ip netns list | awk '{print $1}' | grep "^kpd-$demo_pid-" || true)
if [ -n "$left" ]; then
  echo "demo_test: FAIL: namespaces left behind:"
  echo "$left"
  status=1
fi
others=$(ip netns list | awk '{print $1}' | grep "^kpd-" || true)
if [ -n "$others" ]; then
  echo "demo_test: note: kpd- namespaces of other demo runs exist: $others"
fi
exit "$status"
