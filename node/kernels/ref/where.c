/*
 * Where(condition, X, Y): X where the bool condition is true, else Y, with
 * all three inputs broadcast together. X and Y may have any dtype evo holds
 * (the kernel only moves elements, so it is chosen by element size).
 *
 * In place: output 0 can alias input 0 only when X and Y are bool; every
 * path below reads the condition, X and Y of an index before writing it.
 */
#include "elementwise.h"

typedef void (*where_fn)(void *out, const evo_elem_bool *cond, int32_t sc, const void *x,
                         int32_t sx, const void *y, int32_t sy, int64_t n);

/* Three cases: all dense (block loop, vectorizes), condition constant over
 * the run (a strided copy of one side), and the general strided loop. */
#define WHERE_KERNEL(NAME, T)                                                                      \
    static void NAME(void *out_, const evo_elem_bool *c, int32_t sc, const void *x_, int32_t sx,   \
                     const void *y_, int32_t sy, int64_t n)                                        \
    {                                                                                              \
        T *o = (T *)out_;                                                                          \
        const T *x = (const T *)x_, *y = (const T *)y_;                                            \
        int64_t i = 0;                                                                             \
        if (sc && sx && sy) {                                                                      \
            for (; i + EVO_ELEM_BLOCK <= n; i += EVO_ELEM_BLOCK) {                                 \
                T t[EVO_ELEM_BLOCK];                                                               \
                for (int j = 0; j < EVO_ELEM_BLOCK; j++)                                           \
                    t[j] = c[i + j] ? x[i + j] : y[i + j];                                         \
                for (int j = 0; j < EVO_ELEM_BLOCK; j++)                                           \
                    o[i + j] = t[j];                                                               \
            }                                                                                      \
            for (; i < n; i++)                                                                     \
                o[i] = c[i] ? x[i] : y[i];                                                         \
        } else if (!sc) {                                                                          \
            const T *src = c[0] ? x : y;                                                           \
            int32_t ss = c[0] ? sx : sy;                                                           \
            for (; i < n; i++)                                                                     \
                o[i] = src[i * ss];                                                                \
        } else {                                                                                   \
            for (; i < n; i++)                                                                     \
                o[i] = c[i] ? x[i * sx] : y[i * sy];                                               \
        }                                                                                          \
    }

WHERE_KERNEL(where_1, uint8_t)
WHERE_KERNEL(where_2, uint16_t)
WHERE_KERNEL(where_4, uint32_t)
WHERE_KERNEL(where_8, uint64_t)

extern const evo_op_def evo_op_Where;

static evo_status where_infer(const evo_kctx *c)
{
    static const int32_t all[3] = {0, 1, 2};
    evo_status rv = evo_elem_check_inputs(&evo_op_Where, c);
    if (rv == EVO_OK)
        rv = evo_elem_check_type(&evo_op_Where, c, 0, EVO_ELEM_DT(EVO_DT_BOOL));
    if (rv == EVO_OK)
        rv = evo_elem_check_same_type(&evo_op_Where, c, 1, 2);
    evo_shape shape;
    if (rv == EVO_OK)
        rv = evo_elem_broadcast_shapes(&evo_op_Where, c, all, 3, &shape);
    if (rv != EVO_OK)
        return rv;
    size_t es = evo_dtype_size(c->in[1]->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED, "Where: values of type %s",
                             evo_dtype_name(c->in[1]->dtype));
    c->out[0]->dtype = c->in[1]->dtype;
    c->out[0]->shape = shape;
    return EVO_OK;
}

static void where_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

static evo_status where_eval(const evo_kctx *c)
{
    evo_tensor *out = c->out[0];
    size_t es = evo_dtype_size(out->dtype);
    where_fn fn = es == 1   ? where_1
                  : es == 2 ? where_2
                  : es == 4 ? where_4
                  : es == 8 ? where_8
                            : NULL;
    if (fn == NULL)
        return EVO_ERR_INTERNAL;
    const evo_shape *shapes[3] = {&c->in[0]->shape, &c->in[1]->shape, &c->in[2]->shape};
    evo_bcast plan;
    evo_status rv = evo_bcast_plan(&plan, &out->shape, shapes, 3);
    if (rv != EVO_OK)
        return rv;
    const evo_elem_bool *cond = c->in[0]->data;
    const unsigned char *x = c->in[1]->data, *y = c->in[2]->data;
    unsigned char *o = out->data;
    evo_bcast_iter it;
    evo_bcast_begin(&plan, &it);
    while (evo_bcast_next(&plan, &it))
        fn(o + (size_t)it.out_off * es, cond + it.in_off[0], plan.inner_stride[0],
           x + (size_t)it.in_off[1] * es, plan.inner_stride[1], y + (size_t)it.in_off[2] * es,
           plan.inner_stride[2], plan.inner);
    return EVO_OK;
}

const evo_op_def evo_op_Where = {
    .name = "Where",
    .domain = "",
    .id = 49,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = where_infer,
    .cost = where_cost,
    .eval = where_eval,
};
