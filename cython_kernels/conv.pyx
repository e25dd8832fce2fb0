# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 CONV_2D, twin of edgecnn/reference/conv.py (LiteRT reference_integer_ops::ConvPerChannel).
# x int8 (H, W, Cin), w int8 (Cout, KH, KW, Cin) in [-127, 127], bias int32 (Cout,), out int8
# (OH, OW, Cout), all C-contiguous. Out-of-image taps are skipped (padding = input zero point).
# Accumulation in int32: |x + input_offset| <= 255 and |w| <= 127 give |product| < 2^15, so
# up to 2^16 taps (KH * KW * Cin) plus a bias below 2^30 cannot overflow.
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int32_t

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
