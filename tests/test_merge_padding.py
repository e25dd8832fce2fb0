"""passes.merge_zero_point_padding: a PAD read only by a conv or depthwise conv runs as that
op's padding (no padded copy); the Runtime applies it unless every tensor is kept."""

import os

import numpy as np

from edgecnn import ir, ops
from edgecnn.memory import plan_memory
from edgecnn.passes import merge_zero_point_padding
from edgecnn.prepare import prepare_calls
from edgecnn.runtime import Runtime
from edgecnn.tflite.reader import load_tflite

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
DW_PAD = os.path.join(FIXTURES, "graph", "tf_dw_mult_dilation_int8_io.tflite")
PAD_TANH = os.path.join(FIXTURES, "tf_pad_tanh.tflite")


def _pads(graph):
    return [n for n in graph.nodes if isinstance(n, ops.Pad)]


def _inputs(graph, n, seed):
    rng = np.random.default_rng(seed)
    t = graph.input
    if t.dtype == "int8":
        return [rng.integers(-128, 128, size=t.shape).astype(np.int8) for _ in range(n)]
    return [rng.normal(0, 1, size=t.shape).astype(np.float32) for _ in range(n)]


def test_a_pad_before_a_conv_runs_as_its_padding_with_the_same_bytes():
    """TensorFlow's PAD before a stride-2 depthwise conv (and before a conv): merged, the
    outputs equal the unmerged run's (every tensor kept, the PAD run as its own step), and the
    arena no longer holds the padded copy."""
    for path in (DW_PAD, PAD_TANH):
        graph = load_tflite(path).graph
        merged = merge_zero_point_padding(graph)
        assert _pads(graph) and not _pads(merged), path
        assert len(merged.nodes) == len(graph.nodes) - len(_pads(graph))
        fast, every = Runtime(graph), Runtime(graph, preserve_all=True)
        assert not _pads(fast.graph) and _pads(every.graph)
        for x in _inputs(graph, 4, 3):
            np.testing.assert_array_equal(fast.invoke(x), every.invoke(x), err_msg=path)
        unmerged = plan_memory(graph, prepare_calls(graph)).arena_bytes
        assert fast.arena_bytes <= unmerged, (path, fast.arena_bytes, unmerged)


def test_merge_keeps_pads_that_are_read_twice_or_feed_a_pool_or_an_output():
    graph = load_tflite(DW_PAD).graph
    pad = _pads(graph)[0]
    # the padded tensor also a graph output: it must exist, so the PAD stays
    as_output = graph.replace(outputs=tuple(graph.outputs) + (pad.output.name,))
    assert _pads(merge_zero_point_padding(as_output))
    # a max pool does not pad with the zero point (its padding is skipped taps)
    consumer = graph.consumers(pad.output.name)[0]
    pool = ops.MaxPool2D(consumer.name, (3, 3), (2, 2), inputs=(pad.output.name,),
                         output=consumer.output)
    nodes = tuple(pool if n is consumer else n for n in graph.nodes)
    assert _pads(merge_zero_point_padding(graph.replace(nodes=nodes)))
    # read by the conv and by a second reader
    twice = graph.replace(outputs=tuple(graph.outputs), nodes=graph.nodes + (
        ops.MaxPool2D("second", (1, 1), (1, 1), inputs=(pad.output.name,),
                      output=ir.Tensor("second", pad.output.shape, pad.output.dtype,
                                     pad.output.quant)),))
    assert _pads(merge_zero_point_padding(twice))
