"""The container engine's command line and the images' inputs (no engine needed)."""

from __future__ import annotations

from geo_recon.deploy import compose, engine, images


def test_dockerd_leaves_the_firewall_and_the_labs_addresses_alone():
    argv = engine.dockerd_argv()
    for flag in ("--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none"):
        assert flag in argv
    pool = argv[argv.index("--default-address-pool") + 1]
    assert pool == "base=198.19.0.0/16,size=24"  # the local labs own 198.18.S.0/24
    assert str(engine.state_dir() / "dockerd.pid") in argv  # how engine down knows it is ours


def test_the_compose_files_name_the_images_compose_images_tags():
    assert compose.PULSAR_IMAGE == compose.pulsar_image() == "geo-recon-pulsar:4.2.4"
    assert compose.TOXIPROXY_IMAGE == "geo-recon-toxiproxy:2.12.0"
    assert compose.WORKER_IMAGE.startswith("geo-recon-worker:")


def test_the_base_tag_follows_its_inputs(monkeypatch):
    tag = images.base_tag()
    assert tag == images.base_tag() and tag.startswith("geo-recon-base:bookworm-")
    monkeypatch.setattr(images, "BASE_PACKAGES", (*images.BASE_PACKAGES, "less"))
    assert images.base_tag() != tag


def test_the_root_filesystem_gets_what_the_official_pulsar_image_has(tmp_path):
    security = tmp_path / "etc/java-17-openjdk/security/java.security"
    security.parent.mkdir(parents=True)
    security.write_text("securerandom.source=file:/dev/random\n")
    archives = tmp_path / "var/cache/apt/archives"
    archives.mkdir(parents=True)
    (archives / "curl.deb").write_text("x")
    images._adjust_rootfs(tmp_path)
    lines = security.read_text().splitlines()
    assert lines[0] == "securerandom.source=file:/dev/random"
    assert lines[-2:] == ["networkaddress.cache.ttl=1", "networkaddress.cache.negative.ttl=1"]
    assert all((tmp_path / "pulsar" / d).is_dir() for d in ("lib", "data", "logs"))
    assert (tmp_path / "pulsar/data").stat().st_mode & 0o777 == 0o777
    assert not (archives / "curl.deb").exists()


def test_the_worker_tag_follows_the_source(tmp_path):
    for name in ("pyproject.toml", "constraints.txt", "README.md"):
        (tmp_path / name).write_text(name)
    (tmp_path / "geo_recon").mkdir()
    (tmp_path / "geo_recon/a.py").write_text("x = 1\n")
    (tmp_path / "geo_recon/__pycache__").mkdir()
    (tmp_path / "geo_recon/__pycache__/a.pyc").write_text("cache")
    before = images._source_digest(tmp_path)
    (tmp_path / "geo_recon/__pycache__/a.pyc").write_text("other cache")
    assert images._source_digest(tmp_path) == before  # byte code is not an input
    (tmp_path / "geo_recon/a.py").write_text("x = 2\n")
    assert images._source_digest(tmp_path) != before
