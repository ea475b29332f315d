/*
 * The evo adapter on zoo models: the cost problem of a compiled program, its
 * whole-model stage arena against the program builder's own arena (the same
 * planner on the same buffers), topology parsing.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "evo/modeldb.h"
#include "evo/node.h"
#include "evo/partition.h"

static const char *const models[] = {"resnet18", "squeezenet1_1", "mobilenet_v2", "tiny_ic_resnet8",
                                     "tiny_kws_dscnn"};

static const char topo_json[] =
    "{\"devices\": [{\"name\": \"cam-mcu\", \"memory\": \"512K\", \"flash\": \"2M\", "
    "\"gflops\": 0.1, \"role\": \"edge\"},"
    "{\"name\": \"board-1\", \"memory\": \"1G\", \"gflops\": 8, \"role\": \"edge\"},"
    "{\"name\": \"cloud\", \"memory\": \"64G\", \"gflops\": 400, \"role\": \"cloud\"}],"
    "\"links\": [{\"a\": \"cam-mcu\", \"b\": \"board-1\", \"mbps\": 10, \"rtt_ms\": 4},"
    "{\"a\": \"board-1\", \"b\": \"cloud\", \"mbps\": 50, \"rtt_ms\": 40, \"encoding\": "
    "\"fp16\"}],"
    "\"source\": \"cam-mcu\", \"sink\": \"cam-mcu\"}";

static void test_topology_parse(void **state)
{
    (void)state;
    evo_pt_topology t;
    evo_error err;
    assert_int_equal(evo_pt_topology_parse(topo_json, strlen(topo_json), "t", &t, &err), EVO_OK);
    assert_int_equal(t.n_devices, 3);
    assert_int_equal(t.devices[0].memory_bytes, 512 * 1024);
    assert_int_equal(t.devices[0].flash_bytes, 2 * 1024 * 1024);
    assert_int_equal(t.devices[0].overhead_bytes, EVO_PT_OVERHEAD_BAREMETAL);
    assert_int_equal(t.devices[1].overhead_bytes, EVO_PT_OVERHEAD_HOSTED);
    assert_int_equal(t.devices[2].memory_bytes, 64ull << 30);
    assert_int_equal(t.devices[2].role, EVO_PT_ROLE_CLOUD);
    assert_int_equal(t.links[1].encoding, EVO_PT_ENC_FP16);
    assert_int_equal(t.source, 0);
    evo_pt_topology_free(&t);
    uint64_t v;
    assert_true(evo_pt_parse_size("1.5K", &v) && v == 1536);
    assert_true(evo_pt_parse_size("4096", &v) && v == 4096);
    assert_true(evo_pt_parse_size("2MiB", &v) && v == 2u << 20);
    assert_false(evo_pt_parse_size("-1K", &v));
    assert_false(evo_pt_parse_size("1.3", &v));
    assert_false(evo_pt_parse_size("12Q", &v));
    assert_false(evo_pt_parse_size("", &v));
    const char *bad[] = {
        "[]",
        "{\"devices\": []}",
        "{\"devices\": [{\"name\": \"a\", \"memory\": \"1G\"}], \"source\": \"a\", \"sink\": "
        "\"a\"}",
        "{\"devices\": [{\"name\": \"a\", \"memory\": \"1G\", \"gflops\": 1}], \"source\": \"b\", "
        "\"sink\": \"a\"}",
        "{\"devices\": [{\"name\": \"a\", \"memory\": \"1G\", \"gflops\": 1}, {\"name\": \"a\", "
        "\"memory\": \"1G\", \"gflops\": 1}], \"source\": \"a\", \"sink\": \"a\"}",
        "{\"devices\": [{\"name\": \"a\", \"memory\": \"1G\", \"gflops\": 1}], \"links\": [{\"a\": "
        "\"a\", \"b\": \"a\", \"mbps\": 1}], \"source\": \"a\", \"sink\": \"a\"}",
        "{\"devices\": [{\"name\": \"a\", \"memory\": \"1G\", \"gflops\": 1}, {\"name\": \"b\", "
        "\"memory\": \"1G\", \"gflops\": 1}], \"links\": [{\"a\": \"a\", \"b\": \"b\", \"mbps\": "
        "0}], \"source\": \"a\", \"sink\": \"a\"}",
        "{\"devices\": [{\"name\": \"a\", \"memory\": \"1G\", \"gflops\": 1, \"role\": \"fog\"}], "
        "\"source\": \"a\", \"sink\": \"a\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(evo_pt_topology_parse(bad[i], strlen(bad[i]), "bad", &t, &err),
                             EVO_OK);
        assert_non_null(strstr(err.msg, "bad"));
    }
}

static void test_models(void **state)
{
    (void)state;
    int ran = 0;
    evo_pt_topology t;
    assert_int_equal(evo_pt_topology_parse(topo_json, strlen(topo_json), "t", &t, NULL), EVO_OK);
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char path[512];
        snprintf(path, sizeof path, "%s/models/%s/model.onnx", EVO_SHARED_DIR, models[m]);
        if (access(path, R_OK) != 0)
            continue;
        evo_graph *g;
        evo_program *prog;
        evo_error err;
        assert_int_equal(evo_model_import(path, NULL, &g, &err), EVO_OK);
        assert_int_equal(evo_program_build(g, NULL, &prog, &err), EVO_OK);
        evo_pt_problem p;
        assert_int_equal(evo_pt_problem_from_program(prog, &t, NULL, 0, models[m], &p, &err),
                         EVO_OK);
        assert_int_equal(p.n_nodes, prog->n_nodes);
        uint64_t w = 0;
        for (int32_t k = 0; k < p.n_nodes; k++) {
            w += p.nodes[k].weight_bytes;
            /* the roofline: 10x more gflops, 10x less time (same flops) */
            double a = p.cost_us[k * 3 + 0], b = p.cost_us[k * 3 + 2];
            assert_true(a >= 0 && b >= 0);
            if (b > 0)
                assert_true(fabs(a / b - 4000.0) < 1e-6 * 4000.0);
        }
        /* weights: every constant is read by one node in these models */
        assert_true(w >= prog->weights_bytes);
        /* the whole model as one stage: the same buffers, lifetimes, scratch
         * and in-place pairs as the program builder, so the exact arena the
         * executor needs */
        uint64_t arena, lb;
        assert_int_equal(evo_pt_stage_arena(&p, NULL, 0, p.n_nodes, &arena, &lb, &err), EVO_OK);
        size_t real = evo_program_arena_size(prog);
        printf("%s: stage arena %llu, program arena %zu, activations %llu\n", models[m],
               (unsigned long long)arena, real, (unsigned long long)prog->activation_bytes);
        assert_true(arena >= prog->activation_bytes);
        assert_int_equal(arena, real);
        assert_true(lb <= arena);
        evo_pt_problem_free(&p);
        evo_program_free(prog);
        evo_graph_free(g);
        ran++;
    }
    evo_pt_topology_free(&t);
    if (ran == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology_parse),
        cmocka_unit_test(test_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
