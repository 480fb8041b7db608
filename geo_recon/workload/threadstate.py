"""The client's own threads keep one Python thread state: the biggest cost of a Python producer was this.

pulsar-client calls back into Python from its C++ threads through pybind11, whose ``gil_scoped_acquire``
makes a Python thread state on a thread that has none and frees it when it lets the GIL go: once a
callback, and again for each copy and release of the callback object the client makes on that thread. With
CPython 3.11 each new state also maps its frame stack (``mmap``) and each freed one unmaps it, and an
``munmap`` in a process whose threads run on both cores is a TLB shootdown, an interrupt to the other core.
Measured with ``perf`` on the lab, the bare client sending 30k msg/s: 71% of its CPU in the kernel (futex
wakes, context switches, ``munmap`` shootdowns), ``PyThreadState_New`` on the I/O thread. One
``PyGILState_Ensure`` on that thread that is never released keeps its state alive, and pybind11 then finds
and reuses it: the same client sent 92k to 115k msg/s at 7 to 8 CPU-us a message instead of 30k at 33.

A kept state lives as long as its thread (the client's I/O threads end with the client); the interpreter
clears it at exit. On a thread that already has a state (a Python thread) it only adds one to its count.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable


def keeper() -> tuple[set[int], Callable[[], None]]:
    """``(kept, keep)``: ``keep()`` keeps the calling thread's Python state for good and adds the thread to
    ``kept``; a callback calls it when ``threading.get_ident() not in kept`` (a set lookup a call)."""
    kept: set[int] = set()
    ensure = ctypes.pythonapi.PyGILState_Ensure  # with the GIL held: its state's count + 1, never released
    ensure.restype = ctypes.c_int
    ident = threading.get_ident

    def keep() -> None:
        thread = ident()
        if thread not in kept:
            ensure()
            kept.add(thread)

    return kept, keep
