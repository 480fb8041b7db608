"""What the checker needs to know of faults, without the fault specs (pydantic and the topology: a check imports
this, and every check starts a fresh process)."""

from __future__ import annotations

#: Faults that slow the network but stop no client: nothing has to recover after their heal.
DEGRADATION_KINDS = frozenset({"latency", "bandwidth"})
#: After every heal, each region's producers and consumers must work again within this many seconds
#: (scenario expectations ``max_recovery_s`` override it); ``run`` keeps the load going that long after
#: the last heal. Clients reconnect with a growing backoff, so a long outage may need more.
DEFAULT_RECOVERY_S = 30.0
