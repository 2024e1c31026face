#!/usr/bin/env bash
# Build the real Dockerfile with podman (daemonless, as root; no Docker engine runs here) and tag it
# ghcr.io/driftwatch/driftwatch:<pyproject version>. The base is $DW_IMAGE_BASE when set (e.g.
# python:3.11-slim on a machine that can pull it), else the local stand-in of scripts/base-image.sh.
# podman's layer cache makes a rebuild without changes take seconds. Prints the image reference on
# stdout (the tests in tests/image/ use it); progress lines go to stderr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "[image] $*" >&2; }
command -v podman >/dev/null || { log "podman is missing: run scripts/install-image-tools.sh"; exit 1; }
# runc: crun refuses this host's hybrid cgroup layout ("cgroups in hybrid mode not supported")
podman=(podman --runtime "${DW_PODMAN_RUNTIME:-runc}")
base=${DW_IMAGE_BASE:-$(bash scripts/base-image.sh)}
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain -- Dockerfile .dockerignore pyproject.toml README.md LICENSE driftwatch 2>/dev/null) ]]; then
  commit+="-dirty"
fi
ref=${DW_IMAGE:-ghcr.io/driftwatch/driftwatch:$version}
# a TLS-intercepting proxy's CA bundle, when pip on this host is configured with one (PIP_CERT or
# SSL_CERT_FILE): a build secret, so it reaches the dependency step's pip but no image layer
secret=()
ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [[ -n $ca && -s $ca ]]; then
  secret=(--secret "id=pip-ca,src=$ca")
fi
log "building $ref from Dockerfile on $base (commit $commit)"
start=$(date +%s)
# --label and --env as well as the build args: podman 4.3's layer cache reuses a cached LABEL step whose ARG
# changed (a new commit kept the old revision); --label is applied to the final image every time.
# host network: RUN steps reach Debian's and PyPI's mirrors without a container network stack;
# modest limits: this host refuses higher ones
"${podman[@]}" build --network host --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
  --build-arg "BASE=$base" --build-arg "VERSION=$version" --build-arg "GIT_COMMIT=$commit" \
  --label "org.opencontainers.image.revision=$commit" --label "org.opencontainers.image.version=$version" \
  --env "DRIFTWATCH_GIT_COMMIT=$commit" \
  "${secret[@]}" --tag "$ref" --file Dockerfile . >&2
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$ref")
log "built $ref in $(($(date +%s) - start)) s: $((size / 1000000)) MB"
echo "$ref"
