"""The compose projects shipped under docker/: up to date with the renderer, valid Compose files."""

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from geo_recon.deploy import compose

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "docker"
SCHEMA = json.loads((Path(__file__).with_name("compose_spec") / "compose-spec.json").read_text())
SHIPPED_DIRS = [compose.compose_lab(spec).dir_name for spec in compose.SHIPPED]


def _validator():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    return jsonschema.Draft7Validator(SCHEMA)


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_shipped_projects_are_two_and_three_regions_of_both_schemes():
    assert SHIPPED_DIRS == ["r2-async", "r2-strong", "r3-async", "r3-strong"]
    assert [spec.regions for spec in compose.SHIPPED] == [("a", "b"), ("a", "b"), ("a", "b", "c"), ("a", "b", "c")]


def test_the_shipped_projects_are_exactly_what_the_renderer_writes(tmp_path):
    """Fails when docker/ is out of date: fix with `geo-recon compose render-all`."""
    compose.render_all(tmp_path)
    for name in SHIPPED_DIRS:
        fresh = _tree(tmp_path / name)
        shipped = {rel: data for rel, data in _tree(DOCKER / name).items() if not rel.startswith("history/")}
        stale = sorted(set(shipped) ^ set(fresh)) + sorted(r for r in fresh if r in shipped and fresh[r] != shipped[r])
        assert not stale, f"docker/{name} is out of date ({stale}); run: geo-recon compose render-all"
    assert compose.check_rendered(DOCKER) == []


def test_the_out_of_date_check_names_edited_missing_and_stale_files(tmp_path):
    for name in SHIPPED_DIRS:
        shutil.copytree(DOCKER / name, tmp_path / name)
    (tmp_path / "r2-strong" / "conf" / "a-broker" / "broker.conf").write_text("reppRegionsToWrite=a\n")
    (tmp_path / "r3-async" / "toxiproxy" / "c.json").unlink()
    (tmp_path / "r2-async" / "conf" / "z-standalone").mkdir()
    (tmp_path / "r2-async" / "conf" / "z-standalone" / "standalone.conf").write_text("x=1\n")
    shutil.copytree(DOCKER / "r2-async", tmp_path / "old-async")
    assert compose.check_rendered(tmp_path) == [
        "r2-async/conf/z-standalone/standalone.conf: not rendered any more (stale)",
        "r2-strong/conf/a-broker/broker.conf: differs from a fresh render",
        "r3-async/toxiproxy/c.json: missing",
        "old-async/: a rendered project that is no longer shipped",
    ]


@pytest.mark.parametrize("name", SHIPPED_DIRS)
def test_the_shipped_project_is_valid_against_the_compose_specification_schema(name):
    doc = yaml.safe_load((DOCKER / name / "compose.yaml").read_text())
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


@pytest.mark.parametrize("name", SHIPPED_DIRS)
def test_every_file_a_service_mounts_is_shipped_beside_the_compose_file(name):
    doc = yaml.safe_load((DOCKER / name / "compose.yaml").read_text())
    for service, body in doc["services"].items():
        for volume in body.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and not source.startswith("./history"):
                assert (DOCKER / name / source).exists(), f"{service} mounts missing {source}"
        if "build" in body:
            context = DOCKER / name / body["build"]["context"]
            assert (context / body["build"]["dockerfile"]).is_file()
            assert (context / "pyproject.toml").is_file()


@pytest.mark.parametrize("broken, path", [
    ({"services": {"a": {"image": "x", "imagee": "typo"}}}, "services/a"),
    ({"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "service_ready"}}}}},
     "services/a/depends_on/b/condition"),
    ({"services": {"a": {"image": "x", "healthcheck": {"test": ["CMD", "true"], "intervall": "5s"}}}},
     "services/a/healthcheck"),
    ({"services": {"a": {"image": "x", "networks": {"n": {"aliasses": ["y"]}}}}}, "services/a/networks/n"),
])
def test_the_schema_check_rejects_what_compose_would_reject(broken, path):
    """A control: the validator really enforces the specification."""
    def flatten(errors):  # oneOf failures carry the precise reasons in their context
        for error in errors:
            yield error
            yield from flatten(error.context or [])

    errors = list(flatten(_validator().iter_errors(broken)))
    assert any("/".join(map(str, e.absolute_path)) == path for e in errors), [e.message for e in errors]


def test_the_worker_image_ignore_file_sends_only_the_package():
    ignore = (DOCKER / "worker.Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[1] == "*"
    assert {"!pyproject.toml", "!constraints.txt", "!README.md", "!geo_recon/"} <= set(ignore)
    dockerfile = (DOCKER / "worker.Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install --no-cache-dir -c constraints.txt ." in dockerfile
