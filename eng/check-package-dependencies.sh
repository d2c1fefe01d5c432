#!/usr/bin/env bash
# Compares each package's dependency list (from its .nuspec) with eng/package-dependencies.txt, so a package never
# grows a dependency by accident: a user of FsmGateway.Routing alone must not pull KubernetesClient.
set -euo pipefail
folder=${1:-artifacts/packages}
expected=$(dirname "$0")/package-dependencies.txt
actual=$(mktemp)
trap 'rm -f "$actual"' EXIT
for package in "$folder"/FsmGateway.*.nupkg; do
  [[ $package == *.snupkg ]] && continue
  id=$(basename "$package" | sed -E 's/\.[0-9]+\.[0-9]+\.[0-9]+.*//')
  unzip -p "$package" "*.nuspec" | { grep -oE '<dependency id="[^"]+"' || true; } | sed -E 's/<dependency id="([^"]+)"/\1/' | sort -u | sed "s/^/$id: /" >>"$actual"
  if unzip -p "$package" "*.nuspec" | grep -q '<packageType name="DotnetTool"'; then echo "$id: (dotnet tool)" >>"$actual"; fi
done
if ! diff -u "$expected" <(sort "$actual"); then
  echo "package dependencies differ from $expected (update it if the change is intended)"
  exit 1
fi
