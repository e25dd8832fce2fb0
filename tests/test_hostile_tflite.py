""".tflite files that lie: every check of edgecnn/tflite/validate.py, the memory ceiling,
flatbuffer sharing bombs, atomic writes, and the CLI's one-line error versus --debug.

Each case starts from a small valid int8 graph (fuzz/corpus/tflite/tiny_int8.tflite's
twin, built here), breaks one thing in its unpacked ModelT, packs it again and reads it.
"""

import os
import time

import flatbuffers
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn import ir, shapes, ops
from edgecnn.cli import main
from edgecnn.errors import InputFileError, ModelFormatError, UnsupportedOpError
from edgecnn.tflite import schema, writer
from edgecnn.tflite.reader import from_flatbuffer, load_tflite
from edgecnn.tflite.validate import DEFAULT_MAX_MEMORY
from edgecnn.tflite.writer import to_flatbuffer, write_tflite

fb = schema.load()
Q = ir.QuantParams.per_tensor


def _out(name, scale, zp):
    return ir.Tensor(name, (), "int8", Q(scale, zp))


def tiny_graph():
    rng = np.random.default_rng(0)
    x = ir.Tensor("image", (1, 6, 6, 1), "int8", Q(0.02, -5))
    layers = [
        ops.Conv2D("conv1", rng.integers(-127, 128, (2, 3, 3, 1)).astype(np.int8),
                  rng.integers(-99, 99, 2).astype(np.int32),
                  weight_quant=ir.QuantParams(np.array([0.01, 0.02], np.float32), np.zeros(2, np.int64)),
                  activation="relu", output=_out("conv1", 0.05, -128)),
        ops.MaxPool2D("pool1", (2, 2), (2, 2), output=_out("pool1", 0.05, -128)),
        ops.Reshape("flatten", output=_out("flatten", 0.05, -128)),
        ops.FullyConnected("fc1", rng.integers(-127, 128, (3, 8)).astype(np.int8),
                          rng.integers(-99, 99, 3).astype(np.int32), weight_quant=Q(0.01, 0),
                          output=_out("fc1", 0.1, 3)),
    ]
    return shapes.infer_shapes(ir.sequential(x, layers, name="tiny"))


def model_t():
    return fb.ModelT.InitFromPackedBuf(bytearray(to_flatbuffer(tiny_graph())), 0)  # writable arrays


def pack(model):
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(b.Output())


def tensor(model, name):
    sub = model.subgraphs[0]
    return next(t for t in sub.tensors if t.name.decode() == name)


def refused(model, *text, error=ModelFormatError, **kw):
    with pytest.raises(error) as err:
        from_flatbuffer(pack(model) if not isinstance(model, bytes) else model, "bad.tflite", **kw)
    message = str(err.value)
    assert "\n" not in message and message.startswith("bad.tflite: "), message
    for t in text:
        assert t in message, message
    return message


def test_the_tiny_graph_reads():
    assert len(from_flatbuffer(pack(model_t()), "ok.tflite").graph.nodes) == 4


# ----------------------------------------------------------------------------- indices and shapes


def test_tensor_buffer_index_out_of_range():
    m = model_t()
    tensor(m, "conv1").buffer = 999
    refused(m, "'conv1'", "buffer 999")


def test_operator_input_index_out_of_range():
    m = model_t()
    m.subgraphs[0].operators[1].inputs[0] = 77
    refused(m, "operator 1 (MAX_POOL_2D)", "tensor 77")


def test_model_output_index_out_of_range():
    m = model_t()
    m.subgraphs[0].outputs[0] = -3
    refused(m, "model output", "tensor -3")


def test_opcode_index_out_of_range():
    m = model_t()
    m.subgraphs[0].operators[2].opcodeIndex = 40
    refused(m, "operator 2", "opcode 40")


def test_negative_dimension():
    m = model_t()
    tensor(m, "pool1").shape[1] = -4
    refused(m, "'pool1'", "negative dimension")


def test_constant_buffer_size_must_match_shape_and_type():
    m = model_t()
    t = tensor(m, "conv1/bias")
    m.buffers[t.buffer].data = m.buffers[t.buffer].data[:-4]
    refused(m, "'conv1/bias'", "needs 8 bytes", "holds 4")


# ----------------------------------------------------------------------------- quantization


@pytest.mark.parametrize("scale,text", [(np.nan, "nan"), (0.0, "scale 0.0"), (-0.5, "-0.5"),
                                        (np.inf, "inf")])
def test_scales_must_be_finite_and_positive(scale, text):
    m = model_t()
    tensor(m, "pool1").quantization.scale = np.array([scale], np.float32)
    refused(m, "'pool1'", text, "finite and positive")


def test_per_channel_scale_count_must_match_the_channels():
    m = model_t()
    tensor(m, "conv1/weights").quantization.scale = np.array([0.1, 0.2, 0.3], np.float32)
    tensor(m, "conv1/weights").quantization.zeroPoint = np.zeros(3, np.int64)
    refused(m, "'conv1/weights'", "3 per-channel scales for 2 channels")


def test_quantized_dimension_out_of_range():
    m = model_t()
    tensor(m, "conv1/weights").quantization.quantizedDimension = 9
    refused(m, "'conv1/weights'", "axis 9")


def test_zero_point_count_must_match_the_scales():
    m = model_t()
    tensor(m, "conv1/weights").quantization.zeroPoint = np.zeros(5, np.int64)
    refused(m, "'conv1/weights'", "2 scales but 5 zero points")


def test_int8_zero_point_outside_int8():
    m = model_t()
    tensor(m, "pool1").quantization.zeroPoint = np.array([300], np.int64)
    refused(m, "'pool1'", "zero point 300")


def test_int8_activation_without_quantization():
    m = model_t()
    tensor(m, "pool1").quantization = None
    refused(m, "'pool1'", "INT8 activation without quantization")


# ----------------------------------------------------------------------------- operators and graph


def test_operator_without_its_weights():
    m = model_t()
    m.subgraphs[0].operators[0].inputs = np.array([0], np.int32)
    refused(m, "operator 0 (CONV_2D)", "has 1 inputs", "needs 2 to 3")


def test_operator_with_two_outputs():
    m = model_t()
    op = m.subgraphs[0].operators[1]
    op.outputs = np.array([op.outputs[0], 0], np.int32)
    refused(m, "operator 1 (MAX_POOL_2D)", "2 outputs")


def test_operator_writing_a_constant():
    m = model_t()
    sub = m.subgraphs[0]
    sub.operators[1].outputs[0] = sub.operators[0].inputs[1]
    refused(m, "operator 1 (MAX_POOL_2D)", "which is a constant")


def test_operator_writing_the_model_input():
    m = model_t()
    sub = m.subgraphs[0]
    sub.operators[1].outputs[0] = sub.inputs[0]
    refused(m, "operator 1 (MAX_POOL_2D)", "already written by the model input")


def test_cycle_between_two_operators():
    m = model_t()
    sub = m.subgraphs[0]
    # pool reads the reshape's output, reshape reads the pool's: neither can run first
    sub.operators[1].inputs[0] = sub.operators[2].outputs[0]
    refused(m, "cycle")


@pytest.mark.parametrize("field,value,text", [("strideH", 0, "stride (0, 2)"),
                                              ("filterWidth", 0, "kernel (2, 0)"),
                                              ("strideW", -3, "stride (2, -3)")])
def test_pool_kernel_and_stride_must_be_positive(field, value, text):
    m = model_t()
    setattr(m.subgraphs[0].operators[1].builtinOptions, field, value)
    refused(m, "operator 1 (MAX_POOL_2D)", text)


def test_conv_dilation_must_be_positive():
    m = model_t()
    m.subgraphs[0].operators[0].builtinOptions.dilationHFactor = 0
    refused(m, "operator 0 (CONV_2D)", "dilation (0, 1)")


def test_sparse_tensors_are_unsupported():
    m = model_t()
    tensor(m, "fc1/weights").sparsity = fb.SparsityParametersT()
    refused(m, "'fc1/weights'", "sparse", error=UnsupportedOpError)


@pytest.mark.parametrize("name,shape,text", [
    ("conv1", [1, 4, 4, 1], "give (1, 4, 4, 2)"),  # fewer channels than the weights write
    ("pool1", [1, 3, 3, 2], "give (1, 2, 2, 2)"),
    ("flatten", [1, 7], "does not resolve to the declared output shape (1, 7)"),
    ("fc1", [1, 2], "give (1, 3)"),
])
def test_declared_output_shape_must_match_the_op(name, shape, text):
    # the Cython kernels size their loops from the weights and the output buffer: a conv
    # output declaring 1 channel for 2-channel weights ran and wrote past its buffer
    m = model_t()
    tensor(m, name).shape = np.array(shape, np.int32)
    refused(m, text)


# ----------------------------------------------------------------------------- memory ceiling


def test_huge_declared_tensor_is_refused_before_allocating():
    m = model_t()
    tensor(m, "pool1").shape = np.array([1, 100_000, 100_000, 64], np.int32)  # 640 GB
    start = time.monotonic()
    message = refused(m, "'pool1'", "640000000000 bytes", f"memory ceiling of {DEFAULT_MAX_MEMORY}",
                      "max_memory")
    assert time.monotonic() - start < 1, message


def test_shape_product_overflowing_int64_is_refused():
    m = model_t()
    tensor(m, "pool1").shape = np.array([2**31 - 1] * 8, np.int32)
    refused(m, "'pool1'", "memory ceiling")


def test_max_memory_is_the_callers(tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(pack(model_t()))
    assert load_tflite(path).graph.name == "tiny"
    with pytest.raises(ModelFormatError, match="memory ceiling of 100 bytes"):
        load_tflite(path, max_memory=100)
    assert load_tflite(path, max_memory=10_000).graph.name == "tiny"


# ----------------------------------------------------------------------------- raw flatbuffer lies


def _shared_name_bomb(n_tensors, name_bytes):
    """n_tensors tensor slots that all point at ONE tensor table with one long name."""
    b = flatbuffers.Builder(0)
    name = b.CreateString("x" * name_bytes)
    fb.TensorStartShapeVector(b, 1)
    b.PrependInt32(1)
    shape = b.EndVector()
    fb.TensorStart(b)
    fb.TensorAddName(b, name)
    fb.TensorAddShape(b, shape)
    fb.TensorAddType(b, fb.TensorType.FLOAT32)
    t = fb.TensorEnd(b)
    fb.SubGraphStartTensorsVector(b, n_tensors)
    for _ in range(n_tensors):
        b.PrependUOffsetTRelative(t)
    tensors = b.EndVector()
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, tensors)
    sub = fb.SubGraphEnd(b)
    fb.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(sub)
    subs = b.EndVector()
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddSubgraphs(b, subs)
    b.Finish(fb.ModelEnd(b), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(b.Output())


def test_one_table_shared_a_hundred_thousand_times_is_refused_fast():
    data = _shared_name_bomb(100_000, 200_000)  # 0.6 MB that would unpack to 20 GB of names
    assert len(data) < 1_000_000
    start = time.monotonic()
    refused(data, "declare far more data")
    assert time.monotonic() - start < 5


def test_subgraph_count_is_checked_before_unpacking():
    m = model_t()
    m.subgraphs = m.subgraphs * 3
    refused(m, "3 subgraphs", error=UnsupportedOpError)


@pytest.mark.parametrize("where", [8, 12, 16, 20, 24, 28, 32, 40, 48, 64])
@pytest.mark.parametrize("value", [0xFFFFFFFF, 0x7FFFFFF0, 3])
def test_offsets_and_lengths_past_the_end_are_format_errors(where, value):
    data = bytearray(pack(model_t()))
    data[where:where + 4] = value.to_bytes(4, "little")
    try:
        from_flatbuffer(bytes(data), "bad.tflite")
    except (ModelFormatError, UnsupportedOpError) as e:
        assert str(e).startswith("bad.tflite: ") and "\n" not in str(e)


# ----------------------------------------------------------------------------- files and the CLI


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"the old model")
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(InputFileError, match="No space left"):
        write_tflite(tiny_graph(), path, force=True)
    assert path.read_bytes() == b"the old model"
    assert os.listdir(tmp_path) == ["model.tflite"]

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.os, "replace", interrupted)
    monkeypatch.setattr(writer.os, "fdopen", real_fdopen)
    with pytest.raises(KeyboardInterrupt):
        write_tflite(tiny_graph(), path, force=True)
    assert path.read_bytes() == b"the old model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_cli_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    m = model_t()
    tensor(m, "pool1").quantization.scale = np.array([0.0], np.float32)
    path = tmp_path / "broken.tflite"
    path.write_bytes(pack(m))
    plain = CliRunner().invoke(main, ["summary", str(path)])
    assert plain.exit_code == 2
    lines = plain.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: broken.tflite: ") and "'pool1'" in lines[0]
    debug = CliRunner().invoke(main, ["--debug", "summary", str(path)])
    assert debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.output and "validate.py" in debug.output
    assert debug.output.strip().splitlines()[-1] == lines[0]


@pytest.mark.parametrize("payload", [b"[" * 100_000 + b"]" * 100_000,
                                     b'{"format_version": 1' + b"1" * 5000 + b"}",
                                     b'{"format_version": 1, "labels": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_metadata_json_bombs_are_format_errors(payload):
    m = fb.ModelT.InitFromPackedBuf(bytearray(to_flatbuffer(tiny_graph().replace(
        preprocess=ir.Preprocess(height=6, width=6)))), 0)
    entry = next(e for e in m.metadata if e.name == b"edgecnn")
    m.buffers[entry.buffer].data = np.frombuffer(payload, np.uint8)
    refused(m, "metadata")


def test_many_tensors_sharing_one_external_buffer_do_not_copy_it():
    m = model_t()
    sub = m.subgraphs[0]
    pad = fb.BufferT()
    pad.data = np.zeros(4 << 20, np.uint8)  # 4 MB inside the file for the external buffer to span
    m.buffers.append(pad)
    ext = fb.BufferT()
    ext.offset, ext.size = 1, 1  # placeholders, set once the file size is known
    m.buffers.append(ext)
    for k in range(5_000):  # 5 000 constant-looking tensors on it: 20 GB if each copied it
        t = fb.TensorT()
        t.name, t.type, t.buffer = f"t{k}".encode(), fb.TensorType.UINT8, len(m.buffers) - 1
        t.shape = np.array([4 << 20], np.int32)
        sub.tensors.append(t)
    size = len(pack(m))
    ext.offset, ext.size = size - (4 << 20) - 4096, 4 << 20
    data = pack(m)
    assert len(data) == size
    start = time.monotonic()
    refused(data, "memory ceiling")  # 20 GB of declared tensors
    assert time.monotonic() - start < 10
