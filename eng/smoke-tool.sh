#!/usr/bin/env bash
# Runs an fsm-gateway (the installed tool, or the published Native AOT data plane) on the TCP-routing example with
# the sample backend behind it: both gateway ports answer /headers through the gateway, /status reports the Gateway
# Programmed, /metrics counts the connections; then SIGTERM while a slow request is in flight: that request still
# completes (drain), and the process exits 0.
#   eng/smoke-tool.sh artifacts/tool/fsm-gateway
#   eng/smoke-tool.sh artifacts/publish/fsm-gateway
set -euo pipefail
tool=${1:?path to fsm-gateway}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
# Never aborts half-way (set -e): a backend left running would hold port 8080 and whatever its parent held.
cleanup() { kill ${gw:-} ${backend:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "smoke: $*"; echo "--- gateway log"; cat "$work/gw.log"; exit 1; }
dotnet build samples/Httpbin -c Release -v q -nologo >/dev/null
dotnet samples/Httpbin/bin/Release/net10.0/Httpbin.dll --urls http://127.0.0.1:8080 >"$work/backend.log" 2>&1 &
backend=$!
"$tool" run --config samples/tcp-routing --admin-port 0 >"$work/gw.log" 2>&1 &
gw=$!
for _ in $(seq 1 100); do grep -q "Admin endpoints on" "$work/gw.log" && curl -sf -o /dev/null http://127.0.0.1:8080/ip && break; sleep 0.2; done
admin=$(sed -n 's/.*Admin endpoints on \(http:[^ ]*\).*/\1/p' "$work/gw.log" | head -n 1)
[ -n "$admin" ] || fail "no admin endpoint in the log"
# The admin port answers before the first config is applied; ready means the listeners are bound and serving.
for _ in $(seq 1 150); do curl -sf -o /dev/null "$admin/readyz" && break; sleep 0.2; done
curl -sf -o /dev/null "$admin/readyz" || fail "$admin/readyz never answered 200: $(curl -s "$admin/readyz")"
for port in 8000 8001; do
  body=$(curl -sf --max-time 10 "http://127.0.0.1:$port/headers") || fail "port $port did not answer"
  grep -q "\"Host\": \"127.0.0.1:$port\"" <<<"$body" || fail "unexpected answer on $port: $body"
done
status=$(curl -sf --max-time 10 "$admin/status") || fail "GET $admin/status failed"
grep -q '"Programmed"' <<<"$status" || fail "/status reports no Programmed condition: $status"
metrics=$(curl -sf --max-time 10 "$admin/metrics") || fail "GET $admin/metrics failed"
grep -Eq '^fsmgateway_connections_accepted_total\{.*\} [1-9]' <<<"$metrics" \
  || fail "/metrics counts no accepted connection: $(grep '^fsmgateway_conn' <<<"$metrics" | head -n 5)"
# Drain: a request that takes 2 s is in flight when SIGTERM arrives; it must still get its whole answer.
curl -sf --max-time 20 -o "$work/slow.json" http://127.0.0.1:8000/delay/2 &
slow=$!
for _ in $(seq 1 50); do grep -Eq '^fsmgateway_connections_active\{.*\} [1-9]' <(curl -sf "$admin/metrics") && break; sleep 0.1; done
kill -TERM "$gw"
wait "$slow" || fail "the request in flight at SIGTERM did not complete (drain)"
code=0
wait "$gw" || code=$?
gw=
[ "$code" -eq 0 ] || fail "fsm-gateway exited $code after SIGTERM"
grep -q "draining 1 open connection" "$work/gw.log" || fail "the log does not report draining the open connection"
