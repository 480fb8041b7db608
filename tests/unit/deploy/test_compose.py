"""The compose renderer: the same components, settings, ports and JVM command lines as the local lab."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from geo_recon.cli.compose import spec_from_options
from geo_recon.deploy import compose, local, pulsar_conf
from geo_recon.deploy.topology import LabSpec, plan_lab
from geo_recon.errors import ConfigError
from tests.conftest import REPO

STRONG3 = LabSpec(regions=("a", "b", "c"), scheme="strong", name="t3")
ASYNC3 = LabSpec(regions=("a", "b", "c"), scheme="async", name="t3")


def _doc(spec):
    return yaml.safe_load(compose.render(spec)["compose.yaml"])


def _properties(text):
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


# ---------------------------------------------------------------- one source of truth


@pytest.mark.parametrize("spec", [ASYNC3, STRONG3], ids=["async", "strong"])
def test_component_files_are_the_local_labs_with_container_addresses_and_paths(spec, tmp_path):
    """Write the local lab's files for the same spec, map its addresses and paths, and compare everything."""
    plan = plan_lab(spec)  # netns mode: every site has its own 198.18.0.x address
    files = compose.render(spec)
    lib, java = tmp_path / "lib", "/opt/jdk/bin/java"
    zk_address = plan.site("zk").address if spec.scheme == "strong" else None
    for comp in plan.components:
        state = local._component_state(comp, plan, tmp_path, java, lib)
        slug = comp.name.replace("/", "-")
        mapping = [
            (str(tmp_path / "data" / slug), compose.DATA_DIR),
            (str(tmp_path / "conf" / slug), compose.CONF_DIR),
            (str(tmp_path / "logs"), compose.LOG_DIR),
            (str(lib), compose.LIB_DIR),
        ]

        def to_container(text):
            for old, new in mapping:
                text = text.replace(old, new)
            if zk_address:
                text = re.sub(rf"(?<![\d.]){re.escape(zk_address)}(?!\d)", "zk-zookeeper", text)
            return re.sub(rf"(?<![\d.]){re.escape(comp.address)}(?!\d)", slug, text)

        conf_name = compose.CONF_FILES[comp.kind]
        local_conf = (tmp_path / "conf" / slug / conf_name).read_text()
        assert _properties(files[f"conf/{slug}/{conf_name}"]) == _properties(to_container(local_conf)), comp.name
        assert files[f"conf/{slug}/log4j2.xml"] == (tmp_path / "conf" / slug / "log4j2.xml").read_text()
        argfile = files[f"conf/{slug}/{compose.ARGFILE}"].splitlines()
        assert [compose.JAVA, *argfile] == [to_container(a) for a in [compose.JAVA, *state.argv[1:]]], comp.name


def test_the_strong_lab_keeps_the_two_region_write_rule_and_region_racks():
    files = compose.render(STRONG3)
    broker = _properties(files["conf/b-broker/broker.conf"])
    assert broker["reppRegionsToWrite"] == "a;b;c"
    assert broker["bookkeeperClientEnforceMinNumRacksPerWriteQuorum"] == "true"
    assert broker["metadataStoreUrl"] == "zk:zk-zookeeper:20081"
    assert broker["advertisedAddress"] == "b-broker"
    assert compose.bookie_racks(compose.compose_lab(STRONG3)) == {
        "a-bookie:20181": "/a/rack-1", "b-bookie:20281": "/b/rack-1", "c-bookie:20381": "/c/rack-1"}


def test_metadata_setup_runs_the_local_labs_main_class_with_the_first_regions_urls():
    argfile = compose.render(STRONG3)["conf/metadata-setup/java.args"].splitlines()
    main = argfile.index(pulsar_conf.MAIN_CLASSES["metadata-setup"])
    assert argfile[main + 1:] == [
        "--cluster", "geo", "--metadata-store", "zk:zk-zookeeper:20081",
        "--configuration-metadata-store", "zk:zk-zookeeper:20081",
        "--web-service-url", "http://a-broker:20180", "--broker-service-url", "pulsar://a-broker:20150"]
    assert "-Xmx256m" in argfile


def test_java_argument_files_refuse_arguments_that_would_need_quoting():
    assert compose.java_argfile(["java", "-Xmx1m", "Main"]) == "-Xmx1m\nMain\n"
    for bad in ("-Dx=a b", "-Dx=#1", "-Dx='q'"):
        with pytest.raises(ValueError, match="quoting"):
            compose.java_argfile(["java", bad])
    with pytest.raises(ValueError, match="java command line"):
        compose.java_argfile(["/usr/bin/java", "Main"])


# ---------------------------------------------------------------- networks and proxies


def _resolve(doc, net, name):
    """What Docker's DNS answers for ``name`` on network ``net``: the services with that name or alias there."""
    found = set()
    for service, body in doc["services"].items():
        nets = body.get("networks", [])
        if net not in nets:
            continue
        aliases = (nets[net] or {}).get("aliases", []) if isinstance(nets, dict) else []
        if name == service or name in aliases:
            found.add(service)
    return found


def _networks(body):
    nets = body.get("networks", [])
    return list(nets) if isinstance(nets, (dict, list)) else []


@pytest.mark.parametrize("spec", [ASYNC3, STRONG3], ids=["async", "strong"])
def test_every_connection_to_another_site_resolves_to_the_callers_toxiproxy(spec):
    lab = compose.compose_lab(spec)
    doc = _doc(spec)
    proxies = {region: {p.port: p for p in lab.proxies(region)} for region in lab.regions}
    for caller in lab.components:
        home = compose.network(caller.site)
        assert _networks(doc["services"][compose.hostname(caller.name)]) == [home]
        for target in lab.components:
            host = compose.hostname(target.name)
            answer = _resolve(doc, home, host)
            if target.site == caller.site:
                assert answer == {host}, (caller.name, host)
                continue
            if caller.region is None:  # the witness site opens no connections: it gets no proxy
                assert answer == set(), (caller.name, host)
                continue
            toxiproxy = compose.toxiproxy_service(caller.region)
            assert answer == {toxiproxy}, (caller.name, host)
            for port in target.ports.values():
                proxy = proxies[caller.region][port]
                assert (proxy.host, proxy.dst, proxy.listen) == (host, target.site, f"0.0.0.0:{port}")
                upstream_host, upstream_port = proxy.upstream.split(":")
                assert int(upstream_port) == port
                # The proxy reaches the real container, whichever of its networks answers.
                reachable = set().union(*(_resolve(doc, n, upstream_host)
                                          for n in _networks(doc["services"][toxiproxy])))
                assert reachable == {host}


def test_toxiproxy_listens_exactly_on_the_other_sites_ports_and_loads_its_config():
    lab = compose.compose_lab(STRONG3)
    files = compose.render(STRONG3)
    doc = yaml.safe_load(files["compose.yaml"])
    for region in lab.regions:
        import json

        config = json.loads(files[f"toxiproxy/{region}.json"])
        remote_ports = sorted(p for c in lab.components if c.site != region for p in c.ports.values())
        assert sorted(int(p["listen"].rsplit(":", 1)[1]) for p in config) == remote_ports
        assert all(p["enabled"] is True and p["name"].startswith(f"{region}_to_") for p in config)
        service = doc["services"][compose.toxiproxy_service(region)]
        assert service["image"] == "geo-recon-toxiproxy:2.12.0"  # built by geo-recon compose images
        assert "-config=/config/toxiproxy.json" in service["command"]
        assert f"./toxiproxy/{region}.json:/config/toxiproxy.json:ro" in service["volumes"]
        assert set(service["networks"]) == {compose.network(s) for s in lab.sites}
        assert service["healthcheck"]["test"] == ["CMD", "/toxiproxy-cli", "inspect", config[-1]["name"]]


@pytest.mark.parametrize("spec", [ASYNC3, STRONG3], ids=["async", "strong"])
def test_ports_are_the_local_plans_published_on_loopback_and_never_clash(spec):
    lab = compose.compose_lab(spec)
    doc = _doc(spec)
    host_ports = []
    for comp in lab.components:
        service = doc["services"][compose.hostname(comp.name)]
        assert service["ports"] == [f"127.0.0.1:{p}:{p}" for p in comp.ports.values()]
        assert service["image"] == "geo-recon-pulsar:4.2.4"  # built by geo-recon compose images
        assert service["restart"] == "no"
        host_ports += list(comp.ports.values())
    for region in lab.regions:
        (mapping,) = doc["services"][compose.toxiproxy_service(region)]["ports"]
        assert mapping == f"127.0.0.1:{lab.toxiproxy_api_port(region)}:8474"
        host_ports.append(lab.toxiproxy_api_port(region))
    assert len(host_ports) == len(set(host_ports))
    top = spec.base_port + 100 * (len(spec.regions) + 1)
    assert all(spec.base_port <= p < top for p in host_ports)


# ---------------------------------------------------------------- start order and health


def test_strong_lab_starts_in_the_local_labs_order():
    lab = compose.compose_lab(STRONG3)
    services = _doc(STRONG3)["services"]

    def needs(service):
        return {name: dep["condition"] for name, dep in services[service].get("depends_on", {}).items()}

    assert needs("metadata-setup") == {"zk-zookeeper": "service_healthy"}
    for region in lab.regions:
        for kind in ("bookie", "broker"):
            assert needs(f"{region}-{kind}") == {f"toxiproxy-{region}": "service_healthy",
                                                 "metadata-setup": "service_completed_successfully"}
        assert needs(f"{region}-worker") == {f"{region}-broker": "service_healthy",
                                             "bookie-racks": "service_completed_successfully"}
    # The broker's health check writes a ledger, which needs the labels: the labeller may not wait for it.
    assert needs("bookie-racks") == {"a-broker": "service_started"}
    assert lab.one_shots == ("metadata-setup", "bookie-racks")
    assert "curl" in services["a-broker"]["healthcheck"]["test"]
    assert services["a-broker"]["healthcheck"]["test"][-1] == "http://a-broker:20180/admin/v2/brokers/health"
    assert services["zk-zookeeper"]["healthcheck"]["test"] == [
        "CMD-SHELL", "{ echo ruok; sleep 1; } | nc zk-zookeeper 20081 | grep -q imok"]
    assert services["c-bookie"]["healthcheck"]["test"] == ["CMD", "bash", "-c", "exec 3<>/dev/tcp/c-bookie/20381"]


def test_async_lab_has_no_metadata_or_rack_one_shots():
    lab = compose.compose_lab(ASYNC3)
    services = _doc(ASYNC3)["services"]
    assert lab.one_shots == ()
    assert "metadata-setup" not in services and "bookie-racks" not in services
    assert services["b-worker"]["depends_on"] == {"b-standalone": {"condition": "service_healthy"}}
    assert set(lab.long_running) == {"toxiproxy-a", "toxiproxy-b", "toxiproxy-c",
                                     "a-standalone", "b-standalone", "c-standalone"}


def test_each_region_gets_a_worker_that_reads_the_clusters_file():
    files = compose.render(ASYNC3, build_context="../..")
    worker = yaml.safe_load(files["compose.yaml"])["services"]["c-worker"]
    assert worker["command"] == ["geo-recon", "worker", "--region", "c", "--clusters", "/config/clusters.yaml",
                                 "--out", "/history", "--run-id", "${GEO_RECON_RUN_ID:-compose}"]
    assert worker["build"] == {"context": "../..", "dockerfile": "docker/worker.Dockerfile"}
    assert worker["profiles"] == ["workers"]
    assert worker["networks"] == ["net-c"]
    assert worker["volumes"] == ["./clusters.yaml:/config/clusters.yaml:ro", "${GEO_RECON_HISTORY:-./history}:/history"]
    # what `geo-recon run` sets for a scenario; empty (unset) leaves the worker's defaults
    assert worker["environment"] == {
        "GEO_RECON_WORKLOAD_FILE": "${GEO_RECON_WORKLOAD_FILE:-}", "GEO_RECON_START_AT": "${GEO_RECON_START_AT:-}",
        "GEO_RECON_SEED": "${GEO_RECON_SEED:-}", "GEO_RECON_TENANT": "${GEO_RECON_TENANT:-}",
        "GEO_RECON_NAMESPACE": "${GEO_RECON_NAMESPACE:-}"}


@pytest.mark.parametrize("spec", [ASYNC3, STRONG3], ids=["async", "strong"])
def test_the_clusters_file_is_one_the_rest_of_geo_recon_reads(spec, tmp_path):
    from geo_recon.deployment import from_clusters_file

    path = tmp_path / "clusters.yaml"
    path.write_text(compose.render(spec)["clusters.yaml"])
    deployment = from_clusters_file(path)
    lab = compose.compose_lab(spec)
    assert [(r.region, r.service_url, r.admin_url, r.cluster) for r in deployment.regions] == [
        (e.region, e.service_url, e.admin_url, e.cluster) for e in lab.endpoints()]
    kind = "standalone" if spec.scheme == "async" else "broker"
    assert deployment.region("b").service_url == f"pulsar://b-{kind}:20250"
    assert deployment.region("c").admin_url == f"http://c-{kind}:20380"
    if spec.scheme == "strong":
        assert [r.bookies for r in deployment.regions] == [("a-bookie:20181",), ("b-bookie:20281",), ("c-bookie:20381",)]
        assert {r.cluster for r in deployment.regions} == {"geo"}
    else:
        assert all(r.bookies == () and r.cluster == r.region for r in deployment.regions)


def _fake_curl(tmp_path, racks_json):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "curl.log"
    (bin_dir / "curl").write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" >> {log}\n'
        f"""case "$*" in *racks-info\\ *|*racks-info) printf '%s' '{racks_json}';; esac\n""")
    (bin_dir / "curl").chmod(0o755)
    return bin_dir, log


@pytest.mark.parametrize("complete", [True, False], ids=["labels-read-back", "label-missing"])
def test_the_rack_labeller_posts_every_label_and_fails_unless_it_reads_them_back(tmp_path, complete):
    script = tmp_path / "label-bookies.sh"
    script.write_text(compose.render(STRONG3)["scripts/label-bookies.sh"])
    racks = {"a-bookie:20181": {"rack": "/a/rack-1", "hostname": "a-bookie"},
             "b-bookie:20281": {"rack": "/b/rack-1", "hostname": "b-bookie"},
             "c-bookie:20381": {"rack": "/c/rack-1" if complete else "/c/rack-9", "hostname": "c-bookie"}}
    import json

    bin_dir, log = _fake_curl(tmp_path, json.dumps({"default": racks}))
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    calls = log.read_text().splitlines()
    assert calls[0] == "-fsS -o /dev/null http://a-broker:20180/admin/v2/brokers/ready"
    posts = [c for c in calls if "-X POST" in c]
    assert posts == [
        "-fsS -X POST -H Content-Type: application/json -d "
        f'{{"rack": "/{r}/rack-1", "hostname": "{r}-bookie"}} '
        f"http://a-broker:20180/admin/v2/bookies/racks-info/{r}-bookie:20{i}81?group=default"
        for r, i in (("a", 1), ("b", 2), ("c", 3))]
    assert calls[-1] == "-fsS http://a-broker:20180/admin/v2/bookies/racks-info"
    assert proc.returncode == (0 if complete else 1), proc.stdout + proc.stderr


# ---------------------------------------------------------------- files on disk


def test_rendering_is_deterministic_and_marks_every_file_it_owns():
    first, second = compose.render(STRONG3), compose.render(STRONG3)
    assert first == second
    assert first["compose.yaml"].startswith("# generated by geo-recon")
    meta = yaml.safe_load(first["compose.yaml"])["x-geo-recon"]
    assert meta == {"lab": "t3", "scheme": "strong", "regions": ["a", "b", "c"], "base_port": 20000, "pulsar": "4.2.4"}
    assert yaml.safe_load(first["compose.yaml"])["name"] == "geo-recon-t3-strong"


def test_write_project_replaces_an_earlier_render_and_removes_its_stale_files(tmp_path):
    out = tmp_path / "lab"
    compose.write_project(STRONG3, out)
    (out / "history").mkdir()
    (out / "history" / "a.jsonl").write_text("{}\n")
    compose.write_project(ASYNC3, out)
    assert not (out / "conf" / "a-broker").exists() and not (out / "scripts").exists()
    assert (out / "conf" / "a-standalone" / "standalone.conf").is_file()
    assert (out / "history" / "a.jsonl").read_text() == "{}\n"  # never touched
    assert compose.generated_files(out) == set(compose.render(ASYNC3))


def test_write_project_refuses_a_directory_it_did_not_render(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and holds no compose project rendered by geo-recon"):
        compose.write_project(ASYNC3, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_rendered_directory_loads_back_as_the_same_lab(tmp_path):
    spec = LabSpec(regions=("east", "west"), scheme="strong", name="x", base_port=30000)
    compose.write_project(spec, tmp_path / "p")
    lab = compose.load_project(tmp_path / "p")
    assert (lab.spec.regions, lab.spec.scheme, lab.spec.name, lab.spec.base_port) == (
        ("east", "west"), "strong", "x", 30000)
    assert compose.stale_against_render(tmp_path / "p", lab) == []
    (tmp_path / "p" / "conf" / "east-broker" / "broker.conf").write_text("edited\n")
    assert compose.stale_against_render(tmp_path / "p", lab) == ["conf/east-broker/broker.conf"]


def test_loading_a_directory_without_a_rendered_project_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"compose.yaml does not exist: render a compose lab first"):
        compose.load_project(tmp_path)
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    with pytest.raises(ConfigError, match="no x-geo-recon section"):
        compose.load_project(tmp_path)
    (tmp_path / "compose.yaml").write_text("x-geo-recon: {lab: x, scheme: async}\n")
    with pytest.raises(ConfigError, match="x-geo-recon is incomplete"):
        compose.load_project(tmp_path)


# ---------------------------------------------------------------- scenario topology


def _scenario(tmp_path, text, name="smoke.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _lab_of(path):
    return spec_from_options(scenario=path, regions=None, scheme=None, name=None, base_port=None)


def test_a_scenario_file_gives_its_regions_scheme_and_lab(tmp_path):
    # The same scenario files `geo-recon run` reads (the shipped ones among them).
    path = _scenario(tmp_path, "name: smoke\nworkload: {rate: 10}\ntopology:\n  regions: [a, b, c]\n"
                               "  lab: {name: smoke, base_port: 22000}\nscheme: strong\n")
    assert _lab_of(path) == LabSpec(regions=("a", "b", "c"), scheme="strong", name="smoke", base_port=22000)
    path = _scenario(tmp_path, "name: region-loss\ntopology: {regions: [x, y]}\n", name="wan2.yaml")
    assert _lab_of(path) == LabSpec(regions=("x", "y"), scheme="async", name="lab")  # the scenario defaults
    shipped = spec_from_options(scenario=REPO / "scenarios" / "region-loss.yaml", regions=None, scheme=None,
                                        name=None, base_port=None)
    assert (shipped.regions, shipped.scheme, shipped.name) == (("a", "b"), "async", "run")


@pytest.mark.parametrize("text, message", [
    ("workload: {}\n", "smoke.yaml:1: field name: Field required"),
    ("name: s\ntopology: [a, b]\n", "smoke.yaml:2: field topology: Input should be a valid dictionary"),
    ("name: s\ntopology:\n  regions: a,b\n", "smoke.yaml:3: field topology.regions: Input should be a valid list"),
    ("name: s\ntopology:\n  regions: [a, b]\nscheme: eventual\n", "smoke.yaml:4: field scheme: Input should be"),
    ("name: s\ntopology:\n  regions: [a]\n", "smoke.yaml:3: field topology: at least 2 regions are needed"),
    ("name: s\ntopology:\n  regions: [a, zk]\nscheme: strong\n", "smoke.yaml: topology: region name 'zk' is reserved"),
    ("name: s\ntopology: {regions: [a, b], lab: {name: Region-Loss}}\n",
     "smoke.yaml: topology: lab name 'Region-Loss': use 1-8"),
    ("name: s\ntopology:\n  regions: [a, b\nscheme: async\n", "smoke.yaml:4: not valid YAML"),
    ("- just a list\n", "smoke.yaml: a scenario is a mapping"),
])
def test_scenario_errors_name_the_file_field_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        _lab_of(_scenario(tmp_path, text))
    assert message in str(caught.value)
    assert str(tmp_path / "smoke.yaml") in str(caught.value)


def test_a_missing_scenario_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="absent.yaml does not exist"):
        _lab_of(tmp_path / "absent.yaml")


def test_render_options_take_a_scenario_or_regions_and_scheme_but_not_both(tmp_path):
    path = _scenario(tmp_path, "name: smoke\ntopology: {regions: [a, b], lab: {name: smoke}}\nscheme: async\n")
    spec = spec_from_options(scenario=path, regions=None, scheme=None, name=None, base_port=30000)
    assert (spec.name, spec.base_port) == ("smoke", 30000)
    spec = spec_from_options(scenario=path, regions=None, scheme=None, name="other", base_port=None)
    assert (spec.name, spec.base_port) == ("other", 20000)
    with pytest.raises(ConfigError, match="not both"):
        spec_from_options(scenario=path, regions="a,b", scheme=None, name=None, base_port=20000)
    with pytest.raises(ConfigError, match="both --regions"):
        spec_from_options(scenario=None, regions="a,b", scheme=None, name=None, base_port=20000)
    spec = spec_from_options(scenario=None, regions="a, b", scheme="strong", name=None, base_port=20000)
    assert spec == LabSpec(regions=("a", "b"), scheme="strong", name="lab")
    with pytest.raises(ConfigError, match="unknown scheme"):
        spec_from_options(scenario=None, regions="a,b", scheme="sync", name=None, base_port=20000)


def test_build_context_points_from_the_project_to_this_checkout(tmp_path):
    root = Path(compose.__file__).resolve().parents[2]
    out = root / "docker" / "anything"
    assert compose.build_context_for(out) == "../.."
    assert (Path(tmp_path) / compose.build_context_for(tmp_path)).resolve() == root
