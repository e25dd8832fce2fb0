"""The .tflite writer and reader: files LiteRT runs, exact IR round trips, clear errors.

Each configuration is a small seeded-random IR graph. It is written, run in LiteRT's
BUILTIN_REF interpreter (tensor names, shapes, dtypes and quantization must match the IR)
and in the default (XNNPACK) interpreter, then read back and compared field by field
(weights and quantization exactly).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edgecnn import ir, shapes, ops
from edgecnn.errors import (ArchitectureError, InputFileError, ModelFormatError,
                            UnsupportedOpError)
from edgecnn.tflite import metadata, schema
from edgecnn.tflite.reader import SUPPORTED_OPS, from_flatbuffer, load_tflite
from edgecnn.tflite.writer import to_flatbuffer, write_tflite

fb = schema.load()
Q = ir.QuantParams.per_tensor


# --- building int8 graphs ---------------------------------------------------------------

def _out(name, scale=None, zp=0, dtype="int8"):
    return ir.Tensor(name, (), dtype, Q(scale, zp) if scale is not None else None)


def _per_channel(rng, c):
    return ir.QuantParams(rng.uniform(0.002, 0.02, c).astype(np.float32), np.zeros(c, np.int64))


def _conv(rng, name, c_out, c_in, k, out_q, *, per_tensor_scale=None, bias=True, **kw):
    weight = rng.integers(-127, 128, (c_out, k, k, c_in)).astype(np.int8)
    wq = _per_channel(rng, c_out) if per_tensor_scale is None else Q(per_tensor_scale, 0)
    b = rng.integers(-2000, 2000, c_out).astype(np.int32) if bias else None
    return ops.Conv2D(name, weight, b, weight_quant=wq, output=_out(name, *out_q), **kw)


def _fc(rng, name, c_out, c_in, out_q, *, per_channel, bias=True, **kw):
    weight = rng.integers(-127, 128, (c_out, c_in)).astype(np.int8)
    wq = _per_channel(rng, c_out) if per_channel else Q(0.01, 0)
    b = rng.integers(-2000, 2000, c_out).astype(np.int32) if bias else None
    return ops.FullyConnected(name, weight, b, weight_quant=wq, output=_out(name, *out_q), **kw)


def _graph(input_tensor, layers, **kw):
    return shapes.infer_shapes(ir.sequential(input_tensor, layers, **kw))


def conv_same_stride2_relu_maxpool_fc_per_tensor_softmax(rng):
    x = ir.Tensor("image", (1, 12, 12, 3), "int8", Q(0.02, -5))
    same = shapes.same_padding(12, 3, 2) * 2
    return _graph(x, [
        _conv(rng, "conv1", 4, 3, 3, (0.05, -128), stride=(2, 2), padding=same,
              activation="relu"),
        ops.MaxPool2D("pool1", (2, 2), (2, 2), output=_out("pool1", 0.05, -128)),
        ops.Reshape("flatten", output=_out("flatten", 0.05, -128)),
        _fc(rng, "fc1", 10, 36, (0.1, 3), per_channel=False),
        ops.Softmax("probs", output=_out("probs", 1 / 256, -128)),
    ])


def conv_valid_stride2_relu6_avgpool_fc_per_channel(rng):
    x = ir.Tensor("image", (1, 11, 9, 2), "int8", Q(0.03, 7))
    return _graph(x, [
        _conv(rng, "conv1", 6, 2, 3, (0.04, -100), stride=(2, 2), activation="relu6"),
        ops.AvgPool2D("pool1", (2, 2), (1, 1), output=_out("pool1", 0.04, -100)),
        _fc(rng, "fc1", 5, 72, (0.2, -10), per_channel=True, activation="relu"),
    ])


def pad_conv_valid_avgpool_same_dilation2(rng):
    x = ir.Tensor("image", (1, 10, 10, 3), "int8", Q(0.02, 0))
    return _graph(x, [
        ops.Pad("pad1", (2, 1, 0, 2), output=_out("pad1", 0.02, 0)),
        _conv(rng, "conv1", 4, 3, 3, (0.06, -20), dilation=(2, 2)),
        ops.AvgPool2D("pool1", (3, 3), (1, 1), padding=shapes.same_padding(9, 3, 1) + shapes.same_padding(8, 3, 1),
                     output=_out("pool1", 0.06, -20)),
        ops.MaxPool2D("pool2", (3, 3), (2, 2), padding=shapes.same_padding(9, 3, 2) + shapes.same_padding(8, 3, 2),
                     activation="relu", output=_out("pool2", 0.06, -20)),
    ])


def quantize_conv_fc_dequantize_float_boundaries(rng):
    x = ir.Tensor("image", (1, 6, 6, 1), "float32")
    return _graph(x, [
        ops.Quantize("image_int8", output=_out("image_int8", 1 / 255, -128)),
        _conv(rng, "conv1", 3, 1, 3, (0.05, -128), per_tensor_scale=0.01, activation="relu"),
        _fc(rng, "fc1", 4, 48, (0.1, 0), per_channel=True),
        ops.Dequantize("logits", output=_out("logits", dtype="float32")),
    ])


def standalone_relu_relu6_tanh_sigmoid(rng):
    x = ir.Tensor("image", (1, 4, 4, 2), "int8", Q(0.05, 3))
    return _graph(x, [
        ops.Activation("relu", "relu", output=_out("relu", 0.03, -128)),
        ops.Activation("relu6", "relu6", output=_out("relu6", 6 / 255, -128)),
        ops.Activation("tanh", "tanh", output=_out("tanh", 1 / 128, 0)),
        ops.Activation("sigmoid", "sigmoid", output=_out("sigmoid", 1 / 256, -128)),
    ])


def conv_fc_without_bias(rng):
    x = ir.Tensor("image", (1, 5, 5, 2), "int8", Q(0.02, 1))
    return _graph(x, [
        _conv(rng, "conv1", 3, 2, 3, (0.05, -3), bias=False),
        _fc(rng, "fc1", 4, 27, (0.1, 0), per_channel=False, bias=False),
    ])


def float32_conv_pool_fc_softmax(rng):
    x = ir.Tensor("image", (1, 8, 8, 3), "float32")
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return _graph(x, [
        ops.Conv2D("conv1", f32(4, 3, 3, 3), f32(4), padding=shapes.same_padding(8, 3, 1) * 2,
                  activation="relu", output=_out("conv1", dtype="float32")),
        ops.MaxPool2D("pool1", (2, 2), (2, 2), output=_out("pool1", dtype="float32")),
        ops.Reshape("flatten", output=_out("flatten", dtype="float32")),
        ops.FullyConnected("fc1", f32(10, 64), f32(10), output=_out("fc1", dtype="float32")),
        ops.Softmax("probs", beta=0.5, output=_out("probs", dtype="float32")),
    ])


CONFIGS = [conv_same_stride2_relu_maxpool_fc_per_tensor_softmax,
           conv_valid_stride2_relu6_avgpool_fc_per_channel,
           pad_conv_valid_avgpool_same_dilation2,
           quantize_conv_fc_dequantize_float_boundaries,
           standalone_relu_relu6_tanh_sigmoid,
           conv_fc_without_bias,
           float32_conv_pool_fc_softmax]


@pytest.fixture(params=CONFIGS, ids=[c.__name__ for c in CONFIGS])
def written(request, tmp_path):
    graph = request.param(np.random.default_rng(1234))
    path = tmp_path / f"{request.param.__name__}.tflite"
    write_tflite(graph, path)
    return graph, path


# --- comparing --------------------------------------------------------------------------

def _assert_array_exact(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, a.shape, b.dtype, b.shape)
    np.testing.assert_array_equal(a, b, err_msg=what)


def _assert_quant_equal(a, b, what):
    assert (a is None) == (b is None), what
    if a is not None:
        _assert_array_exact(a.scale, b.scale, f"{what} scale")
        _assert_array_exact(a.zero_point, b.zero_point, f"{what} zero_point")
        assert a.axis == b.axis, what


def _assert_value_equal(a, b, what):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        _assert_array_exact(a, b, what)
    elif isinstance(a, ir.QuantParams) or isinstance(b, ir.QuantParams):
        _assert_quant_equal(a, b, what)
    elif isinstance(a, ir.Tensor):
        assert (a.name, tuple(a.shape), a.dtype) == (b.name, tuple(b.shape), b.dtype), what
        _assert_quant_equal(a.quant, b.quant, f"{what} quant")
    else:
        assert a == b, (what, a, b)


def assert_graph_equal(a: ir.Graph, b: ir.Graph):
    _assert_value_equal(a.input, b.input, "input")
    assert len(a.nodes) == len(b.nodes)
    for la, lb in zip(a.nodes, b.nodes):
        assert type(la) is type(lb), (la.name, type(la), type(lb))
        for f in dataclasses.fields(la):
            if f.name == "bias_quant":  # the file's bias scale: the writer derives it from
                continue                # s_in * s_w (LiteRT's 0.02 rule reads it back)
            _assert_value_equal(getattr(la, f.name), getattr(lb, f.name), f"{la.name}.{f.name}")


def _ref_interpreter(path):
    return Interpreter(model_path=str(path),
                       experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                       experimental_preserve_all_tensors=True, num_threads=1)


def _feed(interp, graph, rng):
    detail = interp.get_input_details()[0]
    if graph.input.dtype == "int8":
        x = rng.integers(-128, 128, graph.input.shape).astype(np.int8)
    else:
        x = rng.standard_normal(graph.input.shape).astype(np.float32)
    interp.set_tensor(detail["index"], x)


def _assert_detail_matches(detail, name, shape, dtype, quant):
    assert detail["name"] == name
    assert tuple(detail["shape"]) == tuple(shape), name
    assert np.dtype(detail["dtype"]) == np.dtype(dtype), name
    qp = detail["quantization_parameters"]
    if quant is None:
        assert qp["scales"].size == 0, name
    else:
        _assert_array_exact(qp["scales"], quant.scale, f"{name} scales")
        _assert_array_exact(qp["zero_points"].astype(np.int64), quant.zero_point, f"{name} zp")
        assert qp["quantized_dimension"] == quant.axis, name


# --- what LiteRT sees -------------------------------------------------------------------

def test_litert_reference_runs_and_matches_ir(written):
    graph, path = written
    interp = _ref_interpreter(path)
    interp.allocate_tensors()
    _feed(interp, graph, np.random.default_rng(0))
    interp.invoke()
    details = {d["name"]: d for d in interp.get_tensor_details()}
    index = load_tflite(path).tensor_index
    for t in graph.tensors():
        d = details[t.name]
        assert d["index"] == index[t.name]
        _assert_detail_matches(d, t.name, t.shape, t.dtype, t.quant)
        assert interp.get_tensor(d["index"]).shape == tuple(t.shape)
    for layer in graph.nodes:
        if isinstance(layer, (ops.Conv2D, ops.FullyConnected)):
            _assert_detail_matches(details[f"{layer.name}/weights"], f"{layer.name}/weights",
                                   layer.weight.shape, layer.weight.dtype, layer.weight_quant)
            _assert_array_exact(interp.get_tensor(details[f"{layer.name}/weights"]["index"]),
                                layer.weight, f"{layer.name} weights in LiteRT")
            if layer.bias is not None:
                _assert_array_exact(interp.get_tensor(details[f"{layer.name}/bias"]["index"]),
                                    layer.bias, f"{layer.name} bias in LiteRT")
    out = interp.get_output_details()[0]
    assert out["name"] == graph.output.name


def test_litert_default_xnnpack_runs(written):
    graph, path = written
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    _feed(interp, graph, np.random.default_rng(0))
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert out.shape == tuple(graph.output.shape)


def _as_written(graph):
    """LiteRT's int8 CONV_2D needs a bias tensor, so a missing one is written as zeros."""
    layers = tuple(
        ir.replace(layer, bias=np.zeros(layer.weight.shape[0], np.int32))
        if isinstance(layer, ops.Conv2D) and layer.bias is None and layer.weight.dtype == np.int8
        else layer for layer in graph.nodes)
    return graph.replace(nodes=layers)


def test_round_trip_equals_ir(written):
    graph, path = written
    back = load_tflite(path)
    assert back.path == str(path)
    assert_graph_equal(_as_written(graph), back.graph)
    assert set(back.tensor_index) == {t.name for t in graph.tensors()}


def test_writing_is_deterministic(written):
    graph, path = written
    assert to_flatbuffer(graph) == path.read_bytes()


# --- file layout ------------------------------------------------------------------------

EXPECTED_VERSIONS = {"CONV_2D": 3, "FULLY_CONNECTED": 4, "MAX_POOL_2D": 2, "AVERAGE_POOL_2D": 2,
                     "SOFTMAX": 2, "RESHAPE": 1, "PAD": 2, "QUANTIZE": 1, "DEQUANTIZE": 2,
                     "RELU": 2, "RELU6": 2, "TANH": 2, "LOGISTIC": 2}


def _op_versions(data):
    names = schema.enum_names(fb.BuiltinOperator)
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    for oc in model.operatorCodes:
        assert oc.deprecatedBuiltinCode == min(oc.builtinCode, 127)
    return {names[oc.builtinCode]: oc.version for oc in model.operatorCodes}


def test_int8_op_codes_and_versions():
    rng = np.random.default_rng(5)
    seen = {}
    for make in CONFIGS[:5]:
        seen.update(_op_versions(to_flatbuffer(make(rng))))
    assert seen == EXPECTED_VERSIONS


def test_float32_op_versions_are_1_and_fc_without_bias_is_6():
    rng = np.random.default_rng(5)
    assert set(_op_versions(to_flatbuffer(float32_conv_pool_fc_softmax(rng))).values()) == {1}
    assert _op_versions(to_flatbuffer(conv_fc_without_bias(rng)))["FULLY_CONNECTED"] == 6


def test_buffer0_is_empty_and_constant_buffers_are_16_byte_aligned():
    data = to_flatbuffer(conv_same_stride2_relu_maxpool_fc_per_tensor_softmax(
        np.random.default_rng(0)))
    model = fb.Model.GetRootAs(data, 0)
    assert model.Buffers(0).DataLength() == 0
    with_data = 0
    for i in range(1, model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.DataLength():
            start = buf._tab.Vector(buf._tab.Offset(4))
            assert start % 16 == 0, (i, start)
            with_data += 1
    assert with_data >= 5


def test_metadata_round_trip(tmp_path):
    pre = ir.Preprocess(height=12, width=12, color="RGB", resize=14, mean=(0.5, 0.4, 0.3),
                        std=(0.2, 0.25, 0.3), invert=True)
    graph = conv_same_stride2_relu_maxpool_fc_per_tensor_softmax(np.random.default_rng(2))
    graph = graph.replace(preprocess=pre, labels=tuple("abcdefghij"), name="tiny")
    write_tflite(graph, tmp_path / "m.tflite")
    back = load_tflite(tmp_path / "m.tflite").graph
    assert back.preprocess == pre and back.labels == graph.labels and back.name == "tiny"
    model = fb.ModelT.InitFromPackedBuf((tmp_path / "m.tflite").read_bytes(), 0)
    entry, = [m for m in model.metadata if m.name == b"edgecnn"]
    doc = json.loads(bytes(model.buffers[entry.buffer].data))
    assert doc["format_version"] == 1 and doc["preprocess"]["color"] == "RGB"


def test_without_metadata_name_comes_from_file(tmp_path):
    graph = conv_fc_without_bias(np.random.default_rng(3))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    model.metadata = None
    path = tmp_path / "lenet.tflite"
    path.write_bytes(_pack(model))
    back = load_tflite(path).graph
    assert back.preprocess is None and back.labels == () and back.name == "lenet"


def test_metadata_that_is_not_json_is_a_format_error():
    with pytest.raises(ModelFormatError, match="m.tflite: the 'edgecnn' metadata is not"):
        metadata.decode(b"\xff{", "m.tflite")


def test_metadata_from_a_newer_edgecnn_is_refused():
    with pytest.raises(ModelFormatError, match="newer edgecnn"):
        metadata.decode(json.dumps({"format_version": 2}).encode(), "m.tflite")


# --- files as TensorFlow's converter writes them ----------------------------------------

def _pack(model) -> bytes:
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_reads_deprecated_builtin_code_only_and_duplicate_names():
    graph = standalone_relu_relu6_tanh_sigmoid(np.random.default_rng(4))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    for oc in model.operatorCodes:
        oc.builtinCode = 0  # old files set only deprecated_builtin_code
    tensors = model.subgraphs[0].tensors
    tensors[1].name = tensors[2].name = b"act"
    back = from_flatbuffer(_pack(model), "old.tflite")
    kinds = [layer.kind for layer in back.graph.nodes]
    assert kinds == ["relu", "relu6", "tanh", "sigmoid"]
    assert [layer.name for layer in back.graph.nodes[:2]] == ["act#1", "act#2"]
    assert back.tensor_index["act#2"] == 2


# --- errors -----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="nope.tflite"):
        load_tflite(tmp_path / "nope.tflite")


def test_not_a_tflite(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("this is a text file, not a model\n")
    with pytest.raises(ModelFormatError, match="notes.tflite: not a .tflite model"):
        load_tflite(path)


def test_truncated(tmp_path):
    data = to_flatbuffer(conv_same_stride2_relu_maxpool_fc_per_tensor_softmax(
        np.random.default_rng(0)))
    for cut in (len(data) // 2, len(data) - 40, 6):
        path = tmp_path / "cut.tflite"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match="cut.tflite"):
            load_tflite(path)


def _binary_model(op_name="SQUARED_DIFFERENCE"):
    """A float model with one binary op edgecnn does not run, built through the object API."""
    tensors = []
    for i, name in enumerate((b"a", b"b", b"sum")):
        t = fb.TensorT()
        t.name, t.shape, t.type = name, [1, 4], fb.TensorType.FLOAT32
        tensors.append(t)
    code = fb.OperatorCodeT()
    code.builtinCode = getattr(fb.BuiltinOperator, op_name)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 0], [2]
    sub = fb.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs = tensors, [op], [0], [2]
    model = fb.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [sub]
    model.buffers = [fb.BufferT()]
    return model


def test_unsupported_op_names_it_and_the_supported_list(tmp_path):
    path = tmp_path / "sqd.tflite"
    path.write_bytes(_pack(_binary_model()))
    Interpreter(model_path=str(path)).allocate_tensors()  # a valid model, just not ours
    with pytest.raises(UnsupportedOpError) as e:
        load_tflite(path)
    msg = str(e.value)
    assert "operator 0 is SQUARED_DIFFERENCE" in msg and "sqd.tflite" in msg
    assert all(op in msg for op in SUPPORTED_OPS)


def test_unsupported_fused_tanh():
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(conv_fc_without_bias(
        np.random.default_rng(0))), 0)
    model.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = \
        fb.ActivationFunctionType.TANH
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(CONV_2D\): fused activation TANH"):
        from_flatbuffer(_pack(model), "m.tflite")


def test_unsupported_channel_padding():
    graph = pad_conv_valid_avgpool_same_dilation2(np.random.default_rng(0))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    sub = model.subgraphs[0]
    pads = sub.tensors[sub.operators[0].inputs[1]]
    model.buffers[pads.buffer].data = np.frombuffer(
        np.array([[0, 0], [1, 1], [1, 1], [0, 3]], np.int32).tobytes(), np.uint8)
    with pytest.raises(UnsupportedOpError, match="height and width only"):
        from_flatbuffer(_pack(model), "m.tflite")


def test_a_branching_graph_is_read_by_tensor_name():
    graph = standalone_relu_relu6_tanh_sigmoid(np.random.default_rng(0))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    model.subgraphs[0].operators[2].inputs = [0]  # tanh reads the model input, not relu6
    back = from_flatbuffer(_pack(model), "m.tflite").graph
    assert back.nodes[2].inputs == ("image",) and back.nodes[3].inputs == (back.nodes[2].name,)
    assert back.consumers("image") == [back.nodes[0], back.nodes[2]]


def test_an_operator_reading_a_tensor_before_it_is_written_is_refused():
    graph = standalone_relu_relu6_tanh_sigmoid(np.random.default_rng(0))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    ops_ = model.subgraphs[0].operators
    ops_[0].inputs, ops_[1].inputs = list(ops_[1].outputs), [0]  # relu reads relu6's output
    with pytest.raises(ModelFormatError, match=r"operator 0 \(RELU\) reads tensor 'relu6' "
                                               "before any operator writes it"):
        from_flatbuffer(_pack(model), "m.tflite")


def test_buffer_size_mismatch_is_a_format_error():
    graph = conv_fc_without_bias(np.random.default_rng(0))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    sub = model.subgraphs[0]
    weights = sub.tensors[sub.operators[0].inputs[1]]
    model.buffers[weights.buffer].data = model.buffers[weights.buffer].data[:-1]
    with pytest.raises(ModelFormatError, match="conv1/weights.*needs 54 bytes but its buffer "
                                               "holds 53"):
        from_flatbuffer(_pack(model), "m.tflite")


def test_int8_weights_without_quantization_are_a_format_error():
    graph = conv_fc_without_bias(np.random.default_rng(0))
    model = fb.ModelT.InitFromPackedBuf(to_flatbuffer(graph), 0)
    sub = model.subgraphs[0]
    sub.tensors[sub.operators[1].inputs[1]].quantization = None
    with pytest.raises(ModelFormatError, match=r"operator 1 \(FULLY_CONNECTED\): int8 weights "
                                               "without quantization"):
        from_flatbuffer(_pack(model), "m.tflite")


def test_existing_output_needs_force(tmp_path):
    graph = conv_fc_without_bias(np.random.default_rng(0))
    path = tmp_path / "lenet.tflite"
    path.write_bytes(b"old")
    with pytest.raises(InputFileError, match="lenet.tflite exists; pass --force to overwrite"):
        write_tflite(graph, path)
    assert path.read_bytes() == b"old"
    write_tflite(graph, path, force=True)
    assert path.read_bytes() == to_flatbuffer(graph)
    assert os.listdir(tmp_path) == ["lenet.tflite"]  # no temp file left behind


def test_explicit_padding_is_refused_naming_the_layer():
    rng = np.random.default_rng(0)
    x = ir.Tensor("image", (1, 8, 8, 1), "int8", Q(0.02, 0))
    graph = _graph(x, [_conv(rng, "conv1", 2, 1, 3, (0.05, 0), padding=(2, 2, 2, 2))])
    with pytest.raises(UnsupportedOpError, match="conv1: padding .*neither VALID nor SAME"):
        to_flatbuffer(graph)


def test_batchnorm_cannot_be_written():
    x = ir.Tensor("image", (1, 4, 4, 2), "float32")
    ones = np.ones(2, np.float32)
    graph = _graph(x, [ops.BatchNorm("bn", ones, ones, ones, ones, 1e-5,
                                    output=_out("bn", dtype="float32"))])
    with pytest.raises(UnsupportedOpError, match="bn: BatchNorm.*fold"):
        to_flatbuffer(graph)


def test_duplicate_ir_tensor_names_are_refused():
    x = ir.Tensor("image", (1, 4, 4, 2), "int8", Q(0.05, 0))
    graph = ir.sequential(x, [ops.Activation("image", "relu", output=_out("image", 0.05, 0))])
    with pytest.raises(ArchitectureError, match="writes tensor 'image', which is already written"):
        to_flatbuffer(graph)


def test_missing_schema_bindings_give_a_clear_error(monkeypatch):
    from edgecnn.errors import EdgecnnError
    monkeypatch.setattr(schema, "_CANDIDATES", ("edgecnn_no_such_schema_module", "json"))
    schema.load.cache_clear()
    try:
        with pytest.raises(EdgecnnError, match=r"not installed.*json \(no flatbuffers object "
                                               r"API\).*pip install ai-edge-litert"):
            schema.load()
    finally:
        schema.load.cache_clear()
