#!/usr/bin/env bash
# The gateway's CPU time per request (user + system, from /proc), which unlike latency and
# throughput hardly depends on what else the machine runs: for A/B comparisons of a hot-path
# change on a noisy machine. Embedded mode, a fake vLLM in its own process, autocannon with a
# fixed request count after a warm-up.
#   bench/cpu-per-request.sh [requests=6000] [connections=8] [miss|hit]   (GWDIR=<built tree>)
# Prints one JSON line: {"case", "requests", "cpu_us_per_request", "load_1m"}.
set -euo pipefail
AMOUNT=${1:-6000}; CONNS=${2:-8}; CASE=${3:-miss}
ROOT=${GWDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT"
TOKEN=bench-admin-token-0123456789abcdefghijkl
D=$(mktemp -d)
node -r @swc-node/register bench/fake-upstream.ts > "$D/fake.url" &
FAKE=$!
trap 'kill $FAKE ${GW:-} 2>/dev/null || true; rm -rf "$D"' EXIT
for _ in $(seq 200); do [ -s "$D/fake.url" ] && break; sleep 0.1; done
PORT=$(node -e "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")
printf 'default_model: m\nmodels:\n  - name: m\n    provider: vllm\n    upstream_model: m\n    max_new_tokens: 64\n    base_url: %s\n' "$(head -1 "$D/fake.url")" > "$D/models.yaml"
env NODE_ENV=production PORT="$PORT" HOST=127.0.0.1 ADMIN_TOKEN=$TOKEN DATA_DIR="$D" DATABASE_URL=pglite://memory \
  MODELS_FILE="$D/models.yaml" BACKEND_PROBE_INTERVAL_MS=0 node dist/main.js > /dev/null &
GW=$!
for _ in $(seq 300); do curl -sf "localhost:$PORT/readyz" > /dev/null && break; sleep 0.2; done
KEY=$(curl -s -XPOST "localhost:$PORT/admin/keys" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"bench","rpm_limit":2000000000}' | node -e "let s='';process.stdin.on('data',c=>s+=c).on('end',()=>console.log(JSON.parse(s).key))")
if [ "$CASE" = miss ]; then BODY='{"prompt":"q [<id>]","max_new_tokens":16}'; else BODY='{"prompt":"same","max_new_tokens":16}'; fi
load() { npx autocannon -c "$1" -a "$2" -m POST -H content-type=application/json -H "x-api-key=$KEY" -I -b "$BODY" "http://127.0.0.1:$PORT/v1/generate" > /dev/null 2>&1; }
cpu() { awk '{print $14 + $15}' "/proc/$GW/stat"; }
load 4 1000
T0=$(cpu); load "$CONNS" "$AMOUNT"; T1=$(cpu)
TICKS=$(getconf CLK_TCK)
echo "{\"case\":\"$CASE\",\"requests\":$AMOUNT,\"cpu_us_per_request\":$(( (T1 - T0) * 1000000 / TICKS / AMOUNT )),\"load_1m\":$(cut -d' ' -f1 /proc/loadavg)}"
