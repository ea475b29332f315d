/*
 * Split plans and ONNX export on hand-built graphs: stage contents and
 * boundaries, constants copied only where used, every cut error, plans from
 * node lists and ranges, and the export of forms that differ from evo's
 * in-memory form (fused activations, old-opset attributes, tensor
 * attributes), checked by unpacking the ModelProto and by re-importing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "evo/split.h"
#include "onnx.pb-c.h"
#include "pass_build.h"
#include "pass_testutil.h"

/*   x -> Conv(w1) -> a -> Relu -> b -> Conv(w2) -> c -> Add(c, b) -> d -> Relu -> y
 * The Add reads b again, so between b and d only b is live: b is a valid
 * cut, c is not (b crosses it too). */
static evo_graph *sg_skip_graph(void)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w1", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_const(g, "w2", 4, (int32_t[]){2, 2, 3, 3}, NULL);
    int32_t c2;
    pb_node(g, "Conv", "conv1", (const char *[]){"x", "w1"}, 2, (const char *[]){"a"}, 1);
    pb_node(g, "Relu", "relu1", (const char *[]){"a"}, 1, (const char *[]){"b"}, 1);
    c2 = pb_node(g, "Conv", "conv2", (const char *[]){"b", "w2"}, 2, (const char *[]){"c"}, 1);
    pb_attr_ints(g, c2, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pb_node(g, "Add", "add", (const char *[]){"c", "b"}, 2, (const char *[]){"d"}, 1);
    pb_node(g, "Relu", "relu2", (const char *[]){"d"}, 1, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

static void sg_feed(const evo_graph *g, ptu_tensor *t)
{
    const evo_value *v = &g->values[g->inputs[0]];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", v->name);
    t->t.dtype = v->t.dtype;
    t->t.shape = v->t.shape;
    evo_shape_nbytes(&v->t.shape, v->t.dtype, &t->nbytes);
    float *d = malloc(t->nbytes);
    for (size_t i = 0; i < t->nbytes / 4; i++)
        d[i] = (float)((int)(i % 9) - 4) * 0.25f;
    t->t.data = d;
}

static bool sg_has_value(const evo_graph *g, const char *name)
{
    return evo_graph_find_value(g, name) >= 0;
}

static void test_cuts_stages(void **state)
{
    (void)state;
    evo_graph *g = sg_skip_graph();
    evo_split_plan plan;
    evo_error err = {0};
    const char *cuts[] = {"d", "a"}; /* any order */
    assert_int_equal(evo_split_plan_from_cuts(g, cuts, 2, &plan, &err), EVO_OK);
    assert_int_equal(plan.n_stages, 3);
    assert_int_equal(plan.stages[0].n_nodes, 1);
    assert_int_equal(plan.stages[1].n_nodes, 3);
    assert_int_equal(plan.stages[2].n_nodes, 1);
    assert_int_equal(plan.stages[0].n_inputs, 1);
    assert_string_equal(plan.stages[0].inputs[0], "x");
    assert_int_equal(plan.stages[0].n_outputs, 1);
    assert_string_equal(plan.stages[0].outputs[0], "a");
    assert_string_equal(plan.stages[1].inputs[0], "a");
    assert_string_equal(plan.stages[1].outputs[0], "d");
    assert_string_equal(plan.stages[2].outputs[0], "y");

    /* constants go only where they are read */
    evo_graph *s0 = NULL, *s1 = NULL, *s2 = NULL;
    assert_int_equal(evo_split_extract(g, &plan, 0, &s0, &err), EVO_OK);
    assert_int_equal(evo_split_extract(g, &plan, 1, &s1, &err), EVO_OK);
    assert_int_equal(evo_split_extract(g, &plan, 2, &s2, &err), EVO_OK);
    assert_true(sg_has_value(s0, "w1") && !sg_has_value(s0, "w2"));
    assert_true(sg_has_value(s1, "w2") && !sg_has_value(s1, "w1"));
    assert_true(!sg_has_value(s2, "w1") && !sg_has_value(s2, "w2"));
    assert_string_equal(s1->name, "handmade_stage1");
    assert_true(s1->values[s1->inputs[0]].flags & EVO_VALUE_HAS_SHAPE);

    /* chained stages compute what the whole graph does */
    ptu_tensor x, *want = NULL, *o0 = NULL, *o1 = NULL, *o2 = NULL;
    sg_feed(g, &x);
    assert_int_equal(ptu_run(g, &x, 1, &want, NULL), EVO_OK);
    assert_int_equal(ptu_run(s0, &x, 1, &o0, NULL), EVO_OK);
    assert_int_equal(ptu_run(s1, o0, 1, &o1, NULL), EVO_OK);
    assert_int_equal(ptu_run(s2, o1, 1, &o2, NULL), EVO_OK);
    assert_string_equal(o2[0].name, "y");
    assert_true(ptu_close(&o2[0], &want[0], 0.0, 0.0));
    ptu_free_outs(want, 1);
    ptu_free_outs(o0, 1);
    ptu_free_outs(o1, 1);
    ptu_free_outs(o2, 1);
    ptu_tensor_free(&x);
    evo_graph_free(s0);
    evo_graph_free(s1);
    evo_graph_free(s2);
    evo_split_plan_free(&plan);
    evo_graph_free(g);
}

static void sg_expect_cut_error(evo_graph *g, const char *const *cuts, size_t n, evo_status code,
                                const char *needle)
{
    evo_split_plan plan;
    evo_error err = {0};
    assert_int_equal(evo_split_plan_from_cuts(g, cuts, n, &plan, &err), code);
    assert_int_equal(plan.n_stages, 0);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_cut_errors(void **state)
{
    (void)state;
    evo_graph *g = sg_skip_graph();
    sg_expect_cut_error(g, (const char *[]){"nope"}, 1, EVO_ERR_NOT_FOUND, "'nope'");
    sg_expect_cut_error(g, (const char *[]){"x"}, 1, EVO_ERR_INVALID_ARG, "graph input");
    sg_expect_cut_error(g, (const char *[]){"w1"}, 1, EVO_ERR_INVALID_ARG, "constant");
    sg_expect_cut_error(g, (const char *[]){"a", "a"}, 2, EVO_ERR_INVALID_ARG, "twice");
    sg_expect_cut_error(g, (const char *[]){"y"}, 1, EVO_ERR_INVALID_ARG, "nothing to compute");
    /* c does not separate: b is computed before it and read after it */
    sg_expect_cut_error(g, (const char *[]){"c"}, 1, EVO_ERR_GRAPH, "cut 'c' does not separate");
    sg_expect_cut_error(g, (const char *[]){"a", "c"}, 2, EVO_ERR_GRAPH, "tensor 'b'");
    evo_graph_free(g);

    /* two outputs of one node cannot be two cuts */
    g = pb_new(13);
    pb_input(g, "x", 2, (int32_t[]){2, 4});
    int32_t s =
        pb_node(g, "Split", "split", (const char *[]){"x"}, 1, (const char *[]){"p", "q"}, 2);
    pb_attr_i(g, s, "axis", 1);
    pb_node(g, "Add", "add", (const char *[]){"p", "q"}, 2, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    sg_expect_cut_error(g, (const char *[]){"p", "q"}, 2, EVO_ERR_INVALID_ARG, "same node");
    /* but cutting at p alone cannot separate: q crosses too */
    sg_expect_cut_error(g, (const char *[]){"p"}, 1, EVO_ERR_GRAPH, "tensor 'q'");
    evo_graph_free(g);
}

/* Node lists from a "partitioner": finish fills boundaries; bad lists are
 * refused with the node named. */
static void test_plan_from_nodes(void **state)
{
    (void)state;
    evo_graph *g = sg_skip_graph();
    evo_error err = {0};
    evo_split_plan plan = {0};
    plan.n_stages = 2;
    plan.stages = calloc(2, sizeof *plan.stages);
    plan.stages[0].nodes = malloc(8 * sizeof(int32_t));
    plan.stages[1].nodes = malloc(8 * sizeof(int32_t));
    /* stage 0: conv1 relu1 conv2 (order positions 0..2); stage 1: add relu2 */
    for (int k = 0; k < 3; k++)
        plan.stages[0].nodes[k] = g->order[k];
    plan.stages[0].n_nodes = 3;
    for (int k = 0; k < 2; k++)
        plan.stages[1].nodes[k] = g->order[3 + k];
    plan.stages[1].n_nodes = 2;
    assert_int_equal(evo_split_plan_finish(g, &plan, &err), EVO_OK);
    /* two tensors cross: b and c, in the order they are computed */
    assert_int_equal(plan.stages[1].n_inputs, 2);
    assert_string_equal(plan.stages[1].inputs[0], "b");
    assert_string_equal(plan.stages[1].inputs[1], "c");
    assert_int_equal(plan.stages[0].n_outputs, 2);
    /* finish twice is fine (names replaced) */
    assert_int_equal(evo_split_plan_finish(g, &plan, &err), EVO_OK);

    /* a node in two stages */
    plan.stages[1].nodes[0] = g->order[0];
    assert_int_equal(evo_split_plan_finish(g, &plan, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "conv1"));
    /* stage 0 reads what stage 1 computes */
    plan.stages[0].nodes[2] = g->order[3];
    plan.stages[1].nodes[0] = g->order[2];
    assert_int_equal(evo_split_plan_finish(g, &plan, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "'c'"));
    /* a node missing: its output is read by no stage's producer */
    plan.stages[0].nodes[2] = g->order[2];
    plan.stages[1].nodes[0] = g->order[3];
    plan.stages[0].n_nodes = 2;
    assert_int_equal(evo_split_plan_finish(g, &plan, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "no stage computes"));
    /* out of range */
    plan.stages[0].nodes[1] = 99;
    assert_int_equal(evo_split_plan_finish(g, &plan, &err), EVO_ERR_INVALID_ARG);
    evo_split_plan_free(&plan);
    assert_null(plan.stages);

    /* ranges */
    assert_int_equal(evo_split_plan_from_ranges(g, (int32_t[]){0, 2}, 2, &plan, &err), EVO_OK);
    assert_int_equal(plan.stages[1].n_inputs, 1);
    assert_string_equal(plan.stages[1].inputs[0], "b");
    evo_split_plan_free(&plan);
    assert_int_equal(evo_split_plan_from_ranges(g, (int32_t[]){1, 2}, 2, &plan, &err),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_split_plan_from_ranges(g, (int32_t[]){0, 3, 3}, 3, &plan, &err),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_split_plan_from_ranges(g, (int32_t[]){0, 5}, 2, &plan, &err),
                     EVO_ERR_INVALID_ARG);
    evo_graph *s = NULL;
    assert_int_equal(evo_split_extract(g, &plan, 0, &s, &err), EVO_ERR_INVALID_ARG);
    assert_null(s);
    evo_graph_free(g);
}

/* ---------------------------------------------------------------- export */

static Onnx__ModelProto *sg_export(const evo_graph *g)
{
    void *buf = NULL;
    size_t len = 0;
    evo_error err = {0};
    if (evo_onnx_export_buffer(g, &buf, &len, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(m);
    return m;
}

static const Onnx__NodeProto *sg_find_node(const Onnx__ModelProto *m, const char *op)
{
    for (size_t i = 0; i < m->graph->n_node; i++)
        if (strcmp(m->graph->node[i]->op_type, op) == 0)
            return m->graph->node[i];
    return NULL;
}

static const Onnx__AttributeProto *sg_find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

/* Export, import, infer, and compare outputs with the original graph. */
static void sg_roundtrip(const evo_graph *g)
{
    void *buf = NULL;
    size_t len = 0;
    evo_error err = {0};
    assert_int_equal(evo_onnx_export_buffer(g, &buf, &len, &err), EVO_OK);
    evo_graph *r = NULL;
    if (evo_onnx_load_buffer(buf, len, NULL, "rt", NULL, &r, &err) != EVO_OK ||
        evo_graph_bind_dims(r, NULL, 0, &err) != EVO_OK ||
        evo_graph_infer(r, NULL, NULL, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    free(buf);
    ptu_tensor x, *a = NULL, *b = NULL;
    sg_feed(g, &x);
    assert_int_equal(ptu_run(g, &x, 1, &a, NULL), EVO_OK);
    assert_int_equal(ptu_run(r, &x, 1, &b, NULL), EVO_OK);
    for (int32_t k = 0; k < g->n_outputs; k++) {
        assert_string_equal(a[k].name, b[k].name);
        assert_true(ptu_close(&b[k], &a[k], 1e-6, 1e-7));
    }
    ptu_free_outs(a, g->n_outputs);
    ptu_free_outs(b, r->n_outputs);
    ptu_tensor_free(&x);
    evo_graph_free(r);
}

/* A fused activation is written back as its own node. */
static void test_export_fused(void **state)
{
    (void)state;
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 2, 4, 4});
    pb_const(g, "w", 4, (int32_t[]){2, 2, 1, 1}, NULL);
    pb_scalar(g, "lo", 0.0f);
    pb_scalar(g, "hi", 0.5f);
    pb_node(g, "Conv", "conv", (const char *[]){"x", "w"}, 2, (const char *[]){"c"}, 1);
    pb_node(g, "Clip", "clip", (const char *[]){"c", "lo", "hi"}, 3, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    evo_error err = {0};
    assert_int_equal(evo_graph_optimize(g, NULL, NULL, &err), EVO_OK);
    assert_int_equal(g->n_nodes, 1);
    Onnx__ModelProto *m = sg_export(g);
    assert_int_equal(m->ir_version, 8);
    assert_int_equal(m->graph->n_node, 2);
    const Onnx__NodeProto *clip = sg_find_node(m, "Clip");
    assert_non_null(clip);
    assert_int_equal(clip->n_input, 3);
    assert_string_equal(clip->output[0], "y");
    assert_string_equal(m->graph->output[0]->name, "y");
    /* typed and shaped: the intermediate has value_info */
    assert_true(m->graph->n_value_info >= 1);
    assert_int_equal(m->graph->value_info[0]->type->tensor_type->shape->n_dim, 4);
    onnx__model_proto__free_unpacked(m, NULL);
    sg_roundtrip(g);
    evo_graph_free(g);
}

/* Clip-6 and Slice-1 had attributes where the newest forms have inputs. */
static void test_export_old_opset(void **state)
{
    (void)state;
    evo_graph *g = pb_new(9);
    pb_input(g, "x", 2, (int32_t[]){3, 6});
    pb_scalar(g, "lo", -0.5f);
    pb_scalar(g, "hi", 0.75f);
    int32_t v;
    int64_t *starts = malloc(2 * sizeof(int64_t)), *ends = malloc(2 * sizeof(int64_t));
    starts[0] = 1;
    starts[1] = 0;
    ends[0] = 3;
    ends[1] = 4;
    evo_shape s1 = pb_shape(1, (int32_t[]){2});
    evo_graph_add_value(g, "st", &v);
    evo_value_set_const(g, v, EVO_DT_INT64, &s1, starts);
    evo_graph_add_value(g, "en", &v);
    evo_value_set_const(g, v, EVO_DT_INT64, &s1, ends);
    pb_node(g, "Clip", "clip", (const char *[]){"x", "lo", "hi"}, 3, (const char *[]){"c"}, 1);
    pb_node(g, "Slice", "slice", (const char *[]){"c", "st", "en"}, 3, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    Onnx__ModelProto *m = sg_export(g);
    const Onnx__NodeProto *clip = sg_find_node(m, "Clip");
    const Onnx__NodeProto *slice = sg_find_node(m, "Slice");
    assert_int_equal(clip->n_input, 1);
    assert_float_equal(sg_find_attr(clip, "min")->f, -0.5f, 0.0f);
    assert_float_equal(sg_find_attr(clip, "max")->f, 0.75f, 0.0f);
    assert_int_equal(slice->n_input, 1);
    assert_int_equal(sg_find_attr(slice, "starts")->n_ints, 2);
    assert_int_equal(sg_find_attr(slice, "ends")->ints[1], 4);
    assert_int_equal(m->graph->n_initializer, 0); /* all became attributes */
    assert_int_equal(m->opset_import[0]->version, 9);
    onnx__model_proto__free_unpacked(m, NULL);
    sg_roundtrip(g);
    evo_graph_free(g);

    /* a computed bound cannot become an attribute */
    g = pb_new(9);
    pb_input(g, "x", 2, (int32_t[]){3, 6});
    pb_input(g, "lo", 0, NULL);
    pb_node(g, "Clip", "clip", (const char *[]){"x", "lo"}, 2, (const char *[]){"y"}, 1);
    pb_output(g, "y");
    pb_finish(g);
    void *buf = NULL;
    size_t len = 0;
    evo_error err = {0};
    assert_int_equal(evo_onnx_export_buffer(g, &buf, &len, &err), EVO_ERR_UNSUPPORTED);
    assert_null(buf);
    assert_non_null(strstr(err.msg, "'clip'"));
    evo_graph_free(g);
}

/* Attributes of every kind survive export and import. */
static void test_export_attrs(void **state)
{
    (void)state;
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, 1, 5, 5});
    int32_t p =
        pb_node(g, "AveragePool", "pool", (const char *[]){"x"}, 1, (const char *[]){"y"}, 1);
    pb_attr_ints(g, p, "kernel_shape", (int64_t[]){3, 3}, 2);
    pb_attr_ints(g, p, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    pb_attr_i(g, p, "count_include_pad", 1);
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup("auto_pad");
    a.type = EVO_ATTR_STRING;
    a.s = strdup("NOTSET");
    assert_int_equal(evo_node_add_attr(g, p, &a), EVO_OK);
    /* an input no node reads is still written (inputs are the interface) */
    pb_input(g, "unused", 1, (int32_t[]){2});
    pb_output(g, "y");
    pb_finish(g);
    Onnx__ModelProto *m = sg_export(g);
    const Onnx__NodeProto *n = sg_find_node(m, "AveragePool");
    assert_int_equal(sg_find_attr(n, "kernel_shape")->n_ints, 2);
    assert_int_equal(sg_find_attr(n, "count_include_pad")->i, 1);
    assert_int_equal(sg_find_attr(n, "auto_pad")->s.len, 6);
    assert_int_equal(m->graph->n_input, 2);
    onnx__model_proto__free_unpacked(m, NULL);

    /* tensor attributes: written as TensorProto with raw_data */
    evo_graph *h = pb_new(13);
    pb_input(h, "x", 2, (int32_t[]){2, 3});
    int32_t c = pb_node(h, "Add", "add", (const char *[]){"x", "x"}, 2, (const char *[]){"y"}, 1);
    memset(&a, 0, sizeof a);
    a.name = strdup("note");
    a.type = EVO_ATTR_TENSOR;
    a.tensor.dtype = EVO_DT_FLOAT32;
    a.tensor.shape = pb_shape(1, (int32_t[]){2});
    a.tensor.data = malloc(8);
    ((float *)a.tensor.data)[0] = 1.5f;
    ((float *)a.tensor.data)[1] = -2.0f;
    assert_int_equal(evo_node_add_attr(h, c, &a), EVO_OK);
    pb_output(h, "y");
    pb_finish(h);
    m = sg_export(h);
    const Onnx__AttributeProto *t = sg_find_attr(sg_find_node(m, "Add"), "note");
    assert_non_null(t->t);
    assert_int_equal(t->t->raw_data.len, 8);
    float back[2];
    memcpy(back, t->t->raw_data.data, 8);
    assert_float_equal(back[1], -2.0f, 0.0f);
    onnx__model_proto__free_unpacked(m, NULL);
    evo_graph_free(h);
    evo_graph_free(g);

    /* bad arguments */
    void *buf;
    size_t len;
    evo_error err = {0};
    assert_int_equal(evo_onnx_export_buffer(NULL, &buf, &len, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_onnx_export(NULL, NULL, &err), EVO_ERR_INVALID_ARG);
    g = sg_skip_graph();
    assert_int_equal(evo_onnx_export(g, "/nonexistent-dir/x.onnx", &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.onnx"));
    evo_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuts_stages),      cmocka_unit_test(test_cut_errors),
        cmocka_unit_test(test_plan_from_nodes),  cmocka_unit_test(test_export_fused),
        cmocka_unit_test(test_export_old_opset), cmocka_unit_test(test_export_attrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
