/*
 * Conv (ONNX opsets 1..18, float32): parse, geometry and validation, cost,
 * the reference implementation, and dispatch to the fast paths in
 * conv_fast.c. Also the attribute parsing that ConvTranspose shares and the
 * entry point a fusion pass uses to fuse an activation into Conv or Gemm.
 */
#include <string.h>

#include "evo/op.h"
#include "kernels/conv.h"
#include "kernels/cpu.h"

extern const evo_op_def evo_op_Conv;

/* ---------------------------------------------------------------- parse */

static evo_status conv_read_ints(const evo_node *node, const char *name, int32_t *out, size_t cap,
                                 int32_t *count, evo_error *err)
{
    int64_t v[2 * EVO_CONV_MAX_SPATIAL];
    size_t n = 0;
    evo_status rv = evo_attr_get_ints(node, name, v, cap, &n);
    if (rv == EVO_ERR_LIMIT)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s node '%s': attribute %s has more entries than evo supports "
                             "(at most %d spatial dims)",
                             node->op_type, node->name, name, EVO_CONV_MAX_SPATIAL);
    if (rv != EVO_OK)
        return evo_error_set(err, rv, "%s node '%s': attribute %s must be a list of ints",
                             node->op_type, node->name, name);
    for (size_t i = 0; i < n; i++) {
        if (v[i] < INT32_MIN || v[i] > INT32_MAX)
            return evo_error_set(err, EVO_ERR_LIMIT,
                                 "%s node '%s': attribute %s[%zu] = %lld is out of range",
                                 node->op_type, node->name, name, i, (long long)v[i]);
        out[i] = (int32_t)v[i];
    }
    *count = (int32_t)n;
    return EVO_OK;
}

evo_status evo_conv_parse_params(const evo_node *node, bool transpose, evo_conv_params *p,
                                 evo_error *err)
{
    evo_status rv;
    int64_t group = 1;
    if (evo_attr_get_int(node, "group", 1, &group) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': attribute group must be an int",
                             node->op_type, node->name);
    if (group < 1 || group > INT32_MAX)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s node '%s': group must be >= 1, got %lld",
                             node->op_type, node->name, (long long)group);
    p->group = (int32_t)group;

    const char *ap = "NOTSET";
    if (evo_attr_get_string(node, "auto_pad", "NOTSET", &ap) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': attribute auto_pad must be a string",
                             node->op_type, node->name);
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        p->auto_pad = EVO_AUTO_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        p->auto_pad = EVO_AUTO_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        p->auto_pad = EVO_AUTO_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        p->auto_pad = EVO_AUTO_PAD_VALID;
    else
        return evo_error_set(err, EVO_ERR_PARSE, "%s node '%s': unknown auto_pad '%s'",
                             node->op_type, node->name, ap);

    const size_t sp = EVO_CONV_MAX_SPATIAL;
    if ((rv = conv_read_ints(node, "kernel_shape", p->kernel, sp, &p->n_kernel, err)) != EVO_OK ||
        (rv = conv_read_ints(node, "strides", p->strides, sp, &p->n_strides, err)) != EVO_OK ||
        (rv = conv_read_ints(node, "dilations", p->dilations, sp, &p->n_dilations, err)) !=
            EVO_OK ||
        (rv = conv_read_ints(node, "pads", p->pads, 2 * sp, &p->n_pads, err)) != EVO_OK)
        return rv;
    if (transpose) {
        if ((rv = conv_read_ints(node, "output_padding", p->output_padding, sp,
                                 &p->n_output_padding, err)) != EVO_OK)
            return rv;
        if ((rv = conv_read_ints(node, "output_shape", p->output_shape, sp + 2, &p->n_output_shape,
                                 err)) != EVO_OK)
            return rv;
    }
    p->act.kind = EVO_ACT_NONE;
    return EVO_OK;
}

/* ---------------------------------------------------------------- geometry */

/* Common checks of X and W ranks and of the attribute counts; fills nsp and
 * the per-dim kernel/stride/dilation (normalized to 3 dims). */
static evo_status conv_resolve_common(const char *op, const evo_conv_params *p, const evo_shape *x,
                                      const evo_shape *w, evo_conv_geom *g, evo_error *err)
{
    memset(g, 0, sizeof *g);
    if (x->rank < 3)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "%s: input X must have rank >= 3 (N, C, spatial...), got rank %d", op,
                             (int)x->rank);
    if (x->rank > 2 + EVO_CONV_MAX_SPATIAL)
        return evo_error_set(err, EVO_ERR_UNSUPPORTED,
                             "%s: %d spatial dims are not supported (at most %d)", op,
                             (int)x->rank - 2, EVO_CONV_MAX_SPATIAL);
    if (w->rank != x->rank)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s: weight W has rank %d but X has rank %d", op,
                             (int)w->rank, (int)x->rank);
    const int32_t nsp = x->rank - 2;
    g->nsp = nsp;
    if (p->n_kernel != 0 && p->n_kernel != nsp)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s: kernel_shape has %d entries, expected %d", op,
                             (int)p->n_kernel, (int)nsp);
    if (p->n_strides != 0 && p->n_strides != nsp)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s: strides has %d entries, expected %d", op,
                             (int)p->n_strides, (int)nsp);
    if (p->n_dilations != 0 && p->n_dilations != nsp)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s: dilations has %d entries, expected %d", op,
                             (int)p->n_dilations, (int)nsp);
    if (p->n_pads != 0 && p->n_pads != 2 * nsp)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s: pads has %d entries, expected %d", op,
                             (int)p->n_pads, (int)(2 * nsp));
    if (p->group < 1)
        return evo_error_set(err, EVO_ERR_SHAPE, "%s: group must be >= 1, got %d", op,
                             (int)p->group);
    if (!evo_act_valid(&p->act))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "%s: unknown fused activation %d", op,
                             (int)p->act.kind);
    for (int32_t i = 0; i < x->rank; i++)
        if (x->dims[i] < 0 || w->dims[i] < 0)
            return evo_error_set(err, EVO_ERR_SHAPE, "%s: negative dimension in X or W", op);
    const int32_t off = 3 - nsp; /* normalized dim of spatial dim 0 */
    for (int32_t d = 0; d < 3; d++) {
        g->in[d] = g->out[d] = g->k[d] = g->stride[d] = g->dil[d] = 1;
        g->pad_b[d] = g->pad_e[d] = 0;
    }
    for (int32_t i = 0; i < nsp; i++) {
        const int32_t d = off + i;
        const int64_t k = w->dims[2 + i];
        if (k < 1)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "%s: kernel dim %d of W is %lld (must be >= 1)", op, (int)i,
                                 (long long)k);
        if (p->n_kernel != 0 && p->kernel[i] != k)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "%s: kernel_shape[%d] = %d does not match W's dim %lld", op,
                                 (int)i, (int)p->kernel[i], (long long)k);
        g->k[d] = k;
        g->stride[d] = p->n_strides != 0 ? p->strides[i] : 1;
        g->dil[d] = p->n_dilations != 0 ? p->dilations[i] : 1;
        if (g->stride[d] < 1)
            return evo_error_set(err, EVO_ERR_SHAPE, "%s: strides[%d] = %lld must be >= 1", op,
                                 (int)i, (long long)g->stride[d]);
        if (g->dil[d] < 1)
            return evo_error_set(err, EVO_ERR_SHAPE, "%s: dilations[%d] = %lld must be >= 1", op,
                                 (int)i, (long long)g->dil[d]);
        if (p->auto_pad == EVO_AUTO_PAD_NOTSET && p->n_pads != 0) {
            g->pad_b[d] = p->pads[i];
            g->pad_e[d] = p->pads[nsp + i];
            if (g->pad_b[d] < 0 || g->pad_e[d] < 0)
                return evo_error_set(err, EVO_ERR_SHAPE,
                                     "%s: pads must be >= 0, got %lld and %lld for dim %d", op,
                                     (long long)g->pad_b[d], (long long)g->pad_e[d], (int)i);
        }
        g->in[d] = x->dims[2 + i];
    }
    g->n = x->dims[0];
    g->c = x->dims[1];
    g->group = p->group;
    g->k_size = g->k[0] * g->k[1] * g->k[2];
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    return EVO_OK;
}

static evo_status conv_finish_sizes(const char *op, evo_conv_geom *g, evo_error *err)
{
    for (int d = 0; d < 3; d++)
        if (g->out[d] > INT32_MAX)
            return evo_error_set(err, EVO_ERR_LIMIT, "%s: output dim %lld is too large", op,
                                 (long long)g->out[d]);
    g->out_size = g->out[0] * g->out[1] * g->out[2];
    if (g->out_size > INT64_MAX / (g->m > 0 ? g->m : 1) / (g->n > 0 ? g->n : 1))
        return evo_error_set(err, EVO_ERR_LIMIT, "%s: output tensor is too large", op);
    return EVO_OK;
}

/* The ONNX shape [M, C, k...] a W in the EVO_CONV_W_KM layout stands for,
 * after checking the layout's rules: W is [C * k_size, M], group 1, and
 * kernel_shape gives every kernel dim (W's shape no longer does). A .evm
 * file is untrusted, so every count is checked before it is multiplied. */
static evo_status conv_km_logical(const evo_conv_params *p, const evo_shape *x, const evo_shape *w,
                                  evo_shape *logical, evo_error *err)
{
    if (x->rank < 3 || x->rank > 2 + EVO_CONV_MAX_SPATIAL)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: input X must have rank 3 to %d, got rank %d",
                             2 + EVO_CONV_MAX_SPATIAL, (int)x->rank);
    const int32_t nsp = x->rank - 2;
    if (w->rank != 2)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: W in the KM layout must have rank 2 ([C*kernel, M]), got "
                             "rank %d",
                             (int)w->rank);
    if (p->group != 1)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: the KM weight layout needs group 1, got group %d",
                             (int)p->group);
    if (p->n_kernel != nsp)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: the KM weight layout needs kernel_shape with %d entries, "
                             "got %d",
                             (int)nsp, (int)p->n_kernel);
    int64_t rows = x->dims[1];
    if (rows < 1 || w->dims[1] < 1)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: X channels (%lld) and W's M (%d) must be >= 1", (long long)rows,
                             (int)w->dims[1]);
    for (int32_t i = 0; i < nsp; i++) {
        if (p->kernel[i] < 1)
            return evo_error_set(err, EVO_ERR_SHAPE, "Conv: kernel_shape[%d] = %d must be >= 1",
                                 (int)i, (int)p->kernel[i]);
        rows *= p->kernel[i];
        if (rows > INT32_MAX)
            break;
    }
    if (rows != w->dims[0])
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: W in the KM layout has %d rows, expected C * kernel = %lld",
                             (int)w->dims[0], (long long)rows);
    memset(logical, 0, sizeof *logical);
    logical->rank = x->rank;
    logical->dims[0] = w->dims[1];
    logical->dims[1] = x->dims[1];
    for (int32_t i = 0; i < nsp; i++)
        logical->dims[2 + i] = p->kernel[i];
    return EVO_OK;
}

/* The same for the EVO_CONV_W_WINO43 layout: X is 4-D, W is [36, C, M],
 * group 1 and kernel_shape {3, 3}; stride and dilation 1 are checked once
 * the geometry is resolved. */
static evo_status conv_wino_logical(const evo_conv_params *p, const evo_shape *x,
                                    const evo_shape *w, evo_shape *logical, evo_error *err)
{
    if (x->rank != 4)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: the Winograd weight layout needs a 4-D X, got rank %d",
                             (int)x->rank);
    if (w->rank != 3 || w->dims[0] != EVO_WINO43_XI || w->dims[1] != x->dims[1] || w->dims[2] < 1)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: W in the Winograd layout must be [36, C = %d, M], got rank %d "
                             "[%d, %d, ...]",
                             (int)x->dims[1], (int)w->rank, (int)w->dims[0], (int)w->dims[1]);
    if (p->group != 1 || p->n_kernel != 2 || p->kernel[0] != 3 || p->kernel[1] != 3)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: the Winograd weight layout needs group 1 and kernel_shape "
                             "{3, 3}");
    memset(logical, 0, sizeof *logical);
    logical->rank = 4;
    logical->dims[0] = w->dims[2];
    logical->dims[1] = w->dims[1];
    logical->dims[2] = 3;
    logical->dims[3] = 3;
    return EVO_OK;
}

evo_status evo_conv_resolve(const evo_conv_params *p, const evo_shape *x, const evo_shape *w,
                            evo_conv_geom *g, evo_error *err)
{
    evo_shape logical;
    if (p->w_layout == EVO_CONV_W_WINO43) {
        evo_status lrv = conv_wino_logical(p, x, w, &logical, err);
        if (lrv != EVO_OK) {
            memset(g, 0, sizeof *g);
            return lrv;
        }
        w = &logical;
    } else if (p->w_layout == EVO_CONV_W_KM) {
        evo_status lrv = conv_km_logical(p, x, w, &logical, err);
        if (lrv != EVO_OK) {
            memset(g, 0, sizeof *g);
            return lrv;
        }
        w = &logical;
    } else if (p->w_layout != EVO_CONV_W_ONNX) {
        memset(g, 0, sizeof *g);
        return evo_error_set(err, EVO_ERR_SHAPE, "Conv: unknown weight layout %d",
                             (int)p->w_layout);
    }
    evo_status rv = conv_resolve_common("Conv", p, x, w, g, err);
    g->w_km = p->w_layout == EVO_CONV_W_KM;
    g->w_wino = p->w_layout == EVO_CONV_W_WINO43;
    if (rv != EVO_OK)
        return rv;
    if (g->w_wino && (g->stride[1] != 1 || g->stride[2] != 1 || g->dil[1] != 1 || g->dil[2] != 1))
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: the Winograd weight layout needs strides and dilations 1");
    g->m = w->dims[0];
    if (g->c % g->group != 0)
        return evo_error_set(err, EVO_ERR_SHAPE, "Conv: group %lld does not divide C = %lld",
                             (long long)g->group, (long long)g->c);
    g->cg = g->c / g->group;
    if (w->dims[1] != g->cg)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: W has %d input channels per group, but X has C = %lld and "
                             "group = %lld (expected %lld)",
                             (int)w->dims[1], (long long)g->c, (long long)g->group,
                             (long long)g->cg);
    if (g->m % g->group != 0)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "Conv: group %lld does not divide the output channels M = %lld",
                             (long long)g->group, (long long)g->m);
    g->mg = g->m / g->group;
    for (int d = 3 - g->nsp; d < 3; d++) {
        const int64_t eff = g->dil[d] * (g->k[d] - 1) + 1; /* dilated kernel extent */
        const int64_t in = g->in[d];
        const int32_t i = d - (3 - g->nsp);
        if (in < 1)
            return evo_error_set(err, EVO_ERR_SHAPE, "Conv: spatial dim %d of X is %lld", (int)i,
                                 (long long)in);
        if (p->auto_pad == EVO_AUTO_PAD_SAME_UPPER || p->auto_pad == EVO_AUTO_PAD_SAME_LOWER) {
            const int64_t out = (in + g->stride[d] - 1) / g->stride[d];
            int64_t total = (out - 1) * g->stride[d] + eff - in;
            if (total < 0)
                total = 0;
            /* SAME_UPPER puts the extra pad at the end, SAME_LOWER at the
             * beginning. */
            g->pad_b[d] = p->auto_pad == EVO_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            g->pad_e[d] = total - g->pad_b[d];
            g->out[d] = out;
        } else {
            const int64_t padded = in + g->pad_b[d] + g->pad_e[d];
            if (padded < eff)
                return evo_error_set(err, EVO_ERR_SHAPE,
                                     "Conv: kernel extent %lld (kernel %lld, dilation %lld) is "
                                     "larger than the padded input %lld in spatial dim %d",
                                     (long long)eff, (long long)g->k[d], (long long)g->dil[d],
                                     (long long)padded, (int)i);
            g->out[d] = (padded - eff) / g->stride[d] + 1;
        }
    }
    return conv_finish_sizes("Conv", g, err);
}

evo_status evo_conv_transpose_resolve(const evo_conv_params *p, const evo_shape *x,
                                      const evo_shape *w, evo_conv_geom *g, evo_error *err)
{
    const char *op = "ConvTranspose";
    if (p->w_layout != EVO_CONV_W_ONNX) {
        memset(g, 0, sizeof *g);
        return evo_error_set(err, EVO_ERR_SHAPE, "ConvTranspose: weight layout %d is not supported",
                             (int)p->w_layout);
    }
    evo_status rv = conv_resolve_common(op, p, x, w, g, err);
    if (rv != EVO_OK)
        return rv;
    const int32_t nsp = g->nsp;
    if (w->dims[0] != g->c)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "ConvTranspose: W's first dim %d must equal X's channels C = %lld",
                             (int)w->dims[0], (long long)g->c);
    if (g->c % g->group != 0)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "ConvTranspose: group %lld does not divide C = %lld",
                             (long long)g->group, (long long)g->c);
    g->cg = g->c / g->group;
    g->mg = w->dims[1];
    g->m = g->mg * g->group;
    if (p->n_output_padding != 0 && p->n_output_padding != nsp)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "ConvTranspose: output_padding has %d entries, expected %d",
                             (int)p->n_output_padding, (int)nsp);
    int32_t n_os = p->n_output_shape, os_off = 0;
    if (n_os == nsp + 2) { /* given with N and C in front */
        n_os = nsp;
        os_off = 2;
    }
    if (n_os != 0 && n_os != nsp)
        return evo_error_set(err, EVO_ERR_SHAPE,
                             "ConvTranspose: output_shape has %d entries, expected %d",
                             (int)p->n_output_shape, (int)nsp);
    for (int32_t i = 0; i < nsp; i++) {
        const int d = 3 - nsp + i;
        const int64_t in = g->in[d], s = g->stride[d];
        const int64_t eff = g->dil[d] * (g->k[d] - 1) + 1;
        const int64_t opad = p->n_output_padding != 0 ? p->output_padding[i] : 0;
        if (in < 1)
            return evo_error_set(err, EVO_ERR_SHAPE, "ConvTranspose: spatial dim %d of X is %lld",
                                 (int)i, (long long)in);
        if (opad < 0)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "ConvTranspose: output_padding[%d] = %lld must be >= 0", (int)i,
                                 (long long)opad);
        const int64_t full = s * (in - 1) + opad + eff; /* output size before padding */
        int64_t want = 0;
        bool has_want = true;
        if (n_os != 0)
            want = p->output_shape[os_off + i];
        else if (p->auto_pad == EVO_AUTO_PAD_SAME_UPPER || p->auto_pad == EVO_AUTO_PAD_SAME_LOWER)
            want = in * s;
        else
            has_want = false;
        if (has_want) {
            /* ONNX: total_padding = full - output_shape; SAME_UPPER puts
             * the smaller half first, everything else the larger half. A
             * negative total (output_shape beyond the full output, as in
             * ONNX's own output_shape test) extends the end with zeros. */
            const int64_t total = full - want;
            if (want < 1)
                return evo_error_set(err, EVO_ERR_SHAPE,
                                     "ConvTranspose: output_shape[%d] = %lld must be >= 1", (int)i,
                                     (long long)want);
            if (total < 0)
                g->pad_b[d] = 0;
            else
                g->pad_b[d] =
                    p->auto_pad == EVO_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            g->pad_e[d] = total - g->pad_b[d];
            g->out[d] = want;
        } else {
            if (p->auto_pad == EVO_AUTO_PAD_VALID)
                g->pad_b[d] = g->pad_e[d] = 0;
            g->out[d] = full - g->pad_b[d] - g->pad_e[d];
        }
        if (g->out[d] < 1)
            return evo_error_set(err, EVO_ERR_SHAPE,
                                 "ConvTranspose: pads %lld + %lld remove the whole output "
                                 "(%lld) in spatial dim %d",
                                 (long long)g->pad_b[d], (long long)g->pad_e[d], (long long)full,
                                 (int)i);
    }
    return conv_finish_sizes(op, g, err);
}

/* ---------------------------------------------------------------- fusion */

evo_status evo_kconv_fuse_activation(const evo_op_def *op, void *params, const evo_act *act)
{
    /* Ids from ops_list.h: Conv = 1, Gemm = 3, Add = 20. */
    if (op == NULL || params == NULL || act == NULL || (op->id != 1 && op->id != 3 && op->id != 20))
        return EVO_ERR_UNSUPPORTED;
    if (!evo_act_valid(act) || act->kind == EVO_ACT_NONE)
        return EVO_ERR_INVALID_ARG;
    /* Add applies only the cheap activations of residual blocks. */
    if (op->id == 20 && act->kind != EVO_ACT_RELU && act->kind != EVO_ACT_CLIP)
        return EVO_ERR_UNSUPPORTED;
    evo_act *slot = op->id == 1   ? &((evo_conv_params *)params)->act
                    : op->id == 3 ? &((evo_gemm_params *)params)->act
                                  : &((evo_add_params *)params)->act;
    if (slot->kind != EVO_ACT_NONE)
        return EVO_ERR_INVALID_ARG;
    *slot = *act;
    return EVO_OK;
}

/* ---------------------------------------------------------------- op callbacks */

static evo_status conv_parse(const evo_node *node, void *params, evo_error *err)
{
    return evo_conv_parse_params(node, false, (evo_conv_params *)params, err);
}

static evo_status conv_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Conv, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0], *w = c->in[1];
    const evo_tensor *b = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != EVO_DT_FLOAT32 || w->dtype != EVO_DT_FLOAT32 ||
        (b != NULL && b->dtype != EVO_DT_FLOAT32))
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "Conv: only float32 X, W and B are supported (got X %s, W %s)",
                             evo_dtype_name(x->dtype), evo_dtype_name(w->dtype));
    evo_conv_geom g;
    if ((rv = evo_conv_resolve(c->params, &x->shape, &w->shape, &g, c->err)) != EVO_OK)
        return rv;
    if (b != NULL && (b->shape.rank != 1 || b->shape.dims[0] != g.m))
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Conv: bias B must have shape [%lld] (one per output channel)",
                             (long long)g.m);
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

static size_t conv_scratch(const evo_kctx *c)
{
    evo_conv_geom g;
    if (evo_conv_resolve(c->params, &c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return 0;
    return evo_conv_fast_scratch(&g);
}

static void conv_cost(const evo_kctx *c, evo_op_cost *cost)
{
    evo_conv_geom g;
    if (evo_conv_resolve(c->params, &c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return;
    cost->flops = 2u * (uint64_t)g.n * (uint64_t)g.m * (uint64_t)g.out_size * (uint64_t)g.cg *
                  (uint64_t)g.k_size;
}

/* The reference for W in the Winograd layout: each (m, c) kernel is
 * transformed back to its 3 x 3 taps, then applied directly, so the result
 * does not depend on the fast path's algorithm. */
static void conv_ref_wino(const evo_conv_geom *g, const float *x, const float *u, const float *bias,
                          const evo_act *act, float *y)
{
    const int64_t oh = g->out[1], ow = g->out[2], ih = g->in[1], iw = g->in[2];
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t m = 0; m < g->m; m++) {
            float *yo = y + (n * g->m + m) * g->out_size;
            for (int64_t o = 0; o < g->out_size; o++)
                yo[o] = bias != NULL ? bias[m] : 0.0f;
            for (int64_t c = 0; c < g->c; c++) {
                float ut[EVO_WINO43_XI], taps[9];
                for (int xi = 0; xi < EVO_WINO43_XI; xi++)
                    ut[xi] = u[(xi * g->c + c) * g->m + m];
                evo_wino43_weight_inverse(ut, taps);
                const float *xc = x + (n * g->c + c) * g->in_size;
                for (int64_t r = 0; r < oh; r++)
                    for (int64_t q = 0; q < ow; q++) {
                        float sum = 0.0f;
                        for (int64_t a = 0; a < 3; a++) {
                            const int64_t i = r - g->pad_b[1] + a;
                            for (int64_t b = 0; b < 3 && i >= 0 && i < ih; b++) {
                                const int64_t j = q - g->pad_b[2] + b;
                                if (j >= 0 && j < iw)
                                    sum += xc[i * iw + j] * taps[a * 3 + b];
                            }
                        }
                        yo[r * ow + q] += sum;
                    }
            }
            evo_act_apply(act, yo, (size_t)g->out_size);
        }
}

/* The reference: one output at a time, every tap bounds-checked. */
static void conv_ref(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                     const evo_act *act, float *y)
{
    if (g->w_wino) {
        conv_ref_wino(g, x, w, bias, act, y);
        return;
    }
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t m = 0; m < g->m; m++) {
            const int64_t grp = m / g->mg;
            float *yo = y + (n * g->m + m) * g->out_size;
            for (int64_t o0 = 0; o0 < g->out[0]; o0++)
                for (int64_t o1 = 0; o1 < g->out[1]; o1++)
                    for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
                        float sum = bias != NULL ? bias[m] : 0.0f;
                        for (int64_t cg = 0; cg < g->cg; cg++) {
                            const int64_t ch = grp * g->cg + cg;
                            const float *xc = x + (n * g->c + ch) * g->in_size;
                            /* Tap t of (m, cg) is wc[t * wstep]. */
                            const float *wc = g->w_km ? w + cg * g->k_size * g->m + m
                                                      : w + (m * g->cg + cg) * g->k_size;
                            const int64_t wstep = g->w_km ? g->m : 1;
                            for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
                                const int64_t i0 = o0 * g->stride[0] - g->pad_b[0] + k0 * g->dil[0];
                                if (i0 < 0 || i0 >= g->in[0])
                                    continue;
                                for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
                                    const int64_t i1 =
                                        o1 * g->stride[1] - g->pad_b[1] + k1 * g->dil[1];
                                    if (i1 < 0 || i1 >= g->in[1])
                                        continue;
                                    for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                                        const int64_t i2 =
                                            o2 * g->stride[2] - g->pad_b[2] + k2 * g->dil[2];
                                        if (i2 < 0 || i2 >= g->in[2])
                                            continue;
                                        sum += xc[(i0 * g->in[1] + i1) * g->in[2] + i2] *
                                               wc[((k0 * g->k[1] + k1) * g->k[2] + k2) * wstep];
                                    }
                                }
                            }
                        }
                        yo[(o0 * g->out[1] + o1) * g->out[2] + o2] = sum;
                    }
            evo_act_apply(act, yo, (size_t)g->out_size);
        }
}

static evo_status conv_eval(const evo_kctx *c)
{
    const evo_conv_params *p = c->params;
    evo_conv_geom g;
    if (evo_conv_resolve(p, &c->in[0]->shape, &c->in[1]->shape, &g, NULL) != EVO_OK)
        return EVO_ERR_INTERNAL; /* infer accepted these shapes */
    const float *x = c->in[0]->data, *w = c->in[1]->data;
    const float *b = c->n_in > 2 && c->in[2] != NULL ? c->in[2]->data : NULL;
    float *y = c->out[0]->data;
    if (evo_kernels_forced_path() == EVO_KPATH_REFERENCE)
        conv_ref(&g, x, w, b, &p->act, y);
    else
        evo_conv_fast(&g, x, w, b, &p->act, y, c->scratch, c->scratch_bytes);
    return EVO_OK;
}

const evo_op_def evo_op_Conv = {
    .name = "Conv",
    .domain = "",
    .id = 1,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = conv_parse,
    .infer = conv_infer,
    .scratch = conv_scratch,
    .cost = conv_cost,
    .eval = conv_eval,
};
