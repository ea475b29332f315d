/*
 * Stages and placement of the coordinator: a model cut into consecutive
 * stages computes exactly what the whole model computes (stage outputs fed
 * to the next stage by name, skip connections passed along); placement with
 * the partitioner honours memory budgets; the small helpers (sizes, URLs, HMAC)
 * reject bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../coordinator/coord_internal.h"
#include "evo/modeldb.h"
#include "evo/partition.h"

static void *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    void *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, fp), *len);
    fclose(fp);
    return b;
}

/* A stage as a node runs it: its .evm loaded (digest verified) and an arena. */
static void runner_init(coord_stage_run *r, const coord_stage_blob *b)
{
    evo_error err;
    if (coord_stage_load(b->evm, b->evm_len, "stage", r, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(r->need_bytes, b->need_bytes);
    r->arena = malloc(r->arena_bytes);
    assert_int_equal(evo_exec_init(&r->exec, &r->prog, r->arena, r->arena_bytes), EVO_OK);
}

/* The blobs of the stages starting at order positions starts[0..n). */
static coord_stage_blob *blobs_of(const evo_graph *g, const int32_t *starts, int32_t n,
                                  evo_split_plan *plan)
{
    coord_stage_blob *b;
    evo_error err;
    if (evo_split_plan_from_ranges(g, starts, (size_t)n, plan, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    if (coord_stage_blobs_make(g, plan, &b, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    return b;
}

/* Cut at every k-th position: run the chain of .evm stages and the whole
 * model on the same input; the outputs must be bitwise equal. */
/* Returns how many tensors the stages passed along untouched. */
static int32_t check_chain(const char *path, int32_t n_stages)
{
    size_t len;
    void *onnx = read_all(path, &len);
    if (onnx == NULL) {
        skip();
        return 0;
    }
    evo_graph *g;
    evo_error err;
    if (coord_import_onnx(onnx, len, path, &g, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    int32_t zero = 0;
    evo_split_plan whole;
    coord_stage_blob *wb = blobs_of(g, &zero, 1, &whole);
    assert_int_equal(wb[0].n_pass, 0);
    coord_stage_run w;
    runner_init(&w, &wb[0]);
    const evo_prog_tensor *in0 = &w.prog.tensors[w.prog.inputs[0]];
    assert_int_equal(in0->dtype, EVO_DT_FLOAT32);
    float *x = evo_exec_input(&w.exec, 0)->data;
    for (uint64_t i = 0; i < in0->nbytes / 4; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    float *x_copy = malloc(in0->nbytes);
    memcpy(x_copy, x, in0->nbytes);
    assert_int_equal(evo_exec_run(&w.exec, NULL), EVO_OK);

    int32_t *starts = calloc((size_t)n_stages, sizeof *starts);
    for (int32_t k = 0; k < n_stages; k++)
        starts[k] = (int32_t)((int64_t)g->n_order * k / n_stages);
    evo_split_plan plan;
    coord_stage_blob *bl = blobs_of(g, starts, n_stages, &plan);
    /* The first stage reads the graph input; the last writes the graph outputs. */
    assert_string_equal(plan.stages[0].inputs[0], g->values[g->inputs[0]].name);
    /* Tensors travel by name, as between nodes: each stage sends its
     * program's outputs plus what its pass list forwards. */
    const char *names[256];
    const void *datas[256];
    size_t n_avail = 0;
    names[n_avail] = g->values[g->inputs[0]].name;
    datas[n_avail++] = x_copy;
    coord_stage_run *rs = calloc((size_t)n_stages, sizeof *rs);
    for (int32_t k = 0; k < n_stages; k++) {
        runner_init(&rs[k], &bl[k]);
        const evo_program *p = &rs[k].prog;
        for (int32_t i = 0; i < p->n_inputs; i++) {
            const void *src = NULL;
            for (size_t a = 0; a < n_avail; a++)
                if (strcmp(names[a], p->tensors[p->inputs[i]].name) == 0)
                    src = datas[a];
            assert_non_null(src);
            memcpy(evo_exec_input(&rs[k].exec, i)->data, src, p->tensors[p->inputs[i]].nbytes);
        }
        assert_int_equal(evo_exec_run(&rs[k].exec, NULL), EVO_OK);
        const char *nn[256];
        const void *nd[256];
        size_t n_next = 0;
        for (int32_t i = 0; i < p->n_outputs && n_next < 256; i++) {
            nn[n_next] = p->tensors[p->outputs[i]].name;
            nd[n_next++] = evo_exec_output(&rs[k].exec, i)->data;
        }
        for (int32_t i = 0; i < bl[k].n_pass && n_next < 256; i++) {
            const void *src = NULL;
            for (size_t a = 0; a < n_avail; a++)
                if (strcmp(names[a], bl[k].pass[i]) == 0)
                    src = datas[a];
            assert_non_null(src);
            nn[n_next] = bl[k].pass[i];
            nd[n_next++] = src;
        }
        memcpy(names, nn, n_next * sizeof nn[0]);
        memcpy(datas, nd, n_next * sizeof nd[0]);
        n_avail = n_next;
    }
    const evo_program *wp = &w.prog;
    for (int32_t i = 0; i < wp->n_outputs; i++) {
        const void *got = NULL;
        for (size_t a = 0; a < n_avail; a++)
            if (strcmp(names[a], wp->tensors[wp->outputs[i]].name) == 0)
                got = datas[a];
        assert_non_null(got);
        assert_memory_equal(got, evo_exec_output(&w.exec, i)->data,
                            wp->tensors[wp->outputs[i]].nbytes);
    }
    /* A node holds exactly its stage: the stages together hold about the
     * model's weights once (each stage carries only the constants it reads). */
    uint64_t sum_w = 0;
    for (int32_t k = 0; k < n_stages; k++)
        sum_w += bl[k].weights_bytes;
    assert_true(sum_w >= wb[0].weights_bytes);
    assert_true(sum_w <= wb[0].weights_bytes + wb[0].weights_bytes / 10 + 4096);
    int32_t passed = 0;
    for (int32_t k = 0; k < n_stages; k++) {
        passed += bl[k].n_pass;
        coord_stage_run_free(&rs[k]);
    }
    coord_stage_blobs_free(bl, n_stages);
    coord_stage_blobs_free(wb, 1);
    evo_split_plan_free(&plan);
    evo_split_plan_free(&whole);
    free(rs);
    free(starts);
    coord_stage_run_free(&w);
    free(x_copy);
    evo_graph_free(g);
    free(onnx);
    return passed;
}

static void test_chain_mlp(void **s)
{
    (void)s;
    check_chain(EVO_SOURCE_DIR "/examples/models/tiny_mlp/model.onnx", 2);
}

/* mobilenet_v2 has residual Adds: tensors skip stages and are passed along. */
static void test_chain_mobilenet(void **s)
{
    (void)s;
    check_chain(EVO_SHARED_DIR "/models/mobilenet_v2/model.onnx", 4);
    /* Stages of a few nodes each: residual blocks span three or more
     * stages, so the middle ones must pass the block input along. */
    if (access(EVO_SHARED_DIR "/models/mobilenet_v2/model.onnx", R_OK) == 0)
        assert_true(check_chain(EVO_SHARED_DIR "/models/mobilenet_v2/model.onnx", 40) > 0);
}

static void test_chain_vww(void **s)
{
    (void)s;
    check_chain(EVO_SHARED_DIR "/models/tiny_vww_mbv1/model.onnx", 3);
}

static void test_bad_blobs(void **s)
{
    (void)s;
    size_t len;
    void *onnx = read_all(EVO_SOURCE_DIR "/examples/models/tiny_mlp/model.onnx", &len);
    assert_non_null(onnx);
    evo_graph *g;
    assert_int_equal(coord_import_onnx(onnx, len, "mlp", &g, NULL), EVO_OK);
    /* Blobs that are not .evm, or whose bytes were altered, are refused. */
    coord_stage_run r;
    assert_int_equal(coord_stage_load("EVOSTG1", 8, "x", &r, NULL), EVO_ERR_PARSE);
    int32_t zero = 0;
    evo_split_plan plan;
    coord_stage_blob *b = blobs_of(g, &zero, 1, &plan);
    unsigned char *bytes = b[0].evm;
    bytes[b[0].evm_len - 1] ^= 0x40; /* inside the digested range: the weights */
    evo_error err;
    assert_int_equal(coord_stage_load(b[0].evm, b[0].evm_len, "x", &r, &err), EVO_ERR_PARSE);
    assert_non_null(strstr(err.msg, "digest"));
    bytes[b[0].evm_len - 1] ^= 0x40;
    assert_int_equal(coord_stage_load(b[0].evm, b[0].evm_len - 1, "x", &r, NULL), EVO_ERR_PARSE);
    assert_int_equal(coord_stage_load(b[0].evm, b[0].evm_len, "x", &r, NULL), EVO_OK);
    /* What a node holds: the blob, the loader's tables, the arena. */
    assert_int_equal(r.need_bytes, b[0].evm_len + r.work_bytes + r.arena_bytes);
    assert_true(b[0].evm_len > b[0].weights_bytes);
    coord_stage_run_free(&r);
    coord_stage_blobs_free(b, 1);
    evo_split_plan_free(&plan);
    evo_graph_free(g);
    free(onnx);
}

static void test_place_budgets(void **s)
{
    (void)s;
    size_t len;
    void *onnx = read_all(EVO_SHARED_DIR "/models/tiny_vww_mbv1/model.onnx", &len);
    if (onnx == NULL) {
        skip();
        return;
    }
    evo_graph *g;
    assert_int_equal(coord_import_onnx(onnx, len, "vww", &g, NULL), EVO_OK);
    coord_plan_dev devs[3] = {
        {.name = "a", .device_class = "edge", .free_bytes = 64u << 20, .gflops = 4},
        {.name = "b", .device_class = "edge", .free_bytes = 64u << 20, .gflops = 2},
        {.name = "c", .device_class = "mcu", .free_bytes = 64 * 1024, .gflops = 1},
    };
    coord_placement pl;
    coord_stage_blob *bl;
    evo_error err;
    /* Room on the fast device: latency keeps the model in one piece there. */
    if (coord_place(g, devs, 3, "auto", "latency", &pl, &bl, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(pl.n_stages, 1);
    assert_int_equal(pl.dev_of[0], 0);
    uint64_t whole = bl[0].need_bytes;
    coord_stage_blobs_free(bl, pl.n_stages);
    coord_placement_free(&pl);
    /* Budgets force a split: every stage's real blob fits its device. */
    devs[0].free_bytes = devs[1].free_bytes = whole * 7 / 10;
    if (coord_place(g, devs, 3, "auto", "latency", &pl, &bl, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    assert_true(pl.n_stages >= 2);
    for (int32_t k = 0; k < pl.n_stages; k++) {
        assert_true(bl[k].need_bytes <= devs[pl.dev_of[k]].free_bytes);
        assert_true(pl.flops[k] > 0);
        for (int32_t j = 0; j < k; j++)
            assert_int_not_equal(pl.dev_of[j], pl.dev_of[k]);
    }
    assert_non_null(strstr(pl.json, "\"evo-plan\""));
    coord_stage_blobs_free(bl, pl.n_stages);
    coord_placement_free(&pl);
    /* Throughput over the same budgets: still a valid pipeline. */
    if (coord_place(g, devs, 3, "cluster", "throughput", &pl, &bl, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    assert_true(pl.n_stages >= 2);
    assert_true(pl.period_ms > 0 && pl.period_ms <= pl.latency_ms);
    coord_stage_blobs_free(bl, pl.n_stages);
    coord_placement_free(&pl);
    /* Edge + cloud needs a cloud device. */
    assert_int_equal(coord_place(g, devs, 3, "cloud", "latency", &pl, &bl, &err), EVO_ERR_LIMIT);
    coord_plan_dev ec[2] = {
        {.name = "edge", .device_class = "edge", .free_bytes = whole, .gflops = 1},
        {.name = "dc", .device_class = "cloud", .free_bytes = 64u << 20, .gflops = 100},
    };
    if (coord_place(g, ec, 2, "cloud", "latency", &pl, &bl, &err) != EVO_OK)
        fail_msg("%s", err.msg);
    assert_true(strcmp(pl.kind, "cloud") == 0);
    assert_true(pl.n_stages >= 1);
    coord_stage_blobs_free(bl, pl.n_stages);
    coord_placement_free(&pl);
    /* Nothing holds it whole: standalone is refused, naming a device. */
    assert_int_equal(coord_place(g, devs, 3, "standalone", "latency", &pl, &bl, &err),
                     EVO_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "no device can hold the whole model"));
    assert_non_null(strstr(err.msg, "lacks"));
    /* Too little memory anywhere. */
    devs[0].free_bytes = devs[1].free_bytes = 1024;
    assert_int_equal(coord_place(g, devs, 3, "auto", "latency", &pl, &bl, &err), EVO_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "lacks"));
    assert_int_equal(coord_place(g, devs, 3, "sideways", "latency", &pl, &bl, NULL),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(coord_place(g, devs, 3, "auto", "soonest", &pl, &bl, NULL),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(coord_place(g, devs, 0, "auto", "latency", &pl, &bl, NULL), EVO_ERR_NOT_FOUND);
    evo_graph_free(g);
    free(onnx);
}

static const evo_pt_link *find_link(const evo_pt_topology *t, int32_t a, int32_t b)
{
    for (int32_t k = 0; k < t->n_links; k++)
        if ((t->links[k].a == a && t->links[k].b == b) ||
            (t->links[k].a == b && t->links[k].b == a))
            return &t->links[k];
    return NULL;
}

/* Node to node links: a measured one is used whichever end measured it; an
 * unmeasured or nonsensical one is the slower of the two coordinator links;
 * relayed (CoAP) devices get none. */
static void test_place_measured_links(void **s)
{
    (void)s;
    coord_peer_link a_links[] = {{.peer = "b", .rtt_ms = 0.2, .mbps = 900},
                                 {.peer = "c", .rtt_ms = 0.1, .mbps = 0}, /* not measured */
                                 {.peer = "d", .rtt_ms = 0.3, .mbps = 800}};
    coord_peer_link c_links[] = {{.peer = "b", .rtt_ms = 4, .mbps = 30}};
    coord_plan_dev devs[4] = {
        {.name = "a", .rtt_ms = 2, .mbps = 100, .peers = a_links, .n_peers = 3},
        {.name = "b", .rtt_ms = 5, .mbps = 50},
        {.name = "c", .rtt_ms = 1, .mbps = 400, .peers = c_links, .n_peers = 1},
        {.name = "d", .rtt_ms = 1, .mbps = 400, .relayed = true},
    };
    uint64_t overhead[4] = {0};
    evo_pt_topology t;
    evo_error err;
    assert_int_equal(coord_place_topology(devs, 4, overhead, &t, &err), EVO_OK);
    assert_int_equal(t.n_devices, 5);
    const evo_pt_link *l = find_link(&t, 0, 1); /* measured by a */
    assert_non_null(l);
    assert_true(l->mbps == 900 && l->rtt_ms == 0.2);
    l = find_link(&t, 0, 2); /* a's figure is unusable: min(100, 400) Mbit/s, max(2, 1) ms */
    assert_non_null(l);
    assert_true(l->mbps == 100 && l->rtt_ms == 2);
    l = find_link(&t, 1, 2); /* measured by c, the other end */
    assert_non_null(l);
    assert_true(l->mbps == 30 && l->rtt_ms == 4);
    assert_null(find_link(&t, 0, 3)); /* relayed: through the coordinator only */
    l = find_link(&t, 3, 4);
    assert_non_null(l);
    assert_true(l->mbps == 400 && l->rtt_ms == 1);
    l = find_link(&t, 1, 4);
    assert_non_null(l);
    assert_true(l->mbps == 50 && l->rtt_ms == 5);
    evo_pt_topology_free(&t);
}

static void test_helpers(void **s)
{
    (void)s;
    uint64_t v;
    assert_true(evo_pt_parse_size("256K", &v) && v == 256 * 1024);
    assert_true(evo_pt_parse_size("1.5M", &v) && v == 1536 * 1024);
    assert_true(evo_pt_parse_size("2GiB", &v) && v == 2ull << 30);
    assert_true(evo_pt_parse_size("4096", &v) && v == 4096);
    assert_false(evo_pt_parse_size("", &v));
    assert_false(evo_pt_parse_size("12Q", &v));
    assert_false(evo_pt_parse_size("-1K", &v));
    assert_false(evo_pt_parse_size("1e300G", &v));
    assert_true(coord_url_is_loopback("tcp://127.0.0.1:7400"));
    assert_true(coord_url_is_loopback("ipc:///tmp/x"));
    assert_false(coord_url_is_loopback("tcp://10.0.0.1:7400"));
    assert_false(coord_url_is_loopback("tcp://0.0.0.0:7400"));
    char out[128];
    coord_url_with_port("tls+tcp://127.0.0.1:0", 5000, out, sizeof out);
    assert_string_equal(out, "tls+tcp://127.0.0.1:5000");
    coord_url_reachable("tcp://0.0.0.0:4000", "tcp://192.0.2.7:7400", out, sizeof out);
    assert_string_equal(out, "tcp://192.0.2.7:4000");
    /* data channels: byte streams for tcp, ipc and tls+tcp, the rest as they are */
    assert_true(coord_url_is_loopback("ipc+stream:///tmp/x"));
    coord_data_url("tcp://127.0.0.1:0", out, sizeof out);
    assert_string_equal(out, "tcp+stream://127.0.0.1:0");
    coord_data_url("ipc:///tmp/c.data", out, sizeof out);
    assert_string_equal(out, "ipc+stream:///tmp/c.data");
    coord_data_url("tls+tcp://127.0.0.1:0", out, sizeof out);
    assert_string_equal(out, "tls+tcp+stream://127.0.0.1:0");
    coord_data_url("inproc://c.data", out, sizeof out);
    assert_string_equal(out, "inproc://c.data");
    coord_url_with_port("tcp+stream://127.0.0.1:0", 5001, out, sizeof out);
    assert_string_equal(out, "tcp+stream://127.0.0.1:5001");
    uint8_t b[4];
    assert_true(coord_unhex("00ff10aB", b, 4) && b[1] == 0xff && b[3] == 0xab);
    assert_false(coord_unhex("00ff10", b, 4));
    assert_false(coord_unhex("00ff10zz", b, 4));
    /* A signed message verifies under its key only, and not once changed. */
    coord_env e;
    char *json = strdup("{\"a\":1}");
    assert_int_equal(coord_env_init(&e, EVO_MSG_RUN, "deploy", json, NULL), EVO_OK);
    const uint8_t key[] = "secret", nonce[4] = {1, 2, 3, 4};
    assert_int_equal(coord_env_sign(&e, key, 6, nonce, 4, NULL), EVO_OK);
    assert_int_equal(coord_msg_verify(&e.m, key, 6, nonce, 4, NULL), EVO_OK);
    assert_int_equal(coord_msg_verify(&e.m, (const uint8_t *)"secreT", 6, nonce, 4, NULL),
                     EVO_ERR_MISMATCH);
    const uint8_t nonce2[4] = {1, 2, 3, 5};
    assert_int_equal(coord_msg_verify(&e.m, key, 6, nonce2, 4, NULL), EVO_ERR_MISMATCH);
    snprintf(e.m.u.run.model, sizeof e.m.u.run.model, "infer");
    assert_int_equal(coord_msg_verify(&e.m, key, 6, nonce, 4, NULL), EVO_ERR_MISMATCH);
    coord_env_clear(&e);
    assert_int_equal(coord_env_init(&e, EVO_MSG_RUN, "x", NULL, NULL), EVO_OK);
    assert_int_equal(coord_msg_verify(&e.m, key, 6, nonce, 4, NULL), EVO_ERR_MISMATCH);
    coord_env_clear(&e);
}

int main(void)
{
    evo_log_set_sink(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_mlp),       cmocka_unit_test(test_chain_vww),
        cmocka_unit_test(test_chain_mobilenet), cmocka_unit_test(test_bad_blobs),
        cmocka_unit_test(test_place_budgets),   cmocka_unit_test(test_place_measured_links),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
