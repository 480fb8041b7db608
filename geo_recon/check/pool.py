"""A minimal process pool for parsing history chunks: ``python -m geo_recon.check.pool`` workers on pipes.

Unlike multiprocessing's spawn it never re-imports the caller's ``__main__``
(so library callers need no ``if __name__ == "__main__"`` guard), and unlike
fork it never copies a parent that may hold Arrow threads. Tasks go round-robin
to workers and results come back in task order. Messages are pickles (protocol 5)
with an 8-byte length prefix, followed by their out-of-band buffers, each with
its length.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pickle
import struct
import subprocess
import sys
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import numpy as np

from geo_recon.errors import GeoReconError

_HEADER = struct.Struct("<Q")
PIPE_BYTES = 1 << 20


def _send(stream: IO[bytes], obj: Any) -> None:
    """The pickle, then its large buffers (numpy arrays) apart: written from where they are, never copied into
    the pickle first, and read into memory of their own, never copied out of it."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.write(_HEADER.pack(len(buffers)))
    for buffer in buffers:
        raw = buffer.raw()
        stream.write(_HEADER.pack(raw.nbytes))
        stream.write(raw)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytearray:
    out = bytearray(size)
    _read_into(stream, memoryview(out))
    return out


def _read_buffer(stream: IO[bytes], size: int) -> np.ndarray:
    """A large buffer (an array's data) read into an uninitialised array: a ``bytearray`` is zero-filled first,
    one more pass over hundreds of MB of fresh memory."""
    out = np.empty(size, dtype=np.uint8)
    _read_into(stream, memoryview(out))
    return out


def _read_into(stream: IO[bytes], view: memoryview) -> None:
    size = len(view)
    done = 0
    while done < size:
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise EOFError
        done += got


def _receive(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    data = _read_exactly(stream, size)
    (count,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    buffers = [_read_buffer(stream, _HEADER.unpack(_read_exactly(stream, _HEADER.size))[0]) for _ in range(count)]
    return pickle.loads(data, buffers=buffers)


class WorkerError(GeoReconError):
    """A worker process failed (a bug, or the machine ran out of something)."""


def map_in_order(function: str, tasks: Iterable[Any], *, workers: int, in_flight: int = 2,
                 here: int = 0) -> Iterator[Any]:
    """``function(task)`` for each task in ``workers`` processes; results in task order.

    ``function`` is "module:name", imported by each worker. The first ``here`` tasks run in this process, once
    the workers have theirs: a worker spends its first few tenths of a second starting Python and importing,
    which this process would otherwise spend waiting.
    """
    procs = [subprocess.Popen([sys.executable, "-m", "geo_recon.check.pool", function], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE) for _ in range(workers)]
    for proc in procs:  # results are tens of MB: a larger pipe means fewer switches between the processes
        assert proc.stdout is not None
        _widen(proc.stdout.fileno())
    try:
        remaining = iter(tasks)
        mine = list(itertools.islice(remaining, here))
        pending: deque[int] = deque()  # worker of each task sent and not yet received, in task order
        sent = 0

        def send(task: Any) -> None:
            nonlocal sent
            worker = sent % workers
            stdin = procs[worker].stdin
            assert stdin is not None
            _send(stdin, task)
            pending.append(worker)
            sent += 1

        for task in itertools.islice(remaining, in_flight * workers):
            send(task)
        if mine:
            local = _function(function)
            for task in mine:
                yield local(task)
        for task in remaining:
            if len(pending) >= in_flight * workers:
                yield _result(procs[pending.popleft()])
            send(task)
        while pending:
            yield _result(procs[pending.popleft()])
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _widen(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; a no-op where not possible)."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass


def _result(proc: subprocess.Popen[bytes]) -> Any:
    assert proc.stdout is not None
    try:
        ok, value = _receive(proc.stdout)
    except EOFError:
        raise WorkerError(f"a parsing worker (pid {proc.pid}) died; exit code {proc.poll()}") from None
    if not ok:
        raise WorkerError(f"a parsing worker failed:\n{value}")
    return value


def _serve(function: Callable[[Any], Any]) -> None:
    stdin = sys.stdin.buffer
    # the protocol owns the original stdout; anything else printed to fd 1 goes to stderr instead
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while True:
        try:
            task = _receive(stdin)
        except EOFError:
            return
        try:
            reply = (True, function(task))
        except Exception:  # noqa: BLE001 - reported to the parent, which raises
            reply = (False, traceback.format_exc())
        _send(stdout, reply)


def _function(spec: str) -> Callable[[Any], Any]:
    """The function named "module:name"."""
    module_name, _, name = spec.partition(":")
    module = __import__(module_name, fromlist=[name])
    return getattr(module, name)  # type: ignore[no-any-return]


def main(argv: list[str]) -> None:
    from geo_recon.check.tuning import tune_allocator

    tune_allocator()
    _serve(_function(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
