/*
 * Element-wise indexing: GatherElements, ScatterElements (and its
 * deprecated opset-9 name Scatter) and ScatterND.
 *
 *   GatherElements(data, indices, axis):  out[i] = data[i with i[axis]
 *       replaced by indices[i]]; out has the shape of indices.
 *   ScatterElements(data, indices, updates, axis, reduction):  out = data,
 *       then out[i with i[axis] replaced by indices[i]] (op)= updates[i].
 *   ScatterND(data, indices, updates, reduction):  out = data, then for each
 *       index tuple indices[j, :] (of length k <= rank) the slice
 *       out[tuple, ...] (op)= updates[j, ...].
 *
 * reduction is none (assign), add, mul, max or min; updates are applied in
 * index order, so with "none" and duplicate indices the last one wins (the
 * spec leaves that case undefined). Indices are int32 or int64 and may be
 * negative (counted from the end). Their values are data: they are checked
 * at infer when constant and always at eval, before anything is written, so
 * a bad index gives EVO_ERR_INVALID_ARG and never touches memory outside the
 * tensors. Integer add and mul wrap around.
 */
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef enum gs_reduction {
    GS_RED_NONE = 0,
    GS_RED_ADD,
    GS_RED_MUL,
    GS_RED_MAX,
    GS_RED_MIN,
    GS_RED_COUNT_,
} gs_reduction;

typedef struct gs_params {
    int64_t axis;
    int32_t reduction;
} gs_params;
_Static_assert(sizeof(gs_params) <= EVO_PARAMS_MAX, "gs_params too large");

extern const evo_op_def evo_op_GatherElements;
extern const evo_op_def evo_op_ScatterElements;
extern const evo_op_def evo_op_ScatterND;
extern const evo_op_def evo_op_Scatter;

/* ---------------------------------------------------------------- parse */

static evo_status gs_parse_axis(const evo_node *node, gs_params *p, evo_error *err)
{
    if (evo_attr_get_int(node, "axis", 0, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': attribute axis must be an int",
                             node->op_type, EVO_ELEM_NODE_NAME(node));
    return EVO_OK;
}

static evo_status gs_parse_reduction(const evo_node *node, gs_params *p, evo_error *err)
{
    static const char *const names[GS_RED_COUNT_] = {"none", "add", "mul", "max", "min"};
    const char *s;
    if (evo_attr_get_string(node, "reduction", "none", &s) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "%s node '%s': attribute reduction must be a string", node->op_type,
                             EVO_ELEM_NODE_NAME(node));
    for (int32_t r = 0; r < GS_RED_COUNT_; r++) {
        if (strcmp(s, names[r]) == 0) {
            p->reduction = r;
            return EVO_OK;
        }
    }
    return evo_error_set(err, EVO_ERR_INVALID_ARG,
                         "%s node '%s': reduction \"%.40s\" is not none, add, mul, max or min",
                         node->op_type, EVO_ELEM_NODE_NAME(node), s);
}

static evo_status gs_parse_gather(const evo_node *node, void *params, evo_error *err)
{
    return gs_parse_axis(node, params, err);
}

static evo_status gs_parse_scatter_elements(const evo_node *node, void *params, evo_error *err)
{
    evo_status rv = gs_parse_axis(node, params, err);
    if (rv == EVO_OK)
        rv = gs_parse_reduction(node, params, err);
    return rv;
}

static evo_status gs_parse_scatter_nd(const evo_node *node, void *params, evo_error *err)
{
    return gs_parse_reduction(node, params, err);
}

/* ---------------------------------------------------------------- combine kernels */

/* dst (op)= src for one element. */
typedef void (*gs_combine_fn)(void *dst, const void *src);

#define GS_COMBINE(SFX, T, ADD, MUL)                                                               \
    static void gs_add_##SFX(void *d, const void *s)                                               \
    {                                                                                              \
        T x = *(T *)d, y = *(const T *)s;                                                          \
        *(T *)d = (T)(ADD);                                                                        \
    }                                                                                              \
    static void gs_mul_##SFX(void *d, const void *s)                                               \
    {                                                                                              \
        T x = *(T *)d, y = *(const T *)s;                                                          \
        *(T *)d = (T)(MUL);                                                                        \
    }                                                                                              \
    static void gs_max_##SFX(void *d, const void *s)                                               \
    {                                                                                              \
        T x = *(T *)d, y = *(const T *)s;                                                          \
        *(T *)d = y > x ? y : x;                                                                   \
    }                                                                                              \
    static void gs_min_##SFX(void *d, const void *s)                                               \
    {                                                                                              \
        T x = *(T *)d, y = *(const T *)s;                                                          \
        *(T *)d = y < x ? y : x;                                                                   \
    }

GS_COMBINE(f32, float, x + y, x *y)
GS_COMBINE(i32, int32_t, EVO_ELEM_WRAP(int32_t, uint32_t, x, +, y),
           EVO_ELEM_WRAP(int32_t, uint32_t, x, *, y))
GS_COMBINE(i64, int64_t, EVO_ELEM_WRAP(int64_t, uint64_t, x, +, y),
           EVO_ELEM_WRAP(int64_t, uint64_t, x, *, y))
GS_COMBINE(i8, int8_t, EVO_ELEM_WRAP(int8_t, uint8_t, x, +, y),
           EVO_ELEM_WRAP(int8_t, uint8_t, x, *, y))
GS_COMBINE(u8, uint8_t, (uint8_t)(x + y), (uint8_t)(x *y))

#define GS_ROW(SFX)                                                                                \
    {                                                                                              \
        NULL, gs_add_##SFX, gs_mul_##SFX, gs_max_##SFX, gs_min_##SFX                               \
    }

/* [dtype][reduction]; NONE is a plain copy of the element. */
static const gs_combine_fn gs_combine_table[EVO_DT_COUNT_][GS_RED_COUNT_] = {
    [EVO_DT_FLOAT32] = GS_ROW(f32), [EVO_DT_INT32] = GS_ROW(i32), [EVO_DT_INT64] = GS_ROW(i64),
    [EVO_DT_INT8] = GS_ROW(i8),     [EVO_DT_UINT8] = GS_ROW(u8),
};

/* ---------------------------------------------------------------- shared checks */

static int64_t gs_index_at(const evo_tensor *ind, int64_t i)
{
    return ind->dtype == EVO_DT_INT32 ? ((const int32_t *)ind->data)[i]
                                      : ((const int64_t *)ind->data)[i];
}

static evo_status gs_check_common(const evo_op_def *op, const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 0; i < c->n_in; i++)
        if ((rv = kpool_check_tensor(c, op->name,
                                     i == 0   ? "data"
                                     : i == 1 ? "indices"
                                              : "updates",
                                     c->in[i])) != EVO_OK)
            return rv;
    const evo_tensor *x = c->in[0], *ind = c->in[1];
    if (!evo_dtype_is_supported(x->dtype) || evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: data has type %s, which evo cannot "
                             "compute with",
                             op->name, evo_dtype_name(x->dtype));
    if (ind->dtype != EVO_DT_INT32 && ind->dtype != EVO_DT_INT64)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: indices must be int32 or int64, not %s",
                             op->name, evo_dtype_name(ind->dtype));
    if (x->shape.rank < 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: data must have rank >= 1", op->name);
    if (c->n_out < 1 || c->out[0] == NULL)
        return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: output 0 is missing", op->name);
    return EVO_OK;
}

static evo_status gs_check_reduction(const evo_op_def *op, const evo_kctx *c, int32_t reduction)
{
    evo_dtype dt = c->in[0]->dtype;
    if (reduction == GS_RED_NONE)
        return EVO_OK;
    if (reduction < 0 || reduction > GS_RED_MIN) /* params from a file */
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: reduction %d in params is unknown",
                             op->name, (int)reduction);
    if ((unsigned)dt >= EVO_DT_COUNT_ || gs_combine_table[dt][reduction] == NULL)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: a reduction over data of type %s is not supported (float32, "
                             "int32, int64, int8, uint8)",
                             op->name, evo_dtype_name(dt));
    return EVO_OK;
}

/* ---------------------------------------------------------------- GatherElements / ScatterElements
 */

/* indices (and updates) against data for the *Elements ops: same rank, and
 * every dim but axis no longer than data's. Checks constant index values. */
static evo_status gs_check_elements(const evo_op_def *op, const evo_kctx *c, int32_t *axis_out)
{
    const gs_params *p = c->params;
    const evo_tensor *x = c->in[0], *ind = c->in[1];
    int32_t r = x->shape.rank, axis;
    if (evo_op_norm_axis(p->axis, r, &axis) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                             op->name, (long long)p->axis, (int)r);
    if (ind->shape.rank != r)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: indices must have the rank of data (%d), got %d", op->name,
                             (int)r, (int)ind->shape.rank);
    for (int32_t d = 0; d < r; d++)
        if (d != axis && ind->shape.dims[d] > x->shape.dims[d])
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: indices dim %d is %d, longer than data's %d", op->name,
                                 (int)d, (int)ind->shape.dims[d], (int)x->shape.dims[d]);
    if (ind->data != NULL) {
        int64_t n = evo_shape_numel(&ind->shape), dim = x->shape.dims[axis];
        for (int64_t i = 0; i < n; i++) {
            int64_t v = gs_index_at(ind, i);
            if (v < -dim || v >= dim)
                return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                                     "%s: index %lld is out of range for axis length %lld",
                                     op->name, (long long)v, (long long)dim);
        }
    }
    *axis_out = axis;
    return EVO_OK;
}

static evo_status gs_infer_gather(const evo_kctx *c)
{
    const evo_op_def *op = &evo_op_GatherElements;
    int32_t axis;
    evo_status rv = gs_check_common(op, c);
    if (rv == EVO_OK)
        rv = gs_check_elements(op, c, &axis);
    if (rv != EVO_OK)
        return rv;
    return kpool_set_out(c, op->name, c->out[0], c->in[0]->dtype, &c->in[1]->shape);
}

static evo_status gs_infer_scatter_elements_impl(const evo_op_def *op, const evo_kctx *c)
{
    const gs_params *p = c->params;
    int32_t axis;
    evo_status rv = gs_check_common(op, c);
    if (rv == EVO_OK)
        rv = gs_check_elements(op, c, &axis);
    if (rv == EVO_OK)
        rv = gs_check_reduction(op, c, p->reduction);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *u = c->in[2];
    if (u->dtype != c->in[0]->dtype)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: updates has type %s, data %s", op->name,
                             evo_dtype_name(u->dtype), evo_dtype_name(c->in[0]->dtype));
    if (!evo_shape_equal(&u->shape, &c->in[1]->shape))
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: updates must have the shape of indices",
                             op->name);
    return kpool_set_out(c, op->name, c->out[0], c->in[0]->dtype, &c->in[0]->shape);
}

static evo_status gs_infer_scatter_elements(const evo_kctx *c)
{
    return gs_infer_scatter_elements_impl(&evo_op_ScatterElements, c);
}

static evo_status gs_infer_scatter(const evo_kctx *c)
{
    return gs_infer_scatter_elements_impl(&evo_op_Scatter, c);
}

/* Walk every element of indices: call back with the element's linear index
 * and the data offset it addresses (axis coordinate from the index value).
 * Returns false (having called nothing) if any index is out of range. */
typedef struct gs_walk {
    const evo_tensor *x, *ind;
    int32_t axis;
} gs_walk;

static bool gs_walk_check(const gs_walk *w)
{
    int64_t n = evo_shape_numel(&w->ind->shape), dim = w->x->shape.dims[w->axis];
    for (int64_t i = 0; i < n; i++) {
        int64_t v = gs_index_at(w->ind, i);
        if (v < -dim || v >= dim)
            return false;
    }
    return true;
}

/* Data offsets addressed by each index element, written to the caller's
 * callback by iterating with an odometer over the indices' coordinates. */
#define GS_WALK(W, I, OFF, BODY)                                                                   \
    do {                                                                                           \
        const evo_shape *is_ = &(W)->ind->shape, *xs_ = &(W)->x->shape;                            \
        int32_t r_ = xs_->rank;                                                                    \
        int64_t xstride_[EVO_MAX_RANK], idx_[EVO_MAX_RANK] = {0}, base_ = 0;                       \
        int64_t s_ = 1, n_ = evo_shape_numel(is_), dim_ = xs_->dims[(W)->axis];                    \
        for (int32_t d_ = r_ - 1; d_ >= 0; d_--) {                                                 \
            xstride_[d_] = s_;                                                                     \
            s_ *= xs_->dims[d_];                                                                   \
        }                                                                                          \
        for (int64_t I = 0; I < n_; I++) {                                                         \
            int64_t v_ = gs_index_at((W)->ind, I);                                                 \
            if (v_ < 0)                                                                            \
                v_ += dim_;                                                                        \
            int64_t OFF = base_ + v_ * xstride_[(W)->axis];                                        \
            BODY;                                                                                  \
            for (int32_t d_ = r_ - 1; d_ >= 0; d_--) {                                             \
                int64_t st_ = d_ == (W)->axis ? 0 : xstride_[d_];                                  \
                base_ += st_;                                                                      \
                if (++idx_[d_] < is_->dims[d_])                                                    \
                    break;                                                                         \
                base_ -= st_ * is_->dims[d_];                                                      \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static evo_status gs_eval_gather(const evo_kctx *c)
{
    const gs_params *p = c->params;
    gs_walk w = {.x = c->in[0], .ind = c->in[1]};
    if (evo_op_norm_axis(p->axis, w.x->shape.rank, &w.axis) != EVO_OK)
        return EVO_ERR_INTERNAL;
    if (!gs_walk_check(&w))
        return EVO_ERR_INVALID_ARG;
    size_t es = evo_dtype_size(w.x->dtype);
    const unsigned char *src = w.x->data;
    unsigned char *dst = c->out[0]->data;
    GS_WALK(&w, i, off, memcpy(dst + (size_t)i * es, src + (size_t)off * es, es));
    return EVO_OK;
}

/* out = data (unless in place), then combine the updates in. */
static evo_status gs_copy_data(const evo_kctx *c)
{
    size_t nbytes;
    if (evo_shape_nbytes(&c->in[0]->shape, c->in[0]->dtype, &nbytes) != EVO_OK)
        return EVO_ERR_INTERNAL;
    if (c->out[0]->data != c->in[0]->data && nbytes > 0)
        memcpy(c->out[0]->data, c->in[0]->data, nbytes);
    return EVO_OK;
}

static evo_status gs_eval_scatter_elements(const evo_kctx *c)
{
    const gs_params *p = c->params;
    gs_walk w = {.x = c->in[0], .ind = c->in[1]};
    if (evo_op_norm_axis(p->axis, w.x->shape.rank, &w.axis) != EVO_OK)
        return EVO_ERR_INTERNAL;
    if (!gs_walk_check(&w))
        return EVO_ERR_INVALID_ARG;
    evo_status rv = gs_copy_data(c);
    if (rv != EVO_OK)
        return rv;
    size_t es = evo_dtype_size(w.x->dtype);
    const unsigned char *upd = c->in[2]->data;
    unsigned char *dst = c->out[0]->data;
    gs_combine_fn fn =
        p->reduction == GS_RED_NONE ? NULL : gs_combine_table[w.x->dtype][p->reduction];
    if (fn == NULL)
        GS_WALK(&w, i, off, memcpy(dst + (size_t)off * es, upd + (size_t)i * es, es));
    else
        GS_WALK(&w, i, off, fn(dst + (size_t)off * es, upd + (size_t)i * es));
    return EVO_OK;
}

/* ---------------------------------------------------------------- ScatterND */

static evo_status gs_infer_scatter_nd(const evo_kctx *c)
{
    const evo_op_def *op = &evo_op_ScatterND;
    const gs_params *p = c->params;
    evo_status rv = gs_check_common(op, c);
    if (rv == EVO_OK)
        rv = gs_check_reduction(op, c, p->reduction);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    int32_t r = x->shape.rank, q = ind->shape.rank;
    if (q < 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "ScatterND: indices must have rank >= 1");
    int32_t k = ind->shape.dims[q - 1];
    if (k < 1 || k > r)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "ScatterND: the last dim of indices (%d) must be in 1..%d (the "
                             "rank of data)",
                             (int)k, (int)r);
    if (u->dtype != x->dtype)
        return evo_error_set(c->err, EVO_ERR_TYPE, "ScatterND: updates has type %s, data %s",
                             evo_dtype_name(u->dtype), evo_dtype_name(x->dtype));
    /* updates: indices.shape[:-1] + data.shape[k:] */
    bool ok = u->shape.rank == q - 1 + r - k;
    for (int32_t d = 0; ok && d < q - 1; d++)
        ok = u->shape.dims[d] == ind->shape.dims[d];
    for (int32_t d = k; ok && d < r; d++)
        ok = u->shape.dims[q - 1 + d - k] == x->shape.dims[d];
    if (!ok) {
        char bu[96];
        evo_shape_format(&u->shape, bu, sizeof bu);
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "ScatterND: updates has shape %s; expected indices.shape[:-1] + "
                             "data.shape[%d:]",
                             bu, (int)k);
    }
    if (ind->data != NULL) {
        int64_t n = evo_shape_numel(&ind->shape);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = gs_index_at(ind, i), dim = x->shape.dims[i % k];
            if (v < -dim || v >= dim)
                return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                                     "ScatterND: index %lld is out of range for dim %d of "
                                     "length %lld",
                                     (long long)v, (int)(i % k), (long long)dim);
        }
    }
    return kpool_set_out(c, op->name, c->out[0], x->dtype, &x->shape);
}

static evo_status gs_eval_scatter_nd(const evo_kctx *c)
{
    const gs_params *p = c->params;
    const evo_tensor *x = c->in[0], *ind = c->in[1];
    int32_t r = x->shape.rank, q = ind->shape.rank, k = ind->shape.dims[q - 1];
    int64_t tuples = kpool_prod(&ind->shape, 0, q - 1);
    int64_t slice = kpool_prod(&x->shape, k, r);
    int64_t stride[EVO_MAX_RANK];
    for (int32_t d = 0; d < k; d++)
        stride[d] = kpool_prod(&x->shape, d + 1, r);
    for (int64_t j = 0; j < tuples * k; j++) {
        int64_t v = gs_index_at(ind, j), dim = x->shape.dims[j % k];
        if (v < -dim || v >= dim)
            return EVO_ERR_INVALID_ARG;
    }
    evo_status rv = gs_copy_data(c);
    if (rv != EVO_OK)
        return rv;
    size_t es = evo_dtype_size(x->dtype);
    const unsigned char *upd = c->in[2]->data;
    unsigned char *dst = c->out[0]->data;
    gs_combine_fn fn =
        p->reduction == GS_RED_NONE ? NULL : gs_combine_table[x->dtype][p->reduction];
    for (int64_t j = 0; j < tuples; j++) {
        int64_t off = 0;
        for (int32_t d = 0; d < k; d++) {
            int64_t v = gs_index_at(ind, j * k + d);
            off += (v < 0 ? v + x->shape.dims[d] : v) * stride[d];
        }
        unsigned char *o = dst + (size_t)off * es;
        const unsigned char *s = upd + (size_t)(j * slice) * es;
        if (fn == NULL)
            memcpy(o, s, (size_t)slice * es);
        else
            for (int64_t e = 0; e < slice; e++)
                fn(o + (size_t)e * es, s + (size_t)e * es);
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- definitions */

static void gs_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = c->n_in > 2 ? kpool_numel_u(c->in[2]) : 0;
}

const evo_op_def evo_op_GatherElements = {
    .name = "GatherElements",
    .domain = "",
    .id = 109,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = gs_parse_gather,
    .infer = gs_infer_gather,
    .cost = gs_cost,
    .eval = gs_eval_gather,
};

/* In place: the output starts as a copy of data, which is skipped when they
 * share a buffer; updates are combined into it afterwards. */
const evo_op_def evo_op_ScatterElements = {
    .name = "ScatterElements",
    .domain = "",
    .id = 110,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = gs_parse_scatter_elements,
    .infer = gs_infer_scatter_elements,
    .cost = gs_cost,
    .eval = gs_eval_scatter_elements,
};

const evo_op_def evo_op_ScatterND = {
    .name = "ScatterND",
    .domain = "",
    .id = 111,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = gs_parse_scatter_nd,
    .infer = gs_infer_scatter_nd,
    .cost = gs_cost,
    .eval = gs_eval_scatter_nd,
};

/* Scatter (opsets 9-10) is ScatterElements without reduction; parse still
 * reads no reduction attribute, so it stays "none". */
const evo_op_def evo_op_Scatter = {
    .name = "Scatter",
    .domain = "",
    .id = 112,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = gs_parse_gather,
    .infer = gs_infer_scatter,
    .cost = gs_cost,
    .eval = gs_eval_scatter_elements,
};
