"""Shell completion from the commands' own parsers: the shtab scripts load in real bash, zsh and fish
and complete commands, options and choices; kubectl's plugin completion answers in cobra's protocol."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftwatch import completion
from driftwatch.cli import COMMANDS

pytest.importorskip("shtab", reason="the cli extra: pip install 'driftwatch[cli]'")


def script(shell: str, tmp_path: Path) -> Path:
    path = tmp_path / f"driftwatch.{shell}"
    path.write_text(completion.script(shell))
    return path


def bash_complete(path: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (the function shtab defines, called as bash would)."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = f"source {path}; COMP_WORDS=(driftwatch {quoted}); COMP_CWORD={len(words)}; "
    program += '_shtab_driftwatch; printf "%s\\n" "${COMPREPLY[@]}"'
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_options_and_choices(tmp_path: Path) -> None:
    path = script("bash", tmp_path)
    assert bash_complete(path, "sta") == ["status"]
    assert set(bash_complete(path, "")) >= set(COMMANDS)
    assert bash_complete(path, "status", "-o", "") == ["table", "wide", "json", "yaml"]
    assert bash_complete(path, "status", "--all") == ["--all-namespaces"]
    assert "--context" in bash_complete(path, "gate", "--con")
    assert bash_complete(path, "completion", "") == ["bash", "zsh", "fish"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish")
def test_fish_completes_commands_and_choices(tmp_path: Path) -> None:
    path = script("fish", tmp_path)

    def complete(line: str) -> list[str]:
        program = f"source {path}; complete -C '{line}'"
        out = subprocess.run(["fish", "-c", program], capture_output=True, text=True, timeout=30, check=True)
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("driftwatch sta") == ["status"]
    assert complete("driftwatch status -o ") == ["table", "wide", "json", "yaml"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
def test_zsh_script_loads(tmp_path: Path) -> None:
    """zsh's completion system cannot be driven without a terminal: the script parses and defines the
    completion function once compinit has run."""
    path = script("zsh", tmp_path)
    program = f"autoload -U compinit && compinit -u -D; source {path}; whence -w _shtab_driftwatch"
    out = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "function" in out.stdout


def test_kubectl_plugin_completion_speaks_cobra(capsys: pytest.CaptureFixture[str]) -> None:
    """``kubectl driftwatch <TAB>`` runs kubectl_complete-driftwatch WORDS... CURRENT."""
    completion.kubectl_complete(["st"])
    assert capsys.readouterr().out.splitlines() == ["status", f":{completion.NO_FILE_COMP}"]
    completion.kubectl_complete(["status", "-o", "y"])
    assert capsys.readouterr().out.splitlines() == ["yaml", ":4"]
    completion.kubectl_complete(["status", "--wa"])
    assert capsys.readouterr().out.splitlines() == ["--watch", ":4"]
    completion.kubectl_complete(["replay", ""])
    assert capsys.readouterr().out.splitlines() == [":0"]  # DATA.csv: let the shell offer files


def test_kubectl_plugin_completion_offers_kubeconfig_contexts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [{"name": "prod", "context": {}}, {"name": "dev", "context": {}}],
    }
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    completion.kubectl_complete(["status", "--kubeconfig", str(tmp_path / "config"), "--context", ""])
    assert capsys.readouterr().out.splitlines() == ["prod", "dev", ":4"]


def test_monitor_names_without_a_cluster_offer_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    completion.kubectl_complete(["gate", ""])
    assert capsys.readouterr().out.splitlines() == [":4"]


def test_completion_command_prints_a_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "driftwatch", "completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "_shtab_driftwatch" in out


def test_entry_points_resolve() -> None:
    """pyproject.toml's console scripts: the command, the kubectl plugin, kubectl's plugin completion."""
    import importlib
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-driftwatch"] == scripts["driftwatch"] == "driftwatch.cli:main"
    assert scripts["kubectl_complete-driftwatch"] == "driftwatch.completion:kubectl_complete"
    for target in scripts.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))
