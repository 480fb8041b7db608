"""Terminal tables for the commands that are not about a run: a lab's endpoints and components, a
scheme's read-back checks, replication as Pulsar reports it, compose services, load benchmarks.
Pure: values in, lines out (the ``cli`` modules print them)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any


def endpoints_json(endpoints: Iterable[Any]) -> str:
    return json.dumps({e.region: {"cluster": e.cluster, "service_url": e.service_url, "admin_url": e.admin_url}
                       for e in endpoints}, indent=2)


def endpoint_lines(header: str, endpoints: Iterable[Any]) -> list[str]:
    return [header] + [f"  region {e.region:<8} cluster {e.cluster:<6} service {e.service_url:<28} admin {e.admin_url}"
                       for e in endpoints]


def lab_status_lines(state: Any, rows: Sequence[Any]) -> list[str]:
    lines = [f"lab {state.name!r}: scheme {state.scheme}, phase {state.phase}, isolation {state.isolation}, "
             f"Pulsar {state.pulsar_version}",
             f"  {'component':<16}{'region':<8}{'pid':>8}  {'state':<12}{'listening':<11}{'rss MiB':>8}  ports"]
    for r in rows:
        ports = " ".join(f"{k}={v}" for k, v in r.ports.items())
        lines.append(f"  {r.name:<16}{r.region:<8}{r.pid or '-':>8}  {r.state:<12}{'yes' if r.listening else 'no':<11}"
                     f"{r.rss_mib:>8.0f}  {r.address} {ports}")
    return lines


def lab_bench_lines(figures: Sequence[Any], *, machine: str, isolation: str) -> list[str]:
    return [f"machine: {machine}, isolation {isolation}",
            f"{'scheme':<8}{'regions':>8}{'JVMs':>6}{'ready s':>9}{'RSS MiB':>9}"] + [
        f"{f.scheme:<8}{f.regions:>8}{f.components:>6}{f.ready_seconds:>9.1f}{f.total_rss_mib:>9.0f}" for f in figures]


def check_lines(checks: Iterable[Any]) -> list[str]:
    """A scheme's read-back checks, one line each: ok or FAIL, the region, what was read."""
    return [f"  {'ok  ' if c.ok else 'FAIL'} {f'[{c.region}] ' if c.region else ''}{c.name}: {c.detail}" for c in checks]


def replication_lines(statuses: Iterable[Any], note: str) -> list[str]:
    lines = [f"{'region':<8}{'topic':<40}{'to':<8}{'connected':<11}{'backlog':>9}{'delay s':>9}{'in/s':>9}{'out/s':>9}"]
    for t in statuses:
        name = t.topic.split("/")[-1][:38]
        if not t.links:
            lines.append(f"{t.region:<8}{name:<40}{'-':<8}{'(no replication: local or stretched cluster)'}")
        for link in t.links:
            lines.append(f"{t.region:<8}{name:<40}{link.remote:<8}{'yes' if link.connected else 'NO':<11}"
                         f"{link.backlog:>9}{link.delay_seconds:>9.1f}{link.rate_in:>9.1f}{link.rate_out:>9.1f}")
    return lines + [f"note: {note}"]


def compose_status_lines(lab: Any, rows: Iterable[Any], healthy: bool) -> list[str]:
    return [f"compose lab {lab.project}: scheme {lab.spec.scheme}, {'healthy' if healthy else 'NOT healthy'}"] + [
        f"  {r.service:<16}{r.state:<12}{r.health or '-':<12}{'' if r.state != 'exited' else f'exit {r.exit_code}'}"
        for r in rows]


def load_bench_lines(figures: Sequence[Any], *, header: str) -> list[str]:
    """The publish-and-record benchmark: each run against pulsar-perf (the mean of its runs), pacer error; the
    goals' ratios, and with several rounds each round's beside their medians."""
    from geo_recon.workload.bench import perf_baseline, to_json

    figures = list(figures)
    perf = perf_baseline(figures) or figures[0].achieved_rate  # before and after the native runs
    lines = [header,
             f"{'run':<68}{'round':>6}{'target/s':>10}{'achieved/s':>12}{'vs perf':>9}{'error':>8}{'acked':>10}"
             f"{'received':>10}"]
    for f in figures:
        err = f"{f.rate_error * 100:.2f}%" if f.rate_error is not None else "-"
        target_rate = f"{f.target_rate:.0f}" if f.target_rate else "max"
        lines.append(f"{f.label:<68}{f.round:>6}{target_rate:>10}{f.achieved_rate:>12.0f}"
                     f"{f.achieved_rate / perf * 100:>8.0f}%{err:>8}{f.acked:>10}{f.received:>10}")
    lines.append("received counts this region's consumer receipts (every acknowledged message when received == acked;"
                 " unthrottled runs: consumed once the producers were done).")
    report = to_json(figures)
    ratios, by_round = report["ratios"], report["ratios_by_round"]

    def of_rounds(name: str) -> str:
        each = [f"{r[name] * 100:.0f}%" for r in by_round if r[name] is not None]
        return "" if len(each) < 2 else f" (the median of {len(each)} rounds: {', '.join(each)})"

    said = [(n, words) for n, words in (
        ("python_client_vs_perf", "the Python client alone reaches {} of pulsar-perf"),
        ("python_recorder_vs_python_client", "geo-recon's recording worker reaches {} of the Python client alone "
                                             "(its callback thread's Python state kept, as the worker's)"),
        ("python_client_plain_vs_python_client", "the Python client as commonly used (a thread state made per "
                                                 "callback) reaches {} of the one keeping it"),
        ("python_recorder_vs_python_client_same_messages", "the recording worker reaches {} of the Python client "
                                                           "alone sending the recorder's messages (its identity "
                                                           "property and a key)"),
        ("python_recorder_processes_vs_python_client_processes", "in as many processes, the recording worker "
                                                                 "reaches {} of the Python client alone"),
        ("native_recorder_vs_perf", "geo-recon native (go, jsonl): {} of pulsar-perf right before and after it"),
        ("native_recorder_arrow_vs_perf", "geo-recon native (go, arrow): {} of pulsar-perf right before and after it"),
    ) if ratios.get(n) is not None]
    lines += [words.format(f"{ratios[n] * 100:.0f}%") + of_rounds(n) + "." for n, words in said]
    return lines
