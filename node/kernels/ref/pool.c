/*
 * Pooling: MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool (ONNX
 * opsets 7..19 semantics).
 *
 * Windowed pools handle 1, 2 or 3 spatial dims with one loop nest: fewer
 * spatial dims are padded in front with size-1 dims (kernel 1, stride 1), so
 * the innermost loop always runs along the last, contiguous dim. For each
 * output element the range of kernel taps that land inside the input is
 * computed once per dim, so the hot loop neither tests bounds nor does index
 * arithmetic beyond a pointer step.
 *
 * Output size (explicit pads, NOTSET):
 *   floor mode: (in + pb + pe - ek) / s + 1, ek = (k - 1) * d + 1
 *   ceil mode:  ceil((in + pb + pe - ek) / s) + 1, minus one if the last
 *               window would start in the end padding (ONNX reference and
 *               PyTorch rule: every window starts inside the input or the
 *               begin padding).
 * SAME_UPPER/SAME_LOWER: out = ceil(in / s) and the total padding
 * max(0, (out - 1) * s + ek - in) is split with the odd element at the end
 * (UPPER) or at the beginning (LOWER). VALID: no padding, floor mode.
 */
#include <float.h>
#include <string.h>

#include "evo/op.h"
#include "kernels/cpu.h"
#include "kpool_util.h"

#if defined(EVO_HAVE_X86)
/* x86/pool_avx2.c: the interior of pool_max2d_f32 for stride 1 or 2, eight
 * outputs at a time; returns how many of the n outputs it wrote. */
int64_t evo_maxpool_rows_avx2(float *y, int64_t n, const float *x, int64_t row, int64_t rows,
                              int64_t k, int64_t stride, int64_t dil);
#endif

#define POOL_MAX_SP 3 /* spatial dims evo pools over */

enum { POOL_PAD_NOTSET = 0, POOL_PAD_SAME_UPPER, POOL_PAD_SAME_LOWER, POOL_PAD_VALID };

typedef struct pool_params {
    int32_t n_sp; /* spatial dims, from kernel_shape */
    int32_t auto_pad;
    int32_t ceil_mode;
    int32_t count_include_pad; /* AveragePool */
    int32_t storage_order;     /* MaxPool Indices: 0 row major, 1 column major */
    int32_t kernel[POOL_MAX_SP];
    int32_t stride[POOL_MAX_SP];
    int32_t dilation[POOL_MAX_SP];
    int32_t pad_begin[POOL_MAX_SP];
    int32_t pad_end[POOL_MAX_SP];
} pool_params;
_Static_assert(sizeof(pool_params) <= EVO_PARAMS_MAX, "pool_params too large");

/* Geometry of one pooling for concrete input dims, always in 3 spatial dims
 * (leading ones padded with 1). Computed identically by infer and eval. */
typedef struct pool_geom {
    int64_t in[POOL_MAX_SP], out[POOL_MAX_SP];
    int64_t k[POOL_MAX_SP], s[POOL_MAX_SP], d[POOL_MAX_SP];
    int64_t pb[POOL_MAX_SP], pe[POOL_MAX_SP];
} pool_geom;

/* ---------------------------------------------------------------- parse */

/* Read an optional ints attribute of exactly `want` entries (or absent:
 * every entry becomes def); each entry must be in [minv, INT32_MAX]. */
static evo_status pool_read_ints(const evo_node *node, const char *op, const char *attr,
                                 size_t want, int32_t def, int64_t minv, int32_t *out,
                                 evo_error *err)
{
    int64_t v[2 * EVO_MAX_RANK];
    size_t n = 0;
    evo_status rv = evo_attr_get_ints(node, attr, v, 2 * EVO_MAX_RANK, &n);
    if (rv != EVO_OK)
        return evo_error_set(err, rv == EVO_ERR_LIMIT ? EVO_ERR_PARSE : rv,
                             "%s node '%s': attribute %s must be a list of %zu ints", op,
                             node->name, attr, want);
    if (n == 0) {
        for (size_t i = 0; i < want; i++)
            out[i] = def;
        return EVO_OK;
    }
    if (n != want)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': attribute %s has %zu entries, expected %zu (from "
                             "kernel_shape)",
                             op, node->name, attr, n, want);
    for (size_t i = 0; i < n; i++) {
        if (v[i] < minv || v[i] > INT32_MAX)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "%s node '%s': attribute %s[%zu] = %lld is out of range "
                                 "(%lld..%d)",
                                 op, node->name, attr, i, (long long)v[i], (long long)minv,
                                 (int)INT32_MAX);
        out[i] = (int32_t)v[i];
    }
    return EVO_OK;
}

static evo_status pool_read_flag(const evo_node *node, const char *op, const char *attr,
                                 int32_t *out, evo_error *err)
{
    int64_t v = 0;
    if (evo_attr_get_int(node, attr, 0, &v) != EVO_OK || (v != 0 && v != 1))
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': attribute %s must be 0 or 1", op,
                             node->name, attr);
    *out = (int32_t)v;
    return EVO_OK;
}

static evo_status pool_parse_common(const evo_node *node, pool_params *p, const char *op,
                                    bool is_max, evo_error *err)
{
    int64_t k[EVO_MAX_RANK];
    size_t n = 0;
    evo_status rv = evo_attr_get_ints(node, "kernel_shape", k, EVO_MAX_RANK, &n);
    if (rv != EVO_OK || n == 0)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': attribute kernel_shape (a list of ints) is required",
                             op, node->name);
    if (n > POOL_MAX_SP)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s node '%s': %zu spatial dims; evo pools over at most %d", op,
                             node->name, n, POOL_MAX_SP);
    p->n_sp = (int32_t)n;
    if ((rv = pool_read_ints(node, op, "kernel_shape", n, 1, 1, p->kernel, err)) != EVO_OK ||
        (rv = pool_read_ints(node, op, "strides", n, 1, 1, p->stride, err)) != EVO_OK ||
        (rv = pool_read_ints(node, op, "dilations", n, 1, 1, p->dilation, err)) != EVO_OK)
        return rv;
    int32_t pads[2 * POOL_MAX_SP];
    if ((rv = pool_read_ints(node, op, "pads", 2 * n, 0, 0, pads, err)) != EVO_OK)
        return rv;
    for (size_t i = 0; i < n; i++) {
        p->pad_begin[i] = pads[i];
        p->pad_end[i] = pads[n + i];
    }

    const char *ap = "NOTSET";
    if (evo_attr_get_string(node, "auto_pad", "NOTSET", &ap) != EVO_OK)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': auto_pad must be a string", op,
                             node->name);
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        p->auto_pad = POOL_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        p->auto_pad = POOL_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        p->auto_pad = POOL_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        p->auto_pad = POOL_PAD_VALID;
    else
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s node '%s': auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER "
                             "or VALID",
                             op, node->name, ap);

    if ((rv = pool_read_flag(node, op, "ceil_mode", &p->ceil_mode, err)) != EVO_OK)
        return rv;
    if (is_max)
        return pool_read_flag(node, op, "storage_order", &p->storage_order, err);
    return pool_read_flag(node, op, "count_include_pad", &p->count_include_pad, err);
}

static evo_status pool_parse_max(const evo_node *node, void *params, evo_error *err)
{
    return pool_parse_common(node, params, "MaxPool", true, err);
}

static evo_status pool_parse_avg(const evo_node *node, void *params, evo_error *err)
{
    return pool_parse_common(node, params, "AveragePool", false, err);
}

/* ---------------------------------------------------------------- geometry */

static evo_status pool_geometry(const pool_params *p, const evo_shape *xs, pool_geom *g,
                                const char *op, evo_error *err)
{
    int32_t lead = POOL_MAX_SP - p->n_sp;
    for (int32_t i = 0; i < POOL_MAX_SP; i++) {
        if (i < lead) {
            g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
            g->pb[i] = g->pe[i] = 0;
            continue;
        }
        int32_t j = i - lead;
        int64_t in = xs->dims[2 + j], k = p->kernel[j], s = p->stride[j], d = p->dilation[j];
        int64_t ek = (k - 1) * d + 1; /* < 2^62: both factors < 2^31 */
        int64_t pb, pe, out;
        if (p->auto_pad == POOL_PAD_SAME_UPPER || p->auto_pad == POOL_PAD_SAME_LOWER) {
            out = (in + s - 1) / s;
            int64_t total = out > 0 ? (out - 1) * s + ek - in : 0;
            if (total < 0)
                total = 0;
            pb = p->auto_pad == POOL_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            pb = p->auto_pad == POOL_PAD_VALID ? 0 : p->pad_begin[j];
            pe = p->auto_pad == POOL_PAD_VALID ? 0 : p->pad_end[j];
            int64_t span = in + pb + pe - ek;
            if (span < 0) {
                out = 0;
            } else if (p->ceil_mode && p->auto_pad == POOL_PAD_NOTSET) {
                out = (span + s - 1) / s + 1;
                if ((out - 1) * s >= in + pb)
                    out--;
            } else {
                out = span / s + 1;
            }
        }
        if (out < 1)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "%s: kernel of effective size %lld does not fit spatial dim %d "
                                 "of size %lld with pads %lld+%lld",
                                 op, (long long)ek, (int)(2 + j), (long long)in, (long long)pb,
                                 (long long)pe);
        if (out > EVO_MAX_DIM)
            return evo_error_set(err, EVO_ERR_LIMIT, "%s: output dim %d would be %lld", op,
                                 (int)(2 + j), (long long)out);
        g->in[i] = in;
        g->out[i] = out;
        g->k[i] = k;
        g->s[i] = s;
        g->d[i] = d;
        g->pb[i] = pb;
        g->pe[i] = pe;
    }
    return EVO_OK;
}

/* Kernel taps j in [*a, *b) of a window starting at `start` with k taps
 * spaced d apart that fall inside [0, n). */
static inline void pool_taps(int64_t start, int64_t k, int64_t d, int64_t n, int64_t *a, int64_t *b)
{
    int64_t lo = start < 0 ? (-start + d - 1) / d : 0;
    int64_t hi = start < n ? (n - start + d - 1) / d : 0;
    if (hi > k)
        hi = k;
    if (hi < lo)
        hi = lo;
    *a = lo;
    *b = hi;
}

/* ---------------------------------------------------------------- infer */

/* Params come from parse on the host, but a compact model (.evm) stores
 * them as bytes a hostile file controls: infer re-checks every field the
 * geometry divides by or indexes with. */
static evo_status pool_check_params(const pool_params *p, const char *op, evo_error *err)
{
    if (p->n_sp < 1 || p->n_sp > POOL_MAX_SP || p->auto_pad < POOL_PAD_NOTSET ||
        p->auto_pad > POOL_PAD_VALID || (p->ceil_mode & ~1) != 0 ||
        (p->count_include_pad & ~1) != 0 || (p->storage_order & ~1) != 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: invalid pooling parameters", op);
    for (int32_t j = 0; j < p->n_sp; j++)
        if (p->kernel[j] < 1 || p->stride[j] < 1 || p->dilation[j] < 1 || p->pad_begin[j] < 0 ||
            p->pad_end[j] < 0)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "%s: invalid kernel, stride, dilation or pad in spatial dim %d",
                                 op, (int)j);
    return EVO_OK;
}

static evo_status pool_infer_common(const evo_kctx *c, const evo_op_def *def, bool is_max)
{
    const pool_params *p = c->params;
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    if ((rv = pool_check_params(p, def->name, c->err)) != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, def->name, "X", x)) != EVO_OK)
        return rv;
    bool int_ok = is_max && (x->dtype == EVO_DT_INT8 || x->dtype == EVO_DT_UINT8);
    if (x->dtype != EVO_DT_FLOAT32 && !int_ok)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED, "%s: input X has dtype %s; supported: %s",
                             def->name, evo_dtype_name(x->dtype),
                             is_max ? "float32, int8, uint8" : "float32");
    if (x->shape.rank != 2 + p->n_sp)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: kernel_shape has %d dims, so input X must have rank %d "
                             "(N, C, spatial), got rank %d",
                             def->name, (int)p->n_sp, (int)(2 + p->n_sp), (int)x->shape.rank);
    pool_geom g;
    if ((rv = pool_geometry(p, &x->shape, &g, def->name, c->err)) != EVO_OK)
        return rv;
    evo_shape ys = x->shape;
    for (int32_t j = 0; j < p->n_sp; j++)
        ys.dims[2 + j] = (int32_t)g.out[POOL_MAX_SP - p->n_sp + j];
    if ((rv = kpool_set_out(c, def->name, c->out[0], x->dtype, &ys)) != EVO_OK)
        return rv;
    if (is_max && c->n_out > 1 && c->out[1] != NULL)
        return kpool_set_out(c, def->name, c->out[1], EVO_DT_INT64, &ys);
    return EVO_OK;
}

static evo_status pool_infer_max(const evo_kctx *c);
static evo_status pool_infer_avg(const evo_kctx *c);

static void pool_cost(const evo_kctx *c, evo_op_cost *cost)
{
    const pool_params *p = c->params;
    uint64_t taps = 1;
    for (int32_t j = 0; j < p->n_sp; j++)
        taps = kpool_sat_mul(taps, (uint64_t)p->kernel[j]);
    cost->flops = kpool_sat_mul(kpool_numel_u(c->out[0]), taps);
}

/* ---------------------------------------------------------------- eval */

/* MaxPool over `planes` (N * C) planes for element type T. `lowest` is what
 * a window without any input element yields (only possible with dilations
 * larger than the input); its index is -1. */
#define POOL_DEFINE_MAX(NAME, T, LOWEST)                                                           \
    static void NAME(const pool_geom *g, int64_t planes, const T *x, T *y, int64_t *idx,           \
                     int32_t storage_order)                                                        \
    {                                                                                              \
        const int64_t D0 = g->in[0], D1 = g->in[1], D2 = g->in[2];                                 \
        const int64_t plane = D0 * D1 * D2, oplane = g->out[0] * g->out[1] * g->out[2];            \
        for (int64_t pl = 0; pl < planes; pl++) {                                                  \
            const T *xp = x + pl * plane;                                                          \
            T *yp = y + pl * oplane;                                                               \
            int64_t *ip = idx != NULL ? idx + pl * oplane : NULL;                                  \
            for (int64_t o0 = 0; o0 < g->out[0]; o0++) {                                           \
                int64_t s0 = o0 * g->s[0] - g->pb[0], a0, b0;                                      \
                pool_taps(s0, g->k[0], g->d[0], D0, &a0, &b0);                                     \
                for (int64_t o1 = 0; o1 < g->out[1]; o1++) {                                       \
                    int64_t s1 = o1 * g->s[1] - g->pb[1], a1, b1;                                  \
                    pool_taps(s1, g->k[1], g->d[1], D1, &a1, &b1);                                 \
                    for (int64_t o2 = 0; o2 < g->out[2]; o2++) {                                   \
                        int64_t s2 = o2 * g->s[2] - g->pb[2], a2, b2;                              \
                        pool_taps(s2, g->k[2], g->d[2], D2, &a2, &b2);                             \
                        T best = LOWEST;                                                           \
                        int64_t bi = -1;                                                           \
                        for (int64_t j0 = a0; j0 < b0; j0++) {                                     \
                            int64_t r0 = (s0 + j0 * g->d[0]) * D1;                                 \
                            for (int64_t j1 = a1; j1 < b1; j1++) {                                 \
                                int64_t row = (r0 + s1 + j1 * g->d[1]) * D2 + s2;                  \
                                const T *q = xp + row + a2 * g->d[2];                              \
                                for (int64_t j2 = a2; j2 < b2; j2++, q += g->d[2]) {               \
                                    if (bi < 0 || *q > best) {                                     \
                                        best = *q;                                                 \
                                        bi = q - xp;                                               \
                                    }                                                              \
                                }                                                                  \
                            }                                                                      \
                        }                                                                          \
                        *yp++ = best;                                                              \
                        if (ip != NULL)                                                            \
                            *ip++ = pool_flat_index(bi, pl, plane, D0, D1, D2, storage_order);     \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

/* The Indices value for in-plane offset bi of plane pl: the flat index into
 * X, with the spatial part in row-major or (storage_order 1) column-major
 * order as in the ONNX reference: h + w * H (+ d * H * W). */
static inline int64_t pool_flat_index(int64_t bi, int64_t pl, int64_t plane, int64_t D0, int64_t D1,
                                      int64_t D2, int32_t storage_order)
{
    if (bi < 0)
        return -1;
    if (storage_order == 0)
        return pl * plane + bi;
    int64_t i0 = bi / (D1 * D2), r = bi % (D1 * D2);
    int64_t i1 = r / D2, i2 = r % D2;
    /* the padded leading dims are 1, so this is column-major over the real ones */
    return pl * plane + i0 + i1 * D0 + i2 * D0 * D1;
}

POOL_DEFINE_MAX(pool_max_f32, float, -FLT_MAX)
POOL_DEFINE_MAX(pool_max_i8, int8_t, INT8_MIN)
POOL_DEFINE_MAX(pool_max_u8, uint8_t, 0)

/* The float MaxPool without Indices over at most 2 spatial dims (the CNN
 * case). The windowed loop above tests a data-dependent branch per tap and
 * recomputes tap ranges per output, which mispredicts on real images. Here
 * each output row splits into border columns (taps clipped, done one by
 * one) and interior columns whose windows lie inside the row; the interior
 * keeps each output's running max in a register (AVX2: eight outputs). The
 * first tap is assigned and later taps win only when greater, exactly as in
 * pool_max_f32, so the results (NaN included) are identical. */
static void pool_max2d_f32(const pool_geom *g, int64_t planes, const float *x, float *y)
{
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    const int64_t k2 = g->k[2], s2 = g->s[2], d2 = g->d[2], pb2 = g->pb[2];
    const int64_t ek2 = (k2 - 1) * d2 + 1;
    /* Interior columns: o2 * s2 - pb2 >= 0 and o2 * s2 - pb2 + ek2 <= W. */
    int64_t lo = (pb2 + s2 - 1) / s2, hi = W - ek2 + pb2 >= 0 ? (W - ek2 + pb2) / s2 + 1 : 0;
    if (lo > OW)
        lo = OW;
    if (hi > OW)
        hi = OW;
    if (hi < lo)
        hi = lo;
#if defined(EVO_HAVE_X86)
    const bool use_avx2 = evo_cpu_use_avx2() && (s2 == 1 || s2 == 2);
#endif
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * OH * OW;
        for (int64_t o1 = 0; o1 < OH; o1++, yp += OW) {
            const int64_t st1 = o1 * g->s[1] - g->pb[1];
            int64_t a1, b1;
            pool_taps(st1, g->k[1], g->d[1], H, &a1, &b1);
            if (a1 >= b1) { /* no input row under the window */
                for (int64_t o2 = 0; o2 < OW; o2++)
                    yp[o2] = -FLT_MAX;
                continue;
            }
            for (int64_t o2 = 0; o2 < OW; o2++) {
                if (o2 == lo && lo < hi) {
                    o2 = hi - 1; /* interior done below */
                    continue;
                }
                const int64_t st2 = o2 * s2 - pb2;
                int64_t a2, b2;
                pool_taps(st2, k2, d2, W, &a2, &b2);
                float best = -FLT_MAX;
                bool first = true;
                for (int64_t j1 = a1; j1 < b1; j1++) {
                    const float *q = xp + (st1 + j1 * g->d[1]) * W + st2;
                    for (int64_t j2 = a2; j2 < b2; j2++) {
                        const float v = q[j2 * d2];
                        best = first || v > best ? v : best;
                        first = false;
                    }
                }
                yp[o2] = best;
            }
            if (lo >= hi)
                continue;
            const float *xr = xp + (st1 + a1 * g->d[1]) * W + lo * s2 - pb2;
            int64_t t = 0;
#if defined(EVO_HAVE_X86)
            if (use_avx2)
                t = evo_maxpool_rows_avx2(yp + lo, hi - lo, xr, g->d[1] * W, b1 - a1, k2, s2, d2);
#endif
            for (; t < hi - lo; t++) {
                const float *q = xr + t * s2;
                float best = q[0];
                for (int64_t j1 = 0; j1 < b1 - a1; j1++, q += g->d[1] * W)
                    for (int64_t j2 = 0; j2 < k2; j2++) {
                        const float v = q[j2 * d2];
                        best = v > best ? v : best;
                    }
                yp[lo + t] = best;
            }
        }
    }
}

static void pool_avg_f32(const pool_geom *g, int64_t planes, const float *x, float *y,
                         bool include_pad)
{
    const int64_t D0 = g->in[0], D1 = g->in[1], D2 = g->in[2];
    const int64_t plane = D0 * D1 * D2, oplane = g->out[0] * g->out[1] * g->out[2];
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * plane;
        float *yp = y + pl * oplane;
        for (int64_t o0 = 0; o0 < g->out[0]; o0++) {
            int64_t s0 = o0 * g->s[0] - g->pb[0], a0, b0, c0, e0;
            pool_taps(s0, g->k[0], g->d[0], D0, &a0, &b0);
            /* taps inside the padded extent, for count_include_pad */
            pool_taps(s0 + g->pb[0], g->k[0], g->d[0], D0 + g->pb[0] + g->pe[0], &c0, &e0);
            for (int64_t o1 = 0; o1 < g->out[1]; o1++) {
                int64_t s1 = o1 * g->s[1] - g->pb[1], a1, b1, c1, e1;
                pool_taps(s1, g->k[1], g->d[1], D1, &a1, &b1);
                pool_taps(s1 + g->pb[1], g->k[1], g->d[1], D1 + g->pb[1] + g->pe[1], &c1, &e1);
                for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
                    int64_t s2 = o2 * g->s[2] - g->pb[2], a2, b2, c2, e2;
                    pool_taps(s2, g->k[2], g->d[2], D2, &a2, &b2);
                    float sum = 0.0f;
                    for (int64_t j0 = a0; j0 < b0; j0++) {
                        int64_t r0 = (s0 + j0 * g->d[0]) * D1;
                        for (int64_t j1 = a1; j1 < b1; j1++) {
                            const float *q = xp + (r0 + s1 + j1 * g->d[1]) * D2 + s2 + a2 * g->d[2];
                            for (int64_t j2 = a2; j2 < b2; j2++, q += g->d[2])
                                sum += *q;
                        }
                    }
                    int64_t count;
                    if (include_pad) {
                        pool_taps(s2 + g->pb[2], g->k[2], g->d[2], D2 + g->pb[2] + g->pe[2], &c2,
                                  &e2);
                        count = (e0 - c0) * (e1 - c1) * (e2 - c2);
                    } else {
                        count = (b0 - a0) * (b1 - a1) * (b2 - a2);
                    }
                    /* an empty window (dilation skipping the whole input) averages to 0 */
                    *yp++ = count > 0 ? sum / (float)count : 0.0f;
                }
            }
        }
    }
}

static evo_status pool_eval_max(const evo_kctx *c)
{
    const pool_params *p = c->params;
    const evo_tensor *x = c->in[0];
    pool_geom g;
    if (pool_geometry(p, &x->shape, &g, "MaxPool", NULL) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted these shapes */
    int64_t planes = (int64_t)x->shape.dims[0] * x->shape.dims[1];
    int64_t *idx = c->n_out > 1 && c->out[1] != NULL ? c->out[1]->data : NULL;
    switch (x->dtype) {
    case EVO_DT_FLOAT32:
        if (idx == NULL && g.in[0] == 1 && g.out[0] == 1 && g.k[0] == 1 && g.pb[0] == 0 &&
            evo_kernels_forced_path() != EVO_KPATH_REFERENCE)
            pool_max2d_f32(&g, planes, x->data, c->out[0]->data);
        else
            pool_max_f32(&g, planes, x->data, c->out[0]->data, idx, p->storage_order);
        break;
    case EVO_DT_INT8:
        pool_max_i8(&g, planes, x->data, c->out[0]->data, idx, p->storage_order);
        break;
    case EVO_DT_UINT8:
        pool_max_u8(&g, planes, x->data, c->out[0]->data, idx, p->storage_order);
        break;
    default:
        return EVO_ERR_TYPE;
    }
    return EVO_OK;
}

static evo_status pool_eval_avg(const evo_kctx *c)
{
    const pool_params *p = c->params;
    const evo_tensor *x = c->in[0];
    pool_geom g;
    if (pool_geometry(p, &x->shape, &g, "AveragePool", NULL) != EVO_OK)
        return EVO_ERR_INTERNAL;
    int64_t planes = (int64_t)x->shape.dims[0] * x->shape.dims[1];
    pool_avg_f32(&g, planes, x->data, c->out[0]->data, p->count_include_pad != 0);
    return EVO_OK;
}

/* ---------------------------------------------------------------- global pools */

static evo_status pool_infer_global(const evo_kctx *c, const evo_op_def *def)
{
    evo_status rv = evo_op_check_arity(def, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, def->name, "X", x)) != EVO_OK)
        return rv;
    if (x->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: input X has dtype %s; supported: float32", def->name,
                             evo_dtype_name(x->dtype));
    if (x->shape.rank < 3)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: input X must have rank >= 3 (N, C, spatial...), got rank %d",
                             def->name, (int)x->shape.rank);
    if (kpool_prod(&x->shape, 2, x->shape.rank) == 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input X has an empty spatial dim",
                             def->name);
    evo_shape ys = x->shape;
    for (int32_t i = 2; i < ys.rank; i++)
        ys.dims[i] = 1;
    return kpool_set_out(c, def->name, c->out[0], EVO_DT_FLOAT32, &ys);
}

static void pool_cost_global(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_numel_u(c->in[0]);
}

static evo_status pool_eval_global(const evo_kctx *c, bool is_max)
{
    const evo_tensor *x = c->in[0];
    int64_t planes = (int64_t)x->shape.dims[0] * x->shape.dims[1];
    int64_t n = kpool_prod(&x->shape, 2, x->shape.rank);
    const float *xp = x->data;
    float *y = c->out[0]->data;
    for (int64_t pl = 0; pl < planes; pl++, xp += n) {
        float acc = xp[0];
        if (is_max) {
            for (int64_t i = 1; i < n; i++)
                acc = xp[i] > acc ? xp[i] : acc;
        } else {
            /* Eight running sums: one serial chain of float adds would make
             * this latency-bound (evo builds without -ffast-math, so the
             * compiler may not reorder the sum itself). */
            float part[8] = {0};
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
                for (int j = 0; j < 8; j++)
                    part[j] += xp[i + j];
            for (; i < n; i++)
                part[i % 8] += xp[i];
            acc = ((part[0] + part[4]) + (part[1] + part[5])) +
                  ((part[2] + part[6]) + (part[3] + part[7]));
            acc /= (float)n;
        }
        y[pl] = acc;
    }
    return EVO_OK;
}

static evo_status pool_infer_gmax(const evo_kctx *c);
static evo_status pool_infer_gavg(const evo_kctx *c);

static evo_status pool_eval_gmax(const evo_kctx *c)
{
    return pool_eval_global(c, true);
}

static evo_status pool_eval_gavg(const evo_kctx *c)
{
    return pool_eval_global(c, false);
}

/* ---------------------------------------------------------------- definitions */

const evo_op_def evo_op_MaxPool = {
    .name = "MaxPool",
    .domain = "",
    .id = 53,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 2,
    .parse = pool_parse_max,
    .infer = pool_infer_max,
    .cost = pool_cost,
    .eval = pool_eval_max,
};

const evo_op_def evo_op_AveragePool = {
    .name = "AveragePool",
    .domain = "",
    .id = 54,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = pool_parse_avg,
    .infer = pool_infer_avg,
    .cost = pool_cost,
    .eval = pool_eval_avg,
};

const evo_op_def evo_op_GlobalMaxPool = {
    .name = "GlobalMaxPool",
    .domain = "",
    .id = 56,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = pool_infer_gmax,
    .cost = pool_cost_global,
    .eval = pool_eval_gmax,
};

const evo_op_def evo_op_GlobalAveragePool = {
    .name = "GlobalAveragePool",
    .domain = "",
    .id = 55,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = pool_infer_gavg,
    .cost = pool_cost_global,
    .eval = pool_eval_gavg,
};

static evo_status pool_infer_max(const evo_kctx *c)
{
    return pool_infer_common(c, &evo_op_MaxPool, true);
}

static evo_status pool_infer_avg(const evo_kctx *c)
{
    return pool_infer_common(c, &evo_op_AveragePool, false);
}

static evo_status pool_infer_gmax(const evo_kctx *c)
{
    return pool_infer_global(c, &evo_op_GlobalMaxPool);
}

static evo_status pool_infer_gavg(const evo_kctx *c)
{
    return pool_infer_global(c, &evo_op_GlobalAveragePool);
}
