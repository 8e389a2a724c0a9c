#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing (DCMTK from
# Debian's packages, the npm dependencies), then runs the linter, the type checker and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v echoscu >/dev/null 2>&1 || missing+=(dcmtk)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

echo "== lint"
npm run --silent lint
echo "== typecheck"
npm run --silent typecheck
echo "== build"
npm run --silent build

echo "== tests"
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-results.json || status=$?
node scripts/test-summary.mjs .vitest-results.json || true
exit "$status"
