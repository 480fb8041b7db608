"""``geo-recon bench check``: how fast the checker is, on a synthetic history of a chosen size.

Steps, each timed:

1. generate a run directory: ``messages`` acknowledged sends from ``producers``
   producers spread over ``regions`` regions (plus a few failed and unknown
   sends), every message received once in every region by that region's
   consumer, a few anomalies of each kind injected per region, two faults;
   written as JSONL (one file per producer, one per consumer, one for faults);
2. ingest the JSONL (the checker's reader; lines per second);
3. write the columnar copy;
4. check from the columnar copy in a fresh process: wall time, receipts per
   second, peak RSS of that process (``VmHWM``);
5. convert the history to Arrow as the workers write it (``*.arrows``), then
   check it and the JSONL, each in a fresh process from the history files
   (no columnar copy): time, peak RSS of the checking process and the largest
   of its parsing workers' (``ru_maxrss`` of its children), the largest sum
   of both at one time (sampled), facts equal to the columnar check's;
6. the naive baselines in fresh processes: DuckDB SQL (group-by plus join) over
   the same columnar files, and over the JSONL (DuckDB's own JSON reader),
   computing expected, lost, duplicates, redelivered, unexpected, recovered and
   lag percentiles per region; their time and peak RSS, whether their counts
   agree with the checker's, and the ratios of the checks to them.

The injected anomalies are printed next to what the checker found.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo_recon.errors import ConfigError, GeoReconError

T0 = 1_700_000_000_000_000_000
GAP_NS = 100_000  # one send every 100 us overall
CHUNK = 1_000_000
INJECT = {"lost": 2, "duplicates": 2, "redelivered": 2, "reordered": 2, "unexpected": 1}


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings."""
    return pc.binary_join_element_wise(*[p if isinstance(p, pa.Array) else pa.scalar(p) for p in parts], "")


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _write_lines(fh: Any, lines: pa.Array) -> None:
    """Write a string array's values back to back (each value already ends with a newline)."""
    lines = lines.cast(pa.string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    fh.write(memoryview(data)[int(offsets[0]):int(offsets[-1])])


def _interleave(a: pa.Array, b: pa.Array) -> pa.Array:
    n = len(a)
    both = pa.concat_arrays([a, b])
    order = np.empty(2 * n, dtype=np.int64)
    order[0::2] = np.arange(n)
    order[1::2] = np.arange(n, 2 * n)
    return both.take(pa.array(order))


def generate(run_dir: Path, *, messages: int, regions: int, producers: int, seed: int) -> dict[str, Any]:
    """Write a synthetic run; return what was injected."""
    rng = np.random.default_rng(seed)
    names = [chr(ord("a") + i) for i in range(regions)]
    hist = run_dir / "history"
    hist.mkdir(parents=True, exist_ok=True)
    # sends: g = 0..total-1 round-robin over producers; about 0.1% fail or end unknown
    extra = max(2, messages // 1000)
    total = messages + extra
    not_ok = np.sort(rng.choice(total, size=extra, replace=False))
    outcome = np.full(total, 1, dtype=np.int8)  # 1 ok, 2 fail, 3 info
    outcome[not_ok] = rng.choice([2, 3], size=extra)
    g = np.arange(total, dtype=np.int64)
    producer = g % producers
    seq = g // producers
    invoke = T0 + g * GAP_NS + rng.integers(0, GAP_NS // 2, size=total)
    done = invoke + (rng.lognormal(np.log(2e6), 0.5, size=total)).astype(np.int64)
    origin = producer % regions
    p_names = [f"{names[p % regions]}/p{p}" for p in range(producers)]
    stored = (outcome == 1) | ((outcome == 3) & (g % 2 == 0))

    for p in range(producers):
        rows = np.flatnonzero(producer == p)
        region = names[p % regions]
        with open(hist / f"{p_names[p].replace('/', '-')}.jsonl", "wb") as fh:
            for a in range(0, len(rows), CHUNK):
                r = rows[a:a + CHUNK]
                s_txt = _text(seq[r])
                inv = _join('{"type":"invoke","f":"send","time":', _text(invoke[r]), ',"region":"', region,
                            '","process":"', p_names[p], '","producer":"', p_names[p], '","seq":', s_txt,
                            ',"key":"k', _text(seq[r] % 16), '","topic":"persistent://geo/recon/t0"}\n')
                kinds = pa.array(np.array(["ok", "fail", "info"])[outcome[r] - 1])
                comp = _join('{"type":"', kinds, '","f":"send","time":', _text(done[r]), ',"region":"', region,
                             '","process":"', p_names[p], '","producer":"', p_names[p], '","seq":', s_txt,
                             ',"msg_id":"', _text(origin[r] + 1), ":", _text(g[r]), ':-1:0"}\n')
                _write_lines(fh, _interleave(inv, comp))

    injected: dict[str, dict[str, int]] = {}
    for ri, region in enumerate(names):
        rows = np.flatnonzero(stored)
        lag = np.where(origin[rows] == ri, rng.lognormal(np.log(3e6), 0.3, size=len(rows)),
                       rng.lognormal(np.log(40e6), 0.4, size=len(rows))).astype(np.int64)
        ready = done[rows] + lag
        # keep each producer's receipts in seq order, as a consumer of one topic partition sees them
        by_p = np.lexsort((seq[rows], producer[rows]))
        rp = ready[by_p]
        bounds = np.flatnonzero(np.r_[True, producer[rows][by_p][1:] != producer[rows][by_p][:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            rp[a:b] = np.maximum.accumulate(rp[a:b])
        ready[by_p] = rp
        order = np.argsort(ready, kind="stable")
        msg = rows[order]
        at = ready[order]
        # msg_id "<ledger>:<entry>:-1:0": a ledger per region, the entry is the send's number
        events = {"msg": msg, "at": at, "ledger": np.full(len(msg), 100 + ri, dtype=np.int64), "entry": g[msg]}
        # anomalies, on distinct acked messages away from the ends
        middle = msg[len(msg) // 10: -len(msg) // 10 or None]
        candidates = middle[outcome[middle] == 1]
        pick = rng.choice(candidates, size=min(len(candidates), sum(INJECT.values()) * 2), replace=False)
        cut = np.cumsum([0, INJECT["lost"], INJECT["duplicates"], INJECT["redelivered"], INJECT["reordered"]])
        lost, dups, redeliver, to_swap = (pick[a:b] for a, b in zip(cut[:-1], cut[1:], strict=True))
        keep = ~np.isin(events["msg"], lost)
        ev = {k: v[keep] for k, v in events.items()}
        # reorder: swap a message with the next receipt of the same producer
        reordered = 0
        for m in to_swap:
            i = int(np.flatnonzero(ev["msg"] == m)[0])
            same = np.flatnonzero(producer[ev["msg"][i + 1:i + 1 + 4 * producers]] == producer[m])
            if not len(same):
                continue
            j = i + 1 + int(same[0])
            if outcome[ev["msg"][j]] != 1 or np.isin(ev["msg"][j], pick):
                continue
            for k in ("msg", "ledger", "entry"):
                ev[k][i], ev[k][j] = ev[k][j], ev[k][i]
            reordered += 1
        # duplicates (a second msg_id) and redeliveries (same msg_id) arrive a little later
        add_msg, add_ledger, add_entry, add_at = [], [], [], []
        for m in dups:
            i = int(np.flatnonzero(ev["msg"] == m)[0])
            add_msg.append(m)
            add_ledger.append(ev["ledger"][i] + 1000)
            add_entry.append(ev["entry"][i])
            add_at.append(ev["at"][i] + 1_000_000)
        for m in redeliver:
            i = int(np.flatnonzero(ev["msg"] == m)[0])
            add_msg.append(m)
            add_ledger.append(ev["ledger"][i])
            add_entry.append(ev["entry"][i])
            add_at.append(ev["at"][i] + 2_000_000)
        phantom = INJECT["unexpected"]
        msg_all = np.concatenate([ev["msg"], np.array(add_msg, dtype=np.int64)])
        at_all = np.concatenate([ev["at"], np.array(add_at, dtype=np.int64)])
        ledger_all = np.concatenate([ev["ledger"], np.array(add_ledger, dtype=np.int64)])
        entry_all = np.concatenate([ev["entry"], np.array(add_entry, dtype=np.int64)])
        o = np.argsort(at_all, kind="stable")
        msg_all, at_all, ledger_all, entry_all = msg_all[o], at_all[o], ledger_all[o], entry_all[o]
        process = f"{region}/c0"
        with open(hist / f"{region}-c0.jsonl", "wb") as fh:
            for a in range(0, len(msg_all), CHUNK):
                sl = slice(a, a + CHUNK)
                m = msg_all[sl]
                prod_txt = pa.array(np.array(p_names)[producer[m]])
                lines = _join('{"type":"recv","time":', _text(at_all[sl]), ',"region":"', region, '","process":"',
                              process, '","producer":"', prod_txt, '","seq":', _text(seq[m]), ',"msg_id":"',
                              _text(ledger_all[sl]), ":", _text(entry_all[sl]), ':-1:0","redelivery":0}\n')
                _write_lines(fh, lines)
            fh.write(b"".join(
                b'{"type":"recv","time":%d,"region":"%s","process":"%s","producer":"%s","seq":%d,'
                b'"msg_id":"9:%d:-1:0","redelivery":0}\n'
                % (int(at_all[-1]) + 1000 * (k + 1), region.encode(), process.encode(), p_names[0].encode(),
                   10**12 + k, k) for k in range(phantom)))
        injected[region] = {"lost": len(lost), "duplicates": len(dups), "redelivered": len(redeliver),
                            "reordered": reordered, "unexpected": phantom}

    end = int(done.max())
    span = end - T0
    with open(hist / "nemesis.jsonl", "w") as fh:
        for i, (start, stop) in enumerate(((0.3, 0.35), (0.6, 0.62))):
            target = names[i % regions]
            for phase, frac in (("start", start), ("stop", stop)):
                fh.write(json.dumps({"type": "fault", "time": T0 + int(span * frac), "phase": phase, "fault": "kill",
                                     "target": f"{target}/broker", "id": f"f{i}", "process": "nemesis"}) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"regions": names, "scheme": "synthetic", "seed": seed}))
    return {"injected": injected, "acked": int((outcome == 1).sum()), "sends": total}


def _lines_in(run_dir: Path) -> int:
    count = 0
    for path in sorted((run_dir / "history").glob("*.jsonl")):
        with open(path, "rb") as fh:
            while block := fh.read(1 << 24):
                count += block.count(b"\n")
    return count


def _child(args: list[str]) -> dict[str, Any]:
    """Run a bench step in a fresh interpreter; it prints one JSON object. Adds ``tree_peak_rss_mib``: the largest
    sum of the resident sets of that process and its own children (parsing workers), sampled every 50 ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen([sys.executable, "-m", "geo_recon.check.bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    tree_peak = 0
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            tree_peak = max(tree_peak, _tree_rss_kib(proc.pid))
    if proc.returncode != 0:
        raise GeoReconError(f"bench step {args[0]!r} failed: {stderr.strip()[-2000:]}")
    out = json.loads(stdout.strip().splitlines()[-1])
    out["tree_peak_rss_mib"] = round(tree_peak / 1024, 1)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # user + system CPU of the step with its parsing workers (and the interpreter's start): wall times depend on
    # what else runs, DuckDB's most (it uses every core)
    out["cpu_seconds_with_workers"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3)
    return out


def _tree_rss_kib(pid: int) -> int:
    """VmRSS of a process and its descendants, in KiB (0 for what has already exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return 0
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return rss + sum(_tree_rss_kib(child) for child in children)


def _is_bench_run(path: Path) -> bool:
    try:
        return json.loads((path / "run.json").read_text()).get("scheme") == "synthetic"
    except (OSError, ValueError, AttributeError):
        return False


def _cpu_seconds() -> float:
    """User and system CPU of this process and its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _load() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine slows every figure here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it does not carry the parent's peak over exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _workers_peak_rss_mib() -> float:
    """The largest peak resident set of this process's parsing workers (0 when it parsed alone)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def child_check(run_dir: str, source: str = "columnar") -> dict[str, Any]:
    """Check in this (fresh) process: ``columnar`` from the copy, ``jsonl`` from the history files as they are
    (JSONL, or Arrow as the workers write it)."""
    from geo_recon.check.core import check_run

    start = time.perf_counter()
    cpu = time.process_time()
    result = check_run(run_dir, source=source)
    wall = time.perf_counter() - start
    return {"seconds": round(wall, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            "peak_rss_mib": _peak_rss_mib(), "workers_peak_rss_mib": _workers_peak_rss_mib(), "valid": result.valid,
            "regions": {r: {k: v for k, v in x.to_json().items() if k not in ("lag_ms_by_origin",)}
                        for r, x in result.regions.items()},
            "receipts": result.run["receipts"]}


BASELINE_SQL = """
WITH firsts AS (
    SELECT region, msg,
           min(time) FILTER (WHERE NOT reader) AS first_c,
           count(DISTINCT msg_hash) AS ids
    FROM receipts GROUP BY region, msg
), copies AS (
    SELECT region, msg, msg_hash, count(*) AS n FROM receipts WHERE NOT reader GROUP BY region, msg, msg_hash
), redelivered AS (
    SELECT region, sum(n - 1) AS redelivered FROM copies GROUP BY region
)
SELECT rg.region,
       count(*) FILTER (WHERE m.outcome = 2) AS expected,
       count(*) FILTER (WHERE m.outcome = 2 AND f.msg IS NULL) AS lost,
       coalesce(sum(f.ids - 1), 0) AS duplicates,
       count(*) FILTER (WHERE f.msg IS NOT NULL AND m.outcome IN (0, 3)) AS unexpected,
       count(*) FILTER (WHERE f.msg IS NOT NULL AND m.outcome IN (1, 4)) AS recovered,
       quantile_disc(CASE WHEN m.outcome = 2 THEN f.first_c - m.done_time END, [0.5, 0.9, 0.99]) AS lag_q,
       max(CASE WHEN m.outcome = 2 THEN f.first_c - m.done_time END) AS lag_max,
       any_value(rd.redelivered) AS redelivered
FROM messages m
CROSS JOIN regions rg
LEFT JOIN firsts f ON f.msg = m.msg AND f.region = rg.region
LEFT JOIN redelivered rd ON rd.region = rg.region
GROUP BY rg.region ORDER BY rg.region
"""


def child_baseline(run_dir: str) -> dict[str, Any]:
    import duckdb
    import pyarrow.ipc as ipc

    start = time.perf_counter()
    cpu = time.process_time()
    root = Path(run_dir) / "columnar"
    meta = json.loads((root / "meta.json").read_text())
    names = meta["region_names"]
    run = json.loads((Path(run_dir) / "run.json").read_text())

    def table(name: str) -> pa.Table:
        return ipc.open_file(pa.memory_map(str(root / name))).read_all()

    messages = table("messages.arrow")
    messages = messages.append_column("msg", pa.array(np.arange(messages.num_rows, dtype=np.int64)))
    parts = []
    for code, name in enumerate(names):
        if name not in run["regions"]:
            continue
        t = table(f"receipts-{code}.arrow")
        flags = t.column("flags").to_numpy()
        parts.append(pa.table({"region": pa.array(np.full(t.num_rows, code, dtype=np.int16)),
                               "msg": t.column("msg"), "time": t.column("time"), "msg_hash": t.column("msg_hash"),
                               "reader": pa.array((flags & 1) != 0)}))
    receipts = pa.concat_tables(parts)
    regions = pa.table({"region": pa.array([names.index(r) for r in run["regions"]], type=pa.int16())})
    con = duckdb.connect()
    con.register("messages", messages)
    con.register("receipts", receipts)
    con.register("regions", regions)
    rows = con.execute(BASELINE_SQL).fetchall()
    wall = time.perf_counter() - start
    out = {}
    for region, expected, lost, dups, unexpected, recovered, lag_q, lag_max, redelivered in rows:
        out[names[region]] = {"expected": expected, "lost": lost, "duplicates": int(dups), "unexpected": unexpected,
                              "recovered": recovered, "redelivered": int(redelivered or 0),
                              "lag_ms": None if lag_q is None else {
                                  "p50": round(lag_q[0] / 1e6, 3), "p90": round(lag_q[1] / 1e6, 3),
                                  "p99": round(lag_q[2] / 1e6, 3), "max": round(lag_max / 1e6, 3)}}
    return {"seconds": round(wall, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            "peak_rss_mib": _peak_rss_mib(), "regions": out,
            "threads": con.execute("SELECT current_setting('threads')").fetchall()[0][0]}


BASELINE_JSONL_SQL = """
WITH sends AS (
    SELECT producer, seq,
           bool_or(type = 'ok') AS acked, bool_or(type = 'info') AS info, bool_or(type = 'fail') AS failed,
           count(*) FILTER (WHERE type = 'invoke') AS invokes,
           count(*) FILTER (WHERE type <> 'invoke') AS completions,
           min(time) FILTER (WHERE type = 'ok') AS done_time
    FROM ev WHERE type IN ('invoke', 'ok', 'fail', 'info') AND f = 'send' GROUP BY producer, seq
), msgs AS (
    SELECT producer, seq, done_time,
           CASE WHEN acked THEN 2 WHEN info THEN 4 WHEN invokes > completions THEN 1 WHEN failed THEN 3 ELSE 0 END
           AS outcome
    FROM sends
), receipts AS (
    SELECT region, producer, seq, time, msg_id, coalesce(via, 'consumer') = 'reader' AS reader
    FROM ev WHERE type = 'recv'
), keys AS (
    SELECT producer, seq FROM sends UNION SELECT DISTINCT producer, seq FROM receipts
), firsts AS (
    SELECT region, producer, seq, min(time) FILTER (WHERE NOT reader) AS first_c, count(DISTINCT msg_id) AS ids
    FROM receipts GROUP BY region, producer, seq
), copies AS (
    SELECT region, producer, seq, msg_id, count(*) AS n FROM receipts WHERE NOT reader
    GROUP BY region, producer, seq, msg_id
), redelivered AS (
    SELECT region, sum(n - 1) AS redelivered FROM copies GROUP BY region
)
SELECT rg.region,
       count(*) FILTER (WHERE m.outcome = 2) AS expected,
       count(*) FILTER (WHERE m.outcome = 2 AND f.seq IS NULL) AS lost,
       coalesce(sum(f.ids - 1), 0) AS duplicates,
       count(*) FILTER (WHERE f.seq IS NOT NULL AND coalesce(m.outcome, 0) IN (0, 3)) AS unexpected,
       count(*) FILTER (WHERE f.seq IS NOT NULL AND m.outcome IN (1, 4)) AS recovered,
       quantile_disc(CASE WHEN m.outcome = 2 THEN f.first_c - m.done_time END, [0.5, 0.9, 0.99]) AS lag_q,
       max(CASE WHEN m.outcome = 2 THEN f.first_c - m.done_time END) AS lag_max,
       any_value(rd.redelivered) AS redelivered
FROM keys k
LEFT JOIN msgs m ON m.producer = k.producer AND m.seq = k.seq
CROSS JOIN regions rg
LEFT JOIN firsts f ON f.producer = k.producer AND f.seq = k.seq AND f.region = rg.region
LEFT JOIN redelivered rd ON rd.region = rg.region
GROUP BY rg.region ORDER BY rg.region
"""


def child_baseline_jsonl(run_dir: str) -> dict[str, Any]:
    """The naive baseline straight from the JSONL: DuckDB reads the files (its own parallel JSON reader) and runs
    the same group-by plus join; what a user would write without geo-recon."""
    import duckdb

    start = time.perf_counter()
    cpu = time.process_time()
    run = json.loads((Path(run_dir) / "run.json").read_text())
    con = duckdb.connect()
    columns = {"type": "VARCHAR", "f": "VARCHAR", "time": "BIGINT", "region": "VARCHAR", "producer": "VARCHAR",
               "seq": "BIGINT", "msg_id": "VARCHAR", "via": "VARCHAR"}
    glob = str(Path(run_dir) / "history" / "*.jsonl")
    glob_sql = glob.replace("'", "''")
    con.execute(f"CREATE VIEW ev AS SELECT * FROM read_json('{glob_sql}', format = 'newline_delimited', "
                f"columns = {columns!r})")
    con.register("regions", pa.table({"region": pa.array(run["regions"], pa.string())}))
    rows = con.execute(BASELINE_JSONL_SQL).fetchall()
    wall = time.perf_counter() - start
    out = {}
    for region, expected, lost, dups, unexpected, recovered, lag_q, lag_max, redelivered in rows:
        out[region] = {"expected": expected, "lost": lost, "duplicates": int(dups), "unexpected": unexpected,
                       "recovered": recovered, "redelivered": int(redelivered or 0),
                       "lag_ms": None if lag_q is None else {
                           "p50": round(lag_q[0] / 1e6, 3), "p90": round(lag_q[1] / 1e6, 3),
                           "p99": round(lag_q[2] / 1e6, 3), "max": round(lag_max / 1e6, 3)}}
    return {"seconds": round(wall, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            "peak_rss_mib": _peak_rss_mib(), "regions": out,
            "threads": con.execute("SELECT current_setting('threads')").fetchall()[0][0]}


def _agree(base: dict[str, Any], check: dict[str, Any]) -> bool:
    return all(base["regions"][r][k] == check["regions"][r][k] for r in base["regions"]
               for k in ("expected", "lost", "duplicates", "unexpected", "recovered", "redelivered"))


def _vs_duckdb_jsonl(timings: dict[str, Any], measure: str) -> dict[str, float]:
    """The checks from the workers' Arrow and from the JSONL over DuckDB's query over the JSONL, by ``measure``
    (``seconds`` or ``cpu_seconds_with_workers``) of one round's timings or of their medians."""
    base = timings["duckdb_jsonl"][measure]
    return {"native_vs_duckdb_jsonl": round(timings["native"][measure] / base, 3),
            "jsonl_vs_duckdb_jsonl": round(timings["jsonl"][measure] / base, 3)}


def run_bench(*, messages: int, regions: int, producers: int | None, keep: Path | None, seed: int, baseline: bool,
              rounds: int = 1, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """``rounds``: how many times the ratios' three timings (the checker from the workers' Arrow, from the JSONL,
    DuckDB over the JSONL) run, interleaved, each in a fresh process; the ratios are those of their medians."""
    from geo_recon.check.columnar import write_columnar
    from geo_recon.check.ingest import read_history
    from geo_recon.history_export import export_run

    producers = producers or 4 * regions
    if baseline and importlib.util.find_spec("duckdb") is None:
        raise ConfigError("the baseline needs DuckDB: pip install 'geo-recon[bench]', or pass --no-baseline")
    if keep is not None and keep.exists() and any(keep.iterdir()):
        if not _is_bench_run(keep):
            raise ConfigError(f"--keep {keep}: the directory is not empty and is not an earlier bench run; "
                              "refusing to overwrite it")
        for name in ("history", "columnar", "native", "run.json"):
            target = keep / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    run_dir = keep if keep is not None else Path(tempfile.mkdtemp(prefix="geo-recon-bench-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"messages": messages, "regions": regions, "producers": producers,
                              "cpus": os.cpu_count(), "run_dir": str(run_dir), "load_average": _load()}
    try:
        progress(f"generating {messages:,} acknowledged messages x {regions} regions in {run_dir} ...")
        t = time.perf_counter()
        made = generate(run_dir, messages=messages, regions=regions, producers=producers, seed=seed)
        report["generate_seconds"] = round(time.perf_counter() - t, 3)
        report["injected"] = made["injected"]
        lines = _lines_in(run_dir)
        size = sum(p.stat().st_size for p in (run_dir / "history").glob("*.jsonl"))
        report["jsonl"] = {"lines": lines, "bytes": size}

        progress(f"ingesting {lines:,} JSONL lines ({size / 2**30:.2f} GiB) ...")
        t = time.perf_counter()
        before = _cpu_seconds()
        history = read_history(run_dir)
        ingest = time.perf_counter() - t
        cpu = _cpu_seconds() - before  # this process and its parsing workers
        report["jsonl"].update(ingest_seconds=round(ingest, 3), lines_per_second=round(lines / ingest),
                               cpu_seconds=round(cpu, 3), cpu_us_per_line=round(cpu / lines * 1e6, 3))

        progress("writing the columnar copy ...")
        t = time.perf_counter()
        write_columnar(run_dir, history)
        report["columnar_write_seconds"] = round(time.perf_counter() - t, 3)
        report["columnar_bytes"] = sum(p.stat().st_size for p in (run_dir / "columnar").iterdir())
        del history

        progress("checking from the columnar copy (fresh process) ...")
        check = _child(["check", str(run_dir)])
        check["receipts_per_second"] = round(check["receipts"] / check["seconds"])
        report["check"] = check
        found = {r: {k: check["regions"][r][k] for k in INJECT} for r in check["regions"]}
        report["found"] = found
        report["found_equals_injected"] = found == report["injected"]

        progress("converting the history to Arrow, as the workers write it ...")
        t = time.perf_counter()
        native_dir = run_dir / "native"
        export_run(run_dir, native_dir, to="arrow")
        report["native_convert_seconds"] = round(time.perf_counter() - t, 3)
        report["native_bytes"] = sum(p.stat().st_size for p in (native_dir / "history").glob("*.arrows"))
        progress("checking the workers' Arrow history (fresh process) ...")
        report["check_native"] = _child(["check-files", str(native_dir)])
        progress("checking from the JSONL (fresh process) ...")
        report["check_jsonl"] = _child(["check-files", str(run_dir)])
        for key in ("check_native", "check_jsonl"):
            report[f"{key}_agrees"] = report[key]["regions"] == check["regions"]

        if baseline:
            progress("naive DuckDB baseline over the same columnar files (fresh process) ...")
            base = _child(["baseline", str(run_dir)])
            report["baseline"] = base
            report["speedup"] = round(base["seconds"] / check["seconds"], 2)
            # counts must agree exactly; DuckDB's quantile_disc picks rank floor(q * (n - 1)), not the nearest rank
            # ceil(q * n) - 1 the checker uses, so its percentiles can differ by one rank
            report["baseline_agrees"] = _agree(base, check)
            report["baseline_lag_ms"] = {r: base["regions"][r]["lag_ms"] for r in base["regions"]}
            progress("naive DuckDB baseline over the JSONL (fresh process) ...")
            base_jsonl = _child(["baseline-jsonl", str(run_dir)])
            report["baseline_jsonl"] = base_jsonl
            report["baseline_jsonl_agrees"] = _agree(base_jsonl, check)
        timed = [{"native": report["check_native"], "jsonl": report["check_jsonl"],
                  **({"duckdb_jsonl": report["baseline_jsonl"]} if baseline else {})}]
        for number in range(2, rounds + 1):  # the same three again, in the same order, each in a fresh process
            progress(f"round {number} of {rounds}: the workers' Arrow, the JSONL"
                     f"{', DuckDB over the JSONL' if baseline else ''} ...")
            again = {"native": _child(["check-files", str(native_dir)]), "jsonl": _child(["check-files", str(run_dir)])}
            if baseline:
                again["duckdb_jsonl"] = _child(["baseline-jsonl", str(run_dir)])
            for key in ("native", "jsonl"):
                if again[key]["regions"] != check["regions"]:
                    raise GeoReconError(f"bench round {number}: the {key} check found other facts than round 1")
            if baseline and not _agree(again["duckdb_jsonl"], check):
                raise GeoReconError(f"bench round {number}: DuckDB's counts over the JSONL differ from the checker's")
            timed.append(again)
        report["rounds"] = [{k: {"seconds": v["seconds"], "cpu_seconds_with_workers": v["cpu_seconds_with_workers"]}
                             for k, v in r.items()} for r in timed]
        median = {k: {m: statistics.median(r[k][m] for r in timed) for m in ("seconds", "cpu_seconds_with_workers")}
                  for k in timed[0]}
        report["median"] = median
        if baseline:
            # the goals: native <= 0.2x, JSONL <= 0.5x the naive query over the JSONL (medians of the rounds)
            report["ratios"] = {**_vs_duckdb_jsonl(median, "seconds"),
                                "columnar_vs_duckdb_columnar": round(check["seconds"] / report["baseline"]["seconds"], 3)}
            report["cpu_ratios"] = _vs_duckdb_jsonl(median, "cpu_seconds_with_workers")
            report["ratios_by_round"] = [_vs_duckdb_jsonl(r, "seconds") for r in timed]
        report["load_average_after"] = _load()
        return report
    finally:
        if keep is None:
            shutil.rmtree(run_dir, ignore_errors=True)


def format_report(r: dict[str, Any]) -> str:
    check = r["check"]
    lines = [
        f"synthetic history: {r['messages']:,} acknowledged messages, {r['regions']} regions, "
        f"{r['producers']} producers ({r['cpus']} CPUs; load average {r['load_average']} before, "
        f"{r.get('load_average_after')} after)",
        f"  generated in {r['generate_seconds']:.1f} s: {r['jsonl']['lines']:,} JSONL lines, "
        f"{r['jsonl']['bytes'] / 2**30:.2f} GiB",
        f"JSONL ingest:   {r['jsonl']['ingest_seconds']:.2f} s = {r['jsonl']['lines_per_second']:,} lines/s "
        f"({r['jsonl']['cpu_seconds']:.1f} CPU-s over all processes, {r['jsonl']['cpu_us_per_line']:.2f} us per line)",
        f"columnar write: {r['columnar_write_seconds']:.2f} s ({r['columnar_bytes'] / 2**30:.2f} GiB)",
        f"check (columnar, fresh process): {check['seconds']:.2f} s wall, {check['cpu_seconds']:.2f} s CPU, "
        f"{check['receipts']:,} receipts = {check['receipts_per_second']:,} receipts/s, "
        f"peak RSS {check['peak_rss_mib']:,.0f} MiB",
        f"  injected per region {r['injected']}",
        f"  found    per region {r['found']}  -> {'equal' if r['found_equals_injected'] else 'DIFFERENT'}",
    ]
    for key, words in (("check_native", "check (workers' Arrow history)"), ("check_jsonl", "check (JSONL)")):
        if key in r:
            c = r[key]
            workers = f" (its parsing workers: {c['workers_peak_rss_mib']:,.0f} MiB at most each)" if c.get(
                "workers_peak_rss_mib") else ""
            lines.append(f"{words}: {c['seconds']:.2f} s wall, {c['cpu_seconds']:.2f} s CPU, "
                         f"peak RSS {c['peak_rss_mib']:,.0f} MiB{workers}, with them {c['tree_peak_rss_mib']:,.0f} "
                         f"MiB at most at once; "
                         f"facts {'equal' if r[key + '_agrees'] else 'DIFFER'}")
    rounds = r.get("rounds", [])
    if len(rounds) > 1:
        lines.append("rounds (s, each step in a fresh process, in this order): " + "; ".join(
            f"{words} " + ", ".join(f"{x[key]['seconds']:.2f}" for x in rounds)
            for key, words in (("native", "workers' Arrow"), ("jsonl", "JSONL"),
                               ("duckdb_jsonl", "DuckDB over the JSONL")) if key in rounds[0]))
    if "baseline" in r:
        b = r["baseline"]
        lines.append(f"naive DuckDB baseline ({b['threads']} threads, fresh process): {b['seconds']:.2f} s wall, "
                     f"{b['cpu_seconds']:.2f} s CPU, peak RSS {b['peak_rss_mib']:,.0f} MiB; "
                     f"counts {'agree' if r['baseline_agrees'] else 'DISAGREE'}")
        lines.append(f"checker vs baseline: {r['speedup']:.2f}x faster")
    if "baseline_jsonl" in r:
        b = r["baseline_jsonl"]
        lines.append(f"naive DuckDB over the JSONL ({b['threads']} threads, fresh process): {b['seconds']:.2f} s wall, "
                     f"{b['cpu_seconds']:.2f} s CPU, peak RSS {b['peak_rss_mib']:,.0f} MiB; "
                     f"counts {'agree' if r['baseline_jsonl_agrees'] else 'DISAGREE'}")
        q = r["ratios"]
        of = f", medians of {len(rounds)} rounds" if len(rounds) > 1 else ""
        lines.append(f"ratios (time / DuckDB's over the JSONL{of}): native {q['native_vs_duckdb_jsonl']:.2f}x "
                     f"(goal <= 0.2), JSONL {q['jsonl_vs_duckdb_jsonl']:.2f}x (goal <= 0.5); "
                     f"columnar / DuckDB over it {q['columnar_vs_duckdb_columnar']:.2f}x")
        q = r["cpu_ratios"]
        lines.append(f"CPU-seconds ratios (with the parsing workers; do not depend on other load): "
                     f"native {q['native_vs_duckdb_jsonl']:.2f}x, JSONL {q['jsonl_vs_duckdb_jsonl']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from geo_recon.check.tuning import tune_allocator

    tune_allocator()
    step, run_dir = argv
    steps = {"check": child_check, "check-files": lambda d: child_check(d, source="jsonl"),
             "baseline": child_baseline, "baseline-jsonl": child_baseline_jsonl}
    out = steps[step](run_dir)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
