#!/usr/bin/env bash
# The whole test run, as README gives it and CI runs it:
#   1. the solution's tests;
#   2. pack every package into artifacts/packages and check each package's dependencies;
#   3. build and run the samples from those packages only (a fresh package cache, so nothing stale or
#      project-referenced can stand in for them);
#   4. install the packed host as a .NET tool and serve the TCP-routing example with it;
#   5. publish the host as the Dockerfile does (eng/publish.sh: the Native AOT data plane and the framework-dependent
#      build), serve the TCP-routing example with the AOT executable, and start each mode through the image's
#      ENTRYPOINT; then the whole host test suite against the AOT build (~2 min; FSM_AOT_SUITE=0 skips it), and the
#      AOT data plane's memory in a small and a large cluster (benchmarks --data-plane-rss);
#   6. the quick load benchmark against HAProxy, failing only on a gross regression (skipped without the harness).
# Ends with one line: "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count_dotnet_test() { # adds the totals of `dotnet test` summary lines in $log
  local p f s
  p=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
  f=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
  s=$(grep -oE 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  return 0
}
check() { # check NAME COMMAND... : one pass or one fail
  local name=$1; shift
  if "$@"; then echo "check passed: $name"; passed=$((passed + 1)); else echo "check FAILED: $name"; failed=$((failed + 1)); fi
}

echo "== 1. solution tests"
dotnet test FsmGateway.sln 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count_dotnet_test
if [ "$status" -ne 0 ] && ! grep -qE 'Failed: +[1-9]' "$log"; then failed=$((failed + 1)); fi

echo "== 2. packages"
rm -rf artifacts/packages artifacts/nuget-cache artifacts/tool
check "dotnet pack" dotnet pack FsmGateway.Packages.slnf -c Release -o artifacts/packages -v q -nologo
check "package dependencies match eng/package-dependencies.txt" eng/check-package-dependencies.sh artifacts/packages

echo "== 3. samples, from the packages"
export NUGET_PACKAGES=$root/artifacts/nuget-cache
check "sample Embedded builds and runs" dotnet run --project samples/Embedded -c Release
check "sample CustomConfigSource builds and runs" dotnet run --project samples/CustomConfigSource -c Release
for sample in CustomPolicy SnapshotTests; do
  dotnet test "samples/$sample" -c Release 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || grep -qE 'Failed: +[1-9]' "$log" || failed=$((failed + 1))
  count_dotnet_test
done

echo "== 4. the packed host as a .NET tool"
version=$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)
check "dotnet tool install FsmGateway.Host" dotnet tool install FsmGateway.Host --tool-path artifacts/tool --add-source artifacts/packages --version "$version"
check "the installed tool serves the TCP-routing example" eng/smoke-tool.sh artifacts/tool/fsm-gateway

echo "== 5. the published host, as the Dockerfile builds and starts it"
unset NUGET_PACKAGES # step 3's fresh cache is for the samples; the image's publish uses the default one
rm -rf artifacts/publish
check "eng/publish.sh artifacts/publish" eng/publish.sh artifacts/publish
check "the published data plane (Native AOT) serves the TCP-routing example" eng/smoke-tool.sh artifacts/publish/fsm-gateway
check "the image's entrypoint starts run from the data plane" sh -c 'artifacts/publish/fsm-gateway-entrypoint run --help | grep -q "Run the gateway on one machine"'
check "the image's entrypoint starts controller from the framework-dependent build" sh -c 'artifacts/publish/fsm-gateway-entrypoint controller --help | grep -q "leader-election"'
if [ "${FSM_AOT_SUITE:-1}" != 0 ]; then
  # Every host test that starts the process runs the AOT executable for the modes it has (tests/FsmGateway.Host.Tests/Support/HostCommand.cs).
  FSM_GATEWAY_EXECUTABLE=$root/artifacts/publish/fsm-gateway dotnet test tests/FsmGateway.Host.Tests 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  count_dotnet_test
  if [ "$status" -ne 0 ] && ! grep -qE 'Failed: +[1-9]' "$log"; then failed=$((failed + 1)); fi
fi

# Issue 12's claim, on the executable pods run: subscribed to a controller's stream, the data plane's memory follows its
# Gateway, not the cluster (medians of 5 runs each in a 10- and a 100,000-object cluster; exits 1 beyond 10 %). One
# run alone once read 27.9 against 30.3 MiB (+8.3 %), where its medians agree within 0.5 %: a single run is too close
# to the bound not to fail on noise some day. Medians of 5 since 2026-11-30: in one CI run the six readings were 27.3, 30.3 and
# 28.1 MiB (small) against 30.8, 30.6 and 28.3 (large), one spread of ~3 MiB on both sides, and the medians of 3 read
# +9.2 %. ~3 min.
check "the Native AOT data plane's RSS does not follow the cluster (benchmarks --data-plane-rss)" \
  dotnet run --project benchmarks/FsmGateway.Benchmarks -c Release -- --data-plane-rss "$root/artifacts/publish/fsm-gateway" 5

echo "== 6. data-plane load, quick mode (fails only on a gross regression)"
# Needs the shared load harness next to the repository and its tools (l4bench.sh --install-deps); without them the
# check is reported as skipped, with the reason, rather than failed. Each rate has its own floor against HAProxy
# (load.sh: bulk 0.7, keep-alive 0.6, new connections 0.4), about 0.6-0.7 of what one quick round measures, since one
# short round moves by +-0.15.
harness=${L4BENCH:-$root/../shared/bench/l4bench.sh}
if [ -x "$harness" ] && command -v haproxy nginx iperf3 wrk jq >/dev/null 2>&1 && [ "$(command -v haproxy nginx iperf3 wrk jq | wc -l)" -eq 5 ]; then
  check "benchmarks/load.sh --quick" env L4BENCH="$harness" benchmarks/load.sh --quick
else
  echo "check skipped: benchmarks/load.sh --quick (no harness at $harness, or haproxy/nginx/iperf3/wrk/jq missing)"
  skipped=$((skipped + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
