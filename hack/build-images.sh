#!/usr/bin/env bash
# Builds the container images a local Kubernetes node needs, without a registry and without a
# container daemon (buildah, as root), cached by a content hash of their inputs:
#
#   pause     the sandbox image, localhost/weavergen/pause:$PAUSE_VERSION: upstream
#             build/pause/linux/pause.c of k8s.io/kubernetes@$KUBE_VERSION (from the Go module
#             cache) compiled with gcc -static
#   base      Debian $DEBIAN_RELEASE minbase + python3 by debootstrap from the mirror this
#             machine's apt uses; a build input only, kept in buildah's storage
#             (localhost/weavergen/python:3.11-$DEBIAN_RELEASE-<key>)
#   operator  the repository's Dockerfile on that base, named
#             docker.io/library/weavergen-operator:<version>, which the chart's default image
#             weavergen-operator:<version> resolves to
#   collector the OpenTelemetry Collector of hack/build-collector.sh alone, named
#             docker.io/library/weavergen-otelcol:<version> (the chart's collector.image)
#
# Prints on stdout one line per node image, pause, operator, collector: the absolute path of its OCI
# archive, for `ctr -n k8s.io images import`. Nothing else goes to stdout (nothing at all when a
# build fails); progress goes to stderr. A run with unchanged inputs builds nothing. Each image is
# built under a lock, so concurrent runs build it once: the second waits, then finds it cached.
#
# The cache, ${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}/images: <name>-<key>.tar archives (the
# newest 3 per name are kept), logs/, and storage/ (buildah's own, not /var/lib/containers).
# WEAVERGEN_IMAGE_CONTEXT builds the operator from another checkout (default: this repository);
# WEAVERGEN_DEBIAN_MIRROR overrides the mirror read from the apt sources.
set -euo pipefail
shopt -s inherit_errexit  # the builds run in $(...): a failing step must stop them there too

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${WEAVERGEN_CACHE:-$HOME/.cache/weavergen}
context=$(cd "${WEAVERGEN_IMAGE_CONTEXT:-$here/..}" && pwd)
out=$cache/images
store=$out/storage
# buildah's runtime state (mount bookkeeping): volatile, one per storage, and a short path
runroot=/run/weavergen/buildah/$(printf %s "$store" | sha256sum | cut -c1-8)
keep=3            # archives kept per image name
base_python=3.11  # what $DEBIAN_RELEASE's python3 must be (the Dockerfile's PYTHON_VERSION)
base_packages=python3,python3-venv,python-is-python3,ca-certificates
ca_bundle=/etc/ssl/certs/ca-certificates.crt

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
need() { for c in "$@"; do command -v "$c" >/dev/null || die "$c is required"; done; }

(($# == 0)) || die "usage: $0 (no arguments; see its header)"
((EUID == 0)) || die "buildah storage, mounts and debootstrap need root"
need buildah
mkdir -p "$out/logs" "$store" "$runroot" "$cache/locks"

bah() { buildah --root "$store" --runroot "$runroot" --storage-driver overlay "$@"; }
key() { sha256sum | cut -c1-16; }

# locked NAME COMMAND... -> run COMMAND holding an exclusive lock on $cache/locks/NAME.lock
locked() {
  local lock=$cache/locks/$1.lock; shift
  (
    flock --nonblock 9 || { log "waiting for another build to release $lock"; flock 9; }
    "$@"
  ) 9>"$lock"
}

# Builds share buildah's storage; each holds it shared while it builds. Pruning it needs it to
# itself (an untagged image of a running build is that build's work in progress), so a build
# prunes only when no other build runs; the last one to finish does.
storage_shared() {
  exec 8>"$cache/locks/images-storage.lock"
  flock --shared 8
}
storage_prune() {
  if flock --exclusive --nonblock 8; then
    bah rmi --prune >/dev/null || log "warning: pruning dangling images failed"
  else
    log "another build uses the storage: leaving dangling images to it"
  fi
  exec 8>&-
}

# keep_newest NAME -> delete all but the newest $keep archives NAME-*.tar (a reused one is touched)
keep_newest() {
  local old
  # shellcheck disable=SC2012  # the names are ours: NAME-<hex key>.tar
  old=$(ls -1t "$out/$1"-*.tar 2>/dev/null | tail -n +$((keep + 1)) || true)
  [[ -n $old ]] || return 0
  log "$1: removing older archives: ${old//$'\n'/ }"
  xargs -d '\n' rm -f <<<"$old"
}

# push_archive REF NAME TAR -> write image REF to the OCI archive TAR as NAME, atomically
push_archive() {
  rm -f "$3".tmp.*
  bah push --quiet "$1" "oci-archive:$3.tmp.$$:$2" >&2
  mv "$3.tmp.$$" "$3"
}

cached() { touch "$1"; log "$2 cached: $1 ($(du -h "$1" | cut -f1))"; echo "$1"; }

# archive KIND REF NAME TAR T0 -> write the built image REF to TAR as NAME, keep the build storage
# and the archives of KIND lean, and print TAR (every image's last steps)
archive() {
  push_archive "$2" "$3" "$4"
  storage_prune
  keep_newest "$1"
  log "$1 built in $((SECONDS - $5))s: $4 ($(du -h "$4" | cut -f1))"
  echo "$4"
}

# -- pause ---------------------------------------------------------------------------------------

pause_ref=localhost/weavergen/pause:$PAUSE_VERSION

pause_src() {
  need go
  local dir
  dir=$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION
  if [[ ! -f $dir/build/pause/linux/pause.c ]]; then
    log "pause: downloading k8s.io/kubernetes@$KUBE_VERSION into the Go module cache"
    local tmp
    tmp=$(mktemp -d)  # outside any module
    dir=$(cd "$tmp" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
      sed -n 's/.*"Dir": "\(.*\)",/\1/p')
    rmdir "$tmp"
  fi
  echo "$dir/build/pause/linux/pause.c"
}

build_pause() {
  local src k tar
  src=$(pause_src)
  k=$({
    echo "$PAUSE_VERSION"; cat "$src"; gcc --version | head -1
    dpkg-query -W libc6-dev 2>/dev/null || true  # the static libc linked in
    declare -f build_pause
  } | key)
  tar=$out/pause-$k.tar
  if [[ -f $tar ]]; then cached "$tar" pause; return; fi
  need gcc strip
  local t0=$SECONDS work c=weavergen-pause-$$
  work=$(mktemp -d)
  # shellcheck disable=SC2064  # expanded now: the trap outlives these locals
  trap "rm -rf '$work'; rm -f '$tar'.tmp.*; bah rm $c >/dev/null 2>&1 || true" EXIT
  log "pause: compiling $src"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-weavergen" -o "$work/pause" "$src" >&2
  strip "$work/pause"
  storage_shared
  bah from --name "$c" scratch >/dev/null
  bah copy --chmod 0755 "$c" "$work/pause" /pause >/dev/null
  bah config --entrypoint '["/pause"]' --user 65535:65535 --label \
    org.opencontainers.image.description="pause $PAUSE_VERSION of kubernetes $KUBE_VERSION" "$c"
  bah commit --rm --quiet "$c" "$pause_ref" >/dev/null
  archive pause "$pause_ref" "$pause_ref" "$tar" "$t0"
}

# -- base ----------------------------------------------------------------------------------------

# debian_mirror -> the URI of the apt source for $DEBIAN_RELEASE (else for this machine's own
# release: a Debian mirror serves every release), from deb822 .sources or one-line .list files
debian_mirror() {
  if [[ -n ${WEAVERGEN_DEBIAN_MIRROR:-} ]]; then echo "$WEAVERGEN_DEBIAN_MIRROR"; return; fi
  local host_release uri suite
  # shellcheck source=/dev/null
  host_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  for suite in "$DEBIAN_RELEASE" "$host_release"; do
    [[ -n $suite ]] || continue
    uri=$({
      for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk -v suite="$suite" '
          function flush() {
            if (types ~ /(^| )deb( |$)/ && (suites " ") ~ (" " suite " ") && enabled != "no")
              print uris
            types = suites = uris = enabled = ""
          }
          /^[[:space:]]*$/ { flush(); next }
          tolower($1) == "types:"   { $1 = ""; types = $0 }
          tolower($1) == "suites:"  { $1 = ""; suites = $0 }
          tolower($1) == "uris:"    { uris = $2 }
          tolower($1) == "enabled:" { enabled = tolower($2) }
          END { flush() }' "$f"
      done
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed 's/\[[^]]*\]//' | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }'
    } | grep -E '^(https?|file)://' | head -1 || true)
    if [[ -n $uri ]]; then echo "$uri"; return; fi
  done
  die "no apt source for $DEBIAN_RELEASE or this machine's release; set WEAVERGEN_DEBIAN_MIRROR"
}

# remove_rootfs DIR -> delete a debootstrap root; never through a mount (debootstrap mounts proc
# and sys inside the root it builds, and unmounts them itself unless it is killed)
remove_rootfs() {
  { findmnt -rno TARGET | grep -F "$1/" || true; } | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$1"
}

base_key() { { echo "$DEBIAN_RELEASE $base_packages $base_python"; declare -f build_base; } | key; }
base_ref() { echo "localhost/weavergen/python:$base_python-$DEBIAN_RELEASE-$(base_key)"; }

build_base() {
  local ref
  ref=$(base_ref)
  if bah inspect --type image "$ref" >/dev/null 2>&1; then
    log "base cached: $ref"; echo "$ref"; return
  fi
  need debootstrap
  local t0=$SECONDS mirror work blog=$out/logs/base-debootstrap.log c=weavergen-base-$$ m
  mirror=$(debian_mirror)
  work=$(mktemp -d "$out/base-rootfs.XXXXXX")
  # shellcheck disable=SC2064  # expanded now: the trap outlives these locals
  trap "remove_rootfs '$work'; bah rm $c >/dev/null 2>&1 || true" EXIT
  log "base: debootstrap $DEBIAN_RELEASE minbase + $base_packages from $mirror (log: $blog)"
  debootstrap --variant=minbase --include="$base_packages" "$DEBIAN_RELEASE" "$work" "$mirror" \
    >"$blog" 2>&1 || { tail -n 30 "$blog" >&2; die "debootstrap failed (log: $blog)"; }
  [[ -x $work/usr/bin/python$base_python ]] ||
    die "$DEBIAN_RELEASE's python3 is not $base_python: $(ls "$work"/usr/bin/python3.* 2>/dev/null)"
  # an image, not a machine: no package caches or lists, logs, docs (the copyright files stay),
  # device nodes, or this machine's resolv.conf and hostname
  (
    cd "$work"
    rm -rf var/cache/apt/* var/lib/apt/lists/* var/log/* usr/share/{man,info}/* dev/* proc/* sys/* \
      run/* tmp/* var/cache/debconf/*-old var/lib/dpkg/*-old
    find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
    find usr/share/doc -mindepth 1 -type d -empty -delete
    : >etc/resolv.conf
    : >etc/hostname
  )
  storage_shared
  bah from --name "$c" scratch >/dev/null
  m=$(bah mount "$c")
  tar -C "$work" --numeric-owner -cf - . | tar -C "$m" --numeric-owner -xpf -
  bah umount "$c" >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["python3"]' --label \
    org.opencontainers.image.description="Debian $DEBIAN_RELEASE minbase + python$base_python" "$c"
  bah commit --rm --quiet "$c" "$ref" >/dev/null
  # older bases: untagged once no kept build depends on them, then pruned like any dangling image
  local old
  old=$(bah images --filter reference=localhost/weavergen/python \
    --format '{{.CreatedAtRaw}} {{.Name}}:{{.Tag}}' |
    sort -r | awk '{ print $NF }' | grep -vxF "$ref" | tail -n +"$keep" || true)
  for o in $old; do bah rmi "$o" >/dev/null 2>&1 || log "base: $o still in use, kept"; done
  storage_prune
  log "base built in $((SECONDS - t0))s: $ref"
  echo "$ref"
}

# -- operator ------------------------------------------------------------------------------------

# context_files -> the files .dockerignore lets into the build context, relative and sorted
context_files() {
  (cd "$context" && find pyproject.toml README.md operator bpmn -type f ! -path '*/__pycache__/*' \
    ! -name '*.pyc' ! -regex 'operator/[^/]*\.egg-info/.*' | LC_ALL=C sort)
}

build_operator() {
  local version name k tar
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$context/pyproject.toml")
  [[ -n $version ]] || die "no version in $context/pyproject.toml"
  name=docker.io/library/weavergen-operator:$version
  k=$({
    base_key
    (cd "$context" && context_files | xargs -d '\n' sha256sum && sha256sum Dockerfile .dockerignore)
    declare -f build_operator
  } | key)
  tar=$out/operator-$k.tar
  if [[ -f $tar ]]; then cached "$tar" operator; return; fi
  local base t0 blog=$out/logs/operator-build.log
  base=$(locked image-base build_base)
  t0=$SECONDS
  storage_shared
  log "operator $version: building $context on $base (log: $blog)"
  # shellcheck disable=SC2064  # expanded now: the trap outlives these locals
  trap "rm -f '$tar'.tmp.*" EXIT
  # --layers: a change to operator/ reuses the dependency layer. The RUN steps see this machine's
  # CA bundle, so pip verifies TLS as the host does (also behind an intercepting proxy).
  local bud=(bud --pull=never --layers --force-rm --network host --file "$context/Dockerfile"
    --build-arg BASE_IMAGE="$base" --build-arg VERSION="$version")
  [[ ! -f $ca_bundle ]] || bud+=(--volume "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro")
  # The build stage is tagged first: untagged, its layers (the dependencies) would be dangling
  # once the final image is built, and pruned. The final build then finds them in the cache.
  { bah "${bud[@]}" --target build --tag localhost/weavergen/operator-build-stage "$context" &&
    bah "${bud[@]}" --tag "localhost/weavergen-operator:$version" "$context"; } >"$blog" 2>&1 ||
    { tail -n 40 "$blog" >&2; die "operator build failed (log: $blog)"; }
  log "operator $version: image built in $((SECONDS - t0))s, writing the archive"
  archive operator "localhost/weavergen-operator:$version" "$name" "$tar" "$t0"
}

# -- collector -----------------------------------------------------------------------------------

# The Collector distribution of hack/build-collector.sh: a static binary, so the image is the
# binary alone, with the chart's example configuration as its default.
build_collector() {
  bash "$here/build-collector.sh"
  local version=${OTELCOL_VERSION#v} bin k tar
  bin=$cache/bin/otelcol-$OTELCOL_VERSION/weavergen-otelcol
  local config=$here/../charts/weavergen-operator/files/collector.yaml
  local name=docker.io/library/weavergen-otelcol:$version ref=localhost/weavergen-otelcol:$version
  k=$({ echo "$version"; sha256sum "$bin" "$config"; declare -f build_collector; } | key)
  tar=$out/collector-$k.tar
  if [[ -f $tar ]]; then cached "$tar" collector; return; fi
  local t0=$SECONDS c=weavergen-collector-$$
  # shellcheck disable=SC2064  # expanded now: the trap outlives these locals
  trap "rm -f '$tar'.tmp.*; bah rm $c >/dev/null 2>&1 || true" EXIT
  storage_shared
  bah from --name "$c" scratch >/dev/null
  bah copy --chmod 0755 "$c" "$bin" /weavergen-otelcol >/dev/null
  bah copy --chmod 0644 "$c" "$config" /etc/otelcol/config.yaml >/dev/null
  bah config --entrypoint '["/weavergen-otelcol"]' --cmd '["--config=/etc/otelcol/config.yaml"]' \
    --user 65534:65534 --label \
    org.opencontainers.image.description="OpenTelemetry Collector $version, built for WeaverGen" "$c"
  bah commit --rm --quiet "$c" "$ref" >/dev/null
  archive collector "$ref" "$name" "$tar" "$t0"
}

started=$SECONDS
pause=$(locked image-pause build_pause)
operator=$(locked image-operator build_operator)
collector=$(locked image-collector build_collector)
log "images ready in $((SECONDS - started))s"
printf '%s\n' "$pause" "$operator" "$collector"
