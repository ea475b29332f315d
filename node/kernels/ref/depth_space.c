/*
 * DepthToSpace (modes DCR and CRD) and SpaceToDepth on NCHW tensors.
 * Both are fixed 6-D transposes; eval copies one input row segment of
 * `blocksize` or `W` elements at a time. Element size generic.
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_DepthToSpace;
extern const evo_op_def evo_op_SpaceToDepth;

typedef struct d2s_params {
    int64_t blocksize;
    int32_t crd; /* DepthToSpace: 1 = CRD, 0 = DCR */
} d2s_params;
_Static_assert(sizeof(d2s_params) <= EVO_PARAMS_MAX, "depth/space params too large");

static evo_status d2s_parse_common(const evo_node *node, void *params, evo_error *err,
                                   bool has_mode)
{
    d2s_params *p = params;
    if (evo_node_attr(node, "blocksize") == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s' lacks the required 'blocksize'",
                             node->op_type, node->name);
    if (evo_attr_get_int(node, "blocksize", 0, &p->blocksize) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': 'blocksize' must be an int",
                             node->op_type, node->name);
    if (p->blocksize < 1 || p->blocksize > 65536)
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': blocksize %lld is invalid",
                             node->op_type, node->name, (long long)p->blocksize);
    if (has_mode) {
        const char *mode;
        if (evo_attr_get_string(node, "mode", "DCR", &mode) != EVO_OK)
            return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': 'mode' must be a string",
                                 node->op_type, node->name);
        if (strcmp(mode, "DCR") == 0)
            p->crd = 0;
        else if (strcmp(mode, "CRD") == 0)
            p->crd = 1;
        else
            return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                                 "%s node '%s': mode '%s' is not DCR or CRD", node->op_type,
                                 node->name, mode);
    }
    return EVO_OK;
}

static evo_status d2s_parse(const evo_node *node, void *params, evo_error *err)
{
    return d2s_parse_common(node, params, err, true);
}

static evo_status s2d_parse(const evo_node *node, void *params, evo_error *err)
{
    return d2s_parse_common(node, params, err, false);
}

static evo_status d2s_check(const evo_kctx *c, const evo_op_def *op)
{
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: dtype %s has no element size", op->name,
                             evo_dtype_name(x->dtype));
    if (x->shape.rank != 4)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input must be 4-D NCHW, got rank %d",
                             op->name, (int)x->shape.rank);
    /* parse checked these, but a compact model (.evm) stores params as bytes
     * a hostile file controls */
    const d2s_params *p = c->params;
    if (p->blocksize < 1 || p->blocksize > 65536 || (p->crd & ~1) != 0)
        return evo_error_set(c->err, EVO_ERR_INVALID_ARG, "%s: invalid blocksize or mode",
                             op->name);
    return EVO_OK;
}

static evo_status d2s_infer(const evo_kctx *c)
{
    const d2s_params *p = c->params;
    evo_status rv = d2s_check(c, &evo_op_DepthToSpace);
    if (rv != EVO_OK)
        return rv;
    const evo_shape *s = &c->in[0]->shape;
    int64_t b = p->blocksize;
    if (s->dims[1] % (b * b) != 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "DepthToSpace: channels %d are not divisible by blocksize^2 = %lld",
                             (int)s->dims[1], (long long)(b * b));
    if ((int64_t)s->dims[2] * b > EVO_MAX_DIM || (int64_t)s->dims[3] * b > EVO_MAX_DIM)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "DepthToSpace: output is too large");
    evo_shape os = {.rank = 4,
                    .dims = {s->dims[0], (int32_t)(s->dims[1] / (b * b)), (int32_t)(s->dims[2] * b),
                             (int32_t)(s->dims[3] * b)}};
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static evo_status s2d_infer(const evo_kctx *c)
{
    const d2s_params *p = c->params;
    evo_status rv = d2s_check(c, &evo_op_SpaceToDepth);
    if (rv != EVO_OK)
        return rv;
    const evo_shape *s = &c->in[0]->shape;
    int64_t b = p->blocksize;
    if (s->dims[2] % b != 0 || s->dims[3] % b != 0)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "SpaceToDepth: H=%d and W=%d must be divisible by blocksize %lld",
                             (int)s->dims[2], (int)s->dims[3], (long long)b);
    if ((int64_t)s->dims[1] * b * b > EVO_MAX_DIM)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "SpaceToDepth: output is too large");
    evo_shape os = {.rank = 4,
                    .dims = {s->dims[0], (int32_t)(s->dims[1] * b * b), (int32_t)(s->dims[2] / b),
                             (int32_t)(s->dims[3] / b)}};
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = os;
    return EVO_OK;
}

static void d2s_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

/* Both directions share one loop over the space side (the big H x W image)
 * and the depth side (the C*b*b channels): depth channel for (c, i, j) is
 * dcr ? (i*b + j)*C + c : c*b*b + i*b + j. to_space picks the copy direction. */
static void d2s_move(unsigned char *space, unsigned char *depth, const int32_t *sdims, int64_t b,
                     bool dcr, bool to_space, size_t es)
{
    int64_t n = sdims[0], ch = sdims[1], h = sdims[2] / b, w = sdims[3] / b;
    int64_t H = sdims[2], W = sdims[3];
    if (n == 0 || ch == 0 || h == 0 || w == 0)
        return; /* empty: do not spin through b*b empty blocks */
    for (int64_t in = 0; in < n; in++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t i = 0; i < b; i++)
                for (int64_t j = 0; j < b; j++) {
                    int64_t dc = dcr ? (i * b + j) * ch + c : c * b * b + i * b + j;
                    unsigned char *dplane = depth + (size_t)((in * ch * b * b + dc) * h * w) * es;
                    unsigned char *splane = space + (size_t)((in * ch + c) * H * W) * es;
                    for (int64_t y = 0; y < h; y++) {
                        unsigned char *drow = dplane + (size_t)(y * w) * es;
                        unsigned char *srow = splane + (size_t)((y * b + i) * W + j) * es;
                        for (int64_t x = 0; x < w; x++) {
                            unsigned char *sp = srow + (size_t)(x * b) * es;
                            unsigned char *dp = drow + (size_t)x * es;
                            if (to_space)
                                memcpy(sp, dp, es);
                            else
                                memcpy(dp, sp, es);
                        }
                    }
                }
}

static evo_status d2s_eval(const evo_kctx *c)
{
    const d2s_params *p = c->params;
    d2s_move(c->out[0]->data, c->in[0]->data, c->out[0]->shape.dims, p->blocksize, !p->crd, true,
             evo_dtype_size(c->in[0]->dtype));
    return EVO_OK;
}

static evo_status s2d_eval(const evo_kctx *c)
{
    const d2s_params *p = c->params;
    /* SpaceToDepth's channel order is the DCR one. */
    d2s_move(c->in[0]->data, c->out[0]->data, c->in[0]->shape.dims, p->blocksize, true, false,
             evo_dtype_size(c->in[0]->dtype));
    return EVO_OK;
}

const evo_op_def evo_op_DepthToSpace = {
    .name = "DepthToSpace",
    .domain = "",
    .id = 79,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = d2s_parse,
    .infer = d2s_infer,
    .cost = d2s_cost,
    .eval = d2s_eval,
};

const evo_op_def evo_op_SpaceToDepth = {
    .name = "SpaceToDepth",
    .domain = "",
    .id = 80,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = s2d_parse,
    .infer = s2d_infer,
    .cost = d2s_cost,
    .eval = s2d_eval,
};
