/*
 * The node agent (`evo node`): registers with the coordinator, keeps a
 * heartbeat, accepts the stages the coordinator assigns it (checking their
 * digest and its memory budget), runs requests and forwards their outputs to
 * the next hop of each request's route.
 *
 * Threads: a control thread answers the coordinator's REQ channel (assign,
 * deploy, ping); a data thread receives TENSORS on a PULL channel, runs the
 * stage and pushes the outputs on; a heartbeat thread pushes heartbeats to
 * the coordinator's data channel. Stages are guarded by one mutex.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "evo/db.h"

#define AGENT_MAX_STAGES 64
#define AGENT_MAX_PUSH 16
/* Peer link probes (docs/coordinator.md "Link probes"): at most this many
 * peers, each bounded in time; the bulk transfer is AGENT_PROBE_CHUNKS
 * messages of AGENT_PROBE_CHUNK bytes and only its second half is timed, so a
 * token bucket's burst does not inflate the rate. */
#define AGENT_MAX_PEERS 16
#define AGENT_PROBE_CHUNK (128 * 1024)
#define AGENT_PROBE_CHUNKS 16
/* Default time budget of one link probe (evo_agent_options.probe_budget_ms). */
#define AGENT_PROBE_BUDGET_MS 1000
#define AGENT_POLL_MS 200

typedef struct agent_stage {
    char digest[65];
    char model[EVO_WIRE_STR_MAX];
    uint32_t stage;
    coord_stage_run run; /* owns the node's copy of the .evm */
} agent_stage;

typedef struct agent_assigned {
    char digest[65];
    uint64_t size;
} agent_assigned;

typedef struct agent_peer {
    char name[EVO_WIRE_STR_MAX];
    char url[EVO_WIRE_STR_MAX];
    char ticket[2 * COORD_MAC_SIZE + 1]; /* the coordinator's authorization to probe it */
    double rtt_us, mbps;                 /* measured; 0 = not (yet) */
    bool measured;
} agent_peer;

typedef struct agent_push {
    char url[EVO_WIRE_STR_MAX];
    evo_tp *tp;
} agent_push;

struct evo_agent {
    char name[EVO_WIRE_STR_MAX];
    char klass[EVO_WIRE_STR_MAX];
    char coord_url[EVO_WIRE_STR_MAX];  /* where to register */
    char coord_data[EVO_WIRE_STR_MAX]; /* where heartbeats and results go */
    char ctl_url[EVO_WIRE_STR_MAX];    /* where this node answers */
    char data_url[EVO_WIRE_STR_MAX];
    bool coap;
    uint64_t memory;
    evo_coord_security sec;
    char *token, *cert, *key, *ca, *server_name;
    evo_calibration cal;
    double gflops;
    /* Intra-op threads (NULL: one). Stages load on the control thread and
     * run on the data thread; run_mu keeps a stage load from resizing the
     * pool's scratch while a run uses it. */
    evo_threads *pool;
    pthread_mutex_t run_mu;
    int32_t probe_budget_ms;
    uint64_t start_ns;

    evo_tp *ctl, *data, *hb;
    agent_push push[AGENT_MAX_PUSH];
    size_t n_push;

    /* The session with the coordinator. Registering again (the heartbeat
     * thread, after the coordinator restarted) replaces session, coord_data
     * and assign_seq under mu; the other threads read them under mu
     * (agent_session_key, agent_coord_data). */
    uint8_t session[COORD_SESSION_SIZE];
    char session_id[33];
    int32_t hb_ms;
    uint64_t hb_seq, assign_seq;
    char rereg_err[sizeof(((evo_error *)0)->msg)]; /* last reason logged (heartbeat thread) */

    pthread_mutex_t mu;
    agent_stage *stages[AGENT_MAX_STAGES];
    size_t n_stages;
    agent_assigned assigned[AGENT_MAX_STAGES];
    size_t n_assigned;
    uint64_t n_runs;

    agent_peer peers[AGENT_MAX_PEERS]; /* guarded by mu once the probe thread runs */
    size_t n_peers;

    pthread_t t_ctl, t_data, t_hb, t_probe;
    bool started_ctl, started_data, started_hb, started_probe;
    volatile bool stop;
    volatile bool failed;
    evo_error fail_err;
};

static char *agent_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copies of the session's key and the coordinator's data URL (see the
 * struct: a new registration may replace them). */
static void agent_session_key(evo_agent *a, uint8_t key[COORD_SESSION_SIZE])
{
    pthread_mutex_lock(&a->mu);
    memcpy(key, a->session, COORD_SESSION_SIZE);
    pthread_mutex_unlock(&a->mu);
}

static void agent_coord_data(evo_agent *a, char out[EVO_WIRE_STR_MAX])
{
    pthread_mutex_lock(&a->mu);
    memcpy(out, a->coord_data, EVO_WIRE_STR_MAX);
    pthread_mutex_unlock(&a->mu);
}

static bool agent_timed_out(const evo_error *e)
{
    return e->code == EVO_ERR_IO && strstr(e->msg, "timed out") != NULL;
}

static uint64_t agent_used_locked(const evo_agent *a)
{
    uint64_t u = 0;
    for (size_t i = 0; i < a->n_stages; i++)
        u += a->stages[i]->run.need_bytes;
    return u;
}

static agent_stage *agent_find_stage_locked(evo_agent *a, const char *digest)
{
    for (size_t i = 0; i < a->n_stages; i++)
        if (strcmp(a->stages[i]->digest, digest) == 0)
            return a->stages[i];
    return NULL;
}

static void agent_stage_free(agent_stage *s)
{
    if (s == NULL)
        return;
    coord_stage_run_free(&s->run);
    free(s);
}

/* ---------------------------------------------------------------- pushing */

static evo_status agent_push_msg(evo_agent *a, const char *url, const evo_msg *m, evo_error *err)
{
    agent_push *p = NULL;
    for (size_t i = 0; i < a->n_push; i++)
        if (strcmp(a->push[i].url, url) == 0)
            p = &a->push[i];
    if (p == NULL) {
        if (a->n_push == AGENT_MAX_PUSH) {
            evo_tp_close(a->push[0].tp);
            memmove(&a->push[0], &a->push[1], (AGENT_MAX_PUSH - 1) * sizeof a->push[0]);
            a->n_push--;
        }
        p = &a->push[a->n_push];
        evo_tp_options o;
        coord_tp_options(&o, &a->sec, 3000);
        evo_status rv = evo_tp_open(&p->tp, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, err);
        if (rv != EVO_OK)
            return rv;
        snprintf(p->url, sizeof p->url, "%s", url);
        a->n_push++;
    }
    evo_status rv = evo_tp_send(p->tp, m, err);
    if (rv != EVO_OK) {
        /* Drop the channel so the next send dials afresh. */
        evo_tp_close(p->tp);
        size_t i = (size_t)(p - a->push);
        memmove(&a->push[i], &a->push[i + 1], (a->n_push - i - 1) * sizeof a->push[0]);
        a->n_push--;
    }
    return rv;
}

/* ---------------------------------------------------------------- control */

static void agent_reply_error(evo_agent *a, evo_status code, const char *text)
{
    evo_error e;
    evo_error_set(&e, code, "%s", text);
    evo_msg r;
    evo_msg_set_error(&r, 0, &e);
    evo_error se;
    if (evo_tp_send(a->ctl, &r, &se) != EVO_OK)
        EVO_LOGW("node %s: cannot answer the coordinator: %s", a->name, se.msg);
}

static void agent_reply_ack(evo_agent *a, uint64_t value)
{
    evo_msg r;
    evo_msg_init(&r, EVO_MSG_ACK);
    r.u.ack.value = value;
    evo_error se;
    if (evo_tp_send(a->ctl, &r, &se) != EVO_OK)
        EVO_LOGW("node %s: cannot answer the coordinator: %s", a->name, se.msg);
}

/* "assign": the authenticated list of stages this node is to hold. */
static void agent_on_assign(evo_agent *a, const evo_msg *m)
{
    evo_error e;
    uint8_t key[COORD_SESSION_SIZE];
    agent_session_key(a, key);
    if (coord_msg_verify(m, key, sizeof key, NULL, 0, &e) != EVO_OK) {
        EVO_LOGW("node %s: refused an assignment: %s", a->name, e.msg);
        agent_reply_error(a, EVO_ERR_MISMATCH, e.msg);
        return;
    }
    cJSON *j = coord_msg_json(m);
    uint64_t seq = (uint64_t)coord_json_num(j, "seq", 0);
    const cJSON *list = cJSON_GetObjectItem(j, "stages");
    pthread_mutex_lock(&a->mu);
    if (j == NULL || !cJSON_IsArray(list) || seq <= a->assign_seq) {
        pthread_mutex_unlock(&a->mu);
        cJSON_Delete(j);
        agent_reply_error(a, EVO_ERR_PARSE, "assignment is malformed or replayed");
        return;
    }
    a->assign_seq = seq;
    a->n_assigned = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const char *d = coord_json_str(it, "digest", "");
        if (strlen(d) != 64 || a->n_assigned == AGENT_MAX_STAGES)
            continue;
        agent_assigned *as = &a->assigned[a->n_assigned++];
        snprintf(as->digest, sizeof as->digest, "%s", d);
        as->size = (uint64_t)coord_json_num(it, "size", 0);
    }
    /* Drop stages no longer assigned: their memory goes back to the budget. */
    for (size_t i = 0; i < a->n_stages;) {
        bool keep = false;
        for (size_t k = 0; k < a->n_assigned; k++)
            keep |= strcmp(a->assigned[k].digest, a->stages[i]->digest) == 0;
        if (keep) {
            i++;
            continue;
        }
        EVO_LOGI("node %s: dropping stage %u of %s", a->name, a->stages[i]->stage,
                 a->stages[i]->model);
        agent_stage_free(a->stages[i]);
        a->stages[i] = a->stages[--a->n_stages];
    }
    pthread_mutex_unlock(&a->mu);
    cJSON_Delete(j);
    agent_reply_ack(a, seq);
}

static void agent_on_deploy(evo_agent *a, const evo_msg *m)
{
    const evo_msg_deploy *d = &m->u.deploy;
    char hex[65], text[EVO_ERROR_MSG_MAX];
    coord_hex(d->digest, sizeof d->digest, hex);
    pthread_mutex_lock(&a->mu);
    bool assigned = false;
    for (size_t k = 0; k < a->n_assigned; k++)
        assigned |= strcmp(a->assigned[k].digest, hex) == 0;
    if (!assigned) {
        pthread_mutex_unlock(&a->mu);
        snprintf(text, sizeof text,
                 "node %.64s refuses stage %.12s...: the coordinator did not assign that digest",
                 a->name, hex);
        EVO_LOGW("%s", text);
        agent_reply_error(a, EVO_ERR_MISMATCH, text);
        return;
    }
    agent_stage *have = agent_find_stage_locked(a, hex);
    if (have != NULL) {
        uint64_t need = have->run.need_bytes;
        pthread_mutex_unlock(&a->mu);
        agent_reply_ack(a, need);
        return;
    }
    uint64_t used = agent_used_locked(a);
    pthread_mutex_unlock(&a->mu);
    if (d->blob == NULL) {
        snprintf(text, sizeof text, "node %.64s does not hold stage %.12s...; send it", a->name,
                 hex);
        agent_reply_error(a, EVO_ERR_NOT_FOUND, text);
        return;
    }
    /* The decoder checked the digest already; check again here, where the
     * node decides to run the bytes, so no transport path can skip it. */
    uint8_t got[EVO_WIRE_DIGEST_SIZE];
    evo_sha256(d->blob, (size_t)d->blob_len, got);
    if (!coord_equal(got, d->digest, sizeof got)) {
        snprintf(text, sizeof text,
                 "node %.64s refuses stage %u of %.64s: its SHA-256 does not match", a->name,
                 d->stage, d->model);
        EVO_LOGW("%s", text);
        agent_reply_error(a, EVO_ERR_MISMATCH, text);
        return;
    }
    agent_stage *s = calloc(1, sizeof *s);
    evo_error e;
    evo_status rv = EVO_OK;
    if (s == NULL) {
        agent_reply_error(a, EVO_ERR_NOMEM, "node is out of memory for the stage");
        return;
    }
    snprintf(s->digest, sizeof s->digest, "%s", hex);
    snprintf(s->model, sizeof s->model, "%s", d->model);
    s->stage = d->stage;
    char what[EVO_WIRE_STR_MAX + 32];
    snprintf(what, sizeof what, "%s stage %u", d->model, d->stage);
    if ((rv = coord_stage_load(d->blob, (size_t)d->blob_len, what, &s->run, &e)) != EVO_OK) {
        agent_stage_free(s);
        agent_reply_error(a, rv, e.msg);
        return;
    }
    if (s->run.need_bytes + used > a->memory) {
        char nb[32], bb[32], ub[32];
        snprintf(text, sizeof text,
                 "node %.64s refuses %.100s: it needs %s (.evm + work + arena) but the "
                 "budget is %s with %s in use",
                 a->name, what, coord_fmt_bytes(s->run.need_bytes, nb),
                 coord_fmt_bytes(a->memory, bb), coord_fmt_bytes(used, ub));
        EVO_LOGW("%s", text);
        agent_stage_free(s);
        agent_reply_error(a, EVO_ERR_LIMIT, text);
        return;
    }
    s->run.arena = malloc(s->run.arena_bytes ? s->run.arena_bytes : 1);
    if (s->run.arena == NULL ||
        evo_exec_init(&s->run.exec, &s->run.prog, s->run.arena, s->run.arena_bytes) != EVO_OK) {
        agent_stage_free(s);
        agent_reply_error(a, EVO_ERR_NOMEM, "node cannot lay out the stage's arena");
        return;
    }
    pthread_mutex_lock(&a->run_mu);
    rv = evo_exec_set_threads(&s->run.exec, a->pool, &e);
    pthread_mutex_unlock(&a->run_mu);
    if (rv != EVO_OK) {
        agent_stage_free(s);
        agent_reply_error(a, rv, e.msg);
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (a->n_stages == AGENT_MAX_STAGES) {
        pthread_mutex_unlock(&a->mu);
        agent_stage_free(s);
        agent_reply_error(a, EVO_ERR_LIMIT, "node holds too many stages");
        return;
    }
    a->stages[a->n_stages++] = s;
    pthread_mutex_unlock(&a->mu);
    char nb[32];
    EVO_LOGI("node %s: holds %s (%d ops, %s)", a->name, what, (int)s->run.prog.n_nodes,
             coord_fmt_bytes(s->run.need_bytes, nb));
    agent_reply_ack(a, s->run.need_bytes);
}

/* A peer's link probe: only a node the coordinator named may probe (its
 * ticket is an HMAC under this node's session key), so strangers cannot
 * make the node take bulk transfers. */
static void agent_on_probe(evo_agent *a, const evo_msg *m)
{
    cJSON *j = coord_msg_json(m);
    char what[2 * EVO_WIRE_STR_MAX + 16];
    snprintf(what, sizeof what, "probe:%s:%s", coord_json_str(j, "from", ""), a->name);
    uint8_t want[COORD_MAC_SIZE], got[COORD_MAC_SIZE], key[COORD_SESSION_SIZE];
    agent_session_key(a, key);
    coord_hmac_str(key, sizeof key, what, want);
    bool ok = coord_unhex(coord_json_str(j, "ticket", ""), got, sizeof got) &&
              coord_equal(want, got, sizeof got);
    cJSON_Delete(j);
    if (ok)
        agent_reply_ack(a, m->n_tensors);
    else
        agent_reply_error(a, EVO_ERR_MISMATCH, "the link probe is not authorized");
}

static void *agent_ctl_main(void *arg)
{
    evo_agent *a = arg;
    while (!a->stop) {
        evo_msg m;
        evo_error e;
        if (evo_tp_recv(a->ctl, &m, &e) != EVO_OK) {
            if (!agent_timed_out(&e))
                EVO_LOGW("node %s: control channel: %s", a->name, e.msg);
            continue;
        }
        switch (m.type) {
        case EVO_MSG_DEPLOY:
            agent_on_deploy(a, &m);
            break;
        case EVO_MSG_HEARTBEAT:
            agent_reply_ack(a, (coord_mono_ns() - a->start_ns) / 1000000u);
            break;
        case EVO_MSG_RUN:
            if (strcmp(m.u.run.model, "assign") == 0) {
                agent_on_assign(a, &m);
                break;
            }
            if (strcmp(m.u.run.model, "probe") == 0) {
                agent_on_probe(a, &m);
                break;
            }
            /* fall through */
        default:
            agent_reply_error(a, EVO_ERR_UNSUPPORTED, "the node does not take this request");
        }
        evo_msg_release(&m);
    }
    return NULL;
}

/* ---------------------------------------------------------------- data path */

static void agent_send_error(evo_agent *a, uint64_t request_id, const evo_error *e)
{
    evo_msg r;
    evo_msg_set_error(&r, request_id, e);
    evo_error se;
    char url[EVO_WIRE_STR_MAX];
    agent_coord_data(a, url);
    if (agent_push_msg(a, url, &r, &se) != EVO_OK)
        EVO_LOGW("node %s: cannot report an error to the coordinator: %s", a->name, se.msg);
}

/* Run the stage at the head of the route and push the outputs on. */
static evo_status agent_run(evo_agent *a, const evo_msg *m, uint64_t t_recv_wall, evo_error *e)
{
    uint64_t t0 = coord_mono_ns();
    const evo_wire_tensor *rt = coord_find_tensor(m, COORD_T_ROUTE);
    const void *rb;
    size_t rl;
    if (rt == NULL || coord_tensor_bytes(rt, &rb, &rl, e) != EVO_OK)
        return evo_error_set(e, EVO_ERR_PARSE, "node %s: request has no route", a->name);
    cJSON *route = cJSON_ParseWithLength(rb, rl);
    cJSON *hops = cJSON_GetObjectItem(route, "h");
    cJSON *hop = cJSON_GetArrayItem(hops, 0);
    evo_status rv = EVO_OK;
    if (hop == NULL) {
        cJSON_Delete(route);
        return evo_error_set(e, EVO_ERR_PARSE, "node %s: request has an empty route", a->name);
    }
    const char *digest = coord_json_str(hop, "d", "");
    /* The coordinator authorizes each hop with this node's session key, so
     * a stray process cannot make the node compute. */
    char what[160];
    snprintf(what, sizeof what, "run:%llu:%s", (unsigned long long)m->request_id, digest);
    uint8_t want[COORD_MAC_SIZE], got[COORD_MAC_SIZE], key[COORD_SESSION_SIZE];
    agent_session_key(a, key);
    coord_hmac_str(key, sizeof key, what, want);
    if (!coord_unhex(coord_json_str(hop, "mac", ""), got, sizeof got) ||
        !coord_equal(want, got, sizeof got)) {
        cJSON_Delete(route);
        return evo_error_set(e, EVO_ERR_MISMATCH,
                             "node %s refuses request %llu: its route is not authorized", a->name,
                             (unsigned long long)m->request_id);
    }
    pthread_mutex_lock(&a->mu);
    agent_stage *s = agent_find_stage_locked(a, digest);
    if (s == NULL) {
        pthread_mutex_unlock(&a->mu);
        evo_error_set(e, EVO_ERR_NOT_FOUND, "node %s does not hold stage %.12s...", a->name,
                      digest);
        cJSON_Delete(route);
        return EVO_ERR_NOT_FOUND;
    }
    evo_exec *x = &s->run.exec;
    const evo_program *p = &s->run.prog;
    for (int32_t i = 0; i < p->n_inputs && rv == EVO_OK; i++) {
        const char *name = p->tensors[p->inputs[i]].name;
        const evo_wire_tensor *wt = coord_find_tensor(m, name);
        evo_tensor *t = evo_exec_input(x, i);
        const evo_prog_tensor *pt = &p->tensors[p->inputs[i]];
        if (wt == NULL)
            rv = evo_error_set(e, EVO_ERR_NOT_FOUND, "node %s: stage %u input '%s' is missing",
                               a->name, s->stage, name);
        else if (!evo_shape_equal(&wt->shape, &pt->shape))
            rv = evo_error_set(e, EVO_ERR_SHAPE, "node %s: stage %u input '%s' has the wrong shape",
                               a->name, s->stage, name);
        else
            rv = evo_wire_tensor_decode(wt, pt->dtype, t->data, (size_t)pt->nbytes, NULL, e);
    }
    uint64_t t1 = coord_mono_ns();
    int32_t failed = -1;
    bool ran = rv == EVO_OK;
    if (ran) {
        pthread_mutex_lock(&a->run_mu);
        rv = evo_exec_run(x, &failed);
        pthread_mutex_unlock(&a->run_mu);
    }
    if (ran && rv != EVO_OK)
        evo_error_set(e, rv, "node %s: stage %u failed at node %d: %s", a->name, s->stage,
                      (int)failed, evo_strerror(rv));
    uint64_t t2 = coord_mono_ns();
    /* Outputs, plus the route without this hop and with this stage's times. */
    coord_env out;
    char *route_text = NULL;
    cJSON *done_hop = NULL; /* this hop, detached from the route (its pass list is read below) */
    if (rv == EVO_OK) {
        done_hop = cJSON_DetachItemFromArray(hops, 0);
        cJSON *times = cJSON_GetObjectItem(route, "t");
        if (times == NULL)
            times = cJSON_AddArrayToObject(route, "t");
        uint64_t sent = (uint64_t)coord_json_num(route, "ts", 0);
        cJSON *tm = cJSON_CreateObject();
        cJSON_AddNumberToObject(tm, "s", s->stage);
        cJSON_AddStringToObject(tm, "node", a->name);
        /* Transfer ends when the data channel had the whole message; the
         * time it then waited in the channel's queue (this node busy with
         * earlier requests) is queueing, not the network's. */
        uint64_t arrived =
            m->received_ns && m->received_ns <= t_recv_wall ? m->received_ns : t_recv_wall;
        cJSON_AddNumberToObject(tm, "queue_ns", (double)(t1 - t0 + (t_recv_wall - arrived)));
        cJSON_AddNumberToObject(tm, "compute_ns", (double)(t2 - t1));
        cJSON_AddNumberToObject(tm, "transfer_ns",
                                sent && arrived > sent ? (double)(arrived - sent) : 0.0);
        cJSON_AddItemToArray(times, tm);
        cJSON_DeleteItemFromObject(route, "ts");
        cJSON_AddNumberToObject(route, "ts", (double)coord_wall_ns());
        route_text = cJSON_PrintUnformatted(route);
        rv = coord_env_init(&out, EVO_MSG_TENSORS, NULL, NULL, e);
        out.m.request_id = m->request_id;
        out.m.u.tensors.stage = s->stage + 1;
        for (int32_t i = 0; i < p->n_outputs && rv == EVO_OK; i++) {
            evo_wire_tensor wt;
            const evo_tensor *t = evo_exec_output(x, i);
            if ((rv = evo_wire_tensor_encode(&wt, p->tensors[p->outputs[i]].name, -1, t,
                                             EVO_ENC_RAW, EVO_COMP_NONE, -1, e)) == EVO_OK)
                rv = coord_env_add(&out, &wt, e);
        }
        /* Tensors later stages need that this one does not compute ride
         * along untouched (the route lists them for this hop). */
        const cJSON *pass = cJSON_GetObjectItem(done_hop, "p");
        const cJSON *pn;
        cJSON_ArrayForEach(pn, pass)
        {
            const evo_wire_tensor *pt =
                cJSON_IsString(pn) ? coord_find_tensor(m, pn->valuestring) : NULL;
            if (rv != EVO_OK)
                break;
            if (pt == NULL)
                rv = evo_error_set(e, EVO_ERR_NOT_FOUND,
                                   "node %s: stage %u must pass on '%s' but did not receive it",
                                   a->name, s->stage,
                                   cJSON_IsString(pn) ? pn->valuestring : "(not a name)");
            else
                rv = coord_env_add(&out, pt, e);
        }
        evo_wire_tensor wt;
        if (rv == EVO_OK && route_text != NULL &&
            (rv = coord_bytes_tensor(&wt, COORD_T_ROUTE, route_text, strlen(route_text), e)) ==
                EVO_OK)
            rv = coord_env_add(&out, &wt, e);
        const cJSON *next = cJSON_GetArrayItem(hops, 0);
        const char *url =
            next ? coord_json_str(next, "u", a->coord_data) : a->coord_data; /* mu is held */
        if (rv == EVO_OK && (rv = agent_push_msg(a, url, &out.m, e)) != EVO_OK)
            evo_error_prefix(e, "node %s: cannot forward request %llu to %s", a->name,
                             (unsigned long long)m->request_id, url);
        coord_env_clear(&out);
        a->n_runs++;
    }
    pthread_mutex_unlock(&a->mu);
    free(route_text);
    cJSON_Delete(done_hop);
    cJSON_Delete(route);
    return rv;
}

static void *agent_data_main(void *arg)
{
    evo_agent *a = arg;
    while (!a->stop) {
        evo_msg m;
        evo_error e;
        if (evo_tp_recv(a->data, &m, &e) != EVO_OK) {
            if (!agent_timed_out(&e))
                EVO_LOGW("node %s: data channel: %s", a->name, e.msg);
            continue;
        }
        uint64_t t_recv = coord_wall_ns();
        if (m.type != EVO_MSG_TENSORS) {
            EVO_LOGW("node %s: ignoring a %s message on the data channel", a->name,
                     evo_msg_type_name(m.type));
        } else if (agent_run(a, &m, t_recv, &e) != EVO_OK) {
            EVO_LOGW("%s", e.msg);
            agent_send_error(a, m.request_id, &e);
        }
        evo_msg_release(&m);
    }
    return NULL;
}

/* ---------------------------------------------------------------- heartbeat */

/* Heartbeats that fail for this long mean the coordinator went away (a
 * restarted one also forgot this node's session): register again, at most
 * once per AGENT_REREGISTER_EVERY_MS until it works. */
#define AGENT_REREGISTER_AFTER_MS 2000
#define AGENT_REREGISTER_EVERY_MS 1000
static void agent_maybe_reregister(evo_agent *a, uint64_t failing_since, uint64_t *last_try);

static void *agent_hb_main(void *arg)
{
    evo_agent *a = arg;
    uint64_t failing_since = 0, last_try = 0; /* coord_mono_ns; 0: heartbeats go through */
    while (!a->stop) {
        pthread_mutex_lock(&a->mu);
        uint64_t used = agent_used_locked(a);
        uint64_t runs = a->n_runs;
        size_t n_st = a->n_stages;
        pthread_mutex_unlock(&a->mu);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", a->name);
        cJSON_AddStringToObject(j, "session_id", a->session_id);
        cJSON_AddNumberToObject(j, "seq", (double)++a->hb_seq);
        cJSON_AddNumberToObject(j, "uptime_ms",
                                (double)((coord_mono_ns() - a->start_ns) / 1000000));
        cJSON_AddNumberToObject(j, "free_bytes", (double)(a->memory > used ? a->memory - used : 0));
        cJSON_AddNumberToObject(j, "stages", (double)n_st);
        cJSON_AddNumberToObject(j, "runs", (double)runs);
        cJSON_AddNumberToObject(j, "ts", (double)coord_wall_ns());
        /* Measured peer links ride on every heartbeat (a lost one loses nothing). */
        cJSON *links = cJSON_AddArrayToObject(j, "links");
        pthread_mutex_lock(&a->mu);
        for (size_t i = 0; i < a->n_peers; i++) {
            if (!a->peers[i].measured)
                continue;
            cJSON *l = cJSON_CreateObject();
            cJSON_AddStringToObject(l, "peer", a->peers[i].name);
            cJSON_AddNumberToObject(l, "rtt_us", a->peers[i].rtt_us);
            cJSON_AddNumberToObject(l, "mbps", a->peers[i].mbps);
            cJSON_AddItemToArray(links, l);
        }
        pthread_mutex_unlock(&a->mu);
        char *text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        coord_env env;
        evo_error e;
        if (text != NULL && coord_env_init(&env, EVO_MSG_RUN, "heartbeat", text, &e) == EVO_OK &&
            coord_env_sign(&env, a->session, sizeof a->session, NULL, 0, &e) == EVO_OK) {
            if (evo_tp_send(a->hb, &env.m, &e) == EVO_OK) {
                failing_since = 0;
            } else {
                if (failing_since == 0) {
                    EVO_LOGW("node %s: heartbeat: %s", a->name, e.msg);
                    failing_since = coord_mono_ns();
                }
                agent_maybe_reregister(a, failing_since, &last_try);
            }
        }
        coord_env_clear(&env);
        for (int slept = 0; slept < a->hb_ms && !a->stop; slept += 50)
            coord_sleep_ms(50);
    }
    return NULL;
}

/* ---------------------------------------------------------------- registration */

/* One REQ round trip; *reply must be released. ERROR replies become errors. */
static evo_status agent_call(evo_tp *tp, const evo_msg *m, evo_msg *reply, evo_error *err)
{
    evo_status rv = evo_tp_send(tp, m, err);
    if (rv == EVO_OK)
        rv = evo_tp_recv(tp, reply, err);
    if (rv == EVO_OK && reply->type == EVO_MSG_ERROR) {
        rv = evo_error_set(err, (evo_status)reply->u.error.status, "%s", reply->u.error.message);
        evo_msg_release(reply);
    }
    return rv;
}

/* One "probe" round trip carrying json (copied; may be NULL) and len bytes. */
static evo_status agent_probe_once(evo_tp *tp, const char *json, const void *bytes, size_t len,
                                   evo_error *err)
{
    coord_env env;
    evo_msg reply;
    evo_wire_tensor wt;
    char *text = json != NULL ? strdup(json) : NULL;
    if (json != NULL && text == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "cannot build a link probe");
    evo_status rv = coord_env_init(&env, EVO_MSG_RUN, "probe", text, err);
    if (rv == EVO_OK && len > 0 &&
        (rv = coord_bytes_tensor(&wt, "probe", bytes, len, err)) == EVO_OK)
        rv = coord_env_add(&env, &wt, err);
    if (rv == EVO_OK && (rv = agent_call(tp, &env.m, &reply, err)) == EVO_OK)
        evo_msg_release(&reply);
    coord_env_clear(&env);
    return rv;
}

/* Bandwidth of the link behind tp: up to AGENT_PROBE_CHUNKS back-to-back
 * transfers of which only the second half is timed (the first half drains a
 * token bucket's burst), minus one round trip each. No transfer starts after
 * deadline_ns; on a slow link the second half of the transfers done by then
 * is timed, and when fewer than two were done *mbps stays 0 (unmeasured). */
static evo_status agent_probe_rate(evo_tp *tp, const char *json, double rtt_us,
                                   uint64_t deadline_ns, double *mbps, evo_error *err)
{
    *mbps = 0;
    unsigned char *junk = calloc(1, AGENT_PROBE_CHUNK);
    if (junk == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "cannot allocate a link probe");
    evo_status rv = EVO_OK;
    uint64_t t[AGENT_PROBE_CHUNKS + 1]; /* t[i]: when transfer i started */
    int done = 0;
    t[0] = coord_mono_ns();
    while (done < AGENT_PROBE_CHUNKS && t[done] <= deadline_ns) {
        rv = agent_probe_once(tp, json, junk, AGENT_PROBE_CHUNK, err);
        if (rv != EVO_OK)
            break;
        t[++done] = coord_mono_ns();
    }
    free(junk);
    if (rv != EVO_OK || done < 2)
        return rv;
    const int first = done / 2, timed = done - first;
    double elapsed = (double)(t[done] - t[first]) / 1e9;
    double s = elapsed - timed * rtt_us / 1e6;
    /* On a link much faster than its round trip (loopback, or a ping that
     * caught a scheduling delay) the transfers can take no longer than the
     * pings did; the rate over the whole elapsed time is then a lower bound,
     * which is what the partitioner should plan with, not "unmeasured". */
    if (s < elapsed / 2)
        s = elapsed;
    if (s > 0)
        *mbps = (double)timed * AGENT_PROBE_CHUNK * 8 / s / 1e6;
    return EVO_OK;
}

/* Measure the link to one peer: three authorized pings (the best is the
 * RTT) and the bandwidth transfer, all within the probe budget. */
static evo_status agent_probe_peer(evo_agent *a, agent_peer *p, evo_error *err)
{
    evo_tp_options o;
    coord_tp_options(&o, &a->sec, a->probe_budget_ms);
    evo_tp *tp = NULL;
    evo_status rv = evo_tp_open(&tp, p->url, EVO_TP_REQ, EVO_TP_DIAL, &o, err);
    if (rv != EVO_OK)
        return rv;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "from", a->name);
    cJSON_AddStringToObject(j, "ticket", p->ticket);
    char *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    uint64_t deadline = coord_mono_ns() + (uint64_t)a->probe_budget_ms * 1000000u;
    double rtt_us = 1e30, mbps = 0;
    for (int i = 0; i < 3 && rv == EVO_OK && !a->stop; i++) {
        uint64_t t0 = coord_mono_ns();
        rv = json != NULL ? agent_probe_once(tp, json, NULL, 0, err)
                          : evo_error_set(err, EVO_ERR_NOMEM, "cannot build a link probe");
        double us = (double)(coord_mono_ns() - t0) / 1e3;
        if (rv == EVO_OK && us < rtt_us)
            rtt_us = us;
    }
    if (rv == EVO_OK && !a->stop)
        rv = agent_probe_rate(tp, json, rtt_us, deadline, &mbps, err);
    free(json);
    evo_tp_close(tp);
    if (rv == EVO_OK && mbps > 0) {
        pthread_mutex_lock(&a->mu);
        p->rtt_us = rtt_us;
        p->mbps = mbps;
        p->measured = true;
        pthread_mutex_unlock(&a->mu);
    }
    return rv;
}

/* Probe every peer the coordinator named, one after the other, off the
 * request path; the heartbeats report what was measured. */
static void *agent_probe_main(void *arg)
{
    evo_agent *a = arg;
    for (size_t i = 0; i < a->n_peers && !a->stop; i++) {
        evo_error e;
        if (agent_probe_peer(a, &a->peers[i], &e) != EVO_OK)
            EVO_LOGW("node %s: link probe to %s skipped: %s", a->name, a->peers[i].name, e.msg);
        else if (a->peers[i].measured)
            EVO_LOGI("node %s: link to %s: rtt %.0f us, %.0f Mbit/s", a->name, a->peers[i].name,
                     a->peers[i].rtt_us, a->peers[i].mbps);
        else
            EVO_LOGW("node %s: link probe to %s skipped: too slow to measure in its time budget",
                     a->name, a->peers[i].name);
    }
    return NULL;
}

/* What a registration gives the node. */
typedef struct agent_reg {
    uint8_t session[COORD_SESSION_SIZE];
    char session_id[33];
    char coord_data[EVO_WIRE_STR_MAX];
    int32_t hb_ms;
    agent_peer peers[AGENT_MAX_PEERS];
    size_t n_peers;
} agent_reg;

/* Challenge + signed register into *reg; measures RTT and bandwidth to the
 * coordinator on the way. Touches nothing of a's session (the other threads
 * may be running: agent_adopt_reg installs it). */
static evo_status agent_register(evo_agent *a, agent_reg *reg, evo_error *err)
{
    memset(reg, 0, sizeof *reg);
    evo_tp_options o;
    coord_tp_options(&o, &a->sec, 5000);
    evo_tp *tp = NULL;
    evo_status rv = evo_tp_open(&tp, a->coord_url, EVO_TP_REQ, EVO_TP_DIAL, &o, err);
    if (rv != EVO_OK)
        return rv;
    coord_env env;
    evo_msg reply;
    char nonce_hex[2 * COORD_NONCE_SIZE + 1] = "";
    char mode[16] = "open";
    double rtt_us = 1e30;
    /* Three challenges: the best round trip is the link's RTT. */
    for (int i = 0; i < 3 && rv == EVO_OK; i++) {
        uint64_t t0 = coord_mono_ns();
        rv = coord_env_init(&env, EVO_MSG_RUN, "challenge", NULL, err);
        if (rv == EVO_OK)
            rv = agent_call(tp, &env.m, &reply, err);
        coord_env_clear(&env);
        if (rv != EVO_OK)
            break;
        double us = (double)(coord_mono_ns() - t0) / 1e3;
        if (us < rtt_us)
            rtt_us = us;
        cJSON *j = coord_msg_json(&reply);
        snprintf(nonce_hex, sizeof nonce_hex, "%s", coord_json_str(j, "nonce", ""));
        snprintf(mode, sizeof mode, "%s", coord_json_str(j, "mode", "open"));
        cJSON_Delete(j);
        evo_msg_release(&reply);
    }
    /* Bandwidth: the same bounded transfer as peer probes. */
    double mbps = 0;
    if (rv == EVO_OK) {
        evo_error pe;
        uint64_t deadline = coord_mono_ns() + (uint64_t)a->probe_budget_ms * 1000000u;
        if (agent_probe_rate(tp, NULL, rtt_us, deadline, &mbps, &pe) != EVO_OK)
            EVO_LOGW("node %s: bandwidth probe to the coordinator: %s", a->name, pe.msg);
    }
    if (rv == EVO_OK && strcmp(mode, "token") == 0 && a->token == NULL)
        rv = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "the coordinator at %s requires a join token (--token or EVO_TOKEN)",
                           a->coord_url);
    if (rv == EVO_OK) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", a->name);
        cJSON_AddStringToObject(j, "class", a->klass);
        cJSON_AddStringToObject(j, "control_url", a->ctl_url);
        cJSON_AddStringToObject(j, "data_url", a->data_url);
        cJSON_AddStringToObject(j, "transport", a->coap ? "coap" : "nng");
        cJSON_AddNumberToObject(j, "memory", (double)a->memory);
        cJSON_AddNumberToObject(j, "gflops", a->gflops);
        cJSON_AddStringToObject(j, "nonce", nonce_hex);
        cJSON *cal = cJSON_AddObjectToObject(j, "calibration");
        cJSON_AddNumberToObject(cal, "dense_gflops", a->cal.dense_gflops);
        cJSON_AddNumberToObject(cal, "dw_gflops", a->cal.dw_gflops);
        cJSON_AddNumberToObject(cal, "elem_gflops", a->cal.elem_gflops);
        cJSON_AddNumberToObject(cal, "mem_gbps", a->cal.mem_gbps);
        cJSON_AddNumberToObject(cal, "cache_gbps", a->cal.cache_gbps);
        cJSON_AddNumberToObject(cal, "cache_bytes", (double)a->cal.cache_bytes);
        cJSON *links = cJSON_AddArrayToObject(j, "links");
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "peer", "coordinator");
        cJSON_AddNumberToObject(l, "rtt_us", rtt_us);
        cJSON_AddNumberToObject(l, "mbps", mbps);
        cJSON_AddItemToArray(links, l);
        char *text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        uint8_t nonce[COORD_NONCE_SIZE];
        bool have_nonce = coord_unhex(nonce_hex, nonce, sizeof nonce);
        rv = coord_env_init(&env, EVO_MSG_RUN, "register", text, err);
        if (rv == EVO_OK && a->token != NULL && have_nonce)
            rv = coord_env_sign(&env, (const uint8_t *)a->token, strlen(a->token), nonce,
                                sizeof nonce, err);
        if (rv == EVO_OK)
            rv = agent_call(tp, &env.m, &reply, err);
        coord_env_clear(&env);
        if (rv == EVO_OK) {
            cJSON *r = coord_msg_json(&reply);
            snprintf(reg->session_id, sizeof reg->session_id, "%s",
                     coord_json_str(r, "session_id", ""));
            const char *data = coord_json_str(r, "data_url", "");
            coord_url_reachable(data, a->coord_url, reg->coord_data, sizeof reg->coord_data);
            reg->hb_ms = (int32_t)coord_json_num(r, "heartbeat_ms", 500);
            if (reg->hb_ms < 50)
                reg->hb_ms = 50;
            const char *key = coord_json_str(r, "session_key", NULL);
            if (key != NULL) {
                if (!coord_unhex(key, reg->session, sizeof reg->session))
                    rv = evo_error_set(err, EVO_ERR_PARSE, "registration reply is malformed");
            } else if (a->token != NULL) {
                /* Token mode: the key never travels; both ends derive it. */
                char what[160];
                snprintf(what, sizeof what, "evo-session:%s:%s", reg->session_id, nonce_hex);
                coord_hmac_str((const uint8_t *)a->token, strlen(a->token), what, reg->session);
            } else {
                rv = evo_error_set(err, EVO_ERR_PARSE, "registration reply has no session key");
            }
            /* The peers to probe (node to node links). */
            reg->n_peers = 0;
            const cJSON *pe;
            cJSON_ArrayForEach(pe, cJSON_GetObjectItem(r, "peers"))
            {
                const char *pn = coord_json_str(pe, "name", "");
                const char *pu = coord_json_str(pe, "url", "");
                const char *pt = coord_json_str(pe, "ticket", "");
                if (reg->n_peers == AGENT_MAX_PEERS || pn[0] == '\0' || pu[0] == '\0' ||
                    strlen(pn) >= EVO_WIRE_STR_MAX || strlen(pu) >= EVO_WIRE_STR_MAX ||
                    strlen(pt) != 2 * COORD_MAC_SIZE)
                    continue;
                agent_peer *p = &reg->peers[reg->n_peers++];
                memset(p, 0, sizeof *p);
                snprintf(p->name, sizeof p->name, "%s", pn);
                coord_url_reachable(pu, a->coord_url, p->url, sizeof p->url);
                snprintf(p->ticket, sizeof p->ticket, "%s", pt);
            }
            if (reg->session_id[0] == '\0' || reg->coord_data[0] == '\0')
                rv = evo_error_set(err, EVO_ERR_PARSE, "registration reply is incomplete");
            cJSON_Delete(r);
            evo_msg_release(&reply);
        }
    }
    evo_tp_close(tp);
    if (rv == EVO_OK)
        EVO_LOGI("node %s: registered with %s (rtt %.0f us, %.0f Mbit/s)", a->name, a->coord_url,
                 rtt_us, mbps);
    return rv;
}

/* Install a registration's session (and, at start, its peers: the probe
 * thread is not running yet). */
static void agent_adopt_reg(evo_agent *a, const agent_reg *reg, bool with_peers)
{
    pthread_mutex_lock(&a->mu);
    memcpy(a->session, reg->session, sizeof a->session);
    memcpy(a->session_id, reg->session_id, sizeof a->session_id);
    memcpy(a->coord_data, reg->coord_data, sizeof a->coord_data);
    a->hb_ms = reg->hb_ms;
    a->assign_seq = 0; /* the coordinator numbers assignments per session */
    if (with_peers) {
        memcpy(a->peers, reg->peers, sizeof a->peers);
        a->n_peers = reg->n_peers;
    }
    pthread_mutex_unlock(&a->mu);
}

static void agent_maybe_reregister(evo_agent *a, uint64_t failing_since, uint64_t *last_try)
{
    uint64_t now = coord_mono_ns();
    if (now - failing_since < (uint64_t)AGENT_REREGISTER_AFTER_MS * 1000000u ||
        now - *last_try < (uint64_t)AGENT_REREGISTER_EVERY_MS * 1000000u)
        return;
    *last_try = now;
    agent_reg *reg = calloc(1, sizeof *reg);
    evo_error e;
    evo_tp *hb = NULL;
    evo_status rv =
        reg ? agent_register(a, reg, &e) : evo_error_set(&e, EVO_ERR_NOMEM, "out of memory");
    if (rv == EVO_OK) {
        evo_tp_options o;
        coord_tp_options(&o, &a->sec, 2000);
        rv = evo_tp_open(&hb, reg->coord_data, EVO_TP_PUSH, EVO_TP_DIAL, &o, &e);
    }
    if (rv == EVO_OK) {
        /* Only this thread sends heartbeats: the old channel can go. */
        evo_tp_close(a->hb);
        a->hb = hb;
        agent_adopt_reg(a, reg, false);
        EVO_LOGI("node %s: registered again with %s (the coordinator came back)", a->name,
                 a->coord_url);
        a->rereg_err[0] = '\0';
    } else if (strcmp(e.msg, a->rereg_err) != 0) {
        /* Once per distinct reason, not every second: a refusal (a changed
         * token, a certificate the new coordinator does not accept) must
         * reach the operator; "not back yet" is said once. */
        EVO_LOGW("node %s: registering again with %s: %s (retrying every second)", a->name,
                 a->coord_url, e.msg);
        snprintf(a->rereg_err, sizeof a->rereg_err, "%s", e.msg);
    }
    free(reg);
}

/* ---------------------------------------------------------------- lifecycle */

evo_status evo_agent_start(const evo_agent_options *opt, evo_agent **out, evo_error *err)
{
    *out = NULL;
    if (opt == NULL || opt->name == NULL || opt->name[0] == '\0' ||
        strlen(opt->name) >= EVO_WIRE_STR_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "a node needs a name (--name)");
    evo_agent *a = calloc(1, sizeof *a);
    if (a == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory starting a node");
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->run_mu, NULL);
    a->start_ns = coord_mono_ns();
    snprintf(a->name, sizeof a->name, "%s", opt->name);
    snprintf(a->klass, sizeof a->klass, "%s", opt->device_class ? opt->device_class : "edge");
    a->coap = opt->transport != NULL && strcmp(opt->transport, "coap") == 0;
    if (opt->transport != NULL && !a->coap && strcmp(opt->transport, "nng") != 0) {
        free(a);
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "transport '%s' is not nng or coap",
                             opt->transport);
    }
    const char *coord = a->coap ? opt->coap_coordinator : opt->coordinator;
    if (coord == NULL)
        coord = a->coap ? "coap://127.0.0.1:5683" : evo_client_default_url(NULL);
    snprintf(a->coord_url, sizeof a->coord_url, "%s", coord);
    a->memory = opt->memory_bytes ? opt->memory_bytes : (uint64_t)1 << 30;
    a->probe_budget_ms = opt->probe_budget_ms > 0 ? opt->probe_budget_ms : AGENT_PROBE_BUDGET_MS;
    a->token = agent_strdup(opt->sec.token);
    a->cert = agent_strdup(opt->sec.tls_cert);
    a->key = agent_strdup(opt->sec.tls_key);
    a->ca = agent_strdup(opt->sec.tls_ca);
    a->server_name = agent_strdup(opt->sec.tls_server_name);
    a->sec = (evo_coord_security){.tls_cert = a->cert,
                                  .tls_key = a->key,
                                  .tls_ca = a->ca,
                                  .token = a->token,
                                  .tls_server_name = a->server_name};
    evo_status rv = EVO_OK;
    if (opt->no_calibrate) {
        double g = opt->gflops > 0 ? opt->gflops : 1.0;
        a->cal = (evo_calibration){.dense_gflops = g,
                                   .dw_gflops = g / 4,
                                   .elem_gflops = g / 8,
                                   .mem_gbps = 4,
                                   .cache_gbps = 16,
                                   .cache_bytes = 1 << 20};
    } else if ((rv = evo_calibrate(&a->cal, err)) != EVO_OK) {
        evo_agent_stop(a);
        return rv;
    }
    a->gflops = a->cal.dense_gflops;
    /* Calibration measures one thread, so the speed the node claims stays
     * the single-thread figure; threads only make it finish sooner. */
    if (opt->threads > 1 && (rv = evo_threads_create(opt->threads, &a->pool, err)) != EVO_OK) {
        evo_error_prefix(err, "node %s", a->name);
        evo_agent_stop(a);
        return rv;
    }

    /* Listeners: control (REP) and data (PULL), the data one on the same
     * host with an ephemeral port. */
    char base[EVO_WIRE_STR_MAX];
    const char *listen = opt->listen;
    bool tls = a->cert != NULL && !a->coap;
    if (listen == NULL)
        listen = a->coap ? "coap://127.0.0.1:0"
                 : tls   ? "tls+tcp://127.0.0.1:0"
                         : "tcp://127.0.0.1:0";
    evo_tp_options o;
    coord_tp_options(&o, &a->sec, AGENT_POLL_MS);
    if ((rv = evo_tp_open(&a->ctl, listen, EVO_TP_REP, EVO_TP_LISTEN, &o, err)) != EVO_OK)
        goto fail;
    coord_url_with_port(listen, evo_tp_port(a->ctl), a->ctl_url, sizeof a->ctl_url);
    coord_url_base(listen, base, sizeof base);
    char data_ctl[EVO_WIRE_STR_MAX + 8], data_listen[EVO_WIRE_STR_MAX + 32];
    snprintf(data_ctl, sizeof data_ctl, "%s:0", base);
    coord_data_url(data_ctl, data_listen, sizeof data_listen);
    if ((rv = evo_tp_open(&a->data, data_listen, EVO_TP_PULL, EVO_TP_LISTEN, &o, err)) != EVO_OK)
        goto fail;
    coord_url_with_port(data_listen, evo_tp_port(a->data), a->data_url, sizeof a->data_url);

    /* Register: retry while the coordinator is not there yet (bounded), stop
     * at a refusal. */
    agent_reg *reg = calloc(1, sizeof *reg);
    if (reg == NULL) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "out of memory starting a node");
        goto fail;
    }
    for (int attempt = 0;; attempt++) {
        evo_error e;
        rv = agent_register(a, reg, &e);
        if (rv == EVO_OK) {
            agent_adopt_reg(a, reg, true);
            free(reg);
            break;
        }
        /* Not there yet is worth waiting for; a refused handshake is not. */
        bool transient = e.code == EVO_ERR_IO && strstr(e.msg, "TLS handshake") == NULL;
        if (!transient || attempt >= 60) {
            *err = e;
            evo_error_prefix(err, "node %s: registration with %s failed", a->name, a->coord_url);
            free(reg);
            goto fail;
        }
        if (attempt == 0)
            EVO_LOGW("node %s: %s; retrying", a->name, e.msg);
        coord_sleep_ms(500);
    }
    coord_tp_options(&o, &a->sec, 2000);
    if ((rv = evo_tp_open(&a->hb, a->coord_data, EVO_TP_PUSH, EVO_TP_DIAL, &o, err)) != EVO_OK)
        goto fail;
    if (pthread_create(&a->t_ctl, NULL, agent_ctl_main, a) == 0)
        a->started_ctl = true;
    if (pthread_create(&a->t_data, NULL, agent_data_main, a) == 0)
        a->started_data = true;
    if (pthread_create(&a->t_hb, NULL, agent_hb_main, a) == 0)
        a->started_hb = true;
    if (a->n_peers > 0 && !a->coap && pthread_create(&a->t_probe, NULL, agent_probe_main, a) == 0)
        a->started_probe = true;
    if (!a->started_ctl || !a->started_data || !a->started_hb) {
        rv = evo_error_set(err, EVO_ERR_NOMEM, "node %s: cannot start its threads", a->name);
        goto fail;
    }
    *out = a;
    return EVO_OK;
fail:
    evo_agent_stop(a);
    return rv;
}

bool evo_agent_failed(const evo_agent *a, evo_error *err)
{
    if (a->failed && err != NULL)
        *err = a->fail_err;
    return a->failed;
}

void evo_agent_stop(evo_agent *a)
{
    if (a == NULL)
        return;
    a->stop = true;
    if (a->started_ctl)
        pthread_join(a->t_ctl, NULL);
    if (a->started_data)
        pthread_join(a->t_data, NULL);
    if (a->started_hb)
        pthread_join(a->t_hb, NULL);
    if (a->started_probe)
        pthread_join(a->t_probe, NULL);
    evo_tp_close(a->ctl);
    evo_tp_close(a->data);
    evo_tp_close(a->hb);
    for (size_t i = 0; i < a->n_push; i++)
        evo_tp_close(a->push[i].tp);
    for (size_t i = 0; i < a->n_stages; i++)
        agent_stage_free(a->stages[i]);
    evo_threads_destroy(a->pool);
    pthread_mutex_destroy(&a->run_mu);
    pthread_mutex_destroy(&a->mu);
    free(a->token);
    free(a->cert);
    free(a->key);
    free(a->ca);
    free(a->server_name);
    free(a);
}
