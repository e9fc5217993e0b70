#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, a virtualenv with the test extra) and runs
# every check and test. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(prometheus prometheus-alertmanager redis-server chromium sox lame nodejs npm kubernetes-client)
binaries=(promtool amtool redis-server chromium sox lame node npm kubectl)
missing=0
for b in "${binaries[@]}"; do command -v "$b" >/dev/null 2>&1 || missing=1; done
if [ "$missing" = 1 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'
# Grafana's published dashboard schema and the TypeScript compiler the dashboard tests check with.
npm ci --prefix tests/grafana_schema --no-audit --no-fund --loglevel=error

python -m app rules render --check
python -m app dashboards render --check
mypy
lint-imports --no-logo --no-cache
ruff check .
python -m pytest "$@"
