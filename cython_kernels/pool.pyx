# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 MAX_POOL_2D / AVERAGE_POOL_2D, twins of edgecnn/reference/pool.py (LiteRT
# reference_integer_ops pooling). x int8 (H, W, C), out int8 (OH, OW, C), C-contiguous; only
# in-image taps count. Average: int32 sum (|sum| <= 128 * taps) divided by the number of valid
# taps, ties away from zero. Both clamp to [act_min, act_max].
from libc.stdint cimport int8_t, int32_t
from libc.string cimport memcpy, memset


def max_pool_s8(const int8_t[:, :, ::1] x, int filter_h, int filter_w, int stride_h,
                int stride_w, int pad_top, int pad_left, int act_min, int act_max,
                int8_t[:, :, ::1] out):
    cdef Py_ssize_t h = x.shape[0], wd = x.shape[1], ch = x.shape[2]
    cdef Py_ssize_t oh = out.shape[0], ow = out.shape[1]
    cdef Py_ssize_t oy, ox, iy, ix, y0, y1, x0, x1
    cdef int8_t* op
    cdef const int8_t* x0p = &x[0, 0, 0]
    cdef int8_t* o0p = &out[0, 0, 0]
    cdef int8_t lo = <int8_t>max(act_min, -128), hi = <int8_t>min(act_max, 127)
    cdef bint clamp = lo > -128 or hi < 127
    with nogil:
        for oy in range(oh):
            y0 = max(oy * stride_h - pad_top, 0)
            y1 = min(oy * stride_h - pad_top + filter_h, h)
            for ox in range(ow):
                x0 = max(ox * stride_w - pad_left, 0)
                x1 = min(ox * stride_w - pad_left + filter_w, wd)
                op = o0p + (oy * ow + ox) * ch
                if y0 >= y1 or x0 >= x1:
                    memset(op, -128, ch)  # the max of no taps, as the reference
                else:
                    memcpy(op, x0p + (y0 * wd + x0) * ch, ch)
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            if iy != y0 or ix != x0:
                                _max_into(op, x0p + (iy * wd + ix) * ch, ch)
                if clamp:
                    _clamp(op, ch, lo, hi)


cdef inline void _max_into(int8_t* op, const int8_t* ip, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(n):  # a branch-free select: vectorizes
        op[c] = ip[c] if ip[c] > op[c] else op[c]


cdef inline void _clamp(int8_t* op, Py_ssize_t n, int8_t lo, int8_t hi) noexcept nogil:
    cdef Py_ssize_t c
    cdef int8_t v
    for c in range(n):
        v = op[c] if op[c] > lo else lo
        op[c] = v if v < hi else hi


def avg_pool_s8(const int8_t[:, :, ::1] x, int filter_h, int filter_w, int stride_h,
                int stride_w, int pad_top, int pad_left, int act_min, int act_max,
                int8_t[:, :, ::1] out):
    cdef Py_ssize_t h = x.shape[0], wd = x.shape[1], ch = x.shape[2]
    cdef Py_ssize_t oh = out.shape[0], ow = out.shape[1]
    cdef Py_ssize_t oy, ox, c, iy, ix, y0, y1, x0, x1
    cdef int32_t total, count, avg
    with nogil:
        for oy in range(oh):
            y0 = max(oy * stride_h - pad_top, 0)
            y1 = min(oy * stride_h - pad_top + filter_h, h)
            for ox in range(ow):
                x0 = max(ox * stride_w - pad_left, 0)
                x1 = min(ox * stride_w - pad_left + filter_w, wd)
                count = <int32_t>((y1 - y0) * (x1 - x0))
                for c in range(ch):
                    total = 0
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            total = total + x[iy, ix, c]
                    # C division truncates: +-count/2 first gives ties away from zero
                    if total > 0:
                        avg = (total + count // 2) // count
                    else:
                        avg = (total - count // 2) // count
                    out[oy, ox, c] = <int8_t>min(max(avg, act_min), act_max)
