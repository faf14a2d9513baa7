#!/usr/bin/env bash
# Builds the Argo Rollouts controller from its Go module, with the CRDs of the same release, into ${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}/bin/argo-rollouts-$ARGO_ROLLOUTS_VERSION/,
# skipping the build when both are there. `go install` refuses the module (its go.mod has
# replace directives), so the module's source is built as the main module, where they apply.
# Built under a lock: concurrent runs build it once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}
version=$ARGO_ROLLOUTS_VERSION
module=github.com/argoproj/argo-rollouts
out=$cache/bin/argo-rollouts-$version
work=$cache/src/argo-rollouts-$version
export GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0 GOTOOLCHAIN=local

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

build() {
  if [[ -x $out/rollouts-controller && -f $out/crds/rollout-crd.yaml ]]; then
    log "argo-rollouts $version: cached in $out"
    return
  fi
  command -v go >/dev/null || { log "Go is required to build Argo Rollouts"; exit 1; }
  local t0=$SECONDS dir
  log "argo-rollouts $version: downloading the module"
  dir=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d $dir ]] || { log "go mod download $module@$version gave no source directory"; exit 1; }
  rm -rf "$work" && mkdir -p "${work%/*}" "$out"
  cp -r "$dir" "$work" && chmod -R u+w "$work"
  log "argo-rollouts $version: compiling the controller (minutes when cold)"
  (cd "$work" && go build -trimpath \
    -ldflags "-X $module/utils/version.version=${version#v} -X $module/utils/version.gitTag=$version" \
    -o "$out/rollouts-controller.tmp.$$" ./cmd/rollouts-controller) >"$work.build.log" 2>&1 || {
    tail -n 40 "$work.build.log" >&2
    exit 1
  }
  # The controller waits for every kind it watches: Rollouts, analysis runs and templates,
  # experiments.
  mkdir -p "$out/crds" && cp "$work"/manifests/crds/*-crd.yaml "$out/crds/"
  mv "$out/rollouts-controller.tmp.$$" "$out/rollouts-controller"
  rm -rf "$work"
  log "argo-rollouts $version: built in $((SECONDS - t0))s into $out"
}

lock=$cache/locks/argo-rollouts-$version.lock
mkdir -p "${lock%/*}"
(
  flock --nonblock 9 || { log "waiting for another build to release $lock"; flock 9; }
  build
) 9>"$lock"
