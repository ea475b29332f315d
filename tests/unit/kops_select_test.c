/* TopK and Hardmax (topk.c), Trilu and EyeLike (trilu_eyelike.c), CumSum
 * and OneHot (cumsum_onehot.c): hand-computed values and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"

static evo_status kops_topk(evo_graph *g, evo_tensor *x, int64_t k, evo_tensor *vals,
                            evo_tensor *inds, evo_error *err)
{
    const evo_op_def *op = evo_op_find("", "TopK");
    assert_non_null(op);
    kelem_params p;
    evo_status rv = kelem_parse(op, g, &p, err);
    if (rv != EVO_OK)
        return rv;
    evo_tensor tk = KT(EVO_DT_INT64, &k, 1);
    evo_tensor *in[2] = {x, &tk};
    evo_tensor iv, ii;
    memset(&iv, 0, sizeof iv);
    memset(&ii, 0, sizeof ii);
    evo_tensor *iout[2] = {&iv, &ii};
    evo_kctx c = {.params = p.bytes, .in = in, .n_in = 2, .out = iout, .n_out = 2, .err = err};
    if ((rv = op->infer(&c)) != EVO_OK)
        return rv;
    assert_true(evo_shape_equal(&iv.shape, &vals->shape));
    assert_int_equal(ii.dtype, EVO_DT_INT64);
    int64_t scratch[16];
    assert_true(op->scratch(&c) <= sizeof scratch);
    evo_tensor *out[2] = {vals, inds};
    evo_kctx e = {.params = p.bytes,
                  .in = in,
                  .n_in = 2,
                  .out = out,
                  .n_out = 2,
                  .scratch = scratch,
                  .scratch_bytes = sizeof scratch};
    return op->eval(&e);
}

static void test_topk(void **state)
{
    (void)state;
    /* along axis 0 of [4,2] (strided lines); ties keep input order */
    float x[8] = {1, 5, 3, 5, 3, 0, 2, 5}, v[4];
    int64_t ind[4];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 4, 2), tv = KT(EVO_DT_FLOAT32, v, 2, 2);
    evo_tensor ti = KT(EVO_DT_INT64, ind, 2, 2);
    evo_graph *g = kelem_graph("TopK", 2, 11);
    kelem_attr_int(g, "axis", 0);
    assert_int_equal(kops_topk(g, &tx, 2, &tv, &ti, NULL), EVO_OK);
    kelem_expect_f32(v, (float[]){3, 5, 3, 5}, 4, 0);
    assert_memory_equal(ind, ((int64_t[]){1, 0, 2, 1}), sizeof ind);
    evo_graph_free(g);
    /* smallest over the last axis, int32 */
    int32_t xi[5] = {4, -1, 7, -1, 0}, vi[3];
    int64_t ii[3];
    evo_tensor txi = KT(EVO_DT_INT32, xi, 5), tvi = KT(EVO_DT_INT32, vi, 3);
    evo_tensor tii = KT(EVO_DT_INT64, ii, 3);
    g = kelem_graph("TopK", 2, 11);
    kelem_attr_int(g, "largest", 0);
    assert_int_equal(kops_topk(g, &txi, 3, &tvi, &tii, NULL), EVO_OK);
    assert_memory_equal(vi, ((int32_t[]){-1, -1, 0}), sizeof vi);
    assert_memory_equal(ii, ((int64_t[]){1, 3, 4}), sizeof ii);
    evo_graph_free(g);
    /* bad: K larger than the axis, negative K, K not constant, bool input */
    evo_error err = {0};
    assert_int_equal(kops_topk(NULL, &txi, 6, &tvi, &tii, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "K = 6"));
    assert_int_equal(kops_topk(NULL, &txi, -1, &tvi, &tii, &err), EVO_ERR_SHAPE);
    const evo_op_def *op = evo_op_find("", "TopK");
    kelem_params p;
    assert_int_equal(kelem_parse(op, NULL, &p, NULL), EVO_OK);
    evo_tensor tk = KT(EVO_DT_INT64, NULL, 1);
    evo_tensor *in[2] = {&txi, &tk};
    evo_tensor o0, o1;
    evo_tensor *out[2] = {&o0, &o1};
    evo_kctx c = {.params = p.bytes, .in = in, .n_in = 2, .out = out, .n_out = 2, .err = &err};
    assert_int_equal(op->infer(&c), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "constant"));
    uint8_t b[2] = {0, 1};
    evo_tensor tb = KT(EVO_DT_BOOL, b, 2);
    assert_int_equal(kops_topk(NULL, &tb, 1, &tvi, &tii, &err), EVO_ERR_UNSUPPORTED);
}

static void test_hardmax(void **state)
{
    (void)state;
    float x[6] = {1, 3, 3, 0, -1, -2}, y[6];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 3), ty = KT(EVO_DT_FLOAT32, y, 2, 3);
    evo_tensor *in[1] = {&tx};
    /* opset 13, last axis: first maximum wins */
    evo_graph *g = kelem_graph("Hardmax", 1, 13);
    assert_int_equal(kelem_run("Hardmax", g, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){0, 1, 0, 1, 0, 0}, 6, 0);
    evo_graph_free(g);
    /* opset 11, axis 0: flattened, one max over all 6 */
    g = kelem_graph("Hardmax", 1, 11);
    kelem_attr_int(g, "axis", 0);
    assert_int_equal(kelem_run("Hardmax", g, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){0, 1, 0, 0, 0, 0}, 6, 0);
    evo_graph_free(g);
    evo_error err = {0};
    g = kelem_graph("Hardmax", 1, 13);
    kelem_attr_int(g, "axis", 2);
    assert_int_equal(kelem_run("Hardmax", g, in, 1, &ty, &err), EVO_ERR_SHAPE);
    evo_graph_free(g);
}

static void test_trilu_eyelike(void **state)
{
    (void)state;
    int32_t x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    int64_t k = 1;
    evo_tensor tx = KT(EVO_DT_INT32, x, 2, 3), ty = KT(EVO_DT_INT32, y, 2, 3);
    evo_tensor tk = KT0(EVO_DT_INT64, &k);
    evo_tensor *in[2] = {&tx, &tk};
    assert_int_equal(kelem_run("Trilu", NULL, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((int32_t[]){0, 2, 3, 0, 0, 6}), sizeof y);
    evo_graph *g = kelem_graph("Trilu", 2, 14);
    kelem_attr_int(g, "upper", 0);
    k = -1;
    assert_int_equal(kelem_run("Trilu", g, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, ((int32_t[]){0, 0, 0, 4, 0, 0}), sizeof y);
    /* a huge k keeps everything (lower) without overflow */
    k = INT64_MAX;
    assert_int_equal(kelem_run("Trilu", g, in, 2, &ty, NULL), EVO_OK);
    assert_memory_equal(y, x, sizeof y);
    evo_graph_free(g);
    /* EyeLike with k = 1 and dtype float */
    float e[6];
    evo_tensor te = KT(EVO_DT_FLOAT32, e, 2, 3);
    evo_tensor *ein[1] = {&tx};
    g = kelem_graph("EyeLike", 1, 9);
    kelem_attr_int(g, "k", 1);
    kelem_attr_int(g, "dtype", EVO_DT_FLOAT32);
    assert_int_equal(kelem_run("EyeLike", g, ein, 1, &te, NULL), EVO_OK);
    kelem_expect_f32(e, (float[]){0, 1, 0, 0, 0, 1}, 6, 0);
    evo_graph_free(g);
    /* bad: Trilu rank 1, EyeLike rank 3, EyeLike dtype string */
    evo_error err = {0};
    evo_tensor t1 = KT(EVO_DT_INT32, x, 6), t1o = KT(EVO_DT_INT32, y, 6);
    evo_tensor *in1[1] = {&t1};
    assert_int_equal(kelem_run("Trilu", NULL, in1, 1, &t1o, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "rank"));
    evo_tensor t3 = KT(EVO_DT_INT32, x, 1, 2, 3), t3o = KT(EVO_DT_INT32, y, 1, 2, 3);
    evo_tensor *in3[1] = {&t3};
    assert_int_equal(kelem_run("EyeLike", NULL, in3, 1, &t3o, &err), EVO_ERR_SHAPE);
    g = kelem_graph("EyeLike", 1, 9);
    kelem_attr_int(g, "dtype", EVO_DT_STRING);
    assert_int_equal(kelem_run("EyeLike", g, ein, 1, &te, &err), EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
}

static void test_cumsum_onehot(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    int32_t axis = 1;
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 3), ty = KT(EVO_DT_FLOAT32, y, 2, 3);
    evo_tensor ta = KT0(EVO_DT_INT32, &axis);
    evo_tensor *in[2] = {&tx, &ta};
    assert_int_equal(kelem_run("CumSum", NULL, in, 2, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 3, 6, 4, 9, 15}, 6, 0);
    evo_graph *g = kelem_graph("CumSum", 2, 14);
    kelem_attr_int(g, "exclusive", 1);
    kelem_attr_int(g, "reverse", 1);
    axis = -2;
    assert_int_equal(kelem_run("CumSum", g, in, 2, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){4, 5, 6, 0, 0, 0}, 6, 0);
    evo_graph_free(g);
    /* OneHot: indices [3] with -1 and an out-of-range 5, depth 3, axis 0 */
    int64_t ind[3] = {0, -1, 5};
    float depth = 3, vals[2] = {-1, 7}, oh[9];
    evo_tensor ti = KT(EVO_DT_INT64, ind, 3), td = KT0(EVO_DT_FLOAT32, &depth);
    evo_tensor tv = KT(EVO_DT_FLOAT32, vals, 2), toh = KT(EVO_DT_FLOAT32, oh, 3, 3);
    evo_tensor *oin[3] = {&ti, &td, &tv};
    g = kelem_graph("OneHot", 3, 11);
    kelem_attr_int(g, "axis", 0);
    /* out[d][i] = on where ind[i] == d */
    assert_int_equal(kelem_run("OneHot", g, oin, 3, &toh, NULL), EVO_OK);
    kelem_expect_f32(oh, (float[]){7, -1, -1, -1, -1, -1, -1, 7, -1}, 9, 0);
    evo_graph_free(g);
    /* bad: CumSum axis out of range, OneHot values of 3, depth 0, depth
     * not constant, CumSum int8 */
    evo_error err = {0};
    axis = 2;
    assert_int_equal(kelem_run("CumSum", NULL, in, 2, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "axis"));
    float v3[3] = {0};
    evo_tensor tv3 = KT(EVO_DT_FLOAT32, v3, 3);
    evo_tensor *bin[3] = {&ti, &td, &tv3};
    assert_int_equal(kelem_run("OneHot", NULL, bin, 3, &toh, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "values"));
    depth = 0;
    assert_int_equal(kelem_run("OneHot", NULL, oin, 3, &toh, &err), EVO_ERR_SHAPE);
    evo_tensor tdn = KT0(EVO_DT_FLOAT32, NULL);
    evo_tensor *nin[3] = {&ti, &tdn, &tv};
    assert_int_equal(kelem_run("OneHot", NULL, nin, 3, &toh, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "constant"));
    int8_t x8[2] = {1, 2};
    evo_tensor t8 = KT(EVO_DT_INT8, x8, 2);
    axis = 0;
    evo_tensor *in8[2] = {&t8, &ta};
    assert_int_equal(kelem_run("CumSum", NULL, in8, 2, &t8, &err), EVO_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_hardmax),
        cmocka_unit_test(test_trilu_eyelike),
        cmocka_unit_test(test_cumsum_onehot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
