"""Peak memory per engine in a fresh process (edgecnn.peak_memory, used by bench)."""

import os
import subprocess
import sys

import pytest

from edgecnn import peak_memory

DS_CNN = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", "graph",
                      "tf_ds_cnn_int8_io.tflite")


def test_peak_growth_of_each_engine_is_measured_in_a_fresh_process():
    grown = {e: peak_memory.peak_growth(DS_CNN, e) for e in peak_memory.ENGINES}
    # DS-CNN's int8 weights are 39 KiB and its largest activations 40 KiB: every engine's
    # growth is positive and well under 16 MiB once code is loaded before the baseline
    assert all(isinstance(b, int) and 0 < b < 16 << 20 for b in grown.values()), grown


def test_peak_growth_refuses_an_unknown_engine():
    with pytest.raises(ValueError, match="unknown engine 'tvm'"):
        peak_memory.peak_growth("m.tflite", "tvm")


def test_peak_memory_command_line_usage():
    done = subprocess.run([sys.executable, "-m", "edgecnn.peak_memory", "nope"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "usage: python -m edgecnn.peak_memory" in done.stderr
