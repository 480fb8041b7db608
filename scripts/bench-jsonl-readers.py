"""Compare JSONL readers on the same bytes: the checker's (its compiled scan, pyarrow.json + checks), msgspec,
DuckDB, polars.

    .venv/bin/pip install msgspec polars        # not dependencies of geo-recon: only to reproduce the choice
    .venv/bin/geo-recon bench check --messages 3000000 --keep /tmp/b --no-baseline
    (head -n 700000 /tmp/b/history/a-c0.jsonl; head -n 300000 /tmp/b/history/a-p0.jsonl) > /tmp/sample.jsonl
    .venv/bin/python scripts/bench-jsonl-readers.py /tmp/sample.jsonl

One process; prints lines/s and CPU microseconds a line for each, then whether each reader refuses what
DESIGN.md calls a bad line (a string or a float where an integer belongs): the checker's fast path may only
accept what its exact path accepts.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from geo_recon.check import ingest

COLUMNS = {"type": "VARCHAR", "f": "VARCHAR", "time": "BIGINT", "region": "VARCHAR", "process": "VARCHAR",
           "producer": "VARCHAR", "seq": "BIGINT", "key": "VARCHAR", "msg_id": "VARCHAR", "via": "VARCHAR",
           "subscription_type": "VARCHAR"}
BAD = [b'{"type":"ok","f":"send","time":1,"region":"a","process":"p","producer":"p","seq":"5"}\n',
       b'{"type":"ok","f":"send","time":1,"region":"a","process":"p","producer":"p","seq":1.5}\n',
       b'{"type":"ok","f":"send","time":1,"region":"a","process":"p","producer":"p","seq":true}\n']


def timed(name: str, n: int, fn) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:36s} {wall:6.2f} s wall {cpu:6.2f} s CPU {n / wall / 1e6:5.2f} M lines/s "
          f"{cpu / n * 1e6:5.2f} us CPU a line", flush=True)


def _scan(data: bytes) -> object:
    from geo_recon.check import jsonscan

    found = jsonscan.scan(data)
    return None if found is None else ingest._scanned_chunk(found)


def readers(path: str) -> dict:
    out = {"pyarrow.json, explicit schema": lambda p: ingest._parse(Path(p).read_bytes(), ingest.LEAN_SCHEMA, False),
           "compiled scan (check/jsonscan)": lambda p: _scan(Path(p).read_bytes())}
    try:
        import duckdb

        def duck(p: str) -> pa.Table:
            con = duckdb.connect(config={"threads": 1})
            return con.sql(f"SELECT * FROM read_json('{p}', format='newline_delimited', columns={COLUMNS!r})"
                           ).to_arrow_table()
        out["duckdb read_json, 1 thread"] = duck
    except ImportError:
        pass
    try:
        import polars as pl

        schema = {k: pl.Int64 if v == "BIGINT" else pl.String for k, v in COLUMNS.items()}
        out["polars read_ndjson"] = lambda p: pl.read_ndjson(p, schema=schema).to_arrow()
    except ImportError:
        pass
    try:
        import msgspec

        fields = {k: (int | None if v == "BIGINT" else str | None, None) for k, v in COLUMNS.items() if k != "type"}
        event = msgspec.defstruct("Event", [("type", str), *((k, t, d) for k, (t, d) in fields.items())])
        decoder = msgspec.json.Decoder(event)
        out["msgspec typed decode (no columns)"] = lambda p: decoder.decode_lines(Path(p).read_bytes())
    except ImportError:
        pass
    return out


def main(path: str) -> None:
    data = Path(path).read_bytes()
    n = data.count(b"\n")
    timed("the checker's reader, whole job", n, lambda: ingest.parse_chunk(data))
    for name, read in readers(path).items():
        timed(name, n, lambda read=read: read(path))
    for name, read in readers(path).items():
        refused = 0
        for line in BAD:
            with tempfile.NamedTemporaryFile(suffix=".jsonl") as fh:
                fh.write(line)
                fh.flush()
                try:
                    result = read(fh.name)
                    refused += result is None
                except Exception:  # noqa: BLE001 - any refusal counts
                    refused += 1
        print(f"{name:36s} refuses {refused} of {len(BAD)} mistyped lines")


if __name__ == "__main__":
    main(sys.argv[1])
