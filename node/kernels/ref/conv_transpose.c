/*
 * ConvTranspose (ONNX opsets 1..18, float32): infer, cost, the reference
 * implementation and dispatch to the SGEMM + col2im fast path
 * (conv_fast.c). Attribute parsing and geometry (output_shape,
 * output_padding, auto_pad) live with Conv in ref/conv.c.
 */
#include <string.h>

#include "evo/op.h"
#include "kernels/conv.h"
#include "kernels/cpu.h"

extern const evo_op_def evo_op_ConvTranspose;

static evo_status convt_parse(const evo_node *node, void *params, evo_error *err)
{
    return evo_conv_parse_params(node, true, (evo_conv_params *)params, err);
}

static evo_status convt_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_ConvTranspose, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *w = c->in[1];
    const evo_tensor *b = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != EVO_DT_FLOAT32 || w->dtype != EVO_DT_FLOAT32 ||
        (b != NULL && b->dtype != EVO_DT_FLOAT32))
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "ConvTranspose: only float32 X, W and B are supported (got X %s, "
                             "W %s)",
                             evo_dtype_name(x->dtype), evo_dtype_name(w->dtype));
    evo_conv_geom g;
    if ((rv = evo_conv_transpose_resolve(c->params, &x->shape, &w->shape, &g, c->err)) != EVO_OK)
        return rv;
    if (b != NULL && (b->shape.rank != 1 || b->shape.dims[0] != g.m))
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "ConvTranspose: bias B must have shape [%lld] (one per output "
                             "channel)",
                             (long long)g.m);
    if (g.m > INT32_MAX)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "ConvTranspose: too many output channels");
    if (c->out[0] == NULL)
        return EVO_OK;
    evo_tensor *y = c->out[0];
    y->dtype = EVO_DT_FLOAT32;
    y->shape.rank = x->shape.rank;
    y->shape.dims[0] = (int32_t)g.n;
    y->shape.dims[1] = (int32_t)g.m;
    for (int32_t i = 0; i < g.nsp; i++)
        y->shape.dims[2 + i] = (int32_t)g.out[3 - g.nsp + i];
    return EVO_OK;
}

static size_t convt_scratch(const evo_kctx *c)
{
    evo_conv_geom g;
    if (evo_conv_transpose_resolve(c->params, &c->in[0]->shape, &c->in[1]->shape, &g, NULL) !=
        EVO_OK)
        return 0;
    return evo_conv_transpose_fast_scratch(&g);
}

static void convt_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_conv_geom g;
    if (evo_conv_transpose_resolve(c->params, &c->in[0]->shape, &c->in[1]->shape, &g, NULL) !=
        EVO_OK)
        return;
    /* Every input element meets every tap of its group's output channels. */
    cost->flops = 2u * (uint64_t)g.n * (uint64_t)g.c * (uint64_t)g.in_size * (uint64_t)g.mg *
                  (uint64_t)g.k_size;
}

/* The reference: scatter every input element through every tap. */
static void convt_ref(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                      const evo_act *act, float *y)
{
    for (int64_t n = 0; n < g->n; n++) {
        for (int64_t m = 0; m < g->m; m++) {
            float *ym = y + (n * g->m + m) * g->out_size;
            for (int64_t i = 0; i < g->out_size; i++)
                ym[i] = bias != NULL ? bias[m] : 0.0f;
        }
        for (int64_t ch = 0; ch < g->c; ch++) {
            const int64_t grp = ch / g->cg;
            const float *xc = x + (n * g->c + ch) * g->in_size;
            for (int64_t mg = 0; mg < g->mg; mg++) {
                float *ym = y + (n * g->m + grp * g->mg + mg) * g->out_size;
                const float *wk = w + (ch * g->mg + mg) * g->k_size;
                for (int64_t i0 = 0; i0 < g->in[0]; i0++)
                    for (int64_t i1 = 0; i1 < g->in[1]; i1++)
                        for (int64_t i2 = 0; i2 < g->in[2]; i2++) {
                            const float xv = xc[(i0 * g->in[1] + i1) * g->in[2] + i2];
                            for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
                                const int64_t o0 = i0 * g->stride[0] - g->pad_b[0] + k0 * g->dil[0];
                                if (o0 < 0 || o0 >= g->out[0])
                                    continue;
                                for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
                                    const int64_t o1 =
                                        i1 * g->stride[1] - g->pad_b[1] + k1 * g->dil[1];
                                    if (o1 < 0 || o1 >= g->out[1])
                                        continue;
                                    for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                                        const int64_t o2 =
                                            i2 * g->stride[2] - g->pad_b[2] + k2 * g->dil[2];
                                        if (o2 < 0 || o2 >= g->out[2])
                                            continue;
                                        ym[(o0 * g->out[1] + o1) * g->out[2] + o2] +=
                                            xv * wk[(k0 * g->k[1] + k1) * g->k[2] + k2];
                                    }
                                }
                            }
                        }
            }
        }
    }
    evo_act_apply(act, y, (size_t)(g->n * g->m * g->out_size));
}

static evo_status convt_eval(const evo_kctx *c)
{
    const evo_conv_params *p = c->params;
    evo_conv_geom g;
    if (evo_conv_transpose_resolve(p, &c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted these shapes */
    const float *x = c->in[0]->data, *w = c->in[1]->data;
    const float *b = c->n_in > 2 && c->in[2] != NULL ? c->in[2]->data : NULL;
    float *y = c->out[0]->data;
    if (evo_kernels_forced_path() == EVO_KPATH_REFERENCE)
        convt_ref(&g, x, w, b, &p->act, y);
    else
        evo_conv_transpose_fast(&g, x, w, b, &p->act, y, c->scratch, c->scratch_bytes);
    return EVO_OK;
}

const evo_op_def evo_op_ConvTranspose = {
    .name = "ConvTranspose",
    .domain = "",
    .id = 2,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = convt_parse,
    .infer = convt_infer,
    .scratch = convt_scratch,
    .cost = convt_cost,
    .eval = convt_eval,
};
