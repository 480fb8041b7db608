from dataclasses import replace

import pytest

from geo_recon.deploy.topology import LabSpec, parse_regions, plan_lab
from geo_recon.errors import ConfigError


def test_async_plan_has_one_standalone_per_region_with_its_own_cluster():
    plan = plan_lab(LabSpec(regions=("a", "b", "c"), scheme="async", name="x", base_port=20000, subnet=7))
    assert [c.name for c in plan.components] == ["a/standalone", "b/standalone", "c/standalone"]
    assert [e.cluster for e in plan.endpoints] == ["a", "b", "c"]
    assert plan.endpoint("b").service_url == "pulsar://198.18.7.11:20250"
    assert plan.endpoint("b").admin_url == "http://198.18.7.11:20280"
    assert plan.bridge == "grb-x" and plan.bridge_address == "198.18.7.1"
    assert {s.netns for s in plan.sites} == {"gr-x-a", "gr-x-b", "gr-x-c"}
    assert plan.zookeeper_url is None


def test_strong_plan_stretches_one_cluster_with_a_witness_site():
    plan = plan_lab(LabSpec(regions=("east", "west"), scheme="strong", name="s", base_port=30000))
    names = [c.name for c in plan.components]
    assert names == ["zk/zookeeper", "east/bookie", "east/broker", "west/bookie", "west/broker"]
    assert {e.cluster for e in plan.endpoints} == {"geo"}
    assert plan.zookeeper_url == "198.18.0.2:30081"
    assert plan.site("zk").netns == "gr-s-zk"


def test_every_port_and_address_is_distinct_per_component():
    plan = plan_lab(LabSpec(regions=tuple("abcdefghi"), scheme="strong", isolation="loopback"))
    endpoints = [(c.address, p) for c in plan.components for p in c.ports.values()]
    assert len(endpoints) == len(set(endpoints))
    assert all(c.address == "127.0.0.1" for c in plan.components)
    assert plan.bridge is None


def test_interface_names_fit_the_kernel_limit():
    plan = plan_lab(LabSpec(regions=tuple("abcdefghi"), scheme="strong", name="abcdefgh"))
    for site in plan.sites:
        assert site.veth and len(site.veth) <= 15
    assert plan.bridge and len(plan.bridge) <= 15


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (LabSpec(regions=("a",), scheme="async"), "at least 2 regions"),
        (LabSpec(regions=("a", "b"), scheme="eventual"), "unknown scheme 'eventual'"),  # type: ignore[arg-type]
        (LabSpec(regions=("a", "a"), scheme="async"), "distinct"),
        (LabSpec(regions=("a", "B"), scheme="async"), "region name 'B'"),
        (LabSpec(regions=("a", "zk"), scheme="strong"), "reserved"),
        (LabSpec(regions=("a", "b"), scheme="async", name="Lab!"), "lab name"),
        (LabSpec(regions=("a", "b"), scheme="async", base_port=65500), "base port"),
        (LabSpec(regions=("a", "b"), scheme="async", subnet=300), "subnet"),
    ],
)
def test_bad_specs_are_rejected_with_the_reason(spec, message):
    with pytest.raises(ConfigError, match=message):
        plan_lab(spec)


def test_parse_regions_ignores_blanks():
    assert parse_regions(" a, b,,c ") == ("a", "b", "c")


def test_host_ports_in_the_ephemeral_range_are_refused_with_a_base_that_fits():
    from geo_recon.deploy.topology import ephemeral_overlap, host_port_span

    spec = LabSpec(regions=("a", "b"), scheme="async", name="x", base_port=35000)
    assert host_port_span(spec) == (35000, 36199)
    problem = ephemeral_overlap(spec, (32768, 60999))
    assert problem and "35000..36199" in problem and "32768..60999" in problem and "31568 or less" in problem
    assert ephemeral_overlap(LabSpec(regions=("a", "b"), scheme="async", base_port=20000), (32768, 60999)) is None
    # just below and just above the range
    assert ephemeral_overlap(LabSpec(regions=("a", "b"), scheme="async", base_port=31568), (32768, 60999)) is None
    assert ephemeral_overlap(LabSpec(regions=("a", "b"), scheme="async", base_port=61000), (32768, 60999)) is None
    assert ephemeral_overlap(LabSpec(regions=("a", "b"), scheme="async", base_port=31569), (32768, 60999))


def test_a_netns_lab_proxies_its_wan_from_the_start_when_its_proxy_ports_suffice():
    from geo_recon.deploy.topology import PROXY_PORTS, wan_proxy_count

    three = LabSpec(regions=("a", "b", "c"), scheme="strong", bookies_per_region=2)
    assert wan_proxy_count(three) == 3 * 2 * (3 + 2)  # per link: broker, web, echo and two bookies
    assert three.wan_mode == "proxied"
    assert replace(three, isolation="loopback").wan_mode == "direct"  # no namespaces, no links to proxy
    assert replace(three, wan="direct").wan_mode == "direct"
    nine = LabSpec(regions=tuple("abcdefghi"), scheme="async")
    assert wan_proxy_count(nine) > PROXY_PORTS
    assert nine.wan_mode == "direct"  # auto falls back where the proxies would not fit ...
    with pytest.raises(ConfigError, match=r"need 216 WAN proxies, more than the lab's 200"):
        replace(nine, wan="proxied").validate()  # ... proxied asked for says why it cannot be
