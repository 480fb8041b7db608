"""A started component must not keep descriptors the CLI inherited (e.g. `flock LOCK geo-recon lab up`)."""

import os
import time

from geo_recon.deploy import procs


def test_a_started_process_does_not_inherit_a_lock_descriptor(tmp_path):
    lock = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    os.set_inheritable(lock, True)  # as flock(1) hands it to its command
    ref = procs.start(["sleep", "30"], cwd=tmp_path, log_path=tmp_path / "log")
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and os.readlink(f"/proc/{ref.pid}/exe").endswith("/env"):
            time.sleep(0.05)  # until env has exec'd sleep
        targets = {os.readlink(f"/proc/{ref.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{ref.pid}/fd")}
        assert str(tmp_path / "lock") not in targets
    finally:
        procs.kill(ref)
        os.close(lock)
