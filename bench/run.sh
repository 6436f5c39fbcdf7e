#!/usr/bin/env bash
# The standard benchmark scenarios, a real client (librdkafka through
# examples/loadgen) against release brokers started here, client and broker
# on this machine, 1 KiB incompressible messages, acks=all, idempotent
# producers. Prints one markdown table.
#   0. the machine's baselines in the same run: fdatasync'ed writes,
#      sequential write, 2 MiB writes each fdatasync'ed (what the WAL
#      does), loopback TCP, the S3 server's own PUT and GET rates;
#   1. local durability, 8 partitions: produce as fast as possible (the
#      median of BENCH_RUNS (3) runs, with the range), then a catch-up
#      consume; the same produce against Apache Kafka (bench/kafka.sh,
#      from Maven Central) with its defaults and with flush.messages=1;
#   2. local durability: 50 MB/s open loop, produce and end-to-end latency;
#   3. object durability on LocalStack (started here unless S3_BENCH_ENDPOINT
#      names a server): produce throughput (4 idempotent producers; one
#      producer with many requests in flight, median of BENCH_RUNS, with
#      the CPU seconds per GB of the client, the broker and the S3
#      server), then 5 and 50 MB/s open loop
#      for 10 s, idempotent and not;
#   4. cold catch-up of what 3 wrote, after a restart on an empty data dir;
#   5. 1,000 partitions at 5 MB/s in object durability (messages spread
#      over all of them): PUTs per second and per GiB; then PUTs per second
#      when idle;
#   6. consumer groups: a rebalance of 10 members over 100 partitions and
#      OffsetCommit round trips (examples/group_bench.rs).
# Everything listens on loopback and stops by itself.
#
# usage: bench/run.sh [MESSAGES]   (default 1000000 (1 GiB) in scenario 1,
#                                   twice that in scenario 3)
messages="${1:-1000000}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

# 0. Baselines.
fsync=$(dd if=/dev/zero of="$work/dd" bs=4k count=2000 oflag=dsync 2>&1 | awk '/copied/ {print $(NF-3)}')
row "baseline: fdatasync'ed 4 KiB writes" "$(awk -v s="$fsync" 'BEGIN {printf "%.0f/s", 2000 / s}')"
seq_mb=$(dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/ {printf "%.0f", 1073.741824 / $(NF-3)}')
row "baseline: sequential write + fdatasync" "$seq_mb MB/s"
# What the WAL does: each write made durable before the next (its group
# commits under load are a few MiB).
wal_mb=$(dd if=/dev/zero of="$work/dd" bs=2M count=512 oflag=dsync 2>&1 | awk '/copied/ {printf "%.0f", 1073.741824 / $(NF-3)}')
rm -f "$work/dd"
row "baseline: 2 MiB writes, each fdatasync'ed" "$wal_mb MB/s"
tcp=$("$loadgen" tcp-baseline --gib 2 | tail -1)
row "baseline: loopback TCP, one stream" "$(field "$tcp" mb_per_s) MB/s"

# 1, 2. Local durability.
start_broker --data-dir "$work/local" --durability local
topic bench 8
topic latency 8
produce=$(median "$runs" produce --topic bench --messages "$messages")
row "1. local: produce, 8 partitions" "$(throughput "$produce") (p99 $(field "$produce" p99_ms) ms; CPU s per GB: client $(field "$produce" client_cpu_s_per_gb), broker $(field "$produce" broker_cpu_s_per_gb))"
consume=$(run consume --topic bench --messages "$messages")
row "1. local: catch-up consume" "$(field "$consume" mb_per_s) MB/s"
e2e=$(run end-to-end --topic latency --messages $((50 * 1000 * 1000 / 1024 * 10)) --rate-mb 50 --linger-ms 1)
row "2. local, 50 MB/s: produce p50 / p99 / p99.9" "$(field "$e2e" p50_ms) / $(field "$e2e" p99_ms) / $(field "$e2e" p999_ms) ms"
row "2. local, 50 MB/s: end-to-end p50 / p99 / p99.9" "$(field "$e2e" e2e_p50_ms) / $(field "$e2e" e2e_p99_ms) / $(field "$e2e" e2e_p999_ms) ms"
groups=$("$group_bench" --bootstrap "$addr" --members 10 --partitions 100 | tail -1)
row "6. groups: rebalance of 10 members over 100 partitions" "$(field "$groups" rebalance_ms) ms"
row "6. groups: OffsetCommit p50 / p99" "$(field "$groups" commit_p50_ms) / $(field "$groups" commit_p99_ms) ms"
row "local: broker peak RSS (256 MiB memory cache)" "$(rss_mb) MB"
stop_broker

# 1k. The peer on the same machine with the same load: Apache Kafka
# (bench/kafka.sh) with its defaults (the page cache, no fsync) and with
# flush.messages=1 (every batch fsynced: Silt's `local` promise).
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' bench/kafka/pom.xml)
kafka_produce() { # LABEL [PROPERTY...]
  local label=$1; shift
  local pid silt_addr=$addr silt_admin=$admin
  pid=$(bench/kafka.sh 49192 "$work/kafka-${label// /-}" "$@")
  addr=127.0.0.1:49192 admin=""
  topic bench 8
  local cpu_before produce cpu
  cpu_before=$(cpu_s "$pid")
  produce=$(median "$runs" produce --topic bench --messages "$messages")
  cpu=$(awk -v a="$cpu_before" -v b="$(cpu_s "$pid")" -v n="$(field "$produce" bytes)" -v r="$runs" 'BEGIN { printf "%.2f", (b - a) / (r * n / 1e9) }')
  row "1k. Apache Kafka $kafka_version, $label: produce, 8 partitions" "$(throughput "$produce") (p99 $(field "$produce" p99_ms) ms; CPU s per GB: client $(field "$produce" client_cpu_s_per_gb), broker $cpu)"
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  addr=$silt_addr admin=$silt_admin
}
kafka_produce "defaults"
kafka_produce "flush.messages=1" flush.messages=1

# 3, 4, 5. Object durability on an S3 server.
start_s3
prefix=$(basename "$work")
# The server's own rate for 16 MiB PUTs (the size of a full upload), 4 at
# a time (unsigned requests, which local servers accept): the ceiling for
# produce in object durability.
curl -s -X PUT "$S3_BENCH_ENDPOINT/silt-bench" -o /dev/null
head -c $((16 * 1024 * 1024)) /dev/urandom > "$work/put"
put_start=$(date +%s.%N)
seq 32 | xargs -P 4 -I{} curl -s -o /dev/null -X PUT --data-binary @"$work/put" "$S3_BENCH_ENDPOINT/silt-bench/$prefix-baseline/{}"
row "baseline: the S3 server's 16 MiB PUTs, 4 at a time" "$(awk -v s="$put_start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f MB/s", 32 * 16.777216 / (e - s) }')"
rm -f "$work/put"
prefix=$(basename "$work")
# Objects are sent with UNSIGNED-PAYLOAD, as the broker does over HTTPS
# (AWS S3): the local server speaks plain HTTP, where it would otherwise
# hash every payload into the signature.
object_broker() {
  AWS_UNSIGNED_PAYLOAD=true start_broker --data-dir "$work/object" --meta "file://$work/meta" --durability object \
    --object-store "s3://silt-bench/$prefix" --create-bucket
}
object_broker
topic bench 8
topic lat5 8
topic lat50 8
topic wide 1000
# librdkafka sends one partition per produce request and an idempotent
# producer keeps at most 5 in flight, so its rate is bounded by 5 requests
# per acknowledgement round trip; a non-idempotent one may keep many.
many_in_flight=(--idempotence false --client max.in.flight=1000)
object_messages=$((2 * messages))
produce=$(run produce --topic bench --messages "$messages" --producers 4)
row "3. object: produce, 8 partitions, 4 idempotent producers" "$(field "$produce" mb_per_s) MB/s ($(field "$produce" broker_puts_per_gib) PUTs/GiB)"
server_before=${s3_pid:+$(cpu_s "$s3_pid")}
produce=$(median "$runs" produce --topic bench --messages "$messages" "${many_in_flight[@]}")
# What a GB costs each of the three processes sharing the cores: the
# ceiling for this row is 2 cores / (their sum) GB/s.
server=""
if [[ -n "$s3_pid" ]]; then
  server=", S3 server $(awk -v a="$server_before" -v b="$(cpu_s "$s3_pid")" -v n="$(field "$produce" bytes)" -v r="$runs" 'BEGIN { printf "%.2f", (b - a) / (r * n / 1e9) }')"
fi
row "3. object: produce, 8 partitions, not idempotent, 1000 in flight" "$(throughput "$produce") ($(field "$produce" broker_puts_per_gib) PUTs/GiB; CPU s per GB: client $(field "$produce" client_cpu_s_per_gb), broker $(field "$produce" broker_cpu_s_per_gb)$server)"
for rate in 5 50; do
  for client in idempotent many; do
    if [[ $client == many ]]; then extra=("${many_in_flight[@]}"); label="not idempotent, 1000 in flight"; else extra=(); label="idempotent"; fi
    lat=$(run end-to-end --topic "lat$rate" --messages $((rate * 1000 * 1000 / 1024 * 10)) --rate-mb "$rate" --linger-ms 1 "${extra[@]}")
    row "3. object, $rate MB/s, $label: produce p50 / p99; end-to-end p99" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms); $(field "$lat" e2e_p99_ms) ms (achieved $(field "$lat" mb_per_s) MB/s; PUT p99 $(field "$lat" broker_put_p99_ms) ms)"
  done
done
wide=$(run produce --topic wide --messages 50000 --rate-mb 5 --client sticky.partitioning.linger.ms=0 "${many_in_flight[@]}")
row "5. 1,000 partitions at 5 MB/s: PUTs per second / per GiB" "$(awk -v p="$(field "$wide" broker_puts)" -v s="$(field "$wide" seconds)" 'BEGIN {printf "%.1f", p / s}') / $(field "$wide" broker_puts_per_gib)"
idle_before=$(puts); idle_start=$(date +%s.%N)
sleep 10 # the idle period being measured
row "5. idle: PUTs per second" "$(awk -v a="$idle_before" -v b="$(puts)" -v s="$idle_start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", (b - a) / (e - s)}')"
object_rss=$(rss_mb)
stop_broker

# The server's own rate for whole-object GETs, 8 at a time, of every data
# object under the prefix: the baseline for the cold read (unsigned
# requests, which local servers accept).
keys=$(curl -s "$S3_BENCH_ENDPOINT/silt-bench?list-type=2&prefix=$prefix/data/&max-keys=1000" |
  grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/')
get_start=$(date +%s.%N)
get_bytes=$(echo "$keys" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{size_download}\n' "$S3_BENCH_ENDPOINT/silt-bench/{}" |
  awk '{ s += $1 } END { print s }')
row "baseline: the S3 server's whole-object GETs, 8 at a time" "$(awk -v b="$get_bytes" -v s="$get_start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f MB/s", b / (e - s) / 1e6 }')"
rm -rf "$work/object"
object_broker
cold=$(run consume --topic bench --messages "$object_messages")
row "4. cold catch-up from the bucket (empty cache and data dir)" "$(field "$cold" mb_per_s) MB/s ($(field "$cold" broker_gets_per_gib) GETs/GiB)"
row "object: broker peak RSS (256 MiB memory cache)" "$object_rss MB"

print_table
