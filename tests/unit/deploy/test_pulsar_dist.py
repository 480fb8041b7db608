import os
import stat

import pytest

from geo_recon.deploy import pulsar_dist
from geo_recon.errors import EnvironmentProblem


def test_server_lock_pins_the_whole_pulsar_runtime():
    coords = {a.coordinates for a in pulsar_dist.read_lock("server")}
    assert f"org.apache.pulsar:pulsar-broker:{pulsar_dist.PULSAR_VERSION}" in coords
    assert f"org.apache.pulsar:bouncy-castle-bc:{pulsar_dist.PULSAR_VERSION}:pkg" in coords
    names = {c.rsplit(":", 1)[0] if c.count(":") == 2 else c for c in coords}
    for needed in ("org.apache.bookkeeper:bookkeeper-server", "org.apache.zookeeper:zookeeper",
                   "org.apache.logging.log4j:log4j-core", "org.apache.logging.log4j:log4j-slf4j2-impl"):
        assert any(n.startswith(needed + ":") or n == needed for n in names), needed
    # Pulsar 4.0.4+ fixes replicated-message loss with deduplication (apache/pulsar#23697).
    assert tuple(int(x) for x in pulsar_dist.PULSAR_VERSION.split(".")) >= (4, 0, 4)


def test_tools_lock_has_the_cli_tools():
    coords = {a.coordinates for a in pulsar_dist.read_lock("tools")}
    assert f"org.apache.pulsar:pulsar-client-tools:{pulsar_dist.TOOLS_VERSION}" in coords
    assert f"org.apache.pulsar:pulsar-testclient:{pulsar_dist.TOOLS_VERSION}" in coords


def test_malformed_lock_line_names_the_line():
    with pytest.raises(EnvironmentProblem, match="x.lock:2"):
        pulsar_dist.parse_lock("# header\norg.example:thing:1.0 nothex 12\n", "x.lock")


def test_artifact_paths_follow_maven_layout():
    art = pulsar_dist.Artifact("org.apache.pulsar", "bouncy-castle-bc", "4.0.7", "pkg", "0" * 64, 1)
    assert art.repo_path == "org/apache/pulsar/bouncy-castle-bc/4.0.7/bouncy-castle-bc-4.0.7-pkg.jar"
    assert art.file_name == "org.apache.pulsar.bouncy-castle-bc-4.0.7-pkg.jar"


def _fake_java(tmp_path, spec_version):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '    java.specification.version = {spec_version}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return home


def test_old_java_is_refused_with_its_version(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, "11")))
    with pytest.raises(EnvironmentProblem, match="is Java 11"):
        pulsar_dist.find_java()


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(EnvironmentProblem, match="no java was found"):
        pulsar_dist.find_java()


def test_java_17_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, "17")))
    assert pulsar_dist.find_java().major == 17


def test_cache_lives_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.setenv("GEO_RECON_CACHE", str(tmp_path / "c"))
    assert pulsar_dist.lib_dir("server") == tmp_path / "c" / f"pulsar-server-{pulsar_dist.PULSAR_VERSION}" / "lib"
    assert os.path.commonpath([pulsar_dist.cache_root(), pulsar_dist.MAVEN_DIR]) != str(pulsar_dist.MAVEN_DIR)
