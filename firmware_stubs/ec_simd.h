/* The kernel path of each core, chosen at compile time, and the helpers the fast kernels share.
 *
 *   EC_PATH_MVE  Helium (Armv8.1-M MVE): Cortex-M55/M85. __ARM_FEATURE_MVE bit 0 (integer MVE).
 *   EC_PATH_DSP  the DSP extension (dual 16-bit MACs): Cortex-M4/M7/M33/M35P. __ARM_FEATURE_DSP.
 *   EC_PATH_C    plain C99: Cortex-M0/M0+/M3/M23 and the host.
 * A kernel keeps its three paths side by side in its .c file, under #if EC_PATH_*. Packing is the
 * same on every path (edgecnn/export_c/kernels.py says so per op), so one generated model builds
 * for any core; scratch buffers are sized for the most demanding path.
 *
 * Requantization, policy double (TFLite MultiplyByQuantizedMultiplier, fixedpoint.h), in the
 * form these paths run it, exact for every int32 input (each identity is proved where it sits):
 *   SRDHM(a, M0) = floor((a * M0 + 2^30) / 2^31)      (gemmlowp's nudge-and-truncate, M0 >= 0)
 *   RDBP(h, r)   = ((((h - [h < 0]) >> (r - 1)) + 1) >> 1  for r >= 1, h for r = 0
 */
#ifndef EDGECNN_SIMD_H
#define EDGECNN_SIMD_H

#include <stdint.h>
#include <string.h>

#include "ec_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define EC_PATH_MVE 1
#include <arm_mve.h>
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define EC_PATH_DSP 1
#include <arm_acle.h>
#else
#define EC_PATH_C 1
#endif

/* Unaligned 32-bit load/store: one LDR/STR on cores with unaligned access (M3 and up). */
static inline uint32_t ec_read32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void ec_write32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/* n bytes, word by word: the copies of im2col are short (one filter row), where a libc memcpy
 * call would cost more than the copy. */
static inline void ec_copy_small(int8_t *dst, const int8_t *src, int32_t n) {
    for (; n >= 4; n -= 4, src += 4, dst += 4) ec_write32(dst, ec_read32(src));
    for (; n > 0; n--) *dst++ = *src++;
}

/* Policy double for a channel whose multiplier is below 0.5 (shift <= -1, M0 >= 2^30: nearly every
 * conv and fully connected layer; the kernels test it per channel and send any other channel
 * through ec_requantize_channel). With m2 = 2 * M0 as int32 and s = -shift - 1 in [0, 30]:
 *   h = SRDHM(acc, M0) = floor((acc * M0 + 2^30) / 2^31); on the DSP path one SMMLAR:
 *       acc + floor((acc * (2 * M0 - 2^32) + 2^31) / 2^32) (2 * M0 as int32 is 2 * M0 - 2^32
 *       because M0 >= 2^30; the 64-bit product cannot overflow, and the sum wraps only where h
 *       itself fits in int32, so the int32 result is exact);
 *   RDBP(h, s + 1) = (((h - [h < 0]) >> s) + 1) >> 1: rounding half up of h - 1 for negative h is
 *       RDBP's half away from zero; h >= -2^31 + 1 since M0 < 2^31, so h - 1 cannot wrap, and
 *       (h - [h < 0]) >> s <= 2^31 - 2, so the + 1 cannot either.
 * Returns the value before the output zero point and the clamp. */
static inline int ec_rq_right_ok(int32_t m0, int32_t shift) {
    return shift <= -1 && m0 >= (1 << 30);
}

static inline int32_t ec_rq_right(int32_t acc, int32_t m2, int32_t s) {
    int32_t h;
#if defined(EC_PATH_DSP)
    __asm__("smmlar %0, %1, %2, %1" : "=r"(h) : "r"(acc), "r"(m2));
#else
    h = (int32_t)(((int64_t)acc * (int64_t)((uint32_t)m2 >> 1) + ((int64_t)1 << 30)) >> 31);
#endif
    h += h >> 31;
    return ((h >> s) + 1) >> 1;
}

/* The output zero point and the activation clamp ([lo, hi] within [-128, 127]). */
static inline int8_t ec_clamp_out(int32_t y, int32_t zp, int32_t lo, int32_t hi) {
    y += zp;
    y = y < lo ? lo : y;
    return (int8_t)(y > hi ? hi : y);
}

/* One output of channel c (its index into the requant arrays) under any policy. */
static inline int8_t ec_requant_one(int32_t acc, const ec_requant_t *rq, int32_t c) {
    if (rq->policy == EC_ROUND_DOUBLE && ec_rq_right_ok(rq->multiplier[c], rq->shift[c]))
        return ec_clamp_out(ec_rq_right(acc, (int32_t)((uint32_t)rq->multiplier[c] << 1),
                                        -rq->shift[c] - 1),
                            rq->output_offset, rq->act_min, rq->act_max);
    return ec_requantize_channel(acc, rq, c);
}

#if defined(EC_PATH_DSP)
/* SXTB16 of the word rotated by 8: bytes 1 and 3 sign-extended to two int16 lanes. With
 * __sxtb16 (bytes 0 and 2) this splits 4 int8 into the pairs (x0, x2) and (x1, x3): a weight
 * word split the same way meets them in SMLAD, so neither side needs reordering. */
static inline uint32_t ec_sxtb16_ror8(uint32_t x) {
    uint32_t y;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(y) : "r"(x));
    return y;
}

/* Per-byte signed max and min of 4 int8 lanes: SSUB8 sets GE[i] where a[i] >= b[i], SEL takes
 * a[i] there and b[i] elsewhere (one asm block: the GE flags must not be separated). */
static inline uint32_t ec_max_s8x4(uint32_t a, uint32_t b) {
    uint32_t d, r;
    __asm__("ssub8 %0, %2, %3\n\tsel %1, %2, %3" : "=&r"(d), "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t ec_min_s8x4(uint32_t a, uint32_t b) {
    uint32_t d, r;
    __asm__("ssub8 %0, %2, %3\n\tsel %1, %3, %2" : "=&r"(d), "=r"(r) : "r"(a), "r"(b));
    return r;
}
#endif

#if defined(EC_PATH_MVE)
/* Policy double on 4 lanes (4 output channels), exact: VQRDMULH is sat((2*a*M0 + 2^31) >> 32)
 * = SRDHM (the only saturating case, a = M0 = -2^31, cannot occur: M0 >= 0). VRSHL by -r adds
 * 2^(r-1) before the shift in full precision, so RDBP(h, r) = VRSHL(h + ((h >> 31) & neg_fix), -r)
 * (neg_fix = -1 for r >= 1, 0 for r = 0; h >= -2^31 + 1, so h - 1 cannot wrap). */
static inline int32x4_t ec_rq_double_x4(int32x4_t acc, int32x4_t left, int32x4_t m0,
                                        int32x4_t neg_r, int32x4_t neg_fix, int32_t zp,
                                        int32_t lo, int32_t hi) {
    int32x4_t h = vqrdmulhq_s32(vshlq_s32(acc, left), m0);
    h = vaddq_s32(h, vandq_s32(vshrq_n_s32(h, 31), neg_fix));
    h = vaddq_n_s32(vrshlq_s32(h, neg_r), zp);
    return vminq_s32(vmaxq_s32(h, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}
#endif

#endif /* EDGECNN_SIMD_H */
