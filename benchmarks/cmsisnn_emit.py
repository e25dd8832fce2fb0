"""The C of cmsisnn_gen.py: model.h and cmsisnn_model.c, one CMSIS-NN call per layer (see there).

Offsets into the arena differ between the DSP and Helium plans (their scratch sizes differ), so
the file defines both under ARM_MATH_MVEI (CMSIS-NN's own architecture macro). A stand-in layer is
emitted by edgecnn's export-c for that node (policy double) with its pointers in this arena.
"""

from __future__ import annotations

import os

import numpy as np

from cmsisnn_gen import FUNCTIONS, c_array, dims, plan, scratch_bytes


def _stand_ins(model_path: str, layers, det, stand_in: set):
    """{layer position: (node, call)} from edgecnn's prepare under policy double, matched by
    output tensor name (edgecnn names a node after its output tensor)."""
    if not stand_in:
        return {}
    from edgecnn.prepare import prepare_calls
    from edgecnn.tflite.reader import load_tflite
    steps = prepare_calls(load_tflite(model_path).graph, "double")
    by_name = {node.name.split("#")[0]: (node, call) for node, call in steps
               if call.kernel is not None}
    found = {}
    for k, l in enumerate(layers):
        if l.kind in stand_in:
            found[k] = by_name[det[l.output]["name"]]
    return found


def _layer_c(k, l, det, t, s, z, mve_sums):
    """(declarations, init checks, call) of CMSIS-NN layer k; t(i): the arena address of
    tensor i; s, z: its scratch address and size macros."""
    x, y = det[l.inputs[0]]["shape"], det[l.output]["shape"]
    p = f"l{k}"
    if l.kind in ("conv", "depthwise"):
        n_out = len(l.mult)
        w = l.w.reshape(-1)
        d = (c_array("int8_t", f"{p}_w", w) + c_array("int32_t", f"{p}_b", l.b, 8)
             + c_array("int32_t", f"{p}_mult", l.mult, 8)
             + c_array("int32_t", f"{p}_shift", l.shift, 8))
        geo = (f"{{{l.stride[0]}, {l.stride[1]}}}, {{{l.pad[0]}, {l.pad[1]}}}, "
               f"{{{l.dilation[0]}, {l.dilation[1]}}}, {{{l.act[0]}, {l.act[1]}}}")
        if l.kind == "conv":
            d += f"static const cmsis_nn_conv_params {p}_p = {{{-l.zp_in}, {l.zp_out}, {geo}}};\n"
            fn, fdims = "arm_convolve_wrapper_s8", dims(l.w.shape)
        else:
            mult = n_out // int(x[3])
            d += (f"static const cmsis_nn_dw_conv_params {p}_p = {{{-l.zp_in}, {l.zp_out}, "
                  f"{mult}, {geo}}};\n")
            fn, fdims = "arm_depthwise_conv_wrapper_s8", dims(l.w.shape)
        d += (f"static const cmsis_nn_per_channel_quant_params {p}_q = {{(int32_t *){p}_mult, "
              f"(int32_t *){p}_shift}};\n"
              f"static const cmsis_nn_dims {p}_in = {dims(x)}, {p}_f = {fdims}, "
              f"{p}_bd = {{1, 1, 1, {n_out}}}, {p}_out = {dims(y)};\n")
        check = f"    if ({fn}_get_buffer_size(&{p}_p, &{p}_in, &{p}_f, &{p}_out) > {z}) return -1;\n"
        call = (f"{{ cmsis_nn_context c = {{{s}, {z}}}; check({fn}(&c, &{p}_p, &{p}_q, &{p}_in, "
                f"{t(l.inputs[0])}, &{p}_f, {p}_w, &{p}_bd, {p}_b, &{p}_out, {t(l.output)})); }}")
        return d, check, call
    if l.kind in ("fc", "fc_pc"):
        n_out, n_in = l.w.shape
        d = c_array("int8_t", f"{p}_w", l.w) + c_array("int32_t", f"{p}_b", l.b, 8)
        if l.kind == "fc":
            fn = "arm_fully_connected_s8"
            d += f"static const cmsis_nn_per_tensor_quant_params {p}_q = {{{l.mult}, {l.shift}}};\n"
        else:
            fn = "arm_fully_connected_per_channel_s8"
            d += (c_array("int32_t", f"{p}_mult", l.mult, 8)
                  + c_array("int32_t", f"{p}_shift", l.shift, 8)
                  + f"static const cmsis_nn_per_channel_quant_params {p}_q = "
                    f"{{(int32_t *){p}_mult, (int32_t *){p}_shift}};\n")
        d += (f"static const cmsis_nn_fc_params {p}_p = {{{-l.zp_in}, 0, {l.zp_out}, "
              f"{{{l.act[0]}, {l.act[1]}}}}};\n"
              f"static const cmsis_nn_dims {p}_in = {{1, 1, 1, {n_in}}}, {p}_f = {{{n_in}, 1, 1, "
              f"{n_out}}}, {p}_bd = {{1, 1, 1, {n_out}}}, {p}_out = {{1, 1, 1, {n_out}}};\n"
              "#if defined(ARM_MATH_MVEI)\n"
              f"static int32_t {p}_sum[{n_out}]; /* kernel sums + bias, once (TFLM Prepare) */\n"
              "#endif\n")
        mve_sums.append(n_out * 4)
        check = ("#if defined(ARM_MATH_MVEI)\n"
                 f"    if (arm_fully_connected_s8_get_buffer_size(&{p}_f) > (int32_t)sizeof({p}_sum)) "
                 "return -1;\n"
                 f"    arm_vector_sum_s8({p}_sum, {n_in}, {n_out}, {p}_w, {-l.zp_in}, 0, {p}_b);\n"
                 "#endif\n")
        call = ("{\n#if defined(ARM_MATH_MVEI)\n"
                f"        cmsis_nn_context c = {{{p}_sum, sizeof({p}_sum)}};\n#else\n"
                "        cmsis_nn_context c = {0, 0};\n#endif\n"
                f"        check({fn}(&c, &{p}_p, &{p}_q, &{p}_in, {t(l.inputs[0])}, "
                f"&{p}_f, {p}_w, &{p}_bd, {p}_b, &{p}_out, {t(l.output)}));\n    }}")
        return d, check, call
    if l.kind in ("avgpool", "maxpool"):
        fn = "arm_avgpool_s8" if l.kind == "avgpool" else "arm_max_pool_s8"
        d = (f"static const cmsis_nn_pool_params {p}_p = {{{{{l.stride[0]}, {l.stride[1]}}}, "
             f"{{{l.pad[0]}, {l.pad[1]}}}, {{{l.act[0]}, {l.act[1]}}}}};\n"
             f"static const cmsis_nn_dims {p}_in = {dims(x)}, {p}_f = {{1, {l.filt[0]}, "
             f"{l.filt[1]}, 1}}, {p}_out = {dims(y)};\n")
        check = (f"    if (arm_avgpool_s8_get_buffer_size({int(y[2])}, {int(x[3])}) > {z}) return -1;\n"
                 if l.kind == "avgpool" else "")
        call = (f"{{ cmsis_nn_context c = {{{s}, {z}}}; check({fn}(&c, &{p}_p, &{p}_in, "
                f"{t(l.inputs[0])}, &{p}_f, &{p}_out, {t(l.output)})); }}")
        return d, check, call
    if l.kind == "add":
        (o1, m1, s1), (o2, m2, s2), (zo, mo, so) = l.in1, l.in2, l.out_q
        call = (f"check(arm_elementwise_add_s8({t(l.inputs[0])}, {t(l.inputs[1])}, {o1}, {m1}, "
                f"{s1}, {o2}, {m2}, {s2}, 20, {t(l.output)}, {zo}, {mo}, {so}, {l.act[0]}, "
                f"{l.act[1]}, {l.n}));")
        return "", "", call
    if l.kind == "softmax":
        call = (f"arm_softmax_s8({t(l.inputs[0])}, {l.rows}, {l.cols}, {l.mult}, {l.shift}, "
                f"{l.diff_min}, {t(l.output)});")
        return "", "", call
    raise AssertionError(l.kind)


def write_model(model_path: str, out: str, layers, det, it, stand_in: set):
    from edgecnn import ir
    from edgecnn.export_c.board import output_blocks
    from edgecnn.export_c.codegen import CContext, Constants
    from edgecnn.export_c.kernels import ExportLog, scratch_bytes as ec_scratch
    os.makedirs(out, exist_ok=True)
    inp = int(it.get_input_details()[0]["index"])
    outp = int(it.get_output_details()[0]["index"])
    ec = _stand_ins(model_path, layers, det, stand_in)
    plans = {}
    for mve in (True, False):  # the Helium plan under #if, the DSP one under #else
        scratch = [ec_scratch(ec[k][1]) if k in ec else scratch_bytes(l, det, mve)
                   for k, l in enumerate(layers)]
        plans[mve] = plan(layers, det, inp, scratch), scratch
    (_, alias, _), _ = plans[False]

    def t(i):
        i = alias.get(i, i)
        return f"(arena + T{i})"

    macros = []
    for mve, ((offsets, _, size), scratch) in plans.items():
        macros.append(f"#{'if defined(ARM_MATH_MVEI)' if mve else 'else'}\n"
                      f"#define ARENA_BYTES {size}\n"
                      + "".join(f"#define T{n} {o}\n" for n, o in offsets.items()
                                if not str(n).startswith("s"))
                      + "".join(f"#define S{k} {offsets.get(f's{k}', 0)}\n#define Z{k} {z}\n"
                                for k, z in enumerate(scratch)))
    decls, checks, calls, mve_sums = [], [], [], []
    consts, records, log = Constants(), [], ExportLog()
    marks = 0
    for k, l in enumerate(layers):
        if l.kind == "reshape":
            continue
        if k in ec:
            node, call = ec[k]
            c = CContext(consts, records, f"ec{k}", [t(i) for i in l.inputs], t(l.output),
                         f"(arena + S{k})", log)
            calls.append(f"    {node.emit_c(call, c)} /* edgecnn stand-in: {l.kind} */\n")
        else:
            d, chk, call = _layer_c(k, l, det, t, f"(arena + S{k})", f"Z{k}", mve_sums)
            decls.append(f"/* layer {k}: {l.kind} (op {l.index}) */\n{d}")
            checks.append(chk)
            calls.append(f"    {call}\n")
        calls.append(f"    MARK({marks})\n")
        marks += 1
    used = sorted({l.kind for l in layers if l.kind in FUNCTIONS} - stand_in)
    n_in = int(np.prod(det[inp]["shape"]))
    scale, zp = (float(v[0]) for v in (det[outp]["quantization_parameters"]["scales"],
                                       det[outp]["quantization_parameters"]["zero_points"]))
    out_tensor = ir.Tensor(det[outp]["name"], tuple(int(d) for d in det[outp]["shape"]), "int8",
                           ir.QuantParams.per_tensor(scale, int(zp)))
    out_decls, out_defs = output_blocks([(out_tensor, t(outp))])  # edgecnn's output API
    with open(os.path.join(out, "model.h"), "w") as f:
        f.write("/* Generated by edgecnn benchmarks/cmsisnn_gen.py: the CMSIS-NN model behind "
                "edgecnn's model.h API. */\n#ifndef EDGECNN_MODEL_H\n#define EDGECNN_MODEL_H\n\n"
                f"#include <stdint.h>\n\n#define EC_MODEL_INPUT_BYTES {n_in}\n\n{out_decls}\n"
                "int ec_model_init(void);\nvoid *ec_model_input(void);\n"
                "void ec_model_invoke(void);\n\n#endif\n")
    stand_text = (f" * edgecnn's kernels stand in for: {', '.join(sorted(stand_in))} (the CMSIS-NN "
                  "sources at hand lack them).\n" if stand_in else "")
    with open(os.path.join(out, "cmsisnn_model.c"), "w") as f:
        f.write(f"/* Generated by edgecnn benchmarks/cmsisnn_gen.py from "
                f"{os.path.basename(model_path)}; do not edit.\n * CMSIS-NN calls: "
                f"{', '.join(FUNCTIONS[k] for k in used)}.\n{stand_text} */\n"
                "#include <string.h>\n\n#include \"arm_nnfunctions.h\"\n#include \"model.h\"\n"
                + ('#include "ec_kernels.h"\n#include "ec_port.h"\n' if stand_in else "")
                + "\n#ifdef BENCH_LAYERS\nvoid bench_mark(int layer);\n#define MARK(i) "
                "bench_mark(i);\n#else\n#define MARK(i)\n#endif\n\n" + "".join(macros)
                + "#endif\n\nstatic int8_t arena[ARENA_BYTES] __attribute__((aligned(16)));\n"
                "static int ec_status; /* first failing CMSIS-NN status (for a debugger) */\n\n"
                "static void check(arm_cmsis_nn_status s) {\n    if (s != ARM_CMSIS_NN_SUCCESS "
                "&& ec_status == 0) ec_status = (int)s;\n}\n\n" + "".join(decls)
                + consts.text() + "".join(records)
                + "\nint ec_model_init(void) {\n" + "".join(checks) + "    return 0;\n}\n\n"
                f"void *ec_model_input(void) {{ return {t(inp)}; }}\n\n"
                + out_defs + "\n"
                "void ec_model_invoke(void) {\n" + "".join(calls) + "}\n")
