# The C fixed-point helpers (fixedpoint.h) for the Cython kernels; see that header.
from libc.stdint cimport int8_t, int32_t

cdef extern from "fixedpoint.h" nogil:
    int EC_ROUND_DOUBLE
    int EC_ROUND_F64
    int EC_ROUND_SINGLE
    int EC_ROUND_FP32
    int32_t ec_srdhm(int32_t a, int32_t b)
    int32_t ec_rdbp(int32_t x, int exponent)
    int32_t ec_rdbp_wide(int32_t x, int exponent)
    int32_t ec_mbqm_double(int32_t x, int32_t m0, int32_t shift)
    int32_t ec_mbqm_single(int32_t x, int32_t m0, int32_t shift)
    int8_t ec_requantize(int32_t acc, int policy, int32_t m0, int32_t shift, double real_scale,
                         int32_t output_offset, int32_t act_min, int32_t act_max)
    int32_t ec_exp_on_negative_values_q5(int32_t a)
    int32_t ec_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit)
