"""The suite's labs never clash: run in parallel (one module per worker), no two modules share a lab name,
a subnet or a port.

Every module that starts labs declares them at module level, as ``NAME, BASE, SUBNET = "x", 16000, 106``
or as ``LABS = (("x", 16000, 106), ...)`` (subnet None: a compose lab), and its other host ports as
``*_PORT = BASE + n``. The test scenarios under tests/integration/scenarios, and the shipped scenarios the
suite runs as they are, must name one of those labs. Read from the source (no test module is imported).
"""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from geo_recon.deploy.topology import LabSpec, host_port_span

REPO = Path(__file__).resolve().parents[2]
TEST_MODULES = sorted((REPO / "tests").glob("*/test_*.py"))
TEST_SCENARIOS = sorted((REPO / "tests" / "integration" / "scenarios").glob("*.yaml"))
SHIPPED_SCENARIOS_RUN_AS_THEY_ARE = (REPO / "scenarios" / "smoke.yaml", REPO / "scenarios" / "smoke-compose.yaml")
COMPOSE_REGIONS = 3  # the most regions a compose lab of the suite may have: its ports are base .. base + 399


@dataclass(frozen=True)
class Lab:
    module: str
    name: str
    base: int
    subnet: int | None  # None: a compose lab (no namespaces; the engine picks its networks)

    @property
    def span(self) -> tuple[int, int]:
        """The host ports the lab may listen on (both ends included)."""
        if self.subnet is None:  # published on loopback: each region's block of 100, and the witness block
            return self.base, self.base + 100 * (COMPOSE_REGIONS + 1) - 1
        return host_port_span(LabSpec(regions=("a", "b"), scheme="async", name=self.name, base_port=self.base))


def _declared(path: Path, root: Path = REPO) -> tuple[list[Lab], dict[str, int]]:
    """The labs a module declares and its other host ports (``*_PORT`` constants)."""
    module = str(path.relative_to(root))
    labs: list[Lab] = []
    ports: dict[str, int] = {}
    scope: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            names = [t.id for t in target.elts] if isinstance(target, ast.Tuple) else [getattr(target, "id", "")]
            if names == ["NAME", "BASE", "SUBNET"]:
                name, base, subnet = ast.literal_eval(node.value)
                labs.append(Lab(module, name, base, subnet))
                scope.update(NAME=name, BASE=base, SUBNET=subnet)
            elif names == ["LABS"]:
                labs += [Lab(module, *entry) for entry in ast.literal_eval(node.value)]
            elif len(target.elts if isinstance(target, ast.Tuple) else [target]) == len(names) and all(
                    n.endswith("_PORT") for n in names):
                values = eval(compile(ast.Expression(node.value), str(path), "eval"), {}, dict(scope))  # noqa: S307
                ports.update(zip(names, values if isinstance(target, ast.Tuple) else [values]))
    return labs, ports


def _all_declared() -> tuple[list[Lab], dict[str, dict[str, int]]]:
    labs, ports = [], {}
    for path in TEST_MODULES:
        found, extra = _declared(path)
        labs += found
        ports[str(path.relative_to(REPO))] = extra
    return labs, ports


def _marked_integration(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            return any(isinstance(n, ast.Attribute) and n.attr == "integration" for n in ast.walk(node.value))
    return False


def test_every_module_that_starts_labs_declares_them():
    marked = [p for p in TEST_MODULES if _marked_integration(p)]
    assert len(marked) >= 14
    undeclared = [str(p.relative_to(REPO)) for p in marked if not _declared(p)[0]]
    assert undeclared == [], "declare the module's labs (NAME, BASE, SUBNET or LABS)"


def _clashes(labs: list[Lab]) -> list[str]:
    clashes = []
    for a, b in itertools.combinations(labs, 2):
        if a.module == b.module:
            continue
        if a.name == b.name:
            clashes.append(f"lab name {a.name!r}: {a.module} and {b.module}")
        if a.subnet is not None and a.subnet == b.subnet:
            clashes.append(f"subnet {a.subnet}: {a.module} ({a.name}) and {b.module} ({b.name})")
        (a_lo, a_hi), (b_lo, b_hi) = a.span, b.span
        if a_lo <= b_hi and b_lo <= a_hi:
            clashes.append(f"ports {a_lo}..{a_hi} ({a.module}, {a.name}) overlap {b_lo}..{b_hi} ({b.module}, {b.name})")
    return clashes


def test_no_two_modules_share_a_lab_name_a_subnet_or_a_port():
    labs, _ = _all_declared()
    assert len(labs) >= 14
    assert _clashes(labs) == []


def test_a_modules_other_ports_are_within_its_own_labs_ports():
    labs, ports = _all_declared()
    assert any(ports.values())  # the canary's and Prometheus's ports are found
    for module, extra in ports.items():
        spans = [lab.span for lab in labs if lab.module == module]
        for name, port in extra.items():
            assert any(lo <= port <= hi for lo, hi in spans), f"{module}: {name} = {port} is outside its labs' ports"


def test_the_labs_of_the_scenarios_the_suite_runs_are_declared_by_one_module():
    labs, _ = _all_declared()
    by_name = {lab.name: lab for lab in labs}
    for path in (*TEST_SCENARIOS, *SHIPPED_SCENARIOS_RUN_AS_THEY_ARE):
        lab = yaml.safe_load(path.read_text())["topology"]["lab"]
        declared = by_name.get(lab["name"])
        assert declared, f"{path.relative_to(REPO)}: lab {lab['name']!r} is declared by no test module"
        assert (lab["base_port"], lab.get("subnet")) == (declared.base, declared.subnet), (
            f"{path.relative_to(REPO)}: lab {lab['name']!r} differs from {declared.module}'s declaration")


def test_the_check_reads_both_declarations_and_sees_each_kind_of_clash(tmp_path):
    (tmp_path / "test_a.py").write_text('NAME, BASE, SUBNET = "ta", 10000, 101\nPROM_PORT, X_PORT = BASE + 21, 9\n')
    (tmp_path / "test_b.py").write_text('LABS = (("ta", 11000, 101), ("tc", 20000, None))\n')
    a, ports = _declared(tmp_path / "test_a.py", tmp_path)
    b, _ = _declared(tmp_path / "test_b.py", tmp_path)
    assert ports == {"PROM_PORT": 10021, "X_PORT": 9}
    assert [(x.name, x.span) for x in a + b] == [("ta", (10000, 11199)), ("ta", (11000, 12199)), ("tc", (20000, 20399))]
    assert _clashes(a + b) == [
        "lab name 'ta': test_a.py and test_b.py",
        "subnet 101: test_a.py (ta) and test_b.py (ta)",
        "ports 10000..11199 (test_a.py, ta) overlap 11000..12199 (test_b.py, ta)",
    ]


def test_the_slowest_first_list_names_modules_that_exist():
    from tests.conftest import SLOWEST_FIRST

    assert [m for m in SLOWEST_FIRST if not (REPO / m).is_file()] == []


def _session(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEO_RECON_HOME", "PYTEST_XDIST_WORKER")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**env, "TMPDIR": str(tmp_path)})
    return proc, sorted(tmp_path.glob("geo-recon-tests-*"))


def test_a_passing_session_removes_its_labs_home_and_a_failing_one_keeps_it_and_says_where(tmp_path):
    test = "tests/unit/test_integration_labs.py::test_the_slowest_first_list_names_modules_that_exist"
    for run in ("pass", "fail"):
        (tmp_path / run).mkdir()
    proc, homes = _session(tmp_path / "pass", test)
    assert proc.returncode == 0 and homes == [], proc.stdout[-2000:]
    proc, homes = _session(tmp_path / "fail", test, "--deselect", test)  # nothing ran: not a pass
    assert proc.returncode != 0 and len(homes) == 1
    assert f"GEO_RECON_HOME={homes[0]}" in proc.stdout
