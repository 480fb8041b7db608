"""`geo-recon bench load`: how fast one region can publish while recording everything,
next to Pulsar's own pulsar-perf on the same cluster, and how exactly fixed rates are held."""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from geo_recon.deploy.pulsar_tools import tool_command
from geo_recon.deployment import Deployment
from geo_recon.errors import GeoReconError
from geo_recon.workload import runner
from geo_recon.workload.spec import WorkloadSpec

PERF_LABEL = "pulsar-perf produce (batching)"
PERF_AGAIN_LABEL = "pulsar-perf produce (batching), again after the native"
WARMUP_LABEL = "pulsar-perf warm-up (the broker's JIT; not a baseline)"
WARMUP_MIN_S = 20.0
PERF_RE = re.compile(r"Aggregated throughput stats --- (\d+) records sent --- ([\d.]+) msg/s")


@dataclass(frozen=True)
class LoadFigure:
    label: str
    target_rate: float | None
    achieved_rate: float
    acked: int
    received: int
    drain_seconds: float | None
    round: int = 1  #: which repetition of the compared runs (see run): a round's ratios use its own figures

    @property
    def rate_error(self) -> float | None:
        return None if not self.target_rate else abs(self.achieved_rate - self.target_rate) / self.target_rate


def geo_recon_rate(deployment: Deployment, region: str, scheme: str, *, rate: float, seconds: float, size: int,
                   batching: bool, namespaces: dict[str, str], clock_host: str, label: str,
                   driver: str = "python", history_format: str = "jsonl", processes: int = 1) -> LoadFigure:
    """One region's recording producers. Unthrottled, their consumers receive only once they are done
    (subscribed from the start, so every acknowledged message is still received and counted): the
    producers get the machine as pulsar-perf and the bare client do. At a fixed rate the consumers run
    alongside, as in a real run."""
    one = Deployment((deployment.region(region),), source=deployment.source, scheme=deployment.scheme)
    unthrottled = rate >= 1e6
    workload = WorkloadSpec(rate=rate, duration_s=seconds, message_size=size, batching=batching,
                            max_outstanding=1000, reader_drain=False, drain_timeout_s=240 if unthrottled else 60,
                            producers=processes, processes=processes, consume_after_producers=unthrottled,
                            batch_delay_ms=1.0,  # pulsar-perf's, so the two compare like with like
                            driver=driver, history_format=history_format)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="geo-recon-bench-") as tmp:
        result = runner.run_load(one, scheme, workload, Path(tmp), namespaces=namespaces, clock_host=clock_host)
    summary = result["summaries"].get(region)
    if not summary:
        raise GeoReconError(f"the bench worker in region {region} died: {result['fates'][region]}")
    return LoadFigure(label, None if unthrottled else rate, sum(summary["achieved_rates"].values()),
                      summary["acked"], summary["received"], result["drain"].get("waited_s"))


def pulsar_perf_rate(service_url: str, topic: str, *, seconds: float, size: int, netns: str | None) -> LoadFigure:
    argv = tool_command("org.apache.pulsar.testclient.PulsarPerfTestTool", "produce", "-u", service_url,
                        "-r", "10000000", "-s", str(size), "-time", str(int(seconds)), "-o", "1000", topic,
                        netns=netns, heap="1g")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    return LoadFigure(PERF_LABEL, None, perf_rate(proc.stdout + proc.stderr, seconds),
                      perf_records(proc.stdout + proc.stderr, proc.returncode), 0, None)


def perf_records(output: str, returncode: int) -> int:
    match = PERF_RE.search(output)
    if not match:
        raise GeoReconError(f"pulsar-perf printed no throughput (exit {returncode}): {output[-400:]}")
    return int(match.group(1))


def perf_rate(output: str, seconds: float) -> float:
    """Acknowledged messages over the production window, as the recorders' rates are counted.

    pulsar-perf's own "Aggregated throughput" divides by the time since its start, client and producer
    creation included, and stopping: measured 20.1 s for a 10 s run on the 2-core lab, which halved its
    figure. It sends for exactly ``-time`` seconds after its producers exist (then prints DONE), and
    counts a message when it is acknowledged, so records / seconds is its rate over its sending window."""
    return round(perf_records(output, 0) / seconds, 1)


#: the bare client's rows: payload only (the reference of the ratios), the recorder's own messages, and the
#: client as most applications run it (no kept thread state: context, no ratio is stated against it)
RAW_LABEL = "python client alone (payload only, no recording)"
RAW_SAME_LABEL = "python client alone (the recorder's messages, no recording)"
RAW_PLAIN_LABEL = "python client alone, as commonly used (payload only, thread state made per callback)"


def python_client_rate(service_url: str, topic: str, *, seconds: float, size: int, netns: str | None,
                       identity: bool = False, plain: bool = False, processes: int = 1) -> LoadFigure:
    """The pulsar-client package alone, nothing recorded: the ceiling of any Python load generator. It sends
    as the recorder does (the client's C++ binding, its callback thread's Python state kept: see raw_client);
    with ``identity`` it sends the recorder's very messages, else the bare payload; ``plain`` leaves out the
    kept thread state (the client as most applications run it). ``processes`` clients, each its own process,
    send to the topic at once (as the recorder's processes do); the rate is their sum."""
    import json
    import sys

    if processes > 1 and (identity or plain):
        raise ValueError("several bare-client processes send the payload only (the reference's shape)")
    argv = [sys.executable, "-m", "geo_recon.workload.raw_client", service_url, topic, str(seconds), str(size),
            *(["--identity"] if identity else []), *(["--plain"] if plain else [])]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    rate, acked = 0.0, 0
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=seconds + 120)
            try:
                out = json.loads(stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                raise GeoReconError(f"the raw Python client run printed no figures (exit {proc.returncode}): "
                                    f"{(stderr or stdout)[-400:]}") from None
            rate, acked = rate + float(out["rate"]), acked + int(out["acked"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    label = RAW_PLAIN_LABEL if plain else RAW_SAME_LABEL if identity else RAW_LABEL
    if processes > 1:
        label = raw_processes_label(processes)
    return LoadFigure(label, None, rate, acked, 0, None)


def raw_processes_label(processes: int) -> str:
    return f"python client alone in {processes} processes (payload only, no recording)"


def run(deployment: Deployment, scheme: str, *, region: str, seconds: float, size: int, fixed_rates: list[float],
        namespaces: dict[str, str], clock_host: str, progress: Callable[[str], None],
        processes: int = 2, native: bool = True, rounds: int = 1) -> list[LoadFigure]:
    """Every figure from one run, one after the other on the same lab: the ratios compare like with like
    (100-byte payloads, batching with a 1 ms delay, 1000 sends pending, one producer process, unthrottled).

    With ``rounds`` > 1 the compared runs (pulsar-perf around each native run, the bare client and the Python
    recorders, in one process and in ``processes``) are repeated, interleaved, that many times; the runs that
    are context only (the client as commonly used, batching off, fixed rates) run once, in round 1."""
    ep = deployment.region(region)
    stamp = int(time.time())
    netns = namespaces.get(region)
    # A fresh broker runs interpreted code until its JIT has compiled the publish path: on the 2-core lab
    # the first pulsar-perf run on a new lab measured 107k to 155k/s and later ones 167k to 262k/s. So the
    # broker is warmed first (a pulsar-perf run that is no baseline), and pulsar-perf runs before and after
    # each native run, which is compared with the mean of its two neighbours: what drift remains (more
    # warming, other load on the machine) falls on both sides alike, and on both history formats alike.
    warm_s = max(seconds, WARMUP_MIN_S)
    progress(f"warming the broker up: pulsar-perf produce for {warm_s:.0f}s (not a baseline) ...")
    warm = pulsar_perf_rate(ep.service_url, f"persistent://geo/recon/bench-warmup-{stamp}", seconds=warm_s,
                            size=size, netns=netns)
    figures = [LoadFigure(WARMUP_LABEL, None, warm.achieved_rate, warm.acked, 0, None)]
    for number in range(1, rounds + 1):
        said = f"round {number} of {rounds}: " if rounds > 1 else ""
        figures += _round(deployment, scheme, ep.service_url, region=region, seconds=seconds, size=size,
                          namespaces=namespaces, clock_host=clock_host, native=native, number=number,
                          stamp=f"{stamp}-{number}", progress=lambda m, said=said: progress(said + m),
                          context=number == 1, processes=processes, fixed_rates=fixed_rates)
    return figures


def _round(deployment: Deployment, scheme: str, service_url: str, *, region: str, seconds: float, size: int,
           namespaces: dict[str, str], clock_host: str, native: bool, number: int, stamp: str,
           progress: Callable[[str], None], context: bool, processes: int,
           fixed_rates: list[float]) -> list[LoadFigure]:
    """One round's figures, in order; ``context`` adds the runs no goal is stated against."""
    figures: list[LoadFigure] = []
    netns = namespaces.get(region)
    common = dict(rate=1e7, seconds=seconds, size=size, namespaces=namespaces, clock_host=clock_host)

    def add(figure: LoadFigure) -> None:
        figures.append(replace(figure, round=number))

    progress(f"pulsar-perf produce for {seconds:.0f}s ...")
    add(pulsar_perf_rate(service_url, f"persistent://geo/recon/bench-perf-{stamp}", seconds=seconds, size=size,
                         netns=netns))
    for history_format in ("jsonl", "arrow") if native else ():
        progress(f"geo-recon native worker (go, {history_format}), unthrottled, batching on, {seconds:.0f}s ...")
        add(geo_recon_rate(deployment, region, scheme, batching=True, driver="go", history_format=history_format,
                           label=f"geo-recon native max (go, {history_format}, batching on)", **common))
        progress(f"pulsar-perf produce again for {seconds:.0f}s ...")
        again = pulsar_perf_rate(service_url, f"persistent://geo/recon/bench-perf-{history_format}-{stamp}",
                                 seconds=seconds, size=size, netns=netns)
        add(LoadFigure(f"{PERF_AGAIN_LABEL} {history_format} run", None, again.achieved_rate, again.acked, 0, None))
    clients = ((False, True), (False, False), (True, False)) if context else ((False, False), (True, False))
    for identity, plain in clients:
        what = "the recorder's messages" if identity else "payload only, as commonly used" if plain else "payload only"
        progress(f"the Python client alone ({what}, batching, nothing recorded) for {seconds:.0f}s ...")
        add(python_client_rate(service_url, f"persistent://geo/recon/bench-raw{int(identity)}{int(plain)}-{stamp}",
                               seconds=seconds, size=size, netns=netns, identity=identity, plain=plain))
    for batching in (True, False) if context else (True,):
        progress(f"geo-recon worker, unthrottled, batching {'on' if batching else 'off'}, {seconds:.0f}s ...")
        add(geo_recon_rate(deployment, region, scheme, batching=batching,
                           label=f"geo-recon max (batching {'on' if batching else 'off'})", **common))
    progress(f"geo-recon worker writing Arrow, unthrottled, batching on, {seconds:.0f}s ...")
    add(geo_recon_rate(deployment, region, scheme, batching=True, history_format="arrow",
                       label="geo-recon arrow max (batching on)", **common))
    if processes > 1:
        progress(f"the Python client alone in {processes} processes (payload only, nothing recorded) for "
                 f"{seconds:.0f}s ...")
        add(python_client_rate(service_url, f"persistent://geo/recon/bench-raw-processes-{stamp}", seconds=seconds,
                               size=size, netns=netns, processes=processes))
        progress(f"geo-recon worker in {processes} processes, unthrottled, batching on, {seconds:.0f}s ...")
        add(geo_recon_rate(deployment, region, scheme, batching=True, processes=processes,
                           label=f"geo-recon {processes} processes max (batching on)", **common))
    for rate in fixed_rates if context else ():
        progress(f"geo-recon worker at {rate:.0f} msg/s for {seconds:.0f}s ...")
        add(geo_recon_rate(deployment, region, scheme, rate=rate, seconds=seconds, size=size, batching=True,
                           namespaces=namespaces, clock_host=clock_host,
                           label=f"geo-recon fixed {rate:.0f}/s (batching)"))
    return figures


def is_perf(figure: LoadFigure) -> bool:
    return figure.label == PERF_LABEL or figure.label.startswith(PERF_AGAIN_LABEL)


def perf_baseline(figures: list[LoadFigure]) -> float:
    """pulsar-perf's rate over the whole run: the mean of its runs (the warm-up is none of them)."""
    rates = [f.achieved_rate for f in figures if is_perf(f)]
    return round(sum(rates) / len(rates), 1) if rates else 0.0


def perf_around(figures: list[LoadFigure], figure: LoadFigure) -> float:
    """pulsar-perf's rate beside one figure: the mean of the pulsar-perf runs right before and after it."""
    at = figures.index(figure)
    before = next((f for f in reversed(figures[:at]) if is_perf(f)), None)
    after = next((f for f in figures[at + 1:] if is_perf(f)), None)
    return perf_baseline([f for f in (before, after) if f is not None])


def to_json(figures: list[LoadFigure], **context: object) -> dict[str, object]:
    """The figures and the ratios the goals are stated in, measured in the same run. With several rounds
    ``ratios`` are each ratio's median over the rounds (a round's ratio uses that round's figures alone),
    ``ratios_by_round`` each round's; ``perf_baseline`` is the mean of every pulsar-perf run."""
    rounds = sorted({f.round for f in figures})
    by_round = [ratios(round_figures(figures, number)) for number in rounds]
    medians = {name: _median([r[name] for r in by_round]) for name in by_round[0]} if by_round else {}
    return {**context, "perf_baseline": perf_baseline(figures), "rounds": len(rounds),
            "figures": [{"label": f.label, "round": f.round, "target_rate": f.target_rate,
                         "achieved_rate": f.achieved_rate, "acked": f.acked, "received": f.received,
                         "rate_error": f.rate_error} for f in figures],
            "ratios": medians, "ratios_by_round": by_round}


def round_figures(figures: list[LoadFigure], number: int) -> list[LoadFigure]:
    return [f for f in figures if f.round == number]


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def ratios(figures: list[LoadFigure]) -> dict[str, float | None]:
    """The ratios of one round's figures (the warm-up is none of them)."""
    perf = perf_baseline(figures)
    raw = next((f for f in figures if f.label == RAW_LABEL), None)
    raw_same = next((f for f in figures if f.label == RAW_SAME_LABEL), None)
    raw_plain = next((f for f in figures if f.label == RAW_PLAIN_LABEL), None)
    best = max((f for f in figures if f.label.startswith("geo-recon max")), key=lambda f: f.achieved_rate, default=None)
    native = next((f for f in figures if f.label.startswith("geo-recon native") and "jsonl" in f.label), None)
    native_arrow = next((f for f in figures if f.label.startswith("geo-recon native") and "arrow" in f.label), None)
    arrow = next((f for f in figures if f.label.startswith("geo-recon arrow")), None)
    jsonl = next((f for f in figures if f.label == "geo-recon max (batching on)"), None)
    several = next((f for f in figures if " processes max" in f.label), None)
    raw_several = next((f for f in figures if f.label.startswith("python client alone in ")), None)

    def ratio(a: LoadFigure | None, b: LoadFigure | float | None) -> float | None:
        base = b.achieved_rate if isinstance(b, LoadFigure) else b
        return None if a is None or not base else round(a.achieved_rate / base, 4)

    return {"python_client_vs_perf": ratio(raw, perf), "python_recorder_vs_python_client": ratio(best, raw),
            # the client as most applications run it, against the reference (context only)
            "python_client_plain_vs_python_client": ratio(raw_plain, raw),
            # the same, against the bare client sending the recorder's messages (what recording costs)
            "python_recorder_vs_python_client_same_messages": ratio(best, raw_same),
            "python_recorder_arrow_vs_python_client_same_messages": ratio(arrow, raw_same),
            # each against pulsar-perf right before and after it (see run)
            "native_recorder_vs_perf": ratio(native, native and perf_around(figures, native)),
            "native_recorder_arrow_vs_perf": ratio(native_arrow, native_arrow and perf_around(figures, native_arrow)),
            "python_recorder_processes_vs_python_client": ratio(several, raw),
            # the recorder's N processes against the bare client's N processes, each sending to one topic at once
            "python_recorder_processes_vs_python_client_processes": ratio(several, raw_several),
            # the same worker and settings, its history written as Arrow instead of JSONL
            "python_recorder_arrow_vs_python_client": ratio(arrow, raw),
            "python_recorder_arrow_vs_jsonl": ratio(arrow, jsonl)}
