#!/usr/bin/env bash
# Install what builds and runs the DriftWatch image without a Docker engine: podman (daemonless,
# builds the real Dockerfile), runc (its runtime here: crun refuses this host's hybrid cgroup layout)
# and mmdebstrap (makes the local stand-in for python:3.11-slim, scripts/base-image.sh, since no
# registry image can be pulled). Skips what is already there.
set -euo pipefail
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if ((${#need[@]} == 0)); then
  echo "[image-tools] podman, runc, mmdebstrap already installed"
  exit 0
fi
sudo=""
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "[image-tools] need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "[image-tools] installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# another apt run (install-system-deps.sh, a parallel job) may hold the dpkg lock: wait for it
apt_opts=(-o DPkg::Lock::Timeout=600)
$sudo apt-get "${apt_opts[@]}" update -qq
# --no-install-recommends: builds and containers use the host network (no slirp4netns, no rootless
# helpers); podman's hard dependencies (conmon, containers-common, a network stack) still come along
$sudo apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "[image-tools] installed: $(podman --version) / $(runc --version | head -1) / mmdebstrap $(mmdebstrap --version | cut -d' ' -f2)"
