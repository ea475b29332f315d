/*
 * Einsum(Inputs...; equation): the general Einstein summation, float32,
 * int32 and int64, for 1 to EINSUM_MAX_IN inputs.
 *
 * The equation is kept as text in the params and planned at infer and eval
 * (planning is a few hundred operations and allocates nothing):
 *   - terms are letters (a-z, A-Z) and at most one "..." each; spaces are
 *     ignored. Every input's term must cover its rank exactly.
 *   - "..." dims of all inputs broadcast together, right-aligned, and get
 *     labels of their own.
 *   - with "->" the output term is explicit; without it the output is the
 *     ellipsis dims followed by the letters that occur exactly once, in
 *     ASCII order (numpy's implicit mode).
 *   - a letter repeated within one term takes a diagonal (its strides add);
 *     letters absent from the output are summed over.
 *
 * Evaluation is one loop nest over all labels, output labels outermost, so
 * each output element's products are accumulated (in double for float32,
 * wrapping int64 for integers) and stored once. This is the reference
 * kernel: a contraction costs the product of all label dims.
 */
#include <string.h>

#include "elementwise.h"
#include "kpool_util.h"

#define EINSUM_MAX_IN 4
#define EINSUM_EQ_MAX 240
#define EINSUM_MAX_LABELS (EINSUM_MAX_IN * EVO_MAX_RANK)
#define EINSUM_ELL_BASE 128 /* label codes of ellipsis dims: 128 + k */

typedef struct einsum_params {
    char eq[EINSUM_EQ_MAX + 1];
} einsum_params;
_Static_assert(sizeof(einsum_params) <= EVO_PARAMS_MAX, "einsum_params too large");

typedef struct einsum_plan {
    int32_t n_labels; /* all distinct labels, output labels first */
    int32_t n_out;
    int32_t n_in;
    int64_t dim[EINSUM_MAX_LABELS];
    int64_t in_stride[EINSUM_MAX_IN][EINSUM_MAX_LABELS];
    int64_t out_stride[EINSUM_MAX_LABELS];
    evo_shape out_shape;
} einsum_plan;

extern const evo_op_def evo_op_Einsum;

static evo_status einsum_parse(const evo_node *node, void *params, evo_error *err)
{
    einsum_params *p = params;
    const char *eq;
    if (evo_attr_get_string(node, "equation", NULL, &eq) != EVO_OK || eq == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "Einsum node '%s': the string attribute equation is required",
                             EVO_ELEM_NODE_NAME(node));
    size_t n = 0;
    for (const char *s = eq; *s != '\0'; s++) {
        if (*s == ' ')
            continue;
        if (n == EINSUM_EQ_MAX)
            return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                                 "Einsum node '%s': the equation is longer than %d characters",
                                 EVO_ELEM_NODE_NAME(node), EINSUM_EQ_MAX);
        p->eq[n++] = *s;
    }
    p->eq[n] = '\0';
    return EVO_OK;
}

static bool einsum_is_letter(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* One term [s, e) as label codes (letters as themselves, ellipsis dims as
 * EINSUM_ELL_BASE + k where k counts from the first of n_ell dims in the
 * global ellipsis of e_total dims). *n_letters and *has_ell describe it. */
static evo_status einsum_scan_term(const char *s, const char *e, int32_t *n_letters, bool *has_ell,
                                   evo_error *err)
{
    *n_letters = 0;
    *has_ell = false;
    while (s < e) {
        if (einsum_is_letter(*s)) {
            (*n_letters)++;
            s++;
        } else if (e - s >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '.' && !*has_ell) {
            *has_ell = true;
            s += 3;
        } else {
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "Einsum: the equation has an unexpected '%c' (terms are letters "
                                 "and at most one ...)",
                                 *s);
        }
    }
    return EVO_OK;
}

/* Expand a term into label codes; n_ell ellipsis dims, the last n_ell of
 * e_total. Returns the number of labels written. */
static int32_t einsum_expand(const char *s, const char *e, int32_t n_ell, int32_t e_total,
                             int32_t *codes)
{
    int32_t n = 0;
    while (s < e) {
        if (einsum_is_letter(*s)) {
            codes[n++] = (unsigned char)*s;
            s++;
        } else {
            for (int32_t k = 0; k < n_ell; k++)
                codes[n++] = EINSUM_ELL_BASE + (e_total - n_ell) + k;
            s += 3;
        }
    }
    return n;
}

static evo_status einsum_plan_build(const einsum_params *p, const evo_kctx *c, einsum_plan *pl)
{
    if (memchr(p->eq, '\0', sizeof p->eq) == NULL) /* params from a file */
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "Einsum: the equation in params is not a "
                             "string");
    const char *eq = p->eq, *arrow = strstr(eq, "->");
    const char *lhs_end = arrow != NULL ? arrow : eq + strlen(eq);
    int32_t n_in = c->n_in;
    const char *ts[EINSUM_MAX_IN], *te[EINSUM_MAX_IN];
    int32_t t = 0;
    const char *s = eq;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(lhs_end - s));
        const char *end = comma != NULL ? comma : lhs_end;
        if (t == EINSUM_MAX_IN)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "Einsum: more than %d operands are not supported", EINSUM_MAX_IN);
        ts[t] = s;
        te[t] = end;
        t++;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    if (t != n_in)
        return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                             "Einsum: the equation has %d operand terms but the node has %d "
                             "inputs",
                             (int)t, (int)n_in);
    /* Ellipsis sizes. */
    int32_t n_ell[EINSUM_MAX_IN], e_total = 0;
    evo_status rv;
    for (int32_t i = 0; i < n_in; i++) {
        int32_t nl;
        bool ell;
        if ((rv = einsum_scan_term(ts[i], te[i], &nl, &ell, c->err)) != EVO_OK)
            return rv;
        int32_t r = c->in[i]->shape.rank;
        if (ell ? nl > r : nl != r)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Einsum: term %d has %d labels but input %d has rank %d", (int)i,
                                 (int)nl, (int)i, (int)r);
        n_ell[i] = ell ? r - nl : 0;
        if (n_ell[i] > e_total)
            e_total = n_ell[i];
    }
    /* Label codes per input, and the distinct labels with their dims. */
    int32_t codes[EINSUM_MAX_IN][EVO_MAX_RANK];
    int32_t labels[EINSUM_MAX_LABELS], counts[EINSUM_MAX_LABELS], n_labels = 0;
    int64_t dims[EINSUM_MAX_LABELS];
    for (int32_t i = 0; i < n_in; i++) {
        int32_t n = einsum_expand(ts[i], te[i], n_ell[i], e_total, codes[i]);
        for (int32_t d = 0; d < n; d++) {
            int64_t dim = c->in[i]->shape.dims[d];
            int32_t l = 0;
            while (l < n_labels && labels[l] != codes[i][d])
                l++;
            if (l == n_labels) {
                labels[l] = codes[i][d];
                counts[l] = 0;
                dims[l] = dim;
                n_labels++;
            } else if (dims[l] != dim) {
                bool ell = codes[i][d] >= EINSUM_ELL_BASE;
                if (ell && (dim == 1 || dims[l] == 1)) {
                    if (dims[l] == 1)
                        dims[l] = dim;
                } else {
                    return evo_error_set(
                        c->err, EVO_ERR_SHAPE, "Einsum: label '%c' has sizes %lld and %lld",
                        ell ? '.' : (char)codes[i][d], (long long)dims[l], (long long)dim);
                }
            }
            counts[l]++;
        }
    }
    /* Output labels. */
    int32_t out_codes[EINSUM_MAX_LABELS], n_out = 0;
    if (arrow != NULL) {
        const char *os = arrow + 2, *oe = eq + strlen(eq);
        int32_t nl;
        bool ell;
        if ((rv = einsum_scan_term(os, oe, &nl, &ell, c->err)) != EVO_OK)
            return rv;
        if (nl + (ell ? e_total : 0) > EVO_MAX_RANK)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "Einsum: the output rank exceeds %d",
                                 EVO_MAX_RANK);
        /* Without "..." in the output, ellipsis dims are summed over. */
        n_out = einsum_expand(os, oe, ell ? e_total : 0, e_total, out_codes);
    } else {
        for (int32_t k = 0; k < e_total; k++)
            out_codes[n_out++] = EINSUM_ELL_BASE + k;
        for (int32_t ch = 0; ch < 128; ch++)
            for (int32_t l = 0; l < n_labels; l++)
                if (labels[l] == ch && counts[l] == 1 && n_out < EINSUM_MAX_LABELS)
                    out_codes[n_out++] = ch;
        if (n_out > EVO_MAX_RANK)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "Einsum: the output rank exceeds %d",
                                 EVO_MAX_RANK);
    }
    /* Order: output labels first, then the summed ones. */
    int32_t order[EINSUM_MAX_LABELS];
    bool used[EINSUM_MAX_LABELS] = {false};
    for (int32_t o = 0; o < n_out; o++) {
        int32_t l = 0;
        while (l < n_labels && labels[l] != out_codes[o])
            l++;
        if (l == n_labels)
            return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                                 "Einsum: output label '%c' does not occur in any input",
                                 out_codes[o] >= EINSUM_ELL_BASE ? '.' : (char)out_codes[o]);
        if (used[l])
            return evo_error_set(c->err, EVO_ERR_INVALID_ARG,
                                 "Einsum: output label '%c' occurs twice",
                                 out_codes[o] >= EINSUM_ELL_BASE ? '.' : (char)out_codes[o]);
        used[l] = true;
        order[o] = l;
    }
    int32_t m = n_out;
    for (int32_t l = 0; l < n_labels; l++)
        if (!used[l])
            order[m++] = l;
    /* The plan, in loop order. */
    memset(pl, 0, sizeof *pl);
    pl->n_labels = n_labels;
    pl->n_out = n_out;
    pl->n_in = n_in;
    for (int32_t j = 0; j < n_labels; j++)
        pl->dim[j] = dims[order[j]];
    pl->out_shape.rank = n_out;
    int64_t st = 1;
    for (int32_t j = n_out - 1; j >= 0; j--) {
        pl->out_shape.dims[j] = (int32_t)pl->dim[j];
        pl->out_stride[j] = st;
        st *= pl->dim[j];
    }
    for (int32_t i = 0; i < n_in; i++) {
        const evo_shape *sh = &c->in[i]->shape;
        int64_t s2 = 1;
        for (int32_t d = sh->rank - 1; d >= 0; d--) {
            int32_t j = 0;
            while (labels[order[j]] != codes[i][d])
                j++;
            if (sh->dims[d] != 1 || pl->dim[j] == 1)
                pl->in_stride[i][j] += s2; /* a broadcast size-1 dim stays 0 */
            s2 *= sh->dims[d];
        }
    }
    /* The loop nest must be countable. */
    uint64_t total = 1;
    for (int32_t j = 0; j < n_labels; j++)
        total = kpool_sat_mul(total, (uint64_t)pl->dim[j]);
    if (total > (uint64_t)INT64_MAX / 2)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Einsum: the contraction is too large");
    return EVO_OK;
}

static evo_status einsum_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Einsum, c);
    if (rv != EVO_OK)
        return rv;
    if (c->n_in > EINSUM_MAX_IN)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "Einsum: more than %d operands are not supported", EINSUM_MAX_IN);
    evo_dtype dt = c->in[0]->dtype;
    for (int32_t i = 0; i < c->n_in; i++) {
        if (c->in[i] == NULL)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "Einsum: input %d is missing", (int)i);
        if ((rv = kpool_check_tensor(c, "Einsum", "Inputs", c->in[i])) != EVO_OK)
            return rv;
        if (c->in[i]->dtype != EVO_DT_FLOAT32 && c->in[i]->dtype != EVO_DT_INT32 &&
            c->in[i]->dtype != EVO_DT_INT64)
            return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                 "Einsum: input %d has type %s; evo supports float32, int32 and "
                                 "int64",
                                 (int)i, evo_dtype_name(c->in[i]->dtype));
        if (c->in[i]->dtype != dt)
            return evo_error_set(c->err, EVO_ERR_TYPE, "Einsum: inputs 0 and %d differ in type",
                                 (int)i);
    }
    einsum_plan pl;
    if ((rv = einsum_plan_build(c->params, c, &pl)) != EVO_OK)
        return rv;
    return kpool_set_out(c, "Einsum", c->out[0], dt, &pl.out_shape);
}

static void einsum_cost(const evo_kctx *c, evo_op_cost *cost)
{
    einsum_plan pl;
    evo_kctx q = *c;
    q.err = NULL;
    uint64_t total = 0;
    if (einsum_plan_build(c->params, &q, &pl) == EVO_OK) {
        total = 1;
        for (int32_t j = 0; j < pl.n_labels; j++)
            total = kpool_sat_mul(total, (uint64_t)pl.dim[j]);
    }
    cost->flops = kpool_sat_mul(total, (uint64_t)c->n_in);
}

/* One loop nest per element type; ACC is the accumulator type. */
#define EINSUM_RUN(SFX, T, ACC)                                                                    \
    static void einsum_run_##SFX(const einsum_plan *pl, const evo_kctx *c)                         \
    {                                                                                              \
        const T *in[EINSUM_MAX_IN];                                                                \
        for (int32_t i = 0; i < pl->n_in; i++)                                                     \
            in[i] = c->in[i]->data;                                                                \
        T *y = c->out[0]->data;                                                                    \
        int64_t n_outer = 1, n_inner = 1;                                                          \
        for (int32_t j = 0; j < pl->n_out; j++)                                                    \
            n_outer *= pl->dim[j];                                                                 \
        for (int32_t j = pl->n_out; j < pl->n_labels; j++)                                         \
            n_inner *= pl->dim[j];                                                                 \
        int64_t idx[EINSUM_MAX_LABELS] = {0}, off[EINSUM_MAX_IN] = {0};                            \
        for (int64_t o = 0; o < n_outer; o++) {                                                    \
            ACC acc = 0;                                                                           \
            for (int64_t r = 0; r < n_inner; r++) {                                                \
                ACC prod = 1;                                                                      \
                for (int32_t i = 0; i < pl->n_in; i++)                                             \
                    prod *= (ACC)in[i][off[i]];                                                    \
                acc += prod;                                                                       \
                /* Step the summed labels (innermost last). */                                     \
                for (int32_t j = pl->n_labels - 1; j >= pl->n_out; j--) {                          \
                    for (int32_t i = 0; i < pl->n_in; i++)                                         \
                        off[i] += pl->in_stride[i][j];                                             \
                    if (++idx[j] < pl->dim[j])                                                     \
                        break;                                                                     \
                    for (int32_t i = 0; i < pl->n_in; i++)                                         \
                        off[i] -= pl->in_stride[i][j] * pl->dim[j];                                \
                    idx[j] = 0;                                                                    \
                }                                                                                  \
            }                                                                                      \
            y[o] = (T)acc;                                                                         \
            for (int32_t j = pl->n_out - 1; j >= 0; j--) {                                         \
                for (int32_t i = 0; i < pl->n_in; i++)                                             \
                    off[i] += pl->in_stride[i][j];                                                 \
                if (++idx[j] < pl->dim[j])                                                         \
                    break;                                                                         \
                for (int32_t i = 0; i < pl->n_in; i++)                                             \
                    off[i] -= pl->in_stride[i][j] * pl->dim[j];                                    \
                idx[j] = 0;                                                                        \
            }                                                                                      \
        }                                                                                          \
    }
EINSUM_RUN(f32, float, double)
EINSUM_RUN(i32, int32_t, uint64_t)
EINSUM_RUN(i64, int64_t, uint64_t)

static evo_status einsum_eval(const evo_kctx *c)
{
    einsum_plan pl;
    evo_kctx q = *c;
    q.err = NULL;
    if (einsum_plan_build(c->params, &q, &pl) != EVO_OK)
        return EVO_ERR_INTERNAL;
    switch (c->in[0]->dtype) {
    case EVO_DT_FLOAT32:
        einsum_run_f32(&pl, c);
        break;
    case EVO_DT_INT32:
        einsum_run_i32(&pl, c);
        break;
    case EVO_DT_INT64:
        einsum_run_i64(&pl, c);
        break;
    default:
        return EVO_ERR_INTERNAL;
    }
    return EVO_OK;
}

const evo_op_def evo_op_Einsum = {
    .name = "Einsum",
    .domain = "",
    .id = 130,
    .min_inputs = 1,
    .max_inputs = -1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = einsum_parse,
    .infer = einsum_infer,
    .cost = einsum_cost,
    .eval = einsum_eval,
};
