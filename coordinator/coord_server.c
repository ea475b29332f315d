/*
 * The coordinator (`evo coordinator`).
 *
 * Channels:
 *   control  REP on every --listen URL (and --coap-listen): clients and node
 *            registrations; one thread per listener.
 *   data     PULL on an ephemeral port next to the first listener (and one
 *            next to the CoAP listener): node heartbeats, stage outputs
 *            coming back or to be relayed, node errors. Its thread never
 *            blocks on anything but a send to a node, so heartbeats are
 *            seen even while a control thread waits for a long request.
 *   upkeep   a thread that marks nodes lost after missed heartbeats,
 *            re-plans models that used them, and gives a restarted node its
 *            stages back.
 *
 * Locks: `mu` guards the registry, models and waiters; `deploy_mu`
 * serializes placement and deployment (network I/O happens under it, never
 * under `mu`); `push_mu` guards the cache of PUSH channels to nodes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord_internal.h"
#include "coord_registry.h"
#include "evo/db.h"

#define COORD_MAX_DEVS 64
#define COORD_MAX_MODELS 32
#define COORD_MAX_HELD 64
#define COORD_NONCES 256
#define COORD_NONCE_TTL_NS (60ull * 1000000000ull)
#define COORD_POLL_MS 200
#define COORD_MAX_PUSH 64
#define COORD_MAX_ATTEMPTS 3
#define COORD_MAX_PEERS 16 /* peers a node is asked to probe, and links kept per node */

/* A node to node link the node measured and reported. */
typedef struct coord_plink {
    char peer[EVO_WIRE_STR_MAX];
    double rtt_us, mbps;
} coord_plink;

typedef struct coord_dev {
    char name[EVO_WIRE_STR_MAX];
    char klass[EVO_WIRE_STR_MAX];
    char control_url[EVO_WIRE_STR_MAX];
    char data_url[EVO_WIRE_STR_MAX];
    bool coap;
    uint64_t memory;
    double gflops;
    double rtt_us, mbps;
    double mem_gbps; /* from the node's calibration; 0 = unknown */
    bool alive;
    uint64_t last_hb_ns;
    uint8_t session[COORD_SESSION_SIZE];
    char session_id[33];
    uint64_t hb_seq, assign_seq;
    uint64_t free_bytes, runs;
    int32_t stages_held;
    char held[COORD_MAX_HELD][65]; /* digests the node acknowledged */
    size_t n_held;
    bool give_back; /* re-registered: its stages must be sent again */
    uint64_t registrations;
    coord_plink plinks[COORD_MAX_PEERS]; /* links to peers it measured */
    size_t n_plinks;
} coord_dev;

typedef struct coord_dstage {
    coord_stage_def def;
    char digest[65];
    uint8_t digest_bin[EVO_WIRE_DIGEST_SIZE];
    void *blob; /* the stage's .evm */
    size_t blob_len;
    uint64_t need_bytes; /* what the node holds: .evm + loader work buffer + arena */
    char **pass;         /* tensors this stage forwards untouched */
    int32_t n_pass;
    char dev[EVO_WIRE_STR_MAX];
    uint64_t sent_bytes; /* blob bytes sent in the last deployment */
    bool relay_in;       /* its input arrives through the coordinator */
} coord_dstage;

typedef struct coord_model {
    char name[EVO_WIRE_STR_MAX];
    int64_t model_id;
    void *onnx;
    size_t onnx_len;
    evo_graph *g;
    bool deployed, degraded;
    double plan_latency_ms, plan_period_ms; /* the partitioner's predictions */
    char plan_kind[64];
    char mode[16], objective[16];
    coord_dstage *st;
    int32_t n_st;
    uint64_t gen; /* bumped at every (re)deployment */
    uint64_t replans;
    uint64_t requests;
} coord_model;

typedef struct coord_waiter {
    uint64_t id;
    int state; /* 0 pending, 1 result, 2 error */
    evo_msg msg;
    evo_error err;
    uint64_t t_done_wall;
    struct coord_waiter *next;
} coord_waiter;

typedef struct coord_nonce {
    uint8_t n[COORD_NONCE_SIZE];
    uint64_t t;
    bool live;
} coord_nonce;

typedef struct coord_push {
    char url[EVO_WIRE_STR_MAX];
    evo_tp *tp;
} coord_push;

typedef struct coord_listener {
    struct evo_coord *c;
    evo_tp *tp;
    bool coap;
    pthread_t t;
    bool started;
} coord_listener;

struct evo_coord {
    evo_coord_options opt;
    char *token;
    evo_coord_security sec;
    bool tls, open_mode;
    evo_db *db;
    sqlite3 *reg;
    coord_listener ctl[EVO_COORD_MAX_LISTEN + 1];
    size_t n_ctl;
    coord_listener data[2]; /* nng, coap */
    size_t n_data;
    char data_url[EVO_WIRE_STR_MAX];
    char coap_data_url[EVO_WIRE_STR_MAX];
    pthread_t t_upkeep;
    bool started_upkeep;

    pthread_mutex_t mu, deploy_mu, push_mu, db_mu;
    pthread_cond_t cond;
    coord_dev devs[COORD_MAX_DEVS];
    size_t n_devs;
    coord_model *models[COORD_MAX_MODELS];
    size_t n_models;
    coord_waiter *waiters;
    coord_nonce nonces[COORD_NONCES];
    size_t nonce_next;
    uint64_t next_request;
    coord_push push[COORD_MAX_PUSH];
    size_t n_push;
    volatile bool stop;
};

static bool coord_timed_out(const evo_error *e)
{
    return e->code == EVO_ERR_IO && strstr(e->msg, "timed out") != NULL;
}

static coord_dev *coord_dev_find(evo_coord *c, const char *name)
{
    for (size_t i = 0; i < c->n_devs; i++)
        if (strcmp(c->devs[i].name, name) == 0)
            return &c->devs[i];
    return NULL;
}

static coord_model *coord_model_find(evo_coord *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i]->name, name) == 0)
            return c->models[i];
    return NULL;
}

static void coord_dstages_free(coord_dstage *st, int32_t n)
{
    for (int32_t k = 0; st && k < n; k++) {
        free(st[k].blob);
        for (int32_t i = 0; i < st[k].n_pass; i++)
            free(st[k].pass[i]);
        free(st[k].pass);
    }
    free(st);
}

static void coord_model_free(coord_model *m)
{
    if (m == NULL)
        return;
    coord_dstages_free(m->st, m->n_st);
    evo_graph_free(m->g);
    free(m->onnx);
    free(m);
}

/* ---------------------------------------------------------------- replies */

static void coord_send_reply(coord_listener *l, const evo_msg *m)
{
    evo_error e;
    if (evo_tp_send(l->tp, m, &e) != EVO_OK)
        EVO_LOGW("coordinator: cannot answer a request: %s", e.msg);
}

static void coord_reply_error(coord_listener *l, const evo_error *e)
{
    evo_msg r;
    evo_msg_set_error(&r, 0, e);
    coord_send_reply(l, &r);
}

/* A RESULT whose JSON document is j (consumed); extra tensors borrowed. */
static void coord_reply_json(coord_listener *l, cJSON *j, const evo_wire_tensor *extra,
                             uint32_t n_extra, const evo_stage_timing *tim, uint32_t n_tim)
{
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    coord_env env;
    evo_error e;
    evo_status rv = text ? coord_env_init(&env, EVO_MSG_RESULT, NULL, text, &e)
                         : evo_error_set(&e, EVO_ERR_NOMEM, "out of memory answering");
    for (uint32_t i = 0; rv == EVO_OK && i < n_extra; i++)
        rv = coord_env_add(&env, &extra[i], &e);
    if (rv == EVO_OK) {
        env.m.timings = (evo_stage_timing *)tim;
        env.m.n_timings = n_tim;
        coord_send_reply(l, &env.m);
    } else {
        coord_reply_error(l, &e);
    }
    coord_env_clear(&env);
}

/* ---------------------------------------------------------------- pushing to nodes */

static evo_status coord_push_msg(evo_coord *c, const char *url, const evo_msg *m, evo_error *err)
{
    pthread_mutex_lock(&c->push_mu);
    coord_push *p = NULL;
    for (size_t i = 0; i < c->n_push; i++)
        if (strcmp(c->push[i].url, url) == 0)
            p = &c->push[i];
    evo_status rv = EVO_OK;
    if (p == NULL) {
        if (c->n_push == COORD_MAX_PUSH) {
            evo_tp_close(c->push[0].tp);
            memmove(&c->push[0], &c->push[1], (COORD_MAX_PUSH - 1) * sizeof c->push[0]);
            c->n_push--;
        }
        p = &c->push[c->n_push];
        evo_tp_options o;
        coord_tp_options(&o, &c->sec, 2000);
        if ((rv = evo_tp_open(&p->tp, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, err)) == EVO_OK) {
            snprintf(p->url, sizeof p->url, "%s", url);
            c->n_push++;
        }
    }
    if (rv == EVO_OK && (rv = evo_tp_send(p->tp, m, err)) != EVO_OK) {
        evo_tp_close(p->tp);
        size_t i = (size_t)(p - c->push);
        memmove(&c->push[i], &c->push[i + 1], (c->n_push - i - 1) * sizeof c->push[0]);
        c->n_push--;
    }
    pthread_mutex_unlock(&c->push_mu);
    return rv;
}

/* One REQ round trip to a node's control channel. */
static evo_status coord_node_call(evo_coord *c, const char *url, const evo_msg *m,
                                  int32_t timeout_ms, evo_msg *reply, evo_error *err)
{
    evo_tp_options o;
    coord_tp_options(&o, &c->sec, timeout_ms);
    evo_tp *tp = NULL;
    evo_status rv = evo_tp_open(&tp, url, EVO_TP_REQ, EVO_TP_DIAL, &o, err);
    if (rv == EVO_OK)
        rv = evo_tp_send(tp, m, err);
    if (rv == EVO_OK)
        rv = evo_tp_recv(tp, reply, err);
    evo_tp_close(tp);
    if (rv == EVO_OK && reply->type == EVO_MSG_ERROR) {
        rv = evo_error_set(err, (evo_status)reply->u.error.status, "%s", reply->u.error.message);
        evo_msg_release(reply);
    }
    return rv;
}

/* Is the node answering on its control channel? */
static bool coord_ping(evo_coord *c, const char *url)
{
    evo_msg m, r;
    evo_msg_init(&m, EVO_MSG_HEARTBEAT);
    snprintf(m.u.heartbeat.name, sizeof m.u.heartbeat.name, "coordinator");
    evo_error e;
    if (coord_node_call(c, url, &m, 1000, &r, &e) != EVO_OK)
        return false;
    evo_msg_release(&r);
    return true;
}

/* ---------------------------------------------------------------- deployment */

static void coord_mark_lost_locked(evo_coord *c, coord_dev *d, const char *why)
{
    if (!d->alive)
        return;
    d->alive = false;
    EVO_LOGW("coordinator: node %s lost (%s)", d->name, why);
    for (size_t i = 0; i < c->n_models; i++) {
        coord_model *m = c->models[i];
        for (int32_t k = 0; m->deployed && k < m->n_st; k++)
            if (strcmp(m->st[k].dev, d->name) == 0)
                m->degraded = true;
    }
    pthread_mutex_lock(&c->db_mu);
    coord_reg_state(c->reg, d->name, "lost", NULL);
    pthread_mutex_unlock(&c->db_mu);
    pthread_cond_broadcast(&c->cond);
}

/* Send a node its assignment (every stage of every deployed model placed on
 * it) and the blobs it does not hold. Called under deploy_mu. */
static evo_status coord_sync_node(evo_coord *c, const char *name, evo_error *err)
{
    pthread_mutex_lock(&c->mu);
    coord_dev *d = coord_dev_find(c, name);
    if (d == NULL || !d->alive) {
        pthread_mutex_unlock(&c->mu);
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "node %s is not alive", name);
    }
    char url[EVO_WIRE_STR_MAX];
    uint8_t session[COORD_SESSION_SIZE];
    snprintf(url, sizeof url, "%s", d->control_url);
    memcpy(session, d->session, sizeof session);
    uint64_t seq = ++d->assign_seq;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seq", (double)seq);
    cJSON *list = cJSON_AddArrayToObject(j, "stages");
    /* The stages to send: pointers stay valid under deploy_mu (models change
     * only under it). */
    coord_dstage *todo[COORD_MAX_HELD];
    char todo_model[COORD_MAX_HELD][EVO_WIRE_STR_MAX];
    uint32_t todo_stage[COORD_MAX_HELD];
    size_t n_todo = 0;
    for (size_t i = 0; i < c->n_models; i++) {
        coord_model *m = c->models[i];
        for (int32_t k = 0; m->st && k < m->n_st; k++) {
            if (strcmp(m->st[k].dev, name) != 0 || n_todo == COORD_MAX_HELD)
                continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "digest", m->st[k].digest);
            cJSON_AddNumberToObject(o, "size", (double)m->st[k].blob_len);
            cJSON_AddItemToArray(list, o);
            todo[n_todo] = &m->st[k];
            snprintf(todo_model[n_todo], EVO_WIRE_STR_MAX, "%s", m->name);
            todo_stage[n_todo] = (uint32_t)k;
            n_todo++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    coord_env env;
    evo_msg reply;
    evo_status rv = coord_env_init(&env, EVO_MSG_RUN, "assign", text, err);
    if (rv == EVO_OK)
        rv = coord_env_sign(&env, session, sizeof session, NULL, 0, err);
    if (rv == EVO_OK && (rv = coord_node_call(c, url, &env.m, 5000, &reply, err)) == EVO_OK)
        evo_msg_release(&reply);
    coord_env_clear(&env);
    if (rv != EVO_OK) {
        evo_error_prefix(err, "assigning stages to node %s", name);
        return rv;
    }
    /* Content addressing: offer each digest without the blob first; the node
     * answers NOT_FOUND when it must be sent. */
    for (size_t i = 0; i < n_todo && rv == EVO_OK; i++) {
        coord_dstage *s = todo[i];
        evo_msg m;
        evo_msg_init(&m, EVO_MSG_DEPLOY);
        snprintf(m.u.deploy.model, sizeof m.u.deploy.model, "%s", todo_model[i]);
        memcpy(m.u.deploy.digest, s->digest_bin, sizeof s->digest_bin);
        m.u.deploy.blob_size = s->blob_len;
        m.u.deploy.stage = todo_stage[i];
        evo_error e;
        s->sent_bytes = 0;
        rv = coord_node_call(c, url, &m, 30000, &reply, &e);
        if (rv == EVO_ERR_NOT_FOUND) {
            m.u.deploy.blob = s->blob;
            m.u.deploy.blob_len = s->blob_len;
            rv = coord_node_call(c, url, &m, 60000, &reply, &e);
            if (rv == EVO_OK)
                s->sent_bytes = s->blob_len;
        }
        if (rv == EVO_OK) {
            evo_msg_release(&reply);
            EVO_LOGI("coordinator: node %s holds stage %u of %s (%s)", name, todo_stage[i],
                     todo_model[i], s->sent_bytes ? "sent" : "already there");
        } else {
            *err = e;
        }
    }
    pthread_mutex_lock(&c->mu);
    if ((d = coord_dev_find(c, name)) != NULL) {
        d->n_held = 0;
        for (size_t i = 0; i < n_todo && rv == EVO_OK; i++)
            snprintf(d->held[d->n_held++], 65, "%s", todo[i]->digest);
        if (rv == EVO_OK)
            d->give_back = false;
    }
    pthread_mutex_unlock(&c->mu);
    return rv;
}

static cJSON *coord_plan_json(const coord_model *m, const evo_coord *c);

/* Place the model on the live devices and deploy it. Called under deploy_mu. */
static evo_status coord_deploy(evo_coord *c, coord_model *m, const char *mode,
                               const char *objective, evo_error *err)
{
    coord_plan_dev pd[COORD_MAX_DEVS];
    char names[COORD_MAX_DEVS][EVO_WIRE_STR_MAX], classes[COORD_MAX_DEVS][EVO_WIRE_STR_MAX];
    /* Copies of the measured peer links (the registry may change once mu is
     * released); their names point into plinks. */
    coord_plink *plinks = calloc((size_t)COORD_MAX_DEVS * COORD_MAX_PEERS, sizeof *plinks);
    coord_peer_link *peers = calloc((size_t)COORD_MAX_DEVS * COORD_MAX_PEERS, sizeof *peers);
    if (plinks == NULL || peers == NULL) {
        free(plinks);
        free(peers);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory placing %s", m->name);
    }
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_devs; i++) {
        coord_dev *d = &c->devs[i];
        if (!d->alive)
            continue;
        /* Free memory: the budget minus stages of *other* models placed there. */
        uint64_t used = 0;
        for (size_t k = 0; k < c->n_models; k++) {
            coord_model *o = c->models[k];
            for (int32_t s = 0; o != m && o->st && s < o->n_st; s++)
                if (strcmp(o->st[s].dev, d->name) == 0)
                    used += o->st[s].need_bytes;
        }
        snprintf(names[n], EVO_WIRE_STR_MAX, "%s", d->name);
        snprintf(classes[n], EVO_WIRE_STR_MAX, "%s", d->klass);
        pd[n] = (coord_plan_dev){.name = names[n],
                                 .device_class = classes[n],
                                 .free_bytes = d->memory > used ? d->memory - used : 0,
                                 .gflops = d->gflops,
                                 .mem_gbps = d->mem_gbps,
                                 .rtt_ms = d->rtt_us / 1000.0,
                                 .mbps = d->mbps,
                                 .relayed = d->coap,
                                 .peers = &peers[n * COORD_MAX_PEERS],
                                 .n_peers = d->n_plinks};
        for (size_t k = 0; k < d->n_plinks; k++) {
            coord_plink *cp = &plinks[n * COORD_MAX_PEERS + k];
            *cp = d->plinks[k];
            peers[n * COORD_MAX_PEERS + k] = (coord_peer_link){
                .peer = cp->peer, .rtt_ms = cp->rtt_us / 1000.0, .mbps = cp->mbps};
        }
        n++;
    }
    pthread_mutex_unlock(&c->mu);
    coord_placement pl;
    coord_stage_blob *blobs = NULL;
    evo_status rv = coord_place(m->g, pd, n, mode, objective, &pl, &blobs, err);
    free(peers);
    free(plinks);
    if (rv != EVO_OK) {
        evo_error_prefix(err, "placing %s", m->name);
        return rv;
    }
    int32_t n_st = pl.n_stages;
    coord_dstage *st = calloc((size_t)n_st, sizeof *st);
    if (st == NULL) {
        coord_stage_blobs_free(blobs, n_st);
        coord_placement_free(&pl);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory deploying %s", m->name);
    }
    int32_t pos = 0;
    for (int32_t k = 0; k < n_st && rv == EVO_OK; k++) {
        const evo_split_stage *ss = &pl.split.stages[k];
        st[k].def = (coord_stage_def){.first = pos,
                                      .last = pos + blobs[k].n_ops,
                                      .flops = pl.flops[k],
                                      .weights_bytes = blobs[k].weights_bytes,
                                      .arena_bytes = blobs[k].arena_bytes,
                                      .in_bytes = blobs[k].in_bytes,
                                      .out_bytes = blobs[k].out_bytes,
                                      .n_inputs = ss->n_inputs,
                                      .n_outputs = ss->n_outputs,
                                      .compute_ms = pl.compute_ms[k]};
        pos += blobs[k].n_ops;
        snprintf(st[k].dev, sizeof st[k].dev, "%s", names[pl.dev_of[k]]);
        /* The stage is its .evm; the blob is taken over from blobs[k]. */
        st[k].blob = blobs[k].evm;
        st[k].blob_len = blobs[k].evm_len;
        st[k].need_bytes = blobs[k].need_bytes;
        st[k].pass = blobs[k].pass;
        st[k].n_pass = blobs[k].n_pass;
        blobs[k].evm = NULL;
        blobs[k].pass = NULL;
        blobs[k].n_pass = 0;
        evo_sha256(st[k].blob, st[k].blob_len, st[k].digest_bin);
        coord_hex(st[k].digest_bin, sizeof st[k].digest_bin, st[k].digest);
        char label[32], hex[65];
        snprintf(label, sizeof label, "%d/%d", (int)k, (int)n_st);
        pthread_mutex_lock(&c->db_mu);
        rv = evo_db_artifact_put(c->db, "stage", m->model_id, label, st[k].blob, st[k].blob_len,
                                 hex, err);
        pthread_mutex_unlock(&c->db_mu);
    }
    coord_stage_blobs_free(blobs, n_st);
    double lat_ms = pl.latency_ms, period_ms = pl.period_ms;
    char kind[64];
    snprintf(kind, sizeof kind, "%s (%s)", pl.kind, pl.method);
    coord_placement_free(&pl);
    if (rv != EVO_OK) {
        coord_dstages_free(st, n_st);
        return rv;
    }
    /* Swap the new placement in, then bring every node involved (old and
     * new) up to date: nodes drop stages they no longer hold. */
    char involved[2 * COORD_MAX_DEVS][EVO_WIRE_STR_MAX];
    size_t n_inv = 0;
    pthread_mutex_lock(&c->mu);
    coord_dstage *old = m->st;
    int32_t old_n = m->n_st;
    for (int32_t k = 0; k < old_n; k++)
        snprintf(involved[n_inv++], EVO_WIRE_STR_MAX, "%s", old[k].dev);
    for (int32_t k = 0; k < n_st; k++) {
        snprintf(involved[n_inv++], EVO_WIRE_STR_MAX, "%s", st[k].dev);
        coord_dev *d = coord_dev_find(c, st[k].dev);
        coord_dev *prev = k > 0 ? coord_dev_find(c, st[k - 1].dev) : NULL;
        st[k].relay_in = k > 0 && ((d && d->coap) || (prev && prev->coap));
    }
    m->st = st;
    m->n_st = n_st;
    m->plan_latency_ms = lat_ms;
    m->plan_period_ms = period_ms;
    snprintf(m->plan_kind, sizeof m->plan_kind, "%s", kind);
    m->deployed = false;
    snprintf(m->mode, sizeof m->mode, "%s", mode ? mode : "auto");
    snprintf(m->objective, sizeof m->objective, "%s", objective ? objective : "latency");
    pthread_mutex_unlock(&c->mu);
    coord_dstages_free(old, old_n);
    for (size_t i = 0; i < n_inv && rv == EVO_OK; i++) {
        bool dup = false;
        for (size_t k = 0; k < i; k++)
            dup |= strcmp(involved[k], involved[i]) == 0;
        if (dup)
            continue;
        pthread_mutex_lock(&c->mu);
        coord_dev *d = coord_dev_find(c, involved[i]);
        bool alive = d && d->alive;
        bool is_new = false;
        for (int32_t k = 0; k < n_st; k++)
            is_new |= strcmp(st[k].dev, involved[i]) == 0;
        pthread_mutex_unlock(&c->mu);
        if (!alive)
            continue;
        evo_error e;
        evo_status r2 = coord_sync_node(c, involved[i], &e);
        if (r2 != EVO_OK && is_new) {
            rv = r2;
            *err = e;
        } else if (r2 != EVO_OK) {
            EVO_LOGW("coordinator: %s", e.msg);
        }
    }
    pthread_mutex_lock(&c->mu);
    m->deployed = rv == EVO_OK;
    m->degraded = false;
    m->gen++;
    cJSON *plan = coord_plan_json(m, c);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_broadcast(&c->cond);
    char *text = cJSON_PrintUnformatted(plan);
    cJSON_Delete(plan);
    if (text != NULL && rv == EVO_OK) {
        pthread_mutex_lock(&c->db_mu);
        evo_error e;
        if (evo_db_plan_put(c->db, m->model_id, "current", text, &e) != EVO_OK)
            EVO_LOGW("coordinator: cannot store the plan of %s: %s", m->name, e.msg);
        pthread_mutex_unlock(&c->db_mu);
    }
    free(text);
    if (rv == EVO_OK)
        EVO_LOGI("coordinator: %s deployed in %d stage(s)", m->name, (int)n_st);
    return rv;
}

static cJSON *coord_plan_json(const coord_model *m, const evo_coord *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", m->name);
    cJSON_AddStringToObject(j, "mode", m->mode);
    cJSON_AddStringToObject(j, "objective", m->objective);
    cJSON_AddStringToObject(j, "partitioner", m->plan_kind);
    cJSON_AddNumberToObject(j, "predicted_latency_ms", m->plan_latency_ms);
    cJSON_AddNumberToObject(j, "predicted_period_ms", m->plan_period_ms);
    cJSON_AddStringToObject(j, "stage_format", "evm");
    cJSON_AddBoolToObject(j, "deployed", m->deployed);
    cJSON_AddNumberToObject(j, "generation", (double)m->gen);
    cJSON *a = cJSON_AddArrayToObject(j, "stages");
    for (int32_t k = 0; k < m->n_st; k++) {
        const coord_dstage *s = &m->st[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "stage", k);
        cJSON_AddStringToObject(o, "device", s->dev);
        for (size_t i = 0; i < c->n_devs; i++)
            if (strcmp(c->devs[i].name, s->dev) == 0) {
                cJSON_AddStringToObject(o, "class", c->devs[i].klass);
                cJSON_AddNumberToObject(o, "device_memory", (double)c->devs[i].memory);
                cJSON_AddNumberToObject(o, "predicted_ms", s->def.compute_ms);
            }
        cJSON_AddNumberToObject(o, "first", s->def.first);
        cJSON_AddNumberToObject(o, "last", s->def.last);
        cJSON_AddNumberToObject(o, "flops", (double)s->def.flops);
        cJSON_AddNumberToObject(o, "weights_bytes", (double)s->def.weights_bytes);
        cJSON_AddNumberToObject(o, "arena_bytes", (double)s->def.arena_bytes);
        cJSON_AddNumberToObject(o, "in_bytes", (double)s->def.in_bytes);
        cJSON_AddNumberToObject(o, "out_bytes", (double)s->def.out_bytes);
        cJSON_AddNumberToObject(o, "n_inputs", s->def.n_inputs);
        cJSON_AddNumberToObject(o, "n_outputs", s->def.n_outputs);
        cJSON_AddStringToObject(o, "digest", s->digest);
        cJSON_AddNumberToObject(o, "blob_bytes", (double)s->blob_len);
        cJSON_AddNumberToObject(o, "need_bytes", (double)s->need_bytes);
        cJSON_AddNumberToObject(o, "sent_bytes", (double)s->sent_bytes);
        cJSON_AddStringToObject(o, "input_path",
                                k == 0        ? "from coordinator"
                                : s->relay_in ? "relayed by coordinator"
                                              : "direct");
        cJSON_AddItemToArray(a, o);
    }
    return j;
}

/* ---------------------------------------------------------------- control requests */

static void coord_on_challenge(evo_coord *c, coord_listener *l)
{
    evo_error e;
    pthread_mutex_lock(&c->mu);
    coord_nonce *n = &c->nonces[c->nonce_next++ % COORD_NONCES];
    evo_status rv = coord_random(n->n, sizeof n->n, &e);
    n->t = coord_mono_ns();
    n->live = rv == EVO_OK;
    char hex[2 * COORD_NONCE_SIZE + 1];
    coord_hex(n->n, sizeof n->n, hex);
    pthread_mutex_unlock(&c->mu);
    if (rv != EVO_OK) {
        coord_reply_error(l, &e);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "nonce", hex);
    cJSON_AddStringToObject(j, "mode", c->token ? "token" : c->tls ? "tls" : "open");
    coord_reply_json(l, j, NULL, 0, NULL, 0);
}

/* Check a request: a live challenge answered with the token's HMAC (token
 * mode), nothing more with mutual TLS (the handshake did it) or open mode.
 * The nonce is used up either way. */
static evo_status coord_authenticate(evo_coord *c, const evo_msg *m, const cJSON *j,
                                     uint8_t nonce_out[COORD_NONCE_SIZE], evo_error *err)
{
    uint8_t nonce[COORD_NONCE_SIZE];
    bool have = coord_unhex(coord_json_str(j, "nonce", ""), nonce, sizeof nonce);
    bool fresh = false;
    pthread_mutex_lock(&c->mu);
    uint64_t now = coord_mono_ns();
    for (size_t i = 0; have && i < COORD_NONCES; i++) {
        coord_nonce *n = &c->nonces[i];
        if (n->live && memcmp(n->n, nonce, sizeof nonce) == 0) {
            fresh = now - n->t < COORD_NONCE_TTL_NS;
            n->live = false;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (nonce_out != NULL && have)
        memcpy(nonce_out, nonce, sizeof nonce);
    if (c->token == NULL)
        return EVO_OK;
    if (!fresh)
        return evo_error_set(err, EVO_ERR_MISMATCH,
                             "refused: the request does not answer a fresh challenge");
    evo_status rv =
        coord_msg_verify(m, (const uint8_t *)c->token, strlen(c->token), nonce, sizeof nonce, err);
    if (rv != EVO_OK)
        evo_error_prefix(err, "refused");
    return rv;
}

static void coord_on_register(evo_coord *c, coord_listener *l, const cJSON *j,
                              const uint8_t nonce[COORD_NONCE_SIZE])
{
    evo_error e;
    const char *name = coord_json_str(j, "name", "");
    const char *ctl = coord_json_str(j, "control_url", "");
    const char *data = coord_json_str(j, "data_url", "");
    const char *transport = coord_json_str(j, "transport", "nng");
    if (name[0] == '\0' || strlen(name) >= EVO_WIRE_STR_MAX || ctl[0] == '\0' || data[0] == '\0' ||
        strlen(ctl) >= EVO_WIRE_STR_MAX || strlen(data) >= EVO_WIRE_STR_MAX) {
        evo_error_set(&e, EVO_ERR_INVALID_ARG,
                      "a registration needs a name and control and data URLs");
        coord_reply_error(l, &e);
        return;
    }
    uint8_t sid[16];
    if (coord_random(sid, sizeof sid, &e) != EVO_OK) {
        coord_reply_error(l, &e);
        return;
    }
    pthread_mutex_lock(&c->mu);
    coord_dev *d = coord_dev_find(c, name);
    if (d == NULL) {
        if (c->n_devs == COORD_MAX_DEVS) {
            pthread_mutex_unlock(&c->mu);
            evo_error_set(&e, EVO_ERR_LIMIT, "the registry is full (%d devices)", COORD_MAX_DEVS);
            coord_reply_error(l, &e);
            return;
        }
        d = &c->devs[c->n_devs++];
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "%s", name);
    }
    /* A node that registers again lost its state: it holds nothing, and the
     * stages placed on it are sent again. */
    bool had_stages = false;
    for (size_t i = 0; i < c->n_models; i++)
        for (int32_t k = 0; c->models[i]->st && k < c->models[i]->n_st; k++)
            had_stages |= strcmp(c->models[i]->st[k].dev, name) == 0;
    snprintf(d->klass, sizeof d->klass, "%s", coord_json_str(j, "class", "edge"));
    snprintf(d->control_url, sizeof d->control_url, "%s", ctl);
    snprintf(d->data_url, sizeof d->data_url, "%s", data);
    d->coap = strcmp(transport, "coap") == 0;
    d->memory = (uint64_t)coord_json_num(j, "memory", 0);
    d->gflops = coord_json_num(j, "gflops", 1);
    d->mem_gbps = coord_json_num(cJSON_GetObjectItem(j, "calibration"), "mem_gbps", 0);
    const cJSON *links = cJSON_GetObjectItem(j, "links");
    const cJSON *l0 = cJSON_GetArrayItem(links, 0);
    d->rtt_us = coord_json_num(l0, "rtt_us", 0);
    d->mbps = coord_json_num(l0, "mbps", 0);
    d->alive = true;
    d->last_hb_ns = coord_mono_ns();
    d->hb_seq = 0;
    d->assign_seq = 0;
    d->n_held = 0;
    d->registrations++;
    d->give_back = had_stages;
    coord_hex(sid, sizeof sid, d->session_id);
    char nonce_hex[2 * COORD_NONCE_SIZE + 1];
    coord_hex(nonce, COORD_NONCE_SIZE, nonce_hex);
    char key_hex[2 * COORD_SESSION_SIZE + 1] = "";
    if (c->token != NULL) {
        char what[160];
        snprintf(what, sizeof what, "evo-session:%s:%s", d->session_id, nonce_hex);
        coord_hmac_str((const uint8_t *)c->token, strlen(c->token), what, d->session);
    } else {
        coord_random(d->session, sizeof d->session, NULL);
        coord_hex(d->session, sizeof d->session, key_hex);
    }
    /* Node to node links: this node measures its links to the live nng nodes
     * registered before it (each pair is measured once, by the newer node),
     * so links measured to or by its previous incarnation are dropped. Each
     * peer takes the probe only with a ticket made with its session key. */
    d->n_plinks = 0;
    for (size_t i = 0; i < c->n_devs; i++) {
        coord_dev *o = &c->devs[i];
        for (size_t k = 0; k < o->n_plinks;)
            if (strcmp(o->plinks[k].peer, d->name) == 0)
                o->plinks[k] = o->plinks[--o->n_plinks];
            else
                k++;
    }
    cJSON *peers = cJSON_CreateArray();
    for (size_t i = 0; i < c->n_devs && !d->coap && cJSON_GetArraySize(peers) < COORD_MAX_PEERS;
         i++) {
        coord_dev *o = &c->devs[i];
        if (o == d || !o->alive || o->coap || o->control_url[0] == '\0')
            continue;
        char what[2 * EVO_WIRE_STR_MAX + 16];
        snprintf(what, sizeof what, "probe:%s:%s", d->name, o->name);
        uint8_t mac[COORD_MAC_SIZE];
        coord_hmac_str(o->session, sizeof o->session, what, mac);
        char mac_hex[2 * COORD_MAC_SIZE + 1];
        coord_hex(mac, sizeof mac, mac_hex);
        cJSON *pe = cJSON_CreateObject();
        cJSON_AddStringToObject(pe, "name", o->name);
        cJSON_AddStringToObject(pe, "url", o->control_url);
        cJSON_AddStringToObject(pe, "ticket", mac_hex);
        cJSON_AddItemToArray(peers, pe);
    }
    char session_id[33];
    snprintf(session_id, sizeof session_id, "%s", d->session_id);
    bool coap = d->coap;
    uint64_t regs = d->registrations;
    pthread_mutex_unlock(&c->mu);

    cJSON *info = cJSON_CreateObject();
    cJSON_AddItemToObject(info, "calibration",
                          cJSON_Duplicate(cJSON_GetObjectItem(j, "calibration"), 1));
    cJSON_AddItemToObject(info, "links", cJSON_Duplicate(links, 1));
    char *info_text = cJSON_PrintUnformatted(info);
    cJSON_Delete(info);
    coord_reg_row row = {.name = name,
                         .device_class = coord_json_str(j, "class", "edge"),
                         .transport = transport,
                         .control_url = ctl,
                         .data_url = data,
                         .memory = (uint64_t)coord_json_num(j, "memory", 0),
                         .gflops = coord_json_num(j, "gflops", 1),
                         .info = info_text};
    pthread_mutex_lock(&c->db_mu);
    if (coord_reg_put(c->reg, &row, &e) != EVO_OK)
        EVO_LOGW("coordinator: %s", e.msg);
    pthread_mutex_unlock(&c->db_mu);
    free(info_text);
    char mb[32];
    EVO_LOGI("coordinator: node %s %sregistered (%s, %s, %.1f GFLOP/s)", name,
             regs > 1 ? "re-" : "", coord_json_str(j, "class", "edge"),
             coord_fmt_bytes(row.memory, mb), row.gflops);

    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "session_id", session_id);
    if (key_hex[0])
        cJSON_AddStringToObject(r, "session_key", key_hex);
    cJSON_AddStringToObject(r, "data_url", coap ? c->coap_data_url : c->data_url);
    cJSON_AddNumberToObject(r, "heartbeat_ms", c->opt.heartbeat_ms > 0 ? c->opt.heartbeat_ms : 500);
    cJSON_AddItemToObject(r, "peers", peers);
    coord_reply_json(l, r, NULL, 0, NULL, 0);
    pthread_cond_broadcast(&c->cond);
}

static cJSON *coord_devices_json(evo_coord *c)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&c->db_mu);
    coord_reg_list(c->reg, a, NULL);
    pthread_mutex_unlock(&c->db_mu);
    pthread_mutex_lock(&c->mu);
    uint64_t now = coord_mono_ns();
    cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        coord_dev *d = coord_dev_find(c, coord_json_str(it, "name", ""));
        const char *state = "offline"; /* known from an earlier run, not registered now */
        if (d != NULL) {
            state = d->alive ? "alive" : "lost";
            cJSON_AddNumberToObject(it, "last_heartbeat_ms", (double)(now - d->last_hb_ns) / 1e6);
            cJSON_AddNumberToObject(it, "free_bytes", (double)d->free_bytes);
            cJSON_AddNumberToObject(it, "stages", d->stages_held);
            cJSON_AddNumberToObject(it, "runs", (double)d->runs);
            cJSON_AddNumberToObject(it, "rtt_us", d->rtt_us);
            cJSON_AddNumberToObject(it, "mbps", d->mbps);
            cJSON_AddStringToObject(it, "data_url", d->data_url);
            cJSON *pl = cJSON_AddArrayToObject(it, "peer_links");
            for (size_t k = 0; k < d->n_plinks; k++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "peer", d->plinks[k].peer);
                cJSON_AddNumberToObject(o, "rtt_us", d->plinks[k].rtt_us);
                cJSON_AddNumberToObject(o, "mbps", d->plinks[k].mbps);
                cJSON_AddItemToArray(pl, o);
            }
        }
        cJSON_AddStringToObject(it, "state", state);
    }
    pthread_mutex_unlock(&c->mu);
    return a;
}

static evo_status coord_load_model(evo_coord *c, const char *name, coord_model **out,
                                   evo_error *err);

static void coord_on_model_add(evo_coord *c, coord_listener *l, const evo_msg *m, const cJSON *j)
{
    evo_error e;
    const evo_wire_tensor *wt = coord_find_tensor(m, COORD_T_BLOB);
    const void *bytes;
    size_t len;
    if (wt == NULL || coord_tensor_bytes(wt, &bytes, &len, &e) != EVO_OK) {
        evo_error_set(&e, EVO_ERR_INVALID_ARG, "model add: the request carries no model file");
        coord_reply_error(l, &e);
        return;
    }
    const char *name = coord_json_str(j, "name", NULL);
    const char *file = coord_json_str(j, "file", "model.onnx");
    /* evo_db_model_add reads a file: stage the bytes in a private temporary. */
    char tmp[] = "/tmp/evo-coord-model-XXXXXX";
    int fd = mkstemp(tmp);
    bool ok = fd >= 0;
    size_t off = 0;
    while (ok && off < len) {
        ssize_t w = write(fd, (const char *)bytes + off, len - off);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    if (fd >= 0)
        close(fd);
    if (!ok) {
        unlink(tmp);
        evo_error_set(&e, EVO_ERR_IO, "model add: cannot stage the file for import");
        coord_reply_error(l, &e);
        return;
    }
    char derived[EVO_WIRE_STR_MAX];
    if (name == NULL) {
        /* The file name without .onnx, or the directory of ".../NAME/model.onnx". */
        snprintf(derived, sizeof derived, "%s", file);
        char *dot = strstr(derived, ".onnx");
        if (dot)
            *dot = '\0';
        name = derived;
    }
    evo_db_model dm;
    memset(&dm, 0, sizeof dm);
    bool existed = false;
    char hex[65];
    pthread_mutex_lock(&c->db_mu);
    evo_status rv = evo_db_model_add(c->db, tmp, name, NULL, &dm, &existed, &e);
    if (rv == EVO_OK)
        rv = evo_db_artifact_put(c->db, "onnx", dm.id, NULL, bytes, len, hex, &e);
    pthread_mutex_unlock(&c->db_mu);
    unlink(tmp);
    if (rv != EVO_OK) {
        evo_db_model_free(&dm);
        coord_reply_error(l, &e);
        return;
    }
    /* Drop a cached older version so the next deploy uses this one. */
    pthread_mutex_lock(&c->deploy_mu);
    pthread_mutex_lock(&c->mu);
    coord_model *old = coord_model_find(c, dm.name);
    bool stale = old != NULL && old->model_id != dm.id && !old->deployed;
    if (stale) {
        for (size_t i = 0; i < c->n_models; i++)
            if (c->models[i] == old)
                c->models[i] = c->models[--c->n_models];
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->deploy_mu);
    if (stale)
        coord_model_free(old);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "name", dm.name);
    cJSON_AddNumberToObject(r, "version", (double)dm.version);
    cJSON_AddStringToObject(r, "sha256", dm.sha256);
    cJSON_AddNumberToObject(r, "ops", (double)dm.n_ops);
    cJSON_AddNumberToObject(r, "flops", (double)dm.flops);
    cJSON_AddNumberToObject(r, "param_bytes", (double)dm.param_bytes);
    cJSON_AddBoolToObject(r, "existed", existed);
    evo_db_model_free(&dm);
    coord_reply_json(l, r, NULL, 0, NULL, 0);
}

/* The model by name, imported from its stored ONNX on first use. */
static evo_status coord_load_model(evo_coord *c, const char *name, coord_model **out,
                                   evo_error *err)
{
    pthread_mutex_lock(&c->mu);
    coord_model *m = coord_model_find(c, name);
    pthread_mutex_unlock(&c->mu);
    if (m != NULL) {
        *out = m;
        return EVO_OK;
    }
    evo_db_model dm;
    memset(&dm, 0, sizeof dm);
    void *onnx = NULL;
    size_t len = 0;
    char digest[65];
    pthread_mutex_lock(&c->db_mu);
    evo_status rv = evo_db_model_get(c->db, name, 0, &dm, err);
    if (rv == EVO_OK) {
        /* The ONNX artifact is stored under the file's SHA-256. */
        snprintf(digest, sizeof digest, "%s", dm.sha256);
        rv = evo_db_artifact_get(c->db, digest, &onnx, &len, err);
        if (rv == EVO_ERR_NOT_FOUND)
            evo_error_set(err, EVO_ERR_NOT_FOUND,
                          "model %s was added without going through the coordinator; add it "
                          "with `evo model add FILE --coordinator URL`",
                          name);
    }
    pthread_mutex_unlock(&c->db_mu);
    if (rv != EVO_OK) {
        evo_db_model_free(&dm);
        return rv;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        free(onnx);
        evo_db_model_free(&dm);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory loading %s", name);
    }
    snprintf(m->name, sizeof m->name, "%s", dm.name);
    m->model_id = dm.id;
    m->onnx = onnx;
    m->onnx_len = len;
    evo_db_model_free(&dm);
    if ((rv = coord_import_onnx(onnx, len, m->name, &m->g, err)) != EVO_OK) {
        coord_model_free(m);
        return rv;
    }
    pthread_mutex_lock(&c->mu);
    coord_model *again = coord_model_find(c, name);
    if (again == NULL && c->n_models < COORD_MAX_MODELS)
        c->models[c->n_models++] = m;
    pthread_mutex_unlock(&c->mu);
    if (again != NULL || c->n_models > COORD_MAX_MODELS) {
        coord_model_free(m);
        if (again == NULL)
            return evo_error_set(err, EVO_ERR_LIMIT, "too many models are loaded");
        m = again;
    }
    *out = m;
    return EVO_OK;
}

static void coord_on_deploy(evo_coord *c, coord_listener *l, const cJSON *j)
{
    evo_error e;
    coord_model *m;
    const char *name = coord_json_str(j, "model", "");
    if (coord_load_model(c, name, &m, &e) != EVO_OK) {
        coord_reply_error(l, &e);
        return;
    }
    pthread_mutex_lock(&c->deploy_mu);
    evo_status rv = coord_deploy(c, m, coord_json_str(j, "mode", "auto"),
                                 coord_json_str(j, "objective", "latency"), &e);
    pthread_mutex_unlock(&c->deploy_mu);
    if (rv != EVO_OK) {
        coord_reply_error(l, &e);
        return;
    }
    pthread_mutex_lock(&c->mu);
    cJSON *plan = coord_plan_json(m, c);
    pthread_mutex_unlock(&c->mu);
    coord_reply_json(l, plan, NULL, 0, NULL, 0);
}

/* ---------------------------------------------------------------- inference */

/* A snapshot of a deployment to route one request. */
typedef struct coord_route {
    uint64_t gen;
    int32_t n_st;
    char first_url[EVO_WIRE_STR_MAX];
    char devs[16][EVO_WIRE_STR_MAX];
    char ctl_urls[16][EVO_WIRE_STR_MAX];
} coord_route;

/* The route document of request id over model m's current placement. */
static char *coord_route_make(evo_coord *c, const coord_model *m, uint64_t id, coord_route *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "m", m->name);
    cJSON *h = cJSON_AddArrayToObject(j, "h");
    r->gen = m->gen;
    r->n_st = m->n_st;
    for (int32_t k = 0; k < m->n_st; k++) {
        const coord_dstage *s = &m->st[k];
        coord_dev *d = coord_dev_find(c, s->dev);
        if (d == NULL) {
            cJSON_Delete(j);
            return NULL;
        }
        char what[160], mac_hex[2 * COORD_MAC_SIZE + 1];
        uint8_t mac[COORD_MAC_SIZE];
        snprintf(what, sizeof what, "run:%llu:%s", (unsigned long long)id, s->digest);
        coord_hmac_str(d->session, sizeof d->session, what, mac);
        coord_hex(mac, sizeof mac, mac_hex);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "s", k);
        cJSON_AddStringToObject(o, "d", s->digest);
        cJSON_AddStringToObject(o, "mac", mac_hex);
        cJSON_AddStringToObject(o, "n", d->data_url);
        if (s->n_pass > 0) {
            cJSON *pa = cJSON_AddArrayToObject(o, "p");
            for (int32_t i = 0; i < s->n_pass; i++)
                cJSON_AddItemToArray(pa, cJSON_CreateString(s->pass[i]));
        }
        /* Where the previous stage sends: straight to this node, or to the
         * coordinator, which relays (CoAP nodes cannot dial peers). */
        cJSON_AddStringToObject(
            o, "u", s->relay_in ? (d->coap ? c->coap_data_url : c->data_url) : d->data_url);
        cJSON_AddItemToArray(h, o);
        if (k < 16) {
            snprintf(r->devs[k], EVO_WIRE_STR_MAX, "%s", d->name);
            snprintf(r->ctl_urls[k], EVO_WIRE_STR_MAX, "%s", d->control_url);
        }
        if (k == 0)
            snprintf(r->first_url, sizeof r->first_url, "%s", d->data_url);
    }
    cJSON_AddNumberToObject(j, "ts", (double)coord_wall_ns());
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static coord_waiter *coord_waiter_add(evo_coord *c, uint64_t id)
{
    coord_waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->id = id;
    pthread_mutex_lock(&c->mu);
    w->next = c->waiters;
    c->waiters = w;
    pthread_mutex_unlock(&c->mu);
    return w;
}

static void coord_waiter_remove(evo_coord *c, coord_waiter *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    for (coord_waiter **p = &c->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    evo_msg_release(&w->msg);
    free(w);
}

/* Send request id with the client's inputs into the pipeline. */
static evo_status coord_send_request(evo_coord *c, coord_model *m, uint64_t id,
                                     const evo_wire_tensor *inputs, uint32_t n_inputs,
                                     coord_route *r, evo_error *err)
{
    pthread_mutex_lock(&c->mu);
    if (!m->deployed || m->degraded) {
        pthread_mutex_unlock(&c->mu);
        return evo_error_set(err, EVO_ERR_NOT_FOUND, "%s is not deployed on live nodes", m->name);
    }
    char *route = coord_route_make(c, m, id, r);
    pthread_mutex_unlock(&c->mu);
    if (route == NULL)
        return evo_error_set(err, EVO_ERR_INTERNAL, "cannot route a request of %s", m->name);
    coord_env env;
    evo_status rv = coord_env_init(&env, EVO_MSG_TENSORS, NULL, NULL, err);
    env.m.request_id = id;
    env.m.u.tensors.stage = 0;
    for (uint32_t i = 0; i < n_inputs && rv == EVO_OK; i++)
        rv = coord_env_add(&env, &inputs[i], err);
    evo_wire_tensor wt;
    if (rv == EVO_OK &&
        (rv = coord_bytes_tensor(&wt, COORD_T_ROUTE, route, strlen(route), err)) == EVO_OK)
        rv = coord_env_add(&env, &wt, err);
    if (rv == EVO_OK)
        rv = coord_push_msg(c, r->first_url, &env.m, err);
    coord_env_clear(&env);
    free(route);
    return rv;
}

typedef struct coord_infer_stats {
    double *lat_ms;
    size_t n_lat;
    double compute_ns[16], transfer_ns[16], queue_ns[16];
    char node[16][EVO_WIRE_STR_MAX];
    double return_ns;
    int32_t n_st;
    size_t n_runs;
} coord_infer_stats;

static void coord_stats_add(coord_infer_stats *s, const evo_msg *res, uint64_t t_done_wall)
{
    const evo_wire_tensor *rt = coord_find_tensor(res, COORD_T_ROUTE);
    const void *rb;
    size_t rl;
    if (rt == NULL || coord_tensor_bytes(rt, &rb, &rl, NULL) != EVO_OK)
        return;
    cJSON *j = cJSON_ParseWithLength(rb, rl);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "t"))
    {
        int k = (int)coord_json_num(t, "s", -1);
        if (k < 0 || k >= 16)
            continue;
        s->compute_ns[k] += coord_json_num(t, "compute_ns", 0);
        s->transfer_ns[k] += coord_json_num(t, "transfer_ns", 0);
        s->queue_ns[k] += coord_json_num(t, "queue_ns", 0);
        snprintf(s->node[k], EVO_WIRE_STR_MAX, "%s", coord_json_str(t, "node", ""));
        if (k + 1 > s->n_st)
            s->n_st = k + 1;
    }
    double ts = coord_json_num(j, "ts", 0);
    if (ts > 0 && (double)t_done_wall > ts)
        s->return_ns += (double)t_done_wall - ts;
    s->n_runs++;
    cJSON_Delete(j);
}

static int coord_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Recover from a failed attempt: find which stage nodes stopped answering,
 * mark them lost, and re-plan. Returns EVO_OK when a retry makes sense. */
static evo_status coord_recover(evo_coord *c, coord_model *m, const coord_route *r, evo_error *err)
{
    bool any_dead = false;
    for (int32_t k = 0; k < r->n_st && k < 16; k++) {
        if (coord_ping(c, r->ctl_urls[k]))
            continue;
        pthread_mutex_lock(&c->mu);
        coord_dev *d = coord_dev_find(c, r->devs[k]);
        if (d != NULL)
            coord_mark_lost_locked(c, d, "it stopped answering during a request");
        pthread_mutex_unlock(&c->mu);
        any_dead = true;
    }
    pthread_mutex_lock(&c->deploy_mu);
    pthread_mutex_lock(&c->mu);
    bool need = m->degraded || !m->deployed || m->gen != r->gen;
    bool stale = m->gen != r->gen && m->deployed && !m->degraded;
    char mode[16], obj[16];
    snprintf(mode, sizeof mode, "%s", m->mode);
    snprintf(obj, sizeof obj, "%s", m->objective);
    pthread_mutex_unlock(&c->mu);
    evo_status rv = EVO_OK;
    (void)need;
    if (!stale) {
        /* A node died, restarted without its stage, or lost a message:
         * placing and deploying again fixes each of these. */
        EVO_LOGW("coordinator: re-planning %s on the %s nodes", m->name,
                 any_dead ? "remaining" : "live");
        rv = coord_deploy(c, m, mode, obj, err);
        if (rv == EVO_OK)
            m->replans++;
    }
    pthread_mutex_unlock(&c->deploy_mu);
    return rv;
}

static void coord_on_infer(evo_coord *c, coord_listener *l, const evo_msg *msg, const cJSON *j)
{
    evo_error e;
    coord_model *m;
    const char *name = coord_json_str(j, "model", "");
    if (coord_load_model(c, name, &m, &e) != EVO_OK) {
        coord_reply_error(l, &e);
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool deployed = m->deployed || m->degraded;
    pthread_mutex_unlock(&c->mu);
    if (!deployed) {
        evo_error_set(&e, EVO_ERR_NOT_FOUND, "%s is not deployed: run `evo deploy %s` first", name,
                      name);
        coord_reply_error(l, &e);
        return;
    }
    /* The client's tensors become the model inputs, by name or in order. */
    const evo_graph *g = m->g;
    evo_wire_tensor in[EVO_COORD_MAX_LISTEN * 8];
    uint32_t n_in = 0;
    for (uint32_t i = 0; i < msg->n_tensors; i++) {
        const evo_wire_tensor *wt = &msg->tensors[i];
        if (strncmp(wt->name, "evo.", 4) == 0)
            continue;
        if (n_in == sizeof in / sizeof in[0] || (int32_t)n_in >= g->n_inputs) {
            evo_error_set(&e, EVO_ERR_INVALID_ARG, "%s takes %d input(s); more were given", name,
                          (int)g->n_inputs);
            coord_reply_error(l, &e);
            return;
        }
        in[n_in] = *wt;
        const evo_value *gv = &g->values[g->inputs[n_in]];
        if (evo_graph_find_value(g, wt->name) < 0 || wt->name[0] == '\0')
            snprintf(in[n_in].name, sizeof in[n_in].name, "%s", gv->name);
        int32_t v = evo_graph_find_value(g, in[n_in].name);
        if (!evo_shape_equal(&in[n_in].shape, &g->values[v].t.shape) ||
            in[n_in].dtype != g->values[v].t.dtype) {
            char want[64], got[64];
            evo_shape_format(&g->values[v].t.shape, want, sizeof want);
            evo_shape_format(&in[n_in].shape, got, sizeof got);
            evo_error_set(&e, EVO_ERR_SHAPE, "%s: input '%s' must be %s %s; got %s %s", name,
                          in[n_in].name, evo_dtype_name(g->values[v].t.dtype), want,
                          evo_dtype_name(in[n_in].dtype), got);
            coord_reply_error(l, &e);
            return;
        }
        n_in++;
    }
    if ((int32_t)n_in != g->n_inputs) {
        evo_error_set(&e, EVO_ERR_INVALID_ARG, "%s takes %d input(s); %u were given", name,
                      (int)g->n_inputs, n_in);
        coord_reply_error(l, &e);
        return;
    }
    int64_t repeat = (int64_t)coord_json_num(j, "repeat", 1);
    if (repeat < 1 || repeat > 100000) {
        evo_error_set(&e, EVO_ERR_INVALID_ARG, "repeat must be 1 .. 100000");
        coord_reply_error(l, &e);
        return;
    }
    int32_t window = (int32_t)coord_json_num(j, "window", 0);
    int32_t timeout_ms = c->opt.request_timeout_ms > 0 ? c->opt.request_timeout_ms : 10000;

    coord_infer_stats st;
    memset(&st, 0, sizeof st);
    st.lat_ms = calloc((size_t)repeat, sizeof *st.lat_ms);
    coord_waiter **ws = calloc((size_t)repeat, sizeof *ws);
    uint64_t *t_sent = calloc((size_t)repeat, sizeof *t_sent);
    evo_msg last;
    memset(&last, 0, sizeof last);
    evo_status rv =
        st.lat_ms && ws && t_sent ? EVO_OK : evo_error_set(&e, EVO_ERR_NOMEM, "out of memory");
    int attempts = 0;
    uint64_t replans_before = m->replans;
    uint64_t t_start = coord_mono_ns();
    int64_t done = 0; /* requests [0, done) have results */
    while (rv == EVO_OK && done < repeat) {
        attempts++;
        coord_route r;
        memset(&r, 0, sizeof r);
        /* Keep up to `window` requests in flight (throughput mode). */
        pthread_mutex_lock(&c->mu);
        int32_t n_st = m->n_st;
        pthread_mutex_unlock(&c->mu);
        int64_t w = window > 0 ? window : 2 * (int64_t)n_st + 1;
        int64_t next = done;
        evo_status arv = EVO_OK;
        evo_error ae;
        evo_error_clear(&ae);
        while (arv == EVO_OK && done < repeat) {
            while (arv == EVO_OK && next < repeat && next - done < w) {
                pthread_mutex_lock(&c->mu);
                uint64_t id = ++c->next_request;
                pthread_mutex_unlock(&c->mu);
                if ((ws[next] = coord_waiter_add(c, id)) == NULL) {
                    arv = evo_error_set(&ae, EVO_ERR_NOMEM, "out of memory");
                    break;
                }
                t_sent[next] = coord_mono_ns();
                arv = coord_send_request(c, m, id, in, n_in, &r, &ae);
                next++;
            }
            if (arv != EVO_OK)
                break;
            /* Wait for the oldest outstanding request. */
            coord_waiter *wt = ws[done];
            uint64_t deadline = t_sent[done] + (uint64_t)timeout_ms * 1000000ull;
            pthread_mutex_lock(&c->mu);
            while (wt->state == 0 && !c->stop && m->gen == r.gen && !m->degraded &&
                   coord_mono_ns() < deadline) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 50 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&c->cond, &c->mu, &ts);
            }
            int state = wt->state;
            bool moved = m->gen != r.gen || m->degraded;
            pthread_mutex_unlock(&c->mu);
            if (state == 1) {
                st.lat_ms[done] = (double)(coord_mono_ns() - t_sent[done]) / 1e6;
                coord_stats_add(&st, &wt->msg, wt->t_done_wall);
                evo_msg_release(&last);
                last = wt->msg;
                memset(&wt->msg, 0, sizeof wt->msg);
                coord_waiter_remove(c, wt);
                ws[done] = NULL;
                done++;
            } else if (state == 2) {
                arv = evo_error_set(&ae, wt->err.code, "%s", wt->err.msg);
            } else if (c->stop) {
                arv = evo_error_set(&ae, EVO_ERR_IO, "the coordinator is shutting down");
            } else if (moved) {
                arv = evo_error_set(&ae, EVO_ERR_IO, "a node of %s was lost", name);
            } else {
                arv = evo_error_set(&ae, EVO_ERR_IO, "request of %s timed out after %d ms", name,
                                    (int)timeout_ms);
            }
        }
        /* Drop the requests of a failed attempt; they are sent again. */
        for (int64_t k = done; k < next; k++) {
            coord_waiter_remove(c, ws[k]);
            ws[k] = NULL;
        }
        if (arv == EVO_OK)
            break;
        if (c->stop || attempts >= COORD_MAX_ATTEMPTS) {
            rv = arv;
            e = ae;
            evo_error_prefix(&e, "%s failed after %d attempt(s)", name, attempts);
            break;
        }
        EVO_LOGW("coordinator: %s; recovering", ae.msg);
        if (r.n_st == 0) {
            pthread_mutex_lock(&c->mu);
            free(coord_route_make(c, m, 0, &r));
            pthread_mutex_unlock(&c->mu);
        }
        if ((rv = coord_recover(c, m, &r, &e)) != EVO_OK)
            evo_error_prefix(&e, "%s: %s; recovery failed", name, ae.msg);
    }
    double total_ms = (double)(coord_mono_ns() - t_start) / 1e6;
    if (rv != EVO_OK) {
        evo_msg_release(&last);
        free(st.lat_ms);
        free(ws);
        free(t_sent);
        coord_reply_error(l, &e);
        return;
    }
    pthread_mutex_lock(&c->mu);
    m->requests += (uint64_t)repeat;
    pthread_mutex_unlock(&c->mu);
    /* The reply: the model outputs of the last request, the mean per-stage
     * timings, and latency statistics. */
    evo_wire_tensor outs[64];
    uint32_t n_out = 0;
    for (int32_t k = 0; k < g->n_outputs && n_out < 64; k++) {
        const evo_wire_tensor *wt = coord_find_tensor(&last, g->values[g->outputs[k]].name);
        if (wt != NULL)
            outs[n_out++] = *wt;
    }
    evo_stage_timing tim[16];
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "model", name);
    cJSON_AddNumberToObject(r, "repeat", (double)repeat);
    cJSON_AddNumberToObject(r, "attempts", attempts);
    cJSON_AddNumberToObject(r, "replans", (double)(m->replans - replans_before));
    cJSON_AddNumberToObject(r, "total_ms", total_ms);
    cJSON_AddNumberToObject(r, "throughput_rps",
                            total_ms > 0 ? (double)repeat * 1e3 / total_ms : 0);
    qsort(st.lat_ms, (size_t)repeat, sizeof *st.lat_ms, coord_cmp_double);
    double sum = 0;
    for (int64_t k = 0; k < repeat; k++)
        sum += st.lat_ms[k];
    cJSON *lat = cJSON_AddObjectToObject(r, "latency_ms");
    cJSON_AddNumberToObject(lat, "mean", sum / (double)repeat);
    cJSON_AddNumberToObject(lat, "min", st.lat_ms[0]);
    cJSON_AddNumberToObject(lat, "median", st.lat_ms[repeat / 2]);
    cJSON_AddNumberToObject(lat, "max", st.lat_ms[repeat - 1]);
    double runs = st.n_runs ? (double)st.n_runs : 1;
    cJSON *sa = cJSON_AddArrayToObject(r, "stages");
    for (int32_t k = 0; k < st.n_st && k < 16; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "stage", k);
        cJSON_AddStringToObject(o, "node", st.node[k]);
        cJSON_AddNumberToObject(o, "compute_ms", st.compute_ns[k] / runs / 1e6);
        cJSON_AddNumberToObject(o, "transfer_ms", st.transfer_ns[k] / runs / 1e6);
        cJSON_AddNumberToObject(o, "queue_ms", st.queue_ns[k] / runs / 1e6);
        cJSON_AddItemToArray(sa, o);
        tim[k] = (evo_stage_timing){.stage = (uint32_t)k,
                                    .queue_ns = (uint64_t)(st.queue_ns[k] / runs),
                                    .compute_ns = (uint64_t)(st.compute_ns[k] / runs),
                                    .transfer_ns = (uint64_t)(st.transfer_ns[k] / runs)};
    }
    cJSON_AddNumberToObject(r, "return_ms", st.return_ns / runs / 1e6);
    coord_reply_json(l, r, outs, n_out, tim, (uint32_t)(st.n_st < 16 ? st.n_st : 16));
    evo_msg_release(&last);
    free(st.lat_ms);
    free(ws);
    free(t_sent);
}

static void coord_on_status(evo_coord *c, coord_listener *l)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "security",
                            c->token ? "join token"
                            : c->tls ? "mutual TLS"
                                     : "open");
    cJSON *ls = cJSON_AddArrayToObject(j, "listen");
    for (size_t i = 0; i < c->opt.n_listen; i++)
        cJSON_AddItemToArray(ls, cJSON_CreateString(c->opt.listen[i]));
    cJSON_AddStringToObject(j, "data_url", c->data_url);
    if (c->coap_data_url[0])
        cJSON_AddStringToObject(j, "coap_data_url", c->coap_data_url);
    cJSON_AddItemToObject(j, "devices", coord_devices_json(c));
    cJSON *ms = cJSON_AddArrayToObject(j, "models");
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_models; i++) {
        coord_model *m = c->models[i];
        cJSON *o = coord_plan_json(m, c);
        cJSON_AddBoolToObject(o, "degraded", m->degraded);
        cJSON_AddNumberToObject(o, "requests", (double)m->requests);
        cJSON_AddNumberToObject(o, "replans", (double)m->replans);
        cJSON_AddItemToArray(ms, o);
    }
    pthread_mutex_unlock(&c->mu);
    coord_reply_json(l, j, NULL, 0, NULL, 0);
}

static void coord_on_models(evo_coord *c, coord_listener *l)
{
    evo_db_model *list = NULL;
    size_t n = 0;
    evo_error e;
    pthread_mutex_lock(&c->db_mu);
    evo_status rv = evo_db_model_list(c->db, &list, &n, &e);
    pthread_mutex_unlock(&c->db_mu);
    if (rv != EVO_OK) {
        coord_reply_error(l, &e);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "models");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", list[i].name);
        cJSON_AddNumberToObject(o, "version", (double)list[i].version);
        cJSON_AddNumberToObject(o, "ops", (double)list[i].n_ops);
        cJSON_AddNumberToObject(o, "flops", (double)list[i].flops);
        cJSON_AddNumberToObject(o, "param_bytes", (double)list[i].param_bytes);
        cJSON_AddItemToArray(a, o);
    }
    evo_db_model_list_free(list, n);
    coord_reply_json(l, j, NULL, 0, NULL, 0);
}

static void coord_handle_control(evo_coord *c, coord_listener *l, evo_msg *m)
{
    evo_error e;
    if (m->type != EVO_MSG_RUN) {
        evo_error_set(&e, EVO_ERR_UNSUPPORTED, "the coordinator does not take %s messages here",
                      evo_msg_type_name(m->type));
        coord_reply_error(l, &e);
        return;
    }
    const char *verb = m->u.run.model;
    if (strcmp(verb, "challenge") == 0) {
        coord_on_challenge(c, l);
        return;
    }
    if (strcmp(verb, "probe") == 0) {
        evo_msg r;
        evo_msg_init(&r, EVO_MSG_ACK);
        coord_send_reply(l, &r);
        return;
    }
    cJSON *j = coord_msg_json(m);
    if (j == NULL) {
        evo_error_set(&e, EVO_ERR_PARSE, "request '%s' carries no JSON document", verb);
        coord_reply_error(l, &e);
        return;
    }
    uint8_t nonce[COORD_NONCE_SIZE] = {0};
    if (coord_authenticate(c, m, j, nonce, &e) != EVO_OK) {
        EVO_LOGW("coordinator: %s request: %s", verb, e.msg);
        coord_reply_error(l, &e);
    } else if (strcmp(verb, "register") == 0) {
        coord_on_register(c, l, j, nonce);
    } else if (strcmp(verb, "devices") == 0) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToObject(r, "devices", coord_devices_json(c));
        coord_reply_json(l, r, NULL, 0, NULL, 0);
    } else if (strcmp(verb, "model_add") == 0) {
        coord_on_model_add(c, l, m, j);
    } else if (strcmp(verb, "models") == 0) {
        coord_on_models(c, l);
    } else if (strcmp(verb, "deploy") == 0) {
        coord_on_deploy(c, l, j);
    } else if (strcmp(verb, "infer") == 0) {
        coord_on_infer(c, l, m, j);
    } else if (strcmp(verb, "status") == 0) {
        coord_on_status(c, l);
    } else {
        evo_error_set(&e, EVO_ERR_UNSUPPORTED, "unknown request '%s'", verb);
        coord_reply_error(l, &e);
    }
    cJSON_Delete(j);
}

static void *coord_control_main(void *arg)
{
    coord_listener *l = arg;
    evo_coord *c = l->c;
    while (!c->stop) {
        evo_msg m;
        evo_error e;
        if (evo_tp_recv(l->tp, &m, &e) != EVO_OK) {
            if (!coord_timed_out(&e))
                EVO_LOGW("coordinator: control channel: %s", e.msg);
            continue;
        }
        coord_handle_control(c, l, &m);
        evo_msg_release(&m);
    }
    return NULL;
}

/* ---------------------------------------------------------------- data channel */

/* Keep the peer links a node reported (under mu): only peers that are
 * registered, with sane figures, and not measured since by the peer,
 * replacing what it reported before. */
static void coord_store_links(evo_coord *c, coord_dev *d, const cJSON *links)
{
    const cJSON *l;
    cJSON_ArrayForEach(l, links)
    {
        const char *peer = coord_json_str(l, "peer", "");
        double rtt = coord_json_num(l, "rtt_us", -1), mbps = coord_json_num(l, "mbps", 0);
        coord_dev *o = coord_dev_find(c, peer);
        if (o == NULL || o == d || !(rtt >= 0) || !(rtt < 1e9) || !(mbps > 0) || !(mbps < 1e9))
            continue;
        /* When the peer registered again it measured the pair afresh: the
         * figure this node keeps reporting from before is stale. */
        bool newer = false;
        for (size_t k = 0; k < o->n_plinks; k++)
            newer |= strcmp(o->plinks[k].peer, d->name) == 0;
        if (newer)
            continue;
        size_t k = 0;
        while (k < d->n_plinks && strcmp(d->plinks[k].peer, peer) != 0)
            k++;
        if (k == d->n_plinks) {
            if (d->n_plinks == COORD_MAX_PEERS)
                continue;
            d->n_plinks++;
            snprintf(d->plinks[k].peer, sizeof d->plinks[k].peer, "%s", peer);
        }
        d->plinks[k].rtt_us = rtt;
        d->plinks[k].mbps = mbps;
    }
}

static void coord_on_heartbeat(evo_coord *c, const evo_msg *m)
{
    cJSON *j = coord_msg_json(m);
    const char *sid = coord_json_str(j, "session_id", "");
    pthread_mutex_lock(&c->mu);
    coord_dev *d = NULL;
    for (size_t i = 0; i < c->n_devs; i++)
        if (strcmp(c->devs[i].session_id, sid) == 0)
            d = &c->devs[i];
    uint64_t seq = (uint64_t)coord_json_num(j, "seq", 0);
    evo_error e;
    if (d == NULL) {
        EVO_LOGD("coordinator: heartbeat from an unknown session");
    } else if (coord_msg_verify(m, d->session, sizeof d->session, NULL, 0, &e) != EVO_OK ||
               seq <= d->hb_seq) {
        EVO_LOGW("coordinator: ignoring a heartbeat for %s: %s", d->name,
                 seq <= d->hb_seq ? "replayed" : e.msg);
    } else {
        d->hb_seq = seq;
        d->last_hb_ns = coord_mono_ns();
        d->free_bytes = (uint64_t)coord_json_num(j, "free_bytes", 0);
        d->runs = (uint64_t)coord_json_num(j, "runs", 0);
        d->stages_held = (int32_t)coord_json_num(j, "stages", 0);
        coord_store_links(c, d, cJSON_GetObjectItem(j, "links"));
        if (!d->alive) {
            EVO_LOGW("coordinator: node %s is back", d->name);
            d->alive = true;
            pthread_mutex_lock(&c->db_mu);
            coord_reg_state(c->reg, d->name, "alive", NULL);
            pthread_mutex_unlock(&c->db_mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
    cJSON_Delete(j);
}

/* Hand a result (or error) to the request waiting for it. Takes m over. */
static void coord_deliver(evo_coord *c, evo_msg *m, const evo_error *e)
{
    pthread_mutex_lock(&c->mu);
    coord_waiter *w = c->waiters;
    while (w != NULL && w->id != m->request_id)
        w = w->next;
    if (w != NULL && w->state == 0) {
        if (e != NULL) {
            w->state = 2;
            w->err = *e;
        } else {
            w->state = 1;
            w->msg = *m;
            /* when the data channel had it (not when this thread got to it) */
            uint64_t now = coord_wall_ns();
            w->t_done_wall = m->received_ns && m->received_ns <= now ? m->received_ns : now;
            memset(m, 0, sizeof *m);
        }
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
}

static void coord_on_tensors(evo_coord *c, evo_msg *m)
{
    const evo_wire_tensor *rt = coord_find_tensor(m, COORD_T_ROUTE);
    const void *rb;
    size_t rl;
    evo_error e;
    if (rt == NULL || coord_tensor_bytes(rt, &rb, &rl, &e) != EVO_OK) {
        EVO_LOGW("coordinator: dropping tensors without a route (request %llu)",
                 (unsigned long long)m->request_id);
        return;
    }
    cJSON *route = cJSON_ParseWithLength(rb, rl);
    const cJSON *hop = cJSON_GetArrayItem(cJSON_GetObjectItem(route, "h"), 0);
    if (hop == NULL) {
        cJSON_Delete(route);
        coord_deliver(c, m, NULL);
        return;
    }
    /* Relay: the next stage's node cannot be reached by the sender. */
    char url[EVO_WIRE_STR_MAX];
    snprintf(url, sizeof url, "%s", coord_json_str(hop, "n", ""));
    cJSON_Delete(route);
    evo_msg fwd;
    evo_msg_init(&fwd, EVO_MSG_TENSORS);
    fwd.request_id = m->request_id;
    fwd.u.tensors.stage = m->u.tensors.stage;
    fwd.tensors = m->tensors;
    fwd.n_tensors = m->n_tensors;
    if (coord_push_msg(c, url, &fwd, &e) != EVO_OK) {
        evo_error_prefix(&e, "relaying request %llu to %s", (unsigned long long)m->request_id, url);
        coord_deliver(c, m, &e);
    }
}

static void *coord_data_main(void *arg)
{
    coord_listener *l = arg;
    evo_coord *c = l->c;
    while (!c->stop) {
        evo_msg m;
        evo_error e;
        if (evo_tp_recv(l->tp, &m, &e) != EVO_OK) {
            if (!coord_timed_out(&e))
                EVO_LOGW("coordinator: data channel: %s", e.msg);
            continue;
        }
        if (m.type == EVO_MSG_RUN && strcmp(m.u.run.model, "heartbeat") == 0) {
            coord_on_heartbeat(c, &m);
        } else if (m.type == EVO_MSG_TENSORS) {
            coord_on_tensors(c, &m);
        } else if (m.type == EVO_MSG_ERROR) {
            evo_error_set(&e, (evo_status)m.u.error.status, "%s", m.u.error.message);
            coord_deliver(c, &m, &e);
        }
        evo_msg_release(&m);
    }
    return NULL;
}

/* ---------------------------------------------------------------- upkeep */

static void *coord_upkeep_main(void *arg)
{
    evo_coord *c = arg;
    uint64_t lost_ns =
        (uint64_t)(c->opt.lost_after_ms > 0 ? c->opt.lost_after_ms : 2000) * 1000000ull;
    while (!c->stop) {
        coord_sleep_ms(100);
        char give[COORD_MAX_DEVS][EVO_WIRE_STR_MAX];
        size_t n_give = 0;
        coord_model *replan[COORD_MAX_MODELS];
        size_t n_replan = 0;
        pthread_mutex_lock(&c->mu);
        uint64_t now = coord_mono_ns();
        for (size_t i = 0; i < c->n_devs; i++) {
            coord_dev *d = &c->devs[i];
            if (d->alive && now - d->last_hb_ns > lost_ns) {
                char why[64];
                snprintf(why, sizeof why, "no heartbeat for %llu ms",
                         (unsigned long long)((now - d->last_hb_ns) / 1000000));
                coord_mark_lost_locked(c, d, why);
            }
            if (d->alive && d->give_back)
                snprintf(give[n_give++], EVO_WIRE_STR_MAX, "%s", d->name);
        }
        for (size_t i = 0; i < c->n_models; i++)
            if (c->models[i]->degraded)
                replan[n_replan++] = c->models[i];
        pthread_mutex_unlock(&c->mu);
        for (size_t i = 0; i < n_replan && !c->stop; i++) {
            pthread_mutex_lock(&c->deploy_mu);
            pthread_mutex_lock(&c->mu);
            bool still = replan[i]->degraded;
            char mode[16], obj[16];
            snprintf(mode, sizeof mode, "%s", replan[i]->mode);
            snprintf(obj, sizeof obj, "%s", replan[i]->objective);
            pthread_mutex_unlock(&c->mu);
            evo_error e;
            if (still) {
                EVO_LOGW("coordinator: re-planning %s on the remaining nodes", replan[i]->name);
                if (coord_deploy(c, replan[i], mode, obj, &e) == EVO_OK)
                    replan[i]->replans++;
                else
                    EVO_LOGW("coordinator: re-planning %s failed: %s", replan[i]->name, e.msg);
            }
            pthread_mutex_unlock(&c->deploy_mu);
        }
        for (size_t i = 0; i < n_give && !c->stop; i++) {
            pthread_mutex_lock(&c->deploy_mu);
            evo_error e;
            if (coord_sync_node(c, give[i], &e) != EVO_OK) {
                /* It came back different (e.g. a smaller budget): re-plan
                 * the models that used it instead of insisting. */
                EVO_LOGW("coordinator: giving node %s its stages back: %s", give[i], e.msg);
                pthread_mutex_lock(&c->mu);
                coord_dev *d = coord_dev_find(c, give[i]);
                if (d != NULL)
                    d->give_back = false;
                for (size_t k = 0; k < c->n_models; k++)
                    for (int32_t s = 0; c->models[k]->st && s < c->models[k]->n_st; s++)
                        if (strcmp(c->models[k]->st[s].dev, give[i]) == 0)
                            c->models[k]->degraded = true;
                pthread_mutex_unlock(&c->mu);
            } else
                EVO_LOGI("coordinator: node %s has its stages back", give[i]);
            pthread_mutex_unlock(&c->deploy_mu);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static evo_status coord_open_listener(evo_coord *c, coord_listener *l, const char *url,
                                      evo_tp_pattern pat, evo_error *err)
{
    evo_tp_options o;
    coord_tp_options(&o, &c->sec, COORD_POLL_MS);
    l->c = c;
    l->coap = coord_url_is_coap(url);
    evo_status rv = evo_tp_open(&l->tp, url, pat, EVO_TP_LISTEN, &o, err);
    if (rv != EVO_OK)
        evo_error_prefix(err, "coordinator: cannot listen on %s", url);
    return rv;
}

evo_status evo_coord_start(const evo_coord_options *opt, evo_coord **out, evo_error *err)
{
    *out = NULL;
    if (opt == NULL || opt->n_listen == 0 || opt->n_listen > EVO_COORD_MAX_LISTEN ||
        opt->db_path == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "a coordinator needs 1 to %d --listen URLs and a --db file",
                             EVO_COORD_MAX_LISTEN);
    bool tls = opt->sec.tls_cert != NULL || opt->sec.tls_key != NULL || opt->sec.tls_ca != NULL;
    if (tls && (!opt->sec.tls_cert || !opt->sec.tls_key || !opt->sec.tls_ca))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "TLS needs --tls-cert, --tls-key and --tls-ca together");
    bool loopback = true;
    for (size_t i = 0; i < opt->n_listen; i++) {
        loopback &= coord_url_is_loopback(opt->listen[i]);
        if (tls && strncmp(opt->listen[i], "tls+tcp://", 10) != 0)
            return evo_error_set(err, EVO_ERR_INVALID_ARG,
                                 "with TLS on, every --listen URL must be tls+tcp:// ('%s' is not)",
                                 opt->listen[i]);
    }
    if (opt->coap_listen)
        loopback &= coord_url_is_loopback(opt->coap_listen);
    if (!tls && opt->sec.token == NULL && !loopback)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "refusing to listen beyond loopback without TLS or a join token: "
                             "anyone on the network could register or submit");
    evo_coord *c = calloc(1, sizeof *c);
    if (c == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory starting the coordinator");
    c->opt = *opt;
    c->tls = tls;
    c->token = opt->sec.token ? strdup(opt->sec.token) : NULL;
    c->sec = opt->sec;
    c->sec.token = c->token;
    c->open_mode = !tls && c->token == NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->deploy_mu, NULL);
    pthread_mutex_init(&c->push_mu, NULL);
    pthread_mutex_init(&c->db_mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    evo_status rv = evo_db_open(opt->db_path, &c->db, err);
    if (rv == EVO_OK)
        rv = coord_reg_open(opt->db_path, &c->reg, err);
    for (size_t i = 0; rv == EVO_OK && i < opt->n_listen; i++) {
        rv = coord_open_listener(c, &c->ctl[c->n_ctl], opt->listen[i], EVO_TP_REP, err);
        if (rv == EVO_OK)
            c->n_ctl++;
    }
    if (rv == EVO_OK && opt->coap_listen) {
        rv = coord_open_listener(c, &c->ctl[c->n_ctl], opt->coap_listen, EVO_TP_REP, err);
        if (rv == EVO_OK)
            c->n_ctl++;
    }
    /* Data channels: ephemeral ports next to the first listener (and the
     * CoAP one). ipc:// and inproc:// get a sibling name. */
    if (rv == EVO_OK) {
        char base[EVO_WIRE_STR_MAX], ctl[EVO_WIRE_STR_MAX + 16], url[EVO_WIRE_STR_MAX + 32];
        const char *first = opt->listen[0];
        if (strncmp(first, "ipc://", 6) == 0 || strncmp(first, "inproc://", 9) == 0)
            snprintf(ctl, sizeof ctl, "%.240s.data", first);
        else {
            coord_url_base(first, base, sizeof base);
            snprintf(ctl, sizeof ctl, "%s:0", base);
        }
        coord_data_url(ctl, url, sizeof url);
        rv = coord_open_listener(c, &c->data[c->n_data], url, EVO_TP_PULL, err);
        if (rv == EVO_OK) {
            int port = evo_tp_port(c->data[c->n_data].tp);
            if (port >= 0)
                coord_url_with_port(url, port, c->data_url, sizeof c->data_url);
            else
                snprintf(c->data_url, sizeof c->data_url, "%.250s", url);
            c->n_data++;
        }
    }
    if (rv == EVO_OK && opt->coap_listen) {
        char base[EVO_WIRE_STR_MAX], url[EVO_WIRE_STR_MAX + 16];
        coord_url_base(opt->coap_listen, base, sizeof base);
        snprintf(url, sizeof url, "%s:0", base);
        rv = coord_open_listener(c, &c->data[c->n_data], url, EVO_TP_PULL, err);
        if (rv == EVO_OK) {
            coord_url_with_port(opt->coap_listen, evo_tp_port(c->data[c->n_data].tp),
                                c->coap_data_url, sizeof c->coap_data_url);
            c->n_data++;
        }
    }
    if (rv != EVO_OK) {
        evo_coord_stop(c);
        return rv;
    }
    if (c->open_mode)
        EVO_LOGW("coordinator: OPEN mode (no TLS, no join token): anyone who can reach the "
                 "loopback listeners may register and submit");
    for (size_t i = 0; i < c->n_ctl; i++)
        c->ctl[i].started = pthread_create(&c->ctl[i].t, NULL, coord_control_main, &c->ctl[i]) == 0;
    for (size_t i = 0; i < c->n_data; i++)
        c->data[i].started = pthread_create(&c->data[i].t, NULL, coord_data_main, &c->data[i]) == 0;
    c->started_upkeep = pthread_create(&c->t_upkeep, NULL, coord_upkeep_main, c) == 0;
    *out = c;
    return EVO_OK;
}

int evo_coord_port(const evo_coord *c, size_t i)
{
    return c != NULL && i < c->n_ctl ? evo_tp_port(c->ctl[i].tp) : -1;
}

void evo_coord_stop(evo_coord *c)
{
    if (c == NULL)
        return;
    c->stop = true;
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < c->n_ctl; i++)
        if (c->ctl[i].started)
            pthread_join(c->ctl[i].t, NULL);
    for (size_t i = 0; i < c->n_data; i++)
        if (c->data[i].started)
            pthread_join(c->data[i].t, NULL);
    if (c->started_upkeep)
        pthread_join(c->t_upkeep, NULL);
    for (size_t i = 0; i < c->n_ctl; i++)
        evo_tp_close(c->ctl[i].tp);
    for (size_t i = 0; i < c->n_data; i++)
        evo_tp_close(c->data[i].tp);
    for (size_t i = 0; i < c->n_push; i++)
        evo_tp_close(c->push[i].tp);
    for (size_t i = 0; i < c->n_models; i++)
        coord_model_free(c->models[i]);
    while (c->waiters) {
        coord_waiter *w = c->waiters;
        c->waiters = w->next;
        evo_msg_release(&w->msg);
        free(w);
    }
    if (c->reg) {
        for (size_t i = 0; i < c->n_devs; i++)
            coord_reg_state(c->reg, c->devs[i].name, "offline", NULL);
        coord_reg_close(c->reg);
    }
    evo_db_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->deploy_mu);
    pthread_mutex_destroy(&c->push_mu);
    pthread_mutex_destroy(&c->db_mu);
    pthread_cond_destroy(&c->cond);
    free(c->token);
    free(c);
}
