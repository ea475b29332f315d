/*
 * CoAP channels with real peers on UDP loopback: every message type
 * round-trips as confirmable POSTs, a 4 MiB tensor crosses block-wise in both
 * directions (Block1 request, Block2 response), a constrained node registers
 * and receives a model blob, DTLS-PSK works with the right key and fails with
 * a wrong one, and malformed messages get a 4.00 with an evo ERROR while the
 * server keeps serving.
 */
#include <pthread.h>

#include "transport_testutil.h"

typedef struct tt_server {
    evo_tp *tp;
    int n;      /* requests to serve */
    int errors; /* requests that failed to decode */
    evo_status last_error;
    bool reply; /* REP: echo every request back */
} tt_server;

static void *tt_serve(void *arg)
{
    tt_server *s = (tt_server *)arg;
    for (int i = 0; i < s->n; i++) {
        evo_msg m;
        evo_error err;
        evo_status st = evo_tp_recv(s->tp, &m, &err);
        if (st != EVO_OK) {
            s->errors++;
            s->last_error = st;
            continue;
        }
        if (s->reply && m.type == EVO_MSG_REGISTER) {
            /* a coordinator answers a registration with the node's id */
            evo_msg ack;
            evo_msg_init(&ack, EVO_MSG_ACK);
            ack.request_id = m.request_id;
            ack.u.ack.value = 4242;
            evo_tp_send(s->tp, &ack, &err);
        } else if (s->reply) {
            evo_tp_send(s->tp, &m, &err);
        }
        evo_msg_release(&m);
    }
    return NULL;
}

static void tc_opts(evo_tp_options *o)
{
    evo_tp_options_default(o);
    o->recv_timeout_ms = 20000;
    o->send_timeout_ms = 20000;
}

static evo_tp *tt_listen(const char *scheme, evo_tp_pattern p, const evo_tp_options *o, char *url,
                         size_t cap)
{
    evo_tp *l;
    evo_error err;
    char lurl[64];
    snprintf(lurl, sizeof lurl, "%s://127.0.0.1:0", scheme);
    if (evo_tp_open(&l, lurl, p, EVO_TP_LISTEN, o, &err) != EVO_OK)
        fail_msg("listen: %s", err.msg);
    assert_true(evo_tp_port(l) > 0);
    snprintf(url, cap, "%s://127.0.0.1:%d", scheme, evo_tp_port(l));
    return l;
}

static void tt_roundtrip(const char *scheme, const evo_tp_options *so, const evo_tp_options *co)
{
    char url[64];
    evo_tp *l = tt_listen(scheme, EVO_TP_REP, so, url, sizeof url);
    tt_server srv = {l, TT_NTYPES, 0, EVO_OK, true};
    pthread_t th;
    pthread_create(&th, NULL, tt_serve, &srv);
    evo_tp *d;
    evo_error err;
    if (evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, co, &err) != EVO_OK)
        fail_msg("dial: %s", err.msg);
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    for (int t = 0; t < TT_NTYPES; t++) {
        evo_msg back;
        if (evo_tp_send(d, &s->msgs[t], &err) != EVO_OK)
            fail_msg("send %d: %s", t, err.msg);
        assert_int_equal(evo_tp_recv(d, &back, &err), EVO_OK);
        if (t == 0) { /* registration is answered with an ACK */
            assert_int_equal(back.type, EVO_MSG_ACK);
            assert_int_equal(back.u.ack.value, 4242);
            assert_int_equal(back.request_id, s->msgs[0].request_id);
        } else {
            tt_assert_msg_equal(&s->msgs[t], &back);
            tt_assert_received(&back);
        }
        evo_msg_release(&back);
    }
    pthread_join(th, NULL);
    assert_int_equal(srv.errors, 0);
    tt_free_samples(s);
    free(s);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_roundtrip_coap(void **state)
{
    (void)state;
    evo_tp_options o;
    tc_opts(&o);
    tt_roundtrip("coap", &o, &o);
}

static const uint8_t tt_key[16] = "evo-secret-key!";

static void test_roundtrip_coaps_psk(void **state)
{
    (void)state;
    evo_tp_options o;
    tc_opts(&o);
    o.psk_identity = "edge-7";
    o.psk_key = tt_key;
    o.psk_key_len = sizeof tt_key;
    tt_roundtrip("coaps", &o, &o);

    /* a client with the wrong key gets nowhere */
    char url[64];
    evo_tp *l = tt_listen("coaps", EVO_TP_PULL, &o, url, sizeof url);
    evo_tp_options bad = o;
    static const uint8_t wrong[16] = "not-the-key!!!!";
    bad.psk_key = wrong;
    bad.send_timeout_ms = 3000;
    evo_tp *d;
    evo_error err;
    evo_status st = evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &bad, &err);
    if (st == EVO_OK) {
        evo_msg m;
        evo_msg_init(&m, EVO_MSG_HEARTBEAT);
        assert_int_not_equal(evo_tp_send(d, &m, &err), EVO_OK);
        evo_tp_close(d);
    }
    evo_tp_close(l);
}

static void test_big_tensor_blockwise(void **state)
{
    (void)state;
    evo_tp_options o;
    tc_opts(&o);
    char url[64];
    evo_tp *l = tt_listen("coap", EVO_TP_REP, &o, url, sizeof url);
    tt_server srv = {l, 1, 0, EVO_OK, true};
    pthread_t th;
    pthread_create(&th, NULL, tt_serve, &srv);
    const size_t n = (4u << 20) / 4;
    float *x = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 2654435761u) % 1000003u) * 1e-3f;
    evo_tensor t = {EVO_DT_FLOAT32, {4, {1, 16, 256, 256}}, x};
    evo_wire_tensor wt;
    evo_error err;
    assert_int_equal(
        evo_wire_tensor_encode(&wt, "act", -1, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err), EVO_OK);
    evo_msg m, back;
    evo_msg_init(&m, EVO_MSG_RUN);
    strcpy(m.u.run.model, "m");
    m.tensors = &wt;
    m.n_tensors = 1;
    evo_tp *d;
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &o, &err), EVO_OK);
    /* 4 MiB up as Block1, the echo down as Block2 */
    if (evo_tp_send(d, &m, &err) != EVO_OK)
        fail_msg("send 4 MiB: %s", err.msg);
    assert_int_equal(evo_tp_recv(d, &back, &err), EVO_OK);
    assert_int_equal(back.n_tensors, 1);
    float *y = malloc(n * 4);
    assert_int_equal(evo_wire_tensor_decode(&back.tensors[0], EVO_DT_FLOAT32, y, n * 4, NULL, &err),
                     EVO_OK);
    assert_true(memcmp(x, y, n * 4) == 0);
    evo_msg_release(&back);
    pthread_join(th, NULL);
    evo_tp_close(d);
    evo_tp_close(l);
    evo_wire_tensor_clear(&wt);
    free(x);
    free(y);
}

/* A constrained node registers, then asks for work and receives a model blob
 * (a DEPLOY in the reply), then streams tensors to a PULL endpoint. */
static void *tt_coordinator(void *arg)
{
    evo_tp *tp = (evo_tp *)arg;
    evo_msg m, r;
    evo_error err;
    static uint8_t blob[70000];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)(i ^ (i >> 8));
    for (int k = 0; k < 2; k++) {
        if (evo_tp_recv(tp, &m, &err) != EVO_OK)
            return NULL;
        if (m.type == EVO_MSG_REGISTER) {
            evo_msg_init(&r, EVO_MSG_ACK);
            r.u.ack.value = 7;
        } else {
            evo_msg_init(&r, EVO_MSG_DEPLOY);
            strcpy(r.u.deploy.model, "tiny");
            r.u.deploy.blob = blob;
            r.u.deploy.blob_len = r.u.deploy.blob_size = sizeof blob;
            evo_sha256(blob, sizeof blob, r.u.deploy.digest);
        }
        r.request_id = m.request_id;
        evo_tp_send(tp, &r, &err);
        evo_msg_release(&m);
    }
    return NULL;
}

static void test_constrained_node(void **state)
{
    (void)state;
    evo_tp_options o;
    tc_opts(&o);
    char url[64], purl[64];
    evo_tp *l = tt_listen("coap", EVO_TP_REP, &o, url, sizeof url);
    evo_tp *pl = tt_listen("coap", EVO_TP_PULL, &o, purl, sizeof purl);
    pthread_t th;
    pthread_create(&th, NULL, tt_coordinator, l);
    evo_tp *d, *push;
    evo_error err;
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &o, &err), EVO_OK);
    evo_msg m, r;
    evo_msg_init(&m, EVO_MSG_REGISTER);
    strcpy(m.u.reg.name, "mcu-1");
    strcpy(m.u.reg.device_class, "mcu");
    m.u.reg.memory_bytes = 256 << 10;
    m.request_id = 1;
    assert_int_equal(evo_tp_send(d, &m, &err), EVO_OK);
    assert_int_equal(evo_tp_recv(d, &r, &err), EVO_OK);
    assert_int_equal(r.type, EVO_MSG_ACK);
    assert_int_equal(r.u.ack.value, 7);
    evo_msg_release(&r);
    evo_msg_init(&m, EVO_MSG_HEARTBEAT);
    m.request_id = 2;
    assert_int_equal(evo_tp_send(d, &m, &err), EVO_OK);
    assert_int_equal(evo_tp_recv(d, &r, &err), EVO_OK);
    assert_int_equal(r.type, EVO_MSG_DEPLOY);
    assert_int_equal(r.u.deploy.blob_len, 70000);
    assert_int_equal(((const uint8_t *)r.u.deploy.blob)[69999], (uint8_t)(69999 ^ (69999 >> 8)));
    evo_msg_release(&r);
    pthread_join(th, NULL);
    /* stream three tensor batches */
    assert_int_equal(evo_tp_open(&push, purl, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_OK);
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    for (uint32_t i = 0; i < 3; i++) {
        s->msgs[4].sequence = i;
        assert_int_equal(evo_tp_send(push, &s->msgs[4], &err), EVO_OK);
    }
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(evo_tp_recv(pl, &r, &err), EVO_OK);
        s->msgs[4].sequence = i;
        tt_assert_msg_equal(&s->msgs[4], &r);
        evo_msg_release(&r);
    }
    tt_free_samples(s);
    free(s);
    evo_tp_close(push);
    evo_tp_close(d);
    evo_tp_close(pl);
    evo_tp_close(l);
}

static void test_bad_messages(void **state)
{
    (void)state;
    evo_tp_options o;
    tc_opts(&o);
    for (int pat = 0; pat < 2; pat++) {
        char url[64];
        evo_tp *l = tt_listen("coap", pat ? EVO_TP_PULL : EVO_TP_REP, &o, url, sizeof url);
        tt_server srv = {l, 5, 0, EVO_OK, pat == 0};
        pthread_t th;
        pthread_create(&th, NULL, tt_serve, &srv);
        evo_tp *d;
        evo_error err;
        assert_int_equal(
            evo_tp_open(&d, url, pat ? EVO_TP_PUSH : EVO_TP_REQ, EVO_TP_DIAL, &o, &err), EVO_OK);
        tt_samples *s = malloc(sizeof *s);
        tt_make_samples(s);
        size_t len;
        uint8_t *b = tt_encode(&s->msgs[4], &len);
        static const evo_status want[4] = {EVO_ERR_PARSE, EVO_ERR_UNSUPPORTED, EVO_ERR_UNSUPPORTED,
                                           EVO_ERR_PARSE};
        for (int k = 0; k < 4; k++) {
            uint8_t *c = malloc(len);
            memcpy(c, b, len);
            size_t cl = len;
            if (k == 0)
                cl -= 50; /* truncated */
            if (k == 1)
                c[6] = 99; /* unknown type */
            if (k == 2)
                c[4] = 3; /* unknown version */
            if (k == 3)
                c[32 + 12 + 6] = 0x7f; /* lying field length */
            /* the server answers 4.00 with an ERROR naming the problem */
            assert_int_equal(evo_tp_send_encoded(d, c, cl, &err), want[k]);
            assert_non_null(strstr(err.msg, "rejected"));
            free(c);
        }
        /* and still serves a good message */
        assert_int_equal(evo_tp_send(d, &s->msgs[4], &err), EVO_OK);
        if (!pat) {
            evo_msg r;
            assert_int_equal(evo_tp_recv(d, &r, &err), EVO_OK);
            tt_assert_msg_equal(&s->msgs[4], &r);
            evo_msg_release(&r);
        }
        pthread_join(th, NULL);
        assert_int_equal(srv.errors, 4);
        free(b);
        tt_free_samples(s);
        free(s);
        evo_tp_close(d);
        evo_tp_close(l);
    }
}

static void test_open_errors(void **state)
{
    (void)state;
    evo_tp *t = NULL;
    evo_error err;
    evo_tp_options o;
    tc_opts(&o);
    assert_int_equal(evo_tp_open(&t, "coap://127.0.0.1:0", EVO_TP_REQ, EVO_TP_LISTEN, &o, &err),
                     EVO_ERR_UNSUPPORTED);
    assert_int_equal(evo_tp_open(&t, "coaps://127.0.0.1:5684", EVO_TP_REQ, EVO_TP_DIAL, &o, &err),
                     EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "psk"));
    assert_null(t);
    /* nobody listening: the request times out or is reset */
    o.send_timeout_ms = 1500;
    assert_int_equal(evo_tp_open(&t, "coap://127.0.0.1:9", EVO_TP_PUSH, EVO_TP_DIAL, &o, &err),
                     EVO_OK);
    evo_msg m;
    evo_msg_init(&m, EVO_MSG_ACK);
    assert_int_equal(evo_tp_send(t, &m, &err), EVO_ERR_IO);
    evo_tp_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_coap),       cmocka_unit_test(test_roundtrip_coaps_psk),
        cmocka_unit_test(test_big_tensor_blockwise), cmocka_unit_test(test_constrained_node),
        cmocka_unit_test(test_bad_messages),         cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
