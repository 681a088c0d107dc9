#!/usr/bin/env bash
# kproxy's main job, from a fresh Debian 12 machine, as root:
#   ./deploy/run.sh
# Installs the dependencies, builds kproxy, and runs it on the example configuration
# (a kubeadm-style KubeProxyConfiguration) with the example manifests directory as its
# source of Services, EndpointSlices and the Node. Stop it with Ctrl-C (SIGINT) or SIGTERM.
# Extra arguments are passed to kproxy, e.g. ./deploy/run.sh --v=4
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null
cmake --build build/release -j "$(nproc)" --target kproxy
exec build/release/src/kproxy \
  --config deploy/examples/kubeadm-kube-proxy.yaml \
  --hostname-override=demo-node \
  --manifests deploy/examples/manifests \
  --v=2 "$@"
