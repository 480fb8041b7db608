"""Process-wide memory tuning for the big-array work of the checker; called by entry points, never on import.

The checker allocates and frees many arrays of hundreds of MB. By default glibc
serves each one with a fresh mmap and returns it on free, so every array is
page-faulted in again; on some virtual machines a fault costs tens of
microseconds and the kernel time exceeds the computing time. Keeping freed
memory in the heap for reuse removes most of it (peak RSS is unchanged). One
malloc arena for every thread keeps that memory shared: the checker's threads
(regions checked at the same time) then reuse it instead of faulting in arenas
of their own.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Ask glibc to serve large allocations from one heap and keep freed memory, and numpy not to ask for huge
    pages; False where glibc cannot be tuned."""
    small_pages_for_arrays()
    libc = _libc()
    try:
        return libc is not None and bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)) and bool(libc.mallopt(_M_ARENA_MAX, 1))
    except AttributeError:
        return False


def small_pages_for_arrays() -> bool:
    """Stop numpy from asking the kernel for transparent huge pages for large arrays (it does by default).

    On the 2-core VM measured, a fresh huge page costs more than the 512 small
    pages it replaces: the small ones are mostly pages just freed, already backed
    by the host, a huge page needs 2 MiB of contiguous memory that is not (220 MB
    of fresh arrays: 0.28 to 0.99 CPU-s with huge pages, 0.18 to 0.19 without).
    False where numpy has no such switch."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        return False
    switch(False)
    return True


def release_free_memory() -> bool:
    """Give the pages of freed heap memory back to the system (glibc ``malloc_trim``); False where not possible.

    With :func:`tune_allocator` freed arrays stay in the heap, resident; between
    the phases of reading a large history the next phase's arrays rarely fit in
    the holes the last one left, so without this they add up in the peak RSS.
    """
    libc = _libc()
    try:
        return libc is not None and bool(libc.malloc_trim(0))
    except AttributeError:
        return False


def _libc() -> ctypes.CDLL | None:
    """The C library this process runs with (the symbols already loaded: no ``find_library``, which starts a
    process, whose peak RSS then counts a copy of this one's)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None
