import pytest

from geo_recon import deployment
from geo_recon.errors import ConfigError


def _write(tmp_path, text):
    path = tmp_path / "clusters.yaml"
    path.write_text(text)
    return path


GOOD = """regions:
  east: {service_url: "pulsar://e:6650", admin_url: "http://e:8080", token_env: TOKEN_EAST}
  west: {service_url: "pulsar+ssl://w:6651", admin_url: "https://w:8443", tls_ca: /ca.pem, bookies: ["w1:3181"]}
"""


def test_a_clusters_file_gives_a_deployment_and_hides_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN_EAST", "s3cret-token")
    dep = deployment.from_clusters_file(_write(tmp_path, GOOD))
    assert dep.region_names == ["east", "west"]
    assert dep.region("east").token == "s3cret-token"
    assert dep.region("west").bookies == ("w1:3181",)
    assert "s3cret" not in repr(dep)
    admin = dep.region("east").admin()
    assert "s3cret" not in repr(admin)


@pytest.mark.parametrize(("text", "message"), [
    ("regions:\n  a: {service_url: 'http://x', admin_url: 'http://x'}\n  b: {service_url: 'pulsar://y', admin_url: 'http://y'}\n",
     "field regions.a: Value error, service_url must start with pulsar://"),
    ("regions:\n  a: {service_url: 'pulsar://x', admin_url: 'http://x', colour: red}\n  b: {service_url: 'pulsar://y', admin_url: 'http://y'}\n",
     "field regions.a.colour: Extra inputs are not permitted"),
    ("regions:\n  a: {service_url: 'pulsar://x', admin_url: 'http://x'}\n", "at least 2 regions"),
    ("regions: [\n", ":2: not valid YAML"),
    ("regions:\n  a: {service_url: 'pulsar://x', admin_url: 'http://x', token_env: NOPE_NOT_SET}\n  b: {service_url: 'pulsar://y', admin_url: 'http://y'}\n",
     "regions.a.token_env: environment variable NOPE_NOT_SET is not set"),
])
def test_bad_clusters_files_name_the_file_and_field(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        deployment.from_clusters_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_missing_clusters_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        deployment.from_clusters_file(tmp_path / "nope.yaml")
