"""A graph in a .tflite file is untrusted: each broken graph gets one line naming the operator
and the tensor, exit 2 through the CLI. The files are TensorFlow-converter graphs
(tests/fixtures/tflite/graph/) changed through the schema's object API.
"""

from __future__ import annotations

import os

import flatbuffers
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.errors import EdgecnnError
from edgecnn.tflite import schema
from edgecnn.tflite.reader import from_flatbuffer

GRAPH = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", "graph")
fb = schema.load()


def _model(name):
    with open(os.path.join(GRAPH, name + ".tflite"), "rb") as f:
        return fb.ModelT.InitFromPackedBuf(f.read(), 0)


def _pack(model) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(builder.Output())


def _ops(model, code_name):
    codes = model.operatorCodes
    want = getattr(fb.BuiltinOperator, code_name)
    return [op for op in model.subgraphs[0].operators
            if max(codes[op.opcodeIndex].builtinCode,
                   codes[op.opcodeIndex].deprecatedBuiltinCode) == want]


def _refused(model, pattern, tmp_path):
    data = _pack(model)
    with pytest.raises(EdgecnnError, match=pattern) as e:
        from_flatbuffer(data, "bad.tflite")
    assert "\n" not in str(e.value)
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    r = CliRunner().invoke(main, ["summary", str(path)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.output, r.output


def test_a_cycle_is_refused(tmp_path):
    model = _model("tf_resnet8_int8_io")
    adds = _ops(model, "ADD")
    first_conv = model.subgraphs[0].operators[0]
    first_conv.inputs = [adds[0].outputs[0]] + list(first_conv.inputs[1:])  # stem reads a sum
    _refused(model, r"part of a cycle", tmp_path)


def test_a_dangling_tensor_is_refused(tmp_path):
    model = _model("tf_resnet8_int8_io")
    sub = model.subgraphs[0]
    add = _ops(model, "ADD")[1]
    add.inputs = [add.inputs[0], len(sub.tensors)]  # past the tensor table
    _refused(model, r"operator \d+ \(ADD\) reads tensor \d+, but the subgraph has", tmp_path)


def test_a_tensor_read_before_it_is_written_is_refused(tmp_path):
    model = _model("tf_fire_concat_int8_io")
    sub = model.subgraphs[0]
    cat = _ops(model, "CONCATENATION")[0]
    k = sub.operators.index(cat)
    sub.operators[k], sub.operators[k - 1] = sub.operators[k - 1], sub.operators[k]
    _refused(model, r"\(CONCATENATION\) reads tensor '.*' before any operator writes it",
             tmp_path)


def test_add_shapes_that_do_not_broadcast_are_refused(tmp_path):
    model = _model("tf_resnet8_int8_io")
    sub = model.subgraphs[0]
    add = _ops(model, "ADD")[1]
    add.inputs = [add.inputs[0], sub.inputs[0]]  # (1, 16, 16, 32) + the (1, 32, 32, 3) image
    _refused(model, r"\(ADD\).*do not broadcast", tmp_path)


def test_concat_shapes_that_disagree_are_refused(tmp_path):
    model = _model("tf_fire_concat_int8_io")
    sub = model.subgraphs[0]
    cat = _ops(model, "CONCATENATION")[0]
    cat.inputs = [cat.inputs[0], sub.inputs[0]]  # (1, 7, 7, 16) beside the (1, 32, 32, 3) image
    _refused(model, r"\(CONCATENATION\).*cannot concatenate shapes", tmp_path)


def test_mean_over_the_channel_axis_is_refused(tmp_path):
    model = _model("tf_mean_keepdims_int8_io")
    sub = model.subgraphs[0]
    mean = _ops(model, "MEAN")[0]
    axes = sub.tensors[mean.inputs[1]]
    model.buffers[axes.buffer].data = np.array([3] * len(axes.shape and range(axes.shape[0])),
                                               np.int32).view(np.uint8)
    _refused(model, r"\(MEAN\): MEAN over axes \[3(, 3)*\]", tmp_path)


def test_a_depth_multiplier_that_does_not_divide_is_refused(tmp_path):
    model = _model("tf_dw_mult_dilation_int8_io")
    sub = model.subgraphs[0]
    x = sub.tensors[sub.inputs[0]]  # the image the first depthwise (12 channels) reads
    x.shape = np.array([1, 24, 24, 5], np.int32)
    _refused(model, r"not a multiple of the \d+ input channels", tmp_path)


def test_a_conv_filter_that_fits_no_grouping_is_refused(tmp_path):
    model = _model("tf_grouped_conv_int8_io")
    sub = model.subgraphs[0]
    x = sub.tensors[sub.inputs[0]]  # 8 channels for a filter 2 deep: 4 groups; 7 fit none
    x.shape = np.array([1, 16, 16, 7], np.int32)
    _refused(model, r"neither a convolution nor a grouped one", tmp_path)
