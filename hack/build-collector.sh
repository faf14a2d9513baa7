#!/usr/bin/env bash
# Builds an OpenTelemetry Collector distribution, weavergen-otelcol, from Go modules with the
# Collector builder (ocb), into ${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}/bin/otelcol-$OTELCOL_VERSION/,
# skipping the build when the binary there was built from the same manifest. Its components
# are what the operator's users run in front of it (hack/../examples/collector.yaml):
#
#   receivers   otlp
#   processors  batch, probabilistic_sampler
#   connectors  spanmetrics (RED metrics from spans, for telemetry.source: prometheus)
#   exporters   otlphttp (to the operator's receiver), loadbalancing (spans of a service to one
#               operator shard), prometheus, prometheusremotewrite
#   extensions  health_check
#
# The binary is static (CGO off), so the node's image of it is the binary alone
# (hack/build-images.sh). Built under a lock: concurrent runs build it once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}
out=$cache/bin/otelcol-$OTELCOL_VERSION
work=$cache/src/otelcol-$OTELCOL_VERSION
export GOFLAGS=-buildvcs=false CGO_ENABLED=0

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

core=go.opentelemetry.io/collector
contrib=github.com/open-telemetry/opentelemetry-collector-contrib
manifest() {
  cat <<YAML
dist:
  name: weavergen-otelcol
  description: OpenTelemetry Collector for the WeaverGen operator's tests and examples
  output_path: $work/dist
  version: ${OTELCOL_VERSION#v}
receivers:
  - gomod: $core/receiver/otlpreceiver $OTELCOL_VERSION
processors:
  - gomod: $core/processor/batchprocessor $OTELCOL_VERSION
  - gomod: $contrib/processor/probabilisticsamplerprocessor $OTELCOL_VERSION
connectors:
  - gomod: $contrib/connector/spanmetricsconnector $OTELCOL_VERSION
exporters:
  - gomod: $core/exporter/otlphttpexporter $OTELCOL_VERSION
  - gomod: $contrib/exporter/loadbalancingexporter $OTELCOL_VERSION
  - gomod: $contrib/exporter/prometheusexporter $OTELCOL_VERSION
  - gomod: $contrib/exporter/prometheusremotewriteexporter $OTELCOL_VERSION
extensions:
  - gomod: $contrib/extension/healthcheckextension $OTELCOL_VERSION
YAML
}

build() {
  if [[ -x $out/weavergen-otelcol ]] && manifest | cmp -s - "$out/manifest.yaml"; then
    log "otelcol $OTELCOL_VERSION: cached in $out"
    return
  fi
  command -v go >/dev/null || { log "Go is required to build the Collector"; exit 1; }
  local t0=$SECONDS builder=$cache/bin/otelcol-builder-$OTELCOL_VERSION/builder
  if [[ ! -x $builder ]]; then
    log "otelcol $OTELCOL_VERSION: installing the Collector builder"
    GOBIN=${builder%/*} go install "$core/cmd/builder@$OTELCOL_VERSION"
  fi
  rm -rf "$work" && mkdir -p "$work" "$out"
  manifest >"$work/manifest.yaml"
  log "otelcol $OTELCOL_VERSION: resolving and compiling the distribution (minutes when cold)"
  "$builder" --config "$work/manifest.yaml" >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    exit 1
  }
  mv "$work/dist/weavergen-otelcol" "$out/weavergen-otelcol.tmp.$$"
  mv "$out/weavergen-otelcol.tmp.$$" "$out/weavergen-otelcol"
  cp "$work/manifest.yaml" "$out/manifest.yaml"
  rm -rf "$work/dist"
  log "otelcol $OTELCOL_VERSION: built in $((SECONDS - t0))s into $out"
}

lock=$cache/locks/otelcol-$OTELCOL_VERSION.lock
mkdir -p "${lock%/*}"
(
  flock --nonblock 9 || { log "waiting for another build to release $lock"; flock 9; }
  build
) 9>"$lock"
