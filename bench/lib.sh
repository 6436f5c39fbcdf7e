# Shared by the benchmark scripts (source it): release binaries built
# here, a work directory removed on exit with every process started here,
# brokers on fresh loopback ports, loadgen runs and the result table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/silt-target}"
cargo build --release -j2 --bin silt --example loadgen --example group_bench >&2
silt="$CARGO_TARGET_DIR/release/silt"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"
group_bench="$CARGO_TARGET_DIR/release/examples/group_bench"

work=$(mktemp -d /var/tmp/silt-bench.XXXXXX)
broker_pid="" s3_pid="" # s3_pid: the S3 server started here, if any
stop_broker() {
  if [[ -n "$broker_pid" ]]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  broker_pid=""
}
cleanup() {
  stop_broker
  if [[ -n "$s3_pid" ]]; then
    # SeaweedFS may not stop on SIGTERM: a few seconds, then SIGKILL.
    kill "$s3_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$s3_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$s3_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_broker ARGS...: a release broker on a fresh port; sets addr, admin.
start_broker() {
  "$silt" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "$@" > "$work/out" 2>> "$work/broker.log" &
  broker_pid=$!
  for _ in $(seq 300); do grep -q "^silt: listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  addr=$(sed -n 's/^silt: listening on //p' "$work/out")
  admin=$(sed -n 's/^silt: admin listening on //p' "$work/out")
  [[ -n "$addr" ]] || { echo "broker did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
}
topic() { "$silt" topic create "$1" --partitions "$2" --bootstrap-server "$addr" >&2; }
# run KIND ARGS...: one loadgen run against the current broker; its JSON line.
# (Without an admin address, as for Apache Kafka, no broker figures.)
run() { local kind=$1; shift; "$loadgen" "$kind" --bootstrap "$addr" ${admin:+--admin "$admin"} "$@" | tail -1; }
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<< "$1"; }
# median N KIND ARGS...: N loadgen runs (this machine's throughput varies
# from run to run); the median run's JSON line, with the slowest and
# fastest MB/s added as mb_per_s_min and mb_per_s_max.
median() { local n=$1; shift; median_of "$n" run "$@"; }
# median_of N COMMAND ARGS...: the same for any COMMAND printing a JSON
# line with mb_per_s.
median_of() {
  local n=$1 command=$2; shift 2
  for _ in $(seq "$n"); do "$command" "$@"; done |
    awk '{ match($0, /"mb_per_s":[0-9.]+/); print substr($0, RSTART + 11, RLENGTH - 11) "\t" $0 }' |
    sort -n > "$work/runs"
  sed -n "$(((n + 1) / 2))p" "$work/runs" | cut -f2- |
    sed "s/}\$/,\"mb_per_s_min\":$(head -1 "$work/runs" | cut -f1),\"mb_per_s_max\":$(tail -1 "$work/runs" | cut -f1)}/"
}
throughput() { echo "$(field "$1" mb_per_s) MB/s (median of $runs, $(field "$1" mb_per_s_min)-$(field "$1" mb_per_s_max))"; }
runs="${BENCH_RUNS:-3}"
puts() { curl -s "http://$admin/metrics" | awk '/^silt_object_store_requests_total\{kind="put"/ { s += $2 } END { print s + 0 }'; }
rss_mb() { curl -s "http://$admin/metrics" | awk '/^process_resident_memory_peak_bytes/ { printf "%.0f", $2 / 1e6 }'; }
# cpu_s PID: the CPU seconds a process has used so far.
cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
row() { echo "| $1 | $2 |" >> "$work/table"; }

# start_s3 [localstack|seaweedfs]: that S3 server (default LocalStack;
# none if S3_BENCH_ENDPOINT names one) and the AWS_* environment brokers
# use to reach it.
start_s3() {
  if [[ -z "${S3_BENCH_ENDPOINT:-}" && "${1:-localstack}" == seaweedfs ]]; then
    s3_pid=$(bench/seaweedfs.sh 45671 "$work/seaweedfs")
    S3_BENCH_ENDPOINT="http://127.0.0.1:45671"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testtest
  elif [[ -z "${S3_BENCH_ENDPOINT:-}" ]]; then
    export LOCALSTACK_PORT=45670
    s3_pid=$(localstack/start.sh silt-bench)
    S3_BENCH_ENDPOINT="http://127.0.0.1:$LOCALSTACK_PORT"
  fi
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ENDPOINT_URL="$S3_BENCH_ENDPOINT"
}
# print_table: the rows so far, as one markdown table.
print_table() {
  echo
  echo "| figure | value |"
  echo "|---|---|"
  cat "$work/table"
}
