"""What load to drive: the workload part of a scenario (a typed model at the edge)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SubscriptionType = Literal["exclusive", "failover", "key_shared", "shared"]
ORDERED = {"exclusive", "failover", "key_shared"}


class WorkloadSpec(BaseModel):
    """Per region: ``producers`` producers together send ``rate`` messages a second."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(200.0, gt=0, description="messages per second per region (all producers together)")
    duration_s: float = Field(30.0, gt=0)
    message_size: int = Field(100, ge=0, le=5 * 1024 * 1024, description="payload bytes")
    keys: int = Field(100, ge=1, description="distinct message keys")
    producers: int = Field(1, ge=1, le=64, description="producers per region")
    topics: int = Field(1, ge=1, le=64)
    partitions: int = Field(0, ge=0, le=64, description="0: non-partitioned topics")
    batching: bool = False
    producer_dedup: bool = Field(False, description="stable producer names and broker deduplication")
    max_outstanding: int = Field(1000, ge=1, description="unacknowledged sends per producer")
    send_timeout_ms: int = Field(10000, ge=0)
    subscription_type: SubscriptionType = "failover"
    consumers: int = Field(1, ge=1, le=16, description="consumers per topic per region")
    drain_timeout_s: float = Field(60.0, ge=0, description="max wait for regions to catch up after sending stops")
    drain_idle_s: float = Field(3.0, ge=0, description="quiet period that ends the drain early")
    reader_drain: bool = Field(True, description="finally read every topic from the earliest message")
    warmup_s: float = Field(5.0, ge=0, description="unrecorded load first, so freshly started JVMs are warm")

    @model_validator(mode="after")
    def _sane(self) -> "WorkloadSpec":
        if self.producers < self.topics:
            raise ValueError(f"producers ({self.producers}) must be at least topics ({self.topics}): "
                             "each producer writes one topic")
        return self

    @property
    def ordered(self) -> bool:
        return self.subscription_type in ORDERED
