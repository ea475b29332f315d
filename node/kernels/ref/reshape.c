/*
 * Ops that change only the shape, never the bytes: Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity and (inference-mode) Dropout. All are EVO_OP_INPLACE:
 * the planner may give the output the input's buffer, and eval then skips
 * the copy. Shape parameters (Reshape's shape, Squeeze/Unsqueeze axes) come
 * from constant inputs and are re-read at eval, never cached.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Reshape;
extern const evo_op_def evo_op_Flatten;
extern const evo_op_def evo_op_Squeeze;
extern const evo_op_def evo_op_Unsqueeze;
extern const evo_op_def evo_op_Identity;
extern const evo_op_def evo_op_Dropout;

static int64_t reshape_int_at(const evo_tensor *t, int64_t i)
{
    return t->dtype == EVO_DT_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

static evo_status reshape_check_sized(const evo_kctx *c, const char *op)
{
    if (evo_dtype_size(c->in[0]->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: dtype %s has no element size", op,
                             evo_dtype_name(c->in[0]->dtype));
    return EVO_OK;
}

/* Set output 0 to input 0's dtype with shape s, checking the byte size. */
static evo_status reshape_set_out(const evo_kctx *c, const evo_shape *s, const char *op)
{
    size_t nbytes;
    if (evo_shape_nbytes(s, c->in[0]->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: output is too large", op);
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = *s;
    return EVO_OK;
}

/* Output 0 = input 0 byte for byte, unless they already share a buffer. */
static evo_status reshape_copy_eval(const evo_kctx *c)
{
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    if (y->data == x->data)
        return EVO_OK;
    size_t nbytes;
    if (evo_shape_nbytes(&x->shape, x->dtype, &nbytes) != EVO_OK)
        return EVO_ERR_INTERNAL;
    if (nbytes > 0)
        memmove(y->data, x->data, nbytes);
    return EVO_OK;
}

static void reshape_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

/* Read a constant 1-D int axes input; EVO_ERR_SHAPE naming it if not constant. */
static evo_status reshape_read_axes(const evo_kctx *c, int32_t idx, const char *op, int64_t *axes,
                                    int32_t *n)
{
    const evo_tensor *t = c->in[idx];
    if (t->dtype != EVO_DT_INT64 && t->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: input 'axes' must be int64", op);
    if (t->shape.rank > 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input 'axes' must be 1-D", op);
    int64_t cnt = evo_shape_numel(&t->shape);
    if (cnt < 0 || cnt > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input 'axes' has too many entries", op);
    if (cnt > 0 && t->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: input 'axes' must be a constant to infer shapes", op);
    for (int64_t i = 0; i < cnt; i++)
        axes[i] = reshape_int_at(t, i);
    *n = (int32_t)cnt;
    return EVO_OK;
}

/* ---------------------------------------------------------------- Reshape */

typedef struct reshape_params {
    int64_t allowzero;
} reshape_params;
_Static_assert(sizeof(reshape_params) <= EVO_PARAMS_MAX, "reshape params too large");

static evo_status reshape_parse(const evo_node *node, void *params, evo_error *err)
{
    reshape_params *p = params;
    if (evo_attr_get_int(node, "allowzero", 0, &p->allowzero) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Reshape node '%s': 'allowzero' must be an int",
                             node->name);
    return EVO_OK;
}

static evo_status reshape_infer(const evo_kctx *c)
{
    const reshape_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Reshape, c);
    if (rv != EVO_OK || (rv = reshape_check_sized(c, "Reshape")) != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *st = c->in[1];
    if (st->dtype != EVO_DT_INT64 && st->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Reshape: input 'shape' must be int64");
    if (st->shape.rank != 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Reshape: input 'shape' must be 1-D");
    int32_t n = st->shape.dims[0];
    if (n > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Reshape: target rank %d exceeds %d", (int)n,
                             EVO_MAX_RANK);
    if (n > 0 && st->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Reshape: input 'shape' must be a constant to infer shapes");
    int64_t in_numel = evo_shape_numel(&x->shape);
    if (in_numel < 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Reshape: input shape is invalid");
    evo_shape os = {.rank = n};
    int32_t infer_at = -1;
    bool has_zero = false;
    int64_t known = 1;
    for (int32_t i = 0; i < n; i++) {
        int64_t v = reshape_int_at(st, i);
        if (v == -1) {
            if (infer_at >= 0)
                return evo_error_set(c->err, EVO_ERR_SHAPE, "Reshape: more than one -1 in shape");
            infer_at = i;
            os.dims[i] = 1;
            continue;
        }
        if (v == 0 && p->allowzero == 0) {
            if (i >= x->shape.rank)
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "Reshape: shape[%d] = 0 copies a dim the input (rank %d) "
                                     "lacks",
                                     (int)i, (int)x->shape.rank);
            v = x->shape.dims[i];
        } else if (v == 0) {
            has_zero = true;
        }
        if (v < 0 || v > EVO_MAX_DIM)
            return evo_error_set(c->err, v < 0 ? EVO_ERR_SHAPE : EVO_ERR_LIMIT,
                                 "Reshape: shape[%d] = %lld is invalid", (int)i, (long long)v);
        os.dims[i] = (int32_t)v;
        if (v != 0 && known > INT64_MAX / v)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "Reshape: target shape is too large");
        known *= v;
    }
    if (infer_at >= 0) {
        if (has_zero)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Reshape: with allowzero=1, shape may not hold both 0 and -1");
        if (known == 0 || in_numel % known != 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Reshape: cannot infer the -1 dim: %lld elements do not divide "
                                 "into %lld",
                                 (long long)in_numel, (long long)known);
        if (in_numel / known > EVO_MAX_DIM)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "Reshape: inferred dim is too large");
        os.dims[infer_at] = (int32_t)(in_numel / known);
        known = in_numel;
    }
    if (known != in_numel) {
        char a[96], b[96];
        evo_shape_format(&x->shape, a, sizeof a);
        evo_shape_format(&os, b, sizeof b);
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Reshape: cannot reshape %s (%lld elements) to %s (%lld elements)", a,
                             (long long)in_numel, b, (long long)known);
    }
    return reshape_set_out(c, &os, "Reshape");
}

const evo_op_def evo_op_Reshape = {
    .name = "Reshape",
    .domain = "",
    .id = 68,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = reshape_parse,
    .infer = reshape_infer,
    .cost = reshape_cost,
    .eval = reshape_copy_eval,
};

/* ---------------------------------------------------------------- Flatten */

typedef struct flatten_params {
    int64_t axis;
} flatten_params;
_Static_assert(sizeof(flatten_params) <= EVO_PARAMS_MAX, "flatten params too large");

static evo_status flatten_parse(const evo_node *node, void *params, evo_error *err)
{
    flatten_params *p = params;
    if (evo_attr_get_int(node, "axis", 1, &p->axis) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Flatten node '%s': 'axis' must be an int",
                             node->name);
    return EVO_OK;
}

static evo_status flatten_infer(const evo_kctx *c)
{
    const flatten_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Flatten, c);
    if (rv != EVO_OK || (rv = reshape_check_sized(c, "Flatten")) != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    int32_t rank = x->shape.rank;
    /* Flatten's axis ranges over [-rank, rank], one wider than usual. */
    if (p->axis < -(int64_t)rank || p->axis > rank)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Flatten: axis %lld is out of range for rank %d", (long long)p->axis,
                             (int)rank);
    int32_t axis = (int32_t)(p->axis < 0 ? p->axis + rank : p->axis);
    int64_t a = 1, b = 1;
    for (int32_t d = 0; d < rank; d++) {
        int64_t *acc = d < axis ? &a : &b;
        if (x->shape.dims[d] != 0 && *acc > EVO_MAX_DIM / x->shape.dims[d])
            *acc = (int64_t)EVO_MAX_DIM + 1;
        else
            *acc *= x->shape.dims[d];
    }
    if (a > EVO_MAX_DIM || b > EVO_MAX_DIM)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Flatten: a flattened dim exceeds %d",
                             (int)EVO_MAX_DIM);
    evo_shape os = {.rank = 2, .dims = {(int32_t)a, (int32_t)b}};
    return reshape_set_out(c, &os, "Flatten");
}

const evo_op_def evo_op_Flatten = {
    .name = "Flatten",
    .domain = "",
    .id = 69,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = flatten_parse,
    .infer = flatten_infer,
    .cost = reshape_cost,
    .eval = reshape_copy_eval,
};

/* ---------------------------------------------------------------- Squeeze */

static evo_status squeeze_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Squeeze, c);
    if (rv != EVO_OK || (rv = reshape_check_sized(c, "Squeeze")) != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    int32_t rank = x->shape.rank;
    bool drop[EVO_MAX_RANK] = {false};
    int64_t axes[EVO_MAX_RANK];
    int32_t n = 0;
    if (c->n_in > 1 && c->in[1] != NULL &&
        (rv = reshape_read_axes(c, 1, "Squeeze", axes, &n)) != EVO_OK)
        return rv;
    if (n == 0) {
        for (int32_t d = 0; d < rank; d++)
            drop[d] = x->shape.dims[d] == 1;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t a;
        if (evo_op_norm_axis(axes[i], rank, &a) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Squeeze: axis %lld is out of range for rank %d",
                                 (long long)axes[i], (int)rank);
        if (drop[a])
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Squeeze: axis %d is repeated", (int)a);
        if (x->shape.dims[a] != 1)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Squeeze: axis %d has length %d, not 1",
                                 (int)a, (int)x->shape.dims[a]);
        drop[a] = true;
    }
    evo_shape os = {.rank = 0};
    for (int32_t d = 0; d < rank; d++)
        if (!drop[d])
            os.dims[os.rank++] = x->shape.dims[d];
    return reshape_set_out(c, &os, "Squeeze");
}

const evo_op_def evo_op_Squeeze = {
    .name = "Squeeze",
    .domain = "",
    .id = 71,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = squeeze_infer,
    .cost = reshape_cost,
    .eval = reshape_copy_eval,
};

/* ---------------------------------------------------------------- Unsqueeze */

static evo_status unsqueeze_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Unsqueeze, c);
    if (rv != EVO_OK || (rv = reshape_check_sized(c, "Unsqueeze")) != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    int64_t axes[EVO_MAX_RANK];
    int32_t n = 0;
    if ((rv = reshape_read_axes(c, 1, "Unsqueeze", axes, &n)) != EVO_OK)
        return rv;
    if (n == 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Unsqueeze: input 'axes' is empty");
    int32_t out_rank = x->shape.rank + n;
    if (out_rank > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Unsqueeze: output rank %d exceeds %d",
                             (int)out_rank, EVO_MAX_RANK);
    bool ins[EVO_MAX_RANK] = {false};
    for (int32_t i = 0; i < n; i++) {
        int32_t a;
        if (evo_op_norm_axis(axes[i], out_rank, &a) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Unsqueeze: axis %lld is out of range for output rank %d",
                                 (long long)axes[i], (int)out_rank);
        if (ins[a])
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Unsqueeze: axis %d is repeated", (int)a);
        ins[a] = true;
    }
    evo_shape os = {.rank = out_rank};
    for (int32_t d = 0, j = 0; d < out_rank; d++)
        os.dims[d] = ins[d] ? 1 : x->shape.dims[j++];
    return reshape_set_out(c, &os, "Unsqueeze");
}

const evo_op_def evo_op_Unsqueeze = {
    .name = "Unsqueeze",
    .domain = "",
    .id = 72,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = unsqueeze_infer,
    .cost = reshape_cost,
    .eval = reshape_copy_eval,
};

/* ---------------------------------------------------------------- Identity */

static evo_status identity_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Identity, c);
    if (rv != EVO_OK || (rv = reshape_check_sized(c, "Identity")) != EVO_OK)
        return rv;
    return reshape_set_out(c, &c->in[0]->shape, "Identity");
}

const evo_op_def evo_op_Identity = {
    .name = "Identity",
    .domain = "",
    .id = 87,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = identity_infer,
    .cost = reshape_cost,
    .eval = reshape_copy_eval,
};

/* ---------------------------------------------------------------- Dropout */

/* Inference-mode Dropout is the identity; the optional mask is all "kept".
 * Before opset 10 the mask has the input's type, from 10 on it is bool. */
typedef struct dropout_params {
    int32_t mask_is_bool;
} dropout_params;
_Static_assert(sizeof(dropout_params) <= EVO_PARAMS_MAX, "dropout params too large");

static evo_status dropout_parse(const evo_node *node, void *params, evo_error *err)
{
    dropout_params *p = params;
    p->mask_is_bool = node->opset == 0 || node->opset >= 10;
    return EVO_OK;
}

/* Write the value one in dtype dt to dst; false if dt has no "one" here. */
static bool dropout_one(evo_dtype dt, unsigned char *dst)
{
    switch (dt) {
    case EVO_DT_FLOAT32: {
        float v = 1.0f;
        memcpy(dst, &v, 4);
        return true;
    }
    case EVO_DT_FLOAT64: {
        double v = 1.0;
        memcpy(dst, &v, 8);
        return true;
    }
    case EVO_DT_FLOAT16:
    case EVO_DT_BFLOAT16: {
        uint16_t v = dt == EVO_DT_FLOAT16 ? 0x3C00u : 0x3F80u;
        memcpy(dst, &v, 2);
        return true;
    }
    case EVO_DT_BOOL:
    case EVO_DT_INT8:
    case EVO_DT_UINT8:
    case EVO_DT_INT16:
    case EVO_DT_UINT16:
    case EVO_DT_INT32:
    case EVO_DT_UINT32:
    case EVO_DT_INT64:
    case EVO_DT_UINT64: {
        /* Little- and big-endian alike: integer one, element size bytes. */
        size_t es = evo_dtype_size(dt);
        uint64_t one = 1;
        if (es == 8) {
            memcpy(dst, &one, 8);
        } else if (es == 4) {
            uint32_t v = 1;
            memcpy(dst, &v, 4);
        } else if (es == 2) {
            uint16_t v = 1;
            memcpy(dst, &v, 2);
        } else {
            dst[0] = 1;
        }
        return true;
    }
    default:
        return false;
    }
}

static evo_status dropout_infer(const evo_kctx *c)
{
    const dropout_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Dropout, c);
    if (rv != EVO_OK || (rv = reshape_check_sized(c, "Dropout")) != EVO_OK)
        return rv;
    if (c->n_in > 2 && c->in[2] != NULL) {
        const evo_tensor *tm = c->in[2];
        if (tm->dtype != EVO_DT_BOOL || evo_shape_numel(&tm->shape) != 1)
            return evo_error_set(c->err, EVO_ERR_TYPE,
                                 "Dropout: input 'training_mode' must be a bool scalar");
        if (tm->data == NULL)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "Dropout: input 'training_mode' must be a constant (evo runs "
                                 "inference only)");
        if (*(const unsigned char *)tm->data != 0)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "Dropout: training_mode=true is not supported (inference only)");
    }
    if ((rv = reshape_set_out(c, &c->in[0]->shape, "Dropout")) != EVO_OK)
        return rv;
    if (c->n_out > 1 && c->out[1] != NULL) {
        evo_dtype mdt = p->mask_is_bool ? EVO_DT_BOOL : c->in[0]->dtype;
        unsigned char probe[8];
        if (!dropout_one(mdt, probe))
            return evo_error_set(c->err, EVO_ERR_TYPE, "Dropout: cannot make a %s mask",
                                 evo_dtype_name(mdt));
        c->out[1]->dtype = mdt;
        c->out[1]->shape = c->in[0]->shape;
    }
    return EVO_OK;
}

static evo_status dropout_eval(const evo_kctx *c)
{
    evo_status rv = reshape_copy_eval(c);
    if (rv != EVO_OK)
        return rv;
    if (c->n_out > 1 && c->out[1] != NULL) {
        evo_tensor *m = c->out[1];
        size_t es = evo_dtype_size(m->dtype);
        int64_t n = evo_shape_numel(&m->shape);
        unsigned char *dst = m->data;
        if (es == 1) {
            if (n > 0)
                memset(dst, 1, (size_t)n);
        } else {
            for (int64_t i = 0; i < n; i++)
                dropout_one(m->dtype, dst + (size_t)i * es);
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Dropout = {
    .name = "Dropout",
    .domain = "",
    .id = 88,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 2,
    .parse = dropout_parse,
    .infer = dropout_infer,
    .cost = reshape_cost,
    .eval = dropout_eval,
};
