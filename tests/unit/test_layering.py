"""The package's layering, read from the source with ast: no import cycle between geo_recon's packages
(function-level imports count too), and no scheme chosen by comparing its name outside geo_recon/schemes/."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "geo_recon"
SCHEME_TEST = re.compile(r"""==\s*["'](async|strong)["']|["'](async|strong)["']\s*==|in\s*\(\s*["'](async|strong)["']""")


def _unit(module: str) -> str:
    """The first level below geo_recon: a subpackage or a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_of(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")


def _imported(path: Path, root: Path) -> set[str]:
    """Every geo_recon module ``path`` imports, anywhere in it (``from geo_recon import x`` gives geo_recon.x)."""
    module, out = _module_of(path, root), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            base = node.module
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join([*package, node.module])
            if base == "geo_recon":
                out |= {f"geo_recon.{a.name}" for a in node.names}
            elif base.startswith("geo_recon."):
                out.add(base)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("geo_recon.")}
    return out


def package_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        src = _unit(_module_of(path, root))
        for target in _imported(path, root):
            dst = _unit(target)
            if dst != src:
                edges[src].add(dst)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of packages (Tarjan), as a path that closes on itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group) + [sorted(group)[0]])

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def scheme_name_tests(root: Path = PACKAGE) -> list[str]:
    hits = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0].startswith("scheme"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SCHEME_TEST.search(line):
                hits.append(f"{rel}:{number}: {line.strip()}")
    return hits


def test_no_import_cycle_between_packages():
    assert cycles(package_graph()) == []


def test_no_scheme_is_chosen_by_its_name_outside_the_schemes_package():
    assert scheme_name_tests() == []


def test_the_models_at_the_bottom_import_no_stage_above_them():
    """The run's stages sit above the plain models; a model importing a stage would be a layering inversion."""
    edges = package_graph()
    stages = {"run", "lifecycle", "cli", "check", "report", "verdict"}
    for model in ("scenario", "deployment", "history", "rundir", "secrets", "errors"):
        assert not edges.get(model, set()) & stages, model


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A planted cycle and a planted scheme test are found (so the two tests above can fail)."""
    pkg = tmp_path / "geo_recon"
    (pkg / "alpha").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "alpha" / "__init__.py").write_text("def f():\n    from geo_recon import beta\n")
    (pkg / "beta.py").write_text("from geo_recon.alpha import f\n\nSTRONG = f() == 'strong'\n")
    assert cycles(package_graph(pkg)) == [["alpha", "beta", "alpha"]]
    assert scheme_name_tests(pkg) == ["beta.py:3: STRONG = f() == 'strong'"]
