#!/usr/bin/env bash
# startup.sh - time from process start to the first accepted connection, and idle RSS, on the seed config.
#
# Runs `dotnet fsm-gateway.dll run --config samples/tcp-routing` (listeners 8000 and 8001) RUNS times; each time,
# a poller started just before the process connects to 127.0.0.1:PORT every millisecond and records when the first
# connect succeeds (the listener is bound and the kernel completed the handshake), then the host is stopped by
# PID. Prints each time and the median, with the host's user+sys CPU up to that moment (steadier than wall time
# when something else is using the machine), and the host's VmRSS IDLE seconds after that first connection (idle: the
# poller's connection is closed at once). Bounded: each run is given at most 20 s.
#
#   benchmarks/startup.sh                         # 5 runs, samples/tcp-routing, port 8000
#   CONFIG=embedded benchmarks/startup.sh         # no --config: the embedded default (same listeners)
#   GW_ENV="DOTNET_TieredPGO=0" DLL=path/to/fsm-gateway.dll benchmarks/startup.sh
#   EXE=artifacts/publish/fsm-gateway benchmarks/startup.sh   # an executable: the Native AOT data plane (eng/publish.sh)
# Env: RUNS=5 PORT=8000 (another port rewrites the seed config's 8000/8001 to PORT/PORT+1 in a temp copy) IDLE=3
#      CONFIG=samples/tcp-routing  GW_ENV=""  DLL=src/FsmGateway.Host/bin/Release/net10.0/fsm-gateway.dll  EXE=
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
RUNS=${RUNS:-5}
PORT=${PORT:-8000}
CONFIG=${CONFIG:-$root/samples/tcp-routing}
DLL=${DLL:-$root/src/FsmGateway.Host/bin/Release/net10.0/fsm-gateway.dll}
IDLE=${IDLE:-3}
if [[ -n ${EXE:-} ]]; then host=("$EXE"); else host=(dotnet "$DLL"); fi

die() { printf 'startup.sh: %s\n' "$*" >&2; exit 2; }
command -v python3 >/dev/null || die "python3 is needed for the poller"
[[ -n ${EXE:-} || -r $DLL ]] || die "host not built: $DLL (dotnet build src/FsmGateway.Host -c Release)"
[[ -z ${EXE:-} || -x $EXE ]] || die "not an executable: $EXE"
for p in "$PORT" $((PORT + 1)); do [[ -z $(ss -Hltn "sport = :$p") ]] || die "port $p is in use (set PORT=...)"; done

work=$(mktemp -d /tmp/fsm-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT
args=(run --admin-port 0 --log-level Warning)
if [[ $CONFIG != embedded ]]; then
  if [[ $PORT != 8000 ]]; then
    [[ $CONFIG == "$root/samples/tcp-routing" ]] || die "PORT only rewrites the seed config"
    mkdir "$work/cfg"
    for f in "$CONFIG"/*.yaml; do sed -e "s/\b8000\b/$PORT/g" -e "s/\b8001\b/$((PORT + 1))/g" "$f" >"$work/cfg/$(basename "$f")"; done
    CONFIG=$work/cfg
  fi
  args+=(--config "$CONFIG")
elif [[ $PORT != 8000 ]]; then
  die "the embedded default listens on 8000; PORT cannot change it"
fi

# The poller starts the host itself, so the clock starts at the exec; it stops the host by its PID.
python3 - "$PORT" "$RUNS" "$IDLE" "${GW_ENV:-}" "${host[@]}" "${args[@]}" <<'EOF'
import os, signal, socket, statistics, subprocess, sys, time
port, runs, idle, env_extra, cmd = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5:]
env = dict(os.environ)
for kv in env_extra.split():
    k, _, v = kv.partition("="); env[k] = v
tck = os.sysconf("SC_CLK_TCK")
def cpu_ms(pid):  # user+sys CPU of the host so far: less sensitive than wall time to other load on the machine
    with open(f"/proc/{pid}/stat") as f: a = f.read().rsplit(")", 1)[1].split()
    return (int(a[11]) + int(a[12])) * 1000 / tck
def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
times, cpus, rsss = [], [], []
for i in range(runs):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = None
    try:
        while time.perf_counter() - t0 < 20:
            if p.poll() is not None:
                sys.exit(f"the host exited with {p.returncode}: {p.stderr.read().decode()[-500:]}")
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", port)); took = time.perf_counter() - t0; cpu = cpu_ms(p.pid); break
            except OSError:
                time.sleep(0.001)
            finally:
                s.close()
        if took is not None:
            time.sleep(idle); rss = rss_kib(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try: p.wait(10)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
    if took is None: sys.exit("no connection accepted within 20 s")
    times.append(took * 1000); cpus.append(cpu); rsss.append(rss / 1024)
    print(f"run {i + 1}: first connection accepted after {took * 1000:.0f} ms ({cpu:.0f} ms CPU); idle RSS after {idle:g} s {rss / 1024:.1f} MiB", flush=True)
    time.sleep(0.5)
print(f"median of {runs}: {statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f}), CPU {statistics.median(cpus):.0f} ms, idle RSS {statistics.median(rsss):.1f} MiB  env: {env_extra or '(defaults)'}  targets <= 50 ms, <= 20 MiB")
EOF
