#!/usr/bin/env bash
# What Parquet export costs and how fast it goes, on one `local`-durability
# broker (loadgen: librdkafka, 1 KiB incompressible messages, acks=all,
# idempotent, 8 partitions):
#   E1. catch-up: MESSAGES produced with export off, then turned on (`silt
#       topic alter`; export.max_delay_ms 1000, so that a partition holding
#       less than a file's worth does not wait 15 s): the time until every
#       record is exported (export MB/s) and the broker's CPU seconds per
#       GB over it;
#   E2. produce at 50 MB/s for 10 s into a topic without export and into
#       one with export (files written during the run: export.max_delay_ms
#       1000), alternated BENCH_RUNS (3) times: produce p99 of each;
#   E3. a steady 20 MB/s for 60 s into an exported topic (the defaults: a
#       file per partition every 15 s at this rate): the largest export lag
#       seen, sampled every second, in records and in seconds of produce.
#
# usage: bench/export.sh [MESSAGES]   (default 1000000: 1 GiB)
messages="${1:-1000000}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

metric() { # NAME LABELS: the sum of a metric's series matching LABELS
  curl -s "http://$admin/metrics" | awk -v name="$1" -v labels="$2" \
    'index($0, name) == 1 && index($0, labels) { s += $NF } END { printf "%.0f", s }'
}
alter() { "$silt" topic alter "$1" --config "$2" --bootstrap-server "$addr" >&2; }
export_on=silt.export.format=parquet

SILT_EXPORT__MAX_DELAY_MS=1000 start_broker --data-dir "$work/e1" --durability local
topic catchup 8
run produce --topic catchup --messages "$messages" > /dev/null
cpu_before=$(cpu_s "$broker_pid")
start=$(date +%s.%N)
alter catchup "$export_on"
deadline=$((SECONDS + 900))
while (( $(metric silt_export_rows_total 'topic="catchup"') < messages )); do
  (( SECONDS < deadline )) || { echo "export did not catch up within 900 s" >&2; exit 1; }
  sleep 0.2
done
seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
cpu=$(awk -v a="$cpu_before" -v b="$(cpu_s "$broker_pid")" -v n="$messages" 'BEGIN { printf "%.2f", (b - a) / (n * 1024 / 1e9) }')
row "E1. catch-up export of $messages records" "$(awk -v n="$messages" -v s="$seconds" 'BEGIN { printf "%.1f MB/s", n * 1024 / s / 1e6 }') ($seconds s; broker CPU s per GB: $cpu; $(metric silt_export_files_total 'topic="catchup"') files)"

stop_broker

# E3: the default export settings.
start_broker --data-dir "$work/e3" --durability local
topic steady 8
alter steady "$export_on"
steady_messages=$((20 * 1000 * 1000 / 1024 * 60))
run produce --topic steady --messages "$steady_messages" --rate-mb 20 > "$work/steady.json" &
producer=$!
max_lag=0
while kill -0 "$producer" 2>/dev/null; do
  lag=$(metric silt_export_lag_records 'topic="steady"')
  (( lag > max_lag )) && max_lag=$lag
  sleep 1
done
wait "$producer"
row "E3. 20 MB/s for 60 s, exported: largest export lag" "$max_lag records ($(awk -v l="$max_lag" 'BEGIN { printf "%.1f", l * 1024 / 20e6 }') s of produce)"
stop_broker

# E2: files written during the runs.
SILT_EXPORT__MAX_DELAY_MS=1000 start_broker --data-dir "$work/e2" --durability local
open_loop=(--messages $((50 * 1000 * 1000 / 1024 * 10)) --rate-mb 50 --linger-ms 1)
plain="" exported=""
for i in $(seq "$runs"); do
  topic "plain$i" 8
  topic "exported$i" 8
  alter "exported$i" "$export_on"
  plain+="$(field "$(run produce --topic "plain$i" "${open_loop[@]}")" p99_ms) "
  exported+="$(field "$(run produce --topic "exported$i" "${open_loop[@]}")" p99_ms) "
done
row "E2. 50 MB/s: produce p99 without export, runs" "$plain ms"
row "E2. 50 MB/s: produce p99 with export, runs" "$exported ms ($(metric silt_export_files_total 'topic="exported') files written)"
stop_broker
print_table
