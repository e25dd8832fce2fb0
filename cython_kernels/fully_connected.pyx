# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 FULLY_CONNECTED, twin of edgecnn/reference/fully_connected.py (LiteRT
# reference_integer_ops::FullyConnected). x int8 (N,), w int8 (O, N) in [-127, 127] row-major,
# bias int32 (O,), out int8 (O,). int32 accumulation: |(x + input_offset) * w| < 2^15, safe for
# N up to 2^16 with a bias below 2^30. Each weight row is streamed once (batch 1).
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int32_t, uint8_t

from fixedpoint cimport ec_requantize


def fully_connected_s8(const int8_t[::1] x, const int8_t[:, ::1] w, const int32_t[::1] bias,
                       int input_offset, const int32_t[::1] multiplier,
                       const int32_t[::1] shift, const double[::1] real_scale, int policy,
                       int output_offset, int act_min, int act_max, int8_t[::1] out,
                       int num_threads=1):
    cdef Py_ssize_t n = x.shape[0], o = w.shape[0], oc, i
    cdef Py_ssize_t per_channel = multiplier.shape[0] > 1
    cdef Py_ssize_t c
    cdef int32_t acc
    cdef const int8_t* wp
    with nogil:
        for oc in prange(o, schedule="static", num_threads=num_threads):
            acc = bias[oc]
            wp = &w[oc, 0]
            for i in range(n):
                acc = acc + (<int32_t>x[i] + input_offset) * <int32_t>wp[i]
            c = oc if per_channel else 0
            out[oc] = ec_requantize(acc, policy, multiplier[c], shift[c], real_scale[c],
                                    output_offset, act_min, act_max)


# ---------------------------------------------------------------- bound at prepare time
# BoundFC streams each int8 weight once per call from the model's own row-major array (no
# copy; rows split over threads, fc_s8.h), folds the input zero point into the bias (bias' =
# bias - zpA * rowsum(w), zpA = zp + 128 on the VNNI path whose input is x ^ 0x80) and owns
# the converted-input scratch.

import numpy as np
from cpython.pycapsule cimport PyCapsule_GetPointer

from gemm_s8 cimport (ec_current_isa, ec_fc_batch_scratch_bytes, ec_fc_pad_a, ec_fc_plan,
                      ec_fc_run, ec_fc_run_batch, ec_force_isa, ec_isa_names, ec_pool_adopt,
                      ec_pool_run_fn)

from edgecnn._kernels import conv as _conv

ec_pool_adopt(<ec_pool_run_fn>PyCapsule_GetPointer(_conv.pool_capsule(), _conv.POOL_CAPSULE))

cdef int _num_threads = 1


def set_num_threads(int n):
    global _num_threads
    _num_threads = max(1, n)


def force_isa(str name):
    """Pin the path of later bindings (names as conv.force_isa, which validates them)."""
    if ec_force_isa(name.encode()) != 0:
        raise ValueError(f"kernel ISA {name!r} is unknown or unsupported here")


def kernel_isa():
    return ec_isa_names[ec_current_isa()].decode()


cdef class BoundFC:
    """run(x, out): x int8 (N,), out int8 (O,)."""
    cdef ec_fc_plan plan
    cdef object _arrays, _batch_scratch
    cdef object _last_x, _last_out
    cdef const int8_t* _xp
    cdef int8_t* _op
    cdef readonly str isa

    def __init__(self, w_arr, arrays_of, int input_offset, multiplier, shift,
                 real_scale, int policy, int output_offset, int act_min, int act_max, bias):
        """``arrays_of(bias, rowsums, pad_a, multiplier, shift, real_scale, o, o)`` gives the
        folded bias and the broadcast requantization arrays (conv.requant_arrays)."""
        cdef const int8_t[:, ::1] w = w_arr
        cdef ec_fc_plan* p = &self.plan
        cdef int isa = ec_current_isa()
        p.isa = isa
        p.o, p.n = w.shape[0], w.shape[1]
        self.isa = ec_isa_names[isa].decode()
        sums = np.asarray(w_arr).sum(axis=1, dtype=np.int64)
        arrays = arrays_of(bias, sums, ec_fc_pad_a(isa, -input_offset), multiplier, shift,
                           real_scale, p.o, p.o)
        xs = np.zeros(p.n + 64, np.uint8)
        cdef uint8_t[::1] xsv = xs
        cdef const int32_t[::1] bb = arrays[0], m0 = arrays[1], sh = arrays[2]
        cdef const int32_t[::1] lf = arrays[3], rt = arrays[4]
        cdef const double[::1] rs = arrays[5]
        p.w = &w[0, 0]
        p.xs = &xsv[0]
        p.rq.bias, p.rq.m0, p.rq.shift, p.rq.left, p.rq.right = &bb[0], &m0[0], &sh[0], &lf[0], &rt[0]
        p.rq.real_scale = &rs[0]
        p.rq.policy, p.rq.out_off, p.rq.act_min, p.rq.act_max = (policy, output_offset, act_min,
                                                                 act_max)
        self._arrays = (w_arr, xs, arrays)  # owns what the plan points at

    def __call__(self, x, out):
        cdef const int8_t[::1] xv
        cdef int8_t[::1] ov
        if x is not self._last_x:
            xv = x
            if xv.shape[0] != self.plan.n:
                raise ValueError(f"fully connected input length {xv.shape[0]}, bound for "
                                 f"{self.plan.n}")
            self._xp = &xv[0]
            self._last_x = x
        if out is not self._last_out:
            ov = out
            if ov.shape[0] != self.plan.o:
                raise ValueError(f"fully connected output length {ov.shape[0]}, bound for "
                                 f"{self.plan.o}")
            self._op = &ov[0]
            self._last_out = out
        with nogil:
            ec_fc_run(&self.plan, self._xp, self._op, _num_threads)

    def run_batch(self, x, out):
        """x int8 (N, n) -> out int8 (N, o), N images in one call: each weight byte is read
        once per 16 images (fc_s8.h). The scratch is kept for the next batch of that size."""
        cdef const int8_t[:, ::1] xv = x
        cdef int8_t[:, ::1] ov = out
        cdef int nb = xv.shape[0]
        if xv.shape[1] != self.plan.n or ov.shape[1] != self.plan.o or ov.shape[0] != nb:
            raise ValueError(f"fully connected batch shapes {x.shape} -> {out.shape}, bound "
                             f"for {self.plan.n} -> {self.plan.o}")
        if nb == 0:
            return
        size = ec_fc_batch_scratch_bytes(self.plan.n, nb)
        if self._batch_scratch is None or self._batch_scratch.size < size:
            self._batch_scratch = np.zeros(size, np.uint8)
        cdef uint8_t[::1] sv = self._batch_scratch
        with nogil:
            ec_fc_run_batch(&self.plan, &xv[0, 0], nb, &ov[0, 0], &sv[0], _num_threads)
