#!/usr/bin/env bash
# kproxy's main job, from a fresh Debian 12 machine, as root:
#   ./deploy/run.sh
# Installs the dependencies, builds kproxy, and runs it on the example configuration
# (a kubeadm-style KubeProxyConfiguration) with the example manifests directory as its
# source of Services, EndpointSlices and the Node. Stop it with Ctrl-C (SIGINT) or SIGTERM.
# Extra arguments are passed to kproxy, e.g. ./deploy/run.sh --v=4
#
# kproxy programs iptables, so it runs in a throwaway network namespace (kpr-<pid>), never
# in this machine's own: the namespace and its rules are deleted when kproxy exits.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null
cmake --build build/release -j "$(nproc)" --target kproxy
ns="kpr-$$"
ip netns add "$ns"
trap 'ip netns delete "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
echo "running kproxy in network namespace $ns; see its rules with: ip netns exec $ns iptables-save"
ip netns exec "$ns" build/release/src/kproxy \
  --config deploy/examples/kubeadm-kube-proxy.yaml \
  --hostname-override=demo-node \
  --manifests deploy/examples/manifests \
  --v=2 "$@"
