/*
 * Gemm (ONNX opsets 7..18, float32): Y = alpha * op(A) * op(B) + beta * C,
 * C optional and unidirectionally broadcast to (M, N), then the fused
 * activation (EVO_ACT_NONE unless a fusion pass set it). The reference is a
 * triple loop; eval runs the shared packed SGEMM (kernels/gemm.h).
 */
#include <string.h>

#include "evo/op.h"
#include "kernels/conv.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"

extern const evo_op_def evo_op_Gemm;

static evo_status gemm_parse(const evo_node *node, void *params, evo_error *err)
{
    evo_gemm_params *p = params;
    int64_t ta = 0, tb = 0;
    if (evo_attr_get_float(node, "alpha", 1.0f, &p->alpha) != EVO_OK ||
        evo_attr_get_float(node, "beta", 1.0f, &p->beta) != EVO_OK ||
        evo_attr_get_int(node, "transA", 0, &ta) != EVO_OK ||
        evo_attr_get_int(node, "transB", 0, &tb) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE,
                             "Gemm node '%s': alpha/beta must be floats and transA/transB ints",
                             node->name);
    p->trans_a = ta != 0;
    p->trans_b = tb != 0;
    p->act.kind = EVO_ACT_NONE;
    return EVO_OK;
}

/* M, N, K from the shapes of A and B (validated by infer). */
static void gemm_dims(const evo_gemm_params *p, const evo_shape *a, const evo_shape *b, int64_t *m,
                      int64_t *n, int64_t *k)
{
    *m = p->trans_a ? a->dims[1] : a->dims[0];
    *k = p->trans_a ? a->dims[0] : a->dims[1];
    *n = p->trans_b ? b->dims[0] : b->dims[1];
}

static evo_status gemm_infer(const evo_kctx *c)
{
    const evo_gemm_params *p = c->params;
    evo_status rv = evo_op_check_arity(&evo_op_Gemm, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *a = c->in[0], *b = c->in[1];
    const evo_tensor *cc = c->n_in > 2 ? c->in[2] : NULL;
    if (a->dtype != EVO_DT_FLOAT32 || b->dtype != EVO_DT_FLOAT32 ||
        (cc != NULL && cc->dtype != EVO_DT_FLOAT32))
        return evo_error_set(c->err, EVO_ERR_TYPE,
                             "Gemm: only float32 is supported (got A %s, B %s)",
                             evo_dtype_name(a->dtype), evo_dtype_name(b->dtype));
    if (a->shape.rank != 2 || b->shape.rank != 2)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Gemm: A and B must be 2-D, got ranks %d and %d", (int)a->shape.rank,
                             (int)b->shape.rank);
    if (!evo_act_valid(&p->act))
        return evo_error_set(c->err, EVO_ERR_INVALID_ARG, "Gemm: unknown fused activation %d",
                             (int)p->act.kind);
    int64_t m, n, k;
    gemm_dims(p, &a->shape, &b->shape, &m, &n, &k);
    const int64_t kb = p->trans_b ? b->shape.dims[1] : b->shape.dims[0];
    if (k != kb)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Gemm: inner dimensions differ: op(A) is %lldx%lld, op(B) is "
                             "%lldx%lld",
                             (long long)m, (long long)k, (long long)kb, (long long)n);
    if (cc != NULL) {
        const evo_shape *cs = &cc->shape;
        const int64_t want[2] = {m, n};
        if (cs->rank > 2)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Gemm: C must have rank <= 2, got %d",
                                 (int)cs->rank);
        for (int32_t i = 0; i < cs->rank; i++) {
            const int64_t d = cs->dims[i], wd = want[2 - cs->rank + i];
            if (d != 1 && d != wd)
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "Gemm: C's dim %d is %lld, cannot broadcast to [%lld,%lld]",
                                     (int)i, (long long)d, (long long)m, (long long)n);
        }
    }
    if (c->out[0] == NULL)
        return EVO_OK;
    c->out[0]->dtype = EVO_DT_FLOAT32;
    c->out[0]->shape.rank = 2;
    c->out[0]->shape.dims[0] = (int32_t)m;
    c->out[0]->shape.dims[1] = (int32_t)n;
    return EVO_OK;
}

static size_t gemm_scratch(const evo_kctx *c)
{
    int64_t m, n, k;
    gemm_dims(c->params, &c->in[0]->shape, &c->in[1]->shape, &m, &n, &k);
    return evo_sgemm_scratch_bytes(m, n, k);
}

static void gemm_cost(const evo_kctx *c, evo_op_cost *cost)
{
    int64_t m, n, k;
    gemm_dims(c->params, &c->in[0]->shape, &c->in[1]->shape, &m, &n, &k);
    cost->flops = 2u * (uint64_t)m * (uint64_t)n * (uint64_t)k;
}

/* C's element for output (i, j) under unidirectional broadcasting. */
static float gemm_c_at(const evo_tensor *cc, int64_t i, int64_t j)
{
    const float *d = cc->data;
    const evo_shape *s = &cc->shape;
    if (s->rank == 0)
        return d[0];
    if (s->rank == 1)
        return d[s->dims[0] == 1 ? 0 : j];
    const int64_t r = s->dims[0] == 1 ? 0 : i, col = s->dims[1] == 1 ? 0 : j;
    return d[r * s->dims[1] + col];
}

static void gemm_ref(const evo_gemm_params *p, int64_t m, int64_t n, int64_t k, const float *a,
                     const float *b, const evo_tensor *cc, float *y)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float sum = 0.0f;
            for (int64_t t = 0; t < k; t++) {
                const float av = p->trans_a ? a[t * m + i] : a[i * k + t];
                const float bv = p->trans_b ? b[j * k + t] : b[t * n + j];
                sum += av * bv;
            }
            float v = p->alpha * sum;
            if (cc != NULL)
                v += p->beta * gemm_c_at(cc, i, j);
            y[i * n + j] = v;
        }
    evo_act_apply(&p->act, y, (size_t)(m * n));
}

static evo_status gemm_eval(const evo_kctx *c)
{
    const evo_gemm_params *p = c->params;
    const evo_tensor *cc = c->n_in > 2 ? c->in[2] : NULL;
    int64_t m, n, k;
    gemm_dims(p, &c->in[0]->shape, &c->in[1]->shape, &m, &n, &k);
    const float *a = c->in[0]->data, *b = c->in[1]->data;
    float *y = c->out[0]->data;
    if (evo_kernels_forced_path() == EVO_KPATH_REFERENCE) {
        gemm_ref(p, m, n, k, a, b, cc, y);
        return EVO_OK;
    }
    evo_gemm_epilogue epi = {.act = p->act};
    evo_sgemm_args g = {
        .trans_a = p->trans_a != 0,
        .trans_b = p->trans_b != 0,
        .m = m,
        .n = n,
        .k = k,
        .alpha = p->alpha,
        .beta = 0.0f,
        .a = a,
        .lda = p->trans_a ? m : k,
        .b = b,
        .ldb = p->trans_b ? k : n,
        .c = y,
        .ldc = n,
        .epi = &epi,
    };
    if (cc != NULL && p->beta != 0.0f) {
        const evo_shape *cs = &cc->shape;
        const int64_t cn = evo_shape_numel(cs);
        if (p->beta == 1.0f && cn == n && n > 1 && (cs->rank == 1 || cs->dims[0] == 1)) {
            /* A bias row (the FC layer case): add it in the epilogue. */
            epi.bias = cc->data;
            epi.bias_mode = EVO_GEMM_BIAS_COL;
        } else {
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    y[i * n + j] = gemm_c_at(cc, i, j);
            g.beta = p->beta;
        }
    }
    evo_sgemm(&g, c->scratch, c->scratch_bytes);
    return EVO_OK;
}

const evo_op_def evo_op_Gemm = {
    .name = "Gemm",
    .domain = "",
    .id = 3,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = gemm_parse,
    .infer = gemm_infer,
    .scratch = gemm_scratch,
    .cost = gemm_cost,
    .eval = gemm_eval,
};
