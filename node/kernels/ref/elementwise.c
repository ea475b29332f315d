/* Shared infer/eval helpers of the element-wise ops; see elementwise.h. */
#include "elementwise.h"

#include <string.h>

/* "float32, int32 or int64" from a mask, into buf (always terminated). */
static void elem_format_types(uint32_t mask, char *buf, size_t cap)
{
    size_t pos = 0;
    int count = 0, total = 0;
    for (int dt = 0; dt < EVO_DT_COUNT_; dt++)
        total += evo_elem_dt_in(mask, (evo_dtype)dt);
    buf[0] = '\0';
    for (int dt = 0; dt < EVO_DT_COUNT_; dt++) {
        if (!evo_elem_dt_in(mask, (evo_dtype)dt))
            continue;
        const char *sep = count == 0 ? "" : (count == total - 1 ? " or " : ", ");
        const char *name = evo_dtype_name((evo_dtype)dt);
        size_t ls = strlen(sep), ln = strlen(name);
        if (pos + ls + ln + 1 > cap)
            break;
        memcpy(buf + pos, sep, ls);
        memcpy(buf + pos + ls, name, ln);
        pos += ls + ln;
        buf[pos] = '\0';
        count++;
    }
}

evo_status evo_elem_check_inputs(const evo_op_def *op, const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 0; i < c->n_in; i++) {
        const evo_tensor *t = c->in[i];
        if (t == NULL)
            continue;
        if (evo_shape_numel(&t->shape) < 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: input %d has an invalid shape (rank %d)", op->name, (int)i,
                                 (int)t->shape.rank);
        if (!evo_dtype_is_supported(t->dtype))
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "%s: input %d has type %s, which evo cannot compute with",
                                 op->name, (int)i, evo_dtype_name(t->dtype));
    }
    if (c->n_out < 1 || c->out[0] == NULL)
        return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: output 0 is missing", op->name);
    return EVO_OK;
}

evo_status evo_elem_type_error(const evo_op_def *op, const evo_kctx *c, int32_t input,
                               uint32_t allowed)
{
    char types[160];
    elem_format_types(allowed, types, sizeof types);
    /* A type outside this set is one evo does not implement for the op
     * (whether or not ONNX allows it): unsupported, so checks skip it. */
    return evo_error_set(c->err, EVO_ERR_UNSUPPORTED, "%s: input %d has type %s; evo supports %s",
                         op->name, (int)input, evo_dtype_name(c->in[input]->dtype), types);
}

evo_status evo_elem_check_type(const evo_op_def *op, const evo_kctx *c, int32_t i, uint32_t allowed)
{
    if (i >= c->n_in || c->in[i] == NULL || evo_elem_dt_in(allowed, c->in[i]->dtype))
        return EVO_OK;
    return evo_elem_type_error(op, c, i, allowed);
}

evo_status evo_elem_check_same_type(const evo_op_def *op, const evo_kctx *c, int32_t i, int32_t j)
{
    if (c->in[i]->dtype == c->in[j]->dtype)
        return EVO_OK;
    return evo_error_set(
        c->err, EVO_ERR_TYPE, "%s: inputs %d and %d must have the same type, got %s and %s",
        op->name, (int)i, (int)j, evo_dtype_name(c->in[i]->dtype), evo_dtype_name(c->in[j]->dtype));
}

evo_status evo_elem_broadcast_shapes(const evo_op_def *op, const evo_kctx *c, const int32_t *inputs,
                                     int32_t n, evo_shape *out)
{
    evo_shape acc = {0};
    int32_t first = -1;
    for (int32_t k = 0; k < n; k++) {
        const evo_tensor *t = c->in[inputs[k]];
        if (t == NULL)
            continue;
        if (first < 0) {
            acc = t->shape;
            first = inputs[k];
            continue;
        }
        evo_shape next;
        if (evo_shape_broadcast(&acc, &t->shape, &next) != EVO_OK) {
            char sa[96], sb[96];
            evo_shape_format(&acc, sa, sizeof sa);
            evo_shape_format(&t->shape, sb, sizeof sb);
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: shapes %s and %s (input %d) cannot be broadcast together",
                                 op->name, sa, sb, (int)inputs[k]);
        }
        acc = next;
    }
    if (evo_shape_numel(&acc) < 0)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: the broadcast output is too large",
                             op->name);
    *out = acc;
    return EVO_OK;
}

evo_status evo_elem_infer_unary(const evo_op_def *op, const evo_kctx *c, uint32_t allowed,
                                evo_dtype out_dtype)
{
    evo_status rv = evo_elem_check_inputs(op, c);
    if (rv == EVO_OK)
        rv = evo_elem_check_type(op, c, 0, allowed);
    if (rv != EVO_OK)
        return rv;
    c->out[0]->dtype = out_dtype != EVO_DT_UNDEFINED ? out_dtype : c->in[0]->dtype;
    c->out[0]->shape = c->in[0]->shape;
    return EVO_OK;
}

evo_status evo_elem_infer_binary(const evo_op_def *op, const evo_kctx *c, uint32_t allowed,
                                 evo_dtype out_dtype)
{
    static const int32_t both[2] = {0, 1};
    evo_status rv = evo_elem_check_inputs(op, c);
    if (rv == EVO_OK)
        rv = evo_elem_check_type(op, c, 0, allowed);
    if (rv == EVO_OK)
        rv = evo_elem_check_same_type(op, c, 0, 1);
    evo_shape shape;
    if (rv == EVO_OK)
        rv = evo_elem_broadcast_shapes(op, c, both, 2, &shape);
    if (rv != EVO_OK)
        return rv;
    c->out[0]->dtype = out_dtype != EVO_DT_UNDEFINED ? out_dtype : c->in[0]->dtype;
    c->out[0]->shape = shape;
    return EVO_OK;
}

void evo_elem_cost_out(const evo_kctx *c, uint64_t factor, evo_op_cost *cost)
{
    int64_t n = c->n_out > 0 && c->out[0] != NULL ? evo_shape_numel(&c->out[0]->shape) : 0;
    cost->flops = n > 0 ? (uint64_t)n * factor : 0;
}

evo_status evo_elem_run_binary(evo_elem_binary_fn fn, const evo_tensor *a, const evo_tensor *b,
                               evo_tensor *out)
{
    const evo_shape *shapes[2] = {&a->shape, &b->shape};
    evo_bcast plan;
    evo_status rv = evo_bcast_plan(&plan, &out->shape, shapes, 2);
    if (rv != EVO_OK)
        return rv;
    size_t ea = evo_dtype_size(a->dtype), eb = evo_dtype_size(b->dtype);
    size_t eo = evo_dtype_size(out->dtype);
    const unsigned char *pa = a->data, *pb = b->data;
    unsigned char *po = out->data;
    evo_bcast_iter it;
    evo_bcast_begin(&plan, &it);
    while (evo_bcast_next(&plan, &it))
        fn(po + (size_t)it.out_off * eo, pa + (size_t)it.in_off[0] * ea, plan.inner_stride[0],
           pb + (size_t)it.in_off[1] * eb, plan.inner_stride[1], plan.inner);
    return EVO_OK;
}

uint32_t evo_elem_table_mask(const evo_elem_unary_fn *table)
{
    uint32_t mask = 0;
    for (int dt = 0; dt < EVO_DT_COUNT_; dt++)
        if (table[dt] != NULL)
            mask |= EVO_ELEM_DT(dt);
    return mask;
}

evo_status evo_elem_run_unary(const evo_elem_unary_fn *table, const evo_kctx *c)
{
    const evo_tensor *in = c->in[0];
    evo_tensor *out = c->out[0];
    if ((unsigned)in->dtype >= EVO_DT_COUNT_ || table[in->dtype] == NULL)
        return EVO_ERR_INTERNAL; /* infer rejects these */
    int64_t n = evo_shape_numel(&in->shape);
    if (n < 0)
        return EVO_ERR_INTERNAL;
    table[in->dtype](out->data, in->data, n, c->params);
    return EVO_OK;
}
