"""A compiled loop that folds a history's send lines into one row per message (numba; a pure function of arrays).

Two passes over the lines in file order do what took a dozen whole-column
numpy passes with ``ufunc.at`` (each faulting in fresh temporaries as long as
the column): per message, what was seen, open invokes, the first invoke time,
the completion time and the line the origin, key and sending process come
from; then the line that completed it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from geo_recon.check.model import NO_TIME, Outcome

_INVOKED, _OK, _FAIL, _INFO, _PICKED = 1, 2, 4, 8, 16  # what was seen of a message, in the byte of its outcome
_FOUND = 64  # its completing line found (outcomes are below 8)


@njit(cache=True, nogil=True)
def _fold(send_msg, kind, time, ref, region, process, key, m, no_time, never_invoked, pending, ok, fail,
          info):  # type: ignore[no-untyped-def]
    # only the outputs are allocated, no temporaries: their holes in the heap would not fit the check's arrays
    state = np.zeros(m, dtype=np.uint8)  # what was seen, then the outcome
    invoke_time = np.full(m, no_time, dtype=np.int64)
    done_time = np.full(m, no_time, dtype=np.int64)
    done_ref = np.zeros(m, dtype=np.int64)  # open invokes, then the completing line
    origin = np.full(m, -1, dtype=np.int16)
    sender = np.full(m, -1, dtype=np.int32)
    msg_key = np.full(m, -1, dtype=np.int32)
    n = len(send_msg)
    for i in range(n):
        j = send_msg[i]
        k = kind[i]
        t = time[i]
        s = state[j]
        if (k == 0 and not s & _INVOKED) or not s & _PICKED:  # the first invoke line, else the first line
            origin[j] = region[i]
            sender[j] = process[i]
            msg_key[j] = key[i]
            s |= _PICKED
        if k == 0:
            done_ref[j] += 1
            if not s & _INVOKED or t < invoke_time[j]:
                invoke_time[j] = t
            s |= _INVOKED
        else:
            done_ref[j] -= 1
            if k == 1:  # done at the first ok
                if not s & _OK or t < done_time[j]:
                    done_time[j] = t
                s |= _OK
            else:  # without an ok, at the last fail or info
                if not s & _OK and (done_time[j] == no_time or t > done_time[j]):
                    done_time[j] = t
                s |= _FAIL if k == 2 else _INFO
        state[j] = s
    for j in range(m):
        s = state[j]
        if s & _OK:
            state[j] = ok
        elif s & _INFO:
            state[j] = info
        elif done_ref[j] > 0:
            state[j] = pending
        elif s & _FAIL:
            state[j] = fail
        else:
            state[j] = never_invoked
        done_ref[j] = -1
    # the completing line: the first ok at the first ok time, else the first fail or info at the last such time
    for i in range(n):
        j = send_msg[i]
        k = kind[i]
        s = state[j]
        if k > 0 and not s & _FOUND and time[i] == done_time[j] and (k == 1 or s != ok):
            done_ref[j] = ref[i]
            state[j] = s | _FOUND
    for j in range(m):
        state[j] &= ~np.uint8(_FOUND)
    return state.view(np.int8), invoke_time, done_time, done_ref, origin, sender, msg_key


def fold_sends(*, m: int, send_msg: np.ndarray, kind: np.ndarray, time: np.ndarray, ref: np.ndarray,
               region: np.ndarray, process: np.ndarray, key: np.ndarray) -> dict[str, np.ndarray]:
    """Per message (0..m-1; rows in file order): outcome (ok > info > pending > fail > never invoked),
    invoke_time (the first invoke's, or NO_TIME), done_time (the first ok's; without an ok the last fail/info's;
    or NO_TIME), done_ref (the first line of that kind at that time, or -1), and origin, key and process (from
    the first invoke line, else the first line; -1 without a line)."""
    outcome, invoke_time, done_time, done_ref, origin, process_, key_ = _fold(
        send_msg, kind, time, ref, region, process, key, m, NO_TIME, int(Outcome.NEVER_INVOKED),
        int(Outcome.PENDING), int(Outcome.OK), int(Outcome.FAIL), int(Outcome.INFO))
    return {"outcome": outcome, "invoke_time": invoke_time, "done_time": done_time, "done_ref": done_ref,
            "origin": origin, "process": process_, "key": key_}
