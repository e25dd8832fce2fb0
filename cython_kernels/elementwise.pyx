# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# Element-wise int8 kernels, twins of edgecnn/reference/quantize.py and softmax.py: requantize
# (int32 (M, C) -> int8, per channel on the last axis), pad, quantize/dequantize, ReLU/ReLU6,
# 256-entry table lookups (tanh/logistic tables built with the C library's tanhf/expf in
# float32, as LiteRT's LUTPopulate), the gemmlowp fixed-point int8 softmax (output scale
# 1/256, zero point -128) and LiteRT's optimized float32 one (--rounding fp32). Arrays are flat
# C-contiguous views; wrappers reshape without copying.
from libc.math cimport expf, roundf, tanhf
from libc.stdint cimport int8_t, int32_t, uint32_t
from libc.string cimport memcpy, memset

from fixedpoint cimport (EC_ROUND_DOUBLE, EC_ROUND_F64, EC_ROUND_FP32, EC_ROUND_SINGLE,
                         ec_exp_on_negative_values_q5, ec_get_reciprocal, ec_mbqm_double,
                         ec_rdbp, ec_rdbp_wide, ec_requantize, ec_srdhm)


def requantize(const int32_t[:, ::1] acc, const int32_t[::1] multiplier,
               const int32_t[::1] shift, const double[::1] real_scale, int policy,
               int output_offset, int act_min, int act_max, int8_t[:, ::1] out):
    cdef Py_ssize_t m = acc.shape[0], ch = acc.shape[1], i, c, k
    cdef Py_ssize_t per_channel = multiplier.shape[0] > 1
    with nogil:
        for i in range(m):
            for c in range(ch):
                k = c if per_channel else 0
                out[i, c] = ec_requantize(acc[i, c], policy, multiplier[k], shift[k],
                                          real_scale[k], output_offset, act_min, act_max)


def pad_s8(const int8_t[:, :, ::1] x, int pad_top, int pad_left, int pad_value,
           int8_t[:, :, ::1] out):
    cdef Py_ssize_t h = x.shape[0], w = x.shape[1], ch = x.shape[2]
    cdef Py_ssize_t oh = out.shape[0], ow = out.shape[1], y
    cdef Py_ssize_t row = ow * ch, left = pad_left * ch, inner = w * ch
    cdef int8_t* op = &out[0, 0, 0]
    cdef const int8_t* xp = &x[0, 0, 0]
    with nogil:
        for y in range(oh):
            if pad_top <= y < pad_top + h:  # border, one copied image row, border
                memset(op + y * row, pad_value, left)
                memcpy(op + y * row + left, xp + (y - pad_top) * inner, inner)
                memset(op + y * row + left + inner, pad_value, row - left - inner)
            else:
                memset(op + y * row, pad_value, row)


def quantize_s8(const float[::1] x, float scale, int zero_point, int8_t[::1] out):
    """round_half_away(x / scale) in float32 (roundf), + zero point, clamped."""
    cdef Py_ssize_t i
    cdef float q
    cdef int32_t v
    with nogil:
        for i in range(x.shape[0]):
            q = roundf(x[i] / scale)
            q = min(max(q, -1e9), 1e9)  # keep the int conversion defined; clamps below anyway
            v = <int32_t>q + zero_point
            out[i] = <int8_t>min(max(v, -128), 127)


def dequantize_s8(const int8_t[::1] x, double scale, int zero_point, float[::1] out):
    """float32(double(scale) * (q - zp))."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = <float>(scale * <double>(<int32_t>x[i] - zero_point))


def relu_s8(const int8_t[::1] x, int input_offset, int output_offset, int multiplier,
            int shift, int act_min, int act_max, int8_t[::1] out):
    """clamp(output_offset + MBQM(x - input_offset, M0, shift)) (policy double)."""
    cdef Py_ssize_t i
    cdef int32_t v
    with nogil:
        for i in range(x.shape[0]):
            v = output_offset + ec_mbqm_double(<int32_t>x[i] - input_offset, multiplier, shift)
            out[i] = <int8_t>min(max(v, act_min), act_max)


def activation_lut(int kind, float s_in, int zp_in, float s_out, int zp_out, int8_t[::1] out):
    """LiteRT LUTPopulate<int8_t>, float32 throughout; kind 0 = tanh, 1 = logistic."""
    cdef int q
    cdef float v, t, r
    cdef float inv_out = 1.0 / s_out
    cdef int32_t y
    for q in range(-128, 128):
        v = s_in * <float>(q - zp_in)
        if kind == 0:
            t = tanhf(v)
        else:
            t = <float>1.0 / (<float>1.0 + expf(-v))
        r = roundf(t * inv_out)
        y = <int32_t>(r + <float>zp_out)
        out[q + 128] = <int8_t>min(max(y, -128), 127)


def lut_s8(const int8_t[::1] x, const int8_t[::1] lut, int8_t[::1] out):
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = lut[<int32_t>x[i] + 128]


cdef inline int32_t _scaled_exp(int32_t diff, int32_t multiplier, int left_shift) noexcept nogil:
    # Q5.26 difference (diff >= diff_min keeps diff << left_shift inside int32; the shift is
    # unsigned because left_shift reaches 31 with diff_min 0), exp in Q0.31
    return ec_exp_on_negative_values_q5(
        ec_srdhm(<int32_t>(<uint32_t>diff << left_shift), multiplier))


def softmax_s8(const int8_t[::1] x, int input_multiplier, int input_left_shift, int diff_min,
               int8_t[::1] out):
    """gemmlowp softmax: sum of exps in Q12.19 (|sum| <= N * 2^19, fine for N < 4096)."""
    cdef Py_ssize_t n = x.shape[0], i
    cdef int32_t max_in_row = -128, diff, sum_of_exps = 0, recip, y
    cdef int num_bits_over_unit
    with nogil:
        for i in range(n):
            max_in_row = max(max_in_row, <int32_t>x[i])
        for i in range(n):
            diff = <int32_t>x[i] - max_in_row
            if diff >= diff_min:
                sum_of_exps = sum_of_exps + ec_rdbp(
                    _scaled_exp(diff, input_multiplier, input_left_shift), 12)
        recip = ec_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit)
        for i in range(n):
            diff = <int32_t>x[i] - max_in_row
            if diff >= diff_min:
                y = ec_rdbp_wide(ec_srdhm(recip, _scaled_exp(diff, input_multiplier,
                                                             input_left_shift)),
                                 num_bits_over_unit + 31 - 8) - 128
                out[i] = <int8_t>min(max(y, -128), 127)
            else:
                out[i] = -128


cdef inline int32_t _row_max(const int8_t[::1] x) noexcept nogil:
    cdef Py_ssize_t i
    cdef int32_t m = -128
    for i in range(x.shape[0]):
        m = max(m, <int32_t>x[i])
    return m


cdef _check_bound_length(Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t bound):
    if n_in != bound or n_out != n_in:
        raise ValueError(f"softmax: {n_in} inputs and {n_out} outputs, bound for {bound}")


cdef class BoundSoftmax:
    """softmax_s8 with its exps computed once: a difference x - max lies in [-255, 0], so the
    256 values _scaled_exp can take are a table (bind time); a call finds the max, sums the
    table's entries, takes the reciprocal, and turns the entries of the 256 differences into
    outputs once (instead of two exps per element): the same integers as softmax_s8."""
    cdef int32_t exps[256]  # exps[-diff], 0 where diff < diff_min (those give no exp)
    cdef int32_t exps12[256]  # their share of the Q12.19 sum: RoundingDivideByPOT(exp, 12)
    cdef int diff_min
    cdef Py_ssize_t n

    def __init__(self, int input_multiplier, int input_left_shift, int diff_min, Py_ssize_t n):
        cdef int d
        self.diff_min = diff_min
        self.n = n
        for d in range(256):
            self.exps[d] = _scaled_exp(-d, input_multiplier, input_left_shift) \
                if -d >= diff_min else 0
            self.exps12[d] = ec_rdbp(self.exps[d], 12)

    def __call__(self, const int8_t[::1] x, int8_t[::1] out):
        cdef Py_ssize_t n = x.shape[0], i
        cdef int32_t max_in_row = -128, sum_of_exps = 0, recip, y, d_lo
        cdef int num_bits_over_unit, d
        cdef int8_t table[256]
        _check_bound_length(n, out.shape[0], self.n)
        with nogil:
            max_in_row = _row_max(x)
            d_lo = max_in_row + 128  # the largest -diff any input can have
            for i in range(n):
                sum_of_exps = sum_of_exps + self.exps12[max_in_row - <int32_t>x[i]]
            recip = ec_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit)
            for d in range(d_lo + 1):
                if -d >= self.diff_min:
                    y = ec_rdbp_wide(ec_srdhm(recip, self.exps[d]),
                                     num_bits_over_unit + 31 - 8) - 128
                    table[d] = <int8_t>min(max(y, -128), 127)
                else:
                    table[d] = -128
            for i in range(n):
                out[i] = table[max_in_row - <int32_t>x[i]]


cdef inline int8_t _softmax_float_out(float prob, int output_offset) noexcept nogil:
    # prob = exp * inv in [0, 256 (1 + 2^-22)]: roundf (ties away, LiteRT's std::round) fits
    cdef int32_t y = <int32_t>roundf(prob) + output_offset
    return <int8_t>min(max(y, -128), 127)


def softmax_float_s8(const int8_t[::1] x, const float[::1] exps, float output_scale,
                     int output_offset, int8_t[::1] out):
    """LiteRT's optimized int8 softmax (reference/softmax.py softmax_float_s8): the exps of
    the table summed in float32 in index order, inv = 1 / (sum * s_out), round(exp * inv).
    Binds and runs in one call; prepared models bind once (BoundSoftmaxFloat)."""
    BoundSoftmaxFloat(exps, output_scale, output_offset, x.shape[0])(x, out)


cdef class BoundSoftmaxFloat:
    """softmax_float_s8 with its table copied once; a call sums the table's entries in input
    order (the float32 sum depends on it), then rounds the 256 possible products once."""
    cdef float exps[256]
    cdef float output_scale
    cdef int output_offset
    cdef Py_ssize_t n

    def __init__(self, const float[::1] exps, float output_scale, int output_offset,
                 Py_ssize_t n):
        cdef int d
        for d in range(256):
            self.exps[d] = exps[d]
        self.output_scale = output_scale
        self.output_offset = output_offset
        self.n = n

    def __call__(self, const int8_t[::1] x, int8_t[::1] out):
        cdef Py_ssize_t n = x.shape[0], i
        cdef int32_t max_in_row = -128
        cdef int d
        cdef float total = 0, inv, prob
        cdef int8_t table[256]
        _check_bound_length(n, out.shape[0], self.n)
        with nogil:
            max_in_row = _row_max(x)
            for i in range(n):
                total = total + self.exps[max_in_row - <int32_t>x[i]]
            inv = <float>1 / <float>(total * self.output_scale)
            for d in range(max_in_row + 128 + 1):
                prob = self.exps[d] * inv
                table[d] = _softmax_float_out(prob, self.output_offset)
            for i in range(n):
                out[i] = table[max_in_row - <int32_t>x[i]]


# The policy codes of fixedpoint.h, for the test that they equal params.ROUNDING_POLICIES.
POLICY_CODES = {"double": EC_ROUND_DOUBLE, "f64": EC_ROUND_F64, "single": EC_ROUND_SINGLE,
                "fp32": EC_ROUND_FP32}
