/*
 * Placement benchmark (docs/benchmarks.md): for each model and three device
 * scenarios, the predicted latency of all-on-source, all-on-cloud, the best
 * single split (Neurosurgeon) and evo's choice (auto); planning time over 16
 * devices; and the beam search's gap to the exact DP.
 *
 * usage: evo_place_bench SHARED_MODELS_DIR EXAMPLES_DEVICES_DIR
 * Prints Markdown; exits 1 if evo's choice is ever worse than a baseline.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evo/modeldb.h"
#include "evo/node.h"
#include "evo/partition.h"

static double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct bench_model {
    char name[256];
    evo_graph *g;
    evo_program *prog;
} bench_model;

static int bench_cmp(const void *a, const void *b)
{
    return strcmp(((const bench_model *)a)->name, ((const bench_model *)b)->name);
}

static void bench_cell(char *buf, size_t cap, const evo_pt_plan *pl)
{
    if (pl == NULL)
        snprintf(buf, cap, "n/a");
    else if (!pl->feasible)
        snprintf(buf, cap, "%s", strstr(pl->reason, "lacks") ? "does not fit" : "infeasible");
    else
        snprintf(buf, cap, "%.2f", pl->latency_ms);
}

static const char *bench_choice(const evo_pt_plan *pl, const evo_pt_topology *t, char *buf,
                                size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "%s:", evo_pt_kind_name(pl->kind));
    for (int32_t s = 0; s < pl->n_stages && n < cap; s++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s(%d)", s ? "+" : " ",
                              t->devices[pl->stages[s].device].name, (int)pl->stages[s].n_nodes);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SHARED_MODELS_DIR EXAMPLES_DEVICES_DIR\n", argv[0]);
        return 2;
    }
    evo_log_set_sink(NULL, NULL);
    const char *scen_files[3] = {"mcu-board-cloud.json", "three-boards-wifi.json",
                                 "board-cloud-fast.json"};
    const char *scen_names[3] = {"MCU + board + cloud, slow links", "3 boards, Wi-Fi",
                                 "board + cloud, fast link"};
    evo_pt_topology topo[3], t16;
    char path[1024];
    evo_error err;
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s", argv[2], scen_files[s]);
        if (evo_pt_topology_load(path, &topo[s], &err) != EVO_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    snprintf(path, sizeof path, "%s/cluster-16.json", argv[2]);
    if (evo_pt_topology_load(path, &t16, &err) != EVO_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    DIR *dir = opendir(argv[1]);
    if (dir == NULL) {
        fprintf(stderr, "%s: cannot open\n", argv[1]);
        return 77;
    }
    bench_model models[64];
    int nm = 0;
    for (struct dirent *de; (de = readdir(dir)) != NULL && nm < 64;) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s/model.onnx", argv[1], de->d_name);
        bench_model *m = &models[nm];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%s", de->d_name);
        evo_import_options iopt = {.optimize = true};
        if (evo_model_import(path, &iopt, &m->g, &err) != EVO_OK ||
            evo_program_build(m->g, NULL, &m->prog, &err) != EVO_OK) {
            fprintf(stderr, "skip %s: %s\n", de->d_name, err.msg);
            evo_graph_free(m->g);
            continue;
        }
        nm++;
    }
    closedir(dir);
    qsort(models, (size_t)nm, sizeof *models, bench_cmp);
    int violations = 0;
    evo_pt_options lat = {.objective = EVO_PT_LATENCY};
    for (int s = 0; s < 3; s++) {
        const evo_pt_topology *t = &topo[s];
        int32_t cloud = -1;
        for (int32_t d = 0; d < t->n_devices; d++)
            if (t->devices[d].role == EVO_PT_ROLE_CLOUD)
                cloud = d;
        printf("\n#### %s (`examples/devices/%s`)\n\n", scen_names[s], scen_files[s]);
        printf("| model | all on source (ms) | all on cloud (ms) | best single split (ms) | evo "
               "(ms) | evo's plan | planning ms |\n|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < nm; i++) {
            evo_pt_problem p;
            if (evo_pt_problem_from_program(models[i].prog, t, NULL, 0, models[i].name, &p, &err) !=
                EVO_OK) {
                fprintf(stderr, "%s: %s\n", models[i].name, err.msg);
                return 1;
            }
            evo_pt_plan src = {0}, cl = {0}, split = {0};
            int32_t len = p.n_nodes, d = t->source;
            evo_pt_evaluate(&p, 1, &d, &len, NULL, EVO_PT_STANDALONE, &src, NULL);
            bool have_cloud = cloud >= 0;
            if (have_cloud)
                evo_pt_evaluate(&p, 1, &cloud, &len, NULL, EVO_PT_STANDALONE, &cl, NULL);
            /* single split between the source and the cloud; without a cloud,
             * the best over the other devices */
            bool first = true;
            for (int32_t r = 0; r < t->n_devices; r++) {
                if (r == t->source || (have_cloud && r != cloud))
                    continue;
                evo_pt_plan c;
                evo_pt_plan_cloud_pair(&p, &lat, t->source, r, true, &c, NULL);
                if (first || evo_pt_plan_value(&c, EVO_PT_LATENCY) <
                                 evo_pt_plan_value(&split, EVO_PT_LATENCY)) {
                    evo_pt_plan_free(&split);
                    split = c;
                    first = false;
                } else {
                    evo_pt_plan_free(&c);
                }
            }
            double t0 = bench_now_ms();
            evo_pt_result res;
            if (evo_pt_plan_auto(&p, &lat, &res, &err) != EVO_OK) {
                fprintf(stderr, "%s: %s\n", models[i].name, err.msg);
                return 1;
            }
            double plan_ms = bench_now_ms() - t0;
            const evo_pt_plan *best = res.best >= 0 ? &res.plans[res.best] : NULL;
            double v = best ? best->latency_ms : INFINITY;
            const evo_pt_plan *base[3] = {&src, have_cloud ? &cl : NULL, &split};
            for (int b = 0; b < 3; b++)
                if (base[b] && evo_pt_plan_value(base[b], EVO_PT_LATENCY) < v * (1 - 1e-9)) {
                    violations++;
                    fprintf(stderr, "VIOLATION %s scenario %d baseline %d\n", models[i].name, s, b);
                }
            char c1[32], c2[32], c3[32], ch[256];
            bench_cell(c1, sizeof c1, &src);
            bench_cell(c2, sizeof c2, have_cloud ? &cl : NULL);
            bench_cell(c3, sizeof c3, &split);
            printf("| %s | %s | %s | %s | %s | %s | %.1f |\n", models[i].name, c1, c2, c3,
                   best ? (snprintf(ch, sizeof ch, "%.2f", v), ch) : "none fits",
                   best ? bench_choice(best, t, ch + 64, sizeof ch - 64) : "-", plan_ms);
            evo_pt_result_free(&res);
            evo_pt_plan_free(&src);
            evo_pt_plan_free(&cl);
            evo_pt_plan_free(&split);
            evo_pt_problem_free(&p);
        }
    }
    /* planning time over 16 devices, and the beam's gap to the exact DP */
    printf("\n#### Planning time over 16 devices (`examples/devices/cluster-16.json`)\n\n");
    printf("| model | objective | cluster method | cluster ms | auto ms | latency ms | period ms "
           "|\n|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nm; i++) {
        evo_pt_problem p;
        if (evo_pt_problem_from_program(models[i].prog, &t16, NULL, 0, models[i].name, &p, &err) !=
            EVO_OK)
            return 1;
        for (int o = 0; o < 2; o++) {
            evo_pt_options opt = {.objective = (evo_pt_objective)o};
            double t0 = bench_now_ms();
            evo_pt_plan pl;
            evo_pt_plan_cluster(&p, &opt, &pl, NULL);
            double t1 = bench_now_ms();
            evo_pt_result res;
            evo_pt_plan_auto(&p, &opt, &res, NULL);
            double t2 = bench_now_ms();
            printf("| %s | %s | %s | %.1f | %.1f | %.2f | %.2f |\n", models[i].name,
                   o ? "throughput" : "latency", pl.method, t1 - t0, t2 - t1, pl.latency_ms,
                   pl.period_ms);
            evo_pt_plan_free(&pl);
            evo_pt_result_free(&res);
        }
        evo_pt_problem_free(&p);
    }
    /* gap: the first 8 devices of the 16 (exact DP fits the budget) */
    evo_pt_topology t8 = t16;
    t8.n_devices = 8;
    int32_t nl = 0;
    evo_pt_link links8[64];
    for (int32_t l = 0; l < t16.n_links && nl < 64; l++)
        if (t16.links[l].a < 8 && t16.links[l].b < 8)
            links8[nl++] = t16.links[l];
    t8.links = links8;
    t8.n_links = nl;
    printf("\n#### Beam search against the exact DP (first 8 devices of cluster-16)\n\n");
    printf("| model | objective | exact | exact ms | beam 256 | gap | beam 16 | gap |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nm; i++) {
        evo_pt_problem p;
        if (evo_pt_problem_from_program(models[i].prog, &t8, NULL, 0, models[i].name, &p, &err) !=
            EVO_OK)
            return 1;
        for (int o = 0; o < 2; o++) {
            evo_pt_options ex = {.objective = (evo_pt_objective)o};
            evo_pt_options b256 = ex, b16 = ex;
            b256.force_beam = b16.force_beam = true;
            b256.beam_width = 256;
            b16.beam_width = 16;
            evo_pt_plan pe, p1, p2;
            evo_pt_plan_cluster(&p, &ex, &pe, NULL);
            evo_pt_plan_cluster(&p, &b256, &p1, NULL);
            evo_pt_plan_cluster(&p, &b16, &p2, NULL);
            double ve = evo_pt_plan_value(&pe, ex.objective);
            double v1 = evo_pt_plan_value(&p1, ex.objective);
            double v2 = evo_pt_plan_value(&p2, ex.objective);
            printf("| %s | %s | %.2f (%s) | %.1f | %.2f | %+.2f%% | %.2f | %+.2f%% |\n",
                   models[i].name, o ? "period" : "latency", ve, pe.method, pe.planning_ms, v1,
                   100 * (v1 - ve) / ve, v2, 100 * (v2 - ve) / ve);
            evo_pt_plan_free(&pe);
            evo_pt_plan_free(&p1);
            evo_pt_plan_free(&p2);
        }
        evo_pt_problem_free(&p);
    }
    for (int i = 0; i < nm; i++) {
        evo_program_free(models[i].prog);
        evo_graph_free(models[i].g);
    }
    for (int s = 0; s < 3; s++)
        evo_pt_topology_free(&topo[s]);
    evo_pt_topology_free(&t16);
    printf("\n%s\n", violations ? "evo's choice was worse than a baseline"
                                : "evo's choice was never worse than a baseline");
    return violations ? 1 : 0;
}
