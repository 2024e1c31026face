# The one DriftWatch image: `driftwatch operator`, `driftwatch sidecar`, `driftwatch gate`, ... are
# entry points of the same package. Build: `make image` (podman, no Docker engine needed; see
# docs/deploy.md). BASE defaults to the registry's python:3.11-slim; where no registry image can be
# pulled (the development machine, CI) `make image` passes a local stand-in built by
# scripts/base-image.sh (Debian bookworm + Debian's python3.11). The steps below work on both.
# What runs in a pod only: no extras, and .dockerignore leaves out the dev-only local cluster
# (driftwatch/devcluster/) and `driftwatch demo` (docs/decisions.md).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# The numeric monitor's fused loop (driftwatch/detect/_kernel.c) is compiled here; the runtime stage
# gets the built virtualenv and no compiler. python:3.11-slim carries Python's headers, Debian's
# python3.11 does not (python3-dev).
RUN set -eu; \
    pkgs="gcc libc6-dev"; \
    python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || pkgs="$pkgs python3-dev"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
    rm -rf /var/lib/apt/lists/*
# A virtualenv, not the system interpreter: Debian's python refuses a system-wide pip install
# (PEP 668), and one venv path (/opt/driftwatch) is the same on both bases.
RUN python3 -m venv /opt/driftwatch
ENV PATH=/opt/driftwatch/bin:$PATH
WORKDIR /src
# Dependencies first, in their own layer: it changes only with pyproject.toml, so a source change
# rebuilds only the layers below. The runtime dependencies ([project].dependencies, no extras) go into
# the venv; the build requirements (setuptools, wheel and theirs) into a separate one that the runtime
# stage never sees, so the source is built offline (no build isolation) and nothing of the build
# leaks into /opt/driftwatch.
# The optional secret `pip-ca` is a CA bundle for a TLS-intercepting proxy in front of PyPI (the
# development machine has one; scripts/build-image.sh passes the host's); it never enters a layer.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca set -eu; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1; \
    python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); print("\n".join(p["project"]["dependencies"]))' > /tmp/runtime.txt; \
    python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); print("\n".join(p["build-system"]["requires"]))' > /tmp/build.txt; \
    pip install -q -r /tmp/runtime.txt; \
    python3 -m venv /opt/build-tools; \
    /opt/build-tools/bin/pip install -q -r /tmp/build.txt; \
    # the libraries' own test suites (numpy's and scipy's alone are ~50 MB) never run in a pod
    find /opt/driftwatch/lib -type d -name tests -prune -exec rm -rf {} +
COPY README.md LICENSE ./
COPY driftwatch ./driftwatch
# The wheel (with the compiled kernel) is built by the build tools' venv and installed without
# dependencies (all in the layer above); then pip and setuptools (which `venv` put there) leave the
# runtime venv (a pod installs nothing), and the kernel must import from the venv (not from /src).
RUN set -eu; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1; \
    /opt/build-tools/bin/pip wheel -q --no-deps --no-build-isolation --wheel-dir /tmp/wheels .; \
    pip install -q --no-deps /tmp/wheels/driftwatch-*.whl; \
    pip uninstall -y -q pip setuptools; \
    cd /; python3 -c 'import driftwatch.detect._kernel as k; print("kernel:", k.__file__)'

FROM ${BASE}
# pip, setuptools and wheel leave the runtime image too: python:3.11-slim installs them system-wide,
# and both bases keep copies as ensurepip wheels (Debian: /usr/share/python-wheels).
# uid/gid 65532 as in the chart and the injected sidecar's securityContext (runAsNonRoot, restricted PSS).
RUN set -eu; \
    if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall -y -q pip setuptools wheel; fi; \
    find / -xdev -type f \( -name 'pip-*.whl' -o -name 'setuptools-*.whl' -o -name 'wheel-*.whl' \) -delete; \
    groupadd --gid 65532 driftwatch; \
    useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin driftwatch
COPY --from=build /opt/driftwatch /opt/driftwatch
ENV PATH=/opt/driftwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
EXPOSE 8476 9476 8080 9443
ENTRYPOINT ["driftwatch"]
CMD ["--help"]
# Last, so a new commit or version only changes the image's metadata, never a cached layer.
ARG BASE
ARG VERSION=dev
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="driftwatch" \
      org.opencontainers.image.source="https://github.com/driftwatch/driftwatch" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.base.name="${BASE}"
# driftwatch_build_info{git_commit} (driftwatch/buildinfo.py) reads it
ENV DRIFTWATCH_GIT_COMMIT=${GIT_COMMIT}
