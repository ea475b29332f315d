/*
 * Pass: fold an inference-mode BatchNormalization into the Conv or Gemm that
 * produces its input.
 *
 *   BN(y) = scale * (y - mean) / sqrt(var + eps) + B,  per channel c
 *   with s_c = scale_c / sqrt(var_c + eps):
 *   W'[c, ...] = W[c, ...] * s_c          (Conv: output channel = W's dim 0)
 *   b'_c       = (b_c - mean_c) * s_c + B_c
 *
 * For Gemm (Y = alpha * A * op(B) + beta * C) the BN channel is Y's column
 * j, which is B's column j (transB = 0) or row j (transB = 1), and the new C
 * term is s_j * (beta * C_ij - mean_j) + B_j with beta set to 1.
 *
 * Fires only when everything is known: the Conv/Gemm output is read by the
 * BN alone and is not a graph output (else the unnormalized tensor is still
 * needed), and W, the bias and all four BN inputs are float32 constants of
 * the right sizes. The scaled weights become new constants (the old ones may
 * be shared; dead-code elimination frees them when nothing else reads them).
 * Arithmetic is in double, rounded once to float.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* A float32 constant with exactly `numel` elements, else NULL. */
static const float *bnfold_const_f32(const evo_graph *g, int32_t v, int64_t numel)
{
    if (v < 0 || v >= g->n_values)
        return NULL;
    const evo_value *val = &g->values[v];
    if (!(val->flags & EVO_VALUE_CONST) || val->t.data == NULL || val->t.dtype != EVO_DT_FLOAT32 ||
        evo_shape_numel(&val->t.shape) != numel)
        return NULL;
    return val->t.data;
}

/* Set node attribute `name` to a float (added if absent). */
static evo_status bnfold_set_float_attr(evo_graph *g, int32_t node, const char *name, float f)
{
    evo_node *n = &g->nodes[node];
    for (int32_t a = 0; a < n->n_attrs; a++)
        if (strcmp(n->attrs[a].name, name) == 0) {
            if (n->attrs[a].type != EVO_ATTR_FLOAT)
                return EVO_ERR_TYPE;
            n->attrs[a].f = f;
            return EVO_OK;
        }
    evo_attr at;
    memset(&at, 0, sizeof at);
    size_t len = strlen(name) + 1;
    if ((at.name = malloc(len)) == NULL)
        return EVO_ERR_NOMEM;
    memcpy(at.name, name, len);
    at.type = EVO_ATTR_FLOAT;
    at.f = f;
    return evo_node_add_attr(g, node, &at);
}

/* Make input slot k of node i exist (absent optional inputs are -1). */
static evo_status bnfold_ensure_input(evo_graph *g, int32_t i, int32_t k)
{
    evo_node *n = &g->nodes[i];
    if (k < n->n_inputs)
        return EVO_OK;
    int32_t *p = realloc(n->inputs, ((size_t)k + 2) * sizeof *p);
    if (p == NULL)
        return EVO_ERR_NOMEM;
    for (int32_t j = n->n_inputs; j <= k; j++)
        p[j] = -1;
    n->inputs = p;
    n->n_inputs = k + 1;
    return EVO_OK;
}

typedef struct bnfold_stats {
    const float *scale, *bias, *mean, *var;
    double eps;
} bnfold_stats;

static double bnfold_s(const bnfold_stats *st, int64_t c)
{
    return (double)st->scale[c] / sqrt((double)st->var[c] + st->eps);
}

/* Conv: W [M, C/group, k...], bias [M]. */
static evo_status bnfold_conv(evo_pass_ctx *c, int32_t pi, const bnfold_stats *st, int64_t m)
{
    evo_graph *g = c->g;
    evo_node *p = &g->nodes[pi];
    int32_t wv = p->inputs[1];
    int32_t bv = p->n_inputs > 2 ? p->inputs[2] : -1;
    const evo_value *wval = &g->values[wv];
    if (wval->t.shape.rank < 1 || wval->t.shape.dims[0] != m)
        return EVO_ERR_UNSUPPORTED;
    int64_t wn = evo_shape_numel(&wval->t.shape);
    const float *w = bnfold_const_f32(g, wv, wn);
    const float *b = bv >= 0 ? bnfold_const_f32(g, bv, m) : NULL;
    if (w == NULL || (bv >= 0 && b == NULL) || wn <= 0 || wn % m != 0)
        return EVO_ERR_UNSUPPORTED;
    int64_t per = wn / m;
    float *nw = malloc((size_t)wn * sizeof(float));
    float *nb = malloc((size_t)m * sizeof(float) + 1);
    if (nw == NULL || nb == NULL) {
        free(nw);
        free(nb);
        return EVO_ERR_NOMEM;
    }
    for (int64_t o = 0; o < m; o++) {
        double s = bnfold_s(st, o);
        for (int64_t j = 0; j < per; j++)
            nw[o * per + j] = (float)((double)w[o * per + j] * s);
        double b0 = b != NULL ? (double)b[o] : 0.0;
        nb[o] = (float)((b0 - (double)st->mean[o]) * s + (double)st->bias[o]);
    }
    evo_shape ws = wval->t.shape;
    evo_shape bs = {.rank = 1, .dims = {(int32_t)m}};
    char *wname = g->values[wv].name;
    int32_t nwv, nbv;
    evo_status rv = evo_pass_new_const(c, wname, "_bnfold", EVO_DT_FLOAT32, &ws, nw, &nwv);
    if (rv != EVO_OK) {
        free(nb);
        return rv;
    }
    rv = evo_pass_new_const(c, g->values[wv].name, "_bnfold_bias", EVO_DT_FLOAT32, &bs, nb, &nbv);
    if (rv != EVO_OK)
        return rv;
    if ((rv = bnfold_ensure_input(g, pi, 2)) != EVO_OK)
        return rv;
    p = &g->nodes[pi];
    p->inputs[1] = nwv;
    p->inputs[2] = nbv;
    return EVO_OK;
}

/* Gemm: Y [M, N] = alpha * op(A) * op(B) + beta * C. */
static evo_status bnfold_gemm(evo_pass_ctx *c, int32_t pi, const bnfold_stats *st,
                              const evo_shape *ys)
{
    evo_graph *g = c->g;
    evo_node *p = &g->nodes[pi];
    if (ys->rank != 2)
        return EVO_ERR_UNSUPPORTED;
    int64_t rows = ys->dims[0], n = ys->dims[1];
    int64_t trans_b = 0;
    float beta = 1.0f;
    if (evo_attr_get_int(p, "transB", 0, &trans_b) != EVO_OK ||
        evo_attr_get_float(p, "beta", 1.0f, &beta) != EVO_OK)
        return EVO_ERR_UNSUPPORTED;
    int32_t wv = p->inputs[1];
    int32_t cv = p->n_inputs > 2 ? p->inputs[2] : -1;
    const evo_value *wval = &g->values[wv];
    if (wval->t.shape.rank != 2 || wval->t.shape.dims[trans_b ? 0 : 1] != n)
        return EVO_ERR_UNSUPPORTED;
    int64_t k = wval->t.shape.dims[trans_b ? 1 : 0];
    const float *w = bnfold_const_f32(g, wv, k * n);
    if (w == NULL)
        return EVO_ERR_UNSUPPORTED;
    /* C as it broadcasts to [rows, n]: keep its rows only if it has them. */
    const float *cd = NULL;
    evo_shape cs = {.rank = 0};
    if (cv >= 0) {
        cs = g->values[cv].t.shape;
        if (cs.rank > 2 || (cd = bnfold_const_f32(g, cv, evo_shape_numel(&cs))) == NULL)
            return EVO_ERR_UNSUPPORTED;
    }
    bool c_rows = cs.rank == 2 && cs.dims[0] != 1;
    int64_t out_rows = c_rows ? rows : 1;
    float *nw = malloc((size_t)(k * n) * sizeof(float) + 1);
    float *nc = malloc((size_t)(out_rows * n) * sizeof(float) + 1);
    if (nw == NULL || nc == NULL) {
        free(nw);
        free(nc);
        return EVO_ERR_NOMEM;
    }
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t idx = trans_b ? j * k + i : i * n + j;
            nw[idx] = (float)((double)w[idx] * bnfold_s(st, j));
        }
    for (int64_t i = 0; i < out_rows; i++)
        for (int64_t j = 0; j < n; j++) {
            double c0 = 0.0;
            if (cd != NULL) {
                int64_t ci = 0;
                if (cs.rank == 1)
                    ci = cs.dims[0] == 1 ? 0 : j;
                else if (cs.rank == 2)
                    ci = (cs.dims[0] == 1 ? 0 : i) * cs.dims[1] + (cs.dims[1] == 1 ? 0 : j);
                c0 = (double)beta * (double)cd[ci];
            }
            nc[i * n + j] =
                (float)(bnfold_s(st, j) * (c0 - (double)st->mean[j]) + (double)st->bias[j]);
        }
    evo_shape ws = wval->t.shape;
    evo_shape ncs = {.rank = c_rows ? 2 : 1};
    if (c_rows) {
        ncs.dims[0] = (int32_t)rows;
        ncs.dims[1] = (int32_t)n;
    } else {
        ncs.dims[0] = (int32_t)n;
    }
    int32_t nwv, ncv;
    evo_status rv =
        evo_pass_new_const(c, g->values[wv].name, "_bnfold", EVO_DT_FLOAT32, &ws, nw, &nwv);
    if (rv != EVO_OK) {
        free(nc);
        return rv;
    }
    rv = evo_pass_new_const(c, g->values[wv].name, "_bnfold_bias", EVO_DT_FLOAT32, &ncs, nc, &ncv);
    if (rv != EVO_OK)
        return rv;
    if (beta != 1.0f && (rv = bnfold_set_float_attr(g, pi, "beta", 1.0f)) != EVO_OK)
        return rv;
    if ((rv = bnfold_ensure_input(g, pi, 2)) != EVO_OK)
        return rv;
    p = &g->nodes[pi];
    p->inputs[1] = nwv;
    p->inputs[2] = ncv;
    return EVO_OK;
}

/* Try to fold BN node bi. EVO_ERR_UNSUPPORTED = the pattern does not apply. */
static evo_status bnfold_one(evo_pass_ctx *c, int32_t bi)
{
    evo_graph *g = c->g;
    const evo_node *bn = &g->nodes[bi];
    if (bn->op == NULL || bn->n_inputs != 5 || bn->n_outputs < 1 || bn->outputs[0] < 0)
        return EVO_ERR_UNSUPPORTED;
    for (int32_t k = 0; k < 5; k++)
        if (bn->inputs[k] < 0)
            return EVO_ERR_UNSUPPORTED;
    for (int32_t k = 1; k < bn->n_outputs; k++)
        if (bn->outputs[k] >= 0 && c->n_uses[bn->outputs[k]] > 0)
            return EVO_ERR_UNSUPPORTED;
    int32_t y = bn->inputs[0];
    int32_t pi = g->values[y].producer;
    if (!evo_pass_live(c, pi) || c->n_uses[y] != 1 || (g->values[y].flags & EVO_VALUE_OUTPUT))
        return EVO_ERR_UNSUPPORTED;
    const evo_node *p = &g->nodes[pi];
    bool is_conv = evo_pass_is_op(p, "Conv"), is_gemm = evo_pass_is_op(p, "Gemm");
    if ((!is_conv && !is_gemm) || p->op == NULL || p->n_outputs != 1 || p->outputs[0] != y ||
        p->n_inputs < 2 || p->inputs[1] < 0)
        return EVO_ERR_UNSUPPORTED;
    const evo_shape *ys = &g->values[y].t.shape;
    if (g->values[y].t.dtype != EVO_DT_FLOAT32 || ys->rank < 2)
        return EVO_ERR_UNSUPPORTED;
    int64_t ch = ys->dims[1];
    bnfold_stats st;
    float eps = 1e-5f;
    if (evo_attr_get_float(bn, "epsilon", 1e-5f, &eps) != EVO_OK)
        return EVO_ERR_UNSUPPORTED;
    st.eps = eps;
    st.scale = bnfold_const_f32(g, bn->inputs[1], ch);
    st.bias = bnfold_const_f32(g, bn->inputs[2], ch);
    st.mean = bnfold_const_f32(g, bn->inputs[3], ch);
    st.var = bnfold_const_f32(g, bn->inputs[4], ch);
    if (!st.scale || !st.bias || !st.mean || !st.var)
        return EVO_ERR_UNSUPPORTED;
    for (int64_t k = 0; k < ch; k++)
        if (!((double)st.var[k] + st.eps > 0.0))
            return EVO_ERR_UNSUPPORTED; /* would divide by zero or NaN: leave it to run */
    evo_status rv = is_conv ? bnfold_conv(c, pi, &st, ch) : bnfold_gemm(c, pi, &st, ys);
    if (rv != EVO_OK)
        return rv;
    /* The Conv/Gemm now writes the BN's output; the BN and y go. */
    int32_t z = g->nodes[bi].outputs[0];
    g->nodes[pi].outputs[0] = z;
    g->values[z].producer = pi;
    g->values[y].producer = -1;
    c->removed[bi] = true;
    return evo_pass_reinfer_node(c, pi);
}

evo_status evo_pass_fold_batchnorm(evo_pass_ctx *c, int32_t *count)
{
    evo_graph *g = c->g;
    evo_status rv = evo_pass_count_uses(c);
    if (rv != EVO_OK)
        return rv;
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        if (!evo_pass_live(c, i) || !evo_pass_is_op(&g->nodes[i], "BatchNormalization"))
            continue;
        rv = bnfold_one(c, i);
        if (rv == EVO_ERR_UNSUPPORTED)
            continue;
        if (rv != EVO_OK) {
            if (c->err != NULL && c->err->msg[0] == '\0')
                evo_error_set(c->err, rv, "%s: folding BatchNormalization '%s' failed: %s",
                              evo_pass_file(g), g->nodes[i].name, evo_strerror(rv));
            return rv;
        }
        (*count)++;
        if ((rv = evo_pass_count_uses(c)) != EVO_OK)
            return rv;
    }
    return EVO_OK;
}
