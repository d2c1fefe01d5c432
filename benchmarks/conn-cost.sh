#!/usr/bin/env bash
# conn-cost.sh - what one proxied connection costs the data plane, measured inside one run: CPU per connection
# (the proxy's utime+stime over a window of `wrk -H 'Connection: close'`, divided by the requests wrk completed) and,
# with STRACE=1, the system calls per connection (`strace -c -f` attached for a window of its own). Several builds are
# measured in the same run with their order rotated each round, so a rate swing on this shared machine hits all of
# them alike; compare builds by their per-round ratios.
#
# Usage: benchmarks/conn-cost.sh NAME=BUILD [NAME=BUILD ...]
#   BUILD is a framework-dependent fsm-gateway.dll (run with `dotnet`) or an executable (the Native AOT data plane).
#   e.g. benchmarks/conn-cost.sh base=/tmp/base/fsm-gateway.dll new=src/FsmGateway.Host/bin/Release/net10.0/fsm-gateway.dll
#   Run arguments may follow the build, in the same word: "sock=/tmp/base/fsm-gateway.dll --transport sockets".
# Environment: ROUNDS=5  CC_SECS=5  WARMUP_SECS=5 (JIT tiering; 1 is enough for AOT)  STRACE=0 (1: count syscalls too,
#   STRACE_SECS=3)  WRK_CONNS=64  GW_ENV="" (VAR=value for the host)  PORT_BASE=19400  OUT_DIR=/tmp/conn-cost-<time>
# Pinning as l4bench.sh: the proxy on CPU 1, wrk and the nginx backend on CPU 0. Needs nginx, wrk, strace (STRACE=1).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=${ROUNDS:-5}
CC_SECS=${CC_SECS:-5}
WARMUP_SECS=${WARMUP_SECS:-5}
STRACE=${STRACE:-0}
STRACE_SECS=${STRACE_SECS:-3}
WRK_CONNS=${WRK_CONNS:-64}
PORT_BASE=${PORT_BASE:-19400}
OUT_DIR=${OUT_DIR:-/tmp/conn-cost-$(date +%s)}
GW_ENV=${GW_ENV:-}
die() { printf 'conn-cost.sh: %s\n' "$*" >&2; exit 2; }
[[ $# -ge 1 ]] || die "usage: $0 NAME=BUILD [NAME=BUILD ...]"
for t in nginx wrk taskset ss; do command -v "$t" >/dev/null || die "needs $t"; done
[[ $STRACE == 1 ]] && { command -v strace >/dev/null || die "needs strace"; }

names=(); builds=(); bargs=()
for a in "$@"; do
  [[ $a == *=* ]] || die "argument '$a' is not NAME=BUILD"
  spec=${a#*=}; path=${spec%% *}; extra=""; [[ $spec == *" "* ]] && extra=${spec#* }
  b=$(realpath "$path"); [[ -e $b ]] || die "no build at $b"
  names+=("${a%%=*}"); builds+=("$b"); bargs+=("$extra")
done

mkdir -p "$OUT_DIR"
WORK=$(mktemp -d /tmp/conn-cost-work.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_listen() { local i; for ((i=0; i<100; i++)); do [[ -n $(ss -Hltn "sport = :$1") ]] && return 0; sleep 0.1; done; return 1; }
ticks() { awk '{ r=$0; sub(/^.*\) /, "", r); split(r, a, " "); print a[12]+a[13] }' "/proc/$1/stat"; }
wrk_requests() { awk '/requests in/ { print $1 }' "$1"; }

backend=$((PORT_BASE))
. "$here/lib.sh"
start_nginx_backend "$WORK/nginx" "$backend"
PIDS+=("$NGINX_PID")
wait_listen "$backend" || die "nginx did not start"

results=$OUT_DIR/results.tsv
printf 'round\tbuild\tconn_per_s\tcpu_us_per_conn\tsyscalls_per_conn\n' >"$results"
n=${#names[@]}
for ((r=1; r<=ROUNDS; r++)); do
  for ((k=0; k<n; k++)); do
    i=$(( (k + r - 1) % n ))
    name=${names[$i]}; build=${builds[$i]}
    port=$((PORT_BASE + 10 * r + i + 1))
    sed -e "s/@LISTEN@/$port/g" -e "s/@BACKEND@/$backend/g" "$here/gw.tmpl.yaml" >"$WORK/gw-$port.yaml"
    if [[ $build == *.dll ]]; then cmd=(dotnet "$build"); else cmd=("$build"); fi
    # shellcheck disable=SC2086
    env $GW_ENV taskset -c 1 "${cmd[@]}" run --config "$WORK/gw-$port.yaml" --admin-port 0 --log-level Warning ${bargs[$i]} >"$OUT_DIR/$name-$r.log" 2>&1 &
    gw=$!; PIDS+=("$gw")
    wait_listen "$port" || die "$name did not listen on $port: $(cat "$OUT_DIR/$name-$r.log")"
    url="http://127.0.0.1:$port/"
    taskset -c 0 wrk -t2 -c"$WRK_CONNS" -d"${WARMUP_SECS}s" -H 'Connection: close' "$url" >/dev/null
    c0=$(ticks "$gw")
    taskset -c 0 wrk -t2 -c"$WRK_CONNS" -d"${CC_SECS}s" -H 'Connection: close' "$url" >"$OUT_DIR/$name-$r.wrk"
    c1=$(ticks "$gw")
    req=$(wrk_requests "$OUT_DIR/$name-$r.wrk")
    rate=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$OUT_DIR/$name-$r.wrk")
    cpu=$(awk -v d=$((c1 - c0)) -v q="$req" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d * 1e6 / hz / q }')
    sys=NA
    if [[ $STRACE == 1 ]]; then
      strace -c -f -o "$OUT_DIR/$name-$r.strace" -p "$gw" &
      st=$!
      sleep 0.5
      taskset -c 0 wrk -t2 -c"$WRK_CONNS" -d"${STRACE_SECS}s" -H 'Connection: close' "$url" >"$OUT_DIR/$name-$r.strace.wrk"
      sleep 0.5
      kill -INT "$st"; wait "$st" 2>/dev/null || true
      sreq=$(wrk_requests "$OUT_DIR/$name-$r.strace.wrk")
      sys=$(awk -v q="$sreq" '$NF=="total" { printf "%.1f", $(NF-2) / q }' "$OUT_DIR/$name-$r.strace")
      awk -v q="$sreq" 'NR>2 && $1 !~ /^-/ && $NF!="total" { printf "  %-14s %6.2f\n", $NF, $4 / q }' "$OUT_DIR/$name-$r.strace" >"$OUT_DIR/$name-$r.percall"
    fi
    kill -TERM "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$rate" "$cpu" "$sys" | tee -a "$results"
  done
done

echo
awk -F'\t' 'NR>1 { k=$2; c[k]++; rate[k,c[k]]=$3; cpu[k,c[k]]=$4; sy[k,c[k]]=$5; if (!(k in seen)) { seen[k]=1; order[++m]=k } }
  function med(a, k, n,   v, i, j, t, x) { for (i=1; i<=n; i++) v[i]=a[k,i]+0; for (i=2; i<=n; i++) { t=v[i]; for (j=i-1; j>=1 && v[j]>t; j--) v[j+1]=v[j]; v[j+1]=t }
    return (n%2) ? v[(n+1)/2] : (v[n/2]+v[n/2+1])/2 }
  END { printf "%-12s %12s %16s %18s   (medians of %d rounds)\n", "build", "conn/s", "CPU us/conn", "syscalls/conn", c[order[1]]
    for (i=1; i<=m; i++) { k=order[i]; printf "%-12s %12.0f %16.1f %18s\n", k, med(rate, k, c[k]), med(cpu, k, c[k]), (sy[k,1]=="NA") ? "NA" : sprintf("%.1f", med(sy, k, c[k])) } }' "$results"
echo "(per round: $results; strace tables: $OUT_DIR/*.strace)"
