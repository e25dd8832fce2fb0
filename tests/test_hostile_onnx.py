"""Hostile and malformed ONNX files (issue 14's audit list): each is refused with exit 2 and one
line on stderr naming the file and the node or tensor, never a traceback and never exit 1;
--max-memory is applied before anything is allocated; shape inference is linear in the node
count; what ONNX allows (a length-1 Gemm C) is computed as the spec says. Files are built
here with the onnx helper API and raw TensorProto fields.
"""

import os
import resource

import numpy as np
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgecnn import ops
from edgecnn.cli import main
from edgecnn.convert import prepare_float_graph
from edgecnn.converters.onnx_model import load_onnx
from edgecnn.demo import data_dir
from edgecnn.errors import EdgecnnError
from edgecnn.float_runtime import run_float

CALIB = os.path.join(data_dir(), "calib")


def w(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def save(path, nodes, inits=(), in_shape=(1, 1, 8, 8), outputs=("y",), opset=13):
    inits = [i if isinstance(i, TensorProto) else numpy_helper.from_array(i[1], i[0])
             for i in inits]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return str(path)


def conv(*inputs, name="conv", **attrs):
    return helper.make_node("Conv", list(inputs), ["y"], name=name, **attrs)


def raw(name, dims, data, dtype=TensorProto.FLOAT, field="raw_data"):
    t = TensorProto(name=name, data_type=dtype, dims=list(dims))
    if field == "raw_data":
        t.raw_data = data
    else:
        getattr(t, field).extend(data)
    return t


def attr(node, name, **fields):
    a = node.attribute.add()
    a.name = name
    for k, v in fields.items():
        if isinstance(v, list):
            getattr(a, k).extend(v)
        else:
            setattr(a, k, v)
    return node


W = ("w", w(2, 1, 3, 3))
CASES = {
    "raw_data_short": lambda p: save(p, [conv("x", "w")], [raw("w", (2, 1, 3, 3), b"\0" * 60)]),
    "raw_data_not_itemsize": lambda p: save(p, [conv("x", "w")],
                                            [raw("w", (2, 1, 3, 3), b"\0" * 71)]),
    "float_data_short": lambda p: save(p, [conv("x", "w")],
                                       [raw("w", (2, 1, 3, 3), [1.0] * 5, field="float_data")]),
    "dtype_undefined": lambda p: save(p, [conv("x", "w")], [raw("w", (2, 1, 3, 3), b"", 0)]),
    "dtype_unknown": lambda p: save(p, [conv("x", "w")], [raw("w", (2, 1, 3, 3), b"", 99)]),
    "dtype_string": lambda p: save(p, [conv("x", "w")],
                                   [raw("w", (2,), [b"a", b"b"], TensorProto.STRING,
                                        "string_data")]),
    "declared_2gb_no_data": lambda p: save(p, [conv("x", "w")], [raw("w", (1 << 29, 1, 1, 1),
                                                                      b"")]),
    "external_size_mismatch": lambda p: _external(p),
    "external_outside_folder": lambda p: _external(p, location="../../etc/passwd"),
    "pads_wrong_length": lambda p: save(p, [conv("x", "w", pads=[1, 1])], [W]),
    "same_upper_stride_0": lambda p: save(p, [conv("x", "w", auto_pad="SAME_UPPER",
                                                   strides=[0, 0])], [W]),
    "maxpool_no_kernel_shape": lambda p: save(p, [helper.make_node("MaxPool", ["x"], ["y"])]),
    "attribute_wrong_type": lambda p: save(p, [conv("x", "w", pads=[1.0, 1.0, 1.0, 1.0])], [W]),
    "attribute_not_utf8": lambda p: save(p, [attr(conv("x", "w"), "auto_pad", type=3,
                                                  s=b"\xff\xfe")], [W]),
    "constant_without_value": lambda p: save(p, [helper.make_node("Constant", [], ["c"]),
                                                 conv("x", "w")], [W]),
    "node_without_output": lambda p: save(p, [helper.make_node("Relu", ["x"], []),
                                              conv("x", "w")], [W]),
    "conv_bias_wrong_length": lambda p: save(p, [conv("x", "w", "b")], [W, ("b", w(3))]),
    "conv_bias_length_1": lambda p: save(p, [conv("x", "w", "b")], [W, ("b", w(1))]),
    "gemm_bias_wrong_rank": lambda p: save(p, [
        helper.make_node("Flatten", ["x"], ["f"]),
        helper.make_node("Gemm", ["f", "b", "c"], ["y"], transB=1)],
        [("b", w(4, 64)), ("c", w(2, 2, 4))]),
    "batchnorm_params_wrong_length": lambda p: save(p, [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
        [("s", w(2)), ("b", w(1)), ("m", w(1)), ("v", w(1) ** 2)]),
    "conv_zero_filters": lambda p: save(p, [conv("x", "w")], [("w", w(0, 1, 3, 3))]),
    "global_pool_on_2d": lambda p: save(p, [
        helper.make_node("GlobalAveragePool", ["x"], ["y"])], in_shape=(1, 16)),
    "opset_1": lambda p: save(p, [conv("x", "w")], [W], opset=1),
    "opset_99": lambda p: save(p, [conv("x", "w")], [W], opset=99),
    "float_axes": lambda p: save(p, [conv("x", "w", name="c0"), attr(
        helper.make_node("ReduceMean", ["c"], ["y"]), "axes", type=6, floats=[2.0, 3.0])], [W]),
    "reduce_mean_axes_out_of_range": lambda p: save(p, [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("ReduceMean", ["c"], ["y"], axes=[6, 7])], [W]),
    "complex_weights": lambda p: save(p, [conv("x", "w")],
                                      [raw("w", (2, 1, 3, 3), b"\0" * 144, TensorProto.COMPLEX64)]),
    "self_loop": lambda p: save(p, [helper.make_node("Conv", ["x", "w"], ["c"]),
                                    helper.make_node("Add", ["c", "a"], ["a"]),
                                    helper.make_node("Relu", ["a"], ["y"])], [W]),
    "written_twice": lambda p: save(p, [helper.make_node("Conv", ["x", "w"], ["y"]),
                                        helper.make_node("Relu", ["x"], ["y"])], [W]),
    "truncated_protobuf": lambda p: _truncated(p),
}


def _external(p, location="weights.bin"):
    t = raw("w", (2, 1, 3, 3), b"")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "72")):
        e = t.external_data.add()
        e.key, e.value = k, v
    with open(os.path.join(os.path.dirname(str(p)), "weights.bin"), "wb") as f:
        f.write(b"\0" * 40)  # the dims need 72
    return save(p, [conv("x", "w")], [t])


def _truncated(p):
    save(p, [conv("x", "w")], [W])
    blob = open(p, "rb").read()
    with open(p, "wb") as f:
        f.write(blob[: len(blob) - 50])
    return str(p)


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_exit_2_and_one_line(case, tmp_path):
    path = CASES[case](tmp_path / f"{case}.onnx")
    out = str(tmp_path / "out.tflite")
    r = CliRunner().invoke(main, ["convert", path, "--calib", CALIB, "-o", out])
    assert r.exit_code == 2, (case, r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and path in lines[0], r.output
    assert not os.path.exists(out)


def test_pads_that_blow_up_shapes_are_refused_before_allocation(tmp_path):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for pads, limit in ((2600, "512M"), (100_000, "4G")):
        path = save(tmp_path / f"pads{pads}.onnx", [conv("x", "w", pads=[pads] * 4)], [W])
        r = CliRunner().invoke(main, ["convert", path, "--calib", CALIB, "--max-memory", limit,
                                      "-o", str(tmp_path / "out.tflite")])
        assert r.exit_code == 2 and "over --max-memory" in r.output, r.output
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 300_000  # KB


def test_initializers_over_max_memory_are_refused_before_decoding(tmp_path):
    path = save(tmp_path / "big.onnx", [conv("x", "w")], [("w", np.zeros((256, 1, 64, 64),
                                                                          np.float32))])
    with pytest.raises(EdgecnnError, match="over --max-memory 1,000,000"):
        load_onnx(path, max_memory=1_000_000)


def test_shape_inference_is_linear_in_the_node_count(tmp_path, monkeypatch):
    n = 5000
    nodes = [helper.make_node("Conv", ["x", "w"], ["r0"])] + [
        helper.make_node("Relu", [f"r{i}"], [f"r{i + 1}" if i + 1 < n else "y"])
        for i in range(n)]
    path = save(tmp_path / "chain.onnx", nodes, [W])
    calls = []
    original = ops.Activation.out_shape
    monkeypatch.setattr(ops.Activation, "out_shape",
                        lambda self, shapes: calls.append(1) or original(self, shapes))
    graph = prepare_float_graph(load_onnx(path))
    assert len(graph.nodes) == n  # the first ReLU fuses into the conv
    assert len(calls) <= 4 * n  # a few passes over the graph, each once per node


def test_gemm_with_a_length_1_c_broadcasts_as_the_spec_says(tmp_path):
    path = save(tmp_path / "gemm.onnx", [
        helper.make_node("Flatten", ["x"], ["f"]),
        helper.make_node("Gemm", ["f", "b", "c"], ["y"], transB=1, beta=0.5)],
        [("b", w(3, 64)), ("c", np.array([2.0], np.float32))])
    graph = load_onnx(path)
    x = w(2, 8, 8, 1, seed=1)
    want = x.reshape(2, -1) @ w(3, 64).T + 1.0
    np.testing.assert_allclose(run_float(graph, x), want, rtol=1e-5, atol=1e-5)


def test_reduce_mean_negative_axes_are_counted_from_the_end(tmp_path):
    path = save(tmp_path / "rm.onnx", [helper.make_node("Conv", ["x", "w"], ["c"]),
                                       helper.make_node("ReduceMean", ["c"], ["y"],
                                                        axes=[-2, -1], keepdims=0)], [W])
    assert isinstance(load_onnx(path).nodes[-1], ops.Mean)
