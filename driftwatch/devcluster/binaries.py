"""Where the control-plane binaries live.

``scripts/build-k8s.sh`` compiles etcd, kube-apiserver, kube-controller-manager, kubectl,
kube-scheduler, kwok, helm, the Argo Rollouts and the Flagger controller from their Go modules into
``${DW_CACHE:-~/.cache/driftwatch}/<component>-<version>/`` and drops a ``.complete`` stamp when a
component is fully built. The versions come from ``versions.env`` at the
repository root, the single pin shared with the shell scripts, so this module reads that file rather
than repeating the numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: the repository root when driftwatch is installed editable (the only way the harness is used)
_REPO_ROOT = Path(__file__).resolve().parents[2]


class BinariesMissing(RuntimeError):
    """A binary is not built yet; the message says how to build it."""


def versions_file() -> Path:
    """``$DW_VERSIONS_ENV`` if set, else ``versions.env`` at the repository root."""
    override = os.environ.get("DW_VERSIONS_ENV")
    return Path(override) if override else _REPO_ROOT / "versions.env"


def read_versions(path: Path | None = None) -> dict[str, str]:
    """Parse the ``KEY=value`` lines of versions.env (comments and blank lines ignored)."""
    path = path or versions_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BinariesMissing(
            f"{path} not found: the local cluster reads its pinned versions from the repository's "
            "versions.env (set DW_VERSIONS_ENV to point elsewhere)"
        ) from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def cache_dir() -> Path:
    """``$DW_CACHE`` or ``~/.cache/driftwatch``, as in the Makefile and build script."""
    return Path(os.environ.get("DW_CACHE") or Path.home() / ".cache" / "driftwatch")


def helm_env(home: Path) -> dict[str, str]:
    """This process's environment with helm's cache, config and data directories under ``home``, so a
    test's helm never reads or writes the user's."""
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the built tools.

    The optional ones are ``None`` unless asked for: a cluster without running Pods needs no
    scheduler or kwok, only the chart tests need helm, only rollout tests the Argo or Flagger controller.
    """

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    helm: Path | None
    kube_scheduler: Path | None = None
    kwok: Path | None = None
    #: kwok's stages (what happens to fake Nodes and Pods), copied from its module by the build
    kwok_stages: Path | None = None
    argo_rollouts: Path | None = None
    #: the Argo Rollouts CRDs from the same module version as the controller
    argo_rollouts_crds: Path | None = None
    #: Flagger's CRDs (one file), from its module: the Flagger files of deploy/rollouts/ apply to them
    flagger_crds: Path | None = None
    #: the Flagger controller, from the same module version as its CRDs
    flagger: Path | None = None

    def need(self, field: str) -> Path:
        """An optional path that must be there (``"kwok"``, ``"argo_rollouts"``, ...)."""
        path: Path | None = getattr(self, field)
        if path is None:
            raise BinariesMissing(f"{field.replace('_', '-')} is not built: run `make k8s-bins`")
        return path

    @classmethod
    def locate(
        cls,
        *,
        require_helm: bool = False,
        require_pods: bool = False,
        require_argo_rollouts: bool = False,
        require_flagger: bool = False,
    ) -> Binaries:
        """Resolve every path and check it exists; raise :class:`BinariesMissing` otherwise.

        ``require_pods``: kube-scheduler and kwok too; ``require_argo_rollouts``: the Argo Rollouts
        controller and its CRDs; ``require_flagger``: the Flagger controller and its CRDs.
        """
        versions = read_versions()
        cache = cache_dir()

        def component(name: str, key: str) -> Path:
            try:
                return cache / f"{name}-{versions[key]}"
            except KeyError:
                raise BinariesMissing(f"{versions_file()} does not define {key}") from None

        etcd_dir = component("etcd", "ETCD_VERSION")
        k8s_dir = component("kubernetes", "K8S_VERSION")
        required = [etcd_dir, k8s_dir]
        if require_helm:
            required.append(component("helm", "HELM_VERSION"))
        if require_pods:
            required += [component("kube-scheduler", "K8S_VERSION"), component("kwok", "KWOK_VERSION")]
        if require_argo_rollouts:
            required.append(component("argo-rollouts", "ARGO_ROLLOUTS_VERSION"))
        if require_flagger:  # a cache from before the controller was built: need() says so
            required.append(component("flagger", "FLAGGER_VERSION"))
        missing = [d for d in required if not (d / ".complete").is_file()]
        if missing:
            listed = ", ".join(str(d) for d in missing)
            raise BinariesMissing(
                f"Kubernetes binaries not built: {listed} missing or incomplete (no .complete stamp). "
                "Run `make k8s-bins` (compiles them from Go modules into $DW_CACHE; 10-20 minutes the "
                "first time, cached afterwards)."
            )

        def optional(name: str, key: str, file: str) -> Path | None:
            """The file if its component is complete (whether required or just already built)."""
            if key not in versions:
                return None
            d = component(name, key)
            return d / file if (d / ".complete").is_file() and (d / file).exists() else None

        return cls(
            etcd=etcd_dir / "etcd",
            kube_apiserver=k8s_dir / "kube-apiserver",
            kube_controller_manager=k8s_dir / "kube-controller-manager",
            kubectl=k8s_dir / "kubectl",
            helm=optional("helm", "HELM_VERSION", "helm"),
            kube_scheduler=optional("kube-scheduler", "K8S_VERSION", "kube-scheduler"),
            kwok=optional("kwok", "KWOK_VERSION", "kwok"),
            kwok_stages=optional("kwok", "KWOK_VERSION", "stages.yaml"),
            argo_rollouts=optional("argo-rollouts", "ARGO_ROLLOUTS_VERSION", "rollouts-controller"),
            argo_rollouts_crds=optional("argo-rollouts", "ARGO_ROLLOUTS_VERSION", "crds"),
            flagger_crds=optional("flagger", "FLAGGER_VERSION", "crd.yaml"),
            flagger=optional("flagger", "FLAGGER_VERSION", "flagger"),
        )
