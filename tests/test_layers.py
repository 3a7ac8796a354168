"""The package's layering, checked from the code: no module imports a layer above its own.

Layers, lowest first (README, "How the code is laid out"): base modules, nets, data, sources, zoo, graph, models,
fit, align, merge, report, then the stages with the config they are built from, then the command line. Every
import counts, also one inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "symzoo"
RANKS = {
    "__init__": 0,
    "atomic": 0,
    "device": 0,
    "checkpoint": 0,
    "metrics": 0,
    "nets": 1,
    "data": 2,
    "sources": 3,
    "zoo": 4,
    "graph": 5,
    "models": 6,
    "fit": 7,
    "align": 8,
    "merge": 9,
    "report": 10,
    "stages": 11,
    "config": 11,
    "bench": 12,
    "cli": 12,
}


def layer(module: str) -> str:
    """``symzoo.fit.train`` → ``fit``; ``symzoo`` → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, module: str | None = None) -> set[str]:
    """Every symzoo module the file ``path`` (the module ``module``) imports (absolute or relative, any depth)."""
    found = set()
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "symzoo"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] == "symzoo":
                found |= {f"{target}.{alias.name}" if target == "symzoo" else target for alias in node.names}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    unknown = {layer(module_name(p)) for p in MODULES} - set(RANKS)
    assert not unknown, f"modules outside the known layers: {unknown}; add them to RANKS and the README"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    own = layer(module_name(path))
    above = sorted(m for m in imports(path) if RANKS[layer(m)] > RANKS[own])
    assert not above, f"{path.relative_to(PACKAGE)} ({own}) imports higher layers: {above}"


def test_the_check_sees_violations(tmp_path):
    """A made-up nets module importing the stages (in a function) and the merge layer (relatively) is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..merge import methods\n\ndef f():\n    from symzoo.stages import encoder\n")
    found = imports(probe, "symzoo.nets.probe")
    assert {"symzoo.merge", "symzoo.stages"} <= found
    assert all(RANKS[layer(m)] > RANKS["nets"] for m in found)


STAGES = sorted((PACKAGE / "stages").glob("*.py"))


def stage_imports(path: Path) -> set[str]:
    """The stage modules a file imports, by module name (``from symzoo.stages import x`` names ``x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "symzoo.stages":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symzoo.stages."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("symzoo.stages.")}
    return found


@pytest.mark.parametrize("path", STAGES, ids=lambda p: p.name)
def test_a_stage_imports_no_other_stage_but_common(path):
    """Stages share code through ``stages/common`` only (the library holds the rest), so each reads alone."""
    others = sorted(stage_imports(path) - {"common"})
    assert not others, f"stages/{path.name} imports other stages: {others}"


def test_the_stage_import_check_sees_both_spellings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from symzoo.stages import common, tables\nfrom symzoo.stages.figures import save\n")
    assert stage_imports(sample) == {"common", "tables", "figures"}
