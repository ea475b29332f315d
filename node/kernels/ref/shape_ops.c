/*
 * Ops that make tensors from shapes or attributes: Shape, Size, Constant,
 * ConstantOfShape and Range. Shape and Size depend only on input shapes
 * (EVO_OP_SHAPE_ONLY), so the importer folds them as soon as shapes are
 * static. Constant keeps small values inside its params (params hold no
 * pointers); the importer turns Constant nodes into graph constants, so only
 * hand-built graphs reach this op.
 */
#include <math.h>
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Shape;
extern const evo_op_def evo_op_Size;
extern const evo_op_def evo_op_Constant;
extern const evo_op_def evo_op_ConstantOfShape;
extern const evo_op_def evo_op_Range;

static void shape_ops_no_flops(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

/* ---------------------------------------------------------------- Shape */

typedef struct shape_params {
    int64_t start;
    int64_t end;
    int32_t has_end;
} shape_params;
_Static_assert(sizeof(shape_params) <= EVO_PARAMS_MAX, "shape params too large");

static evo_status shape_parse(const evo_node *node, void *params, evo_error *err)
{
    shape_params *p = params;
    if (evo_attr_get_int(node, "start", 0, &p->start) != EVO_OK ||
        evo_attr_get_int(node, "end", 0, &p->end) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Shape node '%s': 'start'/'end' must be ints",
                             node->name);
    p->has_end = evo_node_attr(node, "end") != NULL;
    return EVO_OK;
}

/* Clamp an index per Shape-15: negative counts from the end, then [0, rank]. */
static int64_t shape_clamp(int64_t v, int32_t rank)
{
    if (v < 0)
        v += rank;
    return v < 0 ? 0 : (v > rank ? rank : v);
}

static void shape_range(const shape_params *p, int32_t rank, int64_t *start, int64_t *end)
{
    *start = shape_clamp(p->start, rank);
    *end = p->has_end ? shape_clamp(p->end, rank) : rank;
    if (*end < *start)
        *end = *start;
}

static evo_status shape_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Shape, c);
    if (rv != EVO_OK)
        return rv;
    int64_t s, e;
    shape_range(c->params, c->in[0]->shape.rank, &s, &e);
    c->out[0]->dtype = EVO_DT_INT64;
    c->out[0]->shape = (evo_shape){.rank = 1, .dims = {(int32_t)(e - s)}};
    return EVO_OK;
}

static evo_status shape_eval(const evo_kctx *c)
{
    int64_t s, e;
    shape_range(c->params, c->in[0]->shape.rank, &s, &e);
    int64_t *dst = c->out[0]->data;
    for (int64_t i = s; i < e; i++)
        dst[i - s] = c->in[0]->shape.dims[i];
    return EVO_OK;
}

const evo_op_def evo_op_Shape = {
    .name = "Shape",
    .domain = "",
    .id = 81,
    .flags = EVO_OP_SHAPE_ONLY,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = shape_parse,
    .infer = shape_infer,
    .cost = shape_ops_no_flops,
    .eval = shape_eval,
};

/* ---------------------------------------------------------------- Size */

static evo_status size_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Size, c);
    if (rv != EVO_OK)
        return rv;
    if (evo_shape_numel(&c->in[0]->shape) < 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "Size: input shape is invalid");
    c->out[0]->dtype = EVO_DT_INT64;
    c->out[0]->shape = (evo_shape){.rank = 0};
    return EVO_OK;
}

static evo_status size_eval(const evo_kctx *c)
{
    *(int64_t *)c->out[0]->data = evo_shape_numel(&c->in[0]->shape);
    return EVO_OK;
}

const evo_op_def evo_op_Size = {
    .name = "Size",
    .domain = "",
    .id = 82,
    .flags = EVO_OP_SHAPE_ONLY,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = size_infer,
    .cost = shape_ops_no_flops,
    .eval = size_eval,
};

/* ---------------------------------------------------------------- Constant */

#define CONSTANT_INLINE_MAX 200

typedef struct constant_params {
    int32_t dtype;
    evo_shape shape;
    uint32_t nbytes;
    unsigned char data[CONSTANT_INLINE_MAX];
} constant_params;
_Static_assert(sizeof(constant_params) <= EVO_PARAMS_MAX, "constant params too large");

static evo_status constant_store(constant_params *p, const evo_node *node, evo_dtype dt,
                                 const evo_shape *s, const void *data, evo_error *err)
{
    size_t nbytes;
    if (evo_shape_nbytes(s, dt, &nbytes) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "Constant node '%s': value of type %s has no valid size", node->name,
                             evo_dtype_name(dt));
    if (nbytes > CONSTANT_INLINE_MAX)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "Constant node '%s': a %zu-byte value must be folded into a graph "
                             "constant (at most %d bytes run as an op)",
                             node->name, nbytes, CONSTANT_INLINE_MAX);
    if (nbytes > 0 && data == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "Constant node '%s': value has no data",
                             node->name);
    p->dtype = dt;
    p->shape = *s;
    p->nbytes = (uint32_t)nbytes;
    if (nbytes > 0)
        memcpy(p->data, data, nbytes);
    return EVO_OK;
}

static evo_status constant_parse(const evo_node *node, void *params, evo_error *err)
{
    constant_params *p = params;
    static const char *const unsupported[] = {"sparse_value", "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (evo_node_attr(node, unsupported[i]) != NULL)
            return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                                 "Constant node '%s': attribute '%s' is not supported", node->name,
                                 unsupported[i]);
    static const char *const kinds[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    const evo_attr *a = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const evo_attr *t = evo_node_attr(node, kinds[i]);
        if (t != NULL && a != NULL)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "Constant node '%s' has more than one value attribute",
                                 node->name);
        if (t != NULL)
            a = t;
    }
    if (a == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "Constant node '%s' has no value attribute",
                             node->name);
    evo_shape s = {.rank = 0};
    if (strcmp(a->name, "value") == 0 && a->type == EVO_ATTR_TENSOR)
        return constant_store(p, node, a->tensor.dtype, &a->tensor.shape, a->tensor.data, err);
    if (strcmp(a->name, "value_float") == 0 && a->type == EVO_ATTR_FLOAT)
        return constant_store(p, node, EVO_DT_FLOAT32, &s, &a->f, err);
    if (strcmp(a->name, "value_int") == 0 && a->type == EVO_ATTR_INT)
        return constant_store(p, node, EVO_DT_INT64, &s, &a->i, err);
    if (a->count > (size_t)EVO_MAX_DIM)
        return evo_error_set(err, EVO_ERR_LIMIT, "Constant node '%s': value is too long",
                             node->name);
    s = (evo_shape){.rank = 1, .dims = {(int32_t)a->count}};
    if (strcmp(a->name, "value_floats") == 0 && a->type == EVO_ATTR_FLOATS)
        return constant_store(p, node, EVO_DT_FLOAT32, &s, a->floats, err);
    if (strcmp(a->name, "value_ints") == 0 && a->type == EVO_ATTR_INTS)
        return constant_store(p, node, EVO_DT_INT64, &s, a->ints, err);
    return evo_error_set(err, EVO_ERR_TYPE, "Constant node '%s': attribute '%s' has the wrong type",
                         node->name, a->name);
}

static evo_status constant_infer(const evo_kctx *c)
{
    const constant_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Constant, c);
    if (rv != EVO_OK)
        return rv;
    if (evo_dtype_size((evo_dtype)p->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Constant: value has no type (not parsed?)");
    /* params may come from a file: the stored size must match the shape */
    size_t nbytes;
    if (!evo_dtype_is_supported((evo_dtype)p->dtype) ||
        evo_shape_nbytes(&p->shape, (evo_dtype)p->dtype, &nbytes) != EVO_OK ||
        nbytes != p->nbytes || nbytes > CONSTANT_INLINE_MAX)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "Constant: params hold %u bytes, not a valid value of that type and "
                             "shape",
                             (unsigned)p->nbytes);
    c->out[0]->dtype = (evo_dtype)p->dtype;
    c->out[0]->shape = p->shape;
    return EVO_OK;
}

static evo_status constant_eval(const evo_kctx *c)
{
    const constant_params *p = c->params;
    if (p->nbytes > 0)
        memcpy(c->out[0]->data, p->data, p->nbytes);
    return EVO_OK;
}

const evo_op_def evo_op_Constant = {
    .name = "Constant",
    .domain = "",
    .id = 84,
    .flags = 0,
    .min_inputs = 0,
    .max_inputs = 0,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = constant_parse,
    .infer = constant_infer,
    .cost = shape_ops_no_flops,
    .eval = constant_eval,
};

/* ---------------------------------------------------------------- ConstantOfShape */

typedef struct cos_params {
    int32_t dtype;
    unsigned char value[8];
} cos_params;
_Static_assert(sizeof(cos_params) <= EVO_PARAMS_MAX, "ConstantOfShape params too large");

static evo_status cos_parse(const evo_node *node, void *params, evo_error *err)
{
    cos_params *p = params;
    const evo_attr *a = evo_node_attr(node, "value");
    p->dtype = EVO_DT_FLOAT32;
    if (a == NULL)
        return EVO_OK; /* float32 zero */
    if (a->type != EVO_ATTR_TENSOR)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "ConstantOfShape node '%s': 'value' must be a tensor", node->name);
    size_t es = evo_dtype_size(a->tensor.dtype);
    if (es == 0 || es > sizeof p->value)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "ConstantOfShape node '%s': value type %s is not supported",
                             node->name, evo_dtype_name(a->tensor.dtype));
    if (evo_shape_numel(&a->tensor.shape) != 1 || a->tensor.data == NULL)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "ConstantOfShape node '%s': 'value' must hold exactly one element",
                             node->name);
    p->dtype = a->tensor.dtype;
    memcpy(p->value, a->tensor.data, es);
    return EVO_OK;
}

static evo_status cos_infer(const evo_kctx *c)
{
    const cos_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_ConstantOfShape, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *st = c->in[0];
    if (st->dtype != EVO_DT_INT64 && st->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "ConstantOfShape: input must be int64");
    if (st->shape.rank != 1)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "ConstantOfShape: input must be 1-D");
    int32_t n = st->shape.dims[0];
    if (n > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "ConstantOfShape: rank %d exceeds %d", (int)n,
                             EVO_MAX_RANK);
    if (n > 0 && st->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "ConstantOfShape: input 'input' (the shape) must be a constant to "
                             "infer shapes");
    evo_shape os = {.rank = n};
    for (int32_t i = 0; i < n; i++) {
        int64_t v = st->dtype == EVO_DT_INT32 ? ((const int32_t *)st->data)[i]
                                              : ((const int64_t *)st->data)[i];
        if (v < 0 || v > EVO_MAX_DIM)
            return evo_error_set(c->err, v < 0 ? EVO_ERR_SHAPE : EVO_ERR_LIMIT,
                                 "ConstantOfShape: dim %d = %lld is invalid", (int)i, (long long)v);
        os.dims[i] = (int32_t)v;
    }
    /* params may come from a file: the value's type must be one parse allows */
    size_t es = evo_dtype_size((evo_dtype)p->dtype);
    if (!evo_dtype_is_supported((evo_dtype)p->dtype) || es == 0 || es > sizeof p->value)
        return evo_error_set(c->err, EVO_ERR_PARSE, "ConstantOfShape: value type %d is invalid",
                             (int)p->dtype);
    size_t nbytes;
    if (evo_shape_nbytes(&os, (evo_dtype)p->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "ConstantOfShape: output is too large");
    c->out[0]->dtype = (evo_dtype)p->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static evo_status cos_eval(const evo_kctx *c)
{
    const cos_params *p = c->params;
    evo_tensor *y = c->out[0];
    size_t es = evo_dtype_size(y->dtype);
    int64_t n = evo_shape_numel(&y->shape);
    bool zero = true;
    for (size_t i = 0; i < es; i++)
        zero = zero && p->value[i] == 0;
    if (zero) {
        memset(y->data, 0, (size_t)n * es);
        return EVO_OK;
    }
    unsigned char *dst = y->data;
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + (size_t)i * es, p->value, es);
    return EVO_OK;
}

const evo_op_def evo_op_ConstantOfShape = {
    .name = "ConstantOfShape",
    .domain = "",
    .id = 85,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = cos_parse,
    .infer = cos_infer,
    .cost = shape_ops_no_flops,
    .eval = cos_eval,
};

/* ---------------------------------------------------------------- Range */

static bool range_is_int(evo_dtype dt)
{
    return dt == EVO_DT_INT16 || dt == EVO_DT_INT32 || dt == EVO_DT_INT64;
}

static int64_t range_int(const evo_tensor *t)
{
    switch (t->dtype) {
    case EVO_DT_INT16:
        return *(const int16_t *)t->data;
    case EVO_DT_INT32:
        return *(const int32_t *)t->data;
    default:
        return *(const int64_t *)t->data;
    }
}

static double range_real(const evo_tensor *t)
{
    switch (t->dtype) {
    case EVO_DT_FLOAT32:
        return *(const float *)t->data;
    case EVO_DT_FLOAT16:
        return evo_f16_to_f32(*(const uint16_t *)t->data);
    case EVO_DT_BFLOAT16: {
        uint32_t bits = (uint32_t) * (const uint16_t *)t->data << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    default:
        return *(const double *)t->data;
    }
}

/* float -> bfloat16 bits, rounding to nearest even (NaN stays NaN). */
static uint16_t range_f32_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* Number of elements max(ceil((limit - start) / delta), 0), without overflow. */
static evo_status range_count(const evo_kctx *c, int64_t *out)
{
    const evo_tensor *st = c->in[0], *li = c->in[1], *de = c->in[2];
    if (range_is_int(st->dtype)) {
        int64_t s = range_int(st), l = range_int(li), d = range_int(de);
        if (d == 0)
            return evo_error_set(c->err, EVO_ERR_INVALID_ARG, "Range: delta is 0");
        uint64_t diff, mag;
        if (d > 0) {
            if (l <= s) {
                *out = 0;
                return EVO_OK;
            }
            diff = (uint64_t)l - (uint64_t)s;
            mag = (uint64_t)d;
        } else {
            if (l >= s) {
                *out = 0;
                return EVO_OK;
            }
            diff = (uint64_t)s - (uint64_t)l;
            mag = (uint64_t)0 - (uint64_t)d;
        }
        uint64_t n = diff / mag + (diff % mag != 0);
        if (n > (uint64_t)EVO_MAX_DIM)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "Range: %llu elements are too many",
                                 (unsigned long long)n);
        *out = (int64_t)n;
        return EVO_OK;
    }
    double s = range_real(st), l = range_real(li), d = range_real(de);
    if (d == 0.0 || !isfinite(s) || !isfinite(l) || !isfinite(d))
        return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                             "Range: start, limit and delta must be finite and delta non-zero");
    double n = ceil((l - s) / d);
    if (!(n <= (double)EVO_MAX_DIM))
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Range: %g elements are too many", n);
    *out = n > 0 ? (int64_t)n : 0;
    return EVO_OK;
}

static evo_status range_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Range, c);
    if (rv != EVO_OK)
        return rv;
    evo_dtype dt = c->in[0]->dtype;
    if (!range_is_int(dt) && dt != EVO_DT_FLOAT32 && dt != EVO_DT_FLOAT64 && dt != EVO_DT_FLOAT16 &&
        dt != EVO_DT_BFLOAT16)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Range: dtype %s is not supported",
                             evo_dtype_name(dt));
    for (int32_t i = 0; i < 3; i++) {
        static const char *const names[] = {"start", "limit", "delta"};
        if (c->in[i]->dtype != dt)
            return evo_error_set(c->err, EVO_ERR_TYPE,
                                 "Range: start, limit and delta must share one type");
        if (evo_shape_numel(&c->in[i]->shape) != 1 || c->in[i]->shape.rank > 1)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Range: input '%s' must be a scalar",
                                 names[i]);
        if (c->in[i]->data == NULL)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Range output size depends on runtime values (input '%s' is "
                                 "not constant)",
                                 names[i]);
    }
    int64_t n;
    if ((rv = range_count(c, &n)) != EVO_OK)
        return rv;
    c->out[0]->dtype = dt;
    c->out[0]->shape = (evo_shape){.rank = 1, .dims = {(int32_t)n}};
    return EVO_OK;
}

static evo_status range_eval(const evo_kctx *c)
{
    int64_t n;
    evo_status rv = range_count(c, &n);
    if (rv != EVO_OK)
        return rv;
    evo_tensor *y = c->out[0];
    if (n != y->shape.dims[0])
        return EVO_ERR_SHAPE; /* values changed since infer */
    if (range_is_int(y->dtype)) {
        /* start + i*delta stays in range; unsigned math avoids overflow UB
         * in the intermediate product. */
        uint64_t s = (uint64_t)range_int(c->in[0]), d = (uint64_t)range_int(c->in[2]);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)(s + (uint64_t)i * d);
            if (y->dtype == EVO_DT_INT16)
                ((int16_t *)y->data)[i] = (int16_t)v;
            else if (y->dtype == EVO_DT_INT32)
                ((int32_t *)y->data)[i] = (int32_t)v;
            else
                ((int64_t *)y->data)[i] = v;
        }
        return EVO_OK;
    }
    double s = range_real(c->in[0]), d = range_real(c->in[2]);
    for (int64_t i = 0; i < n; i++) {
        double v = s + (double)i * d;
        if (y->dtype == EVO_DT_FLOAT32)
            ((float *)y->data)[i] = (float)v;
        else if (y->dtype == EVO_DT_FLOAT16)
            ((uint16_t *)y->data)[i] = evo_f32_to_f16((float)v);
        else if (y->dtype == EVO_DT_BFLOAT16)
            ((uint16_t *)y->data)[i] = range_f32_to_bf16((float)v);
        else
            ((double *)y->data)[i] = v;
    }
    return EVO_OK;
}

const evo_op_def evo_op_Range = {
    .name = "Range",
    .domain = "",
    .id = 86,
    .flags = 0,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = range_infer,
    .cost = shape_ops_no_flops,
    .eval = range_eval,
};
