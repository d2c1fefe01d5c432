#!/usr/bin/env bash
# load.sh - the data-plane load benchmark: our host against HAProxy (default and splice-auto) and nginx, in one run
# of the shared harness (l4bench.sh), then a ratio table against the issue #6 targets.
#
# Usage:
#   benchmarks/load.sh              # full: ROUNDS=3 (medians), direct haproxy haproxy-splice nginx gw, ~9 min
#   benchmarks/load.sh --quick      # CI: 1 round, short tests, direct haproxy gw; exits 1 only on a gross
#                                   # regression: a rate below its floor x HAProxy's (bulk 0.7, keep-alive 0.6,
#                                   # new connections 0.4: about 0.6-0.7 of what one quick round measures on the Linux
#                                   # transport, where a round moves by +-0.15), or below QUICK_MIN for every rate if set
#   benchmarks/load.sh --report DIR/results.tsv   # re-print the ratio table of an earlier run
#   EXE=artifacts/publish/fsm-gateway benchmarks/load.sh   # also the Native AOT data plane (eng/publish.sh), as
#                                   # gw-aot in the same run, with a ratio table of its own (AOT against JIT, same rounds)
#
# Environment:
#   L4BENCH=../shared/bench/l4bench.sh (relative to the repo root)   ROUNDS=3   SKIP_BUILD=0 (1: use the built host)
#   GW_ENV="" (extra VAR=value settings for our host, e.g. GW_ENV="DOTNET_TieredPGO=0")   GW_ARGS="" (extra run args)
#   EXE="" (an executable host to run as gw-aot next to gw; it gets GW_ENV and GW_ARGS too)
#   GW_B_ARGS="" (run args of a second JIT host, gw-b, in the same rounds instead of GW_ARGS: an A/B of a setting,
#                 e.g. GW_ARGS="--transport sockets" GW_B_ARGS="--transport linux"; it gets a ratio table of its own)
#   PROXIES="direct haproxy haproxy-splice nginx"  (the others; gw is always added)   QUICK_MIN="" (one floor for all)
#   Every other l4bench knob (BULK_SECS, RR_SECS, CC_SECS, WARMUP_SECS, PIN, PROXY_CPUS, OUT_DIR, ...) passes through.
#   Needs: haproxy nginx (+ stream module) iperf3 wrk jq taskset dotnet. Missing ones: run `l4bench.sh --install-deps`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
L4BENCH=${L4BENCH:-$root/../shared/bench/l4bench.sh}
QUICK_MIN=${QUICK_MIN:-}
QUICK=0

die() { printf 'load.sh: %s\n' "$*" >&2; exit 2; }

# ratio_table RESULTS_TSV [OURS]: medians per proxy; ours (gw, or OURS such as gw-aot) / best haproxy (default or
# splice, per figure) and / nginx. In quick mode, also prints GROSS REGRESSION lines and exits 1 when a rate is below
# its floor (or QUICK_MIN) x haproxy.
ratio_table() {
  awk -F'\t' -v quick="$QUICK" -v qmin="$QUICK_MIN" -v ours="${2:-gw}" '
    function med(p, j,   m, c, x, a, i, t) {
      m=0; for (c=1; c<=cnt[p]; c++) { x=val[p,c,j]; if (x!="NA" && x!="" && x!~/FAILED/) a[++m]=x+0 }
      if (m==0) return "NA"
      for (i=2; i<=m; i++) { t=a[i]; for (c=i-1; c>=1 && a[c]>t; c--) a[c+1]=a[c]; a[c+1]=t }
      return (m%2) ? a[(m+1)/2] : (a[m/2]+a[m/2+1])/2
    }
    function best(j, hib,   a, b) {   # the better of haproxy and haproxy-splice for figure j
      a=(("haproxy") in cnt) ? med("haproxy", j) : "NA"; b=(("haproxy-splice") in cnt) ? med("haproxy-splice", j) : "NA"
      if (a=="NA") return b; if (b=="NA") return a
      return hib ? (a>b ? a : b) : (a<b ? a : b)
    }
    function r(x, y) { return (x=="NA" || y=="NA" || y+0==0) ? "NA" : sprintf("%.2f", x/y) }
    function f(x) { return (x=="NA") ? "NA" : (x>=100 ? sprintf("%.0f", x) : sprintf("%.3g", x)) }
    /^#/ || $1=="proxy" { next }
    { p=$1; c=++cnt[p]; for (j=2; j<=21; j++) val[p,c,j]=(j<=NF ? $j : "NA"); if (NF>=21 && $21>rounds) rounds=$21 }
    END {
      if (!(ours in cnt)) { print "no " ours " rows in results"; exit 2 }
      # name, column, higher is better, target ratio vs best haproxy ("" = no target), the floor of the quick check for a
      # rate (0: not checked)
      n=0
      N[++n]="bulk1 Gb/s";         J[n]=2;  H[n]=1; T[n]=1.0;  R[n]=0.7
      N[++n]="bulk8 Gb/s";         J[n]=3;  H[n]=1; T[n]=1.0;  R[n]=0.7
      N[++n]="ka req/s";           J[n]=4;  H[n]=1; T[n]=1.1;  R[n]=0.6
      N[++n]="ka p99 ms";          J[n]=6;  H[n]=0; T[n]=1.0;  R[n]=0
      N[++n]="close conn/s";       J[n]=7;  H[n]=1; T[n]=1.0;  R[n]=0.4
      N[++n]="close p99 ms";       J[n]=9;  H[n]=0; T[n]="";   R[n]=0
      N[++n]="CPU s/GB (bulk1)";   J[n]=12; H[n]=0; T[n]=1.0;  R[n]=0
      N[++n]="CPU us/req (ka)";    J[n]=13; H[n]=0; T[n]=1.0;  R[n]=0
      N[++n]="CPU us/conn (close)"; J[n]=14; H[n]=0; T[n]=1.0; R[n]=0
      N[++n]="peak RSS MiB (load)"; J[n]=10; H[n]=0; T[n]="";  R[n]=0
      printf "\nFsmGateway (%s) vs HAProxy (best of default/splice-auto per figure) and nginx; medians of %d round(s)\n", ours, rounds
      printf "%-21s %9s %9s %9s %9s %8s %8s  %-8s %s\n", "figure", ours, "haproxy", "nginx", "direct", "/hap", "/ngx", "target", "status"
      bad=0
      for (i=1; i<=n; i++) {
        g=med(ours, J[i]); h=best(J[i], H[i]); x=(("nginx") in cnt) ? med("nginx", J[i]) : "NA"; d=(("direct") in cnt) ? med("direct", J[i]) : "NA"
        rh=r(g, h); st="info"; tg="-"
        if (T[i]!="") {
          tg=(H[i] ? ">= " : "<= ") T[i] "x"
          if (rh=="NA") st="NA"; else st=((H[i] && rh+0 >= T[i]) || (!H[i] && rh+0 <= T[i])) ? "MET" : "NOT MET"
        }
        printf "%-21s %9s %9s %9s %9s %8s %8s  %-8s %s\n", N[i], f(g), f(h), f(x), f(d), rh, r(g, x), tg, st
        floor=(qmin!="") ? qmin : R[i]
        if (quick && R[i] && (rh=="NA" || rh+0 < floor)) { bad++; printf "GROSS REGRESSION: %s is %s x haproxy (< %s)\n", N[i], rh, floor }
      }
      e=0; for (c=1; c<=cnt[ours]; c++) e+=val[ours,c,15]
      printf "(%s errors over all rounds: %d; ratios are of medians; for latency and CPU lower is better)\n", ours, e
      if (quick) { if (bad) { print "quick check: FAILED"; exit 1 } else print "quick check: passed (every rate above its floor x haproxy)" }
    }' "$1"
}

case ${1:-} in
  --report)
    [[ -r ${2:-} ]] || die "usage: $0 --report path/to/results.tsv"
    rc=0; ratio_table "$2" || rc=$?
    for ours in gw-b gw-aot; do
      if grep -q "^$ours"$'\t' "$2"; then ratio_table "$2" "$ours" || rc=$?; fi
    done
    exit "$rc" ;;
  --quick) QUICK=1; shift ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

[[ -x $L4BENCH ]] || die "harness not found or not executable: $L4BENCH (set L4BENCH=/path/to/l4bench.sh)"
missing=()
for t in haproxy nginx iperf3 wrk jq taskset ss setsid timeout; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] || missing+=("libnginx-mod-stream")
if (( ${#missing[@]} )); then
  die "missing: ${missing[*]}. Install the harness dependencies once with: sudo apt-get update && sudo $L4BENCH --install-deps"
fi
command -v dotnet >/dev/null 2>&1 || die "dotnet not found on PATH (the .NET 10 SDK builds and runs the host)"

dll=$root/src/FsmGateway.Host/bin/Release/net10.0/fsm-gateway.dll
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "building the host (Release)..." >&2
  dotnet build "$root/src/FsmGateway.Host" -c Release -nologo -v q -clp:NoSummary >&2 || die "host build failed"
fi
[[ -r $dll ]] || die "host not built: $dll (run dotnet build src/FsmGateway.Host -c Release)"

tmpl=$here/gw.tmpl.yaml
# gw_spec NAME HOST...: an l4bench proxy spec that writes the template's config and runs HOST on it.
gw_spec() {
  local name=$1; shift
  echo "$name=sed -e \"s/@LISTEN@/\$LISTEN_PORT/g\" -e \"s/@BACKEND@/\$BACKEND_PORT/g\" '$tmpl' > \"\$BENCH_WORK/$name.yaml\" && exec env ${GW_ENV:-} $* run --config \"\$BENCH_WORK/$name.yaml\" --admin-port 0 --log-level Warning ${GW_ARGS:-}"
}
gws=("$(gw_spec gw dotnet "'$dll'")")
if [[ -n ${GW_B_ARGS:-} ]]; then
  gws+=("$(GW_ARGS=$GW_B_ARGS gw_spec gw-b dotnet "'$dll'")")
fi
if [[ -n ${EXE:-} ]]; then
  [[ -x $EXE ]] || die "not an executable: $EXE (eng/publish.sh builds the Native AOT data plane)"
  gws+=("$(gw_spec gw-aot "'$(cd "$(dirname "$EXE")" && pwd)/$(basename "$EXE")'")")
fi

if (( QUICK )); then
  export ROUNDS=1 BULK_SECS=${BULK_SECS:-2} RR_SECS=${RR_SECS:-2} CC_SECS=${CC_SECS:-2} WARMUP_SECS=${WARMUP_SECS:-1}
  read -r -a others <<<"${PROXIES:-direct haproxy}"
else
  export ROUNDS=${ROUNDS:-3}
  read -r -a others <<<"${PROXIES:-direct haproxy haproxy-splice nginx}"
fi
export OUT_DIR=${OUT_DIR:-/tmp/fsm-load-$(date +%Y%m%d-%H%M%S)}

"$L4BENCH" "${others[@]}" "${gws[@]}" >&2 || die "l4bench failed (see $OUT_DIR)"
[[ -r $OUT_DIR/results.tsv ]] || die "no results in $OUT_DIR"
cat "$OUT_DIR/table.txt"
rc=0
ratio_table "$OUT_DIR/results.tsv" | tee "$OUT_DIR/ratio.txt" || rc=$?
if [[ -n ${GW_B_ARGS:-} ]]; then ratio_table "$OUT_DIR/results.tsv" gw-b | tee -a "$OUT_DIR/ratio.txt" || rc=$?; fi
if [[ -n ${EXE:-} ]]; then ratio_table "$OUT_DIR/results.tsv" gw-aot | tee -a "$OUT_DIR/ratio.txt" || rc=$?; fi
echo "results: $OUT_DIR"
exit "$rc"
