/*
 * Clip(input, min?, max?) in its newest form: min and max are optional
 * scalar inputs (the importer turns Clip-6's attributes into constant
 * inputs). Types float32, int32, int64, int8, uint8. An absent bound is the
 * type's limit. As the spec says, min > max sets every element to max: the
 * kernels apply min first, then max. NaN inputs stay NaN.
 */
#include <math.h>

#include "elementwise.h"

#define CLIP_KERNEL(SUF, T)                                                                        \
    typedef struct clip_bounds_##SUF {                                                             \
        T lo, hi;                                                                                  \
    } clip_bounds_##SUF;                                                                           \
    static inline T clip_apply_##SUF(T x, T lo, T hi)                                              \
    {                                                                                              \
        x = x < lo ? lo : x;                                                                       \
        return x > hi ? hi : x;                                                                    \
    }                                                                                              \
    EVO_ELEM_UNARY_KERNEL(clip_##SUF, T, T, clip_bounds_##SUF, clip_apply_##SUF(x, P->lo, P->hi))

CLIP_KERNEL(f32, float)
CLIP_KERNEL(i32, int32_t)
CLIP_KERNEL(i64, int64_t)
CLIP_KERNEL(i8, int8_t)
CLIP_KERNEL(u8, uint8_t)

extern const evo_op_def evo_op_Clip;

static bool clip_has(const evo_kctx *c, int32_t i)
{
    return i < c->n_in && c->in[i] != NULL;
}

static evo_status clip_infer(const evo_kctx *c)
{
    evo_status rv = evo_elem_infer_unary(&evo_op_Clip, c, EVO_ELEM_DT_NUMERIC, EVO_DT_UNDEFINED);
    if (rv != EVO_OK)
        return rv;
    for (int32_t i = 1; i <= 2; i++) {
        if (!clip_has(c, i))
            continue;
        if ((rv = evo_elem_check_same_type(&evo_op_Clip, c, 0, i)) != EVO_OK)
            return rv;
        /* The spec asks for a scalar; exporters also write shape [1]. */
        if (evo_shape_numel(&c->in[i]->shape) != 1) {
            char s[96];
            evo_shape_format(&c->in[i]->shape, s, sizeof s);
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Clip: %s must be a scalar, got shape %s",
                                 i == 1 ? "min" : "max", s);
        }
    }
    return EVO_OK;
}

static void clip_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

/* Bounds from the optional inputs, else the type's limits. */
#define CLIP_RUN(SUF, T, LO, HI)                                                                   \
    do {                                                                                           \
        clip_bounds_##SUF b = {LO, HI};                                                            \
        if (clip_has(c, 1))                                                                        \
            b.lo = *(const T *)c->in[1]->data;                                                     \
        if (clip_has(c, 2))                                                                        \
            b.hi = *(const T *)c->in[2]->data;                                                     \
        clip_##SUF(c->out[0]->data, c->in[0]->data, n, &b);                                        \
    } while (0)

static evo_status clip_eval(const evo_kctx *c)
{
    int64_t n = evo_shape_numel(&c->in[0]->shape);
    switch (c->in[0]->dtype) {
    case EVO_DT_FLOAT32:
        CLIP_RUN(f32, float, -INFINITY, INFINITY);
        break;
    case EVO_DT_INT32:
        CLIP_RUN(i32, int32_t, INT32_MIN, INT32_MAX);
        break;
    case EVO_DT_INT64:
        CLIP_RUN(i64, int64_t, INT64_MIN, INT64_MAX);
        break;
    case EVO_DT_INT8:
        CLIP_RUN(i8, int8_t, INT8_MIN, INT8_MAX);
        break;
    case EVO_DT_UINT8:
        CLIP_RUN(u8, uint8_t, 0, UINT8_MAX);
        break;
    default:
        return EVO_ERR_INTERNAL;
    }
    return EVO_OK;
}

const evo_op_def evo_op_Clip = {
    .name = "Clip",
    .domain = "",
    .id = 10,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 1,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = clip_infer,
    .cost = clip_cost,
    .eval = clip_eval,
};
