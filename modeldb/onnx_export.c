/*
 * ONNX export: evo_graph -> ModelProto, packed by protobuf-c (the same
 * modeldb/onnx.proto the importer reads).
 *
 * The graph is written in the form its declared opsets define, which is not
 * always the form evo holds in memory:
 *  - the importer turned old-opset attributes into constant inputs (Clip-6
 *    min/max, Slice-1 starts, ...): those inputs become attributes again;
 *  - a fusion pass moved an activation into a Conv/Gemm's params: the
 *    Conv/Gemm writes a new intermediate tensor and the activation is written
 *    as its own node producing the original output;
 *  - nodes inference folded are written as their results (initializers).
 * Constants are initializers with little-endian raw_data; every tensor gets
 * its inferred type and static shape (inputs, outputs, value_info).
 *
 * Everything the messages point to is either borrowed from the graph (names,
 * constant data on a little-endian host) or allocated in a pool that is
 * freed in one go after packing.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evo/split.h"
#include "onnx.pb-c.h"
#include "pass_internal.h"
#include "kernels/conv.h"

/* ONNX files are limited to 2 GiB by protobuf. */
#define EXPORT_MAX_BYTES ((size_t)INT32_MAX)

typedef struct export_ctx {
    const evo_graph *g;
    const char *file;
    evo_error *err;
    void **pool; /* every allocation, freed at the end */
    size_t n_pool, cap_pool;
    bool *used; /* per value: read by a written node or a graph output */
    int64_t default_opset;
    unsigned name_counter;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits; /* initializers added for activations */
    size_t n_inits, cap_inits;
    Onnx__ValueInfoProto **infos;
    size_t n_infos, cap_infos;
} export_ctx;

static void *export_alloc(export_ctx *c, size_t n)
{
    if (c->n_pool == c->cap_pool) {
        size_t cap = c->cap_pool ? c->cap_pool * 2 : 256;
        void **p = realloc(c->pool, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        c->pool = p;
        c->cap_pool = cap;
    }
    void *m = calloc(1, n ? n : 1);
    if (m != NULL)
        c->pool[c->n_pool++] = m;
    return m;
}

/* Append p to a growing array of pointers. */
static bool export_push(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void **a = realloc(*arr, nc * sizeof *a);
        if (a == NULL)
            return false;
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return true;
}

static evo_status export_nomem(export_ctx *c)
{
    return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory writing the ONNX model",
                         c->file);
}

static bool export_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* ---------------------------------------------------------------- tensors and types */

static Onnx__TensorProto *export_tensor(export_ctx *c, const char *name, const evo_tensor *t)
{
    Onnx__TensorProto *tp = export_alloc(c, sizeof *tp);
    if (tp == NULL)
        return NULL;
    onnx__tensor_proto__init(tp);
    size_t bytes = 0;
    if (evo_shape_nbytes(&t->shape, t->dtype, &bytes) != EVO_OK)
        return NULL;
    tp->name = (char *)name;
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->n_dims = (size_t)t->shape.rank;
    if ((tp->dims = export_alloc(c, (size_t)(t->shape.rank + 1) * sizeof(int64_t))) == NULL)
        return NULL;
    for (int32_t d = 0; d < t->shape.rank; d++)
        tp->dims[d] = t->shape.dims[d];
    tp->has_raw_data = 1;
    tp->raw_data.len = bytes;
    size_t es = evo_dtype_size(t->dtype);
    if (bytes == 0 || t->data == NULL) {
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
    } else if (export_little_endian() || es <= 1) {
        tp->raw_data.data = t->data; /* borrowed: packing only reads it */
    } else {
        unsigned char *d = export_alloc(c, bytes);
        if (d == NULL)
            return NULL;
        const unsigned char *s = t->data;
        for (size_t i = 0; i < bytes; i += es)
            for (size_t b = 0; b < es; b++)
                d[i + b] = s[i + es - 1 - b];
        tp->raw_data.data = d;
    }
    return tp;
}

static Onnx__ValueInfoProto *export_value_info(export_ctx *c, const char *name, const evo_value *v)
{
    Onnx__ValueInfoProto *vi = export_alloc(c, sizeof *vi);
    Onnx__TypeProto *tp = export_alloc(c, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = export_alloc(c, sizeof *tt);
    if (vi == NULL || tp == NULL || tt == NULL)
        return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = (char *)name;
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (v->flags & EVO_VALUE_HAS_TYPE) {
        tt->has_elem_type = 1;
        tt->elem_type = (int32_t)v->t.dtype;
    }
    if (!(v->flags & EVO_VALUE_HAS_SHAPE) || v->t.shape.rank < 0 || v->t.shape.rank > EVO_MAX_RANK)
        return vi; /* shape unknown: leave it out */
    Onnx__TensorShapeProto *sp = export_alloc(c, sizeof *sp);
    int32_t rank = v->t.shape.rank;
    Onnx__TensorShapeProto__Dimension *dims = export_alloc(c, (size_t)(rank + 1) * sizeof *dims);
    Onnx__TensorShapeProto__Dimension **dp = export_alloc(c, (size_t)(rank + 1) * sizeof *dp);
    if (sp == NULL || dims == NULL || dp == NULL)
        return NULL;
    onnx__tensor_shape_proto__init(sp);
    for (int32_t d = 0; d < rank; d++) {
        onnx__tensor_shape_proto__dimension__init(&dims[d]);
        const char *param = v->dim_params ? v->dim_params[d] : NULL;
        if (v->t.shape.dims[d] >= 0) {
            dims[d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[d].dim_value = v->t.shape.dims[d];
        } else if (param != NULL && param[0] != '\0') {
            dims[d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dims[d].dim_param = (char *)param;
        }
        dp[d] = &dims[d];
    }
    sp->n_dim = (size_t)rank;
    sp->dim = dp;
    tt->shape = sp;
    return vi;
}

/* ---------------------------------------------------------------- attributes */

static Onnx__AttributeProto *export_attr_new(export_ctx *c, const char *name, int type)
{
    Onnx__AttributeProto *ap = export_alloc(c, sizeof *ap);
    if (ap == NULL)
        return NULL;
    onnx__attribute_proto__init(ap);
    ap->name = (char *)name;
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)type;
    return ap;
}

static evo_status export_attr(export_ctx *c, const evo_node *n, const evo_attr *a,
                              Onnx__AttributeProto **out)
{
    Onnx__AttributeProto *ap = export_attr_new(c, a->name, (int)a->type);
    if (ap == NULL)
        return export_nomem(c);
    switch (a->type) {
    case EVO_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case EVO_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case EVO_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)(a->s ? a->s : "");
        ap->s.len = a->s ? strlen(a->s) : 0;
        break;
    case EVO_ATTR_TENSOR:
        if ((ap->t = export_tensor(c, "", &a->tensor)) == NULL)
            return evo_error_set(c->err, EVO_ERR_NOMEM,
                                 "%s: cannot write tensor attribute '%s' of node '%s'", c->file,
                                 a->name, n->name);
        break;
    case EVO_ATTR_FLOATS:
        ap->n_floats = a->count;
        ap->floats = a->floats;
        break;
    case EVO_ATTR_INTS:
        ap->n_ints = a->count;
        ap->ints = a->ints;
        break;
    case EVO_ATTR_STRINGS:
        ap->n_strings = a->count;
        if ((ap->strings = export_alloc(c, (a->count + 1) * sizeof *ap->strings)) == NULL)
            return export_nomem(c);
        for (size_t k = 0; k < a->count; k++) {
            ap->strings[k].data = (uint8_t *)a->strings[k];
            ap->strings[k].len = strlen(a->strings[k]);
        }
        break;
    default:
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: node '%s' (%s) has attribute '%s' of a kind ONNX export cannot "
                             "write (subgraphs are unsupported)",
                             c->file, n->name, n->op_type, a->name);
    }
    *out = ap;
    return EVO_OK;
}

/* ---------------------------------------------------------------- old-opset attributes */

typedef enum down_kind { DOWN_INTS, DOWN_FLOATS, DOWN_FLOAT, DOWN_INT } down_kind;

/* Inverse of the importer's opset upgrade (opset_upgrade.c): input `input`
 * of op_type goes back to attribute `attr` when node->opset < before. Rows
 * of one input are tried in order; the first that applies wins. */
typedef struct down_rule {
    const char *op_type;
    int before;
    int input;
    const char *attr;
    down_kind kind;
} down_rule;

static const down_rule export_down_rules[] = {
    {"Slice", 10, 1, "starts", DOWN_INTS},
    {"Slice", 10, 2, "ends", DOWN_INTS},
    {"Slice", 10, 3, "axes", DOWN_INTS},
    {"Pad", 2, 1, "paddings", DOWN_INTS},
    {"Pad", 11, 1, "pads", DOWN_INTS},
    {"Pad", 11, 2, "value", DOWN_FLOAT},
    {"Split", 13, 1, "split", DOWN_INTS},
    {"Squeeze", 13, 1, "axes", DOWN_INTS},
    {"Unsqueeze", 13, 1, "axes", DOWN_INTS},
    {"ReduceSum", 13, 1, "axes", DOWN_INTS},
    {"ReduceMean", 18, 1, "axes", DOWN_INTS},
    {"ReduceMax", 18, 1, "axes", DOWN_INTS},
    {"ReduceMin", 18, 1, "axes", DOWN_INTS},
    {"ReduceProd", 18, 1, "axes", DOWN_INTS},
    {"ReduceL1", 18, 1, "axes", DOWN_INTS},
    {"ReduceL2", 18, 1, "axes", DOWN_INTS},
    {"ReduceLogSum", 18, 1, "axes", DOWN_INTS},
    {"ReduceLogSumExp", 18, 1, "axes", DOWN_INTS},
    {"ReduceSumSquare", 18, 1, "axes", DOWN_INTS},
    {"Clip", 11, 1, "min", DOWN_FLOAT},
    {"Clip", 11, 2, "max", DOWN_FLOAT},
    {"Upsample", 9, 1, "scales", DOWN_FLOATS},
    {"Dropout", 12, 1, "ratio", DOWN_FLOAT},
    {"Reshape", 5, 1, "shape", DOWN_INTS},
    {"TopK", 10, 1, "k", DOWN_INT},
};
#define EXPORT_N_DOWN (sizeof export_down_rules / sizeof export_down_rules[0])

/* The attribute made from constant input value v by rule r. */
static evo_status export_down_attr(export_ctx *c, const evo_node *n, const down_rule *r, int32_t v,
                                   Onnx__AttributeProto **out)
{
    const evo_value *val = &c->g->values[v];
    int64_t numel = evo_shape_numel(&val->t.shape);
    if (!(val->flags & EVO_VALUE_CONST) || val->t.data == NULL || numel < 0)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: node '%s' (%s) cannot be written for opset %d: its input '%s' "
                             "is computed, but that opset needs it as attribute '%s'",
                             c->file, n->name, n->op_type, n->opset, val->name, r->attr);
    bool is_int = val->t.dtype == EVO_DT_INT64 || val->t.dtype == EVO_DT_INT32;
    bool is_float = val->t.dtype == EVO_DT_FLOAT32;
    bool want_int = r->kind == DOWN_INTS || r->kind == DOWN_INT;
    bool scalar = r->kind == DOWN_FLOAT || r->kind == DOWN_INT;
    if ((want_int && !is_int) || (!want_int && !is_float) || (scalar && numel != 1))
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: node '%s' (%s): input '%s' does not fit attribute '%s' of "
                             "opset %d",
                             c->file, n->name, n->op_type, val->name, r->attr, n->opset);
    int type = r->kind == DOWN_INTS     ? EVO_ATTR_INTS
               : r->kind == DOWN_FLOATS ? EVO_ATTR_FLOATS
               : r->kind == DOWN_FLOAT  ? EVO_ATTR_FLOAT
                                        : EVO_ATTR_INT;
    Onnx__AttributeProto *ap = export_attr_new(c, r->attr, type);
    if (ap == NULL)
        return export_nomem(c);
    if (want_int) {
        int64_t *vals = export_alloc(c, ((size_t)numel + 1) * sizeof *vals);
        if (vals == NULL)
            return export_nomem(c);
        for (int64_t i = 0; i < numel; i++)
            vals[i] = val->t.dtype == EVO_DT_INT64 ? ((const int64_t *)val->t.data)[i]
                                                   : ((const int32_t *)val->t.data)[i];
        if (r->kind == DOWN_INT) {
            ap->has_i = 1;
            ap->i = vals[0];
        } else {
            ap->n_ints = (size_t)numel;
            ap->ints = vals;
        }
    } else if (r->kind == DOWN_FLOAT) {
        ap->has_f = 1;
        ap->f = *(const float *)val->t.data;
    } else {
        ap->n_floats = (size_t)numel;
        ap->floats = val->t.data;
    }
    *out = ap;
    return EVO_OK;
}

/* ---------------------------------------------------------------- nodes */

/* A tensor name no value of the graph has (and no earlier generated one). */
static char *export_fresh_name(export_ctx *c, const char *base, const char *suffix)
{
    size_t len = strlen(base) + strlen(suffix) + 24;
    char *s = export_alloc(c, len);
    if (s == NULL)
        return NULL;
    do
        snprintf(s, len, "%s%s_%u", base, suffix, c->name_counter++);
    while (evo_graph_find_value(c->g, s) >= 0);
    return s;
}

static Onnx__NodeProto *export_node_new(export_ctx *c, const char *op_type, const char *name,
                                        size_t n_in, size_t n_out, size_t n_attr)
{
    Onnx__NodeProto *np = export_alloc(c, sizeof *np);
    if (np == NULL)
        return NULL;
    onnx__node_proto__init(np);
    np->op_type = (char *)op_type;
    np->name = (char *)name;
    np->input = export_alloc(c, (n_in + 1) * sizeof(char *));
    np->output = export_alloc(c, (n_out + 1) * sizeof(char *));
    np->attribute = export_alloc(c, (n_attr + 1) * sizeof(Onnx__AttributeProto *));
    if (np->input == NULL || np->output == NULL || np->attribute == NULL)
        return NULL;
    return np;
}

static evo_status export_add_node(export_ctx *c, Onnx__NodeProto *np)
{
    if (!export_push((void ***)&c->nodes, &c->n_nodes, &c->cap_nodes, np))
        return export_nomem(c);
    return EVO_OK;
}

/* A float32 scalar initializer for a Clip bound. */
static char *export_scalar_init(export_ctx *c, const char *base, const char *suffix, float f)
{
    char *name = export_fresh_name(c, base, suffix);
    float *d = export_alloc(c, sizeof(float));
    if (name == NULL || d == NULL)
        return NULL;
    *d = f;
    evo_tensor t = {.dtype = EVO_DT_FLOAT32, .shape = {.rank = 0}, .data = d};
    Onnx__TensorProto *tp = export_tensor(c, name, &t);
    if (tp == NULL || !export_push((void ***)&c->inits, &c->n_inits, &c->cap_inits, tp))
        return NULL;
    return name;
}

/* A Conv whose W the layout pass stored as [C * kernel, M]
 * (EVO_CONV_W_KM) or as Winograd weights [36, C, M] (EVO_CONV_W_WINO43):
 * ONNX wants [M, C, kernel...], so W is written back transposed (or
 * transformed back, exact up to float rounding) as a new initializer;
 * *name is its name. */
static evo_status export_onnx_weight(export_ctx *c, const evo_node *n, const char **name)
{
    const evo_graph *g = c->g;
    const evo_conv_params *p = (const evo_conv_params *)(const void *)n->params;
    const int32_t xi = n->n_inputs > 1 ? n->inputs[0] : -1,
                  wi = n->n_inputs > 1 ? n->inputs[1] : -1;
    evo_conv_geom geo;
    if (xi < 0 || wi < 0 || !(g->values[wi].flags & EVO_VALUE_CONST) ||
        g->values[wi].t.data == NULL || g->values[wi].t.dtype != EVO_DT_FLOAT32 ||
        evo_conv_resolve(p, &g->values[xi].t.shape, &g->values[wi].t.shape, &geo, NULL) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: node '%s' (Conv) has weights in an evo layout that are not a "
                             "valid float32 constant; cannot write it as ONNX",
                             c->file, n->name);
    const int64_t mm = geo.m, rows = geo.cg * geo.k_size;
    float *d = export_alloc(c, (size_t)(mm * rows) * sizeof(float) + 1);
    char *nm = export_fresh_name(c, g->values[wi].name, "_onnx");
    if (d == NULL || nm == NULL)
        return export_nomem(c);
    const float *km = g->values[wi].t.data;
    if (geo.w_wino) { /* rows = C * 9 */
        for (int64_t m = 0; m < mm; m++)
            for (int64_t ch = 0; ch < geo.c; ch++) {
                float ut[EVO_WINO43_XI];
                for (int q = 0; q < EVO_WINO43_XI; q++)
                    ut[q] = km[(q * geo.c + ch) * mm + m];
                evo_wino43_weight_inverse(ut, d + (m * geo.c + ch) * 9);
            }
    } else {
        for (int64_t m = 0; m < mm; m++)
            for (int64_t r = 0; r < rows; r++)
                d[m * rows + r] = km[r * mm + m];
    }
    evo_tensor t = {.dtype = EVO_DT_FLOAT32, .data = d};
    t.shape.rank = g->values[xi].t.shape.rank;
    t.shape.dims[0] = (int32_t)mm;
    t.shape.dims[1] = (int32_t)geo.cg;
    for (int32_t i = 0; i < geo.nsp; i++)
        t.shape.dims[2 + i] = (int32_t)geo.k[3 - geo.nsp + i];
    Onnx__TensorProto *tp = export_tensor(c, nm, &t);
    if (tp == NULL || !export_push((void ***)&c->inits, &c->n_inits, &c->cap_inits, tp))
        return export_nomem(c);
    *name = nm;
    return EVO_OK;
}

/* The node(s) computing `act` from tensor x into tensor y. */
static evo_status export_act_nodes(export_ctx *c, const evo_node *n, const evo_act *act,
                                   const char *x, const char *y, const evo_value *yv)
{
    char *name = export_fresh_name(c, n->name, "_act");
    if (name == NULL)
        return export_nomem(c);
    Onnx__NodeProto *np = NULL;
    switch (act->kind) {
    case EVO_ACT_RELU:
    case EVO_ACT_SIGMOID:
        np = export_node_new(c, act->kind == EVO_ACT_RELU ? "Relu" : "Sigmoid", name, 1, 1, 0);
        break;
    case EVO_ACT_LEAKY_RELU: {
        np = export_node_new(c, "LeakyRelu", name, 1, 1, 1);
        Onnx__AttributeProto *ap = export_attr_new(c, "alpha", EVO_ATTR_FLOAT);
        if (np == NULL || ap == NULL)
            return export_nomem(c);
        ap->has_f = 1;
        ap->f = act->a;
        np->attribute[np->n_attribute++] = ap;
        break;
    }
    case EVO_ACT_CLIP:
        if (c->default_opset >= 11) {
            np = export_node_new(c, "Clip", name, 3, 1, 0);
            if (np == NULL)
                return export_nomem(c);
            char *lo = isinf(act->a) && act->a < 0 ? "" : export_scalar_init(c, y, "_min", act->a);
            char *hi = isinf(act->b) && act->b > 0 ? "" : export_scalar_init(c, y, "_max", act->b);
            if (lo == NULL || hi == NULL)
                return export_nomem(c);
            np->input[1] = lo;
            np->input[2] = hi;
            np->n_input = hi[0] ? 3 : lo[0] ? 2 : 1;
        } else {
            np = export_node_new(c, "Clip", name, 1, 1, 2);
            Onnx__AttributeProto *lo = export_attr_new(c, "min", EVO_ATTR_FLOAT);
            Onnx__AttributeProto *hi = export_attr_new(c, "max", EVO_ATTR_FLOAT);
            if (np == NULL || lo == NULL || hi == NULL)
                return export_nomem(c);
            lo->has_f = hi->has_f = 1;
            lo->f = isinf(act->a) ? -FLT_MAX : act->a;
            hi->f = isinf(act->b) ? FLT_MAX : act->b;
            np->attribute[np->n_attribute++] = lo;
            np->attribute[np->n_attribute++] = hi;
        }
        break;
    case EVO_ACT_HARD_SWISH:
        if (c->default_opset >= 14) {
            np = export_node_new(c, "HardSwish", name, 1, 1, 0);
            break;
        }
        {
            /* Before opset 14: x * HardSigmoid(x; 1/6, 1/2). */
            char *gate = export_fresh_name(c, y, "_gate");
            Onnx__NodeProto *hs = export_node_new(c, "HardSigmoid", name, 1, 1, 2);
            Onnx__AttributeProto *al = export_attr_new(c, "alpha", EVO_ATTR_FLOAT);
            Onnx__AttributeProto *be = export_attr_new(c, "beta", EVO_ATTR_FLOAT);
            Onnx__ValueInfoProto *vi = gate ? export_value_info(c, gate, yv) : NULL;
            if (gate == NULL || hs == NULL || al == NULL || be == NULL || vi == NULL ||
                !export_push((void ***)&c->infos, &c->n_infos, &c->cap_infos, vi))
                return export_nomem(c);
            al->has_f = be->has_f = 1;
            al->f = 1.0f / 6.0f;
            be->f = 0.5f;
            hs->attribute[hs->n_attribute++] = al;
            hs->attribute[hs->n_attribute++] = be;
            hs->input[hs->n_input++] = (char *)x;
            hs->output[hs->n_output++] = gate;
            evo_status rv = export_add_node(c, hs);
            if (rv != EVO_OK)
                return rv;
            char *mname = export_fresh_name(c, n->name, "_act");
            if (mname == NULL || (np = export_node_new(c, "Mul", mname, 2, 1, 0)) == NULL)
                return export_nomem(c);
            np->input[0] = (char *)x;
            np->input[1] = gate;
            np->n_input = 2;
            np->output[np->n_output++] = (char *)y;
            return export_add_node(c, np);
        }
    default:
        return evo_error_set(c->err, EVO_ERR_INTERNAL,
                             "%s: node '%s' carries an unknown fused activation %d", c->file,
                             n->name, (int)act->kind);
    }
    if (np == NULL)
        return export_nomem(c);
    np->input[0] = (char *)x;
    if (np->n_input == 0)
        np->n_input = 1;
    np->output[np->n_output++] = (char *)y;
    return export_add_node(c, np);
}

/* The fused activation of a Conv/Gemm node, or NULL. */
static const evo_act *export_fused_act(const evo_node *n)
{
    if (n->op == NULL || n->domain[0] != '\0')
        return NULL;
    const evo_act *act = NULL;
    if (n->op->id == 1 && strcmp(n->op->name, "Conv") == 0)
        act = &((const evo_conv_params *)(const void *)n->params)->act;
    else if (n->op->id == 3 && strcmp(n->op->name, "Gemm") == 0)
        act = &((const evo_gemm_params *)(const void *)n->params)->act;
    else if (n->op->id == 20 && strcmp(n->op->name, "Add") == 0)
        act = &((const evo_add_params *)(const void *)n->params)->act;
    return act != NULL && act->kind != EVO_ACT_NONE ? act : NULL;
}

static bool export_node_runs(const evo_graph *g, const evo_node *n)
{
    for (int32_t k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & EVO_VALUE_CONST))
            return true;
    return false;
}

static evo_status export_node(export_ctx *c, int32_t i)
{
    const evo_graph *g = c->g;
    const evo_node *n = &g->nodes[i];
    /* Which inputs go back to attributes, and where the input list ends. */
    const down_rule *down[8] = {NULL};
    int32_t n_in = n->n_inputs;
    bool legacy = false;
    if (n->domain[0] == '\0') {
        for (size_t r = 0; r < EXPORT_N_DOWN; r++) {
            const down_rule *rule = &export_down_rules[r];
            if (n->opset >= rule->before || strcmp(rule->op_type, n->op_type) != 0 ||
                rule->input >= 8 || down[rule->input] != NULL)
                continue;
            down[rule->input] = rule;
            legacy = true;
        }
    }
    if (legacy) {
        /* The old form has only input 0 (and Pad-2/Clip-6 etc. nothing
         * positional after the moved ones): every later input must be one
         * that moves, or absent. Slice-1 had no steps; all ones is fine. */
        for (int32_t k = 1; k < n->n_inputs; k++) {
            if (n->inputs[k] < 0 || (k < 8 && down[k] != NULL))
                continue;
            bool ones = false;
            if (strcmp(n->op_type, "Slice") == 0 && k == 4) {
                const evo_value *sv = &g->values[n->inputs[k]];
                int64_t ne = evo_shape_numel(&sv->t.shape);
                ones = (sv->flags & EVO_VALUE_CONST) && sv->t.data != NULL &&
                       (sv->t.dtype == EVO_DT_INT64 || sv->t.dtype == EVO_DT_INT32);
                for (int64_t e = 0; ones && e < ne; e++)
                    ones = sv->t.dtype == EVO_DT_INT64 ? ((const int64_t *)sv->t.data)[e] == 1
                                                       : ((const int32_t *)sv->t.data)[e] == 1;
            }
            if (!ones)
                return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                                     "%s: node '%s' (%s) cannot be written for opset %d: input "
                                     "%d has no place in that opset's form",
                                     c->file, n->name, n->op_type, n->opset, (int)k);
        }
        n_in = 1 < n->n_inputs ? 1 : n->n_inputs;
    }
    const evo_act *act = export_fused_act(n);
    Onnx__NodeProto *np = export_node_new(c, n->op_type, n->name, (size_t)n->n_inputs,
                                          (size_t)n->n_outputs, (size_t)n->n_attrs + 8);
    if (np == NULL)
        return export_nomem(c);
    np->domain = n->domain[0] ? n->domain : NULL;
    /* W in an evo layout (KM, Winograd) is written back below in ONNX's layout. */
    const bool relaid_w =
        n->op != NULL && n->op->id == 1 && strcmp(n->op->name, "Conv") == 0 &&
        ((const evo_conv_params *)(const void *)n->params)->w_layout != EVO_CONV_W_ONNX;
    for (int32_t k = 0; k < n_in; k++) {
        int32_t v = n->inputs[k];
        np->input[k] = v >= 0 ? g->values[v].name : "";
        if (v >= 0 && !(relaid_w && k == 1))
            c->used[v] = true;
    }
    np->n_input = (size_t)n_in;
    evo_status rv;
    if (relaid_w) {
        const char *wname = NULL;
        if ((rv = export_onnx_weight(c, n, &wname)) != EVO_OK)
            return rv;
        np->input[1] = (char *)wname;
    }
    for (int32_t a = 0; a < n->n_attrs; a++) {
        if ((rv = export_attr(c, n, &n->attrs[a], &np->attribute[np->n_attribute])) != EVO_OK)
            return rv;
        np->n_attribute++;
    }
    for (int32_t k = 1; legacy && k < n->n_inputs && k < 8; k++) {
        if (down[k] == NULL || n->inputs[k] < 0)
            continue;
        if ((rv = export_down_attr(c, n, down[k], n->inputs[k], &np->attribute[np->n_attribute])) !=
            EVO_OK)
            return rv;
        np->n_attribute++;
    }
    const char *act_in = NULL, *act_out = NULL;
    for (int32_t k = 0; k < n->n_outputs; k++) {
        int32_t v = n->outputs[k];
        np->output[k] = v >= 0 ? g->values[v].name : "";
        if (k == 0 && act != NULL && v >= 0) {
            /* Conv/Gemm -> fresh tensor -> activation -> the original name */
            char *pre = export_fresh_name(c, g->values[v].name, "_preact");
            Onnx__ValueInfoProto *vi = pre ? export_value_info(c, pre, &g->values[v]) : NULL;
            if (vi == NULL || !export_push((void ***)&c->infos, &c->n_infos, &c->cap_infos, vi))
                return export_nomem(c);
            np->output[k] = pre;
            act_in = pre;
            act_out = g->values[v].name;
        }
    }
    np->n_output = (size_t)n->n_outputs;
    if ((rv = export_add_node(c, np)) != EVO_OK)
        return rv;
    if (act_in != NULL)
        return export_act_nodes(c, n, act, act_in, act_out, &g->values[n->outputs[0]]);
    return EVO_OK;
}

/* ---------------------------------------------------------------- model */

static evo_status export_model(export_ctx *c, Onnx__ModelProto *m, Onnx__GraphProto *gp)
{
    const evo_graph *g = c->g;
    evo_status rv;
    onnx__model_proto__init(m);
    onnx__graph_proto__init(gp);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->producer_name = "evo";
    m->producer_version = "0.1";
    m->graph = gp;
    gp->name = g->name && g->name[0] ? g->name : "evo_graph";
    c->default_opset = 0;
    m->opset_import = export_alloc(c, ((size_t)g->n_opsets + 1) * sizeof *m->opset_import);
    if (m->opset_import == NULL)
        return export_nomem(c);
    for (int32_t k = 0; k < g->n_opsets; k++) {
        Onnx__OperatorSetIdProto *op = export_alloc(c, sizeof *op);
        if (op == NULL)
            return export_nomem(c);
        onnx__operator_set_id_proto__init(op);
        op->domain = g->opsets[k].domain;
        op->has_version = 1;
        op->version = g->opsets[k].version;
        m->opset_import[m->n_opset_import++] = op;
        if (g->opsets[k].domain[0] == '\0')
            c->default_opset = g->opsets[k].version;
    }
    if ((c->used = export_alloc(c, (size_t)g->n_values + 1)) == NULL)
        return export_nomem(c);
    /* Nodes in topological order, so the file is valid without sorting. */
    for (int32_t k = 0; k < g->n_order; k++) {
        int32_t i = g->order[k];
        if (i < 0 || i >= g->n_nodes)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: node order out of range", c->file);
        if (!export_node_runs(g, &g->nodes[i]))
            continue;
        if ((rv = export_node(c, i)) != EVO_OK)
            return rv;
    }
    gp->node = c->nodes;
    gp->n_node = c->n_nodes;

    gp->input = export_alloc(c, ((size_t)g->n_inputs + 1) * sizeof *gp->input);
    gp->output = export_alloc(c, ((size_t)g->n_outputs + 1) * sizeof *gp->output);
    if (gp->input == NULL || gp->output == NULL)
        return export_nomem(c);
    for (int32_t k = 0; k < g->n_inputs; k++) {
        const evo_value *v = &g->values[g->inputs[k]];
        if ((gp->input[gp->n_input++] = export_value_info(c, v->name, v)) == NULL)
            return export_nomem(c);
    }
    for (int32_t k = 0; k < g->n_outputs; k++) {
        const evo_value *v = &g->values[g->outputs[k]];
        c->used[g->outputs[k]] = true;
        if ((gp->output[gp->n_output++] = export_value_info(c, v->name, v)) == NULL)
            return export_nomem(c);
    }
    /* Initializers: constants something written reads. */
    for (int32_t v = 0; v < g->n_values; v++) {
        const evo_value *val = &g->values[v];
        if (!c->used[v] || !(val->flags & EVO_VALUE_CONST))
            continue;
        Onnx__TensorProto *tp = export_tensor(c, val->name, &val->t);
        if (tp == NULL || !export_push((void ***)&c->inits, &c->n_inits, &c->cap_inits, tp))
            return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: cannot write constant '%s'", c->file,
                                 val->name);
    }
    gp->initializer = c->inits;
    gp->n_initializer = c->n_inits;
    /* value_info: every intermediate a written node computes. */
    for (int32_t k = 0; k < g->n_order; k++) {
        const evo_node *n = &g->nodes[g->order[k]];
        if (!export_node_runs(g, n))
            continue;
        for (int32_t o = 0; o < n->n_outputs; o++) {
            int32_t v = n->outputs[o];
            if (v < 0 || (g->values[v].flags & (EVO_VALUE_OUTPUT | EVO_VALUE_INPUT)))
                continue;
            Onnx__ValueInfoProto *vi = export_value_info(c, g->values[v].name, &g->values[v]);
            if (vi == NULL || !export_push((void ***)&c->infos, &c->n_infos, &c->cap_infos, vi))
                return export_nomem(c);
        }
    }
    gp->value_info = c->infos;
    gp->n_value_info = c->n_infos;
    return EVO_OK;
}

static void export_ctx_free(export_ctx *c)
{
    for (size_t k = 0; k < c->n_pool; k++)
        free(c->pool[k]);
    free(c->pool);
    free(c->nodes);
    free(c->inits);
    free(c->infos);
}

evo_status evo_onnx_export_buffer(const evo_graph *g, void **buf, size_t *len, evo_error *err)
{
    if (g == NULL || buf == NULL || len == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "evo_onnx_export_buffer needs a graph and output pointers");
    *buf = NULL;
    *len = 0;
    export_ctx c = {.g = g, .file = g->source_path ? g->source_path : "graph", .err = err};
    if (g->order == NULL && g->n_nodes > 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: the graph must be validated before export", c.file);
    Onnx__ModelProto m;
    Onnx__GraphProto gp;
    evo_status rv = export_model(&c, &m, &gp);
    if (rv == EVO_OK) {
        size_t size = onnx__model_proto__get_packed_size(&m);
        if (size > EXPORT_MAX_BYTES) {
            rv = evo_error_set(err, EVO_ERR_LIMIT,
                               "%s: the ONNX model would be %zu bytes, more than protobuf's 2 "
                               "GiB limit",
                               c.file, size);
        } else if ((*buf = malloc(size ? size : 1)) == NULL) {
            rv = export_nomem(&c);
        } else {
            *len = onnx__model_proto__pack(&m, *buf);
        }
    }
    export_ctx_free(&c);
    return rv;
}

evo_status evo_onnx_export(const evo_graph *g, const char *path, evo_error *err)
{
    if (path == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_onnx_export needs a path");
    void *buf;
    size_t len;
    evo_status rv = evo_onnx_export_buffer(g, &buf, &len, err);
    if (rv != EVO_OK)
        return rv;
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (tmp == NULL) {
        free(buf);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tl, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot create the file (%s)", path,
                           strerror(errno));
    } else {
        bool ok = fwrite(buf, 1, len, f) == len;
        ok = (fclose(f) == 0) && ok;
        if (!ok || rename(tmp, path) != 0) {
            rv = evo_error_set(err, EVO_ERR_IO, "%s: cannot write the file (%s)", path,
                               strerror(errno));
            remove(tmp);
        }
    }
    free(tmp);
    free(buf);
    return rv;
}
