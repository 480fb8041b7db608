"""The geo-recon command line.

Thin by design: each command parses its options, calls one function, and maps
the outcome to an exit code: 0 valid / met, 1 anomalies found / not met,
2 could not decide (bad input, broken environment).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

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


_target_options = [
    click.option("--lab", "lab_name", default=None, help="A local lab by name (default: the lab named 'lab')."),
    click.option("--clusters", "clusters_file", default=None, type=click.Path(dir_okay=False),
                 help="A clusters file describing existing clusters (YAML; see README)."),
    click.option("--tenant", default="geo", show_default=True),
    click.option("--namespace", default="recon", show_default=True),
]


def _target(func):
    for option in reversed(_target_options):
        func = option(func)
    return func


def _scheme_for(deployment, scheme: str | None) -> str:
    from geo_recon.errors import ConfigError

    scheme = scheme or deployment.scheme
    if not scheme:
        raise ConfigError("--scheme async|strong is needed for existing clusters")
    return scheme


@cli.command()
@click.option("--scheme", default=None, help="async or strong (default: what the lab was started as).")
@_target
@click.option("--dedup/--no-dedup", default=False, show_default=True, help="Broker-side deduplication in the namespace.")
@click.option("--persistence", default="2/2/2", show_default=True, help="Strong: ensemble/write/ack quorum.")
def configure(scheme, lab_name, clusters_file, tenant, namespace, dedup, persistence) -> None:
    """Put the clusters into a scheme (idempotent: a second run changes nothing)."""
    from geo_recon import deployment as dep
    from geo_recon import schemes

    target = dep.resolve(lab_name, clusters_file)
    scheme = _scheme_for(target, scheme)
    settings = _settings(tenant, namespace, dedup, persistence)
    changes = schemes.apply(target, scheme, settings, progress=lambda m: click.echo(f"  {m}"))
    click.echo(f"{scheme} scheme on {target.source}: " +
               (f"{len(changes)} change(s)" if changes else "already configured, nothing changed"))


def _settings(tenant: str, namespace: str, dedup: bool, persistence: str):
    from geo_recon import schemes
    from geo_recon.errors import ConfigError

    try:
        e, w, a = (int(x) for x in persistence.split("/"))
    except ValueError:
        raise ConfigError(f"--persistence {persistence!r}: expected ensemble/write/ack, e.g. 3/2/2") from None
    return schemes.SchemeSettings(tenant=tenant, namespace=namespace, dedup=dedup, ensemble=e,
                                  write_quorum=w, ack_quorum=a)


@cli.command("verify-config")
@click.option("--scheme", default=None, help="async or strong (default: what the lab was started as).")
@_target
@click.option("--dedup/--no-dedup", default=False, show_default=True)
@click.option("--persistence", default="2/2/2", show_default=True)
@click.option("--no-probe", is_flag=True, help="Strong: skip writing a topic to read its ledger placement back.")
@click.option("--json", "as_json", is_flag=True)
def verify_config(scheme, lab_name, clusters_file, tenant, namespace, dedup, persistence, no_probe, as_json) -> None:
    """Read every setting back from every region; exit 1 if any did not take effect."""
    import dataclasses
    import json

    from geo_recon import deployment as dep
    from geo_recon import schemes

    target = dep.resolve(lab_name, clusters_file)
    scheme = _scheme_for(target, scheme)
    checks = schemes.verify(target, scheme, _settings(tenant, namespace, dedup, persistence),
                            probe_placement=not no_probe)
    ok = all(c.ok for c in checks)
    if as_json:
        click.echo(json.dumps({"scheme": scheme, "ok": ok, "checks": [dataclasses.asdict(c) for c in checks]}, indent=2))
    else:
        for c in checks:
            where = f"[{c.region}] " if c.region else ""
            click.echo(f"  {'ok  ' if c.ok else 'FAIL'} {where}{c.name}: {c.detail}")
        click.echo(f"{scheme} scheme on {target.source}: " + ("verified" if ok else "NOT in effect"))
    if not ok:
        raise SystemExit(1)


@cli.command()
@_target
@click.option("--json", "as_json", is_flag=True)
def status(lab_name, clusters_file, tenant, namespace, as_json) -> None:
    """Replication as Pulsar reports it, per region and topic."""
    import json

    from geo_recon import deployment as dep
    from geo_recon import schemes
    from geo_recon import status as st

    target = dep.resolve(lab_name, clusters_file)
    statuses = st.replication_status(target, schemes.SchemeSettings(tenant=tenant, namespace=namespace))
    if as_json:
        click.echo(json.dumps(st.to_json(statuses), indent=2))
        return
    click.echo(f"{'region':<8}{'topic':<40}{'to':<8}{'connected':<11}{'backlog':>9}{'delay s':>9}{'in/s':>9}{'out/s':>9}")
    for t in statuses:
        name = t.topic.split("/")[-1][:38]
        if not t.links:
            click.echo(f"{t.region:<8}{name:<40}{'-':<8}{'(no replication: local or stretched cluster)'}")
        for link in t.links:
            click.echo(f"{t.region:<8}{name:<40}{link.remote:<8}{'yes' if link.connected else 'NO':<11}"
                       f"{link.backlog:>9}{link.delay_seconds:>9.1f}{link.rate_in:>9.1f}{link.rate_out:>9.1f}")
    click.echo(f"note: {st.DELAY_NOTE}")


# The checker's commands live beside the checker; the module imports only click.
from geo_recon.check.cli import bench as _bench_group, check as _check_command  # noqa: E402

cli.add_command(_check_command)
cli.add_command(_bench_group)


def _interrupt_on_sigterm(signum, frame) -> None:  # noqa: ARG001
    # SIGTERM takes the same path as Ctrl-C: heal, tear down, keep what was recorded.
    raise KeyboardInterrupt


@cli.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--cases", "cases_per_kind", type=click.IntRange(min=0), default=3, show_default=True,
              help="Cases explained per anomaly in the terminal summary (the files have all of them).")
def report_command(run_dir: Path, cases_per_kind: int) -> None:
    """Re-render a run's report.md, report.html and junit.xml from its files, and print the summary.

    Exit 0 when the scenario's expectations were met, 1 when not, 2 when the run could not decide.
    """
    from geo_recon.report import load_run, render_run, summary

    written = render_run(run_dir)
    click.echo(summary(load_run(run_dir), cases_per_kind=cases_per_kind))
    click.echo("", err=True)
    for path in written:
        click.echo(f"wrote {path}", err=True)
    raise SystemExit(load_run(run_dir).exit_code)


@cli.command("compare")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write comparison.md/.html/.json (default: compare-<scenario>-<runs> beside the first run).")
@click.option("--force", is_flag=True, help="Compare runs of different scenarios or seeds anyway.")
def compare_command(run_dirs: tuple[Path, ...], out_dir: Path | None, force: bool) -> None:
    """Put runs of one scenario side by side (e.g. strong vs async): RPO, RTO, latency, lag, loss, verdict.

    Exit 2 when the runs are of different scenarios or seeds (unless --force).
    """
    from geo_recon.report.compare import COMPARISON_HTML, COMPARISON_JSON, COMPARISON_MD, compare_runs, default_out_dir

    out = out_dir if out_dir is not None else default_out_dir(list(run_dirs))
    click.echo(compare_runs(list(run_dirs), out, force=force))
    click.echo("", err=True)
    for name in (COMPARISON_MD, COMPARISON_HTML, COMPARISON_JSON):
        click.echo(f"wrote {out / name}", err=True)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    cli(prog_name="geo-recon")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
