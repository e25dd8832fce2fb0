"""The machine floor (edgecnn/machine.py, cython_kernels/machine.h) and how bench prints it:
measured rates are positive for every kernel path this CPU runs, each layer's floor is exactly
MACs / peak + weight bytes / bandwidth with the MACs and weight bytes of summary.summarize, and
`edgecnn bench --per-layer` prints the floor, the ratio and one row per layer."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from edgecnn import machine
from edgecnn.backends import cython as K
from edgecnn.cli import main
from edgecnn.summary import summarize
from edgecnn.tflite.reader import load_tflite

LENET = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", "tf_lenet5_int8_io.tflite")


@pytest.mark.parametrize("isa", K.supported_isas())
def test_peak_rate_of_every_path_is_measured(isa):
    assert machine.peak_macs(1, isa) > 1e8  # even portable C does 10^8 int8 MACs a second


def test_stream_bandwidth_is_measured_per_size_and_threads():
    assert machine.stream_bandwidth(1000) > 1e8
    assert machine.stream_bandwidth(3 << 20, threads=2) > 1e8


def test_model_floor_is_the_summary_formula():
    graph = load_tflite(LENET).graph
    rows = summarize(graph).layers
    f = machine.model_floor(graph, threads=1)
    assert f.isa == K.kernel_isa() and f.peak_macs == machine.peak_macs(1)
    assert [(x.name, x.macs, x.weight_bytes) for x in f.layers] == \
        [(r.name, r.macs, r.weight_bytes) for r in rows]
    for x in f.layers:
        assert x.seconds == x.macs / f.peak_macs + x.weight_bytes / f.bandwidth
    assert f.seconds == sum(x.seconds for x in f.layers) and f.seconds > 0


def test_bench_per_layer_prints_floor_and_layers():
    r = CliRunner().invoke(main, ["bench", LENET, "--threads", "1", "--runs", "2",
                                  "--warmup", "0", "--ref-runs", "0", "--per-layer"])
    assert r.exit_code == 0, r.output
    assert "machine floor" in r.output and "ratio edgecnn/floor" in r.output
    names = [x.name for x in summarize(load_tflite(LENET).graph).layers
             if x.type != "Reshape"]
    table = r.output.split("per layer, 1 thread:")[1]
    for name in names:
        assert f"  {name[:22]}" in table, name
