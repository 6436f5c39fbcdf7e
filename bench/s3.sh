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
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"; }

start_broker
for topic in bench lat5 lat50; do "$silt" topic create "$topic" --partitions 8 --bootstrap-server "$addr" >&2; done
before=$(puts)
produce=$("$loadgen" produce --bootstrap "$addr" --topic bench --messages "$messages" --size 1024 | tail -1)
after=$(puts)
puts_per_gib=$(awk -v p=$((after - before)) -v n="$messages" 'BEGIN {printf "%.0f", p / (n * 1024 / 1073741824)}')
fast=$("$loadgen" produce --bootstrap "$addr" --topic bench --messages "$messages" --size 1024 --idempotence false | tail -1)
lat5=$("$loadgen" produce --bootstrap "$addr" --topic lat5 --messages 50000 --size 1024 --rate-mb 5 --idempotence false | tail -1)
lat50=$("$loadgen" produce --bootstrap "$addr" --topic lat50 --messages 400000 --size 1024 --rate-mb 50 --idempotence false | tail -1)
put_p99=$(curl -s "http://$admin/metrics" | awk -F'[{}" =]+' '
  /^silt_object_store_request_seconds_bucket\{kind="put"/ { le[++n] = $5; c[n] = $NF }
  /^silt_object_store_request_seconds_count\{kind="put"/ { total = $NF }
  END { for (i = 1; i <= n; i++) if (c[i] >= 0.99 * total) { printf "%.0f", le[i] * 1000; exit } }')
stop_broker
rm -rf "$work/data"
start_broker
cold=$("$loadgen" consume --bootstrap "$addr" --topic bench --messages $((2 * messages)) --partitions 8 | tail -1)

echo
echo "| figure (object durability, $S3_BENCH_ENDPOINT) | value |"
echo "|---|---|"
echo "| produce, idempotent (5 requests in flight) | $(field "$produce" mb_per_s) MB/s |"
echo "| produce, not idempotent (many in flight) | $(field "$fast" mb_per_s) MB/s |"
echo "| PUTs per GiB (idempotent run) | $puts_per_gib |"
echo "| produce at 5 MB/s: p50 / p99 | $(field "$lat5" p50_ms) / $(field "$lat5" p99_ms) ms |"
echo "| produce at 50 MB/s: p50 / p99 (achieved $(field "$lat50" mb_per_s) MB/s) | $(field "$lat50" p50_ms) / $(field "$lat50" p99_ms) ms |"
echo "| PUT p99 (bucket upper bound) | ${put_p99} ms |"
echo "| cold catch-up from the bucket, empty cache | $(field "$cold" mb_per_s) MB/s |"
