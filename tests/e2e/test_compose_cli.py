"""`geo-recon compose` as a user runs it: rendering, the out-of-date check, and a clear stop without Docker."""

import shutil

import pytest
import yaml

from tests.conftest import REPO, run_cli


def _assert_clean_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def _snapshot(directory):
    return {p: p.stat().st_mtime_ns for p in sorted(directory.rglob("*"))}


@pytest.mark.parametrize("args", [["up"], ["down"], ["kill", "a/standalone"], ["latency", "a", "b", "100"]])
def test_without_a_docker_engine_compose_commands_stop_before_doing_anything(tmp_path, args):
    # The real docker client, pointed at a socket nothing listens on: no engine, on any machine.
    socket = tmp_path / "docker.sock"
    project = REPO / "docker" / "r2-async"
    before = _snapshot(project)
    proc = run_cli("compose", args[0], str(project), *args[1:], env={"DOCKER_HOST": f"unix://{socket}"}, timeout=60)
    _assert_clean_error(proc, f"error: no Docker engine is running here (docker info: Cannot connect to the Docker "
                              f"daemon at unix://{socket}. Is the docker daemon running?); use --backend local")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _snapshot(project) == before  # nothing written (no history/, no re-render)


def test_without_a_docker_client_the_error_says_so():
    proc = run_cli("compose", "up", "docker/r2-strong", env={"PATH": "/nonexistent"}, timeout=60)
    _assert_clean_error(proc, "error: no docker client is installed here (docker info: docker: command not found); "
                              "use --backend local")


def test_up_on_a_directory_without_a_rendered_project(tmp_path):
    _assert_clean_error(run_cli("compose", "up", str(tmp_path), timeout=60),
                        f"{tmp_path}/compose.yaml does not exist: render a compose lab first")


def test_render_from_a_scenario_equals_render_from_options(tmp_path):
    scenario = tmp_path / "smoke.yaml"
    scenario.write_text("name: smoke\ntopology:\n  regions: [east, west]\n  lab: {name: smoke}\nscheme: strong\n"
                        "faults: []\n")
    proc = run_cli("compose", "render", str(scenario), "-o", str(tmp_path / "from-scenario"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"into {tmp_path / 'from-scenario'}" in proc.stdout
    proc = run_cli("compose", "render", "--regions", "east,west", "--scheme", "strong", "--name", "smoke",
                   "-o", str(tmp_path / "from-options"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    rendered = sorted(p.relative_to(tmp_path / "from-scenario") for p in (tmp_path / "from-scenario").rglob("*"))
    assert rendered == sorted(p.relative_to(tmp_path / "from-options") for p in (tmp_path / "from-options").rglob("*"))
    for rel in rendered:
        if (tmp_path / "from-scenario" / rel).is_file():
            assert (tmp_path / "from-scenario" / rel).read_text() == (tmp_path / "from-options" / rel).read_text()
    doc = yaml.safe_load((tmp_path / "from-scenario" / "compose.yaml").read_text())
    assert doc["name"] == "geo-recon-smoke-strong"
    assert set(doc["services"]) >= {"zk-zookeeper", "east-broker", "west-bookie", "toxiproxy-east", "bookie-racks"}
    # The worker image is built from this checkout, wherever the project was written.
    assert (tmp_path / "from-scenario" / doc["services"]["east-worker"]["build"]["context"]
            / "docker" / "worker.Dockerfile").is_file()


@pytest.mark.parametrize("args, message", [
    (["--regions", "a,b"], "give a scenario file, or both --regions (e.g. a,b) and --scheme"),
    (["--regions", "a", "--scheme", "async"], "a multi-region lab needs at least 2 regions"),
    (["SCENARIO", "--scheme", "async"], "or --regions/--scheme, not both"),
    (["SCENARIO"], "bad.yaml:4: field scheme: Input should be 'async' or 'strong'"),
])
def test_render_errors_are_one_line_and_name_the_problem(tmp_path, args, message):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("name: bad\ntopology:\n  regions: [a, b]\nscheme: sync\n")
    args = [str(scenario) if a == "SCENARIO" else a for a in args]
    proc = run_cli("compose", "render", *args, "-o", str(tmp_path / "out"), timeout=60)
    _assert_clean_error(proc, message)
    assert not (tmp_path / "out").exists()


def test_render_will_not_overwrite_a_directory_it_did_not_render(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    proc = run_cli("compose", "render", "--regions", "a,b", "--scheme", "async", "-o", str(tmp_path), timeout=60)
    _assert_clean_error(proc, "holds no compose project rendered by geo-recon")
    assert (tmp_path / "compose.yaml").read_text() == "services: {}\n"


def test_render_all_check_passes_on_the_repository_and_fails_on_an_edited_copy(tmp_path):
    proc = run_cli("compose", "render-all", "--check", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the compose projects under docker are up to date" in proc.stdout
    copy = tmp_path / "docker"
    shutil.copytree(REPO / "docker", copy)
    (copy / "r3-strong" / "clusters.yaml").write_text("scheme: strong\n")
    proc = run_cli("compose", "render-all", "--root", str(copy), "--check", timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"{copy}/r3-strong/clusters.yaml: differs from a fresh render"]
    assert f"run: geo-recon compose render-all --root {copy}" in proc.stderr
    proc = run_cli("compose", "render-all", "--root", str(copy), timeout=60)
    assert proc.returncode == 0 and "rendered 4 projects" in proc.stdout
    assert run_cli("compose", "render-all", "--root", str(copy), "--check", timeout=60).returncode == 0


def test_a_compose_scenario_without_a_docker_engine_stops_before_it_creates_a_run(tmp_path):
    scenario = tmp_path / "on-compose.yaml"
    scenario.write_text("name: oncompose\ntopology: {backend: compose, regions: [a, b]}\n"
                        "faults:\n  - {kind: kill, target: b, at_s: 5, duration_s: 5}\n")
    socket = tmp_path / "docker.sock"
    proc = run_cli("run", str(scenario), "--runs", str(tmp_path / "runs"), env={"DOCKER_HOST": f"unix://{socket}"},
                   timeout=60)
    _assert_clean_error(proc, f"error: no Docker engine is running here (docker info: Cannot connect to the Docker "
                              f"daemon at unix://{socket}. Is the docker daemon running?); use --backend local")
    assert not (tmp_path / "runs").exists()
