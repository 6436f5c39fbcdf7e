#!/usr/bin/env bash
# Starts a one-member etcd on 127.0.0.1 (client port ETCD_PORT, default
# 23790; peer port ETCD_PORT + 10) with a fresh data dir, waits until it is
# healthy and prints its PID; it runs until killed. Needs the Debian
# package etcd-server (`.ci/run` installs it).
#
#   scripts/etcd-start.sh
#   silt serve --meta etcd://127.0.0.1:23790/dev --object-store s3://silt-local/dev
set -euo pipefail

port="${ETCD_PORT:-23790}"
peer=$((port + 10))
dir=$(mktemp -d /tmp/silt-etcd.XXXXXX)
nohup etcd --name silt --data-dir "$dir/data" --logger=zap --log-level=warn \
  --auto-compaction-mode=periodic --auto-compaction-retention=1h \
  --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "silt=http://127.0.0.1:$peer" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  if ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" endpoint health >/dev/null 2>&1; then
    echo "$pid"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || { echo "etcd exited; see $dir/log" >&2; exit 1; }
  sleep 0.1
done
echo "etcd did not become healthy within 10 s; see $dir/log" >&2
kill "$pid" 2>/dev/null || true
exit 1
