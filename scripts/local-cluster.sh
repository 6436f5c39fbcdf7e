#!/usr/bin/env bash
# A three-broker Silt cluster on this machine, without Docker: LocalStack's
# S3 (bucket silt-local), a one-member etcd, and three brokers with
# broker.id = "auto", each with its own data dir under DIR. `start` waits
# until `silt cluster health` is green and prints the bootstrap servers;
# `stop` stops everything `start` started (brokers first).
#
#   scripts/local-cluster.sh start DIR
#   scripts/local-cluster.sh stop DIR
#
# SILT: the binary (default: silt on PATH). Ports: brokers on BROKER_PORT
# and the next two (default 19092; 0: any free ports), their admin ports
# 100 higher; LOCALSTACK_PORT (4566) and ETCD_PORT (23790) as in
# localstack/start.sh and scripts/etcd-start.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/local-cluster.sh start|stop DIR"
command=${1:?$usage}
dir=${2:?$usage}
silt=${SILT:-silt}
base=${BROKER_PORT:-19092}

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 60 s.
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 600); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# address DIR/broker-N.out WHAT: the address a broker printed it is
# listening on ("listening" or "admin listening"), once it has.
address() { sed -n "s/^silt: $2 on //p" "$1"; }

case $command in
start)
  mkdir -p "$dir"
  if [[ -e $dir/pids ]]; then echo "$dir/pids exists: stop that cluster first" >&2; exit 1; fi
  LOCALSTACK_LOG="$dir/localstack.log" localstack/start.sh silt-local >> "$dir/pids"
  scripts/etcd-start.sh >> "$dir/pids"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL="http://127.0.0.1:${LOCALSTACK_PORT:-4566}"
  for i in 0 1 2; do
    port=$((base == 0 ? 0 : base + i))
    admin=$((base == 0 ? 0 : base + 100 + i))
    SILT_BROKER__ID=auto "$silt" serve --data-dir "$dir/broker-$i" \
      --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
      --meta "etcd://127.0.0.1:${ETCD_PORT:-23790}/local" \
      --object-store s3://silt-local/cluster > "$dir/broker-$i.out" 2> "$dir/broker-$i.log" &
    echo $! >> "$dir/pids"
  done
  for _ in $(seq 600); do
    servers=$(for i in 0 1 2; do address "$dir/broker-$i.out" listening; done | paste -sd,)
    if [[ $servers == *,*,* ]] &&
      "$silt" cluster health --min-brokers 3 --bootstrap-server "$servers" > "$dir/health" 2>&1; then
      cat "$dir/health"
      for i in 0 1 2; do
        echo "admin: $(address "$dir/broker-$i.out" "admin listening")/metrics"
      done
      echo "bootstrap: $servers"
      exit 0
    fi
    sleep 0.1
  done
  cat "$dir/health" >&2 || true
  echo "the cluster did not become healthy within 60 s; logs in $dir" >&2
  exit 1
  ;;
stop)
  if [[ ! -e $dir/pids ]]; then exit 0; fi
  # Brokers hand their partitions over through etcd: they stop first.
  for pid in $(tac "$dir/pids"); do stop_pid "$pid"; done
  rm "$dir/pids"
  ;;
*)
  echo "$usage" >&2
  exit 1
  ;;
esac
