#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl, the node components (kubelet,
# kube-scheduler, kube-proxy, CoreDNS) and helm from their Go modules
# into ${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}/bin/<component>-<version>/, skipping what is
# already built. Each component-version is built under a lock, so concurrent runs (two `make test`
# at once) build it once: the second waits, then finds it cached.
#
# k8s.io/kubernetes and go.etcd.io/etcd/server/v3 carry replace directives pointing into their own
# repositories, so `go install pkg@version` refuses them. A small wrapper module per component
# requires the release and replaces each sibling/staging module with the same release from the
# module proxy; the replace list is generated from that release's own go.mod.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}
export GOFLAGS=-buildvcs=false CGO_ENABLED=0

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# go_mod_file MODULE@VERSION -> path of that release's go.mod in the module cache
go_mod_file() { (cd "$(mktemp -d)" && go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p'); }

# replace_lines GOMOD PREFIX VERSION -> "replace M => M VERSION" for every local replace under PREFIX
replace_lines() {
  sed -n 's#^[[:space:]]*\('"$2"'[^ ]*\) => \.\{1,2\}/.*#\1#p' "$1" | sort -u |
    while read -r m; do printf 'replace %s => %s %s\n' "$m" "$m" "$3"; done
}

# locked NAME COMMAND... -> run COMMAND holding an exclusive lock on $cache/locks/NAME.lock
locked() {
  local lock=$cache/locks/$1.lock; shift
  mkdir -p "${lock%/*}"
  (
    flock --nonblock 9 || { log "waiting for another build to release $lock"; flock 9; }
    "$@"
  ) 9>"$lock"
}

build_kubernetes() {
  local out=$cache/bin/kubernetes-$KUBE_VERSION
  local cmds=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)
  local missing=()
  for c in "${cmds[@]}"; do [[ -x $out/$c ]] || missing+=("$c"); done
  if ((${#missing[@]} == 0)); then log "kubernetes $KUBE_VERSION: cached in $out"; return; fi
  local work=$cache/src/kubernetes-$KUBE_VERSION staging=v0.${KUBE_VERSION#v1.}
  mkdir -p "$work" "$out"
  log "kubernetes $KUBE_VERSION: resolving modules (staging $staging)"
  local gomod; gomod=$(go_mod_file "k8s.io/kubernetes@$KUBE_VERSION")
  {
    printf 'module weavergen.local/kubernetes-build\n\ngo %s\n\n' "$(sed -n 's/^go //p' "$gomod")"
    printf 'require k8s.io/kubernetes %s\n\n' "$KUBE_VERSION"
    replace_lines "$gomod" 'k8s.io/' "$staging"
    for c in "${missing[@]}"; do printf 'tool k8s.io/kubernetes/cmd/%s\n' "$c"; done
  } >"$work/go.mod"
  (cd "$work" && go mod tidy)
  local major=${KUBE_VERSION#v}; major=${major%%.*}
  local minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  for c in "${missing[@]}"; do
    log "kubernetes $KUBE_VERSION: building $c (several minutes)"
    (cd "$work" &&
      go build -trimpath -ldflags "$ldflags" -o "$out/$c.tmp.$$" "k8s.io/kubernetes/cmd/$c")
    mv "$out/$c.tmp.$$" "$out/$c"
  done
  log "kubernetes $KUBE_VERSION: built ${missing[*]} into $out"
}

build_etcd() {
  local out=$cache/bin/etcd-$ETCD_VERSION
  if [[ -x $out/etcd ]]; then log "etcd $ETCD_VERSION: cached in $out"; return; fi
  local work=$cache/src/etcd-$ETCD_VERSION
  mkdir -p "$work" "$out"
  log "etcd $ETCD_VERSION: resolving modules"
  local gomod; gomod=$(go_mod_file "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  {
    printf 'module weavergen.local/etcd-build\n\ngo %s\n\n' "$(sed -n 's/^go //p' "$gomod")"
    printf 'require go.etcd.io/etcd/server/v3 %s\n\n' "$ETCD_VERSION"
    replace_lines "$gomod" 'go.etcd.io/etcd/' "$ETCD_VERSION"
    printf 'tool go.etcd.io/etcd/server/v3\n'
  } >"$work/go.mod"
  (cd "$work" && go mod tidy)
  log "etcd $ETCD_VERSION: building etcd"
  (cd "$work" &&
    go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp.$$" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp.$$" "$out/etcd"
  log "etcd $ETCD_VERSION: built into $out"
}

build_helm() {
  local out=$cache/bin/helm-$HELM_VERSION
  if [[ -x $out/helm ]]; then log "helm $HELM_VERSION: cached in $out"; return; fi
  mkdir -p "$out"
  log "helm $HELM_VERSION: building helm"
  GOBIN=$out go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "helm $HELM_VERSION: built into $out"
}

build_coredns() {
  local out=$cache/bin/coredns-$COREDNS_VERSION
  if [[ -x $out/coredns ]]; then log "coredns $COREDNS_VERSION: cached in $out"; return; fi
  mkdir -p "$out"
  log "coredns $COREDNS_VERSION: building coredns"
  GOBIN=$out go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  log "coredns $COREDNS_VERSION: built into $out"
}

started=$(date +%s)
locked "etcd-$ETCD_VERSION" build_etcd
locked "kubernetes-$KUBE_VERSION" build_kubernetes
locked "helm-$HELM_VERSION" build_helm
locked "coredns-$COREDNS_VERSION" build_coredns
log "control plane binaries ready in $(( $(date +%s) - started ))s"
