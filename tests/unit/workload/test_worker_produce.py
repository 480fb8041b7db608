"""The producer's hot path with a client that answers at once: every send is invoked before it leaves, then
ends ok (with its message id), fail (refused at once, or by a definite result) or info, in either format."""

from __future__ import annotations

import threading
import time

import pytest

from geo_recon.history import iter_events, write_run_json
from geo_recon.workload.spec import WorkloadSpec
from geo_recon.workload.worker import Worker, WorkerConfig


class _Result:
    def __init__(self, name: str, value: int):
        self.name, self.value = name, value


OK, TIMEOUT, INVALID = _Result("Ok", 0), _Result("Timeout", 1), _Result("InvalidMessage", 2)


class _MessageId:
    def __init__(self, seq: int):
        self.seq = seq

    def ledger_id(self) -> int:
        return 7

    def entry_id(self) -> int:
        return self.seq // 4

    def partition(self) -> int:
        return -1

    def batch_index(self) -> int:
        return self.seq % 4


class _Producer:
    """The public API's ``send_async``; answers from another thread, as the client's I/O thread does."""

    def __init__(self, history_dir):
        self.history_dir, self.sent = history_dir, []
        self.pending: list = []
        self.answer = threading.Thread(target=self._answer, daemon=True)
        self.done = threading.Event()
        self.answer.start()

    def send_async(self, payload, callback, properties, partition_key, sequence_id) -> None:
        seq = int(properties["gr.id"].split(" ")[1])
        if seq == 3:
            raise ValueError("refused")
        self.sent.append(seq)
        self.pending.append((seq, callback))

    def _answer(self) -> None:
        while not self.done.is_set() or self.pending:
            while self.pending:
                seq, callback = self.pending.pop(0)
                result = TIMEOUT if seq == 5 else INVALID if seq == 6 else OK
                callback(result, _MessageId(seq))
            time.sleep(0.001)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.done.set()
        self.answer.join()


class _Client:
    def __init__(self, history_dir):
        self.producer = _Producer(history_dir)

    def create_producer(self, topic, **settings):
        return self.producer


@pytest.mark.parametrize("history_format", ["jsonl", "arrow"])
def test_every_send_is_invoked_before_it_leaves_and_ends_once(tmp_path, history_format: str) -> None:
    workload = WorkloadSpec(rate=100, duration_s=0.2, max_outstanding=4, send_timeout_ms=100,
                            history_format=history_format)
    cfg = WorkerConfig(run_id="r", region="a", regions=["a", "b"], service_url="pulsar://x", admin_url="http://x",
                       topics=["t0"], workload=workload, start_at_ns=time.time_ns(), run_dir=str(tmp_path))
    worker = Worker(cfg, role="produce")
    worker.result_ok = OK.value
    client = _Client(tmp_path)
    worker.cfg.start_at_ns = time.time_ns()  # 20 sends due in the next 0.2 s
    worker._produce(client, 0, "t0", 100.0)
    worker.writer.close()
    write_run_json(tmp_path, ["a", "b"])
    events = list(iter_events(tmp_path))
    ends = {e["seq"]: e for e in events if e["type"] != "invoke"}
    invokes = [e for e in events if e["type"] == "invoke"]
    assert [e["seq"] for e in invokes] == list(range(20))
    assert all(e.keys() == {"type", "f", "region", "process", "producer", "time", "seq", "key", "topic"}
               and e["process"] == e["producer"] == "a/p0" and e["topic"] == "t0" for e in invokes)
    assert sorted(ends) == list(range(20))
    assert {seq: (e["type"], e.get("error")) for seq, e in ends.items() if e["type"] != "ok"} == {
        3: ("fail", "ValueError"), 5: ("info", "Timeout"), 6: ("fail", "InvalidMessage")}
    assert all(e["msg_id"] == f"7:{seq // 4}:-1:{seq % 4}" for seq, e in ends.items() if e["type"] == "ok")
    assert all(ends[e["seq"]]["time"] >= e["time"] for e in invokes)  # each invoke recorded before its send
    first = {}
    for i, e in enumerate(events):
        first.setdefault((e["type"] == "invoke", e["seq"]), i)
    assert all(first[(True, seq)] < first[(False, seq)] for seq in range(20))  # no end before its invoke
    snapshot = worker.counters.snapshot()
    assert (snapshot["sent"], snapshot["acked"], snapshot["failed"], snapshot["unknown"]) == (20, 17, 2, 1)
    assert snapshot["acked_by_producer"] == {"a/p0": 17}
    assert worker.kept_threads == {client.producer.answer.ident}  # the answering thread's state, kept once


def test_message_ids_read_in_bulk_are_the_history_format() -> None:
    import _pulsar

    from geo_recon.workload import message

    ids = [_pulsar.MessageId(-1, 12, 5, 0), _pulsar.MessageId(3, 2**30, 0, -1)]  # (partition, ledger, entry, batch)
    assert message.msg_id_texts(ids) == ["12:5:-1:0", f"{2**30}:0:3:-1"] == list(map(message.format_msg_id, ids))
    assert message.msg_id_texts([_MessageId(6)]) == ["7:1:-1:2"]  # another client's ids: one by one
