"""The geo-recon command line.

Thin by design: each command parses its options, calls one function, and maps
the outcome to an exit code: 0 valid / met, 1 anomalies found / not met,
2 could not decide (bad input, broken environment).
"""

from __future__ import annotations

import os
import signal
import sys

import click

from geo_recon import __version__
from geo_recon.errors import GeoReconError


class _Group(click.Group):
    """A click group that turns user-facing errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GeoReconError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="yellow", err=True)
            ctx.exit(130)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="geo-recon")
def cli() -> None:
    """Prove (or disprove) that a multi-region Apache Pulsar setup loses nothing."""


def _progress(message: str) -> None:
    click.echo(message, err=True)


@cli.group()
def pulsar() -> None:
    """The pinned Pulsar jars (from Maven Central) and the Java that runs them."""


@pulsar.command("fetch")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
def pulsar_fetch(kind: str) -> None:
    """Download the locked jars into the cache and verify their checksums."""
    from geo_recon.deploy import pulsar_dist

    lib = pulsar_dist.fetch_jars(kind, progress=_progress)
    click.echo(str(lib))


@pulsar.command("lock")
@click.argument("kind", type=click.Choice(["server", "tools"]), default="server")
def pulsar_lock(kind: str) -> None:
    """Maintainers: re-resolve the pom with Maven and rewrite the lock file."""
    from geo_recon.deploy import pulsar_dist

    click.echo(str(pulsar_dist.lock_jars(kind, progress=_progress)))


@pulsar.command("java")
def pulsar_java() -> None:
    """Show the Java that will run Pulsar (17 or newer is required)."""
    from geo_recon.deploy import pulsar_dist

    java = pulsar_dist.find_java()
    click.echo(f"{java.path} (Java {java.version})")


@cli.group()
def lab() -> None:
    """A local multi-region Pulsar lab of real JVMs (network namespaces when root)."""


_lab_name = click.option("--name", default="lab", show_default=True, help="Lab name (1-8 lowercase letters/digits).")


@lab.command("up")
@click.option("--regions", default="a,b", show_default=True, help="Comma-separated region names (2 or more).")
@click.option("--scheme", default="async", show_default=True,
              help="async: a cluster per region; strong: one cluster stretched over the regions.")
@_lab_name
@click.option("--base-port", default=20000, show_default=True, type=int, help="First port of the lab's port range.")
@click.option("--isolation", type=click.Choice(["auto", "netns", "loopback"]), default="auto", show_default=True,
              help="netns: a network namespace per region (root); loopback: shared 127.0.0.1.")
@click.option("--subnet", default=0, show_default=True, type=int, help="S in 198.18.S.0/24 (netns only).")
@click.option("--timeout", default=120.0, show_default=True, type=float, help="Seconds each component may take.")
@click.option("--keep-on-failure", is_flag=True, help="Leave a failed lab running for inspection.")
@click.option("--json", "as_json", is_flag=True, help="Print the lab's endpoints as JSON.")
def lab_up(regions: str, scheme: str, name: str, base_port: int, isolation: str, subnet: int,
           timeout: float, keep_on_failure: bool, as_json: bool) -> None:
    """Start a lab and wait until every region passes a produce/consume round trip."""
    from geo_recon.deploy import local, netns
    from geo_recon.deploy.topology import LabSpec, parse_regions

    if isolation == "auto":
        isolation = "netns" if netns.is_root() else "loopback"
    spec = LabSpec(regions=parse_regions(regions), scheme=scheme, name=name, base_port=base_port,  # type: ignore[arg-type]
                   isolation=isolation, subnet=subnet)  # type: ignore[arg-type]
    spec.validate()
    state = local.up(spec, progress=_timed_progress(), timeout=timeout, keep_on_failure=keep_on_failure)
    _print_endpoints(state, as_json)


def _timed_progress():
    import time

    start = time.monotonic()

    def report(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {message}", err=True)

    return report


def _print_endpoints(state, as_json: bool) -> None:
    import json

    if as_json:
        click.echo(json.dumps({e.region: {"cluster": e.cluster, "service_url": e.service_url,
                                          "admin_url": e.admin_url} for e in state.endpoints}, indent=2))
        return
    click.echo(f"lab {state.name!r}: scheme {state.scheme}, isolation {state.isolation}, Pulsar {state.pulsar_version}")
    for e in state.endpoints:
        click.echo(f"  region {e.region:<8} cluster {e.cluster:<6} service {e.service_url:<28} admin {e.admin_url}")


@lab.command("status")
@_lab_name
@click.option("--json", "as_json", is_flag=True)
def lab_status(name: str, as_json: bool) -> None:
    """Every component of the lab: pid, state, ports, region. Exit 1 if any is not running."""
    import dataclasses
    import json

    from geo_recon.deploy import local

    state, rows = local.status(name)
    healthy = all(r.state == "running" and r.listening for r in rows)
    if as_json:
        click.echo(json.dumps({"name": state.name, "scheme": state.scheme, "phase": state.phase,
                               "isolation": state.isolation, "healthy": healthy,
                               "endpoints": [e.model_dump() for e in state.endpoints],
                               "components": [dataclasses.asdict(r) for r in rows]}, indent=2))
    else:
        click.echo(f"lab {state.name!r}: scheme {state.scheme}, phase {state.phase}, isolation {state.isolation}")
        click.echo(f"  {'component':<16}{'region':<8}{'pid':>8}  {'state':<12}{'listening':<11}{'rss MiB':>8}  ports")
        for r in rows:
            ports = " ".join(f"{k}={v}" for k, v in r.ports.items())
            click.echo(f"  {r.name:<16}{r.region:<8}{r.pid or '-':>8}  {r.state:<12}{'yes' if r.listening else 'no':<11}"
                       f"{r.rss_mib:>8.0f}  {r.address} {ports}")
    if not healthy:
        raise SystemExit(1)


@lab.command("down")
@_lab_name
@click.option("--force", is_flag=True, help="Clean up by names and process markers even if the state file is corrupt.")
def lab_down(name: str, force: bool) -> None:
    """Stop every process and remove the lab's namespaces, links and rules."""
    from geo_recon.deploy import local

    actions = local.down(name, force=force, progress=_timed_progress())
    click.echo(f"lab {name!r} is down" + ("" if actions else " (nothing was running)"))


@lab.command("bench")
@click.option("--regions", "region_counts", default="2,3", show_default=True, help="Region counts to measure.")
@click.option("--schemes", default="async,strong", show_default=True)
@_lab_name
@click.option("--base-port", default=40000, show_default=True, type=int)
@click.option("--isolation", type=click.Choice(["auto", "netns", "loopback"]), default="auto", show_default=True)
@click.option("--subnet", default=200, show_default=True, type=int)
def lab_bench(region_counts: str, schemes: str, name: str, base_port: int, isolation: str, subnet: int) -> None:
    """Measure cold `lab up` time (jars cached) and total RSS per scheme and region count."""
    import platform

    from geo_recon.deploy import lab_bench as bench
    from geo_recon.deploy import netns
    from geo_recon.deploy.topology import parse_regions

    if isolation == "auto":
        isolation = "netns" if netns.is_root() else "loopback"
    figures = []
    for scheme in parse_regions(schemes):
        for count in (int(c) for c in parse_regions(region_counts)):
            click.echo(f"measuring {scheme} with {count} regions ...", err=True)
            figures.append(bench.measure(scheme, count, name=name, isolation=isolation, base_port=base_port,
                                         subnet=subnet, progress=lambda _m: None))
    click.echo(f"machine: {platform.node()}, {os.cpu_count()} cores, isolation {isolation}")
    click.echo(f"{'scheme':<8}{'regions':>8}{'JVMs':>6}{'ready s':>9}{'RSS MiB':>9}")
    for f in figures:
        click.echo(f"{f.scheme:<8}{f.regions:>8}{f.components:>6}{f.ready_seconds:>9.1f}{f.total_rss_mib:>9.0f}")


@cli.group()
def billing() -> None:
    """The billing reconciliation workload: order, payment and ledger events joined in real time."""


@billing.command("bench")
@click.option("--transactions", default=1_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--lateness-ms", default=500.0, show_default=True, type=click.FloatRange(min=0),
              help="The reconciler's lateness bound.")
@click.option("--rate", default=10_000.0, show_default=True, type=click.FloatRange(min=1),
              help="Transactions per second of event time: with the lateness, sets how much is open at once.")
@click.option("--error-rate", default=0.01, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--chunk", default=4096, show_default=True, type=click.IntRange(min=1),
              help="Records handed to the engine per call.")
@click.option("--count-matched", is_flag=True, help="Count matched transactions instead of emitting a verdict each.")
@click.option("--gc-threshold", type=click.IntRange(min=1), default=None,
              help="Python's generation-0 GC threshold for this process (default: Python's, 700).")
@click.option("--json", "as_json", is_flag=True)
def billing_bench(transactions: int, lateness_ms: float, rate: float, error_rate: float, seed: int, repeat: int,
                  chunk: int, count_matched: bool, gc_threshold: int | None, as_json: bool) -> None:
    """Events per second through the join engine alone, its peak memory and state. Exit 1 if a verdict is wrong."""
    import dataclasses
    import gc
    import json

    from geo_recon.billing import bench

    if gc_threshold is not None:
        gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])

    figures = bench.run_bench(transactions=transactions, lateness_ms=lateness_ms, rate_per_s=rate,
                              error_rate=error_rate, seed=seed, chunk=chunk, repeat=repeat,
                              emit_matched=not count_matched, progress=_progress)
    if as_json:
        data = dataclasses.asdict(figures)
        data["summary"] = {"injected": figures.summary.injected, "found": figures.summary.found,
                           "unexplained": figures.summary.unexplained, "exceptions": figures.summary.exceptions}
        data.update(best=figures.best, median=figures.median, goal=bench.GOAL_EVENTS_PER_S, valid=figures.valid)
        click.echo(json.dumps(data, indent=2))
    else:
        for line in bench.render(figures):
            click.echo(line)
    if not figures.valid:
        raise SystemExit(1)


def _interrupt_on_sigterm(signum, frame) -> None:  # noqa: ARG001
    # SIGTERM takes the same path as Ctrl-C: heal, tear down, keep what was recorded.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    cli(prog_name="geo-recon")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
