"""Which namespace a command addresses, as kubectl decides it: ``-n``, else the namespace of the
kubeconfig context (``--context`` or the current one), else ``default``; ``NAMESPACE/NAME`` still
works; contradictions are usage errors that name both sides. Real kubeconfig files, two contexts."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from driftwatch import cliopts
from driftwatch.kube import credentials
from driftwatch.kube.credentials import CredentialsError


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """Two contexts on two clusters: ``prod`` (namespace shop, current) and ``dev`` (no namespace)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "prod", "cluster": {"server": "https://prod.example:6443"}},
            {
                "name": "dev",
                "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
            },
        ],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "prod", "user": "me", "namespace": "shop"}},
            {"name": "dev", "context": {"cluster": "dev", "user": "me"}},
        ],
        "current-context": "prod",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def parse(*argv: str, all_namespaces: bool = True) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("name", nargs="?")
    cliopts.add_kube_options(p, all_namespaces=all_namespaces)
    return p.parse_args(argv)


def test_namespace_comes_from_the_current_context(kubeconfig: Path) -> None:
    target = cliopts.resolve(parse("--kubeconfig", str(kubeconfig)))
    assert (target.creds.server, target.creds.context, target.namespace) == (
        "https://prod.example:6443",
        "prod",
        "shop",
    )


def test_context_switches_cluster_and_namespace(kubeconfig: Path) -> None:
    target = cliopts.resolve(parse("--kubeconfig", str(kubeconfig), "--context", "dev"))
    assert (target.creds.server, target.creds.insecure, target.namespace) == (
        "https://127.0.0.1:6443",
        True,
        "default",  # a context without a namespace: kubectl's default
    )


def test_flags_override_the_context(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # as kubectl, $KUBECONFIG without --kubeconfig
    assert cliopts.resolve(parse("-n", "ads")).namespace == "ads"
    assert cliopts.resolve(parse("-A")).namespace is None
    assert cliopts.resolve(parse("-A", "-n", "ads")).namespace is None  # -A wins, as in kubectl


def test_unknown_context_is_named_with_the_known_ones(kubeconfig: Path) -> None:
    with pytest.raises(CredentialsError, match=r"--context staging: .*contexts: dev, prod"):
        credentials.load(str(kubeconfig), "staging")


def test_context_without_any_kubeconfig_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    with pytest.raises(CredentialsError, match="--context dev: no kubeconfig"):
        credentials.load(None, "dev")


@pytest.mark.parametrize(
    ("ref", "namespace", "explicit", "expected"),
    [
        ("payments", "shop", None, ("shop", "payments")),
        ("ads/search", "shop", None, ("ads", "search")),  # the older form wins over the context's
        ("ads/search", "ads", "ads", ("ads", "search")),
    ],
)
def test_monitor_ref(ref: str, namespace: str, explicit: str | None, expected: tuple[str, str]) -> None:
    assert cliopts.monitor_ref(ref, namespace, explicit) == expected


@pytest.mark.parametrize(
    ("ref", "namespace", "explicit", "message"),
    [
        ("ads/search", "shop", "shop", "is in namespace ads, but -n says shop"),
        ("a/b/c", "shop", None, "expected NAME or NAMESPACE/NAME"),
        ("/b", "shop", None, "expected NAME or NAMESPACE/NAME"),
        ("payments", None, None, "across all namespaces"),
    ],
)
def test_monitor_ref_errors(ref: str, namespace: str | None, explicit: str | None, message: str) -> None:
    with pytest.raises(cliopts.UsageError, match=message):
        cliopts.monitor_ref(ref, namespace, explicit)


def test_namespace_only_needs_no_kubeconfig(
    kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``history`` asks the operator, not the API server: without a kubeconfig it still runs."""
    monkeypatch.setenv("KUBECONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cliopts.namespace_only(parse(all_namespaces=False)) == "default"
    assert cliopts.namespace_only(parse("--kubeconfig", str(kubeconfig), all_namespaces=False)) == "shop"
    with pytest.raises(CredentialsError):
        cliopts.namespace_only(parse("--context", "dev", all_namespaces=False))
