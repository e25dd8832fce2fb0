"""The one exact-equality check of the suite: integer results are equal, bit for bit, or the
failure names the first mismatching index with both values (never allclose)."""

from __future__ import annotations

import numpy as np


def assert_exact(actual, expected, what: str = "", names: tuple = ("got", "expected")) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    bad = np.argwhere(actual != expected)
    if bad.size:
        i = tuple(int(v) for v in bad[0])
        raise AssertionError(f"{what}: {len(bad)} of {actual.size} differ; first at {i}: "
                             f"{names[0]} {actual[i]} vs {names[1]} {expected[i]}")
