"""What load to drive: the workload part of a scenario (a typed model at the edge)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SubscriptionType = Literal["exclusive", "failover", "key_shared", "shared"]
Driver = Literal["python", "go"]
FailoverMode = Literal["none", "auto", "controlled"]
HistoryFormat = Literal["arrow", "jsonl"]
ORDERED = {"exclusive", "failover", "key_shared"}


class BillingSystem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str
    delay_ms: float = Field(0.0, ge=0, description="from the transaction to this system's event")
    jitter_ms: float = Field(0.0, ge=0)


class BillingWorkload(BaseModel):
    """The billing reconciliation workload (replaces the generic producers when set)."""

    model_config = ConfigDict(extra="forbid")
    systems: dict[str, BillingSystem] = Field(
        default_factory=lambda: {"order": BillingSystem(region="a", delay_ms=0, jitter_ms=20),
                                 "payment": BillingSystem(region="b", delay_ms=50, jitter_ms=40),
                                 "ledger": BillingSystem(region="a", delay_ms=120, jitter_ms=60)})
    rate: float = Field(50.0, gt=0, description="transactions per second")
    error_rate: float = Field(0.02, ge=0, le=1, description="share of transactions with an injected business error")
    error_kinds: list[Literal["amount_mismatch", "missing_payment", "duplicate_charge"]] = [
        "amount_mismatch", "missing_payment", "duplicate_charge"]
    error_system: str = "payment"
    reconcile_in: str = Field("b", description="the region whose reconciler is judged")
    lateness_ms: float = Field(2000.0, ge=0, description="how long the reconciler waits for a late system")
    idle_ms: float = Field(5000.0, gt=0, description="a system silent this long stops holding verdicts back")
    max_skew_ms: float = Field(1000.0, ge=0, description="read pacing: how far one system may run ahead")

    @model_validator(mode="after")
    def _known(self) -> "BillingWorkload":
        if len(self.systems) < 2:
            raise ValueError(f"billing needs at least 2 systems, got {list(self.systems)}")
        if self.error_rate > 0 and self.error_system not in self.systems:
            raise ValueError(f"billing error_system {self.error_system!r} is not one of {list(self.systems)}")
        return self


class FailoverSpec(BaseModel):
    """How a region's clients move to another region's cluster (``none``: they stay home).

    ``auto``: pulsar-client's AutoClusterFailover (PIP-121) probes the cluster in use every
    ``check_interval_ms`` and moves after ``failover_threshold`` failed probes (back home after
    ``switch_back_threshold`` good ones); ``controlled``: the controller tells the workers of every
    region targeted by a region fault to move to the next region at ``switch_at_s`` (flipping DNS)."""

    model_config = ConfigDict(extra="forbid")
    mode: FailoverMode = "none"
    check_interval_ms: int = Field(1000, gt=0, description="auto: probe interval")
    failover_threshold: int = Field(3, ge=1, description="auto: failed probes before switching away")
    switch_back_threshold: int = Field(3, ge=1, description="auto: good probes of home before switching back")
    switch_at_s: float | None = Field(None, ge=0, description="controlled: seconds after the load started")

    @model_validator(mode="after")
    def _fits_mode(self) -> "FailoverSpec":
        if self.mode == "controlled" and self.switch_at_s is None:
            raise ValueError("mode controlled needs switch_at_s (when the workers switch, seconds after the load "
                             "started)")
        if self.mode != "controlled" and self.switch_at_s is not None:
            raise ValueError(f"switch_at_s is only for mode controlled (mode is {self.mode})")
        return self


class WorkloadSpec(BaseModel):
    """Per region: ``producers`` producers together send ``rate`` messages a second."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(200.0, gt=0, description="messages per second per region (all producers together)")
    duration_s: float = Field(30.0, gt=0)
    message_size: int = Field(100, ge=0, le=5 * 1024 * 1024, description="payload bytes")
    keys: int = Field(100, ge=1, description="distinct message keys")
    producers: int = Field(1, ge=1, le=64, description="producers per region")
    processes: int = Field(1, ge=1, le=16, description="producer processes per region, each with its own client "
                                                       "and history file, paced together to the region's rate")
    topics: int = Field(1, ge=1, le=64)
    partitions: int = Field(0, ge=0, le=64, description="0: non-partitioned topics")
    batching: bool = False
    batch_delay_ms: float = Field(5.0, ge=1, le=1000, description="batching: how long a batch waits for more "
                                                                  "messages, in whole ms (bench load uses "
                                                                  "pulsar-perf's 1 ms; scenarios keep 5 ms, which "
                                                                  "spares the 2-core lab's brokers)")
    producer_dedup: bool = Field(False, description="stable producer names and broker deduplication")
    max_outstanding: int = Field(1000, ge=1, description="unacknowledged sends per producer")
    send_timeout_ms: int = Field(10000, ge=0)
    subscription_type: SubscriptionType = "failover"
    consumers: int = Field(1, ge=1, le=16, description="consumers per topic per region")
    drain_timeout_s: float = Field(60.0, ge=0, description="max wait for regions to catch up after sending stops")
    drain_idle_s: float = Field(3.0, ge=0, description="quiet period that ends the drain early")
    reader_drain: bool = Field(True, description="finally read every topic from the earliest message")
    consume_after_producers: bool = Field(False, description="consumers subscribe at the start but receive only "
                                                             "once the region's producers are done: `bench load` "
                                                             "gives the producers the machine, as pulsar-perf has it")
    warmup_s: float = Field(5.0, ge=0, description="unrecorded load first, so freshly started JVMs are warm")
    billing: BillingWorkload | None = Field(None, description="billing systems instead of generic producers")
    history_format: HistoryFormat = Field("jsonl", description="how the workers (either driver) write their "
                                                                "history: jsonl (the default: readable by people "
                                                                "and other tools) or arrow (record batches: cheaper "
                                                                "to write and faster to check, measured)")
    driver: Driver = Field("python", description="the producers' client: python (pulsar-client) or go "
                                                 "(pulsar-client-go, for rates Python cannot reach)")
    failover: FailoverSpec = FailoverSpec()
    replicated_subscription: bool = Field(False, description="consumers replicate their subscription's state to "
                                                             "the other clusters (PIP-33)")

    @model_validator(mode="after")
    def _sane(self) -> "WorkloadSpec":
        moving = [name for name, on in (("failover", self.failover.mode != "none"),
                                        ("replicated_subscription", self.replicated_subscription)) if on]
        if moving and self.driver == "go":
            raise ValueError(f"{' and '.join(moving)}: not in the go driver's producers; use driver: python")
        if self.billing is not None:
            if self.driver != "python" or self.processes != 1:
                raise ValueError("the billing workload runs on the python driver in one process per region")
            if moving:
                raise ValueError(f"{' and '.join(moving)}: not in the billing workload")
            return self
        if self.producers < self.processes:
            raise ValueError(f"producers ({self.producers}) must be at least processes ({self.processes}): "
                             "each producer process runs at least one producer")
        if self.producers < self.topics:
            raise ValueError(f"producers ({self.producers}) must be at least topics ({self.topics}): "
                             "each producer writes one topic")
        return self

    @property
    def ordered(self) -> bool:
        return self.subscription_type in ORDERED
