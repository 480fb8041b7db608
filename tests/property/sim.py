"""A small simulated replicating log that writes geo-recon histories with anomalies injected on purpose.

Each region has a log. Producers append their acknowledged sends to their own
region's log; every other region gets a replicated copy after a lag (per
producer order is kept). Consumers read their region's log in order; an
end-of-run Reader may drain it. Anomalies are injected on distinct messages,
so the expected count of each is simply the number injected (``truth``).

Also produced on purpose: unknown outcomes (info, and invokes that never
complete) that may or may not be stored, failed sends that are stored anyway,
faults (region kills make that region's sends fail), clock offsets, history
lines spread over several files, in shuffled order.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

T0 = 1_700_000_000_000_000_000
MS = 1_000_000

SUBSCRIPTIONS = (None, "Exclusive", "Failover", "Key_Shared", "KeyShared", "Shared")


@dataclass
class SimConfig:
    seed: int
    regions: int = 2
    producers_per_region: int = 2
    messages: int = 20  # per producer
    keys: int = 3
    lost: int = 0
    skipped: int = 0
    dups: int = 0
    redeliveries: int = 0
    reorders: int = 0
    phantoms: int = 0
    p_fail: float = 0.05
    p_info: float = 0.05
    p_pending: float = 0.03
    readers: bool = False
    two_consumers: bool = False
    faults: int = 0
    offsets: bool = False
    files_per_process: int = 1
    shuffle: bool = False


@dataclass
class Msg:
    producer: str
    seq: int
    origin: str
    key: str
    invoke: int
    outcome: str  # ok, fail, info, pending
    done: int | None
    stored: bool


@dataclass
class Sim:
    regions: list[str]
    events: list[dict[str, Any]]  # in true time (no clock offsets)
    written: dict[str, list[dict[str, Any]]]  # file name -> lines as written
    run: dict[str, Any]
    truth: dict[str, Counter[str]]
    messages: list[Msg] = field(default_factory=list)

    def write(self, run_dir: Path) -> None:
        (run_dir / "history").mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps(self.run))
        for name, lines in self.written.items():
            path = run_dir / "history" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(e) + "\n" for e in lines))


def _ordering(sub: str | None) -> str:
    if sub is None or sub in ("Exclusive", "Failover"):
        return "ordered"
    return "key" if sub in ("Key_Shared", "KeyShared") else "none"


def simulate(cfg: SimConfig) -> Sim:
    rng = random.Random(cfg.seed)
    regions = [chr(ord("a") + i) for i in range(cfg.regions)]
    truth: dict[str, Counter[str]] = {r: Counter() for r in regions}
    events: list[dict[str, Any]] = []

    # faults first: kills of a whole region make its sends fail or end unknown
    horizon = cfg.messages * cfg.producers_per_region * cfg.regions * 3 * MS + 50 * MS
    kills: list[tuple[str, int, int]] = []
    for i in range(cfg.faults):
        start = T0 + rng.randrange(0, horizon)
        stop = start + rng.randrange(1, 200) * MS
        kind = rng.choice(["kill-region", "kill-region", "partition", "broker"])
        if kind == "kill-region" or cfg.regions == 1:
            target = rng.choice(regions)
            kills.append((target, start, stop))
            fault, extra = rng.choice(["kill", "stop", "pause"]), {}
        elif kind == "partition":
            a, b = rng.sample(regions, 2)
            target, fault, extra = f"{a}|{b}", "partition", {"regions": [a, b]}
        else:
            target, fault = f"{rng.choice(regions)}/broker", "kill"
            extra = {"region_loss": True} if rng.random() < 0.3 else {}
        events.append({"type": "fault", "time": start, "phase": "start", "fault": fault, "target": target,
                       "id": f"f{i}", **extra, "process": "nemesis"})
        if rng.random() < 0.9:
            events.append({"type": "fault", "time": stop, "phase": "stop", "fault": fault, "target": target,
                           "id": f"f{i}", "process": "nemesis"})

    def killed(region: str, t: int) -> bool:
        return any(r == region and s <= t <= e for r, s, e in kills)

    # sends, interleaved across producers
    producers = [(r, f"{r}/p{i}") for r in regions for i in range(cfg.producers_per_region)]
    next_seq = {p: 0 for _, p in producers}
    msgs: list[Msg] = []
    t = T0
    pending = [(r, p) for r, p in producers for _ in range(cfg.messages)]
    rng.shuffle(pending)
    for region, producer in pending:
        t += rng.randrange(1, 3 * MS)
        seq = next_seq[producer]
        next_seq[producer] += 1
        key = f"k{rng.randrange(cfg.keys)}"
        roll = rng.random()
        if killed(region, t):
            outcome = rng.choice(["fail", "info"])
        elif roll < cfg.p_fail:
            outcome = "fail"
        elif roll < cfg.p_fail + cfg.p_info:
            outcome = "info"
        elif roll < cfg.p_fail + cfg.p_info + cfg.p_pending:
            outcome = "pending"
        else:
            outcome = "ok"
        stored = outcome == "ok" or (outcome in ("info", "pending") and rng.random() < 0.5) or (
            outcome == "fail" and rng.random() < 0.1)
        done = None if outcome == "pending" else t + rng.randrange(1, 20) * MS
        msgs.append(Msg(producer, seq, region, key, t, outcome, done, stored))
        base = {"f": "send", "region": region, "process": producer, "producer": producer, "seq": seq}
        events.append({"type": "invoke", "time": t, **base, "key": key, "topic": "persistent://geo/recon/t0"})
        if outcome != "pending":
            line = {"type": outcome, "time": done, **base}
            if outcome == "ok":
                line["msg_id"] = f"{region}:{seq}:{producer}"
            events.append(line)

    # region logs: (available time, msg index, msg_id)
    logs: dict[str, list[list[Any]]] = {}
    for region in regions:
        entries = []
        last_by_producer: dict[str, int] = {}
        for i, m in enumerate(msgs):
            if not m.stored:
                continue
            ready = (m.done if m.done is not None else m.invoke + 5 * MS)
            if region != m.origin:
                ready += rng.randrange(5, 100) * MS
            ready = max(ready, last_by_producer.get(m.producer, 0) + 1)
            last_by_producer[m.producer] = ready
            entries.append([ready, i, f"{region}-{i}"])
        entries.sort(key=lambda e: (e[0], e[1]))
        logs[region] = entries

    acked = [i for i, m in enumerate(msgs) if m.outcome == "ok"]
    subscription = {r: rng.choice(SUBSCRIPTIONS) for r in regions}
    consumer_split = {r: (rng.randrange(0, len(logs[r]) + 1) if cfg.two_consumers else None) for r in regions}
    plan: dict[str, dict[str, Any]] = {r: {"lost": set(), "skipped": set(), "dup": set(), "redeliver": set(),
                                           "swap": [], "phantom": 0} for r in regions}
    for region in regions:
        used: set[int] = set()
        log = logs[region]
        position = {e[1]: k for k, e in enumerate(log)}
        split = consumer_split[region]

        def free(candidates: list[int], used: set[int] = used) -> int | None:
            choices = [i for i in candidates if i not in used]
            return rng.choice(choices) if choices else None

        in_log = [i for i in acked if i in position]
        for kind, count in (("lost", cfg.lost), ("skipped", cfg.skipped), ("dup", cfg.dups),
                            ("redeliver", cfg.redeliveries)):
            for _ in range(count):
                i = free(in_log)
                if i is None:
                    break
                used.add(i)
                plan[region][kind].add(i)
        for _ in range(cfg.reorders):
            # swap an acked entry with the next entry of the same producer in this log (same consumer)
            options = []
            for k, e in enumerate(log):
                i = e[1]
                if i in used or msgs[i].outcome != "ok":
                    continue
                nxt = next((k2 for k2 in range(k + 1, len(log)) if msgs[log[k2][1]].producer == msgs[i].producer),
                           None)
                if nxt is None:
                    continue
                j = log[nxt][1]
                if j in used or msgs[j].outcome != "ok":
                    continue
                if split is not None and (k < split) != (nxt < split):
                    continue
                options.append((k, nxt))
            if not options:
                break
            k, nxt = rng.choice(options)
            i, j = log[k][1], log[nxt][1]
            used.update((i, j))
            plan[region]["swap"].append((k, nxt))
            ordering = _ordering(subscription[region])
            if ordering == "ordered" or (ordering == "key" and msgs[i].key == msgs[j].key):
                truth[region]["reordered"] += 1
        for k, nxt in plan[region]["swap"]:
            log[k], log[nxt] = log[nxt], log[k]
            log[k][0], log[nxt][0] = log[nxt][0], log[k][0]  # keep availability times increasing
        plan[region]["phantom"] = cfg.phantoms
        truth[region]["lost"] += len(plan[region]["lost"])
        for _ in plan[region]["skipped"]:
            truth[region]["stored_not_consumed" if cfg.readers else "lost"] += 1
        truth[region]["duplicates"] += len(plan[region]["dup"])
        truth[region]["redelivered"] += len(plan[region]["redeliver"])
        truth[region]["unexpected"] += cfg.phantoms
        for k, e in enumerate(log):  # the consumer is fixed by the position before lost entries go
            e.append(f"{region}/c1" if split is not None and k >= split else f"{region}/c0")
        logs[region] = [e for e in log if e[1] not in plan[region]["lost"]]
        # stored sends that did not end ok
        for e in logs[region]:
            outcome = msgs[e[1]].outcome
            if outcome == "fail":
                truth[region]["unexpected"] += 1
            elif outcome in ("info", "pending"):
                truth[region]["recovered"] += 1

    # consumers (and the reader) read the logs
    end = max(e["time"] for e in events) + 500 * MS
    for region in regions:
        log = logs[region]
        sub = subscription[region]
        stream: list[tuple[str, list[Any], bool]] = []  # (process, entry, redelivery?)
        extra: list[tuple[int, tuple[str, list[Any], bool]]] = []  # copies and redeliveries, placed later
        for entry in log:
            i, process = entry[1], entry[3]
            if i in plan[region]["skipped"]:
                continue
            stream.append((process, entry, False))
            if i in plan[region]["dup"]:
                extra.append((len(stream), (process, [entry[0], i, f"{entry[2]}-copy", process], False)))
            if i in plan[region]["redeliver"]:
                extra.append((len(stream), (process, entry, True)))
        for after, item in sorted(extra, key=lambda x: -x[0]):
            stream.insert(rng.randrange(after, len(stream) + 1), item)
        for n in range(plan[region]["phantom"]):
            fake = Msg(rng.choice([p for _, p in producers] + ["z/ghost"]), 10_000 + n, "?", "k0", 0, "none",
                       None, True)
            msgs.append(fake)
            at = rng.randrange(0, len(stream) + 1)
            stream.insert(at, (f"{region}/c0", [stream[at - 1][1][0] if at else T0, len(msgs) - 1,
                                               f"{region}-ghost-{n}", f"{region}/c0"], False))
        clock: dict[str, int] = {}
        for process, entry, _ in stream:
            ready, i, msg_id = entry[:3]
            at = max(clock.get(process, 0) + 1000, ready + rng.randrange(100_000, 2 * MS))
            clock[process] = at
            m = msgs[i]
            line = {"type": "recv", "time": at, "region": region, "process": process, "producer": m.producer,
                    "seq": m.seq, "msg_id": msg_id, "redelivery": 0}
            if sub is not None:
                line["subscription_type"] = sub
            events.append(line)
        if cfg.readers:
            at = end
            for entry in log:
                copies = [entry[2]] + ([f"{entry[2]}-copy"] if entry[1] in plan[region]["dup"] else [])
                for msg_id in copies:
                    at += 1000
                    m = msgs[entry[1]]
                    events.append({"type": "recv", "time": at, "region": region, "process": f"{region}/reader",
                                   "producer": m.producer, "seq": m.seq, "msg_id": msg_id, "via": "reader"})

    # clock offsets: written time = true time - offset; run.json says to add the offset back
    processes = sorted({e["process"] for e in events})
    offsets = {p: rng.randrange(-50 * MS, 50 * MS) for p in processes} if cfg.offsets else {}
    by_process: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        line = dict(e)
        line["time"] = e["time"] - offsets.get(e["process"], 0)
        by_process[e["process"]].append(line)
    written: dict[str, list[dict[str, Any]]] = {}
    for process, lines in sorted(by_process.items()):
        stem = process.replace("/", "-")
        parts = max(1, min(cfg.files_per_process, len(lines)))
        cuts = sorted(rng.sample(range(1, len(lines)), parts - 1)) if parts > 1 else []
        for n, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(lines)], strict=True)):
            chunk = lines[a:b]
            if cfg.shuffle:
                rng.shuffle(chunk)
            name = f"{stem}.jsonl" if parts == 1 else f"d{rng.randrange(3)}/{rng.randrange(10**6):06d}-{stem}-{n}.jsonl"
            written[name] = chunk
    if cfg.shuffle and len(written) > 1:
        # also mix lines of different processes within files
        names = list(written)
        pool = [line for name in names for line in written[name]]
        rng.shuffle(pool)
        sizes = [len(written[n]) for n in names]
        written, start = {}, 0
        for name, size in zip(names, sizes, strict=True):
            written[name] = pool[start:start + size]
            start += size
    run = {"regions": regions, "seed": cfg.seed, "scheme": "sim"}
    if offsets:
        run["clock_offsets_ns"] = offsets
    return Sim(regions=regions, events=events, written=written, run=run, truth=truth, messages=msgs)
