/*
 * Pad (opset 11-18 form, plus opset-19 "wrap"): pads, constant_value and axes
 * arrive as inputs. pads is [x1_begin, x2_begin, ..., x1_end, x2_end, ...]
 * over the listed axes (all axes without `axes`). Negative pads crop; as in
 * the ONNX reference, cropping happens first and reflect/edge/wrap then see
 * the cropped tensor's borders. Reflect repeats with period 2*(n-1), so pads
 * larger than the axis are well defined (numpy semantics).
 */
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Pad;

enum { PAD_CONSTANT = 0, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_params {
    int32_t mode;
} pad_params;
_Static_assert(sizeof(pad_params) <= EVO_PARAMS_MAX, "pad params too large");

typedef struct pad_plan {
    int64_t begin[EVO_MAX_RANK]; /* positive padding before the kept part */
    int64_t crop[EVO_MAX_RANK];  /* input elements cropped at the start */
    int64_t eff[EVO_MAX_RANK];   /* input length after cropping */
    evo_shape shape;
} pad_plan;

static evo_status pad_parse(const evo_node *node, void *params, evo_error *err)
{
    pad_params *p = params;
    const char *mode;
    if (evo_attr_get_string(node, "mode", "constant", &mode) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Pad node '%s': 'mode' must be a string",
                             node->name);
    if (strcmp(mode, "constant") == 0)
        p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0)
        p->mode = PAD_WRAP;
    else
        return evo_error_set(err, EVO_ERR_UNSUPPORTED, "Pad node '%s': unknown mode '%s'",
                             node->name, mode);
    return EVO_OK;
}

static int64_t pad_int_at(const evo_tensor *t, int64_t i)
{
    return t->dtype == EVO_DT_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

static evo_status pad_make_plan(const evo_kctx *c, pad_plan *pl)
{
    const pad_params *p = c->params;
    const evo_tensor *x = c->in[0], *pt = c->in[1];
    int32_t rank = x->shape.rank;
    int32_t axes[EVO_MAX_RANK], n_axes = rank;
    for (int32_t i = 0; i < rank; i++)
        axes[i] = i;
    if (c->n_in > 3 && c->in[3] != NULL) {
        const evo_tensor *at = c->in[3];
        if (at->dtype != EVO_DT_INT64 && at->dtype != EVO_DT_INT32)
            return evo_error_set(c->err, EVO_ERR_TYPE, "Pad: input 'axes' must be int64");
        int64_t n = evo_shape_numel(&at->shape);
        if (at->shape.rank != 1 || n > rank)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Pad: input 'axes' must be 1-D with at most %d entries",
                                 (int)rank);
        if (n > 0 && at->data == NULL)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Pad: input 'axes' must be a constant to infer shapes");
        bool seen[EVO_MAX_RANK] = {false};
        for (int64_t i = 0; i < n; i++) {
            int64_t a = pad_int_at(at, i);
            if (evo_op_norm_axis(a, rank, &axes[i]) != EVO_OK || seen[axes[i]])
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "Pad: axis %lld is out of range or repeated", (long long)a);
            seen[axes[i]] = true;
        }
        n_axes = (int32_t)n;
    }
    if (pt->dtype != EVO_DT_INT64 && pt->dtype != EVO_DT_INT32)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Pad: input 'pads' must be int64");
    if (pt->shape.rank != 1 || pt->shape.dims[0] != 2 * n_axes)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Pad: input 'pads' must be 1-D with %d entries (2 per axis)",
                             (int)(2 * n_axes));
    if (n_axes > 0 && pt->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Pad: input 'pads' must be a constant to infer shapes");
    pl->shape = x->shape;
    for (int32_t d = 0; d < rank; d++) {
        pl->begin[d] = 0;
        pl->crop[d] = 0;
        pl->eff[d] = x->shape.dims[d];
    }
    for (int32_t i = 0; i < n_axes; i++) {
        int32_t d = axes[i];
        int64_t b = pad_int_at(pt, i), e = pad_int_at(pt, i + n_axes);
        int64_t dim = x->shape.dims[d];
        if (b < -dim || e < -dim || b > EVO_MAX_DIM || e > EVO_MAX_DIM)
            return evo_error_set(c->err, b < -dim || e < -dim ? EVO_ERR_SHAPE : EVO_ERR_LIMIT,
                                 "Pad: pads %lld/%lld are invalid for axis %d of length %lld",
                                 (long long)b, (long long)e, (int)d, (long long)dim);
        int64_t crop_b = b < 0 ? -b : 0, crop_e = e < 0 ? -e : 0;
        int64_t eff = dim - crop_b - crop_e;
        if (eff < 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Pad: pads %lld/%lld crop more than axis %d holds", (long long)b,
                                 (long long)e, (int)d);
        int64_t out = eff + (b > 0 ? b : 0) + (e > 0 ? e : 0);
        if (out > EVO_MAX_DIM)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "Pad: axis %d would have %lld elements",
                                 (int)d, (long long)out);
        if (p->mode != PAD_CONSTANT && eff == 0 && out > 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Pad: cannot pad empty axis %d in reflect/edge/wrap mode", (int)d);
        pl->begin[d] = b > 0 ? b : 0;
        pl->crop[d] = crop_b;
        pl->eff[d] = eff;
        pl->shape.dims[d] = (int32_t)out;
    }
    return EVO_OK;
}

static evo_status pad_infer(const evo_kctx *c)
{
    evo_status rv = evo_op_check_arity(&evo_op_Pad, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "Pad: dtype %s has no element size",
                             evo_dtype_name(x->dtype));
    if (c->n_in > 2 && c->in[2] != NULL) {
        const evo_tensor *cv = c->in[2];
        int64_t n = evo_shape_numel(&cv->shape);
        if (cv->dtype != x->dtype || n > 1 || cv->shape.rank > 1)
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Pad: constant_value must be a scalar of the input's type %s",
                                 evo_dtype_name(x->dtype));
    }
    pad_plan pl;
    if ((rv = pad_make_plan(c, &pl)) != EVO_OK)
        return rv;
    size_t nbytes;
    if (evo_shape_nbytes(&pl.shape, x->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "Pad: output is too large");
    c->out[0]->dtype = x->dtype;
    c->out[0]->shape = pl.shape;
    return EVO_OK;
}

static void pad_cost(const evo_kctx *c, evo_op_cost *cost)
{
    cost->flops = 0;
}

/* Input index (within the cropped part) for output index o, or -1 for the
 * constant value. */
static int64_t pad_map(int64_t o, int64_t begin, int64_t eff, int32_t mode)
{
    int64_t x = o - begin;
    if (x >= 0 && x < eff)
        return x;
    switch (mode) {
    case PAD_EDGE:
        return x < 0 ? 0 : eff - 1;
    case PAD_REFLECT: {
        if (eff == 1)
            return 0;
        int64_t period = 2 * (eff - 1);
        int64_t m = x % period;
        if (m < 0)
            m += period;
        return m < eff ? m : period - m;
    }
    case PAD_WRAP: {
        int64_t m = x % eff;
        return m < 0 ? m + eff : m;
    }
    default:
        return -1;
    }
}

static void pad_fill(unsigned char *dst, int64_t n, const unsigned char *val, size_t es, bool zero)
{
    if (zero) {
        memset(dst, 0, (size_t)n * es);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + (size_t)i * es, val, es);
}

static evo_status pad_eval(const evo_kctx *c)
{
    const pad_params *p = c->params;
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    pad_plan pl;
    evo_status rv = pad_make_plan(c, &pl);
    if (rv != EVO_OK)
        return rv;
    size_t es = evo_dtype_size(x->dtype);
    unsigned char val[16] = {0};
    bool zero = true;
    if (c->n_in > 2 && c->in[2] != NULL && evo_shape_numel(&c->in[2]->shape) == 1) {
        memcpy(val, c->in[2]->data, es);
        for (size_t i = 0; i < es; i++)
            zero = zero && val[i] == 0;
    }
    int64_t numel = evo_shape_numel(&pl.shape);
    if (numel <= 0)
        return EVO_OK;
    int32_t rank = x->shape.rank;
    if (rank == 0) {
        memcpy(y->data, x->data, es);
        return EVO_OK;
    }
    int64_t istride[EVO_MAX_RANK];
    int64_t s = 1;
    for (int32_t d = rank - 1; d >= 0; d--) {
        istride[d] = s;
        s *= x->shape.dims[d];
    }
    int32_t last = rank - 1;
    int64_t n_last = pl.shape.dims[last];
    int64_t b_last = pl.begin[last], eff_last = pl.eff[last];
    int64_t rows = numel / n_last;
    int64_t idx[EVO_MAX_RANK] = {0};
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (int64_t r = 0; r < rows; r++, dst += (size_t)n_last * es) {
        int64_t off = 0;
        bool constant_row = false;
        for (int32_t d = 0; d < last && !constant_row; d++) {
            int64_t m = pad_map(idx[d], pl.begin[d], pl.eff[d], p->mode);
            if (m < 0)
                constant_row = true;
            else
                off += (pl.crop[d] + m) * istride[d];
        }
        if (constant_row) {
            pad_fill(dst, n_last, val, es, zero);
        } else {
            const unsigned char *row = src + (size_t)(off + pl.crop[last]) * es;
            /* Kept middle: one copy; the padded ends element by element. */
            int64_t mid_end = b_last + eff_last < n_last ? b_last + eff_last : n_last;
            if (eff_last > 0 && mid_end > b_last)
                memcpy(dst + (size_t)b_last * es, row, (size_t)(mid_end - b_last) * es);
            for (int64_t o = 0; o < n_last; o++) {
                if (o == b_last && mid_end > b_last) {
                    o = mid_end - 1;
                    continue;
                }
                int64_t m = pad_map(o, b_last, eff_last, p->mode);
                if (m < 0)
                    memcpy(dst + (size_t)o * es, val, es);
                else
                    memcpy(dst + (size_t)o * es, row + (size_t)m * es, es);
            }
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++idx[d] < pl.shape.dims[d])
                break;
            idx[d] = 0;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Pad = {
    .name = "Pad",
    .domain = "",
    .id = 76,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 4,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = pad_parse,
    .infer = pad_infer,
    .cost = pad_cost,
    .eval = pad_eval,
};
