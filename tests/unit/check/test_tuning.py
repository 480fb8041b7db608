"""Process-wide memory tuning: the switches it relies on exist in the pinned libraries."""

from __future__ import annotations

import numpy as np

from geo_recon.check.tuning import small_pages_for_arrays


def test_numpy_huge_pages_can_be_turned_off() -> None:
    assert small_pages_for_arrays()  # numpy's switch exists: the checker does not silently keep huge pages
    assert np.ones(1 << 20).sum() == 1 << 20  # arrays still work
