#!/usr/bin/env bash
# The single-node benchmark: machine baselines, then a real client
# (librdkafka, examples/loadgen.rs) against a release broker in `local`
# durability: 1 KiB messages, 8 partitions, acks=all, idempotent.
#   1. produce as fast as possible, then catch-up consume;
#   2. produce at a fixed 50 MB/s (open loop) for latency percentiles;
#   3. a consumer group rebalance of 10 members over 100 partitions and
#      OffsetCommit round trips (examples/group_bench.rs).
# Prints a markdown table. Everything runs on loopback and stops by itself.
#
# usage: bench/run.sh [MESSAGES]        (default 1000000, i.e. 1 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/silt-target}"
cargo build --release -j2 --bin silt --example loadgen --example group_bench >&2
silt="$CARGO_TARGET_DIR/release/silt"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"
group_bench="$CARGO_TARGET_DIR/release/examples/group_bench"

work=$(mktemp -d /var/tmp/silt-bench.XXXXXX)
broker_pid=""
cleanup() {
  if [[ -n "$broker_pid" ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Baselines on the same disk: fdatasync'ed 4 KiB writes, and 1 GiB sequential write.
fsync=$(dd if=/dev/zero of="$work/dd" bs=4k count=2000 oflag=dsync 2>&1 | awk '/copied/ {print $(NF-3)}')
fsyncs_per_s=$(awk -v s="$fsync" 'BEGIN {printf "%.0f", 2000 / s}')
seq_mb=$(dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/ {printf "%.0f", $(NF-3) == 0 ? 0 : 1073.741824 / $(NF-3)}')
rm -f "$work/dd"

"$silt" serve --data-dir "$work/data" --listen 127.0.0.1:0 --durability local > "$work/out" 2> "$work/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^silt: listening on //p' "$work/out")
[[ -n "$addr" ]] || { echo "broker did not start" >&2; cat "$work/broker.log" >&2; exit 1; }

"$silt" topic create bench --partitions 8 --bootstrap-server "$addr" >&2
"$silt" topic create latency --partitions 8 --bootstrap-server "$addr" >&2

produce=$("$loadgen" produce --bootstrap "$addr" --topic bench --messages "$messages" --size 1024 | tail -1)
consume=$("$loadgen" consume --bootstrap "$addr" --topic bench --messages "$messages" --partitions 8 | tail -1)
latency_messages=$(( 50 * 1000 * 1000 / 1024 * 10 ))
latency=$("$loadgen" produce --bootstrap "$addr" --topic latency --messages "$latency_messages" --size 1024 --rate-mb 50 --linger-ms 1 | tail -1)
groups=$("$group_bench" --bootstrap "$addr" --members 10 --partitions 100 | tail -1)
rss_mb=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$broker_pid/status")

field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"; }
echo
echo "| figure | value |"
echo "|---|---|"
echo "| machine: fdatasync'ed 4 KiB writes | ${fsyncs_per_s}/s |"
echo "| machine: sequential write + fdatasync | ${seq_mb} MB/s |"
echo "| produce, 1 KiB, 8 partitions, acks=all, idempotent | $(field "$produce" mb_per_s) MB/s (p99 $(field "$produce" p99_ms) ms) |"
echo "| catch-up consume | $(field "$consume" mb_per_s) MB/s |"
echo "| produce at 50 MB/s (linger.ms=1): p50 / p99 / p99.9 | $(field "$latency" p50_ms) / $(field "$latency" p99_ms) / $(field "$latency" p999_ms) ms |"
echo "| rebalance, 10 members over 100 partitions, after the last JoinGroup | $(field "$groups" rebalance_ms) ms |"
echo "| OffsetCommit round trip p50 / p99 | $(field "$groups" commit_p50_ms) / $(field "$groups" commit_p99_ms) ms |"
echo "| broker peak RSS (cache.memory_bytes = 256 MiB) | ${rss_mb} MB |"
