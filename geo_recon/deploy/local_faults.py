"""The local lab's faults: inject, verify that each took effect, heal (the fault driver calls these).

Every fault is verified after injection (a killed pid is gone, a paused one is
stopped, a partitioned connection times out, an added round trip is measured)
and after healing; one that did not take effect raises. What is applied is
written to ``<lab>/faults.json`` before it is applied, so a controller that
dies mid-fault leaves enough behind for ``geo-recon faults heal`` (and
``lab down``) to undo it.

Network faults act inside the regions' namespaces:
- partitions drop packets with iptables in chains ``GR-IN``/``GR-OUT``; the
  OUTPUT rule matches the *original* destination (conntrack), so traffic that
  the lab's WAN redirects through Toxiproxy is cut as well;
- latency and bandwidth add toxics to the WAN's proxies of the links they slow
  (``deploy.wan``: one proxy per link, armed when the lab starts); their heal
  removes those toxics. Nothing resets a connection, as a real WAN's latency
  comes and goes without cutting one: deleting a proxy or its redirect reset
  the connections through it (measured), and a reset is a fault of its own.

A lost region (``destroy``) is not recorded in faults.json: nothing can heal it.
Its processes are SIGKILLed and its data directories deleted; ``lab down``
removes whatever a rebuild started, as it does every component.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from geo_recon.deploy import local, netns, procs, state, toxiproxy, wan
from geo_recon.deploy.base import FaultParams, TracksFaults, Measured, fault_target, undo_each
from geo_recon.deploy.state import ComponentState, LabState
from geo_recon.deploy.topology import BOOKIE_OFFSET, MAX_BOOKIES_PER_REGION, TOXIPROXY_API_OFFSET, match_components
from geo_recon.errors import ConfigError, FaultError, GeoReconError

NETWORK_KINDS = {"partition", "isolate", "latency", "bandwidth"}


@dataclass
class ActiveFault:
    id: str
    kind: str
    target: str
    rules: dict[str, list[str]] = field(default_factory=dict)  # netns -> iptables comment tags
    proxies: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)  # component names
    stopped: list[str] = field(default_factory=list)  # component names to start again


class LocalFaults(TracksFaults):
    """The local lab's fault capabilities (``deploy.base``: Killable, Pausable, Partitionable, Shapable,
    Sweepable); ``LocalLabBackend`` hands them out. Each verifies what it did; the fault driver records it."""

    name = "local"  # the backend it belongs to, for messages
    shapes = frozenset({"latency", "bandwidth"})

    def __init__(self, lab_name: str, *, progress: Callable[[str], None] | None = None):
        lab = state.load(lab_name)
        if lab is None:
            raise ConfigError(f"no lab named {lab_name!r}")
        self.lab: LabState = lab
        self.progress = progress or (lambda _m: None)
        self.path = Path(lab.lab_dir) / "faults.json"
        # Faults a previous controller applied and did not heal are ours to heal now.
        self.active: dict[str, ActiveFault] = {}
        self.measured: dict[str, Any] = {}  # what the last verification measured, for the history
        self.lost: dict[str, str] = {}  # fault id -> region destroyed by it (until rebuilt)
        if self.path.exists():
            try:
                self.active = {fid: ActiveFault(**f) for fid, f in json.loads(self.path.read_text()).items()}
            except (ValueError, TypeError) as exc:
                self.progress(f"ignoring unreadable {self.path} ({exc}); clearing by name instead")

    # ------------------------------------------------------------ bookkeeping

    def _save(self) -> None:
        data = {fid: vars(f) for fid, f in self.active.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.path)

    def _apply(self, fault_id: str, spec: FaultParams) -> Measured:
        """Record the fault before applying it (a dead controller's successor can undo it), apply, verify."""
        if spec.kind in NETWORK_KINDS and self.lab.isolation != "netns":
            raise FaultError(f"{fault_id} ({spec.describe()}): network faults need network namespaces; "
                             "start the lab as root")
        active = ActiveFault(fault_id, spec.kind, fault_target(spec))
        self.active[fault_id] = active
        self._save()
        if spec.kind in ("kill", "stop", "pause", "restart"):
            self._process_fault(spec, active)
        elif spec.kind in ("partition", "isolate"):
            self._partition(spec, active)
        else:
            self._slow_links(spec, active)
        if spec.kind == "restart":  # a restart heals itself
            self.active.pop(fault_id, None)
        self._save()
        measured, self.measured = self.measured, {}
        return measured

    def _recorded(self) -> None:
        self._save()

    def sweep(self, progress: Callable[[str], None]) -> list[str]:
        """Heal what a previous controller recorded and did not heal; then clear anything left by name."""
        healed = undo_each(self.active, self._heal, (GeoReconError,), progress)
        healed += heal_leftovers(self.lab, progress=progress)
        self._save()
        return healed

    # ------------------------------------------------------------ processes

    def _components(self, target: str) -> list[ComponentState]:
        matches = match_components(target, self.lab.components)
        if not matches:
            known = ", ".join(c.name for c in self.lab.components)
            raise FaultError(f"fault target {target!r} matches no component (lab {self.lab.name!r} has: {known})")
        return matches

    def _process_fault(self, spec: FaultParams, active: ActiveFault) -> None:
        comps = self._components(spec.target or "")
        if spec.kind == "pause":
            for comp in comps:
                self._require_alive(comp)
                procs.signal_group(comp.ref, signal.SIGSTOP)
                active.paused.append(comp.name)
            self._save()
            for comp in comps:
                procs.wait_for(lambda c=comp: procs.state(c.ref) == "paused", 5,
                          f"{comp.name} (pid {comp.pid}) did not stop after SIGSTOP")
            return
        active.stopped = [c.name for c in comps]
        self._save()
        for comp in comps:
            self._require_alive(comp)
            if spec.kind == "kill":
                procs.signal_group(comp.ref, signal.SIGKILL)
            else:
                procs.signal_group(comp.ref, signal.SIGTERM)
        for comp in comps:
            timeout = 10 if spec.kind == "kill" else 30
            if not procs.wait_dead(comp.ref, timeout):
                if spec.kind == "kill":
                    raise FaultError(f"{comp.name} (pid {comp.pid}) is still alive {timeout}s after SIGKILL")
                procs.kill(comp.ref)  # a graceful stop that hangs ends as a kill
        if spec.kind == "restart":
            self._start_again(active)

    def _require_alive(self, comp: ComponentState) -> None:
        if not comp.ref or not procs.alive(comp.ref):
            raise FaultError(f"{comp.name} is not running (pid {comp.pid}); cannot inject a fault into it")

    def _start_again(self, active: ActiveFault) -> None:
        order = {"zookeeper": 0, "bookie": 1, "standalone": 2, "broker": 2}
        comps = sorted((self.lab.component(n) for n in active.stopped), key=lambda c: order.get(c.kind, 3))
        for comp in comps:
            if comp.ref and procs.alive(comp.ref):
                continue
            local.start_component(self.lab, comp)
        local.wait_ready(comps, timeout=120)
        active.stopped = []

    # ------------------------------------------------------------ a region lost (Destroyable)

    def destroy(self, fault_id: str, fault: FaultParams) -> Measured:
        """SIGKILL every process of the region, delete its data directories, verify both. ``killed_at_ns``
        is the moment of the kill (the fault's time in the history); the rest is what was verified."""
        region = fault.target or ""
        comps = [c for c in self.lab.components if c.region == region]
        if region not in self.lab.regions or not comps:
            raise FaultError(f"{fault_id}: lose needs a region of lab {self.lab.name!r} "
                             f"({', '.join(self.lab.regions)}), got {region!r}")
        for comp in comps:
            self._require_alive(comp)
        self.lost[fault_id] = region
        for comp in comps:
            procs.signal_group(comp.ref, signal.SIGKILL)
        killed_at_ns = time.time_ns()
        for comp in comps:
            if not procs.wait_dead(comp.ref, 10):
                raise FaultError(f"{fault_id}: {comp.name} (pid {comp.pid}) is still alive 10s after SIGKILL")
        deleted = []
        for comp in comps:  # bookie journal and ledgers, the standalone's metadata store, broker state
            data = Path(comp.cwd)
            deleted += [str(p) for p in sorted(data.iterdir())] if data.is_dir() else []
            shutil.rmtree(data, ignore_errors=True)
        refused = []
        for comp in comps:
            for port in comp.ports.values():
                deadline = time.monotonic() + 10
                while self._connects(comp, port):
                    if time.monotonic() > deadline:
                        holders = netns.in_ns(comp.netns, ["ss", "-ltnp"], check=False).stdout if comp.netns else ""
                        raise FaultError(f"{fault_id}: {comp.name} still accepts connections on "
                                         f"{comp.address}:{port} 10s after SIGKILL; listening: {holders.strip()}")
                    time.sleep(0.5)
                refused.append(f"{comp.address}:{port}")
        still = [str(p) for p in deleted if Path(p).exists()]
        if still:
            raise FaultError(f"{fault_id}: region {region}'s data is not gone: {', '.join(still)}")
        witness = [c.name for c in self.lab.components if c.kind == "zookeeper"]
        self.progress(f"  region {region} lost: killed {', '.join(c.name for c in comps)}; deleted "
                      f"{len(deleted)} data director{'y' if len(deleted) == 1 else 'ies'}")
        return {"killed_at_ns": killed_at_ns, "killed": [c.name for c in comps], "ports_refused": refused,
                "data_deleted": deleted,
                # The stretched lab's metadata store is on the witness site, not in any region: it survives.
                "metadata_store": (f"kept: {', '.join(witness)} on the witness site, outside region {region}"
                                   if witness else f"deleted with region {region} (each region has its own)")}

    def rebuild(self, fault_id: str) -> Measured:
        """Start a new, EMPTY region in the lost one's place and wait until it answers. Its broker keeps the
        lost one's address (a broker's identity dies with its metadata session); its bookies are NEW
        BookKeeper identities, labelled with the region's rack before they start. The scheme's part of
        rejoining is the caller's (it knows the settings)."""
        region = self.lost.pop(fault_id, None)
        if region is None:
            raise FaultError(f"{fault_id}: no region was lost by this fault, nothing to rebuild")
        started = time.monotonic()
        order = {"bookie": 0, "standalone": 1, "broker": 1}
        comps = sorted((c for c in self.lab.components if c.region == region), key=lambda c: order.get(c.kind, 2))
        for comp in comps:
            Path(comp.cwd).mkdir(parents=True, exist_ok=True)
        # Never the lost identity on an empty disk: with its cookie deleted (the only way BookKeeper accepts
        # that), ledger recovery took the empty bookie's "no such entry" as proof that acknowledged entries
        # were never written and truncated them (measured: 310 acknowledged messages lost under 2-region
        # strong). A new identity keeps the lost one's cookie, so that can never happen.
        bookies = [c for c in comps if c.kind == "bookie"]
        renamed = {c.name: self._new_identity(c) for c in bookies}
        if bookies:
            # Unlabelled, they would sit in BookKeeper's default rack, which region-aware placement with
            # bookkeeperClientEnforceMinNumRacksPerWriteQuorum excludes ("Excluding bookies of defaultRack"):
            # no ledger could be recovered or written onto them (measured: the cluster never took a client).
            survivor = next(e for e in self.lab.endpoints if e.region != region)
            local.label_bookies(self.lab, bookies, survivor)
        if self.lab.wan == "proxied":  # (netns labs only: LabSpec.wan_mode)
            # Before anything connects to a new bookie port: its links get proxies (slowed as their link is).
            wan.arm(self.lab, list(self.lab.regions), self.progress)
        for comp in comps:
            local.start_component(self.lab, comp)
        local.wait_ready(comps, timeout=120)
        self.progress(f"  region {region} rebuilt empty: {', '.join(c.name for c in comps)} up in "
                      f"{time.monotonic() - started:.1f}s" +
                      "".join(f"; {n} is now bookie {ident}" for n, ident in renamed.items()))
        return {"started": [c.name for c in comps], "new_bookie_identities": renamed}

    def _new_identity(self, bookie: ComponentState) -> str:
        """Move a rebuilt bookie to a port above every port its region's bookies ever had (a new BookKeeper
        identity; a retired one keeps its cookie in the metadata store and must never be taken again)."""
        old = bookie.ports["bookie"]
        block = self.lab.base_port + (old - self.lab.base_port) // 100 * 100
        last = block + BOOKIE_OFFSET + MAX_BOOKIES_PER_REGION - 1
        highest = max(c.ports["bookie"] for c in self.lab.components
                      if c.region == bookie.region and c.kind == "bookie")
        if highest >= last:
            raise FaultError(f"cannot rebuild {bookie.name}: every bookie port of region {bookie.region} "
                             f"({block + BOOKIE_OFFSET}..{last}) has been an identity, and a lost identity "
                             "must never come back")
        conf = Path(bookie.argv[bookie.argv.index("--conf") + 1])
        text = conf.read_text()
        new_text = re.sub(rf"(?m)^bookiePort={old}$", f"bookiePort={highest + 1}", text)
        if new_text == text:
            raise FaultError(f"cannot rebuild {bookie.name}: {conf} has no line bookiePort={old}")
        conf.write_text(new_text)
        bookie.ports["bookie"] = highest + 1
        state.save(self.lab)
        return f"{bookie.address}:{highest + 1}"

    def _connects(self, comp: ComponentState, port: int) -> bool:
        if comp.netns:
            return netns.can_connect(comp.netns, comp.address, port, timeout=1.0)
        try:
            with socket.create_connection((comp.address, port), timeout=1.0):
                return True
        except OSError:
            return False

    # ------------------------------------------------------------ partitions

    def _sites(self, names: list[str]) -> list[str]:
        for name in names:
            if name not in self.lab.site_addresses:
                raise FaultError(f"unknown region {name!r} (lab {self.lab.name!r} has {', '.join(self.lab.site_addresses)})")
        return names

    def _partition(self, spec: FaultParams, active: ActiveFault) -> None:
        if spec.kind == "isolate":
            region = self._sites([spec.target or ""])[0]
            groups = [[region], [s for s in self.lab.site_addresses if s != region]]
        else:
            groups = [self._sites(g) for g in spec.groups or []]
        pairs = []  # (from site, to site): traffic from -> to is dropped
        for i, g1 in enumerate(groups):
            for j, g2 in enumerate(groups):
                if i != j and (not spec.one_way or i == 0):
                    pairs += [(a, b) for a in g1 for b in g2]
        tag = f"gr:{active.id}"
        for src, dst in pairs:
            ns, dst_addr = self.lab.namespaces[src], self.lab.site_addresses[dst]
            netns.ensure_chains(ns)
            netns.in_ns(ns, ["iptables", "-A", "GR-OUT", "-m", "conntrack", "--ctorigdst", dst_addr, "-j", "DROP",
                             "-m", "comment", "--comment", tag])
            if not spec.one_way:
                netns.in_ns(ns, ["iptables", "-A", "GR-IN", "-s", dst_addr, "-j", "DROP", "-m", "comment",
                                 "--comment", tag])
            active.rules.setdefault(ns, []).append(tag)
            self._save()
        probes = [(src, dst, self._probe_port(dst)) for src, dst in pairs]
        with concurrent.futures.ThreadPoolExecutor(max(1, len(probes))) as pool:
            reachable = list(pool.map(
                lambda p: netns.can_connect(self.lab.namespaces[p[0]], self.lab.site_addresses[p[1]], p[2]), probes))
        for (src, dst, port), still in zip(probes, reachable):
            if still:
                raise FaultError(f"{active.id}: partition not in effect: {src} still connects to "
                                 f"{dst} ({self.lab.site_addresses[dst]}:{port})")

    def _probe_port(self, site: str) -> int:
        comp = next(c for c in self.lab.components if c.site == site)
        return next(iter(comp.ports.values()))

    # ------------------------------------------------------------ slow links

    def _slow_links(self, spec: FaultParams, active: ActiveFault) -> None:
        """Add this fault's toxics to the WAN proxies of every link between the regions (``deploy.wan``:
        armed at the lab's start, so nothing is reset); the round trip is measured through the same
        proxies before and after, so the check sees exactly what the toxics add."""
        regions = self._sites(spec.between or list(self.lab.regions))
        armed = wan.arm(self.lab, regions, self.progress)
        if armed:  # a lab started with wan: direct (or ports it never armed): open connections bypass the proxies
            self.progress(f"  {active.id}: this lab's WAN was not proxied from its start: resetting the connections "
                          "opened before, so that they reconnect through the proxies (a reset can itself wedge a "
                          "BookKeeper ledger, apache/bookkeeper#4459; start the lab with the default wan: proxied)")
            wan.reset(self.lab, armed)
        proxy = wan.server(self.lab, self.progress)
        pairs = [(s, d) for s in regions for d in regions if s != d]
        active.proxies = wan.link_proxies(proxy, pairs)
        self._save()
        baselines = {pair: _measure_rtt_ms(self.lab.namespaces[pair[0]], *wan.ensure_echo(self.lab, pair[1]))
                     for pair in pairs}
        for name in active.proxies:
            for stream in ("upstream", "downstream"):
                if spec.kind == "latency":
                    proxy.add_toxic(name, _toxic(active.id, stream), "latency", stream,
                                    {"latency": int(round((spec.rtt_ms or 0) / 2)),
                                     "jitter": int(round(spec.jitter_ms / 2))})
                else:
                    proxy.add_toxic(name, _toxic(active.id, stream), "bandwidth", stream, {"rate": spec.rate_kbps})
        for name in active.proxies:
            if len(_own_toxics(proxy, name, active.id)) != 2:
                raise FaultError(f"{active.id}: toxiproxy {name} lacks its toxics")
        if spec.kind == "latency":
            self._calibrate(spec, active, proxy, baselines)

    def _calibrate(self, spec: FaultParams, active: ActiveFault, proxy: toxiproxy.Toxiproxy,
                   baselines: dict[tuple[str, str], float]) -> None:
        """Measure each pair's added round trip; if the proxy's own scheduling adds a few ms,
        correct that pair's toxics once and measure again. Outside 10% after that is an error."""
        wanted = spec.rtt_ms or 0
        tolerance = max(0.1 * wanted, 1.0)
        for (src, dst), base in baselines.items():
            per_direction = wanted / 2
            echo = wan.ensure_echo(self.lab, dst)
            measured = _measure_rtt_ms(self.lab.namespaces[src], *echo) - base
            if abs(measured - wanted) > tolerance / 2 and wanted > 0:
                per_direction = max(0.0, per_direction - (measured - wanted) / 2)
                for name in (n for n in active.proxies if wan.link_of(n) == (src, dst)):
                    for stream in ("upstream", "downstream"):
                        proxy.update_toxic(name, _toxic(active.id, stream), {"latency": int(round(per_direction)),
                                                                            "jitter": int(round(spec.jitter_ms / 2))})
                measured = _measure_rtt_ms(self.lab.namespaces[src], *echo) - base
            if abs(measured - wanted) > tolerance:
                raise FaultError(f"{active.id}: {src}->{dst} round trip rose by {measured:.1f} ms, "
                                 f"wanted {wanted:g} ms (within 10%)")
            self.measured[f"added_rtt_ms {src}->{dst}"] = round(measured, 2)
            self.progress(f"  {src}->{dst}: round trip +{measured:.1f} ms (asked {wanted:g}; {base:.1f} ms before; "
                          f"toxic {per_direction:.0f} ms each way)")

    # ------------------------------------------------------------ heal

    def _heal(self, active: ActiveFault) -> None:
        for name in active.paused:
            comp = self.lab.component(name)
            procs.signal_group(comp.ref, signal.SIGCONT)
            procs.wait_for(lambda c=comp: procs.state(c.ref) == "running", 5,
                      f"{comp.name} (pid {comp.pid}) did not resume after SIGCONT")
        active.paused = []
        if active.stopped:
            self._start_again(active)
        for ns, tags in active.rules.items():
            for tag in set(tags):
                _delete_tagged(ns, tag)
        if active.proxies:  # the WAN's proxies stay: only this fault's toxics go, from every proxy
            proxy = wan.server(self.lab, self.progress)  # (a rebuilt bookie's proxy took a copy of them)
            for name in proxy.proxies():
                for toxic in _own_toxics(proxy, name, active.id):
                    proxy.delete_toxic(name, toxic["name"])
            slowed = [name for name in proxy.proxies() if _own_toxics(proxy, name, active.id)]
            if slowed:
                raise FaultError(f"{active.id}: healed, but toxiproxy {', '.join(slowed)} still has its toxics")
        if active.kind in ("partition", "isolate"):
            for ns in active.rules:
                site = next(s for s, n in self.lab.namespaces.items() if n == ns)
                for other in self.lab.site_addresses:
                    if other != site and not netns.can_connect(ns, self.lab.site_addresses[other], self._probe_port(other)):
                        raise FaultError(f"{active.id}: healed, but {site} still cannot reach {other}")
        active.rules, active.proxies = {}, []


def _delete_tagged(ns: str, tag: str, tables: tuple[str, ...] = ("filter", "nat")) -> None:
    import shlex

    for table, chain in (("filter", "GR-IN"), ("filter", "GR-OUT"), ("nat", "GR-NAT")):
        if table not in tables:
            continue
        out = netns.in_ns(ns, ["iptables", "-t", table, "-S", chain], check=False).stdout
        for line in out.splitlines():
            if f'"{tag}"' in line or f"--comment {tag} " in line + " ":
                netns.in_ns(ns, ["iptables", "-t", table, "-D", *shlex.split(line)[1:]], check=False)


def tagged_rules(ns: str) -> list[str]:
    rules = []
    for table, chain in (("filter", "GR-IN"), ("filter", "GR-OUT"), ("nat", "GR-NAT")):
        out = netns.in_ns(ns, ["iptables", "-t", table, "-S", chain], check=False).stdout
        rules += [f"{table} {line}" for line in out.splitlines() if "gr:" in line]
    return rules


def heal_leftovers(lab: LabState, progress: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Undo whatever faults a dead controller left: resume paused JVMs, flush our filter chains,
    remove every toxiproxy toxic. Safe to run at any time: the redirects and proxies stay, so
    connections through them are not reset (they go with the lab)."""
    done = []
    for comp in lab.components:
        if comp.ref and procs.state(comp.ref) == "paused":
            procs.signal_group(comp.ref, signal.SIGCONT)
            done.append(f"resumed {comp.name}")
    if lab.isolation == "netns":
        for ns in lab.namespaces.values():
            if ns not in netns.lab_namespaces(lab.name):
                continue
            leftover = [r for r in tagged_rules(ns) if not r.startswith("nat ")]
            # GR-NAT stays: its redirects lead to proxies left without toxics (below); removing one
            # resets the connections it carries.
            for table, chain in (("filter", "GR-IN"), ("filter", "GR-OUT")):
                netns.in_ns(ns, ["iptables", "-t", table, "-F", chain], check=False)
            if leftover:
                done.append(f"removed {len(leftover)} fault rule(s) in {ns}")
        api = f"http://{lab.bridge_address}:{lab.base_port + TOXIPROXY_API_OFFSET}"
        proxy = toxiproxy.Toxiproxy(api)
        if proxy.alive():
            for name in proxy.proxies():
                if proxy.clear_toxics(name):
                    done.append(f"removed the toxics of proxy {name}")
    path = Path(lab.lab_dir) / "faults.json"
    if path.exists():
        path.unlink()
    for item in done:
        progress(item)
    return done


_RTT_PROBE = """
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
samples = []
for i in range(12):
    t = time.perf_counter()
    s.sendall(b"x")
    s.recv(1)
    if i >= 2:  # the first exchanges warm the path
        samples.append((time.perf_counter() - t) * 1000)
s.close()
print(min(samples))
"""


def _toxic(fault_id: str, stream: str) -> str:
    return f"{fault_id}-{stream}"


def _own_toxics(proxy: toxiproxy.Toxiproxy, name: str, fault_id: str) -> list[dict]:
    """The toxics ``fault_id`` put on proxy ``name`` (other faults may slow the same link too)."""
    return [t for t in proxy.toxics(name) if t["name"] in (_toxic(fault_id, "upstream"), _toxic(fault_id, "downstream"))]


def _measure_rtt_ms(ns: str, address: str, port: int) -> float:
    """Time for one byte to go to an echo server and back, from inside ``ns``, over one
    connection (a TCP handshake with a proxy would complete locally and measure nothing).
    The minimum of ten: scheduling on a busy machine only ever adds to a round trip."""
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _RTT_PROBE, address, str(port)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise FaultError(f"could not measure the round trip from {ns} to {address}:{port}: {proc.stderr.strip()[-300:]}")
    return float(proc.stdout.strip())


__all__ = ["LocalFaults", "FaultError", "heal_leftovers", "tagged_rules"]

