# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 FULLY_CONNECTED, twin of edgecnn/reference/fully_connected.py (LiteRT
# reference_integer_ops::FullyConnected). x int8 (N,), w int8 (O, N) in [-127, 127] row-major,
# bias int32 (O,), out int8 (O,). int32 accumulation: |(x + input_offset) * w| < 2^15, safe for
# N up to 2^16 with a bias below 2^30. Each weight row is streamed once (batch 1).
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int32_t

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
