"""Reference int8 CONCATENATION: LiteRT 2.3 BUILTIN_REF (reference_ops::Concatenation).

A plain copy: LiteRT's Prepare refuses an int8 input whose scale or zero point differs from
the output's (params.make_concat_params), so no value changes. Inputs of equal rank, equal in
every dimension but ``axis`` (0 <= axis < rank, normalized by the caller); out is their join.
"""

from __future__ import annotations

import numpy as np

from .params import ConcatParams


def concat_s8(inputs: list, axis: int, p: ConcatParams, out: np.ndarray) -> None:
    assert len(inputs) == p.inputs_count
    out[...] = np.concatenate(inputs, axis=axis)
