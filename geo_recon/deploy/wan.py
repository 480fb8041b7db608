"""The local lab's WAN: every connection from one region to another goes through a Toxiproxy proxy.

Each link (source region, destination region, destination port) has its own proxy, named
``wan-<src>-<dst>-<port>``, listening on the lab bridge; a DNAT rule in the source's namespace
(chain ``GR-NAT``, tagged ``gr:wan``) sends the source's connections to that port there. The proxies
are armed when the lab starts, before any JVM connects, and carry no toxics: a latency or bandwidth
fault only adds toxics to the proxies of the links it slows, and its heal removes them. No connection
is ever reset to put the WAN in place, as a real WAN's latency can rise and fall without cutting one.

Why that matters: a reset is a fault of its own. Resetting a broker's connections to a bookie made
BookKeeper replace the ledger's ensemble with the very same ensemble, after which its pending adds
were never re-sent and the region wrote nothing more (apache/bookkeeper#4459's signature; seen twice
at a latency fault's start, when the lab still armed proxies then and reset connections to use them).

A lab started with ``wan: direct`` has no proxies; the first slow link arms them then and has to reset
the connections already open, which it says. Partitions act on the original destination (conntrack),
so they cut proxied connections as they cut direct ones.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from geo_recon.deploy import netns, procs, toxiproxy
from geo_recon.deploy.state import LabState
from geo_recon.deploy.topology import ECHO_OFFSET, PROXY_PORT_OFFSET, PROXY_PORTS, TOXIPROXY_API_OFFSET
from geo_recon.errors import LabError

Progress = Callable[[str], None]
REDIRECT_TAG = "gr:wan"
PREFIX = "wan"


def proxy_name(src: str, dst: str, port: int) -> str:
    return f"{PREFIX}-{src}-{dst}-{port}"


def link_of(name: str) -> tuple[str, str] | None:
    """(src, dst) of a WAN proxy's name; None for any other proxy."""
    parts = name.split("-")
    return (parts[1], parts[2]) if len(parts) == 4 and parts[0] == PREFIX else None


def echo_port(lab: LabState, site: str) -> int:
    """A region's round-trip echo server (a region's block + ECHO_OFFSET)."""
    index = lab.regions.index(site) if site in lab.regions else len(lab.regions)
    return lab.base_port + 100 * (index + 1) + ECHO_OFFSET


def destination_ports(lab: LabState, site: str) -> list[int]:
    """Every port a peer region may connect to in ``site``: its components' and its echo server's."""
    ports = [p for c in lab.components if c.site == site for p in c.ports.values()]
    return sorted(set(ports + [echo_port(lab, site)]))


def server(lab: LabState, progress: Progress = lambda _m: None) -> toxiproxy.Toxiproxy:
    """The lab's Toxiproxy server, started on first use (on the bridge: every namespace reaches it)."""
    host = lab.bridge_address or "127.0.0.1"
    api = f"http://{host}:{lab.base_port + TOXIPROXY_API_OFFSET}"
    client = toxiproxy.Toxiproxy(api)
    if not client.alive():
        log = Path(lab.lab_dir) / "logs" / "toxiproxy.log"
        progress(f"starting toxiproxy {toxiproxy.VERSION} on {host}")
        toxiproxy.start_server(host, lab.base_port + TOXIPROXY_API_OFFSET, log, lab.name)
    return client


def ensure_echo(lab: LabState, site: str) -> tuple[str, int]:
    """A tiny TCP echo server in ``site``'s namespace (started on first use): round trips measured
    against it are the network's, with no broker work in them."""
    address, port = lab.site_addresses[site], echo_port(lab, site)
    if not netns.can_connect(lab.namespaces[site], address, port, timeout=0.5):
        log = Path(lab.lab_dir) / "logs" / f"echo-{site}.log"
        procs.start([sys.executable, "-c", _ECHO_SERVER, address, str(port)], cwd=log.parent, log_path=log,
                    netns=lab.namespaces[site], env={"GEO_RECON_LAB": lab.name})
        procs.wait_for(lambda: netns.can_connect(lab.namespaces[site], address, port, timeout=0.5), 10,
                 f"the round-trip echo server in {site} did not start; log: {log}")
    return address, port


def arm(lab: LabState, regions: list[str], progress: Progress = lambda _m: None) -> dict[tuple[str, str], list[int]]:
    """Give every link between ``regions`` (both ways) its proxy and redirect, where it has none yet.
    A new proxy on a link that already has proxies gets their toxics (a rebuilt bookie's new port is as
    slow as the rest of its link). Returns the ports newly armed per (src, dst): connections already
    open to them bypass the proxies (the caller decides whether to reset them)."""
    client = server(lab, progress)
    existing = client.proxies()
    used = {int(p["listen"].rsplit(":", 1)[1]) for p in existing.values()}
    first, last = lab.base_port + PROXY_PORT_OFFSET, lab.base_port + PROXY_PORT_OFFSET + PROXY_PORTS - 1
    next_port = first
    armed: dict[tuple[str, str], list[int]] = {}
    for dst in regions:
        ensure_echo(lab, dst)
    for src in regions:
        ns = lab.namespaces[src]
        netns.ensure_chains(ns)
        for dst in regions:
            if src == dst:
                continue
            dst_addr = lab.site_addresses[dst]
            siblings = [name for name in existing if link_of(name) == (src, dst)]
            toxics = client.toxics(siblings[0]) if siblings else []
            for port in destination_ports(lab, dst):
                name = proxy_name(src, dst, port)
                if name in existing:
                    continue
                while next_port in used:
                    next_port += 1
                if next_port > last:
                    raise LabError(f"lab {lab.name!r}: the WAN needs more than {PROXY_PORTS} proxies "
                                   f"(host ports {first}..{last}); use fewer regions or bookies, or wan: direct")
                used.add(next_port)
                listen = f"{lab.bridge_address}:{next_port}"
                client.create_proxy(name, listen, f"{dst_addr}:{port}")
                existing[name] = {"listen": listen}
                for toxic in toxics:
                    client.add_toxic(name, toxic["name"], toxic["type"], toxic["stream"], toxic["attributes"])
                netns.in_ns(ns, ["iptables", "-t", "nat", "-A", "GR-NAT", "-d", dst_addr, "-p", "tcp",
                                 "--dport", str(port), "-j", "DNAT", "--to-destination", listen,
                                 "-m", "comment", "--comment", REDIRECT_TAG])
                armed.setdefault((src, dst), []).append(port)
    if armed:
        progress(f"WAN: {sum(map(len, armed.values()))} link proxies armed between {', '.join(regions)}")
    return armed


def reset(lab: LabState, armed: dict[tuple[str, str], list[int]]) -> None:
    """Reset the connections opened before their links were armed, so that they reconnect through the proxies."""
    for (src, dst), ports in armed.items():
        for port in ports:
            netns.in_ns(lab.namespaces[src], ["ss", "-K", "dst", lab.site_addresses[dst], "dport", "=", f":{port}"],
                        check=False)


def link_proxies(client: toxiproxy.Toxiproxy, pairs: list[tuple[str, str]]) -> list[str]:
    """The WAN proxies of the links ``pairs`` (src, dst), by name."""
    wanted = set(pairs)
    return sorted(name for name in client.proxies() if link_of(name) in wanted)


_ECHO_SERVER = """
import socketserver, sys
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(64)
            if not data:
                return
            self.request.sendall(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
"""
