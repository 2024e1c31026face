#!/usr/bin/env bash
# Install the Debian packages the tests and the demo run for real: Redis (sidecar state),
# Prometheus + promtool (scraping the sidecar, unit-testing alert rules) and wrk (sidecar benchmark);
# then scripts/install-image-tools.sh (podman, runc, mmdebstrap: the image is built and run here).
# Skips what is already there.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v openssl >/dev/null || need+=(openssl)
# wrk: the load generator of bench/sidecar.py
command -v wrk >/dev/null || need+=(wrk)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ((${#need[@]} == 0)); then
  echo "[system-deps] redis-server, prometheus, promtool, wrk already installed"
  # podman, runc, mmdebstrap: building and running the image (make image, tests/image)
  exec bash "$here/install-image-tools.sh"
fi
sudo=""
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "[system-deps] need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "[system-deps] installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps prometheus from pulling in its node-exporter and web assets' extras
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages start system services; the tests start their own private instances instead.
for svc in redis-server prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then $sudo systemctl stop "$svc" || true; fi
  pkill -x "$svc" 2>/dev/null || true
done
echo "[system-deps] installed: $(redis-server --version | cut -d' ' -f3) / $(prometheus --version 2>&1 | head -1)"
# podman, runc, mmdebstrap: building and running the image (make image, tests/image)
exec bash "$here/install-image-tools.sh"
