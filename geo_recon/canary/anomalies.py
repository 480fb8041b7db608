"""The canary's anomaly taxonomy: one name per anomaly, counted per origin -> region pair.

The streaming definitions mirror the checker's (``geo_recon/check/anomalies.py``),
restricted to what can be decided within a deadline. For a message acknowledged
in ``origin`` at ack time ``A`` and an observing region ``R`` (the origin too):

* ``lost``: no delivery in R by ``A + deadline`` (processing time). Decided once,
  when the watermark (``now - deadline``) passes ``A``.
* ``late``: a first delivery in R after the message was counted lost there, or of a
  message older than everything the canary still remembers (beyond its horizon).
* ``duplicated``: a delivery in R with a distinct ``msg_id`` from the first one
  (the message is stored twice).
* ``redelivered``: a delivery in R with the same ``msg_id`` again (not a violation).
* ``reordered``: a first-time delivery in R whose seq is below the highest seq already
  delivered in R from the same producer (the canary uses an ordered subscription).
* ``unexpected``: a delivery of a message of a producer this canary never knew (another
  canary on the same topic, or state lost): not a violation, reported apart.

Sends whose outcome is unknown (timeout, disconnect) or failed are never expected,
so they are never lost; their deliveries count as delivered.
"""

from __future__ import annotations

from enum import StrEnum


class CanaryAnomaly(StrEnum):
    LOST = "lost"
    LATE = "late"
    DUPLICATED = "duplicated"
    REDELIVERED = "redelivered"
    REORDERED = "reordered"
    UNEXPECTED = "unexpected"


#: The anomalies the alert rules page on.
VIOLATIONS = (CanaryAnomaly.LOST, CanaryAnomaly.DUPLICATED, CanaryAnomaly.REORDERED)
