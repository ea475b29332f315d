/*
 * Small shape helpers shared by the pooling, normalization, softmax,
 * reduction and arg-max kernels (pool.c, norm.c, softmax.c, reduce.c,
 * reduce_extra.c, argmax.c). Private to those files: everything is static inline.
 */
#ifndef EVO_KPOOL_UTIL_H
#define EVO_KPOOL_UTIL_H

#include "evo/op.h"

/* Product of dims [from, to) of a shape whose numel infer has checked, so
 * no partial product can overflow. */
static inline int64_t kpool_prod(const evo_shape *s, int32_t from, int32_t to)
{
    int64_t n = 1;
    for (int32_t i = from; i < to; i++)
        n *= s->dims[i];
    return n;
}

/* a * b for cost estimates, saturating instead of wrapping. */
static inline uint64_t kpool_sat_mul(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

/* Elements of a tensor for cost estimates (0 for an invalid shape). */
static inline uint64_t kpool_numel_u(const evo_tensor *t)
{
    int64_t n = t != NULL ? evo_shape_numel(&t->shape) : 0;
    return n > 0 ? (uint64_t)n : 0;
}

/* Validate a tensor's shape: rank and dims in range and the byte size
 * representable. Fills c->err naming op and role on failure. */
static inline evo_status kpool_check_tensor(const evo_kctx *c, const char *op, const char *role,
                                            const evo_tensor *t)
{
    size_t nbytes;
    if (t->shape.rank < 0 || t->shape.rank > EVO_MAX_RANK)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input %s has invalid rank %d", op, role,
                             (int)t->shape.rank);
    if (evo_shape_numel(&t->shape) < 0 || evo_shape_nbytes(&t->shape, t->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: input %s has a negative dim or too many elements", op, role);
    return EVO_OK;
}

/* Set out's dtype and shape (out must be present) and check that its byte size is representable. */
static inline evo_status kpool_set_out(const evo_kctx *c, const char *op, evo_tensor *out,
                                       evo_dtype dt, const evo_shape *shape)
{
    size_t nbytes;
    if (out == NULL)
        return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: required output Y is missing", op);
    out->dtype = dt;
    out->shape = *shape;
    if (evo_shape_nbytes(shape, dt, &nbytes) != EVO_OK) {
        char buf[96];
        evo_shape_format(shape, buf, sizeof buf);
        return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: output shape %s is too large", op, buf);
    }
    return EVO_OK;
}

/* The reduced axes of a Reduce* op (reduce.c, reduce_extra.c): from the
 * optional int64 input 1 (opset 18), which must be constant, or else from
 * the attribute axes kept in params (older opsets; params may come from a
 * file, so their count is checked). mask[d] is set for each reduced dim;
 * *noop when the op is the identity (no axes and noop_with_empty_axes).
 * err may be NULL. */
static inline evo_status kpool_reduce_axes(const evo_kctx *c, const char *op, int32_t n_attr_axes,
                                           const int32_t *attr_axes, bool noop_with_empty_axes,
                                           bool mask[EVO_MAX_RANK], bool *noop)
{
    int32_t rank = c->in[0]->shape.rank;
    const evo_tensor *ax = c->n_in > 1 ? c->in[1] : NULL;
    int64_t n, vals[EVO_MAX_RANK];
    if (ax != NULL) {
        if (n_attr_axes > 0)
            return evo_error_set(c->err, EVO_ERR_GRAPH,
                                 "%s: axes given both as attribute and as input", op);
        if (ax->dtype != EVO_DT_INT64)
            return evo_error_set(c->err, EVO_ERR_TYPE, "%s: input axes has type %s, not int64", op,
                                 evo_dtype_name(ax->dtype));
        if (ax->shape.rank > 1)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input axes must be 1-D, got rank %d",
                                 op, (int)ax->shape.rank);
        n = evo_shape_numel(&ax->shape);
        if (n < 0 || n > EVO_MAX_RANK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: input axes has %lld entries, at most %d allowed", op,
                                 (long long)n, EVO_MAX_RANK);
        if (n > 0 && ax->data == NULL)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: input axes must be a constant (its value fixes the output "
                                 "shape)",
                                 op);
        for (int64_t i = 0; i < n; i++)
            vals[i] = ((const int64_t *)ax->data)[i];
    } else {
        if (n_attr_axes < 0 || n_attr_axes > EVO_MAX_RANK)
            return evo_error_set(c->err, EVO_ERR_PARSE, "%s: %d axes in params, at most %d", op,
                                 (int)n_attr_axes, EVO_MAX_RANK);
        n = n_attr_axes;
        for (int64_t i = 0; i < n; i++)
            vals[i] = attr_axes[i];
    }
    *noop = n == 0 && noop_with_empty_axes;
    for (int32_t i = 0; i < EVO_MAX_RANK; i++)
        mask[i] = n == 0 && !*noop;
    for (int64_t i = 0; i < n; i++) {
        int32_t a;
        if (evo_op_norm_axis(vals[i], rank, &a) != EVO_OK)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "%s: axis %lld is out of range for an input of rank %d", op,
                                 (long long)vals[i], (int)rank);
        if (mask[a])
            return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: axis %lld is given twice", op,
                                 (long long)vals[i]);
        mask[a] = true;
    }
    return EVO_OK;
}

#endif /* EVO_KPOOL_UTIL_H */
