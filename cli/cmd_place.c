/*
 * `evo place`: plan where each op of a model runs on a set of devices
 * (docs/placement.md): standalone, cloud-collaborative (min cut), edge
 * cluster (DP), or all three with an explanation (auto).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "evo/db.h"
#include "evo/modeldb.h"
#include "evo/partition.h"

static const char place_usage[] =
    "usage: evo place MODEL --devices FILE.json [--mode auto|standalone|cluster|cloud]\n"
    "                 [--objective latency|throughput] [--json] [-o PLAN.json] [--svg FILE]\n"
    "                 [--db FILE] [--dim NAME=VALUE]... [--beam N] [--exact-budget N]\n"
    "\n"
    "Plan where each op of MODEL (ONNX) runs on the devices described in FILE.json\n"
    "(devices with memory, flash, gflops or a calibrated class; links with bandwidth,\n"
    "round-trip time and encoding; the source of the input and the sink of the\n"
    "result; see docs/placement.md). Prints each kind's predicted latency, period\n"
    "and memory per device, the chosen plan's stages and transfers, and why it won.\n"
    "\n"
    "  --devices FILE     the device topology (required)\n"
    "  --mode M           auto (default): standalone, cloud and cluster, best wins;\n"
    "                     standalone: the best single device; cloud: one edge device\n"
    "                     and the cloud, min s-t cut; cluster: contiguous stages on\n"
    "                     distinct devices (exact DP, beam search beyond the budget)\n"
    "  --objective O      latency (default) or throughput (the pipelined period)\n"
    "  --json             print the plan as JSON (the format `evo split --plan` reads)\n"
    "  -o, --output FILE  also write the plan JSON to FILE\n"
    "  --svg FILE         draw the graph coloured by device (Graphviz `dot`; FILE.dot\n"
    "                     is kept) and the timeline of one request (FILE with\n"
    "                     .timeline.svg in place of .svg)\n"
    "  --db FILE          model database for device classes (profiles, calibrations)\n"
    "  --dim NAME=VALUE   bind a symbolic input dimension\n"
    "  --beam N           cluster beam width (default 256)\n"
    "  --exact-budget N   cluster: most DP transitions solved exactly (default 2e8)\n"
    "  -q, --quiet        no log messages;  -v, --verbose  info log messages\n"
    "\n"
    "Exit status: 0 a plan fits, 1 nothing fits (the message says which device lacks\n"
    "how much memory) or the model or devices file is bad, 2 usage error.\n";

typedef struct place_args {
    const char *model, *devices, *output, *svg, *db;
    int mode; /* -1 auto, else evo_pt_kind */
    evo_pt_objective objective;
    bool json;
    int64_t beam;
    double budget;
    cli_dims dims;
} place_args;

static int place_parse(int argc, char **argv, place_args *pa)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_place, argc, argv);
    pa->mode = -1;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--devices", &val)) {
            pa->devices = val;
        } else if (cli_args_value(&a, "--mode", &val)) {
            if (strcmp(val, "auto") == 0)
                pa->mode = -1;
            else if (strcmp(val, "standalone") == 0)
                pa->mode = EVO_PT_STANDALONE;
            else if (strcmp(val, "cloud") == 0)
                pa->mode = EVO_PT_CLOUD;
            else if (strcmp(val, "cluster") == 0)
                pa->mode = EVO_PT_CLUSTER;
            else
                rc = cli_usage_error(
                    "place", "--mode must be auto, standalone, cluster or cloud, not '%s'", val);
        } else if (cli_args_value(&a, "--objective", &val)) {
            if (strcmp(val, "latency") == 0)
                pa->objective = EVO_PT_LATENCY;
            else if (strcmp(val, "throughput") == 0)
                pa->objective = EVO_PT_THROUGHPUT;
            else
                rc = cli_usage_error("place", "--objective must be latency or throughput, not '%s'",
                                     val);
        } else if (cli_args_value(&a, "--output", &val) || cli_args_value(&a, "-o", &val)) {
            pa->output = val;
        } else if (cli_args_value(&a, "--svg", &val)) {
            pa->svg = val;
        } else if (cli_args_value(&a, "--db", &val)) {
            pa->db = val;
        } else if (cli_args_value(&a, "--dim", &val)) {
            if (!cli_dims_add(a.cmd, &pa->dims, val))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--beam", &val)) {
            if (!cli_parse_i64(a.cmd, "--beam", val, 1, 1000000, &pa->beam))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--exact-budget", &val)) {
            if (!cli_parse_double(a.cmd, "--exact-budget", val, 1, &pa->budget))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_flag(&a, "--json")) {
            pa->json = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && pa->model == NULL) {
            pa->model = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (pa->model == NULL)
        return cli_usage_error("place", "no model given");
    if (pa->devices == NULL)
        return cli_usage_error("place", "no devices given: use --devices FILE.json");
    return -1;
}

/* The id of the newest version of the model file in the database, or 0. */
static int64_t place_model_id(evo_db *db, const char *path)
{
    char sha[65];
    if (evo_sha256_file(path, sha, NULL) != EVO_OK)
        return 0;
    evo_db_model *list = NULL;
    size_t n = 0;
    int64_t id = 0, ver = 0;
    if (evo_db_model_list(db, &list, &n, NULL) != EVO_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].sha256, sha) == 0 && list[i].version > ver) {
            id = list[i].id;
            ver = list[i].version;
        }
    evo_db_model_list_free(list, n);
    return id;
}

static bool place_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        cli_error("place", "%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    bool ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    if (!ok)
        cli_error("place", "%s: write failed", path);
    return ok;
}

/* Run `dot -Tsvg in -o out`; false (with a message) if dot is missing or fails. */
static bool place_dot(const char *in, const char *out)
{
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        execlp("dot", "dot", "-Tsvg", in, "-o", out, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return false;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr,
                "evo place: Graphviz 'dot' was not found; wrote %s (render it with "
                "dot -Tsvg %s -o %s)\n",
                in, in, out);
        return false;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "evo place: dot failed on %s\n", in);
        return false;
    }
    return true;
}

static bool place_svg(const evo_pt_problem *p, const evo_pt_plan *plan, const char *svg)
{
    size_t n = strlen(svg);
    char *dot = malloc(n + 5), *tl = malloc(n + 20);
    char *dtext = evo_pt_plan_to_dot(p, plan), *ttext = evo_pt_plan_timeline_svg(p, plan);
    bool ok = dot && tl && dtext && ttext;
    if (ok) {
        snprintf(dot, n + 5, "%s.dot", svg);
        size_t base = n >= 4 && strcmp(svg + n - 4, ".svg") == 0 ? n - 4 : n;
        snprintf(tl, n + 20, "%.*s.timeline.svg", (int)base, svg);
        ok = place_write(dot, dtext) && place_write(tl, ttext);
        if (ok && place_dot(dot, svg))
            printf("wrote %s (graph), %s (timeline), %s\n", svg, tl, dot);
        else if (ok)
            printf("wrote %s (timeline), %s\n", tl, dot);
    } else {
        cli_error("place", "out of memory drawing the plan");
    }
    free(dot);
    free(tl);
    free(dtext);
    free(ttext);
    return ok;
}

static void place_print_plan(const evo_pt_problem *p, const evo_pt_plan *pl)
{
    const evo_pt_topology *topo = p->topo;
    char b1[32], b2[32], b3[32];
    printf("%s plan (%s%s): latency %.3f ms, period %.3f ms (%.1f requests/s)\n",
           evo_pt_kind_name(pl->kind), pl->method, pl->exact ? ", exact" : ", heuristic",
           pl->latency_ms, pl->period_ms, pl->period_ms > 0 ? 1000.0 / pl->period_ms : 0.0);
    printf("\n%-5s %-16s %-22s %10s %10s %10s\n", "stage", "device", "nodes", "weights", "arena",
           "ms");
    for (int32_t s = 0; s < pl->n_stages; s++) {
        const evo_pt_stage *st = &pl->stages[s];
        char nodes[64];
        bool contiguous = true;
        for (int32_t i = 1; i < st->n_nodes; i++)
            contiguous &= st->nodes[i] == st->nodes[i - 1] + 1;
        if (contiguous)
            snprintf(nodes, sizeof nodes, "%d ops [%d, %d)", (int)st->n_nodes, (int)st->nodes[0],
                     (int)(st->nodes[st->n_nodes - 1] + 1));
        else
            snprintf(nodes, sizeof nodes, "%d ops (not a range)", (int)st->n_nodes);
        printf("%-5d %-16s %-22s %10s %10s %10.3f\n", (int)s, topo->devices[st->device].name, nodes,
               cli_fmt_bytes(st->weights_bytes, b1, sizeof b1),
               cli_fmt_bytes(st->arena_bytes, b2, sizeof b2), st->compute_ms);
    }
    if (pl->n_transfers > 0)
        printf("\n%-16s %-16s %8s %10s %-6s %10s  %s\n", "from", "to", "tensors", "bytes", "enc",
               "ms", "route");
    for (int32_t x = 0; x < pl->n_transfers; x++) {
        const evo_pt_transfer *t = &pl->transfers[x];
        printf("%-16s %-16s %8d %10s %-6s %10.3f  %s", topo->devices[t->from].name,
               topo->devices[t->to].name, (int)t->n_tensors, cli_fmt_bytes(t->bytes, b1, sizeof b1),
               t->n_hops ? evo_pt_encoding_name(t->hops[0].encoding) : "-", t->ms,
               topo->devices[t->from].name);
        for (int32_t h = 0; h < t->n_hops; h++)
            printf(">%s", topo->devices[t->hops[h].to].name);
        printf("\n");
    }
    printf("\n%-16s %12s %12s %12s %12s\n", "device", "used", "of", "weights", "busy ms");
    for (int32_t d = 0; d < pl->n_devices; d++) {
        const evo_pt_device_use *u = &pl->use[d];
        if (!u->used)
            continue;
        printf("%-16s %12s %12s %12s %12.3f\n", topo->devices[d].name,
               cli_fmt_bytes(u->ram_bytes, b1, sizeof b1),
               cli_fmt_bytes(topo->devices[d].memory_bytes, b2, sizeof b2),
               cli_fmt_bytes(u->weights_bytes, b3, sizeof b3), u->busy_ms);
    }
}

static int place_main(int argc, char **argv)
{
    place_args pa = {0};
    int rc = place_parse(argc, argv, &pa);
    if (rc >= 0) {
        cli_dims_free(&pa.dims);
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    evo_error err = {0};
    evo_pt_topology topo = {0};
    evo_graph *g = NULL;
    evo_program *prog = NULL;
    evo_db *db = NULL;
    evo_pt_problem p = {0};
    evo_pt_result res = {0};
    evo_pt_plan single = {0};
    char *json = NULL;
    res.best = -1;
    if (evo_pt_topology_load(pa.devices, &topo, &err) != EVO_OK) {
        cli_error("place", "%s", err.msg);
        goto done;
    }
    evo_import_options iopt = {.dims = pa.dims.items, .n_dims = pa.dims.n, .optimize = true};
    if (evo_model_import(pa.model, &iopt, &g, &err) != EVO_OK ||
        evo_program_build(g, NULL, &prog, &err) != EVO_OK) {
        cli_error("place", "%s", err.msg);
        goto done;
    }
    int64_t model_id = 0;
    if (pa.db != NULL) {
        if (evo_db_open(pa.db, &db, &err) != EVO_OK) {
            cli_error("place", "%s", err.msg);
            goto done;
        }
        model_id = place_model_id(db, pa.model);
    }
    if (evo_pt_problem_from_program(prog, &topo, db, model_id, pa.model, &p, &err) != EVO_OK) {
        cli_error("place", "%s", err.msg);
        goto done;
    }
    evo_pt_options opt = {
        .objective = pa.objective, .beam_width = (int32_t)pa.beam, .exact_budget = pa.budget};
    const evo_pt_plan *plan;
    evo_status st;
    if (pa.mode < 0) {
        st = evo_pt_plan_auto(&p, &opt, &res, &err);
        plan = st == EVO_OK && res.best >= 0 ? &res.plans[res.best] : NULL;
    } else if (pa.mode == EVO_PT_STANDALONE) {
        st = evo_pt_plan_standalone(&p, &opt, &single, &err);
        plan = &single;
    } else if (pa.mode == EVO_PT_CLOUD) {
        st = evo_pt_plan_cloud(&p, &opt, &single, &err);
        plan = &single;
    } else {
        st = evo_pt_plan_cluster(&p, &opt, &single, &err);
        plan = &single;
    }
    if (st != EVO_OK) {
        cli_error("place", "%s: %s", pa.model, err.msg);
        goto done;
    }
    if (plan != NULL && !plan->feasible)
        plan = NULL;
    if (plan != NULL) {
        json = evo_pt_plan_to_json(&p, plan, pa.mode < 0 ? &res : NULL, pa.objective);
        if (json == NULL) {
            cli_error("place", "out of memory writing the plan");
            goto done;
        }
        if (pa.output != NULL && !place_write(pa.output, json))
            goto done;
    }
    if (pa.json && plan != NULL) {
        printf("%s\n", json);
    } else {
        printf("%s: %d ops on %d devices, source %s, sink %s\n", pa.model, (int)p.n_nodes,
               (int)topo.n_devices, topo.devices[topo.source].name, topo.devices[topo.sink].name);
        if (pa.mode < 0)
            printf("\n%s", res.explanation);
        if (plan != NULL) {
            printf("\n");
            place_print_plan(&p, plan);
        }
    }
    if (plan == NULL) {
        if (pa.mode < 0)
            cli_error("place", "no plan fits: %s; cluster: %s", res.plans[EVO_PT_STANDALONE].reason,
                      res.plans[EVO_PT_CLUSTER].reason);
        else
            cli_error("place", "no %s plan fits: %s", evo_pt_kind_name((evo_pt_kind)pa.mode),
                      single.reason);
        goto done;
    }
    if (pa.svg != NULL && !place_svg(&p, plan, pa.svg))
        goto done;
    rc = CLI_EXIT_OK;
done:
    free(json);
    evo_pt_plan_free(&single);
    evo_pt_result_free(&res);
    evo_pt_problem_free(&p);
    evo_program_free(prog);
    evo_graph_free(g);
    evo_db_close(db);
    evo_pt_topology_free(&topo);
    cli_dims_free(&pa.dims);
    return rc;
}

const cli_command cli_cmd_place = {
    .name = "place",
    .summary = "plan where each op runs on edge devices and the cloud",
    .usage = place_usage,
    .main = place_main,
};
