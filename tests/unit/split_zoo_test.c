/*
 * Splitting and ONNX export on every zoo model.
 *
 * Cuts are chosen automatically: positions in the topological order where
 * exactly one computed tensor is live (block boundaries, also in resnets),
 * the ones nearest 1/4, 1/2 and 3/4 of the way. Running the stages in
 * sequence, feeding cut tensors across by name, must give the model's
 * outputs. The same with stages made from order ranges (where several
 * tensors cross, e.g. inside a residual block). Exported models and stages
 * are imported again and must give the same outputs too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "evo/split.h"
#include "pass_testutil.h"

#define SZ_MAX_POOL 64

/* Named tensors produced so far in a stage chain. */
typedef struct sz_pool {
    ptu_tensor t[SZ_MAX_POOL];
    int n;
} sz_pool;

static void sz_pool_free(sz_pool *p)
{
    for (int i = 0; i < p->n; i++)
        ptu_tensor_free(&p->t[i]);
    p->n = 0;
}

static bool sz_runs(const evo_graph *g, int32_t i)
{
    const evo_node *n = &g->nodes[i];
    for (int32_t k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && !(g->values[n->outputs[k]].flags & EVO_VALUE_CONST))
            return true;
    return false;
}

/* Tensors that are the only live computed tensor right after some node,
 * in order; returns how many (at most cap). */
static int sz_single_live(const evo_graph *g, int32_t *cands, int cap)
{
    int32_t *pos = calloc((size_t)g->n_nodes + 1, sizeof *pos);
    int32_t *last = malloc(((size_t)g->n_values + 1) * sizeof *last);
    int32_t *first = malloc(((size_t)g->n_values + 1) * sizeof *first);
    for (int32_t v = 0; v < g->n_values; v++)
        last[v] = first[v] = -1;
    for (int32_t k = 0; k < g->n_order; k++)
        pos[g->order[k]] = k;
    for (int32_t k = 0; k < g->n_order; k++) {
        const evo_node *n = &g->nodes[g->order[k]];
        if (!sz_runs(g, g->order[k]))
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] >= 0)
                last[n->inputs[j]] = k;
        for (int32_t j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] >= 0)
                first[n->outputs[j]] = k;
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
        last[g->outputs[k]] = INT32_MAX;
    int n = 0;
    for (int32_t k = 0; k < g->n_order && n < cap; k++) {
        int live = 0;
        int32_t which = -1;
        for (int32_t v = 0; v < g->n_values; v++) {
            const evo_value *val = &g->values[v];
            if ((val->flags & (EVO_VALUE_CONST | EVO_VALUE_INPUT)) || first[v] < 0)
                continue;
            if (first[v] <= k && last[v] > k) {
                live++;
                which = v;
            }
        }
        if (live == 1 && !(g->values[which].flags & EVO_VALUE_OUTPUT) &&
            (n == 0 || cands[n - 1] != which))
            cands[n++] = which;
    }
    free(pos);
    free(last);
    free(first);
    return n;
}

/* Run every stage of plan in order; then compare the model outputs with
 * want (graph-output order of g). export_stages: round-trip each stage
 * through ONNX export and import first. */
static void sz_run_chain(const evo_graph *g, const evo_split_plan *plan, const ptu_tensor *in,
                         const ptu_tensor *want, bool export_stages)
{
    sz_pool pool = {.n = 1};
    pool.t[0] = *in;
    pool.t[0].t.data = malloc(in->nbytes);
    memcpy(pool.t[0].t.data, in->t.data, in->nbytes);
    evo_error err = {0};
    for (int32_t s = 0; s < plan->n_stages; s++) {
        evo_graph *sg = NULL;
        assert_int_equal(evo_split_extract(g, plan, s, &sg, &err), EVO_OK);
        assert_int_equal(sg->n_inputs, plan->stages[s].n_inputs);
        assert_int_equal(sg->n_outputs, plan->stages[s].n_outputs);
        if (export_stages) {
            void *buf = NULL;
            size_t len = 0;
            assert_int_equal(evo_onnx_export_buffer(sg, &buf, &len, &err), EVO_OK);
            evo_graph_free(sg);
            sg = NULL;
            assert_int_equal(evo_onnx_load_buffer(buf, len, NULL, "stage", NULL, &sg, &err),
                             EVO_OK);
            free(buf);
            assert_int_equal(evo_graph_bind_dims(sg, NULL, 0, &err), EVO_OK);
            if (evo_graph_infer(sg, NULL, NULL, &err) != EVO_OK)
                fail_msg("%s", err.msg);
        }
        ptu_tensor *outs = NULL;
        assert_int_equal(ptu_run(sg, pool.t, pool.n, &outs, NULL), EVO_OK);
        for (int32_t k = 0; k < sg->n_outputs; k++) {
            assert_true(pool.n < SZ_MAX_POOL);
            pool.t[pool.n++] = outs[k];
        }
        free(outs);
        evo_graph_free(sg);
    }
    for (int32_t k = 0; k < g->n_outputs; k++) {
        const ptu_tensor *got = NULL;
        for (int i = 0; i < pool.n; i++)
            if (strcmp(pool.t[i].name, g->values[g->outputs[k]].name) == 0)
                got = &pool.t[i];
        assert_non_null(got);
        assert_true(ptu_close(got, &want[k], 1e-4, 1e-5));
    }
    sz_pool_free(&pool);
}

static void test_zoo_split_cuts(void **state)
{
    (void)state;
    const char *dir = ptu_models_dir();
    if (dir == NULL)
        skip();
    char names[64][64];
    int n = ptu_list_models(dir, names, 64);
    assert_true(n > 0);
    for (int m = 0; m < n; m++) {
        ptu_tensor in;
        evo_graph *g = ptu_load_zoo(dir, names[m], &in);
        assert_non_null(g);
        ptu_tensor *want = NULL;
        assert_int_equal(ptu_run(g, &in, 1, &want, NULL), EVO_OK);
        int32_t cands[4096];
        int nc = sz_single_live(g, cands, 4096);
        assert_true(nc >= 3);
        /* Three cuts near 1/4, 1/2, 3/4 of the candidates (distinct). */
        const char *cuts[3];
        int32_t picked[3];
        int n_cuts = 0;
        for (int q = 1; q <= 3; q++) {
            int32_t v = cands[(nc * q) / 4 < nc ? (nc * q) / 4 : nc - 1];
            if (n_cuts > 0 && picked[n_cuts - 1] == v)
                continue;
            picked[n_cuts] = v;
            cuts[n_cuts++] = g->values[v].name;
        }
        evo_split_plan plan;
        evo_error err = {0};
        if (evo_split_plan_from_cuts(g, cuts, (size_t)n_cuts, &plan, &err) != EVO_OK)
            fail_msg("%s: %s", names[m], err.msg);
        assert_int_equal(plan.n_stages, n_cuts + 1);
        printf("%-20s %d candidate cuts; stages:", names[m], nc);
        for (int32_t s = 0; s < plan.n_stages; s++)
            printf(" %d", (int)plan.stages[s].n_nodes);
        printf("  cuts:");
        for (int k = 0; k < n_cuts; k++)
            printf(" %s", cuts[k]);
        printf("\n");
        /* each boundary carries exactly the cut tensor */
        for (int32_t s = 1; s < plan.n_stages; s++) {
            assert_int_equal(plan.stages[s].n_inputs, 1);
            assert_string_equal(plan.stages[s].inputs[0], cuts[s - 1]);
        }
        sz_run_chain(g, &plan, &in, want, false);
        sz_run_chain(g, &plan, &in, want, true);
        evo_split_plan_free(&plan);
        ptu_free_outs(want, g->n_outputs);
        ptu_tensor_free(&in);
        evo_graph_free(g);
    }
}

static void test_zoo_split_ranges(void **state)
{
    (void)state;
    const char *dir = ptu_models_dir();
    if (dir == NULL)
        skip();
    char names[64][64];
    int n = ptu_list_models(dir, names, 64);
    for (int m = 0; m < n; m++) {
        ptu_tensor in;
        evo_graph *g = ptu_load_zoo(dir, names[m], &in);
        assert_non_null(g);
        ptu_tensor *want = NULL;
        assert_int_equal(ptu_run(g, &in, 1, &want, NULL), EVO_OK);
        /* thirds of the order, shifted off block boundaries by one node */
        int32_t starts[3] = {0, g->n_order / 3 + 1, (2 * g->n_order) / 3 + 1};
        evo_split_plan plan;
        evo_error err = {0};
        evo_status rv = evo_split_plan_from_ranges(g, starts, 3, &plan, &err);
        if (rv == EVO_ERR_INVALID_ARG) {
            /* a range with only folded nodes: shift it */
            starts[1]++;
            rv = evo_split_plan_from_ranges(g, starts, 3, &plan, &err);
        }
        if (rv != EVO_OK)
            fail_msg("%s: %s", names[m], err.msg);
        int crossing = 0;
        for (int32_t s = 1; s < plan.n_stages; s++)
            crossing += plan.stages[s].n_inputs;
        printf("%-20s ranges: %d tensors cross\n", names[m], crossing);
        sz_run_chain(g, &plan, &in, want, false);
        evo_split_plan_free(&plan);
        ptu_free_outs(want, g->n_outputs);
        ptu_tensor_free(&in);
        evo_graph_free(g);
    }
}

/* Whole models exported (plain and optimized) and imported again. */
static void test_zoo_export_roundtrip(void **state)
{
    (void)state;
    const char *dir = ptu_models_dir();
    if (dir == NULL)
        skip();
    char names[64][64];
    int n = ptu_list_models(dir, names, 64);
    for (int m = 0; m < n; m++) {
        for (int optimized = 0; optimized < 2; optimized++) {
            ptu_tensor in;
            evo_graph *g = ptu_load_zoo(dir, names[m], &in);
            assert_non_null(g);
            evo_error err = {0};
            if (optimized)
                assert_int_equal(evo_graph_optimize(g, NULL, NULL, &err), EVO_OK);
            ptu_tensor *want = NULL, *got = NULL;
            assert_int_equal(ptu_run(g, &in, 1, &want, NULL), EVO_OK);
            void *buf = NULL;
            size_t len = 0;
            assert_int_equal(evo_onnx_export_buffer(g, &buf, &len, &err), EVO_OK);
            evo_graph *r = NULL;
            if (evo_onnx_load_buffer(buf, len, NULL, "exported", NULL, &r, &err) != EVO_OK ||
                evo_graph_bind_dims(r, NULL, 0, &err) != EVO_OK ||
                evo_graph_infer(r, NULL, NULL, &err) != EVO_OK)
                fail_msg("%s: %s", names[m], err.msg);
            free(buf);
            assert_int_equal(r->n_outputs, g->n_outputs);
            assert_int_equal(r->n_opsets, g->n_opsets);
            assert_int_equal(r->ir_version, 8);
            assert_int_equal(ptu_run(r, &in, 1, &got, NULL), EVO_OK);
            for (int32_t k = 0; k < g->n_outputs; k++) {
                assert_string_equal(got[k].name, want[k].name);
                assert_true(ptu_close(&got[k], &want[k], 1e-4, 1e-5));
            }
            ptu_free_outs(want, g->n_outputs);
            ptu_free_outs(got, r->n_outputs);
            ptu_tensor_free(&in);
            evo_graph_free(g);
            evo_graph_free(r);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zoo_split_cuts),
        cmocka_unit_test(test_zoo_split_ranges),
        cmocka_unit_test(test_zoo_export_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
