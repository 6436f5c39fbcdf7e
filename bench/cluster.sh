#!/usr/bin/env bash
# Cluster-mode figures (issue: cluster mode), release brokers in object
# durability on LocalStack (started here unless S3_BENCH_ENDPOINT names a
# server) and a one-member etcd started here, all on this machine:
#   7a. produce throughput of one broker against three brokers (clients
#       bootstrapped at one; 12 partitions, 4 producers, 1 KiB), idempotent
#       and not, in BENCH_ROUNDS (3) alternating rounds, the load generator
#       at the lowest CPU priority (see below); then one round at normal
#       priority;
#   7b. moving a partition's leadership (`silt cluster move`) when it holds
#       MESSAGES KiB, and when it is empty: until the new leader answers
#       ListOffsets for it (`silt topic describe`);
#   7c. failover after kill -9 of the leader with the default 6 s lease:
#       until Metadata from another broker names a live leader.
# Prints one markdown table. Everything listens on loopback and stops by
# itself.
#
# usage: bench/cluster.sh [MESSAGES]   (default 500000: 0.5 GiB per run)
# BENCH_STORE=file:///DIR puts the objects in a local directory instead
# (the brokers share it), to compare without the S3 server.
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-500000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/silt-target}"
cargo build --release -j2 --bin silt --example loadgen >&2
silt="$CARGO_TARGET_DIR/release/silt"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"

work=$(mktemp -d /var/tmp/silt-cluster-bench.XXXXXX)
declare -A pids addrs
etcd_pid="" localstack_pid=""
stop_brokers() {
  for id in "${!pids[@]}"; do kill "${pids[$id]}" 2>/dev/null || true; wait "${pids[$id]}" 2>/dev/null || true; done
  pids=() addrs=()
}
cleanup() {
  stop_brokers
  [[ -n "$etcd_pid" ]] && kill "$etcd_pid" 2>/dev/null
  [[ -n "$localstack_pid" ]] && kill "$localstack_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z "${S3_BENCH_ENDPOINT:-}" ]]; then
  export LOCALSTACK_PORT=45680
  localstack_pid=$(localstack/start.sh silt-cluster-bench)
  S3_BENCH_ENDPOINT="http://127.0.0.1:$LOCALSTACK_PORT"
fi
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ENDPOINT_URL="$S3_BENCH_ENDPOINT"
etcd_pid=$(ETCD_PORT=23850 scripts/etcd-start.sh)
store="${BENCH_STORE:-s3://silt-bench}"
create_bucket=""
[[ $store == s3://* ]] && create_bucket=--create-bucket
etcd=127.0.0.1:23850

# start_broker ID ROOT: a release broker of the cluster on etcd root ROOT.
start_broker() {
  local id=$1 root=$2
  "$silt" serve --broker-id "$id" --listen 127.0.0.1:0 --data-dir "$work/$root-$id" \
    --meta "etcd://$etcd/$root" --object-store "$store/$root" $create_bucket \
    > "$work/out-$id" 2>> "$work/broker.log" &
  pids[$id]=$!
  for _ in $(seq 300); do grep -q "^silt: listening on" "$work/out-$id" 2>/dev/null && break; sleep 0.1; done
  addrs[$id]=$(sed -n 's/^silt: listening on //p' "$work/out-$id")
  [[ -n "${addrs[$id]}" ]] || { echo "broker $id did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
}
# broker_cpu: CPU seconds (user + system) the running brokers used so far.
broker_cpu() {
  local ticks=0 pid
  for pid in "${pids[@]}"; do
    ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
topic() { "$silt" topic create "$1" --partitions "$2" --bootstrap-server "${addrs[1]}" >&2; }
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"; }
row() { echo "| $1 | $2 |" >> "$work/table"; }
# leader TOPIC PARTITION ADDR: the partition's leader as ADDR's Metadata says.
leader() {
  "$silt" cluster describe --bootstrap-server "$3" 2>/dev/null |
    awk -F'\t' -v t="Topic: $1" -v p="Partition: $2" '$1 == t && $2 == p { sub("Leader: ", "", $3); print $3 }'
}
# wait_led TOPIC PARTITIONS: until every partition has a leader.
wait_led() {
  for _ in $(seq 300); do
    local led
    led=$("$silt" cluster describe --bootstrap-server "${addrs[1]}" | grep -c "^Topic: $1.*Leader: [0-9]")
    [[ "$led" == "$2" ]] && return
    sleep 0.1
  done
  echo "topic $1 did not get leaders" >&2; exit 1
}

# 7a. One broker against three, in alternating rounds (this shared
# machine is noisy): idempotent producers, then producers keeping many
# requests in flight; 12 partitions, 4 producers bootstrapped at broker 1.
# The load generator runs at the lowest CPU priority: librdkafka's
# idempotent producer keeps one request per partition in flight and
# busy-polls while a partition waits for its answer, so on these two shared
# cores it takes the CPU the brokers and the S3 server need, the more so the
# more brokers it talks to (fewer partitions each). In a deployment clients
# do not run on the brokers' cores. One round at normal priority shows the
# difference.
rounds="${BENCH_ROUNDS:-3}"
declare -A mb cpu_per_gb
# produce_round SIZE ROUND [PRIORITY...]: both producer kinds against SIZE
# fresh brokers; results in mb[SIZE,KIND,ROUND] and cpu_per_gb[...].
produce_round() {
  local size=$1 round=$2; shift 2
  local root="bench-$size-$round-$(basename "$work")" id kind extra produce before
  for id in $(seq "$size"); do start_broker "$id" "$root"; done
  topic throughput 12
  wait_led throughput 12
  for kind in idempotent many; do
    extra=()
    [[ $kind == many ]] && extra=(--idempotence false --client max.in.flight=1000)
    before=$(broker_cpu)
    produce=$("$@" "$loadgen" produce --bootstrap "${addrs[1]}" --topic throughput --messages "$messages" --producers 4 "${extra[@]}" | tail -1)
    mb[$size,$kind,$round]=$(field "$produce" mb_per_s)
    cpu_per_gb[$size,$kind,$round]=$(awk -v a="$before" -v b="$(broker_cpu)" -v m="$messages" 'BEGIN { printf "%.1f", (b - a) / (m * 1024 / 1e9) }')
  done
  stop_brokers
}
for round in $(seq "$rounds"); do
  for size in 1 3; do produce_round "$size" "$round" nice -n 19; done
done
for size in 1 3; do produce_round "$size" normal; done
for kind in idempotent many; do
  if [[ $kind == many ]]; then label="not idempotent, 1000 in flight"; else label="idempotent"; fi
  pairs="" ratios="" cpus=""
  for round in $(seq "$rounds"); do
    pairs+="${pairs:+, }${mb[3,$kind,$round]} / ${mb[1,$kind,$round]}"
    ratios+="$(awk -v a="${mb[3,$kind,$round]}" -v b="${mb[1,$kind,$round]}" 'BEGIN { printf "%.2f", a / b }') "
    cpus+="${cpus:+, }${cpu_per_gb[3,$kind,$round]} / ${cpu_per_gb[1,$kind,$round]}"
  done
  median=$(tr ' ' '\n' <<< "$ratios" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  row "7a. $label: 3 brokers / 1 broker, MB/s per round" "$pairs (median ratio ${median}x; brokers' CPU s per GB $cpus)"
  row "7a. $label, client at normal priority: 3 brokers / 1 broker" "${mb[3,$kind,normal]} / ${mb[1,$kind,normal]} MB/s"
done

root="bench-moves-$(basename "$work")"
for id in 1 2 3; do start_broker "$id" "$root"; done

# 7b. Moving a leadership, with data and without.
topic full 1
topic empty 1
wait_led full 1
wait_led empty 1
"$loadgen" produce --bootstrap "${addrs[1]}" --topic full --messages "$messages" > /dev/null
for t in full empty; do
  from=$(leader "$t" 0 "${addrs[1]}")
  to=$(( from % 3 + 1 ))
  start=$(date +%s.%N)
  "$silt" cluster move --meta "etcd://$etcd/$root" "$t" 0 --to "$to" > /dev/null
  for _ in $(seq 1000); do
    "$silt" topic describe "$t" --bootstrap-server "${addrs[1]}" 2>/dev/null | grep -q "Leader: $to" && break
    sleep 0.01
  done
  if [[ $t == full ]]; then label="holding $((messages / 1024)) MiB"; else label="empty"; fi
  row "7b. move a partition's leadership ($label), until the new leader serves" "$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f ms", (e - s) * 1000 }')"
done

# 7c. kill -9 the leader of `full` (default 6 s lease).
victim=$(leader full 0 "${addrs[1]}")
survivor=$(( victim % 3 + 1 ))
kill -9 "${pids[$victim]}"
killed=$(date +%s.%N)
for _ in $(seq 300); do
  now=$(leader full 0 "${addrs[$survivor]}")
  [[ -n "$now" && "$now" != "$victim" && "$now" != "-1" ]] && break
  sleep 0.05
done
unset "pids[$victim]"
row "7c. failover after kill -9 (6 s lease): a live leader in Metadata" "$(awk -v s="$killed" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f s", e - s }')"

echo
echo "| figure | value |"
echo "|---|---|"
cat "$work/table"
