"""What each message carries for the checker: producer, seq and send time, as properties.

Properties survive geo-replication unchanged (the replicator adds its own
``__MSG_PROP_REPL_SOURCE_POSITION``), so every region can tell which send a
receipt belongs to without decoding the payload.
"""

from __future__ import annotations

from typing import Any

PRODUCER = "gr.producer"
SEQ = "gr.seq"
SENT = "gr.sent_ns"


def properties(producer: str, seq: int, sent_ns: int) -> dict[str, str]:
    return {PRODUCER: producer, SEQ: str(seq), SENT: str(sent_ns)}


def identify(props: dict[str, str]) -> tuple[str, int] | None:
    """(producer, seq) of a received message, or None if it is not one of ours."""
    try:
        return props[PRODUCER], int(props[SEQ])
    except (KeyError, ValueError):
        return None


def payload(size: int) -> bytes:
    return b"x" * size


def format_msg_id(msg_id: Any) -> str:
    """``ledger:entry:partition:batch`` as in the history format."""
    return f"{msg_id.ledger_id()}:{msg_id.entry_id()}:{msg_id.partition()}:{msg_id.batch_index()}"
