/*
 * The node agent against a scripted coordinator: registration, the signed
 * assignment, digest checks on deploy (a tampered blob, an unassigned
 * digest, a missing blob), the memory budget, and running a stage whose
 * outputs must equal the whole model's (examples/models/tiny_mlp).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../coordinator/coord_internal.h"
#include "evo/modeldb.h"

#define MLP EVO_SOURCE_DIR "/examples/models/tiny_mlp/model.onnx"

typedef struct fake {
    evo_tp *rep, *pull;
    char data_url[EVO_WIRE_STR_MAX];
    uint8_t key[COORD_SESSION_SIZE];
    char agent_ctl[EVO_WIRE_STR_MAX], agent_data[EVO_WIRE_STR_MAX];
    int registrations;
    char peer_url[EVO_WIRE_STR_MAX]; /* when set, the registration names peer "p" there */
    char peer_ticket[2 * COORD_MAC_SIZE + 1];
} fake;

static void reply_json(evo_tp *tp, cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    coord_env env;
    assert_int_equal(coord_env_init(&env, EVO_MSG_RESULT, NULL, text, NULL), EVO_OK);
    assert_int_equal(evo_tp_send(tp, &env.m, NULL), EVO_OK);
    coord_env_clear(&env);
}

/* Serve one registration: challenge x3, probe, register. */
static void *fake_serve(void *arg)
{
    fake *f = arg;
    for (;;) {
        evo_msg m;
        if (evo_tp_recv(f->rep, &m, NULL) != EVO_OK)
            continue;
        const char *verb = m.u.run.model;
        if (strcmp(verb, "challenge") == 0) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "nonce", "000102030405060708090a0b0c0d0e0f");
            cJSON_AddStringToObject(j, "mode", "open");
            reply_json(f->rep, j);
        } else if (strcmp(verb, "probe") == 0) {
            evo_msg r;
            evo_msg_init(&r, EVO_MSG_ACK);
            evo_tp_send(f->rep, &r, NULL);
        } else {
            cJSON *in = coord_msg_json(&m);
            snprintf(f->agent_ctl, sizeof f->agent_ctl, "%s",
                     coord_json_str(in, "control_url", ""));
            snprintf(f->agent_data, sizeof f->agent_data, "%s", coord_json_str(in, "data_url", ""));
            cJSON_Delete(in);
            char hex[2 * COORD_SESSION_SIZE + 1];
            coord_hex(f->key, sizeof f->key, hex);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "session_id", "0123456789abcdef0123456789abcdef");
            cJSON_AddStringToObject(j, "session_key", hex);
            cJSON_AddStringToObject(j, "data_url", f->data_url);
            cJSON_AddNumberToObject(j, "heartbeat_ms", 100);
            if (f->peer_url[0]) {
                cJSON *pe = cJSON_CreateObject();
                cJSON_AddStringToObject(pe, "name", "p");
                cJSON_AddStringToObject(pe, "url", f->peer_url);
                cJSON_AddStringToObject(pe, "ticket", f->peer_ticket);
                cJSON_AddItemToArray(cJSON_AddArrayToObject(j, "peers"), pe);
            }
            reply_json(f->rep, j);
            f->registrations++;
            evo_msg_release(&m);
            return NULL;
        }
        evo_msg_release(&m);
    }
}

static void fake_open(fake *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < sizeof f->key; i++)
        f->key[i] = (uint8_t)(i * 7 + 1);
    evo_tp_options o;
    coord_tp_options(&o, NULL, 5000);
    assert_int_equal(evo_tp_open(&f->rep, "tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_LISTEN, &o, NULL),
                     EVO_OK);
    assert_int_equal(
        evo_tp_open(&f->pull, "tcp://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, NULL), EVO_OK);
    snprintf(f->data_url, sizeof f->data_url, "tcp://127.0.0.1:%d", evo_tp_port(f->pull));
}

static evo_agent *agent_start(fake *f, uint64_t memory)
{
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", evo_tp_port(f->rep));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_serve, f), 0);
    evo_agent_options ao = {.coordinator = url,
                            .name = "n1",
                            .memory_bytes = memory,
                            .no_calibrate = true,
                            /* generous: a probe that overruns measures nothing, and a loaded
                             * test machine must not turn that into a failure */
                            .probe_budget_ms = 10000};
    evo_agent *a = NULL;
    evo_error err;
    evo_status rv = evo_agent_start(&ao, &a, &err);
    if (rv != EVO_OK)
        fail_msg("%s", err.msg);
    pthread_join(t, NULL);
    return a;
}

/* One REQ round trip to the agent's control channel; returns the reply's
 * status (EVO_OK for an ACK). */
static evo_status ctl_call(fake *f, const evo_msg *m, uint64_t *ack_value)
{
    evo_tp_options o;
    coord_tp_options(&o, NULL, 10000);
    evo_tp *tp;
    assert_int_equal(evo_tp_open(&tp, f->agent_ctl, EVO_TP_REQ, EVO_TP_DIAL, &o, NULL), EVO_OK);
    assert_int_equal(evo_tp_send(tp, m, NULL), EVO_OK);
    evo_msg r;
    assert_int_equal(evo_tp_recv(tp, &r, NULL), EVO_OK);
    evo_status st = r.type == EVO_MSG_ACK ? EVO_OK : (evo_status)r.u.error.status;
    if (r.type == EVO_MSG_ACK && ack_value)
        *ack_value = r.u.ack.value;
    evo_msg_release(&r);
    evo_tp_close(tp);
    return st;
}

/* Send raw encoded bytes and return the reply's status. */
static evo_status ctl_call_raw(fake *f, const void *buf, size_t len)
{
    evo_tp_options o;
    coord_tp_options(&o, NULL, 10000);
    evo_tp *tp;
    assert_int_equal(evo_tp_open(&tp, f->agent_ctl, EVO_TP_REQ, EVO_TP_DIAL, &o, NULL), EVO_OK);
    assert_int_equal(evo_tp_send_encoded(tp, buf, len, NULL), EVO_OK);
    evo_msg r;
    assert_int_equal(evo_tp_recv(tp, &r, NULL), EVO_OK);
    evo_status st = r.type == EVO_MSG_ACK ? EVO_OK : (evo_status)r.u.error.status;
    evo_msg_release(&r);
    evo_tp_close(tp);
    return st;
}

static evo_status assign(fake *f, uint64_t seq, const char *digest, const uint8_t *key)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seq", (double)seq);
    cJSON *a = cJSON_AddArrayToObject(j, "stages");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "digest", digest);
    cJSON_AddItemToArray(a, o);
    coord_env env;
    assert_int_equal(coord_env_init(&env, EVO_MSG_RUN, "assign", cJSON_PrintUnformatted(j), NULL),
                     EVO_OK);
    cJSON_Delete(j);
    assert_int_equal(coord_env_sign(&env, key, COORD_SESSION_SIZE, NULL, 0, NULL), EVO_OK);
    evo_status st = ctl_call(f, &env.m, NULL);
    coord_env_clear(&env);
    return st;
}

/* The whole tiny_mlp as one stage blob (.evm). */
static void make_blob(void **blob, size_t *len, uint8_t digest[32], char hex[65], evo_graph **g_out)
{
    void *onnx;
    size_t n;
    FILE *fp = fopen(MLP, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    onnx = malloc(n);
    assert_int_equal(fread(onnx, 1, n, fp), n);
    fclose(fp);
    evo_graph *g;
    assert_int_equal(coord_import_onnx(onnx, n, "tiny_mlp", &g, NULL), EVO_OK);
    evo_split_plan plan;
    int32_t start = 0;
    assert_int_equal(evo_split_plan_from_ranges(g, &start, 1, &plan, NULL), EVO_OK);
    coord_stage_blob *b;
    assert_int_equal(coord_stage_blobs_make(g, &plan, &b, NULL), EVO_OK);
    evo_split_plan_free(&plan);
    *blob = b[0].evm; /* taken over */
    *len = b[0].evm_len;
    b[0].evm = NULL;
    coord_stage_blobs_free(b, 1);
    evo_sha256(*blob, *len, digest);
    coord_hex(digest, 32, hex);
    free(onnx);
    *g_out = g;
}

static void deploy_msg(evo_msg *m, const uint8_t digest[32], const void *blob, size_t len)
{
    evo_msg_init(m, EVO_MSG_DEPLOY);
    snprintf(m->u.deploy.model, sizeof m->u.deploy.model, "tiny_mlp");
    memcpy(m->u.deploy.digest, digest, 32);
    m->u.deploy.blob_size = len;
    m->u.deploy.blob = blob;
    m->u.deploy.blob_len = blob ? len : 0;
}

/* The next TENSORS or ERROR on the fake coordinator's data channel. */
static void next_data(fake *f, evo_msg *out)
{
    for (int i = 0; i < 100; i++) {
        assert_int_equal(evo_tp_recv(f->pull, out, NULL), EVO_OK);
        if (out->type == EVO_MSG_TENSORS || out->type == EVO_MSG_ERROR)
            return;
        evo_msg_release(out);
    }
    fail_msg("no tensors came back");
}

static void send_run(fake *f, uint64_t id, const char *hex, const uint8_t *key, const float *x)
{
    char what[160], mac_hex[65];
    uint8_t mac[32];
    snprintf(what, sizeof what, "run:%llu:%s", (unsigned long long)id, hex);
    coord_hmac_str(key, COORD_SESSION_SIZE, what, mac);
    coord_hex(mac, 32, mac_hex);
    cJSON *r = cJSON_CreateObject();
    cJSON *h = cJSON_AddArrayToObject(r, "h");
    cJSON *hop = cJSON_CreateObject();
    cJSON_AddNumberToObject(hop, "s", 0);
    cJSON_AddStringToObject(hop, "d", hex);
    cJSON_AddStringToObject(hop, "mac", mac_hex);
    cJSON_AddItemToArray(h, hop);
    char *route = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    coord_env env;
    assert_int_equal(coord_env_init(&env, EVO_MSG_TENSORS, NULL, NULL, NULL), EVO_OK);
    env.m.request_id = id;
    evo_tensor t = {
        .dtype = EVO_DT_FLOAT32, .shape = {.rank = 2, .dims = {1, 64}}, .data = (void *)x};
    evo_wire_tensor wt;
    assert_int_equal(evo_wire_tensor_encode(&wt, "x", -1, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1, NULL),
                     EVO_OK);
    assert_int_equal(coord_env_add(&env, &wt, NULL), EVO_OK);
    assert_int_equal(coord_bytes_tensor(&wt, COORD_T_ROUTE, route, strlen(route), NULL), EVO_OK);
    assert_int_equal(coord_env_add(&env, &wt, NULL), EVO_OK);
    evo_tp_options o;
    coord_tp_options(&o, NULL, 5000);
    evo_tp *push;
    assert_int_equal(evo_tp_open(&push, f->agent_data, EVO_TP_PUSH, EVO_TP_DIAL, &o, NULL), EVO_OK);
    assert_int_equal(evo_tp_send(push, &env.m, NULL), EVO_OK);
    evo_tp_close(push);
    coord_env_clear(&env);
    free(route);
}

static void test_deploy_checks_and_run(void **state)
{
    (void)state;
    fake f;
    fake_open(&f);
    evo_agent *a = agent_start(&f, 64u << 20);
    assert_int_equal(f.registrations, 1);
    void *blob;
    size_t len;
    uint8_t digest[32];
    char hex[65];
    evo_graph *g;
    make_blob(&blob, &len, digest, hex, &g);

    evo_msg m;
    /* Not assigned yet: refused. */
    deploy_msg(&m, digest, blob, len);
    assert_int_equal(ctl_call(&f, &m, NULL), EVO_ERR_MISMATCH);
    /* An assignment under the wrong key: refused. */
    uint8_t bad[COORD_SESSION_SIZE] = {0};
    assert_int_equal(assign(&f, 1, hex, bad), EVO_ERR_MISMATCH);
    assert_int_equal(assign(&f, 1, hex, f.key), EVO_OK);
    /* Replayed sequence number: refused. */
    assert_int_equal(assign(&f, 1, hex, f.key), EVO_ERR_PARSE);
    /* Without the blob: the node does not hold it yet. */
    deploy_msg(&m, digest, NULL, len);
    assert_int_equal(ctl_call(&f, &m, NULL), EVO_ERR_NOT_FOUND);
    /* A blob altered on the way (one byte flipped after encoding): the
     * digest does not match and the node refuses it. */
    deploy_msg(&m, digest, blob, len);
    size_t enc_len;
    assert_int_equal(evo_wire_encoded_size(&m, &enc_len, NULL), EVO_OK);
    unsigned char *enc = malloc(enc_len);
    assert_int_equal(evo_wire_encode(&m, enc, enc_len, &enc_len, NULL), EVO_OK);
    unsigned char *at = NULL;
    for (size_t i = 0; at == NULL && i + len <= enc_len; i++)
        if (memcmp(enc + i, blob, len) == 0)
            at = enc + i;
    assert_non_null(at);
    at[len / 2] ^= 0x40;
    assert_int_equal(ctl_call_raw(&f, enc, enc_len), EVO_ERR_MISMATCH);
    free(enc);
    /* The real blob: accepted; the ACK carries what it costs the budget. */
    uint64_t need = 0;
    assert_int_equal(ctl_call(&f, &m, &need), EVO_OK);
    assert_true(need > 9640); /* at least the weights */
    /* Now held: offering the digest alone is enough. */
    deploy_msg(&m, digest, NULL, len);
    assert_int_equal(ctl_call(&f, &m, NULL), EVO_OK);

    /* Run it: the outputs equal the whole model run locally. */
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)((i * 37) % 19) / 9.0f - 1.0f;
    send_run(&f, 42, hex, f.key, x);
    evo_msg r;
    next_data(&f, &r);
    assert_int_equal(r.type, EVO_MSG_TENSORS);
    assert_int_equal(r.request_id, 42);
    const evo_wire_tensor *out = coord_find_tensor(&r, "probs");
    assert_non_null(out);
    evo_program *p;
    assert_int_equal(evo_program_build(g, NULL, &p, NULL), EVO_OK);
    size_t ab = evo_program_arena_size(p);
    void *arena = malloc(ab);
    evo_exec xe;
    assert_int_equal(evo_exec_init(&xe, p, arena, ab), EVO_OK);
    memcpy(evo_exec_input(&xe, 0)->data, x, sizeof x);
    assert_int_equal(evo_exec_run(&xe, NULL), EVO_OK);
    float got[10];
    assert_int_equal(evo_wire_tensor_decode(out, EVO_DT_FLOAT32, got, sizeof got, NULL, NULL),
                     EVO_OK);
    assert_memory_equal(got, evo_exec_output(&xe, 0)->data, sizeof got);
    const evo_wire_tensor *rt = coord_find_tensor(&r, COORD_T_ROUTE);
    assert_non_null(rt);
    evo_msg_release(&r);
    free(arena);
    evo_program_free(p);

    /* A route without a valid authorization is refused and reported. */
    uint8_t other[COORD_SESSION_SIZE];
    memset(other, 9, sizeof other);
    send_run(&f, 43, hex, other, x);
    next_data(&f, &r);
    assert_int_equal(r.type, EVO_MSG_ERROR);
    assert_int_equal(r.request_id, 43);
    assert_int_equal(r.u.error.status, EVO_ERR_MISMATCH);
    evo_msg_release(&r);

    evo_agent_stop(a);
    evo_graph_free(g);
    free(blob);
    evo_tp_close(f.rep);
    evo_tp_close(f.pull);
}

/* A peer that acknowledges probes carrying the ticket for "n1" (counting
 * the bytes of the ones with a payload). */
typedef struct fake_peer {
    evo_tp *rep;
    uint8_t key[COORD_SESSION_SIZE];
    int pings, chunks, refused;
    size_t bytes;
} fake_peer;

static void *fake_peer_serve(void *arg)
{
    fake_peer *p = arg;
    while (p->pings + p->chunks + p->refused < 19) {
        evo_msg m;
        if (evo_tp_recv(p->rep, &m, NULL) != EVO_OK)
            break;
        cJSON *j = coord_msg_json(&m);
        uint8_t want[COORD_MAC_SIZE], got[COORD_MAC_SIZE];
        coord_hmac_str(p->key, sizeof p->key, "probe:n1:p", want);
        bool ok = strcmp(m.u.run.model, "probe") == 0 &&
                  strcmp(coord_json_str(j, "from", ""), "n1") == 0 &&
                  coord_unhex(coord_json_str(j, "ticket", ""), got, sizeof got) &&
                  coord_equal(want, got, sizeof got);
        cJSON_Delete(j);
        const evo_wire_tensor *wt = coord_find_tensor(&m, "probe");
        evo_msg r;
        if (!ok) {
            p->refused++;
            evo_msg_init(&r, EVO_MSG_ERROR);
        } else if (wt != NULL) {
            p->chunks++;
            const void *b;
            size_t len = 0;
            coord_tensor_bytes(wt, &b, &len, NULL);
            p->bytes += len;
            evo_msg_init(&r, EVO_MSG_ACK);
        } else {
            p->pings++;
            evo_msg_init(&r, EVO_MSG_ACK);
        }
        evo_tp_send(p->rep, &r, NULL);
        evo_msg_release(&m);
    }
    return NULL;
}

static evo_status probe_call(fake *f, cJSON *j)
{
    coord_env env;
    assert_int_equal(
        coord_env_init(&env, EVO_MSG_RUN, "probe", j ? cJSON_PrintUnformatted(j) : NULL, NULL),
        EVO_OK);
    evo_status st = ctl_call(f, &env.m, NULL);
    coord_env_clear(&env);
    return st;
}

/* The node probes the peer the coordinator names (3 pings, then 16 chunks
 * of 128 KiB with its ticket), reports the link in its heartbeats, and
 * takes probes itself only with a ticket made with its session key. */
static void test_peer_probe(void **state)
{
    (void)state;
    fake f;
    fake_open(&f);
    fake_peer p = {0};
    memset(p.key, 0x5a, sizeof p.key);
    evo_tp_options o;
    coord_tp_options(&o, NULL, 5000);
    assert_int_equal(evo_tp_open(&p.rep, "tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_LISTEN, &o, NULL),
                     EVO_OK);
    snprintf(f.peer_url, sizeof f.peer_url, "tcp://127.0.0.1:%d", evo_tp_port(p.rep));
    uint8_t mac[COORD_MAC_SIZE];
    coord_hmac_str(p.key, sizeof p.key, "probe:n1:p", mac);
    coord_hex(mac, sizeof mac, f.peer_ticket);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_peer_serve, &p), 0);
    evo_agent *a = agent_start(&f, 1 << 20);
    pthread_join(t, NULL);
    assert_int_equal(p.refused, 0);
    assert_int_equal(p.pings, 3);
    assert_int_equal(p.chunks, 16);
    assert_int_equal(p.bytes, 16u * 128u * 1024u);
    /* The heartbeats carry the measured link. */
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        evo_msg m;
        if (evo_tp_recv(f.pull, &m, NULL) != EVO_OK)
            break;
        assert_int_equal(coord_msg_verify(&m, f.key, sizeof f.key, NULL, 0, NULL), EVO_OK);
        cJSON *j = coord_msg_json(&m);
        const cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "links"), 0);
        if (l != NULL) {
            assert_string_equal(coord_json_str(l, "peer", ""), "p");
            assert_true(coord_json_num(l, "rtt_us", 0) > 0);
            assert_true(coord_json_num(l, "mbps", 0) > 0);
            seen = true;
        }
        cJSON_Delete(j);
        evo_msg_release(&m);
    }
    assert_true(seen);
    /* Probing this node: the ticket is keyed with the node's session key
     * and names the sender. */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "from", "q");
    coord_hmac_str(f.key, sizeof f.key, "probe:q:n1", mac);
    char hex[2 * COORD_MAC_SIZE + 1];
    coord_hex(mac, sizeof mac, hex);
    cJSON_AddStringToObject(j, "ticket", hex);
    assert_int_equal(probe_call(&f, j), EVO_OK);
    /* The same ticket from another sender, a wrong one, and none are refused. */
    cJSON_ReplaceItemInObject(j, "from", cJSON_CreateString("r"));
    assert_int_equal(probe_call(&f, j), EVO_ERR_MISMATCH);
    cJSON_ReplaceItemInObject(j, "from", cJSON_CreateString("q"));
    cJSON_ReplaceItemInObject(j, "ticket", cJSON_CreateString("00"));
    assert_int_equal(probe_call(&f, j), EVO_ERR_MISMATCH);
    cJSON_Delete(j);
    assert_int_equal(probe_call(&f, NULL), EVO_ERR_MISMATCH);
    evo_agent_stop(a);
    evo_tp_close(p.rep);
    evo_tp_close(f.rep);
    evo_tp_close(f.pull);
}

static void test_memory_budget(void **state)
{
    (void)state;
    fake f;
    fake_open(&f);
    evo_agent *a = agent_start(&f, 4096); /* less than the weights */
    void *blob;
    size_t len;
    uint8_t digest[32];
    char hex[65];
    evo_graph *g;
    make_blob(&blob, &len, digest, hex, &g);
    assert_int_equal(assign(&f, 1, hex, f.key), EVO_OK);
    evo_msg m;
    deploy_msg(&m, digest, blob, len);
    assert_int_equal(ctl_call(&f, &m, NULL), EVO_ERR_LIMIT);
    evo_agent_stop(a);
    evo_graph_free(g);
    free(blob);
    evo_tp_close(f.rep);
    evo_tp_close(f.pull);
}

int main(void)
{
    evo_log_set_sink(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deploy_checks_and_run),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_peer_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
