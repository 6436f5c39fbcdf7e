#!/usr/bin/env bash
# Silt and Apache Kafka side by side in one run, driven by two clients:
# Kafka's own load generators on the Java client (kafka-producer-perf-test
# and kafka-consumer-perf-test, kafka-tools from Maven Central) and
# librdkafka (examples/loadgen). 1 KiB records, 8 partitions, acks=all,
# each client's producer otherwise at its defaults (both idempotent).
#   J1. produce as fast as possible: the median of BENCH_RUNS (3) runs,
#       with the range, and the client's and the broker's CPU seconds per
#       GB;
#   J2. produce at 50 MB/s for 10 s: p50 / p99;
#   J3. consume 1 GiB of what J1 wrote, from the start.
# Silt in `local` durability (every batch fdatasync'ed before it is
# acknowledged); Kafka 4.1 single node (bench/kafka.sh) with its defaults
# (the page cache, no fsync). MB is 10^6 bytes (the Java tools' MiB
# figures are converted).
#
# usage: bench/java.sh [MESSAGES]   (default 1000000: 1 GiB per run)
messages="${1:-1000000}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

kafka_lib=$(bench/kafka.sh lib)
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' bench/kafka/pom.xml)
rate_records=$((50 * 1000 * 1000 / 1024)) # 50 MB/s of 1 KiB records
# tool CLASS ARGS...: one of Kafka's tools; its stdout, with the CPU
# seconds it used as a last line `cpu_s N`.
tool() {
  local class=$1; shift
  /usr/bin/time -f "cpu_s %U %S" -o "$work/time" \
    java -Xmx1g -Dlog4j2.configurationFile="$PWD/bench/kafka/log4j2.yaml" -cp "$kafka_lib/*" "$class" "$@"
  awk '{ print $1, $2 + $3 }' "$work/time"
}
# java_produce ARGS...: kafka-producer-perf-test against $addr; a JSON line
# like loadgen's (mb_per_s, p50_ms, p99_ms, bytes, client_cpu_s_per_gb).
java_produce() {
  tool org.apache.kafka.tools.ProducerPerformance --record-size 1024 \
    --producer-props "bootstrap.servers=$addr" acks=all "$@" | awk '
    / records sent, / { line = $0 }
    /^cpu_s / { cpu = $2 }
    END {
      n = split(line, parts, ", ")
      for (i = 1; i <= n; i++) {
        split(parts[i], f, " ")
        if (parts[i] ~ / records sent$/) bytes = f[1] * 1024
        if (parts[i] ~ /MB\/sec\)$/) { mb = f[3]; sub(/^\(/, "", mb) }
        if (parts[i] ~ / ms 50th$/) p50 = f[1]
        if (parts[i] ~ / ms 99th$/) p99 = f[1]
      }
      printf "{\"mb_per_s\":%.1f,\"p50_ms\":%s,\"p99_ms\":%s,\"bytes\":%d,\"client_cpu_s_per_gb\":%.2f}\n",
        mb * 1.048576, p50, p99, bytes, cpu / (bytes / 1e9)
    }'
}
# java_consume TOPIC: kafka-consumer-perf-test reading $messages records.
java_consume() {
  tool org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$addr" --topic "$1" \
    --messages "$messages" --timeout 60000 | awk -F', ' '
    /^[0-9][0-9][0-9][0-9]-/ { mb = $4 }
    END { printf "{\"mb_per_s\":%.1f}\n", mb * 1.048576 }'
}
per_gb() { awk -v a="$1" -v b="$2" -v n="$3" -v r="$runs" 'BEGIN { printf "%.2f", (b - a) / (r * n / 1e9) }'; }

# measure NAME PID: both clients' three scenarios against the broker at
# $addr (process PID), one row each.
measure() {
  local name=$1 pid=$2 before produce lat consume
  for t in java java50 rdkafka rdkafka50; do topic "$t" 8; done

  before=$(cpu_s "$pid")
  produce=$(median_of "$runs" java_produce --topic java --num-records "$messages" --throughput -1)
  row "J1. $name, Java: produce" "$(throughput "$produce") (p99 $(field "$produce" p99_ms) ms; CPU s per GB: client $(field "$produce" client_cpu_s_per_gb), broker $(per_gb "$before" "$(cpu_s "$pid")" "$(field "$produce" bytes)"))"
  lat=$(java_produce --topic java50 --num-records $((rate_records * 10)) --throughput "$rate_records")
  row "J2. $name, Java, 50 MB/s: produce p50 / p99" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms) ms (achieved $(field "$lat" mb_per_s) MB/s)"
  consume=$(java_consume java)
  row "J3. $name, Java: consume" "$(field "$consume" mb_per_s) MB/s"

  before=$(cpu_s "$pid")
  produce=$(median "$runs" produce --topic rdkafka --messages "$messages")
  row "J1. $name, librdkafka: produce" "$(throughput "$produce") (p99 $(field "$produce" p99_ms) ms; CPU s per GB: client $(field "$produce" client_cpu_s_per_gb), broker $(per_gb "$before" "$(cpu_s "$pid")" "$(field "$produce" bytes)"))"
  lat=$(run produce --topic rdkafka50 --messages $((rate_records * 10)) --rate-mb 50 --linger-ms 1)
  row "J2. $name, librdkafka, 50 MB/s: produce p50 / p99" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms) ms (achieved $(field "$lat" mb_per_s) MB/s)"
  consume=$(run consume --topic rdkafka --messages "$messages")
  row "J3. $name, librdkafka: consume" "$(field "$consume" mb_per_s) MB/s"
}

start_broker --data-dir "$work/local" --durability local
measure "Silt local" "$broker_pid"
stop_broker

kafka_pid=$(bench/kafka.sh 49192 "$work/kafka")
trap 'kill "$kafka_pid" 2>/dev/null || true; cleanup' EXIT
addr=127.0.0.1:49192 admin=""
measure "Apache Kafka $kafka_version, defaults" "$kafka_pid"
kill "$kafka_pid"
while kill -0 "$kafka_pid" 2>/dev/null; do sleep 0.2; done

print_table
