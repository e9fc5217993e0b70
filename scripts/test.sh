#!/usr/bin/env bash
# Installs everything the tests need and runs every check and test. `.ci/run` runs exactly this.
# Debian packages are asked for only for commands the machine lacks, one package per missing
# command; the observability stack (Collector, Jaeger, Prometheus 3, Alertmanager) is built from
# pinned Go modules (scripts/build-stack.sh, stack/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Debian package each command comes from. npm is asked for only where Node.js came without it
# (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
packages=(redis-server chromium sox lame nodejs kubernetes-client)
commands=(redis-server chromium sox lame node kubectl)
wanted=()
for i in "${!commands[@]}"; do command -v "${commands[$i]}" >/dev/null 2>&1 || wanted+=("${packages[$i]}"); done
apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}
if [ "${#wanted[@]}" -gt 0 ]; then apt_install "${wanted[@]}"; fi
command -v npm >/dev/null 2>&1 || apt_install npm
command -v go >/dev/null 2>&1 || { echo "go not found: the stack is built with Go (1.26 or newer)" >&2; exit 1; }

bash scripts/build-stack.sh

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'
# Grafana's published dashboard schema and the TypeScript compiler the dashboard tests check with.
npm ci --prefix tests/grafana_schema --no-audit --no-fund --loglevel=error

python -m app rules render --check
python -m app dashboards render --check
.stack/bin/otelcol validate --config=otel-collector/config.yaml
mypy
lint-imports --no-logo --no-cache
ruff check .
python -m pytest "$@"
