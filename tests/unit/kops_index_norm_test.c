/* GatherElements, ScatterElements, Scatter, ScatterND (gather_scatter.c),
 * LayerNormalization, GroupNormalization, RMSNormalization (layer_norm.c)
 * and ReduceL1, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp
 * (reduce_extra.c): hand-computed values and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"

/* Parse, infer and eval with several outputs (NULL = absent), checking the
 * inferred dtype and shape of each present output against the given one. */
static evo_status kops_run_multi(const char *op_type, evo_graph *g, evo_tensor **in, int32_t n_in,
                                 evo_tensor **out, int32_t n_out, void *scratch,
                                 size_t scratch_bytes, evo_error *err)
{
    const evo_op_def *op = evo_op_find("", op_type);
    assert_non_null(op);
    kelem_params p;
    evo_status rv = kelem_parse(op, g, &p, err);
    if (rv != EVO_OK)
        return rv;
    evo_tensor inferred[4];
    evo_tensor *iout[4] = {NULL, NULL, NULL, NULL};
    memset(inferred, 0, sizeof inferred);
    for (int32_t i = 0; i < n_out; i++)
        iout[i] = out[i] != NULL ? &inferred[i] : NULL;
    evo_kctx c = {
        .params = p.bytes, .in = in, .n_in = n_in, .out = iout, .n_out = n_out, .err = err};
    if ((rv = op->infer(&c)) != EVO_OK)
        return rv;
    for (int32_t i = 0; i < n_out; i++) {
        if (out[i] == NULL)
            continue;
        assert_int_equal(inferred[i].dtype, out[i]->dtype);
        assert_true(evo_shape_equal(&inferred[i].shape, &out[i]->shape));
    }
    if (op->scratch != NULL) {
        c.out = out;
        assert_true(op->scratch(&c) <= scratch_bytes);
    }
    evo_kctx e = {.params = p.bytes,
                  .in = in,
                  .n_in = n_in,
                  .out = out,
                  .n_out = n_out,
                  .scratch = scratch,
                  .scratch_bytes = scratch_bytes};
    return op->eval(&e);
}

static void test_gather_elements(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}, y[4];
    int64_t ind[4] = {2, 0, -1, 1};
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 3), ti = KT(EVO_DT_INT64, ind, 2, 2);
    evo_tensor ty = KT(EVO_DT_FLOAT32, y, 2, 2);
    evo_tensor *in[2] = {&tx, &ti};
    evo_graph *g = kelem_graph("GatherElements", 2, 13);
    kelem_attr_int(g, "axis", 1);
    /* y[i][j] = x[i][ind[i][j]] */
    assert_int_equal(kelem_run("GatherElements", g, in, 2, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){3, 1, 6, 5}, 4, 0);
    evo_graph_free(g);
    /* axis 0: y[i][j] = x[ind[i][j]][j], int32 indices */
    int32_t ind0[2] = {1, 0};
    float y0[2];
    evo_tensor ti0 = KT(EVO_DT_INT32, ind0, 1, 2), ty0 = KT(EVO_DT_FLOAT32, y0, 1, 2);
    evo_tensor *in0[2] = {&tx, &ti0};
    assert_int_equal(kelem_run("GatherElements", NULL, in0, 2, &ty0, NULL), EVO_OK);
    kelem_expect_f32(y0, (float[]){4, 2}, 2, 0);
    /* bad: index out of range at eval, rank mismatch, float indices, axis */
    evo_error err = {0};
    int64_t bad[4] = {0, 3, 0, 0};
    evo_tensor tb = KT(EVO_DT_INT64, bad, 2, 2);
    evo_tensor *inb[2] = {&tx, &tb};
    g = kelem_graph("GatherElements", 2, 13);
    kelem_attr_int(g, "axis", 1);
    assert_int_equal(kelem_run("GatherElements", g, inb, 2, &ty, NULL), EVO_ERR_INVALID_ARG);
    evo_tensor tr = KT(EVO_DT_INT64, ind, 4);
    evo_tensor *inr[2] = {&tx, &tr};
    assert_int_equal(kelem_run("GatherElements", g, inr, 2, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "rank"));
    evo_tensor tf = KT(EVO_DT_FLOAT32, y, 2, 2);
    evo_tensor *inf[2] = {&tx, &tf};
    assert_int_equal(kelem_run("GatherElements", g, inf, 2, &ty, &err), EVO_ERR_TYPE);
    evo_graph_free(g);
    g = kelem_graph("GatherElements", 2, 13);
    kelem_attr_int(g, "axis", 2);
    assert_int_equal(kelem_run("GatherElements", g, in, 2, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "axis"));
    evo_graph_free(g);
}

static void test_scatter_elements(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}, u[2] = {10, 20}, y[6];
    int64_t ind[2] = {2, 2};
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 3), ti = KT(EVO_DT_INT64, ind, 1, 2);
    evo_tensor tu = KT(EVO_DT_FLOAT32, u, 1, 2), ty = KT(EVO_DT_FLOAT32, y, 2, 3);
    evo_tensor *in[3] = {&tx, &ti, &tu};
    evo_graph *g = kelem_graph("ScatterElements", 3, 18);
    kelem_attr_int(g, "axis", 1);
    kelem_attr_string(g, "reduction", "add");
    /* row 0: out[0][2] += 10, out[0][2] += 20 (duplicates accumulate) */
    assert_int_equal(kelem_run("ScatterElements", g, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 2, 33, 4, 5, 6}, 6, 0);
    evo_graph_free(g);
    /* none, axis 0, int32 data, in place: out[ind[0][j]][j] = u[0][j] */
    int32_t xi[4] = {1, 2, 3, 4}, ui[2] = {7, 8};
    int64_t ind0[2] = {1, -2};
    evo_tensor txi = KT(EVO_DT_INT32, xi, 2, 2), ti0 = KT(EVO_DT_INT64, ind0, 1, 2);
    evo_tensor tui = KT(EVO_DT_INT32, ui, 1, 2), tyi = txi;
    evo_tensor *ini[3] = {&txi, &ti0, &tui};
    assert_int_equal(kelem_run("Scatter", NULL, ini, 3, &tyi, NULL), EVO_OK);
    assert_memory_equal(xi, ((int32_t[]){1, 8, 7, 4}), sizeof xi);
    /* bad: updates shape, bad reduction name, bool data with a reduction */
    evo_error err = {0};
    evo_tensor tu2 = KT(EVO_DT_FLOAT32, u, 2);
    evo_tensor *inb[3] = {&tx, &ti, &tu2};
    g = kelem_graph("ScatterElements", 3, 18);
    kelem_attr_int(g, "axis", 1);
    assert_int_equal(kelem_run("ScatterElements", g, inb, 3, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "updates"));
    /* the same constant indices are out of range along axis 0 */
    assert_int_equal(kelem_run("ScatterElements", NULL, in, 3, &ty, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
    g = kelem_graph("ScatterElements", 3, 18);
    kelem_attr_string(g, "reduction", "avg");
    assert_int_equal(kelem_run("ScatterElements", g, in, 3, &ty, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
    uint8_t bx[2] = {0, 1}, bu[1] = {1}, by[2];
    int64_t bi[1] = {0};
    evo_tensor tbx = KT(EVO_DT_BOOL, bx, 2), tbi = KT(EVO_DT_INT64, bi, 1);
    evo_tensor tbu = KT(EVO_DT_BOOL, bu, 1), tby = KT(EVO_DT_BOOL, by, 2);
    evo_tensor *inbool[3] = {&tbx, &tbi, &tbu};
    g = kelem_graph("ScatterElements", 3, 18);
    kelem_attr_string(g, "reduction", "max");
    assert_int_equal(kelem_run("ScatterElements", g, inbool, 3, &tby, &err), EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
    /* bool without reduction is a plain copy */
    assert_int_equal(kelem_run("ScatterElements", NULL, inbool, 3, &tby, NULL), EVO_OK);
    assert_memory_equal(by, ((uint8_t[]){1, 1}), 2);
}

static void test_scatter_nd(void **state)
{
    (void)state;
    /* data [2,2,2]; indices [[1],[0]] replace whole [2,2] slices */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, u[8] = {10, 20, 30, 40, 50, 60, 70, 80}, y[8];
    int64_t ind[2] = {1, 0};
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 2, 2), ti = KT(EVO_DT_INT64, ind, 2, 1);
    evo_tensor tu = KT(EVO_DT_FLOAT32, u, 2, 2, 2), ty = KT(EVO_DT_FLOAT32, y, 2, 2, 2);
    evo_tensor *in[3] = {&tx, &ti, &tu};
    assert_int_equal(kelem_run("ScatterND", NULL, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){50, 60, 70, 80, 10, 20, 30, 40}, 8, 0);
    /* element indices with mul: out[0][1][1] *= 2, out[-1][0][0] *= 3 */
    int64_t ind2[6] = {0, 1, 1, -1, 0, 0};
    float u2[2] = {2, 3};
    evo_tensor ti2 = KT(EVO_DT_INT64, ind2, 2, 3), tu2 = KT(EVO_DT_FLOAT32, u2, 2);
    evo_tensor *in2[3] = {&tx, &ti2, &tu2};
    evo_graph *g = kelem_graph("ScatterND", 3, 18);
    kelem_attr_string(g, "reduction", "mul");
    assert_int_equal(kelem_run("ScatterND", g, in2, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 2, 3, 8, 15, 6, 7, 8}, 8, 0);
    evo_graph_free(g);
    /* bad: k > rank, wrong updates shape, index out of range (eval) */
    evo_error err = {0};
    int64_t ind4[4] = {0, 0, 0, 0};
    evo_tensor ti4 = KT(EVO_DT_INT64, ind4, 1, 4);
    evo_tensor *in4[3] = {&tx, &ti4, &tu2};
    assert_int_equal(kelem_run("ScatterND", NULL, in4, 3, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "last dim"));
    evo_tensor *in5[3] = {&tx, &ti, &tu2};
    assert_int_equal(kelem_run("ScatterND", NULL, in5, 3, &ty, &err), EVO_ERR_SHAPE);
    int64_t ind6[2] = {2, 0};
    evo_tensor ti6 = KT(EVO_DT_INT64, ind6, 2, 1);
    evo_tensor *in6[3] = {&tx, &ti6, &tu};
    assert_int_equal(kelem_run("ScatterND", NULL, in6, 3, &ty, NULL), EVO_ERR_INVALID_ARG);
}

static void test_layer_norm(void **state)
{
    (void)state;
    /* rows [1,2,3] and [2,4,6]: mean 2 / 4, var 2/3 and 8/3 */
    float x[6] = {1, 2, 3, 2, 4, 6}, s[3] = {1, 2, 1}, b[1] = {0.5f}, y[6], mean[2], inv[2];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 3), ts = KT(EVO_DT_FLOAT32, s, 3);
    evo_tensor tb = KT(EVO_DT_FLOAT32, b, 1), ty = KT(EVO_DT_FLOAT32, y, 2, 3);
    evo_tensor tm = KT(EVO_DT_FLOAT32, mean, 2, 1), tv = KT(EVO_DT_FLOAT32, inv, 2, 1);
    evo_tensor *in[3] = {&tx, &ts, &tb};
    evo_tensor *out[3] = {&ty, &tm, &tv};
    evo_graph *g = kelem_graph("LayerNormalization", 3, 17);
    kelem_attr_float(g, "epsilon", 0.0f);
    assert_int_equal(kops_run_multi("LayerNormalization", g, in, 3, out, 3, NULL, 0, NULL), EVO_OK);
    float k = 1.2247449f; /* sqrt(3/2) */
    kelem_expect_f32(y, (float[]){-k + 0.5f, 0.5f, k + 0.5f, -k + 0.5f, 0.5f, k + 0.5f}, 6, 1e-5f);
    kelem_expect_f32(mean, (float[]){2, 4}, 2, 0);
    kelem_expect_f32(inv, (float[]){k, k / 2}, 2, 1e-5f);
    evo_graph_free(g);
    /* RMS over the last axis: y = x / sqrt(mean(x^2)) * s */
    float ry[6];
    evo_tensor try_ = KT(EVO_DT_FLOAT32, ry, 2, 3);
    evo_tensor *rin[2] = {&tx, &ts};
    evo_tensor *rout[1] = {&try_};
    g = kelem_graph("RMSNormalization", 2, 23);
    kelem_attr_float(g, "epsilon", 0.0f);
    assert_int_equal(kops_run_multi("RMSNormalization", g, rin, 2, rout, 1, NULL, 0, NULL), EVO_OK);
    float r = 0.46291005f; /* 1 / sqrt(14/3) */
    kelem_expect_f32(ry, (float[]){r, 4 * r, 3 * r, r, 4 * r, 3 * r}, 6, 1e-5f);
    evo_graph_free(g);
    /* bad: scale that does not broadcast, axis, int input, stash_type */
    evo_error err = {0};
    float s2[2] = {1, 1};
    evo_tensor ts2 = KT(EVO_DT_FLOAT32, s2, 2);
    evo_tensor *bin[2] = {&tx, &ts2};
    assert_int_equal(kops_run_multi("LayerNormalization", NULL, bin, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "broadcast"));
    g = kelem_graph("LayerNormalization", 2, 17);
    kelem_attr_int(g, "axis", 2);
    assert_int_equal(kops_run_multi("LayerNormalization", g, rin, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_SHAPE);
    evo_graph_free(g);
    int32_t xi[6] = {0};
    evo_tensor txi = KT(EVO_DT_INT32, xi, 2, 3);
    evo_tensor *iin[2] = {&txi, &ts};
    assert_int_equal(kops_run_multi("LayerNormalization", NULL, iin, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_UNSUPPORTED);
    g = kelem_graph("LayerNormalization", 2, 17);
    kelem_attr_int(g, "stash_type", 11);
    assert_int_equal(kops_run_multi("LayerNormalization", g, rin, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
}

static void test_group_norm(void **state)
{
    (void)state;
    /* N=1, C=4, 1 spatial, 2 groups: {1,3} and {2,6} normalize to -1, 1 */
    float x[4] = {1, 3, 2, 6}, s[4] = {1, 2, 3, 4}, b[4] = {0, 0, 1, 1}, y[4];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 1, 4, 1), ts = KT(EVO_DT_FLOAT32, s, 4);
    evo_tensor tb = KT(EVO_DT_FLOAT32, b, 4), ty = KT(EVO_DT_FLOAT32, y, 1, 4, 1);
    evo_tensor *in[3] = {&tx, &ts, &tb};
    evo_graph *g = kelem_graph("GroupNormalization", 3, 21);
    kelem_attr_int(g, "num_groups", 2);
    kelem_attr_float(g, "epsilon", 0.0f);
    assert_int_equal(kelem_run("GroupNormalization", g, in, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-1, 2, -2, 5}, 4, 1e-6f);
    evo_graph_free(g);
    /* opset 18: scale and bias per group */
    evo_tensor ts18 = KT(EVO_DT_FLOAT32, s, 2), tb18 = KT(EVO_DT_FLOAT32, b + 1, 2);
    evo_tensor *in18[3] = {&tx, &ts18, &tb18};
    g = kelem_graph("GroupNormalization", 3, 18);
    kelem_attr_int(g, "num_groups", 2);
    kelem_attr_float(g, "epsilon", 0.0f);
    assert_int_equal(kelem_run("GroupNormalization", g, in18, 3, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){-1, 1, -1, 3}, 4, 1e-6f);
    /* bad: per-channel scale at opset 18, groups that do not divide C */
    evo_error err = {0};
    assert_int_equal(kelem_run("GroupNormalization", g, in, 3, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "scale"));
    evo_graph_free(g);
    g = kelem_graph("GroupNormalization", 3, 21);
    kelem_attr_int(g, "num_groups", 3);
    assert_int_equal(kelem_run("GroupNormalization", g, in, 3, &ty, &err), EVO_ERR_SHAPE);
    evo_graph_free(g);
    g = kelem_graph("GroupNormalization", 3, 21);
    assert_int_equal(kelem_run("GroupNormalization", g, in, 3, &ty, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "num_groups"));
    evo_graph_free(g);
}

static void test_reduce_extra(void **state)
{
    (void)state;
    float x[6] = {1, -2, 3, -4, 5, -6}, y[3], scratch[8];
    int64_t axes0 = 0;
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 3), ta = KT(EVO_DT_INT64, &axes0, 1);
    evo_tensor ty = KT(EVO_DT_FLOAT32, y, 1, 3);
    evo_tensor *in[2] = {&tx, &ta};
    evo_tensor *out[1] = {&ty};
    assert_int_equal(kops_run_multi("ReduceL1", NULL, in, 2, out, 1, NULL, 0, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){5, 7, 9}, 3, 0);
    assert_int_equal(kops_run_multi("ReduceSumSquare", NULL, in, 2, out, 1, NULL, 0, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){17, 29, 45}, 3, 0);
    /* log(1 + e^-3 ... ) stays exact for large inputs: max + log(sum) */
    float big[2] = {1000, 1000};
    float ly[1];
    evo_tensor tbig = KT(EVO_DT_FLOAT32, big, 2), tly = KT(EVO_DT_FLOAT32, ly, 1);
    evo_tensor *lin[1] = {&tbig};
    evo_tensor *lout[1] = {&tly};
    assert_int_equal(
        kops_run_multi("ReduceLogSumExp", NULL, lin, 1, lout, 1, scratch, sizeof scratch, NULL),
        EVO_OK);
    kelem_expect_f32(ly, (float[]){1000.6931472f}, 1, 1e-6f);
    assert_int_equal(kops_run_multi("ReduceLogSum", NULL, lin, 1, lout, 1, NULL, 0, NULL), EVO_OK);
    kelem_expect_f32(ly, (float[]){7.6009024f}, 1, 1e-6f);
    /* empty set: 0 and -inf */
    float e[1];
    evo_tensor te = KT(EVO_DT_FLOAT32, e, 2, 0), tey = KT(EVO_DT_FLOAT32, ly, 1, 1);
    evo_tensor *ein[1] = {&te};
    evo_tensor *eout[1] = {&tey};
    assert_int_equal(
        kops_run_multi("ReduceLogSumExp", NULL, ein, 1, eout, 1, scratch, sizeof scratch, NULL),
        EVO_OK);
    kelem_expect_f32(ly, (float[]){-INFINITY}, 1, 0);
    assert_int_equal(kops_run_multi("ReduceL1", NULL, ein, 1, eout, 1, NULL, 0, NULL), EVO_OK);
    kelem_expect_f32(ly, (float[]){0}, 1, 0);
    /* int64 L1, keepdims 0 over axis 1 */
    int64_t xi[4] = {-1, 2, -3, INT64_MIN}, yi[2], axes1 = -1;
    evo_tensor txi = KT(EVO_DT_INT64, xi, 2, 2), ta1 = KT(EVO_DT_INT64, &axes1, 1);
    evo_tensor tyi = KT(EVO_DT_INT64, yi, 2);
    evo_tensor *iin[2] = {&txi, &ta1};
    evo_tensor *iout[1] = {&tyi};
    evo_graph *g = kelem_graph("ReduceL1", 2, 18);
    kelem_attr_int(g, "keepdims", 0);
    assert_int_equal(kops_run_multi("ReduceL1", g, iin, 2, iout, 1, NULL, 0, NULL), EVO_OK);
    assert_int_equal(yi[0], 3);
    assert_int_equal(yi[1], (int64_t)((uint64_t)3 + (uint64_t)INT64_MIN)); /* wraps */
    evo_graph_free(g);
    /* bad: axis out of range, non-constant axes, int LogSum, duplicate axes */
    evo_error err = {0};
    int64_t axes9 = 2;
    evo_tensor ta9 = KT(EVO_DT_INT64, &axes9, 1);
    evo_tensor *bin[2] = {&tx, &ta9};
    assert_int_equal(kops_run_multi("ReduceL1", NULL, bin, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "out of range"));
    evo_tensor tan = KT(EVO_DT_INT64, NULL, 1);
    evo_tensor *nin[2] = {&tx, &tan};
    assert_int_equal(kops_run_multi("ReduceL1", NULL, nin, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "constant"));
    assert_int_equal(kops_run_multi("ReduceLogSum", NULL, iin, 2, iout, 1, NULL, 0, &err),
                     EVO_ERR_UNSUPPORTED);
    int64_t dup[2] = {0, -2};
    evo_tensor tdup = KT(EVO_DT_INT64, dup, 2);
    evo_tensor *din[2] = {&tx, &tdup};
    assert_int_equal(kops_run_multi("ReduceSumSquare", NULL, din, 2, out, 1, NULL, 0, &err),
                     EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "twice"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_elements), cmocka_unit_test(test_scatter_elements),
        cmocka_unit_test(test_scatter_nd),      cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_group_norm),      cmocka_unit_test(test_reduce_extra),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
