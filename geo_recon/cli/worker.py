"""`geo-recon worker`: one region's load (the controller starts these; an SRE can run one per real region)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from geo_recon.cli.common import workload_from_file, workload_from_options, workload_options
from geo_recon.deploy import external as dep
from geo_recon.errors import ConfigError
from geo_recon.workload import worker as worker_mod


@click.command()
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
@workload_options
def worker(config_file, region, clusters_file, out_dir, run_id, start_at, clock_ref, role, seed, tenant, namespace,
           workload_file, **options) -> None:
    """Run one region's load. With --region/--clusters/--out an SRE runs one in each real region;
    merge the history directories and run `geo-recon check` on them."""
    if config_file:
        summary = worker_mod.run_from_file(config_file, role=role)
    else:
        if not (region and clusters_file and out_dir and run_id):
            raise ConfigError("give --config, or all of --region, --clusters, --out and --run-id")
        target = dep.from_clusters_file(clusters_file)
        ep = target.region(region)
        workload = workload_from_file(workload_file) if workload_file else workload_from_options(**options)
        if workload.billing is not None:
            raise ConfigError(f"{workload_file}: the billing workload needs the controller's reconciler role; "
                              "run it with `geo-recon run` on the local lab")
        # Without a controller each worker ends its own drain, after a longer quiet period.
        workload = workload.model_copy(update={"drain_idle_s": max(workload.drain_idle_s, 10.0)})
        settings_ns = f"{tenant}/{namespace}"
        cfg = worker_mod.WorkerConfig(
            run_id=run_id, region=region, regions=target.region_names, service_url=ep.service_url,
            service_urls={peer.region: peer.service_url for peer in target.regions},
            admin_url=ep.admin_url, tls_ca=ep.tls_ca, workload=workload, seed=seed,
            topics=[f"persistent://{settings_ns}/{run_id}-t{i}" for i in range(workload.topics)],
            start_at_ns=int((start_at or time.time() + 5) * 1e9), run_dir=str(Path(out_dir)),
            coordinated_drain=False, clock_ref=clock_ref,
        )
        summary = worker_mod.Worker(cfg, token=ep.token).run()
    click.echo(json.dumps({k: summary[k] for k in ("region", "sent", "acked", "failed", "unknown", "received")}))
