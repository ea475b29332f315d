/*
 * Linear (de)quantization between float32 and int8 / uint8 (DequantizeLinear
 * also reads int32, the type of quantized biases):
 *
 *   DequantizeLinear(x, x_scale, x_zero_point?; axis=1, block_size=0)
 *       y = (x - zero_point) * scale                      -> float32
 *   QuantizeLinear(x, y_scale, y_zero_point?; axis=1, saturate, block_size=0,
 *       output_dtype=0)
 *       y = saturate(round_half_even(x / scale) + zero_point)
 *       -> the zero point's type, else output_dtype, else uint8.
 *
 * Scale (and zero point, which must have the scale's shape) is per tensor
 * (one element), per axis (1-D of x.shape[axis] elements) or, with
 * block_size > 0 (opset 21), blocked: x's rank with dim `axis` equal to
 * ceil(x.shape[axis] / block_size). NaN quantizes to the zero point
 * (ONNX Runtime's result), +-inf saturates. `saturate` only concerns float8
 * outputs, which evo does not support.
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

typedef enum q_mode { Q_TENSOR = 0, Q_AXIS, Q_BLOCK } q_mode;

typedef struct q_params {
    int64_t axis;
    int64_t block_size;
    int32_t output_dtype;
} q_params;
_Static_assert(sizeof(q_params) <= EVO_PARAMS_MAX, "q_params too large");

/* Where each x element finds its scale. */
typedef struct q_layout {
    q_mode mode;
    int64_t outer, n, inner, sn; /* sn: scale dim along axis (blocked) */
    int64_t bs;
} q_layout;

extern const evo_op_def evo_op_DequantizeLinear;
extern const evo_op_def evo_op_QuantizeLinear;

static evo_status q_parse(const evo_node *node, void *params, evo_error *err)
{
    q_params *p = params;
    int64_t od;
    if (evo_attr_get_int(node, "axis", 1, &p->axis) != EVO_OK ||
        evo_attr_get_int(node, "block_size", 0, &p->block_size) != EVO_OK ||
        evo_attr_get_int(node, "output_dtype", 0, &od) != EVO_OK || p->block_size < 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s node '%s': axis, block_size (>= 0) and output_dtype must be "
                             "ints",
                             node->op_type, EVO_ELEM_NODE_NAME(node));
    if (od < 0 || od >= 64)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s node '%s': output_dtype %lld is not an ONNX type", node->op_type,
                             EVO_ELEM_NODE_NAME(node), (long long)od);
    p->output_dtype = (int32_t)od;
    return EVO_OK;
}

/* Validate scale and zero point against x; fills *lay. err may be NULL. */
static evo_status q_layout_make(const evo_kctx *c, const char *op, q_layout *lay)
{
    const q_params *p = c->params;
    const evo_tensor *x = c->in[0], *s = c->in[1];
    const evo_tensor *zp = c->n_in > 2 ? c->in[2] : NULL;
    int64_t ns = evo_shape_numel(&s->shape);
    memset(lay, 0, sizeof *lay);
    lay->outer = 1;
    lay->n = 1;
    lay->inner = evo_shape_numel(&x->shape);
    if (p->block_size == 0 && ns == 1 && s->shape.rank <= 1) {
        lay->mode = Q_TENSOR;
    } else {
        int32_t axis;
        if (x->shape.rank < 1 || evo_op_norm_axis(p->axis, x->shape.rank, &axis) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                                 op, (long long)p->axis, (int)x->shape.rank);
        lay->outer = kpool_prod(&x->shape, 0, axis);
        lay->n = x->shape.dims[axis];
        lay->inner = kpool_prod(&x->shape, axis + 1, x->shape.rank);
        if (p->block_size == 0) {
            if (s->shape.rank != 1 || s->shape.dims[0] != lay->n)
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "%s: the scale must have one element or shape [%lld] (per "
                                     "axis %d)",
                                     op, (long long)lay->n, (int)axis);
            lay->mode = Q_AXIS;
        } else {
            int64_t want = (lay->n + p->block_size - 1) / p->block_size;
            bool ok = s->shape.rank == x->shape.rank;
            for (int32_t d = 0; ok && d < x->shape.rank; d++)
                ok = s->shape.dims[d] == (d == axis ? want : x->shape.dims[d]);
            if (!ok)
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "%s: a blocked scale must have x's shape with dim %d = %lld",
                                     op, (int)axis, (long long)want);
            lay->mode = Q_BLOCK;
            lay->sn = want;
            lay->bs = p->block_size;
        }
    }
    if (s->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: the scale has type %s; evo supports float32", op,
                             evo_dtype_name(s->dtype));
    if (zp != NULL && !evo_shape_equal(&zp->shape, &s->shape))
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: the zero point must have the scale's shape", op);
    return EVO_OK;
}

static inline int64_t q_scale_index(const q_layout *l, int64_t o, int64_t a, int64_t in)
{
    switch (l->mode) {
    case Q_TENSOR:
        return 0;
    case Q_AXIS:
        return a;
    default:
        return (o * l->sn + a / l->bs) * l->inner + in;
    }
}

static int64_t q_read_int(const evo_tensor *t, int64_t i)
{
    if (t == NULL)
        return 0;
    switch (t->dtype) {
    case EVO_DT_INT8:
        return ((const int8_t *)t->data)[i];
    case EVO_DT_UINT8:
        return ((const uint8_t *)t->data)[i];
    case EVO_DT_INT32:
        return ((const int32_t *)t->data)[i];
    default:
        return 0;
    }
}

static void q_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = kpool_sat_mul(kpool_numel_u(c->in[0]), 3);
}

/* ---------------------------------------------------------------- DequantizeLinear */

static evo_status q_infer_dequant(const evo_kctx *c)
{
    const evo_op_def *op = &evo_op_DequantizeLinear;
    const q_params *p = c->params;
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 0; i < c->n_in; i++)
        if (c->in[i] != NULL && (rv = kpool_check_tensor(c, op->name, "input", c->in[i])) != EVO_OK)
            return rv;
    const evo_tensor *x = c->in[0], *zp = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != EVO_DT_INT8 && x->dtype != EVO_DT_UINT8 && x->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "DequantizeLinear: x has type %s; evo supports int8, uint8 and "
                             "int32",
                             evo_dtype_name(x->dtype));
    if (zp != NULL && zp->dtype != x->dtype)
        return evo_error_set(c->err, EVO_ERR_TYPE,
                             "DequantizeLinear: the zero point has type %s, x has %s",
                             evo_dtype_name(zp->dtype), evo_dtype_name(x->dtype));
    if (p->output_dtype != 0 && p->output_dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "DequantizeLinear: output_dtype %d is not supported (float32 only)",
                             (int)p->output_dtype);
    q_layout lay;
    if ((rv = q_layout_make(c, op->name, &lay)) != EVO_OK)
        return rv;
    return kpool_set_out(c, op->name, c->out[0], EVO_DT_FLOAT32, &x->shape);
}

static evo_status q_eval_dequant(const evo_kctx *c)
{
    q_layout l;
    evo_kctx q = *c;
    q.err = NULL;
    if (q_layout_make(&q, "DequantizeLinear", &l) != EVO_OK)
        return EVO_ERR_INTERNAL;
    const evo_tensor *x = c->in[0], *zp = c->n_in > 2 ? c->in[2] : NULL;
    const float *scale = c->in[1]->data;
    float *y = c->out[0]->data;
    int64_t i = 0;
    for (int64_t o = 0; o < l.outer; o++)
        for (int64_t a = 0; a < l.n; a++)
            for (int64_t in = 0; in < l.inner; in++, i++) {
                int64_t si = q_scale_index(&l, o, a, in);
                int64_t v = q_read_int(x, i) - q_read_int(zp, si);
                y[i] = (float)v * scale[si];
            }
    return EVO_OK;
}

const evo_op_def evo_op_DequantizeLinear = {
    .name = "DequantizeLinear",
    .domain = "",
    .id = 131,
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = q_parse,
    .infer = q_infer_dequant,
    .cost = q_cost,
    .eval = q_eval_dequant,
};

/* ---------------------------------------------------------------- QuantizeLinear */

static evo_status q_infer_quant(const evo_kctx *c)
{
    const evo_op_def *op = &evo_op_QuantizeLinear;
    const q_params *p = c->params;
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 0; i < c->n_in; i++)
        if (c->in[i] != NULL && (rv = kpool_check_tensor(c, op->name, "input", c->in[i])) != EVO_OK)
            return rv;
    const evo_tensor *x = c->in[0], *zp = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "QuantizeLinear: x has type %s; evo supports float32",
                             evo_dtype_name(x->dtype));
    evo_dtype yt = zp != NULL             ? zp->dtype
                   : p->output_dtype != 0 ? (evo_dtype)p->output_dtype
                                          : EVO_DT_UINT8;
    if (zp != NULL && p->output_dtype != 0 && p->output_dtype != (int32_t)zp->dtype)
        return evo_error_set(c->err, EVO_ERR_TYPE,
                             "QuantizeLinear: output_dtype %d differs from the zero point's type "
                             "%s",
                             (int)p->output_dtype, evo_dtype_name(zp->dtype));
    if (yt != EVO_DT_INT8 && yt != EVO_DT_UINT8)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "QuantizeLinear: output type %s is not supported (int8, uint8)",
                             evo_dtype_name(yt));
    q_layout lay;
    if ((rv = q_layout_make(c, op->name, &lay)) != EVO_OK)
        return rv;
    return kpool_set_out(c, op->name, c->out[0], yt, &x->shape);
}

static evo_status q_eval_quant(const evo_kctx *c)
{
    q_layout l;
    evo_kctx q = *c;
    q.err = NULL;
    if (q_layout_make(&q, "QuantizeLinear", &l) != EVO_OK)
        return EVO_ERR_INTERNAL;
    const evo_tensor *zp = c->n_in > 2 ? c->in[2] : NULL;
    const float *x = c->in[0]->data, *scale = c->in[1]->data;
    bool is_u8 = c->out[0]->dtype == EVO_DT_UINT8;
    float lo = is_u8 ? 0.0f : -128.0f, hi = is_u8 ? 255.0f : 127.0f;
    unsigned char *y = c->out[0]->data;
    int64_t i = 0;
    for (int64_t o = 0; o < l.outer; o++)
        for (int64_t a = 0; a < l.n; a++)
            for (int64_t in = 0; in < l.inner; in++, i++) {
                int64_t si = q_scale_index(&l, o, a, in);
                float v = rintf(x[i] / scale[si]);
                if (v != v)
                    v = 0.0f;
                v += (float)q_read_int(zp, si);
                v = v < lo ? lo : (v > hi ? hi : v);
                if (is_u8)
                    y[i] = (uint8_t)v;
                else
                    ((int8_t *)y)[i] = (int8_t)v;
            }
    return EVO_OK;
}

const evo_op_def evo_op_QuantizeLinear = {
    .name = "QuantizeLinear",
    .domain = "",
    .id = 132,
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = q_parse,
    .infer = q_infer_quant,
    .cost = q_cost,
    .eval = q_eval_quant,
};
