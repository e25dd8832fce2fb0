"""A short, fixed-seed run of every fuzz target (fuzz/targets.py) with the builtin mutation
engine: each input must parse or raise an EdgecnnError, within the per-input time limit.
The long runs are ``python fuzz/run_all.py --seconds N``; this only keeps CI honest.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz"))

from engine import fuzz  # noqa: E402
from targets import TARGETS, seeds  # noqa: E402

RUNS = 400
# export_c_names generates and compiles a C project per input; tflite_struct runs each model it
# accepts on the reference and every SIMD path; export_c_asan builds it with ASan+UBSan (3 s an
# input: 1 here, the long runs by hand with fuzz/run_all.py)
RUNS_FOR = {"export_c_names": 60, "tflite_struct": 40, "export_c_asan": 1}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_smoke(target):
    start = time.monotonic()
    runs = RUNS_FOR.get(target, RUNS)
    stats = fuzz(target, seed=20261124, runs=runs, timeout=60 if target == "export_c_asan" else 5)
    failures = [msg for _, msg in stats.bugs + stats.hangs]
    assert not failures, f"{len(failures)} failing inputs, first: {failures[0]}"
    assert stats.runs == runs and time.monotonic() - start < 15
    assert stats.parsed >= min(runs, len(seeds(target))) // 2  # the seeds themselves parse


def test_every_parser_has_seeds():
    for target in TARGETS:
        assert len(seeds(target)) >= 2, target


# Inputs the long runs found, kept as regression cases: (target, bytes).
FOUND = [
    ("spec", b'{"input": {"height": 32, "width": 32, "channels": 1}, "layers": [{"type": "conv", '
             b'"filters": 6, "kernel": 5, "stride": null}]}'),  # conv stride null: int(None)
    ("spec", b'{"input": {"height": 32, "width": 32, "channels": 1}, "layers": [{"type": "maxpool", '
             b'"kernel": "conv"}]}'),  # int("conv")
    ("spec", b'{"input": {"height": 32, "width": 32, "channels": 1}, "layers": [{"type": "adaptive_avgpool", '
             b'"output": 0}]}'),  # modulo by zero
    ("spec", b"[" * 100_000),  # json recursion
    ("onnx_struct", b"555Mw" + b"\xff" * 7 + b"5"),  # Flatten of an empty constant: reshape -1
    ("tflite_struct", bytes.fromhex("5d2407f6f6f6f6f6f600000000604ee312")),  # RELU6 bound
    # 6 / 1e-38 = inf: Python's round(inf) raised OverflowError in the activation-range check
    ("tflite_struct", bytes.fromhex("010000ffad10dee30000ffffffff180dbc")),  # int8 FC with a
    # float32 output tensor: the kernel got a float buffer (ValueError)
    ("tflite_struct", bytes.fromhex("240772656c759b279b9b9b0f19ede140")),  # conv dilation
    # 2^31 - 1 with SAME padding 2^30: int32 input indices overflowed, the Cython kernel segfaulted
]


@pytest.mark.parametrize("target,data", FOUND)
def test_found_inputs_stay_fixed(target, data):
    from targets import run_one
    run_one(target, data)
