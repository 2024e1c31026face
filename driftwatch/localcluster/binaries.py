"""Where the control-plane binaries live.

``scripts/build-k8s.sh`` compiles etcd, kube-apiserver, kube-controller-manager, kubectl and helm from
their Go modules into ``${DW_CACHE:-~/.cache/driftwatch}/<component>-<version>/`` and drops a
``.complete`` stamp when a component is fully built. The versions come from ``versions.env`` at the
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
    """Absolute paths of the built tools."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    helm: Path | None  # optional: only the chart tests need it

    @classmethod
    def locate(cls, *, require_helm: bool = False) -> Binaries:
        """Resolve every path and check it exists; raise :class:`BinariesMissing` otherwise."""
        versions = read_versions()
        cache = cache_dir()

        def component(name: str, key: str) -> Path:
            try:
                return cache / f"{name}-{versions[key]}"
            except KeyError:
                raise BinariesMissing(f"{versions_file()} does not define {key}") from None

        etcd_dir = component("etcd", "ETCD_VERSION")
        k8s_dir = component("kubernetes", "K8S_VERSION")
        helm_dir = component("helm", "HELM_VERSION")
        missing = [d for d in (etcd_dir, k8s_dir) if not (d / ".complete").is_file()]
        if require_helm and not (helm_dir / ".complete").is_file():
            missing.append(helm_dir)
        if missing:
            listed = ", ".join(str(d) for d in missing)
            raise BinariesMissing(
                f"Kubernetes binaries not built: {listed} missing or incomplete (no .complete stamp). "
                "Run `make k8s-bins` (compiles them from Go modules into $DW_CACHE; 10-20 minutes the "
                "first time, cached afterwards)."
            )
        helm = helm_dir / "helm"
        return cls(
            etcd=etcd_dir / "etcd",
            kube_apiserver=k8s_dir / "kube-apiserver",
            kube_controller_manager=k8s_dir / "kube-controller-manager",
            kubectl=k8s_dir / "kubectl",
            helm=helm if helm.is_file() else None,
        )
