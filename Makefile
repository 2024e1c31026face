# DriftWatch: every target installs what it needs first (venv, Debian packages, Kubernetes binaries).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DW_CACHE ?= $(HOME)/.cache/driftwatch
export DW_CACHE
PYTEST := $(BIN)/python -m pytest

.PHONY: help setup venv system-deps k8s-bins test unit e2e e2e-kind reliability reliability-table lint bench demo manifests image clean

help:
	@echo "make demo   - a DriftMonitor on a local control plane, drift detected end to end"
	@echo "make test   - every test: unit, integration (Redis, Prometheus, sidecar), the image and e2e (control plane)"
	@echo "make unit   - unit + integration tests only (no control plane, no image)"
	@echo "make image  - build the image from the Dockerfile with podman (IMAGE_BASE=python:3.11-slim where it can be pulled)"
	@echo "make e2e    - only the end-to-end tests against the local control plane"
	@echo "make reliability - the whole fault/security suite (tests/reliability), slow cases included"
	@echo "make reliability-table - docs/reliability.md's table from the last run (KEEP=1: a partial run)"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks under bench/, each printing a table"
	@echo "make manifests - regenerate the chart's copies and the kustomize base from their single sources"

# _kernel.c is compiled by the install (pip builds the extension in place): a change rebuilds it
$(BIN)/.installed: pyproject.toml driftwatch/detect/_kernel.c
	@echo "==> Python virtualenv in $(VENV) (deps pinned by range in pyproject.toml)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test,dev,bench,plot,devcluster,cli]'
	@touch $@

venv: $(BIN)/.installed

system-deps:
	@echo "==> Debian packages (redis-server, prometheus, promtool; podman, runc, mmdebstrap for the image)"
	@bash scripts/install-system-deps.sh

k8s-bins:
	@echo "==> Kubernetes binaries (etcd, kube-apiserver, kube-controller-manager, kubectl, kube-scheduler, kwok, helm, the Argo Rollouts and Flagger controllers) in $(DW_CACHE)"
	@bash scripts/build-k8s.sh

setup: venv system-deps k8s-bins

# image: tests/image run it (their fixture rebuilds it from podman's layer cache, seconds when unchanged)
test: setup image
	@echo "==> all tests (the slow reliability cases too: about a minute together)"
	$(PYTEST) tests

reliability: setup
	@echo "==> the reliability suite (issue 12), slow cases included"
	$(PYTEST) -m reliability tests/reliability

# The run's numbers (build/reliability-table.json, written by the suite) into docs/reliability.md's table.
# A row whose tests did not pass in that run is refused, unless KEEP=1 (it keeps the document's numbers).
reliability-table: venv
	$(BIN)/python tests/reliability/reliability_table.py $(if $(KEEP),--keep,)

unit: venv system-deps
	$(PYTEST) -m "not e2e and not image" tests

e2e: setup
	$(PYTEST) -m e2e tests

# On a machine with Docker: the same e2e tests against a kind cluster instead of the local control plane.
e2e-kind: venv
	@command -v kind >/dev/null || { echo "kind is not installed (needs Docker); see README"; exit 1; }
	kind get clusters | grep -qx driftwatch || kind create cluster --name driftwatch
	DW_USE_KUBECONFIG=1 KUBECONFIG=$$(mktemp) bash -c 'kind get kubeconfig --name driftwatch > $$KUBECONFIG && $(PYTEST) -m e2e tests'

lint: venv
	$(BIN)/ruff check driftwatch tests bench
	$(BIN)/ruff format --check driftwatch tests bench
	$(BIN)/mypy

bench: setup
	@for b in bench/*.py; do echo "==> $$b"; $(BIN)/python $$b || exit 1; done

demo: setup
	$(BIN)/driftwatch demo $(if $(KIND),--kind,)

# The chart carries copies of crds/, deploy/rbac, deploy/prometheus and deploy/grafana (a chart must be
# self-contained); this regenerates them and the kustomize base. A test fails when they are stale.
manifests: k8s-bins
	bash scripts/gen-manifests.sh

# The real Dockerfile, built with podman (no Docker engine here). IMAGE_BASE empty: on the local stand-in
# for python:3.11-slim (scripts/base-image.sh: mmdebstrap, cached in $(DW_CACHE)); set it where the
# registry image can be pulled. Tagged ghcr.io/driftwatch/driftwatch:<version> (docs/deploy.md).
IMAGE_BASE ?=
image: system-deps
	@echo "==> the image from the Dockerfile (podman, base $(if $(IMAGE_BASE),$(IMAGE_BASE),the local python:3.11-slim stand-in))"
	@DW_IMAGE_BASE=$(IMAGE_BASE) bash scripts/build-image.sh >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
