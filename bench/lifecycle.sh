#!/usr/bin/env bash
# The storage lifecycle's cost and benefit, each measured against the
# same broker with the lifecycle paused, in the same run (loadgen, 1 KiB
# incompressible messages, acks=all, idempotent producers):
#   7. local durability, 50 MB/s open loop for 30 s to 8 partitions:
#      produce p50 / p99 and achieved MB/s, with the lifecycle task running
#      every second and with it paused; with retention.ms=10000 (retention
#      and garbage collection at work, merging skips data that expires
#      within 10 minutes) and with 7 days (merging rewrites the 6 MB
#      extents each partition gets per upload into 12 MiB units);
#   8. object durability on SeaweedFS (started here unless
#      S3_BENCH_ENDPOINT names a server; LocalStack's Python server is the
#      bottleneck of a cold reader on this machine, whatever the objects):
#      MESSAGES produced to 8 partitions with merging paused, then cold
#      catch-ups (a broker on an empty data dir) of the unmerged objects;
#      merging until the partitions' extents stop shrinking, and the same
#      cold catch-ups of the merged objects: MB/s, GETs per GiB and the
#      broker's CPU seconds per GB, for one consumer of all partitions with
#      the default memory cache (256 MiB) and with 1 GiB (read-ahead takes
#      more sections per GET), and for eight consumers of one partition
#      each (a consumer group catching up); extents per GiB.
# Compaction's own rate is a criterion bench (cargo bench --bench hot_paths).
#
# usage: bench/lifecycle.sh [MESSAGES]   (default 1000000: 1 GiB)
messages="${1:-1000000}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

# lifecycle every|paused: the lifecycle settings of brokers started next.
lifecycle() {
  if [[ $1 == every ]]; then
    export SILT_STORAGE__LIFECYCLE_INTERVAL_MS=1000 SILT_STORAGE__GC_INTERVAL_MS=1000 SILT_STORAGE__GC_GRACE_MS=60000
  else
    export SILT_STORAGE__LIFECYCLE_INTERVAL_MS=86400000
    unset SILT_STORAGE__GC_INTERVAL_MS SILT_STORAGE__GC_GRACE_MS
  fi
}
metric() { curl -s "http://$admin/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# 7. The lifecycle's cost on the produce path. The first broker of a run
# on this machine pays for its first writes (p99 ten times the next ones):
# a warm-up run first, not reported.
lat_run() {
  start_broker --data-dir "$(mktemp -d "$work/local.XXXX")" --durability local
  "$silt" topic create lat --partitions 8 --config "retention.ms=$1" --bootstrap-server "$addr" >&2
  lat=$(run end-to-end --topic lat --messages $((50 * 1000 * 1000 / 1024 * $2)) --rate-mb 50 --linger-ms 1)
  stop_broker
}
lifecycle paused
lat_run 10000 30
# Each pair twice: a 30 s p99 on this machine swings by 2x from run to run.
for retention in 10000 604800000; do
  for round in 1 2; do
    for mode in paused every; do
      lifecycle "$mode"
      lat_run "$retention" 30
      label="lifecycle paused"
      [[ $mode == every ]] && label="lifecycle every second"
      row "7. local, 50 MB/s, retention.ms=$retention, $label (round $round): produce p50 / p99; achieved" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms) ms; $(field "$lat" mb_per_s) MB/s"
    done
  done
done

# 8. Cold catch-up from unmerged and merged objects.
start_s3 seaweedfs
prefix=$(basename "$work")
object_broker() {
  AWS_UNSIGNED_PAYLOAD=true start_broker --data-dir "$work/object" --meta "file://$work/meta" --durability object \
    --object-store "s3://silt-bench/$prefix" --create-bucket
}
lifecycle paused
object_broker
topic bench 8
produce=$(run produce --topic bench --messages "$messages" --idempotence false --client max.in.flight=1000)
row "8. object: produced, merging paused" "$(field "$produce" mb_per_s) MB/s ($(field "$produce" broker_puts_per_gib) PUTs/GiB)"
stop_broker
# cold_read OBJECTS: cold catch-ups by one consumer of every partition
# with both memory caches, and by eight consumers of a partition each.
cold_read() {
  for setup in "268435456 1" "1073741824 1" "268435456 8"; do
    read -r memory consumers <<< "$setup"
    rm -rf "$work/object"
    SILT_CACHE__MEMORY_BYTES=$memory object_broker
    local cpu_before
    cpu_before=$(cpu_s "$broker_pid")
    cold=$(run consume --topic bench --messages "$messages" --consumers "$consumers")
    local cpu
    cpu=$(awk -v a="$cpu_before" -v b="$(cpu_s "$broker_pid")" -v n="$(field "$cold" bytes)" 'BEGIN { printf "%.2f", (b - a) / (n / 1e9) }')
    row "8. cold catch-up, $1, $consumers consumer(s), $((memory >> 20)) MiB memory cache" "$(field "$cold" mb_per_s) MB/s ($(field "$cold" broker_gets_per_gib) GETs/GiB, broker $cpu CPU s/GB)"
    stop_broker
  done
}
cold_read "unmerged objects"
lifecycle every
object_broker
# Merging until a pass leaves the extents as they were, three times running.
last="" same=0
for _ in $(seq 600); do
  sleep 1 # a lifecycle pass
  extents=$(metric silt_partition_extents)
  if [[ -n "$extents" && "$extents" == "$last" ]]; then same=$((same + 1)); else same=0; fi
  last=$extents
  [[ $same -ge 3 ]] && break
done
gib=$(awk -v b="$(field "$produce" bytes)" 'BEGIN { print b / 1073741824 }')
row "8. extents after merging" "$last ($(awk -v e="$last" -v g="$gib" 'BEGIN { printf "%.0f", e / g }') per GiB; $(metric silt_merged_extents_total) extents merged)"
stop_broker
lifecycle paused
cold_read "merged objects"

print_table
