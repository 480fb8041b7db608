"""Secrets stay secret: a token given in a clusters file never reaches an error, a log, a history or a report.

Tokens only ever go into request headers and client options; anything that
could carry one back (a server's error reason that echoes the request, an
exception's text) is passed through ``scrub`` with the secrets of the
deployment at hand before it is shown or written.
"""

from __future__ import annotations

from typing import Callable, Iterable

MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words; no real token is this short


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every secret replaced by ``***`` (longest first)."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def scrubbing(write: Callable[[str], None], secrets: Iterable[str | None]) -> Callable[[str], None]:
    """``write``, with every line scrubbed of ``secrets`` first."""
    known = tuple(s for s in secrets if s)
    if not known:
        return write
    return lambda line: write(scrub(line, known))
