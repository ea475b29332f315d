/*
 * nng channels with real peers on loopback: every message type round-trips
 * over tcp, ipc, inproc and tls+tcp; a 64 MiB tensor crosses tcp and tls+tcp
 * intact; many stream messages are in flight at once; TLS refuses a wrong CA,
 * a missing client certificate and bad files with clear errors; malformed
 * messages are rejected and the channel keeps working.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "transport_testutil.h"

static char *g_dir;  /* temp dir for ipc sockets and certificates */
static bool g_certs; /* TLS material available */

static int tt_setup(void **state)
{
    (void)state;
    g_dir = tt_mkdtemp();
    g_certs = tt_make_certs(g_dir);
    return 0;
}

static int tt_teardown(void **state)
{
    (void)state;
    tt_rmrf(g_dir);
    free(g_dir);
    return 0;
}

static const char *tt_cert(const char *name)
{
    return tt_cert_in(g_dir, name);
}

static void tt_tls_server(evo_tp_options *o, bool mutual)
{
    tt_tls_server_in(g_dir, o, mutual);
}

static void tt_tls_client(evo_tp_options *o, const char *ca, bool with_cert)
{
    tt_tls_client_in(g_dir, o, ca, with_cert);
}

/* Open a listener at url (port 0 allowed) and a dialer to it. */
static void tt_pair(const char *url, evo_tp_pattern lp, evo_tp_pattern dp, const evo_tp_options *lo,
                    const evo_tp_options *dopt, evo_tp **l, evo_tp **d)
{
    evo_error err;
    evo_status st = evo_tp_open(l, url, lp, EVO_TP_LISTEN, lo, &err);
    if (st != EVO_OK)
        fail_msg("listen %s: %s", url, err.msg);
    char durl[512];
    int port = evo_tp_port(*l);
    if (port > 0) {
        const char *scheme = strncmp(url, "tls", 3) == 0 ? "tls+tcp" : "tcp";
        snprintf(durl, sizeof durl, "%s://127.0.0.1:%d", scheme, port);
    } else {
        snprintf(durl, sizeof durl, "%s", url);
    }
    st = evo_tp_open(d, durl, dp, EVO_TP_DIAL, dopt, &err);
    if (st != EVO_OK)
        fail_msg("dial %s: %s", durl, err.msg);
}

static void tt_roundtrip_all(evo_tp *req, evo_tp *rep)
{
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    evo_error err;
    for (int t = 0; t < TT_NTYPES; t++) {
        evo_msg got, back;
        assert_int_equal(evo_tp_send(req, &s->msgs[t], &err), EVO_OK);
        if (evo_tp_recv(rep, &got, &err) != EVO_OK)
            fail_msg("recv: %s", err.msg);
        tt_assert_msg_equal(&s->msgs[t], &got);
        tt_assert_received(&got);
        /* echo the decoded message: its tensors still point into the buffer */
        assert_int_equal(evo_tp_send(rep, &got, &err), EVO_OK);
        if (evo_tp_recv(req, &back, &err) != EVO_OK)
            fail_msg("recv reply: %s", err.msg);
        tt_assert_msg_equal(&s->msgs[t], &back);
        tt_assert_received(&back);
        evo_msg_release(&got);
        evo_msg_release(&back);
    }
    tt_free_samples(s);
    free(s);
}

static void tt_roundtrip_url(const char *url, const evo_tp_options *lo, const evo_tp_options *dopt)
{
    evo_tp *l, *d;
    tt_pair(url, EVO_TP_REP, EVO_TP_REQ, lo, dopt, &l, &d);
    tt_roundtrip_all(d, l);
    evo_tp_close(d);
    evo_tp_close(l);
    /* and the other way round: the dialer answers */
    tt_pair(url, EVO_TP_REQ, EVO_TP_REP, lo, dopt, &l, &d);
    tt_roundtrip_all(l, d);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_roundtrip_tcp(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    tt_roundtrip_url("tcp://127.0.0.1:0", &o, &o);
}

static void test_roundtrip_ipc(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    char url[600];
    snprintf(url, sizeof url, "ipc://%s/evo.sock", g_dir);
    tt_roundtrip_url(url, &o, &o);
}

static void test_roundtrip_inproc(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    tt_roundtrip_url("inproc://evo-transport-test", &o, &o);
}

static void test_roundtrip_tls(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so, co;
    tt_tls_server(&so, false);
    tt_tls_client(&co, "ca.pem", false);
    tt_roundtrip_url("tls+tcp://127.0.0.1:0", &so, &co);
    /* mutual authentication */
    tt_tls_server(&so, true);
    tt_tls_client(&co, "ca.pem", true);
    tt_roundtrip_url("tls+tcp://127.0.0.1:0", &so, &co);
}

/* ---------------------------------------------------------------- big tensors */

static void tt_big_tensor(const char *url, const evo_tp_options *lo, const evo_tp_options *dopt)
{
    evo_msg m;
    evo_wire_tensor wt;
    float *x;
    size_t n;
    tt_big_msg(&m, &wt, &x, &n);
    evo_tp *l, *d;
    evo_error err;
    tt_pair(url, EVO_TP_PULL, EVO_TP_PUSH, lo, dopt, &l, &d);
    assert_int_equal(evo_tp_send(d, &m, &err), EVO_OK);
    evo_msg got;
    if (evo_tp_recv(l, &got, &err) != EVO_OK)
        fail_msg("recv 64 MiB over %s: %s", url, err.msg);
    tt_assert_big_msg(&got, x, n); /* zero-copy: read where nng received it */
    evo_msg_release(&got);
    evo_tp_close(d);
    evo_tp_close(l);
    evo_wire_tensor_clear(&wt);
    free(x);
}

static void test_big_tensor_tcp(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    tt_big_tensor("tcp://127.0.0.1:0", &o, &o);
}

static void test_big_tensor_tls(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so, co;
    tt_tls_server(&so, false);
    tt_tls_client(&co, "ca.pem", false);
    tt_big_tensor("tls+tcp://127.0.0.1:0", &so, &co);
}

static void test_stream_in_flight(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    o.stream_depth = 64;
    evo_tp *l, *d;
    tt_pair("tcp://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &o, &l, &d);
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    evo_error err;
    /* 48 messages are sent before the receiver reads any */
    for (uint32_t i = 0; i < 48; i++) {
        s->msgs[4].sequence = i;
        assert_int_equal(evo_tp_send(d, &s->msgs[4], &err), EVO_OK);
    }
    for (uint32_t i = 0; i < 48; i++) {
        evo_msg got;
        assert_int_equal(evo_tp_recv(l, &got, &err), EVO_OK);
        s->msgs[4].sequence = i;
        tt_assert_msg_equal(&s->msgs[4], &got);
        evo_msg_release(&got);
    }
    tt_free_samples(s);
    free(s);
    evo_tp_close(d);
    evo_tp_close(l);
}

/* ---------------------------------------------------------------- TLS errors */

static void test_tls_refusals(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so, co;
    evo_tp *l, *d = NULL;
    evo_error err;
    tt_tls_server(&so, false);
    assert_int_equal(evo_tp_open(&l, "tls+tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_LISTEN, &so, &err),
                     EVO_OK);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", evo_tp_port(l));
    /* a client trusting another CA is refused */
    tt_tls_client(&co, "other-ca.pem", false);
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err), EVO_ERR_IO);
    assert_null(d);
    assert_non_null(strstr(err.msg, "TLS handshake"));
    /* a server name the certificate was not issued for */
    tt_tls_client(&co, "ca.pem", false);
    co.tls_server_name = "evil.example";
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err), EVO_ERR_IO);
    /* missing and malformed files are named */
    tt_tls_client(&co, "no-such-ca.pem", false);
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "no-such-ca.pem"));
    tt_tls_client(&co, "ca.key", false); /* a key is not a certificate */
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err), EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "ca.key"));
    evo_tp_options bad;
    tt_tls_server(&bad, false);
    bad.tls_key_file = tt_cert("client.key"); /* does not match server.pem */
    assert_int_equal(
        evo_tp_open(&d, "tls+tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_LISTEN, &bad, &err),
        EVO_ERR_INVALID_ARG);
    tt_opts(&co);
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err), EVO_ERR_INVALID_ARG);
    /* the listener still serves a good client */
    tt_tls_client(&co, "ca.pem", false);
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err), EVO_OK);
    tt_roundtrip_all(d, l);
    evo_tp_close(d);
    evo_tp_close(l);

    /* mutual: a client without a certificate is refused */
    tt_tls_server(&so, true);
    assert_int_equal(evo_tp_open(&l, "tls+tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_LISTEN, &so, &err),
                     EVO_OK);
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", evo_tp_port(l));
    tt_tls_client(&co, "ca.pem", false);
    co.recv_timeout_ms = 500;
    d = NULL;
    evo_status st = evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &co, &err);
    if (st == EVO_OK) {
        /* some TLS stacks finish the client side before the server's verdict:
         * then nothing may get through */
        evo_msg m, r;
        evo_msg_init(&m, EVO_MSG_ACK);
        (void)evo_tp_send(d, &m, &err);
        assert_int_not_equal(evo_tp_recv(d, &r, &err), EVO_OK);
        evo_tp_close(d);
    }
    evo_tp_close(l);
}

/* LeakSanitizer's suppressions (read at exit in ASan builds, unused
 * otherwise). nng 1.5.2 leaks a message that is inside a PUSH pipe when
 * the peer drops that connection: test_bad_messages_stream drops one on
 * purpose (an oversized message) while its dialer keeps sending, and about
 * 1 run in 10 leaked one such message (allocated by nng_msg_alloc in
 * tp_nng_send, handed to nng_sendmsg, never freed by nng). Only leaks
 * allocated under that test are suppressed. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:test_bad_messages_stream\n";
}

/* ---------------------------------------------------------------- bad peers */

static uint8_t *tt_bad(int kind, size_t *len)
{
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    uint8_t *b = tt_encode(&s->msgs[4], len);
    tt_free_samples(s);
    free(s);
    switch (kind) {
    case 0:
        *len -= 100;
        break; /* truncated body */
    case 1:
        b[6] = 77;
        break; /* unknown type */
    case 2:
        b[4] = 9;
        break; /* unknown version */
    case 3:
        b[24] ^= 0x40;
        break; /* lying body length */
    case 4:
        b[32 + 12 + 4] = 0xff;
        b[32 + 12 + 6] = 0x7f;
        break; /* lying field length */
    default:
        for (size_t i = 0; i < *len; i++) /* noise */
            b[i] = (uint8_t)(i * 131 + 7);
    }
    return b;
}

static void test_bad_messages_reqrep(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    evo_tp *l, *d;
    tt_pair("tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_REQ, &o, &o, &l, &d);
    evo_error err;
    static const evo_status want[6] = {EVO_ERR_PARSE, EVO_ERR_UNSUPPORTED, EVO_ERR_UNSUPPORTED,
                                       EVO_ERR_PARSE, EVO_ERR_PARSE,       EVO_ERR_PARSE};
    for (int k = 0; k < 6; k++) {
        size_t len;
        uint8_t *b = tt_bad(k, &len);
        assert_int_equal(evo_tp_send_encoded(d, b, len, &err), EVO_OK);
        evo_msg got;
        evo_status st = evo_tp_recv(l, &got, &err);
        assert_int_equal(st, want[k]);
        /* the requester gets an ERROR reply naming the problem */
        assert_int_equal(evo_tp_recv(d, &got, &err), EVO_OK);
        assert_int_equal(got.type, EVO_MSG_ERROR);
        assert_int_equal(got.u.error.status, want[k]);
        assert_true(strlen(got.u.error.message) > 10);
        evo_msg_release(&got);
        free(b);
    }
    /* the channel still works */
    tt_roundtrip_all(d, l);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_bad_messages_stream(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    o.recv_timeout_ms = 1000; /* the first try after the drop may be lost */
    o.limits.max_body = 60000;
    evo_tp *l, *d;
    tt_pair("tcp://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &o, &l, &d);
    evo_error err;
    evo_msg ok, got;
    evo_msg_init(&ok, EVO_MSG_HEARTBEAT);
    strcpy(ok.u.heartbeat.name, "n1");
    for (int k = 0; k < 6; k++) {
        size_t len;
        uint8_t *b = tt_bad(k, &len);
        assert_int_equal(evo_tp_send_encoded(d, b, len, &err), EVO_OK);
        assert_int_not_equal(evo_tp_recv(l, &got, &err), EVO_OK);
        free(b);
        ok.sequence = (uint32_t)k;
        assert_int_equal(evo_tp_send(d, &ok, &err), EVO_OK);
        assert_int_equal(evo_tp_recv(l, &got, &err), EVO_OK);
        assert_int_equal(got.sequence, k);
        evo_msg_release(&got);
    }
    /* above the receiver's size limit: nng drops it and the connection; the
     * dialer reconnects and later messages arrive */
    size_t big = 100000;
    uint8_t *b = calloc(1, big);
    assert_int_equal(evo_tp_send_encoded(d, b, big, &err), EVO_OK);
    free(b);
    /* Reconnecting takes nng a moment, longer on a loaded machine: retry
     * for up to 15 s of wall time rather than a fixed count. */
    bool arrived = false;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; !arrived; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 15)
            break;
        ok.sequence = 1000u + (uint32_t)i;
        assert_int_equal(evo_tp_send(d, &ok, &err), EVO_OK);
        evo_status st = evo_tp_recv(l, &got, &err);
        if (st == EVO_OK) {
            assert_int_equal(got.type, EVO_MSG_HEARTBEAT);
            arrived = true;
            evo_msg_release(&got);
        }
    }
    assert_true(arrived);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_raw_garbage_peer(void **state)
{
    (void)state;
    evo_tp_options o;
    tt_opts(&o);
    evo_tp *l, *d;
    evo_error err;
    assert_int_equal(evo_tp_open(&l, "tcp://127.0.0.1:0", EVO_TP_REP, EVO_TP_LISTEN, &o, &err),
                     EVO_OK);
    int port = evo_tp_port(l);
    assert_true(port > 0);
    /* a peer that does not speak SP at all */
    for (int k = 0; k < 3; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        uint8_t junk[256];
        for (int i = 0; i < 256; i++)
            junk[i] = (uint8_t)(i * 37 + k);
        if (k == 1) { /* a valid SP header with a 2^62 byte message length */
            static const uint8_t sp[8] = {0, 'S', 'P', 0, 0x30, 0x31, 0, 0};
            memcpy(junk, sp, 8);
            memset(junk + 8, 0x40, 8);
        }
        assert_true(write(fd, junk, sizeof junk) > 0);
        close(fd);
    }
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_REQ, EVO_TP_DIAL, &o, &err), EVO_OK);
    tt_roundtrip_all(d, l);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_open_errors(void **state)
{
    (void)state;
    evo_tp *t = NULL;
    evo_error err;
    assert_int_equal(evo_tp_open(&t, "udp://x", EVO_TP_REQ, EVO_TP_DIAL, NULL, &err),
                     EVO_ERR_UNSUPPORTED);
    assert_int_equal(evo_tp_open(&t, "tcp://127.0.0.1:1", EVO_TP_REQ, EVO_TP_DIAL, NULL, &err),
                     EVO_ERR_IO);
    assert_int_equal(evo_tp_open(&t, "tcp://no-port", EVO_TP_REQ, EVO_TP_LISTEN, NULL, &err),
                     EVO_ERR_INVALID_ARG);
    assert_null(t);
    /* a REP cannot send before a request; a timeout is reported as such */
    evo_tp_options o;
    tt_opts(&o);
    o.recv_timeout_ms = 50;
    assert_int_equal(evo_tp_open(&t, "inproc://lonely", EVO_TP_REP, EVO_TP_LISTEN, &o, &err),
                     EVO_OK);
    evo_msg m;
    evo_msg_init(&m, EVO_MSG_ACK);
    assert_int_equal(evo_tp_send(t, &m, &err), EVO_ERR_INVALID_ARG);
    assert_int_equal(evo_tp_recv(t, &m, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "timed out"));
    evo_tp_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_tcp),       cmocka_unit_test(test_roundtrip_ipc),
        cmocka_unit_test(test_roundtrip_inproc),    cmocka_unit_test(test_roundtrip_tls),
        cmocka_unit_test(test_big_tensor_tcp),      cmocka_unit_test(test_big_tensor_tls),
        cmocka_unit_test(test_stream_in_flight),    cmocka_unit_test(test_tls_refusals),
        cmocka_unit_test(test_bad_messages_reqrep), cmocka_unit_test(test_bad_messages_stream),
        cmocka_unit_test(test_raw_garbage_peer),    cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, tt_setup, tt_teardown);
}
