/*
 * Resize (opset 10-18) and Upsample (opset 7-9).
 *
 * Newest form: inputs X, roi, scales, sizes (one of scales/sizes given; an
 * empty tensor counts as absent), attributes mode (nearest/linear/cubic),
 * coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
 * exclude_outside, extrapolation_value, axes, keep_aspect_ratio_policy.
 * Resize-10 and Upsample take (X, scales), and use asymmetric coordinates
 * with the legacy "simple" nearest rounding (truncate when upsampling, ceil
 * when downsampling), as onnxruntime does.
 *
 * Resampling is separable: for each axis a table maps every output index to
 * up to 4 (input offset, weight) taps, built in scratch at eval. Nearest is a
 * pure gather and works for every sized dtype; linear and cubic are float32.
 * Taps of weight 0 are dropped per axis, so unresized axes cost nothing.
 */
#include <math.h>
#include <string.h>

#include "evo/op.h"

extern const evo_op_def evo_op_Resize;
extern const evo_op_def evo_op_Upsample;

enum { RESIZE_NEAREST = 0, RESIZE_LINEAR, RESIZE_CUBIC };
enum {
    RESIZE_HALF_PIXEL = 0,
    RESIZE_HALF_PIXEL_SYMMETRIC,
    RESIZE_PYTORCH_HALF_PIXEL,
    RESIZE_ALIGN_CORNERS,
    RESIZE_ASYMMETRIC,
    RESIZE_TF_HALF_PIXEL_FOR_NN,
    RESIZE_TF_CROP_AND_RESIZE,
};
enum {
    RESIZE_ROUND_PREFER_FLOOR = 0,
    RESIZE_ROUND_PREFER_CEIL,
    RESIZE_FLOOR,
    RESIZE_CEIL,
    RESIZE_SIMPLE,
};
enum { RESIZE_STRETCH = 0, RESIZE_NOT_LARGER, RESIZE_NOT_SMALLER };

typedef struct resize_params {
    int32_t mode;
    int32_t coord;
    int32_t nearest;
    int32_t exclude_outside;
    int32_t keep_aspect;
    int32_t antialias;
    int32_t legacy; /* inputs are (X, scales): Upsample, Resize-10 */
    float cubic_a;
    float extrapolation;
    int32_t n_axes; /* 0 = all axes */
    int32_t axes[EVO_MAX_RANK];
} resize_params;
_Static_assert(sizeof(resize_params) <= EVO_PARAMS_MAX, "resize params too large");

typedef struct resize_plan {
    evo_shape shape;
    double scale[EVO_MAX_RANK];
    double roi_start[EVO_MAX_RANK];
    double roi_end[EVO_MAX_RANK];
} resize_plan;

/* One output index on one axis: up to 4 taps (element offset, weight). */
typedef struct resize_tap {
    int64_t off[4];
    float w[4];
    int32_t outside; /* tf_crop_and_resize: use extrapolation_value */
    int32_t pad_;
} resize_tap;

typedef struct resize_name {
    const char *name;
    int32_t value;
} resize_name;

static evo_status resize_lookup(const evo_node *node, const char *attr, const char *def,
                                const resize_name *names, size_t n, int32_t *out, evo_error *err)
{
    const char *s;
    if (evo_attr_get_string(node, attr, def, &s) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "%s node '%s': '%s' must be a string",
                             node->op_type, node->name, attr);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].value;
            return EVO_OK;
        }
    }
    return evo_error_set(err, EVO_ERR_UNSUPPORTED, "%s node '%s': %s '%s' is not supported",
                         node->op_type, node->name, attr, s);
}

static const resize_name resize_modes[] = {
    {"nearest", RESIZE_NEAREST},
    {"linear", RESIZE_LINEAR},
    {"bilinear", RESIZE_LINEAR},
    {"cubic", RESIZE_CUBIC},
};

static evo_status resize_parse(const evo_node *node, void *params, evo_error *err)
{
    static const resize_name coords[] = {
        {"half_pixel", RESIZE_HALF_PIXEL},
        {"half_pixel_symmetric", RESIZE_HALF_PIXEL_SYMMETRIC},
        {"pytorch_half_pixel", RESIZE_PYTORCH_HALF_PIXEL},
        {"align_corners", RESIZE_ALIGN_CORNERS},
        {"asymmetric", RESIZE_ASYMMETRIC},
        {"tf_half_pixel_for_nn", RESIZE_TF_HALF_PIXEL_FOR_NN},
        {"tf_crop_and_resize", RESIZE_TF_CROP_AND_RESIZE},
    };
    static const resize_name nearests[] = {
        {"round_prefer_floor", RESIZE_ROUND_PREFER_FLOOR},
        {"round_prefer_ceil", RESIZE_ROUND_PREFER_CEIL},
        {"floor", RESIZE_FLOOR},
        {"ceil", RESIZE_CEIL},
    };
    static const resize_name policies[] = {
        {"stretch", RESIZE_STRETCH},
        {"not_larger", RESIZE_NOT_LARGER},
        {"not_smaller", RESIZE_NOT_SMALLER},
    };
    resize_params *p = params;
    evo_status rv;
    p->legacy = node->opset > 0 && node->opset < 11;
    if ((rv = resize_lookup(node, "mode", "nearest", resize_modes, 4, &p->mode, err)) != EVO_OK)
        return rv;
    if (p->legacy) {
        p->coord = RESIZE_ASYMMETRIC;
        p->nearest = RESIZE_SIMPLE;
    } else {
        if ((rv = resize_lookup(node, "coordinate_transformation_mode", "half_pixel", coords, 7,
                                &p->coord, err)) != EVO_OK ||
            (rv = resize_lookup(node, "nearest_mode", "round_prefer_floor", nearests, 4,
                                &p->nearest, err)) != EVO_OK ||
            (rv = resize_lookup(node, "keep_aspect_ratio_policy", "stretch", policies, 3,
                                &p->keep_aspect, err)) != EVO_OK)
            return rv;
    }
    int64_t excl, anti;
    if (evo_attr_get_float(node, "cubic_coeff_a", -0.75f, &p->cubic_a) != EVO_OK ||
        evo_attr_get_float(node, "extrapolation_value", 0.0f, &p->extrapolation) != EVO_OK ||
        evo_attr_get_int(node, "exclude_outside", 0, &excl) != EVO_OK ||
        evo_attr_get_int(node, "antialias", 0, &anti) != EVO_OK)
        return evo_error_set(err, EVO_ERR_TYPE, "Resize node '%s': an attribute has the wrong type",
                             node->name);
    p->exclude_outside = excl != 0;
    p->antialias = anti != 0;
    int64_t axes[EVO_MAX_RANK];
    size_t n_axes = 0;
    if ((rv = evo_attr_get_ints(node, "axes", axes, EVO_MAX_RANK, &n_axes)) != EVO_OK)
        return evo_error_set(err, rv, "Resize node '%s': 'axes' must be at most %d ints",
                             node->name, EVO_MAX_RANK);
    for (size_t i = 0; i < n_axes; i++) {
        if (axes[i] < -EVO_MAX_RANK || axes[i] >= EVO_MAX_RANK)
            return evo_error_set(err, EVO_ERR_PARSE, "Resize node '%s': axis %lld is invalid",
                                 node->name, (long long)axes[i]);
        p->axes[i] = (int32_t)axes[i];
    }
    p->n_axes = (int32_t)n_axes;
    return EVO_OK;
}

static evo_status upsample_parse(const evo_node *node, void *params, evo_error *err)
{
    resize_params *p = params;
    evo_status rv = resize_lookup(node, "mode", "nearest", resize_modes, 3, &p->mode, err);
    if (rv != EVO_OK)
        return rv;
    p->legacy = 1;
    p->coord = RESIZE_ASYMMETRIC;
    p->nearest = RESIZE_SIMPLE;
    p->cubic_a = -0.75f;
    return EVO_OK;
}

static bool resize_present(const evo_kctx *c, int32_t i)
{
    return c->n_in > i && c->in[i] != NULL && evo_shape_numel(&c->in[i]->shape) > 0;
}

/* Check a 1-D constant parameter input of n entries and type dt. */
static evo_status resize_param_input(const evo_kctx *c, int32_t i, const char *name, evo_dtype dt,
                                     int64_t n)
{
    const evo_tensor *t = c->in[i];
    const char *op =
        c->n_in > 0 && ((const resize_params *)c->params)->legacy ? "Upsample/Resize" : "Resize";
    if (t->dtype != dt)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: input '%s' must be %s, not %s", op, name,
                             evo_dtype_name(dt), evo_dtype_name(t->dtype));
    if (t->shape.rank != 1 || t->shape.dims[0] != n)
        return evo_error_set(c->err, EVO_ERR_SHAPE, "%s: input '%s' must be 1-D with %lld entries",
                             op, name, (long long)n);
    if (t->data == NULL)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "%s: input '%s' must be a constant to infer shapes", op, name);
    return EVO_OK;
}

static evo_status resize_make_plan(const evo_kctx *c, resize_plan *pl)
{
    const resize_params *p = c->params;
    const evo_tensor *x = c->in[0];
    int32_t rank = x->shape.rank;
    int32_t axes[EVO_MAX_RANK], n_axes = p->n_axes > 0 ? p->n_axes : rank;
    bool seen[EVO_MAX_RANK] = {false};
    for (int32_t i = 0; i < n_axes; i++) {
        if (p->n_axes == 0)
            axes[i] = i;
        else if (evo_op_norm_axis(p->axes[i], rank, &axes[i]) != EVO_OK || seen[axes[i]])
            return evo_error_set(c->err, EVO_ERR_SHAPE,
                                 "Resize: axis %d is out of range for rank %d or repeated",
                                 (int)p->axes[i], (int)rank);
        seen[axes[i]] = true;
    }
    pl->shape = x->shape;
    for (int32_t d = 0; d < rank; d++) {
        pl->scale[d] = 1.0;
        pl->roi_start[d] = 0.0;
        pl->roi_end[d] = 1.0;
    }
    int32_t i_roi = p->legacy ? -1 : 1, i_scales = p->legacy ? 1 : 2, i_sizes = p->legacy ? -1 : 3;
    bool has_scales = resize_present(c, i_scales);
    bool has_sizes = i_sizes >= 0 && resize_present(c, i_sizes);
    if (has_scales == has_sizes)
        return evo_error_set(c->err, EVO_ERR_SHAPE,
                             "Resize: exactly one of 'scales' and 'sizes' must be given");
    evo_status rv;
    if (p->coord == RESIZE_TF_CROP_AND_RESIZE && i_roi >= 0 && resize_present(c, i_roi)) {
        if ((rv = resize_param_input(c, i_roi, "roi", EVO_DT_FLOAT32, 2 * n_axes)) != EVO_OK)
            return rv;
        const float *roi = c->in[i_roi]->data;
        for (int32_t i = 0; i < n_axes; i++) {
            pl->roi_start[axes[i]] = roi[i];
            pl->roi_end[axes[i]] = roi[i + n_axes];
        }
    }
    if (has_scales) {
        if ((rv = resize_param_input(c, i_scales, "scales", EVO_DT_FLOAT32, n_axes)) != EVO_OK)
            return rv;
        const float *sc = c->in[i_scales]->data;
        for (int32_t i = 0; i < n_axes; i++) {
            int32_t d = axes[i];
            double s = sc[i];
            if (!(s > 0.0) || !isfinite(s))
                return evo_error_set(c->err, EVO_ERR_SHAPE,
                                     "Resize: scale %g for axis %d is invalid", s, (int)d);
            double o = floor((double)x->shape.dims[d] * s);
            if (o > (double)EVO_MAX_DIM)
                return evo_error_set(c->err, EVO_ERR_LIMIT,
                                     "Resize: axis %d would have %.0f elements", (int)d, o);
            pl->scale[d] = s;
            pl->shape.dims[d] = (int32_t)o;
        }
    } else {
        if ((rv = resize_param_input(c, i_sizes, "sizes", EVO_DT_INT64, n_axes)) != EVO_OK)
            return rv;
        const int64_t *sz = c->in[i_sizes]->data;
        double pol = p->keep_aspect == RESIZE_NOT_LARGER ? INFINITY : 0.0;
        for (int32_t i = 0; i < n_axes; i++) {
            int32_t d = axes[i];
            if (sz[i] < 0 || sz[i] > EVO_MAX_DIM)
                return evo_error_set(c->err, sz[i] < 0 ? EVO_ERR_SHAPE : EVO_ERR_LIMIT,
                                     "Resize: size %lld for axis %d is invalid", (long long)sz[i],
                                     (int)d);
            if (x->shape.dims[d] == 0)
                return evo_error_set(c->err, EVO_ERR_SHAPE, "Resize: axis %d of the input is empty",
                                     (int)d);
            double s = (double)sz[i] / x->shape.dims[d];
            pl->scale[d] = s;
            pl->shape.dims[d] = (int32_t)sz[i];
            if (p->keep_aspect == RESIZE_NOT_LARGER ? s < pol : s > pol)
                pol = s;
        }
        if (p->keep_aspect != RESIZE_STRETCH) {
            for (int32_t i = 0; i < n_axes; i++) {
                int32_t d = axes[i];
                double o = floor(pol * x->shape.dims[d] + 0.5);
                if (o > (double)EVO_MAX_DIM)
                    return evo_error_set(c->err, EVO_ERR_LIMIT, "Resize: output is too large");
                pl->scale[d] = pol;
                pl->shape.dims[d] = (int32_t)o;
            }
        }
    }
    for (int32_t d = 0; d < rank; d++)
        if (pl->shape.dims[d] > 0 && x->shape.dims[d] == 0)
            return evo_error_set(c->err, EVO_ERR_SHAPE, "Resize: cannot resize empty axis %d",
                                 (int)d);
    return EVO_OK;
}

static evo_status resize_infer_common(const evo_kctx *c, const evo_op_def *op)
{
    const resize_params *p = c->params;
    evo_status rv = evo_op_check_arity(op, c);
    if (rv != EVO_OK)
        return rv;
    const evo_tensor *x = c->in[0];
    if (evo_dtype_size(x->dtype) == 0)
        return evo_error_set(c->err, EVO_ERR_TYPE, "%s: dtype %s has no element size", op->name,
                             evo_dtype_name(x->dtype));
    if ((p->mode != RESIZE_NEAREST || p->coord == RESIZE_TF_CROP_AND_RESIZE) &&
        x->dtype != EVO_DT_FLOAT32)
        return evo_error_set(c->err, EVO_ERR_TYPE,
                             "%s: linear, cubic and tf_crop_and_resize need float32, not %s",
                             op->name, evo_dtype_name(x->dtype));
    if (p->legacy && c->n_in < 2)
        return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: input 'scales' is missing", op->name);
    resize_plan pl;
    if ((rv = resize_make_plan(c, &pl)) != EVO_OK)
        return rv;
    if (p->antialias && p->mode != RESIZE_NEAREST) {
        for (int32_t d = 0; d < x->shape.rank; d++)
            if (pl.scale[d] < 1.0)
                return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                     "%s: antialias downsampling is not supported", op->name);
    }
    size_t nbytes;
    if (evo_shape_nbytes(&pl.shape, x->dtype, &nbytes) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: output is too large", op->name);
    c->out[0]->dtype = x->dtype;
    c->out[0]->shape = pl.shape;
    return EVO_OK;
}

static evo_status resize_infer(const evo_kctx *c)
{
    return resize_infer_common(c, &evo_op_Resize);
}

static evo_status upsample_infer(const evo_kctx *c)
{
    return resize_infer_common(c, &evo_op_Upsample);
}

static size_t resize_scratch(const evo_kctx *c)
{
    size_t n = 0;
    const evo_shape *os = &c->out[0]->shape;
    for (int32_t d = 0; d < os->rank; d++)
        n += (size_t)os->dims[d];
    return n * sizeof(resize_tap);
}

static void resize_cost(const evo_kctx *c, evo_op_cost *cost)
{
    const resize_params *p = c->params;
    int64_t numel = evo_shape_numel(&c->out[0]->shape);
    uint64_t taps = 1;
    for (int32_t d = 0; d < c->in[0]->shape.rank; d++)
        if (c->in[0]->shape.dims[d] != c->out[0]->shape.dims[d])
            taps *= p->mode == RESIZE_CUBIC ? 4 : (p->mode == RESIZE_LINEAR ? 2 : 1);
    cost->flops = p->mode == RESIZE_NEAREST || numel < 0 ? 0 : (uint64_t)numel * taps * 2;
}

/* Output coordinate -> input coordinate for one axis. */
static double resize_coord(const resize_params *p, const resize_plan *pl, int32_t d, int64_t x,
                           int64_t in_len, int64_t out_len)
{
    double s = pl->scale[d];
    switch (p->coord) {
    case RESIZE_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)out_len / (s * (double)in_len);
        double center = (double)in_len / 2.0;
        return center * (1.0 - adj) + ((double)x + 0.5) / s - 0.5;
    }
    case RESIZE_PYTORCH_HALF_PIXEL:
        return out_len > 1 ? ((double)x + 0.5) / s - 0.5 : 0.0;
    case RESIZE_ALIGN_CORNERS:
        /* The spec divides by the unrounded output length scale * in_len. */
        return out_len == 1 ? 0.0 : (double)x * (double)(in_len - 1) / (s * (double)in_len - 1.0);
    case RESIZE_ASYMMETRIC:
        return (double)x / s;
    case RESIZE_TF_HALF_PIXEL_FOR_NN:
        return ((double)x + 0.5) / s;
    case RESIZE_TF_CROP_AND_RESIZE: {
        double a = pl->roi_start[d], b = pl->roi_end[d];
        if (out_len > 1)
            return a * (double)(in_len - 1) +
                   (double)x * (b - a) * (double)(in_len - 1) / (double)(out_len - 1);
        return 0.5 * (a + b) * (double)(in_len - 1);
    }
    default: /* half_pixel */
        return ((double)x + 0.5) / s - 0.5;
    }
}

static int64_t resize_nearest_index(const resize_params *p, double x, double scale)
{
    double f = floor(x);
    switch (p->nearest) {
    case RESIZE_ROUND_PREFER_CEIL:
        return (int64_t)(x == f + 0.5 ? f + 1.0 : floor(x + 0.5));
    case RESIZE_FLOOR:
        return (int64_t)f;
    case RESIZE_CEIL:
        return (int64_t)ceil(x);
    case RESIZE_SIMPLE:
        return scale < 1.0 ? (int64_t)ceil(x) : (int64_t)trunc(x);
    default: /* round_prefer_floor */
        return (int64_t)(x == f + 0.5 ? f : floor(x + 0.5));
    }
}

static void resize_cubic_coeffs(double t, double a, double *w)
{
    double t1 = t + 1.0, t2 = 1.0 - t, t3 = 2.0 - t;
    w[0] = ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a;
    w[1] = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    w[2] = ((a + 2.0) * t2 - (a + 3.0)) * t2 * t2 + 1.0;
    w[3] = ((a * t3 - 5.0 * a) * t3 + 8.0 * a) * t3 - 4.0 * a;
}

static int64_t resize_clamp(int64_t i, int64_t len)
{
    return i < 0 ? 0 : (i >= len ? len - 1 : i);
}

/* Fill the tap table of axis d; returns the number of taps eval must visit. */
static int32_t resize_build_axis(const resize_params *p, const resize_plan *pl, int32_t d,
                                 int64_t in_len, int64_t out_len, int64_t stride, resize_tap *tab)
{
    int32_t used = 1;
    for (int64_t o = 0; o < out_len; o++) {
        resize_tap *t = &tab[o];
        memset(t, 0, sizeof *t);
        double x = resize_coord(p, pl, d, o, in_len, out_len);
        if (p->coord == RESIZE_TF_CROP_AND_RESIZE && (x < 0.0 || x > (double)(in_len - 1))) {
            t->outside = 1;
            t->w[0] = 1.0f;
            continue;
        }
        int64_t idx[4];
        double w[4] = {0.0, 0.0, 0.0, 0.0};
        int32_t n;
        if (p->mode == RESIZE_NEAREST) {
            idx[0] = resize_nearest_index(p, x, pl->scale[d]);
            w[0] = 1.0;
            n = 1;
        } else if (p->mode == RESIZE_LINEAR) {
            double f = floor(x);
            idx[0] = (int64_t)f;
            idx[1] = (int64_t)f + 1;
            w[1] = x - f;
            w[0] = 1.0 - w[1];
            n = 2;
        } else {
            double f = floor(x);
            for (int32_t k = 0; k < 4; k++)
                idx[k] = (int64_t)f - 1 + k;
            resize_cubic_coeffs(x - f, p->cubic_a, w);
            n = 4;
            if (p->exclude_outside) {
                double sum = 0.0;
                for (int32_t k = 0; k < 4; k++) {
                    if (idx[k] < 0 || idx[k] >= in_len)
                        w[k] = 0.0;
                    sum += w[k];
                }
                for (int32_t k = 0; k < 4 && sum != 0.0; k++)
                    w[k] /= sum;
            }
        }
        /* Keep only taps with weight; out-of-range taps read the edge. */
        int32_t m = 0;
        for (int32_t k = 0; k < n; k++) {
            if (w[k] == 0.0 && !(k == n - 1 && m == 0))
                continue;
            t->off[m] = resize_clamp(idx[k], in_len) * stride;
            t->w[m] = (float)w[k];
            m++;
        }
        if (m > used)
            used = m;
    }
    return used;
}

static evo_status resize_eval(const evo_kctx *c)
{
    const resize_params *p = c->params;
    const evo_tensor *x = c->in[0];
    evo_tensor *y = c->out[0];
    resize_plan pl;
    evo_status rv = resize_make_plan(c, &pl);
    if (rv != EVO_OK)
        return rv;
    int32_t rank = x->shape.rank;
    int64_t numel = evo_shape_numel(&y->shape);
    size_t es = evo_dtype_size(x->dtype);
    if (numel <= 0)
        return EVO_OK;
    if (rank == 0) {
        memcpy(y->data, x->data, es);
        return EVO_OK;
    }
    if (c->scratch_bytes < resize_scratch(c))
        return EVO_ERR_INTERNAL;
    resize_tap *tab[EVO_MAX_RANK];
    int32_t nt[EVO_MAX_RANK], act[EVO_MAX_RANK], na = 0;
    resize_tap *next = c->scratch;
    int64_t stride = 1, istride[EVO_MAX_RANK];
    for (int32_t d = rank - 1; d >= 0; d--) {
        istride[d] = stride;
        stride *= x->shape.dims[d];
    }
    for (int32_t d = 0; d < rank; d++) {
        tab[d] = next;
        nt[d] =
            resize_build_axis(p, &pl, d, x->shape.dims[d], y->shape.dims[d], istride[d], tab[d]);
        next += y->shape.dims[d];
        if (nt[d] > 1)
            act[na++] = d;
    }
    int64_t idx[EVO_MAX_RANK] = {0};
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    float extra = p->extrapolation;
    for (int64_t e = 0; e < numel; e++) {
        int64_t base = 0;
        float wbase = 1.0f;
        bool outside = false;
        for (int32_t d = 0; d < rank; d++) {
            const resize_tap *t = &tab[d][idx[d]];
            outside = outside || t->outside;
            if (nt[d] == 1) {
                base += t->off[0];
                wbase *= t->w[0];
            }
        }
        if (outside) {
            memcpy(dst + (size_t)e * es, &extra, sizeof extra); /* float32 only (infer) */
        } else if (p->mode == RESIZE_NEAREST) {
            memcpy(dst + (size_t)e * es, src + (size_t)base * es, es);
        } else {
            const float *xf = (const float *)src;
            float acc = 0.0f;
            int32_t k[EVO_MAX_RANK] = {0};
            for (;;) {
                int64_t off = base;
                float w = wbase;
                for (int32_t j = 0; j < na; j++) {
                    const resize_tap *t = &tab[act[j]][idx[act[j]]];
                    off += t->off[k[j]];
                    w *= t->w[k[j]];
                }
                acc += w * xf[off];
                int32_t j = na - 1;
                for (; j >= 0; j--) {
                    if (++k[j] < nt[act[j]])
                        break;
                    k[j] = 0;
                }
                if (j < 0)
                    break;
            }
            ((float *)dst)[e] = acc;
        }
        for (int32_t d = rank - 1; d >= 0; d--) {
            if (++idx[d] < y->shape.dims[d])
                break;
            idx[d] = 0;
        }
    }
    return EVO_OK;
}

const evo_op_def evo_op_Resize = {
    .name = "Resize",
    .domain = "",
    .id = 77,
    .flags = 0,
    .min_inputs = 1,
    .max_inputs = 4,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = resize_parse,
    .infer = resize_infer,
    .scratch = resize_scratch,
    .cost = resize_cost,
    .eval = resize_eval,
};

const evo_op_def evo_op_Upsample = {
    .name = "Upsample",
    .domain = "",
    .id = 78,
    .flags = 0,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .parse = upsample_parse,
    .infer = upsample_infer,
    .scratch = resize_scratch,
    .cost = resize_cost,
    .eval = resize_eval,
};
