"""Bad input to `geo-recon lab` gets one clear line and exit code 2, never a traceback."""

import socket
from pathlib import Path

from tests.conftest import run_cli


def _assert_clean_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def test_unknown_scheme():
    _assert_clean_error(run_cli("lab", "up", "--scheme", "eventual", "--isolation", "loopback"),
                        "unknown scheme 'eventual'")


def test_fewer_than_two_regions():
    _assert_clean_error(run_cli("lab", "up", "--regions", "a", "--isolation", "loopback"), "at least 2 regions")


def test_missing_java(tmp_path):
    proc = run_cli("lab", "up", "--isolation", "loopback", "--name", "nojava",
                   env={"JAVA_HOME": str(tmp_path / "no-jdk")})
    _assert_clean_error(proc, "Java 17+ is required", "no java was found")


def test_busy_port_is_named():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # The first region's broker port is base + 150.
        proc = run_cli("lab", "up", "--isolation", "loopback", "--name", "busy", "--base-port", str(port - 150))
    _assert_clean_error(proc, f"port {port} on 127.0.0.1 (a/standalone broker) is already in use")


def test_status_of_a_lab_that_does_not_exist():
    _assert_clean_error(run_cli("lab", "status", "--name", "ghost"), "no lab named 'ghost'")


def test_corrupt_state_file_then_forced_down(tmp_path):
    env = {"GEO_RECON_HOME": str(tmp_path)}
    state = tmp_path / "labs" / "broken" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    _assert_clean_error(run_cli("lab", "status", "--name", "broken", env=env), str(state), "corrupt")
    _assert_clean_error(run_cli("lab", "down", "--name", "broken", env=env), "--force")
    forced = run_cli("lab", "down", "--name", "broken", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert not state.exists()


def test_a_base_port_in_the_kernels_ephemeral_range_is_refused():
    # An outgoing connection may take any ephemeral port, so a lab listening there fails at random.
    first, last = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    proc = run_cli("lab", "up", "--isolation", "loopback", "--name", "ephem", "--base-port", str(first + 100))
    _assert_clean_error(proc, f"overlap the kernel's ephemeral port range {first}..{last}", "choose a base port of")
    assert run_cli("lab", "status", "--name", "ephem").returncode != 0  # nothing was started


def test_unsupported_pulsar_version_names_the_supported_ones(tmp_path):
    _assert_clean_error(run_cli("lab", "up", "--pulsar", "4.1.0", "--isolation", "loopback"),
                        "Pulsar 4.1.0 is not supported; supported versions: 3.0.2, 3.0.7, ")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\n")
    _assert_clean_error(run_cli("run", str(scenario), "--pulsar", "3.0.7,9"), "Pulsar 9 is not supported")


def test_pulsar_versions_lists_every_version_and_the_default():
    import json

    from geo_recon.deploy.pulsar_versions import DEFAULT_PULSAR, supported

    proc = run_cli("pulsar", "versions", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["version"] for r in rows] == supported()
    assert [r["version"] for r in rows if r["default"]] == [DEFAULT_PULSAR]
    assert all(r["locked"] for r in rows)
    text = run_cli("pulsar", "versions").stdout
    assert "apache/pulsar#22890" in text
