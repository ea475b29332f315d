/*
 * Program builder + executor tests on small hand-built graphs. The real
 * kernels are written elsewhere, so the ops here are test-local: AddK (adds a
 * parsed constant, in-place capable), AddT (two-input add, not in-place),
 * Reverse (uses scratch), CheckPos (fails on a negative input, a data-
 * dependent error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evo/node.h"
#include "exec_internal.h"

/* ---------------------------------------------------------------- test ops */

typedef struct addk_params {
    float k;
} addk_params;

static evo_status addk_parse(const evo_node *node, void *params, evo_error *err)
{
    addk_params *p = params;
    evo_status st = evo_attr_get_float(node, "k", 1.0f, &p->k);
    if (st != EVO_OK)
        return evo_error_set(err, st, "AddK '%s': attribute k must be a float", node->name);
    return EVO_OK;
}

static evo_status same_infer(const evo_kctx *c)
{
    c->out[0]->dtype = c->in[0]->dtype;
    c->out[0]->shape = c->in[0]->shape;
    return EVO_OK;
}

static int64_t numel(const evo_tensor *t)
{
    return evo_shape_numel(&t->shape);
}

static evo_status addk_eval(const evo_kctx *c)
{
    const addk_params *p = c->params;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t i = 0; i < numel(c->in[0]); i++)
        y[i] = x[i] + p->k;
    return EVO_OK;
}

static evo_status addt_eval(const evo_kctx *c)
{
    const float *a = c->in[0]->data, *b = c->in[1]->data;
    float *y = c->out[0]->data;
    for (int64_t i = 0; i < numel(c->in[0]); i++)
        y[i] = a[i] + b[i];
    return EVO_OK;
}

static size_t reverse_scratch(const evo_kctx *c)
{
    /* Shape-only views: data is NULL for non-constant inputs. */
    assert_null(c->in[0]->data);
    return (size_t)numel(c->in[0]) * sizeof(float);
}

static int reverse_saw_scratch;

static evo_status reverse_eval(const evo_kctx *c)
{
    int64_t n = numel(c->in[0]);
    assert_non_null(c->scratch);
    assert_int_equal((uintptr_t)c->scratch % 16, 0);
    assert_true(c->scratch_bytes >= (size_t)n * sizeof(float));
    reverse_saw_scratch = 1;
    float *tmp = c->scratch;
    memcpy(tmp, c->in[0]->data, (size_t)n * sizeof(float));
    float *y = c->out[0]->data;
    for (int64_t i = 0; i < n; i++)
        y[i] = tmp[n - 1 - i];
    return EVO_OK;
}

static evo_status checkpos_eval(const evo_kctx *c)
{
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (int64_t i = 0; i < numel(c->in[0]); i++) {
        if (x[i] < 0)
            return EVO_ERR_INVALID_ARG;
        y[i] = x[i];
    }
    return EVO_OK;
}

static const evo_op_def op_addk = {.name = "AddK",
                                   .flags = EVO_OP_INPLACE,
                                   .min_inputs = 1,
                                   .max_inputs = 1,
                                   .min_outputs = 1,
                                   .max_outputs = 1,
                                   .parse = addk_parse,
                                   .infer = same_infer,
                                   .eval = addk_eval};
static const evo_op_def op_addt = {.name = "AddT",
                                   .min_inputs = 2,
                                   .max_inputs = 2,
                                   .min_outputs = 1,
                                   .max_outputs = 1,
                                   .infer = same_infer,
                                   .eval = addt_eval};
static const evo_op_def op_reverse = {.name = "Reverse",
                                      .min_inputs = 1,
                                      .max_inputs = 1,
                                      .min_outputs = 1,
                                      .max_outputs = 1,
                                      .infer = same_infer,
                                      .scratch = reverse_scratch,
                                      .eval = reverse_eval};
static const evo_op_def op_checkpos = {.name = "CheckPos",
                                       .min_inputs = 1,
                                       .max_inputs = 1,
                                       .min_outputs = 1,
                                       .max_outputs = 1,
                                       .infer = same_infer,
                                       .eval = checkpos_eval};

/* ---------------------------------------------------------------- graph helpers */

#define N 5 /* elements per test tensor */

/* A float32 [N] value with the given extra flags. */
static int32_t tv(evo_graph *g, const char *name, uint32_t flags)
{
    int32_t v;
    assert_int_equal(evo_graph_add_value(g, name, &v), EVO_OK);
    g->values[v].t.dtype = EVO_DT_FLOAT32;
    g->values[v].t.shape.rank = 1;
    g->values[v].t.shape.dims[0] = N;
    g->values[v].flags |= EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE | flags;
    return v;
}

static int32_t tconst(evo_graph *g, const char *name, const float *vals)
{
    int32_t v = tv(g, name, 0);
    float *d = malloc(N * sizeof(float));
    assert_non_null(d);
    memcpy(d, vals, N * sizeof(float));
    evo_shape s = {.rank = 1, .dims = {N}};
    assert_int_equal(evo_value_set_const(g, v, EVO_DT_FLOAT32, &s, d), EVO_OK);
    return v;
}

static int32_t tnode(evo_graph *g, const evo_op_def *op, const char *name, const int32_t *in,
                     int32_t n_in, int32_t out)
{
    int32_t k;
    assert_int_equal(evo_graph_add_node(g, op->name, "", name, in, n_in, &out, 1, &k), EVO_OK);
    g->nodes[k].op = op;
    if (op->parse) {
        evo_error err = {0};
        assert_int_equal(op->parse(&g->nodes[k], g->nodes[k].params, &err), EVO_OK);
    }
    return k;
}

static void add_float_attr(evo_graph *g, int32_t node, const char *name, float f)
{
    evo_attr a = {0};
    a.name = strdup(name);
    a.type = EVO_ATTR_FLOAT;
    a.f = f;
    assert_int_equal(evo_node_add_attr(g, node, &a), EVO_OK);
    evo_error err = {0};
    assert_int_equal(g->nodes[node].op->parse(&g->nodes[node], g->nodes[node].params, &err),
                     EVO_OK);
}

static void set_io(evo_graph *g, const int32_t *in, int32_t n_in, const int32_t *out, int32_t n_out)
{
    g->inputs = malloc(sizeof(int32_t) * (size_t)(n_in ? n_in : 1));
    g->outputs = malloc(sizeof(int32_t) * (size_t)(n_out ? n_out : 1));
    assert_true(g->inputs && g->outputs);
    for (int32_t i = 0; i < n_in; i++)
        g->inputs[i] = in[i];
    for (int32_t i = 0; i < n_out; i++)
        g->outputs[i] = out[i];
    g->n_inputs = n_in;
    g->n_outputs = n_out;
    for (int32_t i = 0; i < n_in; i++)
        g->values[in[i]].flags |= EVO_VALUE_INPUT;
    for (int32_t i = 0; i < n_out; i++)
        g->values[out[i]].flags |= EVO_VALUE_OUTPUT;
    evo_error err = {0};
    evo_status st = evo_graph_validate(g, &err);
    if (st != EVO_OK)
        fail_msg("validate: %s", err.msg);
}

static evo_program *build(const evo_graph *g, bool no_inplace)
{
    evo_program *p = NULL;
    evo_error err = {0};
    evo_program_options opt = {.no_inplace = no_inplace};
    evo_status st = evo_program_build(g, &opt, &p, &err);
    if (st != EVO_OK)
        fail_msg("build: %s", err.msg);
    return p;
}

/* Executor in a fresh malloc'd arena, offset `mis` bytes from its start. */
typedef struct runner {
    evo_exec x;
    unsigned char *mem;
} runner;

static void runner_init(runner *r, const evo_program *p, size_t mis)
{
    size_t sz = evo_program_arena_size(p);
    assert_true(sz > 0);
    r->mem = malloc(sz + mis);
    assert_non_null(r->mem);
    assert_int_equal(evo_exec_init(&r->x, p, r->mem + mis, sz), EVO_OK);
    assert_int_equal((uintptr_t)r->x.activations % EVO_ARENA_ALIGN, 0);
    assert_true((unsigned char *)r->x.tensors >= r->mem + mis);
    assert_true(r->x.activations + p->activation_bytes <= r->mem + mis + sz);
}

static void set_input(runner *r, int32_t i, const float *vals)
{
    evo_tensor *t = evo_exec_input(&r->x, i);
    assert_non_null(t);
    assert_int_equal(t->dtype, EVO_DT_FLOAT32);
    memcpy(t->data, vals, N * sizeof(float));
}

static void expect_output(const runner *r, int32_t i, const float *want)
{
    const evo_tensor *t = evo_exec_output(&r->x, i);
    assert_non_null(t);
    assert_int_equal(evo_shape_numel(&t->shape), N);
    const float *y = t->data;
    for (int k = 0; k < N; k++)
        if (y[k] != want[k])
            fail_msg("output %d[%d] = %g, want %g", (int)i, k, (double)y[k], (double)want[k]);
}

/* Tensor index of the program tensor named `name`. */
static int32_t ptensor(const evo_program *p, const char *name)
{
    for (int32_t t = 0; t < p->n_tensors; t++)
        if (strcmp(p->tensors[t].name, name) == 0)
            return t;
    fail_msg("no program tensor '%s'", name);
    return -1;
}

static const float X[N] = {1, 2, 3, 4, 5};
static const float C[N] = {10, 20, 30, 40, 50};

/* ---------------------------------------------------------------- tests */

/* x -> AddK(k=1) -> a -> AddK(k=2) -> b -> AddT(b, c) -> y */
static evo_graph *make_chain(void)
{
    evo_graph *g = evo_graph_new();
    assert_non_null(g);
    int32_t x = tv(g, "x", 0), a = tv(g, "a", 0), b = tv(g, "b", 0), y = tv(g, "y", 0);
    int32_t c = tconst(g, "c", C);
    tnode(g, &op_addk, "inc1", &x, 1, a);
    int32_t k2 = tnode(g, &op_addk, "inc2", &a, 1, b);
    add_float_attr(g, k2, "k", 2.0f);
    int32_t bc[2] = {b, c};
    tnode(g, &op_addt, "plus", bc, 2, y);
    set_io(g, &x, 1, &y, 1);
    return g;
}

static void test_chain_inplace(void **state)
{
    (void)state;
    evo_graph *g = make_chain();
    float want[N];
    for (int i = 0; i < N; i++)
        want[i] = X[i] + 3 + C[i];
    for (int noinp = 0; noinp < 2; noinp++) {
        evo_program *p = build(g, noinp);
        assert_int_equal(p->n_nodes, 3);
        assert_int_equal(p->n_tensors, 5);
        assert_int_equal(p->n_inputs, 1);
        assert_int_equal(p->n_outputs, 1);
        assert_int_equal(p->weights_bytes, N * sizeof(float));
        const evo_prog_tensor *tc = &p->tensors[ptensor(p, "c")];
        assert_true(tc->flags & EVO_PT_CONST);
        assert_ptr_equal(tc->const_data, g->values[evo_graph_find_value(g, "c")].t.data);
        assert_true(p->tensors[ptensor(p, "x")].flags & EVO_PT_INPUT);
        assert_true(p->tensors[ptensor(p, "y")].flags & EVO_PT_OUTPUT);
        uint64_t oa = p->tensors[ptensor(p, "a")].arena_offset;
        uint64_t ob = p->tensors[ptensor(p, "b")].arena_offset;
        uint64_t ox = p->tensors[ptensor(p, "x")].arena_offset;
        uint64_t oy = p->tensors[ptensor(p, "y")].arena_offset;
        /* b is written over a only with in-place on; x (a graph input) and y
         * (read by nobody after, but computed from b) never share. */
        if (noinp)
            assert_int_not_equal(oa, ob);
        else
            assert_int_equal(oa, ob);
        assert_int_not_equal(ox, oa);
        assert_int_not_equal(oy, ob);
        /* two 64-byte buffers alive at any step */
        assert_int_equal(p->activation_lower_bound, 128);
        assert_int_equal(p->activation_bytes, 128);
        runner r;
        runner_init(&r, p, 0);
        set_input(&r, 0, X);
        int32_t failed = 7;
        assert_int_equal(evo_exec_run(&r.x, &failed), EVO_OK);
        assert_int_equal(failed, -1);
        expect_output(&r, 0, want);
        /* Running again gives the same answer (nothing is consumed). */
        set_input(&r, 0, X);
        assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
        expect_output(&r, 0, want);
        /* Out-of-range input/output indices give NULL. */
        assert_null(evo_exec_input(&r.x, 1));
        assert_null(evo_exec_input(&r.x, -1));
        assert_null(evo_exec_output(&r.x, 1));
        free(r.mem);
        evo_program_free(p);
    }
    evo_graph_free(g);
}

/* x -> AddK a; a -> AddK b (not a's last reader); a -> AddK c (last reader,
 * so in place); y = AddT(b, c) */
static void test_diamond(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = tv(g, "x", 0), a = tv(g, "a", 0), b = tv(g, "b", 0), c = tv(g, "c", 0);
    int32_t y = tv(g, "y", 0);
    tnode(g, &op_addk, "n_a", &x, 1, a);
    tnode(g, &op_addk, "n_b", &a, 1, b);
    tnode(g, &op_addk, "n_c", &a, 1, c);
    int32_t bc[2] = {b, c};
    tnode(g, &op_addt, "n_y", bc, 2, y);
    set_io(g, &x, 1, &y, 1);
    evo_program *p = build(g, false);
    uint64_t oa = p->tensors[ptensor(p, "a")].arena_offset;
    assert_int_not_equal(p->tensors[ptensor(p, "b")].arena_offset, oa);
    assert_int_equal(p->tensors[ptensor(p, "c")].arena_offset, oa);
    /* step 1: a, b alive; step 2: a=c, b; step 3: b, c, y */
    assert_int_equal(p->activation_lower_bound, 192);
    assert_true(p->activation_bytes >= 192);
    runner r;
    runner_init(&r, p, 0);
    set_input(&r, 0, X);
    assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
    float want[N];
    for (int i = 0; i < N; i++)
        want[i] = 2 * (X[i] + 2);
    expect_output(&r, 0, want);
    /* Node by node gives the same result (the profiling hook). The input's
     * buffer may be reused once its last reader ran (here the plan puts b
     * there), so it must be written again before every run. */
    memset(evo_exec_output(&r.x, 0)->data, 0, N * sizeof(float));
    set_input(&r, 0, X);
    for (int32_t k = 0; k < p->n_nodes; k++)
        assert_int_equal(evo_exec_run_node(&r.x, k), EVO_OK);
    expect_output(&r, 0, want);
    assert_int_equal(evo_exec_run_node(&r.x, p->n_nodes), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_exec_run_node(&r.x, -1), EVO_ERR_INVALID_ARG);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);
}

/* Graph outputs: a computed one, a constant and a graph input. The constant's
 * view points at the graph's data; the input's view is the input buffer. */
static void test_const_and_input_outputs(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = tv(g, "x", 0), y = tv(g, "y", 0);
    int32_t c = tconst(g, "c", C);
    tnode(g, &op_addk, "inc", &x, 1, y);
    int32_t outs[3] = {y, c, x};
    set_io(g, &x, 1, outs, 3);
    evo_program *p = build(g, false);
    assert_int_equal(p->n_outputs, 3);
    runner r;
    runner_init(&r, p, 0);
    set_input(&r, 0, X);
    assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
    float want[N];
    for (int i = 0; i < N; i++)
        want[i] = X[i] + 1;
    expect_output(&r, 0, want);
    expect_output(&r, 1, C);
    assert_ptr_equal(evo_exec_output(&r.x, 1)->data, g->values[c].t.data);
    expect_output(&r, 2, X);
    assert_ptr_equal(evo_exec_output(&r.x, 2)->data, evo_exec_input(&r.x, 0)->data);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);

    /* A graph with no node at all: the output is a constant. */
    g = evo_graph_new();
    c = tconst(g, "only", C);
    set_io(g, NULL, 0, &c, 1);
    p = build(g, false);
    assert_int_equal(p->n_nodes, 0);
    assert_int_equal(p->activation_bytes, 0);
    runner_init(&r, p, 3);
    assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
    expect_output(&r, 0, C);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);
}

/* In place is refused when input 0 is a graph output (the caller reads it)
 * or when the sizes differ; the results stay right. */
static void test_inplace_refused(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = tv(g, "x", 0), a = tv(g, "a", 0), b = tv(g, "b", 0);
    tnode(g, &op_addk, "n_a", &x, 1, a);
    tnode(g, &op_addk, "n_b", &a, 1, b);
    int32_t outs[2] = {b, a};
    set_io(g, &x, 1, outs, 2);
    evo_program *p = build(g, false);
    assert_int_not_equal(p->tensors[ptensor(p, "a")].arena_offset,
                         p->tensors[ptensor(p, "b")].arena_offset);
    assert_int_not_equal(p->tensors[ptensor(p, "x")].arena_offset,
                         p->tensors[ptensor(p, "a")].arena_offset);
    runner r;
    runner_init(&r, p, 0);
    set_input(&r, 0, X);
    assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
    float wa[N], wb[N];
    for (int i = 0; i < N; i++) {
        wa[i] = X[i] + 1;
        wb[i] = X[i] + 2;
    }
    expect_output(&r, 0, wb);
    expect_output(&r, 1, wa);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);

    /* same op, but output 0 is int32 of the same byte size: not shared */
    g = make_chain();
    evo_value *vb = &g->values[evo_graph_find_value(g, "b")];
    vb->t.dtype = EVO_DT_INT32;
    p = build(g, false);
    assert_int_not_equal(p->tensors[ptensor(p, "a")].arena_offset,
                         p->tensors[ptensor(p, "b")].arena_offset);
    evo_program_free(p);
    evo_graph_free(g);
}

/* A node whose output was folded to a constant is not run again. */
static void test_folded_node_skipped(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = tv(g, "x", 0), y = tv(g, "y", 0);
    int32_t c0 = tconst(g, "c0", C);
    float c1v[N];
    for (int i = 0; i < N; i++)
        c1v[i] = C[i] + 1;
    int32_t c1 = tv(g, "c1", 0);
    tnode(g, &op_addk, "fold_me", &c0, 1, c1);
    int32_t xc[2] = {x, c1};
    tnode(g, &op_addt, "plus", xc, 2, y);
    set_io(g, &x, 1, &y, 1);
    /* fold after validate, as the constant-folding pass would */
    float *d = malloc(sizeof c1v);
    memcpy(d, c1v, sizeof c1v);
    evo_shape s = {.rank = 1, .dims = {N}};
    evo_value_set_const(g, c1, EVO_DT_FLOAT32, &s, d);
    evo_program *p = build(g, false);
    assert_int_equal(p->n_nodes, 1);
    assert_string_equal(p->nodes[0].name, "plus");
    runner r;
    runner_init(&r, p, 0);
    set_input(&r, 0, X);
    assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
    float want[N];
    for (int i = 0; i < N; i++)
        want[i] = X[i] + c1v[i];
    expect_output(&r, 0, want);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);
}

/* Scratch: planned per node, aligned, apart from the node's own tensors. */
static void test_scratch(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = tv(g, "x", 0), a = tv(g, "a", 0), y = tv(g, "y", 0);
    tnode(g, &op_addk, "inc", &x, 1, a);
    tnode(g, &op_reverse, "rev", &a, 1, y);
    set_io(g, &x, 1, &y, 1);
    evo_program *p = build(g, false);
    const evo_prog_node *n = &p->nodes[1];
    assert_int_equal(n->scratch_bytes, N * sizeof(float));
    assert_int_equal(n->scratch_offset % EVO_ARENA_ALIGN, 0);
    assert_int_equal(p->nodes[0].scratch_bytes, 0);
    for (int32_t i = 0; i < 2; i++) {
        const evo_prog_tensor *t = &p->tensors[i == 0 ? n->in[0] : n->out[0]];
        bool apart = n->scratch_offset + n->scratch_bytes <= t->arena_offset ||
                     t->arena_offset + t->nbytes <= n->scratch_offset;
        assert_true(apart);
    }
    assert_int_equal(p->activation_lower_bound, 192); /* step 1: a, y, scratch */
    runner r;
    runner_init(&r, p, 17);
    set_input(&r, 0, X);
    reverse_saw_scratch = 0;
    assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
    assert_true(reverse_saw_scratch);
    float want[N];
    for (int i = 0; i < N; i++)
        want[i] = X[N - 1 - i] + 1;
    expect_output(&r, 0, want);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);
}

/* Arena size is exact for an aligned pointer; any misalignment works when
 * the caller gives evo_program_arena_size bytes. */
static void test_arena_bounds(void **state)
{
    (void)state;
    evo_graph *g = make_chain();
    evo_program *p = build(g, false);
    size_t sz = evo_program_arena_size(p);
    unsigned char *mem =
        aligned_alloc(EVO_ARENA_ALIGN, (sz + 3 * EVO_ARENA_ALIGN) & ~(size_t)(EVO_ARENA_ALIGN - 1));
    assert_non_null(mem);
    evo_exec x;
    size_t need = sz - (EVO_ARENA_ALIGN - 1); /* no padding for an aligned pointer */
    assert_int_equal(evo_exec_init(&x, p, mem, need - 1), EVO_ERR_NOMEM);
    assert_int_equal(evo_exec_run(&x, NULL), EVO_ERR_INVALID_ARG); /* not initialized */
    assert_int_equal(evo_exec_init(&x, p, mem, 0), EVO_ERR_NOMEM);
    assert_int_equal(evo_exec_init(&x, p, mem, need), EVO_OK);
    assert_ptr_equal(x.tensors, (void *)mem);
    /* Misaligned by 1: needs the worst-case padding, so sz - 1 is too small. */
    assert_int_equal(evo_exec_init(&x, p, mem + 1, sz - 1), EVO_ERR_NOMEM);
    float want[N];
    for (int i = 0; i < N; i++)
        want[i] = X[i] + 3 + C[i];
    for (size_t mis = 1; mis < EVO_ARENA_ALIGN; mis += 7) {
        runner r = {0};
        r.mem = NULL;
        assert_int_equal(evo_exec_init(&r.x, p, mem + mis, sz), EVO_OK);
        assert_int_equal((uintptr_t)r.x.activations % EVO_ARENA_ALIGN, 0);
        assert_true(r.x.activations + p->activation_bytes <= mem + mis + sz);
        set_input(&r, 0, X);
        assert_int_equal(evo_exec_run(&r.x, NULL), EVO_OK);
        expect_output(&r, 0, want);
    }
    assert_int_equal(evo_exec_init(&x, p, NULL, sz), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_exec_init(&x, NULL, mem, sz), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_exec_init(NULL, p, mem, sz), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_program_arena_size(NULL), 0);
    free(mem);
    evo_program_free(p);
    evo_graph_free(g);
}

static void test_eval_failure(void **state)
{
    (void)state;
    evo_graph *g = evo_graph_new();
    int32_t x = tv(g, "x", 0), a = tv(g, "a", 0), y = tv(g, "y", 0);
    tnode(g, &op_addk, "inc", &x, 1, a);
    tnode(g, &op_checkpos, "check", &a, 1, y);
    set_io(g, &x, 1, &y, 1);
    evo_program *p = build(g, false);
    runner r;
    runner_init(&r, p, 0);
    const float neg[N] = {1, 2, -9, 4, 5};
    set_input(&r, 0, neg);
    int32_t failed = -5;
    assert_int_equal(evo_exec_run(&r.x, &failed), EVO_ERR_INVALID_ARG);
    assert_int_equal(failed, 1);
    set_input(&r, 0, X);
    assert_int_equal(evo_exec_run(&r.x, &failed), EVO_OK);
    assert_int_equal(failed, -1);
    free(r.mem);
    evo_program_free(p);
    evo_graph_free(g);
}

static void test_build_errors(void **state)
{
    (void)state;
    evo_error err = {0};
    evo_program *p = (evo_program *)1;

    /* a node without a kernel */
    evo_graph *g = make_chain();
    g->nodes[1].op = NULL;
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_ERR_UNSUPPORTED);
    assert_null(p);
    assert_non_null(strstr(err.msg, "inc2"));
    assert_non_null(strstr(err.msg, "AddK"));
    evo_graph_free(g);

    /* a value without a static shape */
    g = make_chain();
    g->values[evo_graph_find_value(g, "b")].flags &= ~(uint32_t)EVO_VALUE_HAS_SHAPE;
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "'b'"));
    assert_non_null(strstr(err.msg, "inc2"));
    evo_graph_free(g);

    /* a value without a type */
    g = make_chain();
    g->values[evo_graph_find_value(g, "x")].flags &= ~(uint32_t)EVO_VALUE_HAS_TYPE;
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "'x'"));
    evo_graph_free(g);

    /* a shape whose size overflows */
    g = make_chain();
    evo_value *vb = &g->values[evo_graph_find_value(g, "b")];
    vb->t.shape.rank = 3;
    vb->t.shape.dims[0] = vb->t.shape.dims[1] = vb->t.shape.dims[2] = INT32_MAX;
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "'b'"));
    evo_graph_free(g);

    /* wrong arity for the op */
    g = make_chain();
    g->nodes[2].n_inputs = 1;
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "plus"));
    evo_graph_free(g);

    /* no topological order (validate not run) */
    g = evo_graph_new();
    int32_t x = tv(g, "x", 0), y = tv(g, "y", 0);
    tnode(g, &op_addk, "inc", &x, 1, y);
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_ERR_GRAPH);
    assert_int_equal(evo_program_build(NULL, NULL, &p, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
    evo_program_free(NULL);
}

/* Programs can come from files: the executor rejects inconsistent ones. */
static void test_bad_program(void **state)
{
    (void)state;
    evo_graph *g = make_chain();
    evo_program *p = build(g, false);
    size_t sz = evo_program_arena_size(p);
    unsigned char *mem = malloc(sz);
    evo_exec x;
    assert_int_equal(evo_exec_init(&x, p, mem, sz), EVO_OK);

    evo_program bad = *p;
    evo_prog_tensor *tens = malloc(sizeof *tens * (size_t)p->n_tensors);
    evo_prog_node *nodes = malloc(sizeof *nodes * (size_t)p->n_nodes);
    int32_t idx[2];
    memcpy(tens, p->tensors, sizeof *tens * (size_t)p->n_tensors);
    memcpy(nodes, p->nodes, sizeof *nodes * (size_t)p->n_nodes);
    bad.tensors = tens;
    bad.nodes = nodes;
    int32_t ty = ptensor(p, "y");

    /* tensor beyond the activation area */
    tens[ty].arena_offset = p->activation_bytes;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    tens[ty].arena_offset = UINT64_MAX - 63;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    tens[ty] = p->tensors[ty];
    /* size that does not match the shape */
    tens[ty].nbytes = 4;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    tens[ty] = p->tensors[ty];
    /* a node index out of range, and a node writing a constant */
    idx[0] = p->n_tensors;
    nodes[0].out = idx;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    idx[0] = ptensor(p, "c");
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    nodes[0] = p->nodes[0];
    /* an op without eval, a node with too many inputs */
    nodes[0].op = NULL;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    nodes[0] = p->nodes[0];
    nodes[2].n_in = 1;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    nodes[2] = p->nodes[2];
    /* scratch out of range */
    nodes[1].scratch_bytes = 64;
    nodes[1].scratch_offset = p->activation_bytes;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    nodes[1] = p->nodes[1];
    /* an output index out of range, a negative count */
    int32_t badout = 99;
    bad.outputs = &badout;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    bad.outputs = p->outputs;
    bad.n_tensors = -1;
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_program_arena_size(&bad), 0);
    bad.n_tensors = p->n_tensors;
    /* repaired: fine again */
    assert_int_equal(evo_exec_init(&x, &bad, mem, sz), EVO_OK);

    free(tens);
    free(nodes);
    free(mem);
    evo_program_free(p);
    evo_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_inplace),
        cmocka_unit_test(test_diamond),
        cmocka_unit_test(test_const_and_input_outputs),
        cmocka_unit_test(test_inplace_refused),
        cmocka_unit_test(test_folded_node_skipped),
        cmocka_unit_test(test_scratch),
        cmocka_unit_test(test_arena_bounds),
        cmocka_unit_test(test_eval_failure),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_bad_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
