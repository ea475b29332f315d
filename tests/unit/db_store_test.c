/*
 * The rest of the model database: artifacts, placement plans, calibration,
 * profiles, the profiler on a real program, and the predictor's fit on
 * synthetic profiles whose true parameters are known. No timing assertions.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "evo/db.h"

#define MLP EVO_SOURCE_DIR "/examples/models/tiny_mlp/model.onnx"

typedef struct fixture {
    char dir[64];
    char db_path[128];
    evo_db *db;
    int64_t mlp_id;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/evo_dbstore_test.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->db_path, sizeof fx->db_path, "%s/m.db", fx->dir);
    evo_error err = {0};
    evo_db_model m;
    if (evo_db_open(fx->db_path, &fx->db, &err) != EVO_OK ||
        evo_db_model_add(fx->db, MLP, "mlp", NULL, &m, NULL, &err) != EVO_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    fx->mlp_id = m.id;
    evo_db_model_free(&m);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    evo_db_close(fx->db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void test_artifacts(void **state)
{
    fixture *fx = *state;
    evo_error err = {0};
    char digest[65];
    /* SHA-256("abc") from FIPS 180-2 */
    static const char abc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_int_equal(evo_db_artifact_put(fx->db, "evm", fx->mlp_id, NULL, "abc", 3, digest, &err),
                     EVO_OK);
    assert_string_equal(digest, abc);
    /* the same bytes again: a no-op */
    assert_int_equal(evo_db_artifact_put(fx->db, "evm", fx->mlp_id, "0:2", "abc", 3, digest, &err),
                     EVO_OK);
    void *bytes;
    size_t len;
    assert_int_equal(evo_db_artifact_get(fx->db, abc, &bytes, &len, &err), EVO_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(bytes, "abc", 3);
    free(bytes);
    char missing[65];
    memset(missing, '0', 64);
    missing[64] = '\0';
    assert_int_equal(evo_db_artifact_get(fx->db, missing, &bytes, &len, &err), EVO_ERR_NOT_FOUND);
    assert_null(bytes);
    assert_int_equal(evo_db_artifact_get(fx->db, "ABC", &bytes, &len, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_db_artifact_put(fx->db, "evm", 999, NULL, "x", 1, digest, &err),
                     EVO_ERR_NOT_FOUND);
    assert_int_equal(evo_db_artifact_put(fx->db, "", 0, NULL, "x", 1, digest, &err),
                     EVO_ERR_INVALID_ARG);
    /* removing the model removes its artifacts */
    assert_int_equal(evo_db_model_remove(fx->db, "mlp", 0, NULL, &err), EVO_OK);
    assert_int_equal(evo_db_artifact_get(fx->db, abc, &bytes, &len, &err), EVO_ERR_NOT_FOUND);
    assert_int_equal(evo_db_check(fx->db, &err), EVO_OK);
}

static void test_plans(void **state)
{
    fixture *fx = *state;
    evo_error err = {0};
    char *json;
    assert_int_equal(
        evo_db_plan_put(fx->db, fx->mlp_id, "edge", "{\"stages\":[[0,2],[2,4]]}", &err), EVO_OK);
    assert_int_equal(evo_db_plan_get(fx->db, fx->mlp_id, "edge", &json, &err), EVO_OK);
    assert_string_equal(json, "{\"stages\":[[0,2],[2,4]]}");
    free(json);
    assert_int_equal(evo_db_plan_put(fx->db, fx->mlp_id, "edge", "[1]", &err), EVO_OK);
    assert_int_equal(evo_db_plan_get(fx->db, fx->mlp_id, "edge", &json, &err), EVO_OK);
    assert_string_equal(json, "[1]");
    free(json);
    assert_int_equal(evo_db_plan_put(fx->db, fx->mlp_id, "bad", "{stages:", &err), EVO_ERR_PARSE);
    assert_int_equal(evo_db_plan_get(fx->db, fx->mlp_id, "bad", &json, &err), EVO_ERR_NOT_FOUND);
    assert_int_equal(evo_db_plan_put(fx->db, 999, "x", "[]", &err), EVO_ERR_NOT_FOUND);
}

static void test_calibration_store(void **state)
{
    fixture *fx = *state;
    evo_error err = {0};
    evo_calibration cal = {10, 2, 1, 5, 20, 1 << 20, 0.5}, got;
    assert_int_equal(evo_db_calibration_get(fx->db, "pi", &got, &err), EVO_ERR_NOT_FOUND);
    assert_int_equal(evo_db_calibration_put(fx->db, "pi", &cal, &err), EVO_OK);
    cal.dense_gflops = 12; /* a later calibration wins */
    assert_int_equal(evo_db_calibration_put(fx->db, "pi", &cal, &err), EVO_OK);
    assert_int_equal(evo_db_calibration_get(fx->db, "pi", &got, &err), EVO_OK);
    assert_true(got.dense_gflops == 12 && got.dw_gflops == 2 && got.elem_gflops == 1);
    assert_true(got.mem_gbps == 5 && got.cache_gbps == 20 && got.cache_bytes == (1 << 20));
    evo_calibration bad = cal;
    bad.mem_gbps = 0;
    assert_int_equal(evo_db_calibration_put(fx->db, "pi", &bad, &err), EVO_ERR_INVALID_ARG);
    bad = cal;
    bad.dw_gflops = NAN;
    assert_int_equal(evo_db_calibration_put(fx->db, "pi", &bad, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_db_calibration_put(fx->db, "", &cal, &err), EVO_ERR_INVALID_ARG);
    char **names;
    size_t n;
    assert_int_equal(evo_db_device_classes(fx->db, &names, &n, &err), EVO_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "pi");
    evo_db_names_free(names, n);

    char cls[128];
    evo_device_class_default(cls, sizeof cls);
    assert_true(cls[0] != '\0');
    for (const char *c = cls; *c; c++)
        assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-');
}

/* The profiler on the real tiny_mlp program: structure, not speed. */
static void test_profile_exec_and_store(void **state)
{
    fixture *fx = *state;
    evo_error err = {0};
    evo_graph *g = NULL;
    evo_program *p = NULL;
    evo_import_options iopt = {.optimize = true}; /* as the database records it */
    assert_int_equal(evo_model_import(MLP, &iopt, &g, &err), EVO_OK);
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_OK);
    size_t an = evo_program_arena_size(p);
    void *arena = malloc(an);
    evo_exec x;
    assert_int_equal(evo_exec_init(&x, p, arena, an), EVO_OK);
    memset(evo_exec_input(&x, 0)->data, 0, 64 * sizeof(float));

    /* the facts computed from the program are those the database holds */
    evo_db_op *ops;
    size_t n_ops;
    assert_int_equal(evo_db_model_ops(fx->db, fx->mlp_id, &ops, &n_ops, &err), EVO_OK);
    assert_int_equal(n_ops, (size_t)p->n_nodes);
    for (int32_t k = 0; k < p->n_nodes; k++) {
        evo_db_op f;
        assert_int_equal(evo_program_op_facts(p, k, &f, &err), EVO_OK);
        assert_string_equal(f.op, ops[k].op);
        assert_int_equal(f.flops, ops[k].flops);
        assert_int_equal(f.param_bytes, ops[k].param_bytes);
        assert_string_equal(f.in_shapes, ops[k].in_shapes);
        free(f.name);
        free(f.op);
        free(f.in_shapes);
        free(f.out_shapes);
    }
    evo_db_ops_free(ops, n_ops);
    evo_db_op f;
    assert_int_equal(evo_program_op_facts(p, p->n_nodes, &f, &err), EVO_ERR_INVALID_ARG);

    evo_profile pr;
    evo_profile_options opt = {.warmup = 1, .repeats = 5};
    assert_int_equal(evo_profile_exec(&x, &opt, &pr, &err), EVO_OK);
    assert_int_equal(pr.first, 0);
    assert_int_equal(pr.n_ops, 3); /* Gemm (+Relu fused), Gemm, Softmax */
    assert_int_equal(pr.repeats, 5);
    double sum = 0;
    for (int32_t k = 0; k < pr.n_ops; k++) {
        assert_true(pr.op_min_us[k] >= 0 && pr.op_min_us[k] <= pr.op_median_us[k]);
        sum += pr.op_median_us[k];
    }
    assert_true(fabs(sum - pr.op_sum_us) <= 1e-9 * (sum + 1));
    assert_true(pr.e2e_min_us <= pr.e2e_median_us);

    /* store, read back, replace */
    assert_int_equal(evo_db_profile_put(fx->db, fx->mlp_id, "here", NULL, &pr, &err), EVO_OK);
    evo_profile back;
    assert_int_equal(evo_db_profile_get(fx->db, fx->mlp_id, "here", NULL, &back, &err), EVO_OK);
    assert_int_equal(back.n_ops, 3);
    for (int32_t k = 0; k < 3; k++)
        assert_true(back.op_median_us[k] == pr.op_median_us[k]);
    assert_true(back.e2e_median_us == pr.e2e_median_us);
    evo_profile_free(&back);
    assert_int_equal(evo_db_profile_put(fx->db, fx->mlp_id, "here", NULL, &pr, &err), EVO_OK);
    evo_profile_free(&pr);

    /* a stage: ops 1..2 */
    opt.first = 1;
    opt.last = 3;
    assert_int_equal(evo_profile_exec(&x, &opt, &pr, &err), EVO_OK);
    assert_int_equal(pr.first, 1);
    assert_int_equal(pr.n_ops, 2);
    assert_int_equal(evo_db_profile_put(fx->db, fx->mlp_id, "here", "1:3", &pr, &err), EVO_OK);
    assert_int_equal(evo_db_profile_get(fx->db, fx->mlp_id, "here", "1:3", &back, &err), EVO_OK);
    assert_int_equal(back.first, 1);
    assert_int_equal(back.n_ops, 2);
    evo_profile_free(&back);
    /* a profile that does not fit the model */
    pr.first = 3;
    assert_int_equal(evo_db_profile_put(fx->db, fx->mlp_id, "here", "x", &pr, &err),
                     EVO_ERR_INVALID_ARG);
    evo_profile_free(&pr);
    assert_int_equal(evo_db_profile_get(fx->db, fx->mlp_id, "elsewhere", NULL, &back, &err),
                     EVO_ERR_NOT_FOUND);

    /* bad ranges */
    opt.first = 2;
    opt.last = 2;
    assert_int_equal(evo_profile_exec(&x, &opt, &pr, &err), EVO_ERR_INVALID_ARG);
    opt.first = 0;
    opt.last = 5;
    assert_int_equal(evo_profile_exec(&x, &opt, &pr, &err), EVO_ERR_INVALID_ARG);
    opt.last = 0;
    opt.repeats = -1;
    assert_int_equal(evo_profile_exec(&x, &opt, &pr, &err), EVO_ERR_INVALID_ARG);

    free(arena);
    evo_program_free(p);
    evo_graph_free(g);
}

static void test_roofline(void **state)
{
    (void)state;
    evo_calibration cal = {.dense_gflops = 100,
                           .dw_gflops = 10,
                           .elem_gflops = 2,
                           .mem_gbps = 10,
                           .cache_gbps = 50,
                           .cache_bytes = 1000000};
    /* compute-bound conv: 2e6 FLOPs at 100 GFLOP/s = 20 us; 60000 bytes in
     * and 40000 out (counted twice: write-allocate) in cache = 2.8 us */
    evo_db_op op = {.kind = EVO_KIND_CONV, .flops = 2000000, .in_bytes = 60000, .out_bytes = 40000};
    assert_true(fabs(evo_roofline_us(&cal, &op) - 20.0) < 1e-9);
    /* with 1.9 MB of weights beyond the cache: 2.04e6 bytes at 10 GB/s */
    op.param_bytes = 1900000;
    assert_true(fabs(evo_roofline_us(&cal, &op) - 204.0) < 1e-9);
    /* depthwise uses its own peak: 2e6 / 10 GFLOP/s = 200 us vs 2 us of bytes */
    evo_db_op dw = {.kind = EVO_KIND_DWCONV, .flops = 2000000, .in_bytes = 100000};
    assert_true(fabs(evo_roofline_us(&cal, &dw) - 200.0) < 1e-9);
    evo_predictor p = {.alpha = {2, 2, 2, 2, 2, 2, 2, 2}, .beta_us = {1, 1, 1, 1, 1, 1, 1, 1}};
    assert_true(fabs(evo_predict_op_us(&p, &cal, &dw) - 401.0) < 1e-9);
    /* shapes known: a 1x1 conv over 3x3 positions runs whole 8 x 16 tiles:
     * 32 channel blocks x 1 position tile x 8 x 16 x K 256 x 2 FLOPs at
     * 100 GFLOP/s = 20.97152 us (the op itself needs 1179648 FLOPs) */
    evo_db_op pw = {.kind = EVO_KIND_CONV1X1,
                    .flops = 1179648,
                    .in_bytes = 9216,
                    .out_bytes = 9216,
                    .param_bytes = 263168,
                    .in_shapes = "[[1,256,3,3],[256,256,1,1],[256]]",
                    .out_shapes = "[[1,256,3,3]]"};
    assert_true(fabs(evo_roofline_us(&cal, &pw) - 20.97152) < 1e-9);
    /* unparsable or missing shapes fall back to the op's own FLOPs */
    pw.in_shapes = "[[1,256,3,";
    assert_true(fabs(evo_roofline_us(&cal, &pw) - 11.79648) < 1e-9);
    pw.in_shapes = "[null,[256,256,1,1]]";
    assert_true(fabs(evo_roofline_us(&cal, &pw) - 11.79648) < 1e-9);
    /* a small "same" depthwise plane runs one masked run over its 25
     * outputs: 32 in 16-lane vectors x 8 channels x 9 taps x 2 = 4608 FLOPs
     * at 10 GFLOP/s */
    evo_db_op dwn = {.kind = EVO_KIND_DWCONV,
                     .flops = 3600,
                     .in_bytes = 800,
                     .out_bytes = 800,
                     .param_bytes = 320,
                     .in_shapes = "[[1,8,5,5],[8,1,3,3],[8]]",
                     .out_shapes = "[[1,8,5,5]]"};
    assert_true(fabs(evo_roofline_us(&cal, &dwn) - 0.4608) < 1e-9);
    /* a narrow unpadded (valid) one runs a flat run over the 5-wide input:
     * (3 - 1) * 5 + 3 = 13 outputs, one vector of 16, x 8 x 9 x 2 = 2304 */
    dwn.out_shapes = "[[1,8,3,3]]";
    dwn.flops = 1296;
    dwn.out_bytes = 288;
    assert_true(fabs(evo_roofline_us(&cal, &dwn) - 0.2304) < 1e-9);
    /* streamed bytes are gamma's: the 1.9 MB op above predicts
     * alpha * 20 (compute; nothing is cached) + gamma * 204 + beta */
    p.gamma[EVO_KIND_CONV] = 0.5;
    assert_true(fabs(evo_predict_op_us(&p, &cal, &op) - (2 * 20.0 + 0.5 * 204 + 1)) < 1e-9);
    /* cached bytes on top of the roofline are delta's: the in-cache op
     * predicts alpha * 20 + delta * 2.8 + beta */
    op.param_bytes = 0;
    p.delta[EVO_KIND_CONV] = 2;
    assert_true(fabs(evo_predict_op_us(&p, &cal, &op) - (2 * 20.0 + 2 * 2.8 + 1)) < 1e-9);
    /* a one-sample classifier (Gemm against B^T) runs the FMA-latency-bound
     * gemv: 128 outputs x (ceil(8 / 16) + 7) cycles x 64 FLOPs = 65536 at
     * 100 GFLOP/s (the op needs 2048 FLOPs) */
    evo_db_op fc = {.kind = EVO_KIND_GEMM,
                    .flops = 2048,
                    .in_bytes = 32,
                    .out_bytes = 512,
                    .param_bytes = 4608,
                    .in_shapes = "[[1,8],[128,8],[128]]",
                    .out_shapes = "[[1,128]]"};
    assert_true(fabs(evo_roofline_us(&cal, &fc) - 0.65536) < 1e-9);
    /* B not transposed (MatMul's layout) runs another path: the bytes,
     * (32 + 2 * 512 + 4096) / 50 GB/s, bound it */
    fc.in_shapes = "[[1,8],[8,128]]";
    fc.param_bytes = 4096;
    assert_true(fabs(evo_roofline_us(&cal, &fc) - 0.10304) < 1e-9);
    /* hostile shapes (huge or inconsistent extents, negative or
     * overlong dims, garbage) fall back to the facts' FLOPs */
    static const char *const bad[] = {
        "[[1,8,5,5],[8,1,3,3],[8]]",
        "[[1,8,99999999,5],[8,1,3,3]]",
        "[[1,8,5,5],[8,1,-3,3]]",
        "[[1,1,1,1,1,1,1,1,1,1],[8,1,3,3]]",
        "[[1,8,5,5],[8,3,3,3]]",
        "[[1,8,65536,1],[8,1,1,1]]",
        "[[1,8,5,5]x",
        "",
    };
    static const char *const bad_out[] = {"[[1,8,1,1]]", "[[1,8,5,5]]", "[[1,8,5,5]]",
                                          "[[1,8,5,5]]", "[[1,8,5,5]]", "[[1,8,1,1]]",
                                          "[[1,8,5,5]]", "[[1,8,5,5]]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        evo_db_op h = dwn;
        h.flops = 1000000; /* 100 us at 10 GFLOP/s: more than any padding here */
        h.in_shapes = (char *)bad[i];
        h.out_shapes = (char *)bad_out[i];
        double r = evo_roofline_us(&cal, &h);
        assert_true(isfinite(r) && r >= 100.0);
    }
    /* a strided 1x1 conv (kind conv1x1 in the facts) is predicted with the
     * Conv coefficients: changing conv1x1's leaves it alone */
    evo_db_op s2 = pw;
    s2.in_shapes = "[[1,256,6,6],[256,256,1,1],[256]]";
    s2.out_shapes = "[[1,256,3,3]]";
    double before = evo_predict_op_us(&p, &cal, &s2);
    p.alpha[EVO_KIND_CONV1X1] = 5;
    assert_true(evo_predict_op_us(&p, &cal, &s2) == before);
    p.alpha[EVO_KIND_CONV] = 3;
    assert_true(evo_predict_op_us(&p, &cal, &s2) > before);
    /* and so is the stride-1 one (every dense Conv shares one class; its
     * shapes are unparsable by now: the raw FLOPs, 11.79648 us, and
     * 290816 bytes in cache, 5.81632 us): alpha 3, delta 2, beta 1 */
    assert_true(fabs(evo_predict_op_us(&p, &cal, &pw) - (3 * 11.79648 + 2 * 5.81632 + 1)) < 1e-9);
}

/* Convs the layout pass stored as W [C*kh*kw, M] (EVO_CONV_W_KM) run the
 * KM kernel: blocks of 4 positions x 64 channels (8 x 32 for a 32-channel
 * remainder); a block issues positions x vectors FMAs and vectors +
 * positions loads per reduction step, so a 1-position tail is load-bound. */
static void test_roofline_conv_km(void **state)
{
    (void)state;
    evo_calibration cal = {.dense_gflops = 100,
                           .dw_gflops = 10,
                           .elem_gflops = 2,
                           .mem_gbps = 10,
                           .cache_gbps = 50,
                           .cache_bytes = 1000000};
    /* pointwise 256 -> 256 on a 3x3 map, one call over 9 positions: per
     * 64-channel block 2 full blocks (16 FMA steps each) and a tail of 1
     * (max(4 FMAs, 5 loads) = 5): 4 x 37 = 148 steps x 16 lanes x K 256 x 2
     * = 1212416 FLOPs at 100 GFLOP/s (the op needs 1179648) */
    evo_db_op km = {.kind = EVO_KIND_CONV,
                    .flops = 1179648,
                    .in_bytes = 9216,
                    .out_bytes = 9216,
                    .param_bytes = 263168,
                    .in_shapes = "[[1,256,3,3],[256,256],[256]]",
                    .out_shapes = "[[1,256,3,3]]"};
    assert_true(fabs(evo_roofline_us(&cal, &km) - 12.12416) < 1e-9);
    /* 6x6: 9 full blocks per channel block, no waste: the op's FLOPs */
    km.in_shapes = "[[1,128,6,6],[128,128],[128]]";
    km.out_shapes = "[[1,128,6,6]]";
    assert_true(fabs(evo_roofline_us(&cal, &km) - 11.79648) < 1e-9);
    /* a 3x3 "same" conv, 16 -> 32 channels on 8x8 (K = 144): one call per
     * output row of 8 positions, one 8 x 32 block each: 8 x 16 steps x 16
     * lanes x 144 x 2 = 589824 FLOPs (the op's own) = 5.89824 us; its
     * zero-padded 10x10 input copy is written and read: 2 x 16 x 100 x 4 =
     * 12800 bytes of cache traffic beside 4096 in, 2 x 8192 out and 18560
     * of W and bias: 51840 bytes at 50 GB/s */
    evo_db_op k3 = {.kind = EVO_KIND_CONV,
                    .flops = 589824,
                    .in_bytes = 4096,
                    .out_bytes = 8192,
                    .param_bytes = 18560,
                    .in_shapes = "[[1,16,8,8],[144,32],[32]]",
                    .out_shapes = "[[1,32,8,8]]"};
    assert_true(fabs(evo_roofline_us(&cal, &k3) - 5.89824) < 1e-9);
    evo_predictor p = {0};
    p.delta[EVO_KIND_CONV] = 1;
    assert_true(fabs(evo_predict_op_us(&p, &cal, &k3) - 1.0368) < 1e-9);
    /* a 1x1 on the same map has no copy: 38400 bytes */
    k3.in_shapes = "[[1,16,8,8],[16,32],[32]]";
    k3.flops = 65536;
    k3.param_bytes = 2176;
    assert_true(fabs(evo_predict_op_us(&p, &cal, &k3) - (4096 + 16384 + 2176) / 50e3) < 1e-9);
    /* shapes that do not describe a KM conv (K not a multiple of C, non-square
     * taps, M not Y's channels, overflowing extents) fall back to the facts:
     * 1e7 FLOPs = 100 us */
    static const char *const bad[][2] = {
        {"[[1,16,8,8],[100,32],[32]]", "[[1,32,8,8]]"},
        {"[[1,16,8,8],[32,32],[32]]", "[[1,32,8,8]]"},
        {"[[1,16,8,8],[144,32],[32]]", "[[1,64,8,8]]"},
        {"[[1,16,8,8],[144,0],[32]]", "[[1,0,8,8]]"},
        {"[[1,16,99999999,8],[144,32]]", "[[1,32,8,8]]"},
        {"[[1,16,8,8],[144,32]]", "[[1,32,8]]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        evo_db_op h = k3;
        h.flops = 10000000;
        h.in_shapes = (char *)bad[i][0];
        h.out_shapes = (char *)bad[i][1];
        assert_true(fabs(evo_roofline_us(&cal, &h) - 100.0) < 1e-9);
    }
}

/* Profiles whose times are exactly alpha * roofline + beta per kind: the
 * unregularized fit must recover alpha and beta (gamma, the cost of bytes
 * streamed from memory, keeps its prior 1: this model's ops all fit the
 * cache), the default
 * (ridge) fit must be at least as close to the data as the plain roofline
 * it is pulled toward. Two device classes with different
 * calibrations give each kind distinct roofline values. */
static void test_predictor_fit_recovers_parameters(void **state)
{
    fixture *fx = *state;
    evo_error err = {0};
    evo_predictor pred;
    assert_int_equal(evo_predictor_fit(fx->db, 0, &pred, &err), EVO_OK);
    assert_int_equal(pred.n_profiles, 0);
    assert_true(pred.alpha[EVO_KIND_GEMM] == 1 && pred.beta_us[EVO_KIND_GEMM] == 0);

    const double alpha[EVO_KIND_COUNT_] = {1.5, 1.2, 2.0, 3.0, 1.7, 4.0, 2.5, 1.1};
    const double beta[EVO_KIND_COUNT_] = {0.5, 0.3, 0.2, 0.7, 0.1, 0.4, 0.6, 0.05};
    evo_calibration cals[2] = {{50, 10, 3, 8, 40, 1 << 20, 0}, {20, 4, 1, 3, 12, 1 << 20, 0}};
    const char *classes[2] = {"fast", "slow"};
    evo_db_op *ops;
    size_t n_ops;
    assert_int_equal(evo_db_model_ops(fx->db, fx->mlp_id, &ops, &n_ops, &err), EVO_OK);
    double median[8], mins[8];
    for (int c = 0; c < 2; c++) {
        assert_int_equal(evo_db_calibration_put(fx->db, classes[c], &cals[c], &err), EVO_OK);
        double sum = 0;
        for (size_t i = 0; i < n_ops; i++) {
            int k = ops[i].kind;
            median[i] = mins[i] = alpha[k] * evo_roofline_us(&cals[c], &ops[i]) + beta[k];
            sum += median[i];
        }
        evo_profile pr = {.first = 0,
                          .n_ops = (int32_t)n_ops,
                          .op_median_us = median,
                          .op_min_us = mins,
                          .op_sum_us = sum,
                          .e2e_median_us = sum,
                          .e2e_min_us = sum,
                          .warmup = 1,
                          .repeats = 1};
        assert_int_equal(evo_db_profile_put(fx->db, fx->mlp_id, classes[c], NULL, &pr, &err),
                         EVO_OK);
    }
    assert_int_equal(evo_predictor_fit_ridge(fx->db, 0, 0.0, &pred, &err), EVO_OK);
    assert_int_equal(pred.n_profiles, 2);
    /* tiny_mlp as evo runs it: two Gemm ops (gemm; the Relu is fused into
     * the first) and Softmax (reduce); no elementwise op is left */
    assert_int_equal(pred.n_samples[EVO_KIND_GEMM], 4);
    assert_int_equal(pred.n_samples[EVO_KIND_ELEMENTWISE], 0);
    assert_int_equal(pred.n_samples[EVO_KIND_REDUCE], 2);
    const int kinds[] = {EVO_KIND_GEMM, EVO_KIND_REDUCE};
    for (size_t i = 0; i < 2; i++) {
        int k = kinds[i];
        if (fabs(pred.alpha[k] - alpha[k]) > 1e-6 * alpha[k] ||
            fabs(pred.beta_us[k] - beta[k]) > 1e-6 || pred.gamma[k] != 1)
            fail_msg("kind %s: alpha %g beta %g, expected %g %g", evo_op_kind_name(k),
                     pred.alpha[k], pred.beta_us[k], alpha[k], beta[k]);
    }
    /* kinds without data share the pooled fit (no streamed bytes anywhere:
     * gamma keeps 1) and the median overhead of the fitted kinds (reduce
     * 0.6, gemm 0.7: the upper median of two) */
    const int empty[] = {EVO_KIND_CONV,        EVO_KIND_CONV1X1, EVO_KIND_DWCONV,
                         EVO_KIND_ELEMENTWISE, EVO_KIND_POOL,    EVO_KIND_DATA};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        int k = empty[i];
        assert_true(pred.alpha[k] == pred.alpha[EVO_KIND_CONV]);
        assert_true(pred.delta[k] == pred.delta[EVO_KIND_CONV]);
        assert_true(pred.gamma[k] == 1);
        assert_true(fabs(pred.beta_us[k] - 0.7) < 1e-6);
    }
    assert_true(isfinite(pred.alpha[EVO_KIND_CONV]) && pred.alpha[EVO_KIND_CONV] >= 0);
    assert_true(isfinite(pred.delta[EVO_KIND_CONV]) && pred.delta[EVO_KIND_CONV] >= 0);
    /* and predictions then reproduce the synthetic times */
    for (size_t i = 0; i < n_ops; i++) {
        double want = alpha[ops[i].kind] * evo_roofline_us(&cals[1], &ops[i]) + beta[ops[i].kind];
        assert_true(fabs(evo_predict_op_us(&pred, &cals[1], &ops[i]) - want) < 1e-6 * want);
    }
    /* the default fit: pulled toward the roofline, but its weighted squared
     * relative error is no worse than the roofline's own */
    evo_predictor ridge;
    assert_int_equal(evo_predictor_fit(fx->db, 0, &ridge, &err), EVO_OK);
    evo_predictor plain = {.alpha = {1, 1, 1, 1, 1, 1, 1, 1}};
    double e_ridge = 0, e_plain = 0;
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < n_ops; i++) {
            double want =
                alpha[ops[i].kind] * evo_roofline_us(&cals[c], &ops[i]) + beta[ops[i].kind];
            double r = evo_predict_op_us(&ridge, &cals[c], &ops[i]) / want - 1;
            double p = evo_predict_op_us(&plain, &cals[c], &ops[i]) / want - 1;
            e_ridge += r * r;
            e_plain += p * p;
        }
    assert_true(e_ridge <= e_plain);
    assert_true(e_ridge > 0); /* the pull is real: not the exact parameters */
    /* a bad ridge strength is refused */
    assert_int_equal(evo_predictor_fit_ridge(fx->db, 0, -1.0, &ridge, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_predictor_fit_ridge(fx->db, 0, NAN, &ridge, &err), EVO_ERR_INVALID_ARG);
    /* excluding the only model leaves nothing to fit */
    assert_int_equal(evo_predictor_fit(fx->db, fx->mlp_id, &pred, &err), EVO_OK);
    assert_int_equal(pred.n_profiles, 0);
    evo_db_ops_free(ops, n_ops);
}

static void test_calibrate_runs(void **state)
{
    (void)state;
    evo_calibration cal;
    evo_error err = {0};
    assert_int_equal(evo_calibrate(&cal, &err), EVO_OK);
    /* only that the figures are usable: positive and finite */
    assert_true(isfinite(cal.dense_gflops) && cal.dense_gflops > 0);
    assert_true(isfinite(cal.dw_gflops) && cal.dw_gflops > 0);
    assert_true(isfinite(cal.elem_gflops) && cal.elem_gflops > 0);
    assert_true(isfinite(cal.mem_gbps) && cal.mem_gbps > 0);
    assert_true(isfinite(cal.cache_gbps) && cal.cache_gbps > 0);
    assert_true(cal.cache_bytes > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_artifacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calibration_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_exec_and_store, setup, teardown),
        cmocka_unit_test(test_roofline),
        cmocka_unit_test(test_roofline_conv_km),
        cmocka_unit_test_setup_teardown(test_predictor_fit_recovers_parameters, setup, teardown),
        cmocka_unit_test(test_calibrate_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
