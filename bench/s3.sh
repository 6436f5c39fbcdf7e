#!/usr/bin/env bash
# The object-durability benchmark against a local S3 server (LocalStack,
# started here unless S3_BENCH_ENDPOINT names one), client and broker on this
# machine: produce throughput (1 KiB, 8 partitions, acks=all), latency at a
# fixed 5 and 50 MB/s, PUTs per GiB, and a cold catch-up read from the
# bucket after a restart on an empty data dir. Prints a markdown table.
#
# usage: bench/s3.sh [MESSAGES]        (default 500000)
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-500000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/silt-target}"
cargo build --release -j2 --bin silt --example loadgen >&2
silt="$CARGO_TARGET_DIR/release/silt"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"

localstack_pid=""
if [[ -z "${S3_BENCH_ENDPOINT:-}" ]]; then
  export LOCALSTACK_PORT=45670
  localstack_pid=$(localstack/start.sh silt-bench)
  S3_BENCH_ENDPOINT="http://127.0.0.1:$LOCALSTACK_PORT"
fi
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ENDPOINT_URL="$S3_BENCH_ENDPOINT"

work=$(mktemp -d /var/tmp/silt-s3-bench.XXXXXX)
url="s3://silt-bench/$(basename "$work")"
broker_pid=""
stop_broker() {
  if [[ -n "$broker_pid" ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  broker_pid=""
}
cleanup() {
  stop_broker
  [[ -n "$localstack_pid" ]] && kill "$localstack_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_broker() {
  "$silt" serve --data-dir "$work/data" --meta "file://$work/meta" --listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --durability object --object-store "$url" > "$work/out" 2>> "$work/broker.log" &
  broker_pid=$!
  for _ in $(seq 200); do grep -q "^silt: listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  addr=$(sed -n 's/^silt: listening on //p' "$work/out")
  admin=$(sed -n 's/^silt: admin listening on //p' "$work/out")
  [[ -n "$addr" ]] || { echo "broker did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
}
puts() { curl -s "http://$admin/metrics" | awk '/^silt_object_store_requests_total\{kind="put",outcome="ok"\}/ {print $2}'; }
# PUT latency histogram: "le count" lines.
put_histogram() {
  curl -s "http://$admin/metrics" | awk -F'[{}" =]+' '/^silt_object_store_request_seconds_bucket\{kind="put"/ { print $5, $NF }'
}
# The PUT p99 (ms) between two histogram snapshots, interpolated inside its
# bucket as Prometheus' histogram_quantile does.
put_p99_between() {
  paste -d' ' <(echo "$1") <(echo "$2") | awk '
    { le[NR] = $1; c[NR] = $4 - $2 } END {
      total = c[NR]; prev_le = 0; prev_c = 0
      for (i = 1; i <= NR; i++) {
        if (c[i] >= 0.99 * total) {
          if (le[i] == "+Inf") { printf "%.0f", prev_le * 1000; exit }
          printf "%.0f", (prev_le + (le[i] - prev_le) * (0.99 * total - prev_c) / (c[i] - prev_c)) * 1000; exit
        }
        prev_le = le[i]; prev_c = c[i]
      }
    }'
}
# The server's own rate for whole-object GETs, 8 at a time, of every data
# object under the bench prefix: the baseline for the catch-up read
# (unsigned requests, which local servers such as LocalStack accept).
server_get_mb_per_s() {
  local keys
  keys=$(curl -s "$S3_BENCH_ENDPOINT/silt-bench?list-type=2&prefix=$(basename "$work")/data/&max-keys=1000" |
    grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/')
  local start end bytes
  start=$(date +%s.%N)
  bytes=$(echo "$keys" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{size_download}\n' "$S3_BENCH_ENDPOINT/silt-bench/{}" |
    awk '{ s += $1 } END { print s }')
  end=$(date +%s.%N)
  awk -v b="$bytes" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", b / (e - s) / 1e6 }'
}
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"; }

start_broker
for topic in bench lat5 lat50; do "$silt" topic create "$topic" --partitions 8 --bootstrap-server "$addr" >&2; done
per_gib() { awk -v p="$1" -v n="$messages" 'BEGIN {printf "%.0f", p / (n * 1024 / 1073741824)}'; }
before=$(puts)
produce=$("$loadgen" produce --bootstrap "$addr" --topic bench --messages "$messages" --size 1024 | tail -1)
middle=$(puts)
fast=$("$loadgen" produce --bootstrap "$addr" --topic bench --messages "$messages" --size 1024 --idempotence false | tail -1)
after=$(puts)
puts_per_gib=$(per_gib $((middle - before)))
fast_puts_per_gib=$(per_gib $((after - middle)))
lat5=$("$loadgen" produce --bootstrap "$addr" --topic lat5 --messages 50000 --size 1024 --rate-mb 5 --idempotence false | tail -1)
histogram_before=$(put_histogram)
lat50=$("$loadgen" produce --bootstrap "$addr" --topic lat50 --messages 400000 --size 1024 --rate-mb 50 --idempotence false | tail -1)
put_p99=$(put_p99_between "$histogram_before" "$(put_histogram)")
interval_ms=250 # flush.interval in object durability
stop_broker
server_get=$(server_get_mb_per_s)
rm -rf "$work/data"
start_broker
cold=$("$loadgen" consume --bootstrap "$addr" --topic bench --messages $((2 * messages)) --partitions 8 | tail -1)
cold_gets=$(curl -s "http://$admin/metrics" | awk '/^silt_object_store_requests_total\{kind="get(_ranges)?",outcome="ok"\}/ { s += $2 } END { print s + 0 }')

echo
echo "| figure (object durability, $S3_BENCH_ENDPOINT) | value |"
echo "|---|---|"
echo "| produce, idempotent (5 requests in flight) | $(field "$produce" mb_per_s) MB/s |"
echo "| produce, not idempotent (many in flight) | $(field "$fast" mb_per_s) MB/s |"
echo "| PUTs per GiB: idempotent run / not idempotent run | $puts_per_gib / $fast_puts_per_gib |"
echo "| produce at 5 MB/s: p50 / p99 | $(field "$lat5" p50_ms) / $(field "$lat5" p99_ms) ms |"
echo "| produce at 50 MB/s: p50 / p99 (achieved $(field "$lat50" mb_per_s) MB/s) | $(field "$lat50" p50_ms) / $(field "$lat50" p99_ms) ms |"
echo "| PUT p99 during the 50 MB/s run; flush interval + PUT p99 + 20 ms | ${put_p99} ms; $((interval_ms + put_p99 + 20)) ms |"
echo "| baseline: the server's whole-object GETs, 8 at a time | $server_get MB/s |"
echo "| cold catch-up from the bucket, empty cache and data dir | $(field "$cold" mb_per_s) MB/s |"
echo "| GET requests per GiB in the catch-up | $(awk -v g="$cold_gets" -v n="$messages" 'BEGIN {printf "%.0f", g / (2 * n * 1024 / 1073741824)}') |"
