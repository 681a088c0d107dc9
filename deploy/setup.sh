#!/usr/bin/env bash
# Installs every build and test dependency of kproxy from Debian 12 packages.
# Idempotent: packages already present are left alone, and apt-get is not called at all
# when nothing is missing. Nothing is downloaded at build or test time; this is the only
# place that talks to a package repository.
set -euo pipefail

packages=(
  # toolchain
  build-essential g++ cmake ninja-build pkg-config git clang clang-14 libclang-rt-14-dev
  clang-format clang-tidy
  # libraries (see docs/dependencies.md for why each one is here)
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev libssl-dev
  libsimdjson-dev  # API objects parsed from text on the list/watch path
  libnl-3-dev libnl-route-3-dev libnl-genl-3-dev libnl-nf-3-dev
  libiptc-dev libipset-dev libusrsctp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # kernel tools used by the netns tests and by kproxy on a node
  iptables iproute2 iputils-ping conntrack ipset procps kmod
  # used by tests
  python3 python3-prometheus-client curl  # python3-prometheus-client: parses scraped /metrics
  # the vm tier (test/vm/run): qemu, the initramfs's busybox, IPVS's command line tool
  qemu-system-x86 busybox-static ipvsadm
)

if [ "$(id -u)" -ne 0 ]; then
  echo "deploy/setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deploy/setup.sh: all ${#packages[@]} packages present"
else
  echo "deploy/setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The vm tier's guest kernel: Debian's stock linux-image package, downloaded once and unpacked
# into /var/cache/kproxy-vm (not installed); nothing is done when it is cached.
"$(dirname "$0")/../test/vm/prepare"
