/* The broadcast planner (node/kernels/broadcast.h): collapsing of common
 * patterns, and every offset of many plans against a naive index
 * computation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kelem_util.h"
#include "kernels/broadcast.h"

static evo_shape kb_shape(int32_t rank, const int32_t *dims)
{
    evo_shape s = {.rank = rank};
    for (int32_t i = 0; i < rank; i++)
        s.dims[i] = dims[i];
    return s;
}
#define KS(...)                                                                                    \
    kb_shape((int32_t)(sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t)),                        \
             (int32_t[]){__VA_ARGS__})

static void test_per_channel_collapses_to_long_runs(void **state)
{
    (void)state;
    evo_shape out = KS(1, 64, 56, 56), x = KS(1, 64, 56, 56), bias = KS(64, 1, 1);
    const evo_shape *in[2] = {&x, &bias};
    evo_bcast b;
    assert_int_equal(evo_bcast_plan(&b, &out, in, 2), EVO_OK);
    assert_int_equal(b.inner, 56 * 56);
    assert_int_equal(b.inner_stride[0], 1);
    assert_int_equal(b.inner_stride[1], 0);
    assert_int_equal(b.outer_rank, 1);
    assert_int_equal(b.outer_dims[0], 64);
    assert_int_equal(b.outer_stride[0][0], 56 * 56);
    assert_int_equal(b.outer_stride[1][0], 1);
}

static void test_same_shape_and_scalar_are_one_run(void **state)
{
    (void)state;
    evo_shape out = KS(2, 3, 4), s = {0}, one = KS(1, 1, 1);
    const evo_shape *in[3] = {&out, &s, &one};
    evo_bcast b;
    assert_int_equal(evo_bcast_plan(&b, &out, in, 3), EVO_OK);
    assert_int_equal(b.inner, 24);
    assert_int_equal(b.outer_rank, 0);
    assert_int_equal(b.inner_stride[0], 1);
    assert_int_equal(b.inner_stride[1], 0);
    assert_int_equal(b.inner_stride[2], 0);
    evo_bcast_iter it;
    evo_bcast_begin(&b, &it);
    assert_true(evo_bcast_next(&b, &it));
    assert_false(evo_bcast_next(&b, &it));
}

static void test_trailing_vector_merges_outer_dims(void **state)
{
    (void)state;
    evo_shape out = KS(2, 3, 4), v = KS(4);
    const evo_shape *in[2] = {&out, &v};
    evo_bcast b;
    assert_int_equal(evo_bcast_plan(&b, &out, in, 2), EVO_OK);
    assert_int_equal(b.inner, 4);
    assert_int_equal(b.outer_rank, 1);
    assert_int_equal(b.outer_dims[0], 6);
    assert_int_equal(b.outer_stride[1][0], 0);
}

static void test_rank0_and_empty(void **state)
{
    (void)state;
    evo_shape s = {0};
    const evo_shape *in[2] = {&s, &s};
    evo_bcast b;
    assert_int_equal(evo_bcast_plan(&b, &s, in, 2), EVO_OK);
    assert_int_equal(b.numel, 1);
    assert_int_equal(b.inner, 1);
    evo_bcast_iter it;
    evo_bcast_begin(&b, &it);
    assert_true(evo_bcast_next(&b, &it));
    assert_int_equal(it.in_off[0], 0);
    assert_false(evo_bcast_next(&b, &it));

    evo_shape e = KS(3, 0, 2), r = KS(2);
    const evo_shape *in2[2] = {&e, &r};
    assert_int_equal(evo_bcast_plan(&b, &e, in2, 2), EVO_OK);
    assert_int_equal(b.numel, 0);
    evo_bcast_begin(&b, &it);
    assert_false(evo_bcast_next(&b, &it));
}

static void test_bad_plans(void **state)
{
    (void)state;
    evo_shape out = KS(2, 3), bad = KS(4), big = KS(1, 2, 3);
    const evo_shape *in[1] = {&bad};
    evo_bcast b;
    assert_int_equal(evo_bcast_plan(&b, &out, in, 1), EVO_ERR_SHAPE);
    in[0] = &big; /* higher rank than the output */
    assert_int_equal(evo_bcast_plan(&b, &out, in, 1), EVO_ERR_SHAPE);
    assert_int_equal(evo_bcast_plan(&b, &out, in, 0), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_bcast_plan(&b, &out, in, EVO_BCAST_MAX_IN + 1), EVO_ERR_INVALID_ARG);
}

/* Offset of output element `flat` in input s (aligned to out), naively. */
static int64_t kb_naive_offset(const evo_shape *out, const evo_shape *s, int64_t flat)
{
    int64_t idx[EVO_MAX_RANK];
    for (int32_t i = out->rank - 1; i >= 0; i--) {
        idx[i] = flat % out->dims[i];
        flat /= out->dims[i];
    }
    int64_t off = 0;
    int32_t lead = out->rank - s->rank;
    for (int32_t i = 0; i < s->rank; i++) {
        int64_t d = s->dims[i];
        off = off * d + (d == 1 ? 0 : idx[i + lead]);
    }
    return off;
}

/* Every output shape of rank <= 4 with dims in {1,2,3}, against three
 * derived inputs (dims knocked to 1 by bit patterns, leading dims dropped). */
static void test_offsets_match_naive_exhaustive(void **state)
{
    (void)state;
    long checked = 0;
    for (int32_t rank = 0; rank <= 4; rank++) {
        int32_t combos = 1;
        for (int32_t i = 0; i < rank; i++)
            combos *= 3;
        for (int32_t code = 0; code < combos; code++) {
            evo_shape out = {.rank = rank};
            for (int32_t i = 0, c = code; i < rank; i++, c /= 3)
                out.dims[i] = 1 + c % 3;
            for (int32_t mask = 0; mask < (1 << rank) * (1 << rank); mask++) {
                evo_shape s[3];
                int32_t m0 = mask & ((1 << rank) - 1), m1 = mask >> rank;
                s[0] = out;
                s[1] = out;
                for (int32_t i = 0; i < rank; i++) {
                    if (m0 & (1 << i))
                        s[0].dims[i] = 1;
                    if (m1 & (1 << i))
                        s[1].dims[i] = 1;
                }
                /* s[2]: s[1] without its first (mask-chosen) leading dims */
                int32_t drop = rank > 0 ? mask % (rank + 1) : 0;
                s[2].rank = rank - drop;
                for (int32_t i = 0; i < s[2].rank; i++)
                    s[2].dims[i] = s[1].dims[i + drop];
                const evo_shape *in[3] = {&s[0], &s[1], &s[2]};
                evo_bcast b;
                assert_int_equal(evo_bcast_plan(&b, &out, in, 3), EVO_OK);
                evo_bcast_iter it;
                evo_bcast_begin(&b, &it);
                int64_t expect_out = 0;
                while (evo_bcast_next(&b, &it)) {
                    assert_int_equal(it.out_off, expect_out);
                    for (int64_t i = 0; i < b.inner; i++, expect_out++)
                        for (int32_t k = 0; k < 3; k++) {
                            int64_t got = it.in_off[k] + i * b.inner_stride[k];
                            assert_int_equal(got, kb_naive_offset(&out, &s[k], expect_out));
                            checked++;
                        }
                }
                assert_int_equal(expect_out, evo_shape_numel(&out));
            }
        }
    }
    assert_true(checked > 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_channel_collapses_to_long_runs),
        cmocka_unit_test(test_same_shape_and_scalar_are_one_run),
        cmocka_unit_test(test_trailing_vector_merges_outer_dims),
        cmocka_unit_test(test_rank0_and_empty),
        cmocka_unit_test(test_bad_plans),
        cmocka_unit_test(test_offsets_match_naive_exhaustive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
