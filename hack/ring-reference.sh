#!/usr/bin/env bash
# Prints the loadbalancing exporter's ring decisions as JSON (the table tests/unit/test_shards.py
# checks the operator's port against): runs hack/ring_reference/reference_test.go inside a copy of
# the exporter's package at OTELCOL_VERSION, taken from the Go module cache (downloaded through the
# Go module proxy when missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
module=github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter
export GOFLAGS="-mod=mod -buildvcs=false"

work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
source_dir=$(cd "$work" && go mod download -json "$module@$OTELCOL_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
cp -r "$source_dir/." "$work/pkg" && chmod -R u+w "$work/pkg"
find "$work/pkg" -maxdepth 1 -name '*_test.go' -delete
# The module's go.mod points its sibling modules at the monorepo's directories: use the released
# versions instead (the ones the go.mod requires).
(cd "$work/pkg" && sed -n 's/^replace \([^ ]*\) => \.\..*/\1/p' go.mod |
  while read -r path; do go mod edit -dropreplace="$path"; done)
cp "$here/ring_reference/reference_test.go" "$work/pkg/"
(cd "$work/pkg" && RING_REFERENCE_OUT="$work/out.json" go test -count=1 -run '^TestReference$' . >&2)
cat "$work/out.json"
