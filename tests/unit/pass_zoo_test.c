/*
 * evo_graph_optimize on every zoo model: the optimized graph gives the same
 * outputs as the unoptimized one on the reference input (rtol 1e-4, atol
 * 1e-5), stays valid and inferred, and a second run finds nothing to do.
 * Prints what each pass did and the run times of both graphs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "pass_testutil.h"

static double zoo_best_ms(const evo_graph *g, const ptu_tensor *in, ptu_tensor **outs, int runs)
{
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double ms;
        ptu_tensor *o = NULL;
        assert_int_equal(ptu_run(g, in, 1, &o, &ms), EVO_OK);
        if (ms < best)
            best = ms;
        if (r == 0)
            *outs = o;
        else
            ptu_free_outs(o, g->n_outputs);
    }
    return best;
}

static void test_zoo_optimize(void **state)
{
    (void)state;
    const char *dir = ptu_models_dir();
    if (dir == NULL)
        skip();
    char names[64][64];
    int n = ptu_list_models(dir, names, 64);
    assert_true(n > 0);
    int total_fused = 0, total_bn = 0;
    for (int m = 0; m < n; m++) {
        ptu_tensor in = {0}, in1 = {0};
        evo_graph *g0 = ptu_load_zoo(dir, names[m], &in);
        evo_graph *g1 = ptu_load_zoo(dir, names[m], &in1);
        ptu_tensor_free(&in1); /* the same reference input as `in` */
        assert_non_null(g0);
        assert_non_null(g1);
        int32_t nodes_before = g1->n_nodes;
        evo_optimize_report rep;
        evo_error err = {0};
        assert_int_equal(evo_graph_optimize(g1, NULL, &rep, &err), EVO_OK);
        /* Every value left is typed and shaped; every node has its op. */
        for (int32_t v = 0; v < g1->n_values; v++)
            assert_true((g1->values[v].flags & (EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE)) ==
                        (EVO_VALUE_HAS_TYPE | EVO_VALUE_HAS_SHAPE));
        for (int32_t i = 0; i < g1->n_nodes; i++)
            assert_non_null(g1->nodes[i].op);
        assert_int_equal(g1->n_order, g1->n_nodes);

        ptu_tensor *o0 = NULL, *o1 = NULL;
        int runs = g0->n_nodes > 100 ? 2 : 3;
        double ms0 = zoo_best_ms(g0, &in, &o0, runs);
        double ms1 = zoo_best_ms(g1, &in, &o1, runs);
        assert_int_equal(g0->n_outputs, g1->n_outputs);
        for (int32_t k = 0; k < g0->n_outputs; k++) {
            assert_string_equal(o0[k].name, o1[k].name);
            assert_true(ptu_close(&o1[k], &o0[k], 1e-4, 1e-5));
        }
        printf("%-20s nodes %4d -> %4d  bn %2d  act %2d  identity %2d  dead %2d  "
               "run %.2f ms -> %.2f ms\n",
               names[m], (int)nodes_before, (int)g1->n_nodes, (int)rep.batchnorms_folded,
               (int)rep.activations_fused, (int)rep.identities_removed, (int)rep.dead_nodes_removed,
               ms0, ms1);
        total_fused += rep.activations_fused;
        total_bn += rep.batchnorms_folded;

        /* Idempotent: nothing left to do, and the graph still runs. */
        evo_optimize_report rep2;
        assert_int_equal(evo_graph_optimize(g1, NULL, &rep2, &err), EVO_OK);
        assert_int_equal(rep2.batchnorms_folded + rep2.activations_fused + rep2.identities_removed +
                             rep2.dead_nodes_removed,
                         0);
        ptu_free_outs(o0, g0->n_outputs);
        ptu_free_outs(o1, g1->n_outputs);
        ptu_tensor_free(&in);
        evo_graph_free(g0);
        evo_graph_free(g1);
    }
    /* The zoo has Conv/Gemm + Relu/Clip everywhere and one model with BN. */
    assert_true(total_fused > 0);
    assert_true(total_bn > 0);
}

/* Switches: with BN folding off, the activation after a BN cannot fuse (its
 * producer is the BN), and with everything off the graph only loses the
 * nodes inference folded. */
static void test_zoo_switches(void **state)
{
    (void)state;
    const char *dir = ptu_models_dir();
    if (dir == NULL)
        skip();
    ptu_tensor in;
    evo_graph *g = ptu_load_zoo(dir, "tiny_ad_autoencoder", &in);
    if (g == NULL)
        skip();
    ptu_tensor in0 = {0};
    evo_graph *g0 = ptu_load_zoo(dir, "tiny_ad_autoencoder", &in0);
    ptu_tensor_free(&in0); /* the same reference input as `in` */
    evo_optimize_options o = {.no_fold_batchnorm = true};
    evo_optimize_report rep;
    evo_error err = {0};
    assert_int_equal(evo_graph_optimize(g, &o, &rep, &err), EVO_OK);
    assert_int_equal(rep.batchnorms_folded, 0);
    assert_int_equal(rep.activations_fused, 0);
    int32_t bn = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        bn += strcmp(g->nodes[i].op_type, "BatchNormalization") == 0;
    assert_true(bn > 0);
    evo_optimize_options off = {true, true, true, true};
    assert_int_equal(evo_graph_optimize(g0, &off, &rep, &err), EVO_OK);
    assert_int_equal(rep.batchnorms_folded + rep.activations_fused + rep.identities_removed +
                         rep.dead_nodes_removed,
                     0);
    ptu_tensor *a = NULL, *b = NULL;
    assert_int_equal(ptu_run(g, &in, 1, &a, NULL), EVO_OK);
    assert_int_equal(ptu_run(g0, &in, 1, &b, NULL), EVO_OK);
    assert_true(ptu_close(&a[0], &b[0], 1e-5, 1e-6));
    ptu_free_outs(a, g->n_outputs);
    ptu_free_outs(b, g0->n_outputs);
    ptu_tensor_free(&in);
    evo_graph_free(g);
    evo_graph_free(g0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zoo_optimize),
        cmocka_unit_test(test_zoo_switches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
