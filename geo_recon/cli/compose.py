"""`geo-recon compose`: docker-compose labs rendered from the same model as the local lab (docker/)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from geo_recon.cli import compose_engine
from geo_recon.cli.common import echo_progress, timed_progress
from geo_recon.deploy import compose as compose_lab
from geo_recon.deploy.compose_backend import ComposeBackend
from geo_recon.deploy.topology import LabSpec, parse_regions
from geo_recon.errors import ConfigError
from geo_recon.scenario import load as load_scenario
from geo_recon.report.console import compose_status_lines, endpoint_lines, endpoints_json


@click.group()
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
    spec = spec_from_options(scenario=scenario, regions=regions, scheme=scheme, name=name,
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
    backend = ComposeBackend(project_dir, progress=timed_progress())
    endpoints = backend.up(timeout=timeout, keep_on_failure=keep_on_failure)
    if as_json:
        click.echo(endpoints_json(endpoints))
        return
    click.echo("\n".join(endpoint_lines(f"compose lab {backend.lab.project}: scheme {backend.lab.spec.scheme}",
                                        endpoints)))


@compose.command("down")
@_project_dir
def compose_down(project_dir: Path) -> None:
    """Remove every container, network and volume of the compose lab in DIR."""
    backend = ComposeBackend(project_dir, progress=echo_progress)
    backend.down()
    click.echo(f"compose lab {backend.lab.project} is down")


@compose.command("status")
@_project_dir
@click.option("--json", "as_json", is_flag=True)
def compose_status(project_dir: Path, as_json: bool) -> None:
    """Every service of the compose lab in DIR. Exit 1 if a lab service is not running and healthy."""
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
        click.echo("\n".join(compose_status_lines(lab, rows, healthy)))
    if not healthy:
        raise SystemExit(1)


@compose.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_project_dir
@click.argument("region")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def compose_run(project_dir: Path, region: str, args: tuple[str, ...]) -> None:
    """Run `geo-recon ARGS` inside REGION's network (e.g. configure --clusters /config/clusters.yaml --scheme async)."""
    click.echo(ComposeBackend(project_dir).run_tool(region, *args), nl=False)


def _process_fault(action: str, doc: str):
    @compose.command(action, help=doc)
    @_project_dir
    @click.argument("component")
    def command(project_dir: Path, component: str) -> None:
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
    backend = ComposeBackend(project_dir)
    action = backend.heal_partition if heal_it else backend.partition
    changed = action(src, dst, symmetric=not one_way)
    click.echo(f"{'healed' if heal_it else 'partitioned'} {len(changed)} proxies: {', '.join(changed)}")


@compose.command("heal")
@_project_dir
def compose_heal(project_dir: Path) -> None:
    """Every Toxiproxy of the compose lab in DIR back to normal (no latency, no partitions)."""
    backend = ComposeBackend(project_dir)
    backend.heal()
    click.echo(f"every link of {backend.lab.project} healed")


def spec_from_options(*, scenario: Path | None, regions: str | None, scheme: str | None, name: str | None,
                      base_port: int | None) -> LabSpec:
    """A scenario file, or --regions and --scheme (not both); ``base_port`` None: the scenario's, or 20000."""
    if scenario is not None:
        if regions or scheme:
            raise ConfigError(f"give either a scenario file ({scenario}) or --regions/--scheme, not both")
        spec = compose_lab.spec_for_scenario(load_scenario(scenario), None)
        spec = dataclasses.replace(spec, name=name or spec.name,
                                   base_port=spec.base_port if base_port is None else base_port)
    else:
        if not regions or not scheme:
            raise ConfigError("give a scenario file, or both --regions (e.g. a,b) and --scheme (async or strong)")
        spec = LabSpec(regions=parse_regions(regions), scheme=scheme, name=name or "lab",  # type: ignore[arg-type]
                       base_port=20000 if base_port is None else base_port)
    spec.validate()
    return spec


compose.add_command(compose_engine.engine)
compose.add_command(compose_engine.images)
