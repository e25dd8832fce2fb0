/* edgecnn int8 DEPTHWISE_CONV_2D, the fast twin of edgecnn/reference/depthwise_conv.py (LiteRT
 * reference_integer_ops::DepthwiseConvPerChannel), vectorised over channels.
 *
 * x int8 (H, W, C), out int8 (OH, OW, CM), CM = C * M; with M > 1 the input is first copied once
 * per call with every channel repeated M times, so output channel oc reads channel oc of the
 * copy. Weights are widened once at bind time to int16 [KH*KW][CP] (CP = CM rounded up to 64,
 * zeros past CM). The input zero point is folded into the bias, bias' = bias - zp * sum_t w[t][c],
 * so the inner loops add plain x * w; an out-of-image tap reads a row of CP zero points instead
 * (zp * w cancels its share of the fold: exactly the tap the reference skips). Sums wrap modulo
 * 2^32 and so end on the reference accumulator whenever that fits int32 (the contract).
 *
 * A call walks output rows EC_DW_PIX pixels at a time (threads take blocks of rows); for each
 * channel block the accumulators of those pixels stay in registers across all KH*KW taps and a
 * tap's weights are loaded once for all of them. Paths (cpu_features.h picks one at bind time):
 * - x86 (AVX-512 on the avx512vnni path, AVX2): a block is 2V channels (V int32 lanes). x widened
 *   to int16 has int32 lane i = (x[2i], x[2i+1]); vpdpwssd / vpmaddwd against (w[2i], 0) and
 *   (0, w[2i+1]) give even and odd channel products exactly (|x * w| <= 128 * 128) in two
 *   accumulators, so the requantization parameters are stored in that split order (ec_dw_split)
 *   and the two halves are interleaved back as int16 before the final narrowing.
 * - NEON: 16 channels, x widened with sxtl, smlal into 4 int32x4 accumulators, channel order.
 * - generic: plain C loops the compiler vectorises, scalar requantization.
 * Policies double and fp32 requantize in vector registers; single and f64 (rare) go through the
 * scalar ec_requantize of fixedpoint.h.
 */
#ifndef EDGECNN_DEPTHWISE_S8_H
#define EDGECNN_DEPTHWISE_S8_H

#include "gemm_s8.h"

#define EC_DW_PIX 4     /* output pixels per kernel call */
#define EC_DW_CALIGN 64 /* channel padding of weights, parameters and the zero-point row */

/* Per-channel parameters as the vector path reads them, padded to CP: on x86 in the split
 * order (block b of 2V channels holds its V even channels, then its V odd ones), elsewhere in
 * channel order. */
typedef struct {
    const int32_t *bias, *m0, *left, *right;
    const float *scale; /* fp32 policy: float32(real_scale) */
} ec_dw_split;

typedef struct {
    int isa;
    int h, w, c, m, cm, cp;
    int oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
    int ntaps;
    const int16_t *w16;    /* [ntaps][cp] */
    const ptrdiff_t *off;  /* [ntaps] tap offsets of an interior pixel: (ky*dh*w + kx*dw) * cm */
    ec_requant rq;         /* channel order, padded to cp; bias = the folded bias' */
    ec_dw_split sp;        /* the vector paths' order (ec_dw_split_block) */
    const int8_t *zrow;    /* cp input zero points */
    int8_t *xexp;          /* M > 1: h * w * cm bytes, the channel-repeated input */
    const int8_t **taps;   /* max_threads * EC_DW_PIX * ntaps tap pointers */
    int32_t *acc;          /* max_threads * cp accumulators (scalar requantization) */
    int max_threads;
} ec_dw_plan;

typedef void (*ec_dw_kern_fn)(const ec_dw_plan *p, const int8_t *const *taps, int npix,
                              int8_t *out, int32_t *acc);

/* Channels per x86 block (2V), 0 where parameters stay in channel order. */
static int ec_dw_split_block(int isa) {
    return isa == EC_ISA_AVX512VNNI ? 32 : isa == EC_ISA_AVX2 ? 16 : 0;
}

/* n accumulators (bias' included) of channels c0.. -> int8, any policy. */
static inline void ec_dw_requant_scalar(const ec_requant *rq, int c0, const int32_t *acc,
                                        int8_t *out, int n) {
    int j;
    for (j = 0; j < n; j++)
        out[j] = ec_requantize(acc[j], rq->policy, rq->m0[c0 + j], rq->shift[c0 + j],
                               rq->real_scale[c0 + j], rq->out_off, rq->act_min, rq->act_max);
}

/* ---------------------------------------------------------------- portable C path */

static void ec_dw_kern_generic(const ec_dw_plan *p, const int8_t *const *taps, int npix,
                               int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm;
    uint32_t *a = (uint32_t *)acc; /* unsigned: wraps modulo 2^32 like the SIMD paths */
    int q, t, c;
    for (q = 0; q < npix; q++) {
        for (c = 0; c < cm; c++) a[c] = (uint32_t)p->rq.bias[c];
        for (t = 0; t < nt; t++) {
            const int8_t *x = taps[q * nt + t];
            const int16_t *w = p->w16 + (size_t)t * p->cp;
            for (c = 0; c < cm; c++) a[c] += (uint32_t)((int32_t)x[c] * w[c]);
        }
        ec_dw_requant_scalar(&p->rq, 0, acc, out + (size_t)q * cm, cm);
    }
}

#if defined(EC_X86)
/* ---------------------------------------------------------------- AVX-512 (avx512vnni path) */

/* Even/odd int32 lanes (already clamped to int8) -> n int8 channels in order. */
EC_TGT_VNNI static inline void ec_dw_put32_avx512(__m512i e, __m512i o, int8_t *dst,
                                                  __mmask32 km) {
    __m512i v = _mm512_mask_blend_epi16(0xAAAAAAAAu, e, _mm512_slli_epi32(o, 16));
    _mm256_mask_storeu_epi8(dst, km, _mm512_cvtepi16_epi8(v));
}

EC_TGT_VNNI static void ec_dw_store_avx512(const ec_dw_plan *p, int c, const __m512i *ae,
                                           const __m512i *ao, int npix, int8_t *out,
                                           __mmask32 km, int32_t *acc) {
    const ec_requant *rq = &p->rq;
    const __m512i off = _mm512_set1_epi32(rq->out_off);
    const __m512i lo = _mm512_set1_epi32(rq->act_min), hi = _mm512_set1_epi32(rq->act_max);
    int q, i;
    if (rq->policy == EC_ROUND_DOUBLE) {
        const ec_dw_split *s = &p->sp;
        __m512i m0e = _mm512_loadu_si512(s->m0 + c), m0o = _mm512_loadu_si512(s->m0 + c + 16);
        __m512i le = _mm512_loadu_si512(s->left + c), lfo = _mm512_loadu_si512(s->left + c + 16);
        __m512i re = _mm512_loadu_si512(s->right + c), ro = _mm512_loadu_si512(s->right + c + 16);
        for (q = 0; q < npix; q++) {
            __m512i e = _mm512_add_epi32(ec_mbqm_double_avx512(ae[q], m0e, le, re), off);
            __m512i o = _mm512_add_epi32(ec_mbqm_double_avx512(ao[q], m0o, lfo, ro), off);
            e = _mm512_min_epi32(_mm512_max_epi32(e, lo), hi);
            o = _mm512_min_epi32(_mm512_max_epi32(o, lo), hi);
            ec_dw_put32_avx512(e, o, out + (size_t)q * p->cm, km);
        }
    } else if (rq->policy == EC_ROUND_FP32) {
        /* clamp before rounding: equal to rounding then clamping at integer bounds, and the
         * conversion never sees a value outside int32 */
        const __m512 flo = _mm512_set1_ps((float)(rq->act_min - rq->out_off));
        const __m512 fhi = _mm512_set1_ps((float)(rq->act_max - rq->out_off));
        __m512 se = _mm512_loadu_ps(p->sp.scale + c), so = _mm512_loadu_ps(p->sp.scale + c + 16);
        for (q = 0; q < npix; q++) {
            __m512 fe = _mm512_mul_ps(_mm512_cvtepi32_ps(ae[q]), se);
            __m512 fo = _mm512_mul_ps(_mm512_cvtepi32_ps(ao[q]), so);
            fe = _mm512_min_ps(_mm512_max_ps(fe, flo), fhi);
            fo = _mm512_min_ps(_mm512_max_ps(fo, flo), fhi);
            ec_dw_put32_avx512(_mm512_add_epi32(_mm512_cvtps_epi32(fe), off), /* ties to even */
                               _mm512_add_epi32(_mm512_cvtps_epi32(fo), off),
                               out + (size_t)q * p->cm, km);
        }
    } else {
        int32_t e[16], o[16];
        int n = p->cm - c < 32 ? p->cm - c : 32;
        for (q = 0; q < npix; q++) {
            _mm512_storeu_si512((void *)e, ae[q]);
            _mm512_storeu_si512((void *)o, ao[q]);
            for (i = 0; i < 16; i++) {
                acc[2 * i] = e[i];
                acc[2 * i + 1] = o[i];
            }
            ec_dw_requant_scalar(rq, c, acc, out + (size_t)q * p->cm, n);
        }
    }
}

/* 32 channels at a time: vpmovsxbw of 32 x bytes, two vpdpwssd per tap and pixel. */
EC_TGT_VNNI static void ec_dw_kern_avx512(const ec_dw_plan *p, const int8_t *const *taps,
                                          int npix, int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm;
    const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
    int c, t, q;
    for (c = 0; c < cm; c += 32) {
        int n = cm - c < 32 ? cm - c : 32;
        __mmask32 km = n == 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1u);
        __m512i ae[EC_DW_PIX], ao[EC_DW_PIX];
        __m512i be = _mm512_loadu_si512(p->sp.bias + c);
        __m512i bo = _mm512_loadu_si512(p->sp.bias + c + 16);
        for (q = 0; q < EC_DW_PIX; q++) {
            ae[q] = be;
            ao[q] = bo;
        }
        for (t = 0; t < nt; t++) {
            __m512i wv = _mm512_loadu_si512((const void *)(p->w16 + (size_t)t * p->cp + c));
            __m512i we = _mm512_and_si512(wv, lo16), wo = _mm512_andnot_si512(lo16, wv);
#pragma GCC unroll 4
            for (q = 0; q < EC_DW_PIX; q++) {
                __m512i xv = _mm512_cvtepi8_epi16(
                    _mm256_maskz_loadu_epi8(km, taps[q * nt + t] + c)); /* masked: no overread */
                ae[q] = _mm512_dpwssd_epi32(ae[q], xv, we);
                ao[q] = _mm512_dpwssd_epi32(ao[q], xv, wo);
            }
        }
        ec_dw_store_avx512(p, c, ae, ao, npix, out + c, km, acc);
    }
}

/* ---------------------------------------------------------------- AVX2 */

/* n <= 16 bytes without reading past them: vpmaskmovd where n is a multiple of 4 (masked
 * lanes never fault), a copy otherwise (channel counts like 3 or 17 only). */
EC_TGT_AVX2 static inline __m128i ec_dw_load16_avx2(const int8_t *src, int n, __m128i mask4) {
    int8_t tmp[16];
    if (n == 16) return _mm_loadu_si128((const __m128i *)src);
    if ((n & 3) == 0) return _mm_maskload_epi32((const int *)src, mask4);
    memset(tmp, 0, sizeof(tmp));
    memcpy(tmp, src, (size_t)n);
    return _mm_loadu_si128((const __m128i *)tmp);
}

EC_TGT_AVX2 static inline void ec_dw_put16_avx2(__m256i e, __m256i o, int8_t *dst, int n) {
    __m256i v = _mm256_blend_epi16(e, _mm256_slli_epi32(o, 16), 0xAA);
    __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    if (n == 16) {
        _mm_storeu_si128((__m128i *)dst, b);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        memcpy(dst, tmp, (size_t)n);
    }
}

EC_TGT_AVX2 static void ec_dw_store_avx2(const ec_dw_plan *p, int c, const __m256i *ae,
                                         const __m256i *ao, int npix, int8_t *out, int n,
                                         int32_t *acc) {
    const ec_requant *rq = &p->rq;
    const __m256i off = _mm256_set1_epi32(rq->out_off);
    const __m256i lo = _mm256_set1_epi32(rq->act_min), hi = _mm256_set1_epi32(rq->act_max);
    int q, i;
    if (rq->policy == EC_ROUND_DOUBLE) {
        const ec_dw_split *s = &p->sp;
        __m256i m0e = _mm256_loadu_si256((const __m256i *)(s->m0 + c));
        __m256i m0o = _mm256_loadu_si256((const __m256i *)(s->m0 + c + 8));
        __m256i le = _mm256_loadu_si256((const __m256i *)(s->left + c));
        __m256i lfo = _mm256_loadu_si256((const __m256i *)(s->left + c + 8));
        __m256i re = _mm256_loadu_si256((const __m256i *)(s->right + c));
        __m256i ro = _mm256_loadu_si256((const __m256i *)(s->right + c + 8));
        for (q = 0; q < npix; q++) {
            __m256i e = _mm256_add_epi32(ec_mbqm_double_avx2(ae[q], m0e, le, re), off);
            __m256i o = _mm256_add_epi32(ec_mbqm_double_avx2(ao[q], m0o, lfo, ro), off);
            e = _mm256_min_epi32(_mm256_max_epi32(e, lo), hi);
            o = _mm256_min_epi32(_mm256_max_epi32(o, lo), hi);
            ec_dw_put16_avx2(e, o, out + (size_t)q * p->cm, n);
        }
    } else if (rq->policy == EC_ROUND_FP32) {
        const __m256 flo = _mm256_set1_ps((float)(rq->act_min - rq->out_off));
        const __m256 fhi = _mm256_set1_ps((float)(rq->act_max - rq->out_off));
        __m256 se = _mm256_loadu_ps(p->sp.scale + c), so = _mm256_loadu_ps(p->sp.scale + c + 8);
        for (q = 0; q < npix; q++) {
            __m256 fe = _mm256_mul_ps(_mm256_cvtepi32_ps(ae[q]), se);
            __m256 fo = _mm256_mul_ps(_mm256_cvtepi32_ps(ao[q]), so);
            fe = _mm256_min_ps(_mm256_max_ps(fe, flo), fhi);
            fo = _mm256_min_ps(_mm256_max_ps(fo, flo), fhi);
            ec_dw_put16_avx2(_mm256_add_epi32(_mm256_cvtps_epi32(fe), off),
                             _mm256_add_epi32(_mm256_cvtps_epi32(fo), off),
                             out + (size_t)q * p->cm, n);
        }
    } else {
        int32_t e[8], o[8];
        for (q = 0; q < npix; q++) {
            _mm256_storeu_si256((__m256i *)e, ae[q]);
            _mm256_storeu_si256((__m256i *)o, ao[q]);
            for (i = 0; i < 8; i++) {
                acc[2 * i] = e[i];
                acc[2 * i + 1] = o[i];
            }
            ec_dw_requant_scalar(rq, c, acc, out + (size_t)q * p->cm, n);
        }
    }
}

/* 16 channels at a time: vpmovsxbw of 16 x bytes, two vpmaddwd per tap and pixel. */
EC_TGT_AVX2 static void ec_dw_kern_avx2(const ec_dw_plan *p, const int8_t *const *taps,
                                        int npix, int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm;
    const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
    int c, t, q;
    for (c = 0; c < cm; c += 16) {
        int n = cm - c < 16 ? cm - c : 16;
        __m128i mask4 = _mm_cmpgt_epi32(_mm_set1_epi32(n / 4), _mm_setr_epi32(0, 1, 2, 3));
        __m256i ae[EC_DW_PIX], ao[EC_DW_PIX];
        __m256i be = _mm256_loadu_si256((const __m256i *)(p->sp.bias + c));
        __m256i bo = _mm256_loadu_si256((const __m256i *)(p->sp.bias + c + 8));
        for (q = 0; q < EC_DW_PIX; q++) {
            ae[q] = be;
            ao[q] = bo;
        }
        for (t = 0; t < nt; t++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(p->w16 + (size_t)t * p->cp + c));
            __m256i we = _mm256_and_si256(wv, lo16), wo = _mm256_andnot_si256(lo16, wv);
#pragma GCC unroll 4
            for (q = 0; q < EC_DW_PIX; q++) {
                __m256i xv = _mm256_cvtepi8_epi16(ec_dw_load16_avx2(taps[q * nt + t] + c, n,
                                                                     mask4));
                ae[q] = _mm256_add_epi32(ae[q], _mm256_madd_epi16(xv, we));
                ao[q] = _mm256_add_epi32(ao[q], _mm256_madd_epi16(xv, wo));
            }
        }
        ec_dw_store_avx2(p, c, ae, ao, npix, out + c, n, acc);
    }
}
#endif /* EC_X86 */

#if defined(EC_ARM64)
/* ---------------------------------------------------------------- NEON */

static inline int8x16_t ec_dw_load16_neon(const int8_t *src, int n) {
    int8_t tmp[16];
    if (n == 16) return vld1q_s8(src);
    memset(tmp, 0, sizeof(tmp));
    memcpy(tmp, src, (size_t)n);
    return vld1q_s8(tmp);
}

/* Policy double on 4 lanes: SQRDMULH is gemmlowp's SRDHM (M0 >= 0), then TFLite's fixup +
 * SRSHL form of RoundingDivideByPOT (neg_right = -right). */
static inline int32x4_t ec_dw_double_neon(int32x4_t v, int32x4_t m0, int32x4_t left,
                                          int32x4_t neg_right) {
    v = vqrdmulhq_s32(vshlq_s32(v, left), m0);
    int32x4_t fixup = vshrq_n_s32(vandq_s32(v, neg_right), 31);
    return vrshlq_s32(vqaddq_s32(v, fixup), neg_right);
}

static void ec_dw_store_neon(const ec_dw_plan *p, int c, int32x4_t (*a)[4], int npix,
                             int8_t *out, int n, int32_t *acc) {
    const ec_requant *rq = &p->rq;
    const int32x4_t off = vdupq_n_s32(rq->out_off);
    const int32x4_t lo = vdupq_n_s32(rq->act_min), hi = vdupq_n_s32(rq->act_max);
    int q, k;
    for (q = 0; q < npix; q++) {
        int32x4_t r[4];
        int8_t *dst = out + (size_t)q * p->cm;
        if (rq->policy == EC_ROUND_DOUBLE) {
            for (k = 0; k < 4; k++) {
                int32x4_t v = ec_dw_double_neon(a[q][k], vld1q_s32(p->sp.m0 + c + 4 * k),
                                                 vld1q_s32(p->sp.left + c + 4 * k),
                                                 vnegq_s32(vld1q_s32(p->sp.right + c + 4 * k)));
                r[k] = vminq_s32(vmaxq_s32(vaddq_s32(v, off), lo), hi);
            }
        } else if (rq->policy == EC_ROUND_FP32) {
            const float32x4_t flo = vdupq_n_f32((float)(rq->act_min - rq->out_off));
            const float32x4_t fhi = vdupq_n_f32((float)(rq->act_max - rq->out_off));
            for (k = 0; k < 4; k++) {
                float32x4_t f = vmulq_f32(vcvtq_f32_s32(a[q][k]), vld1q_f32(p->sp.scale + c + 4 * k));
                f = vminq_f32(vmaxq_f32(f, flo), fhi);
                r[k] = vaddq_s32(vcvtnq_s32_f32(f), off); /* ties to even */
            }
        } else {
            for (k = 0; k < 4; k++) vst1q_s32(acc + 4 * k, a[q][k]);
            ec_dw_requant_scalar(rq, c, acc, dst, n);
            continue;
        }
        int8x16_t b = vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(r[0]), vqmovn_s32(r[1]))),
                                  vqmovn_s16(vcombine_s16(vqmovn_s32(r[2]), vqmovn_s32(r[3]))));
        if (n == 16) {
            vst1q_s8(dst, b);
        } else {
            int8_t tmp[16];
            vst1q_s8(tmp, b);
            memcpy(dst, tmp, (size_t)n);
        }
    }
}

/* 16 channels at a time: sxtl to int16, four smlal per tap and pixel. */
static void ec_dw_kern_neon(const ec_dw_plan *p, const int8_t *const *taps, int npix,
                            int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm;
    int c, t, q, k;
    for (c = 0; c < cm; c += 16) {
        int n = cm - c < 16 ? cm - c : 16;
        int32x4_t a[EC_DW_PIX][4];
        for (k = 0; k < 4; k++) {
            int32x4_t b = vld1q_s32(p->sp.bias + c + 4 * k);
            for (q = 0; q < EC_DW_PIX; q++) a[q][k] = b;
        }
        for (t = 0; t < nt; t++) {
            const int16_t *w = p->w16 + (size_t)t * p->cp + c;
            int16x8_t w0 = vld1q_s16(w), w1 = vld1q_s16(w + 8);
            for (q = 0; q < EC_DW_PIX; q++) {
                int8x16_t xv = ec_dw_load16_neon(taps[q * nt + t] + c, n);
                int16x8_t x0 = vmovl_s8(vget_low_s8(xv)), x1 = vmovl_s8(vget_high_s8(xv));
                a[q][0] = vmlal_s16(a[q][0], vget_low_s16(x0), vget_low_s16(w0));
                a[q][1] = vmlal_s16(a[q][1], vget_high_s16(x0), vget_high_s16(w0));
                a[q][2] = vmlal_s16(a[q][2], vget_low_s16(x1), vget_low_s16(w1));
                a[q][3] = vmlal_s16(a[q][3], vget_high_s16(x1), vget_high_s16(w1));
            }
        }
        ec_dw_store_neon(p, c, a, npix, out + c, n, acc);
    }
}
#endif /* EC_ARM64 */

static ec_dw_kern_fn ec_dw_kernel_for(int isa) {
    switch (isa) {
#if defined(EC_X86)
    case EC_ISA_AVX512VNNI: return ec_dw_kern_avx512;
    case EC_ISA_AVX2: return ec_dw_kern_avx2;
#endif
#if defined(EC_ARM64)
    case EC_ISA_NEON:
    case EC_ISA_NEON_SDOT: return ec_dw_kern_neon;
#endif
    default: return ec_dw_kern_generic;
    }
}

/* ---------------------------------------------------------------- driver */

/* Fill ntaps and off of a plan whose shapes, strides, dilations and paddings are set. */
static void ec_dw_geometry(ec_dw_plan *p, ptrdiff_t *off) {
    int ky, kx;
    p->ntaps = p->kh * p->kw;
    for (ky = 0; ky < p->kh; ky++)
        for (kx = 0; kx < p->kw; kx++)
            off[ky * p->kw + kx] = ((ptrdiff_t)ky * p->dh * p->w + (ptrdiff_t)kx * p->dw) * p->cm;
}

/* The ntaps tap pointers of output pixel (oy, ox); x has cm channels. */
static inline void ec_dw_fill_taps(const ec_dw_plan *p, const int8_t *x, int oy, int ox,
                                   const int8_t **taps) {
    int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl, ky, kx, t;
    if (iy0 >= 0 && iy0 + (p->kh - 1) * p->dh < p->h && ix0 >= 0 &&
        ix0 + (p->kw - 1) * p->dw < p->w) {
        const int8_t *base = x + ((size_t)iy0 * p->w + ix0) * p->cm;
        for (t = 0; t < p->ntaps; t++) taps[t] = base + p->off[t];
        return;
    }
    for (ky = 0, t = 0; ky < p->kh; ky++) {
        int iy = iy0 + ky * p->dh;
        for (kx = 0; kx < p->kw; kx++, t++) {
            int ix = ix0 + kx * p->dw;
            taps[t] = (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                          ? x + ((size_t)iy * p->w + ix) * p->cm : p->zrow;
        }
    }
}

static void ec_dw_rows(const ec_dw_plan *p, ec_dw_kern_fn kern, const int8_t *x, int8_t *out,
                       int oy0, int oy1, int slot) {
    const int8_t **taps = p->taps + (size_t)slot * EC_DW_PIX * p->ntaps;
    int32_t *acc = p->acc + (size_t)slot * p->cp;
    int oy, ox, q;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = 0; ox < p->ow; ox += EC_DW_PIX) {
            int n = p->ow - ox < EC_DW_PIX ? p->ow - ox : EC_DW_PIX;
            for (q = 0; q < EC_DW_PIX; q++) /* past the row end: the last pixel, never stored */
                ec_dw_fill_taps(p, x, oy, ox + (q < n ? q : n - 1), taps + q * p->ntaps);
            kern(p, (const int8_t *const *)taps, n, out + ((size_t)oy * p->ow + ox) * p->cm, acc);
        }
    }
}

typedef struct {
    const ec_dw_plan *p;
    ec_dw_kern_fn kern;
    const int8_t *x;
    int8_t *out;
    int rows_per_chunk;
} ec_dw_job;

static void ec_dw_chunk(void *ctx, int index, int slot) {
    const ec_dw_job *j = (const ec_dw_job *)ctx;
    int lo = index * j->rows_per_chunk, hi = lo + j->rows_per_chunk;
    ec_dw_rows(j->p, j->kern, j->x, j->out, lo, hi < j->p->oh ? hi : j->p->oh, slot);
}

/* Blocks of output rows, about 8 chunks per thread; layers under EC_SERIAL_MACS stay on the
 * caller. */
static void ec_dw_run(const ec_dw_plan *p, const int8_t *x, int8_t *out, int nthreads) {
    ec_dw_job j;
    if (p->m > 1) { /* channel ic -> channels ic * M .. ic * M + M - 1 */
        size_t i, n = (size_t)p->h * p->w * p->c;
        int k;
        for (i = 0; i < n; i++)
            for (k = 0; k < p->m; k++) p->xexp[i * p->m + k] = x[i];
        x = p->xexp;
    }
    j.p = p;
    j.kern = ec_dw_kernel_for(p->isa);
    j.x = x;
    j.out = out;
    if (nthreads > p->max_threads) nthreads = p->max_threads;
    if ((double)p->oh * p->ow * p->cm * p->ntaps < EC_SERIAL_MACS) nthreads = 1;
    if (nthreads <= 1) {
        ec_dw_rows(p, j.kern, x, out, 0, p->oh, 0);
        return;
    }
    j.rows_per_chunk = (p->oh + 8 * nthreads - 1) / (8 * nthreads);
    ec_pool_run(ec_dw_chunk, &j, (p->oh + j.rows_per_chunk - 1) / j.rows_per_chunk, nthreads);
}

#endif /* EDGECNN_DEPTHWISE_S8_H */
