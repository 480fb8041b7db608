"""Network namespaces, veth pairs and the lab bridge (root only).

Layout: a Linux bridge ``grb-<lab>`` in the root namespace holds 198.18.S.1;
each site is a namespace ``gr-<lab>-<site>`` whose ``eth0`` (the far end of a
veth pair plugged into the bridge) holds the site's address. Traffic between
regions crosses the bridge, so faults can act on it inside the namespaces
(iptables) without touching the host's own rules.

Everything created here is named after the lab, so ``destroy`` can find and
remove it from names alone, even when the lab's state file is gone.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

from geo_recon.deploy.topology import LabPlan
from geo_recon.errors import EnvironmentProblem, LabError

RULE_COMMENT = "geo-recon:{lab}"


def is_root() -> bool:
    return os.geteuid() == 0


def check_tools() -> None:
    missing = [tool for tool in ("ip", "iptables") if not shutil.which(tool)]
    if missing:
        raise EnvironmentProblem(
            f"network namespaces need {' and '.join(missing)} (Debian packages iproute2, iptables); "
            "install them or run with --isolation loopback"
        )


def run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def in_ns(netns: str, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", netns, *argv], check=check)


def create(plan: LabPlan) -> None:
    """Bridge, one namespace per site, veth pairs, addresses, and a FORWARD accept rule."""
    assert plan.bridge and plan.bridge_address
    check_tools()
    lab = plan.spec.name
    if plan.bridge in existing_links():
        raise LabError(f"bridge {plan.bridge} already exists: a lab named {lab!r} is up or was not cleaned "
                       f"(run `geo-recon lab down --name {lab}`)")
    taken = _bridge_addresses()
    if plan.bridge_address in taken:
        raise LabError(f"address {plan.bridge_address} is already used by {taken[plan.bridge_address]}; "
                       "pick another --subnet")
    run(["ip", "link", "add", plan.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{plan.bridge_address}/24", "dev", plan.bridge])
    run(["ip", "link", "set", plan.bridge, "up"])
    # Bridged frames traverse the host's FORWARD chain when br_netfilter is loaded;
    # a host whose FORWARD policy is DROP (Docker sets that) would cut the regions off.
    run(["iptables", "-I", "FORWARD", "-i", plan.bridge, "-o", plan.bridge, "-j", "ACCEPT",
         "-m", "comment", "--comment", RULE_COMMENT.format(lab=lab)])
    for site in plan.sites:
        assert site.netns and site.veth
        run(["ip", "netns", "add", site.netns])
        run(["ip", "link", "add", site.veth, "type", "veth", "peer", "name", "eth0", "netns", site.netns])
        run(["ip", "link", "set", site.veth, "master", plan.bridge])
        run(["ip", "link", "set", site.veth, "up"])
        in_ns(site.netns, ["ip", "link", "set", "lo", "up"])
        in_ns(site.netns, ["ip", "addr", "add", f"{site.address}/24", "dev", "eth0"])
        in_ns(site.netns, ["ip", "link", "set", "eth0", "up"])


def destroy(lab: str) -> list[str]:
    """Remove every namespace, link and host rule of ``lab``; return what was removed."""
    removed = []
    for ns in lab_namespaces(lab):
        run(["ip", "netns", "delete", ns], check=False)
        removed.append(f"netns {ns}")
    for link in existing_links():
        if link == f"grb-{lab}" or link.startswith(f"grv-{lab}-"):
            run(["ip", "link", "delete", link], check=False)
            removed.append(f"link {link}")
    for rule in host_rules(lab):
        run(["iptables", "-D", *shlex.split(rule)[1:]], check=False)
        removed.append(f"iptables {rule}")
    return removed


def lab_namespaces(lab: str) -> list[str]:
    if not shutil.which("ip"):
        return []
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"gr-{lab}-")]


def existing_links() -> list[str]:
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    links = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            links.append(parts[1].strip().split("@")[0])
    return links


def host_rules(lab: str) -> list[str]:
    """Host iptables rules (as `iptables -S` lines) tagged with this lab's comment."""
    if not shutil.which("iptables"):
        return []
    out = run(["iptables", "-S"], check=False).stdout
    tag = RULE_COMMENT.format(lab=lab)
    return [line for line in out.splitlines() if f'"{tag}"' in line or f" {tag} " in f"{line} "]


def _bridge_addresses() -> dict[str, str]:
    out = run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    taken = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            taken[parts[3].split("/")[0]] = parts[1]
    return taken


def ensure_chains(ns: str) -> None:
    """The lab's own iptables chains in a site's namespace (partitions filter in GR-IN/GR-OUT, the WAN
    redirects in GR-NAT), created once and hooked into INPUT/OUTPUT."""
    for table, chain, parent in (("filter", "GR-IN", "INPUT"), ("filter", "GR-OUT", "OUTPUT"),
                                 ("nat", "GR-NAT", "OUTPUT")):
        if in_ns(ns, ["iptables", "-t", table, "-N", chain], check=False).returncode == 0:
            in_ns(ns, ["iptables", "-t", table, "-I", parent, "-j", chain])


_CONNECT_PROBE = "import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\nexcept OSError:\n sys.exit(1)\n"


def can_connect(ns: str, address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a TCP connection from inside namespace ``ns`` to ``address:port`` is accepted."""
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _CONNECT_PROBE, address, str(port),
                           str(timeout)], capture_output=True, timeout=timeout + 10)
    return proc.returncode == 0
