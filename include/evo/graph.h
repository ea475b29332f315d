/*
 * evo graph IR: the one in-memory model representation that the importer
 * builds, the passes rewrite, the planner and partitioner read, and the
 * executor runs (after compilation to a program, see node.h).
 *
 * Ownership: an evo_graph owns everything reachable from it (names, attribute
 * arrays, constant data), all allocated with malloc. evo_graph_free() releases
 * it all. Accessors return borrowed pointers that stay valid until the graph
 * is modified or freed. This part is hosted code (it allocates); the attribute
 * readers (evo_attr_*) are portable and used by op parse functions.
 *
 * Indices: tensors and nodes are addressed by int32 index into g->values and
 * g->nodes. An absent optional input is the index -1.
 */
#ifndef EVO_GRAPH_H
#define EVO_GRAPH_H

#include "evo/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- attributes */

typedef enum evo_attr_type {
    EVO_ATTR_UNDEFINED = 0,
    EVO_ATTR_FLOAT = 1, /* numbers as in ONNX AttributeProto.AttributeType */
    EVO_ATTR_INT = 2,
    EVO_ATTR_STRING = 3,
    EVO_ATTR_TENSOR = 4,
    EVO_ATTR_GRAPH = 5, /* kept as a marker only; subgraphs are unsupported */
    EVO_ATTR_FLOATS = 6,
    EVO_ATTR_INTS = 7,
    EVO_ATTR_STRINGS = 8,
} evo_attr_type;

typedef struct evo_attr {
    char *name;
    evo_attr_type type;
    int64_t i;      /* INT */
    float f;        /* FLOAT */
    char *s;        /* STRING (NUL-terminated; bytes with NUL are cut) */
    int64_t *ints;  /* INTS, count entries */
    float *floats;  /* FLOATS, count entries */
    char **strings; /* STRINGS, count entries */
    size_t count;
    evo_tensor tensor; /* TENSOR: dtype, shape, owned data */
} evo_attr;

/* ---------------------------------------------------------------- values */

/* A value is a tensor of the graph: an input, a constant (initializer or
 * folded), or a node output. */
enum {
    EVO_VALUE_CONST = 1u << 0,     /* t.data holds the (owned) constant data */
    EVO_VALUE_INPUT = 1u << 1,     /* a graph input the caller feeds */
    EVO_VALUE_OUTPUT = 1u << 2,    /* a graph output */
    EVO_VALUE_HAS_TYPE = 1u << 3,  /* t.dtype is known */
    EVO_VALUE_HAS_SHAPE = 1u << 4, /* t.shape is known and static */
};

/* Symbolic dimension names as they appear on graph inputs (before binding). */
typedef struct evo_value {
    char *name;
    evo_tensor t; /* dtype, shape, and data when CONST */
    uint32_t flags;
    int32_t producer; /* node index that writes it, or -1 */
    /* For graph inputs only: the symbolic name of each dim ("" if numeric or
     * unnamed, NULL array if none), and -1 in t.shape.dims for unbound dims
     * until evo_graph_bind_dims() runs. */
    char **dim_params;
} evo_value;

/* ---------------------------------------------------------------- nodes */

#define EVO_PARAMS_MAX 256 /* bytes of parsed op parameters per node */

typedef struct evo_node {
    char *name;      /* may be "" */
    char *op_type;   /* ONNX op_type, e.g. "Conv" */
    char *domain;    /* "" for the default ONNX domain */
    int opset;       /* opset version of the node's domain */
    int32_t *inputs; /* value indices; -1 = absent optional input */
    int32_t n_inputs;
    int32_t *outputs; /* value indices; -1 = absent optional output */
    int32_t n_outputs;
    evo_attr *attrs;
    int32_t n_attrs;
    /* Filled by evo_graph_resolve_ops (modeldb): the op definition, or NULL if
     * evo has no kernel for it; and the op's parsed parameters. */
    const struct evo_op_def *op;
    _Alignas(8) unsigned char params[EVO_PARAMS_MAX];
} evo_node;

/* ---------------------------------------------------------------- graph */

typedef struct evo_opset_import {
    char *domain; /* "" = ai.onnx */
    int64_t version;
} evo_opset_import;

typedef struct evo_graph {
    char *name;
    char *source_path; /* file the graph came from, for messages */
    evo_value *values;
    int32_t n_values, cap_values;
    evo_node *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *inputs; /* graph inputs the caller feeds (no initializers) */
    int32_t n_inputs;
    int32_t *outputs;
    int32_t n_outputs;
    int32_t *order; /* topological order of node indices */
    int32_t n_order;
    evo_opset_import *opsets;
    int32_t n_opsets;
    int64_t ir_version;
    char *producer_name;
    /* private: name -> value index hash (open addressing), kept by
     * evo_graph_add_value. */
    int32_t *name_slots;
    uint32_t n_name_slots;
} evo_graph;

/* Create an empty graph; NULL on allocation failure. */
evo_graph *evo_graph_new(void);
/* Free the graph and everything it owns. NULL is fine. */
void evo_graph_free(evo_graph *g);

/* Find a value by name; -1 if absent. Hashed. */
int32_t evo_graph_find_value(const evo_graph *g, const char *name);

/* Add a value with a copy of `name`; returns its index in *out_index.
 * EVO_ERR_GRAPH if the name exists already. */
evo_status evo_graph_add_value(evo_graph *g, const char *name, int32_t *out_index);
/* The value named `name`, created if missing. */
evo_status evo_graph_get_or_add_value(evo_graph *g, const char *name, int32_t *out_index);

/* Add a node (op_type/domain/name copied; inputs/outputs are value indices,
 * copied). Attributes are added with evo_node_add_attr afterwards. */
evo_status evo_graph_add_node(evo_graph *g, const char *op_type, const char *domain,
                              const char *name, const int32_t *inputs, int32_t n_inputs,
                              const int32_t *outputs, int32_t n_outputs, int32_t *out_index);

/* Append an attribute; the graph takes ownership of every pointer inside
 * *attr (name, s, ints, floats, strings, tensor.data), also on failure. */
evo_status evo_node_add_attr(evo_graph *g, int32_t node, evo_attr *attr);

/* Give a value constant data. Takes ownership of `data` (malloc'd, exactly
 * evo_shape_nbytes bytes), also on failure. */
evo_status evo_value_set_const(evo_graph *g, int32_t value, evo_dtype dtype, const evo_shape *shape,
                               void *data);

/* Recompute producers, check that every node input is defined (a graph
 * input, constant, or some node's output), that no value has two producers,
 * and compute a topological order (g->order). EVO_ERR_GRAPH with the node and
 * tensor named on a cycle, an undefined input or a double definition. */
evo_status evo_graph_validate(evo_graph *g, evo_error *err);

/* Bind symbolic input dims: each "NAME=VALUE" entry sets every dim whose
 * dim_param is NAME; remaining unnamed or unbound dims become 1 when they are
 * the first dim (batch), else EVO_ERR_SHAPE naming the input and dim. */
typedef struct evo_dim_binding {
    const char *name;
    int64_t value;
} evo_dim_binding;
evo_status evo_graph_bind_dims(evo_graph *g, const evo_dim_binding *dims, size_t n_dims,
                               evo_error *err);

/* ---------------------------------------------------------------- attributes (portable readers) */

/* Find an attribute by name; NULL if absent. */
const evo_attr *evo_node_attr(const evo_node *n, const char *name);
/* Readers with defaults. A present attribute of the wrong type is an error:
 * these return EVO_ERR_TYPE and leave *out untouched. */
evo_status evo_attr_get_int(const evo_node *n, const char *name, int64_t def, int64_t *out);
evo_status evo_attr_get_float(const evo_node *n, const char *name, float def, float *out);
/* *out is borrowed (points into the node) or `def`. */
evo_status evo_attr_get_string(const evo_node *n, const char *name, const char *def,
                               const char **out);
/* Copies up to cap entries into out; *count receives the attribute's length
 * (0 if absent). EVO_ERR_LIMIT if longer than cap. */
evo_status evo_attr_get_ints(const evo_node *n, const char *name, int64_t *out, size_t cap,
                             size_t *count);
evo_status evo_attr_get_floats(const evo_node *n, const char *name, float *out, size_t cap,
                               size_t *count);

#ifdef __cplusplus
}
#endif
#endif /* EVO_GRAPH_H */
