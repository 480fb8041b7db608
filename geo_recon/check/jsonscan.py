"""A compiled scanner for the JSONL lines the checker reads most: send and recv events, flat objects.

It accepts a strict subset of JSON and gives up on everything else, so the
reader falls back to its general paths (Arrow's JSON parser, then
:func:`geo_recon.history.parse_line` line by line, the authority that names a
bad line). A line is accepted only when it is one flat object whose ``type``
is a string, whose keys and strings are printable ASCII without escapes,
whose numbers are JSON numbers, whose values are strings, numbers, ``true``,
``false`` or ``null`` (no arrays or objects), whose fields the checker reads
appear at most once and hold their type (a string, or an integer that fits in
64 bits, or null), and nothing but spaces, tabs or a carriage return follow
its closing brace. Whether the accepted line is a valid send or recv event
(required fields, known values) is judged afterwards, on the whole chunk's
columns, by the reader (``ingest._scanned_chunk``).

Strings are returned as codes into a table of distinct (field, bytes) pairs,
built as the scan goes (first-seen order); ``msg_id`` as its 64-bit hash
(``ingest.hash_msg_id``'s, byte for byte).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

#: the fields the scanner extracts, in column order; the others are checked for JSON and skipped
FIELDS = ("type", "f", "region", "process", "producer", "key", "via", "subscription_type", "subscription",
          "cluster", "time", "seq", "msg_id")
STRING_FIELDS = FIELDS[:10]  # coded through the table
TIME, SEQ, MSG_ID = 10, 11, 12  # field ids of the integers and the hashed msg_id
N_STRINGS = len(STRING_FIELDS)

_MAX_KEY = 32


def _key_table() -> tuple[np.ndarray, np.ndarray]:
    """(candidates by key length and first byte, the names' bytes padded): lookups compare at most two names."""
    cand = np.full((_MAX_KEY + 1, 128, 2), -1, dtype=np.int8)
    names = np.zeros((len(FIELDS), _MAX_KEY), dtype=np.uint8)
    for fid, name in enumerate(FIELDS):
        raw = name.encode()
        names[fid, :len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        slot = cand[len(raw), raw[0]]
        slot[0 if slot[0] < 0 else 1] = fid
    return cand, names


_CAND, _NAMES = _key_table()
_LENGTHS = np.array([len(n) for n in FIELDS], dtype=np.int64)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S8 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(8)

# scan results
OK = 0
GAVE_UP = 1  # a line outside the subset: its number is returned
FULL = 2  # more distinct strings than the table holds
ROWS = 3  # more lines than the columns hold

#: columns are first sized for lines of at least this many bytes (a send or recv line has more than 60), so that
#: no pass counts the newlines first; a chunk of shorter lines is scanned again with columns as long as its lines
LINE_BYTES = 40


@njit(cache=True, nogil=True)
def _mix(h):  # type: ignore[no-untyped-def]
    h = h ^ (h >> _S30)
    h = h * _M1
    h = h ^ (h >> _S27)
    h = h * _M2
    return h ^ (h >> _S31)


@njit(cache=True, nogil=True)
def _hash(buf, start, end):  # type: ignore[no-untyped-def]
    """``ingest.hash_msg_id`` of the bytes ``buf[start:end]`` (as uint64)."""
    h = np.uint64(end - start) * _GOLDEN
    p = start
    while p < end:
        word = np.uint64(0)
        shift = np.uint64(0)
        stop = min(p + 8, end)
        while p < stop:
            word |= np.uint64(buf[p]) << shift
            shift += _S8
            p += 1
        h = _mix(h ^ word)
    return _mix(h)


@njit(cache=True, nogil=True)
def _ws(buf, p, n):  # type: ignore[no-untyped-def]
    while p < n and (buf[p] == 32 or buf[p] == 9 or buf[p] == 13):
        p += 1
    return p


def _string_bytes() -> np.ndarray:
    """Per byte value: 0 inside a string of the subset, 1 its closing quote, 2 outside the subset (escapes,
    control bytes, non-ASCII: the general path decides)."""
    out = np.full(256, 2, dtype=np.uint8)
    out[32:128] = 0
    out[34], out[92] = 1, 2
    return out


_STRING_BYTES = _string_bytes()  # one lookup a byte instead of four comparisons (the scan's inner loop)


@njit(cache=True, nogil=True)
def _string_end(buf, p, n):  # type: ignore[no-untyped-def]
    """The position of the closing quote of a string whose first byte is at p, or -1 (outside the subset)."""
    while p < n:
        c = _STRING_BYTES[buf[p]]
        if c:
            return p if c == 1 else -1
        p += 1
    return -1


@njit(cache=True, nogil=True)
def _number_end(buf, p, n):  # type: ignore[no-untyped-def]
    """The end of a JSON number starting at p, or -1 when it is not one."""
    if p < n and buf[p] == 45:
        p += 1
    if p >= n:
        return -1
    if buf[p] == 48:
        p += 1
    elif 49 <= buf[p] <= 57:
        while p < n and 48 <= buf[p] <= 57:
            p += 1
    else:
        return -1
    if p < n and buf[p] == 46:
        p += 1
        if p >= n or not 48 <= buf[p] <= 57:
            return -1
        while p < n and 48 <= buf[p] <= 57:
            p += 1
    if p < n and (buf[p] == 101 or buf[p] == 69):
        p += 1
        if p < n and (buf[p] == 43 or buf[p] == 45):
            p += 1
        if p >= n or not 48 <= buf[p] <= 57:
            return -1
        while p < n and 48 <= buf[p] <= 57:
            p += 1
    return p


@njit(cache=True, nogil=True)
def _literal(buf, p, n, word):  # type: ignore[no-untyped-def]
    """The end of the literal ``word`` at p, or -1."""
    if p + len(word) > n:
        return -1
    for i in range(len(word)):
        if buf[p + i] != word[i]:
            return -1
    return p + len(word)


@njit(cache=True, nogil=True)
def _field(buf, start, end, cand, names, lengths):  # type: ignore[no-untyped-def]
    length = end - start
    if length == 0 or length > 32:
        return -1
    for k in range(2):
        fid = cand[length, buf[start], k]
        if fid < 0:
            return -1
        if lengths[fid] != length:
            continue
        same = True
        for i in range(length):
            if buf[start + i] != names[fid, i]:
                same = False
                break
        if same:
            return fid
    return -1


@njit(cache=True, nogil=True)
def _same(buf, a, a_len, b, b_len):  # type: ignore[no-untyped-def]
    if a_len != b_len:
        return False
    for i in range(a_len):
        if buf[a + i] != buf[b + i]:
            return False
    return True


@njit(cache=True, nogil=True)
def _code(buf, start, end, fid, slots, ent_field, ent_start, ent_len, ent_hash, count):  # type: ignore[no-untyped-def]
    """The table code of (fid, bytes), adding it when new; -1 when the table is full."""
    h = _hash(buf, start, end) ^ (np.uint64(fid + 1) * _M1)
    mask = len(slots) - 1
    slot = np.int64(h & np.uint64(mask))
    length = end - start
    while True:
        e = slots[slot]
        if e < 0:
            if count[0] >= len(ent_field):
                return -1
            e = count[0]
            count[0] += 1
            slots[slot] = e
            ent_field[e] = fid
            ent_start[e] = start
            ent_len[e] = length
            ent_hash[e] = h
            return e
        if ent_hash[e] == h and ent_field[e] == fid and _same(buf, ent_start[e], ent_len[e], start, length):
            return e
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def _scan(buf, codes, ints, msg_hash, present, cand, names, lengths, slots, ent_field, ent_start, ent_len,
          ent_hash, count):  # type: ignore[no-untyped-def]
    """Scan every line of ``buf``: (status, lines scanned). ``codes[f, line]`` is the table code of string field f
    (-1 absent or null), ``ints[0|1, line]`` time and seq, ``present[line]`` a bit per field that held a value
    (not null)."""
    n = len(buf)
    null = np.array([110, 117, 108, 108], dtype=np.uint8)
    true = np.array([116, 114, 117, 101], dtype=np.uint8)
    false = np.array([102, 97, 108, 115, 101], dtype=np.uint8)
    last = np.full(N_STRINGS, -1, dtype=np.int64)
    p = 0
    line = 0
    rows = len(present)
    while p < n:
        if line >= rows:
            return ROWS, line
        for f in range(N_STRINGS):
            codes[f, line] = -1
        seen = 0  # a bit per field, null or not: a field twice is outside the subset
        have = 0
        if buf[p] != 123:  # '{' first: blank or indented lines take the general path
            return GAVE_UP, line
        p = _ws(buf, p + 1, n)
        if p < n and buf[p] == 125:
            return GAVE_UP, line  # {}: no type
        while True:
            if p >= n or buf[p] != 34:
                return GAVE_UP, line
            k_end = _string_end(buf, p + 1, n)
            if k_end < 0:
                return GAVE_UP, line
            fid = _field(buf, p + 1, k_end, cand, names, lengths)
            p = _ws(buf, k_end + 1, n)
            if p >= n or buf[p] != 58:
                return GAVE_UP, line
            p = _ws(buf, p + 1, n)
            if p >= n:
                return GAVE_UP, line
            if fid >= 0:
                bit = 1 << fid
                if seen & bit:
                    return GAVE_UP, line
                seen |= bit
            c = buf[p]
            if c == 34:
                end = _string_end(buf, p + 1, n)
                if end < 0:
                    return GAVE_UP, line
                if fid >= 0:
                    if fid < N_STRINGS:
                        e = last[fid]  # most lines repeat the last line's names: compare before hashing
                        if e < 0 or not _same(buf, ent_start[e], ent_len[e], p + 1, end - p - 1):
                            e = _code(buf, p + 1, end, fid, slots, ent_field, ent_start, ent_len, ent_hash, count)
                            if e < 0:
                                return FULL, line
                            last[fid] = e
                        codes[fid, line] = e
                    elif fid == MSG_ID:
                        msg_hash[line] = np.int64(_hash(buf, p + 1, end))
                    else:
                        return GAVE_UP, line  # a string where an integer belongs
                    have |= 1 << fid
                p = end + 1
            elif c == 45 or 48 <= c <= 57:
                end = _number_end(buf, p, n)
                if end < 0:
                    return GAVE_UP, line
                if fid >= 0:
                    if fid != TIME and fid != SEQ:
                        return GAVE_UP, line  # a number where a string belongs
                    neg = c == 45
                    q = p + 1 if neg else p
                    value = np.int64(0)
                    while q < end:
                        d = buf[q] - 48
                        if d < 0 or d > 9:
                            return GAVE_UP, line  # a fraction or an exponent: not an integer
                        if value > (np.int64(9223372036854775807) - d) // 10:
                            return GAVE_UP, line  # past 64 bits (and -2**63 itself): the general path decides
                        value = value * 10 + d
                        q += 1
                    ints[fid - TIME, line] = -value if neg else value
                    have |= 1 << fid
                p = end
            elif c == 110:
                p = _literal(buf, p, n, null)
                if p < 0:
                    return GAVE_UP, line
            elif c == 116 or c == 102:
                if fid >= 0:
                    return GAVE_UP, line
                p = _literal(buf, p, n, true if c == 116 else false)
                if p < 0:
                    return GAVE_UP, line
            else:
                return GAVE_UP, line  # arrays, objects, anything else
            p = _ws(buf, p, n)
            if p >= n:
                return GAVE_UP, line
            if buf[p] == 44:
                p = _ws(buf, p + 1, n)
                continue
            if buf[p] == 125:
                p += 1
                break
            return GAVE_UP, line
        p = _ws(buf, p, n)
        if p < n:
            if buf[p] != 10:
                return GAVE_UP, line
            p += 1
        present[line] = have
        line += 1
    return OK, line


@dataclass(frozen=True, slots=True)
class Scan:
    """The columns of a scanned chunk (see :func:`scan`)."""

    lines: int
    codes: np.ndarray  # int32 (N_STRINGS, lines): table codes, -1 absent or null
    time: np.ndarray  # int64, valid where present has bit TIME
    seq: np.ndarray
    msg_hash: np.ndarray  # int64, valid where present has bit MSG_ID
    present: np.ndarray  # int32 bit per field that held a value
    table_field: np.ndarray  # per table code: its field
    table_text: list[str]  # per table code: its string


def scan(data: bytes, *, table: int = 1 << 12) -> Scan | None:
    """The send and recv fields of every line of ``data`` (whole lines), or None when a line is outside the
    subset: the caller then takes its general path. ``table``: distinct strings held at first (the table grows to
    two a line when they do not fit)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    rows, counted = len(data) // LINE_BYTES + 1, False
    while True:
        largest = 2 * rows + 1024
        status, found = _scan_with(data, buf, rows, min(table, largest))
        if status == OK or status == GAVE_UP or (status == FULL and table >= largest):
            return found
        if status == FULL:
            table = largest
        if not counted:  # short lines, or many distinct strings: size both by the lines
            rows, counted = data.count(b"\n") + 1, True


def _scan_with(data: bytes, buf: np.ndarray, n_max: int, capacity: int) -> tuple[int, Scan | None]:
    # not filled: the scan writes every line's codes, and the integers where a line holds them (``present``)
    codes = np.empty((N_STRINGS, n_max), dtype=np.int32)
    ints = np.empty((2, n_max), dtype=np.int64)
    msg_hash = np.empty(n_max, dtype=np.int64)
    present = np.empty(n_max, dtype=np.int32)
    slots = np.full(1 << int(2 * capacity - 1).bit_length(), -1, dtype=np.int64)
    ent_field = np.empty(capacity, dtype=np.int8)
    ent_start = np.empty(capacity, dtype=np.int64)
    ent_len = np.empty(capacity, dtype=np.int64)
    ent_hash = np.empty(capacity, dtype=np.uint64)
    count = np.zeros(1, dtype=np.int64)
    status, lines = _scan(buf, codes, ints, msg_hash, present, _CAND, _NAMES, _LENGTHS, slots, ent_field, ent_start,
                          ent_len, ent_hash, count)
    if status != OK:
        return status, None
    e = int(count[0])
    text = [data[s:s + k].decode("ascii") for s, k in zip(ent_start[:e].tolist(), ent_len[:e].tolist(), strict=True)]
    return OK, Scan(lines=lines, codes=codes[:, :lines], time=ints[0, :lines], seq=ints[1, :lines],
                msg_hash=msg_hash[:lines], present=present[:lines], table_field=ent_field[:e].copy(),
                table_text=text)
