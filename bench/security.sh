#!/usr/bin/env bash
# What TLS costs, against the same broker's plaintext listener in the same
# run (loadgen: librdkafka, 1 KiB incompressible messages, acks=all,
# idempotent, 8 partitions, local durability; a CA and certificate made
# here with openssl):
#   S1. produce as fast as possible over PLAINTEXT and over SSL (the
#       median of BENCH_RUNS (3) runs each, with the range, and the broker's
#       CPU seconds per GB);
#   S2. 50 MB/s open loop for 10 s over each: produce p50 / p99.
#
# usage: bench/tls.sh [MESSAGES]   (default 1000000: 1 GiB)
messages="${1:-1000000}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

pki="$work/pki"
mkdir -p "$pki"
(
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=bench-ca 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
  echo "subjectAltName=DNS:localhost,IP:127.0.0.1" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile server.ext 2>/dev/null
)
ssl_port=49193
cat > "$work/silt.toml" <<TOML
[[listeners]]
name = "PLAIN"
listen = "127.0.0.1:0"

[[listeners]]
name = "SECURE"
listen = "127.0.0.1:$ssl_port"
advertised = "localhost:$ssl_port"
protocol = "SSL"
tls_cert = "$pki/server.pem"
tls_key = "$pki/server.key"
TOML
start_broker --data-dir "$work/local" --durability local --config "$work/silt.toml"
topic plain 8
topic secure 8
topic plain50 8
topic secure50 8
plain_addr=$addr
tls=(--client security.protocol=ssl --client "ssl.ca.location=$pki/ca.pem")
open_loop=(--messages $((50 * 1000 * 1000 / 1024 * 10)) --rate-mb 50 --linger-ms 1)

plain=$(median "$runs" produce --topic plain --messages "$messages")
row "S1. produce over PLAINTEXT" "$(throughput "$plain") (broker CPU s per GB $(field "$plain" broker_cpu_s_per_gb))"
addr="localhost:$ssl_port"
secure=$(median "$runs" produce --topic secure --messages "$messages" "${tls[@]}")
row "S1. produce over SSL" "$(throughput "$secure") = $(awk -v a="$(field "$secure" mb_per_s)" -v b="$(field "$plain" mb_per_s)" 'BEGIN { printf "%.2f", a / b }')x plaintext (broker CPU s per GB $(field "$secure" broker_cpu_s_per_gb))"
lat=$(run produce --topic secure50 "${open_loop[@]}" "${tls[@]}")
addr=$plain_addr
base=$(run produce --topic plain50 "${open_loop[@]}")
row "S2. 50 MB/s over PLAINTEXT: produce p50 / p99" "$(field "$base" p50_ms) / $(field "$base" p99_ms) ms"
row "S2. 50 MB/s over SSL: produce p50 / p99" "$(field "$lat" p50_ms) / $(field "$lat" p99_ms) ms = $(awk -v a="$(field "$lat" p99_ms)" -v b="$(field "$base" p99_ms)" 'BEGIN { printf "%.2f", a / b }')x plaintext p99"
stop_broker
print_table
