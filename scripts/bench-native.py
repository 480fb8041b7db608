"""The native (go) producer next to pulsar-perf and pulsar-client-go alone, on a running lab, in one go.

    .venv/bin/python scripts/bench-native.py LAB SECONDS VARIANT...

VARIANT is ``perf`` (pulsar-perf as `bench load` runs it), ``bare[:FLAGS]`` (native/worker/bareproducer
built into /tmp, FLAGS its command-line flags separated by commas, e.g. ``bare:-identity``, and
``BIN=PATH`` among them runs another build of it), or
``worker:FORMAT[:ENV=V,...]`` (the native worker run directly on a worker config as `bench load` writes
it, its CPU profile in /tmp/bench-native-worker-N.pprof; ``BIN=PATH`` runs another build of it). One JSON line a variant, with the load
average. Measuring only: `geo-recon bench load` is the figure of record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from geo_recon import schemes
from geo_recon.deploy import external as dep
from geo_recon.deploy import state as lab_state
from geo_recon.workload import bench, native
from geo_recon.workload.spec import WorkloadSpec
from geo_recon.workload.worker import WorkerConfig

BARE = Path(tempfile.gettempdir()) / f"bench-native-bareproducer-{os.getpid()}"  # per run: helpers share /tmp


def in_netns(argv: list[str], netns: str | None, env: dict[str, str] | None = None) -> list[str]:
    prefix = ["env", *[f"{k}={v}" for k, v in (env or {}).items()]] if env else []
    return (["ip", "netns", "exec", netns] if netns else []) + prefix + argv


def run_worker(url: str, netns: str | None, seconds: float, history_format: str, env: dict[str, str],
               index: int) -> dict:
    workload = WorkloadSpec(rate=1e7, duration_s=seconds, message_size=100, batching=True, max_outstanding=1000,
                            batch_delay_ms=1.0, driver="go", history_format=history_format)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
        (Path(tmp) / "logs").mkdir()
        cfg = WorkerConfig(run_id=f"bn{index}", region="a", regions=["a"], service_url=url, admin_url="http://x",
                           topics=[f"persistent://geo/recon/bench-native-{int(time.time())}-{index}"],
                           workload=workload, start_at_ns=time.time_ns() + int(3e9), run_dir=tmp)
        config = Path(tmp) / "config.json"
        config.write_text(cfg.model_dump_json())
        env = {"GEO_RECON_NATIVE_CPUPROFILE": f"/tmp/bench-native-worker-{index}.pprof", **env}
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out_path.open("w") as out, err_path.open("w") as err:
            argv = native.produce_command(config)
            if "BIN" in env:  # another build of the worker, to compare two in one lab
                argv[0] = env.pop("BIN")
            proc = subprocess.Popen(in_netns(argv, netns, env), stdout=out, stderr=err)
            _, _, usage = os.wait4(proc.pid, 0)  # its own CPU and peak RSS (ip netns exec execs the worker)
        stdout, stderr = out_path.read_text(), err_path.read_text()
        cpu = usage.ru_utime + usage.ru_stime
        summary = json.loads(stdout.strip().splitlines()[-1])
        collections = sum(1 for line in stderr.splitlines() if line.startswith("gc "))
        history = sum(p.stat().st_size for p in (Path(tmp) / "history").iterdir())
    acked = summary["acked"]
    return {"rate": sum(summary["achieved_rates"].values()), "acked": acked, "unknown": summary["unknown"],
            "errors": summary["errors"], "cpu_us_per_msg": round(cpu * 1e6 / max(acked, 1), 2),
            "history_bytes": history, "max_rss_mib": round(usage.ru_maxrss / 1024), "gcs": collections}


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    lab, seconds, variants = argv[1], float(argv[2]), argv[3:]
    target = dep.resolve(lab, None)
    schemes.apply(target, target.scheme or "async")  # the namespace, as `bench load` makes it
    region = target.region_names[0]
    url = target.region(region).service_url
    netns = dict(lab_state.load(lab).namespaces).get(region)
    if any(v.startswith("bare") for v in variants):
        native.patched_client()  # go.mod's replace target
        subprocess.run(["go", "build", "-o", str(BARE), "./bareproducer"], cwd=native.SOURCE_DIR, check=True,
                       env=native.go_env())
    for index, variant in enumerate(variants):
        kind, _, rest = variant.partition(":")
        stamp = f"{int(time.time())}-{index}"
        if kind == "perf":
            fig = bench.pulsar_perf_rate(url, f"persistent://geo/recon/bench-perf-{stamp}", seconds=seconds,
                                         size=100, netns=netns)
            out = {"rate": fig.achieved_rate, "acked": fig.acked}
        elif kind == "bare":
            flags = [f for f in rest.split(",") if f and not f.startswith("BIN=")]
            exe = next((f[4:] for f in rest.split(",") if f.startswith("BIN=")), str(BARE))  # or another build
            proc = subprocess.run(in_netns([exe, "-url", url, "-topic", f"persistent://geo/recon/bare-{stamp}",
                                            "-seconds", str(seconds), *flags], netns),
                                  capture_output=True, text=True)
            out = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {"err": proc.stderr[-400:]}
        else:
            history_format, _, env_text = rest.partition(":")
            env = dict(kv.split("=", 1) for kv in env_text.split(",") if kv)
            out = run_worker(url, netns, seconds, history_format or "jsonl", env, index)
        print(json.dumps({"variant": variant, **out, "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    finally:
        BARE.unlink(missing_ok=True)  # a build per run: leave none in /tmp
