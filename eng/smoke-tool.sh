#!/usr/bin/env bash
# Runs the installed fsm-gateway tool on the TCP-routing example with the sample backend behind it, checks both
# gateway ports answer /headers through the gateway, then stops it with SIGTERM and expects exit code 0.
set -euo pipefail
tool=${1:?path to fsm-gateway}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
cleanup() { [ -n "${gw:-}" ] && kill "$gw" 2>/dev/null; [ -n "${backend:-}" ] && kill "$backend" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
dotnet build samples/Httpbin -c Release -v q -nologo >/dev/null
dotnet samples/Httpbin/bin/Release/net10.0/Httpbin.dll --urls http://127.0.0.1:8080 >"$work/backend.log" 2>&1 &
backend=$!
"$tool" run --config samples/tcp-routing --admin-port 0 >"$work/gw.log" 2>&1 &
gw=$!
for _ in $(seq 1 100); do grep -q "Gateway ready" "$work/gw.log" && curl -sf -o /dev/null http://127.0.0.1:8080/ip && break; sleep 0.2; done
for port in 8000 8001; do
  body=$(curl -sf --max-time 10 "http://127.0.0.1:$port/headers") || { echo "port $port did not answer"; cat "$work/gw.log"; exit 1; }
  grep -q "\"Host\": \"127.0.0.1:$port\"" <<<"$body" || { echo "unexpected answer on $port: $body"; exit 1; }
done
kill -TERM "$gw"
code=0
wait "$gw" || code=$?
gw=
[ "$code" -eq 0 ] || { echo "fsm-gateway exited $code after SIGTERM"; cat "$work/gw.log"; exit 1; }
