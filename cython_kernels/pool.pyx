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


# ---------------------------------------------------------------- bound at prepare time
# Row-wise pooling for any channel count: the window's input rows are combined over whole
# padded rows (Wp * C contiguous elements, vectorizes even for C = 6), then the window's
# columns by shifted passes over that row (element i with i + kx * C), then every stride-th
# pixel is kept. Padded columns hold -128 for max (the identity of max, and the reference's
# max of no taps) and 0 with a tap count per output pixel for average. Scratch is owned by
# the bound object; a call allocates nothing.

import numpy as np
from libc.stdint cimport int16_t


cdef class _BoundPool:
    cdef int h, w, c, oh, ow, kh, kw, sh, sw, pt, pl, wp, lo, hi
    cdef int c0, c1  # padded columns [c0, c1) hold image columns
    cdef object _scratch
    cdef object _last_x, _last_out
    cdef const int8_t* _xp
    cdef int8_t* _op

    def __init__(self, int filter_h, int filter_w, int stride_h, int stride_w, int pad_top,
                 int pad_left, int act_min, int act_max, in_shape, out_shape):
        self.h, self.w, self.c = in_shape
        self.oh, self.ow, c_out = out_shape
        if c_out != self.c:
            raise ValueError(f"pool output channels {c_out}, input {self.c}")
        self.kh, self.kw, self.sh, self.sw = filter_h, filter_w, stride_h, stride_w
        self.pt, self.pl = pad_top, pad_left
        self.lo, self.hi = max(act_min, -128), min(act_max, 127)
        self.wp = (self.ow - 1) * stride_w + filter_w
        self.c0 = min(max(pad_left, 0), self.wp)
        self.c1 = min(max(pad_left + self.w, self.c0), self.wp)

    cdef int _bind(self, x, out) except -1:
        cdef const int8_t[:, :, ::1] xv
        cdef int8_t[:, :, ::1] ov
        if x is not self._last_x:
            xv = x
            if (xv.shape[0], xv.shape[1], xv.shape[2]) != (self.h, self.w, self.c):
                raise ValueError(f"pool input shape {x.shape}, bound for "
                                 f"{(self.h, self.w, self.c)}")
            self._xp = &xv[0, 0, 0]
            self._last_x = x
        if out is not self._last_out:
            ov = out
            if (ov.shape[0], ov.shape[1], ov.shape[2]) != (self.oh, self.ow, self.c):
                raise ValueError(f"pool output shape {out.shape}, bound for "
                                 f"{(self.oh, self.ow, self.c)}")
            self._op = &ov[0, 0, 0]
            self._last_out = out
        return 0


cdef class BoundMaxPool(_BoundPool):
    """run(x, out): x int8 (H, W, C), out int8 (OH, OW, C), C-contiguous."""
    cdef int8_t* _row

    def __init__(self, *args):
        super().__init__(*args)
        self._scratch = np.full(2 * self.wp * self.c + 64, -128, np.int8)
        cdef int8_t[::1] sv = self._scratch
        self._row = &sv[0]

    def __call__(self, x, out):
        self._bind(x, out)
        with nogil:
            self._run()

    cdef void _run(self) noexcept nogil:
        cdef Py_ssize_t c = self.c, w = self.w, rowlen = self.wp * c
        cdef Py_ssize_t n_img = (self.c1 - self.c0) * c
        cdef int8_t* r = self._row + self.c0 * c  # image columns of the padded row
        cdef int8_t* t  # the row after the column pass
        cdef Py_ssize_t ncol = (self.wp - self.kw + 1) * c
        cdef Py_ssize_t oy, iy, y0, y1, kx, ox, i
        cdef int8_t* op
        cdef int8_t lo = <int8_t>self.lo, hi = <int8_t>self.hi
        cdef bint clamp = self.lo > -128 or self.hi < 127
        cdef const int8_t* xs = self._xp + (self.c0 - self.pl) * c
        for oy in range(self.oh):
            y0 = max(oy * self.sh - self.pt, 0)
            y1 = min(oy * self.sh - self.pt + self.kh, self.h)
            if y0 >= y1:
                memset(r, -128, n_img)
            else:
                memcpy(r, xs + y0 * w * c, n_img)
                for iy in range(y0 + 1, y1):
                    _max_into(r, xs + iy * w * c, n_img)
            op = self._op + oy * self.ow * c
            if self.sw > 1:  # strided: the window max at each output column only
                for ox in range(self.ow):
                    t = self._row + ox * self.sw * c
                    memcpy(op + ox * c, t, c)
                    for kx in range(1, self.kw):
                        _max_into(op + ox * c, t + kx * c, c)
            elif self.kw == 1:
                memcpy(op, self._row, self.ow * c)
            else:  # stride 1: each column max is shared by KW outputs
                t = self._row + rowlen
                _max2(t, self._row, self._row + c, ncol)
                for kx in range(2, self.kw):
                    _max_into(t, self._row + kx * c, ncol)
                memcpy(op, t, self.ow * c)
            if clamp:
                _clamp(op, self.ow * c, lo, hi)


cdef inline void _max2(int8_t* op, const int8_t* a, const int8_t* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        op[i] = a[i] if a[i] > b[i] else b[i]


cdef class BoundAvgPool(_BoundPool):
    """run(x, out): x int8 (H, W, C), out int8 (OH, OW, C), C-contiguous. Row sums in int32
    (|sum| <= 128 * KH * KW), divided by the valid tap count of each output pixel."""
    cdef int32_t* _row

    def __init__(self, *args):
        super().__init__(*args)
        self._scratch = np.zeros(2 * self.wp * self.c + 16, np.int32)
        cdef int32_t[::1] sv = self._scratch
        self._row = &sv[0]

    def __call__(self, x, out):
        self._bind(x, out)
        with nogil:
            self._run()

    cdef void _run(self) noexcept nogil:
        cdef Py_ssize_t c = self.c, w = self.w, rowlen = self.wp * c
        cdef Py_ssize_t n_img = (self.c1 - self.c0) * c
        cdef int32_t* r = self._row + self.c0 * c
        cdef Py_ssize_t oy, iy, y0, y1, kx, ox, i, x0, x1, j
        cdef const int8_t* xr
        cdef int8_t* op
        cdef int32_t total, count, avg
        cdef const int8_t* xs = self._xp + (self.c0 - self.pl) * c
        for oy in range(self.oh):
            y0 = max(oy * self.sh - self.pt, 0)
            y1 = min(oy * self.sh - self.pt + self.kh, self.h)
            op = self._op + oy * self.ow * c
            if y0 >= y1:
                for i in range(self.ow * c):  # no taps: the reference's 0 / 0 -> clamp(0)
                    op[i] = <int8_t>min(max(0, self.lo), self.hi)
                continue
            for i in range(n_img):
                r[i] = 0
            for iy in range(y0, y1):
                xr = xs + iy * w * c
                for i in range(n_img):
                    r[i] += xr[i]
            for ox in range(self.ow):
                x0 = max(ox * self.sw - self.pl, 0)
                x1 = min(ox * self.sw - self.pl + self.kw, self.w)
                count = <int32_t>((y1 - y0) * (x1 - x0))
                j = ox * self.sw * c
                for i in range(c):
                    total = 0
                    for kx in range(self.kw):
                        total = total + self._row[j + kx * c + i]
                    if count == 0:
                        avg = 0
                    elif total > 0:
                        avg = (total + count // 2) // count
                    else:
                        avg = (total - count // 2) // count
                    op[ox * c + i] = <int8_t>min(max(avg, self.lo), self.hi)
