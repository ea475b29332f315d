/* LpNormalization, MeanVarianceNormalization, GlobalLpPool, LpPool
 * (lp_ops.c), Einsum (einsum.c) and Quantize/DequantizeLinear
 * (quantize.c): hand-computed values and bad input. The conformance tests
 * for Einsum use float64, which evo lacks, so these values are its only
 * check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"

/* kelem_run with a scratch area (MeanVarianceNormalization needs one). */
static evo_status kops_run_scratch(const char *op_type, evo_graph *g, evo_tensor **in, int32_t n_in,
                                   evo_tensor *out, evo_error *err)
{
    const evo_op_def *op = evo_op_find("", op_type);
    assert_non_null(op);
    kelem_params p;
    evo_status rv = kelem_parse(op, g, &p, err);
    if (rv != EVO_OK)
        return rv;
    evo_tensor inferred;
    if ((rv = kelem_infer(op, &p, in, n_in, &inferred, err)) != EVO_OK)
        return rv;
    assert_int_equal(inferred.dtype, out->dtype);
    assert_true(evo_shape_equal(&inferred.shape, &out->shape));
    evo_tensor *outs[1] = {out};
    double scratch[64];
    evo_kctx c = {.params = p.bytes,
                  .in = in,
                  .n_in = n_in,
                  .out = outs,
                  .n_out = 1,
                  .scratch = scratch,
                  .scratch_bytes = sizeof scratch};
    if (op->scratch != NULL)
        assert_true(op->scratch(&c) <= sizeof scratch);
    return op->eval(&c);
}

static evo_graph *kops_graph_ints(const char *op, int opset, const char *name, const int64_t *v,
                                  size_t n)
{
    evo_graph *g = kelem_graph(op, 1, opset);
    evo_attr a;
    memset(&a, 0, sizeof a);
    a.name = strdup(name);
    a.type = EVO_ATTR_INTS;
    a.count = n;
    a.ints = malloc(n * sizeof(int64_t));
    memcpy(a.ints, v, n * sizeof(int64_t));
    assert_int_equal(evo_node_add_attr(g, 0, &a), EVO_OK);
    return g;
}

static void test_lp_norm_mvn(void **state)
{
    (void)state;
    float x[4] = {3, 4, 0, 0}, y[4];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 2, 2), ty = KT(EVO_DT_FLOAT32, y, 2, 2);
    evo_tensor *in[1] = {&tx};
    /* p=2 over the last axis; a zero row stays zero */
    assert_int_equal(kelem_run("LpNormalization", NULL, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){0.6f, 0.8f, 0, 0}, 4, 1e-6f);
    evo_graph *g = kelem_graph("LpNormalization", 1, 1);
    kelem_attr_int(g, "p", 1);
    kelem_attr_int(g, "axis", 0);
    assert_int_equal(kelem_run("LpNormalization", g, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 1, 0, 0}, 4, 1e-6f);
    evo_graph_free(g);
    /* MVN over axis 1 of [2,2]: rows {1,3} and {2,2} */
    float m[4] = {1, 3, 2, 2}, my[4];
    evo_tensor tm = KT(EVO_DT_FLOAT32, m, 2, 2), tmy = KT(EVO_DT_FLOAT32, my, 2, 2);
    evo_tensor *inm[1] = {&tm};
    int64_t ax1[1] = {1};
    g = kops_graph_ints("MeanVarianceNormalization", 13, "axes", ax1, 1);
    assert_int_equal(kops_run_scratch("MeanVarianceNormalization", g, inm, 1, &tmy, NULL), EVO_OK);
    kelem_expect_f32(my, (float[]){-1, 1, 0, 0}, 4, 1e-6f);
    evo_graph_free(g);
    /* bad: p=3, axis 2, MVN default axes on rank 2 */
    evo_error err = {0};
    g = kelem_graph("LpNormalization", 1, 1);
    kelem_attr_int(g, "p", 3);
    assert_int_equal(kelem_run("LpNormalization", g, in, 1, &ty, &err), EVO_ERR_INVALID_ARG);
    evo_graph_free(g);
    g = kelem_graph("LpNormalization", 1, 1);
    kelem_attr_int(g, "axis", 2);
    assert_int_equal(kelem_run("LpNormalization", g, in, 1, &ty, &err), EVO_ERR_SHAPE);
    evo_graph_free(g);
    assert_int_equal(kops_run_scratch("MeanVarianceNormalization", NULL, inm, 1, &tmy, &err),
                     EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "out of range"));
}

static void test_lp_pool(void **state)
{
    (void)state;
    /* 1x1x3x3, kernel 2x2, stride 1, p=2 */
    float x[9] = {1, 2, 0, 2, 4, 0, 0, 0, 3}, y[4];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 1, 1, 3, 3), ty = KT(EVO_DT_FLOAT32, y, 1, 1, 2, 2);
    evo_tensor *in[1] = {&tx};
    int64_t k[2] = {2, 2};
    evo_graph *g = kops_graph_ints("LpPool", 18, "kernel_shape", k, 2);
    assert_int_equal(kelem_run("LpPool", g, in, 1, &ty, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){5, 4.4721360f, 4.4721360f, 5}, 4, 1e-6f);
    evo_graph_free(g);
    /* GlobalLpPool p=1: sum of |x| */
    float gy[1];
    evo_tensor tgy = KT(EVO_DT_FLOAT32, gy, 1, 1, 1, 1);
    g = kelem_graph("GlobalLpPool", 1, 2);
    kelem_attr_int(g, "p", 1);
    assert_int_equal(kelem_run("GlobalLpPool", g, in, 1, &tgy, NULL), EVO_OK);
    kelem_expect_f32(gy, (float[]){12}, 1, 0);
    evo_graph_free(g);
    /* bad: no kernel_shape, kernel larger than the input, rank mismatch */
    evo_error err = {0};
    assert_int_equal(kelem_run("LpPool", NULL, in, 1, &ty, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "kernel_shape"));
    int64_t k4[2] = {4, 4};
    g = kops_graph_ints("LpPool", 18, "kernel_shape", k4, 2);
    assert_int_equal(kelem_run("LpPool", g, in, 1, &ty, &err), EVO_ERR_SHAPE);
    evo_graph_free(g);
    int64_t k1[1] = {2};
    g = kops_graph_ints("LpPool", 18, "kernel_shape", k1, 1);
    assert_int_equal(kelem_run("LpPool", g, in, 1, &ty, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "rank"));
    evo_graph_free(g);
}

static evo_status kops_einsum(const char *eq, evo_tensor **in, int32_t n_in, evo_tensor *out,
                              evo_error *err)
{
    evo_graph *g = kelem_graph("Einsum", n_in, 12);
    kelem_attr_string(g, "equation", eq);
    evo_status rv = kelem_run("Einsum", g, in, n_in, out, err);
    evo_graph_free(g);
    return rv;
}

static void test_einsum(void **state)
{
    (void)state;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, y[9];
    evo_tensor ta = KT(EVO_DT_FLOAT32, a, 2, 3), tb = KT(EVO_DT_FLOAT32, b, 3, 2);
    evo_tensor *ab[2] = {&ta, &tb};
    /* matmul [2,3] x [3,2] */
    evo_tensor t22 = KT(EVO_DT_FLOAT32, y, 2, 2);
    assert_int_equal(kops_einsum("ij,jk->ik", ab, 2, &t22, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){4, 5, 10, 11}, 4, 0);
    /* implicit output: transpose of the same is "ij,jk" -> ik too */
    assert_int_equal(kops_einsum("ij, jk", ab, 2, &t22, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){4, 5, 10, 11}, 4, 0);
    /* transpose, row sums, total */
    evo_tensor t32 = KT(EVO_DT_FLOAT32, y, 3, 2);
    evo_tensor *a1[1] = {&ta};
    assert_int_equal(kops_einsum("ij->ji", a1, 1, &t32, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 4, 2, 5, 3, 6}, 6, 0);
    evo_tensor t2 = KT(EVO_DT_FLOAT32, y, 2), t0 = KT0(EVO_DT_FLOAT32, y);
    assert_int_equal(kops_einsum("ij->i", a1, 1, &t2, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){6, 15}, 2, 0);
    assert_int_equal(kops_einsum("ij->", a1, 1, &t0, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){21}, 1, 0);
    /* diagonal of a [3,3] and batch matmul with an ellipsis */
    float s[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    evo_tensor ts = KT(EVO_DT_FLOAT32, s, 3, 3), t3 = KT(EVO_DT_FLOAT32, y, 3);
    evo_tensor *s1[1] = {&ts};
    assert_int_equal(kops_einsum("ii->i", s1, 1, &t3, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){1, 5, 9}, 3, 0);
    evo_tensor tba = KT(EVO_DT_FLOAT32, a, 2, 1, 3), tbb = KT(EVO_DT_FLOAT32, b, 1, 3, 2);
    evo_tensor tby = KT(EVO_DT_FLOAT32, y, 2, 1, 2);
    evo_tensor *bb[2] = {&tba, &tbb};
    assert_int_equal(kops_einsum("...ij,...jk->...ik", bb, 2, &tby, NULL), EVO_OK);
    kelem_expect_f32(y, (float[]){4, 5, 10, 11}, 4, 0);
    /* int64 inner product */
    int64_t u[3] = {1, -2, 3}, v[3] = {4, 5, 6}, w;
    evo_tensor tu = KT(EVO_DT_INT64, u, 3), tv = KT(EVO_DT_INT64, v, 3), tw = KT0(EVO_DT_INT64, &w);
    evo_tensor *uv[2] = {&tu, &tv};
    assert_int_equal(kops_einsum("i,i", uv, 2, &tw, NULL), EVO_OK);
    assert_int_equal(w, 12);
    /* bad: term/rank mismatch, size mismatch, wrong operand count, unknown
     * output label, bad character, mixed types */
    evo_error err = {0};
    assert_int_equal(kops_einsum("ijk,jk->ik", ab, 2, &t22, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "rank"));
    evo_tensor *aa[2] = {&ta, &ta};
    assert_int_equal(kops_einsum("ij,jk->ik", aa, 2, &t22, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "sizes"));
    assert_int_equal(kops_einsum("ij->ij", ab, 2, &t22, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(kops_einsum("ij->iz", a1, 1, &t22, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'z'"));
    assert_int_equal(kops_einsum("i1->i", a1, 1, &t2, &err), EVO_ERR_INVALID_ARG);
    evo_tensor *mixed[2] = {&ta, &tu};
    assert_int_equal(kops_einsum("ij,k", mixed, 2, &t2, &err), EVO_ERR_TYPE);
}

static void test_quantize(void **state)
{
    (void)state;
    /* per tensor, uint8 zero point 10, scale 0.5; halves round to even */
    float x[6] = {0, 0.25f, 0.75f, -10, 200, NAN}, scale = 0.5f;
    uint8_t zp = 10, q[6];
    evo_tensor tx = KT(EVO_DT_FLOAT32, x, 6), ts = KT0(EVO_DT_FLOAT32, &scale);
    evo_tensor tz = KT0(EVO_DT_UINT8, &zp), tq = KT(EVO_DT_UINT8, q, 6);
    evo_tensor *in[3] = {&tx, &ts, &tz};
    assert_int_equal(kelem_run("QuantizeLinear", NULL, in, 3, &tq, NULL), EVO_OK);
    assert_memory_equal(q, ((uint8_t[]){10, 10, 12, 0, 255, 10}), 6);
    /* back: (q - 10) * 0.5 */
    float d[6];
    evo_tensor td = KT(EVO_DT_FLOAT32, d, 6);
    evo_tensor *din[3] = {&tq, &ts, &tz};
    assert_int_equal(kelem_run("DequantizeLinear", NULL, din, 3, &td, NULL), EVO_OK);
    kelem_expect_f32(d, (float[]){0, 0, 1, -5, 122.5f, 0}, 6, 0);
    /* per axis 1 of [2,2] with an int8 zero point... */
    float x2[4] = {1, 1, -1, -1}, s2[2] = {0.5f, 0.25f};
    int8_t z2[2] = {0, -1}, q2[4];
    evo_tensor tx2 = KT(EVO_DT_FLOAT32, x2, 2, 2), ts2 = KT(EVO_DT_FLOAT32, s2, 2);
    evo_tensor tz2 = KT(EVO_DT_INT8, z2, 2), tq2 = KT(EVO_DT_INT8, q2, 2, 2);
    evo_tensor *in2[3] = {&tx2, &ts2, &tz2};
    assert_int_equal(kelem_run("QuantizeLinear", NULL, in2, 3, &tq2, NULL), EVO_OK);
    assert_memory_equal(q2, ((int8_t[]){2, 3, -2, -5}), 4);
    /* ...and no zero point gives uint8 */
    uint8_t q3[4];
    evo_tensor tq3 = KT(EVO_DT_UINT8, q3, 2, 2);
    assert_int_equal(kelem_run("QuantizeLinear", NULL, in2, 2, &tq3, NULL), EVO_OK);
    assert_memory_equal(q3, ((uint8_t[]){2, 4, 0, 0}), 4);
    /* blocked along axis 1 with block 2: scale [1,2] for x [1,4] */
    int32_t xi[4] = {2, 4, 6, 8};
    float sb[2] = {1, 0.5f}, db[4];
    evo_tensor txi = KT(EVO_DT_INT32, xi, 1, 4), tsb = KT(EVO_DT_FLOAT32, sb, 1, 2);
    evo_tensor tdb = KT(EVO_DT_FLOAT32, db, 1, 4);
    evo_tensor *bin[2] = {&txi, &tsb};
    evo_graph *g = kelem_graph("DequantizeLinear", 2, 21);
    kelem_attr_int(g, "block_size", 2);
    assert_int_equal(kelem_run("DequantizeLinear", g, bin, 2, &tdb, NULL), EVO_OK);
    kelem_expect_f32(db, (float[]){2, 4, 3, 4}, 4, 0);
    evo_graph_free(g);
    /* bad: scale of the wrong length, zero point type, float16 scale,
     * int32 output */
    evo_error err = {0};
    float s3[3] = {1, 1, 1};
    evo_tensor ts3 = KT(EVO_DT_FLOAT32, s3, 3);
    evo_tensor *b1[2] = {&tx2, &ts3};
    assert_int_equal(kelem_run("QuantizeLinear", NULL, b1, 2, &tq3, &err), EVO_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "scale"));
    evo_tensor *b2[3] = {&tq, &ts, &tz2};
    assert_int_equal(kelem_run("DequantizeLinear", NULL, b2, 3, &td, &err), EVO_ERR_TYPE);
    uint16_t h = 0x3c00;
    evo_tensor th = KT0(EVO_DT_FLOAT16, &h);
    evo_tensor *b3[2] = {&tq, &th};
    assert_int_equal(kelem_run("DequantizeLinear", NULL, b3, 2, &td, &err), EVO_ERR_UNSUPPORTED);
    g = kelem_graph("QuantizeLinear", 2, 21);
    kelem_attr_int(g, "output_dtype", EVO_DT_INT32);
    assert_int_equal(kelem_run("QuantizeLinear", g, in, 2, &tq, &err), EVO_ERR_UNSUPPORTED);
    evo_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lp_norm_mvn),
        cmocka_unit_test(test_lp_pool),
        cmocka_unit_test(test_einsum),
        cmocka_unit_test(test_quantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
