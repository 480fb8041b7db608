import os
import signal
import sys
import time

from geo_recon.deploy import procs


def _sleeper(tmp_path, *extra):
    return procs.start([sys.executable, "-c", "import time; time.sleep(60)", *extra],
                       cwd=tmp_path, log_path=tmp_path / "log")


def test_a_started_process_can_be_paused_resumed_and_stopped(tmp_path):
    ref = _sleeper(tmp_path)
    assert procs.state(ref) == "running"
    procs.signal_group(ref, signal.SIGSTOP)
    time.sleep(0.1)
    assert procs.state(ref) == "paused"
    procs.stop(ref, timeout=5)  # resumes before SIGTERM
    assert procs.state(ref) == "dead"


def test_a_reused_pid_is_not_mistaken_for_ours(tmp_path):
    ref = _sleeper(tmp_path)
    try:
        impostor = procs.ProcessRef(ref.pid, ref.start_ticks + 1)
        assert procs.state(impostor) == "dead"
        assert not procs.signal_group(impostor, signal.SIGKILL)
        assert procs.state(ref) == "running"
    finally:
        procs.kill(ref)


def test_processes_are_found_by_their_lab_marker(tmp_path):
    ref = _sleeper(tmp_path, "-Dgeo.recon.lab=zz9test")
    try:
        # `env -C` is exec'ing python: while the kernel sets up the new image, /proc/PID/cmdline reads empty
        procs.wait_for(lambda: ref in procs.find_by_marker("zz9test"), 5, "the sleeper never showed its marker")
        assert ref not in procs.find_by_marker("zz9")
    finally:
        procs.kill(ref)
    assert procs.find_by_marker("zz9test") == []
def test_a_descriptor_our_parent_handed_us_does_not_reach_the_lab(tmp_path):
    # `flock LOCK geo-recon lab up` hands the CLI the lock as an inheritable descriptor; a JVM that kept it
    # would hold the lock until the lab is down.
    read, write = os.pipe()
    os.set_inheritable(write, True)
    ref = procs.start(["sleep", "30"], cwd=tmp_path, log_path=tmp_path / "log")
    try:
        time.sleep(0.2)
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{ref.pid}/fd")) == [0, 1, 2]
    finally:
        procs.kill(ref)
        os.close(read)
        os.close(write)
