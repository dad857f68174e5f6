#!/usr/bin/env bash
# Soak: Switchyard at a constant rate for a long time while its config is
# reloaded every 10 s (alternating two valid versions), then the load tool's
# report: errors must be zero and RSS flat. Usage:
#   test/load/soak.sh [DURATION] [RATE]        (defaults: 15m 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-15m}
rate=${2:-1000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT
go build -tags vtprotobuf -o "$work/switchyard" .
base=$(sed 's/  strict_json: false/  strict_json: false\n  reload_interval: 1s/' internal/config/default.yaml)
printf '%s\n' "$base" > "$work/a.yaml"
printf '%s\n' "$base" | sed 's/{above: 0.7, target: reasoning}/{above: 0.75, target: reasoning}/' > "$work/b.yaml"
cp "$work/a.yaml" "$work/switchyard.yaml"
"$work/switchyard" serve --config "$work/switchyard.yaml" --grpc-addr 127.0.0.1:50151 \
  --admin-addr 127.0.0.1:9191 --log-level warn > "$work/server.log" 2>&1 &
for _ in $(seq 100); do curl -fs http://127.0.0.1:9191/readyz >/dev/null 2>&1 && break; sleep 0.1; done
( n=0; while sleep 10; do n=$((n+1)); if [ $((n % 2)) = 1 ]; then cp "$work/b.yaml" "$work/switchyard.yaml.tmp"; else cp "$work/a.yaml" "$work/switchyard.yaml.tmp"; fi; mv "$work/switchyard.yaml.tmp" "$work/switchyard.yaml"; done ) &
status=0
go run ./test/load -addr 127.0.0.1:50151 -admin 127.0.0.1:9191 -rate "$rate" -d "$dur" -size 2k -q -json "${SOAK_JSON:-soak.json}" || status=$?
echo "reloads:"
curl -fs http://127.0.0.1:9191/metrics | grep '^switchyard_config_reload_total' || true
exit "$status"
