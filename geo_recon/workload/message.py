"""What each message carries for the checker: producer, seq and send time, in one property.

Properties survive geo-replication unchanged (the replicator adds its own
``__MSG_PROP_REPL_SOURCE_POSITION``), so every region can tell which send a
receipt belongs to without decoding the payload. One property (``gr.id``:
"producer seq sent_ns"), not three: the clients pay per property, and the Go
client converts a batched message's properties twice (measured: three
properties were 16% of the native worker's CPU). Producer names have no spaces
(``a/p0``). Messages with the three properties of earlier versions (``gr.producer``,
``gr.seq``, ``gr.sent_ns``) are still understood.
"""

from __future__ import annotations

from functools import partial
from typing import Any

ID = "gr.id"
PRODUCER, SEQ, SENT = "gr.producer", "gr.seq", "gr.sent_ns"  # before gr.id


def identity(producer: str, seq: int, sent_ns: int) -> str:
    return f"{producer} {seq} {sent_ns}"


def properties(producer: str, seq: int, sent_ns: int) -> dict[str, str]:
    return {ID: identity(producer, seq, sent_ns)}


def sender(producer: Any, payload: bytes, name: str, *, dedup: bool = False):
    """``send(seq, sent_ns, key, callback)``: one message of producer ``name`` with its identity and key, sent
    through the client's C++ binding. pulsar-client's ``Producer.send_async`` builds each message in Python
    (ten argument checks, the schema's encode, one call a property): 2.7 CPU-us of a sender's 4.7 for a
    message with three properties and a key, against 3.3 here (measured with the identity of then). The message
    is the same, and with ``dedup`` its sequence id is ``seq``."""
    import _pulsar  # the client's own binding, present with every pulsar-client wheel

    inner = getattr(producer, "_producer", None)
    if inner is None or not hasattr(inner, "send_async"):  # not the client we pin: its public API
        return partial(_send_public, producer.send_async, payload, name, dedup)
    builder, send_async = _pulsar.MessageBuilder, inner.send_async

    def send(seq: int, sent_ns: int, key: str, callback) -> None:
        # identity()'s text, formatted inline: a Python call a message less (0.08 CPU-us)
        message = builder().content(payload).property(ID, f"{name} {seq} {sent_ns}").partition_key(key)
        if dedup:
            message.sequence_id(seq)
        send_async(message.build(), callback)

    return send


def payload_sender(producer: Any, payload: bytes):
    """``send(callback)``: the payload alone, no identity or key, built and sent as :func:`sender` does
    (the bare client that ``bench load`` measures the recorder against)."""
    import _pulsar

    inner = getattr(producer, "_producer", None)
    if inner is None or not hasattr(inner, "send_async"):  # not the client we pin: its public API
        return partial(producer.send_async, payload)
    builder, send_async = _pulsar.MessageBuilder, inner.send_async

    def send(callback) -> None:
        send_async(builder().content(payload).build(), callback)

    return send


def _send_public(send_async, payload: bytes, name: str, dedup: bool, seq: int, sent_ns: int, key: str,
                 callback) -> None:
    send_async(payload, callback, properties=properties(name, seq, sent_ns), partition_key=key,
               sequence_id=seq if dedup else None)


def identify(props: dict[str, str]) -> tuple[str, int] | None:
    """(producer, seq) of a received message, or None if it is not one of ours."""
    ident = identify_sent(props)
    return None if ident is None else (ident[0], ident[1])


def identify_sent(props: dict[str, str]) -> tuple[str, int, int | None] | None:
    """(producer, seq, send time in ns or None) of a received message, or None if it is not one of ours."""
    value = props.get(ID)
    try:
        if value is not None:
            producer, seq, sent = value.split(" ")
            return producer, int(seq), int(sent)
        sent_old = props.get(SENT)
        return props[PRODUCER], int(props[SEQ]), int(sent_old) if sent_old else None
    except (KeyError, ValueError):
        return None


def payload(size: int) -> bytes:
    return b"x" * size


def format_msg_id(msg_id: Any) -> str:
    """``ledger:entry:partition:batch`` as in the history format."""
    return f"{msg_id.ledger_id()}:{msg_id.entry_id()}:{msg_id.partition()}:{msg_id.batch_index()}"


def msg_id_texts(msg_ids: list[Any]) -> list[str]:
    """:func:`format_msg_id` of many ids at once: for the client's own ids, each field read by a C-level ``map``
    (a flush turns a producer's acknowledgements into text in bulk, not the callback one by one)."""
    import _pulsar

    kind = _pulsar.MessageId
    if not all(type(m) is kind for m in msg_ids):
        return [format_msg_id(m) for m in msg_ids]
    fields = [map(read, msg_ids) for read in (kind.ledger_id, kind.entry_id, kind.partition, kind.batch_index)]
    return list(map("%d:%d:%d:%d".__mod__, zip(*fields)))
