/*
 * Transpose: permute axes (default: reverse them). Eval first simplifies the
 * permutation (drops length-1 axes, merges input axes that stay adjacent and
 * in order), so NCHW->NHWC becomes a batch of 2-D [C, HW] -> [HW, C]
 * transposes, which run blocked for cache locality. Everything else uses a
 * generic strided walk whose inner loop is a run copy when the innermost
 * axis stays innermost. Element size generic.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Transpose;

typedef struct transpose_params {
    int32_t n_perm; /* 0 = attribute absent: reverse */
    int32_t perm[EVO_MAX_RANK];
} transpose_params;
_Static_assert(sizeof(transpose_params) <= EVO_PARAMS_MAX, "transpose params too large");

#define TRANSPOSE_BLOCK 32

static evo_status transpose_parse(const evo_node *node, void *params, evo_error *err)
{
    transpose_params *p = params;
    int64_t perm[EVO_MAX_RANK];
    size_t n = 0;
    evo_status rv = evo_attr_get_ints(node, "perm", perm, EVO_MAX_RANK, &n);
    if (rv != EVO_OK)
        return evo_error_set(err, rv, "Transpose node '%s': 'perm' must be ints, at most %d",
                             node->name, EVO_MAX_RANK);
    for (size_t i = 0; i < n; i++) {
        if (perm[i] < 0 || perm[i] >= (int64_t)n)
            return evo_error_set(err, EVO_ERR_PARSE,
                                 "Transpose node '%s': perm[%zu] = %lld is out of range",
                                 node->name, i, (long long)perm[i]);
        p->perm[i] = (int32_t)perm[i];
    }
    p->n_perm = (int32_t)n;
    return EVO_OK;
}

static void transpose_get_perm(const transpose_params *p, int32_t rank, int32_t *perm)
{
    for (int32_t i = 0; i < rank; i++)
        perm[i] = p->n_perm > 0 ? p->perm[i] : rank - 1 - i;
}

static evo_status transpose_infer(const evo_kctx *c)
{
    const transpose_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Transpose, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Transpose: dtype %s has no element size",
                             evo_dtype_name(x->dtype));
    int32_t rank = x->shape.rank;
    if (p->n_perm > 0 && p->n_perm != rank)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Transpose: perm has %d entries but the input has rank %d",
                             (int)p->n_perm, (int)rank);
    int32_t perm[EVO_MAX_RANK];
    transpose_get_perm(p, rank, perm);
    bool seen[EVO_MAX_RANK] = {false};
    evo_shape os = {.rank = rank};
    for (int32_t i = 0; i < rank; i++) {
        if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]])
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Transpose: perm is not a permutation");
        seen[perm[i]] = true;
        os.dims[i] = x->shape.dims[perm[i]];
    }
    c->out[0]->dtype = x->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static void transpose_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

/* Reduce (dims, perm) to an equivalent problem of minimal rank. */
static int32_t transpose_simplify(const int32_t *in_dims, const int32_t *in_perm, int32_t rank,
                                  int64_t *dims, int32_t *perm)
{
    /* 1. Drop length-1 axes and renumber the rest. */
    int32_t newidx[EVO_MAX_RANK], p1[EVO_MAX_RANK], d1[EVO_MAX_RANK];
    int32_t r1 = 0;
    for (int32_t a = 0; a < rank; a++) {
        newidx[a] = in_dims[a] == 1 ? -1 : r1;
        if (in_dims[a] != 1)
            d1[r1++] = in_dims[a];
    }
    int32_t n = 0;
    for (int32_t i = 0; i < rank; i++)
        if (newidx[in_perm[i]] >= 0)
            p1[n++] = newidx[in_perm[i]];
    /* 2. Group output axes whose input axes are consecutive. */
    int32_t group_of_axis[EVO_MAX_RANK], head[EVO_MAX_RANK];
    int32_t ng = 0;
    for (int32_t i = 0; i < n; i++) {
        if (i == 0 || p1[i] != p1[i - 1] + 1)
            head[ng++] = p1[i];
        group_of_axis[p1[i]] = ng - 1;
    }
    /* 3. Groups in input order are the new input axes. */
    int32_t order = 0, new_of_group[EVO_MAX_RANK];
    for (int32_t a = 0; a < r1; a++) {
        int32_t g = group_of_axis[a];
        if (head[g] == a) {
            new_of_group[g] = order;
            dims[order] = 1;
            order++;
        }
        dims[new_of_group[g]] *= d1[a];
    }
    for (int32_t g = 0; g < ng; g++)
        perm[g] = new_of_group[g];
    return ng;
}

/* dst[c][r] = src[r][c] for an R x C matrix of elements of type T. */
#define TRANSPOSE_2D(T)                                                                            \
    static void transpose_2d_##T(const T *src, T *dst, int64_t rows, int64_t cols)                 \
    {                                                                                              \
        for (int64_t r0 = 0; r0 < rows; r0 += TRANSPOSE_BLOCK) {                                   \
            int64_t r1 = r0 + TRANSPOSE_BLOCK < rows ? r0 + TRANSPOSE_BLOCK : rows;                \
            for (int64_t c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK) {                               \
                int64_t c1 = c0 + TRANSPOSE_BLOCK < cols ? c0 + TRANSPOSE_BLOCK : cols;            \
                for (int64_t r = r0; r < r1; r++)                                                  \
                    for (int64_t cc = c0; cc < c1; cc++)                                           \
                        dst[cc * rows + r] = src[r * cols + cc];                                   \
            }                                                                                      \
        }                                                                                          \
    }
TRANSPOSE_2D(uint8_t)
TRANSPOSE_2D(uint16_t)
TRANSPOSE_2D(uint32_t)
TRANSPOSE_2D(uint64_t)

static bool transpose_2d(const void *src, void *dst, int64_t rows, int64_t cols, size_t es)
{
    switch (es) {
    case 1:
        transpose_2d_uint8_t(src, dst, rows, cols);
        return true;
    case 2:
        transpose_2d_uint16_t(src, dst, rows, cols);
        return true;
    case 4:
        transpose_2d_uint32_t(src, dst, rows, cols);
        return true;
    case 8:
        transpose_2d_uint64_t(src, dst, rows, cols);
        return true;
    default:
        return false;
    }
}

/* Generic walk over the output in order; istride is the input stride of
 * each output axis. */
static void transpose_generic(const unsigned char *src, unsigned char *dst, const int64_t *odims,
                              const int64_t *istride, int32_t rank, size_t es)
{
    int32_t last = rank - 1;
    int64_t n_last = odims[last], s_last = istride[last];
    int64_t rows = 1;
    for (int32_t d = 0; d < last; d++)
        rows *= odims[d];
    int64_t idx[EVO_MAX_RANK] = {0};
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int32_t d = 0; d < last; d++)
            off += idx[d] * istride[d];
        const unsigned char *s = src + (size_t)off * es;
        if (s_last == 1) {
            memcpy(dst, s, (size_t)n_last * es);
            dst += (size_t)n_last * es;
        } else if (es == 4) {
            for (int64_t i = 0; i < n_last; i++, dst += 4)
                memcpy(dst, s + (size_t)(i * s_last) * 4, 4);
        } else {
            for (int64_t i = 0; i < n_last; i++, dst += es)
                memcpy(dst, s + (size_t)(i * s_last) * es, es);
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++idx[d] < odims[d])
                break;
            idx[d] = 0;
        }
    }
}

static evo_status transpose_eval(const evo_kctx *c)
{
    const transpose_params *p = c->params;
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    size_t es = evo_dtype_size(x->dtype);
    int64_t numel = evo_shape_numel(&x->shape);
    if (numel <= 0)
        return EVO_OK;
    int32_t perm0[EVO_MAX_RANK], perm[EVO_MAX_RANK];
    int64_t dims[EVO_MAX_RANK];
    transpose_get_perm(p, x->shape.rank, perm0);
    int32_t r = transpose_simplify(x->shape.dims, perm0, x->shape.rank, dims, perm);
    if (r <= 1) {
        memcpy(y->data, x->data, (size_t)numel * es);
        return EVO_OK;
    }
    /* Batched 2-D swap: perm [1,0] or [0,2,1] after simplification. */
    if ((r == 2 && perm[0] == 1) || (r == 3 && perm[0] == 0 && perm[1] == 2 && perm[2] == 1)) {
        int64_t batch = r == 3 ? dims[0] : 1;
        int64_t rows = dims[r - 2], cols = dims[r - 1];
        size_t mat = (size_t)(rows * cols) * es;
        bool ok = true;
        for (int64_t b = 0; b < batch && ok; b++)
            ok = transpose_2d((const unsigned char *)x->data + (size_t)b * mat,
                              (unsigned char *)y->data + (size_t)b * mat, rows, cols, es);
        if (ok)
            return EVO_OK;
    }
    int64_t instride[EVO_MAX_RANK], odims[EVO_MAX_RANK], istride[EVO_MAX_RANK];
    int64_t s = 1;
    for (int32_t d = r - 1; d >= 0; d--) {
        instride[d] = s;
        s *= dims[d];
    }
    for (int32_t i = 0; i < r; i++) {
        odims[i] = dims[perm[i]];
        istride[i] = instride[perm[i]];
    }
    transpose_generic(x->data, y->data, odims, istride, r, es);
    return EVO_OK;
}

const evo_op_def evo_op_Transpose = {
    .name = "Transpose",
    .domain = "",
    .id = 70,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = transpose_parse,
    .infer = transpose_infer,
    .cost = transpose_cost,
    .eval = transpose_eval,
};
