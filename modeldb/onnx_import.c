/*
 * ONNX import: ModelProto (parsed by protobuf-c from modeldb/onnx.proto) ->
 * evo_graph. Values, nodes, attributes, initializers, Constant nodes folded
 * into constants, opset imports, old-opset rewrites (opset_upgrade.c) and
 * structural validation. The file is untrusted: every count, size and name
 * is checked, and every failure is one sentence naming the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx_internal.h"

static char *import_strdup(const char *s)
{
    s = evo_onnx_str(s);
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static evo_status import_nomem(const evo_onnx_ctx *c)
{
    return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory while importing the model",
                         c->file);
}

/* "node 'conv1' (Conv)", or "node #3 (Conv)" for an unnamed node. */
static void import_node_desc(char *buf, size_t cap, const Onnx__NodeProto *np, size_t index)
{
    const char *name = evo_onnx_str(np->name);
    const char *op = evo_onnx_str(np->op_type);
    if (name[0] != '\0')
        snprintf(buf, cap, "node '%s' (%s)", name, op);
    else
        snprintf(buf, cap, "node #%zu (%s)", index, op);
}

/* ai.onnx and the empty string name the same (default) domain. */
static const char *import_norm_domain(const char *domain)
{
    domain = evo_onnx_str(domain);
    return strcmp(domain, "ai.onnx") == 0 ? "" : domain;
}

void evo_onnx_attr_clear(evo_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    if (a->strings != NULL)
        for (size_t i = 0; i < a->count; i++)
            free(a->strings[i]);
    free(a->strings);
    free(a->tensor.data);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- opsets */

static evo_status import_opsets(evo_onnx_ctx *c, const Onnx__ModelProto *m)
{
    evo_graph *g = c->g;
    if (m->n_opset_import == 0)
        return EVO_OK;
    g->opsets = calloc(m->n_opset_import, sizeof(evo_opset_import));
    if (g->opsets == NULL)
        return import_nomem(c);
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *op = m->opset_import[i];
        const char *domain = import_norm_domain(op->domain);
        int64_t version = op->has_version ? op->version : 0;
        if (version < 1 || version > INT32_MAX)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 "%s: the opset import of domain '%s' has invalid version "
                                 "%" PRId64,
                                 c->file, domain, version);
        for (int32_t k = 0; k < g->n_opsets; k++)
            if (strcmp(g->opsets[k].domain, domain) == 0)
                return evo_error_set(c->err, EVO_ERR_PARSE,
                                     "%s: domain '%s' is imported twice (opset_import)", c->file,
                                     domain);
        g->opsets[g->n_opsets].domain = import_strdup(domain);
        if (g->opsets[g->n_opsets].domain == NULL)
            return import_nomem(c);
        g->opsets[g->n_opsets].version = version;
        g->n_opsets++;
    }
    return EVO_OK;
}

static bool import_find_opset(const evo_graph *g, const char *domain, int *version)
{
    for (int32_t k = 0; k < g->n_opsets; k++)
        if (strcmp(g->opsets[k].domain, domain) == 0) {
            *version = (int)g->opsets[k].version;
            return true;
        }
    return false;
}

/* ---------------------------------------------------------------- value types */

enum import_type_mode {
    IMPORT_TYPE_INPUT,  /* graph input: symbolic dims become -1 with dim_params */
    IMPORT_TYPE_OUTPUT, /* graph output: declared facts only when fully numeric */
    IMPORT_TYPE_INFO,   /* value_info: as outputs, and types evo lacks are ignored */
};

/* Apply a ValueInfoProto's type to value v. what names the value. */
static evo_status import_value_type(evo_onnx_ctx *c, const Onnx__ValueInfoProto *vi, int32_t v,
                                    enum import_type_mode mode, const char *what)
{
    const Onnx__TypeProto *tp = vi->type;
    if (tp == NULL)
        return EVO_OK; /* nothing declared */
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || tp->tensor_type == NULL) {
        if (mode == IMPORT_TYPE_INFO)
            return EVO_OK; /* value_info of a sequence or map: not needed */
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s is not a tensor (sequences, maps and optionals are "
                             "unsupported)",
                             c->file, what);
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    evo_dtype dt = EVO_DT_UNDEFINED;
    evo_status rv;
    if (tt->has_elem_type && (rv = evo_onnx_dtype(c, tt->elem_type, what, &dt)) != EVO_OK) {
        if (mode == IMPORT_TYPE_INFO) {
            evo_error_clear(c->err); /* an intermediate of a type evo lacks: infer reports it */
            dt = EVO_DT_UNDEFINED;
        } else {
            return rv;
        }
    }
    evo_value *val = &c->g->values[v];
    if (dt != EVO_DT_UNDEFINED) {
        val->t.dtype = dt;
        val->flags |= EVO_VALUE_HAS_TYPE;
    }
    const Onnx__TensorShapeProto *sp = tt->shape;
    if (sp == NULL)
        return EVO_OK; /* rank unknown */
    if (sp->n_dim > EVO_MAX_RANK) {
        if (mode != IMPORT_TYPE_INPUT)
            return EVO_OK; /* inference will report the op that makes it */
        return evo_error_set(c->err, EVO_ERR_LIMIT,
                             "%s: %s has rank %zu, more than evo's maximum of %d", c->file, what,
                             sp->n_dim, EVO_MAX_RANK);
    }
    evo_shape s = {.rank = (int32_t)sp->n_dim};
    bool symbolic = false;
    for (size_t d = 0; d < sp->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = sp->dim[d];
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dim->dim_value >= 0) {
            if (dim->dim_value > EVO_MAX_DIM) {
                if (mode != IMPORT_TYPE_INPUT)
                    return EVO_OK;
                return evo_error_set(c->err, EVO_ERR_LIMIT,
                                     "%s: %s has size %" PRId64 " in dimension %zu, more than "
                                     "evo's maximum of %d",
                                     c->file, what, dim->dim_value, d, EVO_MAX_DIM);
            }
            s.dims[d] = (int32_t)dim->dim_value;
        } else {
            /* dim_param, no value, or a negative value some exporters use
             * for "unknown": bound later by evo_graph_bind_dims */
            s.dims[d] = -1;
            symbolic = true;
        }
    }
    if (mode != IMPORT_TYPE_INPUT) {
        if (!symbolic) {
            val->t.shape = s;
            val->flags |= EVO_VALUE_HAS_SHAPE;
        }
        return EVO_OK;
    }
    if (symbolic) {
        char **params = calloc(EVO_MAX_RANK, sizeof(char *));
        if (params == NULL)
            return import_nomem(c);
        val->dim_params = params; /* owned by the graph from here on */
        for (int32_t d = 0; d < EVO_MAX_RANK; d++) {
            const char *p = "";
            if (d < s.rank &&
                sp->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                p = evo_onnx_str(sp->dim[d]->dim_param);
            if ((params[d] = import_strdup(p)) == NULL)
                return import_nomem(c);
        }
    }
    val->t.shape = s;
    val->flags |= EVO_VALUE_HAS_SHAPE;
    return EVO_OK;
}

/* ---------------------------------------------------------------- initializers and inputs */

static evo_status import_initializers(evo_onnx_ctx *c, const Onnx__GraphProto *gp)
{
    char what[160];
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = evo_onnx_str(tp->name);
        if (name[0] == '\0')
            return evo_error_set(c->err, EVO_ERR_PARSE, "%s: initializer #%zu has no name", c->file,
                                 i);
        if (evo_graph_find_value(c->g, name) >= 0)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: initializer '%s' is defined twice",
                                 c->file, name);
        snprintf(what, sizeof what, "initializer '%s'", name);
        evo_dtype dt;
        evo_shape s;
        void *data;
        evo_status rv = evo_onnx_decode_tensor(c, tp, what, &dt, &s, &data);
        if (rv != EVO_OK)
            return rv;
        int32_t v;
        if (evo_graph_add_value(c->g, name, &v) != EVO_OK) {
            free(data);
            return import_nomem(c);
        }
        evo_value_set_const(c->g, v, dt, &s, data);
    }
    return EVO_OK;
}

static evo_status import_inputs(evo_onnx_ctx *c, const Onnx__GraphProto *gp)
{
    evo_graph *g = c->g;
    g->inputs = malloc((gp->n_input + 1) * sizeof(int32_t));
    if (g->inputs == NULL)
        return import_nomem(c);
    char what[160];
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *name = evo_onnx_str(gp->input[i]->name);
        if (name[0] == '\0')
            return evo_error_set(c->err, EVO_ERR_PARSE, "%s: graph input #%zu has no name", c->file,
                                 i);
        int32_t v = evo_graph_find_value(g, name);
        if (v >= 0) {
            if (g->values[v].flags & EVO_VALUE_INPUT)
                return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: graph input '%s' is listed twice",
                                     c->file, name);
            continue; /* an initializer: a constant with a default, not fed by the caller */
        }
        if (evo_graph_add_value(g, name, &v) != EVO_OK)
            return import_nomem(c);
        g->values[v].flags |= EVO_VALUE_INPUT;
        g->inputs[g->n_inputs++] = v;
        snprintf(what, sizeof what, "graph input '%s'", name);
        evo_status rv = import_value_type(c, gp->input[i], v, IMPORT_TYPE_INPUT, what);
        if (rv != EVO_OK)
            return rv;
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- attributes */

static evo_status import_attr_type(const Onnx__AttributeProto *ap, int *type)
{
    if (ap->has_type && ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) {
        *type = (int)ap->type;
        return EVO_OK;
    }
    /* IR version 1 files carry no type: derive it from the field that is set. */
    if (ap->has_f)
        *type = EVO_ATTR_FLOAT;
    else if (ap->has_i)
        *type = EVO_ATTR_INT;
    else if (ap->has_s)
        *type = EVO_ATTR_STRING;
    else if (ap->t != NULL)
        *type = EVO_ATTR_TENSOR;
    else if (ap->g != NULL)
        *type = EVO_ATTR_GRAPH;
    else if (ap->n_floats > 0)
        *type = EVO_ATTR_FLOATS;
    else if (ap->n_ints > 0)
        *type = EVO_ATTR_INTS;
    else if (ap->n_strings > 0)
        *type = EVO_ATTR_STRINGS;
    else
        return EVO_ERR_PARSE;
    return EVO_OK;
}

static char *import_bytes_to_str(const ProtobufCBinaryData *b)
{
    char *s = malloc(b->len + 1);
    if (s == NULL)
        return NULL;
    if (b->len > 0)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0'; /* bytes after an embedded NUL are cut, as graph.h says */
    return s;
}

/* Convert one attribute into *a (zeroed by the caller). On failure the
 * caller clears *a. */
static evo_status import_attr(evo_onnx_ctx *c, const Onnx__AttributeProto *ap, const char *node,
                              evo_attr *a)
{
    const char *name = evo_onnx_str(ap->name);
    if (name[0] == '\0')
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: %s has an attribute without a name",
                             c->file, node);
    if ((a->name = import_strdup(name)) == NULL)
        return import_nomem(c);
    int type;
    if (import_attr_type(ap, &type) != EVO_OK)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s has attribute '%s' without a type or value", c->file, node,
                             name);
    switch (type) {
    case EVO_ATTR_FLOAT:
        a->f = ap->f;
        break;
    case EVO_ATTR_INT:
        a->i = ap->i;
        break;
    case EVO_ATTR_STRING:
        if ((a->s = import_bytes_to_str(&ap->s)) == NULL)
            return import_nomem(c);
        break;
    case EVO_ATTR_TENSOR: {
        if (ap->t == NULL)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 "%s: %s has tensor attribute '%s' without a tensor", c->file, node,
                                 name);
        char what[256];
        snprintf(what, sizeof what, "attribute '%s' of %s", name, node);
        evo_status rv = evo_onnx_decode_tensor(c, ap->t, what, &a->tensor.dtype, &a->tensor.shape,
                                               &a->tensor.data);
        if (rv != EVO_OK)
            return rv;
        break;
    }
    case EVO_ATTR_GRAPH:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
        /* Subgraphs are unsupported; the marker lets the op resolver say so. */
        type = EVO_ATTR_GRAPH;
        break;
    case EVO_ATTR_FLOATS:
        a->count = ap->n_floats;
        if ((a->floats = malloc((ap->n_floats + 1) * sizeof(float))) == NULL)
            return import_nomem(c);
        if (ap->n_floats > 0)
            memcpy(a->floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case EVO_ATTR_INTS:
        a->count = ap->n_ints;
        if ((a->ints = malloc((ap->n_ints + 1) * sizeof(int64_t))) == NULL)
            return import_nomem(c);
        if (ap->n_ints > 0)
            memcpy(a->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case EVO_ATTR_STRINGS:
        if ((a->strings = calloc(ap->n_strings + 1, sizeof(char *))) == NULL)
            return import_nomem(c);
        for (size_t k = 0; k < ap->n_strings; k++) {
            if ((a->strings[k] = import_bytes_to_str(&ap->strings[k])) == NULL)
                return import_nomem(c);
            a->count = k + 1;
        }
        break;
    default:
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s has attribute '%s' of ONNX attribute type %d (tensor lists, "
                             "sparse tensors and type protos are unsupported)",
                             c->file, node, name, type);
    }
    a->type = (evo_attr_type)type;
    return EVO_OK;
}

/* ---------------------------------------------------------------- Constant nodes */

/* A Constant node becomes a constant value; no node is kept. */
static evo_status import_constant(evo_onnx_ctx *c, const Onnx__NodeProto *np, const char *node)
{
    if (np->n_input != 0 || np->n_output != 1 || evo_onnx_str(np->output[0])[0] == '\0')
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s must have no inputs and exactly one named output", c->file,
                             node);
    if (np->n_attribute != 1)
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s must have exactly one of the attributes value, value_float, "
                             "value_floats, value_int, value_ints (it has %zu attributes)",
                             c->file, node, np->n_attribute);
    const Onnx__AttributeProto *ap = np->attribute[0];
    const char *an = evo_onnx_str(ap->name);
    const char *out = np->output[0];
    evo_dtype dt;
    evo_shape s = {0};
    void *data = NULL;
    evo_status rv;
    if (strcmp(an, "value") == 0) {
        if (ap->t == NULL)
            return evo_error_set(c->err, EVO_ERR_PARSE,
                                 "%s: %s has a 'value' attribute without a tensor", c->file, node);
        char what[256];
        snprintf(what, sizeof what, "the value of %s", node);
        if ((rv = evo_onnx_decode_tensor(c, ap->t, what, &dt, &s, &data)) != EVO_OK)
            return rv;
    } else if (strcmp(an, "value_float") == 0 || strcmp(an, "value_int") == 0) {
        bool is_float = an[6] == 'f';
        dt = is_float ? EVO_DT_FLOAT32 : EVO_DT_INT64;
        if ((data = malloc(evo_dtype_size(dt))) == NULL)
            return import_nomem(c);
        if (is_float)
            *(float *)data = ap->f;
        else
            *(int64_t *)data = ap->i;
    } else if (strcmp(an, "value_floats") == 0 || strcmp(an, "value_ints") == 0) {
        bool is_float = an[6] == 'f';
        size_t n = is_float ? ap->n_floats : ap->n_ints;
        if (n > (size_t)EVO_MAX_DIM)
            return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: %s has too many values", c->file,
                                 node);
        dt = is_float ? EVO_DT_FLOAT32 : EVO_DT_INT64;
        s.rank = 1;
        s.dims[0] = (int32_t)n;
        if ((data = malloc(n * evo_dtype_size(dt) + 1)) == NULL)
            return import_nomem(c);
        if (n > 0)
            memcpy(data, is_float ? (const void *)ap->floats : (const void *)ap->ints,
                   n * evo_dtype_size(dt));
    } else if (strcmp(an, "value_string") == 0 || strcmp(an, "value_strings") == 0 ||
               strcmp(an, "sparse_value") == 0) {
        return evo_error_set(c->err, EVO_ERR_UNSUPPORTED,
                             "%s: %s uses attribute '%s' (string and sparse constants are "
                             "unsupported)",
                             c->file, node, an);
    } else {
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: %s has unknown attribute '%s'", c->file,
                             node, an);
    }
    int32_t v;
    if (evo_graph_get_or_add_value(c->g, out, &v) != EVO_OK) {
        free(data);
        return import_nomem(c);
    }
    if (c->g->values[v].flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST)) {
        free(data);
        return evo_error_set(
            c->err, EVO_ERR_GRAPH, "%s: tensor '%s' is defined twice (%s writes a %s)", c->file,
            out, node, (c->g->values[v].flags & EVO_VALUE_INPUT) ? "graph input" : "constant");
    }
    evo_value_set_const(c->g, v, dt, &s, data);
    return EVO_OK;
}

/* ---------------------------------------------------------------- nodes */

/* Map node input or output names to value indices; "" (absent optional) is -1. */
static evo_status import_names(evo_onnx_ctx *c, char **names, size_t n, int32_t *idx)
{
    for (size_t k = 0; k < n; k++) {
        const char *name = evo_onnx_str(names[k]);
        idx[k] = -1;
        if (name[0] != '\0' && evo_graph_get_or_add_value(c->g, name, &idx[k]) != EVO_OK)
            return import_nomem(c);
    }
    return EVO_OK;
}

static evo_status import_node(evo_onnx_ctx *c, const Onnx__NodeProto *np, size_t index)
{
    char node[200];
    import_node_desc(node, sizeof node, np, index);
    const char *op_type = evo_onnx_str(np->op_type);
    const char *domain = import_norm_domain(np->domain);
    if (op_type[0] == '\0')
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: node #%zu has no op_type", c->file, index);
    if (domain[0] == '\0' && strcmp(op_type, "Constant") == 0)
        return import_constant(c, np, node);

    int opset;
    if (!import_find_opset(c->g, domain, &opset))
        return evo_error_set(c->err, EVO_ERR_PARSE,
                             "%s: %s uses domain '%s', but the model has no opset import for it",
                             c->file, node, domain[0] ? domain : "ai.onnx");
    if (np->n_input > INT32_MAX / 2 || np->n_output > INT32_MAX / 2)
        return evo_error_set(c->err, EVO_ERR_LIMIT, "%s: %s has too many inputs or outputs",
                             c->file, node);

    int32_t *idx = malloc((np->n_input + np->n_output + 1) * sizeof(int32_t));
    if (idx == NULL)
        return import_nomem(c);
    int32_t *in = idx, *out = idx + np->n_input;
    evo_status rv = import_names(c, np->input, np->n_input, in);
    if (rv == EVO_OK)
        rv = import_names(c, np->output, np->n_output, out);
    for (size_t k = 0; rv == EVO_OK && k < np->n_output; k++) {
        if (out[k] < 0)
            continue;
        const evo_value *v = &c->g->values[out[k]];
        if (v->flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST))
            rv = evo_error_set(c->err, EVO_ERR_GRAPH,
                               "%s: %s writes tensor '%s', which is already a graph %s", c->file,
                               node, v->name, (v->flags & EVO_VALUE_INPUT) ? "input" : "constant");
    }
    int32_t ni = -1;
    if (rv == EVO_OK &&
        evo_graph_add_node(c->g, op_type, domain, np->name, in, (int32_t)np->n_input, out,
                           (int32_t)np->n_output, &ni) != EVO_OK)
        rv = import_nomem(c);
    free(idx);
    if (rv != EVO_OK)
        return rv;
    c->g->nodes[ni].opset = opset;

    for (size_t k = 0; k < np->n_attribute; k++) {
        evo_attr a;
        memset(&a, 0, sizeof a);
        if ((rv = import_attr(c, np->attribute[k], node, &a)) != EVO_OK) {
            evo_onnx_attr_clear(&a);
            return rv;
        }
        if (evo_node_attr(&c->g->nodes[ni], a.name) != NULL) {
            rv = evo_error_set(c->err, EVO_ERR_PARSE, "%s: %s has attribute '%s' twice", c->file,
                               node, a.name);
            evo_onnx_attr_clear(&a);
            return rv;
        }
        if (evo_node_add_attr(c->g, ni, &a) != EVO_OK) /* takes a's pointers */
            return import_nomem(c);
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- outputs and value_info */

static evo_status import_outputs(evo_onnx_ctx *c, const Onnx__GraphProto *gp)
{
    evo_graph *g = c->g;
    g->outputs = malloc((gp->n_output + 1) * sizeof(int32_t));
    if (g->outputs == NULL)
        return import_nomem(c);
    char what[160];
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = evo_onnx_str(gp->output[i]->name);
        if (name[0] == '\0')
            return evo_error_set(c->err, EVO_ERR_PARSE, "%s: graph output #%zu has no name",
                                 c->file, i);
        int32_t v;
        if (evo_graph_get_or_add_value(g, name, &v) != EVO_OK)
            return import_nomem(c);
        if (g->values[v].flags & EVO_VALUE_OUTPUT)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: graph output '%s' is listed twice",
                                 c->file, name);
        g->values[v].flags |= EVO_VALUE_OUTPUT;
        g->outputs[g->n_outputs++] = v;
        if (g->values[v].flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST))
            continue; /* the input's or constant's own facts stand */
        snprintf(what, sizeof what, "graph output '%s'", name);
        evo_status rv = import_value_type(c, gp->output[i], v, IMPORT_TYPE_OUTPUT, what);
        if (rv != EVO_OK)
            return rv;
    }
    return EVO_OK;
}

static evo_status import_value_info(evo_onnx_ctx *c, const Onnx__GraphProto *gp)
{
    char what[160];
    for (size_t i = 0; i < gp->n_value_info; i++) {
        int32_t v = evo_graph_find_value(c->g, evo_onnx_str(gp->value_info[i]->name));
        /* Facts about tensors no node uses are of no interest. */
        if (v < 0 || (c->g->values[v].flags & (EVO_VALUE_INPUT | EVO_VALUE_CONST)))
            continue;
        snprintf(what, sizeof what, "value_info '%s'", c->g->values[v].name);
        evo_status rv = import_value_type(c, gp->value_info[i], v, IMPORT_TYPE_INFO, what);
        if (rv != EVO_OK)
            return rv;
    }
    return EVO_OK;
}

/* ---------------------------------------------------------------- model */

static evo_status import_model(evo_onnx_ctx *c, const Onnx__ModelProto *m)
{
    evo_graph *g = c->g;
    evo_status rv;
    const Onnx__GraphProto *gp = m->graph;
    if (gp == NULL)
        return evo_error_set(c->err, EVO_ERR_PARSE, "%s: not a valid ONNX model (it has no graph)",
                             c->file);
    g->ir_version = m->has_ir_version ? m->ir_version : 0;
    if ((g->source_path = import_strdup(c->file)) == NULL ||
        (g->name = import_strdup(gp->name)) == NULL ||
        (g->producer_name = import_strdup(m->producer_name)) == NULL)
        return import_nomem(c);
    if ((rv = import_opsets(c, m)) != EVO_OK)
        return rv;
    if (gp->n_node > (size_t)c->lim.max_nodes)
        return evo_error_set(c->err, EVO_ERR_LIMIT,
                             "%s: the graph has %zu nodes, more than the limit of %" PRId32,
                             c->file, gp->n_node, c->lim.max_nodes);
    if ((rv = import_initializers(c, gp)) != EVO_OK || (rv = import_inputs(c, gp)) != EVO_OK)
        return rv;
    for (size_t i = 0; i < gp->n_node; i++)
        if ((rv = import_node(c, gp->node[i], i)) != EVO_OK)
            return rv;
    if ((rv = import_outputs(c, gp)) != EVO_OK || (rv = import_value_info(c, gp)) != EVO_OK)
        return rv;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if ((rv = evo_opset_upgrade_node(g, i, c->file, c->err)) != EVO_OK)
            return rv;
    return evo_graph_validate(g, c->err);
}

static void import_limits(const evo_import_options *opt, evo_import_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    if (opt != NULL)
        *lim = opt->limits;
    if (lim->max_file_bytes == 0)
        lim->max_file_bytes = EVO_ONNX_DEFAULT_MAX_FILE_BYTES;
    if (lim->max_tensor_bytes == 0)
        lim->max_tensor_bytes = EVO_ONNX_DEFAULT_MAX_TENSOR_BYTES;
    if (lim->max_nodes <= 0)
        lim->max_nodes = EVO_ONNX_DEFAULT_MAX_NODES;
}

evo_status evo_onnx_load_buffer(const void *buf, size_t len, const char *base_dir, const char *name,
                                const evo_import_options *opt, evo_graph **out, evo_error *err)
{
    evo_onnx_ctx c = {.file = name ? name : "<memory>", .base_dir = base_dir, .err = err};
    if (out == NULL || (buf == NULL && len > 0))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "%s: evo_onnx_load_buffer needs a buffer and an output pointer",
                             c.file);
    *out = NULL;
    import_limits(opt, &c.lim);
    if ((uint64_t)len > c.lim.max_file_bytes)
        return evo_error_set(err, EVO_ERR_LIMIT,
                             "%s: the model is %zu bytes, more than the limit of %" PRIu64, c.file,
                             len, c.lim.max_file_bytes);
    evo_status rv = evo_onnx_check_nesting(buf, len);
    if (rv != EVO_OK)
        return evo_error_set(err, rv,
                             "%s: not a valid ONNX model (subgraphs nested more than %d deep)",
                             c.file, EVO_ONNX_MAX_NESTING);
    static const uint8_t empty = 0;
    Onnx__ModelProto *m =
        onnx__model_proto__unpack(NULL, len, len > 0 ? (const uint8_t *)buf : &empty);
    if (m == NULL)
        return evo_error_set(err, EVO_ERR_PARSE,
                             "%s: not a valid ONNX model (protobuf parse failed)", c.file);
    if ((c.g = evo_graph_new()) == NULL) {
        onnx__model_proto__free_unpacked(m, NULL);
        return import_nomem(&c);
    }
    rv = import_model(&c, m);
    onnx__model_proto__free_unpacked(m, NULL);
    if (rv != EVO_OK) {
        evo_graph_free(c.g);
        return rv;
    }
    *out = c.g;
    return EVO_OK;
}

evo_status evo_onnx_load(const char *path, const evo_import_options *opt, evo_graph **out,
                         evo_error *err)
{
    if (path == NULL || out == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "evo_onnx_load needs a path and an output pointer");
    *out = NULL;
    evo_import_limits lim;
    import_limits(opt, &lim);

    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot open the model file (%s)", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_IO, "%s: the model path is not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > lim.max_file_bytes ||
        (uint64_t)st.st_size > SIZE_MAX - 1) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_LIMIT,
                             "%s: the model file is %lld bytes, more than the limit of %" PRIu64,
                             path, (long long)st.st_size, lim.max_file_bytes);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = malloc(size + 1);
    if (buf == NULL) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory reading the model (%zu bytes)",
                             path, size);
    }
    size_t got = fread(buf, 1, size, f);
    /* One byte more than stat said must not be there: the file must not
     * change while it is read. */
    bool exact = got == size && fgetc(f) == EOF && !ferror(f);
    fclose(f);
    if (!exact) {
        free(buf);
        return evo_error_set(err, EVO_ERR_IO, "%s: could not read the whole model file", path);
    }

    /* External data lives next to the model. */
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL) {
        dir = import_strdup(".");
    } else {
        size_t n = (size_t)(slash - path);
        dir = malloc(n + 2);
        if (dir != NULL) {
            if (n == 0)
                dir[n++] = '/'; /* a model in the root directory */
            else
                memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (dir == NULL) {
        free(buf);
        return evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", path);
    }
    evo_status rv = evo_onnx_load_buffer(buf, size, dir, path, opt, out, err);
    free(dir);
    free(buf);
    return rv;
}
