/*
 * Fast paths of Conv and ConvTranspose (float32), checked against the
 * reference loops in ref/conv.c and ref/conv_transpose.c by the kconv tests.
 *
 * Conv picks one of three strategies per node:
 *   - depthwise (group == C == M, at most 2 spatial dims): direct sliding
 *     window per channel over a zero-padded copy of the plane, a vector
 *     row kernel per output row;
 *   - pointwise (1x1, stride 1, no padding): the NCHW input of one group
 *     already is the K x N right-hand matrix, so it is one SGEMM, no copy;
 *   - general: im2col of a chunk of output positions into scratch, then
 *     SGEMM of the group's weights (M/group x C/group*kernel) with it. The
 *     chunk is bounded (about 1 MB) so the column buffer stays in L2 and
 *     the scratch does not grow with the image.
 * ConvTranspose is the adjoint: SGEMM of W^T with a chunk of input positions,
 * then col2im scatter-adds into the output.
 */
#include <string.h>

#include "kernels/conv.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"

/* Bytes of one im2col / col2im chunk. */
#define CONV_CHUNK_BYTES ((int64_t)1 << 20)
/* Fewest positions per chunk: below this SGEMM tiles would be mostly edge. */
#define CONV_CHUNK_MIN 64

static int64_t conv_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Positions per chunk for a column buffer of `rows` rows and `cols` columns. */
static int64_t conv_chunk_cols(int64_t rows, int64_t cols)
{
    if (rows < 1)
        rows = 1;
    int64_t chunk = CONV_CHUNK_BYTES / (rows * (int64_t)sizeof(float));
    chunk = chunk / 16 * 16;
    if (chunk < CONV_CHUNK_MIN)
        chunk = CONV_CHUNK_MIN;
    return chunk < cols ? chunk : cols;
}

static float *conv_align64(void *p)
{
    return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* For a run of outputs t = 0..run-1 reading index base + t * stride of a row
 * of length len: the first and one-past-last t whose index is in bounds. */
static void conv_valid_run(int64_t base, int64_t stride, int64_t len, int64_t run, int64_t *lo,
                           int64_t *hi)
{
    int64_t a = base >= 0 ? 0 : (-base + stride - 1) / stride;
    int64_t b = len - 1 - base < 0 ? 0 : (len - 1 - base) / stride + 1;
    if (a > run)
        a = run;
    if (b > run)
        b = run;
    if (b < a)
        b = a;
    *lo = a;
    *hi = b;
}

static bool conv_is_depthwise(const evo_conv_geom *g)
{
    return g->nsp <= 2 && g->cg == 1 && g->mg == 1;
}

static bool conv_is_pointwise(const evo_conv_geom *g)
{
    for (int d = 0; d < 3; d++)
        if (g->k[d] != 1 || g->stride[d] != 1 || g->pad_b[d] != 0 || g->pad_e[d] != 0)
            return false;
    return true;
}

/* Im2col chunks hold whole output rows when a row fits, so that the fast
 * im2col below can work row by row. */
static int64_t conv_im2col_cols(const evo_conv_geom *g, int64_t k)
{
    int64_t np = conv_chunk_cols(k, g->out_size);
    if (np < g->out_size && np >= g->out[2])
        np = np / g->out[2] * g->out[2];
    return np;
}

/* ---------------------------------------------------------------- depthwise */

/* Copy n floats. The rows copied here are often a handful of floats, where
 * a libc memcpy call costs more than the copy: fixed-size pieces inline. */
static inline void conv_copy(float *d, const float *s, int64_t n)
{
    for (; n >= 8; n -= 8, d += 8, s += 8)
        memcpy(d, s, 8 * sizeof(float));
    if (n & 4) {
        memcpy(d, s, 4 * sizeof(float));
        d += 4;
        s += 4;
    }
    if (n & 2) {
        memcpy(d, s, 2 * sizeof(float));
        d += 2;
        s += 2;
    }
    if (n & 1)
        *d = *s;
}

/* Zero n floats, inline like conv_copy. */
static inline void conv_zero(float *d, int64_t n)
{
    static const float zeros[8];
    for (; n >= 8; n -= 8, d += 8)
        memcpy(d, zeros, 8 * sizeof(float));
    conv_copy(d, zeros, n);
}

static void conv_dw_rows_portable(float *out, int64_t n, const float *in, int64_t in_row,
                                  const float *w, int64_t rows, int64_t kw, int64_t stride,
                                  int64_t dil)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t q = 0; q < kw; q++) {
            const float wv = w[r * kw + q];
            const float *s = in + r * in_row + q * dil;
            if (stride == 1)
                for (int64_t t = 0; t < n; t++)
                    out[t] += wv * s[t];
            else
                for (int64_t t = 0; t < n; t++)
                    out[t] += wv * s[t * stride];
        }
}

/* Floats of the zero-padded input plane the depthwise path works from. */
static int64_t conv_dw_plane(const evo_conv_geom *g)
{
    return (g->in[1] + g->pad_b[1] + g->pad_e[1]) * (g->in[2] + g->pad_b[2] + g->pad_e[2]);
}

/* Narrow outputs run as one flat row over the whole padded plane (see
 * conv_depthwise): the length of one output row in that flat run, or 0 when
 * the plane is not narrow or the strides do not allow it. */
static int64_t conv_dw_flat_row(const evo_conv_geom *g)
{
    const int64_t pw_n = g->in[2] + g->pad_b[2] + g->pad_e[2];
    const int64_t sw = g->stride[2], ow_n = g->out[2];
    if (g->out[1] < 2 || (g->stride[1] * pw_n) % sw != 0)
        return 0;
    if (!(ow_n < 16 || (sw == 1 && ow_n < 32)))
        return 0;
    return g->stride[1] * pw_n / sw;
}

/* Floats of scratch the depthwise path needs: the padded plane (if there is
 * padding), then the flat output rows (if narrow). */
static int64_t conv_dw_scratch_floats(const evo_conv_geom *g, int64_t *flat_off)
{
    int64_t n = conv_dw_plane(g) == g->in_size ? 0 : (conv_dw_plane(g) + 15) / 16 * 16;
    *flat_off = n;
    const int64_t row = conv_dw_flat_row(g);
    if (row > 0)
        n += (g->out[1] - 1) * row + g->out[2];
    return n;
}

/* out[t] = bias + taps for t < n, then the activation. */
static void conv_dw_run(float *out, int64_t n, const float *in, int64_t in_row, const float *w,
                        int64_t rows, int64_t kw, int64_t stride, int64_t dil, float bias,
                        const evo_act *act)
{
#if defined(EVO_HAVE_X86)
    if (evo_cpu_use_avx2() && (stride == 1 || stride == 2)) {
        if (evo_cpu_use_avx512())
            evo_dwconv_plane_avx512(out, 1, n, n, in, 0, in_row, w, rows, kw, stride, dil, bias,
                                    act);
        else
            evo_dwconv_rows_avx2(out, n, in, in_row, w, rows, kw, stride, dil, bias, act);
        evo_act_apply_unfused(act, out, (size_t)n);
        return;
    }
#endif
    for (int64_t t = 0; t < n; t++)
        out[t] = bias;
    conv_dw_rows_portable(out, n, in, in_row, w, rows, kw, stride, dil);
    if (act->kind != EVO_ACT_NONE)
        evo_act_apply(act, out, (size_t)n);
}

/* Each channel is first copied into a zero-padded plane in scratch (one
 * cheap pass), so that every output is an interior output: the row kernel
 * then runs over whole rows with no bounds checks and no scalar borders.
 * Narrow planes (the late layers of mobile networks, keyword-spotting
 * spectrograms) would make the row kernel run many short, masked rows; there
 * the whole plane is one flat run instead: output t of the run reads input
 * t * sw of the padded plane (plus the tap offsets), so with an output row
 * length of sh * padded width / sw every run position maps to a window, the
 * valid ones being the first ow_n of each row. The few extra outputs per row
 * are cheaper than short rows, and the run never reads past the plane. */
static void conv_depthwise(const evo_conv_geom *g, const float *x, const float *w,
                           const float *bias, const evo_act *act, float *y, float *scratch)
{
    const int64_t ih_n = g->in[1], iw_n = g->in[2], oh_n = g->out[1], ow_n = g->out[2];
    const int64_t kh = g->k[1], kw = g->k[2], sh = g->stride[1], sw = g->stride[2];
    const int64_t dh = g->dil[1], dw = g->dil[2], ph = g->pad_b[1], pw = g->pad_b[2];
    const int64_t pw_n = iw_n + pw + g->pad_e[2]; /* padded row length */
    const int64_t ph_n = ih_n + ph + g->pad_e[1];
    const bool padded = conv_dw_plane(g) != g->in_size;
    const int64_t flat_row = conv_dw_flat_row(g);
    int64_t flat_off;
    conv_dw_scratch_floats(g, &flat_off);
    /* No scratch is declared when neither a padded plane nor a flat run is
     * needed; offsetting a NULL pointer would be undefined. */
    float *plane = scratch, *flat = scratch != NULL ? scratch + flat_off : NULL;
    const int64_t flat_n = (oh_n - 1) * flat_row + ow_n;
    if (padded)
        memset(plane, 0, (size_t)(ph_n * pw_n) * sizeof(float));
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t ch = 0; ch < g->c; ch++) {
            const float *xc = x + (n * g->c + ch) * g->in_size;
            if (padded) {
                /* Borders stay zero from the memset above. */
                for (int64_t ih = 0; ih < ih_n; ih++)
                    conv_copy(plane + (ih + ph) * pw_n + pw, xc + ih * iw_n, iw_n);
                xc = plane;
            }
            const float *wc = w + ch * kh * kw;
            float *yc = y + (n * g->m + ch) * g->out_size;
            const float b = bias != NULL ? bias[ch] : 0.0f;
            if (flat_row > 0) {
                conv_dw_run(flat, flat_n, xc, dh * pw_n, wc, kh, kw, sw, dw, b, act);
                for (int64_t oh = 0; oh < oh_n; oh++)
                    conv_copy(yc + oh * ow_n, flat + oh * flat_row, ow_n);
                continue;
            }
#if defined(EVO_HAVE_X86)
            if (evo_cpu_use_avx512() && (sw == 1 || sw == 2)) {
                evo_dwconv_plane_avx512(yc, oh_n, ow_n, ow_n, xc, sh * pw_n, dh * pw_n, wc, kh, kw,
                                        sw, dw, b, act);
                evo_act_apply_unfused(act, yc, (size_t)(oh_n * ow_n));
                continue;
            }
#endif
            for (int64_t oh = 0; oh < oh_n; oh++)
                conv_dw_run(yc + oh * ow_n, ow_n, xc + oh * sh * pw_n, dh * pw_n, wc, kh, kw, sw,
                            dw, b, act);
        }
}

/* Depthwise convs on AVX-512 whose flat output index maps linearly to the
 * input: stride 1 with output rows as wide as input rows ("same" width),
 * or stride 2 with ow == ceil(iw / 2) read from the input's four phases
 * (even/odd rows x even/odd columns, each ceil(ih/2) x ceil(iw/2)). Then
 * tap i of output t reads src[off[i] + t], live unless the window is in
 * the padding, so the whole plane is one run of 16-wide vectors with a
 * mask per tap: no padded copy, no per-row loop, output stored in place.
 * Meant for small planes (a masked load per tap and vector costs more than
 * the copy on large ones). */
#ifndef CONV_DW_MASKED_MAX
#define CONV_DW_MASKED_MAX 4096
#endif

static bool conv_dw_masked_ok(const evo_conv_geom *g)
{
    const int64_t s = g->stride[2];
    if (!conv_is_depthwise(g) || g->stride[1] != s || g->out_size > CONV_DW_MASKED_MAX ||
        g->dil[1] != g->dil[2] || g->k_size > 64)
        return false;
    if (s == 1)
        return g->out[2] == g->in[2];
    return s == 2 && g->out[2] == (g->in[2] + 1) / 2;
}

/* Depthwise convs on small planes with whole blocks of 16 channels run
 * vectorized over channels (x86/dwconv_cv_avx512.c): the masked path pays
 * its setup, masks and partial vectors per channel, which dominates when a
 * plane holds a few hundred outputs or less. The limits are measured
 * (per-op medians, evo profile): channel vectors won on tiny_kws_dscnn's
 * 25x5 planes (4.0 -> 3.3 us), tiny_vww_mbv1's 12x12 and 6x6 ones (4.4 ->
 * 3.6, 3.9 -> 2.2 us) and its 24x24 stride-2 one (6.4 -> 4.4 us), and lost
 * on its 24x24 stride-1 (576 outputs, 8.1 -> 8.5 us) and 48x48 stride-2
 * ones (7.7 -> 11.0 us), where transposing in and out costs more than the
 * masks save. */
#if defined(EVO_HAVE_X86)
#ifndef CONV_DW_CV_MAX_OUT
#define CONV_DW_CV_MAX_OUT 256
#endif
#ifndef CONV_DW_CV_MAX_PLANE
#define CONV_DW_CV_MAX_PLANE 1024
#endif

static bool conv_dw_cv_ok(const evo_conv_geom *g)
{
    return conv_is_depthwise(g) && g->nsp == 2 && g->c % 16 == 0 && g->dil[1] == 1 &&
           g->dil[2] == 1 && g->out_size <= CONV_DW_CV_MAX_OUT && g->k_size <= 49 &&
           (g->in[1] + g->pad_b[1] + g->pad_e[1]) * (g->in[2] + g->pad_b[2] + g->pad_e[2]) <=
               CONV_DW_CV_MAX_PLANE;
}
#endif

/* Depthwise 3x3 convs with pads of 1 (0 or 1 after, at stride 2) run
 * straight from NCHW (x86/dwconv3x3_avx512.c), with a zero row (the
 * scratch) for the padding above and below: stride 1 "same" two rows at a
 * time on planes at least a vector wide, stride 2 by even/odd permutes.
 * Measured (per-op medians, evo profile), against the masked path on
 * tiny_vww_mbv1: 48x48 stride 1 9.0 -> 4.9 us, 24x24 8.1 -> 7.0 us; against
 * the padded-plane path on mobilenet_v2: 112x112 208 -> 112 us, 56x56 183 ->
 * 148 us. Smaller planes with whole blocks of 16 channels take the
 * channel-vectorized path first. */
#if defined(EVO_HAVE_X86)
static bool conv_dw3_ok(const evo_conv_geom *g)
{
    if (!conv_is_depthwise(g) || g->nsp != 2 || g->k[1] != 3 || g->k[2] != 3 || g->dil[1] != 1 ||
        g->dil[2] != 1 || g->pad_b[1] != 1 || g->pad_b[2] != 1)
        return false;
    if (g->stride[1] == 1 && g->stride[2] == 1)
        return g->pad_e[1] == 1 && g->pad_e[2] == 1 && g->in[2] >= 16;
    return g->stride[1] == 2 && g->stride[2] == 2 && g->pad_e[1] <= 1 && g->pad_e[2] <= 1;
}

/* Stride-2 planes at least this wide go to the row kernel even when the
 * channel-vectorized path could take them: tiny_vww_mbv1's 24x24 -> 12x12
 * ran 4.7 us over channels, 3.0 us in rows; its 12x12 -> 6x6 and 6x6 ->
 * 3x3 ones ran 1.9 and 1.4 us over channels, 3.2 and 3.3 us in rows. */
#define CONV_DW3_S2_MIN_OW 12

static bool conv_dw3_first(const evo_conv_geom *g)
{
    return g->stride[1] == 2 && g->out[2] >= CONV_DW3_S2_MIN_OW;
}

static void conv_dw3(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                     const evo_act *act, float *y, float *zero_row)
{
    memset(zero_row, 0, (size_t)g->in[2] * sizeof(float));
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t ch = 0; ch < g->c; ch++) {
            const float *xc = x + (n * g->c + ch) * g->in_size;
            float *yc = y + (n * g->m + ch) * g->out_size;
            const float b = bias != NULL ? bias[ch] : 0.0f;
            if (g->stride[1] == 1)
                evo_dwconv3x3s1_avx512(yc, xc, g->in[1], g->in[2], w + ch * 9, b, act, zero_row);
            else
                evo_dwconv3x3s2_avx512(yc, g->out[1], g->out[2], xc, g->in[1], g->in[2], w + ch * 9,
                                       b, act, zero_row);
            evo_act_apply_unfused(act, yc, (size_t)g->out_size);
        }
}
#endif

/* Scratch of the masked path: the masks, the tap offsets, then (stride 2)
 * the four phase planes of one channel. */
static int64_t conv_dw_masked_bytes(const evo_conv_geom *g, int64_t *off_at, int64_t *ph_at)
{
    const int64_t nvec = (g->out_size + 15) / 16;
    int64_t n = (nvec * g->k_size * 2 + 63) / 64 * 64;
    *off_at = n;
    n += (g->k_size * 8 + 63) / 64 * 64;
    *ph_at = n;
    if (g->stride[2] == 2)
        n += 4 * ((g->in[1] + 1) / 2) * ((g->in[2] + 1) / 2) * (int64_t)sizeof(float);
    return n;
}

#if defined(EVO_HAVE_X86)
static void conv_dw_masked(const evo_conv_geom *g, const float *x, const float *w,
                           const float *bias, const evo_act *act, float *y, unsigned char *scratch)
{
    const int64_t s = g->stride[2], ih = g->in[1], iw = g->in[2], dil = g->dil[2];
    const int64_t kh = g->k[1], kw = g->k[2], pt = g->pad_b[1], pl = g->pad_b[2];
    const int64_t h2 = (ih + 1) / 2, w2 = (iw + 1) / 2, q = h2 * w2;
    int64_t off_at, ph_at;
    conv_dw_masked_bytes(g, &off_at, &ph_at);
    uint16_t *masks = (uint16_t *)(void *)scratch;
    int64_t *off = (int64_t *)(void *)(scratch + off_at);
    float *phases = (float *)(void *)(scratch + ph_at);
    evo_dwconv_masks_avx512(masks, g->out_size, g->out[2], s, ih, iw, kh, kw, pt, pl, dil);
    for (int64_t a = 0; a < kh; a++)
        for (int64_t b = 0; b < kw; b++) {
            const int64_t dr = a * dil - pt, dc = b * dil - pl;
            if (s == 1) {
                off[a * kw + b] = dr * iw + dc;
            } else {
                const int64_t pa = dr & 1, pb = dc & 1; /* dr - pa is even: exact halves */
                off[a * kw + b] = (pa * 2 + pb) * q + (dr - pa) / 2 * w2 + (dc - pb) / 2;
            }
        }
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t ch = 0; ch < g->c; ch++) {
            const float *xc = x + (n * g->c + ch) * g->in_size;
            float *yc = y + (n * g->m + ch) * g->out_size;
            if (s == 2) {
                /* Input row i goes to row i / 2 of phases (i % 2, 0) and (i % 2, 1). */
                for (int64_t i = 0; i < ih; i++) {
                    float *ev = phases + (i % 2) * 2 * q + i / 2 * w2;
                    evo_deinterleave_avx512(xc + i * iw, iw / 2, ev, ev + q);
                    if (iw % 2 != 0)
                        ev[iw / 2] = xc[i * iw + iw - 1];
                }
                xc = phases;
            }
            evo_dwconv_masked_avx512(yc, g->out_size, xc, off, w + ch * g->k_size, g->k_size, masks,
                                     bias != NULL ? bias[ch] : 0.0f, act);
            evo_act_apply_unfused(act, yc, (size_t)g->out_size);
        }
}
#endif

/* ---------------------------------------------------------------- im2col */

/* Columns p0 .. p0+np of the group's im2col matrix (rows: input channel of
 * the group x kernel position; columns: output positions) into col. x is the
 * group's first input channel. */
static void conv_im2col(const evo_conv_geom *g, const float *x, int64_t p0, int64_t np, float *col)
{
    const int64_t o1n = g->out[1], o2n = g->out[2];
    float *row = col;
    for (int64_t c = 0; c < g->cg; c++) {
        const float *xc = x + c * g->in_size;
        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
            for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                for (int64_t k2 = 0; k2 < g->k[2]; k2++, row += np) {
                    int64_t o2 = p0 % o2n, o1 = (p0 / o2n) % o1n, o0 = p0 / (o2n * o1n);
                    float *dst = row;
                    for (int64_t left = np; left > 0;) {
                        const int64_t run = conv_min(o2n - o2, left);
                        const int64_t i0 = o0 * g->stride[0] - g->pad_b[0] + k0 * g->dil[0];
                        const int64_t i1 = o1 * g->stride[1] - g->pad_b[1] + k1 * g->dil[1];
                        if (i0 < 0 || i0 >= g->in[0] || i1 < 0 || i1 >= g->in[1]) {
                            memset(dst, 0, (size_t)run * sizeof(float));
                        } else {
                            const float *src = xc + (i0 * g->in[1] + i1) * g->in[2];
                            const int64_t s = g->stride[2];
                            const int64_t base = o2 * s - g->pad_b[2] + k2 * g->dil[2];
                            int64_t lo, hi;
                            conv_valid_run(base, s, g->in[2], run, &lo, &hi);
                            memset(dst, 0, (size_t)lo * sizeof(float));
                            if (s == 1)
                                memcpy(dst + lo, src + base + lo,
                                       (size_t)(hi - lo) * sizeof(float));
                            else
                                for (int64_t t = lo; t < hi; t++)
                                    dst[t] = src[base + t * s];
                            memset(dst + hi, 0, (size_t)(run - hi) * sizeof(float));
                        }
                        dst += run;
                        left -= run;
                        o2 = 0;
                        if (++o1 == o1n) {
                            o1 = 0;
                            o0++;
                        }
                    }
                }
    }
}

/* conv_im2col for the common case, 2-D (or 1-D) with a chunk of whole output
 * rows: the in-bounds output columns of a kernel column depend only on that
 * column, so they are found once per im2col row instead of once per output
 * row, and short runs are copied inline. False if the case does not apply. */
static bool conv_im2col_rows(const evo_conv_geom *g, const float *x, int64_t p0, int64_t np,
                             float *col)
{
    const int64_t o2n = g->out[2];
    if (g->in[0] != 1 || g->k[0] != 1 || p0 % o2n != 0 || np % o2n != 0)
        return false;
    const int64_t r0 = p0 / o2n, nrows = np / o2n, s1 = g->stride[1], s2 = g->stride[2];
    float *row = col;
    for (int64_t c = 0; c < g->cg; c++) {
        const float *xc = x + c * g->in_size;
        for (int64_t k1 = 0; k1 < g->k[1]; k1++)
            for (int64_t k2 = 0; k2 < g->k[2]; k2++, row += np) {
                const int64_t base = k2 * g->dil[2] - g->pad_b[2];
                int64_t lo, hi;
                conv_valid_run(base, s2, g->in[2], o2n, &lo, &hi);
                float *dst = row;
                for (int64_t r = 0; r < nrows; r++, dst += o2n) {
                    const int64_t i1 = (r0 + r) * s1 - g->pad_b[1] + k1 * g->dil[1];
                    if (i1 < 0 || i1 >= g->in[1]) {
                        conv_zero(dst, o2n);
                        continue;
                    }
                    const float *src = xc + i1 * g->in[2] + base;
                    conv_zero(dst, lo);
                    if (s2 == 1)
                        conv_copy(dst + lo, src + lo, hi - lo);
                    else
                        for (int64_t t = lo; t < hi; t++)
                            dst[t] = src[t * s2];
                    conv_zero(dst + hi, o2n - hi);
                }
            }
    }
    return true;
}

/* ---------------------------------------------------------------- direct small-K kernels */

#if defined(EVO_HAVE_X86)
/* A 2-D 3x3 conv, stride 2, dilation 1, one group, few channels: the
 * direct kernel evo_conv3x3s2_avx512 applies. With K = 9 C small the
 * implicit path's set-up (phase split, tables) is as long as its
 * arithmetic (measured on tiny_vww_mbv1's and mobilenet_v2's stems, C = 3). */
static bool conv_s2stem_ok(const evo_conv_geom *g)
{
    return g->nsp == 2 && g->group == 1 && g->cg <= EVO_CONV3X3S2_MAX_C &&
           g->m <= EVO_CONV3X3S2_MAX_M && g->k[1] == 3 && g->k[2] == 3 && g->stride[1] == 2 &&
           g->stride[2] == 2 && g->dil[1] == 1 && g->dil[2] == 1;
}

/* A pointwise conv of one group with a short reduction: the direct kernel
 * evo_conv1x1_smallk_avx512 applies (the SGEMM would pack as many bytes as
 * it computes with). */
static bool conv_pw_smallk_ok(const evo_conv_geom *g)
{
    return conv_is_pointwise(g) && g->group == 1 && g->c <= EVO_CONV1X1_SMALLK_MAX_K &&
           (g->m + 7) / 8 * 8 * g->c <= EVO_CONV1X1_SMALLK_MAX_W;
}
#endif

/* ---------------------------------------------------------------- implicit GEMM */

/* Largest zero-padded input (one group) the implicit path copies: it is
 * re-read once per 8 output channels, so it should stay in L2. */
#ifndef CONV_IMPLICIT_BYTES
#define CONV_IMPLICIT_BYTES ((int64_t)1 << 20)
#endif

/* Layout of the implicit path's source planes. Stride 1: one zero-padded
 * plane per input channel. Stride 2: the padded plane split into its four
 * phases (even/odd rows x even/odd columns), each prow x pcol, so that the
 * stride-2 conv reads every phase with stride 1. Either way output (r, c)
 * is flat position t = r * pcol + c, and reduction index k = (ch, kh, kw)
 * reads the source planes at t + tab[k]. */
typedef struct conv_impl_layout {
    int64_t s, prow, pcol, plane, chan; /* chan: floats per input channel */
    int64_t flat_n, ntiles;             /* flat positions up to the last output */
} conv_impl_layout;

static conv_impl_layout conv_impl_layout_of(const evo_conv_geom *g)
{
    conv_impl_layout l;
    const int64_t ph = g->in[1] + g->pad_b[1] + g->pad_e[1];
    const int64_t pw = g->in[2] + g->pad_b[2] + g->pad_e[2];
    l.s = g->stride[2];
    l.prow = (ph + l.s - 1) / l.s;
    l.pcol = (pw + l.s - 1) / l.s;
    l.plane = l.prow * l.pcol;
    l.chan = l.plane * l.s * l.s;
    l.flat_n = (g->out[1] - 1) * l.pcol + g->out[2];
    l.ntiles = (l.flat_n + EVO_SGEMM_NR_AVX512 - 1) / EVO_SGEMM_NR_AVX512;
    return l;
}

/* 2-D (or 1-D) convolutions with strides 1 or 2 (the same in both dims),
 * not depthwise, whose padded input fits CONV_IMPLICIT_BYTES: the AVX-512
 * implicit-GEMM path applies. */
static bool conv_implicit_ok(const evo_conv_geom *g)
{
    if (g->in[0] != 1 || g->k[0] != 1 || g->stride[1] != g->stride[2] ||
        (g->stride[2] != 1 && g->stride[2] != 2) || conv_is_depthwise(g) || conv_is_pointwise(g))
        return false;
    return g->cg * conv_impl_layout_of(g).chan <= CONV_IMPLICIT_BYTES / (int64_t)sizeof(float);
}

/* Scratch floats of the implicit path, in order: the source planes of one
 * group plus 64 floats of slack (the last tile reads up to 31 floats past
 * the last output's window), the K offsets and the tile descriptors. */
static int64_t conv_implicit_floats(const evo_conv_geom *g, int64_t *tab_off, int64_t *tiles_off)
{
    const conv_impl_layout l = conv_impl_layout_of(g);
    const int64_t k = g->cg * g->k_size;
    int64_t n = (g->cg * l.chan + 64 + 15) / 16 * 16;
    *tab_off = n;
    n += (k + 15) / 16 * 16;
    *tiles_off = n;
    return n + (l.ntiles * (int64_t)sizeof(evo_conv_tile) / (int64_t)sizeof(float) + 15) / 16 * 16;
}

#if defined(EVO_HAVE_X86)
/* Describe every 32-wide tile of the flat run: which lanes are outputs
 * (column below ow, position below flat_n) and where their outputs start. */
static void conv_impl_tiles(const evo_conv_geom *g, const conv_impl_layout *l, evo_conv_tile *tiles)
{
    const int64_t ow = g->out[2];
    int64_t r = 0, col = 0; /* row and column of flat position t */
    for (int64_t t = 0; t < l->ntiles * 32; t += 16) {
        evo_conv_tile *tl = &tiles[t / 32];
        const int h = (int)((t / 16) % 2);
        uint32_t valid = 0;
        int64_t off = -1;
        for (int64_t j = 0, rr = r, cc = col; j < 16 && t + j < l->flat_n;) {
            if (cc < ow) {
                const int64_t run = conv_min(ow - cc, conv_min(16 - j, l->flat_n - t - j));
                valid |= ((1u << run) - 1u) << j;
                if (off < 0)
                    off = rr * ow + cc;
                j += run;
                cc += run;
            } else {
                j += l->pcol - cc;
                cc = 0;
                rr++;
            }
        }
        const int nvalid = __builtin_popcount(valid); /* x86-only code: gcc and clang */
        tl->valid[h] = (uint16_t)valid;
        tl->store[h] = (uint16_t)((1u << nvalid) - 1u);
        tl->off[h] = (int32_t)(off < 0 ? 0 : off);
        for (col += 16; col >= l->pcol; col -= l->pcol)
            r++;
    }
}

/* Fill the source planes of one group (see conv_impl_layout) from its input
 * channels xg, every float written once (no memset of the whole buffer). */
static void conv_impl_fill(const evo_conv_geom *g, const conv_impl_layout *l, const float *xg,
                           float *xpad)
{
    const int64_t ih_n = g->in[1], iw_n = g->in[2], pt = g->pad_b[1], pl = g->pad_b[2];
    const int64_t pr = l->pcol - pl - iw_n; /* right zeros of a padded row (stride 1) */
    /* Stride 2: rows of a row phase no tap reads (odd rows of a 1x1 conv)
     * are left unwritten. */
    bool row_used[2] = {l->s == 1, false};
    for (int64_t kh = 0; kh < g->k[1]; kh++)
        row_used[(kh * g->dil[1]) % l->s] = true;
    for (int64_t c = 0; c < g->cg; c++) {
        const float *xc = xg + c * g->in_size;
        float *dc = xpad + c * l->chan;
        for (int64_t p = 0; p < l->s * l->prow; p++) {
            const int64_t ih = p - pt;
            if (l->s == 1) {
                float *d = dc + p * l->pcol;
                if (ih < 0 || ih >= ih_n) {
                    conv_zero(d, l->pcol);
                    continue;
                }
                conv_zero(d, pl);
                conv_copy(d + pl, xc + ih * iw_n, iw_n);
                conv_zero(d + pl + iw_n, pr);
                continue;
            }
            /* Stride 2: padded row p is row p / 2 of phases (p % 2, 0 and 1).
             * Input column 2 i lands in phase pl % 2 at i + pl / 2, column
             * 2 i + 1 in the other phase at i + (pl + 1) / 2. */
            if (!row_used[p % 2])
                continue;
            float *ph[2];
            ph[0] = dc + (p % 2) * 2 * l->plane + (p / 2) * l->pcol;
            ph[1] = ph[0] + l->plane;
            if (ih < 0 || ih >= ih_n) {
                conv_zero(ph[0], l->pcol);
                conv_zero(ph[1], l->pcol);
                continue;
            }
            const int64_t e0 = pl / 2, o0 = (pl + 1) / 2, ne = (iw_n + 1) / 2, no = iw_n / 2;
            float *de = ph[pl % 2], *dodd = ph[(pl + 1) % 2];
            const float *src = xc + ih * iw_n;
            evo_deinterleave_avx512(src, no, de + e0, dodd + o0);
            if (ne > no)
                de[e0 + no] = src[iw_n - 1];
            conv_zero(de, e0);
            conv_zero(de + e0 + ne, l->pcol - e0 - ne);
            conv_zero(dodd, o0);
            conv_zero(dodd + o0 + no, l->pcol - o0 - no);
        }
    }
}

/* Convolution with stride 1 or 2 as an implicit GEMM (AVX-512): each
 * group's input is copied once into its source planes (conv_impl_layout), so
 * that a 32-wide tile of B is one unaligned load per reduction index k: no
 * im2col matrix and no packing. Flat positions in the padding columns are
 * computed and dropped; the kernel packs each tile's valid lanes and
 * stores them straight into Y. */
static void conv_implicit(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                          const evo_act *act, float *y, float *scratch)
{
    const conv_impl_layout l = conv_impl_layout_of(g);
    const int64_t kk = g->cg * g->k_size;
    int64_t tab_off, tiles_off;
    conv_implicit_floats(g, &tab_off, &tiles_off);
    float *xpad = scratch;
    int32_t *tab = (int32_t *)(scratch + tab_off);
    evo_conv_tile *tiles = (evo_conv_tile *)(void *)(scratch + tiles_off);
    for (int64_t c = 0, k = 0; c < g->cg; c++)
        for (int64_t kh = 0; kh < g->k[1]; kh++)
            for (int64_t kw = 0; kw < g->k[2]; kw++, k++) {
                const int64_t dr = kh * g->dil[1], dc = kw * g->dil[2];
                const int64_t phase = (dr % l.s) * l.s + dc % l.s;
                tab[k] = (int32_t)(c * l.chan + phase * l.plane + dr / l.s * l.pcol + dc / l.s);
            }
    conv_impl_tiles(g, &l, tiles);
    /* The slack past the planes is read (into dropped lanes) but never written. */
    conv_zero(xpad + g->cg * l.chan, 64);
    const bool act_in_kernel = act->kind == EVO_ACT_RELU || act->kind == EVO_ACT_CLIP;
    evo_sgemm_tail t = {
        .alpha = 1.0f, .act = act_in_kernel ? act->kind : EVO_ACT_NONE, .lo = act->a, .hi = act->b};
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t grp = 0; grp < g->group; grp++) {
            const float *xg = x + (n * g->c + grp * g->cg) * g->in_size;
            float *yg = y + (n * g->m + grp * g->mg) * g->out_size;
            conv_impl_fill(g, &l, xg, xpad);
            const float *wg = w + grp * g->mg * kk;
            for (int64_t m0 = 0; m0 < g->mg; m0 += EVO_SGEMM_MR_AVX512) {
                const int64_t mr = conv_min(EVO_SGEMM_MR_AVX512, g->mg - m0);
                t.bias_row = bias != NULL ? bias + grp * g->mg + m0 : NULL;
                for (int64_t i = 0; i < l.ntiles; i++)
                    evo_conv_implicit_avx512(kk, wg + m0 * kk, kk, xpad + i * EVO_SGEMM_NR_AVX512,
                                             tab, yg + m0 * g->out_size, g->out_size, mr, &tiles[i],
                                             &t);
            }
            if (!act_in_kernel && act->kind != EVO_ACT_NONE)
                evo_act_apply(act, yg, (size_t)(g->mg * g->out_size));
        }
}
#endif

/* ---------------------------------------------------------------- KM layout */

/* y[m * ldy + p] = bias[m] + sum_k b[k * ldb + p] * wt[k * mm + m] (no act). */
static void conv_km_portable(int64_t kk, const float *b, int64_t ldb, int64_t np, const float *wt,
                             int64_t mm, const float *bias, float *y, int64_t ldy)
{
    for (int64_t m = 0; m < mm; m++) {
        const float bv = bias != NULL ? bias[m] : 0.0f;
        for (int64_t p = 0; p < np; p++)
            y[m * ldy + p] = bv;
    }
    for (int64_t k = 0; k < kk; k++)
        for (int64_t m = 0; m < mm; m++) {
            const float wv = wt[k * mm + m];
            const float *br = b + k * ldb;
            float *ym = y + m * ldy;
            for (int64_t p = 0; p < np; p++)
                ym[p] += wv * br[p];
        }
}

#if defined(EVO_HAVE_X86)
/* The implicit variant of the KM path (AVX-512, 1-D/2-D, not pointwise):
 * the kernel reads taps straight from a zero-padded copy of the input
 * (row(k) = tab[k], positions of one output row at stride s), so no im2col
 * matrix is built. Plane sizes, in floats; false if offsets would not fit
 * int32. */
static bool conv_km_implicit_dims(const evo_conv_geom *g, int64_t *ph, int64_t *pw)
{
    if (g->in[0] != 1 || g->k[0] != 1 || conv_is_pointwise(g))
        return false;
    *ph = g->in[1] + g->pad_b[1] + g->pad_e[1];
    *pw = g->in[2] + g->pad_b[2] + g->pad_e[2];
    return g->c * *ph * *pw < INT32_MAX / 2 && g->c * g->k_size < INT32_MAX / 2;
}

/* Scratch of the implicit KM path: the padded input, the K offsets and
 * the output positions' offsets. */
static size_t conv_km_implicit_bytes(const evo_conv_geom *g)
{
    int64_t ph, pw;
    if (!conv_km_implicit_dims(g, &ph, &pw))
        return 0;
    return (size_t)(g->c * ph * pw) * sizeof(float) + (size_t)(g->c * g->k_size) * 4 +
           (size_t)g->out_size * 4 + 128;
}

static void conv_km_implicit(const evo_conv_geom *g, const float *x, const float *w,
                             const float *bias, const evo_act *act, float *y, float *xpad)
{
    int64_t ph = 0, pw = 0;
    (void)conv_km_implicit_dims(g, &ph, &pw);
    const int64_t k = g->c * g->k_size;
    /* Without padding the taps are read from X where it lies: the copy
     * would move the whole input, 4x what a stride-2 1x1 shortcut reads
     * (resnet8's went 7.1 / 5.3 -> 3.3 / 2.7 us). */
    const bool in_place = ph == g->in[1] && pw == g->in[2];
    const int64_t plane = in_place ? g->in_size : ph * pw;
    int32_t *tab = (int32_t *)(void *)(xpad + g->c * ph * pw);
    for (int64_t c = 0, t = 0; c < g->c; c++)
        for (int64_t a = 0; a < g->k[1]; a++)
            for (int64_t b = 0; b < g->k[2]; b++)
                tab[t++] = (int32_t)(c * plane + a * g->dil[1] * pw + b * g->dil[2]);
    /* Rows that do not split into the kernel's 4-position blocks run in one
     * call, blocks spanning rows (tiny_kws_dscnn's 5-wide stem: 8.1 -> 6.3
     * us), where each row would end in a slow partial block. Whole blocks
     * of 64 channels only: other channel counts take the kernel's blocks
     * for evenly spaced positions (M = 32), and those run row by row. */
    int32_t *pos = NULL;
    if (g->out[2] % 4 != 0 && g->m % 64 == 0) {
        pos = tab + k;
        for (int64_t r = 0, p = 0; r < g->out[1]; r++)
            for (int64_t q = 0; q < g->out[2]; q++, p++)
                pos[p] = (int32_t)(r * g->stride[1] * pw + q * g->stride[2]);
    }
    for (int64_t n = 0; n < g->n; n++) {
        const float *xn = x + n * g->c * g->in_size;
        float *yn = y + n * g->m * g->out_size;
        const float *src = xn;
        if (!in_place) {
            conv_zero(xpad, g->c * plane);
            for (int64_t c = 0; c < g->c; c++)
                for (int64_t r = 0; r < g->in[1]; r++)
                    conv_copy(xpad + c * plane + (r + g->pad_b[1]) * pw + g->pad_b[2],
                              xn + (c * g->in[1] + r) * g->in[2], g->in[2]);
            src = xpad;
        }
        if (pos != NULL)
            evo_conv_km_avx512(k, src, 0, tab, 0, pos, g->out_size, w, g->m, bias, act, yn,
                               g->out_size);
        else
            for (int64_t r = 0; r < g->out[1]; r++)
                evo_conv_km_avx512(k, src + r * g->stride[1] * pw, 0, tab, g->stride[2], NULL,
                                   g->out[2], w, g->m, bias, act, yn + r * g->out[2], g->out_size);
    }
    evo_act_apply_unfused(act, y, (size_t)(g->n * g->m * g->out_size));
}
#endif

/* Conv with W in the EVO_CONV_W_KM layout (group 1): the same im2col
 * columns as the general path (none for pointwise), times W_km, with a
 * kernel that vectorizes over the output channels. */
static void conv_km(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                    const evo_act *act, float *y, float *col)
{
    const bool pointwise = conv_is_pointwise(g);
    const int64_t k = g->c * g->k_size;
    const int64_t np_max = pointwise ? g->out_size : conv_im2col_cols(g, k);
    bool act_done = false;
    for (int64_t n = 0; n < g->n; n++) {
        const float *xn = x + n * g->c * g->in_size;
        float *yn = y + n * g->m * g->out_size;
        for (int64_t p0 = 0; p0 < g->out_size; p0 += np_max) {
            const int64_t np = conv_min(np_max, g->out_size - p0);
            const float *b = xn + p0;
            int64_t ldb = g->in_size;
            if (!pointwise) {
                if (!conv_im2col_rows(g, xn, p0, np, col))
                    conv_im2col(g, xn, p0, np, col);
                b = col;
                ldb = np;
            }
#if defined(EVO_HAVE_X86)
            if (evo_cpu_use_avx512()) {
                evo_conv_km_avx512(k, b, ldb, NULL, 1, NULL, np, w, g->m, bias, act, yn + p0,
                                   g->out_size);
                act_done = act->kind == EVO_ACT_RELU || act->kind == EVO_ACT_CLIP;
                continue;
            }
            if (evo_cpu_use_avx2()) {
                evo_conv_km_avx2(k, b, ldb, np, w, g->m, bias, act, yn + p0, g->out_size);
                act_done = act->kind == EVO_ACT_RELU || act->kind == EVO_ACT_CLIP;
                continue;
            }
#endif
            conv_km_portable(k, b, ldb, np, w, g->m, bias, yn + p0, g->out_size);
        }
    }
    if (!act_done && act->kind != EVO_ACT_NONE)
        evo_act_apply(act, y, (size_t)(g->n * g->m * g->out_size));
}

size_t evo_conv_fast_scratch(const evo_conv_geom *g)
{
    if (g->w_wino)
        return evo_conv_wino_scratch(g);
    if (g->w_km) {
        if (conv_is_pointwise(g))
            return 0;
        const int64_t k = g->c * g->k_size;
        size_t bytes = (size_t)(k * conv_im2col_cols(g, k)) * sizeof(float) + 64;
#if defined(EVO_HAVE_X86)
        const size_t ib = conv_km_implicit_bytes(g); /* or the implicit path */
        bytes = ib > bytes ? ib : bytes;
#endif
        return bytes;
    }
    if (conv_is_depthwise(g)) { /* a padded plane and flat rows, if needed */
        int64_t flat_off;
        const int64_t n = conv_dw_scratch_floats(g, &flat_off);
        size_t bytes = n == 0 ? 0 : (size_t)n * sizeof(float) + 64;
        if (conv_dw_masked_ok(g)) { /* or the masked path, decided at run time */
            int64_t off_at, ph_at;
            const size_t mb = (size_t)conv_dw_masked_bytes(g, &off_at, &ph_at) + 64;
            bytes = mb > bytes ? mb : bytes;
        }
#if defined(EVO_HAVE_X86)
        if (conv_dw_cv_ok(g)) { /* or the channel-vectorized path */
            const size_t cb = evo_dwconv_cv_scratch_floats(g) * sizeof(float) + 64;
            bytes = cb > bytes ? cb : bytes;
        }
        if (conv_dw3_ok(g)) { /* or the 3x3 row path: its zero row */
            const size_t zb = (size_t)g->in[2] * sizeof(float) + 64;
            bytes = zb > bytes ? zb : bytes;
        }
#endif
        return bytes;
    }
    if (conv_is_pointwise(g))
        return evo_sgemm_scratch_bytes(g->mg, g->out_size, g->cg);
    const int64_t k = g->cg * g->k_size;
    const int64_t np = conv_im2col_cols(g, k);
    size_t bytes = (size_t)(k * np) * sizeof(float) + 64 + evo_sgemm_scratch_bytes(g->mg, np, k);
    /* The implicit path may run instead (decided at run time). */
    if (conv_implicit_ok(g)) {
        int64_t tab_off, tiles_off;
        const size_t ib =
            (size_t)conv_implicit_floats(g, &tab_off, &tiles_off) * sizeof(float) + 64;
        bytes = ib > bytes ? ib : bytes;
    }
    return bytes;
}

void evo_conv_fast(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                   const evo_act *act, float *y, void *scratch, size_t scratch_bytes)
{
    if (g->w_wino) {
        evo_conv_wino(g, x, w, bias, act, y, scratch);
        return;
    }
    if (g->w_km) {
#if defined(EVO_HAVE_X86)
        if (evo_cpu_use_avx512() && conv_km_implicit_bytes(g) != 0) {
            conv_km_implicit(g, x, w, bias, act, y, conv_align64(scratch));
            return;
        }
#endif
        conv_km(g, x, w, bias, act, y, conv_is_pointwise(g) ? NULL : conv_align64(scratch));
        return;
    }
    if (conv_is_depthwise(g)) {
#if defined(EVO_HAVE_X86)
        if (evo_cpu_use_avx512() && conv_dw3_ok(g) && conv_dw3_first(g)) {
            conv_dw3(g, x, w, bias, act, y, conv_align64(scratch));
            return;
        }
        if (evo_cpu_use_avx512() && conv_dw_cv_ok(g)) {
            evo_dwconv_cv_avx512(g, x, w, bias, act, y, conv_align64(scratch));
            evo_act_apply_unfused(act, y, (size_t)(g->n * g->m * g->out_size));
            return;
        }
        if (evo_cpu_use_avx512() && conv_dw3_ok(g)) {
            conv_dw3(g, x, w, bias, act, y, conv_align64(scratch));
            return;
        }
        if (evo_cpu_use_avx512() && conv_dw_masked_ok(g)) {
            conv_dw_masked(g, x, w, bias, act, y, (unsigned char *)conv_align64(scratch));
            return;
        }
#endif
        conv_depthwise(g, x, w, bias, act, y, conv_align64(scratch));
        return;
    }
#if defined(EVO_HAVE_X86)
    const bool stem = conv_s2stem_ok(g);
    if (evo_cpu_use_avx512() && (stem || conv_pw_smallk_ok(g))) {
        (stem ? evo_conv3x3s2_avx512 : evo_conv1x1_smallk_avx512)(g, x, w, bias, act, y);
        evo_act_apply_unfused(act, y, (size_t)(g->n * g->m * g->out_size));
        return;
    }
    if (evo_cpu_use_avx512() && conv_implicit_ok(g)) {
        conv_implicit(g, x, w, bias, act, y, conv_align64(scratch));
        return;
    }
#endif
    const bool pointwise = conv_is_pointwise(g);
    const int64_t k = g->cg * g->k_size;
    const int64_t np_max = pointwise ? g->out_size : conv_im2col_cols(g, k);
    float *col = conv_align64(scratch);
    void *gemm_scratch = pointwise ? scratch : (void *)(col + k * np_max);
    size_t gemm_bytes = pointwise
                            ? scratch_bytes
                            : scratch_bytes - (size_t)((char *)gemm_scratch - (char *)scratch);
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t grp = 0; grp < g->group; grp++) {
            const float *xg = x + (n * g->c + grp * g->cg) * g->in_size;
            float *yg = y + (n * g->m + grp * g->mg) * g->out_size;
            const evo_gemm_epilogue epi = {
                .bias = bias != NULL ? bias + grp * g->mg : NULL,
                .bias_mode = EVO_GEMM_BIAS_ROW,
                .act = *act,
            };
            evo_sgemm_args ga = {
                .m = g->mg,
                .k = k,
                .alpha = 1.0f,
                .beta = 0.0f,
                .a = w + grp * g->mg * k,
                .lda = k,
                .ldc = g->out_size,
                .epi = &epi,
            };
            if (pointwise) {
                ga.n = g->out_size;
                ga.b = xg;
                ga.ldb = g->in_size;
                ga.c = yg;
                evo_sgemm(&ga, gemm_scratch, gemm_bytes);
                continue;
            }
            for (int64_t p0 = 0; p0 < g->out_size; p0 += np_max) {
                const int64_t np = conv_min(np_max, g->out_size - p0);
                if (!conv_im2col_rows(g, xg, p0, np, col))
                    conv_im2col(g, xg, p0, np, col);
                ga.n = np;
                ga.b = col;
                ga.ldb = np;
                ga.c = yg + p0;
                evo_sgemm(&ga, gemm_scratch, gemm_bytes);
            }
        }
}

/* ---------------------------------------------------------------- ConvTranspose */

/* Scatter-add columns p0 .. p0+np (input positions) of the group's column
 * matrix (rows: output channel of the group x kernel position) into y, the
 * group's first output channel. */
static void conv_col2im(const evo_conv_geom *g, const float *col, int64_t p0, int64_t np, float *y)
{
    const int64_t i1n = g->in[1], i2n = g->in[2];
    const float *row = col;
    for (int64_t m = 0; m < g->mg; m++) {
        float *yc = y + m * g->out_size;
        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
            for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                for (int64_t k2 = 0; k2 < g->k[2]; k2++, row += np) {
                    int64_t i2 = p0 % i2n, i1 = (p0 / i2n) % i1n, i0 = p0 / (i2n * i1n);
                    const float *src = row;
                    for (int64_t left = np; left > 0;) {
                        const int64_t run = conv_min(i2n - i2, left);
                        const int64_t o0 = i0 * g->stride[0] - g->pad_b[0] + k0 * g->dil[0];
                        const int64_t o1 = i1 * g->stride[1] - g->pad_b[1] + k1 * g->dil[1];
                        if (o0 >= 0 && o0 < g->out[0] && o1 >= 0 && o1 < g->out[1]) {
                            float *dst = yc + (o0 * g->out[1] + o1) * g->out[2];
                            const int64_t s = g->stride[2];
                            const int64_t base = i2 * s - g->pad_b[2] + k2 * g->dil[2];
                            int64_t lo, hi;
                            conv_valid_run(base, s, g->out[2], run, &lo, &hi);
                            for (int64_t t = lo; t < hi; t++)
                                dst[base + t * s] += src[t];
                        }
                        src += run;
                        left -= run;
                        i2 = 0;
                        if (++i1 == i1n) {
                            i1 = 0;
                            i0++;
                        }
                    }
                }
    }
}

size_t evo_conv_transpose_fast_scratch(const evo_conv_geom *g)
{
    const int64_t rows = g->mg * g->k_size;
    const int64_t np = conv_chunk_cols(rows, g->in_size);
    return (size_t)(rows * np) * sizeof(float) + 64 + evo_sgemm_scratch_bytes(rows, np, g->cg);
}

void evo_conv_transpose_fast(const evo_conv_geom *g, const float *x, const float *w,
                             const float *bias, const evo_act *act, float *y, void *scratch,
                             size_t scratch_bytes)
{
    const int64_t rows = g->mg * g->k_size;
    const int64_t np_max = conv_chunk_cols(rows, g->in_size);
    float *col = conv_align64(scratch);
    void *gemm_scratch = col + rows * np_max;
    const size_t gemm_bytes = scratch_bytes - (size_t)((char *)gemm_scratch - (char *)scratch);
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t grp = 0; grp < g->group; grp++) {
            const float *xg = x + (n * g->c + grp * g->cg) * g->in_size;
            float *yg = y + (n * g->m + grp * g->mg) * g->out_size;
            for (int64_t m = 0; m < g->mg; m++) {
                const float b = bias != NULL ? bias[grp * g->mg + m] : 0.0f;
                float *yc = yg + m * g->out_size;
                for (int64_t i = 0; i < g->out_size; i++)
                    yc[i] = b;
            }
            /* W is (C, M/group, kernel...): the group's rows, read as
             * (C/group) x (M/group * kernel), transposed. */
            evo_sgemm_args ga = {
                .trans_a = true,
                .m = rows,
                .k = g->cg,
                .alpha = 1.0f,
                .beta = 0.0f,
                .a = w + grp * g->cg * rows,
                .lda = rows,
                .ldb = g->in_size,
                .c = col,
            };
            for (int64_t p0 = 0; p0 < g->in_size; p0 += np_max) {
                const int64_t np = conv_min(np_max, g->in_size - p0);
                ga.n = np;
                ga.b = xg + p0;
                ga.ldc = np;
                evo_sgemm(&ga, gemm_scratch, gemm_bytes);
                conv_col2im(g, col, p0, np, yg);
            }
            if (act->kind != EVO_ACT_NONE)
                evo_act_apply(act, yg, (size_t)(g->mg * g->out_size));
        }
}
