"""The anomaly taxonomy: one name per anomaly, what it means, and which ones make a run invalid.

Definitions are DESIGN.md's, per observing region R:

* ``lost``: an acknowledged (``ok``) send never received in R, by a consumer
  or by the end-of-run Reader drain.
* ``stored_not_consumed``: an acknowledged send that the Reader found stored
  in R but no consumer in R ever received. Not lost; reported apart.
* ``duplicates``: for one (producer, seq), each distinct ``msg_id`` seen in R
  (by a consumer or the reader) beyond the first: the message is stored more
  than once.
* ``redelivered``: consumer receipts in R beyond the first of the same
  (producer, seq, msg_id). Expected after failovers and nacks; never invalid.
* ``reordered``: a consumer's first receipt of a (producer, seq) whose seq is
  below the highest seq that consumer already received from that producer
  (per key for Key_Shared; Shared subscriptions and Reader receipts are not
  checked, nor are receipts of sends that never happened).
* ``unexpected``: a (producer, seq) received in R that was never invoked or
  whose send ended ``fail``.
* ``recovered``: a (producer, seq) received in R whose send ended ``info`` (or
  was invoked with no completion): it did happen. Never invalid.

Counts are of distinct (producer, seq), except ``redelivered`` and
``reordered``, which count receipts.

Lag (not an anomaly) is the first consumer receipt in R minus the ``ok`` time,
per origin region; it is negative when the two clocks disagree by more than
the lag, which ``clock_offsets_ns`` in run.json corrects (the offset of a
process is added to every time it wrote).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from geo_recon.errors import ConfigError


class Anomaly(StrEnum):
    LOST = "lost"
    STORED_NOT_CONSUMED = "stored_not_consumed"
    DUPLICATES = "duplicates"
    REDELIVERED = "redelivered"
    REORDERED = "reordered"
    UNEXPECTED = "unexpected"
    RECOVERED = "recovered"


#: The anomalies that make a run invalid unless allowed.
VALIDITY = (Anomaly.LOST, Anomaly.DUPLICATES, Anomaly.REORDERED, Anomaly.UNEXPECTED)
#: Every anomaly, in report order.
ALL = (Anomaly.LOST, Anomaly.STORED_NOT_CONSUMED, Anomaly.DUPLICATES, Anomaly.REDELIVERED,
       Anomaly.REORDERED, Anomaly.UNEXPECTED, Anomaly.RECOVERED)


def parse_allowed(values: Iterable[str], *, source: str) -> frozenset[Anomaly]:
    """Anomaly names a user allows (``--allow`` or run.json ``allowed``); unknown names are an error."""
    allowed = set()
    for raw in values:
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            try:
                allowed.add(Anomaly(name))  # allowing one that never invalidates a run is harmless
            except ValueError:
                known = ", ".join(a.value for a in ALL)
                raise ConfigError(f"{source}: unknown anomaly {name!r} to allow (one of {known})") from None
    return frozenset(allowed)
