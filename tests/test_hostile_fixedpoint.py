"""The fixed-point arithmetic at the edges of what edgecnn accepts, and the LiteRT rules of the
graph ops (ADD, CONCATENATION) that prepare will call when they land (edgecnn/quant_rules.py).

- cython_kernels/fixedpoint.h (shared by Cython and the firmware) at the largest multipliers
  quant_rules accepts, every policy, under UBSan, against the NumPy spec;
- softmax over 600 equal values, where LiteRT's reference aborts: defined and equal on the
  reference, the Cython kernels and the C firmware under ASan+UBSan;
- ADD's output multiplier and CONCATENATION's equal quantization, proven in the interpreter.
"""

import subprocess
import sys

import numpy as np
import pytest

from edgecnn import ir
from edgecnn.errors import ModelFormatError
from edgecnn.litert import LiteRTRunner
from edgecnn.runtime import Runtime
from edgecnn.tflite.writer import write_tflite
from test_hostile_scales import Q, _cli_refuses, _litert_refuses, _softmax_graph


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


def _binary_node(op, s_x, s_y, s_out):
    from edgecnn import ops
    x, y = (ir.Tensor(n, (1, 4), "int8", Q(s, 0)) for n, s in (("x", s_x), ("y", s_y)))
    width = 4 if op == "ADD" else 8
    out = ir.Tensor("out", (1, width), "int8", Q(s_out, 0))
    node = (ops.Add("add", inputs=("x", "y"), output=out) if op == "ADD" else
            ops.Concatenation("cat", 1, inputs=("x", "y"), output=out))
    return node, [x, y]


def test_add_output_scale_rule_matches_litert(tmp_path):
    ok, aborts = tmp_path / "ok.tflite", tmp_path / "aborts.tflite"
    ok.write_bytes(_two_input_model("ADD", 0.1, 0.05, 0.2 / 2**20 * 1.01))
    aborts.write_bytes(_two_input_model("ADD", 0.1, 0.05, 0.2 / 2**20 * 0.99))
    LiteRTRunner(str(ok), "litert-ref")
    assert _litert_child(str(aborts)).returncode < 0  # TFLITE_CHECK_LT: SIGABRT
    node, ins = _binary_node("ADD", 0.1, 0.05, 0.2 / 2**20 * 1.01)
    node.prepare(ins, "litert-ref")
    node, ins = _binary_node("ADD", 0.1, 0.05, 0.2 / 2**20 * 0.99)
    with pytest.raises(ModelFormatError, match="add: .*ADD"):
        node.prepare(ins, "litert-ref")


def test_concatenation_needs_equal_quantization_like_litert(tmp_path):
    path = tmp_path / "concat.tflite"
    path.write_bytes(_two_input_model("CONCATENATION", 0.1, 0.1000001, 0.1))
    _litert_refuses(str(path), "params.scale")
    node, ins = _binary_node("CONCATENATION", 0.1, 0.1, 0.1)
    node.prepare(ins, "litert-ref")
    node, ins = _binary_node("CONCATENATION", 0.1, 0.1000001, 0.1)
    with pytest.raises(ModelFormatError, match="cat: .*CONCATENATION"):
        node.prepare(ins, "litert-ref")


@pytest.mark.parametrize("kernel,stride,dilation,padding", [
    ((3, 3), (1 << 24, 1), (1, 1), (0, 0, 0, 0)),
    ((3, 3), (1, 1), (1, 1), (1 << 23, 1 << 23, 0, 0)),
    ((1 << 24, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
])
def test_window_geometry_past_int32_indexing_is_refused(kernel, stride, dilation, padding):
    from edgecnn import quant_rules
    quant_rules.window_geometry("conv", (6, 6), (3, 3), (2, 2), (32767, 1), (65534, 0, 1, 1))
    with pytest.raises(ModelFormatError, match="kernels index up to 16777216"):
        quant_rules.window_geometry("conv", (6, 6), kernel, stride, dilation, padding)


def test_padding_that_would_make_the_padded_copy_a_memory_bomb_is_refused():
    # 11 taps at dilation 32767 under SAME padding: 327 670 padded rows of a 224-wide input,
    # gigabytes for the Cython conv's padded copy; LiteRT accepts the model
    from edgecnn import quant_rules
    quant_rules.window_geometry("conv", (224, 224), (3, 3), (1, 1), (2, 2), (2, 2, 2, 2))
    with pytest.raises(ModelFormatError, match="over 16x its area"):
        quant_rules.window_geometry("conv", (8, 224), (11, 1), (1, 1), (32767, 1),
                                    (163835, 163835, 0, 0))
