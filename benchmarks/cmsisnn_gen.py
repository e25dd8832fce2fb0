"""An int8 .tflite as a CMSIS-NN model file, for the anchor benchmark (bench_firmware.py).

    python benchmarks/cmsisnn_gen.py MODEL.tflite OUTDIR [--stand-in depthwise,add,...]

The approach of the anchor's gen_model.py (../shared/anchors/cmsis-nn), for any network built
from CONV_2D, DEPTHWISE_CONV_2D, ADD (equal shapes), AVERAGE_POOL_2D, MAX_POOL_2D,
FULLY_CONNECTED (per tensor), SOFTMAX and RESHAPE (with the converter's SHAPE / STRIDED_SLICE /
PACK batch arithmetic, which a fixed batch of 1 makes constant): the model is read with LiteRT's
interpreter (tensors, constants, the op list) and LiteRT's own flatbuffer schema (the builtin
options the interpreter does not expose), never with edgecnn's reader; every multiplier and shift
is computed as TFLite Micro's Prepare computes it (tflm_* below), and each op is the CMSIS-NN call
TFLite Micro's CMSIS-NN port makes:

  CONV_2D            arm_convolve_wrapper_s8 (per-channel multipliers)
  DEPTHWISE_CONV_2D  arm_depthwise_conv_wrapper_s8
  ADD                arm_elementwise_add_s8
  AVERAGE_POOL_2D    arm_avgpool_s8;  MAX_POOL_2D  arm_max_pool_s8
  FULLY_CONNECTED    arm_fully_connected_s8, or arm_fully_connected_per_channel_s8 where the
                     weights carry a scale per row (Helium: kernel sums once in ec_model_init,
                     as TFLite Micro computes them once)
  SOFTMAX            arm_softmax_s8

Writes OUTDIR/model.h (edgecnn's model.h API, so edgecnn's model_test.c and the anchor's
bench_main.c drive it) and OUTDIR/cmsisnn_model.c. Activations share one arena placed by a greedy
planner (TFLite Micro's GreedyMemoryPlanner: largest buffer first, lowest offset that overlaps
no buffer alive at the same time), with each op's CMSIS-NN scratch planned in it for the layer's
duration (DSP and Helium sizes differ: both plans are written, chosen by ARM_MATH_MVEI); the
sizes come from CMSIS-NN's get_buffer_size formulas (scratch_bytes) and ec_model_init checks
them against CMSIS-NN's own functions. ``--stand-in KINDS``: ops whose CMSIS-NN sources a build
lacks run edgecnn's kernel instead (its export-c C under policy double, which TFLite Micro's
reference kernels equal), so the rest can still be measured; bench_firmware.py says which.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

SKIPPED = ("SHAPE", "STRIDED_SLICE", "PACK")  # batch arithmetic, constant at batch 1
KINDS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "ADD": "add",
         "AVERAGE_POOL_2D": "avgpool", "MAX_POOL_2D": "maxpool", "FULLY_CONNECTED": "fc",
         "SOFTMAX": "softmax", "RESHAPE": "reshape"}
FUNCTIONS = {"conv": "arm_convolve_wrapper_s8", "depthwise": "arm_depthwise_conv_wrapper_s8",
             "add": "arm_elementwise_add_s8", "avgpool": "arm_avgpool_s8",
             "maxpool": "arm_max_pool_s8", "fc": "arm_fully_connected_s8",
             "fc_pc": "arm_fully_connected_per_channel_s8", "softmax": "arm_softmax_s8"}
CH_IN_BLOCK_MVE = 124  # CMSIS-NN arm_nnsupportfunctions.h


# ---- TFLite Micro's Prepare arithmetic (quantization_util.cc, kernel_util.cc) ----------------

def tflm_quantize_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier: m = q * 2^(shift - 31), q rounded half away from zero."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q >= 0 else -1)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def tflm_activation(act: int, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8: zp + TfLiteRound(float32(f) / float32(scale))
    (round half away from zero)."""
    def q(f):
        v = float(np.float32(f) / np.float32(scale))
        return zp + int(math.copysign(math.floor(abs(v) + 0.5), v))
    if act == 0:
        return -128, 127
    if act == 1:  # RELU
        return max(-128, q(0.0)), 127
    if act == 3:  # RELU6
        return max(-128, q(0.0)), min(127, q(6.0))
    raise ValueError(f"fused activation {act} is not supported here")


def tflm_padding(same: bool, size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """(output size, leading pad): ComputeOutSize and ComputePaddingHeightWidth."""
    eff = (k - 1) * dilation + 1
    out = (size + stride - 1) // stride if same else (size - eff + stride) // stride
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2


def tflm_softmax(beta: float, s_in: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius, 5 integer bits: (mult, shift, diff_min)."""
    real = min(float(beta) * float(s_in) * (1 << 26), float((1 << 31) - 1))
    mult, shift = tflm_quantize_multiplier(real)
    radius = 31 * (1 << 26) / (1 << shift)
    return mult, shift, -int(math.floor(radius))


# ---- reading the model -----------------------------------------------------------------------

class Layer:
    def __init__(self, kind, index, inputs, output, **kw):
        self.kind, self.index, self.inputs, self.output = kind, index, inputs, output
        self.__dict__.update(kw)


def read_model(path: str):
    """(layers, tensors) from LiteRT's interpreter and schema; tensors: index -> detail dict."""
    from ai_edge_litert import schema_py_generated as S
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    det = {d["index"]: d for d in it.get_tensor_details()}
    fb = S.ModelT.InitFromObj(S.Model.GetRootAsModel(open(path, "rb").read(), 0))
    options = [op.builtinOptions for op in fb.subgraphs[0].operators]
    layers = []
    for op, opt in zip(it._get_ops_details(), options):
        name = op["op_name"]
        if name in SKIPPED:
            continue
        if name not in KINDS:
            raise SystemExit(f"cmsisnn_gen: {path}: op {name} has no CMSIS-NN call here")
        ins, out = [int(i) for i in op["inputs"]], int(op["outputs"][0])
        layers.append(_layer(KINDS[name], op["index"], ins, out, opt, det, it))
    return layers, det, it


def _quant(d):
    q = d["quantization_parameters"]
    return q["scales"].astype(np.float32), int(q["zero_points"][0]) if q["zero_points"].size else 0


def _layer(kind, index, ins, out, opt, det, it):
    x, y = det[ins[0]], det[out]
    (s_in,), zp_in = _quant(x)
    (s_out,), zp_out = _quant(y)
    if kind in ("conv", "depthwise"):
        w, b = it.get_tensor(ins[1]), it.get_tensor(ins[2])
        s_w, _ = _quant(det[ins[1]])
        n_out = w.shape[0] if kind == "conv" else w.shape[3]
        s_w = np.broadcast_to(s_w, (n_out,))
        mult, shift = zip(*(tflm_quantize_multiplier(float(s_in) * float(s) / float(s_out))
                            for s in s_w))  # PopulateConvolutionQuantizationParams
        _, h, wd, _ = x["shape"]
        kh, kw = w.shape[1:3]
        same = opt.padding == 0
        oh, pad_h = tflm_padding(same, h, kh, opt.strideH, opt.dilationHFactor)
        ow, pad_w = tflm_padding(same, wd, kw, opt.strideW, opt.dilationWFactor)
        assert (1, oh, ow, n_out) == tuple(y["shape"]), (kind, index)
        return Layer(kind, index, ins[:1], out, w=w, b=b, mult=mult, shift=shift,
                     stride=(opt.strideW, opt.strideH), pad=(pad_w, pad_h),
                     dilation=(opt.dilationWFactor, opt.dilationHFactor),
                     act=tflm_activation(opt.fusedActivationFunction, s_out, zp_out),
                     zp_in=zp_in, zp_out=zp_out)
    if kind == "fc":
        w, b = it.get_tensor(ins[1]), it.get_tensor(ins[2])
        s_w, _ = _quant(det[ins[1]])
        if len(set(s_w.tolist())) > 1:  # per channel: PopulateConvolutionQuantizationParams
            mult, shift = zip(*(tflm_quantize_multiplier(float(s_in) * float(s) / float(s_out))
                                for s in s_w))
            kind = "fc_pc"
        else:  # GetQuantizedConvolutionMultipler: the float32 product s_in * s_w, then double
            mult, shift = tflm_quantize_multiplier(float(np.float32(s_in * s_w[0])) / float(s_out))
        return Layer(kind, index, ins[:1], out, w=w, b=b, mult=mult, shift=shift,
                     act=tflm_activation(opt.fusedActivationFunction, s_out, zp_out),
                     zp_in=zp_in, zp_out=zp_out)
    if kind == "add":
        if tuple(det[ins[0]]["shape"]) != tuple(det[ins[1]]["shape"]):
            raise SystemExit("cmsisnn_gen: ADD with broadcasting has no CMSIS-NN call")
        (s2,), zp2 = _quant(det[ins[1]])
        twice = 2.0 * float(max(s_in, s2))  # PrepareAdd (add_common.cc), left shift 20
        m1, sh1 = tflm_quantize_multiplier(float(s_in) / twice)
        m2, sh2 = tflm_quantize_multiplier(float(s2) / twice)
        mo, sho = tflm_quantize_multiplier(twice / ((1 << 20) * float(s_out)))
        return Layer(kind, index, ins[:2], out, in1=(-zp_in, m1, sh1), in2=(-zp2, m2, sh2),
                     out_q=(zp_out, mo, sho), n=int(np.prod(y["shape"])),
                     act=tflm_activation(opt.fusedActivationFunction, s_out, zp_out))
    if kind in ("avgpool", "maxpool"):
        _, h, wd, _ = x["shape"]
        same = opt.padding == 0
        _, pad_h = tflm_padding(same, h, opt.filterHeight, opt.strideH, 1)
        _, pad_w = tflm_padding(same, wd, opt.filterWidth, opt.strideW, 1)
        return Layer(kind, index, ins[:1], out, filt=(opt.filterHeight, opt.filterWidth),
                     stride=(opt.strideW, opt.strideH), pad=(pad_w, pad_h),
                     act=tflm_activation(opt.fusedActivationFunction, s_out, zp_out))
    if kind == "softmax":
        mult, shift, diff_min = tflm_softmax(float(np.float32(opt.beta)), float(s_in))
        return Layer(kind, index, ins[:1], out, mult=mult, shift=shift, diff_min=diff_min,
                     rows=int(np.prod(x["shape"][:-1])), cols=int(x["shape"][-1]))
    return Layer(kind, index, ins[:1], out)  # reshape: the same bytes


# ---- scratch and the arena plan ---------------------------------------------------------------

def scratch_bytes(layer, det, mve: bool) -> int:
    """CMSIS-NN's get_buffer_size for the op on this architecture (gcc build; ec_model_init
    checks it against CMSIS-NN's own function)."""
    if layer.kind == "conv":
        o, kh, kw, c = layer.w.shape
        _, h, _, cin = det[layer.inputs[0]]["shape"]
        if layer.pad == (0, 0) and (kh, kw) == (1, 1) and layer.dilation == (1, 1):
            return 0  # 1x1: the fast path and the strided one need none under gcc
        if h == 1 and kh == 1 and layer.dilation[0] == 1 and (layer.stride[0] * c) % 4 == 0:
            raise SystemExit("cmsisnn_gen: 1xN convolutions are not written here")
        k = kh * kw * c
        return 4 * 16 * -(-k // 16) if mve else 2 * 2 * -(-k // 4) * 4
    if layer.kind == "depthwise":
        _, kh, kw, cm = layer.w.shape
        cin = det[layer.inputs[0]]["shape"][3]
        if cin != cm or layer.dilation != (1, 1):
            return 0
        if mve:
            return 4 * CH_IN_BLOCK_MVE * kh * kw
        return 0 if (kh, kw) == (3, 3) and max(layer.pad) <= 1 else cin * kh * kw * 2
    if layer.kind == "avgpool" and not mve:
        return 4 * int(det[layer.inputs[0]]["shape"][3])
    return 0


def plan(layers, det, input_index, scratch):
    """({tensor index or "s<k>": offset}, {reshape output: the tensor it aliases}, arena bytes):
    greedy by size over lifetimes [first op, last op] (the input lives from before op 0, the
    last op's output to the end); ``scratch[k]``: bytes layer k needs during its op."""
    alias = {}
    for l in layers:
        if l.kind == "reshape":
            alias[l.output] = alias.get(l.inputs[0], l.inputs[0])
    first, last = {input_index: -1}, {input_index: -1}
    size = {input_index: int(np.prod(det[input_index]["shape"]))}
    for k, l in enumerate(layers):
        for t in l.inputs:
            last[alias.get(t, t)] = k
        t = alias.get(l.output, l.output)
        if t not in first:
            first[t], last[t], size[t] = k, k, int(np.prod(det[t]["shape"]))
        if scratch[k]:
            first[f"s{k}"], last[f"s{k}"], size[f"s{k}"] = k, k, scratch[k]
    last[alias.get(layers[-1].output, layers[-1].output)] = len(layers)
    placed, offsets = [], {}
    for name in sorted(size, key=lambda n: (-size[n], str(n))):
        lo, hi, off = first[name], last[name], 0
        for o, e, f, la in sorted(placed):
            if la < lo or f > hi:
                continue  # not alive at the same time
            if off + size[name] <= o:
                break
            off = max(off, (e + 15) & ~15)  # TFLite Micro aligns buffers to 16 bytes
        offsets[name] = off
        placed.append((off, off + size[name], lo, hi))
    return offsets, alias, max(e for _, e, _, _ in placed)


# ---- C ----------------------------------------------------------------------------------------

def c_array(ctype, name, values, per_line=16):
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    body = ",\n    ".join(", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line))
    return (f"static const {ctype} {name}[{len(vals)}] __attribute__((aligned(4))) = {{\n"
            f"    {body}}};\n")


def dims(shape) -> str:
    s = [int(v) for v in shape]
    s = [1] * (4 - len(s)) + s
    return "{" + ", ".join(map(str, s)) + "}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--stand-in", default="", help="op kinds run by edgecnn's kernels")
    args = ap.parse_args()
    from cmsisnn_emit import write_model
    layers, det, it = read_model(args.model)
    stand_in = {k for k in args.stand_in.split(",") if k}
    write_model(args.model, args.out, layers, det, it, stand_in)
    print(f"cmsisnn_gen: {args.out}/cmsisnn_model.c ({len(layers)} layers"
          + (f", edgecnn stands in for {', '.join(sorted(stand_in))})" if stand_in else ")"))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
