"""The tree's dependency rules (docs/decisions.md, "One shape for the code"), checked on the source.

Each package may import only the packages to its left in its rule; a rule broken here is a layout
decision to revisit in docs/decisions.md, not a test to loosen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "driftwatch"

#: package (or top-level module) -> the DriftWatch packages it must not import, and third-party roots
FORBIDDEN: dict[str, tuple[set[str], set[str]]] = {
    "vocab": ({"detect", "sidecar", "operator", "kube", "devcluster", "demo"}, set()),
    "detect": ({"sidecar", "operator", "kube", "devcluster", "demo"}, {"aiohttp", "redis", "kopf"}),
    "sidecar": ({"operator", "kube", "devcluster", "demo"}, {"kopf", "kubernetes"}),
    "kube": ({"detect", "sidecar", "operator", "devcluster", "demo"}, {"kopf", "kubernetes"}),
    "operator": ({"sidecar", "devcluster", "demo"}, {"kubernetes"}),
    "status.py": ({"operator", "sidecar", "devcluster"}, {"kopf", "kubernetes"}),
    "gate.py": ({"operator", "sidecar", "devcluster"}, {"kopf", "kubernetes"}),
    "verdict.py": ({"operator", "sidecar", "detect", "kube", "devcluster"}, {"kopf", "aiohttp"}),
}


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_dependencies_point_one_way(part: str) -> None:
    own, third = FORBIDDEN[part]
    files = [PKG / part] if part.endswith(".py") else sorted((PKG / part).rglob("*.py"))
    assert files
    assert all(f.exists() for f in files)
    for f in files:
        for mod in imports(f):
            parts = mod.split(".")
            if parts[0] == "driftwatch" and len(parts) > 1:
                assert parts[1] not in own, f"{f.relative_to(ROOT)} imports {mod}"
                assert f"{parts[1]}.py" not in own, f"{f.relative_to(ROOT)} imports {mod}"
            assert parts[0] not in third, f"{f.relative_to(ROOT)} imports {mod}"


def test_module_names_are_unique_across_packages() -> None:
    """One name, one meaning: no two packages hold a module of the same name (``__init__`` aside)."""
    seen: dict[str, Path] = {}
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "__init__.py":
            continue
        other = seen.setdefault(f.stem, f)
        assert other == f, f"{f.relative_to(ROOT)} and {other.relative_to(ROOT)} share a name"


def documented_tree() -> str:
    """The code block of docs/decisions.md's "One shape for the code" section."""
    text = (ROOT / "docs" / "decisions.md").read_text()
    section = text[text.index("One shape for the code") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_the_tree_matches_docs_decisions() -> None:
    """Every package and every module appears in the documented tree (module names are unique across
    packages, tested above, so a name is a place), and every file named there exists. A new module is
    a new line in docs/decisions.md."""
    tree = documented_tree()
    words = set(tree.replace(",", " ").replace(":", " ").split())
    for d in sorted(p for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")):
        assert f"{d.name}/" in words, f"driftwatch/{d.name}/ is missing from docs/decisions.md's tree"
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "__init__.py":
            continue
        assert f.name in words, f"{f.relative_to(ROOT)} is missing from docs/decisions.md's tree"
    for word in words:
        if word.endswith(".py"):
            assert list(PKG.rglob(word)), f"docs/decisions.md's tree names {word}, which does not exist"
