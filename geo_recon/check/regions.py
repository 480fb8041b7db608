"""Per observing region: the facts every detector shares, then one detector per anomaly.

All functions here are pure: numpy arrays in, counts and cases out. The work
that grows with the number of receipts is a few vectorised passes (first
receipt per message, receipt counts, a radix sort per consumer for ordering);
everything that can only happen on an anomaly (several receipts of one
message, differing msg_ids) is done on the small set of rows involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geo_recon.check.cases import (
    DuplicateCase,
    LostCase,
    RecoveredCase,
    RedeliveredCase,
    ReorderedCase,
    Sighting,
    StoredNotConsumedCase,
    UnexpectedCase,
)
from geo_recon.check.model import (
    FLAG_READER,
    KEY_ORDERED,
    NEVER,
    NO_TIME,
    ORDERING_SHIFT,
    UNORDERED,
    History,
    Messages,
    Outcome,
    Receipts,
)

SIGHTINGS_SHOWN = 5

#: per Outcome code: is a receipt of this send part of the ordering check? (not when it never happened)
_ORDER_CHECKED = np.array([o not in (Outcome.NEVER_INVOKED, Outcome.FAIL) for o in sorted(Outcome)], dtype=bool)


@dataclass(frozen=True, slots=True)
class Detection:
    """What one detector found in one region: a count and the first cases."""

    count: int
    cases: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """What detectors need besides the arrays: names, the run's start, how many cases to keep."""

    history: History
    t0: int
    max_cases: int
    #: rows (messages) whose send never happened (never invoked, or failed), and whose outcome is unknown
    not_sent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unknown: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @staticmethod
    def of(history: History, *, t0: int, max_cases: int) -> Context:
        outcome = history.messages.outcome
        return Context(history=history, t0=t0, max_cases=max_cases,
                       not_sent=np.flatnonzero((outcome == Outcome.NEVER_INVOKED) | (outcome == Outcome.FAIL)),
                       unknown=np.flatnonzero((outcome == Outcome.INFO) | (outcome == Outcome.PENDING)))

    def seconds(self, t: int) -> float:
        return round((int(t) - self.t0) / 1e9, 6)


@dataclass(frozen=True, slots=True)
class RegionFacts:
    """Derived once per region; shared by the detectors."""

    code: int
    name: str
    receipts: Receipts  #: times already corrected by clock offsets
    reader: np.ndarray | None  #: bool per receipt, None when the region has no reader receipts
    first_consumer: np.ndarray  #: int64 per message: first consumer receipt time, NEVER if none
    received: np.ndarray  #: bool per message: any receipt (consumer or reader)
    multi_rows: np.ndarray  #: receipt rows of messages received more than once or with differing msg_ids
    not_first: np.ndarray  #: receipt rows that repeat a (message, consumer process) already received


def region_facts(messages: Messages, receipts: Receipts, *, code: int, name: str) -> RegionFacts:
    m = len(messages)
    msg = receipts.msg
    reader = (receipts.flags & FLAG_READER) != 0
    has_reader = bool(reader.any())
    if has_reader:
        consumer_rows = np.flatnonzero(~reader)
        msg_c, time_c, hash_c = msg[consumer_rows], receipts.time[consumer_rows], receipts.msg_hash[consumer_rows]
    else:
        msg_c, time_c, hash_c = msg, receipts.time, receipts.msg_hash
    first = np.full(m, NEVER, dtype=np.int64)
    np.minimum.at(first, msg_c, time_c)
    received = first != NEVER
    count_c = np.bincount(msg_c, minlength=m)
    candidate = count_c >= 2
    if has_reader:
        msg_r, hash_r = msg[reader], receipts.msg_hash[reader]
        received[msg_r] = True
        candidate |= np.bincount(msg_r, minlength=m) >= 2
        some_hash = np.zeros(m, dtype=np.int64)
        some_hash[msg_c] = hash_c  # for messages with one consumer receipt this is its msg_id
        differs = (count_c[msg_r] == 1) & (some_hash[msg_r] != hash_r)
        candidate[msg_r[differs]] = True
    multi_rows = np.flatnonzero(candidate[msg]) if candidate.any() else np.zeros(0, dtype=np.int64)

    not_first = np.zeros(0, dtype=np.int64)
    if len(multi_rows):
        rows = multi_rows if not has_reader else multi_rows[~reader[multi_rows]]
        # rows are in (process, time, file) order, so the first row of each (message, process) is its first receipt
        order = np.lexsort((rows, receipts.process[rows], msg[rows]))
        r = rows[order]
        repeat = np.zeros(len(r), dtype=bool)
        repeat[1:] = (msg[r][1:] == msg[r][:-1]) & (receipts.process[r][1:] == receipts.process[r][:-1])
        not_first = np.sort(r[repeat])
    return RegionFacts(code=code, name=name, receipts=receipts, reader=reader if has_reader else None,
                       first_consumer=first, received=received, multi_rows=multi_rows, not_first=not_first)


# --------------------------------------------------------------------------- helpers


def _sighting(ctx: Context, facts: RegionFacts, row: int) -> Sighting:
    rec = facts.receipts
    return Sighting(process=ctx.history.processes[rec.process[row]], at_s=ctx.seconds(rec.time[row]),
                    line=ctx.history.ref_text(int(rec.ref[row])), ref=int(rec.ref[row]),
                    reader=bool(facts.reader is not None and facts.reader[row]))


def _first_rows(facts: RegionFacts, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the messages of ``rows``: (message, its earliest row among ``rows``), sorted by (time, message)."""
    rec = facts.receipts
    order = np.lexsort((rec.ref[rows], rec.time[rows], rec.msg[rows]))
    r = rows[order]
    head = np.ones(len(r), dtype=bool)
    head[1:] = rec.msg[r][1:] != rec.msg[r][:-1]
    firsts = r[head]
    by_time = np.lexsort((rec.msg[firsts], rec.time[firsts]))
    return rec.msg[firsts][by_time], firsts[by_time]


def _rows_of(facts: RegionFacts, wanted: np.ndarray) -> np.ndarray:
    """Receipt rows whose message is flagged in the boolean per-message array ``wanted``."""
    return np.flatnonzero(wanted[facts.receipts.msg])


def _name(names: Sequence[str], code: int) -> str | None:
    return names[code] if code >= 0 else None


# --------------------------------------------------------------------------- detectors


def first_lost(ctx: Context, *, received: np.ndarray) -> np.ndarray:
    """The messages whose lost cases are shown: the first ``max_cases`` lost ones by ok time."""
    messages = ctx.history.messages
    idx = np.flatnonzero((messages.outcome == Outcome.OK) & ~received)
    k = ctx.max_cases
    if len(idx) > k:
        if not k:
            return idx[:0]
        times = messages.done_time[idx]
        kth = np.partition(times, k - 1)[k - 1]  # ties at the k-th time are broken by row, as everywhere
        idx = np.concatenate([idx[times < kth], idx[times == kth][: k - int((times < kth).sum())]])
    return idx[np.lexsort((idx, messages.done_time[idx]))]


def detect_lost(ctx: Context, *, code: int, received: Sequence[np.ndarray | None], picked: np.ndarray,
                first_seen: dict[int, dict[int, int]]) -> Detection:
    """Acknowledged messages never received in region ``code`` (consumer or reader).

    ``picked`` are the messages to explain (:func:`first_lost`); ``first_seen`` gives, per region code, the
    first consumer receipt time of those messages where there is one.
    """
    messages = ctx.history.messages
    here = received[code]
    assert here is not None
    count = int(np.count_nonzero((messages.outcome == Outcome.OK) & ~here))
    if not count:
        return Detection(0)
    names = ctx.history
    cases = []
    for m in picked.tolist():
        seen = []
        for other, flags in enumerate(received):
            if other == code or flags is None or not flags[m]:
                continue
            t = first_seen.get(other, {}).get(m)
            seen.append((names.region_names[other], None if t is None else ctx.seconds(t)))
        cases.append(LostCase(
            region=names.region_names[code], producer=names.producers[messages.producer[m]],
            seq=int(messages.seq[m]), key=_name(names.keys, int(messages.key[m])),
            origin=_name(names.region_names, int(messages.origin[m])) or "?",
            acked_s=ctx.seconds(messages.done_time[m]), ack_line=names.ref_text(int(messages.done_ref[m])),
            seen_in=tuple(seen)))
    return Detection(count, tuple(cases))


def detect_stored_not_consumed(ctx: Context, facts: RegionFacts) -> Detection:
    """Acknowledged messages only the end-of-run reader saw in this region."""
    messages = ctx.history.messages
    only_reader = (messages.outcome == Outcome.OK) & facts.received & (facts.first_consumer == NEVER)
    count = int(only_reader.sum())
    if not count:
        return Detection(0)
    idx = np.flatnonzero(only_reader)
    pick = idx[np.lexsort((idx, messages.done_time[idx]))[: ctx.max_cases]]
    wanted = np.zeros(len(messages), dtype=bool)
    wanted[pick] = True
    msgs, rows = _first_rows(facts, _rows_of(facts, wanted))
    row_of = dict(zip(msgs.tolist(), rows.tolist(), strict=True))
    h = ctx.history
    return Detection(count, tuple(
        StoredNotConsumedCase(region=facts.name, producer=h.producers[messages.producer[m]], seq=int(messages.seq[m]),
                              origin=_name(h.region_names, int(messages.origin[m])) or "?",
                              acked_s=ctx.seconds(messages.done_time[m]),
                              ack_line=h.ref_text(int(messages.done_ref[m])),
                              reader=_sighting(ctx, facts, row_of[int(m)]))
        for m in pick))


def _hash_groups(facts: RegionFacts, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (message, msg_id hash, receipt order) and a flag marking each group's first row."""
    rec = facts.receipts
    order = np.lexsort((rows, rec.msg_hash[rows], rec.msg[rows]))
    r = rows[order]
    head = np.ones(len(r), dtype=bool)
    head[1:] = (rec.msg[r][1:] != rec.msg[r][:-1]) | (rec.msg_hash[r][1:] != rec.msg_hash[r][:-1])
    return r, head


def _groups(facts: RegionFacts, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by (message, msg_id hash): (sorted rows, group starts, group message, group first time)."""
    rec = facts.receipts
    r, head = _hash_groups(facts, rows)
    starts = np.flatnonzero(head)
    return r, starts, rec.msg[r[starts]], np.minimum.reduceat(rec.time[r], starts)


def _by_time(rows: list[int], rec: Receipts) -> list[int]:
    return sorted(rows, key=lambda x: (int(rec.time[x]), int(rec.ref[x])))


def detect_duplicates(ctx: Context, facts: RegionFacts) -> Detection:
    """Distinct msg_ids beyond the first per (producer, seq), over consumer and reader receipts."""
    if not len(facts.multi_rows):
        return Detection(0)
    rec = facts.receipts
    r, starts, group_msg, group_time = _groups(facts, facts.multi_rows)
    # groups are sorted by message: a message's groups are consecutive
    msg_starts = np.flatnonzero(np.r_[True, group_msg[1:] != group_msg[:-1]])
    distinct = np.diff(np.r_[msg_starts, len(group_msg)])
    count = int((distinct - 1).sum())
    if not count:
        return Detection(0)
    dup = np.flatnonzero(distinct > 1)
    first_time = np.minimum.reduceat(group_time, msg_starts)[dup]
    chosen = dup[np.lexsort((group_msg[msg_starts[dup]], first_time))[: ctx.max_cases]]
    ends = np.r_[starts[1:], len(r)]
    h, messages = ctx.history, ctx.history.messages
    cases = []
    for i in chosen.tolist():
        g0, g1 = int(msg_starts[i]), int(msg_starts[i] + distinct[i])
        firsts = [_by_time(r[starts[g]:ends[g]].tolist(), rec)[0] for g in range(g0, g1)]
        m = int(group_msg[g0])
        cases.append(DuplicateCase(region=facts.name, producer=h.producers[messages.producer[m]],
                                   seq=int(messages.seq[m]),
                                   copies=tuple(_sighting(ctx, facts, x) for x in _by_time(firsts, rec))))
    return Detection(count, tuple(cases))


def detect_redelivered(ctx: Context, facts: RegionFacts) -> Detection:
    """Consumer receipts beyond the first of the same (producer, seq, msg_id)."""
    if not len(facts.multi_rows):
        return Detection(0)
    rec = facts.receipts
    rows = facts.multi_rows if facts.reader is None else facts.multi_rows[~facts.reader[facts.multi_rows]]
    if not len(rows):
        return Detection(0)
    r, starts, group_msg, group_time = _groups(facts, rows)
    sizes = np.diff(np.r_[starts, len(r)])
    count = int((sizes - 1).sum())
    if not count:
        return Detection(0)
    busy = np.flatnonzero(sizes > 1)
    # per message, its most delivered msg_id (then the earliest); messages ordered by that group's first receipt
    order = np.lexsort((group_time[busy], -sizes[busy], group_msg[busy]))
    best = busy[order]
    best = best[np.r_[True, group_msg[best][1:] != group_msg[best][:-1]]]
    chosen = best[np.lexsort((group_msg[best], group_time[best]))[: ctx.max_cases]]
    h, messages = ctx.history, ctx.history.messages
    cases = []
    for g in chosen.tolist():
        members = _by_time(r[starts[g]:starts[g] + sizes[g]].tolist(), rec)
        m = int(group_msg[g])
        cases.append(RedeliveredCase(region=facts.name, producer=h.producers[messages.producer[m]],
                                     seq=int(messages.seq[m]), deliveries=len(members),
                                     sightings=tuple(_sighting(ctx, facts, x) for x in members[:SIGHTINGS_SHOWN])))
    return Detection(count, tuple(cases))


def detect_reordered(ctx: Context, facts: RegionFacts) -> Detection:
    """First-time consumer receipts below the highest seq that consumer already got from that producer.

    Per consumer process (receipts are already in time order), a stable radix
    sort by group (producer, or producer and key for Key_Shared) keeps each
    group's receipts in time order. With ``value = group * (M + 1) + message``
    the running maximum never crosses from one group into the next, so one
    ``maximum.accumulate`` serves every group, and a receipt is reordered when
    its value is below the running maximum just before it (within a producer,
    a higher message row is a higher seq).
    """
    rec = facts.receipts
    messages = ctx.history.messages
    n, m = len(rec), len(messages)
    if n == 0:
        return Detection(0)
    ordering = (rec.flags >> ORDERING_SHIFT) & 3
    eligible = ordering != UNORDERED
    if facts.reader is not None:
        eligible &= ~facts.reader
    eligible &= _ORDER_CHECKED[messages.outcome[rec.msg]]
    eligible[facts.not_first] = False
    everything = bool(eligible.all())
    rows = None if everything else np.flatnonzero(eligible)
    if rows is not None and not len(rows):
        return Detection(0)
    del eligible
    msg = rec.msg if rows is None else rec.msg[rows]
    producer = messages.producer[msg]
    is_key = (ordering if rows is None else ordering[rows]) == KEY_ORDERED
    del ordering
    if is_key.any():
        n_producers = max(len(ctx.history.producers), 1)
        key = messages.key[msg].astype(np.int64) + 1
        group = np.where(is_key, (key * n_producers + producer) * 2 + 1, producer.astype(np.int64) * 2)
        del key
    else:
        group = producer * 2
    del producer, is_key
    top = int(group.max())
    small = np.uint8 if top < 256 else np.uint16 if top < 65536 else None
    if small is not None:
        group = group.astype(small)  # a radix sort, and a tenth of the memory
    process = rec.process if rows is None else rec.process[rows]
    cuts = np.flatnonzero(process[1:] != process[:-1]) + 1
    bounds = [0, *cuts.tolist(), len(process)]
    del process, cuts
    flagged_parts, setter_parts = [], []
    safe = top * (m + 1) + m < np.iinfo(np.int64).max
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        g = group[a:b]
        order = np.argsort(g, kind="stable")
        gs = g[order]
        value = msg[a:b][order]
        if safe:
            offset = gs.astype(np.int64)
            offset *= m + 1
            value += offset
        else:  # enormous key spaces: number the groups instead
            starts = np.empty(len(gs), dtype=bool)
            starts[0] = True
            np.not_equal(gs[1:], gs[:-1], out=starts[1:])
            offset = np.cumsum(starts, dtype=np.int64)
            offset *= m + 1
            value += offset
        del gs, offset
        running = np.maximum.accumulate(value)
        at = np.flatnonzero(value[1:] < running[:-1]) + 1
        if len(at):
            # the receipt that set the maximum: where the running maximum first reached its value
            setter = np.searchsorted(running, running[at - 1], side="left")
            flagged_parts.append((order[at] + a) if rows is None else rows[a:b][order[at]])
            setter_parts.append((order[setter] + a) if rows is None else rows[a:b][order[setter]])
    if not flagged_parts:
        return Detection(0)
    flagged_rows = np.concatenate(flagged_parts)
    setter_rows = np.concatenate(setter_parts)
    order = np.lexsort((rec.msg[flagged_rows], rec.process[flagged_rows], rec.time[flagged_rows]))
    h = ctx.history
    cases = []
    for i in order[: ctx.max_cases]:
        row, prev = int(flagged_rows[i]), int(setter_rows[i])
        message = int(rec.msg[row])
        keyed = ((int(rec.flags[row]) >> ORDERING_SHIFT) & 3) == KEY_ORDERED
        cases.append(ReorderedCase(
            region=facts.name, process=h.processes[rec.process[row]], producer=h.producers[messages.producer[message]],
            seq=int(messages.seq[message]), key=_name(h.keys, int(messages.key[message])) if keyed else None,
            at=_sighting(ctx, facts, row), after_seq=int(messages.seq[rec.msg[prev]]),
            after=_sighting(ctx, facts, prev)))
    return Detection(len(flagged_rows), tuple(cases))


def _received_among(ctx: Context, facts: RegionFacts, among: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, first messages, their first rows) of the messages ``among`` that this region received."""
    got = among[facts.received[among]]
    if not len(got):
        return 0, np.zeros(0, np.int64), np.zeros(0, np.int64)
    count = len(got)
    wanted = np.zeros(len(ctx.history.messages), dtype=bool)
    wanted[got] = True
    msgs, rows = _first_rows(facts, _rows_of(facts, wanted))
    return count, msgs[: ctx.max_cases], rows[: ctx.max_cases]


def detect_unexpected(ctx: Context, facts: RegionFacts) -> Detection:
    """Receipts of a (producer, seq) that was never invoked or whose send failed."""
    count, msgs, rows = _received_among(ctx, facts, ctx.not_sent)
    h, messages = ctx.history, ctx.history.messages
    cases = []
    for msg, row in zip(msgs.tolist(), rows.tolist(), strict=True):
        failed = messages.outcome[msg] == Outcome.FAIL
        cases.append(UnexpectedCase(
            region=facts.name, producer=h.producers[messages.producer[msg]], seq=int(messages.seq[msg]),
            failed_s=ctx.seconds(messages.done_time[msg]) if failed and messages.done_time[msg] != NO_TIME else None,
            fail_line=h.ref_text(int(messages.done_ref[msg])) if failed else None,
            first=_sighting(ctx, facts, row)))
    return Detection(count, tuple(cases))


def detect_recovered(ctx: Context, facts: RegionFacts) -> Detection:
    """Receipts of a send whose outcome was unknown (info, or invoked and never completed)."""
    count, msgs, rows = _received_among(ctx, facts, ctx.unknown)
    h, messages = ctx.history, ctx.history.messages
    cases = []
    for msg, row in zip(msgs.tolist(), rows.tolist(), strict=True):
        info = messages.outcome[msg] == Outcome.INFO
        cases.append(RecoveredCase(
            region=facts.name, producer=h.producers[messages.producer[msg]], seq=int(messages.seq[msg]),
            outcome="info" if info else "pending",
            invoked_s=ctx.seconds(messages.invoke_time[msg]) if messages.invoke_time[msg] != NO_TIME else None,
            completed_s=ctx.seconds(messages.done_time[msg]) if info else None,
            first=_sighting(ctx, facts, row)))
    return Detection(count, tuple(cases))
