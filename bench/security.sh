#!/usr/bin/env bash
# What security costs, against the same broker's plaintext listener in the
# same run (loadgen: librdkafka, 1 KiB incompressible messages, acks=all,
# idempotent, 8 partitions, local durability; a CA and certificate made
# here with openssl; SCRAM-SHA-512 for SASL):
#   S1. produce as fast as possible over PLAINTEXT, SSL and SASL_SSL (the
#       median of BENCH_RUNS (3) runs each, with the range, and the broker's
#       CPU seconds per GB);
#   S2. 50 MB/s open loop for 10 s over each: produce p50 / p99;
#   S3. the ACL authorizer with 1,000 ACLs (500 on the topic written, for
#       other users; 500 prefixed) against no authorizer: broker CPU
#       seconds per GB over SASL_PLAINTEXT, two brokers started alike.
#
# usage: bench/security.sh [MESSAGES]   (default 1000000: 1 GiB)
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
ssl_port=49193 sasl_ssl_port=49194 sasl_port=49195
user() { echo bench-secret | "$silt" user create bench --mechanism SCRAM-SHA-512 --password-stdin --bootstrap-server "$addr" >&2; }
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

[[listeners]]
name = "SASL"
listen = "127.0.0.1:$sasl_ssl_port"
advertised = "localhost:$sasl_ssl_port"
protocol = "SASL_SSL"
tls_cert = "$pki/server.pem"
tls_key = "$pki/server.key"
TOML
start_broker --data-dir "$work/local" --durability local --config "$work/silt.toml"
user
for t in plain secure sasl plain50 secure50 sasl50; do topic $t 8; done
plain_addr=$addr
tls=(--client security.protocol=ssl --client "ssl.ca.location=$pki/ca.pem")
scram=(--client sasl.mechanism=SCRAM-SHA-512 --client sasl.username=bench --client sasl.password=bench-secret)
sasl_ssl=(--client security.protocol=sasl_ssl --client "ssl.ca.location=$pki/ca.pem" "${scram[@]}")
open_loop=(--messages $((50 * 1000 * 1000 / 1024 * 10)) --rate-mb 50 --linger-ms 1)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

plain=$(median "$runs" produce --topic plain --messages "$messages")
row "S1. produce over PLAINTEXT" "$(throughput "$plain") (broker CPU s per GB $(field "$plain" broker_cpu_s_per_gb))"
addr="localhost:$ssl_port"
secure=$(median "$runs" produce --topic secure --messages "$messages" "${tls[@]}")
row "S1. produce over SSL" "$(throughput "$secure") = $(ratio "$(field "$secure" mb_per_s)" "$(field "$plain" mb_per_s)")x plaintext (broker CPU s per GB $(field "$secure" broker_cpu_s_per_gb))"
ssl50=$(run produce --topic secure50 "${open_loop[@]}" "${tls[@]}")
addr="localhost:$sasl_ssl_port"
sasl=$(median "$runs" produce --topic sasl --messages "$messages" "${sasl_ssl[@]}")
row "S1. produce over SASL_SSL (SCRAM-SHA-512)" "$(throughput "$sasl") = $(ratio "$(field "$sasl" mb_per_s)" "$(field "$plain" mb_per_s)")x plaintext (broker CPU s per GB $(field "$sasl" broker_cpu_s_per_gb))"
sasl50=$(run produce --topic sasl50 "${open_loop[@]}" "${sasl_ssl[@]}")
addr=$plain_addr
base=$(run produce --topic plain50 "${open_loop[@]}")
row "S2. 50 MB/s over PLAINTEXT: produce p50 / p99" "$(field "$base" p50_ms) / $(field "$base" p99_ms) ms"
row "S2. 50 MB/s over SSL: produce p50 / p99" "$(field "$ssl50" p50_ms) / $(field "$ssl50" p99_ms) ms = $(ratio "$(field "$ssl50" p99_ms)" "$(field "$base" p99_ms)")x plaintext p99"
row "S2. 50 MB/s over SASL_SSL: produce p50 / p99" "$(field "$sasl50" p50_ms) / $(field "$sasl50" p99_ms) ms = $(ratio "$(field "$sasl50" p99_ms)" "$(field "$base" p99_ms)")x plaintext p99"
stop_broker

# S3: the same load as user bench over SASL_PLAINTEXT, without and with
# the ACL authorizer.
acl_broker() { # acl_broker DIR AUTHORIZER
  cat > "$work/$1.toml" <<TOML
[security]
authorizer = "$2"
super_users = ["User:ANONYMOUS"]

[[listeners]]
name = "INTERNAL"
listen = "127.0.0.1:0"

[[listeners]]
name = "USERS"
listen = "127.0.0.1:$sasl_port"
protocol = "SASL_PLAINTEXT"
TOML
  start_broker --data-dir "$work/$1" --durability local --config "$work/$1.toml"
  user
  topic acl 8
}
sasl_plain=(--client security.protocol=sasl_plaintext "${scram[@]}")
acl_broker none none
addr="127.0.0.1:$sasl_port"
without=$(median "$runs" produce --topic acl --messages "$messages" "${sasl_plain[@]}")
stop_broker
acl_broker acl acl
acl() { "$silt" acl create "$@" --bootstrap-server "$addr" > /dev/null; }
acl --allow-principal User:bench --operation Write --topic acl
others=() ops=()
for i in $(seq 50); do others+=(--allow-principal "User:other-$i"); done
for op in Read Write Create Delete Alter Describe DescribeConfigs AlterConfigs IdempotentWrite All; do ops+=(--operation "$op"); done
acl "${others[@]}" "${ops[@]}" --topic acl
for i in $(seq 10); do acl "${others[@]}" --operation Read --topic "other-$i" --resource-pattern-type prefixed; done
count=$("$silt" acl list --bootstrap-server "$addr" | tail -n +2 | wc -l)
addr="127.0.0.1:$sasl_port"
with=$(median "$runs" produce --topic acl --messages "$messages" "${sasl_plain[@]}")
stop_broker
row "S3. SASL_PLAINTEXT, no authorizer" "$(throughput "$without"), broker CPU s per GB $(field "$without" broker_cpu_s_per_gb)"
row "S3. SASL_PLAINTEXT, ACL authorizer with $count ACLs" "$(throughput "$with"), broker CPU s per GB $(field "$with" broker_cpu_s_per_gb) = $(ratio "$(field "$with" broker_cpu_s_per_gb)" "$(field "$without" broker_cpu_s_per_gb)")x"
print_table
