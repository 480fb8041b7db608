"""The parsing pool: results in task order, whether tasks run in the workers or (the first few) here."""

from __future__ import annotations

import math

import pytest

from geo_recon.check import pool


@pytest.mark.parametrize("here", [0, 1, 3, 20])
@pytest.mark.parametrize("n", [0, 1, 7])
def test_results_come_in_task_order(here: int, n: int) -> None:
    tasks = [float(x) for x in range(n)]
    assert list(pool.map_in_order("math:sqrt", tasks, workers=2, in_flight=1, here=here)) == [
        math.sqrt(x) for x in tasks]


def test_a_failing_task_raises_with_the_workers_traceback() -> None:
    with pytest.raises(pool.WorkerError, match="math domain error"):
        list(pool.map_in_order("math:sqrt", [4.0, -1.0, 9.0], workers=2))
