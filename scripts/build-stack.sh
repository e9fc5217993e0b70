#!/usr/bin/env bash
# Builds the observability stack the tests and `python -m app stack up` run (stack/README.md):
# each program from its own pinned go.mod under stack/, into .stack/bin/. A program is rebuilt only
# when the files it is built from (go.mod, go.sum, and the Collector's generated sources) change.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.stack/bin
mkdir -p "$bin"
export GOFLAGS=-mod=mod CGO_ENABLED=0

# The release a Prometheus project's Go module version stands for, for its --version: the module
# github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0 (their documented scheme); the
# other projects' module versions are their releases.
release() {
  local dir=$1 module=$2 version
  version=$(awk -v m="$module" '$1 == m { print $2 }' "$dir/go.mod" | head -1)
  if [ "$module" = github.com/prometheus/prometheus ]; then
    version=$(echo "$version" | sed -E 's/^v0\.3([0-9]{2})\.([0-9]+)$/3.\1.\2/; s/^3\.0([0-9])/3.\1/')
  fi
  echo "${version#v}"
}

# The -X flags that give a Prometheus project's binaries their version (prometheus/common/version).
prometheus_version() {
  echo "-X github.com/prometheus/common/version.Version=$(release "$1" "$2")"
}

# program directory, go build tags, extra linker flags, then each binary it makes as name=package
# ("." for the module's own main).
build() {
  local dir=$1 tags=$2 ldflags=$3; shift 3
  local stamp="$bin/.$(basename "$dir").sum"
  local sum; sum=$( (echo "$tags $ldflags"; cat "$dir"/go.mod "$dir"/go.sum $(find "$dir" -maxdepth 1 -name '*.go' | sort)) \
    | sha256sum | cut -d' ' -f1)
  local all_there=1 target
  for target in "$@"; do [ -x "$bin/${target%%=*}" ] || all_there=0; done
  if [ "$all_there" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then return; fi
  for target in "$@"; do
    echo "building ${target%%=*} (stack/$(basename "$dir"))" >&2
    (cd "$dir" && go build -trimpath -tags="$tags" -ldflags="-s -w $ldflags" -o "../../$bin/${target%%=*}" "${target#*=}")
  done
  echo "$sum" > "$stamp"
}

build stack/otelcol "" "" otelcol=.
build stack/jaeger "" "" jaeger=github.com/jaegertracing/jaeger/cmd/jaeger
# remove_all_sd: no service discovery but static and file (the configs use static targets only),
# which leaves out the cloud SDKs and Kubernetes' client: a third of the build.
build stack/prometheus remove_all_sd "$(prometheus_version stack/prometheus github.com/prometheus/prometheus)" \
  prometheus=github.com/prometheus/prometheus/cmd/prometheus \
  promtool=github.com/prometheus/prometheus/cmd/promtool
build stack/alertmanager "" "$(prometheus_version stack/alertmanager github.com/prometheus/alertmanager)" \
  alertmanager=github.com/prometheus/alertmanager/cmd/alertmanager \
  amtool=github.com/prometheus/alertmanager/cmd/amtool
