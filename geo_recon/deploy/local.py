"""The local lab: real Pulsar JVMs on this machine, one network namespace per site.

``up`` starts a lab and returns only when every region answers its admin API
and passes a produce/consume round trip; ``down`` removes every process,
namespace, link and rule, working from the state file and, failing that, from
names and process markers alone; ``status`` reports every component.

async: one standalone JVM per region (broker + embedded bookie + RocksDB
metadata): independent clusters named after their regions.
strong: one cluster ``geo`` stretched over the regions: ZooKeeper on a witness
site, and a bookie and a broker in every region, bookies labelled
``/<region>/rack-1`` for BookKeeper's region-aware placement.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from geo_recon.admin import AdminClient, AdminError
from geo_recon.deploy import netns, procs, pulsar_conf, pulsar_dist, pulsar_versions, state, wan
from geo_recon.deploy.state import ComponentState, EndpointState, LabState
from geo_recon.deploy.topology import ComponentPlan, LabPlan, LabSpec, ephemeral_overlap, plan_lab
from geo_recon.errors import ConfigError, EnvironmentProblem, LabError
from geo_recon.probe import pulsar_logger, round_trip  # noqa: F401 - re-exported: tests and workers use local.*
from geo_recon.schemes import rack_for

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------- up


def up(spec: LabSpec, *, progress: Progress = _quiet, timeout: float = 120.0,
       keep_on_failure: bool = False) -> LabState:
    """Start a lab and wait until every region is ready. Cleans up on any failure."""
    plan = plan_lab(spec)
    if spec.isolation == "netns" and not netns.is_root():
        raise EnvironmentProblem("network namespaces need root; run as root or pass --isolation loopback")
    java = pulsar_dist.find_java()
    _clear_stale(spec.name, progress)
    if spec.isolation == "loopback":
        _check_ports_free(plan)
    _check_not_ephemeral(spec)
    lib = pulsar_dist.server_lib(spec.pulsar, progress=progress)

    started = time.monotonic()
    home = state.lab_dir(spec.name)
    for old in ("data", "conf", "logs"):
        shutil.rmtree(home / old, ignore_errors=True)
    lab = LabState(
        name=spec.name, scheme=spec.scheme, regions=list(spec.regions), isolation=spec.isolation,
        base_port=spec.base_port, subnet=spec.subnet, phase="starting", created_at=time.time(),
        bookies_per_region=spec.bookies_per_region, placement=spec.placement,
        wan=spec.wan_mode,
        lab_dir=str(home), pulsar_version=spec.pulsar, java=f"{java.path} ({java.version})",
        bridge=plan.bridge, bridge_address=plan.bridge_address,
        namespaces={s.name: s.netns for s in plan.sites if s.netns},
        site_addresses={s.name: s.address for s in plan.sites},
        zookeeper_url=plan.zookeeper_url,
        endpoints=[EndpointState(**vars(e)) for e in plan.endpoints],
        components=[_component_state(c, plan, home, java.path, lib) for c in plan.components],
        owner_pid=os.getpid(), owner_ticks=procs.start_ticks(os.getpid()) or -1,
    )
    state.save(lab)
    try:
        if spec.isolation == "netns":
            progress(f"creating network: bridge {plan.bridge} {plan.bridge_address}/24, "
                     f"namespaces {', '.join(lab.namespaces.values())}")
            netns.create(plan)
            if lab.wan == "proxied":  # before any JVM connects: a latency fault then resets nothing
                wan.arm(lab, list(lab.regions), progress)
        else:
            progress("not using network namespaces: every region shares 127.0.0.1 "
                     "(network faults such as partitions and WAN latency are unavailable)")
        if spec.stretched:
            _start_strong(lab, plan, lib, java.path, progress, timeout)
        else:
            _start_async(lab, progress, timeout)
        _round_trips(lab, progress, timeout)
    except BaseException:
        lab.phase = "failed"
        state.save(lab)
        if keep_on_failure:
            progress(f"lab left running for inspection (--keep-on-failure): geo-recon lab down --name {spec.name}")
        else:
            progress("startup failed; cleaning up")
            down(spec.name, progress=_quiet)
        raise
    lab.phase = "up"
    lab.ready_seconds = round(time.monotonic() - started, 2)
    state.save(lab)
    progress(f"lab {spec.name!r} ({spec.scheme}) ready in {lab.ready_seconds:.1f}s")
    return lab


def _component_state(comp: ComponentPlan, plan: LabPlan, home: Path, java: str, lib: Path) -> ComponentState:
    """Write the component's configuration and decide its command line."""
    slug = comp.name.replace("/", "-")
    conf_dir = home / "conf" / slug
    data_dir = home / "data" / slug
    log_dir = home / "logs"
    for d in (conf_dir, data_dir, log_dir):
        d.mkdir(parents=True, exist_ok=True)
    (conf_dir / "log4j2.xml").write_text(pulsar_conf.LOG4J2_XML)
    site = plan.site(comp.site)
    spec = plan.spec
    if comp.kind == "standalone":
        settings = pulsar_conf.standalone_conf(comp.region or "", comp.address, comp.ports["broker"], comp.ports["web"])
        conf_file = conf_dir / "standalone.conf"
        args = ["--config", str(conf_file), "--no-functions-worker", "--no-stream-storage",
                "--metadata-dir", str(data_dir / "metadata"), "--bookkeeper-dir", str(data_dir / "bookkeeper"),
                "--advertised-address", comp.address]
        if spec.bookies_per_region > 1:  # more embedded bookies (ensemble 1: each ledger still on one of them)
            args += ["--num-bookies", str(spec.bookies_per_region)]
    elif comp.kind == "broker":
        assert plan.zookeeper_url
        settings = pulsar_conf.broker_conf("geo", comp.address, comp.ports["broker"], comp.ports["web"],
                                           plan.zookeeper_url, list(spec.regions),
                                           region_aware=spec.placement == "region-aware")
        conf_file = conf_dir / "broker.conf"
        args = ["--broker-conf", str(conf_file)]
    elif comp.kind == "bookie":
        assert plan.zookeeper_url
        settings = pulsar_conf.bookie_conf(comp.address, comp.ports["bookie"], plan.zookeeper_url, str(data_dir))
        conf_file = conf_dir / "bookkeeper.conf"
        args = ["--conf", str(conf_file)]
    else:
        settings = pulsar_conf.zookeeper_conf(comp.address, comp.ports["client"], str(data_dir))
        conf_file = conf_dir / "zookeeper.conf"
        args = [str(conf_file)]
    if comp.kind in ("standalone", "broker"):
        settings.update(pulsar_versions.release(spec.pulsar).broker_settings)
    conf_file.write_text(pulsar_conf.render_properties(settings))
    argv = pulsar_conf.jvm_command(java, comp.kind, str(lib), str(conf_dir), str(log_dir), spec.name, args)
    return ComponentState(
        name=comp.name, kind=comp.kind, site=comp.site, region=comp.region, address=comp.address,
        ports=dict(comp.ports), netns=site.netns, argv=argv, cwd=str(data_dir), log=str(log_dir / f"{slug}.log"),
    )


def start_component(lab: LabState, comp: ComponentState) -> None:
    """Start (or restart) one component from its recorded command line."""
    ref = procs.start(comp.argv, cwd=Path(comp.cwd), log_path=Path(comp.log), netns=comp.netns)
    comp.pid, comp.start_ticks = ref.pid, ref.start_ticks
    state.save(lab)


def _start_async(lab: LabState, progress: Progress, timeout: float) -> None:
    for comp in lab.components:
        start_component(lab, comp)
        progress(f"started {comp.name} (pid {comp.pid}) on {comp.address}")
    wait_ready(lab.components, timeout, progress)


def _start_strong(lab: LabState, plan: LabPlan, lib: Path, java: str, progress: Progress, timeout: float) -> None:
    zk = lab.component("zk/zookeeper")
    start_component(lab, zk)
    progress(f"started {zk.name} (pid {zk.pid}) on {zk.address}")
    wait_ready([zk], timeout, progress)
    _init_metadata(lab, plan, lib, java, progress, timeout)
    # Brokers need no bookie to start, so bookies and brokers start together;
    # racks are labelled before anything writes a ledger (the round trip).
    rest = [c for c in lab.components if c.kind in ("bookie", "broker")]
    for comp in rest:
        start_component(lab, comp)
        progress(f"started {comp.name} (pid {comp.pid}) on {comp.address}")
    wait_ready(rest, timeout, progress)
    _label_bookies(lab, progress, timeout)


def _init_metadata(lab: LabState, plan: LabPlan, lib: Path, java: str, progress: Progress, timeout: float) -> None:
    first = plan.endpoints[0]
    home = Path(lab.lab_dir)
    conf_dir = home / "conf" / "metadata-setup"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "log4j2.xml").write_text(pulsar_conf.LOG4J2_XML)
    log = home / "logs" / "metadata-setup.log"
    argv = pulsar_conf.jvm_command(
        java, "metadata-setup", str(lib), str(conf_dir), str(home / "logs"), lab.name,
        ["--cluster", first.cluster,
         "--metadata-store", f"zk:{plan.zookeeper_url}",
         "--configuration-metadata-store", f"zk:{plan.zookeeper_url}",
         "--web-service-url", first.admin_url,
         "--broker-service-url", first.service_url],
        heap=("64m", "256m", "64m"),
    )
    progress("initializing cluster metadata (PulsarClusterMetadataSetup)")
    ref = procs.start(argv, cwd=home, log_path=log, netns=lab.namespaces.get("zk"))
    deadline = time.monotonic() + timeout
    while procs.alive(ref):
        if time.monotonic() > deadline:
            procs.kill(ref)
            raise LabError(f"cluster metadata setup did not finish within {timeout:.0f}s; log: {log}")
        time.sleep(0.2)
    if "Cluster metadata for '" not in log.read_text(errors="replace"):
        raise LabError(f"cluster metadata setup failed; log: {log}\n{_tail(log)}")


def _label_bookies(lab: LabState, progress: Progress, timeout: float) -> None:
    racks = label_bookies(lab, [c for c in lab.components if c.kind == "bookie"], lab.endpoints[0])
    progress("labelled bookies: " + ", ".join(f"{b} -> {rack}" for b, rack in sorted(racks.items())))


def label_bookies(lab: LabState, bookies: list[ComponentState], via: EndpointState) -> dict[str, str]:
    """Label each bookie ``/<region>/rack-1`` through ``via``'s admin API and read the labels back (a bookie
    need not be running yet). Returns every labelled bookie's rack; ``LabError`` if one did not stick."""
    admin = AdminClient(via.admin_url, label=f"{via.region} admin")
    try:
        for comp in bookies:
            admin.set_rack(f"{comp.address}:{comp.ports['bookie']}", rack_for(comp.region or ""), comp.address)
        racks = {b: info.get("rack") for b, info in admin.racks().get("default", {}).items()}
    finally:
        admin.close()
    for comp in bookies:
        bookie, want = f"{comp.address}:{comp.ports['bookie']}", rack_for(comp.region or "")
        if racks.get(bookie) != want:
            raise LabError(f"bookie {bookie} ({comp.name}) reads back rack {racks.get(bookie)!r}, not {want!r}")
    return racks


# ---------------------------------------------------------------- readiness


def wait_ready(comps: list[ComponentState], timeout: float, progress: Progress = _quiet) -> None:
    """Wait (in parallel) until every component answers; the first failure names the component and log."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max(1, len(comps))) as pool:
        futures = {pool.submit(_wait_ready, comp, timeout): comp for comp in comps}
        errors = []
        for future in concurrent.futures.as_completed(futures):
            comp = futures[future]
            try:
                future.result()
                progress(f"  {comp.name} ready ({time.monotonic() - started:.1f}s)")
            except LabError as exc:
                errors.append(str(exc))
    if errors:
        raise LabError("\n".join(errors))


def _wait_ready(comp: ComponentState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    ref = comp.ref
    assert ref is not None
    last = "not started"
    while time.monotonic() < deadline:
        if not procs.alive(ref):
            raise LabError(f"{comp.name} exited during startup; log: {comp.log}\n{_tail(Path(comp.log))}")
        try:
            last = _probe(comp)
            if last == "ready":
                return
        except Exception as exc:  # any failure here just means "not yet"
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    raise LabError(f"{comp.name} did not become ready within {timeout:.0f}s (last check: {last}); log: {comp.log}")


def _probe(comp: ComponentState) -> str:
    if comp.kind == "zookeeper":
        with socket.create_connection((comp.address, comp.ports["client"]), timeout=1) as sock:
            sock.sendall(b"ruok")
            return "ready" if sock.recv(16) == b"imok" else "zookeeper not ok"
    if comp.kind == "bookie":
        with socket.create_connection((comp.address, comp.ports["bookie"]), timeout=1):
            return "ready"
    url = f"http://{comp.address}:{comp.ports['web']}/admin/v2"
    resp = requests.get(f"{url}/brokers/ready", timeout=2)
    if resp.status_code != 200:
        return f"brokers/ready -> HTTP {resp.status_code}"
    clusters = requests.get(f"{url}/clusters", timeout=2).json()
    return "ready" if clusters else "no cluster registered yet"


def _round_trips(lab: LabState, progress: Progress, timeout: float) -> None:
    with concurrent.futures.ThreadPoolExecutor(len(lab.endpoints)) as pool:
        futures = {pool.submit(round_trip, e.service_url, timeout): e for e in lab.endpoints}
        for future in concurrent.futures.as_completed(futures):
            endpoint = futures[future]
            try:
                millis = future.result()
            except Exception as exc:
                raise LabError(f"region {endpoint.region}: produce/consume round trip on {endpoint.service_url} "
                               f"failed: {exc}") from None
            progress(f"  region {endpoint.region}: round trip ok ({millis:.0f} ms) via {endpoint.service_url}")


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    kind: str
    region: str
    pid: int | None
    state: str  # running | paused | dead | not started
    address: str
    ports: dict[str, int]
    listening: bool
    rss_mib: float
    log: str


def status(name: str) -> tuple[LabState, list[ComponentStatus]]:
    lab = state.load(name)
    if lab is None:
        raise LabError(f"no lab named {name!r} (nothing under {state.lab_dir(name)}); start one with `geo-recon lab up`")
    rows = []
    for comp in lab.components:
        ref = comp.ref
        proc_state = procs.state(ref) if ref else "not started"
        listening = proc_state == "running" and all(_port_open(comp.address, p) for p in comp.ports.values())
        rows.append(ComponentStatus(
            name=comp.name, kind=comp.kind, region=comp.region or comp.site, pid=comp.pid, state=proc_state,
            address=comp.address, ports=dict(comp.ports), listening=listening,
            rss_mib=round(procs.rss_bytes(ref) / 2**20, 1) if ref else 0.0, log=comp.log,
        ))
    return lab, rows


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- down


def down(name: str, *, force: bool = False, progress: Progress = _quiet) -> list[str]:
    """Stop every process, remove namespaces, links and rules. Returns what was done.

    Works from the state file; with ``force`` (or when the state file is
    corrupt) it goes by names and process markers alone.
    """
    actions: list[str] = []
    lab: LabState | None = None
    try:
        lab = state.load(name)
    except LabError:
        if not force:
            raise
    if lab is not None:
        lab.phase = "stopping"
        state.save(lab)
        # Brokers first so they do not spin reconnecting to bookies that are already gone.
        tiers = (("broker", "standalone"), ("bookie",), ("zookeeper",))
        for tier in tiers:
            live = [c for c in lab.components if c.kind in tier and c.ref and procs.alive(c.ref)]
            with concurrent.futures.ThreadPoolExecutor(max(1, len(live))) as pool:
                for comp, _ in zip(live, pool.map(lambda c: procs.stop(c.ref, timeout=10), live)):
                    actions.append(f"stopped {comp.name} (pid {comp.pid})")
                    progress(actions[-1])
    for ref in procs.find_by_marker(name):
        procs.kill(ref)
        actions.append(f"killed stray lab process pid {ref.pid}")
        progress(actions[-1])
    if netns.is_root():
        for item in netns.destroy(name):
            actions.append(f"removed {item}")
            progress(actions[-1])
    home = state.lab_dir(name)
    (home / "faults.json").unlink(missing_ok=True)  # namespaces, rules and proxies are gone with the lab
    shutil.rmtree(home / "data", ignore_errors=True)
    shutil.rmtree(home / "conf", ignore_errors=True)
    state.remove(name)
    return actions


def _clear_stale(name: str, progress: Progress) -> None:
    """Refuse a lab that is up; clean one that is stale or half-started."""
    try:
        lab = state.load(name)
    except LabError as exc:
        raise LabError(f"{exc}") from None
    leftovers = procs.find_by_marker(name) or (netns.is_root() and (netns.lab_namespaces(name) or
                                                                      netns.host_rules(name)))
    if lab is not None:
        live = [c.name for c in lab.components if c.ref and procs.alive(c.ref)]
        owner = procs.ProcessRef(lab.owner_pid or -1, lab.owner_ticks or -1)
        if lab.phase == "starting" and live and procs.alive(owner):
            raise LabError(f"lab {name!r} is being started by pid {owner.pid}; wait for it or stop it "
                           f"with `geo-recon lab down --name {name}`")
        if lab.phase == "up" and live:
            raise LabError(f"lab {name!r} is already up ({len(live)} components running); "
                           f"use it, or stop it with `geo-recon lab down --name {name}`")
        progress(f"found a stale lab {name!r} (phase {lab.phase}, {len(live)} live processes); cleaning it")
        down(name, force=True)
    elif leftovers:
        progress(f"found leftovers of lab {name!r} without a state file; cleaning them")
        down(name, force=True)


def ephemeral_port_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int] | None:
    try:
        first, last = (int(x) for x in Path(path).read_text().split())
    except (OSError, ValueError):
        return None
    return first, last


def _check_not_ephemeral(spec: LabSpec) -> None:
    port_range = ephemeral_port_range()
    problem = ephemeral_overlap(spec, port_range) if port_range else None
    if problem:
        raise ConfigError(problem)


def _check_ports_free(plan: LabPlan) -> None:
    for comp in plan.components:
        for role, port in comp.ports.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((comp.address, port))
                except OSError:
                    raise EnvironmentProblem(
                        f"port {port} on {comp.address} ({comp.name} {role}) is already in use; "
                        "stop what holds it or pick another --base-port"
                    ) from None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    interesting = [l for l in text if "ERROR" in l or "Exception" in l or "Caused by" in l]
    chosen = (interesting or text)[-lines:]
    return "\n".join("    " + l[:300] for l in chosen)


__all__ = ["up", "down", "status", "round_trip", "start_component", "label_bookies", "AdminError"]
