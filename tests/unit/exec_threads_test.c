/*
 * Intra-op threads (node/threads.c): a program run with 2, 3 and 4 threads
 * gives the single-thread outputs, for Convs that split evenly, unevenly
 * (the last part shorter), depthwise (X split too) and too small to split;
 * the pool is reused across runs and programs. Runs under ASan in the
 * sanitizer build, which checks every part stays inside its slices.
 */
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "evo/node.h"
#include "pass_build.h"

/* X[1,c,h,w] -> Conv(m, 3x3, pad 1) -> Relu -> depthwise 3x3 -> Y. */
static evo_graph *threads_graph(int32_t c, int32_t m, int32_t h, int32_t w)
{
    evo_graph *g = pb_new(13);
    pb_input(g, "x", 4, (int32_t[]){1, c, h, w});
    pb_const(g, "w1", 4, (int32_t[]){m, c, 3, 3}, NULL);
    pb_const(g, "b1", 1, (int32_t[]){m}, NULL);
    pb_const(g, "w2", 4, (int32_t[]){m, 1, 3, 3}, NULL);
    pb_const(g, "b2", 1, (int32_t[]){m}, NULL);
    const int64_t pads[] = {1, 1, 1, 1};
    int32_t n1 =
        pb_node(g, "Conv", "conv", (const char *[]){"x", "w1", "b1"}, 3, (const char *[]){"c1"}, 1);
    pb_attr_ints(g, n1, "pads", pads, 4);
    pb_node(g, "Relu", "relu", (const char *[]){"c1"}, 1, (const char *[]){"r1"}, 1);
    int32_t n2 =
        pb_node(g, "Conv", "dw", (const char *[]){"r1", "w2", "b2"}, 3, (const char *[]){"y"}, 1);
    pb_attr_ints(g, n2, "pads", pads, 4);
    pb_attr_i(g, n2, "group", m);
    pb_output(g, "y");
    pb_finish(g);
    return g;
}

/* Run the graph's program with `threads` (NULL: one thread); output copy. */
static float *threads_run(const evo_graph *g, evo_threads *threads, size_t *n_out)
{
    evo_error err = {0};
    evo_program *p = NULL;
    assert_int_equal(evo_program_build(g, NULL, &p, &err), EVO_OK);
    size_t bytes = evo_program_arena_size(p);
    void *arena = malloc(bytes);
    assert_non_null(arena);
    evo_exec x;
    assert_int_equal(evo_exec_init(&x, p, arena, bytes), EVO_OK);
    assert_int_equal(evo_exec_set_threads(&x, threads, &err), EVO_OK);
    evo_tensor *in = evo_exec_input(&x, 0);
    int64_t n_in = evo_shape_numel(&in->shape);
    for (int64_t i = 0; i < n_in; i++)
        ((float *)in->data)[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;
    assert_int_equal(evo_exec_run(&x, NULL), EVO_OK);
    /* a second run on the same pool gives the same */
    assert_int_equal(evo_exec_run(&x, NULL), EVO_OK);
    const evo_tensor *y = evo_exec_output(&x, 0);
    *n_out = (size_t)evo_shape_numel(&y->shape);
    float *copy = malloc(*n_out * sizeof(float));
    memcpy(copy, y->data, *n_out * sizeof(float));
    free(arena);
    evo_program_free(p);
    return copy;
}

/* split: whether the Convs are big enough that the pool must split them */
static void threads_check(int32_t c, int32_t m, int32_t h, int32_t w, bool split)
{
    evo_graph *g = threads_graph(c, m, h, w);
    size_t n1 = 0;
    float *ref = threads_run(g, NULL, &n1);
    for (int32_t t = 2; t <= 4; t++) {
        evo_threads *pool = NULL;
        evo_error err = {0};
        assert_int_equal(evo_threads_create(t, &pool, &err), EVO_OK);
        assert_int_equal(evo_threads_count(pool), t);
        size_t n2 = 0;
        float *got = threads_run(g, pool, &n2);
        assert_int_equal(n1, n2);
        /* two runs x two Convs when both split */
        if (split)
            assert_int_equal(evo_threads_split_ops(pool), 4);
        else
            assert_int_equal(evo_threads_split_ops(pool), 0);
        for (size_t i = 0; i < n1; i++)
            if (fabsf(got[i] - ref[i]) > 1e-5f * (1.0f + fabsf(ref[i])))
                fail_msg("c=%d m=%d %dx%d, %d threads: y[%zu] = %g, one thread %g", (int)c, (int)m,
                         (int)h, (int)w, (int)t, i, (double)got[i], (double)ref[i]);
        free(got);
        evo_threads_destroy(pool);
    }
    free(ref);
    evo_graph_free(g);
}

static void test_even_split(void **state)
{
    (void)state;
    threads_check(32, 64, 48, 48, true);
}

static void test_uneven_split(void **state)
{
    (void)state;
    threads_check(16, 40, 64, 64, true); /* 40 channels: parts of 16, 16, 8 (or 32, 8) */
}

static void test_too_small_to_split(void **state)
{
    (void)state;
    threads_check(4, 8, 8, 8, false);
}

static void test_bad_counts(void **state)
{
    (void)state;
    evo_threads *pool = (evo_threads *)(uintptr_t)1;
    evo_error err = {0};
    assert_int_equal(evo_threads_create(0, &pool, &err), EVO_ERR_INVALID_ARG);
    assert_null(pool);
    assert_int_equal(evo_threads_create(EVO_THREADS_MAX + 1, &pool, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "threads"));
    evo_threads_destroy(NULL);
    assert_int_equal(evo_threads_count(NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even_split),
        cmocka_unit_test(test_uneven_split),
        cmocka_unit_test(test_too_small_to_split),
        cmocka_unit_test(test_bad_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
