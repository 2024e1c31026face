#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kubectl and helm from their Go modules into a
# versioned cache outside the clone. There is no prebuilt Kubernetes to download here, so we compile it
# once (about 10-20 minutes on two cores) and every later run reuses the cache.
#
# Cache layout:  $DW_CACHE/<component>-<version>/{bin...,.complete}
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

# build_component NAME VERSION SETUP_FN BUILD_FN
build_component() {
  local name=$1 version=$2 setup=$3 build=$4
  local dest="$DW_CACHE/$name-$version"
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
k8s_setup() {
  go mod init driftwatch.local/k8s-build >/dev/null 2>&1
  local gomod
  # the go.mod as published, through the module proxy go is configured with
  gomod=$(cat "$(go mod download -json "k8s.io/kubernetes@$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')")
  local mods
  mods=$(printf '%s\n' "$gomod" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' | sort -u)
  [[ -n "$mods" ]] || { log "could not read staging modules from k8s.io/kubernetes@$1 go.mod"; return 1; }
  local args=()
  for m in $mods; do args+=("-replace=$m=$m@$K8S_STAGING_VERSION"); done
  go mod edit "${args[@]}"
  # every `go get` names the version: a bare package path would mean @upgrade, i.e. the newest release
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$1" "k8s.io/kubernetes/cmd/kube-controller-manager@$1" \
    "k8s.io/kubernetes/cmd/kubectl@$1"
}
k8s_build() {
  local v=$1 ld="-s -w"
  ld+=" -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitVersion=$v"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    go build -v -ldflags "$ld" -o "out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

# --- helm
helm_setup() {
  go mod init driftwatch.local/helm-build >/dev/null 2>&1
  go get "helm.sh/helm/v3/cmd/helm@$1"
}
helm_build() { go build -v -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$1" -o out/helm helm.sh/helm/v3/cmd/helm; }

only=${1:-all}
[[ $only == all || $only == etcd ]] && build_component etcd "$ETCD_VERSION" etcd_setup etcd_build
[[ $only == all || $only == kubernetes ]] && build_component kubernetes "$K8S_VERSION" k8s_setup k8s_build
[[ $only == all || $only == helm ]] && build_component helm "$HELM_VERSION" helm_setup helm_build
log "all binaries ready under $DW_CACHE"
