#!/usr/bin/env bash
# The local stand-in for python:3.11-slim: no registry image can be pulled on the development machine
# or in CI, so `make image` builds the real Dockerfile on top of this (--build-arg BASE=...).
# What it is: Debian bookworm (minbase, merged-/usr, no docs/man/locales, apt lists removed, as
# debian:bookworm-slim) with Debian's python3.11 + venv and the few packages python:3.11-slim also
# carries (ca-certificates, netbase, tzdata), made by mmdebstrap and imported with `podman import`.
# Tagged with a hash of its recipe (the mmdebstrap options and the image configuration below); the
# root filesystem tarball is cached in $DW_CACHE/base-image-<hash>/, so a second run is instant and
# only re-imports the tarball when podman's store lost the image.
# Prints the image reference (localhost/driftwatch-base:<hash>) on stdout; progress goes to stderr.
set -euo pipefail
cache=${DW_CACHE:-$HOME/.cache/driftwatch}
podman=(podman --runtime "${DW_PODMAN_RUNTIME:-runc}")
log() { echo "[base-image] $*" >&2; }

# --- the recipe: changing any of it changes the tag and the cache directory ---
# merged-usr hook: bookworm's layout (/bin -> usr/bin) without pulling in the usrmerge package (perl);
# the path-excludes are the ones debian:bookworm-slim uses (copyright files stay)
recipe=(
  --variant=minbase --format=tar
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='APT::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --include=python3,python3-venv,ca-certificates,netbase,tzdata
)
# an imported tarball has no configuration: python:3.11-slim's PATH, LANG and CMD
config=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
  --change 'CMD ["python3"]'
)
suite=bookworm
# -------------------------------------------------------------------------------

hash=$(printf '%s\n' "$suite" "${recipe[@]}" "${config[@]}" | sha256sum | cut -c1-16)
ref="localhost/driftwatch-base:$hash"
dir="$cache/base-image-$hash"
tarball="$dir/rootfs.tar"

for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run scripts/install-image-tools.sh"; exit 1; }
done
if "${podman[@]}" image exists "$ref"; then
  log "$ref already in podman's store"
  echo "$ref"
  exit 0
fi
mkdir -p "$dir"
# one builder at a time (two `make image` runs at once share the cache)
exec 9>"$dir/.lock"
flock 9
if [[ ! -s $tarball ]]; then
  log "building the $suite + python3.11 root filesystem with mmdebstrap (20 s to 2 min)"
  start=$(date +%s)
  tmp="$tarball.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  # the mirrors are not part of the recipe: any mirror serves the same packages
  mirror=${DW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  security=${DW_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
  mmdebstrap "${recipe[@]}" "$suite" "$tmp" \
    "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main" \
    >"$dir/mmdebstrap.log" 2>&1 ||
    { tail -n 40 "$dir/mmdebstrap.log" >&2; log "mmdebstrap failed (log: $dir/mmdebstrap.log)"; exit 1; }
  mv "$tmp" "$tarball"
  trap - EXIT
  log "root filesystem: $(du -h "$tarball" | cut -f1) in $(($(date +%s) - start)) s ($tarball)"
else
  log "re-importing the cached root filesystem $tarball"
fi
"${podman[@]}" image exists "$ref" || "${podman[@]}" import --quiet "${config[@]}" \
  --message "driftwatch stand-in for python:3.11-slim (scripts/base-image.sh, recipe $hash)" \
  "$tarball" "$ref" >/dev/null
log "imported $ref"
echo "$ref"
