/*
 * Latency prediction: a roofline per op that knows how evo's kernels tile
 * the work, scaled and offset by terms fitted per op class on the measured
 * profiles in the database (docs/modeldb.md):
 *
 *     compute(op)  = padded FLOPs / peak(kind)
 *     cached(op)   = bytes that stay in the cache / cache bandwidth
 *     streamed(op) = bytes that come from memory / memory bandwidth
 *     t(op)        = alpha[c] * max(compute, cached) + delta[c] * cached
 *                    + gamma[c] * streamed + beta[c]
 *
 * "Padded FLOPs" count what the kernels execute, not what the op needs: a
 * dense Conv runs tiles of 8 output channels x 32 positions (AVX-512;
 * implicit GEMM along the zero-padded plane, or its four phases for stride
 * 2, for 3x3-like kernels; one SGEMM over the plane for 1x1; direct kernels
 * without copies for 3x3 stride-2 stems and short-reduction 1x1s) whose
 * partial tiles cost in 16-lane steps, so 3x3 outputs or 3 output channels
 * waste most of a tile; the depthwise kernel runs 16-wide vectors over a small
 * plane's outputs, over the padded plane when rows are narrow, else row by
 * row. Bytes include what the kernel path adds (the SGEMM's packed input,
 * the implicit path's padded copy, im2col's column matrix) and count
 * outputs twice (write-allocate). The shapes come from the op facts' shape
 * strings; ops without them fall back to the raw FLOPs and bytes.
 *
 * The class c is the op kind, except that the dense Convs (conv, conv1x1)
 * share one class: the features tell their kernels apart (see pred_kind).
 *
 * Streamed bytes are a term of their own: on a shared machine memory (or
 * last-level cache) bandwidth is what the neighbours take away, and a class
 * fitted only on small, cache-resident ops (a tiny model's Gemm) must not
 * learn its per-byte cost from a big model's 5 MB classifier, or the other
 * way round. Each class's fit is pulled toward the pooled fit of all
 * classes, which is itself pulled toward the plain roofline: alpha 1,
 * delta 0 (cache traffic overlaps compute), gamma 1 (memory traffic does
 * not); beta is fitted freely (the fixed per-op cost: dispatch, loop setup;
 * tiny ops measure it directly). A class without data uses the pooled fit
 * with the median overhead.
 *
 * peak and bandwidths are the device class's calibration, so a class that
 * was only calibrated (never profiled) still gets predictions.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* A kind needs this many measured ops for its own fit: even one measured
 * op of a kind says more about its kernel than any other kind's fit (the
 * ridge keeps one op from setting four coefficients). */
#define PRED_MIN_SAMPLES 1
/* Strength of the pull of each class's alpha, delta and gamma toward their
 * priors, relative to the data's own weight: the kinds are
 * fitted on a few dozen ops of a few models, and a kind that only saw tiny
 * ops (or only big ones) must not extrapolate a wild slope. The overhead
 * beta is not pulled: tiny ops measure it directly. */
#define PRED_RIDGE 1.0
/* Below the timer's resolution, us. */
#define PRED_MIN_US 0.05
/* Output channels of the dense kernels' micro-tile (AVX-512), the step in
 * which its partial position tiles cost (masked 16-lane halves of 32), and
 * the depthwise kernel's vector width. */
#define PRED_TILE_M 8
#define PRED_TILE_N 16
#define PRED_DW_VEC 16
/* The KM-layout Conv kernel's register blocks: positions x output
 * channels, and the narrower block it runs for a 32-channel remainder. */
#define PRED_KM_P 4
#define PRED_KM_M 64
#define PRED_KM_P2 8
#define PRED_KM_M2 32
/* The implicit-GEMM Conv path needs the padded input of a group within this
 * many bytes (node/kernels/conv_fast.c), else it runs im2col + SGEMM. */
#define PRED_IMPLICIT_BYTES ((int64_t)1 << 20)
/* The fixed cost of one short row call (a phase split of one input row),
 * in bytes of cache traffic: about 5 ns. */
#define PRED_ROW_CALL_BYTES 512.0
/* FMA latencies of a 16-lane horizontal sum (4 shuffle + add steps). */
#define PRED_GEMV_REDUCE 7
/* Depthwise planes of at most this many outputs run the masked path. */
#define PRED_DW_MASKED_MAX 4096
/* ... and of at most this many outputs (and padded inputs), with whole
 * blocks of 16 channels, the channel-vectorized one
 * (node/kernels/x86/dwconv_cv_avx512.c, CONV_DW_CV_MAX_OUT/_PLANE). */
#define PRED_DW_CV_MAX 256
#define PRED_DW_CV_MAX_PLANE 1024
/* What that path pays per position and block of 16 channels to transpose
 * it in (input) or out (output), in bytes of cache traffic: about 2 ns. */
#define PRED_DW_CV_POS_BYTES 200.0
/* Stride-2 3x3 planes at least this wide take the row kernel first
 * (CONV_DW3_S2_MIN_OW). */
#define PRED_DW3_S2_MIN_OW 12
/* 3x3 stride-2 convs of one group with at most this many input and output
 * channels run the direct stem kernel (EVO_CONV3X3S2_MAX_C / _MAX_M). */
#define PRED_STEM_MAX_C 4
#define PRED_STEM_MAX_M 64
/* Pointwise convs of one group with at most this many input channels and
 * weights (output channels rounded up to 8) run the direct kernel, which
 * packs nothing (EVO_CONV1X1_SMALLK_MAX_K / _MAX_W). */
#define PRED_PW_SMALLK_MAX_K 32
#define PRED_PW_SMALLK_MAX_W 4096

enum { PRED_NF = 4 }; /* features: max(compute, cached), cached, streamed, 1 */

typedef struct pred_sample {
    double x[PRED_NF]; /* features, us */
    double t;          /* measured median, us */
} pred_sample;

/* Up to 3 shapes of a facts string "[[1,3,224,224],[32,3,3,3],null]";
 * rank[i] = -1 for a missing or unparsable entry. */
typedef struct pred_shapes {
    int32_t n;
    int32_t rank[3];
    int64_t dims[3][EVO_MAX_RANK];
} pred_shapes;

static void pred_parse_shapes(const char *s, pred_shapes *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 3; i++)
        out->rank[i] = -1;
    if (s == NULL || *s != '[')
        return;
    s++;
    while (out->n < 3 && *s != '\0' && *s != ']') {
        int32_t i = out->n++;
        if (strncmp(s, "null", 4) == 0) {
            s += 4;
        } else if (*s == '[') {
            s++;
            int32_t r = 0;
            bool ok = true;
            while (*s != ']' && *s != '\0') {
                char *end;
                long long v = strtoll(s, &end, 10);
                if (end == s || v < 0 || r >= EVO_MAX_RANK) {
                    ok = false;
                    break;
                }
                out->dims[i][r++] = (int64_t)v;
                s = end;
                if (*s == ',')
                    s++;
            }
            if (!ok || *s != ']')
                return; /* the rest is not trustworthy either */
            s++;
            out->rank[i] = r;
        } else {
            return;
        }
        if (*s == ',')
            s++;
    }
}

static int64_t pred_cdiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* The stride that maps an input extent to an output extent under "same"
 * (out = ceil(in / s)) or "valid" (out = (in - k) / s + 1) padding, the
 * smallest that fits; else round(in / out). */
static int64_t pred_stride(int64_t in, int64_t out, int64_t k)
{
    for (int64_t s = 1; s <= 8; s++)
        if (out == pred_cdiv(in, s) || (in >= k && out == (in - k) / s + 1))
            return s;
    int64_t s = (in + out / 2) / out;
    return s > 0 ? s : 1;
}

/* Adds the cost of np positions run in blocks of bp positions x nv 16-lane
 * channel vectors, over mb channel blocks, to *steps (vector FMA steps per
 * reduction step). A
 * block issues np' x nv FMAs and nv + np' loads (weights, broadcasts) per
 * reduction step; a short tail block is bound by its loads. */
static void pred_km_blocks(int64_t np, int64_t nv, int64_t mb, int64_t bp, int64_t *steps)
{
    const int64_t whole = np / bp, tail = np % bp;
    const int64_t fma = bp * nv, loads = nv + bp;
    *steps += mb * whole * (fma > loads ? fma : loads);
    if (tail > 0) {
        const int64_t tfma = tail * nv, tloads = nv + tail;
        *steps += mb * (tfma > tloads ? tfma : tloads);
    }
}

/* FLOPs the KM-layout Conv kernel executes (W stored as [C*kh*kw, M] by
 * the layout pass, docs/passes.md; node/kernels/x86/conv_km_avx512.c), 0
 * when the shapes do not describe one. The kernel vectorizes over output
 * channels: register blocks of PRED_KM_P positions x PRED_KM_M channels,
 * or, for a 32-channel remainder, PRED_KM_P2 x PRED_KM_M2, whose partial
 * blocks still cost whole 16-lane vectors and whole 4-position steps. A
 * pointwise conv runs one call over the plane; any other runs one call
 * per output row, over X itself when unpadded, else over a zero-padded
 * copy (written, then read: *extra_bytes). kh x kw is K / C, taken as
 * square. */
static double pred_conv_km_flops(const pred_shapes *in, const pred_shapes *out, double *extra_bytes)
{
    if (in->rank[0] != 4 || in->rank[1] != 2 || out->rank[0] != 4)
        return 0;
    const int64_t *x = in->dims[0], *y = out->dims[0];
    const int64_t n = x[0], c = x[1], h = x[2], wd = x[3];
    const int64_t k = in->dims[1][0], m = in->dims[1][1];
    const int64_t oh = y[2], ow = y[3];
    if (n < 1 || c < 1 || h < 1 || wd < 1 || k < 1 || m < 1 || oh < 1 || ow < 1 || y[1] != m ||
        n > 65536 || c > (1 << 20) || m > (1 << 20) || h > (1 << 16) || wd > (1 << 16) ||
        oh > (1 << 16) || ow > (1 << 16) || k % c != 0 || k / c > 4096 * 4096)
        return 0;
    const int64_t taps = k / c;
    int64_t kh = 1;
    while ((kh + 1) * (kh + 1) <= taps)
        kh++;
    if (kh * kh != taps)
        return 0;
    const int64_t sh = pred_stride(h, oh, kh), sw = pred_stride(wd, ow, kh);
    if (sh > 64 || sw > 64)
        return 0;
    int64_t calls, np;
    int64_t ph = (oh - 1) * sh + kh, pw = (ow - 1) * sw + kh;
    ph = ph > h ? ph : h;
    pw = pw > wd ? pw : wd;
    if (kh == 1 && sh == 1 && sw == 1 && oh == h && ow == wd) {
        calls = 1;
        np = oh * ow;
        *extra_bytes = 0;
    } else {
        /* Row by row, except rows that do not split into 4-position blocks
         * with whole 64-channel blocks: one call whose blocks span rows. */
        const bool flat = ow % PRED_KM_P != 0 && m % PRED_KM_M == 0;
        calls = flat ? 1 : oh;
        np = flat ? oh * ow : ow;
        /* Unpadded convs read X in place; others read a zero-padded copy. */
        *extra_bytes = ph == h && pw == wd
                           ? 0
                           : 2.0 * (double)(c * ph * pw) * (double)sizeof(float) * (double)n;
    }
    /* vector FMA steps per call and reduction step */
    const int64_t full = m / PRED_KM_M, rest = m % PRED_KM_M;
    int64_t steps = 0;
    pred_km_blocks(np, PRED_KM_M / PRED_DW_VEC, full, PRED_KM_P, &steps);
    if (rest == PRED_KM_M2) {
        const int64_t wide = np / PRED_KM_P2;
        pred_km_blocks(wide * PRED_KM_P2, PRED_KM_M2 / PRED_DW_VEC, 1, PRED_KM_P2, &steps);
        pred_km_blocks(np - wide * PRED_KM_P2, PRED_KM_M2 / PRED_DW_VEC, 1, PRED_KM_P, &steps);
    } else if (rest > 0) {
        pred_km_blocks(np, pred_cdiv(rest, PRED_DW_VEC), 1, PRED_KM_P, &steps);
    }
    return 2.0 * (double)n * (double)calls * (double)(steps * PRED_DW_VEC) * (double)k;
}

/* Winograd F(4x4, 3x3) Conv (W stored as [36, C, M] by the layout pass;
 * node/kernels/conv_wino.c): the 36 GEMMs over 4x4 output tiles plus the
 * transforms, counted as PRED_WINO_XFORM FLOP-equivalents per transformed
 * value (each of 36 values per tile and channel, in and out, goes through
 * adds, a 16 x 16 transpose and a store: measured on resnet8's 16-, 32- and
 * 64-channel convs, 28, 14 and 12 us against 1.2 MFLOPs of GEMM each).
 * The padded channels-last copy of X is written, then read. */
#define PRED_WINO_XFORM 32.0
static double pred_conv_wino_flops(const pred_shapes *in, const pred_shapes *out,
                                   double *extra_bytes)
{
    if (in->rank[0] != 4 || in->rank[1] != 3 || out->rank[0] != 4 || in->dims[1][0] != 36)
        return 0;
    const int64_t *x = in->dims[0], *y = out->dims[0];
    const int64_t n = x[0], c = in->dims[1][1], m = in->dims[1][2], oh = y[2], ow = y[3];
    if (n < 1 || c < 1 || m < 1 || oh < 1 || ow < 1 || n > 65536 || c > (1 << 20) ||
        m > (1 << 20) || oh > (1 << 16) || ow > (1 << 16))
        return 0;
    const double tiles = (double)n * (double)((oh + 3) / 4) * (double)((ow + 3) / 4);
    const double ph = (double)((oh + 3) / 4 * 4 + 2), pw = (double)((ow + 3) / 4 * 4 + 2);
    *extra_bytes = 2.0 * (double)n * (double)c * ph * pw * (double)sizeof(float);
    return 2.0 * 36.0 * tiles * (double)c * (double)m +
           PRED_WINO_XFORM * 36.0 * tiles * (double)(c + m);
}

/* FLOPs the kernels execute for a 2-D Conv (dense or depthwise), from the
 * facts' shapes; 0 when the shapes do not describe one. The geometry the
 * facts leave out (strides, padding) is recovered from the shapes: the
 * stride by pred_stride, the padded width max(in, (out - 1) * stride + kernel). */
static double pred_conv_flops(const evo_db_op *op, double *extra_bytes, bool *fewer)
{
    *fewer = false;
    pred_shapes in, out;
    pred_parse_shapes(op->in_shapes, &in);
    pred_parse_shapes(op->out_shapes, &out);
    if (in.rank[1] == 2 && op->kind != EVO_KIND_DWCONV)
        return pred_conv_km_flops(&in, &out, extra_bytes);
    if (in.rank[1] == 3 && op->kind != EVO_KIND_DWCONV) {
        *fewer = true; /* Winograd does fewer FLOPs than the facts count */
        return pred_conv_wino_flops(&in, &out, extra_bytes);
    }
    if (in.rank[0] != 4 || in.rank[1] != 4 || out.rank[0] != 4)
        return 0;
    const int64_t *x = in.dims[0], *w = in.dims[1], *y = out.dims[0];
    const int64_t n = x[0], c = x[1], h = x[2], wd = x[3];
    const int64_t m = w[0], cg = w[1], kh = w[2], kw = w[3];
    const int64_t oh = y[2], ow = y[3];
    if (n < 1 || c < 1 || h < 1 || wd < 1 || m < 1 || cg < 1 || kh < 1 || kw < 1 || oh < 1 ||
        ow < 1 || c % cg != 0 || n > 65536 || c > (1 << 20) || m > (1 << 20) || h > (1 << 16) ||
        wd > (1 << 16) || oh > (1 << 16) || ow > (1 << 16) || kh > 4096 || kw > 4096)
        return 0;
    const int64_t groups = c / cg, mg = m / (groups > 0 ? groups : 1);
    const int64_t sh = pred_stride(h, oh, kh), sw = pred_stride(wd, ow, kw);
    /* Bounds above and here keep every product below 2^63. */
    if (sh > 64 || sw > 64)
        return 0;
    int64_t ph = (oh - 1) * sh + kh, pw = (ow - 1) * sw + kw;
    ph = ph > h ? ph : h;
    pw = pw > wd ? pw : wd;
    *extra_bytes = 0;
    if (op->kind == EVO_KIND_DWCONV) {
        /* Small "same" planes (stride 1, or 2 read by phases) run as one
         * masked run over the outputs; narrow rows as one flat run over the
         * padded plane; the rest row by row. */
        int64_t per_plane;
        const bool rows_s2 = kh == 3 && kw == 3 && sh == 2 && sw == 2 && oh == (h + 1) / 2 &&
                             ow == (wd + 1) / 2 && ow >= PRED_DW3_S2_MIN_OW;
        if (!rows_s2 && c % 16 == 0 && oh * ow <= PRED_DW_CV_MAX &&
            ph * pw <= PRED_DW_CV_MAX_PLANE) {
            /* Full vectors of 16 channels: no wasted lanes, but every input
             * and output position of a block of 16 channels is transposed
             * in or out, costed as cache traffic like the phase split
             * below. */
            *extra_bytes = (double)(n * (c / 16) * (h * wd + oh * ow)) * PRED_DW_CV_POS_BYTES;
            return 2.0 * (double)n * (double)c * (double)(oh * ow) * (double)(kh * kw);
        }
        if (kh == 3 && kw == 3 && sh == sw &&
            ((sh == 1 && oh == h && ow == wd && wd >= PRED_DW_VEC) ||
             (sh == 2 && oh == (h + 1) / 2 && ow == (wd + 1) / 2))) {
            /* The 3x3 row kernels (pads 1; node/kernels/x86/dwconv3x3_avx512.c):
             * whole rows of vectors straight from the input, stride 2
             * with three shuffles per input row and vector on top. */
            per_plane = oh * pred_cdiv(ow, PRED_DW_VEC) * PRED_DW_VEC;
            if (sh == 2)
                per_plane *= 2;
        } else if (sh == sw && ((sw == 1 && ow == wd) || (sw == 2 && ow == (wd + 1) / 2)) &&
                   oh * ow <= PRED_DW_MASKED_MAX) {
            per_plane = pred_cdiv(oh * ow, PRED_DW_VEC) * PRED_DW_VEC;
            /* Stride 2 first splits every input row into its phases, one
             * call per row: a fixed cost that dwarfs the FLOPs of small
             * planes (768 rows take about 4 us on AVX-512 Xeons however
             * wide they are), costed as that much cache traffic. */
            if (sw == 2)
                *extra_bytes = (double)(n * c * h) * PRED_ROW_CALL_BYTES;
        } else if ((ow < PRED_DW_VEC || (sw == 1 && ow < 2 * PRED_DW_VEC)) && oh >= 2 &&
                   (sh * pw) % sw == 0)
            per_plane = pred_cdiv((oh - 1) * (sh * pw / sw) + ow, PRED_DW_VEC) * PRED_DW_VEC;
        else
            per_plane = oh * pred_cdiv(ow, PRED_DW_VEC) * PRED_DW_VEC;
        return 2.0 * (double)n * (double)c * (double)per_plane * (double)(kh * kw);
    }
    const double k = (double)cg * (double)kh * (double)kw;
    int64_t n_tiles; /* per block of PRED_TILE_M output channels */
    if (kh == 3 && kw == 3 && sh == 2 && sw == 2 && groups == 1 && cg <= PRED_STEM_MAX_C &&
        m <= PRED_STEM_MAX_M) {
        /* the direct stem kernel (node/kernels/x86/conv3x3s2_avx512.c): no
         * copy, rows of 16-wide vectors, channels in blocks of 16 and the
         * rest in blocks of 8 */
        const int64_t m_run = m / 16 * 16 + pred_cdiv(m % 16, PRED_TILE_M) * PRED_TILE_M;
        return 2.0 * (double)n * (double)m_run * (double)(oh * pred_cdiv(ow, PRED_TILE_N)) *
               PRED_TILE_N * k;
    }
    if (kh == 1 && kw == 1 && sh == 1 && sw == 1 && oh == h && ow == wd) {
        /* one SGEMM over the plane, which packs the input (written, read),
         * or for a short reduction the direct kernel, which does not */
        n_tiles = pred_cdiv(oh * ow, PRED_TILE_N);
        const bool direct = groups == 1 && cg <= PRED_PW_SMALLK_MAX_K &&
                            pred_cdiv(m, PRED_TILE_M) * PRED_TILE_M * cg <= PRED_PW_SMALLK_MAX_W;
        if (!direct)
            *extra_bytes = 2.0 * k * (double)(oh * ow) * (double)sizeof(float) * (double)groups;
    } else if (sh == sw && (sh == 1 || sh == 2) &&
               cg * pred_cdiv(ph, sh) * pred_cdiv(pw, sh) * sh * sh <=
                   PRED_IMPLICIT_BYTES / (int64_t)sizeof(float)) {
        /* implicit GEMM: one flat run over the padded plane (stride 2: over
         * its phases, ceil(pw / 2) wide), the padding columns included */
        n_tiles = pred_cdiv((oh - 1) * pred_cdiv(pw, sh) + ow, PRED_TILE_N);
        /* the padded copy of the input (written, read) */
        *extra_bytes = 2.0 * (double)(cg * ph * pw) * (double)sizeof(float) * (double)groups;
    } else {
        /* im2col: the column matrix is written and read once more */
        n_tiles = pred_cdiv(oh * ow, PRED_TILE_N);
        *extra_bytes = 2.0 * k * (double)(oh * ow) * (double)sizeof(float) * (double)groups;
    }
    const double tiles =
        (double)n * (double)groups * (double)pred_cdiv(mg, PRED_TILE_M) * (double)n_tiles;
    return 2.0 * tiles * PRED_TILE_M * PRED_TILE_N * k;
}

/* FLOPs-equivalent of a one-row Gemm against a transposed B (a classifier
 * on one sample: the AVX-512 gemv), 0 for any other Gemm. That kernel is
 * bound by FMA latency, not throughput: each group of 4 outputs runs one
 * chain of ceil(k / 16) dependent FMAs, then a 16-lane reduction (about
 * PRED_GEMV_REDUCE FMA latencies), so an output costs ceil(k / 16) +
 * PRED_GEMV_REDUCE cycles of the 4-wide group. A cycle of the calibrated
 * dense peak is 2 FMAs x 16 lanes x 2 = 64 FLOPs. */
static double pred_gemv_flops(const evo_db_op *op)
{
    pred_shapes in, out;
    pred_parse_shapes(op->in_shapes, &in);
    pred_parse_shapes(op->out_shapes, &out);
    if (in.rank[0] != 2 || in.rank[1] != 2 || out.rank[0] != 2)
        return 0;
    const int64_t m = in.dims[0][0], k = in.dims[0][1], n = out.dims[0][1];
    if (m != 1 || out.dims[0][0] != 1 || in.dims[1][0] != n || in.dims[1][1] != k || n < 1 ||
        k < 1 || n > ((int64_t)1 << 30) || k > ((int64_t)1 << 30))
        return 0;
    return (double)n * (double)(pred_cdiv(k, 16) + PRED_GEMV_REDUCE) * 64.0;
}

/* The class an op is fitted in: its kind, except that every dense Conv
 * (kind conv or conv1x1) shares one class. The features already tell the
 * kernels apart (pointwise SGEMM with its packed input, implicit GEMM with
 * its padded copy, the KM-layout kernel's channel blocks), and since the
 * layout pass moved the small-map pointwise convs to the KM kernel, the
 * pointwise SGEMM's own data is only big maps: fitted alone it
 * over-predicted tiny_vww_mbv1's short-reduction 1x1s by 65-115% (leave
 * one model out), pooled it does not. */
static int pred_kind(const evo_db_op *op)
{
    if ((unsigned)op->kind >= EVO_KIND_COUNT_)
        return EVO_KIND_ELEMENTWISE;
    if (op->kind == EVO_KIND_CONV1X1)
        return EVO_KIND_CONV;
    return (int)op->kind;
}

/* The features of an op: x[0] max(compute, cached), x[1] cached,
 * x[2] streamed, x[3] 1;
 * *roofline = max(compute, cached + streamed). */
static void pred_features(const evo_calibration *cal, const evo_db_op *op, double x[PRED_NF],
                          double *roofline)
{
    double peak, flops = (double)op->flops, extra = 0;
    switch (op->kind) {
    case EVO_KIND_CONV:
    case EVO_KIND_CONV1X1:
    case EVO_KIND_DWCONV: {
        bool fewer;
        double padded = pred_conv_flops(op, &extra, &fewer);
        /* Padding only ever adds work; keep the facts' count otherwise
         * (except for Winograd, which replaces it). */
        if (padded > flops || (fewer && padded > 0))
            flops = padded;
        peak = op->kind == EVO_KIND_DWCONV ? cal->dw_gflops : cal->dense_gflops;
        break;
    }
    case EVO_KIND_GEMM: {
        double gemv = pred_gemv_flops(op);
        if (gemv > flops)
            flops = gemv;
        peak = cal->dense_gflops;
        break;
    }
    default:
        peak = cal->elem_gflops;
        break;
    }
    /* GFLOP/s = 1e3 FLOPs per microsecond; GB/s = 1e3 bytes per microsecond */
    double compute = peak > 0 ? flops / (peak * 1e3) : 0;
    /* Outputs count twice: a store to a line not in the cache reads it first
     * (write-allocate), which is what makes a 1x1 conv with a wide output
     * slower than one with a wide input. */
    double act = (double)op->in_bytes + 2.0 * (double)op->out_bytes + extra;
    double par = (double)op->param_bytes;
    double cache = (double)cal->cache_bytes;
    /* Data that fits the cache moves at cache speed (activations flow from
     * op to op, small weights stay resident between runs); weights larger
     * than half the cache are evicted by the rest of the model and stream
     * from memory on every run. */
    bool act_streams = !(act + par <= cache && cal->cache_gbps > 0);
    bool par_streams = act_streams || par > cache / 2;
    double bw_act = act_streams ? cal->mem_gbps : cal->cache_gbps;
    double bw_par = par_streams ? cal->mem_gbps : cal->cache_gbps;
    double t_act = bw_act > 0 ? act / (bw_act * 1e3) : 0;
    double t_par = bw_par > 0 ? par / (bw_par * 1e3) : 0;
    double streamed = (act_streams ? t_act : 0) + (par_streams ? t_par : 0);
    double cached = t_act + t_par - streamed;
    x[0] = compute > cached ? compute : cached;
    x[1] = cached;
    x[2] = streamed;
    x[3] = 1.0;
    *roofline = compute > cached + streamed ? compute : cached + streamed;
}

double evo_roofline_us(const evo_calibration *cal, const evo_db_op *op)
{
    double x[PRED_NF], r;
    pred_features(cal, op, x, &r);
    return r;
}

double evo_predict_op_us(const evo_predictor *p, const evo_calibration *cal, const evo_db_op *op)
{
    int k = pred_kind(op);
    double x[PRED_NF], r;
    pred_features(cal, op, x, &r);
    return p->alpha[k] * x[0] + p->delta[k] * x[1] + p->gamma[k] * x[2] + p->beta_us[k];
}

/* Solve the n x n system a z = b in place (Gauss-Jordan, partial
 * pivoting); false if it is singular. */
static bool pred_solve(double a[PRED_NF][PRED_NF], double b[PRED_NF], int n, double z[PRED_NF])
{
    for (int i = 0; i < n; i++) {
        int piv = i;
        for (int r = i + 1; r < n; r++)
            if (fabs(a[r][i]) > fabs(a[piv][i]))
                piv = r;
        if (!(fabs(a[piv][i]) > 1e-300))
            return false;
        for (int c = 0; c < n; c++) {
            double tmp = a[i][c];
            a[i][c] = a[piv][c];
            a[piv][c] = tmp;
        }
        double tb = b[i];
        b[i] = b[piv];
        b[piv] = tb;
        for (int r = 0; r < n; r++) {
            if (r == i)
                continue;
            double f = a[r][i] / a[i][i];
            for (int c = i; c < n; c++)
                a[r][c] -= f * a[i][c];
            b[r] -= f * b[i];
        }
    }
    for (int i = 0; i < n; i++)
        z[i] = b[i] / a[i][i];
    return true;
}

/* Weighted, ridge-regularized, non-negative least squares of
 * t = theta . x over one class's samples:
 *
 *     minimize sum w_i (t_i - theta . x_i)^2 + sum_j<3 lambda G_jj (theta_j - prior_j)^2
 *     subject to theta >= 0
 *
 * with weights w = 1 / t^2 (least relative error: a model's ops span four
 * orders of magnitude, and plain least squares would fit only the largest)
 * and G the weighted Gram matrix, so the pull toward the priors is
 * scale-free and lambda times as strong as the data. A coefficient whose feature is 0 on every
 * sample keeps its prior. Non-negativity keeps the overhead from going negative on tiny ops; with
 * four features every subset of free coefficients is tried (the others held at 0) and the feasible
 * one of least objective wins, which is the exact constrained optimum. Returns false if no subset
 * is solvable. */
/* Add samples s[0..n) to the weighted normal equations g, h. */
static void pred_accumulate(const pred_sample *s, size_t n, double g[PRED_NF][PRED_NF],
                            double h[PRED_NF])
{
    for (size_t i = 0; i < n; i++) {
        double t = s[i].t > PRED_MIN_US ? s[i].t : PRED_MIN_US;
        double w = 1.0 / (t * t);
        for (int a = 0; a < PRED_NF; a++) {
            h[a] += w * s[i].x[a] * s[i].t;
            for (int b = 0; b < PRED_NF; b++)
                g[a][b] += w * s[i].x[a] * s[i].x[b];
        }
    }
}

static bool pred_fit_kind(double g[PRED_NF][PRED_NF], const double h[PRED_NF], double lambda,
                          const double prior[PRED_NF], double theta[PRED_NF])
{
    static const bool pulled[PRED_NF] = {true, true, true, false};
    double best = INFINITY;
    bool found = false;
    for (unsigned mask = 1; mask < (1u << PRED_NF); mask++) {
        int idx[PRED_NF], m = 0;
        bool usable = true;
        for (int j = 0; j < PRED_NF; j++)
            if (mask >> j & 1) {
                usable = usable && g[j][j] > 0;
                idx[m++] = j;
            }
        if (!usable)
            continue;
        double a[PRED_NF][PRED_NF], b[PRED_NF], z[PRED_NF];
        for (int r = 0; r < m; r++) {
            for (int c = 0; c < m; c++)
                a[r][c] = g[idx[r]][idx[c]];
            double l = pulled[idx[r]] ? lambda : 0;
            a[r][r] += l * g[idx[r]][idx[r]];
            b[r] = h[idx[r]] + l * g[idx[r]][idx[r]] * prior[idx[r]];
        }
        if (!pred_solve(a, b, m, z))
            continue;
        double th[PRED_NF];
        for (int j = 0; j < PRED_NF; j++)
            th[j] = g[j][j] > 0 ? 0 : prior[j];
        bool feasible = true;
        for (int r = 0; r < m; r++) {
            feasible = feasible && z[r] >= 0 && isfinite(z[r]);
            th[idx[r]] = z[r];
        }
        if (!feasible)
            continue;
        /* The objective up to the constant sum w t^2. */
        double obj = 0;
        for (int j = 0; j < PRED_NF; j++) {
            obj -= 2 * th[j] * h[j];
            for (int l = 0; l < PRED_NF; l++)
                obj += th[j] * g[j][l] * th[l];
            if (pulled[j])
                obj += lambda * g[j][j] * (th[j] - prior[j]) * (th[j] - prior[j]);
        }
        if (obj < best) {
            best = obj;
            memcpy(theta, th, sizeof th);
            found = true;
        }
    }
    return found;
}

evo_status evo_predictor_fit(evo_db *db, int64_t exclude_model_id, evo_predictor *out,
                             evo_error *err)
{
    return evo_predictor_fit_ridge(db, exclude_model_id, PRED_RIDGE, out, err);
}

evo_status evo_predictor_fit_ridge(evo_db *db, int64_t exclude_model_id, double ridge,
                                   evo_predictor *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < EVO_KIND_COUNT_; k++)
        out->alpha[k] = out->gamma[k] = 1.0;
    if (db == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_predictor_fit: no database");
    if (!(ridge >= 0) || !isfinite(ridge))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "evo_predictor_fit: the ridge strength must be finite and >= 0");
    /* Every measured op of every whole-model profile, with the latest
     * calibration of the profile's device class. */
    sqlite3_stmt *st;
    evo_status rv =
        db_prepare(db,
                   "SELECT o.kind, o.flops, o.in_bytes, o.out_bytes, o.param_bytes, l.median_us, "
                   "c.dense_gflops, c.dw_gflops, c.elem_gflops, c.mem_gbps, p.id, c.cache_gbps, "
                   "c.cache_bytes, o.in_shapes, o.out_shapes "
                   "FROM profiles p "
                   "JOIN op_latencies l ON l.profile_id = p.id "
                   "JOIN model_ops o ON o.model_id = p.model_id AND o.idx = l.idx "
                   "JOIN calibrations c ON c.id = (SELECT MAX(id) FROM calibrations "
                   "                               WHERE device_class_id = p.device_class_id) "
                   "WHERE p.stage = '' AND p.model_id != ?1 ORDER BY p.id",
                   &st, err);
    if (rv != EVO_OK)
        return rv;
    sqlite3_bind_int64(st, 1, exclude_model_id);
    pred_sample *samples[EVO_KIND_COUNT_] = {0};
    size_t n[EVO_KIND_COUNT_] = {0}, cap[EVO_KIND_COUNT_] = {0};
    int64_t last_profile = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        evo_db_op op = {0};
        op.kind = db_kind_from_name((const char *)sqlite3_column_text(st, 0));
        if (op.kind == EVO_KIND_COUNT_)
            continue;
        op.flops = (uint64_t)sqlite3_column_int64(st, 1);
        op.in_bytes = (uint64_t)sqlite3_column_int64(st, 2);
        op.out_bytes = (uint64_t)sqlite3_column_int64(st, 3);
        op.param_bytes = (uint64_t)sqlite3_column_int64(st, 4);
        /* borrowed from the statement until the next step */
        op.in_shapes = (char *)sqlite3_column_text(st, 13);
        op.out_shapes = (char *)sqlite3_column_text(st, 14);
        double t = sqlite3_column_double(st, 5);
        evo_calibration cal = {.dense_gflops = sqlite3_column_double(st, 6),
                               .dw_gflops = sqlite3_column_double(st, 7),
                               .elem_gflops = sqlite3_column_double(st, 8),
                               .mem_gbps = sqlite3_column_double(st, 9),
                               .cache_gbps = sqlite3_column_double(st, 11),
                               .cache_bytes = (uint64_t)sqlite3_column_int64(st, 12)};
        int64_t pid = sqlite3_column_int64(st, 10);
        if (pid != last_profile) {
            out->n_profiles++;
            last_profile = pid;
        }
        if (!(t >= 0) || !isfinite(t))
            continue;
        size_t k = (size_t)pred_kind(&op);
        if (n[k] == cap[k]) {
            size_t ncap = cap[k] ? cap[k] * 2 : 64;
            pred_sample *grown = realloc(samples[k], ncap * sizeof *grown);
            if (grown == NULL) {
                rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory fitting the predictor");
                break;
            }
            samples[k] = grown;
            cap[k] = ncap;
        }
        double r;
        pred_features(&cal, &op, samples[k][n[k]].x, &r);
        samples[k][n[k]].t = t;
        n[k]++;
    }
    if (rv == EVO_OK && rc != SQLITE_DONE)
        rv = db_sql_error(db, rc, "reading profiles for the predictor", err);
    sqlite3_finalize(st);

    /* Classes with enough data get their own fit; the others take the
     * pooled fit and the median overhead of the fitted classes. */
    double betas[EVO_KIND_COUNT_];
    int n_betas = 0;
    bool fitted[EVO_KIND_COUNT_] = {false};
    /* The pooled fit over all classes is each class's prior: what the
     * kernels do per FLOP and per byte on this device in general, which a
     * class then departs from as far as its own data says (a class seen
     * only on tiny ops learns little about bytes, and borrows). */
    static const double roofline_prior[PRED_NF] = {1.0, 0.0, 1.0, 0.0};
    double prior[PRED_NF], pooled_g[PRED_NF][PRED_NF] = {{0}}, pooled_h[PRED_NF] = {0};
    for (int k = 0; k < EVO_KIND_COUNT_; k++)
        pred_accumulate(samples[k], n[k], pooled_g, pooled_h);
    if (!(rv == EVO_OK && pred_fit_kind(pooled_g, pooled_h, ridge, roofline_prior, prior)))
        memcpy(prior, roofline_prior, sizeof prior);
    for (int k = 0; rv == EVO_OK && k < EVO_KIND_COUNT_; k++) {
        out->n_samples[k] = (int32_t)n[k];
        double th[PRED_NF], g[PRED_NF][PRED_NF] = {{0}}, h[PRED_NF] = {0};
        pred_accumulate(samples[k], n[k], g, h);
        if (!(n[k] >= PRED_MIN_SAMPLES && pred_fit_kind(g, h, ridge, prior, th))) {
            out->alpha[k] = prior[0];
            out->delta[k] = prior[1];
            out->gamma[k] = prior[2];
        } else {
            out->alpha[k] = th[0];
            out->delta[k] = th[1];
            out->gamma[k] = th[2];
            out->beta_us[k] = th[3];
            fitted[k] = true;
            betas[n_betas++] = out->beta_us[k];
        }
    }
    if (n_betas > 0) {
        /* insertion sort: at most EVO_KIND_COUNT_ entries */
        for (int i = 1; i < n_betas; i++)
            for (int j = i; j > 0 && betas[j] < betas[j - 1]; j--) {
                double tmp = betas[j];
                betas[j] = betas[j - 1];
                betas[j - 1] = tmp;
            }
        for (int k = 0; k < EVO_KIND_COUNT_; k++)
            if (!fitted[k])
                out->beta_us[k] = betas[n_betas / 2];
    }
    for (int k = 0; k < EVO_KIND_COUNT_; k++)
        free(samples[k]);
    return rv;
}
