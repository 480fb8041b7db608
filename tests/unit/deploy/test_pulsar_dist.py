import os
import stat

import pytest

from geo_recon.deploy import pulsar_dist, pulsar_versions
from geo_recon.errors import ConfigError, EnvironmentProblem


def test_server_lock_pins_the_whole_pulsar_runtime():
    coords = {a.coordinates for a in pulsar_dist.read_lock("server")}
    assert pulsar_dist.PULSAR_VERSION == pulsar_versions.DEFAULT_PULSAR
    assert f"org.apache.pulsar:pulsar-broker:{pulsar_dist.PULSAR_VERSION}" in coords
    assert f"org.apache.pulsar:bouncy-castle-bc:{pulsar_dist.PULSAR_VERSION}:pkg" in coords
    names = {c.rsplit(":", 1)[0] if c.count(":") == 2 else c for c in coords}
    for needed in ("org.apache.bookkeeper:bookkeeper-server", "org.apache.logging.log4j:log4j-core",
                   "org.apache.logging.log4j:log4j-slf4j2-impl"):
        assert any(n.startswith(needed + ":") or n == needed for n in names), needed
    # ZooKeeper: since 4.2 Pulsar's own zookeeper-with-patched-admin replaces the plain jar (as in its distribution).
    assert names & {"org.apache.zookeeper:zookeeper", "org.apache.pulsar:zookeeper-with-patched-admin"}
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


@pytest.mark.parametrize("version", pulsar_versions.supported())
def test_every_supported_version_has_a_lock_of_its_own_version(version):
    row = pulsar_versions.release(version)
    coords = {a.coordinates for a in pulsar_dist.read_lock("server", version)}
    assert f"org.apache.pulsar:pulsar-broker:{version}" in coords
    assert f"org.apache.pulsar:bouncy-castle-bc:{version}:pkg" in coords
    assert any(c.startswith(f"org.apache.logging.log4j:{row.slf4j_binding}:") for c in coords)
    assert f"org.apache.bookkeeper:bookkeeper-server:{row.bookkeeper}" in coords
    # One Pulsar version per classpath: no module of another release slipped in.
    assert {c.split(":")[2] for c in coords if c.startswith("org.apache.pulsar:")} == {version}
    for extra in row.extra_dependencies:
        assert extra in coords


def test_versions_resolve_to_their_own_lock_and_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GEO_RECON_CACHE", str(tmp_path))
    assert pulsar_dist.classpath("server", "3.0.7").lock == "server-3.0.7.lock"
    assert pulsar_dist.lib_dir("server", "4.2.4") == tmp_path / "pulsar-server-4.2.4" / "lib"
    assert pulsar_dist.classpath("tools", "3.0.7").version == pulsar_dist.TOOLS_VERSION  # tools are version-free


def test_unsupported_version_is_one_clear_error():
    with pytest.raises(ConfigError, match="Pulsar 9.9 is not supported; supported versions: 3.0.2, 3.0.7"):
        pulsar_dist.read_lock("server", "9.9")


def test_rendered_pom_carries_the_version_differences():
    pom = pulsar_dist.render_pom(pulsar_dist.classpath("server", "3.0.2"))
    assert "<pulsar.version>3.0.2</pulsar.version>" in pom
    assert "<slf4j.binding>log4j-slf4j-impl</slf4j.binding>" in pom
    assert "<artifactId>bcpkix-jdk18on</artifactId><version>1.78.1</version>" in pom
    assert "<bookkeeper.version>4.17.3</bookkeeper.version>" in pulsar_dist.render_pom(
        pulsar_dist.classpath("server", "4.2.4"))


def test_version_list_is_parsed_and_checked():
    assert pulsar_versions.parse_versions(" 3.0.7, 4.2.4 ") == ["3.0.7", "4.2.4"]
    with pytest.raises(ConfigError, match="4.1.0 is not supported"):
        pulsar_versions.parse_versions("3.0.7,4.1.0")


def test_version_infos_list_every_version_once_with_one_default():
    infos = pulsar_dist.version_infos()
    assert [i.version for i in infos] == pulsar_versions.supported()
    assert [i.version for i in infos if i.default] == [pulsar_versions.DEFAULT_PULSAR]
    assert all(i.locked for i in infos)
