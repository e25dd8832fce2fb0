"""ONNX import: the float graph computes what torch computed, and converts bit-exactly.

The .onnx fixtures and torch's forward outputs come from
tests/fixtures/onnx/make_onnx_fixtures.py (legacy and torch.export exporters), so these
tests need onnx but not torch. Small graphs for single ops and failure cases are built
here with onnx.helper.
"""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecnn import ir, ops
from edgecnn.calibrate import calibrate
from edgecnn.convert import prepare_float_graph
from edgecnn.converters.onnx_model import load_onnx
from edgecnn.errors import (ArchitectureError, ModelFormatError, UnsupportedOpError,
                            UsageError)
from edgecnn.float_runtime import run_float, run_float_all
from edgecnn.quantize import quantize_graph
from edgecnn.tflite.writer import write_tflite
from edgecnn.verify import verify

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "onnx")
TS = os.path.join(os.path.dirname(__file__), "fixtures", "torchscript")
FIXTURES = ["lenet5", "lenet5s_bn", "lenet5s_bn_folded", "mixed_opset10",
            "mixed_opset13_dynamic_hw", "mixed_dynamo"]


def fixture(name):
    with np.load(os.path.join(FIX, name + ".npz")) as d:
        return os.path.join(FIX, name + ".onnx"), d["x"].transpose(0, 2, 3, 1).copy(), d["y"]


def input_size(name):
    return 16 if "dynamic_hw" in name else None


def assert_close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def make_model(tmp_path, nodes, inits=None, in_shape=(1, 2, 4, 4), outputs=("y",), opset=13,
               name="m"):
    """A hand-built ONNX file: input "x" (float32), the given nodes and initializers."""
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_float_graph_matches_torch(name):
    path, x, y = fixture(name)
    graph = load_onnx(path, input_size=input_size(name))
    assert_close(run_float(graph, x), y)  # BN unfolded, activations separate
    assert_close(run_float(prepare_float_graph(graph), x), y)  # BN folded, ReLU/ReLU6 fused


def test_batchnorm_eps_comes_from_the_node():
    graph = load_onnx(fixture("lenet5s_bn")[0])
    eps = [layer.eps for layer in graph.nodes if isinstance(layer, ops.BatchNorm)]
    assert eps == pytest.approx([1e-5, 1e-3], rel=1e-6)  # ONNX stores epsilon as float32
    assert not any(isinstance(layer, ops.BatchNorm) for layer in prepare_float_graph(graph).nodes)


def test_batchnorm_hand_built_eps_quarter(tmp_path):
    c = 2
    gamma, beta, mean = rand(c, seed=1), rand(c, seed=2), rand(c, seed=3)
    var = np.abs(rand(c, seed=4)) + 0.1
    w = rand(c, c, 1, 1, seed=5)
    path = make_model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], name="bn",
                         epsilon=0.25)], dict(w=w, g=gamma, b=beta, m=mean, v=var))
    graph = load_onnx(path)
    assert [layer.eps for layer in graph.nodes if isinstance(layer, ops.BatchNorm)] == [0.25]
    x = rand(1, 4, 4, c, seed=6)
    conv = x @ w[:, :, 0, 0].T
    assert_close(run_float(graph, x), (conv - mean) / np.sqrt(var + 0.25) * gamma + beta)


def test_folded_export_equals_the_unfolded_one():
    _, x, _ = fixture("lenet5s_bn")
    unfolded = load_onnx(fixture("lenet5s_bn")[0])
    folded = load_onnx(fixture("lenet5s_bn_folded")[0])
    assert_close(run_float(folded, x), run_float(unfolded, x))


def test_opset10_clip_attributes_and_opset13_constant_inputs_both_give_relu6():
    for name in ("mixed_opset10", "mixed_opset13_dynamic_hw"):
        graph = load_onnx(fixture(name)[0], input_size=16)
        kinds = [layer.kind for layer in graph.nodes if isinstance(layer, ops.Activation)]
        assert kinds[0] == "relu6"


def test_dynamic_batch_is_accepted_and_the_flatten_order_is_chw():
    path, x, y = fixture("lenet5")  # batch is the dim_param "batch"; x holds two images
    graph = load_onnx(path)
    assert graph.input.shape == (1, 32, 32, 1) and x.shape[0] == 2
    assert_close(run_float(graph, x), y)


def test_dynamic_height_width_asks_for_input_size():
    path = fixture("mixed_opset13_dynamic_hw")[0]
    with pytest.raises(ArchitectureError, match="dynamic height or width; pass --input-size"):
        load_onnx(path)
    assert load_onnx(path, input_size=24).input.shape == (1, 24, 24, 3)
    with pytest.raises(ArchitectureError, match="fixed at 16x16; drop --input-size 24"):
        load_onnx(fixture("mixed_opset10")[0], input_size=24)


@pytest.mark.parametrize("name", ["lenet5s_bn", "mixed_dynamo"])
def test_convert_to_int8_is_bit_exact_against_litert(name, tmp_path):
    path, x, _ = fixture(name)
    float_graph = prepare_float_graph(load_onnx(path))
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((8,) + float_graph.input.shape[1:]).astype(np.float32)
               for _ in range(2)]
    int8 = quantize_graph(float_graph, calibrate(float_graph, batches))
    out = str(tmp_path / f"{name}.tflite")
    write_tflite(int8, out)
    report = verify(out)
    assert report.ok, report.to_dict()


def test_matmul_then_add_folds_into_one_dense_layer(tmp_path):
    w, b = rand(32, 5, seed=1), rand(5, seed=2)  # MatMul weights are (in, out)
    path = make_model(tmp_path, [
        helper.make_node("Flatten", ["x"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "w"], ["mm"], name="mm"),
        helper.make_node("Add", ["b", "mm"], ["y"], name="bias")], dict(w=w, b=b))
    graph = load_onnx(path)
    assert [type(layer).__name__ for layer in graph.nodes] == ["Reshape", "FullyConnected"]
    x = rand(1, 4, 4, 2, seed=3)
    x_chw = x.transpose(0, 3, 1, 2).reshape(1, -1)  # ONNX flattens C,H,W
    assert_close(run_float(graph, x), x_chw @ w + b)


def test_gemm_without_transb_with_alpha_beta_dropout_identity_and_reshape(tmp_path):
    w, c = rand(32, 3, seed=1), rand(1, 3, seed=2)
    path = make_model(tmp_path, [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="view"),
        helper.make_node("Dropout", ["r"], ["d"], name="drop", ratio=0.5),
        helper.make_node("Gemm", ["d", "w", "c"], ["g"], name="fc", alpha=0.5, beta=2.0),
        helper.make_node("Identity", ["g"], ["y"], name="id")],
        dict(w=w, c=c, shape=np.array([1, -1], np.int64)), opset=10)
    graph = load_onnx(path)
    assert [type(layer).__name__ for layer in graph.nodes] == ["Reshape", "FullyConnected"]
    x = rand(1, 4, 4, 2, seed=3)
    assert_close(run_float(graph, x), 0.5 * x.transpose(0, 3, 1, 2).reshape(1, -1) @ w + 2 * c)


def test_same_upper_odd_kernel_equals_explicit_symmetric_pads(tmp_path):
    w = rand(3, 2, 3, 3, seed=1)
    same = load_onnx(make_model(tmp_path, [helper.make_node(
        "Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER")], dict(w=w), name="same"))
    pads = load_onnx(make_model(tmp_path, [helper.make_node(
        "Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], dict(w=w), name="pads"))
    assert same.nodes[0].padding == pads.nodes[0].padding == (1, 1, 1, 1)
    x = rand(1, 4, 4, 2, seed=2)
    assert_close(run_float(same, x), run_float(pads, x))


def test_asymmetric_pads_keep_their_four_sides(tmp_path):
    w = rand(3, 2, 2, 2)
    graph = load_onnx(make_model(tmp_path, [helper.make_node(
        "Conv", ["x", "w"], ["y"], name="conv_tl", pads=[0, 0, 1, 1])], dict(w=w)))
    assert graph.nodes[0].padding == (0, 1, 0, 1)  # ONNX [t, l, b, r] -> (t, b, l, r)
    x = rand(1, 4, 4, 2, seed=3)
    xp = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))  # zeros below and right
    got = run_float(graph, x)
    ref = np.zeros((1, 4, 4, 3), np.float32)
    for i in range(4):
        for j in range(4):
            ref[0, i, j] = np.einsum("hwc,ochw->o", xp[0, i:i + 2, j:j + 2], w)
    assert_close(got, ref)


def test_clip_other_than_relu_or_relu6_is_refused(tmp_path):
    path = make_model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="clip")],
        dict(w=rand(2, 2, 1, 1), lo=np.float32(-1), hi=np.float32(1)))
    with pytest.raises(UnsupportedOpError, match=r"Clip to \[-1.0, 1.0\]"):
        load_onnx(path)


def test_unknown_op_names_op_node_and_supported_list(tmp_path):
    path = make_model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("LeakyRelu", ["c"], ["y"], name="act1")], dict(w=rand(2, 2, 1, 1)))
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(path)
    text = str(e.value)
    assert "node 'act1' (LeakyRelu): ONNX op 'LeakyRelu' is not supported" in text
    assert "supported: Add, AveragePool, BatchNormalization" in text and "\n" not in text


def test_unsupported_attribute_and_corrupt_file_and_missing_onnx(tmp_path, monkeypatch):
    path = make_model(tmp_path, [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=2),
                                 helper.make_node("MatMul", ["f", "w"], ["y"])],
                      dict(w=rand(8, 3)))
    with pytest.raises(UnsupportedOpError, match=r"'flat' \(Flatten\): Flatten\(axis=2\)"):
        load_onnx(path)
    path = make_model(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], name="c", foo=1)],
                      dict(w=rand(2, 2, 1, 1)), name="attr")
    with pytest.raises(UnsupportedOpError, match="'c' \\(Conv\\): attribute 'foo' is not one Conv"):
        load_onnx(path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff not a protobuf")
    with pytest.raises(ModelFormatError, match="is not a readable ONNX model"):
        load_onnx(str(bad))
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(UsageError, match="pip install onnx"):
        load_onnx(path)


# ---- graphs, checked against onnxruntime running the same file ---------------------------

def ort_run(path, x_nhwc):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = x_nhwc.transpose(0, 3, 1, 2) if x_nhwc.ndim == 4 else x_nhwc
    return [np.concatenate([session.run(None, {session.get_inputs()[0].name: feed[i:i + 1]})[k]
                            for i in range(len(feed))]) for k in range(len(session.get_outputs()))]


def assert_matches_ort(path, graph, x):
    got = run_float_all(prepare_float_graph(graph), x)
    want = ort_run(path, x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g.transpose(0, 3, 1, 2) if g.ndim == 4 else g, w)


def test_residual_add_concat_and_a_branch_match_onnxruntime(tmp_path):
    path = make_model(tmp_path, [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["res"], name="residual"),
        helper.make_node("Sigmoid", ["c1"], ["gate"], name="branch"),
        helper.make_node("Concat", ["res", "gate"], ["cat"], name="cat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["y"], name="fc", transB=1)],
        dict(w1=rand(3, 2, 3, 3, seed=1), b1=rand(3, seed=2), w2=rand(3, 3, 3, 3, seed=3),
             fc=rand(5, 6, seed=4), fcb=rand(5, seed=5)), in_shape=(1, 2, 6, 6))
    graph = load_onnx(path)
    kinds = [type(n).__name__ for n in graph.nodes]
    assert kinds == ["Conv2D", "Activation", "Conv2D", "Add", "Activation", "Concatenation",
                     "Mean", "Reshape", "FullyConnected"]
    assert_matches_ort(path, graph, rand(3, 6, 6, 2, seed=6))


@pytest.mark.parametrize("groups,c_out,kind", [(4, 4, "DepthwiseConv2D"),
                                               (4, 8, "DepthwiseConv2D"),
                                               (2, 6, "Conv2D")])
def test_grouped_convs_are_depthwise_or_block_diagonal(tmp_path, groups, c_out, kind):
    w = rand(c_out, 4 // groups, 3, 3, seed=groups)
    path = make_model(tmp_path, [helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], name="gconv", group=groups, pads=[1, 1, 1, 1],
        strides=[2, 2])], dict(w=w, b=rand(c_out, seed=9)), in_shape=(1, 4, 7, 7))
    graph = load_onnx(path)
    node = graph.nodes[0]
    assert type(node).__name__ == kind
    if kind == "Conv2D":  # zeros between the groups: output channel o reads group o // 3 only
        assert not node.weight[:3, :, :, 2:].any() and not node.weight[3:, :, :, :2].any()
    assert_matches_ort(path, graph, rand(2, 7, 7, 4, seed=3))


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_mean_axes_as_attribute_and_as_input(tmp_path, opset):
    if opset == 13:
        mean = helper.make_node("ReduceMean", ["c"], ["y"], name="m", axes=[-1, 2], keepdims=0)
        inits = dict(w=rand(3, 2, 1, 1))
    else:
        mean = helper.make_node("ReduceMean", ["c", "axes"], ["y"], name="m", keepdims=0)
        inits = dict(w=rand(3, 2, 1, 1), axes=np.array([2, 3], np.int64))
    path = make_model(tmp_path, [helper.make_node("Conv", ["x", "w"], ["c"]), mean], inits,
                      opset=opset)
    graph = load_onnx(path)
    assert graph.output.shape == (1, 3) and isinstance(graph.nodes[-1], ops.Mean)
    assert_matches_ort(path, graph, rand(2, 4, 4, 2, seed=1))


def test_dynamic_batch_shape_arithmetic_folds_to_one_flatten():
    path = os.path.join(TS, "residual_lenet_opset17_dynamic_batch.onnx")
    graph = load_onnx(path)
    assert sum(isinstance(n, ops.Reshape) for n in graph.nodes) == 1
    with np.load(os.path.join(TS, "residual_lenet.npz")) as d:
        assert_close(run_float(prepare_float_graph(graph), d["x"].transpose(0, 2, 3, 1)), d["y"])


def test_maxpool_padding_tflite_cannot_express_becomes_pad_after_a_relu(tmp_path):
    path = make_model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Pad", ["p", "pads"], ["y"], name="pad")],
        dict(w=rand(3, 2, 1, 1), pads=np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
        in_shape=(1, 2, 8, 8))
    graph = prepare_float_graph(load_onnx(path))
    assert [type(n).__name__ for n in graph.nodes] == ["Conv2D", "Pad", "MaxPool2D", "Pad"]
    assert_matches_ort(path, load_onnx(path), rand(2, 8, 8, 2, seed=2))


def test_two_outputs_and_an_identity(tmp_path):
    path = make_model(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Identity", ["c"], ["i"]),
        helper.make_node("Relu", ["i"], ["y"])], dict(w=rand(2, 2, 1, 1)), outputs=("y", "c"))
    graph = load_onnx(path)
    assert len(graph.outputs) == 2
    assert_matches_ort(path, graph, rand(1, 4, 4, 2, seed=4))


# ---- convert's cross-check against the source's runtime -----------------------------------

def _relu_model(tmp_path, relu, name):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv")]
    nodes += [helper.make_node("Relu", ["c"], ["r"], name="relu")] if relu else []
    nodes += [helper.make_node("Flatten", ["r" if relu else "c"], ["f"], name="flat"),
              helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)]
    return make_model(tmp_path, nodes, dict(w=rand(3, 1, 3, 3, seed=1), fc=rand(4, 108, seed=2)),
                      in_shape=(1, 1, 8, 8), name=name)


def test_a_wrong_import_is_caught_by_the_cross_check_exit_1(tmp_path, monkeypatch):
    """An importer that drops a ReLU (the old pickle bug) cannot write a model: convert runs the
    ONNX file in onnxruntime and stops with exit 1, unless --ignore-mismatch."""
    import sys

    from click.testing import CliRunner

    from edgecnn.cli import main
    from edgecnn.demo import data_dir
    good, wrong = _relu_model(tmp_path, True, "good"), _relu_model(tmp_path, False, "wrong")
    convert_mod = sys.modules["edgecnn.convert"]  # edgecnn.convert is also the function
    real = convert_mod.import_float_graph
    monkeypatch.setattr(convert_mod, "import_float_graph",
                        lambda source, *a, **k: real(wrong if source == good else source, *a, **k))
    out = str(tmp_path / "out.tflite")
    args = ["convert", good, "--calib", os.path.join(data_dir(), "calib"), "-o", out]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and not os.path.exists(out), r.output
    assert "differs from onnxruntime" in r.output and "--ignore-mismatch" in r.output
    r = CliRunner().invoke(main, args + ["--ignore-mismatch"])
    assert r.exit_code == 0 and os.path.exists(out), r.output
    assert "-> MISMATCH" in r.output
    monkeypatch.setattr(convert_mod, "import_float_graph", real)
    r = CliRunner().invoke(main, args + ["--force"])
    assert r.exit_code == 0 and "onnxruntime" in r.output and "-> OK" in r.output, r.output


def test_a_float_tflite_source_is_cross_checked_in_litert(tmp_path):
    from edgecnn.convert import convert
    from edgecnn.demo import data_dir
    src = str(tmp_path / "float.tflite")
    write_tflite(prepare_float_graph(load_onnx(_relu_model(tmp_path, True, "m"))), src)
    result = convert(src, str(tmp_path / "int8.tflite"), calib=[os.path.join(data_dir(), "calib")])
    check = result.crosscheck
    assert check.runtime.startswith("ai-edge-litert") and check.inputs == 32 and check.ok
    assert check.max_abs_diff <= 1e-5 + 1e-3 * check.max_reference
