#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kubectl, kube-scheduler, kwok, helm, the Argo
# Rollouts controller and the Flagger controller (with their CRDs) from their Go modules into a versioned
# cache outside the clone. There is no prebuilt Kubernetes to download here, so we compile it once (about
# 10-20 minutes on two cores for Kubernetes, a few more for each of the others) and every later run reuses
# the cache.
#
# Cache layout:  $DW_CACHE/<component>-<version>/{bin...,.complete}
# Usage:         build-k8s.sh [all|etcd|kubernetes|kube-scheduler|kwok|helm|argo-rollouts|flagger]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
source "$here/versions.env"
DW_CACHE=${DW_CACHE:-$HOME/.cache/driftwatch}
export GOFLAGS="-mod=mod -trimpath" GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0
mkdir -p "$DW_CACHE"

log() { printf '[build-k8s %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# go build -v prints each package it compiles; turn that into a compact progress line every 100.
progress() {
  local name=$1 n=0
  while IFS= read -r line; do
    case "$line" in
      *.go:[0-9]*|"go: "*|"#"*) printf '%s\n' "$line" ;;   # real diagnostics pass through
      *) n=$((n + 1)); if (( n % 100 == 0 )); then log "$name: $n packages compiled"; fi ;;
    esac
  done
  log "$name: $n packages compiled in total"
}

# `go get` announces every module it fetches; summarise that instead of printing hundreds of lines.
quiet_setup() {
  local name=$1 n=0
  while IFS= read -r line; do
    case "$line" in
      "go: downloading"*) n=$((n + 1)); if (( n % 50 == 0 )); then log "$name: $n modules downloaded"; fi ;;
      "go: added"*|"go: upgraded"*|"go: finding"*) ;;
      *) printf '%s\n' "$line" ;;
    esac
  done
  log "$name: module graph ready ($n modules downloaded)"
}

# build_component NAME VERSION SETUP_FN BUILD_FN [FILE...]
# FILEs: what a complete cache directory holds; one missing (a cache written before the component built
# it) means a rebuild, so adding an output to a component needs no version bump.
build_component() {
  local name=$1 version=$2 setup=$3 build=$4 file
  shift 4
  local dest="$DW_CACHE/$name-$version"
  if [[ -f "$dest/.complete" ]]; then
    for file in "$@"; do
      [[ -e "$dest/$file" ]] || { log "$name $version: cache in $dest has no $file, rebuilding"; rm -f "$dest/.complete"; break; }
    done
  fi
  if [[ -f "$dest/.complete" ]]; then
    log "$name $version: cached in $dest"
    return 0
  fi
  local start=$SECONDS work
  work=$(mktemp -d "$DW_CACHE/.build-$name-XXXX")
  log "$name $version: building (module setup, download, compile) in $work"
  (
    cd "$work"
    "$setup" "$version" 2>&1 | quiet_setup "$name"   # pipefail (set above) propagates go's exit code
    mkdir -p out
    "$build" "$version" 2>&1 | progress "$name"
  )
  rm -rf "$dest" && mkdir -p "$dest"
  mv "$work"/out/* "$dest"/ && rm -rf "$work"
  touch "$dest/.complete"
  log "$name $version: done in $((SECONDS - start))s -> $dest"
}

# --- etcd: the server module has package main at its root and replace lines in go.mod, so
#     `go install` refuses it; require it from a wrapper module instead.
etcd_setup() {
  go mod init driftwatch.local/etcd-build >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$1"
}
etcd_build() { go build -v -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3; }

# --- kubernetes: its go.mod requires every staging module at v0.0.0 with local replaces that do not
#     apply to a consumer; replace each with the tagged v0.X.Y (kubernetes/kubernetes#79384).
# k8s_module_setup VERSION CMD...: a wrapper module requiring k8s.io/kubernetes/cmd/CMD for each CMD
k8s_module_setup() {
  local version=$1; shift
  go mod init driftwatch.local/k8s-build >/dev/null 2>&1
  local gomod
  # the go.mod as published, through the module proxy go is configured with
  gomod=$(cat "$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')")
  local mods
  mods=$(printf '%s\n' "$gomod" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' | sort -u)
  [[ -n "$mods" ]] || { log "could not read staging modules from k8s.io/kubernetes@$version go.mod"; return 1; }
  local args=()
  for m in $mods; do args+=("-replace=$m=$m@$K8S_STAGING_VERSION"); done
  go mod edit "${args[@]}"
  # every `go get` names the version: a bare package path would mean @upgrade, i.e. the newest release
  local pkgs=()
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd@$version"); done
  go get "${pkgs[@]}"
}
# k8s_module_build VERSION CMD...: each CMD into out/, with the version stamped in as `make` would
k8s_module_build() {
  local v=$1 ld="-s -w"; shift
  ld+=" -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitVersion=$v"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in "$@"; do
    go build -v -ldflags "$ld" -o "out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}
k8s_setup() { k8s_module_setup "$1" kube-apiserver kube-controller-manager kubectl; }
k8s_build() { k8s_module_build "$1" kube-apiserver kube-controller-manager kubectl; }

# --- kube-scheduler: same module and version as the control plane, in its own cache directory so that
#     adding it never invalidates (or rebuilds) an existing kubernetes-<version> cache. Go's build cache
#     still has most of the shared packages from the kubernetes build, which makes this one quick.
scheduler_setup() { k8s_module_setup "$1" kube-scheduler; }
scheduler_build() { k8s_module_build "$1" kube-scheduler; }

# --- kwok: fake nodes whose pods go Running and Ready. The standalone `kwok` binary has no built-in
#     behaviour (kwokctl normally writes it a config), so the default stages kwokctl uses -- node
#     initialise, node heartbeat with lease, pod ready/complete/delete -- are copied out of the module
#     source into stages.yaml, which the harness passes as --config.
kwok_setup() {
  go mod init driftwatch.local/kwok-build >/dev/null 2>&1
  go get "sigs.k8s.io/kwok/cmd/kwok@$1"
}
kwok_build() {
  go build -v -ldflags "-s -w" -o out/kwok sigs.k8s.io/kwok/cmd/kwok
  local src stage
  src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n' && cat "$src/kustomize/stage/$stage.yaml"
  done >out/stages.yaml
}

# --- helm
helm_setup() {
  go mod init driftwatch.local/helm-build >/dev/null 2>&1
  go get "helm.sh/helm/v3/cmd/helm@$1"
}
helm_build() { go build -v -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$1" -o out/helm helm.sh/helm/v3/cmd/helm; }

# --- controllers built as the main module from their own source (Argo Rollouts, Flagger), so the replace
#     lines of their go.mod (k8s staging modules, as for kubernetes above) apply and the dependency
#     versions are the ones the release was tested with. The source is the module zip from the Go module
#     proxy (verified by go's checksum database), unpacked by hand: `go mod download` verifies and stores
#     the zip but refuses to extract a module whose go directive names a newer Go patch release than the
#     local toolchain (Argo v1.10.2 says 1.26.10), and no other toolchain can be fetched here. Such a
#     directive is lowered to the local version (same language version; the patch level only picks a
#     toolchain). Their CRDs come from the same source.
# unpack_module MODULE VERSION: the module's source in ./src
unpack_module() {
  local module=$1 version=$2 zip meta
  meta=$(go mod download -json "$module@$version" || true)
  zip=$(printf '%s\n' "$meta" | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",$/\1/p')
  [[ -f "$zip" && -f "${zip%.zip}.ziphash" ]] || { printf '%s\n' "$meta"; log "$module@$version: module zip not downloaded"; return 1; }
  python3 -m zipfile -e "$zip" unpacked
  mv "unpacked/$module@$version" src && rm -rf unpacked
  local want have
  want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' src/go.mod)
  have=$(go env GOVERSION | sed 's/^go//')
  if [[ $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1) != "$want" ]]; then
    log "$module: go.mod asks for go $want, building with local go $have (same language version)"
    (cd src && go mod edit -go="$have" -toolchain=none)
  fi
}

# --- Argo Rollouts controller
argo_setup() {
  unpack_module github.com/argoproj/argo-rollouts "$1"
  (cd src && go list -deps ./cmd/rollouts-controller >/dev/null)   # downloads the dependencies ("go: downloading")
}
argo_build() {
  local ld="-s -w -X github.com/argoproj/argo-rollouts/utils/version.version=${1#v}"  # it prepends the v
  ld+=" -X github.com/argoproj/argo-rollouts/utils/version.gitTreeState=clean"
  (cd src && go build -v -ldflags "$ld" -o ../out/rollouts-controller ./cmd/rollouts-controller)
  mkdir -p out/crds
  cp src/manifests/crds/*-crd.yaml out/crds/
}

# --- Flagger controller (run with -mesh-provider=kubernetes: no mesh) and its CRDs (Canary,
#     MetricTemplate, AlertProvider), against which deploy/rollouts/'s Flagger files are applied. Its
#     version string is in the source (pkg/version), the revision is the module's tag.
flagger_setup() {
  unpack_module github.com/fluxcd/flagger "$1"
  (cd src && go list -deps ./cmd/flagger >/dev/null)
}
flagger_build() {
  (cd src && go build -v -ldflags "-s -w -X github.com/fluxcd/flagger/pkg/version.REVISION=$1" -o ../out/flagger ./cmd/flagger)
  cp src/artifacts/flagger/crd.yaml out/crd.yaml
}

only=${1:-all}
case $only in
  all|etcd|kubernetes|kube-scheduler|kwok|helm|argo-rollouts|flagger) ;;
  *) log "unknown component '$only' (all|etcd|kubernetes|kube-scheduler|kwok|helm|argo-rollouts|flagger)"; exit 2 ;;
esac
want() { [[ $only == all || $only == "$1" ]]; }
want etcd && build_component etcd "$ETCD_VERSION" etcd_setup etcd_build
want kubernetes && build_component kubernetes "$K8S_VERSION" k8s_setup k8s_build
want kube-scheduler && build_component kube-scheduler "$K8S_VERSION" scheduler_setup scheduler_build
want kwok && build_component kwok "$KWOK_VERSION" kwok_setup kwok_build
want helm && build_component helm "$HELM_VERSION" helm_setup helm_build
want argo-rollouts && build_component argo-rollouts "$ARGO_ROLLOUTS_VERSION" argo_setup argo_build
want flagger && build_component flagger "$FLAGGER_VERSION" flagger_setup flagger_build flagger crd.yaml
log "all binaries ready under $DW_CACHE"
