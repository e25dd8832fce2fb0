/* edgecnn AMX conv requantization (included by gemm_amx.h): a tile of int32 sums (bias'
 * already in them) -> int8, every policy in AVX-512 registers, 32 channels of a row at a time.
 *
 * Policies double and single share one exact step on 64-bit lanes. With P = x * M0 (x shifted
 * left first under double when shift > 0, wrapping as (uint32_t)x << left):
 *   double  RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, M0), r)
 *             = (P + K - [P + K < THR] * 2^31) >> (31 + r),
 *           K = 2^30 + 2^(30 + r), THR = 2^(30 + r) when r >= 1 (r = the right shift);
 *           K = 2^30 and no correction (THR = INT64_MIN) when r = 0.
 *           Why: SRDHM is floor((P + 2^30) / 2^31) for M0 >= 0 (gemmlowp's nudge-and-truncate
 *           for negative products is the same floor), RDBP(s, r) is
 *           floor((s + 2^(r-1) - [s < 0]) / 2^r), and floors of floors nest; s < 0 exactly when
 *           P + 2^30 < 0, i.e. P + K < 2^(30 + r). |P| < 2^62 and K <= 2^30 + 2^61: no overflow.
 *   single  (P + 2^(t-1)) >> t, t = 31 - shift: K = 2^(t-1), SH = t, no correction.
 * vpmuldq reads the even int32 lanes of each 64-bit lane, so a tile row goes in as its even
 * columns and its odd columns (shifted down 32), with the constants of each in
 * [kind][vector][8] order (vector 2t + parity for tile t), and comes back as one vpshufd.
 *   fp32    rint(float(x) * float(scale)) (vcvtdq2ps, vmulps, vcvtps2dq: round to nearest even,
 *           as rintf), clamped from above first so the conversion cannot overflow upward
 *           (below int32 it gives INT32_MIN, which the packs below saturate on the right side).
 *   f64     round(double(x) * scale), ties away from zero: truncate, then +-1 where the exact
 *           fraction reaches one half; clamped to int32 like a saturating cast.
 * Then the results are packed with signed saturation to int16 (a tile-0 row and a tile-1 row
 * give the 32 channels in order: ec_amx_col_channel), the output offset is added with
 * saturation, the activation clamp applied, and the bytes stored: saturating at int16 keeps
 * every value that the int8 clamp would cut on the same side, so this equals the reference's
 * wide arithmetic. Policy f64-int (firmware only) takes the scalar ec_requantize.
 */
#ifndef EDGECNN_GEMM_AMX_RQ_H
#define EDGECNN_GEMM_AMX_RQ_H

enum { EC_AQ_M0, EC_AQ_K, EC_AQ_THR, EC_AQ_SH, EC_AQ_KINDS };
#define EC_AQ_PANEL (EC_AQ_KINDS * 32) /* int64 constants per panel */

/* A tile of int32 results waiting for requantization: rows [done, nrows) of buf. */
typedef struct {
    const int32_t *buf;
    int8_t *out;
    int pn, n, nrows, done;
} ec_amx_pending;

/* ---------------------------------------------------------------- bind time */

static size_t ec_amx_cols(const ec_conv_plan *p) { return (size_t)p->npanels * p->L.nr; }

/* Bytes for ec_amx_bind: five arrays, each 64-byte aligned. */
static size_t ec_amx_rq_bytes(const ec_conv_plan *p) {
    size_t c = ec_amx_cols(p);
    return c * 4 * 3 + c * 8 + (size_t)p->npanels * EC_AQ_PANEL * 8 + 6 * 64;
}

static void *ec_amx_carve(uint8_t **at, size_t n) {
    void *r = (void *)(((uintptr_t)*at + 63) & ~(uintptr_t)63);
    *at = (uint8_t *)r + n;
    return r;
}

/* Fill plan.arq in mem (ec_amx_rq_bytes) from plan.rq (channel order, padded to whole
 * panels; padded channels have M0 = 0 and give 0). */
static void ec_amx_bind(ec_conv_plan *p, void *mem) {
    const ec_requant *rq = &p->rq;
    const int nr = p->L.nr;
    size_t cols = ec_amx_cols(p);
    uint8_t *at = (uint8_t *)mem;
    int32_t *bias = (int32_t *)ec_amx_carve(&at, cols * 4);
    int32_t *left = (int32_t *)ec_amx_carve(&at, cols * 4);
    float *f32 = (float *)ec_amx_carve(&at, cols * 4);
    double *f64 = (double *)ec_amx_carve(&at, cols * 8);
    int64_t *q = (int64_t *)ec_amx_carve(&at, (size_t)p->npanels * EC_AQ_PANEL * 8);
    int pn, c;
    p->arq.has_left = 0;
    for (pn = 0; pn < p->npanels; pn++) {
        int64_t *qp = q + (size_t)pn * EC_AQ_PANEL;
        for (c = 0; c < 32; c++) { /* columns past nr (16-channel panels) stay unused zeros */
            int ch = pn * nr + ec_amx_col_channel(nr, c), col = pn * nr + c;
            int at64 = ((c >> 4) * 2 + (c & 1)) * 8 + ((c & 15) >> 1); /* vector, lane */
            int64_t m0 = 0, k = 0, thr = INT64_MIN, sh = 31;
            if (c >= nr) {
                qp[EC_AQ_M0 * 32 + at64] = 0;
                qp[EC_AQ_K * 32 + at64] = 0;
                qp[EC_AQ_THR * 32 + at64] = INT64_MIN;
                qp[EC_AQ_SH * 32 + at64] = 31;
                continue;
            }
            bias[col] = rq->bias[ch];
            f32[col] = (float)rq->real_scale[ch];
            f64[col] = rq->real_scale[ch];
            left[col] = rq->policy == EC_ROUND_DOUBLE ? rq->left[ch] : 0;
            if (left[col]) p->arq.has_left = 1;
            m0 = rq->m0[ch];
            if (rq->policy == EC_ROUND_SINGLE) {
                int t = 31 - rq->shift[ch];
                k = (int64_t)1 << (t - 1);
                sh = t;
            } else {
                int r = rq->right[ch];
                k = ((int64_t)1 << 30) + (r >= 1 ? (int64_t)1 << (30 + r) : 0);
                thr = r >= 1 ? (int64_t)1 << (30 + r) : INT64_MIN;
                sh = 31 + r;
            }
            qp[EC_AQ_M0 * 32 + at64] = m0;
            qp[EC_AQ_K * 32 + at64] = k;
            qp[EC_AQ_THR * 32 + at64] = thr;
            qp[EC_AQ_SH * 32 + at64] = sh;
        }
    }
    p->arq.bias = bias;
    p->arq.left = left;
    p->arq.f32 = f32;
    p->arq.f64 = f64;
    p->arq.q = q;
}

/* ---------------------------------------------------------------- run time */

/* The constants of one 64-bit half (8 columns) of a tile row. */
typedef struct {
    __m512i m0, k, thr, sh;
} ec_aq_half;

EC_TGT_AMX static inline ec_aq_half ec_aq_half_load(const int64_t *q, int vec) {
    ec_aq_half h;
    h.m0 = _mm512_load_si512((const void *)(q + EC_AQ_M0 * 32 + vec * 8));
    h.k = _mm512_load_si512((const void *)(q + EC_AQ_K * 32 + vec * 8));
    h.thr = _mm512_load_si512((const void *)(q + EC_AQ_THR * 32 + vec * 8));
    h.sh = _mm512_load_si512((const void *)(q + EC_AQ_SH * 32 + vec * 8));
    return h;
}

EC_TGT_AMX static inline __m512i ec_aq_step(__m512i v, const ec_aq_half *h) {
    __m512i s = _mm512_add_epi64(_mm512_mul_epi32(v, h->m0), h->k);
    __mmask8 neg = _mm512_cmplt_epi64_mask(s, h->thr);
    s = _mm512_mask_sub_epi64(s, neg, s, _mm512_set1_epi64((int64_t)1 << 31));
    return _mm512_srav_epi64(s, h->sh);
}

/* 16 sums of a tile row -> 16 int32 results (double, single). */
EC_TGT_AMX static inline __m512i ec_aq_fixed(__m512i v, const ec_aq_half *e,
                                             const ec_aq_half *o) {
    __m512i ye = ec_aq_step(v, e), yo = ec_aq_step(_mm512_srli_epi64(v, 32), o);
    return _mm512_mask_shuffle_epi32(ye, (__mmask16)0xAAAA, yo, _MM_PERM_CDAB);
}

EC_TGT_AMX static inline __m512i ec_aq_fp32(__m512i v, __m512 scale, __m512 fmax) {
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), scale), fmax));
}

EC_TGT_AMX static inline __m256i ec_aq_f64_8(__m256i v, const double *scale) {
    const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
    __m512d d = _mm512_mul_pd(_mm512_cvtepi32_pd(v), _mm512_loadu_pd(scale));
    __m512d t = _mm512_roundscale_pd(d, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask8 up = _mm512_cmp_pd_mask(_mm512_abs_pd(_mm512_sub_pd(d, t)), half, _CMP_GE_OQ);
    __mmask8 neg = _mm512_cmp_pd_mask(d, _mm512_setzero_pd(), _CMP_LT_OQ);
    t = _mm512_mask_add_pd(t, up & (__mmask8)~neg, t, one);
    t = _mm512_mask_sub_pd(t, up & neg, t, one);
    t = _mm512_min_pd(_mm512_max_pd(t, _mm512_set1_pd(-2147483648.0)),
                      _mm512_set1_pd(2147483647.0));
    return _mm512_cvtpd_epi32(t);
}

EC_TGT_AMX static inline __m512i ec_aq_f64(__m512i v, const double *scale) {
    __m256i lo = ec_aq_f64_8(_mm512_castsi512_si256(v), scale);
    __m256i hi = ec_aq_f64_8(_mm512_extracti64x4_epi64(v, 1), scale + 8);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The output stage of a row: int32 results of tile 0 (y0) and tile 1 (y1) -> n int8. */
typedef struct {
    __m512i off, lo, hi;
    __m256i off8, lo8, hi8;
    __mmask32 keep;
} ec_aq_out;

EC_TGT_AMX static inline void ec_aq_store32(const ec_aq_out *o, __m512i y0, __m512i y1,
                                            int8_t *dst) {
    __m512i v = _mm512_adds_epi16(_mm512_packs_epi32(y0, y1), o->off);
    v = _mm512_min_epi16(_mm512_max_epi16(v, o->lo), o->hi);
    _mm256_mask_storeu_epi8(dst, o->keep, _mm512_cvtepi16_epi8(v));
}

EC_TGT_AMX static inline void ec_aq_store16(const ec_aq_out *o, __m512i y0, int8_t *dst) {
    __m256i v = _mm256_adds_epi16(_mm512_cvtsepi32_epi16(y0), o->off8);
    v = _mm256_min_epi16(_mm256_max_epi16(v, o->lo8), o->hi8);
    _mm_mask_storeu_epi8(dst, (__mmask16)o->keep, _mm256_cvtepi16_epi8(v));
}

/* Rows [r0, r1) of a pending tile. */
EC_TGT_AMX static void ec_amx_requant(const ec_conv_plan *p, const ec_amx_pending *q, int r0,
                                      int r1) {
    const int nr = p->L.nr, c0 = q->pn * nr, policy = p->rq.policy;
    const size_t os = (size_t)p->cout;
    const int32_t *buf = q->buf + (size_t)r0 * EC_MAX_NR;
    int8_t *out = q->out + (size_t)r0 * os;
    ec_aq_out o;
    int r;
    o.off = _mm512_set1_epi16((short)p->rq.out_off);
    o.lo = _mm512_set1_epi16((short)p->rq.act_min);
    o.hi = _mm512_set1_epi16((short)p->rq.act_max);
    o.off8 = _mm512_castsi512_si256(o.off);
    o.lo8 = _mm512_castsi512_si256(o.lo);
    o.hi8 = _mm512_castsi512_si256(o.hi);
    o.keep = q->n >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << q->n) - 1u);
    if (policy == EC_ROUND_DOUBLE || policy == EC_ROUND_SINGLE) {
        const int64_t *qp = p->arq.q + (size_t)q->pn * EC_AQ_PANEL;
        const ec_aq_half e0 = ec_aq_half_load(qp, 0), o0 = ec_aq_half_load(qp, 1);
        const __m512i left0 = _mm512_loadu_si512((const void *)(p->arq.left + c0));
        if (nr == 16) {
            for (r = 0; r < r1 - r0; r++, buf += EC_MAX_NR, out += os) {
                __m512i v = _mm512_load_si512((const void *)buf);
                if (p->arq.has_left) v = _mm512_sllv_epi32(v, left0);
                ec_aq_store16(&o, ec_aq_fixed(v, &e0, &o0), out);
            }
            return;
        }
        const ec_aq_half e1 = ec_aq_half_load(qp, 2), o1 = ec_aq_half_load(qp, 3);
        const __m512i left1 = _mm512_loadu_si512((const void *)(p->arq.left + c0 + 16));
        if (p->arq.has_left) {
            for (r = 0; r < r1 - r0; r++, buf += EC_MAX_NR, out += os) {
                __m512i v0 = _mm512_sllv_epi32(_mm512_load_si512((const void *)buf), left0);
                __m512i v1 = _mm512_sllv_epi32(_mm512_load_si512((const void *)(buf + 16)), left1);
                ec_aq_store32(&o, ec_aq_fixed(v0, &e0, &o0), ec_aq_fixed(v1, &e1, &o1), out);
            }
            return;
        }
        for (r = 0; r < r1 - r0; r++, buf += EC_MAX_NR, out += os)
            ec_aq_store32(&o, ec_aq_fixed(_mm512_load_si512((const void *)buf), &e0, &o0),
                          ec_aq_fixed(_mm512_load_si512((const void *)(buf + 16)), &e1, &o1),
                          out);
        return;
    }
    if (policy == EC_ROUND_FP32) {
        const __m512 s0 = _mm512_loadu_ps(p->arq.f32 + c0);
        const __m512 s1 = nr == 32 ? _mm512_loadu_ps(p->arq.f32 + c0 + 16) : s0;
        const __m512 fmax = _mm512_set1_ps((float)(p->rq.act_max - p->rq.out_off));
        for (r = 0; r < r1 - r0; r++, buf += EC_MAX_NR, out += os) {
            __m512i y0 = ec_aq_fp32(_mm512_load_si512((const void *)buf), s0, fmax);
            if (nr == 16)
                ec_aq_store16(&o, y0, out);
            else
                ec_aq_store32(&o, y0,
                              ec_aq_fp32(_mm512_load_si512((const void *)(buf + 16)), s1, fmax),
                              out);
        }
        return;
    }
    if (policy == EC_ROUND_F64) {
        const double *s = p->arq.f64 + c0;
        for (r = 0; r < r1 - r0; r++, buf += EC_MAX_NR, out += os) {
            __m512i y0 = ec_aq_f64(_mm512_load_si512((const void *)buf), s);
            if (nr == 16)
                ec_aq_store16(&o, y0, out);
            else
                ec_aq_store32(&o, y0, ec_aq_f64(_mm512_load_si512((const void *)(buf + 16)), s + 16),
                              out);
        }
        return;
    }
    for (r = 0; r < r1 - r0; r++, buf += EC_MAX_NR, out += os) { /* f64-int: scalar */
        int c;
        for (c = 0; c < nr; c++) {
            int ch = ec_amx_col_channel(nr, c);
            if (ch >= q->n) continue;
            ch += c0;
            out[ch - c0] = ec_requantize(buf[c], policy, p->rq.m0[ch], p->rq.shift[ch],
                                         p->rq.real_scale[ch], p->rq.out_off, p->rq.act_min,
                                         p->rq.act_max);
        }
    }
}

/* Requantize up to `rows` more rows of a pending tile (all of them when rows <= 0). */
EC_TGT_AMX static inline void ec_amx_drain(const ec_conv_plan *p, ec_amx_pending *q, int rows) {
    int r0 = q->done, r1 = rows > 0 && q->done + rows < q->nrows ? q->done + rows : q->nrows;
    if (r1 <= r0) return;
    ec_amx_requant(p, q, r0, r1);
    q->done = r1;
}

#endif /* EDGECNN_GEMM_AMX_RQ_H */
