/*
 * Opset upgrade: rewrite nodes written for older opsets into the newest form
 * that evo's kernels implement. ONNX turned many attributes into inputs over
 * time (Slice-10, Pad-11, Split-13, Squeeze-13, Reduce*-18, Clip-11, ...);
 * here such an attribute becomes a constant input value and disappears from
 * the node, so each kernel parses one form only. Attributes that were removed
 * from ONNX and never changed inference results are dropped. node->opset is
 * kept, since kernels still read it for semantic differences (Softmax axis).
 *
 * One table row per rewrite; rows of one op run in table order.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

typedef enum upgrade_kind {
    UPG_INTS,        /* INTS (or a single INT) -> int64 1-D input */
    UPG_INT_AS_LIST, /* INT -> int64 1-D input of one element (TopK k) */
    UPG_FLOATS,      /* FLOATS -> float32 1-D input */
    UPG_FLOAT,       /* FLOAT -> float32 scalar input */
    UPG_DROP,        /* remove: gone from ONNX and irrelevant for inference */
    UPG_DROP_IF_ONE, /* remove when 1 (the only behaviour the new op has) */
    UPG_DEFAULT_INT, /* add with `fill` when absent (the attr became required) */
} upgrade_kind;

typedef struct upgrade_rule {
    const char *op_type; /* NULL: every op of the default domain */
    int before;          /* applies when node->opset < before */
    const char *attr;
    upgrade_kind kind;
    int input; /* input index the attribute moves to */
    /* When the attribute is absent but another attribute of the node moves
     * to an input, create this input anyway with `fill` (Clip's old default
     * bounds, since the new op's inputs are positional). */
    bool fill_if_any;
    double fill;
} upgrade_rule;

static const upgrade_rule upgrade_rules[] = {
    {"Slice", 10, "starts", UPG_INTS, 1, false, 0},
    {"Slice", 10, "ends", UPG_INTS, 2, false, 0},
    {"Slice", 10, "axes", UPG_INTS, 3, false, 0},
    {"Pad", 2, "paddings", UPG_INTS, 1, false, 0},
    {"Pad", 11, "pads", UPG_INTS, 1, false, 0},
    {"Pad", 11, "value", UPG_FLOAT, 2, false, 0},
    {"Split", 13, "split", UPG_INTS, 1, false, 0},
    {"Squeeze", 13, "axes", UPG_INTS, 1, false, 0},
    {"Unsqueeze", 13, "axes", UPG_INTS, 1, false, 0},
    {"ReduceSum", 13, "axes", UPG_INTS, 1, false, 0},
    {"ReduceMean", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceMax", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceMin", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceProd", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceL1", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceL2", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceLogSum", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceLogSumExp", 18, "axes", UPG_INTS, 1, false, 0},
    {"ReduceSumSquare", 18, "axes", UPG_INTS, 1, false, 0},
    {"Clip", 11, "min", UPG_FLOAT, 1, true, -FLT_MAX},
    {"Clip", 11, "max", UPG_FLOAT, 2, true, FLT_MAX},
    {"Upsample", 9, "scales", UPG_FLOATS, 1, false, 0},
    {"Dropout", 12, "ratio", UPG_FLOAT, 1, false, 0},
    {"Dropout", 7, "is_test", UPG_DROP, 0, false, 0},
    {"Reshape", 5, "shape", UPG_INTS, 1, false, 0},
    {"TopK", 10, "k", UPG_INT_AS_LIST, 1, false, 0},
    {"BatchNormalization", 7, "is_test", UPG_DROP, 0, false, 0},
    {"BatchNormalization", 9, "spatial", UPG_DROP_IF_ONE, 0, false, 0},
    {"Gemm", 7, "broadcast", UPG_DROP, 0, false, 0}, /* Gemm-7 always broadcasts C */
    {"Concat", 4, "axis", UPG_DEFAULT_INT, 0, false, 1},
    {NULL, 7, "consumed_inputs", UPG_DROP, 0, false, 0},
};

#define UPGRADE_N_RULES (sizeof upgrade_rules / sizeof upgrade_rules[0])

static bool upgrade_moves_to_input(upgrade_kind k)
{
    return k == UPG_INTS || k == UPG_INT_AS_LIST || k == UPG_FLOATS || k == UPG_FLOAT;
}

static bool upgrade_applies(const upgrade_rule *r, const evo_node *n)
{
    return n->opset < r->before && (r->op_type == NULL || strcmp(r->op_type, n->op_type) == 0);
}

static int32_t upgrade_find_attr(const evo_node *n, const char *name)
{
    for (int32_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return i;
    return -1;
}

static void upgrade_remove_attr(evo_node *n, int32_t i)
{
    evo_onnx_attr_clear(&n->attrs[i]);
    memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->n_attrs - i - 1) * sizeof(evo_attr));
    n->n_attrs--;
}

typedef struct upgrade_site {
    const char *file;
    evo_graph *g;
    int32_t node;
    evo_error *err;
} upgrade_site;

static evo_status upgrade_fail(const upgrade_site *s, evo_status code, const char *what,
                               const char *attr)
{
    const evo_node *n = &s->g->nodes[s->node];
    if (n->name[0] == '\0')
        return evo_error_set(s->err, code, "%s: node #%d (%s, opset %d): attribute '%s' %s",
                             s->file, (int)s->node, n->op_type, n->opset, attr, what);
    return evo_error_set(s->err, code, "%s: node '%s' (%s, opset %d): attribute '%s' %s", s->file,
                         n->name, n->op_type, n->opset, attr, what);
}

/* A fresh value name "<node or op>:<attr>", made unique with a counter. */
static evo_status upgrade_new_const(const upgrade_site *s, const char *attr, evo_dtype dt,
                                    const evo_shape *shape, void *data, int32_t *out)
{
    const evo_node *n = &s->g->nodes[s->node];
    const char *base = n->name[0] ? n->name : n->op_type;
    size_t cap = strlen(base) + strlen(attr) + 24;
    char *name = malloc(cap);
    if (name == NULL) {
        free(data);
        return EVO_ERR_NOMEM;
    }
    snprintf(name, cap, "%s:%s", base, attr);
    for (unsigned k = 1; evo_graph_find_value(s->g, name) >= 0; k++)
        snprintf(name, cap, "%s:%s:%u", base, attr, k);
    evo_status rv = evo_graph_add_value(s->g, name, out);
    free(name);
    if (rv != EVO_OK) {
        free(data);
        return rv;
    }
    return evo_value_set_const(s->g, *out, dt, shape, data);
}

/* Build the constant for rule r from attribute a (NULL: use r->fill). */
static evo_status upgrade_make_input(const upgrade_site *s, const upgrade_rule *r,
                                     const evo_attr *a, int32_t *value)
{
    evo_shape shape = {0};
    evo_dtype dt;
    size_t count = 1;
    switch (r->kind) {
    case UPG_INTS:
        if (a->type != EVO_ATTR_INTS && a->type != EVO_ATTR_INT)
            return upgrade_fail(s, EVO_ERR_TYPE, "must be a list of integers", r->attr);
        dt = EVO_DT_INT64;
        count = a->type == EVO_ATTR_INTS ? a->count : 1;
        shape.rank = 1;
        break;
    case UPG_INT_AS_LIST:
        if (a->type != EVO_ATTR_INT)
            return upgrade_fail(s, EVO_ERR_TYPE, "must be an integer", r->attr);
        dt = EVO_DT_INT64;
        shape.rank = 1;
        break;
    case UPG_FLOATS:
        if (a->type != EVO_ATTR_FLOATS)
            return upgrade_fail(s, EVO_ERR_TYPE, "must be a list of floats", r->attr);
        dt = EVO_DT_FLOAT32;
        count = a->count;
        shape.rank = 1;
        break;
    default: /* UPG_FLOAT */
        if (a != NULL && a->type != EVO_ATTR_FLOAT && a->type != EVO_ATTR_INT)
            return upgrade_fail(s, EVO_ERR_TYPE, "must be a float", r->attr);
        dt = EVO_DT_FLOAT32;
        break;
    }
    if (count > (size_t)EVO_MAX_DIM)
        return upgrade_fail(s, EVO_ERR_LIMIT, "has too many values", r->attr);
    if (shape.rank == 1)
        shape.dims[0] = (int32_t)count;
    void *data = malloc(count * evo_dtype_size(dt) + 1);
    if (data == NULL)
        return EVO_ERR_NOMEM;
    if (dt == EVO_DT_INT64) {
        int64_t *d = data;
        if (a->type == EVO_ATTR_INTS) {
            if (count > 0)
                memcpy(d, a->ints, count * sizeof(int64_t));
        } else {
            d[0] = a->i;
        }
    } else if (r->kind == UPG_FLOATS) {
        if (count > 0)
            memcpy(data, a->floats, count * sizeof(float));
    } else {
        *(float *)data = a == NULL                   ? (float)r->fill
                         : a->type == EVO_ATTR_FLOAT ? a->f
                                                     : (float)a->i;
    }
    evo_status rv = upgrade_new_const(s, r->attr, dt, &shape, data, value);
    return rv == EVO_ERR_NOMEM ? evo_error_set(s->err, rv, "%s: out of memory", s->file) : rv;
}

/* Put value at input index k, growing the input list with absent (-1) slots. */
static evo_status upgrade_set_input(const upgrade_site *s, const upgrade_rule *r, int32_t value)
{
    evo_node *n = &s->g->nodes[s->node];
    int32_t k = r->input;
    if (k < n->n_inputs && n->inputs[k] >= 0) {
        char what[64];
        snprintf(what, sizeof what, "is also given as input %d", (int)k);
        return upgrade_fail(s, EVO_ERR_PARSE, what, r->attr);
    }
    if (k >= n->n_inputs) {
        int32_t *p = realloc(n->inputs, ((size_t)k + 2) * sizeof(int32_t));
        if (p == NULL)
            return evo_error_set(s->err, EVO_ERR_NOMEM, "%s: out of memory", s->file);
        for (int32_t i = n->n_inputs; i <= k; i++)
            p[i] = -1;
        n->inputs = p;
        n->n_inputs = k + 1;
    }
    n->inputs[k] = value;
    return EVO_OK;
}

/* ---------------------------------------------------------------- legacy broadcast */

/* Replace constant input k of the node by a copy with trailing 1-dims up to
 * `rank`, so that numpy-style broadcasting aligns it as a legacy form did.
 * The copy is a new value; the original may have other readers. */
static evo_status upgrade_pad_const_input(const upgrade_site *s, int32_t k, int32_t rank,
                                          const char *what)
{
    const evo_value *b = &s->g->values[s->g->nodes[s->node].inputs[k]];
    size_t nbytes;
    evo_shape shape = b->t.shape;
    while (shape.rank < rank && shape.rank < EVO_MAX_RANK)
        shape.dims[shape.rank++] = 1;
    if (evo_shape_nbytes(&shape, b->t.dtype, &nbytes) != EVO_OK)
        return upgrade_fail(s, EVO_ERR_TYPE, "applies to a tensor of unknown size", what);
    void *data = malloc(nbytes + 1);
    if (data == NULL)
        return evo_error_set(s->err, EVO_ERR_NOMEM, "%s: out of memory", s->file);
    memcpy(data, b->t.data, nbytes);
    int32_t v;
    evo_status rv = upgrade_new_const(s, what, b->t.dtype, &shape, data, &v);
    if (rv != EVO_OK)
        return rv == EVO_ERR_NOMEM ? evo_error_set(s->err, rv, "%s: out of memory", s->file) : rv;
    s->g->nodes[s->node].inputs[k] = v;
    return EVO_OK;
}

/* PRelu before opset 7 applied a 1-D slope per channel (axis 1); PRelu-7
 * broadcasts it numpy-style (to the last axis). A constant per-channel slope
 * gets trailing 1-dims when X's rank is known at import; otherwise the node
 * is left for infer, which sees the mismatch and says so. */
static evo_status upgrade_legacy_prelu(const upgrade_site *s)
{
    const evo_node *n = &s->g->nodes[s->node];
    if (n->opset >= 7 || strcmp(n->op_type, "PRelu") != 0 || n->n_inputs != 2 || n->inputs[0] < 0 ||
        n->inputs[1] < 0)
        return EVO_OK;
    const evo_value *x = &s->g->values[n->inputs[0]];
    const evo_value *slope = &s->g->values[n->inputs[1]];
    if (!(x->flags & EVO_VALUE_HAS_SHAPE) || !(slope->flags & EVO_VALUE_CONST) ||
        slope->t.data == NULL || slope->t.shape.rank != 1 || slope->t.shape.dims[0] <= 1 ||
        x->t.shape.rank < 3 || x->t.shape.dims[1] != slope->t.shape.dims[0])
        return EVO_OK;
    return upgrade_pad_const_input(s, 1, x->t.shape.rank - 1, "slope");
}

/* Binary ops that had `broadcast` and `axis` attributes before opset 7. */
static const char *const upgrade_legacy_broadcast_ops[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less",
};

/* Before opset 7 these ops broadcast B onto A only with broadcast=1, with B's
 * dims aligned to A's starting at `axis` (default: aligned to the end, which
 * is what numpy-style broadcasting of the new ops does). When axis aligns B
 * elsewhere, a constant B is given trailing 1-dims so that numpy-style
 * broadcasting means the same. When a rank is unknown before inference, the
 * attributes stay on the node for infer to check against the real ranks. */
static evo_status upgrade_legacy_broadcast(const upgrade_site *s)
{
    evo_node *n = &s->g->nodes[s->node];
    bool legacy = false;
    for (size_t k = 0; k < sizeof upgrade_legacy_broadcast_ops / sizeof(char *); k++)
        legacy |= strcmp(n->op_type, upgrade_legacy_broadcast_ops[k]) == 0;
    if (!legacy || n->opset >= 7)
        return EVO_OK;
    int32_t bi = upgrade_find_attr(n, "broadcast");
    int32_t ai = upgrade_find_attr(n, "axis");
    if (bi >= 0 && n->attrs[bi].type != EVO_ATTR_INT)
        return upgrade_fail(s, EVO_ERR_TYPE, "must be an integer", "broadcast");
    if (ai >= 0 && n->attrs[ai].type != EVO_ATTR_INT)
        return upgrade_fail(s, EVO_ERR_TYPE, "must be an integer", "axis");
    bool broadcast = bi >= 0 && n->attrs[bi].i != 0;
    if (broadcast && ai >= 0) {
        if (n->n_inputs != 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
            return EVO_OK; /* infer reports the arity */
        const evo_value *a = &s->g->values[n->inputs[0]];
        const evo_value *b = &s->g->values[n->inputs[1]];
        if (!(a->flags & EVO_VALUE_HAS_SHAPE) || !(b->flags & EVO_VALUE_HAS_SHAPE))
            return EVO_OK; /* decided by infer once the ranks are known */
        int32_t ra = a->t.shape.rank, rb = b->t.shape.rank;
        int64_t axis = n->attrs[ai].i < 0 ? n->attrs[ai].i + ra : n->attrs[ai].i;
        if (axis < 0 || axis + rb > ra)
            return upgrade_fail(s, EVO_ERR_SHAPE, "does not fit the ranks of the inputs", "axis");
        if (axis + rb < ra) {
            if (!(b->flags & EVO_VALUE_CONST) || b->t.data == NULL)
                return upgrade_fail(s, EVO_ERR_UNSUPPORTED,
                                    "aligns a non-constant B away from the last dims (the legacy "
                                    "broadcast form is only rewritten for constant B)",
                                    "axis");
            evo_status rv = upgrade_pad_const_input(s, 1, ra - (int32_t)axis, "B");
            if (rv != EVO_OK)
                return rv;
            n = &s->g->nodes[s->node];
        }
    }
    /* broadcast=0 required equal shapes, which the new ops accept as well. */
    if (ai >= 0)
        upgrade_remove_attr(n, ai);
    if ((bi = upgrade_find_attr(n, "broadcast")) >= 0)
        upgrade_remove_attr(n, bi);
    return EVO_OK;
}

evo_status evo_opset_upgrade_node(evo_graph *g, int32_t node, const char *file, evo_error *err)
{
    upgrade_site s = {.file = file, .g = g, .node = node, .err = err};
    evo_node *n = &g->nodes[node];
    if (n->domain[0] != '\0')
        return EVO_OK;
    evo_status rv0 = upgrade_legacy_broadcast(&s);
    if (rv0 == EVO_OK)
        rv0 = upgrade_legacy_prelu(&s);
    if (rv0 != EVO_OK)
        return rv0;
    n = &g->nodes[node];

    /* Does any attribute of this node move to an input? (for fill_if_any) */
    bool any_moves = false;
    for (size_t r = 0; r < UPGRADE_N_RULES; r++) {
        const upgrade_rule *rule = &upgrade_rules[r];
        if (upgrade_moves_to_input(rule->kind) && upgrade_applies(rule, n) &&
            upgrade_find_attr(n, rule->attr) >= 0)
            any_moves = true;
    }

    for (size_t r = 0; r < UPGRADE_N_RULES; r++) {
        const upgrade_rule *rule = &upgrade_rules[r];
        if (!upgrade_applies(rule, n))
            continue;
        int32_t ai = upgrade_find_attr(n, rule->attr);
        evo_status rv;
        switch (rule->kind) {
        case UPG_DROP:
            if (ai >= 0)
                upgrade_remove_attr(n, ai);
            break;
        case UPG_DROP_IF_ONE:
            if (ai < 0)
                break;
            if (n->attrs[ai].type != EVO_ATTR_INT || n->attrs[ai].i != 1)
                return upgrade_fail(&s, EVO_ERR_UNSUPPORTED,
                                    "is not 1, and only that form is supported", rule->attr);
            upgrade_remove_attr(n, ai);
            break;
        case UPG_DEFAULT_INT:
            if (ai < 0) {
                evo_attr a;
                memset(&a, 0, sizeof a);
                a.type = EVO_ATTR_INT;
                a.i = (int64_t)rule->fill;
                size_t len = strlen(rule->attr) + 1;
                if ((a.name = malloc(len)) != NULL)
                    memcpy(a.name, rule->attr, len);
                /* evo_node_add_attr owns a.name from here, also on failure */
                if (a.name == NULL || evo_node_add_attr(g, node, &a) != EVO_OK)
                    return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", file);
                n = &g->nodes[node];
            }
            break;
        default: {
            if (ai < 0 && !(rule->fill_if_any && any_moves))
                break;
            int32_t value;
            rv = upgrade_make_input(&s, rule, ai >= 0 ? &n->attrs[ai] : NULL, &value);
            if (rv == EVO_OK)
                rv = upgrade_set_input(&s, rule, value);
            if (rv != EVO_OK)
                return rv;
            n = &g->nodes[node];
            if (ai >= 0)
                upgrade_remove_attr(n, ai);
            break;
        }
        }
    }
    return EVO_OK;
}
