set -euo pipefail

# imds PATH: an instance metadata value, over IMDSv2 (retried: early in boot
# the metadata service may not answer yet).
imds() {
  local token
  token=$(curl -sSf --retry 10 --retry-connrefused --retry-delay 1 -X PUT \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -sSf --retry 10 --retry-connrefused --retry-delay 1 \
    -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

# download URL SHA256 FILE: fetches URL (retrying while the NAT route comes
# up), checking its SHA-256 unless empty.
download() {
  curl -sSfL --retry 10 --retry-all-errors --retry-delay 3 -o "$3" "$1"
  if [ -n "$2" ]; then
    echo "$2  $3" | sha256sum --check --strict
  fi
}

# ssm_file PARAMETER FILE: writes a (decrypted) SSM parameter to FILE, mode 0600.
ssm_file() {
  install -m 0600 /dev/null "$2"
  aws ssm get-parameter --region "$AWS_REGION" --with-decryption --name "$1" \
    --query Parameter.Value --output text > "$2"
}

AWS_REGION=$(imds placement/region)
AVAILABILITY_ZONE=$(imds placement/availability-zone)
PRIVATE_IP=$(imds local-ipv4)
export AWS_REGION AVAILABILITY_ZONE PRIVATE_IP
