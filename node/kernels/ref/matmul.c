/*
 * MatMul (ONNX opsets 1..18): numpy matmul semantics. A 1-D A is a row
 * vector (dim dropped from the result), a 1-D B a column vector; leading
 * (batch) dims broadcast. float32 runs on the shared SGEMM; int32 and int64
 * use the reference loops (wrapping on overflow, as two's complement
 * hardware does, without undefined behaviour).
 */
#include <string.h>

#include "evo/op.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"

extern const evo_op_def evo_op_MatMul;

/* The product's layout: batch dims (broadcast), and per-operand strides in
 * elements for each batch dim (0 where the operand broadcasts). */
typedef struct matmul_geom {
    int64_t m, n, k;
    int32_t batch_rank;
    int64_t batch_dims[EVO_MAX_RANK];
    int64_t a_stride[EVO_MAX_RANK], b_stride[EVO_MAX_RANK];
    int64_t batch; /* product of batch_dims */
    bool a_1d, b_1d;
} matmul_geom;

static evo_status matmul_resolve(const evo_shape *a, const evo_shape *b, matmul_geom *g,
                                 evo_error *err)
{
    memset(g, 0, sizeof *g);
    if (a->rank < 1 || b->rank < 1)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "MatMul: operands must have rank >= 1, got %d and %d", (int)a->rank,
                             (int)b->rank);
    g->a_1d = a->rank == 1;
    g->b_1d = b->rank == 1;
    g->m = g->a_1d ? 1 : a->dims[a->rank - 2];
    g->k = a->dims[a->rank - 1];
    const int64_t kb = g->b_1d ? b->dims[0] : b->dims[b->rank - 2];
    g->n = g->b_1d ? 1 : b->dims[b->rank - 1];
    if (g->k != kb) {
        char sa[96], sb[96];
        evo_shape_format(a, sa, sizeof sa);
        evo_shape_format(b, sb, sizeof sb);
        return evo_error_set(err, EVO_ERR_SHAPE, "MatMul: inner dimensions differ: %s x %s", sa,
                             sb);
    }
    const int32_t ra = g->a_1d ? 0 : a->rank - 2, rb = g->b_1d ? 0 : b->rank - 2;
    const int32_t r = ra > rb ? ra : rb;
    g->batch_rank = r;
    g->batch = 1;
    int64_t sa = g->m * g->k, sb = g->k * g->n; /* stride of the innermost batch dim */
    for (int32_t i = r - 1; i >= 0; i--) {
        const int32_t ia = i - (r - ra), ib = i - (r - rb);
        const int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "MatMul: batch dims %lld and %lld do not broadcast", (long long)da,
                                 (long long)db);
        g->batch_dims[i] = da > db ? da : db;
        if (da == 0 || db == 0)
            g->batch_dims[i] = 0;
        g->a_stride[i] = da == 1 ? 0 : sa;
        g->b_stride[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        g->batch *= g->batch_dims[i];
    }
    return EVO_OK;
}

static evo_status matmul_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_MatMul, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype != b->dtype)
        return evo_error_set(c->err, EVO_ERR_TYPE, "MatMul: operand types differ (%s and %s)",
                             evo_dtype_name(a->dtype), evo_dtype_name(b->dtype));
    if (a->dtype != EVO_DT_FLOAT32 && a->dtype != EVO_DT_INT32 && a->dtype != EVO_DT_INT64)
        return evo_error_set(c->err, EVO_ERR_TYPE,
                             "MatMul: type %s is not supported (float32, int32, int64)",
                             evo_dtype_name(a->dtype));
    matmul_geom g;
    if ((rv = matmul_resolve(&a->shape, &b->shape, &g, c->err)) != EVO_OK)
        return rv;
    evo_shape out = {.rank = 0};
    for (int32_t i = 0; i < g.batch_rank; i++)
        out.dims[out.rank++] = (int32_t)g.batch_dims[i];
    if (!g.a_1d)
        out.dims[out.rank++] = (int32_t)g.m;
    if (!g.b_1d)
        out.dims[out.rank++] = (int32_t)g.n;
    if (evo_shape_numel(&out) < 0)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "MatMul: output is too large");
    if (c->out[0] == NULL)
        return EVO_OK;
    c->out[0]->dtype = a->dtype;
    c->out[0]->shape = out;
    return EVO_OK;
}

/* True when B is the same matrix for every batch (its batch dims are all
 * 1), so A's contiguous batch folds into M: one SGEMM of (batch * M) x K by
 * K x N. */
static bool matmul_fold_batch(const matmul_geom *g)
{
    for (int32_t i = 0; i < g->batch_rank; i++)
        if (g->b_stride[i] != 0)
            return false;
    return true;
}

static size_t matmul_scratch(const evo_kctx *c)
{
    matmul_geom g;
    if (c->in[0]->dtype != EVO_DT_FLOAT32 ||
        matmul_resolve(&c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return 0;
    const int64_t rows = matmul_fold_batch(&g) ? g.batch * g.m : g.m;
    return evo_sgemm_scratch_bytes(rows, g.n, g.k);
}

static void matmul_cost(const evo_kctx *c, evo_op_cost *cost)
{
    matmul_geom g;
    if (matmul_resolve(&c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return;
    cost->flops = 2u * (uint64_t)g.batch * (uint64_t)g.m * (uint64_t)g.n * (uint64_t)g.k;
}

/* Element offsets of batch bi's A and B matrices. */
static void matmul_batch_offsets(const matmul_geom *g, int64_t bi, int64_t *oa, int64_t *ob)
{
    *oa = *ob = 0;
    for (int32_t i = g->batch_rank - 1; i >= 0; i--) {
        const int64_t idx = bi % g->batch_dims[i];
        bi /= g->batch_dims[i];
        *oa += idx * g->a_stride[i];
        *ob += idx * g->b_stride[i];
    }
}

static void matmul_ref_f32(const matmul_geom *g, const float *a, const float *b, float *y)
{
    for (int64_t bi = 0; bi < g->batch; bi++) {
        int64_t oa, ob;
        matmul_batch_offsets(g, bi, &oa, &ob);
        const float *ab = a + oa, *bb = b + ob;
        float *yb = y + bi * g->m * g->n;
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++) {
                float s = 0.0f;
                for (int64_t t = 0; t < g->k; t++)
                    s += ab[i * g->k + t] * bb[t * g->n + j];
                yb[i * g->n + j] = s;
            }
    }
}

/* Integer MatMul: accumulate in uint64 so overflow wraps instead of being
 * undefined; the result is truncated to the element width. */
#define MATMUL_REF_INT(name, type)                                                                 \
    static void name(const matmul_geom *g, const type *a, const type *b, type *y)                  \
    {                                                                                              \
        for (int64_t bi = 0; bi < g->batch; bi++) {                                                \
            int64_t oa, ob;                                                                        \
            matmul_batch_offsets(g, bi, &oa, &ob);                                                 \
            const type *ab = a + oa, *bb = b + ob;                                                 \
            type *yb = y + bi * g->m * g->n;                                                       \
            for (int64_t i = 0; i < g->m; i++)                                                     \
                for (int64_t j = 0; j < g->n; j++) {                                               \
                    uint64_t s = 0;                                                                \
                    for (int64_t t = 0; t < g->k; t++)                                             \
                        s += (uint64_t)(int64_t)ab[i * g->k + t] *                                 \
                             (uint64_t)(int64_t)bb[t * g->n + j];                                  \
                    yb[i * g->n + j] = (type)(int64_t)s;                                           \
                }                                                                                  \
        }                                                                                          \
    }
MATMUL_REF_INT(matmul_ref_i32, int32_t)
MATMUL_REF_INT(matmul_ref_i64, int64_t)

static evo_status matmul_eval(const evo_kctx *c)
{
    matmul_geom g;
    if (matmul_resolve(&c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted these shapes */
    const void *a = c->in[0]->data, *b = c->in[1]->data;
    void *y = c->out[0]->data;
    switch (c->in[0]->dtype) {
    case EVO_DT_INT32:
        matmul_ref_i32(&g, a, b, y);
        return EVO_OK;
    case EVO_DT_INT64:
        matmul_ref_i64(&g, a, b, y);
        return EVO_OK;
    default:
        break;
    }
    if (evo_kernels_forced_path() == EVO_KPATH_REFERENCE) {
        matmul_ref_f32(&g, a, b, y);
        return EVO_OK;
    }
    evo_sgemm_args ga = {
        .m = g.m,
        .n = g.n,
        .k = g.k,
        .alpha = 1.0f,
        .beta = 0.0f,
        .lda = g.k,
        .ldb = g.n,
        .ldc = g.n,
    };
    if (matmul_fold_batch(&g)) {
        ga.m = g.batch * g.m;
        ga.a = a;
        ga.b = b;
        ga.c = y;
        evo_sgemm(&ga, c->scratch, c->scratch_bytes);
        return EVO_OK;
    }
    for (int64_t bi = 0; bi < g.batch; bi++) {
        int64_t oa, ob;
        matmul_batch_offsets(&g, bi, &oa, &ob);
        ga.a = (const float *)a + oa;
        ga.b = (const float *)b + ob;
        ga.c = (float *)y + bi * g.m * g.n;
        evo_sgemm(&ga, c->scratch, c->scratch_bytes);
    }
    return EVO_OK;
}

const evo_op_def evo_op_MatMul = {
    .name = "MatMul",
    .domain = "",
    .id = 4,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = NULL,
    .infer = matmul_infer,
    .scratch = matmul_scratch,
    .cost = matmul_cost,
    .eval = matmul_eval,
};
