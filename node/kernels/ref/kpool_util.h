/*
 * Small shape helpers shared by the pooling, normalization, softmax,
 * reduction and arg-max kernels (pool.c, norm.c, softmax.c, reduce.c,
 * argmax.c). Private to those files: everything is static inline.
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

#endif /* EVO_KPOOL_UTIL_H */
