#!/usr/bin/env bash
# The FSM TCP-routing example on this machine: the httpbin sample backend on 127.0.0.1:8080, and the gateway
# serving the guide's Gateway (ports 8000 and 8001) and TCPRoute in front of it. Ctrl-C stops both.
#   curl http://127.0.0.1:8000/headers
#   curl http://127.0.0.1:8001/headers
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build samples/Httpbin -v q -nologo -clp:NoSummary
dotnet build src/FsmGateway.Host -v q -nologo -clp:NoSummary
dotnet samples/Httpbin/bin/Debug/net10.0/Httpbin.dll --urls http://127.0.0.1:8080 &
backend=$!
trap 'kill "$backend" 2>/dev/null; wait "$backend" 2>/dev/null' EXIT
dotnet src/FsmGateway.Host/bin/Debug/net10.0/fsm-gateway.dll run --config samples/tcp-routing "$@"
