"""`geo-recon configure`, `verify-config` and `status`: a scheme put in place, read back, and
replication as Pulsar reports it."""

from __future__ import annotations

import dataclasses
import json

import click

from geo_recon import schemes
from geo_recon import status as st
from geo_recon.cli.common import scheme_for, scheme_settings, target_options
from geo_recon.deploy import external as dep
from geo_recon.report.console import check_lines, replication_lines


@click.command()
@click.option("--scheme", default=None, help="async or strong (default: what the lab was started as).")
@target_options
@click.option("--dedup/--no-dedup", default=False, show_default=True, help="Broker-side deduplication in the namespace.")
@click.option("--persistence", default="2/2/2", show_default=True, help="Strong: ensemble/write/ack quorum.")
def configure(scheme, lab_name, clusters_file, tenant, namespace, dedup, persistence) -> None:
    """Put the clusters into a scheme (idempotent: a second run changes nothing)."""
    target = dep.resolve(lab_name, clusters_file)
    scheme = scheme_for(target, scheme)
    settings = scheme_settings(tenant, namespace, dedup, persistence)
    changes = schemes.apply(target, scheme, settings, progress=lambda m: click.echo(f"  {m}"))
    click.echo(f"{scheme} scheme on {target.source}: " +
               (f"{len(changes)} change(s)" if changes else "already configured, nothing changed"))


@click.command("verify-config")
@click.option("--scheme", default=None, help="async or strong (default: what the lab was started as).")
@target_options
@click.option("--dedup/--no-dedup", default=False, show_default=True)
@click.option("--persistence", default="2/2/2", show_default=True)
@click.option("--no-probe", is_flag=True, help="Strong: skip writing a topic to read its ledger placement back.")
@click.option("--json", "as_json", is_flag=True)
def verify_config(scheme, lab_name, clusters_file, tenant, namespace, dedup, persistence, no_probe, as_json) -> None:
    """Read every setting back from every region; exit 1 if any did not take effect."""
    target = dep.resolve(lab_name, clusters_file)
    scheme = scheme_for(target, scheme)
    checks = schemes.verify(target, scheme, scheme_settings(tenant, namespace, dedup, persistence),
                            probe_placement=not no_probe)
    ok = all(c.ok for c in checks)
    if as_json:
        click.echo(json.dumps({"scheme": scheme, "ok": ok, "checks": [dataclasses.asdict(c) for c in checks]}, indent=2))
    else:
        click.echo("\n".join(check_lines(checks)))
        click.echo(f"{scheme} scheme on {target.source}: " + ("verified" if ok else "NOT in effect"))
    if not ok:
        raise SystemExit(1)


@click.command()
@target_options
@click.option("--json", "as_json", is_flag=True)
def status(lab_name, clusters_file, tenant, namespace, as_json) -> None:
    """Replication as Pulsar reports it, per region and topic."""
    target = dep.resolve(lab_name, clusters_file)
    statuses = st.replication_status(target, schemes.SchemeSettings(tenant=tenant, namespace=namespace))
    if as_json:
        click.echo(json.dumps(st.to_json(statuses), indent=2))
        return
    click.echo("\n".join(replication_lines(statuses, st.DELAY_NOTE)))
