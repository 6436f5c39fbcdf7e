#!/usr/bin/env bash
# What transactions cost, against the same broker without them, in the
# same run (loadgen: librdkafka, 1 KiB incompressible messages, acks=all,
# 8 partitions; transactional producers commit every 100 ms):
#   T1. local durability, as fast as possible: MESSAGES from one
#       idempotent producer, then from one transactional producer (the
#       median of BENCH_RUNS (3) runs each, with the range);
#   T2. local durability, 50 MB/s open loop for 10 s: produce p99, and the
#       commit's round trip: EndTxn at the broker (markers written and
#       durable, the decision stored) p50 / p99, and the client's whole
#       commit_transaction call (its last batches flushed, then EndTxn;
#       rust-rdkafka's flush polls in steps of 100 ms, which shows here);
#   T3. catch-up consume of T1's transactional data, read_uncommitted and
#       read_committed (every transaction commits, so both read the same
#       records; read_committed reads up to the last stable offset and is
#       given the aborted transactions' list);
#   T4. object durability on LocalStack (started here unless
#       S3_BENCH_ENDPOINT names a server), flush.interval_ms 50: T2's
#       transactional run.
#
# usage: bench/transactions.sh [MESSAGES]   (default 1000000: 1 GiB)
messages="${1:-1000000}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

txn=(--transaction-ms 100)
open_loop=(--messages $((50 * 1000 * 1000 / 1024 * 10)) --rate-mb 50 --linger-ms 1)

start_broker --data-dir "$work/local" --durability local
topic plain 8
topic txn 8
topic plain50 8
topic txn50 8
plain=$(median "$runs" produce --topic plain --messages "$messages")
row "T1. local: idempotent producer" "$(throughput "$plain")"
transactional=$(median "$runs" produce --topic txn --messages "$messages" "${txn[@]}")
row "T1. local: transactional producer, commit every 100 ms" "$(throughput "$transactional") = $(awk -v a="$(field "$transactional" mb_per_s)" -v b="$(field "$plain" mb_per_s)" 'BEGIN { printf "%.2f", a / b }')x the idempotent one"
lat=$(run produce --topic plain50 "${open_loop[@]}")
row "T2. local, 50 MB/s, idempotent: produce p50 / p99" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms) ms (achieved $(field "$lat" mb_per_s) MB/s)"
lat=$(run produce --topic txn50 "${open_loop[@]}" "${txn[@]}")
row "T2. local, 50 MB/s, transactional: produce p50 / p99; EndTxn p50 / p99; commit_transaction p50 / p99" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms); $(field "$lat" broker_end_txn_p50_ms) / $(field "$lat" broker_end_txn_p99_ms); $(field "$lat" commit_p50_ms) / $(field "$lat" commit_p99_ms) ms (achieved $(field "$lat" mb_per_s) MB/s)"
uncommitted=$(median "$runs" consume --topic txn --messages "$messages")
committed=$(median "$runs" consume --topic txn --messages "$messages" --isolation read_committed)
row "T3. local: catch-up consume, read_uncommitted" "$(throughput "$uncommitted")"
row "T3. local: catch-up consume, read_committed" "$(throughput "$committed") = $(awk -v a="$(field "$committed" mb_per_s)" -v b="$(field "$uncommitted" mb_per_s)" 'BEGIN { printf "%.2f", a / b }')x read_uncommitted"
stop_broker

start_s3
AWS_UNSIGNED_PAYLOAD=true start_broker --data-dir "$work/object" --meta "file://$work/meta" --durability object \
  --object-store "s3://silt-bench/$(basename "$work")" --create-bucket
topic txn50 8
lat=$(run produce --topic txn50 "${open_loop[@]}" "${txn[@]}")
row "T4. object (flush.interval_ms 50), 50 MB/s, transactional: produce p99; EndTxn p50 / p99; commit_transaction p50 / p99" "$(field "$lat" p99_ms); $(field "$lat" broker_end_txn_p50_ms) / $(field "$lat" broker_end_txn_p99_ms); $(field "$lat" commit_p50_ms) / $(field "$lat" commit_p99_ms) ms (achieved $(field "$lat" mb_per_s) MB/s)"
stop_broker
print_table
