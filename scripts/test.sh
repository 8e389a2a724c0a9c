#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing (DCMTK and Chromium
# from Debian's packages, the npm dependencies), then runs the linter, the type checker and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v echoscu >/dev/null 2>&1 || missing+=(dcmtk)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The browser of the console's end-to-end tests (test/e2e), driven by playwright-core.
DICOM_SERVER_TEST_CHROMIUM="${DICOM_SERVER_TEST_CHROMIUM:-$(command -v chromium || true)}"
export DICOM_SERVER_TEST_CHROMIUM

# PostgreSQL for the index tests on the PostgreSQL backend: these machines run it at
# 127.0.0.1:5432 (trust auth, database test); elsewhere it is installed and set up here.
export DICOM_SERVER_TEST_PG_URL="${DICOM_SERVER_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! command -v pg_isready >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_isready >/dev/null 2>&1; then
  echo "== installing PostgreSQL"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  pg_new_install=1
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "== starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  sudo_if_needed pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if [ "${pg_new_install:-0}" = 1 ]; then
  # A fresh install asks for a password on TCP: give the test role one and a test database.
  sudo_if_needed su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  sudo_if_needed su postgres -c "createdb test" 2>/dev/null || true
  export DICOM_SERVER_TEST_PG_URL="postgres://postgres:postgres@127.0.0.1:5432/test"
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
