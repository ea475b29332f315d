/* MaxPool's fast 2-D float path (pool_max2d_f32 in ref/pool.c) against the
 * reference window loop (forced with EVO_KPATH_REFERENCE): random shapes,
 * kernels, strides, pads, dilations and ceil mode, plus NaN and -inf inputs,
 * which must come out bit-identical. And bad input through infer. */
#include "kconv_util.h"

extern const evo_op_def evo_op_MaxPool;

typedef struct kp_geom {
    int32_t n, c, h, w;
    int64_t k[2], s[2], d[2], pads[4];
    int64_t ceil_mode;
} kp_geom;

/* Parse + infer a MaxPool over x of dims (n, c, h, w); false if infer
 * rejects the geometry (random draws may). */
static bool kp_setup(const kp_geom *g, void *params, evo_tensor *tx, evo_tensor *ty)
{
    evo_attr attrs[5];
    kc_attr_ints(&attrs[0], "kernel_shape", g->k, 2);
    kc_attr_ints(&attrs[1], "strides", g->s, 2);
    kc_attr_ints(&attrs[2], "dilations", g->d, 2);
    kc_attr_ints(&attrs[3], "pads", g->pads, 4);
    kc_attr_int(&attrs[4], "ceil_mode", g->ceil_mode);
    evo_node node;
    kc_node(&node, "MaxPool", attrs, 5);
    evo_error err;
    assert_int_equal(kc_parse(&evo_op_MaxPool, &node, params, &err), EVO_OK);
    const int32_t xd[4] = {g->n, g->c, g->h, g->w};
    kc_tensor(tx, EVO_DT_FLOAT32, NULL, 4, xd);
    memset(ty, 0, sizeof *ty);
    evo_tensor *in[1] = {tx};
    return kc_infer(&evo_op_MaxPool, params, in, 1, ty, &err) == EVO_OK;
}

/* Run both paths on x; fail unless the outputs are bit-identical. */
static void kp_compare(const kp_geom *g, const void *params, evo_tensor *tx, evo_tensor *ty,
                       const float *x, const char *what)
{
    const size_t ny = kc_numel(ty);
    float *want = malloc(ny * 4 + 4), *got = malloc(ny * 4 + 4);
    assert_non_null(want);
    assert_non_null(got);
    evo_tensor *in[1] = {tx};
    tx->data = (void *)x;
    ty->data = want;
    evo_kernels_force_path(EVO_KPATH_REFERENCE);
    assert_int_equal(kc_eval(&evo_op_MaxPool, params, in, 1, ty), EVO_OK);
    const evo_kernel_path fast[2] = {EVO_KPATH_PORTABLE, EVO_KPATH_AUTO};
    for (int p = 0; p < 2; p++) {
        evo_kernels_force_path(fast[p]);
        for (size_t i = 0; i < ny; i++)
            got[i] = 12345.0f;
        ty->data = got;
        assert_int_equal(kc_eval(&evo_op_MaxPool, params, in, 1, ty), EVO_OK);
        for (size_t i = 0; i < ny; i++)
            if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
                fail_msg("%s, path %d (%dx%d, k %lldx%lld, s %lld/%lld, d %lld/%lld, pads %lld "
                         "%lld %lld %lld, ceil %lld): element %zu is %g, expected %g",
                         what, (int)fast[p], g->h, g->w, (long long)g->k[0], (long long)g->k[1],
                         (long long)g->s[0], (long long)g->s[1], (long long)g->d[0],
                         (long long)g->d[1], (long long)g->pads[0], (long long)g->pads[1],
                         (long long)g->pads[2], (long long)g->pads[3], (long long)g->ceil_mode, i,
                         (double)got[i], (double)want[i]);
    }
    evo_kernels_force_path(EVO_KPATH_AUTO);
    free(want);
    free(got);
}

static void kp_random_vs_ref(void **state)
{
    (void)state;
    uint64_t rng = 777;
    int ran = 0;
    for (int it = 0; it < 300; it++) {
        kp_geom g = {.n = (int32_t)kc_rand_range(&rng, 1, 3),
                     .c = (int32_t)kc_rand_range(&rng, 1, 5),
                     .h = (int32_t)kc_rand_range(&rng, 1, 20),
                     .w = (int32_t)kc_rand_range(&rng, 1, 40)};
        for (int i = 0; i < 2; i++) {
            g.k[i] = kc_rand_range(&rng, 1, 5);
            g.s[i] = kc_rand_range(&rng, 1, 4);
            g.d[i] = it % 4 == 3 ? kc_rand_range(&rng, 1, 3) : 1;
        }
        for (int i = 0; i < 4; i++) /* pads must stay below the kernel */
            g.pads[i] = kc_rand_range(&rng, 0, g.k[i % 2]);
        g.ceil_mode = it % 3 == 0;
        uint8_t params[EVO_PARAMS_MAX];
        evo_tensor tx, ty;
        if (!kp_setup(&g, params, &tx, &ty))
            continue;
        const size_t nx = kc_numel(&tx);
        float *x = malloc(nx * 4 + 4);
        assert_non_null(x);
        kc_fill(x, nx, &rng);
        if (it % 5 == 1) /* special values: NaN first or later in a window, -inf */
            for (size_t i = 0; i < nx; i += 7)
                x[i] = (i / 7) % 2 ? NAN : -INFINITY;
        kp_compare(&g, params, &tx, &ty, x, "random MaxPool");
        free(x);
        ran++;
    }
    assert_true(ran > 200);
}

/* The squeezenet / resnet shapes: 3x3 and 2x2 windows, stride 2. */
static void kp_cnn_shapes(void **state)
{
    (void)state;
    uint64_t rng = 99;
    const kp_geom cases[] = {
        {1, 3, 111, 111, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},
        {1, 2, 112, 112, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0},
        {2, 3, 28, 28, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0},
        {1, 1, 1, 9, {1, 3}, {1, 1}, {1, 1}, {0, 1, 0, 1}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t params[EVO_PARAMS_MAX];
        evo_tensor tx, ty;
        assert_true(kp_setup(&cases[i], params, &tx, &ty));
        const size_t nx = kc_numel(&tx);
        float *x = malloc(nx * 4);
        assert_non_null(x);
        kc_fill(x, nx, &rng);
        kp_compare(&cases[i], params, &tx, &ty, x, "CNN MaxPool");
        free(x);
    }
}

/* A hand-computed case through the fast path: 3x3 stride 2 with pad 1 on a
 * 4x5 plane holding 0..19 row by row; each window's max is its bottom-right
 * tap inside the plane. */
static void kp_hand_computed(void **state)
{
    (void)state;
    const kp_geom g = {1, 1, 4, 5, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0};
    uint8_t params[EVO_PARAMS_MAX];
    evo_tensor tx, ty;
    assert_true(kp_setup(&g, params, &tx, &ty));
    assert_int_equal(ty.shape.dims[2], 2);
    assert_int_equal(ty.shape.dims[3], 3);
    float x[20], y[6];
    for (int i = 0; i < 20; i++)
        x[i] = (float)i;
    evo_tensor *in[1] = {&tx};
    tx.data = x;
    ty.data = y;
    assert_int_equal(kc_eval(&evo_op_MaxPool, params, in, 1, &ty), EVO_OK);
    const float want[6] = {6, 8, 9, 16, 18, 19};
    kc_expect_close(y, want, 6, 0.0f, "hand-computed MaxPool");
}

static void kp_bad_input(void **state)
{
    (void)state;
    uint8_t params[EVO_PARAMS_MAX];
    evo_tensor tx, ty;
    /* a 5x5 window on a 3x3 plane without padding has no output */
    const kp_geom g = {1, 1, 3, 3, {5, 5}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0};
    assert_false(kp_setup(&g, params, &tx, &ty));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kp_random_vs_ref),
        cmocka_unit_test(kp_cnn_shapes),
        cmocka_unit_test(kp_hand_computed),
        cmocka_unit_test(kp_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
