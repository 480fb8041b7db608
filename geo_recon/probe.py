"""A produce/consume round trip through a Pulsar service URL, and a quiet logger for the client.

The bottom of the stack: the lab waits on it, the strong scheme's verification
writes its placement probe with it, workers use the logger.
"""

from __future__ import annotations

import logging
import time
import uuid

from geo_recon.errors import LabError


def pulsar_logger(level: int = logging.CRITICAL) -> logging.Logger:
    """A logger for the Pulsar C++ client, which logs every connection and every
    retry. Silent by default (a lab probe has nothing to add); workers attach a
    file handler instead. Without a handler of its own, Python would print
    each record bare on stderr."""
    logger = logging.getLogger("geo_recon.pulsar_client")
    logger.setLevel(level)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def round_trip(service_url: str, timeout: float = 60.0, topic: str | None = None) -> float:
    """Publish one message and consume it back; return the latency in ms."""
    import pulsar  # the client library loads a native module; import only when used

    topic = topic or f"persistent://public/default/geo-recon-ready-{uuid.uuid4().hex[:8]}"
    payload = uuid.uuid4().bytes
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        client = pulsar.Client(service_url, operation_timeout_seconds=10, logger=pulsar_logger())
        try:
            consumer = client.subscribe(topic, "geo-recon-ready", initial_position=pulsar.InitialPosition.Earliest)
            producer = client.create_producer(topic, send_timeout_millis=10000)
            sent = time.monotonic()
            producer.send(payload)
            while True:
                msg = consumer.receive(timeout_millis=10000)
                consumer.acknowledge(msg)
                if msg.data() == payload:
                    return (time.monotonic() - sent) * 1000
        except Exception as exc:  # the broker may still be loading its namespaces
            last_error = exc
            time.sleep(1)
        finally:
            client.close()
    raise LabError(f"no round trip within {timeout:.0f}s: {last_error}")
