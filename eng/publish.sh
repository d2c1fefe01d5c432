#!/usr/bin/env bash
# Publishes the fsm-gateway host into one folder, as the image holds it (docs/adr/0011):
#   <out>/fsm-gateway            the data plane (`run`, `compile`): Native AOT, one self-contained executable
#   <out>/full/fsm-gateway.dll   every mode (`controller`, `gateway` reading the API server, ...): framework-dependent,
#                                ReadyToRun; start it with `dotnet <out>/full/fsm-gateway.dll`
#   <out>/fsm-gateway-entrypoint the image's ENTRYPOINT: runs each mode from the build that has it
# The Dockerfile's build stage and eng/test.sh both run exactly this, so what CI starts is what the image holds.
#   eng/publish.sh <output-dir>
#   FSM_PUBLISH_RID=linux-arm64 eng/publish.sh out   # another runtime (Native AOT cross-compiles only with a cross toolchain)
#   FSM_PUBLISH_AOT=0 eng/publish.sh out             # the framework-dependent build alone, in <out>/full (no AOT toolchain)
# The Host project is packed as a .NET tool (PackAsTool, framework-dependent); that only shapes `dotnet pack`.
set -euo pipefail
out=${1:?usage: eng/publish.sh <output-dir>}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch= ;;
esac
rid=${FSM_PUBLISH_RID:-${arch:+linux-$arch}}
[[ -n $rid ]] || { echo "publish.sh: unknown architecture $(uname -m); set FSM_PUBLISH_RID" >&2; exit 2; }
common=(-c Release -r "$rid" -p:PublishDocumentationFiles=false -p:PublishReferencesDocumentationFiles=false
  -p:SatelliteResourceLanguages=en -nologo -v q)

# Every mode, framework-dependent. ReadyToRun (precompiled code for the RID): less JIT at start-up (benchmarks/README.md).
dotnet publish src/FsmGateway.Host/FsmGateway.Host.csproj "${common[@]}" -o "$out/full" --self-contained false \
  -p:PublishReadyToRun=true

# The data plane, Native AOT (the same sources with -p:DataPlane=true; no KubernetesClient modes). Symbols stay out of
# the image: -p:StripSymbols leaves them in fsm-gateway.dbg, which is removed here.
if [[ ${FSM_PUBLISH_AOT:-1} != 0 ]]; then
  dotnet publish src/FsmGateway.Host/FsmGateway.Host.csproj "${common[@]}" -o "$out" -p:DataPlane=true \
    -p:CopyOutputSymbolsToPublishDirectory=false
  rm -f "$out"/*.dbg "$out"/*.pdb
fi
install -m 0755 eng/fsm-gateway-entrypoint "$out/fsm-gateway-entrypoint"
