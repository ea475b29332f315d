/*
 * Memory planner tests: hand cases with known optimal sizes, bad arguments,
 * random lifetime sets checked for validity, and CNN-shaped lifetime sets
 * (ResNet-18 and MobileNetV2-like, with im2col scratch) that must come within
 * 10% of the lower bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "memplan.h"

#define A64(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

/* ---------------------------------------------------------------- checking */

static int32_t mp_root(int32_t *parent, int32_t i)
{
    while (parent[i] != i)
        i = parent[i];
    return i;
}

/* Checks everything a plan must satisfy and returns the independently
 * computed lower bound. */
static uint64_t mp_check(const evo_memplan_buf *b, int32_t n, int32_t steps,
                         const evo_memplan_alias *al, int32_t n_al, const uint64_t *off,
                         const evo_memplan_result *res)
{
    int32_t *parent = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    assert_non_null(parent);
    for (int32_t i = 0; i < n; i++)
        parent[i] = i;
    for (int32_t k = 0; k < n_al; k++) {
        int32_t ra = mp_root(parent, al[k].buf), ro = mp_root(parent, al[k].onto);
        if (ra != ro)
            parent[ra] = ro;
    }
    /* Group lifetimes and sizes, as the planner should see them. */
    int32_t *gf = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int32_t *gl = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    uint64_t *gs = calloc((size_t)(n ? n : 1), sizeof(uint64_t));
    assert_true(gf && gl && gs);
    for (int32_t i = 0; i < n; i++) {
        gf[i] = INT32_MAX;
        gl[i] = -1;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t r = mp_root(parent, i);
        if (b[i].first_step < gf[r])
            gf[r] = b[i].first_step;
        if (b[i].last_step > gl[r])
            gl[r] = b[i].last_step;
        if (A64(b[i].size) > gs[r])
            gs[r] = A64(b[i].size);
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t ri = mp_root(parent, i);
        assert_int_equal(off[i] % 64, 0);
        assert_int_equal(off[i], off[ri]); /* aliased buffers share storage */
        assert_true(b[i].size == 0 || off[i] + A64(b[i].size) <= res->total);
        for (int32_t j = i + 1; j < n; j++) {
            int32_t rj = mp_root(parent, j);
            if (ri == rj || b[i].size == 0 || b[j].size == 0)
                continue;
            bool time = !(gl[ri] < gf[rj] || gl[rj] < gf[ri]);
            bool space = !(off[i] + A64(b[i].size) <= off[j] || off[j] + A64(b[j].size) <= off[i]);
            if (time && space)
                fail_msg("buffers %d and %d overlap in time and memory", (int)i, (int)j);
        }
    }
    uint64_t lb = 0;
    for (int32_t s = 0; s < steps; s++) {
        uint64_t alive = 0;
        for (int32_t i = 0; i < n; i++)
            if (parent[i] == i && gf[i] <= s && s <= gl[i])
                alive += gs[i];
        if (alive > lb)
            lb = alive;
    }
    assert_int_equal(res->lower_bound, lb);
    assert_true(res->total >= lb);
    free(parent);
    free(gf);
    free(gl);
    free(gs);
    return lb;
}

/* Plan with a given strategy and check it; returns the total. */
static uint64_t mp_plan_checked(const evo_memplan_buf *b, int32_t n, int32_t steps,
                                const evo_memplan_alias *al, int32_t n_al,
                                evo_memplan_strategy strategy, uint64_t *off_out,
                                evo_memplan_result *res_out)
{
    size_t wb = evo_memplan_work_bytes(n, steps);
    void *work = malloc(wb);
    uint64_t *off = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    assert_true(work && off);
    evo_memplan_result res;
    evo_error err = {0};
    evo_status st =
        evo_memplan_plan(b, n, steps, al, n_al, 64, strategy, off, &res, work, wb, &err);
    if (st != EVO_OK)
        fail_msg("plan failed: %s", err.msg);
    mp_check(b, n, steps, al, n_al, off, &res);
    if (strategy != EVO_MEMPLAN_AUTO)
        assert_int_equal(res.strategy, strategy);
    if (off_out)
        memcpy(off_out, off, sizeof(uint64_t) * (size_t)n);
    if (res_out)
        *res_out = res;
    free(work);
    free(off);
    return res.total;
}

/* ---------------------------------------------------------------- hand cases */

static void test_chain(void **state)
{
    (void)state;
    /* a -> b -> c -> d, each read by the next step only: two buffers suffice. */
    evo_memplan_buf b[] = {{100, 0, 1}, {100, 1, 2}, {100, 2, 3}, {100, 3, 3}};
    uint64_t off[4];
    evo_memplan_result res;
    for (int s = EVO_MEMPLAN_AUTO; s < EVO_MEMPLAN_STRATEGY_COUNT_; s++)
        assert_int_equal(mp_plan_checked(b, 4, 4, NULL, 0, s, off, &res), 256);
    assert_int_equal(res.lower_bound, 256);
    assert_int_equal(off[0], off[2]);
    assert_int_equal(off[1], off[3]);
}

static void test_diamond(void **state)
{
    (void)state;
    /* x -> a; a -> b (step 1), a -> c (step 2); d = f(b, c) at step 3. */
    evo_memplan_buf b[] = {{64, 0, 0}, {128, 0, 2}, {64, 1, 3}, {64, 2, 3}, {64, 3, 3}};
    evo_memplan_result res;
    uint64_t total = mp_plan_checked(b, 5, 4, NULL, 0, EVO_MEMPLAN_AUTO, NULL, &res);
    assert_int_equal(res.lower_bound, 256); /* step 2: a + b + c */
    assert_int_equal(total, 256);
}

static void test_alias(void **state)
{
    (void)state;
    /* b is written over a (in place), c over b: one buffer for the chain,
     * plus d which is alive with it. */
    evo_memplan_buf b[] = {{128, 0, 1}, {128, 1, 2}, {100, 2, 3}, {64, 0, 3}};
    evo_memplan_alias al[] = {{1, 0}, {2, 1}};
    uint64_t off[4];
    evo_memplan_result res;
    uint64_t total = mp_plan_checked(b, 4, 4, al, 2, EVO_MEMPLAN_AUTO, off, &res);
    assert_int_equal(off[0], off[1]);
    assert_int_equal(off[1], off[2]);
    assert_int_equal(res.lower_bound, 192);
    assert_int_equal(total, 192);
}

static void test_empty_and_zero_size(void **state)
{
    (void)state;
    evo_memplan_result res;
    assert_int_equal(mp_plan_checked(NULL, 0, 0, NULL, 0, EVO_MEMPLAN_AUTO, NULL, &res), 0);
    assert_int_equal(res.lower_bound, 0);
    evo_memplan_buf b[] = {{0, 0, 2}, {1, 0, 2}, {0, 1, 1}};
    uint64_t off[3];
    assert_int_equal(mp_plan_checked(b, 3, 3, NULL, 0, EVO_MEMPLAN_AUTO, off, &res), 64);
    assert_int_equal(off[0], 0);
    assert_int_equal(off[2], 0);
}

static void test_bad_args(void **state)
{
    (void)state;
    evo_memplan_buf b[] = {{64, 0, 1}, {64, 1, 2}};
    uint64_t off[2];
    evo_memplan_result res;
    unsigned char work[4096];
    evo_error err = {0};
    size_t wb = evo_memplan_work_bytes(2, 3);
    assert_true(wb <= sizeof work);

    assert_int_equal(evo_memplan_plan(b, 2, 2, NULL, 0, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_INVALID_ARG); /* last step 2 >= 2 steps */
    assert_non_null(strstr(err.msg, "buffer 1"));
    evo_memplan_buf rev[] = {{64, 2, 1}};
    assert_int_equal(evo_memplan_plan(rev, 1, 3, NULL, 0, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    evo_memplan_buf neg[] = {{64, -1, 1}};
    assert_int_equal(evo_memplan_plan(neg, 1, 3, NULL, 0, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    evo_memplan_alias self[] = {{1, 1}};
    assert_int_equal(evo_memplan_plan(b, 2, 3, self, 1, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    evo_memplan_alias range[] = {{0, 2}};
    assert_int_equal(evo_memplan_plan(b, 2, 3, range, 1, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_memplan_plan(b, 2, 3, NULL, 0, 48, 0, off, &res, work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_memplan_plan(b, 2, 3, NULL, 0, 64, EVO_MEMPLAN_STRATEGY_COUNT_, off, &res,
                                      work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_memplan_plan(b, 2, 3, NULL, 0, 64, 0, off, &res, work, wb - 1, &err),
                     EVO_ERR_NOMEM);
    assert_int_equal(evo_memplan_plan(b, 2, 3, NULL, 0, 64, 0, off, NULL, work, wb, &err),
                     EVO_ERR_INVALID_ARG);
    evo_memplan_buf huge[] = {{UINT64_MAX - 10, 0, 0}};
    assert_int_equal(evo_memplan_plan(huge, 1, 3, NULL, 0, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_LIMIT);
    evo_memplan_buf two[] = {{UINT64_MAX / 2 + 1, 0, 0}, {UINT64_MAX / 2 + 1, 2, 2}};
    assert_int_equal(evo_memplan_plan(two, 2, 3, NULL, 0, 64, 0, off, &res, work, wb, &err),
                     EVO_ERR_LIMIT);
    assert_int_equal(evo_memplan_work_bytes(-1, 3), SIZE_MAX);
    assert_string_equal(evo_memplan_strategy_name(EVO_MEMPLAN_SIZE_BEST_FIT), "size-best-fit");
}

/* ---------------------------------------------------------------- random sets */

static uint64_t mp_rng = 0x9E3779B97F4A7C15u;
static uint32_t mp_rand(void)
{
    mp_rng = mp_rng * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(mp_rng >> 33);
}

static void test_random(void **state)
{
    (void)state;
    double sum_ratio = 0, max_ratio = 0;
    int trials = 300;
    for (int t = 0; t < trials; t++) {
        int32_t n = 1 + (int32_t)(mp_rand() % 120);
        int32_t steps = 1 + (int32_t)(mp_rand() % 50);
        evo_memplan_buf *b = malloc(sizeof *b * (size_t)n);
        evo_memplan_alias *al = malloc(sizeof *al * (size_t)n);
        assert_true(b && al);
        int32_t n_al = 0;
        for (int32_t i = 0; i < n; i++) {
            int32_t f = (int32_t)(mp_rand() % (uint32_t)steps);
            int32_t len = (int32_t)(mp_rand() % 8);
            int32_t l = f + len < steps ? f + len : steps - 1;
            uint32_t kind = mp_rand() % 4;
            uint64_t size = kind == 0   ? mp_rand() % 64
                            : kind == 1 ? mp_rand() % 4096
                                        : mp_rand() % 1000000;
            b[i] = (evo_memplan_buf){size, f, l};
            /* Some in-place pairs: a buffer starting where an earlier one ends. */
            if (t % 3 == 0 && i > 0 && (mp_rand() % 4) == 0) {
                int32_t j = (int32_t)(mp_rand() % (uint32_t)i);
                if (b[j].last_step == f)
                    al[n_al++] = (evo_memplan_alias){i, j};
            }
        }
        uint64_t best = UINT64_MAX;
        for (int s = EVO_MEMPLAN_AUTO + 1; s < EVO_MEMPLAN_STRATEGY_COUNT_; s++) {
            uint64_t tot = mp_plan_checked(b, n, steps, al, n_al, s, NULL, NULL);
            if (tot < best)
                best = tot;
        }
        evo_memplan_result res;
        uint64_t total = mp_plan_checked(b, n, steps, al, n_al, EVO_MEMPLAN_AUTO, NULL, &res);
        assert_int_equal(total, best); /* auto keeps the smallest */
        if (res.lower_bound > 0) {
            double r = (double)total / (double)res.lower_bound;
            sum_ratio += r;
            if (r > max_ratio)
                max_ratio = r;
        }
        free(b);
        free(al);
    }
    print_message("random: %d sets, plan/lower bound mean %.3f, max %.3f\n", trials,
                  sum_ratio / trials, max_ratio);
}

/* A large set stays valid and quick (each strategy is O(n^2)). */
static void test_large(void **state)
{
    (void)state;
    int32_t n = 3000, steps = 2000;
    evo_memplan_buf *b = malloc(sizeof *b * (size_t)n);
    assert_non_null(b);
    for (int32_t i = 0; i < n; i++) {
        int32_t f = (int32_t)(mp_rand() % (uint32_t)steps);
        int32_t l = f + (int32_t)(mp_rand() % 4);
        b[i] = (evo_memplan_buf){1 + mp_rand() % 500000, f, l < steps ? l : steps - 1};
    }
    b[0] = (evo_memplan_buf){150528, 0, steps - 1}; /* a long-lived input */
    clock_t t0 = clock();
    evo_memplan_result res;
    mp_plan_checked(b, n, steps, NULL, 0, EVO_MEMPLAN_AUTO, NULL, &res);
    print_message("large: %d buffers, ratio %.3f, plan+check %.2f s\n", (int)n,
                  (double)res.total / (double)res.lower_bound,
                  (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(b);
}

/* ---------------------------------------------------------------- CNN-shaped sets */

/* A tiny graph description: node k writes one tensor of out_bytes and reads
 * up to two earlier nodes' outputs (-1 = the graph input, -2 = none). */
typedef struct mp_layer {
    int32_t in0, in1;
    uint64_t out_bytes;
    uint64_t scratch;
} mp_layer;

typedef struct mp_net {
    mp_layer l[256];
    int32_t n;
    uint64_t input_bytes;
} mp_net;

static int32_t mp_add(mp_net *net, int32_t in0, int32_t in1, uint64_t out, uint64_t scratch)
{
    assert_true(net->n < 256);
    net->l[net->n] = (mp_layer){in0, in1, out, scratch};
    return net->n++;
}

/* Conv of cin->cout channels, k x k, stride s on an h x h float input. */
static int32_t mp_conv(mp_net *net, int32_t in, int32_t *h, int32_t cin, int32_t cout, int32_t k,
                       int32_t s, bool depthwise)
{
    *h = (*h + s - 1) / s;
    uint64_t out = (uint64_t)cout * (uint64_t)*h * (uint64_t)*h * 4u;
    uint64_t im2col =
        (k > 1 && !depthwise) ? (uint64_t)cin * k * k * (uint64_t)*h * (uint64_t)*h * 4u : 0;
    return mp_add(net, in, -2, out, im2col);
}

/* Turn the description into buffers: outputs live from their producer to
 * their last reader (the final output to the end), the input from step 0;
 * scratch lives at its step only. */
static int32_t mp_lifetimes(const mp_net *net, evo_memplan_buf *b)
{
    int32_t n = 0;
    b[n++] = (evo_memplan_buf){net->input_bytes, 0, 0};
    for (int32_t k = 0; k < net->n; k++)
        b[n++] = (evo_memplan_buf){net->l[k].out_bytes, k, k};
    for (int32_t k = 0; k < net->n; k++) {
        int32_t ins[2] = {net->l[k].in0, net->l[k].in1};
        for (int i = 0; i < 2; i++)
            if (ins[i] >= -1 && b[ins[i] + 1].last_step < k)
                b[ins[i] + 1].last_step = k;
    }
    b[net->n].last_step = net->n - 1;
    for (int32_t k = 0; k < net->n; k++)
        if (net->l[k].scratch > 0)
            b[n++] = (evo_memplan_buf){net->l[k].scratch, k, k};
    return n;
}

static void mp_resnet18(mp_net *net)
{
    memset(net, 0, sizeof *net);
    int32_t h = 224;
    net->input_bytes = 3u * 224 * 224 * 4;
    int32_t x = mp_conv(net, -1, &h, 3, 64, 7, 2, false);
    x = mp_conv(net, x, &h, 64, 64, 3, 2, true); /* max pool: no scratch */
    int32_t c = 64;
    for (int stage = 0; stage < 4; stage++) {
        int32_t cout = 64 << stage;
        for (int blk = 0; blk < 2; blk++) {
            int32_t s = (stage > 0 && blk == 0) ? 2 : 1;
            int32_t h1 = h, h2 = h;
            int32_t a = mp_conv(net, x, &h1, c, cout, 3, s, false);
            a = mp_add(net, a, -2, net->l[a].out_bytes, 0); /* relu */
            int32_t bb = mp_conv(net, a, &h1, cout, cout, 3, 1, false);
            int32_t skip = x;
            if (s != 1 || c != cout)
                skip = mp_conv(net, x, &h2, c, cout, 1, s, false);
            x = mp_add(net, bb, skip, net->l[bb].out_bytes, 0);
            x = mp_add(net, x, -2, net->l[x].out_bytes, 0);
            h = h1;
            c = cout;
        }
    }
    x = mp_add(net, x, -2, (uint64_t)c * 4u, 0);
    mp_add(net, x, -2, 1000u * 4u, 0);
}

static void mp_mobilenetv2(mp_net *net)
{
    memset(net, 0, sizeof *net);
    int32_t h = 224;
    net->input_bytes = 3u * 224 * 224 * 4;
    int32_t x = mp_conv(net, -1, &h, 3, 32, 3, 2, false);
    int32_t c = 32;
    static const int cfg[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                 {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        for (int r = 0; r < cfg[i][2]; r++) {
            int32_t s = r == 0 ? cfg[i][3] : 1;
            int32_t hh = h, e = c * cfg[i][0];
            int32_t y = x;
            if (cfg[i][0] != 1)
                y = mp_conv(net, y, &hh, c, e, 1, 1, false);
            y = mp_conv(net, y, &hh, e, e, 3, s, true);
            y = mp_conv(net, y, &hh, e, cfg[i][1], 1, 1, false);
            if (s == 1 && c == cfg[i][1])
                y = mp_add(net, y, x, net->l[y].out_bytes, 0);
            x = y;
            h = hh;
            c = cfg[i][1];
        }
    }
    x = mp_conv(net, x, &h, c, 1280, 1, 1, false);
    x = mp_add(net, x, -2, 1280u * 4u, 0);
    mp_add(net, x, -2, 1000u * 4u, 0);
}

static void mp_cnn_case(const char *name, void (*make)(mp_net *))
{
    mp_net *net = malloc(sizeof *net);
    evo_memplan_buf *b = malloc(sizeof *b * 600);
    assert_true(net && b);
    make(net);
    int32_t n = mp_lifetimes(net, b);
    evo_memplan_result res;
    uint64_t total = mp_plan_checked(b, n, net->n, NULL, 0, EVO_MEMPLAN_AUTO, NULL, &res);
    double ratio = (double)total / (double)res.lower_bound;
    print_message("%s: %d buffers, plan %llu bytes, lower bound %llu, ratio %.3f (%s)\n", name,
                  (int)n, (unsigned long long)total, (unsigned long long)res.lower_bound, ratio,
                  evo_memplan_strategy_name(res.strategy));
    for (int s = EVO_MEMPLAN_AUTO + 1; s < EVO_MEMPLAN_STRATEGY_COUNT_; s++) {
        uint64_t t = mp_plan_checked(b, n, net->n, NULL, 0, s, NULL, NULL);
        print_message("  %-20s ratio %.3f\n", evo_memplan_strategy_name(s),
                      (double)t / (double)res.lower_bound);
    }
    assert_true(ratio <= 1.10);
    free(net);
    free(b);
}

static void test_resnet18_shape(void **state)
{
    (void)state;
    mp_cnn_case("resnet18-like", mp_resnet18);
}

static void test_mobilenetv2_shape(void **state)
{
    (void)state;
    mp_cnn_case("mobilenetv2-like", mp_mobilenetv2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_diamond),
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_empty_and_zero_size),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_resnet18_shape),
        cmocka_unit_test(test_mobilenetv2_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
