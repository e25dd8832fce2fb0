/* edgecnn x86 int8 paths (included by gemm_s8.h): AVX-512 VNNI and AVX2, each function
 * compiled for its own ISA with __attribute__((target)) so a baseline build carries them all;
 * cpu_features.h picks one at run time.
 *
 * VNNI: vpdpbusd multiplies uint8 A (x + 128, in [0, 255]) by int8 weights (|w| <= 127) and
 * adds 4 products into an int32 lane without saturation; the +128 is folded into the bias.
 * AVX2: vpmaddubsw would saturate (2 * 255 * 127 > 2^15), so A and the weights are int16
 * and vpmaddwd adds 2 products (each |x * w| <= 128 * 127) into int32: exact.
 * Requantization (policy double, gemmlowp) is vectorised: SRDHM(a, M0) = (a * M0 + 2^30) >> 31
 * (arithmetic; equal to the nudge-and-truncate form for every a when M0 >= 0), then
 * RoundingDivideByPOT with the remainder-versus-threshold rule, lane by lane, as fixedpoint.h.
 */
#ifndef EDGECNN_GEMM_X86_H
#define EDGECNN_GEMM_X86_H

#include <immintrin.h>

#define EC_TGT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define EC_TGT_AVX2 __attribute__((target("avx2")))

/* ---------------------------------------------------------------- AVX-512 VNNI */

/* U8X4, MR 8 x NR 32: A uint8 runs, b [kp/4][32][4] int8; 16 zmm accumulators. */
EC_TGT_VNNI static void ec_kern_vnni(const uint8_t *const *rows, int nseg, int segp,
                                     ptrdiff_t ss, const void *bv, int32_t *tile) {
    const int8_t *b = (const int8_t *)bv;
    __m512i c0[8], c1[8];
    int r, g, s, groups = segp / 4;
    for (r = 0; r < 8; r++) c0[r] = c1[r] = _mm512_setzero_si512();
    for (s = 0; s < nseg; s++) {
        const uint8_t *a[8];
        for (r = 0; r < 8; r++) a[r] = rows[r] + s * ss;
        for (g = 0; g < groups; g++, b += 128) {
            __m512i b0 = _mm512_loadu_si512((const void *)b);
            __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
#pragma GCC unroll 8
            for (r = 0; r < 8; r++) {
                int32_t v;
                memcpy(&v, a[r] + 4 * g, 4);
                __m512i x = _mm512_set1_epi32(v);
                c0[r] = _mm512_dpbusd_epi32(c0[r], x, b0);
                c1[r] = _mm512_dpbusd_epi32(c1[r], x, b1);
            }
        }
    }
    for (r = 0; r < 8; r++) {
        _mm512_storeu_si512((void *)(tile + r * EC_MAX_NR), c0[r]);
        _mm512_storeu_si512((void *)(tile + r * EC_MAX_NR + 16), c1[r]);
    }
}

/* U8X4, MR 8 x NR 16 (convs with 16 channels or fewer): b [kp/4][16][4]. */
EC_TGT_VNNI static void ec_kern_vnni16(const uint8_t *const *rows, int nseg, int segp,
                                       ptrdiff_t ss, const void *bv, int32_t *tile) {
    const int8_t *b = (const int8_t *)bv;
    __m512i c0[8];
    int r, g, s, groups = segp / 4;
    for (r = 0; r < 8; r++) c0[r] = _mm512_setzero_si512();
    for (s = 0; s < nseg; s++) {
        const uint8_t *a[8];
        for (r = 0; r < 8; r++) a[r] = rows[r] + s * ss;
        for (g = 0; g < groups; g++, b += 64) {
            __m512i b0 = _mm512_loadu_si512((const void *)b);
#pragma GCC unroll 8
            for (r = 0; r < 8; r++) {
                int32_t v;
                memcpy(&v, a[r] + 4 * g, 4);
                c0[r] = _mm512_dpbusd_epi32(c0[r], _mm512_set1_epi32(v), b0);
            }
        }
    }
    for (r = 0; r < 8; r++) _mm512_storeu_si512((void *)(tile + r * EC_MAX_NR), c0[r]);
}

/* U8X4, MR 8 x NR 8 (convs with 8 channels or fewer): b [kp/4][8][4]; ymm vpdpbusd issues
 * twice per cycle on Zen 4, so small layers do not pay for 16 idle lanes. */
EC_TGT_VNNI static void ec_kern_vnni8(const uint8_t *const *rows, int nseg, int segp,
                                      ptrdiff_t ss, const void *bv, int32_t *tile) {
    const int8_t *b = (const int8_t *)bv;
    __m256i c0[8];
    int r, g, s, groups = segp / 4;
    for (r = 0; r < 8; r++) c0[r] = _mm256_setzero_si256();
    for (s = 0; s < nseg; s++) {
        const uint8_t *a[8];
        for (r = 0; r < 8; r++) a[r] = rows[r] + s * ss;
        for (g = 0; g < groups; g++, b += 32) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
#pragma GCC unroll 8
            for (r = 0; r < 8; r++) {
                int32_t v;
                memcpy(&v, a[r] + 4 * g, 4);
                c0[r] = _mm256_dpbusd_epi32(c0[r], _mm256_set1_epi32(v), b0);
            }
        }
    }
    for (r = 0; r < 8; r++) {
        _mm256_storeu_si256((__m256i *)(tile + r * EC_MAX_NR), c0[r]);
        _mm256_storeu_si256((__m256i *)(tile + r * EC_MAX_NR + 8), _mm256_setzero_si256());
    }
}

/* Policy double on 16 lanes: acc + bias' -> int32 before the output offset. */
EC_TGT_VNNI static inline __m512i ec_mbqm_double_avx512(__m512i v, __m512i m0, __m512i left,
                                                        __m512i right) {
    const __m512i nudge = _mm512_set1_epi64((int64_t)1 << 30);
    v = _mm512_sllv_epi32(v, left); /* uint32 shift, as (uint32_t)x << left */
    __m512i even = _mm512_add_epi64(_mm512_mul_epi32(v, m0), nudge);
    __m512i odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64(v, 32), _mm512_srli_epi64(m0, 32)), nudge);
    /* bits 31..62 of each 64-bit sum: low dword of even >> 31, high dword of odd << 1 */
    __m512i hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31),
                                         _mm512_slli_epi64(odd, 1));
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), right),
                                    _mm512_set1_epi32(1));
    __m512i rem = _mm512_and_si512(hi, mask);
    __m512i thr = _mm512_sub_epi32(_mm512_srli_epi32(mask, 1), _mm512_srai_epi32(hi, 31));
    __m512i q = _mm512_srav_epi32(hi, right);
    return _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, _mm512_set1_epi32(1));
}

/* A tile (rows of EC_MAX_NR accumulators) -> int8 rows of out (stride out_stride), n channels
 * from c0; the per-channel parameters are loaded once per 16 channels. */
EC_TGT_VNNI static void ec_requant_tile_double_avx512(const ec_requant *rq, int c0,
                                                      const int32_t *tile, int nrows,
                                                      int8_t *out, size_t out_stride, int n) {
    const __m512i off = _mm512_set1_epi32(rq->out_off);
    const __m512i lo = _mm512_set1_epi32(rq->act_min), hi = _mm512_set1_epi32(rq->act_max);
    int j, r;
    for (j = 0; j < n; j += 16) {
        int c = c0 + j;
        __mmask16 keep = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
        __m512i bias = _mm512_maskz_loadu_epi32(keep, rq->bias + c);
        __m512i m0 = _mm512_maskz_loadu_epi32(keep, rq->m0 + c);
        __m512i left = _mm512_maskz_loadu_epi32(keep, rq->left + c);
        __m512i right = _mm512_maskz_loadu_epi32(keep, rq->right + c);
        for (r = 0; r < nrows; r++) {
            __m512i v = _mm512_add_epi32(_mm512_loadu_si512((const void *)(tile + r * EC_MAX_NR + j)),
                                         bias);
            v = ec_mbqm_double_avx512(v, m0, left, right);
            v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, off), lo), hi);
            _mm_mask_storeu_epi8(out + r * out_stride + j, keep, _mm512_cvtsepi32_epi8(v));
        }
    }
}

/* Policy f64 on n accumulators: round(double(acc) * real_scale) ties away from zero (trunc,
 * then +-1 where the exact fraction v - trunc(v) reaches one half), + offset, clamp. Values
 * are clamped to the int32 range before conversion (the scalar cast would be undefined). */
EC_TGT_VNNI static void ec_requant_f64_avx512(const ec_requant *rq, int c0, const int32_t *acc,
                                              int8_t *out, int n) {
    const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
    const __m512d big = _mm512_set1_pd(2147483647.0), small = _mm512_set1_pd(-2147483648.0);
    const __m256i off = _mm256_set1_epi32(rq->out_off);
    const __m256i lo = _mm256_set1_epi32(rq->act_min), hi = _mm256_set1_epi32(rq->act_max);
    int j;
    for (j = 0; j < n; j += 8) {
        __mmask8 keep = n - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - j)) - 1u);
        __m512d v = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm256_maskz_loadu_epi32(keep, acc + j)),
                                  _mm512_maskz_loadu_pd(keep, rq->real_scale + c0 + j));
        __m512d t = _mm512_roundscale_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512d frac = _mm512_abs_pd(_mm512_sub_pd(v, t));
        __mmask8 up = _mm512_cmp_pd_mask(frac, half, _CMP_GE_OQ);
        __mmask8 neg = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_LT_OQ);
        t = _mm512_mask_add_pd(t, up & (__mmask8)~neg, t, one);
        t = _mm512_mask_sub_pd(t, up & neg, t, one);
        t = _mm512_min_pd(_mm512_max_pd(t, small), big);
        __m256i y = _mm256_add_epi32(_mm512_cvtpd_epi32(t), off);
        y = _mm256_min_epi32(_mm256_max_epi32(y, lo), hi);
        _mm_mask_storeu_epi8(out + j, keep, _mm256_cvtsepi32_epi8(y));
    }
}

/* Rows [0, cnt) of an (o, n) int8 matrix, one after the other, dotted with x ^ 0x80: the
 * weights are read as one sequential stream straight from the model's array (no packed copy),
 * 256 bytes a step on 4 accumulators (vpdpbusd latency), the tail under a byte mask. */
EC_TGT_VNNI static void ec_fc_rows_vnni(const uint8_t *x, const int8_t *w, int n, int cnt,
                                        int32_t *acc) {
    int r, i;
    __mmask64 tail = (n % 64) ? ((__mmask64)1 << (n % 64)) - 1 : 0;
    int body = n - n % 64;
    for (r = 0; r < cnt; r++, w += n) {
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (i = 0; i + 256 <= body; i += 256) {
            s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512((const void *)(x + i)),
                                     _mm512_loadu_si512((const void *)(w + i)));
            s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512((const void *)(x + i + 64)),
                                     _mm512_loadu_si512((const void *)(w + i + 64)));
            s2 = _mm512_dpbusd_epi32(s2, _mm512_loadu_si512((const void *)(x + i + 128)),
                                     _mm512_loadu_si512((const void *)(w + i + 128)));
            s3 = _mm512_dpbusd_epi32(s3, _mm512_loadu_si512((const void *)(x + i + 192)),
                                     _mm512_loadu_si512((const void *)(w + i + 192)));
        }
        for (; i < body; i += 64)
            s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512((const void *)(x + i)),
                                     _mm512_loadu_si512((const void *)(w + i)));
        if (tail)
            s1 = _mm512_dpbusd_epi32(s1, _mm512_maskz_loadu_epi8(tail, x + i),
                                     _mm512_maskz_loadu_epi8(tail, w + i));
        acc[r] = _mm512_reduce_add_epi32(
            _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
    }
}

/* ---------------------------------------------------------------- AVX2 */

/* S16X2, MR 4 x NR 16: A int16 runs, b [kp/2][16][2] int16; 8 ymm accumulators. */
EC_TGT_AVX2 static void ec_kern_avx2(const uint8_t *const *rows, int nseg, int segp,
                                     ptrdiff_t ss, const void *bv, int32_t *tile) {
    const int16_t *b = (const int16_t *)bv;
    __m256i c0[4], c1[4];
    int r, g, s, groups = segp / 2;
    for (r = 0; r < 4; r++) c0[r] = c1[r] = _mm256_setzero_si256();
    for (s = 0; s < nseg; s++) {
        const int16_t *a[4];
        for (r = 0; r < 4; r++) a[r] = (const int16_t *)(rows[r] + s * ss);
        for (g = 0; g < groups; g++, b += 32) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
#pragma GCC unroll 4
            for (r = 0; r < 4; r++) {
                int32_t v;
                memcpy(&v, a[r] + 2 * g, 4);
                __m256i x = _mm256_set1_epi32(v);
                c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(x, b0));
                c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(x, b1));
            }
        }
    }
    for (r = 0; r < 4; r++) {
        _mm256_storeu_si256((__m256i *)(tile + r * EC_MAX_NR), c0[r]);
        _mm256_storeu_si256((__m256i *)(tile + r * EC_MAX_NR + 8), c1[r]);
    }
}

EC_TGT_AVX2 static inline __m256i ec_mbqm_double_avx2(__m256i v, __m256i m0, __m256i left,
                                                      __m256i right) {
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30), one = _mm256_set1_epi32(1);
    v = _mm256_sllv_epi32(v, left);
    __m256i even = _mm256_add_epi64(_mm256_mul_epi32(v, m0), nudge);
    __m256i odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(v, 32), _mm256_srli_epi64(m0, 32)), nudge);
    __m256i hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1),
                                    0xAA);
    __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    __m256i rem = _mm256_and_si256(hi, mask);
    __m256i thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(hi, 31));
    __m256i q = _mm256_srav_epi32(hi, right);
    return _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr)); /* true lanes are -1 */
}

EC_TGT_AVX2 static void ec_requant_tile_double_avx2(const ec_requant *rq, int c0,
                                                    const int32_t *tile, int nrows, int8_t *out,
                                                    size_t out_stride, int n) {
    const __m256i off = _mm256_set1_epi32(rq->out_off);
    const __m256i lo = _mm256_set1_epi32(rq->act_min), hi = _mm256_set1_epi32(rq->act_max);
    int j, r;
    for (j = 0; j < n; j += 8) { /* tile rows and parameters are padded to whole panels */
        int c = c0 + j, cnt = n - j < 8 ? n - j : 8;
        __m256i bias = _mm256_loadu_si256((const __m256i *)(rq->bias + c));
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(rq->m0 + c));
        __m256i left = _mm256_loadu_si256((const __m256i *)(rq->left + c));
        __m256i right = _mm256_loadu_si256((const __m256i *)(rq->right + c));
        for (r = 0; r < nrows; r++) {
            __m256i v = _mm256_add_epi32(
                _mm256_loadu_si256((const __m256i *)(tile + r * EC_MAX_NR + j)), bias);
            v = ec_mbqm_double_avx2(v, m0, left, right);
            v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, off), lo), hi);
            __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v),
                                          _mm256_extracti128_si256(v, 1));
            __m128i p8 = _mm_packs_epi16(p16, p16);
            if (cnt == 8) {
                _mm_storel_epi64((__m128i *)(out + r * out_stride + j), p8);
            } else {
                int8_t tmp[16];
                _mm_storeu_si128((__m128i *)tmp, p8);
                memcpy(out + r * out_stride + j, tmp, (size_t)cnt);
            }
        }
    }
}

EC_TGT_AVX2 static inline __m256i ec_madd_s8_avx2(__m256i acc, __m256i xlo, __m256i xhi,
                                                  const int8_t *w) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)w);
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
        xlo, _mm256_cvtepi8_epi16(_mm256_castsi256_si128(wv))));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(
        xhi, _mm256_cvtepi8_epi16(_mm256_extracti128_si256(wv, 1))));
}

EC_TGT_AVX2 static inline int32_t ec_hsum_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Up to 4 rows of an (o, n) int8 matrix dotted with int8 x; int16 products via vpmaddwd. */
EC_TGT_AVX2 static void ec_fc4_avx2(const int8_t *x, const int8_t *w, int n, int cnt,
                                    int32_t *acc) {
    const int8_t *rows[4];
    __m256i s[4];
    int i = 0, j;
    for (j = 0; j < 4; j++) {
        rows[j] = w + (size_t)(j < cnt ? j : 0) * n;
        s[j] = _mm256_setzero_si256();
    }
    for (; i + 32 <= n; i += 32) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i xlo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(xv));
        __m256i xhi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(xv, 1));
#pragma GCC unroll 4
        for (j = 0; j < 4; j++) s[j] = ec_madd_s8_avx2(s[j], xlo, xhi, rows[j] + i);
    }
    for (j = 0; j < 4; j++) {
        int32_t t = ec_hsum_avx2(s[j]);
        int k;
        for (k = i; k < n; k++) t += (int32_t)x[k] * rows[j][k];
        acc[j] = t;
    }
}

#endif /* EDGECNN_GEMM_X86_H */
