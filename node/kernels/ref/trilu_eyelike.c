/*
 * Diagonal-pattern ops over the last two dims:
 *
 *   Trilu(input, k?; upper=1)  keeps the elements on and above (upper) or
 *       on and below (lower) the k-th diagonal of each matrix, zeroes the
 *       rest. k is an optional int64 scalar; it does not change the shape,
 *       so it may be computed at run time and is read at eval.
 *   EyeLike(input; dtype?, k=0)  a 2-D tensor of input's shape with ones on
 *       the k-th diagonal (j - i == k) and zeros elsewhere, of type dtype
 *       (default: input's type). Only the input's shape is used.
 *
 * Both work on any element type by size (zero is all-zero bytes in every
 * type evo holds); EyeLike writes a typed 1.
 */
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef struct tri_params {
    int64_t k;
    int32_t upper;
    int32_t dtype; /* EyeLike: 0 = the input's */
} tri_params;
_Static_assert(sizeof(tri_params) <= EVO_PARAMS_MAX, "tri_params too large");

extern const evo_op_def evo_op_Trilu;
extern const evo_op_def evo_op_EyeLike;

/* ---------------------------------------------------------------- Trilu */

static evo_status tri_parse_trilu(const evo_node *node, void *params, evo_error *err)
{
    tri_params *p = params;
    int64_t upper;
    if (evo_attr_get_int(node, "upper", 1, &upper) != EVO_OK || (upper != 0 && upper != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "Trilu node '%s': upper must be 0 or 1",
                             EVO_ELEM_NODE_NAME(node));
    p->upper = (int32_t)upper;
    return EVO_OK;
}

static evo_status tri_infer_trilu(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Trilu, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *k = c->n_in > 1 ? c->in[1] : NULL;
    if ((rv = kpool_check_tensor(c, "Trilu", "input", x)) != EVO_OK)
        return rv;
    if (!evo_dtype_is_supported(x->dtype) || evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "Trilu: input has type %s, which evo cannot compute with",
                             evo_dtype_name(x->dtype));
    if (x->shape.rank < 2)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Trilu: input must have rank >= 2, got %d",
                             (int)x->shape.rank);
    if (k != NULL &&
        (k->dtype != EVO_DT_INT64 || evo_shape_numel(&k->shape) != 1 || k->shape.rank > 1))
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Trilu: k must be an int64 scalar");
    return kpool_set_out(c, "Trilu", c->out[0], x->dtype, &x->shape);
}

static evo_status tri_eval_trilu(const evo_kctx *c)
{
    const tri_params *p = c->params;
    const evo_tensor *x = c->in[0];
    int64_t k = c->n_in > 1 && c->in[1] != NULL ? *(const int64_t *)c->in[1]->data : 0;
    int32_t r = x->shape.rank;
    int64_t rows = x->shape.dims[r - 2], cols = x->shape.dims[r - 1];
    int64_t mats = kpool_prod(&x->shape, 0, r - 2);
    size_t es = evo_dtype_size(x->dtype), row_bytes = (size_t)cols * es;
    const unsigned char *src = x->data;
    unsigned char *dst = c->out[0]->data;
    for (int64_t m = 0; m < mats; m++) {
        for (int64_t i = 0; i < rows; i++) {
            /* Kept columns: j >= i + k (upper) or j <= i + k (lower),
             * clamped to the row. k may be huge; compare before adding. */
            int64_t lo = 0, hi = cols; /* [lo, hi) */
            if (p->upper)
                lo = k > cols ? cols : (k < -rows ? 0 : i + k);
            else
                hi = k > cols ? cols : (k < -rows ? 0 : i + k + 1);
            lo = lo < 0 ? 0 : (lo > cols ? cols : lo);
            hi = hi < 0 ? 0 : (hi > cols ? cols : hi);
            if (hi < lo)
                hi = lo;
            size_t off = (size_t)(m * rows + i) * row_bytes;
            const unsigned char *s = src + off;
            unsigned char *d = dst + off;
            if (d != s)
                memcpy(d + (size_t)lo * es, s + (size_t)lo * es, (size_t)(hi - lo) * es);
            memset(d, 0, (size_t)lo * es);
            memset(d + (size_t)hi * es, 0, (size_t)(cols - hi) * es);
        }
    }
    return EVO_OK;
}

static void tri_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

/* In place: each row's kept span is copied (skipped when in place) and the
 * rest zeroed; no element is read after it is written. */
const evo_op_def evo_op_Trilu = {
    .name = "Trilu",
    .domain = "",
    .id = 122,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = tri_parse_trilu,
    .infer = tri_infer_trilu,
    .cost = tri_cost,
    .eval = tri_eval_trilu,
};

/* ---------------------------------------------------------------- EyeLike */

static const uint32_t tri_eye_types = EVO_ELEM_DT_NUMERIC | EVO_ELEM_DT(EVO_DT_BOOL);

static evo_status tri_parse_eyelike(const evo_node *node, void *params, evo_error *err)
{
    tri_params *p = params;
    int64_t dt;
    if (evo_attr_get_int(node, "k", 0, &p->k) != EVO_OK ||
        evo_attr_get_int(node, "dtype", 0, &dt) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "EyeLike node '%s': k and dtype must be ints",
                             EVO_ELEM_NODE_NAME(node));
    if (dt != 0 && (dt < 0 || dt >= EVO_DT_COUNT_ || !evo_elem_dt_in(tri_eye_types, (evo_dtype)dt)))
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "EyeLike node '%s': dtype %lld is not supported (float32, int32, "
                             "int64, int8, uint8, bool)",
                             EVO_ELEM_NODE_NAME(node), (long long)dt);
    p->dtype = (int32_t)dt;
    return EVO_OK;
}

static evo_status tri_infer_eyelike(const evo_kctx *c)
{
    const tri_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_EyeLike, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if ((rv = kpool_check_tensor(c, "EyeLike", "input", x)) != EVO_OK)
        return rv;
    if (x->shape.rank != 2)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "EyeLike: input must be 2-D, got rank %d",
                             (int)x->shape.rank);
    evo_dtype dt = p->dtype != 0 ? (evo_dtype)p->dtype : x->dtype;
    if (!evo_elem_dt_in(tri_eye_types, dt))
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "EyeLike: output type %s is not supported (float32, int32, int64, "
                             "int8, uint8, bool)",
                             evo_dtype_name(dt));
    return kpool_set_out(c, "EyeLike", c->out[0], dt, &x->shape);
}

static evo_status tri_eval_eyelike(const evo_kctx *c)
{
    const tri_params *p = c->params;
    evo_tensor *y = c->out[0];
    int64_t rows = y->shape.dims[0], cols = y->shape.dims[1];
    size_t es = evo_dtype_size(y->dtype);
    unsigned char *d = y->data;
    memset(d, 0, (size_t)(rows * cols) * es);
    for (int64_t i = 0; i < rows; i++) {
        if (p->k < -rows || p->k >= cols) /* no diagonal; avoids overflow in i + k */
            break;
        int64_t j = i + p->k;
        if (j < 0 || j >= cols)
            continue;
        unsigned char *e = d + (size_t)(i * cols + j) * es;
        switch (y->dtype) {
        case EVO_DT_FLOAT32:
            *(float *)e = 1.0f;
            break;
        case EVO_DT_INT32:
            *(int32_t *)e = 1;
            break;
        case EVO_DT_INT64:
            *(int64_t *)e = 1;
            break;
        default: /* int8, uint8, bool */
            *e = 1;
            break;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_EyeLike = {
    .name = "EyeLike",
    .domain = "",
    .id = 125,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = tri_parse_eyelike,
    .infer = tri_infer_eyelike,
    .cost = tri_cost,
    .eval = tri_eval_eyelike,
};
