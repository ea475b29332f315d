/*
 * TopK(X, K; axis=-1, largest=1, sorted=1) -> Values, Indices (int64) and
 * Hardmax(input; axis), the two "pick the best along an axis" ops.
 *
 * TopK: K is an int64 tensor of one element that must be constant (it
 * fixes the output shape); the importer turns TopK-1's k attribute into
 * it. Along the axis, the K largest (or smallest) elements are selected
 * with a bounded heap in O(n log K) and written best first; equal values
 * keep their input order (the smaller index first), as ONNX Runtime does.
 * With sorted=0 the spec allows any order, so the sorted one is used.
 * float32 compares follow IEEE, so NaNs are never selected over numbers
 * (they compare false) unless there are not enough numbers.
 *
 * Hardmax: 1 at the first maximum along the axis, 0 elsewhere. Before
 * opset 13 the input is flattened to 2-D at axis (default 1) and the max is
 * taken over the whole second dim; from 13 on only over axis (default -1).
 */
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef struct topk_params {
    int64_t axis;
    int32_t largest;
    int32_t legacy_flatten; /* Hardmax before opset 13 */
} topk_params;
_Static_assert(sizeof(topk_params) <= EVO_PARAMS_MAX, "topk_params too large");

extern const evo_op_def evo_op_TopK;
extern const evo_op_def evo_op_Hardmax;

static evo_status topk_parse(const evo_node *node, void *params, evo_error *err)
{
    topk_params *p = params;
    int64_t largest, sorted;
    if (evo_attr_get_int(node, "axis", -1, &p->axis) != EVO_OK ||
        evo_attr_get_int(node, "largest", 1, &largest) != EVO_OK ||
        evo_attr_get_int(node, "sorted", 1, &sorted) != EVO_OK || (largest != 0 && largest != 1) ||
        (sorted != 0 && sorted != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "TopK node '%s': axis must be an int, largest and sorted 0 or 1",
                             EVO_ELEM_NODE_NAME(node));
    p->largest = (int32_t)largest;
    return EVO_OK;
}

/* The constant K, or an error. */
static evo_status topk_get_k(const evo_kctx *c, int64_t *k)
{
    const evo_tensor *t = c->in[1];
    if (t->dtype != EVO_DT_INT64 || evo_shape_numel(&t->shape) != 1 || t->shape.rank > 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "TopK: K must be an int64 tensor of one element");
    if (t->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "TopK: K must be a constant (its value fixes the output shape)");
    *k = *(const int64_t *)t->data;
    return EVO_OK;
}

static evo_status topk_infer(const evo_kctx *c)
{
    const topk_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_TopK, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, "TopK", "X", x)) != EVO_OK)
        return rv;
    if (!evo_elem_dt_in(EVO_ELEM_DT_NUMERIC, x->dtype))
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "TopK: X has type %s; evo supports float32, int32, int64, int8 and "
                             "uint8",
                             evo_dtype_name(x->dtype));
    int32_t axis;
    if (x->shape.rank < 1 || evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "TopK: axis %lld is out of range for rank %d",
                             (long long)p->axis, (int)x->shape.rank);
    int64_t k = 0;
    if ((rv = topk_get_k(c, &k)) != EVO_OK)
        return rv;
    if (k < 0 || k > x->shape.dims[axis])
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "TopK: K = %lld is outside 0..%d (the length of axis %d)",
                             (long long)k, (int)x->shape.dims[axis], (int)axis);
    evo_shape ys = x->shape;
    ys.dims[axis] = (int32_t)k;
    if (c->out[0] == NULL || c->out[1] == NULL)
        return evo_error_set(c->err, EVO_ERR_GRAPH, "TopK: both outputs must be present");
    if ((rv = kpool_set_out(c, "TopK", c->out[0], x->dtype, &ys)) != EVO_OK)
        return rv;
    return kpool_set_out(c, "TopK", c->out[1], EVO_DT_INT64, &ys);
}

static size_t topk_scratch(const evo_kctx *c)
{
    int64_t k = 0;
    const evo_tensor *t = c->in[1];
    if (t->data != NULL && t->dtype == EVO_DT_INT64)
        k = *(const int64_t *)t->data;
    return k > 0 ? (size_t)k * sizeof(int64_t) : 0;
}

static void topk_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 4);
}

/* Per element type: select along every line (outer x inner lines of n
 * elements at stride `inner`) into heap (k indices), then write out. */
#define TOPK_DEFINE(SFX, T)                                                                        \
    static inline bool topk_better_##SFX(const T *x, int64_t st, int64_t a, int64_t b, bool lg)    \
    {                                                                                              \
        T va = x[a * st], vb = x[b * st];                                                          \
        if (va != vb)                                                                              \
            return lg ? va > vb : va < vb;                                                         \
        return a < b;                                                                              \
    }                                                                                              \
    /* Sift down in a heap whose root is the worst kept element. */                                \
    static void topk_sift_##SFX(const T *x, int64_t st, int64_t *h, int64_t n, int64_t i, bool lg) \
    {                                                                                              \
        for (;;) {                                                                                 \
            int64_t l = 2 * i + 1, r = l + 1, w = i;                                               \
            if (l < n && topk_better_##SFX(x, st, h[w], h[l], lg))                                 \
                w = l;                                                                             \
            if (r < n && topk_better_##SFX(x, st, h[w], h[r], lg))                                 \
                w = r;                                                                             \
            if (w == i)                                                                            \
                return;                                                                            \
            int64_t t = h[i];                                                                      \
            h[i] = h[w];                                                                           \
            h[w] = t;                                                                              \
            i = w;                                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void topk_run_##SFX(const T *x, T *vals, int64_t *inds, int64_t outer, int64_t n,       \
                               int64_t inner, int64_t k, bool lg, int64_t *h)                      \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            for (int64_t in = 0; in < inner; in++) {                                               \
                const T *line = x + o * n * inner + in;                                            \
                int64_t size = 0;                                                                  \
                for (int64_t i = 0; i < n && k > 0; i++) {                                         \
                    if (size < k) {                                                                \
                        h[size++] = i;                                                             \
                        if (size == k)                                                             \
                            for (int64_t j = k / 2 - 1; j >= 0; j--)                               \
                                topk_sift_##SFX(line, inner, h, k, j, lg);                         \
                    } else if (topk_better_##SFX(line, inner, i, h[0], lg)) {                      \
                        h[0] = i;                                                                  \
                        topk_sift_##SFX(line, inner, h, k, 0, lg);                                 \
                    }                                                                              \
                }                                                                                  \
                /* Pop the worst to the back: the heap becomes best first. */                      \
                for (int64_t end = k - 1; end > 0; end--) {                                        \
                    int64_t t = h[0];                                                              \
                    h[0] = h[end];                                                                 \
                    h[end] = t;                                                                    \
                    topk_sift_##SFX(line, inner, h, end, 0, lg);                                   \
                }                                                                                  \
                T *vo = vals + o * k * inner + in;                                                 \
                int64_t *io = inds + o * k * inner + in;                                           \
                for (int64_t j = 0; j < k; j++) {                                                  \
                    vo[j * inner] = line[h[j] * inner];                                            \
                    io[j * inner] = h[j];                                                          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

TOPK_DEFINE(f32, float)
TOPK_DEFINE(i32, int32_t)
TOPK_DEFINE(i64, int64_t)
TOPK_DEFINE(i8, int8_t)
TOPK_DEFINE(u8, uint8_t)

static evo_status topk_eval(const evo_kctx *c)
{
    const topk_params *p = c->params;
    const evo_tensor *x = c->in[0];
    int32_t axis;
    if (evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
        return EVO_ERR_INTERNAL;
    int64_t k = *(const int64_t *)c->in[1]->data;
    if (k < 0 || c->scratch_bytes < (size_t)k * sizeof(int64_t))
        return EVO_ERR_INTERNAL;
    int64_t outer = kpool_prod(&x->shape, 0, axis), n = x->shape.dims[axis];
    int64_t inner = kpool_prod(&x->shape, axis + 1, x->shape.rank);
    bool lg = p->largest != 0;
    int64_t *h = c->scratch;
    void *v = c->out[0]->data;
    int64_t *ind = c->out[1]->data;
    switch (x->dtype) {
    case EVO_DT_FLOAT32:
        topk_run_f32(x->data, v, ind, outer, n, inner, k, lg, h);
        break;
    case EVO_DT_INT32:
        topk_run_i32(x->data, v, ind, outer, n, inner, k, lg, h);
        break;
    case EVO_DT_INT64:
        topk_run_i64(x->data, v, ind, outer, n, inner, k, lg, h);
        break;
    case EVO_DT_INT8:
        topk_run_i8(x->data, v, ind, outer, n, inner, k, lg, h);
        break;
    case EVO_DT_UINT8:
        topk_run_u8(x->data, v, ind, outer, n, inner, k, lg, h);
        break;
    default:
        return EVO_ERR_INTERNAL;
    }
    return EVO_OK;
}

const evo_op_def evo_op_TopK = {
    .name = "TopK",
    .domain = "",
    .id = 121,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 2,
    .max_outputs = 2,
    .parse = topk_parse,
    .infer = topk_infer,
    .scratch = topk_scratch,
    .cost = topk_cost,
    .eval = topk_eval,
};

/* ---------------------------------------------------------------- Hardmax */

static evo_status hardmax_parse(const evo_node *node, void *params, evo_error *err)
{
    topk_params *p = params;
    p->legacy_flatten = node->opset < 13;
    if (evo_attr_get_int(node, "axis", p->legacy_flatten ? 1 : -1, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Hardmax node '%s': axis must be an int",
                             EVO_ELEM_NODE_NAME(node));
    return EVO_OK;
}

static evo_status hardmax_infer(const evo_kctx *c)
{
    const topk_params *p = c->params;
    evo_status rv =
        evo_elem_infer_unary(&evo_op_Hardmax, c, EVO_ELEM_DT(EVO_DT_FLOAT32), EVO_DT_UNDEFINED);
    if (rv != EVO_OK)
        return rv;
    int32_t axis, rank = c->in[0]->shape.rank;
    /* The flattening form also accepts axis == rank (an empty second dim). */
    bool ok = p->legacy_flatten ? (p->axis >= -rank && p->axis <= rank)
                                : (rank >= 1 && evo_op_norm_axis(p->axis, rank, &axis) == EVO_OK);
    if (!ok)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Hardmax: axis %lld is out of range for rank %d", (long long)p->axis,
                             (int)rank);
    return EVO_OK;
}

static evo_status hardmax_eval(const evo_kctx *c)
{
    const topk_params *p = c->params;
    const evo_shape *s = &c->in[0]->shape;
    int32_t axis = (int32_t)(p->axis < 0 ? p->axis + s->rank : p->axis);
    int64_t outer = kpool_prod(s, 0, axis), n, inner;
    if (p->legacy_flatten) {
        n = kpool_prod(s, axis, s->rank);
        inner = 1;
    } else {
        n = s->dims[axis];
        inner = kpool_prod(s, axis + 1, s->rank);
    }
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            const float *line = x + o * n * inner + in;
            float *yl = y + o * n * inner + in;
            int64_t best = 0;
            for (int64_t i = 1; i < n; i++)
                if (line[i * inner] > line[best * inner])
                    best = i;
            /* Read all before writing: y may alias x. */
            for (int64_t i = 0; i < n; i++)
                yl[i * inner] = i == best ? 1.0f : 0.0f;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Hardmax = {
    .name = "Hardmax",
    .domain = "",
    .id = 120,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = hardmax_parse,
    .infer = hardmax_infer,
    .cost = topk_cost,
    .eval = hardmax_eval,
};
