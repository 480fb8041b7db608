"""Writes the stored run directories beside this file (run from the repository root: python tests/e2e/runs/make_runs.py)."""
import json
from pathlib import Path

S = 1_000_000_000
T0 = 1_800_000_000 * S
ROOT = Path("tests/e2e/runs")


def send(region, seq, t, outcome="ok"):
    p = f"{region}/p0"
    base = {"f": "send", "region": region, "process": p, "producer": p, "seq": seq}
    out = [{"type": "invoke", **base, "time": t, "key": f"k{seq % 3}", "topic": "persistent://geo/recon/t0"}]
    if outcome:
        out.append({"type": outcome, **base, "time": t + 3_000_000, **({"msg_id": f"{ord(region)}:{seq}:-1:0"}
                                                                     if outcome == "ok" else {"error": "Timeout"})})
    return out


def recv(region, origin, seq, t):
    return {"type": "recv", "time": t, "region": region, "process": f"{region}/c0.0", "producer": f"{origin}/p0",
            "seq": seq, "msg_id": f"{ord(origin)}:{seq}:-1:0", "redelivery": 0}


def write(name, *, scenario, histories, workers):
    d = ROOT / name
    (d / "history").mkdir(parents=True, exist_ok=True)
    for file, lines in histories.items():
        (d / "history" / file).write_text("".join(json.dumps(x) + "\n" for x in lines))
    (d / "scenario.yaml").write_text(scenario)
    run = {"regions": ["a", "b"], "scheme": "async", "run_id": f"r-{name}", "seed": 1,
           "topics": ["persistent://geo/recon/t0"], "start_at_ns": T0, "clock_offsets_ns": {}, "allowed": [],
           "workload": {"rate": 10, "duration_s": 2}, "workers": workers,
           "drain": {"caught_up": True, "waited_s": 0.5}, "scenario": name, "interrupted": False, "error": None}
    (d / "run.json").write_text(json.dumps(run, indent=2) + "\n")


SCENARIO = "name: {name}\nscheme: async\nworkload: {{rate: 10, duration_s: 2}}\nexpectations:\n{exp}"
N = 20


def t(i):
    return T0 + i * 100_000_000


def ok_worker(region, sent=N, received=2 * N):
    return {"fate": "finished", "sent": sent, "acked": sent, "failed": 0, "unknown": 0, "stuck": 0,
            "received": received, "errors": []}


# 1. region a's producer never started: nothing sent from a; b publishes, both receive b's messages
b_sends = [x for s in range(N) for x in send("b", s, t(s))]
write("producer-never-started",
      scenario=SCENARIO.format(name="producer-never-started", exp="  max_lost: 0\n"),
      histories={"b.jsonl": b_sends,
                 "a-recv.jsonl": [recv("a", "b", s, t(s) + 40_000_000) for s in range(N)],
                 "b-recv.jsonl": [recv("b", "b", s, t(s) + 5_000_000) for s in range(N)]},
      workers={"a": {**ok_worker("a", sent=0, received=N),
                     "errors": ["a/p0: could not create a producer on persistent://geo/recon/t0: "
                                "Pulsar error: ConnectError"]},
               "b": ok_worker("b", received=N)})

# 2. region b's consume worker died half way: its receipts stop at seq 9
a_sends = [x for s in range(N) for x in send("a", s, t(s))]
write("worker-died",
      scenario=SCENARIO.format(name="worker-died", exp="  max_lost: 20\n"),
      histories={"a.jsonl": a_sends, "b.jsonl": b_sends,
                 "a-recv.jsonl": [recv("a", o, s, t(s) + 5_000_000) for o in "ab" for s in range(N)],
                 "b-recv.jsonl": [recv("b", o, s, t(s) + 5_000_000) for o in "ab" for s in range(N // 2)]},
      workers={"a": ok_worker("a"),
               "b": {"fate": "consume worker died before finishing (log: logs/worker-b-consume.log)",
                     "sent": N, "acked": N, "failed": 0, "unknown": 0, "stuck": 0, "errors": []}})

# 3. three of a's messages never reach b, and the scenario sets no max_lost
write("lost-without-limit",
      scenario=SCENARIO.format(name="lost-without-limit", exp="  max_unexpected: 0\n"),
      histories={"a.jsonl": a_sends, "b.jsonl": b_sends,
                 "a-recv.jsonl": [recv("a", o, s, t(s) + 5_000_000) for o in "ab" for s in range(N)],
                 "b-recv.jsonl": [recv("b", o, s, t(s) + 5_000_000) for o in "ab" for s in range(N)
                                  if not (o == "a" and s in (4, 5, 6))]},
      workers={"a": ok_worker("a"), "b": ok_worker("b", received=2 * N - 3)})

# 4. region a lost for good at 20 s (rebuilt at 30 s), the same schedule under async and strong (CONTRACT-13.md's
# events; the histories are built by tests/unit/check/disaster_history.py). Async: a's producer and consumer fail
# over to b, the consumer's replicated subscription re-consumes 10 of b's messages and misses 2, a's last 0.5 s of
# writes never reach b. Strong: nothing is lost, writes stall until 2 s after the rebuild. The stored scenario has
# no faults list (the fault lines are in the history; the verdict reads only the expectations).
import sys  # noqa: E402

sys.path.insert(0, ".")
from tests.unit.check import disaster_history  # noqa: E402

DISASTER = """name: region-disaster
scheme: async
workload: {rate: 10, duration_s: 40}
expectations:
  max_unexpected: 0
  max_client_rto_s: 10           # every client of a works again within 10 s of the loss
  async:
    min_delivered_fraction: 0.99 # async loses its unreplicated tail: reported as RPO, bounded here
    allow: [duplicates]          # the failed-over subscription re-consumes what it had (distinct msg_ids in b)
    max_reconsumed: 50
    max_subscription_gaps: 0     # NOT MET: the subscription never got 2 of b's messages
  strong: {max_lost: 0, max_rpo_messages: 0, max_rpo_s: 0, max_client_rto_s: null}
"""
for scheme, files, replicated in (("async", disaster_history.histories(), True),
                                  ("strong", disaster_history.strong_histories(), False)):
    d = disaster_history.write(ROOT / f"region-disaster-{scheme}", files=files, run={
        **disaster_history.run_json(scheme=scheme, replicated=replicated, name=f"region-disaster-{scheme}"),
        "scenario": "region-disaster", "failover": {"mode": "auto" if scheme == "async" else "none"},
        "workers": {r: {"fate": "finished", "errors": [], "stuck": 0} for r in "ab"}})
    (d / "scenario.yaml").write_text(DISASTER)
