"""Scales that pass "finite and positive" but break fixed point (edgecnn/quant_rules.py).

Each case is a good int8 model with one quantization parameter changed, loaded in LiteRT's
real interpreter (BUILTIN_REF) and in edgecnn:
- what LiteRT refuses, edgecnn refuses through the CLI with exit 2, one line, LiteRT's reason;
- what LiteRT's C++ leaves undefined (shifts past 30, int32 overflow), edgecnn refuses too;
- everything edgecnn accepts equals LiteRT bit for bit on the reference and Cython kernels
  (the fixed-point limits, softmax past 511 values and ADD/CONCATENATION: test_hostile_fixedpoint.py).
"""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn import ir, ops
from edgecnn.cli import main
from edgecnn.errors import ModelFormatError
from edgecnn.litert import LiteRTRunner
from edgecnn.runtime import Runtime
from edgecnn.tflite.reader import load_tflite
from edgecnn.tflite.writer import write_tflite
from test_hostile_tflite import model_t, pack, tensor

Q = ir.QuantParams.per_tensor


def _set(m, name, scale=None, zp=None):
    q = tensor(m, name).quantization
    if scale is not None:
        q.scale = np.array(scale, np.float32)
    if zp is not None:
        q.zeroPoint = np.array(zp, np.int64)


def _write(tmp_path, m, name="hostile.tflite"):
    path = tmp_path / name
    path.write_bytes(pack(m) if not isinstance(m, (bytes, ir.Graph)) else m)
    return str(path)


def _cli_refuses(path, *text):
    result = CliRunner().invoke(main, ["infer", path, "x.png"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), \
        result.output
    for t in text:
        assert t in lines[0], lines[0]
    return lines[0]


def _litert_refuses(path, text):
    with pytest.raises(ModelFormatError) as err:
        LiteRTRunner(path, "litert-ref")
    assert text in str(err.value), str(err.value)


def _exact_with_litert(path, n=6):
    """edgecnn (reference and Cython) equals LiteRT BUILTIN_REF on every tensor."""
    graph = load_tflite(path).graph
    index = load_tflite(path).tensor_index
    litert = LiteRTRunner(path, "litert-ref")
    ours = [Runtime(graph, b, preserve_all=True) for b in ("reference", "cython")]
    rng = np.random.default_rng(5)
    for _ in range(n):
        x = rng.integers(-128, 128, graph.input.shape).astype(np.int8)
        litert.invoke(x)
        for rt in ours:
            rt.invoke(x)
            for t in graph.tensors():
                got, want = rt.tensor(t.name).ravel(), litert.tensor(index[t.name]).ravel()
                bad = np.flatnonzero(got != want)
                assert bad.size == 0, (f"{rt.backend} {t.name}[{bad[0]}]: {got[bad[0]]}, LiteRT "
                                       f"{want[bad[0]]}")


def _consistent_conv_output(m, scale):
    for name in ("conv1", "pool1", "flatten"):  # pooling and reshape keep the quantization
        _set(m, name, [scale])


# ----------------------------------------------------------------------------- LiteRT refuses


def _fc_weight_3e38(m):
    _set(m, "fc1/weights", [3e38])


def _fc_output_1e38(m):
    _set(m, "fc1", [1e-38])


def _fc_bias_scale_off(m):
    _set(m, "fc1/bias", [0.5])


def _fc_bias_without_quant_and_large_multiplier(m):
    tensor(m, "fc1/bias").quantization = None  # LiteRT then reads bias scale 0
    _set(m, "fc1", [0.001])  # M = 0.0005 / 0.001 = 0.5 > 0.02


def _conv_relu6_output_scale_tiny(m):
    _consistent_conv_output(m, 1e-12)  # 6 / 1e-12 does not fit int32
    m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = 3


def _conv_without_bias(m):
    m.subgraphs[0].operators[0].inputs = m.subgraphs[0].operators[0].inputs[:2]


def _conv_bias_index_minus_one(m):
    m.subgraphs[0].operators[0].inputs[2] = -1


def _schema_version_99(m):
    m.version = 99


def _scale_without_zero_point(m):
    tensor(m, "fc1/weights").quantization.zeroPoint = None


def _fc_per_channel_axis_1(m):
    q = tensor(m, "fc1/weights").quantization  # (3, 8) weights, 8 scales along axis 1
    q.scale, q.zeroPoint, q.quantizedDimension = np.full(8, 0.01, np.float32), np.zeros(8, np.int64), 1


LITERT_REFUSES = [
    (_fc_weight_3e38, "scale_diff / output_scale <= 0.02", "scale_diff / output_scale <= 0.02"),
    (_fc_output_1e38, "scale_diff / output_scale <= 0.02", "scale_diff / output_scale <= 0.02"),
    (_fc_bias_scale_off, "scale_diff / output_scale <= 0.02", "bias scale 0.5"),
    (_fc_bias_without_quant_and_large_multiplier, "scale_diff / output_scale <= 0.02",
     "bias scale 0 differs"),
    (_conv_relu6_output_scale_tiny, "no_integer_overflow_from_quantization",
     "no_integer_overflow_from_quantization"),
    (_conv_without_bias, "has_bias was not true", "has no bias"),
    (_conv_bias_index_minus_one, "optional but was expected", "has no bias"),
    (_schema_version_99, "schema version 99", "schema version 99"),
    (_scale_without_zero_point, "null zero_point", "1 scales but 0 zero points"),
    (_fc_per_channel_axis_1, "quantized_dimension != 0", "with 1 or 3 scales, got 8"),
]


@pytest.mark.parametrize("edit,litert_says,we_say", LITERT_REFUSES,
                         ids=[c[0].__name__.strip("_") for c in LITERT_REFUSES])
def test_what_litert_refuses_edgecnn_refuses(tmp_path, edit, litert_says, we_say):
    m = model_t()
    edit(m)
    path = _write(tmp_path, m)
    _litert_refuses(path, litert_says)
    _cli_refuses(path, we_say)


def _softmax_graph(n, s_in=0.1, s_out=1 / 256, zp_out=-128, beta=1.0):
    x = ir.Tensor("x", (1, n), "int8", Q(s_in, 0))
    sm = ops.Softmax("probs", beta=beta, inputs=("x",),
                    output=ir.Tensor("probs", (1, n), "int8", Q(s_out, zp_out)))
    return ir.Graph(x, (sm,), ("probs",))


def _activation_graph(kind, s_in, s_out, zp_out, n=16):
    x = ir.Tensor("x", (1, n), "int8", Q(s_in, 3))
    act = ops.Activation("act", kind, inputs=("x",),
                        output=ir.Tensor("act", (1, n), "int8", Q(s_out, zp_out)))
    return ir.Graph(x, (act,), ("act",))


@pytest.mark.parametrize("graph,litert_says,we_say", [
    (_softmax_graph(10, s_out=1 / 128), "params.scale", "softmax output must have scale 1/256"),
    (_softmax_graph(10, zp_out=0), "zero_point", "softmax output must have scale 1/256"),
    (_activation_graph("sigmoid", 0.1, 1 / 200, -128), "scale == 1. / 256",
     "logistic output scale must be 1/256 exactly"),
], ids=["softmax_output_scale", "softmax_output_zero_point", "logistic_output_scale"])
def test_output_quantization_litert_refuses(tmp_path, graph, litert_says, we_say):
    path = str(tmp_path / "m.tflite")
    write_tflite(graph, path)
    _litert_refuses(path, litert_says)
    _cli_refuses(path, we_say)


def test_softmax_multiplier_at_or_below_one_aborts_litert_and_is_refused(tmp_path):
    # beta * s_in * 2^26 <= 1: LiteRT's QuantizeMultiplierGreaterThanOne is a TFLITE_CHECK,
    # which aborts the whole process (so it runs in a child here)
    path = str(tmp_path / "m.tflite")
    write_tflite(_softmax_graph(10, s_in=1e-9), path)
    child = subprocess.run([sys.executable, "-c", "import sys; from edgecnn.litert import "
                            "LiteRTRunner; LiteRTRunner(sys.argv[1])", path],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode < 0, (child.returncode, child.stderr[-300:])  # SIGABRT
    _cli_refuses(path, "LiteRT aborts there")


# ----------------------------------------------------------------------------- undefined in LiteRT


def _conv_output_1e45(m):
    _consistent_conv_output(m, 1e-45)  # M = 2.9e41: shift 138, the audit's UBSan finding


def _fc_bias_int32_max(m):
    b = tensor(m, "fc1/bias")
    m.buffers[b.buffer].data = np.frombuffer(np.array([2**31 - 1, -2**31, 5], np.int32).tobytes(),
                                             np.uint8).copy()


def _conv_weight_scale_2_pow_20(m):
    _set(m, "conv1/weights", [2.0 ** 20] * 2)  # M = 4e5: acc * M leaves int32


@pytest.mark.parametrize("edit,we_say", [
    (_conv_output_1e45, "a left shift of 138 bits is undefined"),
    (_fc_bias_int32_max, "int32 accumulator of output channel 0 can reach"),
    (_conv_weight_scale_2_pow_20, "the rescaled value leaves int32"),
], ids=["conv_output_scale_1e-45", "fc_bias_int32_max", "conv_weight_scale_2^20"])
def test_undefined_in_litert_is_refused(tmp_path, edit, we_say):
    m = model_t()
    edit(m)
    LiteRTRunner(_write(tmp_path, m, "loads.tflite"), "litert-ref")  # LiteRT loads it...
    _cli_refuses(_write(tmp_path, m), "conv1" if "conv" in edit.__name__ else "fc1", we_say)


# ----------------------------------------------------------------------------- accepted: exact


def _conv_multiplier_2_pow_14(m):
    _consistent_conv_output(m, 0.02 * 0.02 / 2.0 ** 14)  # M = 2^14: left shift 15, in range


def _fc_bias_without_quant(m):
    tensor(m, "fc1/bias").quantization = None  # bias scale 0, M = 0.005 <= 0.02


def _fc_bias_with_three_scales(m):
    q = tensor(m, "fc1/bias").quantization
    q.scale, q.zeroPoint = np.full(3, 0.0005, np.float32), np.zeros(3, np.int64)


def _conv_bias_scale_off(m):
    _set(m, "conv1/bias", [0.5, 0.5])  # int8 CONV_2D has no 0.02 rule (only uint8 checks it)


def _conv_weights_minus_128(m):
    w = tensor(m, "conv1/weights")
    m.buffers[w.buffer].data = np.full(18, 0x80, np.uint8)  # outside the spec's [-127, 127]


@pytest.mark.parametrize("edit", [_conv_multiplier_2_pow_14, _fc_bias_without_quant,
                                  _fc_bias_with_three_scales, _conv_bias_scale_off,
                                  _conv_weights_minus_128],
                         ids=lambda f: f.__name__.strip("_"))
def test_accepted_edits_equal_litert(tmp_path, edit):
    m = model_t()
    edit(m)
    _exact_with_litert(_write(tmp_path, m))


@pytest.mark.parametrize("graph", [
    _activation_graph("tanh", 0.05, 1 / 64, 10),  # LiteRT's reference TANH takes any output
    _activation_graph("sigmoid", 0.05, 1 / 256, 17),  # LOGISTIC: scale 1/256, any zero point
    _softmax_graph(40, s_in=0.5, beta=40.0),  # input multiplier capped: left shift 31
], ids=["tanh_output_1_64_zp10", "logistic_zp17", "softmax_left_shift_31"])
def test_accepted_output_quantizations_equal_litert(tmp_path, graph):
    path = str(tmp_path / "m.tflite")
    write_tflite(graph, path)
    _exact_with_litert(path)


def test_reshape_that_changes_quantization_is_refused(tmp_path):
    # LiteRT copies the bytes (reshape.cc: memcpy) and reads them with the new scale
    m = model_t()
    _set(m, "flatten", [0.1], [3])
    path = _write(tmp_path, m)
    LiteRTRunner(path, "litert-ref")
    _cli_refuses(path, "RESHAPE changes the quantization", "re-export")


@pytest.mark.parametrize("dilation", [2**31 - 1, 32767])
def test_conv_dilation_past_int16_is_refused_and_below_exact(tmp_path, dilation):
    # 2^31 - 1 with SAME padding (pad 2^30) overflowed the Cython conv's int32 input index and
    # segfaulted (found by fuzz/tflite_struct.py); LiteRT 2.3 refuses it in conv.cc. 32767
    # pads 6 rows to 65540: both run it, almost every tap outside the image
    m = model_t()
    opts = m.subgraphs[0].operators[0].builtinOptions
    opts.dilationHFactor, opts.padding = dilation, 0  # Padding.SAME
    tensor(m, "conv1").shape = np.array([1, 6, 6, 2], np.int32)
    for name, shape in (("pool1", [1, 3, 3, 2]), ("flatten", [1, 18]), ("fc1/weights", [3, 18])):
        tensor(m, name).shape = np.array(shape, np.int32)
    for name, data in (("flatten/shape", np.array([1, 18], np.int32)),
                       ("fc1/weights", np.ones((3, 18), np.int8))):
        m.buffers[tensor(m, name).buffer].data = data.view(np.uint8).ravel()
    path = _write(tmp_path, m)
    if dilation > 32767:
        _litert_refuses(path, "dilation_height_factor <= INT16_MAX")
        _cli_refuses(path, "conv1", "dilation_height_factor <= INT16_MAX")
    else:
        _exact_with_litert(path)
