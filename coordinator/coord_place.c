/*
 * Placement for the coordinator: the real partitioner (evo/partition.h)
 * over a topology made of the live devices and the measured links.
 *
 * The topology has one device per live node (its free memory, calibrated
 * GFLOP/s and memory bandwidth for the roofline, role "cloud" for class
 * cloud; no device class, so the node's own measurement is used rather than
 * a class calibration from the database) and one for the coordinator itself,
 * which is the source of every input and the sink of every result and runs
 * nothing (its column of the cost matrix is infinite). Links: each node to
 * the coordinator with the RTT and bandwidth the node measured when it
 * registered; node to node with the slower of the two nodes' measured
 * figures (on one host or LAN both cross the same network), or the
 * documented defaults when a node measured nothing. CoAP nodes cannot dial
 * peers: they get no node to node links, so the partitioner routes their
 * tensors through the coordinator, as the data path does.
 *
 * The partitioner counts a stage as weights + arena + a per-device overhead.
 * What a node really holds is the stage's .evm (weights + tables) + the
 * loader's work buffer + the arena; the overhead starts at a bare-metal
 * figure and, when a written stage turns out larger than planned, grows by
 * the difference and the model is placed again (coord_place_fit).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "evo/modeldb.h"
#include "evo/partition.h"
#include "evo/split.h"

void coord_placement_free(coord_placement *pl)
{
    if (pl == NULL)
        return;
    evo_split_plan_free(&pl->split);
    free(pl->dev_of);
    free(pl->flops);
    free(pl->compute_ms);
    free(pl->planned_bytes);
    free(pl->json);
    memset(pl, 0, sizeof *pl);
}

static bool coord_place_mode(const char *mode, int *kind)
{
    if (strcmp(mode, "auto") == 0)
        *kind = -1;
    else if (strcmp(mode, "standalone") == 0)
        *kind = EVO_PT_STANDALONE;
    else if (strcmp(mode, "cloud") == 0)
        *kind = EVO_PT_CLOUD;
    else if (strcmp(mode, "cluster") == 0)
        *kind = EVO_PT_CLUSTER;
    else
        return false;
    return true;
}

/* The link between devs[i] and devs[j] either of them measured (the newest
 * of the two registered after the other and probed it), or NULL. */
static const coord_peer_link *coord_place_measured(const coord_plan_dev *devs, size_t i, size_t j)
{
    for (int side = 0; side < 2; side++) {
        const coord_plan_dev *from = &devs[side ? j : i];
        const char *to = devs[side ? i : j].name;
        for (size_t k = 0; from->peers != NULL && k < from->n_peers; k++)
            if (from->peers[k].peer != NULL && to != NULL && strcmp(from->peers[k].peer, to) == 0 &&
                from->peers[k].mbps > 0 && from->peers[k].rtt_ms >= 0)
                return &from->peers[k];
    }
    return NULL;
}

/* The topology: devs[0..n) then the coordinator (index n). */
evo_status coord_place_topology(const coord_plan_dev *devs, size_t n, const uint64_t *overhead,
                                evo_pt_topology *t, evo_error *err)
{
    memset(t, 0, sizeof *t);
    size_t nl = n + n * (n - 1) / 2;
    t->devices = calloc(n + 1, sizeof *t->devices);
    t->links = calloc(nl ? nl : 1, sizeof *t->links);
    if (t->devices == NULL || t->links == NULL) {
        evo_pt_topology_free(t);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory building the topology");
    }
    for (size_t i = 0; i < n; i++) {
        evo_pt_device *d = &t->devices[i];
        snprintf(d->name, sizeof d->name, "%s", devs[i].name);
        d->memory_bytes = devs[i].free_bytes;
        d->overhead_bytes = overhead[i];
        d->gflops = devs[i].gflops > 0 ? devs[i].gflops : COORD_DEFAULT_GFLOPS;
        d->mem_gbps = devs[i].mem_gbps > 0 ? devs[i].mem_gbps : 0;
        d->role = devs[i].device_class && strcmp(devs[i].device_class, "cloud") == 0
                      ? EVO_PT_ROLE_CLOUD
                      : EVO_PT_ROLE_EDGE;
    }
    evo_pt_device *cd = &t->devices[n];
    snprintf(cd->name, sizeof cd->name, "coordinator");
    cd->gflops = 1.0; /* never used: nothing may run there */
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double rtt = devs[i].rtt_ms > 0 ? devs[i].rtt_ms : COORD_DEFAULT_RTT_MS;
        double mbps = devs[i].mbps > 0 ? devs[i].mbps : COORD_DEFAULT_MBPS;
        t->links[k++] = (evo_pt_link){.a = (int32_t)i,
                                      .b = (int32_t)n,
                                      .mbps = mbps,
                                      .rtt_ms = rtt,
                                      .encoding = EVO_PT_ENC_RAW};
        for (size_t j = i + 1; j < n; j++) {
            if (devs[i].relayed || devs[j].relayed)
                continue; /* the route goes through the coordinator */
            double rj = devs[j].rtt_ms > 0 ? devs[j].rtt_ms : COORD_DEFAULT_RTT_MS;
            double mj = devs[j].mbps > 0 ? devs[j].mbps : COORD_DEFAULT_MBPS;
            /* A measured node to node link wins; otherwise estimate it as
             * the slower of the two nodes' links to the coordinator. */
            const coord_peer_link *m = coord_place_measured(devs, i, j);
            t->links[k++] = (evo_pt_link){.a = (int32_t)i,
                                          .b = (int32_t)j,
                                          .mbps = m ? m->mbps : (mbps < mj ? mbps : mj),
                                          .rtt_ms = m ? m->rtt_ms : (rtt > rj ? rtt : rj),
                                          .encoding = EVO_PT_ENC_RAW};
        }
    }
    t->n_devices = (int32_t)n + 1;
    t->n_links = k;
    t->source = t->sink = (int32_t)n;
    return EVO_OK;
}

/* The partitioner's reason without a leading "...:" summary and without
 * the parts about the coordinator's own device. */
static void coord_place_reason(const char *why, char *out, size_t cap)
{
    const char *colon = strstr(why, ": ");
    if (colon != NULL && strstr(why, "no single device") == why)
        why = colon + 2;
    out[0] = '\0';
    size_t used = 0;
    while (*why != '\0') {
        const char *end = strstr(why, "; ");
        size_t len = end ? (size_t)(end - why) : strlen(why);
        bool about_coord = false;
        size_t show = len;
        for (size_t i = 0; i + 13 <= len && !about_coord; i++)
            about_coord = strncmp(why + i, "'coordinator'", 13) == 0;
        /* The first device's line keeps its breakdown; the others only say
         * how much they lack, so every device fits in one message. */
        for (size_t i = 0; used > 0 && i + 2 <= len; i++)
            if (why[i] == ' ' && why[i + 1] == '(') {
                show = i;
                break;
            }
        if (!about_coord && used + show + 3 < cap) {
            used += (size_t)snprintf(out + used, cap - used, "%s%.*s", used ? "; " : "", (int)show,
                                     why);
        }
        why += len + (end ? 2 : 0);
    }
    if (out[0] == '\0')
        snprintf(out, cap, "no device has room");
}

/* One run of the partitioner with the given overheads. */
static evo_status coord_place_once(const evo_graph *g, const evo_program *prog,
                                   const coord_plan_dev *devs, size_t n, int kind,
                                   evo_pt_objective obj, const uint64_t *overhead,
                                   coord_placement *out, evo_error *err)
{
    evo_pt_topology topo;
    evo_pt_problem p;
    evo_pt_result res;
    evo_pt_plan single;
    memset(&p, 0, sizeof p);
    memset(&res, 0, sizeof res);
    memset(&single, 0, sizeof single);
    evo_status rv = coord_place_topology(devs, n, overhead, &topo, err);
    if (rv != EVO_OK)
        return rv;
    if ((rv = evo_pt_problem_from_program(prog, &topo, NULL, 0, g->name, &p, err)) != EVO_OK)
        goto done;
    for (int32_t k = 0; k < p.n_nodes; k++)
        p.cost_us[(size_t)k * (size_t)p.n_devices + n] = INFINITY;
    evo_pt_options opt = {.objective = obj};
    const evo_pt_plan *plan = &single;
    if (kind < 0) {
        if ((rv = evo_pt_plan_auto(&p, &opt, &res, err)) != EVO_OK)
            goto done;
        plan = res.best >= 0 ? &res.plans[res.best] : NULL;
    } else if (kind == EVO_PT_STANDALONE) {
        rv = evo_pt_plan_standalone(&p, &opt, &single, err);
    } else if (kind == EVO_PT_CLOUD) {
        rv = evo_pt_plan_cloud(&p, &opt, &single, err);
    } else {
        rv = evo_pt_plan_cluster(&p, &opt, &single, err);
    }
    if (rv != EVO_OK)
        goto done;
    if (plan == NULL || !plan->feasible || plan->n_stages <= 0) {
        /* Which device lacks how much, in the partitioner's words, without
         * its own preamble and without the coordinator (it runs nothing). */
        const char *why = plan && plan->reason[0]               ? plan->reason
                          : res.plans[EVO_PT_CLUSTER].reason[0] ? res.plans[EVO_PT_CLUSTER].reason
                                                                : "no plan fits the devices";
        char clean[EVO_ERROR_MSG_MAX];
        coord_place_reason(why, clean, sizeof clean);
        if (kind == EVO_PT_STANDALONE)
            rv = evo_error_set(err, EVO_ERR_LIMIT, "no device can hold the whole model: %s", clean);
        else if (kind == EVO_PT_CLOUD)
            rv = evo_error_set(err, EVO_ERR_LIMIT, "no edge + cloud split fits: %s", clean);
        else
            rv = evo_error_set(err, EVO_ERR_LIMIT, "the model does not fit the live devices: %s",
                               clean);
        goto done;
    }
    out->json = evo_pt_plan_to_json(&p, plan, kind < 0 ? &res : NULL, obj);
    if (out->json == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory writing the plan");
        goto done;
    }
    if ((rv = evo_pt_split_plan_from_json(g, out->json, strlen(out->json), g->name, &out->split,
                                          err)) != EVO_OK)
        goto done;
    int32_t ns = plan->n_stages;
    if (out->split.n_stages != ns) {
        rv = evo_error_set(err, EVO_ERR_GRAPH, "the plan has %d stages but its split has %d",
                           (int)ns, (int)out->split.n_stages);
        goto done;
    }
    out->dev_of = calloc((size_t)ns, sizeof *out->dev_of);
    out->flops = calloc((size_t)ns, sizeof *out->flops);
    out->compute_ms = calloc((size_t)ns, sizeof *out->compute_ms);
    out->planned_bytes = calloc((size_t)ns, sizeof *out->planned_bytes);
    if (!out->dev_of || !out->flops || !out->compute_ms || !out->planned_bytes) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory placing the model");
        goto done;
    }
    out->n_stages = ns;
    for (int32_t s = 0; s < ns; s++) {
        const evo_pt_stage *st = &plan->stages[s];
        if (st->device < 0 || (size_t)st->device >= n) {
            rv =
                evo_error_set(err, EVO_ERR_GRAPH, "stage %d was placed on the coordinator", (int)s);
            goto done;
        }
        out->dev_of[s] = st->device;
        out->compute_ms[s] = st->compute_ms;
        out->planned_bytes[s] = st->weights_bytes + st->arena_bytes + overhead[st->device];
        const evo_split_stage *ss = &out->split.stages[s];
        for (int32_t i = 0; i < ss->n_nodes; i++) {
            evo_op_cost cost;
            memset(&cost, 0, sizeof cost);
            if (evo_graph_node_cost(g, ss->nodes[i], &cost) == EVO_OK)
                out->flops[s] += cost.flops;
        }
    }
    out->latency_ms = plan->latency_ms;
    out->period_ms = plan->period_ms;
    snprintf(out->kind, sizeof out->kind, "%s", evo_pt_kind_name(plan->kind));
    snprintf(out->method, sizeof out->method, "%s", plan->method);
done:
    evo_pt_plan_free(&single);
    evo_pt_result_free(&res);
    evo_pt_problem_free(&p);
    evo_pt_topology_free(&topo);
    if (rv != EVO_OK)
        coord_placement_free(out);
    return rv;
}

evo_status coord_place(const evo_graph *g, const coord_plan_dev *devs, size_t n, const char *mode,
                       const char *objective, coord_placement *out, coord_stage_blob **blobs,
                       evo_error *err)
{
    memset(out, 0, sizeof *out);
    *blobs = NULL;
    int kind;
    if (mode == NULL || !coord_place_mode(mode, &kind))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "mode '%s' is not auto, standalone, cluster or cloud",
                             mode ? mode : "");
    if (objective == NULL ||
        (strcmp(objective, "latency") != 0 && strcmp(objective, "throughput") != 0))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "objective '%s' is not latency or throughput",
                             objective ? objective : "");
    if (n == 0)
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "no live device is registered");
    if (n >= EVO_PT_MAX_DEVICES)
        return evo_error_set(err, EVO_ERR_LIMIT, "the partitioner takes at most %d devices",
                             EVO_PT_MAX_DEVICES - 1);
    evo_pt_objective obj = strcmp(objective, "latency") == 0 ? EVO_PT_LATENCY : EVO_PT_THROUGHPUT;
    evo_program *prog = NULL;
    evo_status rv = evo_program_build(g, NULL, &prog, err);
    if (rv != EVO_OK)
        return rv;
    uint64_t overhead[EVO_PT_MAX_DEVICES];
    for (size_t i = 0; i < n; i++)
        overhead[i] = EVO_PT_OVERHEAD_BAREMETAL;
    /* A few rounds at most: each round raises the overhead of every device
     * whose real stage came out larger than planned by the difference. */
    for (int round = 0; round < 4; round++) {
        coord_stage_blobs_free(*blobs, out->n_stages);
        *blobs = NULL;
        coord_placement_free(out);
        if ((rv = coord_place_once(g, prog, devs, n, kind, obj, overhead, out, err)) != EVO_OK)
            break;
        if ((rv = coord_stage_blobs_make(g, &out->split, blobs, err)) != EVO_OK)
            break;
        /* What each device would really hold (a cloud split may put two
         * stages on one device). */
        uint64_t held[EVO_PT_MAX_DEVICES] = {0}, planned[EVO_PT_MAX_DEVICES] = {0};
        for (int32_t s = 0; s < out->n_stages; s++) {
            int32_t d = out->dev_of[s];
            held[d] += (*blobs)[s].need_bytes;
            /* The partitioner counts the overhead once per device. */
            planned[d] += out->planned_bytes[s] - (planned[d] > 0 ? overhead[d] : 0);
        }
        int32_t short_dev = -1;
        for (size_t d = 0; d < n; d++) {
            if (held[d] <= devs[d].free_bytes)
                continue;
            short_dev = (int32_t)d;
            if (held[d] > planned[d])
                overhead[d] += held[d] - planned[d];
            overhead[d] += 1024;
        }
        if (short_dev < 0)
            break;
        if (round == 3) {
            char nb[32], fb[32];
            rv = evo_error_set(err, EVO_ERR_LIMIT,
                               "the stages placed on %s need %s, which has %s free",
                               devs[short_dev].name, coord_fmt_bytes(held[short_dev], nb),
                               coord_fmt_bytes(devs[short_dev].free_bytes, fb));
        }
    }
    evo_program_free(prog);
    if (rv != EVO_OK) {
        coord_stage_blobs_free(*blobs, out->n_stages);
        *blobs = NULL;
        coord_placement_free(out);
    }
    return rv;
}
