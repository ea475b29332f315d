/*
 * The partitioner's exact algorithms against brute force on random problems:
 * DAGs and chains of up to 14 ops, 2-4 devices, random links (some pairs
 * unconnected), memory that sometimes binds. Also: plans never exceed a
 * device's memory, messages only use listed links, and an infeasible input
 * says which device lacks how much.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evo/partition.h"

/* xorshift, so the instances are the same on every machine */
static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static int32_t rnd_in(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

typedef struct inst {
    evo_pt_topology topo;
    evo_pt_device dev[4];
    evo_pt_link link[6];
    evo_pt_problem p;
} inst;

/* A random topology of k devices: device k-1 is the cloud. Links: a random
 * subset that keeps the graph connected with probability ~ 3/4. */
static void make_topo(inst *in, int32_t k, bool tight)
{
    memset(in->dev, 0, sizeof in->dev);
    for (int32_t d = 0; d < k; d++) {
        evo_pt_device *v = &in->dev[d];
        snprintf(v->name, sizeof v->name, "dev%d", (int)d);
        v->gflops = 1;
        v->memory_bytes = tight ? (uint64_t)rnd_in(3000, 12000) : (1ull << 30);
        v->overhead_bytes = (uint64_t)rnd_in(0, 500);
        v->flash_bytes = (tight && rnd() % 3 == 0) ? (uint64_t)rnd_in(2000, 9000) : 0;
        v->role = d == k - 1 ? EVO_PT_ROLE_CLOUD : EVO_PT_ROLE_EDGE;
    }
    if (!tight)
        in->dev[k - 1].memory_bytes = 1ull << 40;
    int32_t nl = 0;
    for (int32_t a = 0; a < k; a++)
        for (int32_t b = a + 1; b < k; b++)
            if (b == a + 1 || rnd() % 2 == 0) {
                if (b == a + 1 && k > 2 && rnd() % 5 == 0)
                    continue; /* sometimes a missing hop */
                evo_pt_link *l = &in->link[nl++];
                l->a = a;
                l->b = b;
                l->mbps = (double)rnd_in(1, 100);
                l->rtt_ms = (double)rnd_in(0, 20) / 4;
                l->encoding = (evo_pt_encoding)(rnd() % 3);
            }
    in->topo = (evo_pt_topology){.devices = in->dev,
                                 .n_devices = k,
                                 .links = in->link,
                                 .n_links = nl,
                                 .source = rnd_in(0, k - 1),
                                 .sink = rnd_in(0, k - 1)};
}

/* A random DAG (or chain) of n nodes; each node makes one tensor. */
static void make_problem(inst *in, int32_t n, bool chain)
{
    evo_pt_problem *p = &in->p;
    int32_t nt = n + 1; /* tensor 0 is the graph input, tensor i+1 node i's output */
    assert_int_equal(evo_pt_problem_init(p, &in->topo, n, nt, NULL), EVO_OK);
    for (int32_t t = 0; t < nt; t++) {
        p->tensors[t].bytes = (uint64_t)rnd_in(1, 64) * 256;
        p->tensors[t].f32_numel = rnd() % 2 ? p->tensors[t].bytes / 4 : 0;
    }
    bool *used = calloc((size_t)nt, sizeof *used);
    for (int32_t k = 0; k < n; k++) {
        int32_t ins[3], ni = 0;
        if (chain || k == 0) {
            ins[ni++] = k; /* previous node's output (or the input) */
        } else {
            ins[ni++] = rnd_in(0, k);
            if (rnd() % 2) {
                int32_t x = rnd_in(0, k);
                if (x != ins[0])
                    ins[ni++] = x;
            }
            if (!used[k] && rnd() % 2 && ins[0] != k && (ni < 2 || ins[1] != k))
                ins[ni++] = k;
        }
        for (int32_t i = 0; i < ni; i++)
            used[ins[i]] = true;
        int32_t out = k + 1;
        assert_int_equal(evo_pt_node_set(p, k, NULL, "Op", ins, ni, &out, 1, NULL), EVO_OK);
        p->nodes[k].weight_bytes = (uint64_t)rnd_in(0, 40) * 64;
        p->nodes[k].scratch_bytes = rnd() % 4 == 0 ? (uint64_t)rnd_in(1, 20) * 64 : 0;
        p->nodes[k].inplace_in = rnd() % 3 == 0 ? ins[0] : -1;
        if (p->nodes[k].inplace_in >= 0)
            p->tensors[out].bytes = p->tensors[ins[0]].bytes,
            p->tensors[out].f32_numel = p->tensors[ins[0]].f32_numel;
        for (int32_t d = 0; d < in->topo.n_devices; d++)
            p->cost_us[(size_t)k * (size_t)in->topo.n_devices + (size_t)d] =
                rnd() % 23 == 0 ? INFINITY : (double)rnd_in(1, 4000) / (d + 1);
    }
    /* unconsumed tensors and the last one are graph outputs */
    p->tensors[n].graph_output = true;
    for (int32_t t = 1; t < nt; t++)
        if (!used[t])
            p->tensors[t].graph_output = true;
    free(used);
    assert_int_equal(evo_pt_problem_finalize(p, NULL), EVO_OK);
}

/* ---------------------------------------------------------------- brute force */

typedef struct brute {
    double best_lat, best_per, best_lat_at_per;
    int64_t n_evaluated;
} brute;

static void brute_consider(brute *b, const evo_pt_plan *pl)
{
    b->n_evaluated++;
    if (!pl->feasible)
        return;
    if (pl->latency_ms < b->best_lat)
        b->best_lat = pl->latency_ms;
    double eps = 1e-9 * pl->period_ms;
    if (pl->period_ms < b->best_per - eps) {
        b->best_per = pl->period_ms;
        b->best_lat_at_per = pl->latency_ms;
    } else if (pl->period_ms <= b->best_per + eps && pl->latency_ms < b->best_lat_at_per) {
        b->best_lat_at_per = pl->latency_ms;
    }
}

/* Every assignment of nodes to devices in which each device's nodes form
 * one contiguous run of the execution order (the cluster plans), built node
 * by node: node i goes to the previous node's device or to an unused one. */
static void brute_cluster_rec(const evo_pt_problem *p, int32_t i, int32_t *assign, uint32_t used,
                              brute *b)
{
    int32_t n = p->n_nodes, k = p->n_devices;
    if (i == n) {
        int32_t dev[4], len[4], m = 0;
        for (int32_t x = 0; x < n; x++) {
            if (x == 0 || assign[x] != assign[x - 1]) {
                dev[m] = assign[x];
                len[m++] = 0;
            }
            len[m - 1]++;
        }
        evo_pt_plan pl;
        assert_int_equal(evo_pt_evaluate(p, m, dev, len, NULL, EVO_PT_CLUSTER, &pl, NULL), EVO_OK);
        brute_consider(b, &pl);
        evo_pt_plan_free(&pl);
        return;
    }
    for (int32_t d = 0; d < k; d++) {
        bool cont = i > 0 && assign[i - 1] == d;
        if (!cont && (used & (1u << d)))
            continue;
        assign[i] = d;
        brute_cluster_rec(p, i + 1, assign, used | (1u << d), b);
    }
}

/* Every edge set S closed under predecessors, S on e and the rest on c. */
static void brute_cloud(const evo_pt_problem *p, int32_t e, int32_t c, brute *b)
{
    int32_t n = p->n_nodes;
    int32_t order[16];
    for (uint32_t S = 0; S < (1u << n); S++) {
        bool closed = true;
        for (int32_t v = 0; v < n && closed; v++) {
            if (!(S & (1u << v)))
                continue;
            for (int32_t i = 0; i < p->nodes[v].n_in; i++) {
                int32_t pr = p->tensors[p->nodes[v].in[i]].producer;
                if (pr >= 0 && !(S & (1u << pr)))
                    closed = false;
            }
        }
        if (!closed)
            continue;
        int32_t ns = 0, w;
        for (int32_t v = 0; v < n; v++)
            if (S & (1u << v))
                order[ns++] = v;
        w = ns;
        for (int32_t v = 0; v < n; v++)
            if (!(S & (1u << v)))
                order[w++] = v;
        int32_t dev[2], len[2], m = 0;
        if (ns > 0)
            dev[m] = e, len[m++] = ns;
        if (n > ns)
            dev[m] = c, len[m++] = n - ns;
        evo_pt_plan pl;
        assert_int_equal(evo_pt_evaluate(p, m, dev, len, order, EVO_PT_CLOUD, &pl, NULL), EVO_OK);
        brute_consider(b, &pl);
        evo_pt_plan_free(&pl);
    }
}

static void brute_init(brute *b)
{
    b->best_lat = b->best_per = b->best_lat_at_per = INFINITY;
    b->n_evaluated = 0;
}

static void assert_close(double a, double b)
{
    if (a == INFINITY || b == INFINITY) {
        assert_true(a == b);
        return;
    }
    double tol = 1e-9 * (fabs(a) > fabs(b) ? fabs(a) : fabs(b)) + 1e-12;
    if (fabs(a - b) > tol)
        fail_msg("%.12g != %.12g", a, b);
}

/* Independent checks of a feasible plan: memory and links. */
static void check_plan(const evo_pt_problem *p, const evo_pt_plan *pl)
{
    if (!pl->feasible)
        return;
    uint64_t ram[4] = {0}, flash[4] = {0};
    for (int32_t s = 0; s < pl->n_stages; s++) {
        const evo_pt_stage *st = &pl->stages[s];
        int32_t d = st->device;
        uint64_t w = 0;
        for (int32_t i = 0; i < st->n_nodes; i++)
            w += p->nodes[st->nodes[i]].weight_bytes;
        assert_int_equal(w, st->weights_bytes);
        ram[d] += st->arena_bytes;
        if (p->topo->devices[d].flash_bytes)
            flash[d] += w;
        else
            ram[d] += w;
    }
    for (int32_t d = 0; d < p->n_devices; d++) {
        if (!pl->use[d].used)
            continue;
        const evo_pt_device *dev = &p->topo->devices[d];
        assert_true(ram[d] + dev->overhead_bytes <= dev->memory_bytes);
        assert_true(flash[d] <= dev->flash_bytes || dev->flash_bytes == 0);
    }
    for (int32_t x = 0; x < pl->n_transfers; x++) {
        const evo_pt_transfer *t = &pl->transfers[x];
        assert_true(t->n_hops >= 1);
        assert_int_equal(t->hops[0].from, t->from);
        assert_int_equal(t->hops[t->n_hops - 1].to, t->to);
        for (int32_t h = 0; h < t->n_hops; h++) {
            bool listed = false;
            for (int32_t l = 0; l < p->topo->n_links; l++) {
                const evo_pt_link *lk = &p->topo->links[l];
                listed |= (lk->a == t->hops[h].from && lk->b == t->hops[h].to) ||
                          (lk->b == t->hops[h].from && lk->a == t->hops[h].to);
            }
            assert_true(listed);
        }
    }
}

static int n_feasible, n_infeasible, n_multi_stage;

static void run_cluster_case(int32_t n, int32_t k, bool chain, bool tight)
{
    inst in;
    make_topo(&in, k, tight);
    make_problem(&in, n, chain);
    int32_t assign[16];
    brute b;
    brute_init(&b);
    brute_cluster_rec(&in.p, 0, assign, 0, &b);
    for (int obj = 0; obj < 2; obj++) {
        evo_pt_options o = {.objective = (evo_pt_objective)obj};
        evo_pt_plan pl;
        assert_int_equal(evo_pt_plan_cluster(&in.p, &o, &pl, NULL), EVO_OK);
        assert_true(pl.exact);
        assert_string_equal(pl.method, "dp");
        if (obj == 0) {
            n_feasible += pl.feasible;
            n_infeasible += !pl.feasible;
            n_multi_stage += pl.feasible && pl.n_stages > 1;
            assert_close(evo_pt_plan_value(&pl, EVO_PT_LATENCY), b.best_lat);
        } else {
            assert_close(evo_pt_plan_value(&pl, EVO_PT_THROUGHPUT), b.best_per);
            if (pl.feasible)
                assert_close(pl.latency_ms, b.best_lat_at_per);
        }
        check_plan(&in.p, &pl);
        if (!pl.feasible)
            assert_true(strlen(pl.reason) > 0);
        /* the beam never beats the optimum, and is feasible only if one exists */
        evo_pt_plan bm;
        o.force_beam = true;
        o.beam_width = 4;
        assert_int_equal(evo_pt_plan_cluster(&in.p, &o, &bm, NULL), EVO_OK);
        assert_false(bm.exact);
        if (bm.feasible)
            assert_true(evo_pt_plan_value(&bm, o.objective) >=
                        evo_pt_plan_value(&pl, o.objective) * (1 - 1e-9));
        check_plan(&in.p, &bm);
        evo_pt_plan_free(&bm);
        evo_pt_plan_free(&pl);
    }
    evo_pt_problem_free(&in.p);
}

static void test_cluster_chains(void **state)
{
    (void)state;
    for (int it = 0; it < 60; it++) {
        int32_t k = rnd_in(2, 4);
        int32_t n = k == 4 ? rnd_in(1, 12) : rnd_in(1, 14);
        run_cluster_case(n, k, true, it % 2 == 1);
    }
}

static void test_cluster_dags(void **state)
{
    (void)state;
    for (int it = 0; it < 60; it++) {
        int32_t k = rnd_in(2, 4);
        int32_t n = k == 4 ? rnd_in(1, 12) : rnd_in(1, 14);
        run_cluster_case(n, k, false, it % 2 == 1);
    }
    /* the instances exercise every outcome */
    printf("cluster cases: %d feasible (%d multi-stage), %d infeasible\n", n_feasible,
           n_multi_stage, n_infeasible);
    assert_true(n_feasible >= 40 && n_multi_stage >= 15 && n_infeasible >= 5);
}

static void test_cloud_dags(void **state)
{
    (void)state;
    int exact_cases = 0;
    for (int it = 0; it < 80; it++) {
        int32_t k = rnd_in(2, 4);
        inst in;
        bool tight = it % 3 == 2;
        make_topo(&in, k, tight);
        make_problem(&in, rnd_in(1, 13), it % 4 == 0);
        int32_t e = rnd_in(0, k - 2), c = k - 1;
        brute b;
        brute_init(&b);
        brute_cloud(&in.p, e, c, &b);
        evo_pt_options o = {.objective = EVO_PT_LATENCY};
        evo_pt_plan pl;
        assert_int_equal(evo_pt_plan_cloud_pair(&in.p, &o, e, c, false, &pl, NULL), EVO_OK);
        check_plan(&in.p, &pl);
        if (pl.exact) {
            exact_cases++;
            assert_close(evo_pt_plan_value(&pl, EVO_PT_LATENCY), b.best_lat);
        } else {
            /* the memory penalty is a heuristic: never better than the
             * optimum, feasible whenever brute force finds something */
            assert_true(evo_pt_plan_value(&pl, EVO_PT_LATENCY) >= b.best_lat * (1 - 1e-9));
            if (b.best_lat < INFINITY)
                assert_true(pl.feasible);
        }
        evo_pt_plan_free(&pl);
        evo_pt_problem_free(&in.p);
    }
    assert_true(exact_cases >= 40);
}

/* A skip connection the min cut must cut on two edges at once: a branch
 * whose cheap side is not a prefix of the execution order. */
static void test_cloud_branchy_beats_single_split(void **state)
{
    (void)state;
    evo_pt_device dev[2] = {
        {.name = "edge", .memory_bytes = 1u << 30, .gflops = 1},
        {.name = "cloud", .memory_bytes = 1u << 30, .gflops = 1, .role = EVO_PT_ROLE_CLOUD}};
    evo_pt_link link = {.a = 0, .b = 1, .mbps = 8, .rtt_ms = 0}; /* 1 byte per us */
    evo_pt_topology topo = {
        .devices = dev, .n_devices = 2, .links = &link, .n_links = 1, .source = 0, .sink = 0};
    /* t0 (input, 100000 B) -> A -> t1 (100 B) -> B -> t2 (100000 B);
     * t0 -> C -> t3 (100 B); t2, t3 -> D -> t4 (10 B, the result).
     * Execution order A, B, C, D. A and C are cheap on the edge, B and D
     * only on the cloud: the best cut keeps {A, C} on the edge, which is no
     * prefix of the order. */
    evo_pt_problem p;
    assert_int_equal(evo_pt_problem_init(&p, &topo, 4, 5, NULL), EVO_OK);
    uint64_t bytes[5] = {100000, 100, 100000, 100, 10};
    for (int t = 0; t < 5; t++)
        p.tensors[t].bytes = bytes[t];
    p.tensors[4].graph_output = true;
    int32_t a_in[] = {0}, a_out[] = {1}, b_in[] = {1}, b_out[] = {2}, c_in[] = {0}, c_out[] = {3},
            d_in[] = {2, 3}, d_out[] = {4};
    assert_int_equal(evo_pt_node_set(&p, 0, "A", "Op", a_in, 1, a_out, 1, NULL), EVO_OK);
    assert_int_equal(evo_pt_node_set(&p, 1, "B", "Op", b_in, 1, b_out, 1, NULL), EVO_OK);
    assert_int_equal(evo_pt_node_set(&p, 2, "C", "Op", c_in, 1, c_out, 1, NULL), EVO_OK);
    assert_int_equal(evo_pt_node_set(&p, 3, "D", "Op", d_in, 2, d_out, 1, NULL), EVO_OK);
    double edge_us[4] = {10, 100000, 10, 100000}, cloud_us[4] = {1, 1, 1, 1};
    for (int v = 0; v < 4; v++) {
        p.cost_us[v * 2 + 0] = edge_us[v];
        p.cost_us[v * 2 + 1] = cloud_us[v];
    }
    assert_int_equal(evo_pt_problem_finalize(&p, NULL), EVO_OK);
    evo_pt_options o = {0};
    evo_pt_plan cut, single;
    assert_int_equal(evo_pt_plan_cloud_pair(&p, &o, 0, 1, false, &cut, NULL), EVO_OK);
    assert_int_equal(evo_pt_plan_cloud_pair(&p, &o, 0, 1, true, &single, NULL), EVO_OK);
    /* by hand (1 byte per us): edge A + C 20 us, send t1 + t3 200 us, cloud
     * B + D 2 us, result 10 us back = 232 us */
    assert_true(cut.feasible);
    assert_true(cut.exact);
    assert_close(cut.latency_ms, 0.232);
    assert_int_equal(cut.n_stages, 2);
    assert_int_equal(cut.stages[0].n_nodes, 2);
    assert_int_equal(cut.stages[0].nodes[0], 0);
    assert_int_equal(cut.stages[0].nodes[1], 2);
    /* the best single split is all on the cloud: the input (100000 us),
     * 4 us compute, 10 us back ({A} alone would also send t0 for C) */
    assert_close(single.latency_ms, (100000 + 4 + 10) / 1000.0);
    evo_pt_plan_free(&cut);
    evo_pt_plan_free(&single);
    evo_pt_problem_free(&p);
}

static void test_infeasible_says_who_lacks(void **state)
{
    (void)state;
    evo_pt_device dev[2] = {{.name = "mcu", .memory_bytes = 4096, .gflops = 1},
                            {.name = "board", .memory_bytes = 8192, .gflops = 1}};
    evo_pt_link link = {.a = 0, .b = 1, .mbps = 1};
    evo_pt_topology topo = {.devices = dev, .n_devices = 2, .links = &link, .n_links = 1};
    evo_pt_problem p;
    assert_int_equal(evo_pt_problem_init(&p, &topo, 1, 2, NULL), EVO_OK);
    int32_t in = 0, out = 1;
    assert_int_equal(evo_pt_node_set(&p, 0, "fc", "Gemm", &in, 1, &out, 1, NULL), EVO_OK);
    p.nodes[0].weight_bytes = 100000;
    p.tensors[0].bytes = p.tensors[1].bytes = 64;
    p.tensors[1].graph_output = true;
    assert_int_equal(evo_pt_problem_finalize(&p, NULL), EVO_OK);
    evo_pt_result r;
    evo_pt_options o = {0};
    assert_int_equal(evo_pt_plan_auto(&p, &o, &r, NULL), EVO_OK);
    assert_int_equal(r.best, -1);
    assert_non_null(strstr(r.plans[EVO_PT_STANDALONE].reason, "device 'mcu' lacks"));
    assert_non_null(strstr(r.plans[EVO_PT_STANDALONE].reason, "device 'board' lacks"));
    assert_non_null(strstr(r.plans[EVO_PT_CLUSTER].reason, "'fc'"));
    assert_non_null(strstr(r.explanation, "No plan fits"));
    /* the board lacks 100000 + arena + 0 overhead - 8192: the arena is
     * 64 (tensor views) ... check the figure through the stage arena */
    uint64_t arena;
    assert_int_equal(evo_pt_stage_arena(&p, NULL, 0, 1, &arena, NULL, NULL), EVO_OK);
    char want[64];
    snprintf(want, sizeof want, "lacks %.1f KiB", (double)(100000 + arena - 8192) / 1024.0);
    assert_non_null(strstr(r.plans[EVO_PT_STANDALONE].reason, want));
    evo_pt_result_free(&r);
    evo_pt_problem_free(&p);
}

static void test_missing_links(void **state)
{
    (void)state;
    /* a - b - c in a line; a and c have no link: a message a -> c must go
     * over b; d is connected to nothing and can only hold whole plans that
     * neither take input from nor deliver to another device. */
    evo_pt_device dev[4] = {
        {.name = "a", .memory_bytes = 1u << 30, .gflops = 1},
        {.name = "b", .memory_bytes = 1u << 30, .gflops = 1},
        {.name = "c", .memory_bytes = 1u << 30, .gflops = 100, .role = EVO_PT_ROLE_CLOUD},
        {.name = "d", .memory_bytes = 1u << 30, .gflops = 1000}};
    evo_pt_link link[2] = {{.a = 0, .b = 1, .mbps = 100, .rtt_ms = 1},
                           {.a = 1, .b = 2, .mbps = 100, .rtt_ms = 1}};
    evo_pt_topology topo = {
        .devices = dev, .n_devices = 4, .links = link, .n_links = 2, .source = 0, .sink = 0};
    evo_pt_problem p;
    assert_int_equal(evo_pt_problem_init(&p, &topo, 1, 2, NULL), EVO_OK);
    int32_t in = 0, out = 1;
    assert_int_equal(evo_pt_node_set(&p, 0, "conv", "Conv", &in, 1, &out, 1, NULL), EVO_OK);
    p.tensors[0].bytes = 12500; /* 1 ms per hop at 100 Mbit/s */
    p.tensors[1].bytes = 12500;
    p.tensors[1].graph_output = true;
    /* d is by far the fastest, c next; a is slow */
    double us[4] = {100000, 100000, 1000, 1};
    for (int d = 0; d < 4; d++)
        p.cost_us[d] = us[d];
    assert_int_equal(evo_pt_problem_finalize(&p, NULL), EVO_OK);
    evo_pt_result r;
    evo_pt_options o = {0};
    assert_int_equal(evo_pt_plan_auto(&p, &o, &r, NULL), EVO_OK);
    assert_true(r.best >= 0);
    const evo_pt_plan *w = &r.plans[r.best];
    assert_int_equal(w->n_stages, 1);
    assert_int_equal(w->stages[0].device, 2); /* c, reached over b */
    assert_int_equal(w->n_transfers, 2);
    assert_int_equal(w->transfers[0].n_hops, 2);
    assert_int_equal(w->transfers[0].hops[0].to, 1);
    /* 2 hops of (0.5 ms + 1 ms) each way + 1 ms compute */
    assert_close(w->latency_ms, 2 * 3.0 + 1.0);
    check_plan(&p, w);
    /* and d alone cannot be reached */
    int32_t dd = 3, len = 1;
    evo_pt_plan pd;
    assert_int_equal(evo_pt_evaluate(&p, 1, &dd, &len, NULL, EVO_PT_STANDALONE, &pd, NULL), EVO_OK);
    assert_false(pd.feasible);
    assert_non_null(strstr(pd.reason, "no path"));
    evo_pt_plan_free(&pd);
    evo_pt_result_free(&r);
    evo_pt_problem_free(&p);
}

static void test_bad_input(void **state)
{
    (void)state;
    evo_pt_device dev = {.name = "a", .memory_bytes = 1024, .gflops = 1};
    evo_pt_topology topo = {.devices = &dev, .n_devices = 1};
    evo_pt_problem p;
    evo_error err;
    assert_int_equal(evo_pt_problem_init(&p, &topo, 2, 2, &err), EVO_OK);
    int32_t t0 = 0, t1 = 1;
    /* node 0 reads what node 1 writes: not in execution order */
    assert_int_equal(evo_pt_node_set(&p, 0, "x", "Op", &t1, 1, &t0, 1, &err), EVO_OK);
    assert_int_equal(evo_pt_node_set(&p, 1, "y", "Op", &t0, 1, &t1, 1, &err), EVO_OK);
    assert_int_equal(evo_pt_problem_finalize(&p, &err), EVO_ERR_GRAPH);
    assert_non_null(strstr(err.msg, "execution order"));
    int32_t bad = 7;
    assert_int_equal(evo_pt_node_set(&p, 0, "x", "Op", NULL, 0, &bad, 1, &err),
                     EVO_ERR_INVALID_ARG);
    evo_pt_problem_free(&p);
    /* evaluation with stages that do not cover the nodes */
    assert_int_equal(evo_pt_problem_init(&p, &topo, 2, 3, &err), EVO_OK);
    int32_t t2 = 2;
    assert_int_equal(evo_pt_node_set(&p, 0, "x", "Op", &t0, 1, &t1, 1, &err), EVO_OK);
    assert_int_equal(evo_pt_node_set(&p, 1, "y", "Op", &t1, 1, &t2, 1, &err), EVO_OK);
    p.cost_us[0] = -1;
    assert_int_equal(evo_pt_problem_finalize(&p, &err), EVO_ERR_INVALID_ARG);
    p.cost_us[0] = 1;
    assert_int_equal(evo_pt_problem_finalize(&p, &err), EVO_OK);
    int32_t d0 = 0, len1 = 1;
    evo_pt_plan pl;
    assert_int_equal(evo_pt_evaluate(&p, 1, &d0, &len1, NULL, EVO_PT_CLUSTER, &pl, &err),
                     EVO_ERR_INVALID_ARG);
    int32_t rev[2] = {1, 0}, len2 = 2;
    assert_int_equal(evo_pt_evaluate(&p, 1, &d0, &len2, rev, EVO_PT_CLUSTER, &pl, &err),
                     EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "topological"));
    evo_pt_problem_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_chains),
        cmocka_unit_test(test_cluster_dags),
        cmocka_unit_test(test_cloud_dags),
        cmocka_unit_test(test_cloud_branchy_beats_single_split),
        cmocka_unit_test(test_infeasible_says_who_lacks),
        cmocka_unit_test(test_missing_links),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
