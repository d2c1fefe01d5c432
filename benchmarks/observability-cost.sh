#!/usr/bin/env bash
# observability-cost.sh - what metrics and the access log cost the data plane (issue 11). One interleaved run of the
# load harness (l4bench.sh) on three configurations of our host:
#   gw-off  --no-metrics: no instrument listening, no /metrics
#   gw-met  metrics on (the default), /metrics scraped every second by a real Prometheus
#   gw-log  as gw-met, plus the access log as JSON lines to a file
# then, per figure, the median of each and its ratio to gw-off. Targets: with metrics on and scraped, connection rate
# and keep-alive request rate within 3 % of off; with the access log too, within 10 %.
#
# Usage: benchmarks/observability-cost.sh            # ROUNDS=3 (medians), ~7 min; the JIT-compiled host (dotnet DLL)
#        EXE=artifacts/publish/fsm-gateway benchmarks/observability-cost.sh   # the Native AOT data plane (eng/publish.sh),
#                                                    # what the image runs for `run` and `gateway`
#        benchmarks/observability-cost.sh --report DIR/results.tsv
# Environment: L4BENCH=../shared/bench/l4bench.sh  ROUNDS=3  SKIP_BUILD=0  GW_ENV=""  EXE=""  WARMUP_SECS=5 (JIT; 1
# with EXE) and every l4bench knob. The JIT host needs the longer warm-up: on a saturated core the tiering compiler
# competes with the proxy, and metrics on or the access log put more code through it, so a 1 s warm-up charges
# start-up JIT work to the per-connection cost of whichever configuration has more code.
# Needs what load.sh needs, plus prometheus (Debian package) for the scraping.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
L4BENCH=${L4BENCH:-$root/../shared/bench/l4bench.sh}
die() { printf 'observability-cost.sh: %s\n' "$*" >&2; exit 2; }

# ratios RESULTS_TSV: medians per configuration, and each one's ratio to gw-off.
ratios() {
  awk -F'\t' '
    function med(p, j,   m, c, x, a, i, t) {
      m=0; for (c=1; c<=cnt[p]; c++) { x=val[p,c,j]; if (x!="NA" && x!="" && x!~/FAILED/) a[++m]=x+0 }
      if (m==0) return "NA"
      for (i=2; i<=m; i++) { t=a[i]; for (c=i-1; c>=1 && a[c]>t; c--) a[c+1]=a[c]; a[c+1]=t }
      return (m%2) ? a[(m+1)/2] : (a[m/2]+a[m/2+1])/2
    }
    function span(p, j,   c, x, lo, hi) {
      lo=""; hi=""; for (c=1; c<=cnt[p]; c++) { x=val[p,c,j]; if (x=="NA" || x=="") continue; x+=0; if (lo=="" || x<lo) lo=x; if (hi=="" || x>hi) hi=x }
      return (lo=="") ? "NA" : sprintf("%.0f-%.0f", lo, hi)
    }
    function r(x, y) { return (x=="NA" || y=="NA" || y+0==0) ? "NA" : sprintf("%.3f", x/y) }
    /^#/ || $1=="proxy" { next }
    { p=$1; c=++cnt[p]; for (j=2; j<=21; j++) val[p,c,j]=(j<=NF ? $j : "NA") }
    END {
      if (!("gw-off" in cnt)) { print "no gw-off rows in results"; exit 2 }
      n=0
      N[++n]="close conn/s";       J[n]=7;  T[n]=1
      N[++n]="ka req/s";           J[n]=4;  T[n]=1
      N[++n]="ka p99 ms";          J[n]=6;  T[n]=0
      N[++n]="CPU us/conn (close)"; J[n]=14; T[n]=0
      N[++n]="CPU us/req (ka)";    J[n]=13; T[n]=0
      N[++n]="bulk1 Gb/s";         J[n]=2;  T[n]=0
      N[++n]="peak RSS MiB";       J[n]=10; T[n]=0
      printf "\nmedians of %d round(s); ratio to gw-off (rates: higher is better; p99, CPU, RSS: lower is better)\n", cnt["gw-off"]
      printf "%-20s %10s %10s %10s %8s %8s   %s\n", "figure", "gw-off", "gw-met", "gw-log", "met/off", "log/off", "rounds (gw-off | gw-met | gw-log)"
      bad=0
      for (i=1; i<=n; i++) {
        o=med("gw-off", J[i]); m=med("gw-met", J[i]); l=med("gw-log", J[i])
        printf "%-20s %10s %10s %10s %8s %8s   %s | %s | %s\n", N[i], o, m, l, r(m, o), r(l, o), span("gw-off", J[i]), span("gw-met", J[i]), span("gw-log", J[i])
        if (T[i]) {
          if (r(m, o)!="NA" && r(m, o)+0 < 0.97) { bad++; printf "  NOT MET: %s with metrics is %s x off (target >= 0.97)\n", N[i], r(m, o) }
          if (r(l, o)!="NA" && r(l, o)+0 < 0.90) { bad++; printf "  NOT MET: %s with the access log is %s x off (target >= 0.90)\n", N[i], r(l, o) }
        }
      }
      print (bad ? "targets: NOT MET" : "targets: met (metrics within 3 %, access log within 10 %, of connection and request rates)")
    }' "$1"
}

case ${1:-} in
  --report) [[ -r ${2:-} ]] || die "usage: $0 --report path/to/results.tsv"; ratios "$2"; exit 0 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

[[ -x $L4BENCH ]] || die "harness not found or not executable: $L4BENCH (set L4BENCH=/path/to/l4bench.sh)"
command -v prometheus >/dev/null 2>&1 || die "prometheus not found (apt-get install -y prometheus)"
dll=$root/src/FsmGateway.Host/bin/Release/net10.0/fsm-gateway.dll
if [[ -n ${EXE:-} ]]; then
  [[ -x $EXE ]] || die "not an executable: $EXE (eng/publish.sh artifacts/publish builds the Native AOT data plane)"
  host=$(printf '%q' "$(cd "$(dirname "$EXE")" && pwd)/$(basename "$EXE")")
  export WARMUP_SECS=${WARMUP_SECS:-1}
else
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    echo "building the host (Release)..." >&2
    dotnet build "$root/src/FsmGateway.Host" -c Release -nologo -v q -clp:NoSummary >&2 || die "host build failed"
  fi
  [[ -r $dll ]] || die "host not built: $dll"
  host="dotnet $(printf '%q' "$dll")"
  export WARMUP_SECS=${WARMUP_SECS:-5}
fi

ROUNDS=${ROUNDS:-3}
export OUT_DIR=${OUT_DIR:-/tmp/fsm-obs-cost-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"
base=${PROXY_PORT_BASE:-19000}

# Every instance's admin port is its listen port + 1000, so one Prometheus, started before the run and pinned with the
# load (CPU 0), scrapes whichever instance is up every second; the others are down targets, which cost nothing.
# It scrapes gw-off too (a 404), so every configuration sees the same scraper.
targets=""
for i in 0 1 2 3 4 5; do targets+="\"127.0.0.1:$((base + 1000 + 10 * i))\", \"127.0.0.1:$((base + 1001 + 10 * i))\", "; done
cat >"$OUT_DIR/prometheus.yml" <<EOF
global: { scrape_interval: 1s, scrape_timeout: 1s }
scrape_configs:
  - job_name: fsm-gateway
    static_configs: [{ targets: [${targets%, }] }]
EOF
prom_port=$((base + 900))
setsid taskset -c "${LOAD_CPUS:-0}" prometheus --config.file="$OUT_DIR/prometheus.yml" --storage.tsdb.path="$OUT_DIR/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$OUT_DIR/prometheus.log" 2>&1 &
prom=$!
trap 'kill "$prom" 2>/dev/null || true; wait "$prom" 2>/dev/null || true' EXIT

tmpl=$here/gw.tmpl.yaml
gw() { # NAME EXTRA-ARGS
  printf '%s=sed -e "s/@LISTEN@/$LISTEN_PORT/g" -e "s/@BACKEND@/$BACKEND_PORT/g" %q > "$BENCH_WORK/gw.yaml" && exec env %s %s run --config "$BENCH_WORK/gw.yaml" --admin-port $((LISTEN_PORT + 1000)) --log-level Warning %s' \
    "$1" "$tmpl" "${GW_ENV:-}" "$host" "$2"
}
configs=("$(gw gw-off '--no-metrics')" "$(gw gw-met '')" "$(gw gw-log '--access-log "$BENCH_WORK/access.log" --access-log-format json')")
# One harness run per round, the configurations' order rotated each round: whatever a run leaves behind for the
# next (28,000 TIME_WAIT sockets on loopback, a warmer page cache, a build that just started) must not always
# favour the same one. Round r runs gw-off, gw-met, gw-log starting at (r-1) mod 3; its rows go to results.tsv.
rounds=$ROUNDS
for ((r = 0; r < rounds; r++)); do
  order=()
  for ((i = 0; i < ${#configs[@]}; i++)); do order+=("${configs[(r + i) % ${#configs[@]}]}"); done
  ROUNDS=1 OUT_DIR=$OUT_DIR/round-$((r + 1)) "$L4BENCH" direct "${order[@]}" >&2 || die "l4bench failed (see $OUT_DIR/round-$((r + 1)))"
done
{ grep -h '^#' "$OUT_DIR/round-1/results.tsv"; grep -h '^proxy' "$OUT_DIR/round-1/results.tsv" | head -n 1
  for ((r = 1; r <= rounds; r++)); do
    awk -F'\t' -v OFS='\t' -v r="$r" '!/^#/ && $1 != "proxy" { $21 = r; print }' "$OUT_DIR/round-$r/results.tsv"
  done; } >"$OUT_DIR/results.tsv"
"$L4BENCH" --report "$OUT_DIR/results.tsv" >"$OUT_DIR/table.txt"

echo "host: $host  warm-up: ${WARMUP_SECS}s"
scrapes=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode 'query=sum(count_over_time(fsmgateway_connections_active[2h]))' | jq -r '.data.result[0].value[1] // "0"')
echo "successful scrapes of an instance with metrics on during the run: $scrapes (expected: about one per second of gw-met and gw-log)"
cat "$OUT_DIR/table.txt"
ratios "$OUT_DIR/results.tsv" | tee "$OUT_DIR/ratio.txt"
echo "results: $OUT_DIR"
