/*
 * More broadcasting binary ops: Mod (float32 and integers), Xor (bool) and
 * BitShift (unsigned integers; evo holds uint8 only).
 *
 * Mod: with fmod=0 (integers only, as the spec requires) the result has the
 * sign of the divisor, like Python's %; with fmod=1 it has the sign of the
 * dividend, like C's fmod and %. C leaves x % 0 and INT_MIN % -1 undefined;
 * here both give 0 (x % -1 is 0 for every x, and numpy returns 0 for a zero
 * divisor).
 *
 * BitShift: shifting by the bit width or more gives 0 (C leaves it
 * undefined; it is what shifting out every bit means).
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"

/* ---------------------------------------------------------------- Mod */

typedef struct bx_mod_params {
    int32_t fmod;
} bx_mod_params;
_Static_assert(sizeof(bx_mod_params) <= EVO_PARAMS_MAX, "bx_mod_params too large");

static evo_status bx_parse_mod(const evo_node *node, void *params, evo_error *err)
{
    int64_t v;
    if (evo_attr_get_int(node, "fmod", 0, &v) != EVO_OK || (v != 0 && v != 1))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "Mod node '%s': fmod must be the int 0 or 1",
                             EVO_ELEM_NODE_NAME(node));
    ((bx_mod_params *)params)->fmod = (int32_t)v;
    return EVO_OK;
}

/* Truncated remainder without the undefined cases. */
#define BX_TRUNC_REM(x, y) ((y) == 0 || (y) == -1 ? 0 : (x) % (y))
/* Floored remainder: the truncated one moved to the divisor's sign. */
#define BX_FLOOR_REM(T, x, y) bx_floor_rem_##T(x, y)

#define BX_FLOOR_REM_FN(T)                                                                         \
    static inline T bx_floor_rem_##T(T x, T y)                                                     \
    {                                                                                              \
        T r = (T)BX_TRUNC_REM(x, y);                                                               \
        return (T)(r != 0 && ((r < 0) != (y < 0)) ? r + y : r);                                    \
    }
BX_FLOOR_REM_FN(int32_t)
BX_FLOOR_REM_FN(int64_t)
BX_FLOOR_REM_FN(int8_t)

EVO_ELEM_BINARY_KERNEL(bx_fmod_f32, float, float, float, fmodf(x, y))
EVO_ELEM_BINARY_KERNEL(bx_fmod_i32, int32_t, int32_t, int32_t, BX_TRUNC_REM(x, y))
EVO_ELEM_BINARY_KERNEL(bx_fmod_i64, int64_t, int64_t, int64_t, BX_TRUNC_REM(x, y))
EVO_ELEM_BINARY_KERNEL(bx_fmod_i8, int8_t, int8_t, int8_t, BX_TRUNC_REM(x, y))
EVO_ELEM_BINARY_KERNEL(bx_mod_u8, uint8_t, uint8_t, uint8_t, y == 0 ? 0 : x % y)
EVO_ELEM_BINARY_KERNEL(bx_mod_i32, int32_t, int32_t, int32_t, BX_FLOOR_REM(int32_t, x, y))
EVO_ELEM_BINARY_KERNEL(bx_mod_i64, int64_t, int64_t, int64_t, BX_FLOOR_REM(int64_t, x, y))
EVO_ELEM_BINARY_KERNEL(bx_mod_i8, int8_t, int8_t, int8_t, BX_FLOOR_REM(int8_t, x, y))

/* [fmod][dtype]; unsigned remainders do not depend on fmod. */
static const evo_elem_binary_fn bx_mod_table[2][EVO_DT_COUNT_] = {
    {
        [EVO_DT_INT32] = bx_mod_i32,
        [EVO_DT_INT64] = bx_mod_i64,
        [EVO_DT_INT8] = bx_mod_i8,
        [EVO_DT_UINT8] = bx_mod_u8,
    },
    {
        [EVO_DT_FLOAT32] = bx_fmod_f32,
        [EVO_DT_INT32] = bx_fmod_i32,
        [EVO_DT_INT64] = bx_fmod_i64,
        [EVO_DT_INT8] = bx_fmod_i8,
        [EVO_DT_UINT8] = bx_mod_u8,
    },
};

extern const evo_op_def evo_op_Mod;

static evo_status bx_infer_mod(const evo_kctx *c)
{
    const bx_mod_params *p = c->params;
    evo_status rv = evo_elem_infer_binary(&evo_op_Mod, c, EVO_ELEM_DT_NUMERIC, EVO_DT_UNDEFINED);
    if (rv != EVO_OK)
        return rv;
    if (c->in[0]->dtype == EVO_DT_FLOAT32 && !p->fmod)
        return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                             "Mod: float inputs need fmod=1 (the spec defines integer modulus "
                             "only for fmod=0)");
    return EVO_OK;
}

static void bx_cost_mod(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_MID, cost);
}

static evo_status bx_eval_mod(const evo_kctx *c)
{
    const bx_mod_params *p = c->params;
    evo_elem_binary_fn fn = bx_mod_table[p->fmod != 0][c->in[0]->dtype];
    if (fn == NULL)
        return EVO_ERR_INTERNAL;
    return evo_elem_run_binary(fn, c->in[0], c->in[1], c->out[0]);
}

const evo_op_def evo_op_Mod = {
    .name = "Mod",
    .domain = "",
    .id = 90,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = bx_parse_mod,
    .infer = bx_infer_mod,
    .cost = bx_cost_mod,
    .eval = bx_eval_mod,
};

/* ---------------------------------------------------------------- Xor */

EVO_ELEM_BINARY_KERNEL(bx_xor_b, evo_elem_bool, evo_elem_bool, evo_elem_bool, (x != 0) ^ (y != 0))

extern const evo_op_def evo_op_Xor;

static evo_status bx_infer_xor(const evo_kctx *c)
{
    return evo_elem_infer_binary(&evo_op_Xor, c, EVO_ELEM_DT(EVO_DT_BOOL), EVO_DT_BOOL);
}

static void bx_cost_cheap(const evo_kctx *c, evo_op_cost *cost)
{
    evo_elem_cost_out(c, EVO_ELEM_COST_CHEAP, cost);
}

static evo_status bx_eval_xor(const evo_kctx *c)
{
    return evo_elem_run_binary(bx_xor_b, c->in[0], c->in[1], c->out[0]);
}

const evo_op_def evo_op_Xor = {
    .name = "Xor",
    .domain = "",
    .id = 91,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = bx_infer_xor,
    .cost = bx_cost_cheap,
    .eval = bx_eval_xor,
};

/* ---------------------------------------------------------------- BitShift */

typedef struct bx_shift_params {
    int32_t left;
} bx_shift_params;
_Static_assert(sizeof(bx_shift_params) <= EVO_PARAMS_MAX, "bx_shift_params too large");

static evo_status bx_parse_shift(const evo_node *node, void *params, evo_error *err)
{
    const char *dir;
    if (evo_attr_get_string(node, "direction", "", &dir) != EVO_OK ||
        (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "BitShift node '%s': attribute direction must be \"LEFT\" or "
                             "\"RIGHT\"",
                             EVO_ELEM_NODE_NAME(node));
    ((bx_shift_params *)params)->left = strcmp(dir, "LEFT") == 0;
    return EVO_OK;
}

EVO_ELEM_BINARY_KERNEL(bx_shl_u8, uint8_t, uint8_t, uint8_t, y >= 8 ? 0 : (uint8_t)(x << y))
EVO_ELEM_BINARY_KERNEL(bx_shr_u8, uint8_t, uint8_t, uint8_t, y >= 8 ? 0 : (uint8_t)(x >> y))

extern const evo_op_def evo_op_BitShift;

static evo_status bx_infer_shift(const evo_kctx *c)
{
    return evo_elem_infer_binary(&evo_op_BitShift, c, EVO_ELEM_DT(EVO_DT_UINT8), EVO_DT_UNDEFINED);
}

static evo_status bx_eval_shift(const evo_kctx *c)
{
    const bx_shift_params *p = c->params;
    return evo_elem_run_binary(p->left ? bx_shl_u8 : bx_shr_u8, c->in[0], c->in[1], c->out[0]);
}

const evo_op_def evo_op_BitShift = {
    .name = "BitShift",
    .domain = "",
    .id = 92,
    .flags = EVO_OP_INPLACE,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = bx_parse_shift,
    .infer = bx_infer_shift,
    .cost = bx_cost_cheap,
    .eval = bx_eval_shift,
};
