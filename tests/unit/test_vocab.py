"""The shared vocabulary stays the single source: docs/redis-keys.md is its key table, the CRD spells
its names, and the states derive phases and verdicts the way status and the gate expect."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from driftwatch.vocab import names, rediskeys
from driftwatch.vocab.states import Phase, State, Verdict, phase_of, verdict_of

ROOT = Path(__file__).resolve().parents[2]


def doc_key_table() -> list[list[str]]:
    """The rows of the first table in docs/redis-keys.md, cells stripped of surrounding backticks."""
    rows, in_table = [], False
    for line in (ROOT / "docs" / "redis-keys.md").read_text().splitlines():
        if line.startswith("| key |"):
            in_table = True
            continue
        if in_table and line.startswith("| ---"):
            continue
        if in_table and not line.startswith("|"):
            break
        if in_table:
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_redis_keys_doc_is_the_layout() -> None:
    documented = [(r[0].strip("`"), r[1], r[2]) for r in doc_key_table()]
    assert documented == [(k.key, k.type, k.writer) for k in rediskeys.LAYOUT]


def test_monitor_keys_follow_the_layout() -> None:
    keys = rediskeys.MonitorKeys.of("driftwatch", "shop", "payments")
    p = "driftwatch:{shop:payments}"  # the hash tag: one slot per monitor on a Redis Cluster
    built = {
        "P:checkpoint:{pod}": keys.checkpoint("web-1"),
        "P:summary:{pod}": keys.summary("web-1"),
        "P:pods": keys.pods,
        "P:events": keys.events,
        "P:ingest": keys.ingest,
        "P:notify": keys.notify,
        "P:ingest:dead": keys.ingest_dead,
        "P:checkpoints": keys.checkpoints,
        "P:reservoir:{bucket}:{pod}": keys.reservoir(1700000100, "web-1"),
        "P:reservoirs": keys.reservoirs,
        "P:reference:{pod}": keys.reference("web-1"),
        "P:references": keys.references,
        "P:history": keys.history,
        "P:commands": keys.commands,
    }
    assert set(built) == {k.key for k in rediskeys.LAYOUT}
    for pattern, key in built.items():
        assert key == pattern.replace("P", p, 1).replace("{pod}", "web-1").replace("{bucket}", "1700000100")
    assert rediskeys.parse_notify_channel(keys.notify, "driftwatch") == ("shop", "payments")
    assert rediskeys.MonitorKeys.of("a*b", "ns", "m").every_key == r"a\*b:{ns:m}:*"
    assert rediskeys.parse_key_owner(keys.summary("web-1"), "driftwatch") == ("shop", "payments")
    assert rediskeys.parse_notify_channel("driftwatch:{shop:payments}:x:notify", "driftwatch") is None


def test_the_crd_spells_the_names() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "driftwatch.io_driftmonitors.yaml").read_text())
    assert crd["metadata"]["name"] == names.CRD_NAME
    assert crd["spec"]["group"] == names.GROUP
    assert crd["spec"]["names"]["kind"] == names.KIND
    assert crd["spec"]["names"]["plural"] == names.PLURAL
    assert [v["name"] for v in crd["spec"]["versions"] if v.get("storage")] == [names.VERSION]


@pytest.mark.parametrize(
    ("states", "phase", "verdict"),
    [
        ([], Phase.INITIALIZING, Verdict.INCONCLUSIVE),
        (["Initializing"], Phase.INITIALIZING, Verdict.INCONCLUSIVE),
        (["Initializing", "Stable"], Phase.STABLE, Verdict.PASS),
        (["Stable", "Drifting", "Initializing"], Phase.DRIFTING, Verdict.FAIL),
    ],
)
def test_phase_and_verdict_of_states(states: list[str], phase: Phase, verdict: Verdict) -> None:
    assert phase_of(states) == phase
    assert verdict_of(phase) == verdict
    assert [s.value for s in State] == [p.value for p in Phase]


def test_vocab_imports_only_the_standard_library() -> None:
    """Everything imports the vocabulary, the sidecar included: it must cost nothing to load."""
    for path in (ROOT / "driftwatch" / "vocab").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for mod in mods:
                    top = mod.split(".")[0]
                    assert top in {"__future__", "driftwatch"} or top in sys.stdlib_module_names, (
                        f"{path.name} imports {mod}"
                    )
                    assert not mod.startswith("driftwatch.") or mod.startswith("driftwatch.vocab"), (
                        f"{path.name} imports {mod}"
                    )


def test_scan_tests_are_the_batch_tests() -> None:
    from driftwatch.detect.batch import AUTO, TESTS
    from driftwatch.vocab.spec import SCAN_TESTS

    assert set(SCAN_TESTS) == {AUTO, *TESTS}
