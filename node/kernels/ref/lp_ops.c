/*
 * Lp-norm ops and mean-variance normalization, float32:
 *
 *   LpNormalization(input; axis=-1, p=2)  x / ||x||_p along axis (p is 1 or
 *       2); a zero norm leaves the (all-zero) line as it is.
 *   MeanVarianceNormalization(X; axes=[0,2,3])  (x - mean) / (std + 1e-9)
 *       over the given axes, with std = sqrt(E[x^2] - E[x]^2), exactly as
 *       the ONNX function body defines it (epsilon added to the std).
 *   GlobalLpPool(X; p=2)  (sum |x|^p)^(1/p) over all spatial dims of
 *       N x C x D1 ... -> N x C x 1 x ...
 *   LpPool(X; kernel_shape, strides, pads, auto_pad, dilations, ceil_mode,
 *       p=2)  the same over sliding windows (1 to 3 spatial dims); padding
 *       contributes zeros.
 *
 * Sums are accumulated in double; MeanVarianceNormalization keeps its
 * per-group statistics in scratch.
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

#define LP_MAX_SP 3

enum { LP_PAD_NOTSET = 0, LP_PAD_SAME_UPPER, LP_PAD_SAME_LOWER, LP_PAD_VALID };

typedef struct lp_params {
    int64_t axis;
    int32_t p;
    int32_t n_sp;
    int32_t kernel[LP_MAX_SP], stride[LP_MAX_SP], dilation[LP_MAX_SP];
    int32_t pad_begin[LP_MAX_SP], pad_end[LP_MAX_SP];
    int32_t auto_pad, ceil_mode;
    int32_t n_axes; /* MeanVarianceNormalization */
    int32_t axes[EVO_MAX_RANK];
} lp_params;
_Static_assert(sizeof(lp_params) <= EVO_PARAMS_MAX, "lp_params too large");

extern const evo_op_def evo_op_LpNormalization;
extern const evo_op_def evo_op_MeanVarianceNormalization;
extern const evo_op_def evo_op_GlobalLpPool;
extern const evo_op_def evo_op_LpPool;

static evo_status lp_parse_p(const evo_node *node, lp_params *p, bool only_1_2, evo_error *err)
{
    int64_t v;
    if (evo_attr_get_int(node, "p", 2, &v) != EVO_OK || v < 1 || v > 64 ||
        (only_1_2 && v != 1 && v != 2))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s node '%s': p must be %s", node->op_type,
                             EVO_ELEM_NODE_NAME(node), only_1_2 ? "1 or 2" : "an int in 1..64");
    p->p = (int32_t)v;
    return EVO_OK;
}

/* A compact model (.evm) stores params as bytes a hostile file controls:
 * every field parse would have checked is checked again before use. */
static evo_status lp_check_params(const evo_op_def *op, const evo_kctx *c)
{
    const lp_params *p = c->params;
    bool bad = p->n_axes < 0 || p->n_axes > EVO_MAX_RANK;
    if (op != &evo_op_MeanVarianceNormalization)
        bad = bad || p->p < 1 || p->p > 64;
    if (op == &evo_op_LpPool) {
        bad = bad || p->n_sp < 1 || p->n_sp > LP_MAX_SP || p->auto_pad < LP_PAD_NOTSET ||
              p->auto_pad > LP_PAD_VALID || (p->ceil_mode & ~1) != 0;
        for (int32_t j = 0; !bad && j < p->n_sp; j++)
            bad = p->kernel[j] < 1 || p->stride[j] < 1 || p->dilation[j] < 1 ||
                  p->pad_begin[j] < 0 || p->pad_end[j] < 0;
    }
    if (bad)
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: params hold invalid values", op->name);
    return EVO_OK;
}

/* X is float32 of rank >= min_rank; params are sane. */
static evo_status lp_check_x(const evo_op_def *op, const evo_kctx *c, int32_t min_rank)
{
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, op->name, "X", x)) != EVO_OK)
        return rv;
    if (x->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: input has type %s; evo supports float32", op->name,
                             evo_dtype_name(x->dtype));
    if (x->shape.rank < min_rank)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input must have rank >= %d, got %d",
                             op->name, (int)min_rank, (int)x->shape.rank);
    return lp_check_params(op, c);
}

static void lp_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 4);
}

/* (sum)^(1/p) for the common p without pow. */
static inline double lp_root(double s, int32_t p)
{
    return p == 1 ? s : p == 2 ? sqrt(s) : pow(s, 1.0 / p);
}

static inline double lp_term(float v, int32_t p)
{
    double a = fabs((double)v);
    return p == 1 ? a : p == 2 ? a * a : pow(a, (double)p);
}

/* ---------------------------------------------------------------- LpNormalization */

static evo_status lp_parse_norm(const evo_node *node, void *params, evo_error *err)
{
    lp_params *p = params;
    if (evo_attr_get_int(node, "axis", -1, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "LpNormalization node '%s': axis must be an int",
                             EVO_ELEM_NODE_NAME(node));
    return lp_parse_p(node, p, true, err);
}

static evo_status lp_infer_norm(const evo_kctx *c)
{
    const lp_params *p = c->params;
    evo_status rv = lp_check_x(&evo_op_LpNormalization, c, 1);
    if (rv != EVO_OK)
        return rv;
    int32_t axis;
    if (evo_op_norm_axis(p->axis, c->in[0]->shape.rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "LpNormalization: axis %lld is out of range for rank %d",
                             (long long)p->axis, (int)c->in[0]->shape.rank);
    return kpool_set_out(c, "LpNormalization", c->out[0], EVO_DT_FLOAT32, &c->in[0]->shape);
}

static evo_status lp_eval_norm(const evo_kctx *c)
{
    const lp_params *p = c->params;
    const evo_shape *s = &c->in[0]->shape;
    int32_t axis;
    if (evo_op_norm_axis(p->axis, s->rank, &axis) != EVO_OK)
        return EVO_ERR_INTERNAL;
    int64_t outer = kpool_prod(s, 0, axis), n = s->dims[axis];
    int64_t inner = kpool_prod(s, axis + 1, s->rank);
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            const float *xl = x + o * n * inner + in;
            float *yl = y + o * n * inner + in;
            double sum = 0.0;
            for (int64_t i = 0; i < n; i++)
                sum += lp_term(xl[i * inner], p->p);
            double norm = lp_root(sum, p->p);
            for (int64_t i = 0; i < n; i++)
                yl[i * inner] = norm > 0.0 ? (float)(xl[i * inner] / norm) : xl[i * inner];
        }
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- MeanVarianceNormalization */

static evo_status lp_parse_mvn(const evo_node *node, void *params, evo_error *err)
{
    lp_params *p = params;
    int64_t axes[EVO_MAX_RANK];
    size_t n = 0;
    if (evo_attr_get_ints(node, "axes", axes, EVO_MAX_RANK, &n) != EVO_OK)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "MeanVarianceNormalization node '%s': axes must be a list of at "
                             "most %d ints",
                             EVO_ELEM_NODE_NAME(node), EVO_MAX_RANK);
    if (evo_node_attr(node, "axes") == NULL) {
        static const int32_t def[3] = {0, 2, 3};
        memcpy(p->axes, def, sizeof def);
        p->n_axes = 3;
        return EVO_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (axes[i] < -EVO_MAX_RANK || axes[i] >= EVO_MAX_RANK)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "MeanVarianceNormalization node '%s': axis %lld is out of range",
                                 EVO_ELEM_NODE_NAME(node), (long long)axes[i]);
        p->axes[i] = (int32_t)axes[i];
    }
    p->n_axes = (int32_t)n;
    return EVO_OK;
}

/* mask of normalized axes; err may be NULL. */
static evo_status lp_mvn_mask(const evo_kctx *c, bool mask[EVO_MAX_RANK])
{
    const lp_params *p = c->params;
    int32_t rank = c->in[0]->shape.rank;
    for (int32_t i = 0; i < EVO_MAX_RANK; i++)
        mask[i] = false;
    for (int32_t i = 0; i < p->n_axes; i++) {
        int32_t a;
        if (evo_op_norm_axis(p->axes[i], rank, &a) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "MeanVarianceNormalization: axis %d is out of range for rank %d",
                                 (int)p->axes[i], (int)rank);
        if (mask[a])
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "MeanVarianceNormalization: axis %d is given twice",
                                 (int)p->axes[i]);
        mask[a] = true;
    }
    return EVO_OK;
}

/* Elements per statistics group (the kept dims' product). */
static int64_t lp_mvn_groups(const evo_shape *s, const bool mask[EVO_MAX_RANK])
{
    int64_t g = 1;
    for (int32_t d = 0; d < s->rank; d++)
        if (!mask[d])
            g *= s->dims[d];
    return g;
}

static evo_status lp_infer_mvn(const evo_kctx *c)
{
    evo_status rv = lp_check_x(&evo_op_MeanVarianceNormalization, c, 0);
    if (rv != EVO_OK)
        return rv;
    bool mask[EVO_MAX_RANK];
    if ((rv = lp_mvn_mask(c, mask)) != EVO_OK)
        return rv;
    return kpool_set_out(c, "MeanVarianceNormalization", c->out[0], EVO_DT_FLOAT32,
                         &c->in[0]->shape);
}

static size_t lp_scratch_mvn(const evo_kctx *c)
{
    bool mask[EVO_MAX_RANK];
    evo_kctx q = *c;
    q.err = NULL;
    if (lp_mvn_mask(&q, mask) != EVO_OK)
        return 0;
    return (size_t)lp_mvn_groups(&c->in[0]->shape, mask) * 2 * sizeof(double);
}

/* Visit every element in order with o = its statistics group. */
#define LP_WALK(XS, OSTRIDE, N, I, O, BODY)                                                        \
    do {                                                                                           \
        int64_t idx_[EVO_MAX_RANK] = {0}, O = 0;                                                   \
        for (int64_t I = 0; I < (N); I++) {                                                        \
            BODY;                                                                                  \
            for (int32_t d_ = (XS)->rank - 1; d_ >= 0; d_--) {                                     \
                O += (OSTRIDE)[d_];                                                                \
                if (++idx_[d_] < (XS)->dims[d_])                                                   \
                    break;                                                                         \
                O -= (OSTRIDE)[d_] * (XS)->dims[d_];                                               \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static evo_status lp_eval_mvn(const evo_kctx *c)
{
    const evo_shape *s = &c->in[0]->shape;
    bool mask[EVO_MAX_RANK];
    evo_kctx q = *c;
    q.err = NULL;
    if (lp_mvn_mask(&q, mask) != EVO_OK)
        return EVO_ERR_INTERNAL;
    int64_t groups = lp_mvn_groups(s, mask), n = evo_shape_numel(s);
    if (groups == 0 || n == 0)
        return EVO_OK; /* nothing to normalize (and no scratch was planned) */
    if (c->scratch_bytes < (size_t)groups * 2 * sizeof(double))
        return EVO_ERR_INTERNAL;
    int64_t count = groups > 0 ? n / groups : 0;
    double *sum = c->scratch, *sq = sum + groups;
    int64_t ostride[EVO_MAX_RANK], st = 1;
    for (int32_t d = s->rank - 1; d >= 0; d--) {
        ostride[d] = mask[d] ? 0 : st;
        if (!mask[d])
            st *= s->dims[d];
    }
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t g = 0; g < groups; g++)
        sum[g] = sq[g] = 0.0;
    LP_WALK(s, ostride, n, i, o, {
        sum[o] += x[i];
        sq[o] += (double)x[i] * x[i];
    });
    for (int64_t g = 0; g < groups; g++) {
        double mean = sum[g] / (double)count, var = sq[g] / (double)count - mean * mean;
        sum[g] = mean;
        sq[g] = 1.0 / (sqrt(var > 0.0 ? var : 0.0) + 1e-9);
    }
    LP_WALK(s, ostride, n, i, o, y[i] = (float)((x[i] - sum[o]) * sq[o]));
    return EVO_OK;
}

/* ---------------------------------------------------------------- GlobalLpPool */

static evo_status lp_parse_global(const evo_node *node, void *params, evo_error *err)
{
    return lp_parse_p(node, params, false, err);
}

static evo_status lp_infer_global(const evo_kctx *c)
{
    evo_status rv = lp_check_x(&evo_op_GlobalLpPool, c, 2);
    if (rv != EVO_OK)
        return rv;
    evo_shape ys = c->in[0]->shape;
    for (int32_t d = 2; d < ys.rank; d++)
        ys.dims[d] = 1;
    return kpool_set_out(c, "GlobalLpPool", c->out[0], EVO_DT_FLOAT32, &ys);
}

static evo_status lp_eval_global(const evo_kctx *c)
{
    const lp_params *p = c->params;
    const evo_shape *s = &c->in[0]->shape;
    int64_t planes = kpool_prod(s, 0, 2), n = kpool_prod(s, 2, s->rank);
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t pl = 0; pl < planes; pl++, x += n) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += lp_term(x[i], p->p);
        y[pl] = (float)lp_root(sum, p->p);
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- LpPool */

static evo_status lp_read_ints(const evo_node *node, const char *attr, size_t want, int32_t def,
                               int64_t minv, int32_t *out, evo_error *err)
{
    int64_t v[2 * LP_MAX_SP];
    size_t n = 0;
    if (evo_attr_get_ints(node, attr, v, 2 * LP_MAX_SP, &n) != EVO_OK || (n != 0 && n != want))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "LpPool node '%s': attribute %s must be a list of %zu ints",
                             EVO_ELEM_NODE_NAME(node), attr, want);
    for (size_t i = 0; i < want; i++) {
        int64_t e = n == 0 ? def : v[i];
        if (e < minv || e > INT32_MAX)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "LpPool node '%s': %s[%zu] = %lld is out of range",
                                 EVO_ELEM_NODE_NAME(node), attr, i, (long long)e);
        out[i] = (int32_t)e;
    }
    return EVO_OK;
}

static evo_status lp_parse_pool(const evo_node *node, void *params, evo_error *err)
{
    lp_params *p = params;
    int64_t k[EVO_MAX_RANK];
    size_t n = 0;
    if (evo_attr_get_ints(node, "kernel_shape", k, EVO_MAX_RANK, &n) != EVO_OK || n == 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "LpPool node '%s': attribute kernel_shape (a list of ints) is "
                             "required",
                             EVO_ELEM_NODE_NAME(node));
    if (n > LP_MAX_SP)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "LpPool node '%s': %zu spatial dims; evo pools over at most %d",
                             EVO_ELEM_NODE_NAME(node), n, LP_MAX_SP);
    p->n_sp = (int32_t)n;
    int32_t pads[2 * LP_MAX_SP];
    evo_status rv;
    if ((rv = lp_read_ints(node, "kernel_shape", n, 1, 1, p->kernel, err)) != EVO_OK ||
        (rv = lp_read_ints(node, "strides", n, 1, 1, p->stride, err)) != EVO_OK ||
        (rv = lp_read_ints(node, "dilations", n, 1, 1, p->dilation, err)) != EVO_OK ||
        (rv = lp_read_ints(node, "pads", 2 * n, 0, 0, pads, err)) != EVO_OK)
        return rv;
    for (size_t i = 0; i < n; i++) {
        p->pad_begin[i] = pads[i];
        p->pad_end[i] = pads[n + i];
    }
    const char *ap;
    if (evo_attr_get_string(node, "auto_pad", "NOTSET", &ap) != EVO_OK)
        ap = "?";
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        p->auto_pad = LP_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        p->auto_pad = LP_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        p->auto_pad = LP_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        p->auto_pad = LP_PAD_VALID;
    else
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "LpPool node '%s': auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER "
                             "or VALID",
                             EVO_ELEM_NODE_NAME(node));
    int64_t cm;
    if (evo_attr_get_int(node, "ceil_mode", 0, &cm) != EVO_OK || (cm != 0 && cm != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "LpPool node '%s': ceil_mode must be 0 or 1",
                             EVO_ELEM_NODE_NAME(node));
    p->ceil_mode = (int32_t)cm;
    return lp_parse_p(node, p, false, err);
}

typedef struct lp_geom {
    int64_t in[LP_MAX_SP], out[LP_MAX_SP], pb[LP_MAX_SP];
} lp_geom;

/* Output sizes and begin pads (the same rules as MaxPool/AveragePool). */
static evo_status lp_geometry(const evo_kctx *c, lp_geom *g)
{
    const lp_params *p = c->params;
    const evo_shape *xs = &c->in[0]->shape;
    for (int32_t j = 0; j < p->n_sp; j++) {
        int64_t in = xs->dims[2 + j], s = p->stride[j];
        int64_t ek = (int64_t)(p->kernel[j] - 1) * p->dilation[j] + 1, pb, out;
        if (p->auto_pad == LP_PAD_SAME_UPPER || p->auto_pad == LP_PAD_SAME_LOWER) {
            out = (in + s - 1) / s;
            int64_t total = out > 0 ? (out - 1) * s + ek - in : 0;
            if (total < 0)
                total = 0;
            pb = p->auto_pad == LP_PAD_SAME_UPPER ? total / 2 : total - total / 2;
        } else {
            pb = p->auto_pad == LP_PAD_VALID ? 0 : p->pad_begin[j];
            int64_t pe = p->auto_pad == LP_PAD_VALID ? 0 : p->pad_end[j];
            int64_t span = in + pb + pe - ek;
            if (span < 0) {
                out = 0;
            } else if (p->ceil_mode) {
                out = (span + s - 1) / s + 1;
                if ((out - 1) * s >= in + pb)
                    out--;
            } else {
                out = span / s + 1;
            }
        }
        if (out < 1 || out > EVO_MAX_DIM)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "LpPool: the kernel of effective size %lld does not fit spatial "
                                 "dim %d of size %lld",
                                 (long long)ek, (int)(2 + j), (long long)in);
        g->in[j] = in;
        g->out[j] = out;
        g->pb[j] = pb;
    }
    return EVO_OK;
}

static evo_status lp_infer_pool(const evo_kctx *c)
{
    const lp_params *p = c->params;
    evo_status rv = lp_check_x(&evo_op_LpPool, c, 3);
    if (rv != EVO_OK)
        return rv;
    if (c->in[0]->shape.rank != 2 + p->n_sp)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "LpPool: input has rank %d; kernel_shape needs rank %d",
                             (int)c->in[0]->shape.rank, (int)(2 + p->n_sp));
    lp_geom g;
    if ((rv = lp_geometry(c, &g)) != EVO_OK)
        return rv;
    evo_shape ys = c->in[0]->shape;
    for (int32_t j = 0; j < p->n_sp; j++)
        ys.dims[2 + j] = (int32_t)g.out[j];
    return kpool_set_out(c, "LpPool", c->out[0], EVO_DT_FLOAT32, &ys);
}

static evo_status lp_eval_pool(const evo_kctx *c)
{
    const lp_params *p = c->params;
    lp_geom g;
    evo_kctx q = *c;
    q.err = NULL;
    if (lp_geometry(&q, &g) != EVO_OK)
        return EVO_ERR_INTERNAL;
    /* Pad to 3 spatial dims with size-1 leading dims. */
    int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
    int64_t k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int32_t lead = 3 - p->n_sp;
    for (int32_t j = 0; j < p->n_sp; j++) {
        in[lead + j] = g.in[j];
        out[lead + j] = g.out[j];
        pb[lead + j] = g.pb[j];
        k[lead + j] = p->kernel[j];
        s[lead + j] = p->stride[j];
        d[lead + j] = p->dilation[j];
    }
    int64_t planes = kpool_prod(&c->in[0]->shape, 0, 2);
    int64_t plane_in = in[0] * in[1] * in[2];
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t pl = 0; pl < planes; pl++, x += plane_in) {
        for (int64_t o0 = 0; o0 < out[0]; o0++)
            for (int64_t o1 = 0; o1 < out[1]; o1++)
                for (int64_t o2 = 0; o2 < out[2]; o2++) {
                    double sum = 0.0;
                    for (int64_t k0 = 0; k0 < k[0]; k0++) {
                        int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
                        if (i0 < 0 || i0 >= in[0])
                            continue;
                        for (int64_t k1 = 0; k1 < k[1]; k1++) {
                            int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
                            if (i1 < 0 || i1 >= in[1])
                                continue;
                            for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                int64_t i2 = o2 * s[2] - pb[2] + k2 * d[2];
                                if (i2 < 0 || i2 >= in[2])
                                    continue;
                                sum += lp_term(x[(i0 * in[1] + i1) * in[2] + i2], p->p);
                            }
                        }
                    }
                    *y++ = (float)lp_root(sum, p->p);
                }
    }
    return EVO_OK;
}

static void lp_cost_pool(const evo_kctx *c, evo_op_cost *cost)
{
    const lp_params *p = c->params;
    uint64_t k = 1;
    for (int32_t j = 0; j < p->n_sp; j++)
        k = kpool_sat_mul(k, (uint64_t)p->kernel[j]);
    cost->flops = kpool_sat_mul(kpool_numel_u(c->out[0]), 2 * k);
}

/* ---------------------------------------------------------------- definitions */

/* In place: each line is read completely (its norm) before it is written. */
const evo_op_def evo_op_LpNormalization = {
    .name = "LpNormalization",
    .domain = "",
    .id = 126,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = lp_parse_norm,
    .infer = lp_infer_norm,
    .cost = lp_cost,
    .eval = lp_eval_norm,
};

/* In place: the statistics pass reads everything before the second pass
 * writes element by element. */
const evo_op_def evo_op_MeanVarianceNormalization = {
    .name = "MeanVarianceNormalization",
    .domain = "",
    .id = 127,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = lp_parse_mvn,
    .infer = lp_infer_mvn,
    .scratch = lp_scratch_mvn,
    .cost = lp_cost,
    .eval = lp_eval_mvn,
};

const evo_op_def evo_op_GlobalLpPool = {
    .name = "GlobalLpPool",
    .domain = "",
    .id = 128,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = lp_parse_global,
    .infer = lp_infer_global,
    .cost = lp_cost,
    .eval = lp_eval_global,
};

const evo_op_def evo_op_LpPool = {
    .name = "LpPool",
    .domain = "",
    .id = 129,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = lp_parse_pool,
    .infer = lp_infer_pool,
    .cost = lp_cost_pool,
    .eval = lp_eval_pool,
};
