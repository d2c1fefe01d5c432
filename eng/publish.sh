#!/usr/bin/env bash
# Publishes the fsm-gateway host (framework-dependent, Release) into one folder. The Dockerfile's build stage and
# eng/test.sh both run exactly this, so what CI starts is what the image holds.
#   eng/publish.sh <output-dir>
# Start the result with `dotnet <output-dir>/fsm-gateway.dll` (or the apphost <output-dir>/fsm-gateway).
# The Host project is packed as a .NET tool (PackAsTool); that only shapes `dotnet pack`, publish needs no override.
set -euo pipefail
out=${1:?usage: eng/publish.sh <output-dir>}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
# ReadyToRun (precompiled code for this machine's architecture, still framework-dependent): less JIT at start-up
# (benchmarks/README.md, start-up). ReadyToRun needs a runtime identifier; set FSM_PUBLISH_RID to cross-publish.
case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch= ;;
esac
rid=${FSM_PUBLISH_RID:-${arch:+linux-$arch}}
r2r=()
[[ -n $rid ]] && r2r=(-r "$rid" --self-contained false -p:PublishReadyToRun=true)
dotnet publish src/FsmGateway.Host/FsmGateway.Host.csproj -c Release -o "$out" "${r2r[@]}" \
  -p:PublishDocumentationFiles=false -p:SatelliteResourceLanguages=en -nologo -v q
