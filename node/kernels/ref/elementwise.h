/*
 * Shared machinery of the element-wise op files (unary.c, activation.c,
 * binary.c, compare.c, logic.c, variadic.c, where.c, clip.c, prelu.c,
 * cast.c): dtype checks and broadcasting for infer, the broadcast driver for
 * eval, and the loop macros the kernels are written with.
 *
 * Why blocks: GCC at -O2 (its "very cheap" vectorizer) does not vectorize a
 * loop whose trip count is unknown or whose pointers may overlap, and the
 * executor may run an op in place (out == in[0]), so `restrict` would be a
 * lie. A loop over fixed blocks of EVO_ELEM_BLOCK elements that first
 * computes the block into a local array and then stores it is correct under
 * same-index aliasing and is vectorized by both GCC (SLP) and clang at -O2.
 * The remainder (< one block) runs a plain scalar loop.
 *
 * Cost factors (flops per output element) used by the cost functions:
 * EVO_ELEM_COST_CHEAP for arithmetic, compares, selects and casts, and
 * EVO_ELEM_COST_TRANSC for libm transcendentals (exp, log, tanh, erf, sin,
 * cos, pow), roughly what a vectorized polynomial costs.
 */
#ifndef EVO_KERNELS_REF_ELEMENTWISE_H
#define EVO_KERNELS_REF_ELEMENTWISE_H

#include <string.h>

#include "evo/op.h"
#include "kernels/broadcast.h"

#define EVO_ELEM_BLOCK 8
#define EVO_ELEM_COST_CHEAP 1
#define EVO_ELEM_COST_MID 4
#define EVO_ELEM_COST_TRANSC 8

/* Bool tensors hold one byte per element, 0 or 1; any nonzero byte reads as
 * true. */
typedef uint8_t evo_elem_bool;

/* A node name for messages (hand-built nodes may lack one). */
#define EVO_ELEM_NODE_NAME(node) ((node)->name != NULL ? (node)->name : "")

/* A set of dtypes as a bit mask over evo_dtype values. */
#define EVO_ELEM_DT(dt) (1u << (dt))
#define EVO_ELEM_DT_INTS                                                                           \
    (EVO_ELEM_DT(EVO_DT_INT32) | EVO_ELEM_DT(EVO_DT_INT64) | EVO_ELEM_DT(EVO_DT_INT8) |            \
     EVO_ELEM_DT(EVO_DT_UINT8))
#define EVO_ELEM_DT_NUMERIC (EVO_ELEM_DT(EVO_DT_FLOAT32) | EVO_ELEM_DT_INTS)

static inline bool evo_elem_dt_in(uint32_t mask, evo_dtype dt)
{
    return (unsigned)dt < 32u && (mask & (1u << dt)) != 0;
}

/* x < 0 ? slope * x : x (LeakyRelu, PRelu) as max(x,0) + slope * min(x,0):
 * the same value (also for NaN, which stays NaN), but branch-free, which GCC
 * needs to vectorize it (it will not if-convert a conditional float
 * multiplication). Only -0 becomes +0. */
static inline float evo_elem_leaky_f32(float x, float slope)
{
    float pos = x < 0.0f ? 0.0f : x;
    float neg = x < 0.0f ? x : 0.0f;
    return pos + slope * neg;
}

/* ---------------------------------------------------------------- infer helpers */

/* Arity, presence and sanity (rank, element count) of every present input.
 * Fills c->err. */
evo_status evo_elem_check_inputs(const evo_op_def *op, const evo_kctx *c);

/* EVO_ERR_TYPE naming the op, the input and the accepted types. */
evo_status evo_elem_type_error(const evo_op_def *op, const evo_kctx *c, int32_t input,
                               uint32_t allowed);

/* Input `i` must have a dtype in `allowed`. */
evo_status evo_elem_check_type(const evo_op_def *op, const evo_kctx *c, int32_t i,
                               uint32_t allowed);

/* Inputs i and j must have the same dtype. */
evo_status evo_elem_check_same_type(const evo_op_def *op, const evo_kctx *c, int32_t i, int32_t j);

/* Broadcast the shapes of the listed present inputs into *out; EVO_ERR_SHAPE
 * naming the two shapes that clash. */
evo_status evo_elem_broadcast_shapes(const evo_op_def *op, const evo_kctx *c, const int32_t *inputs,
                                     int32_t n, evo_shape *out);

/* Unary infer: arity, input 0 dtype in `allowed`, out[0] = in[0]'s dtype
 * (or `out_dtype` when not UNDEFINED) and shape. */
evo_status evo_elem_infer_unary(const evo_op_def *op, const evo_kctx *c, uint32_t allowed,
                                evo_dtype out_dtype);

/* Binary infer: arity, in[0] dtype in `allowed`, in[1] same dtype, out[0] =
 * broadcast shape with dtype in[0]'s (or `out_dtype`). */
evo_status evo_elem_infer_binary(const evo_op_def *op, const evo_kctx *c, uint32_t allowed,
                                 evo_dtype out_dtype);

/* Cost: factor flops per output element (output 0). */
void evo_elem_cost_out(const evo_kctx *c, uint64_t factor, evo_op_cost *cost);

/* ---------------------------------------------------------------- eval helpers */

/* A binary kernel over one run: out[i] = a[i*sa] op b[i*sb], sa, sb in {0,1}.
 * Must be correct when out == a or out == b (same index). */
typedef void (*evo_elem_binary_fn)(void *out, const void *a, int32_t sa, const void *b, int32_t sb,
                                   int64_t n);

/* Run `fn` over the broadcast of a and b into out. Element sizes come from
 * the tensors' dtypes. */
evo_status evo_elem_run_binary(evo_elem_binary_fn fn, const evo_tensor *a, const evo_tensor *b,
                               evo_tensor *out);

/* ---------------------------------------------------------------- unary ops */

/* A unary kernel: out[i] = f(in[i]) for n elements, with the op's params.
 * Must be correct when out == in. */
typedef void (*evo_elem_unary_fn)(void *out, const void *in, int64_t n, const void *params);

/* The dtypes a kernel table (indexed by input dtype) has a kernel for. */
uint32_t evo_elem_table_mask(const evo_elem_unary_fn *table);

/* Eval of a unary op: table[in[0]->dtype] over all elements. */
evo_status evo_elem_run_unary(const evo_elem_unary_fn *table, const evo_kctx *c);

/* Define the infer, cost and eval functions and the evo_op_def of a unary
 * op whose dtypes are those of its kernel table TABLE (indexed by dtype) and
 * whose output has the input's dtype and shape. PARSE may be NULL. */
#define EVO_ELEM_UNARY_OP(NAME, ID, TABLE, PARSE, COST)                                            \
    extern const evo_op_def evo_op_##NAME;                                                         \
    static evo_status elem_##NAME##_infer(const evo_kctx *c)                                       \
    {                                                                                              \
        return evo_elem_infer_unary(&evo_op_##NAME, c, evo_elem_table_mask(TABLE),                 \
                                    EVO_DT_UNDEFINED);                                             \
    }                                                                                              \
    static void elem_##NAME##_cost(const evo_kctx *c, evo_op_cost *cost)                           \
    {                                                                                              \
        evo_elem_cost_out(c, (COST), cost);                                                        \
    }                                                                                              \
    static evo_status elem_##NAME##_eval(const evo_kctx *c)                                        \
    {                                                                                              \
        return evo_elem_run_unary((TABLE), c);                                                     \
    }                                                                                              \
    const evo_op_def evo_op_##NAME = {                                                             \
        .name = #NAME,                                                                             \
        .domain = "",                                                                              \
        .id = (ID),                                                                                \
        .flags = EVO_OP_INPLACE,                                                                   \
        .min_inputs = 1,                                                                           \
        .max_inputs = 1,                                                                           \
        .min_outputs = 1,                                                                          \
        .max_outputs = 1,                                                                          \
        .parse = (PARSE),                                                                          \
        .infer = elem_##NAME##_infer,                                                              \
        .cost = elem_##NAME##_cost,                                                                \
        .eval = elem_##NAME##_eval,                                                                \
    };

/* ---------------------------------------------------------------- loop macros */

/* Define `static void NAME(void *out, const void *in, int64_t n, const void *params)`
 * computing out[i] = EXPR, where EXPR may use `x` (the TI input element) and
 * `P` (a const PT * to a local copy of the params: a local cannot alias the
 * output, so the compiler keeps its fields in registers). PT is
 * evo_elem_none for kernels without params; params may be NULL. */
typedef struct evo_elem_none {
    int32_t unused;
} evo_elem_none;
#define EVO_ELEM_UNARY_KERNEL(NAME, TI, TO, PT, EXPR)                                              \
    static void NAME(void *out_, const void *in_, int64_t n, const void *params_)                  \
    {                                                                                              \
        TO *o_ = (TO *)out_;                                                                       \
        const TI *a_ = (const TI *)in_;                                                            \
        PT P_;                                                                                     \
        if (params_ != NULL)                                                                       \
            memcpy(&P_, params_, sizeof P_);                                                       \
        else                                                                                       \
            memset(&P_, 0, sizeof P_);                                                             \
        const PT *P = &P_;                                                                         \
        (void)P;                                                                                   \
        int64_t i_ = 0;                                                                            \
        for (; i_ + EVO_ELEM_BLOCK <= n; i_ += EVO_ELEM_BLOCK) {                                   \
            TO t_[EVO_ELEM_BLOCK];                                                                 \
            for (int j_ = 0; j_ < EVO_ELEM_BLOCK; j_++) {                                          \
                TI x = a_[i_ + j_];                                                                \
                t_[j_] = (TO)(EXPR);                                                               \
            }                                                                                      \
            for (int j_ = 0; j_ < EVO_ELEM_BLOCK; j_++)                                            \
                o_[i_ + j_] = t_[j_];                                                              \
        }                                                                                          \
        for (; i_ < n; i_++) {                                                                     \
            TI x = a_[i_];                                                                         \
            o_[i_] = (TO)(EXPR);                                                                   \
        }                                                                                          \
    }

/* One block loop of a binary kernel with fixed strides (SA, SB constants so
 * each of the four stride cases compiles to its own tight loop). */
#define EVO_ELEM_BINARY_LOOP(TA, TB, TO, SA, SB, EXPR)                                             \
    do {                                                                                           \
        int64_t i_ = 0;                                                                            \
        for (; i_ + EVO_ELEM_BLOCK <= n; i_ += EVO_ELEM_BLOCK) {                                   \
            TO t_[EVO_ELEM_BLOCK];                                                                 \
            for (int j_ = 0; j_ < EVO_ELEM_BLOCK; j_++) {                                          \
                TA x = a_[(i_ + j_) * (SA)];                                                       \
                TB y = b_[(i_ + j_) * (SB)];                                                       \
                (void)x;                                                                           \
                (void)y;                                                                           \
                t_[j_] = (TO)(EXPR);                                                               \
            }                                                                                      \
            for (int j_ = 0; j_ < EVO_ELEM_BLOCK; j_++)                                            \
                o_[i_ + j_] = t_[j_];                                                              \
        }                                                                                          \
        for (; i_ < n; i_++) {                                                                     \
            TA x = a_[i_ * (SA)];                                                                  \
            TB y = b_[i_ * (SB)];                                                                  \
            (void)x;                                                                               \
            (void)y;                                                                               \
            o_[i_] = (TO)(EXPR);                                                                   \
        }                                                                                          \
    } while (0)

/* Define an evo_elem_binary_fn NAME computing out = EXPR of `x` (TA) and `y`
 * (TB). */
#define EVO_ELEM_BINARY_KERNEL(NAME, TA, TB, TO, EXPR)                                             \
    static void NAME(void *out_, const void *in_a_, int32_t sa_, const void *in_b_, int32_t sb_,   \
                     int64_t n)                                                                    \
    {                                                                                              \
        TO *o_ = (TO *)out_;                                                                       \
        const TA *a_ = (const TA *)in_a_;                                                          \
        const TB *b_ = (const TB *)in_b_;                                                          \
        if (sa_ && sb_)                                                                            \
            EVO_ELEM_BINARY_LOOP(TA, TB, TO, 1, 1, EXPR);                                          \
        else if (sa_)                                                                              \
            EVO_ELEM_BINARY_LOOP(TA, TB, TO, 1, 0, EXPR);                                          \
        else if (sb_)                                                                              \
            EVO_ELEM_BINARY_LOOP(TA, TB, TO, 0, 1, EXPR);                                          \
        else                                                                                       \
            EVO_ELEM_BINARY_LOOP(TA, TB, TO, 0, 0, EXPR);                                          \
    }

/* Wrapping integer arithmetic without signed-overflow UB: compute in the
 * unsigned type of the same width, convert back (two's complement). */
#define EVO_ELEM_WRAP(T, U, x, op, y) ((T)(U)((U)(x)op(U)(y)))

#endif /* EVO_KERNELS_REF_ELEMENTWISE_H */
