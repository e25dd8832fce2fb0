# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 CONV_2D, twin of edgecnn/reference/conv.py (LiteRT reference_integer_ops::ConvPerChannel).
# x int8 (H, W, Cin), w int8 (Cout, KH, KW, Cin) in [-127, 127], bias int32 (Cout,), out int8
# (OH, OW, Cout), all C-contiguous. Out-of-image taps are skipped (padding = input zero point).
# Accumulation in int32: |x + input_offset| <= 255 and |w| <= 127 give |product| < 2^15, so
# up to 2^16 taps (KH * KW * Cin) plus a bias below 2^30 cannot overflow.
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int32_t, uint8_t

from fixedpoint cimport ec_requantize


def conv2d_s8(const int8_t[:, :, ::1] x, const int8_t[:, :, :, ::1] w,
              const int32_t[::1] bias, int stride_h, int stride_w, int pad_top, int pad_left,
              int dilation_h, int dilation_w, int input_offset,
              const int32_t[::1] multiplier, const int32_t[::1] shift,
              const double[::1] real_scale, int policy, int output_offset, int act_min,
              int act_max, int8_t[:, :, ::1] out, int num_threads=1):
    cdef Py_ssize_t h = x.shape[0], wd = x.shape[1], cin = x.shape[2]
    cdef Py_ssize_t cout = w.shape[0], kh = w.shape[1], kw = w.shape[2]
    cdef Py_ssize_t oh = out.shape[0], ow = out.shape[1]
    cdef Py_ssize_t oy, ox, co, ky, kx, ci, iy, ix
    cdef int32_t acc
    cdef const int8_t* xp
    cdef const int8_t* wp
    with nogil:
        for oy in prange(oh, schedule="static", num_threads=num_threads):
            for ox in range(ow):
                for co in range(cout):
                    acc = bias[co]
                    for ky in range(kh):
                        iy = oy * stride_h - pad_top + ky * dilation_h
                        if iy < 0 or iy >= h:
                            continue
                        for kx in range(kw):
                            ix = ox * stride_w - pad_left + kx * dilation_w
                            if ix < 0 or ix >= wd:
                                continue
                            xp = &x[iy, ix, 0]
                            wp = &w[co, ky, kx, 0]
                            for ci in range(cin):  # contiguous in x and w: vectorizes
                                acc = acc + (<int32_t>xp[ci] + input_offset) * <int32_t>wp[ci]
                    out[oy, ox, co] = ec_requantize(acc, policy, multiplier[co], shift[co],
                                                    real_scale[co], output_offset, act_min,
                                                    act_max)


# ---------------------------------------------------------------- packed, bound at prepare time
# BoundConv packs the weights once for the run-time ISA path (gemm_s8.h), folds the input zero
# point into the bias, owns its per-thread im2col scratch and then runs with no allocation.

import os

import numpy as np
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int64_t

from gemm_s8 cimport (EC_ISA_COUNT, EC_ISA_AVX512AMX, EC_POOL_MAX, ec_amx_a_bytes,
                      ec_amx_bind, ec_amx_missing, ec_amx_rq_bytes, ec_conv_geometry,
                      ec_conv_isa_for, ec_conv_padded_bytes, ec_conv_plan, ec_conv_run,
                      ec_conv_run_batch,
                      ec_conv_scratch_bytes, ec_current_isa, ec_force_isa, ec_isa_names,
                      ec_isa_supported, ec_layout, ec_layout_for, ec_pack_b, ec_packed_b_bytes,
                      ec_pool_run_local)

POOL_CAPSULE = b"edgecnn._kernels.pool_run"  # what other kernel modules adopt (threadpool.h)

cdef int _num_threads = 1


def set_num_threads(int n):
    global _num_threads
    _num_threads = max(1, n)


def pool_capsule():
    """This module's worker pool (ec_pool_run_local), for ec_pool_adopt in the other kernel
    modules: one pool per process."""
    return PyCapsule_New(<void*>ec_pool_run_local, POOL_CAPSULE, NULL)


def kernel_isa():
    """The path new bindings use: avx512amx, avx512vnni, avx2, neon-sdot, neon or generic."""
    return ec_isa_names[ec_current_isa()].decode()


def supported_isas():
    return [ec_isa_names[i].decode() for i in range(EC_ISA_COUNT) if ec_isa_supported(i)]


def amx_missing():
    """Why the avx512amx path is not offered here ("" when it is): CPU, OS or permission."""
    return ec_amx_missing().decode()


def force_isa(str name):
    """Pin the path of later bindings ("auto" unpins); ValueError if unknown or unsupported."""
    rc = ec_force_isa(name.encode())
    if rc == -1:
        raise ValueError(f"unknown kernel ISA {name!r}; expected auto or one of "
                         f"{[ec_isa_names[i].decode() for i in range(EC_ISA_COUNT)]}")
    if rc == -2:
        raise ValueError(f"kernel ISA {name!r} is not supported on this CPU; it runs "
                         f"{supported_isas()}")


def requant_arrays(bias, sums, int pad_a, multiplier, shift, real_scale, int cout, int padded):
    """Folded bias' = bias - pad_a * sum(w) (int32, wrapping like the kernels) and the
    per-channel requantization parameters broadcast to cout and zero-padded to ``padded``."""
    def pad(a, dtype):
        r = np.zeros(padded, dtype)
        r[:cout] = np.broadcast_to(np.asarray(a, dtype=dtype), (cout,))
        return r
    folded = (np.asarray(bias, np.int64) - pad_a * np.asarray(sums, np.int64))
    b = pad((folded + 2 ** 31) % 2 ** 32 - 2 ** 31, np.int32)
    s = pad(shift, np.int32)
    return (b, pad(multiplier, np.int32), s, np.maximum(s, 0).astype(np.int32),
            np.maximum(-s, 0).astype(np.int32), pad(real_scale, np.float64))


def _aligned64(size_t n):
    """n zero bytes starting on a 64-byte boundary (a view of a slightly larger array): packed
    panels are read a cache line per tile row."""
    raw = np.zeros(n + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start:start + n]


cdef class BoundConv:
    """run(x, out): x int8 (H, W, Cin), out int8 (OH, OW, Cout), both C-contiguous."""
    cdef ec_conv_plan plan
    cdef object _arrays
    cdef object _last_x, _last_out
    cdef const int8_t* _xp
    cdef int8_t* _op
    cdef readonly str isa

    def __init__(self, const int8_t[:, :, :, ::1] w, bias, int stride_h, int stride_w,
                 int pad_top, int pad_left, int dilation_h, int dilation_w, int input_offset,
                 multiplier, shift, real_scale, int policy, int output_offset, int act_min,
                 int act_max, in_shape, out_shape):
        cdef int cout = w.shape[0]
        cdef int isa = ec_conv_isa_for(ec_current_isa(), cout)
        cdef ec_conv_plan* p = &self.plan
        cdef const ec_layout* L = &p.L
        self.isa = ec_isa_names[isa].decode()
        p.isa = isa
        p.L = ec_layout_for(isa, cout)
        p.h, p.w, p.cin = in_shape
        p.oh, p.ow, p.cout = out_shape
        p.kh, p.kw = w.shape[1], w.shape[2]
        p.sh, p.sw, p.dh, p.dw, p.pt, p.pl = (stride_h, stride_w, dilation_h, dilation_w,
                                              pad_top, pad_left)
        ec_conv_geometry(p)
        packed = _aligned64(ec_packed_b_bytes(p))
        sums = np.zeros(cout, np.int64)
        cdef uint8_t[::1] pv = packed
        cdef int64_t[::1] sv = sums
        ec_pack_b(p, &w[0, 0, 0, 0], &pv[0], &sv[0])
        p.pad_a = -input_offset + (128 if L.u8 else 0)
        p.max_threads = min(max(os.cpu_count() or 1, _num_threads), EC_POOL_MAX)
        padded = np.zeros(ec_conv_padded_bytes(p), np.uint8)
        cdef uint8_t[::1] pdv = padded
        p.padded = &pdv[0]
        scratch = np.zeros(ec_conv_scratch_bytes(p), np.uint8)
        cdef uint8_t[::1] scv = scratch
        p.scratch = &scv[0] if scratch.size else NULL
        arrays = requant_arrays(bias, sums, p.pad_a, multiplier, shift, real_scale, cout,
                                p.npanels * L.nr)
        cdef const int32_t[::1] bb = arrays[0], m0 = arrays[1], sh = arrays[2]
        cdef const int32_t[::1] lf = arrays[3], rt = arrays[4]
        cdef const double[::1] rs = arrays[5]
        p.b = &pv[0]
        p.rq.bias, p.rq.m0, p.rq.shift, p.rq.left, p.rq.right = &bb[0], &m0[0], &sh[0], &lf[0], &rt[0]
        p.rq.real_scale = &rs[0]
        p.rq.policy, p.rq.out_off, p.rq.act_min, p.rq.act_max = (policy, output_offset, act_min,
                                                                 act_max)
        amx_rq = np.zeros(ec_amx_rq_bytes(p) if isa == EC_ISA_AVX512AMX else 0, np.uint8)
        amx_a = np.zeros(ec_amx_a_bytes(p) if isa == EC_ISA_AVX512AMX else 0, np.uint8)
        cdef uint8_t[::1] arv = amx_rq
        cdef uint8_t[::1] aav = amx_a
        if amx_rq.size:
            ec_amx_bind(p, &arv[0])
        p.amx_a = &aav[0] if amx_a.size else NULL
        self._arrays = (packed, padded, scratch, arrays, amx_rq, amx_a)  # owned by the plan

    def __call__(self, x, out):
        cdef const int8_t[:, :, ::1] xv
        cdef int8_t[:, :, ::1] ov
        if x is not self._last_x:
            xv = x
            if (xv.shape[0], xv.shape[1], xv.shape[2]) != (self.plan.h, self.plan.w, self.plan.cin):
                raise ValueError(f"conv input shape {x.shape}, bound for "
                                 f"{(self.plan.h, self.plan.w, self.plan.cin)}")
            self._xp = &xv[0, 0, 0]
            self._last_x = x
        if out is not self._last_out:
            ov = out
            if (ov.shape[0], ov.shape[1], ov.shape[2]) != (self.plan.oh, self.plan.ow,
                                                           self.plan.cout):
                raise ValueError(f"conv output shape {out.shape}, bound for "
                                 f"{(self.plan.oh, self.plan.ow, self.plan.cout)}")
            self._op = &ov[0, 0, 0]
            self._last_out = out
        with nogil:
            ec_conv_run(&self.plan, self._xp, self._op, _num_threads)

    def run_batch(self, x, out):
        """x int8 (N, H, W, Cin) -> out int8 (N, OH, OW, Cout), N images in one call."""
        cdef const int8_t[:, :, :, ::1] xv = x
        cdef int8_t[:, :, :, ::1] ov = out
        cdef ec_conv_plan* p = &self.plan
        if ((xv.shape[1], xv.shape[2], xv.shape[3]) != (p.h, p.w, p.cin)
                or (ov.shape[0], ov.shape[1], ov.shape[2], ov.shape[3])
                != (xv.shape[0], p.oh, p.ow, p.cout)):
            raise ValueError(f"conv batch shapes {x.shape} -> {out.shape}, bound for "
                             f"{(p.h, p.w, p.cin)} -> {(p.oh, p.ow, p.cout)}")
        cdef int nb = xv.shape[0]
        if nb == 0:
            return
        with nogil:
            ec_conv_run_batch(p, &xv[0, 0, 0, 0], nb, &ov[0, 0, 0, 0], _num_threads)
