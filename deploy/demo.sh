#!/usr/bin/env bash
# kproxy's main job for issue 4, end to end, as root:
#   ./deploy/demo.sh
# Builds kproxy and kproxy-testpeer, creates a throwaway two-node cluster in network
# namespaces (the same topology as test/support/cluster.h), runs kproxy on node1 with the
# Services of deploy/demo/manifests (KEP-614's SCTP examples: a ClusterIP, a headless and a
# NodePort Service with TCP, UDP and SCTP ports; and a dual-stack 5G AMF whose NGAP (SCTP) and
# SBI (TCP) ports answer on an IPv4 and an IPv6 cluster IP), sends real traffic through the
# rules it writes, prints who answered and what source address each pod saw, and removes
# everything. Every link carries both families (IPv6 mirrors IPv4 address for address):
#
#   switch   bridge br0, node network 192.168.77.0/24 and fd00:77::/64
#   node1    192.168.77.11 and fd00:77::11, pods 10.244.1.0/24 and fd00:10:244:1::/64, runs kproxy
#   node2    192.168.77.12 and fd00:77::12, pods 10.244.2.0/24 and fd00:10:244:2::/64, no proxy
#   client   192.168.77.100 and fd00:77::100, outside the cluster (no route to pods)
#
# Exit status 0 when every expected request was answered by a backend of its Service.
# The root network namespace is never changed: every address, route, sysctl and iptables
# rule lives in namespaces named kpd-<pid>-<part>, deleted on exit and on Ctrl-C; leftovers
# of a demo that died are deleted at the next start.
#
# Environment:
#   KPROXY_DEMO_SKIP_BUILD=1   do not run cmake/ninja (use the binaries below as they are)
#   KPROXY_BIN                 kproxy binary (default build/release/src/kproxy)
#   KPROXY_TESTPEER_BIN        kproxy-testpeer binary (default build/release/test/peer/kproxy-testpeer)
#   KPROXY_DEMO_KEEP=1         keep the temporary directory (kproxy's log) after a successful run
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
manifests=$root/deploy/demo/manifests
kproxy_bin=${KPROXY_BIN:-$root/build/release/src/kproxy}
peer_bin=${KPROXY_TESTPEER_BIN:-$root/build/release/test/peer/kproxy-testpeer}
prefix=kpd-$$

say() { printf '%s\n' "$*"; }
die() {
  printf 'demo: %s\n' "$*" >&2
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  die "must run as root (it creates network namespaces)"
fi
for tool in ip iptables-nft-save iptables-legacy-save sysctl; do
  command -v "$tool" >/dev/null || die "$tool not found (run ./deploy/setup.sh)"
done

# ---------------------------------------------------------------------------------------
# Cleanup: our processes, then our namespaces. Runs once, on any exit.

pids=()        # background processes we started (kproxy, peers)
namespaces=()  # in creation order; deleted in reverse
tmp=""
succeeded=0

alive() {
  # A child that exited stays a zombie until reaped: kill -0 would still succeed.
  [ -r "/proc/$1/stat" ] || return 1
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

kill_namespace_processes() {
  local ns=$1 pid
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM PIPE
  set +e
  local pid i
  if [ "${#pids[@]}" -gt 0 ]; then
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 1 30); do
      local any=0
      for pid in "${pids[@]}"; do alive "$pid" && any=1; done
      [ "$any" -eq 0 ] && break
      sleep 0.1
    done
    for pid in "${pids[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  fi
  for ((i = ${#namespaces[@]} - 1; i >= 0; i--)); do
    kill_namespace_processes "${namespaces[i]}"
    ip netns delete "${namespaces[i]}" 2>/dev/null
  done
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    if [ "$succeeded" -eq 1 ] && [ "${KPROXY_DEMO_KEEP:-0}" != 1 ]; then
      rm -rf "$tmp"
    else
      say "demo: kept $tmp (kproxy.log, peer output)" >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE

# Leftovers of a demo that died without cleaning up: kpd-<pid>-* whose pid is gone.
remove_stale() {
  local ns owner
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^kpd-([0-9]+)- ]] || continue
    owner=${BASH_REMATCH[1]}
    [ "$owner" = "$$" ] && continue
    kill -0 "$owner" 2>/dev/null && continue
    say "demo: removing $ns (left by demo $owner, which is gone)"
    kill_namespace_processes "$ns"
    ip netns delete "$ns" 2>/dev/null || true
  done
}

# ---------------------------------------------------------------------------------------
# Build

build() {
  local attempt out
  # Debian packages first (idempotent: a no-op when everything is installed).
  "$root/deploy/setup.sh" >/dev/null || die "deploy/setup.sh failed"
  for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
    if out=$(cd "$root" && cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release 2>&1 &&
      ninja -C build/release -j2 kproxy kproxy-testpeer 2>&1); then
      return 0
    fi
    if grep -qiE 'lock|busy' <<<"$out" && [ "$attempt" -lt 12 ]; then
      say "demo: build directory busy, retrying in 10 s (attempt $attempt)"
      sleep 10
      continue
    fi
    printf '%s\n' "$out" | tail -n 40 >&2
    die "build failed"
  done
}

# ---------------------------------------------------------------------------------------
# The cluster (as test/support/cluster.cc builds it)

nsx() { ip netns exec "$@"; }

new_ns() {
  local name=$prefix-$1
  ip netns add "$name"
  namespaces+=("$name")
  nsx "$name" ip link set lo up
  # No duplicate address detection: IPv6 addresses are usable at once.
  nsx "$name" sysctl -q -w net.ipv6.conf.all.accept_dad=0
  nsx "$name" sysctl -q -w net.ipv6.conf.default.accept_dad=0
}

sw=$prefix-sw
n1=$prefix-n1
n2=$prefix-n2
cl=$prefix-cl
node_ip() { printf '192.168.77.1%s' "$1"; }
node_ip6() { printf 'fd00:77::1%s' "$1"; }
client_ip=192.168.77.100
client_ip6=fd00:77::100

attach_to_switch() {  # <namespace> <switch port> <cidr> <IPv6 cidr>
  nsx "$sw" ip link add "$2" type veth peer name eth0 netns "$1"
  nsx "$sw" ip link set "$2" master br0 up
  nsx "$1" ip addr add "$3" dev eth0
  nsx "$1" ip -6 addr add "$4" dev eth0 nodad
  nsx "$1" ip link set eth0 up
}

make_cluster() {
  new_ns sw
  new_ns n1
  new_ns n2
  new_ns cl
  nsx "$sw" ip link add br0 type bridge
  nsx "$sw" ip link set br0 up
  local node s
  for node in "$n1" "$n2"; do
    # Before the interfaces exist, so that "default" applies to them too.
    for s in net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 \
      net.ipv6.conf.all.forwarding=1; do
      nsx "$node" sysctl -q -w "$s"
    done
  done
  nsx "$cl" sysctl -q -w net.ipv4.conf.all.accept_redirects=0
  nsx "$cl" sysctl -q -w net.ipv4.conf.default.accept_redirects=0
  nsx "$cl" sysctl -q -w net.ipv6.conf.all.accept_redirects=0
  nsx "$cl" sysctl -q -w net.ipv6.conf.default.accept_redirects=0
  attach_to_switch "$n1" n1 "$(node_ip 1)/24" "$(node_ip6 1)/64"
  attach_to_switch "$n2" n2 "$(node_ip 2)/24" "$(node_ip6 2)/64"
  attach_to_switch "$cl" cl "$client_ip/24" "$client_ip6/64"
  nsx "$n1" ip route add 10.244.2.0/24 via "$(node_ip 2)"
  nsx "$n2" ip route add 10.244.1.0/24 via "$(node_ip 1)"
  nsx "$n1" ip route add default via "$client_ip"
  nsx "$n2" ip route add default via "$client_ip"
  nsx "$cl" ip route add 203.0.113.0/24 via "$(node_ip 1)"
  nsx "$n1" ip -6 route add fd00:10:244:2::/64 via "$(node_ip6 2)"
  nsx "$n2" ip -6 route add fd00:10:244:1::/64 via "$(node_ip6 1)"
  nsx "$n1" ip -6 route add default via "$client_ip6"
  nsx "$n2" ip -6 route add default via "$client_ip6"
}

declare -A pod_ns pod_node

# ptp pod: eth0 10.244.N.x/32 with a default route via 10.244.N.1 on-link; the host end of
# the veth stays in the node with 10.244.N.1/32 and a /32 route to the pod. The same in IPv6:
# fd00:10:244:N::x/128 via fd00:10:244:N::1.
add_pod() {  # <name> <node 1|2> <ip>
  local name=$1 node=$2 ip=$3 gw=10.244.$2.1 gw6=fd00:10:244:$2::1 ip6 nns host=vp-$1
  ip6=fd00:10:244:$2::${ip##*.}
  nns=$([ "$node" = 1 ] && echo "$n1" || echo "$n2")
  new_ns "p-$name"
  local pns=$prefix-p-$name
  pod_ns[$name]=$pns
  pod_node[$name]=node$node
  nsx "$nns" ip link add "$host" type veth peer name eth0 netns "$pns"
  nsx "$pns" ip addr add "$ip/32" dev eth0
  nsx "$pns" ip link set eth0 up
  nsx "$pns" ip route add "$gw" dev eth0 scope link
  nsx "$pns" ip route add default via "$gw" dev eth0
  nsx "$nns" ip addr add "$gw/32" dev "$host"
  nsx "$nns" ip link set "$host" up
  nsx "$nns" ip route add "$ip/32" dev "$host"
  nsx "$pns" ip -6 addr add "$ip6/128" dev eth0 nodad
  nsx "$pns" ip -6 route add "$gw6" dev eth0
  nsx "$pns" ip -6 route add default via "$gw6" dev eth0
  nsx "$nns" ip -6 addr add "$gw6/128" dev "$host" nodad
  nsx "$nns" ip -6 route add "$ip6/128" dev "$host"
}

start_bg() {  # <log name> <namespace> <argv...>: started in the background, logged to $tmp
  local log=$1 ns=$2
  shift 2
  nsx "$ns" "$@" >"$tmp/$log.out" 2>"$tmp/$log.err" </dev/null &
  pids+=("$!")
}

# kproxy-testpeer serve in a pod; waits (5 s) for "ready".
serve() {  # <pod> <peer flags...>
  local pod=$1
  shift
  if [[ " $* " == *" --sctp "* ]]; then
    # Every usrsctp stack of a namespace sees every SCTP packet of it and answers packets of
    # other stacks' associations with an ABORT (T bit set): drop those, as cluster.cc does.
    local tool
    for tool in iptables ip6tables; do
      nsx "${pod_ns[$pod]}" "$tool" -w -A OUTPUT -p sctp -m sctp --chunk-types any \
        ABORT:T,SHUTDOWN_COMPLETE:T -j DROP
    done
  fi
  start_bg "peer-$pod" "${pod_ns[$pod]}" "$peer_bin" serve --name "$pod" "$@"
  local deadline=$((SECONDS + 5))
  until grep -qx ready "$tmp/peer-$pod.out" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      cat "$tmp/peer-$pod.err" >&2
      die "the peer in pod $pod did not become ready"
    fi
    sleep 0.05
  done
}

# ---------------------------------------------------------------------------------------
# Traffic and the table

rows=()   # "FROM|TO|PROTO|ANSWERED BY|SOURCE SEEN BY POD|RESULT"
failures=0

# probe <from label> <namespace> <proto> <ip:port> <count> <expected pods, space-separated>
probe() {
  local from=$1 ns=$2 proto=$3 to=$4 count=$5 expected=" $6 "
  local out err rc=0
  err=$tmp/request.err
  out=$(nsx "$ns" "$peer_bin" request --proto "$proto" --to "$to" --timeout-ms 2000 --count "$count" 2>"$err") || rc=$?
  local -A answers=() sources=()
  local order=() src_order=() line name src unexpected="" n=0
  while read -r name src; do
    [ -n "$name" ] || continue
    n=$((n + 1))
    src=${src%:*}
    src=${src#[}
    src=${src%]}
    [ -n "${answers[$name]:-}" ] || order+=("$name")
    answers[$name]=$((${answers[$name]:-0} + 1))
    [ -n "${sources[$src]:-}" ] || src_order+=("$src")
    sources[$src]=1
    [[ $expected == *" $name "* ]] || unexpected=$name
  done <<<"$out"
  local by="" seen="" result
  for name in "${order[@]}"; do
    line="$name (${pod_node[$name]:-?})"
    [ "$count" -gt 1 ] && line+=" x${answers[$name]}"
    by+="${by:+, }$line"
  done
  for src in "${src_order[@]}"; do seen+="${seen:+, }$src"; done
  case $rc in
    0) result=ok ;;
    2) result="FAIL: refused" ;;
    3) result="FAIL: timeout" ;;
    *) result="FAIL: error $rc" ;;
  esac
  if [ "$rc" -eq 0 ] && [ "$n" -ne "$count" ]; then result="FAIL: $n of $count answers"; fi
  if [ -n "$unexpected" ]; then result="FAIL: $unexpected is no backend"; fi
  if [ "$result" != ok ]; then
    failures=$((failures + 1))
    sed 's/^/    peer: /' "$err" >&2
  fi
  [ "$count" -gt 1 ] && to+=" x$count"
  rows+=("$from|$to|${proto^^}|${by:--}|${seen:--}|$result")
}

print_table() {
  local header="FROM|TO|PROTO|ANSWERED BY|SOURCE SEEN BY POD|RESULT"
  local -a width=(0 0 0 0 0 0)
  local row i cells
  for row in "$header" "${rows[@]}"; do
    IFS='|' read -r -a cells <<<"$row"
    for i in 0 1 2 3 4 5; do
      [ "${#cells[i]}" -gt "${width[i]}" ] && width[i]=${#cells[i]}
    done
  done
  for row in "$header" "${rows[@]}"; do
    IFS='|' read -r -a cells <<<"$row"
    printf '%-*s | %-*s | %-*s | %-*s | %-*s | %s\n' "${width[0]}" "${cells[0]}" "${width[1]}" "${cells[1]}" \
      "${width[2]}" "${cells[2]}" "${width[3]}" "${cells[3]}" "${width[4]}" "${cells[4]}" "${cells[5]}"
    if [ "$row" = "$header" ]; then
      printf '%s\n' "$(printf '%*s' $((width[0] + width[1] + width[2] + width[3] + width[4] + 15 + 6)) '' | tr ' ' -)"
    fi
  done
}

kproxy_failed() {
  say "demo: $*" >&2
  say "--- last lines of $tmp/kproxy.log ---" >&2
  tail -n 30 "$tmp/kproxy.log" >&2 || true
  exit 1
}

# ---------------------------------------------------------------------------------------
# Main

remove_stale
if [ "${KPROXY_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  say "== building kproxy and kproxy-testpeer (build/release)"
  build
fi
[ -x "$kproxy_bin" ] || die "no kproxy binary at $kproxy_bin"
[ -x "$peer_bin" ] || die "no kproxy-testpeer binary at $peer_bin"
tmp=$(mktemp -d /tmp/kproxy-demo.XXXXXX)

say "== cluster in network namespaces $prefix-*"
make_cluster
add_pod a 1 10.244.1.10      # a client pod
add_pod mme-1 1 10.244.1.11
add_pod pgw-1 1 10.244.1.12
add_pod mme-2 2 10.244.2.10
add_pod hss-1 2 10.244.2.11
add_pod pgw-2 2 10.244.2.12
add_pod amf-1 1 10.244.1.13
add_pod amf-2 2 10.244.2.13
say "   node1 $(node_ip 1) $(node_ip6 1): a .10, mme-1 .11, pgw-1 .12, amf-1 .13 in 10.244.1.0/24 and fd00:10:244:1::/64   (kproxy)"
say "   node2 $(node_ip 2) $(node_ip6 2): mme-2 .10, hss-1 .11, pgw-2 .12, amf-2 .13 in 10.244.2.0/24 and fd00:10:244:2::/64"
say "   client $client_ip $client_ip6 (outside the cluster)"

serve mme-1 --sctp 36412
serve mme-2 --sctp 36412
serve hss-1 --sctp 3868
serve pgw-1 --sctp 13868 --tcp 13868 --udp 12123
serve pgw-2 --sctp 13868 --tcp 13868 --udp 12123
serve amf-1 --sctp 38412 --tcp 8080
serve amf-2 --sctp 38412 --tcp 8080

say "== kproxy on node1, log: $tmp/kproxy.log"
nsx "$n1" "$kproxy_bin" --manifests "$manifests" --hostname-override node1 \
  --cluster-cidr 10.244.0.0/16,fd00:10:244::/48 --healthz-bind-address 127.0.0.1:10256 \
  --metrics-bind-address 127.0.0.1:10249 --v=2 >"$tmp/kproxy.log" 2>&1 </dev/null &
pids+=("$!")
kproxy_pid=$!
kproxy_log() { cat "$tmp/kproxy.log" 2>/dev/null; }

# The flavour kproxy chose (nft in a fresh namespace), so that we read the same tables.
flavour=""
deadline=$((SECONDS + 20))
while :; do
  alive "$kproxy_pid" || kproxy_failed "kproxy exited"
  if [ -z "$flavour" ]; then
    flavour=$(kproxy_log | sed -n 's/.*using iptables mode (\([a-z]*\)).*/\1/p' | head -n 1)
  fi
  # The sync is over (rules, the jumps from the built-in chains, conntrack cleanup) when
  # kproxy logs it (--v=2); traffic sent earlier could pass before the jumps and pin an
  # un-NATed conntrack entry.
  # Both families (IPv4, then IPv6) have synced.
  if [ -n "$flavour" ] && kproxy_log | grep -q -E 'synced [0-9]+ service ports of IPv6' &&
    nsx "$n1" "iptables-$flavour-save" -t nat 2>/dev/null | grep -q '^:KUBE-SVC-'; then
    break
  fi
  [ "$SECONDS" -lt "$deadline" ] || kproxy_failed "no completed sync with KUBE-SVC chains after 20 s"
  sleep 0.1
done
save_nat() { nsx "$n1" "iptables-$flavour-save" -t nat; }
sync_line=$(kproxy_log | grep -m 1 -E 'synced [0-9]+ service ports' || true)
say "   first sync done (iptables $flavour)${sync_line:+: ${sync_line##*] }}"

say "== traffic"
probe "pod a (node1)" "${pod_ns[a]}" sctp 10.96.0.20:36412 6 "mme-1 mme-2"
probe "pod a (node1)" "${pod_ns[a]}" sctp 10.96.0.30:3868 4 "pgw-1 pgw-2"
probe "pod a (node1)" "${pod_ns[a]}" tcp 10.96.0.30:3868 6 "pgw-1 pgw-2"
probe "pod a (node1)" "${pod_ns[a]}" udp 10.96.0.30:2123 6 "pgw-1 pgw-2"
probe "node1" "$n1" sctp 10.96.0.20:36412 4 "mme-1 mme-2"
probe "node1" "$n1" tcp 10.96.0.30:3868 4 "pgw-1 pgw-2"
probe "client (outside)" "$cl" tcp "$(node_ip 1):30869" 4 "pgw-1 pgw-2"
probe "client (outside)" "$cl" udp "$(node_ip 1):32123" 4 "pgw-1 pgw-2"
probe "client (outside)" "$cl" sctp "$(node_ip 1):30868" 4 "pgw-1 pgw-2"
probe "pod a (node1)" "${pod_ns[a]}" sctp 10.244.2.11:3868 1 "hss-1"
rows[-1]=${rows[-1]/|10.244.2.11:3868|/|10.244.2.11:3868 (hss pod)|}
# The dual-stack AMF: each cluster IP reaches both AMF pods over its own family.
probe "pod a (node1)" "${pod_ns[a]}" sctp 10.96.0.40:38412 4 "amf-1 amf-2"
probe "pod a (node1)" "${pod_ns[a]}" sctp "[fd00:96::40]:38412" 4 "amf-1 amf-2"
probe "pod a (node1)" "${pod_ns[a]}" tcp "[fd00:96::40]:80" 4 "amf-1 amf-2"
probe "client (outside)" "$cl" sctp "[$(node_ip6 1)]:30412" 4 "amf-1 amf-2"

nat=$(save_nat)
headless=ok
if grep -q 'epc/hss' <<<"$nat"; then
  headless="FAIL: kproxy wrote rules for the headless Service epc/hss:"
  failures=$((failures + 1))
fi

say ""
print_table
say ""
if [ "$headless" = ok ]; then
  say "headless epc/hss: no KUBE-SVC chain for epc/hss:diameter and no rule naming it (headless: clients talk to pod IPs directly, as the last row does;"
  say "  its EndpointSlice carries service.kubernetes.io/headless, which kproxy skips as kube-proxy's informer does)"
else
  say "$headless"
  grep 'epc/hss' <<<"$nat"
fi
say ""
say "== rules (node1: iptables-$flavour-save -t nat | grep -E 'KUBE-(SERVICES|NODEPORTS)')"
grep -E 'KUBE-(SERVICES|NODEPORTS)' <<<"$nat" || true
say ""
say "== IPv6 rules (node1: ip6tables-$flavour-save -t nat | grep -E 'KUBE-(SERVICES|NODEPORTS)')"
nsx "$n1" "ip6tables-$flavour-save" -t nat | grep -E 'KUBE-(SERVICES|NODEPORTS)' || true
say ""
if [ "$failures" -ne 0 ]; then
  say "demo: $failures check(s) failed; kproxy log: $tmp/kproxy.log" >&2
  tail -n 20 "$tmp/kproxy.log" >&2 || true
  exit 1
fi
succeeded=1
say "demo: all ${#rows[@]} requests answered by their Services' pods, in ${SECONDS} s"
