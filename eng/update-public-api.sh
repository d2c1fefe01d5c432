#!/usr/bin/env bash
# Brings every src/*/PublicAPI.Unshipped.txt in line with the code: adds new public symbols (RS0016) and
# drops ones that no longer exist (RS0017). Review the diff before committing: it is the public API change.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
dotnet build FsmGateway.sln -p:TreatWarningsAsErrors=false -p:NoWarn=CS1591 --no-incremental -clp:NoSummary >"$log" 2>&1 || true
python3 - "$log" <<'PY'
import re, sys, os, collections
add = collections.defaultdict(set); drop = collections.defaultdict(set)
for line in open(sys.argv[1]):
    m = re.match(r"\s*(/\S+?/src/[^/]+)/.*?(RS0016|RS0017): Symbol '(.*)' is (not part|part) of the declared", line)
    if not m: continue
    proj, code, sym = m.group(1), m.group(2), m.group(3)
    (add if code == "RS0016" else drop)[proj].add(sym)
for proj in set(add) | set(drop):
    path = os.path.join(proj, "PublicAPI.Unshipped.txt")
    lines = [l.rstrip("\n") for l in open(path)] if os.path.exists(path) else ["#nullable enable"]
    body = set(l for l in lines[1:] if l) - drop[proj] | add[proj]
    with open(path, "w") as f:
        f.write("#nullable enable\n" + "".join(s + "\n" for s in sorted(body, key=lambda s: s.replace("~", ""))))
    print(f"{path}: +{len(add[proj])} -{len(drop[proj])}")
PY
rm -f "$log"
