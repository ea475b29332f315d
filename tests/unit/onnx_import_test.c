/*
 * Tests of the ONNX importer (modeldb/onnx_*.c, modeldb/opset_upgrade.c).
 * Models are built in memory with the protobuf-c structs generated from
 * modeldb/onnx.proto, packed to bytes and imported, so every feature and every
 * bad input is exercised through the same path as a file. The last test loads
 * every model of ../shared (skipped when it is absent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evo/modeldb.h"
#include "onnx.pb-c.h"

/* ---------------------------------------------------------------- model builder */

/* Every allocation of a test's model goes here and is released by tb_reset. */
static void *tb_ptrs[8192];
static int tb_n;

static void *tb_alloc(size_t n)
{
    assert_true(tb_n < (int)(sizeof tb_ptrs / sizeof tb_ptrs[0]));
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    tb_ptrs[tb_n++] = p;
    return p;
}

static char *tb_str(const char *s)
{
    char *d = tb_alloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static int tb_reset(void **state)
{
    (void)state;
    for (int i = 0; i < tb_n; i++)
        free(tb_ptrs[i]);
    tb_n = 0;
    return 0;
}

#define TB_CAP 64 /* entries of each repeated field the builder uses */

static Onnx__ModelProto *mk_model(int64_t opset)
{
    Onnx__ModelProto *m = tb_alloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->producer_name = tb_str("evo-test");
    m->opset_import = tb_alloc(TB_CAP * sizeof(void *));
    if (opset > 0) {
        Onnx__OperatorSetIdProto *op = tb_alloc(sizeof *op);
        onnx__operator_set_id_proto__init(op);
        op->domain = tb_str("");
        op->has_version = 1;
        op->version = opset;
        m->opset_import[m->n_opset_import++] = op;
    }
    Onnx__GraphProto *g = tb_alloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = tb_str("test_graph");
    g->node = tb_alloc(TB_CAP * sizeof(void *));
    g->initializer = tb_alloc(TB_CAP * sizeof(void *));
    g->input = tb_alloc(TB_CAP * sizeof(void *));
    g->output = tb_alloc(TB_CAP * sizeof(void *));
    g->value_info = tb_alloc(TB_CAP * sizeof(void *));
    m->graph = g;
    return m;
}

static void add_opset(Onnx__ModelProto *m, const char *domain, int64_t version)
{
    Onnx__OperatorSetIdProto *op = tb_alloc(sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = tb_str(domain);
    op->has_version = 1;
    op->version = version;
    m->opset_import[m->n_opset_import++] = op;
}

static Onnx__TensorProto *mk_tensor(const char *name, int dtype, int rank, const int64_t *dims)
{
    Onnx__TensorProto *t = tb_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tb_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = tb_alloc(((size_t)rank + 1) * sizeof(int64_t));
    if (rank > 0)
        memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    return t;
}

static void t_raw(Onnx__TensorProto *t, const void *data, size_t n)
{
    t->has_raw_data = 1;
    t->raw_data.len = n;
    t->raw_data.data = tb_alloc(n);
    if (n > 0)
        memcpy(t->raw_data.data, data, n);
}

static Onnx__TensorProto *mk_f32(const char *name, int rank, const int64_t *dims, const float *vals,
                                 size_t n)
{
    Onnx__TensorProto *t = mk_tensor(name, 1, rank, dims);
    t_raw(t, vals, n * sizeof(float));
    return t;
}

/* A tensor ValueInfo; dims < 0 become the symbolic dim params[k] (or an
 * unnamed dim when params[k] is NULL). rank < 0: no shape at all. */
static Onnx__ValueInfoProto *mk_vi(const char *name, int elem, int rank, const int64_t *dims,
                                   const char *const *params)
{
    Onnx__ValueInfoProto *vi = tb_alloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = tb_str(name);
    Onnx__TypeProto *tp = tb_alloc(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = tb_alloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sp = tb_alloc(sizeof *sp);
        onnx__tensor_shape_proto__init(sp);
        sp->n_dim = (size_t)rank;
        sp->dim = tb_alloc(((size_t)rank + 1) * sizeof(void *));
        for (int d = 0; d < rank; d++) {
            Onnx__TensorShapeProto__Dimension *dim = tb_alloc(sizeof *dim);
            onnx__tensor_shape_proto__dimension__init(dim);
            if (dims[d] >= 0) {
                dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                dim->dim_value = dims[d];
            } else if (params != NULL && params[d] != NULL) {
                dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                dim->dim_param = tb_str(params[d]);
            }
            sp->dim[d] = dim;
        }
        tt->shape = sp;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

/* Split "a,,b" into {"a", "", "b"}. */
static char **tb_split(const char *list, size_t *n)
{
    *n = 0;
    if (list == NULL || list[0] == '\0')
        return tb_alloc(sizeof(char *));
    size_t cnt = 1;
    for (const char *p = list; *p; p++)
        cnt += *p == ',';
    char **out = tb_alloc(cnt * sizeof(char *));
    const char *p = list;
    for (size_t k = 0; k < cnt; k++) {
        size_t len = strcspn(p, ",");
        out[k] = tb_alloc(len + 1);
        memcpy(out[k], p, len);
        p += len + (p[len] == ',');
    }
    *n = cnt;
    return out;
}

static Onnx__NodeProto *mk_node(Onnx__ModelProto *m, const char *op, const char *name,
                                const char *ins, const char *outs)
{
    Onnx__NodeProto *n = tb_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = tb_str(op);
    n->name = tb_str(name);
    n->input = tb_split(ins, &n->n_input);
    n->output = tb_split(outs, &n->n_output);
    n->attribute = tb_alloc(TB_CAP * sizeof(void *));
    m->graph->node[m->graph->n_node++] = n;
    return n;
}

static Onnx__AttributeProto *mk_attr(Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = tb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tb_str(name);
    a->has_type = 1;
    a->type = (Onnx__AttributeProto__AttributeType)type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_float(Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, size_t cnt, const int64_t *v)
{
    Onnx__AttributeProto *a = mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = cnt;
    a->ints = tb_alloc(cnt * sizeof(int64_t) + 1);
    if (cnt > 0)
        memcpy(a->ints, v, cnt * sizeof(int64_t));
}

static void attr_floats(Onnx__NodeProto *n, const char *name, size_t cnt, const float *v)
{
    Onnx__AttributeProto *a = mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = cnt;
    a->floats = tb_alloc(cnt * sizeof(float) + 1);
    if (cnt > 0)
        memcpy(a->floats, v, cnt * sizeof(float));
}

static void attr_string(Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)tb_str(v);
}

static void attr_tensor(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
    Onnx__AttributeProto *a = mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

static void add_init(Onnx__ModelProto *m, Onnx__TensorProto *t)
{
    m->graph->initializer[m->graph->n_initializer++] = t;
}

static void add_input(Onnx__ModelProto *m, Onnx__ValueInfoProto *vi)
{
    m->graph->input[m->graph->n_input++] = vi;
}

static void add_output(Onnx__ModelProto *m, Onnx__ValueInfoProto *vi)
{
    m->graph->output[m->graph->n_output++] = vi;
}

static uint8_t *pack(const Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = tb_alloc(*len);
    assert_int_equal(onnx__model_proto__pack(m, buf), *len);
    return buf;
}

static evo_status load(const Onnx__ModelProto *m, const char *base_dir, evo_graph **g,
                       evo_error *err)
{
    size_t len;
    uint8_t *buf = pack(m, &len);
    evo_error_clear(err);
    return evo_onnx_load_buffer(buf, len, base_dir, "mem.onnx", NULL, g, err);
}

/* An import that must fail with `code`, leaving *out NULL and a one-sentence
 * message that names the model and contains `needle`. */
static void expect_fail_opt(const Onnx__ModelProto *m, const evo_import_options *opt,
                            evo_status code, const char *needle)
{
    size_t len;
    uint8_t *buf = pack(m, &len);
    evo_graph *g = (evo_graph *)(uintptr_t)1;
    evo_error err;
    evo_error_clear(&err);
    evo_status rv = evo_onnx_load_buffer(buf, len, NULL, "mem.onnx", opt, &g, &err);
    if (rv != code || strstr(err.msg, needle) == NULL)
        print_error("got %s: %s\n", evo_strerror(rv), err.msg);
    assert_int_equal(rv, code);
    assert_int_equal(err.code, code);
    assert_null(g);
    assert_true(strncmp(err.msg, "mem.onnx: ", 10) == 0);
    assert_non_null(strstr(err.msg, needle));
    assert_null(strchr(err.msg, '\n'));
}

static void expect_fail(const Onnx__ModelProto *m, evo_status code, const char *needle)
{
    expect_fail_opt(m, NULL, code, needle);
}

static const evo_value *val(const evo_graph *g, const char *name)
{
    int32_t v = evo_graph_find_value(g, name);
    if (v < 0)
        print_error("no value '%s'\n", name);
    assert_true(v >= 0);
    return &g->values[v];
}

/* A model X -> Relu -> Y used as a base by many tests. */
static Onnx__ModelProto *mk_relu_model(void)
{
    Onnx__ModelProto *m = mk_model(13);
    int64_t d[2] = {2, 3};
    add_input(m, mk_vi("X", 1, 2, d, NULL));
    mk_node(m, "Relu", "relu", "X", "Y");
    add_output(m, mk_vi("Y", 1, 2, d, NULL));
    return m;
}

/* ---------------------------------------------------------------- features */

static void test_basic_graph(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_model(13);
    int64_t xd[3] = {-1, 3, -1};
    const char *xp[3] = {"batch", NULL, NULL};
    add_input(m, mk_vi("X", 1, 3, xd, xp));
    int64_t wd[2] = {4, 2};
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    add_init(m, mk_f32("W", 2, wd, w, 8));
    add_input(m, mk_vi("W", 1, 2, wd, NULL));       /* an initializer listed as input */
    add_input(m, mk_vi("free", 7, -1, NULL, NULL)); /* no shape at all */
    mk_node(m, "MatMul", "mm", "X,W", "H");
    mk_node(m, "Relu", "", "H", "Y");
    int64_t yd[3] = {-1, 3, 2};
    const char *yp[3] = {"batch", NULL, NULL};
    add_output(m, mk_vi("Y", 1, 3, yd, yp));
    int64_t hd[3] = {1, 3, 2};
    m->graph->value_info[m->graph->n_value_info++] = mk_vi("H", 1, 3, hd, NULL);

    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_string_equal(g->name, "test_graph");
    assert_string_equal(g->source_path, "mem.onnx");
    assert_string_equal(g->producer_name, "evo-test");
    assert_int_equal(g->ir_version, 8);
    assert_int_equal(g->n_opsets, 1);
    assert_string_equal(g->opsets[0].domain, "");
    assert_int_equal(g->opsets[0].version, 13);

    assert_int_equal(g->n_inputs, 2);
    const evo_value *x = &g->values[g->inputs[0]];
    assert_string_equal(x->name, "X");
    assert_int_equal(x->flags & (EVO_VALUE_INPUT | EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE),
                     EVO_VALUE_INPUT | EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE);
    assert_int_equal(x->t.dtype, EVO_DT_FLOAT32);
    assert_int_equal(x->t.shape.rank, 3);
    assert_int_equal(x->t.shape.dims[0], -1);
    assert_int_equal(x->t.shape.dims[1], 3);
    assert_int_equal(x->t.shape.dims[2], -1);
    assert_non_null(x->dim_params);
    assert_string_equal(x->dim_params[0], "batch");
    assert_string_equal(x->dim_params[1], "");
    assert_string_equal(x->dim_params[2], "");
    for (int d = 3; d < EVO_MAX_RANK; d++)
        assert_string_equal(x->dim_params[d], "");

    const evo_value *fr = &g->values[g->inputs[1]];
    assert_string_equal(fr->name, "free");
    assert_true(fr->flags & EVO_VALUE_HAS_TYPE);
    assert_int_equal(fr->t.dtype, EVO_DT_INT64);
    assert_false(fr->flags & EVO_VALUE_HAS_SHAPE);
    assert_null(fr->dim_params);

    const evo_value *wv = val(g, "W");
    assert_true(wv->flags & EVO_VALUE_CONST);
    assert_false(wv->flags & EVO_VALUE_INPUT);
    assert_int_equal(wv->t.shape.rank, 2);
    assert_int_equal(wv->t.shape.dims[0], 4);
    assert_memory_equal(wv->t.data, w, sizeof w);

    /* value_info: a declared fact; output with a symbolic dim: type only */
    const evo_value *h = val(g, "H");
    assert_true(h->flags & EVO_VALUE_HAS_SHAPE);
    assert_int_equal(h->t.shape.dims[2], 2);
    const evo_value *y = val(g, "Y");
    assert_int_equal(g->n_outputs, 1);
    assert_int_equal(g->outputs[0], evo_graph_find_value(g, "Y"));
    assert_true(y->flags & EVO_VALUE_OUTPUT);
    assert_true(y->flags & EVO_VALUE_HAS_TYPE);
    assert_false(y->flags & EVO_VALUE_HAS_SHAPE);
    assert_null(y->dim_params);

    assert_int_equal(g->n_nodes, 2);
    const evo_node *mm = &g->nodes[0];
    assert_string_equal(mm->op_type, "MatMul");
    assert_string_equal(mm->domain, "");
    assert_string_equal(mm->name, "mm");
    assert_int_equal(mm->opset, 13);
    assert_int_equal(mm->n_inputs, 2);
    assert_int_equal(mm->inputs[0], evo_graph_find_value(g, "X"));
    assert_int_equal(mm->inputs[1], evo_graph_find_value(g, "W"));
    assert_int_equal(mm->outputs[0], evo_graph_find_value(g, "H"));
    assert_string_equal(g->nodes[1].name, "");
    assert_int_equal(g->n_order, 2);
    assert_int_equal(g->order[0], 0);
    assert_int_equal(g->order[1], 1);
    assert_int_equal(h->producer, 0);
    assert_int_equal(y->producer, 1);
    evo_graph_free(g);
}

/* Nodes in reverse file order still get a topological order. */
static void test_unsorted_nodes(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_model(13);
    int64_t d[1] = {4};
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    mk_node(m, "Relu", "second", "H", "Y");
    mk_node(m, "Neg", "first", "X", "H");
    add_output(m, mk_vi("Y", 1, 1, d, NULL));
    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->n_order, 2);
    assert_string_equal(g->nodes[g->order[0]].name, "first");
    assert_string_equal(g->nodes[g->order[1]].name, "second");
    evo_graph_free(g);
}

static void test_typed_initializers(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_relu_model();
    int64_t d3[1] = {3};
    Onnx__TensorProto *t;

    t = mk_tensor("f32", 1, 1, d3);
    static float fv[3] = {1.5f, -2.0f, 3.25f};
    t->n_float_data = 3, t->float_data = fv;
    add_init(m, t);

    static int32_t iv[3] = {-1, 256, 7}; /* 256 is true as bool, 0 as uint8 */
    const struct {
        const char *name;
        int dt;
    } narrow[] = {{"i32", 6}, {"i16", 5}, {"i8", 3}, {"u8", 2}, {"u16", 4}, {"b", 9}, {"h", 10}};
    for (size_t k = 0; k < sizeof narrow / sizeof narrow[0]; k++) {
        t = mk_tensor(narrow[k].name, narrow[k].dt, 1, d3);
        t->n_int32_data = 3, t->int32_data = iv;
        add_init(m, t);
    }
    static int64_t lv[3] = {INT64_MIN, 0, INT64_MAX};
    t = mk_tensor("i64", 7, 1, d3);
    t->n_int64_data = 3, t->int64_data = lv;
    add_init(m, t);
    static double dv[3] = {0.5, -1e300, 2.0};
    t = mk_tensor("f64", 11, 1, d3);
    t->n_double_data = 3, t->double_data = dv;
    add_init(m, t);
    static uint64_t uv[3] = {1, 4294967295u, UINT64_MAX};
    t = mk_tensor("u32", 12, 1, d3);
    t->n_uint64_data = 3, t->uint64_data = uv;
    add_init(m, t);
    t = mk_tensor("u64", 13, 1, d3);
    t->n_uint64_data = 3, t->uint64_data = uv;
    add_init(m, t);
    /* a scalar and an empty tensor */
    float one = 1.0f;
    add_init(m, mk_f32("scalar", 0, NULL, &one, 1));
    int64_t d0[2] = {0, 5};
    add_init(m, mk_f32("empty", 2, d0, NULL, 0));
    /* raw int64 data (little-endian) */
    int64_t raw64[2] = {-5, 1234567890123};
    int64_t d2[1] = {2};
    t = mk_tensor("raw64", 7, 1, d2);
    t_raw(t, raw64, sizeof raw64);
    add_init(m, t);

    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    const evo_value *v = val(g, "f32");
    assert_int_equal(v->t.dtype, EVO_DT_FLOAT32);
    assert_memory_equal(v->t.data, fv, sizeof fv);
    v = val(g, "i32");
    assert_memory_equal(v->t.data, iv, sizeof iv);
    int16_t i16[3] = {-1, 256, 7};
    assert_memory_equal(val(g, "i16")->t.data, i16, sizeof i16);
    int8_t i8[3] = {-1, 0, 7}; /* 256 keeps its low byte */
    assert_memory_equal(val(g, "i8")->t.data, i8, sizeof i8);
    uint8_t u8[3] = {255, 0, 7};
    assert_memory_equal(val(g, "u8")->t.data, u8, sizeof u8);
    uint16_t u16[3] = {65535, 256, 7};
    assert_memory_equal(val(g, "u16")->t.data, u16, sizeof u16);
    assert_memory_equal(val(g, "h")->t.data, u16, sizeof u16);
    assert_int_equal(val(g, "h")->t.dtype, EVO_DT_FLOAT16);
    uint8_t b[3] = {1, 1, 1};
    assert_memory_equal(val(g, "b")->t.data, b, sizeof b);
    assert_int_equal(val(g, "b")->t.dtype, EVO_DT_BOOL);
    assert_memory_equal(val(g, "i64")->t.data, lv, sizeof lv);
    assert_memory_equal(val(g, "f64")->t.data, dv, sizeof dv);
    uint32_t u32[3] = {1, 4294967295u, 4294967295u};
    assert_memory_equal(val(g, "u32")->t.data, u32, sizeof u32);
    assert_memory_equal(val(g, "u64")->t.data, uv, sizeof uv);
    v = val(g, "scalar");
    assert_int_equal(v->t.shape.rank, 0);
    assert_true(*(float *)v->t.data == 1.0f);
    v = val(g, "empty");
    assert_true(v->flags & EVO_VALUE_CONST);
    assert_non_null(v->t.data);
    assert_int_equal(v->t.shape.dims[0], 0);
    assert_memory_equal(val(g, "raw64")->t.data, raw64, sizeof raw64);
    evo_graph_free(g);
}

static void test_attributes(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_relu_model();
    Onnx__NodeProto *n = m->graph->node[0];
    attr_int(n, "i", -7);
    attr_float(n, "f", 0.25f);
    attr_string(n, "s", "SAME_UPPER");
    int64_t ints[3] = {1, -2, 3};
    attr_ints(n, "ints", 3, ints);
    float floats[2] = {0.5f, -1.5f};
    attr_floats(n, "floats", 2, floats);
    attr_ints(n, "empty_ints", 0, NULL);
    Onnx__AttributeProto *a = mk_attr(n, "strings", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = 2;
    a->strings = tb_alloc(2 * sizeof(ProtobufCBinaryData));
    a->strings[0].data = (uint8_t *)tb_str("ab");
    a->strings[0].len = 2;
    a->strings[1].data = (uint8_t *)tb_str("");
    a->strings[1].len = 0;
    int64_t td[1] = {2};
    int64_t tv[2] = {10, 20};
    Onnx__TensorProto *t = mk_tensor("", 7, 1, td);
    t->n_int64_data = 2, t->int64_data = tv;
    attr_tensor(n, "t", t);
    a = mk_attr(n, "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = tb_alloc(sizeof(Onnx__GraphProto));
    onnx__graph_proto__init(a->g);
    /* IR version 1 style: no type field, the set value decides */
    a = mk_attr(n, "untyped", 0);
    a->has_type = 0;
    a->has_i = 1;
    a->i = 42;

    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    const evo_node *node = &g->nodes[0];
    assert_int_equal(node->n_attrs, 10);
    int64_t iv;
    float fv;
    const char *sv;
    assert_int_equal(evo_attr_get_int(node, "i", 0, &iv), EVO_OK);
    assert_int_equal(iv, -7);
    assert_int_equal(evo_attr_get_float(node, "f", 0, &fv), EVO_OK);
    assert_true(fv == 0.25f);
    assert_int_equal(evo_attr_get_string(node, "s", NULL, &sv), EVO_OK);
    assert_string_equal(sv, "SAME_UPPER");
    int64_t got[4];
    size_t cnt;
    assert_int_equal(evo_attr_get_ints(node, "ints", got, 4, &cnt), EVO_OK);
    assert_int_equal(cnt, 3);
    assert_memory_equal(got, ints, sizeof ints);
    float gotf[4];
    assert_int_equal(evo_attr_get_floats(node, "floats", gotf, 4, &cnt), EVO_OK);
    assert_int_equal(cnt, 2);
    assert_memory_equal(gotf, floats, sizeof floats);
    const evo_attr *ea = evo_node_attr(node, "empty_ints");
    assert_int_equal(ea->type, EVO_ATTR_INTS);
    assert_int_equal(ea->count, 0);
    const evo_attr *sa = evo_node_attr(node, "strings");
    assert_int_equal(sa->type, EVO_ATTR_STRINGS);
    assert_int_equal(sa->count, 2);
    assert_string_equal(sa->strings[0], "ab");
    assert_string_equal(sa->strings[1], "");
    const evo_attr *ta = evo_node_attr(node, "t");
    assert_int_equal(ta->type, EVO_ATTR_TENSOR);
    assert_int_equal(ta->tensor.dtype, EVO_DT_INT64);
    assert_int_equal(ta->tensor.shape.rank, 1);
    assert_int_equal(ta->tensor.shape.dims[0], 2);
    assert_memory_equal(ta->tensor.data, tv, sizeof tv);
    assert_int_equal(evo_node_attr(node, "body")->type, EVO_ATTR_GRAPH);
    assert_int_equal(evo_attr_get_int(node, "untyped", 0, &iv), EVO_OK);
    assert_int_equal(iv, 42);
    evo_graph_free(g);
}

static void test_constant_nodes(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_relu_model();
    int64_t td[2] = {1, 2};
    float tv[2] = {3.0f, 4.0f};
    attr_tensor(mk_node(m, "Constant", "c0", "", "c_value"), "value", mk_f32("", 2, td, tv, 2));
    attr_float(mk_node(m, "Constant", "c1", "", "c_float"), "value_float", 2.5f);
    float fl[3] = {1, 2, 3};
    attr_floats(mk_node(m, "Constant", "c2", "", "c_floats"), "value_floats", 3, fl);
    attr_int(mk_node(m, "Constant", "c3", "", "c_int"), "value_int", -9);
    int64_t il[2] = {7, 8};
    Onnx__NodeProto *c4 = mk_node(m, "Constant", "c4", "", "c_ints");
    c4->domain = tb_str("ai.onnx");
    attr_ints(c4, "value_ints", 2, il);
    mk_node(m, "Add", "use", "c_value,c_float", "sum");
    add_output(m, mk_vi("sum", 1, -1, NULL, NULL));
    add_output(m, mk_vi("c_ints", 7, -1, NULL, NULL));

    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->n_nodes, 2); /* Relu and Add; no Constant node kept */
    for (int32_t i = 0; i < g->n_nodes; i++)
        assert_string_not_equal(g->nodes[i].op_type, "Constant");
    const evo_value *v = val(g, "c_value");
    assert_true(v->flags & EVO_VALUE_CONST);
    assert_int_equal(v->t.shape.rank, 2);
    assert_memory_equal(v->t.data, tv, sizeof tv);
    v = val(g, "c_float");
    assert_int_equal(v->t.dtype, EVO_DT_FLOAT32);
    assert_int_equal(v->t.shape.rank, 0);
    assert_true(*(float *)v->t.data == 2.5f);
    v = val(g, "c_floats");
    assert_int_equal(v->t.shape.rank, 1);
    assert_int_equal(v->t.shape.dims[0], 3);
    assert_memory_equal(v->t.data, fl, sizeof fl);
    v = val(g, "c_int");
    assert_int_equal(v->t.dtype, EVO_DT_INT64);
    assert_int_equal(v->t.shape.rank, 0);
    assert_int_equal(*(int64_t *)v->t.data, -9);
    v = val(g, "c_ints");
    assert_int_equal(v->t.dtype, EVO_DT_INT64);
    assert_memory_equal(v->t.data, il, sizeof il);
    assert_true(v->flags & EVO_VALUE_OUTPUT);
    evo_graph_free(g);

    m = mk_relu_model();
    Onnx__AttributeProto *a = mk_attr(mk_node(m, "Constant", "cs", "", "str"), "value_string",
                                      ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    expect_fail(m, EVO_ERR_UNSUPPORTED, "'value_string'");
    m = mk_relu_model();
    mk_attr(mk_node(m, "Constant", "sp", "", "sp"), "sparse_value",
            ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR);
    expect_fail(m, EVO_ERR_UNSUPPORTED, "sparse");
    m = mk_relu_model();
    Onnx__NodeProto *two = mk_node(m, "Constant", "two", "", "two");
    attr_int(two, "value_int", 1);
    attr_float(two, "value_float", 1);
    expect_fail(m, EVO_ERR_PARSE, "node 'two' (Constant)");
    m = mk_relu_model(); /* a Constant writing a graph input */
    attr_int(mk_node(m, "Constant", "cx", "", "X"), "value_int", 1);
    expect_fail(m, EVO_ERR_GRAPH, "'X' is defined twice");
}

static void test_opset_domains(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_relu_model();
    add_opset(m, "com.microsoft", 1);
    Onnx__NodeProto *n = mk_node(m, "Neg", "explicit", "Y", "Z");
    n->domain = tb_str("ai.onnx");
    n = mk_node(m, "FusedGemm", "ms", "Z", "W");
    n->domain = tb_str("com.microsoft");
    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->n_opsets, 2);
    assert_string_equal(g->nodes[1].domain, "");
    assert_int_equal(g->nodes[1].opset, 13);
    assert_string_equal(g->nodes[2].domain, "com.microsoft");
    assert_int_equal(g->nodes[2].opset, 1);
    evo_graph_free(g);

    /* ai.onnx spelled out in the import */
    m = mk_model(0);
    add_opset(m, "ai.onnx", 11);
    mk_node(m, "Relu", "r", "X", "Y");
    int64_t d[1] = {1};
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    add_output(m, mk_vi("Y", 1, 1, d, NULL));
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->nodes[0].opset, 11);
    evo_graph_free(g);

    /* a model without nodes needs no opset import */
    m = mk_model(0);
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    add_output(m, mk_vi("X", 1, 1, d, NULL));
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->n_nodes, 0);
    assert_int_equal(g->n_outputs, 1);
    evo_graph_free(g);

    m = mk_relu_model();
    n = mk_node(m, "Custom", "c", "Y", "Z");
    n->domain = tb_str("org.example");
    expect_fail(m, EVO_ERR_PARSE, "domain 'org.example'");
    m = mk_relu_model();
    m->n_opset_import = 0;
    expect_fail(m, EVO_ERR_PARSE, "no opset import");
    m = mk_relu_model();
    add_opset(m, "", 11);
    expect_fail(m, EVO_ERR_PARSE, "imported twice");
}

/* ---------------------------------------------------------------- opset upgrade */

/* The constant that input k of node n reads, checked for dtype and length. */
static const void *upgraded_input(const evo_graph *g, const evo_node *n, int k, evo_dtype dt,
                                  int rank, int len)
{
    assert_true(k < n->n_inputs);
    assert_true(n->inputs[k] >= 0);
    const evo_value *v = &g->values[n->inputs[k]];
    assert_true(v->flags & EVO_VALUE_CONST);
    assert_int_equal(v->t.dtype, dt);
    assert_int_equal(v->t.shape.rank, rank);
    if (rank == 1)
        assert_int_equal(v->t.shape.dims[0], len);
    return v->t.data;
}

static const evo_node *node_named(const evo_graph *g, const char *name)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return &g->nodes[i];
    fail_msg("no node '%s'", name);
    return NULL;
}

static void test_upgrade_old_forms(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_model(7);
    int64_t d[4] = {1, 3, 8, 8};
    add_input(m, mk_vi("X", 1, 4, d, NULL));
    int64_t starts[2] = {0, 1}, ends[2] = {2, 5}, axes[2] = {2, 3};
    Onnx__NodeProto *n = mk_node(m, "Slice", "slice", "X", "s");
    attr_ints(n, "starts", 2, starts);
    attr_ints(n, "ends", 2, ends);
    attr_ints(n, "axes", 2, axes);
    n = mk_node(m, "Slice", "slice_noaxes", "X", "s2");
    attr_ints(n, "starts", 2, starts);
    attr_ints(n, "ends", 2, ends);
    int64_t pads[8] = {0, 0, 1, 1, 0, 0, 1, 1};
    n = mk_node(m, "Pad", "pad", "X", "p");
    attr_string(n, "mode", "constant");
    attr_ints(n, "pads", 8, pads);
    attr_float(n, "value", 1.5f);
    int64_t split[2] = {1, 2};
    n = mk_node(m, "Split", "split", "X", "sp0,sp1");
    attr_int(n, "axis", 1);
    attr_ints(n, "split", 2, split);
    int64_t sq[1] = {0};
    attr_ints(mk_node(m, "Squeeze", "squeeze", "X", "sq"), "axes", 1, sq);
    attr_ints(mk_node(m, "Unsqueeze", "unsqueeze", "X", "usq"), "axes", 1, sq);
    n = mk_node(m, "ReduceSum", "rsum", "X", "rs");
    attr_ints(n, "axes", 1, sq);
    attr_int(n, "keepdims", 0);
    attr_ints(mk_node(m, "ReduceMean", "rmean", "X", "rm"), "axes", 2, axes);
    mk_node(m, "ReduceMax", "rmax_all", "X", "rx"); /* no axes: nothing to move */
    attr_float(mk_node(m, "Clip", "clip_max", "X", "c1"), "max", 6.0f);
    n = mk_node(m, "Clip", "clip_both", "X", "c2");
    attr_float(n, "min", -1.0f);
    attr_float(n, "max", 1.0f);
    mk_node(m, "Clip", "clip_none", "X", "c3");
    float scales[4] = {1, 1, 2, 2};
    n = mk_node(m, "Upsample", "up", "X", "u");
    attr_string(n, "mode", "nearest");
    attr_floats(n, "scales", 4, scales);
    n = mk_node(m, "Dropout", "drop", "X", "dr");
    attr_float(n, "ratio", 0.25f);
    n = mk_node(m, "BatchNormalization", "bn", "X,sc,bi,me,va", "bn");
    attr_float(n, "epsilon", 1e-3f);
    attr_int(n, "spatial", 1);
    attr_int(mk_node(m, "TopK", "topk", "X", "tv,ti"), "k", 3);
    /* forms older than opset 7 are not touched in an opset 7 model */
    mk_node(m, "Concat", "concat", "X,X", "cc");
    add_output(m, mk_vi("s", 1, -1, NULL, NULL));
    float c3[3] = {1, 2, 3};
    int64_t c3d[1] = {3};
    add_init(m, mk_f32("sc", 1, c3d, c3, 3));
    add_init(m, mk_f32("bi", 1, c3d, c3, 3));
    add_init(m, mk_f32("me", 1, c3d, c3, 3));
    add_init(m, mk_f32("va", 1, c3d, c3, 3));

    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);

    const evo_node *s = node_named(g, "slice");
    assert_int_equal(s->n_inputs, 4);
    assert_int_equal(s->n_attrs, 0);
    assert_int_equal(s->opset, 7);
    assert_memory_equal(upgraded_input(g, s, 1, EVO_DT_INT64, 1, 2), starts, sizeof starts);
    assert_memory_equal(upgraded_input(g, s, 2, EVO_DT_INT64, 1, 2), ends, sizeof ends);
    assert_memory_equal(upgraded_input(g, s, 3, EVO_DT_INT64, 1, 2), axes, sizeof axes);
    assert_string_equal(g->values[s->inputs[1]].name, "slice:starts");
    s = node_named(g, "slice_noaxes");
    assert_int_equal(s->n_inputs, 3);

    const evo_node *p = node_named(g, "pad");
    assert_int_equal(p->n_inputs, 3);
    assert_memory_equal(upgraded_input(g, p, 1, EVO_DT_INT64, 1, 8), pads, sizeof pads);
    assert_true(*(const float *)upgraded_input(g, p, 2, EVO_DT_FLOAT32, 0, 0) == 1.5f);
    assert_int_equal(p->n_attrs, 1);
    assert_string_equal(p->attrs[0].name, "mode");

    const evo_node *sp = node_named(g, "split");
    assert_memory_equal(upgraded_input(g, sp, 1, EVO_DT_INT64, 1, 2), split, sizeof split);
    assert_non_null(evo_node_attr(sp, "axis"));
    assert_null(evo_node_attr(sp, "split"));
    assert_memory_equal(upgraded_input(g, node_named(g, "squeeze"), 1, EVO_DT_INT64, 1, 1), sq,
                        sizeof sq);
    assert_memory_equal(upgraded_input(g, node_named(g, "unsqueeze"), 1, EVO_DT_INT64, 1, 1), sq,
                        sizeof sq);
    const evo_node *rs = node_named(g, "rsum");
    assert_memory_equal(upgraded_input(g, rs, 1, EVO_DT_INT64, 1, 1), sq, sizeof sq);
    assert_non_null(evo_node_attr(rs, "keepdims"));
    assert_memory_equal(upgraded_input(g, node_named(g, "rmean"), 1, EVO_DT_INT64, 1, 2), axes,
                        sizeof axes);
    assert_int_equal(node_named(g, "rmax_all")->n_inputs, 1);

    const evo_node *c = node_named(g, "clip_max");
    assert_int_equal(c->n_inputs, 3);
    assert_int_equal(c->n_attrs, 0);
    assert_true(*(const float *)upgraded_input(g, c, 1, EVO_DT_FLOAT32, 0, 0) == -FLT_MAX);
    assert_true(*(const float *)upgraded_input(g, c, 2, EVO_DT_FLOAT32, 0, 0) == 6.0f);
    c = node_named(g, "clip_both");
    assert_true(*(const float *)upgraded_input(g, c, 1, EVO_DT_FLOAT32, 0, 0) == -1.0f);
    assert_true(*(const float *)upgraded_input(g, c, 2, EVO_DT_FLOAT32, 0, 0) == 1.0f);
    assert_int_equal(node_named(g, "clip_none")->n_inputs, 1);

    const evo_node *u = node_named(g, "up");
    assert_memory_equal(upgraded_input(g, u, 1, EVO_DT_FLOAT32, 1, 4), scales, sizeof scales);
    assert_non_null(evo_node_attr(u, "mode"));
    const evo_node *dr = node_named(g, "drop");
    assert_true(*(const float *)upgraded_input(g, dr, 1, EVO_DT_FLOAT32, 0, 0) == 0.25f);
    const evo_node *bn = node_named(g, "bn");
    assert_int_equal(bn->n_attrs, 1);
    assert_non_null(evo_node_attr(bn, "epsilon"));
    int64_t k3[1] = {3};
    assert_memory_equal(upgraded_input(g, node_named(g, "topk"), 1, EVO_DT_INT64, 1, 1), k3,
                        sizeof k3);
    assert_null(evo_node_attr(node_named(g, "concat"), "axis"));
    evo_graph_free(g);
}

static void test_upgrade_opset1_drops_and_names(void **state)
{
    (void)state;
    /* opset 1: consumed_inputs and is_test disappear */
    Onnx__ModelProto *m = mk_model(1);
    int64_t d[1] = {4};
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    int64_t ci[1] = {0};
    attr_ints(mk_node(m, "Relu", "relu", "X", "r"), "consumed_inputs", 1, ci);
    Onnx__NodeProto *n = mk_node(m, "Dropout", "drop", "r", "y");
    attr_int(n, "is_test", 1);
    attr_ints(n, "consumed_inputs", 1, ci);
    /* a tensor already named like the generated constant */
    float one = 1;
    add_init(m, mk_f32("Pad:paddings", 0, NULL, &one, 1));
    int64_t pads[2] = {1, 1};
    attr_ints(mk_node(m, "Pad", "", "y", "p"), "paddings", 2, pads);
    add_output(m, mk_vi("p", 1, -1, NULL, NULL));
    int64_t shape[2] = {2, 2};
    attr_ints(mk_node(m, "Reshape", "reshape", "X", "r2"), "shape", 2, shape);
    mk_node(m, "Concat", "concat", "X,X", "cc");
    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(node_named(g, "relu")->n_attrs, 0);
    const evo_node *dr = node_named(g, "drop");
    assert_int_equal(dr->n_attrs, 0);
    assert_int_equal(dr->n_inputs, 1);
    const evo_node *p = &g->nodes[2];
    assert_string_equal(g->values[p->inputs[1]].name, "Pad:paddings:1");
    assert_memory_equal(upgraded_input(g, p, 1, EVO_DT_INT64, 1, 2), pads, sizeof pads);
    const evo_node *r = node_named(g, "reshape");
    assert_int_equal(r->n_attrs, 0);
    assert_memory_equal(upgraded_input(g, r, 1, EVO_DT_INT64, 1, 2), shape, sizeof shape);
    int64_t axis;
    assert_int_equal(evo_attr_get_int(node_named(g, "concat"), "axis", -5, &axis), EVO_OK);
    assert_int_equal(axis, 1);
    evo_graph_free(g);

    /* new-opset nodes are left alone */
    m = mk_model(13);
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    add_input(m, mk_vi("st", 7, 1, d, NULL));
    mk_node(m, "Slice", "s", "X,st,st", "y");
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->nodes[0].n_inputs, 3);
    assert_int_equal(g->nodes[0].inputs[1], evo_graph_find_value(g, "st"));
    evo_graph_free(g);

    /* attribute and input both given */
    m = mk_model(9);
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    n = mk_node(m, "Slice", "both", "X,X", "y");
    attr_ints(n, "starts", 1, ci);
    attr_ints(n, "ends", 1, ci);
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    expect_fail(m, EVO_ERR_PARSE, "node 'both' (Slice, opset 9): attribute 'starts'");
    /* wrong attribute type */
    m = mk_model(9);
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    attr_float(mk_node(m, "Squeeze", "sq", "X", "y"), "axes", 1.0f);
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    expect_fail(m, EVO_ERR_TYPE, "'axes' must be a list of integers");
    /* BatchNormalization spatial=0 has no newer form */
    m = mk_model(7);
    add_input(m, mk_vi("X", 1, 1, d, NULL));
    attr_int(mk_node(m, "BatchNormalization", "bn", "X,X,X,X,X", "y"), "spatial", 0);
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    expect_fail(m, EVO_ERR_UNSUPPORTED, "'spatial'");
}

static void test_upgrade_legacy_broadcast(void **state)
{
    (void)state;
    Onnx__ModelProto *m = mk_model(6);
    int64_t d4[4] = {2, 3, 4, 5}, d2[2] = {4, 5}, d1[1] = {3};
    add_input(m, mk_vi("X", 1, 4, d4, NULL));
    add_input(m, mk_vi("T", 1, 2, d2, NULL));
    float bias[3] = {1, 2, 3};
    add_init(m, mk_f32("bias", 1, d1, bias, 3));
    /* B aligned at axis 1 of a rank-4 A: a constant B gets trailing 1-dims */
    Onnx__NodeProto *n = mk_node(m, "Add", "add", "X,bias", "a");
    attr_int(n, "broadcast", 1);
    attr_int(n, "axis", 1);
    /* aligned to the end already: only the attributes go */
    n = mk_node(m, "Mul", "mul", "X,T", "b");
    attr_int(n, "broadcast", 1);
    attr_int(n, "axis", 2);
    /* no axis: suffix alignment, as numpy */
    attr_int(mk_node(m, "Sub", "sub", "X,T", "c"), "broadcast", 1);
    /* A's rank is unknown before inference: the attributes stay for infer */
    n = mk_node(m, "Div", "div", "a,bias", "d");
    attr_int(n, "broadcast", 1);
    attr_int(n, "axis", 1);
    add_output(m, mk_vi("d", 1, -1, NULL, NULL));
    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    const evo_node *add = node_named(g, "add");
    assert_int_equal(add->n_attrs, 0);
    const evo_value *b = &g->values[add->inputs[1]];
    assert_string_equal(b->name, "add:B");
    assert_true(b->flags & EVO_VALUE_CONST);
    assert_int_equal(b->t.shape.rank, 3);
    assert_int_equal(b->t.shape.dims[0], 3);
    assert_int_equal(b->t.shape.dims[1], 1);
    assert_int_equal(b->t.shape.dims[2], 1);
    assert_memory_equal(b->t.data, bias, sizeof bias);
    const evo_node *mul = node_named(g, "mul");
    assert_int_equal(mul->n_attrs, 0);
    assert_int_equal(mul->inputs[1], evo_graph_find_value(g, "T"));
    assert_int_equal(node_named(g, "sub")->n_attrs, 0);
    const evo_node *div = node_named(g, "div");
    assert_int_equal(div->n_attrs, 2);
    assert_int_equal(div->inputs[1], evo_graph_find_value(g, "bias"));
    evo_graph_free(g);

    /* PRelu-6 applied a 1-D slope per channel */
    m = mk_model(6);
    add_input(m, mk_vi("X", 1, 4, d4, NULL));
    add_init(m, mk_f32("slope", 1, d1, bias, 3));
    mk_node(m, "PRelu", "prelu", "X,slope", "y");
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    const evo_value *sl = &g->values[g->nodes[0].inputs[1]];
    assert_string_equal(sl->name, "prelu:slope");
    assert_int_equal(sl->t.shape.rank, 3);
    assert_int_equal(sl->t.shape.dims[0], 3);
    assert_int_equal(sl->t.shape.dims[2], 1);
    assert_memory_equal(sl->t.data, bias, sizeof bias);
    evo_graph_free(g);

    /* a non-constant B aligned away from the end cannot be rewritten */
    m = mk_model(6);
    add_input(m, mk_vi("X", 1, 4, d4, NULL));
    add_input(m, mk_vi("C", 1, 1, d1, NULL));
    n = mk_node(m, "Add", "add", "X,C", "y");
    attr_int(n, "broadcast", 1);
    attr_int(n, "axis", 1);
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    expect_fail(m, EVO_ERR_UNSUPPORTED, "node 'add' (Add, opset 6): attribute 'axis'");
    /* an axis that does not fit */
    m = mk_model(6);
    add_input(m, mk_vi("X", 1, 4, d4, NULL));
    add_input(m, mk_vi("T", 1, 2, d2, NULL));
    n = mk_node(m, "Add", "add", "X,T", "y");
    attr_int(n, "broadcast", 1);
    attr_int(n, "axis", 3);
    add_output(m, mk_vi("y", 1, -1, NULL, NULL));
    expect_fail(m, EVO_ERR_SHAPE, "does not fit the ranks");
}

/* ---------------------------------------------------------------- external data */

static char ext_dir[256];

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static Onnx__ModelProto *mk_external_model(const char *location, const char *offset,
                                           const char *length)
{
    Onnx__ModelProto *m = mk_relu_model();
    int64_t d[1] = {3};
    Onnx__TensorProto *t = mk_tensor("W", 1, 1, d);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    t->external_data = tb_alloc(3 * sizeof(void *));
    const char *keys[3] = {"location", "offset", "length"};
    const char *vals[3] = {location, offset, length};
    for (int k = 0; k < 3; k++) {
        if (vals[k] == NULL)
            continue;
        Onnx__StringStringEntryProto *e = tb_alloc(sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = tb_str(keys[k]);
        e->value = tb_str(vals[k]);
        t->external_data[t->n_external_data++] = e;
    }
    add_init(m, t);
    mk_node(m, "Add", "add", "Y,W", "Z");
    add_output(m, mk_vi("Z", 1, -1, NULL, NULL));
    return m;
}

/* Write m as DIR/model.onnx and import that file. */
static evo_status load_file(const Onnx__ModelProto *m, evo_graph **g, evo_error *err)
{
    size_t len;
    uint8_t *buf = pack(m, &len);
    write_file(ext_dir, "model.onnx", buf, len);
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx", ext_dir);
    evo_error_clear(err);
    return evo_onnx_load(path, NULL, g, err);
}

static int ext_setup(void **state)
{
    (void)state;
    snprintf(ext_dir, sizeof ext_dir, "/tmp/evo_onnx_import_test_XXXXXX");
    if (mkdtemp(ext_dir) == NULL)
        return -1;
    char sub[300];
    snprintf(sub, sizeof sub, "%s/weights", ext_dir);
    mkdir(sub, 0700);
    float data[5] = {9, 1, 2, 3, 9};
    write_file(ext_dir, "weights/w.bin", data, sizeof data);
    return 0;
}

static int ext_teardown(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/weights/w.bin", ext_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/weights", ext_dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/model.onnx", ext_dir);
    unlink(path);
    rmdir(ext_dir);
    return tb_reset(state);
}

static void expect_file_fail(const Onnx__ModelProto *m, evo_status code, const char *needle)
{
    evo_graph *g = NULL;
    evo_error err;
    evo_status rv = load_file(m, &g, &err);
    if (rv != code || strstr(err.msg, needle) == NULL)
        print_error("got %s: %s\n", evo_strerror(rv), err.msg);
    assert_int_equal(rv, code);
    assert_null(g);
    assert_non_null(strstr(err.msg, "model.onnx: "));
    assert_non_null(strstr(err.msg, needle));
}

static void test_external_data(void **state)
{
    (void)state;
    evo_graph *g;
    evo_error err;
    assert_int_equal(load_file(mk_external_model("weights/w.bin", "4", "12"), &g, &err), EVO_OK);
    const evo_value *w = val(g, "W");
    float want[3] = {1, 2, 3};
    assert_memory_equal(w->t.data, want, sizeof want);
    assert_true(w->flags & EVO_VALUE_CONST);
    evo_graph_free(g);
    /* no length: the tensor's size; "./" is harmless */
    assert_int_equal(load_file(mk_external_model("./weights/w.bin", "4", NULL), &g, &err), EVO_OK);
    assert_memory_equal(val(g, "W")->t.data, want, sizeof want);
    evo_graph_free(g);

    /* missing file: both files named */
    expect_file_fail(mk_external_model("weights/nope.bin", NULL, NULL), EVO_ERR_IO,
                     "weights/nope.bin");
    expect_file_fail(mk_external_model("../w.bin", NULL, NULL), EVO_ERR_PARSE, "'..'");
    expect_file_fail(mk_external_model("weights/../../etc/passwd", NULL, NULL), EVO_ERR_PARSE,
                     "outside the model's directory");
    expect_file_fail(mk_external_model("/etc/passwd", NULL, NULL), EVO_ERR_PARSE,
                     "outside the model's directory");
    expect_file_fail(mk_external_model("weights\\..\\x", NULL, NULL), EVO_ERR_PARSE, "'..'");
    /* offset beyond the end, and a range that runs past it */
    expect_file_fail(mk_external_model("weights/w.bin", "100", NULL), EVO_ERR_PARSE,
                     "which has only 20 bytes");
    expect_file_fail(mk_external_model("weights/w.bin", "12", NULL), EVO_ERR_PARSE,
                     "weights/w.bin");
    expect_file_fail(mk_external_model("weights/w.bin", "18446744073709551615", NULL),
                     EVO_ERR_PARSE, "which has only 20 bytes");
    expect_file_fail(mk_external_model("weights/w.bin", "-4", NULL), EVO_ERR_PARSE, "offset '-4'");
    expect_file_fail(mk_external_model("weights/w.bin", "0", "8"), EVO_ERR_PARSE,
                     "declares 8 bytes");
    expect_file_fail(mk_external_model(NULL, NULL, NULL), EVO_ERR_PARSE, "names no location");
    expect_file_fail(mk_external_model("weights", NULL, NULL), EVO_ERR_IO, "not a regular file");
    /* from memory without a base directory */
    expect_fail(mk_external_model("weights/w.bin", NULL, NULL), EVO_ERR_UNSUPPORTED,
                "loaded from memory");
}

static void test_file_errors(void **state)
{
    (void)state;
    evo_graph *g = NULL;
    evo_error err;
    assert_int_equal(evo_onnx_load("/nonexistent/dir/model.onnx", NULL, &g, &err), EVO_ERR_IO);
    assert_null(g);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/model.onnx: cannot open"));
    assert_int_equal(evo_onnx_load(ext_dir, NULL, &g, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));

    /* the file size limit */
    size_t len;
    uint8_t *buf = pack(mk_relu_model(), &len);
    write_file(ext_dir, "model.onnx", buf, len);
    char path[512];
    snprintf(path, sizeof path, "%s/model.onnx", ext_dir);
    evo_import_options opt = {.limits = {.max_file_bytes = len - 1}};
    assert_int_equal(evo_onnx_load(path, &opt, &g, &err), EVO_ERR_LIMIT);
    assert_null(g);
    opt.limits.max_file_bytes = len;
    assert_int_equal(evo_onnx_load(path, &opt, &g, &err), EVO_OK);
    evo_graph_free(g);
    assert_int_equal(evo_onnx_load_buffer(buf, len, NULL, "m",
                                          &(evo_import_options){.limits = {.max_file_bytes = 8}},
                                          &g, &err),
                     EVO_ERR_LIMIT);
    assert_int_equal(evo_onnx_load_buffer(NULL, 5, NULL, "m", NULL, &g, &err), EVO_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------- bad input */

static void test_truncated_and_random(void **state)
{
    (void)state;
    size_t len;
    Onnx__ModelProto *m = mk_relu_model();
    int64_t d[2] = {16, 16};
    float w[256] = {0};
    add_init(m, mk_f32("W", 2, d, w, 256));
    uint8_t *buf = pack(m, &len);
    evo_graph *g;
    evo_error err;
    /* every proper prefix fails cleanly (most in protobuf, some later) */
    int parse_fail = 0;
    for (size_t cut = 0; cut < len; cut++) {
        g = (evo_graph *)(uintptr_t)1;
        evo_error_clear(&err);
        evo_status rv = evo_onnx_load_buffer(buf, cut, NULL, "cut.onnx", NULL, &g, &err);
        assert_int_not_equal(rv, EVO_OK);
        assert_null(g);
        assert_true(strncmp(err.msg, "cut.onnx: ", 10) == 0);
        parse_fail += rv == EVO_ERR_PARSE;
    }
    assert_true(parse_fail > 0);
    evo_graph_free(NULL);
    evo_error_clear(&err);
    assert_int_equal(evo_onnx_load_buffer(buf, len / 2, NULL, "cut.onnx", NULL, &g, &err),
                     EVO_ERR_PARSE);
    assert_string_equal(err.msg, "cut.onnx: not a valid ONNX model (protobuf parse failed)");

    /* random bytes: never a model; every failure explained */
    uint32_t seed = 12345;
    uint8_t rnd[512];
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + trial * 2;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            rnd[i] = (uint8_t)(seed >> 16);
        }
        evo_error_clear(&err);
        evo_status rv = evo_onnx_load_buffer(rnd, n, NULL, "rnd.onnx", NULL, &g, &err);
        assert_int_not_equal(rv, EVO_OK);
        assert_true(strncmp(err.msg, "rnd.onnx: ", 10) == 0);
    }
    /* an empty buffer parses as an empty message, which has no graph */
    assert_int_equal(evo_onnx_load_buffer("", 0, NULL, "empty.onnx", NULL, &g, &err),
                     EVO_ERR_PARSE);
    assert_string_equal(err.msg, "empty.onnx: not a valid ONNX model (it has no graph)");
}

static void test_bad_tensors(void **state)
{
    (void)state;
    float f[4] = {0};
    Onnx__ModelProto *m = mk_relu_model();
    int64_t neg[2] = {2, -2};
    add_init(m, mk_tensor("W", 1, 2, neg));
    expect_fail(m, EVO_ERR_PARSE, "initializer 'W' has negative size -2 in dimension 1");

    m = mk_relu_model();
    int64_t big[1] = {(int64_t)INT32_MAX + 1};
    add_init(m, mk_tensor("W", 1, 1, big));
    expect_fail(m, EVO_ERR_LIMIT, "initializer 'W' has size 2147483648");

    m = mk_relu_model();
    int64_t r9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    add_init(m, mk_tensor("W", 1, 9, r9));
    expect_fail(m, EVO_ERR_LIMIT, "rank 9");

    m = mk_relu_model();
    int64_t huge[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    add_init(m, mk_tensor("W", 1, 4, huge));
    expect_fail(m, EVO_ERR_LIMIT, "larger than the limit");

    m = mk_relu_model(); /* within size_t, above max_tensor_bytes */
    int64_t d4[1] = {4};
    add_init(m, mk_f32("W", 1, d4, f, 4));
    evo_import_options opt = {.limits = {.max_tensor_bytes = 15}};
    expect_fail_opt(m, &opt, EVO_ERR_LIMIT, "larger than the limit of 15 bytes");

    m = mk_relu_model();
    Onnx__TensorProto *t = mk_tensor("W", 1, 1, d4);
    t_raw(t, f, 15);
    add_init(m, t);
    expect_fail(m, EVO_ERR_PARSE, "has 15 bytes of raw_data");

    m = mk_relu_model();
    t = mk_tensor("W", 7, 1, d4);
    static int64_t three[3] = {1, 2, 3};
    t->n_int64_data = 3, t->int64_data = three;
    add_init(m, t);
    expect_fail(m, EVO_ERR_PARSE, "has 3 int64_data values");

    m = mk_relu_model();
    add_init(m, mk_f32("W", 0, NULL, f, 1));
    m->graph->initializer[0]->data_type = 99;
    expect_fail(m, EVO_ERR_PARSE, "data type 99");

    m = mk_relu_model();
    add_init(m, mk_f32("W", 0, NULL, f, 1));
    m->graph->initializer[0]->data_type = 17;
    expect_fail(m, EVO_ERR_UNSUPPORTED, "float8e4m3fn");

    m = mk_relu_model();
    add_init(m, mk_f32("W", 0, NULL, f, 1));
    m->graph->initializer[0]->has_data_type = 0;
    expect_fail(m, EVO_ERR_PARSE, "has no data type");

    m = mk_relu_model();
    t = mk_tensor("names", 8, 1, d4);
    add_init(m, t);
    expect_fail(m, EVO_ERR_UNSUPPORTED, "initializer 'names' is a string tensor");

    m = mk_relu_model();
    add_init(m, mk_tensor("c", 14, 0, NULL));
    expect_fail(m, EVO_ERR_UNSUPPORTED, "complex64");

    m = mk_relu_model();
    add_init(m, mk_f32("W", 1, d4, f, 4));
    add_init(m, mk_f32("W", 1, d4, f, 4));
    expect_fail(m, EVO_ERR_GRAPH, "initializer 'W' is defined twice");

    m = mk_relu_model();
    add_init(m, mk_f32("", 1, d4, f, 4));
    expect_fail(m, EVO_ERR_PARSE, "initializer #0 has no name");

    /* a bad attribute tensor names the node */
    m = mk_relu_model();
    attr_tensor(m->graph->node[0], "t", mk_tensor("", 1, 2, neg));
    expect_fail(m, EVO_ERR_PARSE, "attribute 't' of node 'relu' (Relu)");
}

static void test_bad_structure(void **state)
{
    (void)state;
    int64_t d[2] = {2, 3};
    /* a cycle */
    Onnx__ModelProto *m = mk_model(13);
    add_input(m, mk_vi("X", 1, 2, d, NULL));
    mk_node(m, "Add", "a", "X,B", "A");
    mk_node(m, "Relu", "b", "A", "B");
    add_output(m, mk_vi("B", 1, 2, d, NULL));
    expect_fail(m, EVO_ERR_GRAPH, "cycle");

    /* an input nothing defines */
    m = mk_relu_model();
    mk_node(m, "Add", "add", "Y,ghost", "Z");
    expect_fail(m, EVO_ERR_GRAPH, "node 'add' (Add) reads tensor 'ghost'");

    /* two nodes writing one tensor */
    m = mk_relu_model();
    mk_node(m, "Neg", "again", "X", "Y");
    expect_fail(m, EVO_ERR_GRAPH, "tensor 'Y' is defined twice");

    /* a node writing a graph input, or an initializer */
    m = mk_relu_model();
    mk_node(m, "Neg", "over", "Y", "X");
    expect_fail(m, EVO_ERR_GRAPH,
                "node 'over' (Neg) writes tensor 'X', which is already a graph input");
    m = mk_relu_model();
    float one = 1;
    add_init(m, mk_f32("W", 0, NULL, &one, 1));
    mk_node(m, "Neg", "", "Y", "W");
    expect_fail(m, EVO_ERR_GRAPH, "node #1 (Neg) writes tensor 'W'");

    /* graph outputs and inputs listed twice, unnamed, or never computed */
    m = mk_relu_model();
    add_output(m, mk_vi("Y", 1, 2, d, NULL));
    expect_fail(m, EVO_ERR_GRAPH, "graph output 'Y' is listed twice");
    m = mk_relu_model();
    add_input(m, mk_vi("X", 1, 2, d, NULL));
    expect_fail(m, EVO_ERR_GRAPH, "graph input 'X' is listed twice");
    m = mk_relu_model();
    add_output(m, mk_vi("nothing", 1, 2, d, NULL));
    expect_fail(m, EVO_ERR_GRAPH, "graph output 'nothing' is never computed");
    m = mk_relu_model();
    add_input(m, mk_vi("", 1, 2, d, NULL));
    expect_fail(m, EVO_ERR_PARSE, "graph input #1 has no name");

    /* node problems */
    m = mk_relu_model();
    mk_node(m, "", "noop", "X", "Z");
    expect_fail(m, EVO_ERR_PARSE, "node #1 has no op_type");
    m = mk_relu_model();
    attr_int(m->graph->node[0], "alpha", 1);
    attr_int(m->graph->node[0], "alpha", 2);
    expect_fail(m, EVO_ERR_PARSE, "attribute 'alpha' twice");
    m = mk_relu_model();
    mk_attr(m->graph->node[0], "", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    expect_fail(m, EVO_ERR_PARSE, "attribute without a name");
    m = mk_relu_model();
    mk_attr(m->graph->node[0], "tp", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO);
    expect_fail(m, EVO_ERR_UNSUPPORTED, "attribute 'tp'");
    m = mk_relu_model();
    mk_attr(m->graph->node[0], "untyped", 0)->has_type = 0;
    expect_fail(m, EVO_ERR_PARSE, "without a type or value");

    /* graph input types */
    m = mk_model(13);
    int64_t r9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    add_input(m, mk_vi("X", 1, 9, r9, NULL));
    expect_fail(m, EVO_ERR_LIMIT, "graph input 'X' has rank 9");
    m = mk_model(13);
    int64_t big[1] = {(int64_t)INT32_MAX + 1};
    add_input(m, mk_vi("X", 1, 1, big, NULL));
    expect_fail(m, EVO_ERR_LIMIT, "graph input 'X' has size 2147483648");
    m = mk_model(13);
    add_input(m, mk_vi("X", 19, 1, d, NULL));
    expect_fail(m, EVO_ERR_UNSUPPORTED, "graph input 'X' has data type float8e5m2");
    m = mk_model(13);
    Onnx__ValueInfoProto *vi = mk_vi("seq", 1, 1, d, NULL);
    vi->type->value_case = ONNX__TYPE_PROTO__VALUE__NOT_SET;
    add_input(m, vi);
    expect_fail(m, EVO_ERR_UNSUPPORTED, "graph input 'seq' is not a tensor");

    /* the node limit */
    m = mk_relu_model();
    mk_node(m, "Neg", "n2", "Y", "Z");
    evo_import_options opt = {.limits = {.max_nodes = 1}};
    expect_fail_opt(m, &opt, EVO_ERR_LIMIT, "2 nodes, more than the limit of 1");
    /* no graph */
    m = mk_relu_model();
    m->graph = NULL;
    expect_fail(m, EVO_ERR_PARSE, "no graph");
}

/* A chain of If nodes whose then_branch holds the next If, depth deep. */
static Onnx__GraphProto *mk_nested(int depth)
{
    Onnx__GraphProto *g = tb_alloc(sizeof *g);
    onnx__graph_proto__init(g);
    if (depth == 0)
        return g;
    Onnx__NodeProto *n = tb_alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = tb_str("If");
    n->attribute = tb_alloc(sizeof(void *));
    Onnx__AttributeProto *a = tb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tb_str("then_branch");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->g = mk_nested(depth - 1);
    n->attribute[0] = a;
    n->n_attribute = 1;
    g->node = tb_alloc(sizeof(void *));
    g->node[0] = n;
    g->n_node = 1;
    return g;
}

static size_t nested_prepend(uint8_t *buf, size_t *pos, const uint8_t *bytes, size_t n)
{
    *pos -= n;
    memcpy(buf + *pos, bytes, n);
    return n;
}

/* Prepend a length-delimited field header (tag, varint length) for the len
 * bytes that follow; returns the new total. */
static size_t nested_wrap(uint8_t *buf, size_t *pos, size_t len, uint8_t tag)
{
    uint8_t hdr[12];
    size_t n = 0;
    hdr[n++] = tag;
    size_t v = len;
    do {
        hdr[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return len + nested_prepend(buf, pos, hdr, n);
}

static void test_nested_subgraphs(void **state)
{
    (void)state;
    /* a shallow subgraph is kept as a marker */
    Onnx__ModelProto *m = mk_model(13);
    m->graph = mk_nested(2);
    m->graph->input = tb_alloc(sizeof(void *));
    m->graph->node[0]->input = tb_split("c", &m->graph->node[0]->n_input);
    int64_t d[1] = {1};
    add_input(m, mk_vi("c", 9, 1, d, NULL));
    evo_graph *g;
    evo_error err;
    assert_int_equal(load(m, NULL, &g, &err), EVO_OK);
    assert_int_equal(g->nodes[0].attrs[0].type, EVO_ATTR_GRAPH);
    evo_graph_free(g);
    /* A deep one is refused before protobuf-c recurses into it (100000
     * levels would exhaust the stack). Built as wire bytes from the inside
     * out, since the packer recurses as well. */
    size_t depth = 100000, cap = depth * 32 + 64, pos = cap;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    static const uint8_t attr_head[] = {0x0a, 1, 'g', 0xa0, 0x01, 5}; /* name, type */
    static const uint8_t node_head[] = {0x22, 2, 'I', 'f'};           /* op_type */
    size_t len = 0; /* bytes of the current (innermost so far) Graph */
    for (size_t level = 0; level < depth; level++) {
        /* Attribute{name, type, g = Graph}: prepend field 6, then the head */
        len = nested_wrap(buf, &pos, len, 0x32);
        len += nested_prepend(buf, &pos, attr_head, sizeof attr_head);
        len = nested_wrap(buf, &pos, len, 0x2a); /* Node.attribute */
        len += nested_prepend(buf, &pos, node_head, sizeof node_head);
        len = nested_wrap(buf, &pos, len, 0x0a); /* Graph.node */
    }
    len = nested_wrap(buf, &pos, len, 0x3a); /* Model.graph */
    evo_graph *gd = (evo_graph *)(uintptr_t)1;
    assert_int_equal(evo_onnx_load_buffer(buf + pos, len, NULL, "deep.onnx", NULL, &gd, &err),
                     EVO_ERR_LIMIT);
    assert_null(gd);
    assert_string_equal(err.msg,
                        "deep.onnx: not a valid ONNX model (subgraphs nested more than 64 deep)");
    free(buf);
}

/* ---------------------------------------------------------------- shared models */

typedef struct shared_stats {
    int loaded, failed, by_status[EVO_STATUS_COUNT_];
    int listed;
    int lacking_types; /* failures for element types evo_dtype cannot name, or non-tensors */
} shared_stats;

static void shared_try(const char *path, shared_stats *st)
{
    evo_graph *g = NULL;
    evo_error err;
    evo_error_clear(&err);
    evo_status rv = evo_onnx_load(path, NULL, &g, &err);
    if (rv == EVO_OK) {
        assert_non_null(g);
        st->loaded++;
        evo_graph_free(g);
        return;
    }
    assert_null(g);
    assert_true(rv > 0 && rv < EVO_STATUS_COUNT_);
    st->failed++;
    st->by_status[rv]++;
    if (rv == EVO_ERR_UNSUPPORTED &&
        ((strstr(err.msg, " has data type ") && strstr(err.msg, "which evo does not support")) ||
         strstr(err.msg, "is not a tensor (sequences")))
        st->lacking_types++;
    if (err.msg[0] == '\0' || err.code != rv)
        fail_msg("%s failed with %s and no message", path, evo_strerror(rv));
    if (st->listed++ < 20)
        printf("  %s: %s\n", evo_strerror(rv), err.msg);
}

static int shared_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load DIR/ * /model.onnx; returns the number of models found. */
static int shared_dir(const char *dir, shared_stats *st)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
            assert_non_null(names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, shared_cmp);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, names[i]);
        if (access(path, R_OK) == 0) {
            shared_try(path, st);
            found++;
        }
        free(names[i]);
    }
    free(names);
    return found;
}

/* Load DIR/ *.onnx (the light models keep one model per file). */
static int shared_flat_dir(const char *dir, shared_stats *st)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
            continue;
        char path[2048];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        shared_try(path, st);
        found++;
    }
    closedir(d);
    return found;
}

static void shared_report(const char *what, const shared_stats *st)
{
    printf("%s: %d loaded, %d failed", what, st->loaded, st->failed);
    for (int s = 1; s < EVO_STATUS_COUNT_; s++)
        if (st->by_status[s])
            printf(", %d %s", st->by_status[s], evo_strerror((evo_status)s));
    printf("; %d of the failures use element types evo_dtype has no value for (float8, "
           "int4, ...) or non-tensor values\n",
           st->lacking_types);
}

static void test_shared_models(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models", EVO_SHARED_DIR);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("shared test data not found at %s; skipping\n", EVO_SHARED_DIR);
        skip();
    }
    /* Real networks: the zoo and ONNX's "light" model set must all load. */
    shared_stats zoo = {0};
    int nzoo = shared_dir(dir, &zoo);
    snprintf(dir, sizeof dir, "%s/onnx-tests/light", EVO_SHARED_DIR);
    nzoo += shared_flat_dir(dir, &zoo);
    shared_report("zoo and light models", &zoo);
    assert_true(nzoo > 0);
    assert_int_equal(zoo.loaded, nzoo);

    shared_stats tests = {0};
    int ntests = 0;
    const char *groups[] = {"node", "pytorch-converted", "pytorch-operator", "simple", "light"};
    for (size_t k = 0; k < sizeof groups / sizeof groups[0]; k++) {
        snprintf(dir, sizeof dir, "%s/onnx-tests/%s", EVO_SHARED_DIR, groups[k]);
        ntests += shared_dir(dir, &tests);
    }
    shared_report("onnx-tests models", &tests);
    assert_true(ntests > 0);
    /* About 10% of the ONNX tests exercise element types newer than
     * bfloat16 (float8, int4, uint2, ...) or sequences and optionals, which
     * evo's IR cannot represent; they must fail with a precise
     * EVO_ERR_UNSUPPORTED. Of the rest, at least 95% must load; in total at
     * least 85%. */
    assert_true(tests.loaded * 100 >= (ntests - tests.lacking_types) * 95);
    assert_true(tests.loaded * 100 >= ntests * 85);
    /* What fails must be a model evo cannot represent or a broken one, never
     * an I/O, memory or internal problem. */
    assert_int_equal(tests.by_status[EVO_ERR_IO], 0);
    assert_int_equal(tests.by_status[EVO_ERR_NOMEM], 0);
    assert_int_equal(tests.by_status[EVO_ERR_INTERNAL], 0);
    assert_int_equal(tests.by_status[EVO_ERR_INVALID_ARG], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_basic_graph, tb_reset),
        cmocka_unit_test_teardown(test_unsorted_nodes, tb_reset),
        cmocka_unit_test_teardown(test_typed_initializers, tb_reset),
        cmocka_unit_test_teardown(test_attributes, tb_reset),
        cmocka_unit_test_teardown(test_constant_nodes, tb_reset),
        cmocka_unit_test_teardown(test_opset_domains, tb_reset),
        cmocka_unit_test_teardown(test_upgrade_old_forms, tb_reset),
        cmocka_unit_test_teardown(test_upgrade_opset1_drops_and_names, tb_reset),
        cmocka_unit_test_teardown(test_upgrade_legacy_broadcast, tb_reset),
        cmocka_unit_test_setup_teardown(test_external_data, ext_setup, ext_teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, ext_setup, ext_teardown),
        cmocka_unit_test_teardown(test_truncated_and_random, tb_reset),
        cmocka_unit_test_teardown(test_bad_tensors, tb_reset),
        cmocka_unit_test_teardown(test_bad_structure, tb_reset),
        cmocka_unit_test_teardown(test_nested_subgraphs, tb_reset),
        cmocka_unit_test(test_shared_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
