#!/usr/bin/env bash
# idle-memory.sh - memory of the host when idle, and per idle proxied connection.
#
# Starts an idle TCP backend (accepts and holds, never writes), the host in Release with a one-listener config
# (gw.tmpl.yaml) in front of it, then a client that opens N connections through the gateway and holds them.
# Samples the host's RSS (VmRSS) and PSS: idle after start-up, idle after one warm-up connection, and with N
# connections held open once every one has reached the backend. Prints KiB per connection. Everything is on
# 127.0.0.1, bounded (timeout), and every process started here is stopped by PID at exit.
#
#   benchmarks/idle-memory.sh            # N=10000
#   N=2000 GW_ENV="DOTNET_GCgen0size=0x100000" benchmarks/idle-memory.sh
# Env: N=10000 LISTEN_PORT=19901 BACKEND_PORT=19902 SETTLE=3 (s before each sample) GW_ENV="" (VAR=value for the
#      host)  GW_ARGS="" (more run arguments, e.g. "--transport sockets")  GCDUMP=file.gcdump (heap census at N connections)  SKIP_BUILD=1 (default: use the built host; 0 builds it)  MAX_SECS=180  DLL=(another build: a .dll, or the Native AOT executable artifacts/publish/fsm-gateway)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-10000}
LISTEN_PORT=${LISTEN_PORT:-19901}
BACKEND_PORT=${BACKEND_PORT:-19902}
SETTLE=${SETTLE:-3}
MAX_SECS=${MAX_SECS:-180}
dll=${DLL:-$root/src/FsmGateway.Host/bin/Release/net10.0/fsm-gateway.dll}

die() { printf 'idle-memory.sh: %s\n' "$*" >&2; exit 2; }
command -v python3 >/dev/null || die "python3 is needed for the client and the idle backend"
if [[ ${SKIP_BUILD:-1} == 0 ]]; then dotnet build "$root/src/FsmGateway.Host" -c Release -nologo -v q -clp:NoSummary >&2; fi
[[ -r $dll ]] || die "host not built: $dll (dotnet build src/FsmGateway.Host -c Release)"
for p in "$LISTEN_PORT" "$BACKEND_PORT"; do [[ -z $(ss -Hltn "sport = :$p") ]] || die "port $p is in use"; done

# Each side needs N descriptors; the host needs 2N plus ~220 of its own (assemblies, epoll, pipes). Raise the soft limit to what is needed (or
# the hard limit); where the hard limit is below 2N + 400 (a container without CAP_SYS_RESOURCE), N is lowered to fit
# and the output says so.
need=$(( 2 * N + 400 ))
ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
have=$(ulimit -n)
if (( have < need )); then
  N=$(( (have - 400) / 2 ))
  echo "note: open-files hard limit is $have, so N is lowered to $N (raise it with ulimit -Hn as root for 10,000)" >&2
fi

work=$(mktemp -d /tmp/fsm-idle.XXXXXX)
pids=()
cleanup() {
  local rc=$? p
  if (( rc != 0 )) && [[ -s $work/gw.log ]]; then cp "$work/gw.log" /tmp/idle-memory-gw.log; echo "host log: /tmp/idle-memory-gw.log" >&2; fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The idle backend: accept and hold; write the count of accepted connections to a file.
cat >"$work/backend.py" <<'EOF'
import socket, sys, time
port, countfile, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(4096); s.settimeout(0.5)
held, deadline = [], time.time() + secs
while time.time() < deadline:
    try:
        c, _ = s.accept(); held.append(c)
        if len(held) % 500 == 0: open(countfile, "w").write(str(len(held)))
    except socket.timeout:
        open(countfile, "w").write(str(len(held)))
EOF
# The client: open N connections through the gateway, hold them until stdin closes (or the deadline).
cat >"$work/client.py" <<'EOF'
import socket, sys, time, select
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
for i in range(n):
    c = socket.create_connection(("127.0.0.1", port), timeout=5); held.append(c)
print("opened", len(held), flush=True)
select.select([sys.stdin], [], [], secs)
for c in held: c.close()
EOF

sed -e "s/@LISTEN@/$LISTEN_PORT/g" -e "s/@BACKEND@/$BACKEND_PORT/g" "$here/gw.tmpl.yaml" >"$work/gw.yaml"
timeout "$MAX_SECS" python3 "$work/backend.py" "$BACKEND_PORT" "$work/count" "$MAX_SECS" &
pids+=($!)
# shellcheck disable=SC2086
if [[ $dll == *.dll ]]; then cmd=(dotnet "$dll"); else cmd=("$dll"); fi   # DLL may be the Native AOT executable
timeout "$MAX_SECS" env ${GW_ENV:-} "${cmd[@]}" run --config "$work/gw.yaml" --admin-port 0 --log-level Warning ${GW_ARGS:-} >"$work/gw.log" 2>&1 &
gw=$!; pids+=("$gw")
for ((i=0; i<200; i++)); do [[ -n $(ss -Hltn "sport = :$LISTEN_PORT") ]] && break; sleep 0.05; done
[[ -n $(ss -Hltn "sport = :$LISTEN_PORT") ]] || die "the host did not listen: $(tail -5 "$work/gw.log")"
# `timeout` is the parent of dotnet: find the host's own PID
host=$(pgrep -P "$gw" | head -1 || true); host=${host:-$gw}

mem() { # "rss_kib pss_kib"
  awk '/^VmRSS:/{r=$2} END{printf "%s ", r}' "/proc/$host/status"
  awk '/^Pss:/{print $2}' "/proc/$host/smaps_rollup"
}
sleep "$SETTLE"; read -r rss0 pss0 < <(mem)
python3 - "$LISTEN_PORT" <<'EOF'
import socket, sys; c = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); c.sendall(b"x"); c.close()
EOF
sleep "$SETTLE"; read -r rss1 pss1 < <(mem)

mkfifo "$work/hold"
timeout "$MAX_SECS" python3 "$work/client.py" "$LISTEN_PORT" "$N" "$MAX_SECS" <"$work/hold" >"$work/client.out" 2>&1 &
pids+=($!)
exec 7>"$work/hold"   # holds the client's stdin open; closing it releases the connections
t0=$SECONDS
until [[ $(cat "$work/count" 2>/dev/null || echo 0) -ge $(( N + 1 )) ]]; do
  (( SECONDS - t0 < 120 )) || die "only $(cat "$work/count" 2>/dev/null) of $N connections reached the backend: $(cat "$work/client.out")"
  sleep 0.2
done
sleep "$SETTLE"; read -r rss2 pss2 < <(mem)
est=$(ss -Htn state established "sport = :$LISTEN_PORT" | wc -l)
if [[ -n ${GCDUMP:-} ]]; then   # a managed-heap census with the connections open (dotnet tool install -g dotnet-gcdump)
  timeout 60 dotnet-gcdump collect -p "$host" -o "$GCDUMP" >&2 || echo "gcdump failed" >&2
fi
exec 7>&-

awk -v n="$N" -v r0="$rss0" -v r1="$rss1" -v r2="$rss2" -v p0="$pss0" -v p1="$pss1" -v p2="$pss2" -v est="$est" -v env="${GW_ENV:-}" -v args="${GW_ARGS:-}" 'BEGIN {
  printf "host env: %s  args: %s\n", (env == "" ? "(defaults)" : env), (args == "" ? "(defaults)" : args)
  printf "idle RSS after start:           %7.1f MiB (PSS %.1f)\n", r0/1024, p0/1024
  printf "idle RSS after one connection:  %7.1f MiB (PSS %.1f)\n", r1/1024, p1/1024
  printf "RSS with %d idle connections: %7.1f MiB (PSS %.1f), %d established at the listener\n", n, r2/1024, p2/1024, est
  printf "per idle proxied connection:    %7.2f KiB RSS (%.2f KiB PSS)   target <= 2 KiB\n", (r2-r1)/n, (p2-p1)/n
}'
