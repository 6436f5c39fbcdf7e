#!/usr/bin/env bash
# Starts LocalStack's S3 on 127.0.0.1:4566 without Docker (the
# localstack-core runtime in a Python 3.12+ venv), waits until S3 is
# available, and creates the bucket(s) named as arguments (default:
# silt-local). Prints the PID; the server runs until killed.
#
#   localstack/start.sh [BUCKET...]
#   export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
#   export AWS_ENDPOINT_URL=http://127.0.0.1:4566
#   silt serve --object-store s3://silt-local/dev
set -euo pipefail

venv="${LOCALSTACK_VENV:-/var/tmp/venv-localstack}"
port="${LOCALSTACK_PORT:-4566}"
log="${LOCALSTACK_LOG:-/tmp/localstack.log}"
buckets=("${@:-silt-local}")

if ! "$venv/bin/python" -c 'import localstack' 2>/dev/null; then
  python=""
  for candidate in "$(pyenv root 2>/dev/null)/versions/3.13.0/bin/python3" python3.13 python3.12; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
  [[ -n "$python" ]] || { echo "localstack/start.sh: needs Python >= 3.12" >&2; exit 1; }
  python3 -m pip install --quiet uv
  uv venv --quiet --python "$python" "$venv"
  # Pinned to the release date: newer cbor2 and pyOpenSSL break this release.
  uv pip install --quiet --python "$venv/bin/python" --exclude-newer 2026-03-25 \
    'localstack-core[runtime]==2026.3.0'
fi

OVERRIDE_IN_DOCKER=0 SERVICES=s3 GATEWAY_LISTEN="127.0.0.1:$port" DNS_ADDRESS=0 \
  DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
  nohup "$venv/bin/python" -m localstack.runtime.main > "$log" 2>&1 &
pid=$!
for _ in $(seq 240); do
  if curl -s "http://127.0.0.1:$port/_localstack/health" | grep -q '"s3": "\(available\|running\)"'; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { echo "LocalStack exited; see $log" >&2; exit 1; }
  sleep 0.25
done
curl -s "http://127.0.0.1:$port/_localstack/health" | grep -q '"s3": "\(available\|running\)"' \
  || { echo "LocalStack S3 did not become available; see $log" >&2; kill "$pid"; exit 1; }
for bucket in "${buckets[@]}"; do
  # LocalStack accepts unsigned requests; 200 or "already owned" are both fine.
  curl -s -X PUT "http://127.0.0.1:$port/$bucket" -o /dev/null
done
echo "$pid"
