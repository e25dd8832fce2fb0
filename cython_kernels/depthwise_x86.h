/* edgecnn x86 depthwise kernels (included by depthwise_s8.h): AVX-512 on the avx512vnni path
 * and AVX2, each compiled for its ISA with __attribute__((target)) like gemm_x86.h.
 *
 * A block is 2V channels (V int32 lanes: 16 on AVX-512, 8 on AVX2). x is widened to int16 once
 * per load (vpmovsxbw), so int32 lane i holds the pair (x[2i], x[2i+1]). Against the weights
 * packed at bind time as (w[2i], 0) and (0, w[2i+1]) pairs (ec_dw_plan.w32), vpdpwssd (AVX-512
 * VNNI: multiply pairs and accumulate, one uop) or vpmaddwd + vpaddd (AVX2) give the even and
 * the odd channel's product exactly (|x * w| <= 128 * 128, the other product is 0): two
 * accumulators per pixel, even and odd channels, whose requantization parameters come in the
 * same split order (ec_dw_split, ec_dw_plan.q64). The int8 results are put back in channel
 * order before the store (AVX-512: saturating packs + one word permute; AVX2: int16 blend).
 * The four pixels' accumulators are named variables, not arrays, so they stay in registers.
 */
#ifndef EDGECNN_DEPTHWISE_X86_H
#define EDGECNN_DEPTHWISE_X86_H

/* ---------------------------------------------------------------- AVX-512 (avx512vnni path) */

/* Policy double in one rounding step, exact for every int32 x and M0 in [0, 2^31): with
 * P = (x << left) * M0 (64-bit) and r the right shift, gemmlowp's
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M0), r) equals
 *   (P + K - [P < -2^30] * A) >> (31 + r),   K = 2^30 + 2^(30 + r), A = 2^31   (r >= 1)
 *                                             K = 2^30, A = 0                 (r == 0)
 * (SRDHM is floor((P + 2^30) / 2^31) for M0 >= 0, RDBP adds 2^(r-1) minus one for negative
 * values, and the two floors nest). One vpmuldq per 8 lanes, no 32-bit high-half juggling.
 * The per-channel 64-bit constants come precomputed per block (ec_dw_plan.q64) in the order
 * vpmuldq sees them: vectors ee, eo, oe, oo hold channels c0 + 4i + {0, 2, 1, 3}. */
enum { EC_Q_M0, EC_Q_K, EC_Q_THR, EC_Q_ADJ, EC_Q_SH, EC_Q_KINDS };

EC_TGT_VNNI static inline __m512i ec_dw_q64(__m512i v, const int64_t *q, int vec) {
    const int64_t *b = q + vec * 8;
    __m512i s = _mm512_add_epi64(_mm512_mul_epi32(v, _mm512_loadu_si512(b + EC_Q_M0 * 32)),
                                 _mm512_loadu_si512(b + EC_Q_K * 32));
    __mmask8 neg = _mm512_cmplt_epi64_mask(s, _mm512_loadu_si512(b + EC_Q_THR * 32));
    s = _mm512_mask_sub_epi64(s, neg, s, _mm512_loadu_si512(b + EC_Q_ADJ * 32));
    return _mm512_srav_epi64(s, _mm512_loadu_si512(b + EC_Q_SH * 32));
}

/* What a kernel call reads from the plan, copied once into locals: the int8 stores could
 * alias the plan, so the compiler would otherwise reload it after every store. */
typedef struct {
    int policy, has_left, cm;
    const int32_t *left;
    const float *scale;
    const int64_t *q64;
    __m512i off16, min16, max16, perm, pick;
    __m512 fmax;
} ec_dw_k512;

EC_TGT_VNNI static inline void ec_dw_k512_init(const ec_dw_plan *p, ec_dw_k512 *k) {
    k->policy = p->rq.policy;
    k->has_left = p->has_left;
    k->cm = p->cm;
    k->left = p->sp.left;
    k->scale = p->sp.scale;
    k->q64 = p->q64;
    k->off16 = _mm512_set1_epi16((short)p->rq.out_off);
    k->min16 = _mm512_set1_epi16((short)p->rq.act_min);
    k->max16 = _mm512_set1_epi16((short)p->rq.act_max);
    /* packs lane L holds e[4L..4L+3], o[4L..4L+3] = channels 8L + {0, 2, 4, 6, 1, 3, 5, 7} */
    k->perm = _mm512_set_epi16(31, 27, 30, 26, 29, 25, 28, 24, 23, 19, 22, 18, 21, 17, 20, 16,
                               15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0);
    /* the low dwords of a and b alternately */
    k->pick = _mm512_set_epi32(30, 14, 28, 12, 26, 10, 24, 8, 22, 6, 20, 4, 18, 2, 16, 0);
    k->fmax = _mm512_set1_ps((float)(p->rq.act_max - p->rq.out_off));
}

/* One pixel's 32 channels (even, odd accumulators, bias' included) -> n int8 at dst. The
 * requantized lanes go through saturating packs to int16 (values beyond int16 clamp the same
 * way), + offset (saturating), the activation clamp, and one word permute to channel order. */
EC_TGT_VNNI static inline void ec_dw_out32_avx512(const ec_dw_plan *p, const ec_dw_k512 *k,
                                                  int c, __m512i e, __m512i o, int8_t *dst,
                                                  __mmask32 km, int32_t *acc) {
    __m512i v;
    if (k->policy == EC_ROUND_DOUBLE) {
        const int64_t *q = k->q64 + (size_t)(c / 32) * EC_Q_KINDS * 32;
        if (k->has_left) {
            e = _mm512_sllv_epi32(e, _mm512_loadu_si512(k->left + c));
            o = _mm512_sllv_epi32(o, _mm512_loadu_si512(k->left + c + 16));
        }
        e = _mm512_permutex2var_epi32(ec_dw_q64(e, q, 0), k->pick,
                                      ec_dw_q64(_mm512_srli_epi64(e, 32), q, 1));
        o = _mm512_permutex2var_epi32(ec_dw_q64(o, q, 2), k->pick,
                                      ec_dw_q64(_mm512_srli_epi64(o, 32), q, 3));
    } else if (k->policy == EC_ROUND_FP32) {
        /* min first: no conversion overflows upward (below int32 converts to INT32_MIN, which
         * the saturating packs clamp on the right side); cvtps rounds ties to even */
        e = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(e),
                                                           _mm512_loadu_ps(k->scale + c)), k->fmax));
        o = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(o),
                                                           _mm512_loadu_ps(k->scale + c + 16)),
                                             k->fmax));
    } else { /* single, f64: scalar, in channel order */
        int32_t ev[16], ov[16];
        int i, n = k->cm - c < 32 ? k->cm - c : 32;
        _mm512_storeu_si512((void *)ev, e);
        _mm512_storeu_si512((void *)ov, o);
        for (i = 0; i < 16; i++) {
            acc[2 * i] = ev[i];
            acc[2 * i + 1] = ov[i];
        }
        ec_dw_requant_scalar(&p->rq, c, acc, dst, n);
        return;
    }
    v = _mm512_adds_epi16(_mm512_packs_epi32(e, o), k->off16);
    v = _mm512_min_epi16(_mm512_max_epi16(v, k->min16), k->max16);
    _mm256_mask_storeu_epi8(dst, km, _mm512_cvtepi16_epi8(_mm512_permutexvar_epi16(k->perm, v)));
}

#define EC_DW_TAP512(E, O, LOAD)                                                              \
    do {                                                                                      \
        __m512i xv_ = _mm512_cvtepi8_epi16(LOAD);                                             \
        E = _mm512_dpwssd_epi32(E, xv_, we);                                                  \
        O = _mm512_dpwssd_epi32(O, xv_, wo);                                                  \
    } while (0)
#define EC_DW_FULL512(T) _mm256_loadu_si256((const __m256i *)((T)[t] + c))
#define EC_DW_PART512(T) _mm256_maskz_loadu_epi8(km, (T)[t] + c) /* no read past channel n */
#define EC_DW_TAPS512(LOAD)                                                                   \
    for (t = 0; t < nt; t++) {                                                                \
        const int32_t *w_ = w32 + (size_t)t * cp + c;                                         \
        __m512i we = _mm512_loadu_si512(w_), wo = _mm512_loadu_si512(w_ + 16);               \
        EC_DW_TAP512(e0, o0, LOAD(t0));                                                       \
        EC_DW_TAP512(e1, o1, LOAD(t1));                                                       \
        EC_DW_TAP512(e2, o2, LOAD(t2));                                                       \
        EC_DW_TAP512(e3, o3, LOAD(t3));                                                       \
    }

/* A last block of 16 channels or fewer: the taps in ymm registers (half the work), then the
 * same requantization with the upper lanes zero (never stored). */
#define EC_DW_TAP256V(E, O, T)                                                                \
    do {                                                                                      \
        __m256i xv_ = _mm256_cvtepi8_epi16(_mm_maskz_loadu_epi8((__mmask16)km, (T)[t] + c));  \
        E = _mm256_dpwssd_epi32(E, xv_, we);                                                  \
        O = _mm256_dpwssd_epi32(O, xv_, wo);                                                  \
    } while (0)

EC_TGT_VNNI static void ec_dw_half_avx512(const ec_dw_plan *p, const ec_dw_k512 *k,
                                          const int8_t *const *taps, int npix, int8_t *out,
                                          int c, __mmask32 km, int32_t *acc) {
    const int nt = p->ntaps, cp = p->cp, cm = p->cm;
    const int32_t *w32 = p->w32;
    const int8_t *const *t0 = taps, *const *t1 = taps + nt;
    const int8_t *const *t2 = taps + 2 * nt, *const *t3 = taps + 3 * nt;
    __m256i e0 = _mm256_loadu_si256((const __m256i *)(p->sp.bias + c));
    __m256i o0 = _mm256_loadu_si256((const __m256i *)(p->sp.bias + c + 16));
    __m256i e1 = e0, e2 = e0, e3 = e0, o1 = o0, o2 = o0, o3 = o0;
    int t;
    for (t = 0; t < nt; t++) {
        const int32_t *w_ = w32 + (size_t)t * cp + c;
        __m256i we = _mm256_loadu_si256((const __m256i *)w_);
        __m256i wo = _mm256_loadu_si256((const __m256i *)(w_ + 16));
        EC_DW_TAP256V(e0, o0, t0);
        EC_DW_TAP256V(e1, o1, t1);
        EC_DW_TAP256V(e2, o2, t2);
        EC_DW_TAP256V(e3, o3, t3);
    }
    ec_dw_out32_avx512(p, k, c, _mm512_zextsi256_si512(e0), _mm512_zextsi256_si512(o0),
                       out + c, km, acc);
    if (npix > 1)
        ec_dw_out32_avx512(p, k, c, _mm512_zextsi256_si512(e1), _mm512_zextsi256_si512(o1),
                           out + cm + c, km, acc);
    if (npix > 2)
        ec_dw_out32_avx512(p, k, c, _mm512_zextsi256_si512(e2), _mm512_zextsi256_si512(o2),
                           out + 2 * (size_t)cm + c, km, acc);
    if (npix > 3)
        ec_dw_out32_avx512(p, k, c, _mm512_zextsi256_si512(e3), _mm512_zextsi256_si512(o3),
                           out + 3 * (size_t)cm + c, km, acc);
}

/* 32 channels of 4 pixels at a time; w32 holds each block's weights as (w[2i], 0) pairs, then
 * (0, w[2i+1]) pairs (int16 halves of int32 lanes). */
EC_TGT_VNNI static void ec_dw_kern_avx512(const ec_dw_plan *p, const int8_t *const *taps,
                                          int npix, int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm, cp = p->cp;
    const int32_t *bias = p->sp.bias, *w32 = p->w32;
    const int8_t *const *t0 = taps, *const *t1 = taps + nt;
    const int8_t *const *t2 = taps + 2 * nt, *const *t3 = taps + 3 * nt;
    int8_t *out1 = out + cm, *out2 = out + 2 * (size_t)cm, *out3 = out + 3 * (size_t)cm;
    ec_dw_k512 k;
    int c, t;
    ec_dw_k512_init(p, &k);
    for (c = 0; c < cm; c += 32) {
        int n = cm - c < 32 ? cm - c : 32;
        __mmask32 km = n == 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1u);
        __m512i e0 = _mm512_loadu_si512(bias + c), o0 = _mm512_loadu_si512(bias + c + 16);
        __m512i e1 = e0, e2 = e0, e3 = e0, o1 = o0, o2 = o0, o3 = o0;
        if (n <= 16) {
            ec_dw_half_avx512(p, &k, taps, npix, out, c, km, acc);
            continue;
        }
        if (n == 32) {
            EC_DW_TAPS512(EC_DW_FULL512)
        } else {
            EC_DW_TAPS512(EC_DW_PART512)
        }
        ec_dw_out32_avx512(p, &k, c, e0, o0, out + c, km, acc);
        if (npix > 1) ec_dw_out32_avx512(p, &k, c, e1, o1, out1 + c, km, acc);
        if (npix > 2) ec_dw_out32_avx512(p, &k, c, e2, o2, out2 + c, km, acc);
        if (npix > 3) ec_dw_out32_avx512(p, &k, c, e3, o3, out3 + c, km, acc);
    }
}

/* 3x3 filters with stride 1 or 2 and no dilation along W (MobileNet's depthwise layers): one
 * output row whose 3 input rows are inside the image, 32 channels at a time, 4 output pixels
 * per step. The 9 taps' weights stay in 18 registers across the whole row, and each input
 * column (3 rows x 32 channels) is loaded and widened once per step for every pixel it feeds
 * (6 columns for 4 pixels at stride 1, 9 at stride 2), where the per-pixel kernel above loads
 * 9 per pixel through tap pointers. Steps at the row's ends read the columns left or right of
 * the image from the zero-point row (as the per-pixel kernel does); a last step of fewer than
 * 4 pixels computes the missing ones from the columns after them and stores nothing for them.
 * Same products, same folded bias', same requantization: the sums are the same int32 values.
 * A last block of 16 channels or fewer goes through ec_dw_half_avx512. */
#define EC_DW3_LOAD(PTR)                                                                     \
    _mm512_cvtepi8_epi16(full ? _mm256_loadu_si256((const __m256i *)(PTR))                  \
                              : _mm256_maskz_loadu_epi8(km, (PTR)))
#define EC_DW3_MAC(Q, KY, KX)                                                                \
    do {                                                                                     \
        e##Q = _mm512_dpwssd_epi32(e##Q, xv, we##KY##KX);                                    \
        o##Q = _mm512_dpwssd_epi32(o##Q, xv, wo##KY##KX);                                    \
    } while (0)
/* stride 1: column j feeds pixel q through kx = j - q; COL(KY, J) is the column's address */
#define EC_DW3_ROW_S1(KY, COL)                                                               \
    do {                                                                                     \
        __m512i xv = EC_DW3_LOAD(COL(KY, 0));                                                \
        EC_DW3_MAC(0, KY, 0);                                                                \
        xv = EC_DW3_LOAD(COL(KY, 1)); EC_DW3_MAC(0, KY, 1); EC_DW3_MAC(1, KY, 0);            \
        xv = EC_DW3_LOAD(COL(KY, 2));                                                        \
        EC_DW3_MAC(0, KY, 2); EC_DW3_MAC(1, KY, 1); EC_DW3_MAC(2, KY, 0);                    \
        xv = EC_DW3_LOAD(COL(KY, 3));                                                        \
        EC_DW3_MAC(1, KY, 2); EC_DW3_MAC(2, KY, 1); EC_DW3_MAC(3, KY, 0);                    \
        xv = EC_DW3_LOAD(COL(KY, 4)); EC_DW3_MAC(2, KY, 2); EC_DW3_MAC(3, KY, 1);            \
        xv = EC_DW3_LOAD(COL(KY, 5)); EC_DW3_MAC(3, KY, 2);                                  \
    } while (0)
/* stride 2: column j feeds pixel q through kx = j - 2q */
#define EC_DW3_ROW_S2(KY, COL)                                                               \
    do {                                                                                     \
        __m512i xv = EC_DW3_LOAD(COL(KY, 0));                                                \
        EC_DW3_MAC(0, KY, 0);                                                                \
        xv = EC_DW3_LOAD(COL(KY, 1)); EC_DW3_MAC(0, KY, 1);                                  \
        xv = EC_DW3_LOAD(COL(KY, 2)); EC_DW3_MAC(0, KY, 2); EC_DW3_MAC(1, KY, 0);            \
        xv = EC_DW3_LOAD(COL(KY, 3)); EC_DW3_MAC(1, KY, 1);                                  \
        xv = EC_DW3_LOAD(COL(KY, 4)); EC_DW3_MAC(1, KY, 2); EC_DW3_MAC(2, KY, 0);            \
        xv = EC_DW3_LOAD(COL(KY, 5)); EC_DW3_MAC(2, KY, 1);                                  \
        xv = EC_DW3_LOAD(COL(KY, 6)); EC_DW3_MAC(2, KY, 2); EC_DW3_MAC(3, KY, 0);            \
        xv = EC_DW3_LOAD(COL(KY, 7)); EC_DW3_MAC(3, KY, 1);                                  \
        xv = EC_DW3_LOAD(COL(KY, 8)); EC_DW3_MAC(3, KY, 2);                                  \
    } while (0)
/* the 3 rows' taps of 4 pixels at stride sw (1 or 2) */
#define EC_DW3_TAPS(COL)                                                                     \
    do {                                                                                     \
        if (sw == 1) {                                                                       \
            EC_DW3_ROW_S1(0, COL); EC_DW3_ROW_S1(1, COL); EC_DW3_ROW_S1(2, COL);             \
        } else {                                                                             \
            EC_DW3_ROW_S2(0, COL); EC_DW3_ROW_S2(1, COL); EC_DW3_ROW_S2(2, COL);             \
        }                                                                                    \
    } while (0)
#define EC_DW3_W(KY, KX)                                                                     \
    const __m512i we##KY##KX = _mm512_loadu_si512(w32 + (size_t)(KY * 3 + KX) * cp + c),     \
                  wo##KY##KX = _mm512_loadu_si512(w32 + (size_t)(KY * 3 + KX) * cp + c + 16)
#define EC_DW3_DIRECT(KY, J) (rows[KY] + col + (J) * (ptrdiff_t)cm)  /* inside the image */
#define EC_DW3_TABLE(KY, J) (cols[KY][J] + c)                         /* at the row's ends */

/* All of one output row for the channels [c, c + 32): rows[ky] are the input rows, out the
 * output row. full: 32 channels (plain loads), else masked loads of the n < 32 left.
 * [lo, hi): the output columns whose 3 input columns are inside the image. */
EC_TGT_VNNI static inline __attribute__((always_inline)) void
ec_dw3_block_avx512(const ec_dw_plan *p, const ec_dw_k512 *k, const int8_t *const *rows,
                    int lo, int hi, int8_t *out, int c, __mmask32 km, int full, int sw,
                    int32_t *acc) {
    const int cm = p->cm, cp = p->cp, ow = p->ow;
    const int32_t *w32 = p->w32;
    const __m512i be = _mm512_loadu_si512(p->sp.bias + c);
    const __m512i bo = _mm512_loadu_si512(p->sp.bias + c + 16);
    EC_DW3_W(0, 0); EC_DW3_W(0, 1); EC_DW3_W(0, 2);
    EC_DW3_W(1, 0); EC_DW3_W(1, 1); EC_DW3_W(1, 2);
    EC_DW3_W(2, 0); EC_DW3_W(2, 1); EC_DW3_W(2, 2);
    int ox;
    for (ox = 0; ox < ow; ox += 4) {
        const int npix = ow - ox < 4 ? ow - ox : 4;
        const ptrdiff_t col = ((ptrdiff_t)ox * sw - p->pl) * cm + c;
        __m512i e0 = be, e1 = be, e2 = be, e3 = be, o0 = bo, o1 = bo, o2 = bo, o3 = bo;
        int8_t *dst = out + (size_t)ox * cm + c;
        if (ox >= lo && ox + 4 <= hi) {
            EC_DW3_TAPS(EC_DW3_DIRECT);
        } else { /* a column outside the image reads the zero-point row */
            const int8_t *cols[3][9];
            int ky, j, ix0 = ox * sw - p->pl;
            for (ky = 0; ky < 3; ky++)
                for (j = 0; j < 3 + 3 * sw; j++) { /* 6 columns at stride 1, 9 at 2 */
                    int ix = ix0 + j;
                    cols[ky][j] = ix >= 0 && ix < p->w ? rows[ky] + (ptrdiff_t)ix * cm : p->zrow;
                }
            EC_DW3_TAPS(EC_DW3_TABLE);
        }
        ec_dw_out32_avx512(p, k, c, e0, o0, dst, km, acc);
        if (npix > 1) ec_dw_out32_avx512(p, k, c, e1, o1, dst + cm, km, acc);
        if (npix > 2) ec_dw_out32_avx512(p, k, c, e2, o2, dst + 2 * (size_t)cm, km, acc);
        if (npix > 3) ec_dw_out32_avx512(p, k, c, e3, o3, dst + 3 * (size_t)cm, km, acc);
    }
}

/* Output row oy (its 3 input rows inside the image) of x, every channel. taps: scratch for
 * EC_DW_PIX * 9 tap pointers (the last block of 16 channels or fewer). */
EC_TGT_VNNI static void ec_dw3_row_avx512(const ec_dw_plan *p, const int8_t *x, int oy, int lo,
                                          int hi, const int8_t **taps, int8_t *out,
                                          int32_t *acc) {
    const size_t line = (size_t)p->w * p->cm;
    const int8_t *r0 = x + (size_t)(oy * p->sh - p->pt) * line;
    const int8_t *rows[3] = {r0, r0 + p->dh * line, r0 + 2 * p->dh * line};
    ec_dw_k512 k;
    int c;
    ec_dw_k512_init(p, &k);
    for (c = 0; c < p->cm; c += 32) {
        int n = p->cm - c < 32 ? p->cm - c : 32;
        __mmask32 km = n == 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1u);
        if (n <= 16) { /* ymm registers, through tap pointers */
            int ox, q;
            for (ox = 0; ox < p->ow; ox += EC_DW_PIX) {
                int np = p->ow - ox < EC_DW_PIX ? p->ow - ox : EC_DW_PIX;
                for (q = 0; q < EC_DW_PIX; q++)
                    ec_dw_fill_taps(p, x, oy, ox + (q < np ? q : np - 1), taps + q * p->ntaps);
                ec_dw_half_avx512(p, &k, (const int8_t *const *)taps, np,
                                  out + (size_t)ox * p->cm, c, km, acc);
            }
        } else if (p->sw == 1) {
            if (n == 32) ec_dw3_block_avx512(p, &k, rows, lo, hi, out, c, km, 1, 1, acc);
            else ec_dw3_block_avx512(p, &k, rows, lo, hi, out, c, km, 0, 1, acc);
        } else {
            if (n == 32) ec_dw3_block_avx512(p, &k, rows, lo, hi, out, c, km, 1, 2, acc);
            else ec_dw3_block_avx512(p, &k, rows, lo, hi, out, c, km, 0, 2, acc);
        }
    }
}

/* ---------------------------------------------------------------- AVX2 */

/* Plan fields and constants of a kernel call, in locals (see ec_dw_k512). */
typedef struct {
    int policy, cm;
    const ec_dw_split *sp;
    __m256i off, amin, amax;
    __m256 fmin, fmax;
} ec_dw_k256;

EC_TGT_AVX2 static inline void ec_dw_k256_init(const ec_dw_plan *p, ec_dw_k256 *k) {
    k->policy = p->rq.policy;
    k->cm = p->cm;
    k->sp = &p->sp;
    k->off = _mm256_set1_epi32(p->rq.out_off);
    k->amin = _mm256_set1_epi32(p->rq.act_min);
    k->amax = _mm256_set1_epi32(p->rq.act_max);
    k->fmin = _mm256_set1_ps((float)(p->rq.act_min - p->rq.out_off));
    k->fmax = _mm256_set1_ps((float)(p->rq.act_max - p->rq.out_off));
}

/* One pixel's 16 channels (even, odd accumulators, bias' included) -> n int8 at dst. */
EC_TGT_AVX2 static inline void ec_dw_out16_avx2(const ec_dw_plan *p, const ec_dw_k256 *k, int c,
                                                __m256i e, __m256i o, int8_t *dst, int n,
                                                int32_t *acc) {
    __m128i b;
    if (k->policy == EC_ROUND_DOUBLE) {
        const ec_dw_split *s = k->sp;
        e = ec_mbqm_double_avx2(e, _mm256_loadu_si256((const __m256i *)(s->m0 + c)),
                                _mm256_loadu_si256((const __m256i *)(s->left + c)),
                                _mm256_loadu_si256((const __m256i *)(s->right + c)));
        o = ec_mbqm_double_avx2(o, _mm256_loadu_si256((const __m256i *)(s->m0 + c + 8)),
                                _mm256_loadu_si256((const __m256i *)(s->left + c + 8)),
                                _mm256_loadu_si256((const __m256i *)(s->right + c + 8)));
        e = _mm256_add_epi32(e, k->off);
        o = _mm256_add_epi32(o, k->off);
    } else if (k->policy == EC_ROUND_FP32) {
        /* clamping before rounding equals rounding before clamping at integer bounds, and the
         * conversion (ties to even) never sees a value outside int32 */
        __m256 fe = _mm256_mul_ps(_mm256_cvtepi32_ps(e), _mm256_loadu_ps(k->sp->scale + c));
        __m256 fo = _mm256_mul_ps(_mm256_cvtepi32_ps(o), _mm256_loadu_ps(k->sp->scale + c + 8));
        fe = _mm256_min_ps(_mm256_max_ps(fe, k->fmin), k->fmax);
        fo = _mm256_min_ps(_mm256_max_ps(fo, k->fmin), k->fmax);
        e = _mm256_add_epi32(_mm256_cvtps_epi32(fe), k->off);
        o = _mm256_add_epi32(_mm256_cvtps_epi32(fo), k->off);
    } else { /* single, f64: scalar, in channel order */
        int32_t ev[8], ov[8];
        int i;
        _mm256_storeu_si256((__m256i *)ev, e);
        _mm256_storeu_si256((__m256i *)ov, o);
        for (i = 0; i < 8; i++) {
            acc[2 * i] = ev[i];
            acc[2 * i + 1] = ov[i];
        }
        ec_dw_requant_scalar(&p->rq, c, acc, dst, n);
        return;
    }
    e = _mm256_min_epi32(_mm256_max_epi32(e, k->amin), k->amax);
    o = _mm256_min_epi32(_mm256_max_epi32(o, k->amin), k->amax);
    e = _mm256_blend_epi16(e, _mm256_slli_epi32(o, 16), 0xAA); /* int16 lanes in channel order */
    b = _mm_packs_epi16(_mm256_castsi256_si128(e), _mm256_extracti128_si256(e, 1));
    if (n == 16) {
        _mm_storeu_si128((__m128i *)dst, b);
    } else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        memcpy(dst, tmp, (size_t)n);
    }
}

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

#define EC_DW_TAP256(E, O, T)                                                                 \
    do {                                                                                      \
        __m256i xv_ = _mm256_cvtepi8_epi16(ec_dw_load16_avx2((T)[t] + c, n, mask4));          \
        E = _mm256_add_epi32(E, _mm256_madd_epi16(xv_, we));                                  \
        O = _mm256_add_epi32(O, _mm256_madd_epi16(xv_, wo));                                  \
    } while (0)

/* 16 channels of 4 pixels at a time. */
EC_TGT_AVX2 static void ec_dw_kern_avx2(const ec_dw_plan *p, const int8_t *const *taps,
                                        int npix, int8_t *out, int32_t *acc) {
    const int nt = p->ntaps, cm = p->cm, cp = p->cp;
    const int32_t *bias = p->sp.bias, *w32 = p->w32;
    const int8_t *const *t0 = taps, *const *t1 = taps + nt;
    const int8_t *const *t2 = taps + 2 * nt, *const *t3 = taps + 3 * nt;
    int8_t *out1 = out + cm, *out2 = out + 2 * (size_t)cm, *out3 = out + 3 * (size_t)cm;
    ec_dw_k256 k;
    int c, t;
    ec_dw_k256_init(p, &k);
    for (c = 0; c < cm; c += 16) {
        int n = cm - c < 16 ? cm - c : 16;
        __m128i mask4 = _mm_cmpgt_epi32(_mm_set1_epi32(n / 4), _mm_setr_epi32(0, 1, 2, 3));
        __m256i e0 = _mm256_loadu_si256((const __m256i *)(bias + c));
        __m256i o0 = _mm256_loadu_si256((const __m256i *)(bias + c + 8));
        __m256i e1 = e0, e2 = e0, e3 = e0, o1 = o0, o2 = o0, o3 = o0;
        for (t = 0; t < nt; t++) {
            const int32_t *w_ = w32 + (size_t)t * cp + c;
            __m256i we = _mm256_loadu_si256((const __m256i *)w_);
            __m256i wo = _mm256_loadu_si256((const __m256i *)(w_ + 8));
            EC_DW_TAP256(e0, o0, t0);
            EC_DW_TAP256(e1, o1, t1);
            EC_DW_TAP256(e2, o2, t2);
            EC_DW_TAP256(e3, o3, t3);
        }
        ec_dw_out16_avx2(p, &k, c, e0, o0, out + c, n, acc);
        if (npix > 1) ec_dw_out16_avx2(p, &k, c, e1, o1, out1 + c, n, acc);
        if (npix > 2) ec_dw_out16_avx2(p, &k, c, e2, o2, out2 + c, n, acc);
        if (npix > 3) ec_dw_out16_avx2(p, &k, c, e3, o3, out3 + c, n, acc);
    }
}

#endif /* EDGECNN_DEPTHWISE_X86_H */
