"""The ``command`` fault: shell commands you give break and heal something (kubectl, a chaos tool,
another lab's own ``geo-recon faults inject``); works on every backend, existing clusters too.

``inject`` must exit 0; ``verify`` (optional) is retried until it exits 0 or
the time limit passes, so a fault that never takes effect fails the run;
``heal`` must exit 0. Each command has ``timeout_s``; its output's last lines
go into the error when it fails (scrubbed of the deployment's secrets).
"""

from __future__ import annotations

import subprocess
import time
from typing import Callable, Iterable

from geo_recon.errors import FaultError
from geo_recon.faults.spec import CommandSpec
from geo_recon.secrets import scrub

VERIFY_EVERY_S = 1.0


def run_command(fault_id: str, step: str, command: str, timeout_s: float, secrets: Iterable[str] = ()
                ) -> subprocess.CompletedProcess[str]:
    """``bash -c command`` under a time limit; ``FaultError`` naming the fault and step if it cannot run."""
    try:
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise FaultError(f"{fault_id}: {step} command did not finish within {timeout_s:g}s: "
                         f"{scrub(command, secrets)}") from None
    except OSError as exc:
        raise FaultError(f"{fault_id}: {step} command could not start: {exc.strerror}") from None


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 3) -> str:
    text = (proc.stderr or proc.stdout or "").strip().splitlines()
    return " | ".join(text[-lines:]) or f"exit code {proc.returncode}"


class CommandFault:
    """One command fault's inject (then verify) and heal."""

    def __init__(self, fault_id: str, spec: CommandSpec, *, secrets: Iterable[str] = (),
                 progress: Callable[[str], None] = lambda _m: None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.fault_id, self.spec, self.secrets = fault_id, spec, tuple(secrets)
        self.progress, self.clock, self.sleep = progress, clock, sleep

    def _must(self, step: str, command: str) -> None:
        proc = run_command(self.fault_id, step, command, self.spec.timeout_s, self.secrets)
        if proc.returncode != 0:
            raise FaultError(scrub(f"{self.fault_id}: {step} command exited with {proc.returncode}: {_tail(proc)}",
                                   self.secrets))

    def inject(self) -> dict[str, float]:
        started = self.clock()
        self._must("inject", self.spec.inject)
        if self.spec.verify is None:
            return {}
        deadline = started + self.spec.timeout_s
        while True:
            proc = run_command(self.fault_id, "verify", self.spec.verify, self.spec.timeout_s, self.secrets)
            if proc.returncode == 0:
                return {"verified_after_s": round(self.clock() - started, 2)}
            if self.clock() > deadline:
                raise FaultError(scrub(f"{self.fault_id}: not in effect: the verify command still exits "
                                       f"{proc.returncode} {self.spec.timeout_s:g}s after inject: {_tail(proc)}",
                                       self.secrets))
            self.sleep(VERIFY_EVERY_S)

    def heal(self) -> None:
        self._must("heal", self.spec.heal)
