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


from geo_recon.deploy.pulsar_cli import pulsar as _pulsar_group  # noqa: E402

cli.add_command(_pulsar_group)


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
@click.option("--pulsar", default=None, metavar="VERSION", help="Pulsar server version (see `geo-recon pulsar versions`).")
def lab_up(regions: str, scheme: str, name: str, base_port: int, isolation: str, subnet: int,
           timeout: float, keep_on_failure: bool, as_json: bool, pulsar: str | None) -> None:
    """Start a lab and wait until every region passes a produce/consume round trip."""
    from geo_recon.deploy import local, netns
    from geo_recon.deploy.pulsar_versions import release
    from geo_recon.deploy.topology import LabSpec, parse_regions

    if isolation == "auto":
        isolation = "netns" if netns.is_root() else "loopback"
    spec = LabSpec(regions=parse_regions(regions), scheme=scheme, name=name, base_port=base_port,  # type: ignore[arg-type]
                   isolation=isolation, subnet=subnet, pulsar=release(pulsar).version)  # type: ignore[arg-type]
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
                               "isolation": state.isolation, "pulsar_version": state.pulsar_version, "healthy": healthy,
                               "endpoints": [e.model_dump() for e in state.endpoints],
                               "components": [dataclasses.asdict(r) for r in rows]}, indent=2))
    else:
        click.echo(f"lab {state.name!r}: scheme {state.scheme}, phase {state.phase}, isolation {state.isolation}, "
                   f"Pulsar {state.pulsar_version}")
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
@click.option("--base-port", default=24000, show_default=True, type=int)
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


def _workload_options(func):
    options = [
        click.option("--rate", type=float, default=200.0, show_default=True, help="Messages/s per region."),
        click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds of sending."),
        click.option("--message-size", type=int, default=100, show_default=True),
        click.option("--keys", type=int, default=100, show_default=True),
        click.option("--producers", type=int, default=1, show_default=True, help="Producers per region."),
        click.option("--topics", type=int, default=1, show_default=True),
        click.option("--partitions", type=int, default=0, show_default=True),
        click.option("--batching/--no-batching", default=False, show_default=True),
        click.option("--producer-dedup/--no-producer-dedup", default=False, show_default=True),
        click.option("--max-outstanding", type=int, default=1000, show_default=True),
        click.option("--subscription-type", type=click.Choice(["exclusive", "failover", "key_shared", "shared"]),
                     default="failover", show_default=True),
        click.option("--drain-timeout", type=float, default=60.0, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _workload(rate, duration, message_size, keys, producers, topics, partitions, batching, producer_dedup,
              max_outstanding, subscription_type, drain_timeout, **_):
    from pydantic import ValidationError

    from geo_recon.errors import ConfigError
    from geo_recon.workload.spec import WorkloadSpec

    try:
        return WorkloadSpec(rate=rate, duration_s=duration, message_size=message_size, keys=keys, producers=producers,
                            topics=topics, partitions=partitions, batching=batching, producer_dedup=producer_dedup,
                            max_outstanding=max_outstanding, subscription_type=subscription_type,
                            drain_timeout_s=drain_timeout)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"option --{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}") from None


def _workload_from_file(path: str):
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    from geo_recon.errors import ConfigError
    from geo_recon.workload.spec import WorkloadSpec

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read a workload from it ({exc})") from None
    try:
        return WorkloadSpec.model_validate(data if data is not None else {})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: field {field}: {err['msg'].removeprefix('Value error, ')}") from None


def _progress_line():
    import time

    last = {"t": 0.0}

    def show(progress: dict) -> None:
        if time.monotonic() - last["t"] < 2:
            return
        last["t"] = time.monotonic()
        parts = []
        for region, p in sorted(progress.items()):
            lag = p.get("lag_ms_p50")
            parts.append(f"{region}: {p.get('phase', '?')} sent {p.get('sent', 0)} acked {p.get('acked', 0)} "
                         f"recv {p.get('received', 0)}" + (f" lag~{lag:.0f}ms" if lag is not None else ""))
        click.echo("  " + " | ".join(parts), err=True)

    return show


@cli.command()
@_target
@click.option("--scheme", default=None, help="async or strong (default: what the lab was started as).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory to create.")
@click.option("--seed", type=int, default=0, show_default=True)
@_workload_options
def load(lab_name, clusters_file, tenant, namespace, scheme, out_dir, seed, **options) -> None:
    """Drive load in every region (no faults) and record the history into --out."""
    from pathlib import Path

    from geo_recon import deployment as dep
    from geo_recon.deploy import state as lab_state
    from geo_recon.workload import runner

    workload = _workload(**options)
    target = dep.resolve(lab_name, clusters_file)
    scheme = _scheme_for(target, scheme)
    namespaces, clock_host = {}, "127.0.0.1"
    if target.lab:
        lab = lab_state.load(target.lab)
        namespaces = {r: ns for r, ns in lab.namespaces.items() if r in target.region_names}
        clock_host = lab.bridge_address or "127.0.0.1"
    result = runner.run_load(target, scheme, workload, Path(out_dir), seed=seed, namespaces=namespaces,
                             clock_host=clock_host, on_progress=_progress_line(), lab_marker=target.lab)
    for region, fate in result["fates"].items():
        s = result["summaries"].get(region, {})
        click.echo(f"region {region}: {fate}; sent {s.get('sent', '?')} acked {s.get('acked', '?')} "
                   f"received {s.get('received', '?')} rates {s.get('achieved_rates', {})}")
    click.echo(f"history in {out_dir} (check it with: geo-recon check {out_dir})")


@cli.command()
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Internal: a worker config written by the controller.")
@click.option("--region", default=None, help="This worker's region (with --clusters).")
@click.option("--clusters", "clusters_file", default=None, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False))
@click.option("--run-id", default=None, help="The same in every region, so all workers use the same topics.")
@click.option("--start-at", type=float, default=None, envvar="GEO_RECON_START_AT", show_envvar=True,
              help="Unix time to start sending (same in every region).")
@click.option("--clock-ref", default=None, help="udp://HOST:PORT of `geo-recon clock serve` on the controller "
                                                 "machine: the worker records its clock offset against it.")
@click.option("--role", type=click.Choice(["all", "produce", "consume", "reconcile"]), default="all", show_default=True,
              help="Internal: the controller runs producers and consumers as separate processes.")
@click.option("--seed", type=int, default=0, show_default=True, envvar="GEO_RECON_SEED", show_envvar=True)
@click.option("--tenant", default="geo", show_default=True, envvar="GEO_RECON_TENANT", show_envvar=True)
@click.option("--namespace", default="recon", show_default=True, envvar="GEO_RECON_NAMESPACE", show_envvar=True)
@click.option("--workload-file", default=None, type=click.Path(exists=True, dir_okay=False),
              envvar="GEO_RECON_WORKLOAD_FILE", show_envvar=True,
              help="A scenario's `workload:` block (YAML or JSON) instead of the workload options below.")
@_workload_options
def worker(config_file, region, clusters_file, out_dir, run_id, start_at, clock_ref, role, seed, tenant, namespace,
           workload_file, **options) -> None:
    """Run one region's load. With --region/--clusters/--out an SRE runs one in each real region;
    merge the history directories and run `geo-recon check` on them."""
    import json
    import time
    from pathlib import Path

    from geo_recon import deployment as dep
    from geo_recon.errors import ConfigError
    from geo_recon.workload import worker as worker_mod

    if config_file:
        summary = worker_mod.run_from_file(config_file, role=role)
    else:
        if not (region and clusters_file and out_dir and run_id):
            raise ConfigError("give --config, or all of --region, --clusters, --out and --run-id")
        target = dep.from_clusters_file(clusters_file)
        ep = target.region(region)
        workload = _workload_from_file(workload_file) if workload_file else _workload(**options)
        if workload.billing is not None:
            raise ConfigError(f"{workload_file}: the billing workload needs the controller's reconciler role; "
                              "run it with `geo-recon run` on the local lab")
        # Without a controller each worker ends its own drain, after a longer quiet period.
        workload = workload.model_copy(update={"drain_idle_s": max(workload.drain_idle_s, 10.0)})
        settings_ns = f"{tenant}/{namespace}"
        cfg = worker_mod.WorkerConfig(
            run_id=run_id, region=region, regions=target.region_names, service_url=ep.service_url,
            admin_url=ep.admin_url, tls_ca=ep.tls_ca, workload=workload, seed=seed,
            topics=[f"persistent://{settings_ns}/{run_id}-t{i}" for i in range(workload.topics)],
            start_at_ns=int((start_at or time.time() + 5) * 1e9), run_dir=str(Path(out_dir)),
            coordinated_drain=False, clock_ref=clock_ref,
        )
        summary = worker_mod.Worker(cfg, token=ep.token).run()
    click.echo(json.dumps({k: summary[k] for k in ("region", "sent", "acked", "failed", "unknown", "received")}))


@click.command("load")
@_target
@click.option("--region", default=None, help="Region to load (default: the first).")
@click.option("--seconds", type=float, default=20.0, show_default=True)
@click.option("--size", type=int, default=100, show_default=True, help="Message size in bytes.")
@click.option("--fixed-rates", default="1000,5000", show_default=True, help="Rates to check the pacer at.")
def bench_load(lab_name, clusters_file, tenant, namespace, region, seconds, size, fixed_rates) -> None:
    """Highest publish-and-record rate of one region vs pulsar-perf on the same cluster; pacer error."""
    import platform

    from geo_recon import deployment as dep
    from geo_recon import schemes
    from geo_recon.deploy import state as lab_state
    from geo_recon.workload import bench as load_bench

    target = dep.resolve(lab_name, clusters_file)
    scheme = target.scheme or "async"
    namespaces, clock_host = {}, "127.0.0.1"
    if target.lab:
        lab = lab_state.load(target.lab)
        namespaces, clock_host = dict(lab.namespaces), lab.bridge_address or "127.0.0.1"
    schemes.apply(target, scheme)
    rates = [float(r) for r in fixed_rates.split(",") if r.strip()]
    figures = load_bench.run(target, scheme, region=region or target.region_names[0], seconds=seconds, size=size,
                             fixed_rates=rates, namespaces=namespaces, clock_host=clock_host,
                             progress=lambda m: click.echo(m, err=True))
    click.echo(f"machine: {platform.node()}, {os.cpu_count()} cores; {size}-byte messages, {seconds:.0f}s each, "
               f"{scheme} scheme ({target.source})")
    perf = figures[0].achieved_rate
    click.echo(f"{'run':<34}{'target/s':>10}{'achieved/s':>12}{'vs perf':>9}{'error':>8}{'acked':>10}{'received':>10}")
    for f in figures:
        err = f"{f.rate_error * 100:.2f}%" if f.rate_error is not None else "-"
        target_rate = f"{f.target_rate:.0f}" if f.target_rate else "max"
        click.echo(f"{f.label:<34}{target_rate:>10}{f.achieved_rate:>12.0f}{f.achieved_rate / perf * 100:>8.0f}%"
                   f"{err:>8}{f.acked:>10}{f.received:>10}")
    click.echo("received counts this region's consumer receipts (recording keeps up when received == acked).")
    raw = next((f for f in figures if f.label.startswith("python client")), None)
    best = max((f for f in figures if f.label.startswith("geo-recon max")), key=lambda f: f.achieved_rate, default=None)
    if raw and best and raw.achieved_rate > 0:
        click.echo(f"the Python client alone reaches {raw.achieved_rate / perf * 100:.0f}% of pulsar-perf; "
                   f"geo-recon's recording worker reaches {best.achieved_rate / raw.achieved_rate * 100:.0f}% "
                   "of the Python client alone.")


@cli.group()
def faults() -> None:
    """Inject and heal faults on a local lab by hand (runs inject them on a schedule)."""


@faults.command("inject")
@click.option("--lab", "lab_name", default="lab", show_default=True)
@click.option("--kind", required=True,
              type=click.Choice(["kill", "stop", "pause", "restart", "partition", "isolate", "latency", "bandwidth",
                                 "unload"]))
@click.option("--target", default=None, help="kill/stop/pause/restart/isolate: region or region/component; "
                                             "unload: region.")
@click.option("--scope", type=click.Choice(["topics", "namespace"]), default="topics", show_default=True,
              help="unload: each topic of --namespace, or the namespace's bundles.")
@click.option("--namespace", default="geo/recon", show_default=True, help="unload: tenant/namespace.")
@click.option("--groups", default=None, help="partition: groups separated by '|', e.g. 'a|b,c'.")
@click.option("--one-way", is_flag=True, help="partition: drop only traffic from the first group.")
@click.option("--between", default=None, help="latency/bandwidth: regions, e.g. 'a,b' (default: all).")
@click.option("--rtt-ms", type=float, default=None, help="latency: added round-trip time.")
@click.option("--jitter-ms", type=float, default=0.0)
@click.option("--rate-kbps", type=int, default=None, help="bandwidth: KB/s each way.")
def faults_inject(lab_name, kind, target, scope, namespace, groups, one_way, between, rtt_ms, jitter_ms,
                  rate_kbps) -> None:
    """Inject one fault now, verify it, and leave it until `geo-recon faults heal`."""
    from pydantic import ValidationError

    from geo_recon.errors import ConfigError
    from geo_recon.faults.injector import Injector
    from geo_recon.faults.spec import FaultSpec, ScheduledFault

    try:
        spec = FaultSpec(kind=kind, target=target, scope=scope, one_way=one_way, rtt_ms=rtt_ms,
                         jitter_ms=jitter_ms, rate_kbps=rate_kbps,
                         groups=[g.split(",") for g in groups.split("|")] if groups else None,
                         between=between.split(",") if between else None)
    except ValidationError as exc:
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    injector = Injector(lab_name, progress=lambda m: click.echo(m, err=True), namespace=namespace)
    fid = f"m{len(injector.active) + 1}-{int(__import__('time').time())}"
    injector.inject(ScheduledFault(fid, spec, 0, 0))
    click.echo(f"{fid}: {spec.describe()} (heal with: geo-recon faults heal --lab {lab_name})")


@faults.command("heal")
@click.option("--lab", "lab_name", default="lab", show_default=True)
def faults_heal(lab_name) -> None:
    """Heal every fault on the lab: resume, restart, remove rules and proxies (also after a crash)."""
    from geo_recon.faults.injector import Injector

    healed = Injector(lab_name, progress=lambda m: click.echo(m, err=True)).heal_all()
    click.echo(f"healed {len(healed)} item(s)" if healed else "nothing to heal")


@cli.command("run")
@click.argument("scenario_file", type=click.Path(dir_okay=False))
@click.option("--schemes", default=None, help="Run under these schemes one after the other, e.g. strong,async, "
                                               "and compare them (default: the scenario's scheme).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where run directories go (a `latest` link points at the newest).")
@click.option("--keep-lab", is_flag=True, help="Leave the lab running afterwards.")
@click.option("--reuse-lab", is_flag=True, help="Use a lab that is already up with the same scheme and regions.")
@click.option("--pulsar", "pulsar_versions", default=None, metavar="V1,V2",
              help="Run on these Pulsar server versions one after the other and compare them "
                   "(default: the scenario's `pulsar`, else the default version).")
def run_command(scenario_file, schemes, runs_root, keep_lab, reuse_lab, pulsar_versions) -> None:
    """Run a scenario end to end: lab, scheme, load, faults, heal, drain, check, report.

    Exit code: 0 expectations met, 1 not met, 2 could not decide, 130 interrupted."""
    from pathlib import Path

    from geo_recon import run as run_mod
    from geo_recon import scenario as scenario_mod

    scenario = scenario_mod.load(scenario_file)
    outcomes = []
    progress = _timed_progress()
    versions = scenario_mod.versions_to_run(scenario, pulsar_versions)
    for version in versions:
        for scheme in scenario_mod.schemes_to_run(scenario, schemes):
            outcome = run_mod.run_scenario(scenario, scheme, runs_root=Path(runs_root), progress=progress,
                                           keep_lab=keep_lab, reuse_lab=reuse_lab, pulsar=version)
            outcomes.append(outcome)
            phases = ", ".join(f"{k} {v:.1f}s" for k, v in outcome.phases.items())
            verdict = {True: "expectations MET", False: "expectations NOT MET", None: "could not decide"}[outcome.met]
            click.echo(f"{outcome.scheme} (Pulsar {outcome.pulsar}): {verdict} -> {outcome.run_dir} ({phases})")
            if outcome.error:
                click.echo(f"  reason: {outcome.error}")
            if outcome.interrupted:
                raise SystemExit(130)
    if len(outcomes) > 1:
        from geo_recon.report import compare

        click.echo(compare.compare_runs([o.run_dir for o in outcomes], out_dir=Path(runs_root)))
    codes = [o.exit_code for o in outcomes]
    raise SystemExit(2 if 2 in codes else max(codes))


@cli.group()
def compose() -> None:
    """docker-compose labs rendered from the same model as the local lab (docker/)."""


_project_dir = click.argument("project_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))


@compose.command("render")
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--regions", help="Comma-separated region names (2 or more), instead of a scenario file.")
@click.option("--scheme", help="async or strong, instead of a scenario file.")
@click.option("--name", help="Lab name (1-8 lowercase letters/digits); default: the scenario's "
                                "topology.lab.name, or 'lab'.")
@click.option("--base-port", default=None, type=int,
              help="First port of the lab's port range; default: the scenario's topology.lab.base_port, or 20000.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Project directory to write; default docker/<name>-<scheme>.")
def compose_render(scenario: Path | None, regions: str | None, scheme: str | None, name: str | None,
                   base_port: int | None, out: Path | None) -> None:
    """Render a compose project for SCENARIO (its topology) or for --regions and --scheme."""
    from geo_recon.deploy import compose as compose_lab

    spec = compose_lab.spec_from_options(scenario=scenario, regions=regions, scheme=scheme, name=name,
                                         base_port=base_port)
    out = out or Path("docker") / compose_lab.compose_lab(spec).dir_name
    written = compose_lab.write_project(spec, out, build_context=compose_lab.build_context_for(out))
    click.echo(f"rendered the {spec.scheme} lab {spec.name!r} (regions {', '.join(spec.regions)}) into {out} "
               f"({len(written)} files); start it with: geo-recon compose up {out}")


@compose.command("render-all")
@click.option("--root", default="docker", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the shipped projects live.")
@click.option("--check", is_flag=True, help="Render to a temporary directory and compare; exit 1 if out of date.")
def compose_render_all(root: Path, check: bool) -> None:
    """Render every shipped project (2 and 3 regions, async and strong) under ROOT."""
    from geo_recon.deploy import compose as compose_lab

    if check:
        problems = compose_lab.check_rendered(root)
        for problem in problems:
            click.echo(f"{root}/{problem}")
        if problems:
            click.echo(f"{len(problems)} files are out of date; run: geo-recon compose render-all --root {root}",
                       err=True)
            raise SystemExit(1)
        click.echo(f"the compose projects under {root} are up to date")
        return
    written = compose_lab.render_all(root)
    click.echo(f"rendered {len(compose_lab.SHIPPED)} projects under {root} ({len(written)} files)")


@compose.command("up")
@_project_dir
@click.option("--timeout", default=300.0, show_default=True, type=float,
              help="Seconds to wait for health once the images are there.")
@click.option("--keep-on-failure", is_flag=True, help="Leave a failed lab running for inspection.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as JSON.")
def compose_up(project_dir: Path, timeout: float, keep_on_failure: bool, as_json: bool) -> None:
    """Start the compose lab in DIR and wait until every service is healthy."""
    import json

    from geo_recon.deploy.compose_backend import ComposeBackend

    backend = ComposeBackend(project_dir, progress=_timed_progress())
    endpoints = backend.up(timeout=timeout, keep_on_failure=keep_on_failure)
    if as_json:
        click.echo(json.dumps({e.region: {"cluster": e.cluster, "service_url": e.service_url,
                                          "admin_url": e.admin_url} for e in endpoints}, indent=2))
        return
    click.echo(f"compose lab {backend.lab.project}: scheme {backend.lab.spec.scheme}")
    for e in endpoints:
        click.echo(f"  region {e.region:<8} cluster {e.cluster:<6} service {e.service_url:<28} admin {e.admin_url}")


@compose.command("down")
@_project_dir
def compose_down(project_dir: Path) -> None:
    """Remove every container, network and volume of the compose lab in DIR."""
    from geo_recon.deploy.compose_backend import ComposeBackend

    backend = ComposeBackend(project_dir, progress=_progress)
    backend.down()
    click.echo(f"compose lab {backend.lab.project} is down")


@compose.command("status")
@_project_dir
@click.option("--json", "as_json", is_flag=True)
def compose_status(project_dir: Path, as_json: bool) -> None:
    """Every service of the compose lab in DIR. Exit 1 if a lab service is not running and healthy."""
    import dataclasses
    import json

    from geo_recon.deploy.compose_backend import ComposeBackend

    backend = ComposeBackend(project_dir)
    rows = backend.status()
    lab = backend.lab
    healthy = all((r.state == "running" and r.health == "healthy") if r.service in lab.long_running else
                  (r.state == "exited" and r.exit_code == 0) for r in rows
                  if r.service in lab.long_running or r.service in lab.one_shots)
    if as_json:
        click.echo(json.dumps({"project": lab.project, "healthy": healthy,
                               "services": [dataclasses.asdict(r) for r in rows]}, indent=2))
    else:
        click.echo(f"compose lab {lab.project}: scheme {lab.spec.scheme}, {'healthy' if healthy else 'NOT healthy'}")
        for r in rows:
            click.echo(f"  {r.service:<16}{r.state:<12}{r.health or '-':<12}"
                       f"{'' if r.state != 'exited' else f'exit {r.exit_code}'}")
    if not healthy:
        raise SystemExit(1)


@compose.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_project_dir
@click.argument("region")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def compose_run(project_dir: Path, region: str, args: tuple[str, ...]) -> None:
    """Run `geo-recon ARGS` inside REGION's network (e.g. configure --clusters /config/clusters.yaml --scheme async)."""
    from geo_recon.deploy.compose_backend import ComposeBackend

    click.echo(ComposeBackend(project_dir).run_tool(region, *args), nl=False)


def _process_fault(action: str, doc: str):
    @compose.command(action, help=doc)
    @_project_dir
    @click.argument("component")
    def command(project_dir: Path, component: str) -> None:
        from geo_recon.deploy.compose_backend import ComposeBackend

        backend = ComposeBackend(project_dir)
        getattr(backend, action)(component)
        click.echo(f"{action}: {component} in {backend.lab.project}")

    return command


_process_fault("kill", "SIGKILL a component (e.g. a/broker) of the compose lab in DIR; heal with `start`.")
_process_fault("start", "Start a killed component of the compose lab in DIR again.")
_process_fault("pause", "Freeze a component of the compose lab in DIR; heal with `unpause`.")
_process_fault("unpause", "Resume a paused component of the compose lab in DIR.")

_one_way = click.option("--one-way", is_flag=True, help="Only the connections SRC opens to DST.")


@compose.command("latency")
@_project_dir
@click.argument("src")
@click.argument("dst")
@click.argument("rtt_ms", type=click.IntRange(min=0))
@click.option("--jitter", "jitter_ms", default=0, show_default=True, type=click.IntRange(min=0))
@_one_way
def compose_latency(project_dir: Path, src: str, dst: str, rtt_ms: int, jitter_ms: int, one_way: bool) -> None:
    """Add RTT_MS to every round trip between regions SRC and DST (0 removes it)."""
    from geo_recon.deploy.compose_backend import ComposeBackend

    backend = ComposeBackend(project_dir)
    if rtt_ms == 0 and jitter_ms == 0:
        changed = backend.clear_latency(src, dst, symmetric=not one_way)
    else:
        changed = backend.latency(src, dst, rtt_ms, jitter_ms=jitter_ms, symmetric=not one_way)
    click.echo(f"latency {rtt_ms}±{jitter_ms} ms on {len(changed)} proxies: {', '.join(changed)}")


@compose.command("partition")
@_project_dir
@click.argument("src")
@click.argument("dst")
@_one_way
@click.option("--heal", "heal_it", is_flag=True, help="Remove this partition.")
def compose_partition(project_dir: Path, src: str, dst: str, one_way: bool, heal_it: bool) -> None:
    """Drop every byte between sites SRC and DST (a black hole), or --heal it."""
    from geo_recon.deploy.compose_backend import ComposeBackend

    backend = ComposeBackend(project_dir)
    action = backend.heal_partition if heal_it else backend.partition
    changed = action(src, dst, symmetric=not one_way)
    click.echo(f"{'healed' if heal_it else 'partitioned'} {len(changed)} proxies: {', '.join(changed)}")


@compose.command("heal")
@_project_dir
def compose_heal(project_dir: Path) -> None:
    """Every Toxiproxy of the compose lab in DIR back to normal (no latency, no partitions)."""
    from geo_recon.deploy.compose_backend import ComposeBackend

    backend = ComposeBackend(project_dir)
    backend.heal()
    click.echo(f"every link of {backend.lab.project} healed")


# The checker's commands live beside the checker; the module imports only click.
from geo_recon.check.cli import bench as _bench_group, check as _check_command  # noqa: E402

cli.add_command(_check_command)
cli.add_command(_bench_group)
_bench_group.add_command(bench_load)


@cli.command("merge")
@click.argument("worker_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="The merged run directory.")
def merge_command(worker_dirs, out_dir) -> None:
    """Bring the output directories of `geo-recon worker` (one per region) into one run
    directory for `geo-recon check`: histories side by side, one run.json with every
    region and each worker's measured clock offset."""
    from pathlib import Path

    from geo_recon.workload.merge import merge_worker_dirs

    run = merge_worker_dirs([Path(d) for d in worker_dirs], Path(out_dir))
    click.echo(f"merged {len(worker_dirs)} worker director{'y' if len(worker_dirs) == 1 else 'ies'} into {out_dir}: "
               f"regions {', '.join(run['regions'])} (check it with: geo-recon check {out_dir})")


@cli.group()
def clock() -> None:
    """The reference clock workers measure their offsets against."""


@clock.command("serve")
@click.option("--bind", default="0.0.0.0", show_default=True)
@click.option("--port", default=7123, show_default=True, type=int)
def clock_serve(bind, port) -> None:
    """Answer clock probes (UDP) until interrupted; give workers --clock-ref udp://THIS_HOST:PORT."""
    import time

    from geo_recon.workload.runner import ClockServer

    server = ClockServer(bind, port)
    click.echo(f"serving the clock on {server.url} (Ctrl-C to stop)", err=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()


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
