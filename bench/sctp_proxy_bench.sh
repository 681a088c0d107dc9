#!/usr/bin/env bash
# The userspace SCTP proxy against a direct usrsctp association between the same two
# namespaces, measured in the same run (docs/performance.md, "Userspace SCTP proxy").
#
#   sudo bench/sctp_proxy_bench.sh [BUILD_DIR] [ROUNDS]
#
# Three namespaces: a client, a node (kproxy --sctp-userspace-mode --manifests, routing between
# the two others) and a server (kproxy-testpeer serve, which echoes "ECHO" messages). The
# client (kproxy-testpeer bench) talks to the server directly (routed through the node by the
# kernel) and through the Service's cluster IP (relayed by kproxy's proxy), alternately, ROUNDS
# times (default 3); each figure is the median of the rounds. The throughput cases run twice:
# with the three processes sharing every core, and with the peers pinned to one core and kproxy
# to another (see place()); each prints the CPU per message of all three processes, whose
# direct/proxy ratio bounds the throughput ratio on a saturated machine. Then 1,000 concurrent
# associations through the proxy, with kproxy's resident memory before, during and after.
# Namespaces are named kpb-sctp-<pid>-* and always deleted.
set -euo pipefail
build=${1:-build/release}
rounds=${2:-3}
[ "$(id -u)" -eq 0 ] || { echo "run as root (network namespaces)" >&2; exit 77; }
kproxy=$(realpath "$build/src/kproxy")
peer=$(realpath "$build/test/peer/kproxy-testpeer")
p=kpb-sctp-$$
cli=$p-cli node=$p-node srv=$p-srv
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # and whatever still runs in the namespaces (nsx forks: the server is a child of its subshell)
  for ns in $cli $node $srv; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in $cli $node $srv; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in $cli $node $srv; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done
ip link add c0 netns $cli type veth peer name n0 netns $node
ip link add s0 netns $srv type veth peer name n1 netns $node
nsx $cli ip addr add 10.77.1.2/24 dev c0; nsx $cli ip link set c0 up
nsx $srv ip addr add 10.77.2.2/24 dev s0; nsx $srv ip link set s0 up
nsx $node ip addr add 10.77.1.1/24 dev n0; nsx $node ip link set n0 up
nsx $node ip addr add 10.77.2.1/24 dev n1; nsx $node ip link set n1 up
nsx $cli ip route add default via 10.77.1.1
nsx $srv ip route add default via 10.77.2.1
nsx $node sysctl -qw net.ipv4.ip_forward=1

mkdir -p "$work/manifests"
cat > "$work/manifests/node.yaml" <<EOF
apiVersion: v1
kind: Node
metadata: {name: node1}
spec: {podCIDRs: [10.77.2.0/24]}
status: {addresses: [{type: InternalIP, address: 10.77.1.1}]}
EOF
cat > "$work/manifests/svc.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: diameter, namespace: bench}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ports: [{name: d, protocol: SCTP, port: 80, targetPort: 9000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: diameter-a, namespace: bench, labels: {kubernetes.io/service-name: diameter}}
addressType: IPv4
ports: [{name: d, protocol: SCTP, port: 9000}]
endpoints: [{addresses: [10.77.2.2], conditions: {ready: true}, nodeName: node1}]
EOF

nsx $srv "$peer" serve --name s --sctp 9000 > "$work/server.out" 2>&1 &
pids+=($!)
ip netns exec $node "$kproxy" --manifests "$work/manifests" --hostname-override node1 --cluster-cidr 10.77.0.0/16 \
  --sctp-userspace-mode --v=2 --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 \
  > "$work/kproxy.out" 2>&1 &
kpid=$!
pids+=($kpid)
for _ in $(seq 100); do
  grep -q "iptables full sync of IPv4" "$work/kproxy.out" && grep -q ready "$work/server.out" && break
  sleep 0.1
done
grep -q "iptables full sync of IPv4" "$work/kproxy.out" || { cat "$work/kproxy.out"; exit 1; }
spid=$(ip netns pids $srv | head -1)  # the server itself (nsx runs it in a subshell)
# `ip netns exec` execs in place: $kpid is kproxy itself.
rss_kib() { awk '/^VmRSS/ {print $2}' /proc/$kpid/status; }

# field NAME of a bench output line
field() { tr ' ' '\n' <<<"$1" | awk -v k="$2" 'prev == k {print; exit} {prev = $0}'; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

cpu_ticks() { awk '{print $14 + $15}' /proc/$kpid/stat; }
# busy and total jiffies of the whole machine (every core): how loaded the run kept it
machine_busy() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
# IP packets received plus sent in namespace NS (its /proc/net/snmp)
ip_packets() { nsx "$1" awk '$1 == "Ip:" && $2 ~ /^[0-9]/ {print $4 + $11}' /proc/net/snmp; }
# CPU seconds (user + system) process PID has used so far
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
run() {  # run KIND(direct|proxy) SIZE MESSAGES WINDOW
  local to=10.77.2.2:9000
  [ "$1" = proxy ] && to=10.96.0.10:80
  local c0 s0 sc0 kc0 out client server kproxy
  c0=$(ip_packets $cli); s0=$(ip_packets $srv); sc0=$(cpu_s "$spid"); kc0=$(cpu_s "$kpid")
  out=$(nsx $cli "${peers_cpu[@]}" /usr/bin/time -f "%U %S" "$peer" bench --to $to --size "$2" --messages "$3" --window "$4" 2>&1)
  client=$(tail -1 <<<"$out" | awk '{print $1 + $2}')
  server=$(awk -v a="$(cpu_s "$spid")" -v b="$sc0" 'BEGIN {print a - b}')
  kproxy=$(awk -v a="$(cpu_s "$kpid")" -v b="$kc0" 'BEGIN {print a - b}')
  # CPU per message of the three processes together (the client, the server, kproxy): on a
  # machine that both runs keep busy, direct/proxy of it bounds the throughput ratio.
  out="$(head -1 <<<"$out") cpu_us_per_msg $(awk -v c="$client" -v s="$server" -v k="$kproxy" -v m="$3" \
    'BEGIN {printf "%.0f", (c + s + k) * 1e6 / m}') client_cpu_s $client server_cpu_s $server kproxy_cpu_s $kproxy"
  # packets per message at the client and at the server (both directions, SACKs included)
  echo "$1 $out client_pkts_per_msg $(awk -v a="$(ip_packets $cli)" -v b="$c0" -v m="$3" 'BEGIN {printf "%.2f", (a - b) / m}')" \
    "server_pkts_per_msg $(awk -v a="$(ip_packets $srv)" -v b="$s0" -v m="$3" 'BEGIN {printf "%.2f", (a - b) / m}')" >> "$work/raw.txt"
  echo "$out"
}

# Where the three processes run. shared: every process on every core, so kproxy competes with
# both peers for this machine's cores. pinned: the client and the server share core 0 in both
# runs and kproxy has core 1, as in a cluster, where the pods' CPU is not the node's.
peers_cpu=()
place() {
  if [ "$1" = pinned ]; then
    peers_cpu=(taskset -c 0)
    taskset -a -pc 0 "$spid" > /dev/null; taskset -a -pc 1 "$kpid" > /dev/null
  else
    peers_cpu=()
    taskset -a -pc "0-$(( $(nproc) - 1 ))" "$spid" > /dev/null; taskset -a -pc "0-$(( $(nproc) - 1 ))" "$kpid" > /dev/null
  fi
}

printf '%-40s %14s %14s %8s\n' "case" "direct" "proxy" "ratio"
# KPROXY_BENCH_CASE=16 runs only the cases whose name contains it; KPROXY_BENCH_PERF=FILE
# records kproxy with perf for the first 8 s of them; KPROXY_BENCH_RAW=1 prints every
# client's own line (loaded round trips: p50_us, p99_us).
[ -n "${KPROXY_BENCH_PERF:-}" ] && { perf record -g -o "$KPROXY_BENCH_PERF" -p $kpid -- sleep 8 > /dev/null 2>&1 & }
pinned=()
[ "$(nproc)" -ge 2 ] && pinned=("throughput 100 B, 64 in flight, pinned|100 50000 64|msgs_per_s"
                                "throughput 16 KiB, 16 in flight, pinned|16384 5000 16|mb_per_s")
for c in "latency 100 B, 1 in flight|100 5000 1|p50_us" \
         "latency 100 B, 1 in flight (p99)|100 5000 1|p99_us" \
         "throughput 100 B, 64 in flight, shared|100 50000 64|msgs_per_s" \
         "throughput 16 KiB, 16 in flight, shared|16384 5000 16|mb_per_s" "${pinned[@]}"; do
  name=${c%%|*}; rest=${c#*|}; args=${rest%|*}; key=${rest##*|}
  [[ "$name" == *"${KPROXY_BENCH_CASE:-}"* ]] || continue
  if [[ "$name" == *pinned ]]; then place pinned; else place shared; fi
  : > "$work/d"; : > "$work/p"; : > "$work/cpu"; : > "$work/md"; : > "$work/mp"; : > "$work/cd"; : > "$work/cp"
  for _ in $(seq "$rounds"); do
    m0=$(machine_busy)
    # shellcheck disable=SC2086
    line=$(run direct $args)
    field "$line" "$key" >> "$work/d"
    field "$line" cpu_us_per_msg >> "$work/cd"
    echo "$m0 $(machine_busy)" | awk '{print ($3 - $1) / ($4 - $2)}' >> "$work/md"
    # shellcheck disable=SC2086
    t0=$(cpu_ticks); s0=$(date +%s.%N); m0=$(machine_busy)
    # shellcheck disable=SC2086
    line=$(run proxy $args)
    field "$line" "$key" >> "$work/p"
    field "$line" cpu_us_per_msg >> "$work/cp"
    echo "$(( $(cpu_ticks) - t0 )) $(date +%s.%N) $s0" | awk '{print $1 / 100 / ($2 - $3)}' >> "$work/cpu"
    echo "$m0 $(machine_busy)" | awk '{print ($3 - $1) / ($4 - $2)}' >> "$work/mp"
  done
  d=$(median < "$work/d"); pr=$(median < "$work/p")
  printf '%-40s %14s %14s %8.3f   (machine busy %.0f%% direct, %.0f%% proxy; kproxy %.0f%% of one core)\n' \
    "$name" "$d" "$pr" "$(awk -v a="$pr" -v b="$d" 'BEGIN {print a / b}')" "$(median < "$work/md" | awk '{print $1 * 100}')" \
    "$(median < "$work/mp" | awk '{print $1 * 100}')" "$(median < "$work/cpu" | awk '{print $1 * 100}')"
  if [ "$key" != p50_us ] && [ "$key" != p99_us ]; then
    cd_=$(median < "$work/cd"); cp_=$(median < "$work/cp")
    printf '%-40s %14s %14s %8.3f   (direct/proxy: the ratio a saturated machine allows)\n' "  CPU us per message, all three" "$cd_" "$cp_" \
      "$(awk -v a="$cd_" -v b="$cp_" 'BEGIN {print a / b}')"
  fi
  if [ "$key" = p50_us ]; then
    printf '%-40s %14s\n' "  added median latency (us)" "$(awk -v a="$pr" -v b="$d" 'BEGIN {print a - b}')"
  fi
done

place shared

# Packets the kernel dropped at the proxy's raw socket (its receive queue full): should stay 0.
[ -n "${KPROXY_BENCH_RAW:-}" ] && cat "$work/raw.txt"
raw_drops() { nsx "$1" awk 'NR > 1 {d += $NF} END {print d + 0}' /proc/net/raw; }
echo "raw socket drops: node $(raw_drops $node), client $(raw_drops $cli), server $(raw_drops $srv)"
[ -n "${KPROXY_BENCH_CASE:-}" ] && exit 0
before=$(rss_kib)
nsx $cli "$peer" bench --to 10.96.0.10:80 --associations 1000 --hold-ms 4000 > "$work/hold.out" 2>&1 &
hold=$!
pids+=($hold)
for _ in $(seq 600); do grep -q "^up" "$work/hold.out" && break; sleep 0.1; done
sleep 1
during=$(rss_kib)
active=$(nsx $node curl -s 127.0.0.1:10249/metrics | awk '$1 == "kproxy_sctp_userspace_associations" {print $2}')
wait $hold || true
sleep 2
after=$(rss_kib)
echo
echo "1000 associations: $(cat "$work/hold.out")"
echo "kproxy_sctp_userspace_associations while held: $active"
echo "kproxy RSS: before ${before} KiB, with 1000 associations ${during} KiB ($(( (during - before) / 1000 )) KiB each), after ${after} KiB"
