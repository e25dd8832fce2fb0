# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 DEPTHWISE_CONV_2D, twin of edgecnn/reference/depthwise_conv.py (LiteRT
# reference_integer_ops::DepthwiseConvPerChannel). x int8 (H, W, C), w int8 (KH, KW, C*M),
# bias int32 (C*M,) or None, out int8 (OH, OW, C*M), all C-contiguous; output channel
# oc = ic * M + m reads input channel ic. BoundDepthwise widens the weights once (depthwise_s8.h),
# folds the input zero point into the bias and owns its scratch; a call allocates nothing.
import os

import numpy as np
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

from gemm_s8 cimport (EC_ISA_COUNT, EC_POOL_MAX, ec_current_isa, ec_force_isa, ec_isa_names,
                      ec_isa_supported, ec_pool_adopt, ec_pool_run_fn, ec_requant)

from edgecnn._kernels import conv as _conv

# one worker pool per process: conv's (two pools on two cores would spin against each other)
ec_pool_adopt(<ec_pool_run_fn>PyCapsule_GetPointer(_conv.pool_capsule(), _conv.POOL_CAPSULE))


cdef extern from "depthwise_s8.h" nogil:
    int EC_DW_PIX
    int EC_DW_CALIGN
    ctypedef struct ec_dw_split:
        const int32_t* bias
        const int32_t* m0
        const int32_t* left
        const int32_t* right
        const float* scale
    ctypedef struct ec_dw_plan:
        int isa
        int h, w, c, m, cm, cp
        int oh, ow, kh, kw, sh, sw, dh, dw, pt, pl
        int ntaps
        const int16_t* w16
        const int32_t* w32
        const int64_t* q64
        int has_left
        const Py_ssize_t* off
        ec_requant rq
        ec_dw_split sp
        const int8_t* zrow
        int8_t* xexp
        const int8_t** taps
        int32_t* acc
        int max_threads
    int ec_dw_split_block(int isa)
    size_t ec_dw_taps_stride(int ntaps)
    size_t ec_dw_acc_stride(int cp)
    void ec_dw_geometry(ec_dw_plan* p, Py_ssize_t* off)
    void ec_dw_run(const ec_dw_plan* p, const int8_t* x, int8_t* out, int nthreads)

cdef int _num_threads = 1


def set_num_threads(int n):
    global _num_threads
    _num_threads = max(1, n)


def kernel_isa():
    """The path new bindings use: avx512vnni, avx2, neon-sdot, neon or generic."""
    return ec_isa_names[ec_current_isa()].decode()


def supported_isas():
    return [ec_isa_names[i].decode() for i in range(EC_ISA_COUNT) if ec_isa_supported(i)]


def force_isa(str name):
    """Pin the path of later bindings ("auto" unpins); ValueError if unknown or unsupported."""
    rc = ec_force_isa(name.encode())
    if rc == -1:
        raise ValueError(f"unknown kernel ISA {name!r}; expected auto or one of "
                         f"{[ec_isa_names[i].decode() for i in range(EC_ISA_COUNT)]}")
    if rc == -2:
        raise ValueError(f"kernel ISA {name!r} is not supported on this CPU; it runs "
                         f"{supported_isas()}")


def _padded(a, int n, int cp, dtype):
    r = np.zeros(cp, dtype)
    r[:n] = np.broadcast_to(np.asarray(a, dtype=dtype), (n,))
    return r


def _split(a, int block):
    """Channel order -> the split order of depthwise_s8.h (identity when block is 0)."""
    if block == 0:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a.reshape(-1, block // 2, 2).transpose(0, 2, 1)).reshape(-1)


def _split_weights(w16, int block):
    """[ntaps][cp] int16 -> x86 [ntaps][cp] int32: per block of 2V channels the V pairs
    (w[2i], 0), then the V pairs (0, w[2i+1]), as the int16 halves (low, high) of int32 lanes."""
    if block == 0:
        return np.zeros(1, np.int32)
    pairs = w16.astype(np.int32).reshape(w16.shape[0], -1, block // 2, 2)
    even = pairs[..., 0] & 0xFFFF
    odd = pairs[..., 1] * 65536
    return np.ascontiguousarray(np.stack([even, odd], axis=2)).reshape(-1)


def _double_q64(m0, shifts, int cp):
    """The constants of ec_dw_q64 per block of 32 channels: [block][kind][vector][8] int64,
    vector v holding channels c0 + 4i + (0, 2, 1, 3)[v]."""
    r = np.maximum(-shifts.astype(np.int64), 0)
    k = (1 << 30) + np.where(r >= 1, np.left_shift(np.int64(1), 30 + r), 0)
    kinds = np.stack([m0.astype(np.int64), k, k - (1 << 30), np.where(r >= 1, 1 << 31, 0),
                      31 + r])  # M0, K, threshold, adjustment, shift: (5, cp)
    by_block = kinds.reshape(5, cp // 32, 8, 4)[:, :, :, [0, 2, 1, 3]]  # channel c0 + 4i + j
    return np.ascontiguousarray(by_block.transpose(1, 0, 3, 2)).reshape(-1)


cdef class BoundDepthwise:
    """run(x, out): x int8 (H, W, C), out int8 (OH, OW, C*M), both C-contiguous."""
    cdef ec_dw_plan plan
    cdef object _arrays
    cdef object _last_x, _last_out
    cdef const int8_t* _xp
    cdef int8_t* _op
    cdef readonly str isa

    def __init__(self, const int8_t[:, :, ::1] w, bias, int stride_h, int stride_w,
                 int pad_top, int pad_left, int dilation_h, int dilation_w, int depth_multiplier,
                 int input_offset, multiplier, shift, real_scale, int policy, int output_offset,
                 int act_min, int act_max, in_shape, out_shape):
        cdef ec_dw_plan* p = &self.plan
        h, wd, c = (int(v) for v in in_shape)
        oh, ow, cm = (int(v) for v in out_shape)
        kh, kw = w.shape[0], w.shape[1]
        if min(h, wd, c, oh, ow, kh, kw, stride_h, stride_w, dilation_h, dilation_w,
               depth_multiplier) < 1 or min(pad_top, pad_left) < 0:
            raise ValueError(f"depthwise: bad geometry x {tuple(in_shape)} out "
                             f"{tuple(out_shape)} w {tuple(w.shape)}")
        if w.shape[2] != cm or cm != c * depth_multiplier:
            raise ValueError(f"depthwise: input channels {c} x depth multiplier "
                             f"{depth_multiplier} = {c * depth_multiplier}, but the filter has "
                             f"{w.shape[2]} and the output {cm} channels")
        if not -128 <= -input_offset <= 127:
            raise ValueError(f"depthwise: input zero point {-input_offset} outside int8")
        if policy < 0 or policy > 3:
            raise ValueError(f"depthwise: unknown rounding policy code {policy}")
        isa = ec_current_isa()
        self.isa = ec_isa_names[isa].decode()
        cp = (cm + EC_DW_CALIGN - 1) // EC_DW_CALIGN * EC_DW_CALIGN
        p.isa = isa
        p.h, p.w, p.c, p.m, p.cm, p.cp = h, wd, c, depth_multiplier, cm, cp
        p.oh, p.ow, p.kh, p.kw = oh, ow, kh, kw
        p.sh, p.sw, p.dh, p.dw, p.pt, p.pl = (stride_h, stride_w, dilation_h, dilation_w,
                                              pad_top, pad_left)
        off = np.zeros(kh * kw, np.intp)
        cdef Py_ssize_t[::1] offv = off
        ec_dw_geometry(p, &offv[0])
        taps = np.asarray(w, np.int64).reshape(kh * kw, cm)
        w16 = np.zeros((kh * kw, cp), np.int16)
        w16[:, :cm] = taps
        zp = -input_offset
        bias = np.zeros(cm, np.int64) if bias is None else np.asarray(bias, np.int64)
        if bias.shape != (cm,):
            raise ValueError(f"depthwise bias shape {bias.shape}, expected ({cm},)")
        folded = bias - zp * taps.sum(axis=0)  # bias' = bias - zp * sum_t w[t][c], mod 2^32
        folded = _padded((folded + 2 ** 31) % 2 ** 32 - 2 ** 31, cm, cp, np.int32)
        m0 = _padded(multiplier, cm, cp, np.int32)
        shifts = _padded(shift, cm, cp, np.int32)
        left = np.maximum(shifts, 0).astype(np.int32)
        right = np.maximum(-shifts, 0).astype(np.int32)
        rs = _padded(real_scale, cm, cp, np.float64)
        block = ec_dw_split_block(isa)
        split = [_split(a, block) for a in (folded, m0, left, right, rs.astype(np.float32))]
        w32 = _split_weights(w16, block)
        q64 = _double_q64(m0, shifts, cp)
        zrow = np.full(cp, zp, np.int8)
        xexp = np.zeros(h * wd * cm + 64 if depth_multiplier > 1 else 64, np.int8)
        p.max_threads = min(max(os.cpu_count() or 1, _num_threads), EC_POOL_MAX)
        tap_ptrs = np.zeros(p.max_threads * ec_dw_taps_stride(p.ntaps), np.uintp)
        acc = np.zeros(p.max_threads * ec_dw_acc_stride(cp), np.int32)
        cdef const int16_t[:, ::1] w16v = w16
        cdef const int32_t[::1] w32v = w32
        cdef const int64_t[::1] q64v = q64
        cdef const int32_t[::1] fb = folded, m0v = m0, shv = shifts, lv = left, rv = right
        cdef const double[::1] rsv = rs
        cdef const int32_t[::1] sb = split[0], sm = split[1], sl = split[2], sr = split[3]
        cdef const float[::1] ss = split[4]
        cdef const int8_t[::1] zv = zrow
        cdef int8_t[::1] xv = xexp
        cdef size_t[::1] tv = tap_ptrs
        cdef int32_t[::1] av = acc
        p.w16 = &w16v[0, 0]
        p.w32 = &w32v[0]
        p.q64 = &q64v[0]
        p.has_left = int((left > 0).any())
        p.off = &offv[0]
        p.rq.bias, p.rq.m0, p.rq.shift, p.rq.left, p.rq.right = (&fb[0], &m0v[0], &shv[0],
                                                                 &lv[0], &rv[0])
        p.rq.real_scale = &rsv[0]
        p.rq.policy, p.rq.out_off, p.rq.act_min, p.rq.act_max = (policy, output_offset, act_min,
                                                                 act_max)
        p.sp.bias, p.sp.m0, p.sp.left, p.sp.right, p.sp.scale = (&sb[0], &sm[0], &sl[0], &sr[0],
                                                                 &ss[0])
        p.zrow = &zv[0]
        p.xexp = &xv[0]
        p.taps = <const int8_t**>&tv[0]
        p.acc = &av[0]
        # owns everything the plan points at
        self._arrays = (off, w16, w32, q64, folded, m0, shifts, left, right, rs, split, zrow,
                        xexp, tap_ptrs, acc)

    def __call__(self, x, out):
        cdef const int8_t[:, :, ::1] xv
        cdef int8_t[:, :, ::1] ov
        if x is not self._last_x:
            xv = x
            if (xv.shape[0], xv.shape[1], xv.shape[2]) != (self.plan.h, self.plan.w, self.plan.c):
                raise ValueError(f"depthwise input shape {x.shape}, bound for "
                                 f"{(self.plan.h, self.plan.w, self.plan.c)}")
            self._xp = &xv[0, 0, 0]
            self._last_x = x
        if out is not self._last_out:
            ov = out
            if (ov.shape[0], ov.shape[1], ov.shape[2]) != (self.plan.oh, self.plan.ow,
                                                           self.plan.cm):
                raise ValueError(f"depthwise output shape {out.shape}, bound for "
                                 f"{(self.plan.oh, self.plan.ow, self.plan.cm)}")
            self._op = &ov[0, 0, 0]
            self._last_out = out
        with nogil:
            ec_dw_run(&self.plan, self._xp, self._op, _num_threads)


def depthwise_conv2d_s8(x, w, bias, int stride_h, int stride_w, int pad_top, int pad_left,
                        int dilation_h, int dilation_w, int depth_multiplier, int input_offset,
                        multiplier, shift, real_scale, int policy, int output_offset,
                        int act_min, int act_max, out):
    """One call: bind (widen the weights, fold the bias) and run. Hot paths bind once."""
    BoundDepthwise(w, bias, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                   depth_multiplier, input_offset, multiplier, shift, real_scale, policy,
                   output_offset, act_min, act_max, x.shape, out.shape)(x, out)
