"""Scales that pass "finite and positive" but break fixed point (edgecnn/quant_rules.py).

Each case is a good int8 model with one quantization parameter changed, loaded in LiteRT's
real interpreter (BUILTIN_REF) and in edgecnn:
- what LiteRT refuses, edgecnn refuses through the CLI with exit 2, one line, LiteRT's reason;
- what LiteRT's C++ leaves undefined (shifts past 30, int32 overflow), edgecnn refuses too;
- everything edgecnn accepts equals LiteRT bit for bit on the reference and Cython kernels,
  and the firmware C under ASan+UBSan where LiteRT has no answer (softmax past 511 values).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn import ir, shapes
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
    sm = ir.Softmax("probs", beta=beta, inputs=("x",),
                    output=ir.Tensor("probs", (1, n), "int8", Q(s_out, zp_out)))
    return ir.Graph(x, (sm,))


def _activation_graph(kind, s_in, s_out, zp_out, n=16):
    x = ir.Tensor("x", (1, n), "int8", Q(s_in, 3))
    act = ir.Activation("act", kind, inputs=("x",),
                        output=ir.Tensor("act", (1, n), "int8", Q(s_out, zp_out)))
    return ir.Graph(x, (act,))


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


def test_softmax_over_many_equal_values_is_defined_everywhere(tmp_path):
    """600 equal logits: the sum of exps passes 2^28 and the final shift 31, where LiteRT's
    reference aborts (TFLITE_CHECK); edgecnn's reference, Cython and C (under ASan+UBSan) give
    the same defined answer, and a 4096-wide softmax is refused."""
    from test_firmware import _make, _parse, _run, _write_inputs

    from edgecnn.export_c import export_c
    graph = _softmax_graph(600)
    path = str(tmp_path / "m.tflite")
    write_tflite(graph, path)
    x = np.zeros((1, 600), np.int8)
    ref, cy = (Runtime(graph, b).invoke(x) for b in ("reference", "cython"))
    np.testing.assert_array_equal(ref, cy)
    export_c(path, tmp_path / "fw")
    _make(tmp_path / "fw", "asan")
    _write_inputs(tmp_path / "fw", [x])
    got, _ = _parse(_run(tmp_path / "fw", ["./model_test_asan", "in.bin"]), graph)
    np.testing.assert_array_equal(got.ravel(), ref.ravel().astype(np.int64))
    write_tflite(_softmax_graph(4096), str(tmp_path / "wide.tflite"))
    _cli_refuses(str(tmp_path / "wide.tflite"), "4096 values")


def test_reshape_that_changes_quantization_is_refused(tmp_path):
    # LiteRT copies the bytes (reshape.cc: memcpy) and reads them with the new scale
    m = model_t()
    _set(m, "flatten", [0.1], [3])
    path = _write(tmp_path, m)
    LiteRTRunner(path, "litert-ref")
    _cli_refuses(path, "RESHAPE changes the quantization", "re-export")


# ----------------------------------------------------------------------------- fixedpoint.h


def _largest_accepted(policy, bound):
    """The largest multiplier quant_rules accepts for accumulators up to ``bound``."""
    from edgecnn import quant_rules
    from edgecnn.reference import params as P
    lo, hi = 2.0 ** -45, 2.0 ** 45
    for _ in range(40):  # log-space bisection: 90 octaves to within 1e-10 of one
        mid = (lo * hi) ** 0.5
        try:
            quant_rules.check_requant("t", P.make_requant(1.0, [mid], 1.0, 0, "none", "conv",
                                                          policy), bound, "t")
            lo = mid
        except ModelFormatError:
            hi = mid
    return lo


def test_fixedpoint_h_at_the_accepted_limits_is_ubsan_clean(tmp_path):
    """ec_requantize (cython_kernels/fixedpoint.h, shared by Cython and the firmware) at the
    edge of what quant_rules accepts, for every policy, under UBSan: no undefined shift or
    overflow, and the NumPy spec's answer."""
    from edgecnn.export_c import stubs_dir
    from edgecnn.reference import params as P
    from edgecnn.reference.quantize import requantize
    rows, want = [], []
    for policy in P.ROUNDING_POLICIES:
        for bound in (255, 1 << 20, (1 << 31) - 1):
            for m in (_largest_accepted(policy, bound), 0.7, 2.0 ** -31 * 1.5, 1e-12):
                rq = P.make_requant(1.0, [m], 1.0, -128 if m > 1 else 127, "none", "conv", policy)
                for acc in (bound, -bound, bound - 1, 1 - bound, 0):
                    out = np.zeros((1, 1), np.int8)
                    requantize(np.array([[acc]], np.int64), rq, out)
                    rows.append(f"{{{acc}, {rq.policy}, {int(rq.multiplier[0])}, "
                                f"{int(rq.shift[0])}, {float(rq.real_scale[0]).hex()}, "
                                f"{rq.output_offset}}}")
                    want.append(int(out[0, 0]))
    src = tmp_path / "limits.c"
    src.write_text('#include <stdio.h>\n#include "fixedpoint.h"\n'
                   "typedef struct { int32_t acc, policy, m0, shift; double real; int32_t zp; } c_t;\n"
                   f"static const c_t cases[] = {{{', '.join(rows)}}};\n"
                   "int main(void) { unsigned i; for (i = 0; i < sizeof cases / sizeof *cases; i++)"
                   " printf(\"%d\\n\", ec_requantize(cases[i].acc, cases[i].policy, cases[i].m0,"
                   " cases[i].shift, cases[i].real, cases[i].zp, -128, 127)); return 0; }\n")
    cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1",
                         "-fsanitize=undefined", "-fno-sanitize-recover=all",
                         f"-I{stubs_dir()}", str(src), "-lm", "-o", str(tmp_path / "limits")],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(tmp_path / "limits")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-500:]
    got = [int(v) for v in run.stdout.split()]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert len(got) == len(want) and not bad, (bad[:1], rows[bad[0]] if bad else None)


# ----------------------------------------------------------------------------- ADD, CONCATENATION


def _two_input_model(op, s_x, s_y, s_out, zp_out=0):
    """x (1, 4) and a constant y (1, 4), int8, into one ADD or CONCATENATION (axis 1)."""
    import flatbuffers

    from edgecnn.tflite import schema
    fb = schema.load()

    def t(name, shape, scale, zp, buffer):
        tt = fb.TensorT()
        tt.name, tt.shape, tt.type, tt.buffer = name, np.array(shape, np.int32), fb.TensorType.INT8, buffer
        tt.quantization = fb.QuantizationParametersT()
        tt.quantization.scale = np.array([scale], np.float32)
        tt.quantization.zeroPoint = np.array([zp], np.int64)
        return tt

    m = fb.ModelT()
    m.version = 3
    bufs = [fb.BufferT() for _ in range(4)]
    bufs[2].data = np.array([1, -2, 3, -4], np.int8).view(np.uint8)
    m.buffers = bufs
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(fb.BuiltinOperator, op)
    code.version = 2
    m.operatorCodes = [code]
    o = fb.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = 0, np.array([0, 1], np.int32), np.array([2], np.int32)
    if op == "ADD":
        o.builtinOptionsType, o.builtinOptions = fb.BuiltinOptions.AddOptions, fb.AddOptionsT()
    else:
        o.builtinOptionsType = fb.BuiltinOptions.ConcatenationOptions
        o.builtinOptions = fb.ConcatenationOptionsT()
        o.builtinOptions.axis = 1
    sub = fb.SubGraphT()
    sub.tensors = [t(b"x", [1, 4], s_x, 0, 1), t(b"y", [1, 4], s_y, 0, 2),
                   t(b"out", [1, 4 if op == "ADD" else 8], s_out, zp_out, 3)]
    sub.inputs, sub.outputs, sub.operators = np.array([0], np.int32), np.array([2], np.int32), [o]
    m.subgraphs = [sub]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(b.Output())


def _litert_child(path):
    return subprocess.run([sys.executable, "-c", "import sys; from edgecnn.litert import "
                           "LiteRTRunner; LiteRTRunner(sys.argv[1])", path],
                          capture_output=True, text=True, timeout=60)


def test_add_output_scale_rule_matches_litert(tmp_path):
    from edgecnn import quant_rules
    ok, aborts = tmp_path / "ok.tflite", tmp_path / "aborts.tflite"
    ok.write_bytes(_two_input_model("ADD", 0.1, 0.05, 0.2 / 2**20 * 1.01))
    aborts.write_bytes(_two_input_model("ADD", 0.1, 0.05, 0.2 / 2**20 * 0.99))
    LiteRTRunner(str(ok), "litert-ref")
    assert _litert_child(str(aborts)).returncode < 0  # TFLITE_CHECK_LT: SIGABRT
    quant_rules.add_multipliers("add", 0.1, 0.05, 0.2 / 2**20 * 1.01)
    with pytest.raises(ModelFormatError, match="LiteRT aborts there"):
        quant_rules.add_multipliers("add", 0.1, 0.05, 0.2 / 2**20 * 0.99)


def test_concatenation_needs_equal_quantization_like_litert(tmp_path):
    from edgecnn import quant_rules
    path = tmp_path / "concat.tflite"
    path.write_bytes(_two_input_model("CONCATENATION", 0.1, 0.1000001, 0.1))
    _litert_refuses(str(path), "params.scale")
    x, y = (ir.Tensor(n, (1, 4), "int8", Q(s, 0)) for n, s in (("x", 0.1), ("y", 0.1000001)))
    out = ir.Tensor("out", (1, 8), "int8", Q(0.1, 0))
    quant_rules.concat_quant("cat", [x, x], out)
    with pytest.raises(ModelFormatError, match="input 'y' has scale"):
        quant_rules.concat_quant("cat", [x, y], out)
