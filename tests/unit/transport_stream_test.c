/*
 * tcp+stream://, ipc+stream:// and tls+tcp+stream:// channels (nng byte
 * streams, no SP messages) with real peers: every message type round-trips
 * exactly, a big tensor arrives intact and 64-byte aligned, many senders
 * share one listener, bad messages are refused while the channel stays
 * usable (a bad body) or the sender is dropped (a bad header), TLS refuses
 * a wrong CA and a missing client certificate, and misuse fails with clear
 * errors.
 */
#include <pthread.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "transport_testutil.h"

#include "../../transport/tp_internal.h"

static char *g_dir;  /* temp dir for ipc sockets and certificates */
static bool g_certs; /* TLS material available */

static int ts_setup(void **state)
{
    (void)state;
    g_dir = tt_mkdtemp();
    g_certs = tt_make_certs(g_dir);
    return 0;
}

static int ts_teardown(void **state)
{
    (void)state;
    tt_rmrf(g_dir);
    free(g_dir);
    return 0;
}

static void ts_opts(evo_tp_options *o)
{
    tt_opts(o);
}

/* The URL a dialer uses for listener l opened at url. */
static void ts_dial_url(const char *url, const evo_tp *l, char *durl, size_t cap)
{
    int port = evo_tp_port(l);
    if (port > 0)
        snprintf(durl, cap, "%s://127.0.0.1:%d",
                 strncmp(url, "tls", 3) == 0 ? "tls+tcp+stream" : "tcp+stream", port);
    else
        snprintf(durl, cap, "%s", url);
}

/* Listener at url (tcp port 0 allowed) with pattern lp and options lo,
 * dialer with dp and dopt. */
static void ts_pair2(const char *url, evo_tp_pattern lp, evo_tp_pattern dp,
                     const evo_tp_options *lo, const evo_tp_options *dopt, evo_tp **l, evo_tp **d)
{
    evo_error err;
    if (evo_tp_open(l, url, lp, EVO_TP_LISTEN, lo, &err) != EVO_OK)
        fail_msg("listen %s: %s", url, err.msg);
    char durl[512];
    ts_dial_url(url, *l, durl, sizeof durl);
    if (evo_tp_open(d, durl, dp, EVO_TP_DIAL, dopt, &err) != EVO_OK)
        fail_msg("dial %s: %s", durl, err.msg);
}

static void ts_pair(const char *url, evo_tp_pattern lp, evo_tp_pattern dp, const evo_tp_options *o,
                    evo_tp **l, evo_tp **d)
{
    ts_pair2(url, lp, dp, o, o, l, d);
}

typedef struct ts_all_sender {
    evo_tp *tp;
    tt_samples *s;
    int failures;
} ts_all_sender;

static void *ts_send_all_thread(void *arg)
{
    ts_all_sender *a = (ts_all_sender *)arg;
    evo_error err;
    for (int t = 0; t < TT_NTYPES; t++)
        if (evo_tp_send(a->tp, &a->s->msgs[t], &err) != EVO_OK)
            a->failures++;
    return NULL;
}

/* Every sample message from push to pull, sent from another thread (a TLS
 * handshake needs the receiving side to be reading). */
static void ts_send_all_recv(evo_tp *push, evo_tp *pull)
{
    tt_samples *s = malloc(sizeof *s);
    tt_make_samples(s);
    evo_error err;
    ts_all_sender a = {push, s, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ts_send_all_thread, &a), 0);
    for (int t = 0; t < TT_NTYPES; t++) {
        evo_msg got;
        if (evo_tp_recv(pull, &got, &err) != EVO_OK)
            fail_msg("recv: %s", err.msg);
        tt_assert_msg_equal(&s->msgs[t], &got);
        tt_assert_received(&got);
        evo_msg_release(&got);
    }
    pthread_join(th, NULL);
    assert_int_equal(a.failures, 0);
    tt_free_samples(s);
    free(s);
}

static void ts_roundtrip(const char *url)
{
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *d;
    ts_pair(url, EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    ts_send_all_recv(d, l);
    evo_tp_close(d);
    evo_tp_close(l);
    /* the other way round: the listener pushes */
    ts_pair(url, EVO_TP_PUSH, EVO_TP_PULL, &o, &l, &d);
    ts_send_all_recv(l, d);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_stream_roundtrip_tcp(void **state)
{
    (void)state;
    ts_roundtrip("tcp+stream://127.0.0.1:0");
}

static void test_stream_roundtrip_ipc(void **state)
{
    (void)state;
    char url[600];
    snprintf(url, sizeof url, "ipc+stream://%s/s.sock", g_dir);
    ts_roundtrip(url);
}

/* ---------------------------------------------------------------- big tensor */

typedef struct ts_sender {
    evo_tp *tp;
    const evo_msg *m;
    evo_status st;
} ts_sender;

static void *ts_send_thread(void *arg)
{
    ts_sender *s = (ts_sender *)arg;
    evo_error err;
    s->st = evo_tp_send(s->tp, s->m, &err);
    return NULL;
}

/* Send m on push from another thread (it may be larger than the socket
 * buffers) while receiving it on pull into *got. */
static void ts_transfer(evo_tp *push, evo_tp *pull, const evo_msg *m, evo_msg *got)
{
    ts_sender snd = {push, m, EVO_ERR_INTERNAL};
    pthread_t th;
    evo_error err;
    assert_int_equal(pthread_create(&th, NULL, ts_send_thread, &snd), 0);
    evo_status st = evo_tp_recv(pull, got, &err);
    pthread_join(th, NULL);
    if (st != EVO_OK)
        fail_msg("recv: %s", err.msg);
    assert_int_equal(snd.st, EVO_OK);
}

static void test_stream_big_tensor(void **state)
{
    (void)state;
    enum { N = 3 * 1024 * 1024 + 2 }; /* 12 MiB + 8 bytes: more than socket buffers */
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 9973) * 0.25f - 7.0f;
    evo_tensor t = {EVO_DT_FLOAT32, {2, {5, N / 5}}, x};
    assert_int_equal(N % 5, 0);
    evo_wire_tensor wt;
    evo_error err;
    assert_int_equal(
        evo_wire_tensor_encode(&wt, "big", 7, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err), EVO_OK);
    evo_msg m;
    evo_msg_init(&m, EVO_MSG_TENSORS);
    m.sequence = 42;
    m.tensors = &wt;
    m.n_tensors = 1;
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *d;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    for (int rep = 0; rep < 3; rep++) { /* the send buffer is reused */
        evo_msg got;
        ts_transfer(d, l, &m, &got);
        assert_int_equal(got.sequence, 42);
        assert_int_equal(got.n_tensors, 1);
        assert_int_equal(got.tensors[0].index, 7);
        assert_int_equal(got.tensors[0].shape.dims[1], N / 5);
        const void *view;
        assert_int_equal(evo_wire_tensor_view(&got.tensors[0], EVO_DT_FLOAT32, &view), EVO_OK);
        assert_int_equal((uintptr_t)view % 64, 0);
        assert_memory_equal(view, x, (size_t)N * sizeof *x);
        if (rep < 2) { /* its buffer goes back to the channel for the next one */
            evo_msg_release(&got);
            continue;
        }
        /* the last message outlives its channel: the buffer stays valid */
        evo_tp_close(d);
        evo_tp_close(l);
        assert_memory_equal(view, x, (size_t)N * sizeof *x);
        evo_msg_release(&got);
    }
    evo_wire_tensor_clear(&wt);
    free(x);
}

/* Two threads push 1 MiB messages (larger than the socket buffers, so a send
 * takes several writes) on one channel: every message arrives whole (the
 * channel serialises them), none is lost, each thread's stay in order. */
enum { TS_CN = 1 << 18 };

typedef struct ts_pusher {
    evo_tp *tp;
    uint32_t base;
    float value;
    int failures;
    float data[TS_CN];
} ts_pusher;

/* Send t raw as tensor `name` in a TENSORS message with sequence seq. */
static bool ts_send_tensor(evo_tp *tp, const evo_tensor *t, const char *name, uint32_t seq)
{
    evo_wire_tensor wt;
    evo_msg m;
    evo_error err;
    if (evo_wire_tensor_encode(&wt, name, -1, t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err) != EVO_OK)
        return false;
    evo_msg_init(&m, EVO_MSG_TENSORS);
    m.sequence = seq;
    m.tensors = &wt;
    m.n_tensors = 1;
    bool ok = evo_tp_send(tp, &m, &err) == EVO_OK;
    evo_wire_tensor_clear(&wt);
    return ok;
}

static void *ts_push_thread(void *arg)
{
    ts_pusher *p = (ts_pusher *)arg;
    for (int i = 0; i < TS_CN; i++)
        p->data[i] = p->value;
    evo_tensor t = {EVO_DT_FLOAT32, {1, {TS_CN}}, p->data};
    for (uint32_t i = 0; i < 24; i++)
        p->failures += !ts_send_tensor(p->tp, &t, "t", p->base + i);
    return NULL;
}

static void test_stream_concurrent_senders(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *d;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    ts_pusher *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_true(a && b);
    *a = (ts_pusher){d, 0, 1.0f, 0, {0}};
    *b = (ts_pusher){d, 1000, 2.0f, 0, {0}};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, ts_push_thread, a), 0);
    assert_int_equal(pthread_create(&tb, NULL, ts_push_thread, b), 0);
    uint32_t next[2] = {0, 1000};
    evo_error err;
    for (int i = 0; i < 48; i++) {
        evo_msg got;
        if (evo_tp_recv(l, &got, &err) != EVO_OK)
            fail_msg("recv %d: %s", i, err.msg);
        assert_int_equal(got.n_tensors, 1);
        const float *v;
        assert_int_equal(evo_wire_tensor_view(&got.tensors[0], EVO_DT_FLOAT32, (const void **)&v),
                         EVO_OK);
        assert_int_equal(got.tensors[0].payload_len, TS_CN * 4);
        int k = got.sequence >= 1000;
        assert_int_equal(got.sequence, next[k]);
        next[k]++;
        for (int j = 0; j < TS_CN; j += 4099)
            assert_true(v[j] == (k ? 2.0f : 1.0f));
        assert_true(v[TS_CN - 1] == (k ? 2.0f : 1.0f));
        evo_msg_release(&got);
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a->failures + b->failures, 0);
    free(a);
    free(b);
    evo_tp_close(d);
    evo_tp_close(l);
}

/* ------------------------------------------------ burst of many sizes */

enum { TS_BURST = 12000, TS_BURST_TINY = 10000, TS_BURST_MAX = 9000 };

/* Float count of burst message i: first only tiny ones (a 16 KiB
 * read-ahead holds a hundred and often ends inside a header, which the
 * reader then has to move to the front), then also ones beyond the
 * read-ahead. */
static int ts_burst_len(uint32_t i)
{
    static const int lens[] = {0,  1,  2,  3,   5,   8,   13,   21,
                               34, 55, 89, 144, 233, 377, 4100, TS_BURST_MAX};
    return lens[(i * 7u + i / 16u) % (i < TS_BURST_TINY ? 8u : 16u)];
}

static float ts_burst_value(uint32_t i, int j)
{
    return (float)(i % 251u) + (float)j * 0.25f;
}

typedef struct ts_burster {
    evo_tp *tp;
    int failures;
} ts_burster;

static void *ts_burst_thread(void *arg)
{
    ts_burster *b = (ts_burster *)arg;
    float *v = malloc(TS_BURST_MAX * sizeof *v);
    for (uint32_t i = 0; v && i < TS_BURST; i++) {
        int n = ts_burst_len(i);
        for (int j = 0; j < n; j++)
            v[j] = ts_burst_value(i, j);
        evo_tensor t = {EVO_DT_FLOAT32, {1, {n}}, v};
        b->failures += !ts_send_tensor(b->tp, &t, "b", i);
    }
    b->failures += v == NULL;
    free(v);
    return NULL;
}

/* Messages of mixed sizes sent back to back (so several, and parts of the
 * next, arrive in one read) each come out whole and in order. */
static void ts_burst(const char *url)
{
    evo_tp_options o;
    ts_opts(&o);
    o.stream_depth = 4; /* the reader also waits for room now and then */
    evo_tp *l, *d;
    ts_pair(url, EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    ts_burster b = {d, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ts_burst_thread, &b), 0);
    evo_error err;
    for (uint32_t i = 0; i < TS_BURST; i++) {
        evo_msg got;
        if (evo_tp_recv(l, &got, &err) != EVO_OK)
            fail_msg("recv %u: %s", i, err.msg);
        assert_int_equal(got.sequence, i);
        assert_int_equal(got.n_tensors, 1);
        int n = ts_burst_len(i);
        assert_int_equal(got.tensors[0].payload_len, (size_t)n * 4);
        const float *v;
        assert_int_equal(evo_wire_tensor_view(&got.tensors[0], EVO_DT_FLOAT32, (const void **)&v),
                         EVO_OK);
        for (int j = 0; j < n; j++)
            if (v[j] != ts_burst_value(i, j))
                fail_msg("message %u float %d: %g, expected %g", i, j, v[j], ts_burst_value(i, j));
        evo_msg_release(&got);
    }
    pthread_join(th, NULL);
    assert_int_equal(b.failures, 0);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_stream_burst_of_sizes(void **state)
{
    (void)state;
    ts_burst("tcp+stream://127.0.0.1:0");
    char url[512];
    snprintf(url, sizeof url, "ipc+stream://%s/burst.sock", g_dir);
    ts_burst(url);
}

/* A message that waits in the listener's queue keeps the time it arrived
 * (what a node's stage timings count as the end of the transfer), not the
 * time evo_tp_recv took it out. */
static void test_stream_received_at_arrival(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *d;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    float v[4] = {1, 2, 3, 4};
    evo_tensor t = {EVO_DT_FLOAT32, {1, {4}}, v};
    assert_true(ts_send_tensor(d, &t, "t", 1));
    struct timespec nap = {0, 300 * 1000000L}, now;
    nanosleep(&nap, NULL); /* the reader queued it long ago */
    evo_msg got;
    evo_error err;
    assert_int_equal(evo_tp_recv(l, &got, &err), EVO_OK);
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    tt_assert_received(&got);
    assert_true(now_ns - got.received_ns >= 250000000u);
    evo_msg_release(&got);
    evo_tp_close(d);
    evo_tp_close(l);
}

/* ------------------------------------------------------- gather encoding */

/* A message with payloads above and below the reference threshold. */
typedef struct ts_mixed {
    float a[5000], b[25], c[10000], d[16384];
    evo_wire_tensor t[4];
    evo_msg m;
} ts_mixed;

static void ts_make_mixed(ts_mixed *x)
{
    evo_error err;
    for (int i = 0; i < 16384; i++) {
        if (i < 5000)
            x->a[i] = (float)i * 0.5f;
        if (i < 25)
            x->b[i] = (float)-i;
        if (i < 10000)
            x->c[i] = (float)(i % 77) - 3.0f;
        x->d[i] = (float)(i % 1000) * 0.01f;
    }
    evo_tensor ta = {EVO_DT_FLOAT32, {2, {50, 100}}, x->a};
    evo_tensor tb = {EVO_DT_FLOAT32, {1, {25}}, x->b};
    evo_tensor tc = {EVO_DT_FLOAT32, {1, {10000}}, x->c};
    evo_tensor td = {EVO_DT_FLOAT32, {2, {128, 128}}, x->d};
    assert_int_equal(
        evo_wire_tensor_encode(&x->t[0], "a", 0, &ta, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&x->t[1], "b", 1, &tb, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&x->t[2], "c", 2, &tc, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&x->t[3], "d", 3, &td, EVO_ENC_FP16, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    evo_msg_init(&x->m, EVO_MSG_TENSORS);
    x->m.sequence = 77;
    x->m.tensors = x->t;
    x->m.n_tensors = 4;
}

static void ts_free_mixed(ts_mixed *x)
{
    for (int i = 0; i < 4; i++)
        evo_wire_tensor_clear(&x->t[i]);
}

static uint8_t ts_buf[1 << 17];
static uint8_t *ts_get_buf(void *ctx, size_t len)
{
    (void)ctx;
    return len <= sizeof ts_buf ? ts_buf : NULL;
}

/* The buffer with the referenced payloads put back in is exactly the
 * contiguous encoding, for every threshold and reference budget. */
static void test_stream_gather_encoding(void **state)
{
    (void)state;
    ts_mixed *x = malloc(sizeof *x);
    ts_make_mixed(x);
    size_t len;
    uint8_t *want = tt_encode(&x->m, &len);
    static const size_t mins[] = {1, 100, 16384, 30000, 1u << 20};
    static const uint32_t maxes[] = {0, 1, 2, 16};
    uint8_t *got = malloc(len);
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 4; k++) {
            tp_wire_ref refs[16];
            tp_wire_scatter sc;
            evo_error err;
            assert_int_equal(
                tp_wire_encode_refs(&x->m, mins[i], refs, maxes[k], ts_get_buf, NULL, &sc, &err),
                EVO_OK);
            assert_int_equal(sc.total, len);
            assert_true(sc.n_refs <= maxes[k]);
            size_t off = 0, w = 0, refd = 0;
            for (uint32_t r = 0; r < sc.n_refs; r++) {
                assert_true(refs[r].len >= mins[i]);
                memcpy(got + w, sc.buf + off, refs[r].at - off);
                w += refs[r].at - off;
                memcpy(got + w, refs[r].p, refs[r].len);
                w += refs[r].len;
                refd += refs[r].len;
                off = refs[r].at;
            }
            memcpy(got + w, sc.buf + off, sc.buf_len - off);
            w += sc.buf_len - off;
            assert_int_equal(w, len);
            assert_int_equal(sc.buf_len + refd, len);
            if (memcmp(got, want, len))
                fail_msg("min_ref %zu max_refs %u: reassembled bytes differ", mins[i], maxes[k]);
        }
    }
    /* the 40000-byte payload of 'c' (and 'a', 20000) are referenced at 16 KiB */
    tp_wire_ref refs[16];
    tp_wire_scatter sc;
    evo_error err;
    assert_int_equal(tp_wire_encode_refs(&x->m, 16384, refs, 16, ts_get_buf, NULL, &sc, &err),
                     EVO_OK);
    assert_int_equal(sc.n_refs, 3);
    assert_ptr_equal(refs[0].p, x->a);
    assert_ptr_equal(refs[1].p, x->c);
    free(got);
    free(want);
    /* and over a real stream: tensors with payloads from three places */
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *d;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    evo_msg m2;
    assert_int_equal(evo_tp_send(d, &x->m, &err), EVO_OK);
    assert_int_equal(evo_tp_recv(l, &m2, &err), EVO_OK);
    tt_assert_msg_equal(&x->m, &m2);
    evo_msg_release(&m2);
    /* six referenced payloads: 13 gather entries, more than one aio takes */
    evo_wire_tensor six[6];
    for (int i = 0; i < 6; i++)
        six[i] = i % 2 ? x->t[2] : x->t[0];
    evo_msg m6;
    evo_msg_init(&m6, EVO_MSG_TENSORS);
    m6.tensors = six;
    m6.n_tensors = 6;
    assert_int_equal(evo_tp_send(d, &m6, &err), EVO_OK);
    assert_int_equal(evo_tp_recv(l, &m2, &err), EVO_OK);
    tt_assert_msg_equal(&m6, &m2);
    evo_msg_release(&m2);
    evo_tp_close(d);
    evo_tp_close(l);
    ts_free_mixed(x);
    free(x);
}

/* ---------------------------------------------------------------- bad input */

static void ts_heartbeat(evo_msg *m, uint32_t seq)
{
    evo_msg_init(m, EVO_MSG_HEARTBEAT);
    strcpy(m->u.heartbeat.name, "n1");
    m->sequence = seq;
}

static void test_stream_bad_body_keeps_channel(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *d;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    evo_msg hb, got;
    evo_error err;
    ts_heartbeat(&hb, 5);
    size_t len;
    uint8_t *b = tt_encode(&hb, &len);
    /* a valid header over a body whose first field claims more bytes than
     * the body has: the framing holds, the message does not decode */
    assert_true(len >= EVO_WIRE_HEADER_SIZE + 8);
    memset(b + EVO_WIRE_HEADER_SIZE + 4, 0xff, 4);
    assert_int_equal(evo_tp_send_encoded(d, b, len, &err), EVO_OK);
    assert_int_equal(evo_tp_send(d, &hb, &err), EVO_OK);
    assert_int_equal(evo_tp_recv(l, &got, &err), EVO_ERR_PARSE);
    assert_non_null(strstr(err.msg, "rejected"));
    /* the good message right behind it arrives on the same connection */
    assert_int_equal(evo_tp_recv(l, &got, &err), EVO_OK);
    assert_int_equal(got.type, EVO_MSG_HEARTBEAT);
    assert_int_equal(got.sequence, 5);
    evo_msg_release(&got);
    free(b);
    evo_tp_close(d);
    evo_tp_close(l);
}

/* A header the receiver refuses (bad magic, body above its limit) loses the
 * framing: the listener drops that connection, the dialer's sends fail
 * once the drop is seen, it redials, and messages flow again. */
static void ts_bad_header(int kind)
{
    evo_tp_options o;
    ts_opts(&o);
    o.recv_timeout_ms = 300;
    o.limits.max_body = 60000;
    evo_tp *l, *d;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &d);
    evo_msg hb, got;
    evo_error err;
    ts_heartbeat(&hb, 1);
    size_t len;
    uint8_t *b = tt_encode(&hb, &len);
    if (kind == 0)
        b[0] = 'X';
    else
        b[24] = 0xff, b[25] = 0xff, b[26] = 0x0f; /* body of ~1 MiB > 60000 */
    assert_int_equal(evo_tp_send_encoded(d, b, len, &err), EVO_OK);
    evo_status st = evo_tp_recv(l, &got, &err);
    assert_int_equal(st, kind == 0 ? EVO_ERR_PARSE : EVO_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "connection dropped"));
    free(b);
    bool arrived = false;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; !arrived; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 15)
            break;
        hb.sequence = 100 + i;
        (void)evo_tp_send(d, &hb, &err); /* fails while the drop is noticed */
        if (evo_tp_recv(l, &got, &err) == EVO_OK) {
            assert_int_equal(got.type, EVO_MSG_HEARTBEAT);
            assert_true(got.sequence >= 100);
            arrived = true;
            evo_msg_release(&got);
        }
    }
    assert_true(arrived);
    evo_tp_close(d);
    evo_tp_close(l);
}

static void test_stream_bad_magic(void **state)
{
    (void)state;
    ts_bad_header(0);
}

static void test_stream_over_limit(void **state)
{
    (void)state;
    ts_bad_header(1);
}

static void test_stream_errors(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *tp, *l, *d;
    evo_error err;
    /* REQ/REP is not offered on byte streams */
    assert_int_equal(
        evo_tp_open(&tp, "tcp+stream://127.0.0.1:0", EVO_TP_REQ, EVO_TP_LISTEN, &o, &err),
        EVO_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "PUSH/PULL"));
    /* nobody listening: the dialer fails at open */
    assert_int_equal(
        evo_tp_open(&l, "tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, &err), EVO_OK);
    char url[64];
    snprintf(url, sizeof url, "tcp+stream://127.0.0.1:%d", evo_tp_port(l));
    evo_tp_close(l);
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_ERR_IO);
    /* a bad address */
    assert_int_not_equal(
        evo_tp_open(&d, "tcp+stream://no-such-host.invalid:x", EVO_TP_PUSH, EVO_TP_DIAL, &o, &err),
        EVO_OK);
    /* a listener without a peer times out */
    o.recv_timeout_ms = 100;
    assert_int_equal(
        evo_tp_open(&l, "tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, &err), EVO_OK);
    evo_msg got;
    assert_int_equal(evo_tp_recv(l, &got, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "timed out"));
    /* a peer that sends nothing: timeout, and the channel still works */
    snprintf(url, sizeof url, "tcp+stream://127.0.0.1:%d", evo_tp_port(l));
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_OK);
    assert_int_equal(evo_tp_recv(l, &got, &err), EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "timed out"));
    evo_msg hb;
    ts_heartbeat(&hb, 9);
    assert_int_equal(evo_tp_send(d, &hb, &err), EVO_OK);
    evo_status st = EVO_ERR_IO;
    for (int i = 0; i < 50 && st != EVO_OK; i++) /* 100 ms each; the machine may be busy */
        st = evo_tp_recv(l, &got, &err);
    assert_int_equal(st, EVO_OK);
    assert_int_equal(got.sequence, 9);
    evo_msg_release(&got);
    /* a message above the sender's own limit is refused before sending */
    evo_tp_close(d);
    o.limits.max_body = 16;
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_OK);
    assert_int_equal(evo_tp_send(d, &hb, &err), EVO_ERR_LIMIT);
    evo_tp_close(d);
    evo_tp_close(l);
}

/* ---------------------------------------------------------------- many senders */

/* One sender of the fan-in test: its own dialer, messages of alternating
 * sizes (16 floats and 64 Ki floats, more than a socket buffer) carrying
 * its id and a sequence number in every element. */
enum { TS_FAN_SENDERS = 3, TS_FAN_MSGS = 30, TS_FAN_BIG = 1 << 16 };

typedef struct ts_fan {
    char url[128];
    evo_tp_options o;
    uint32_t id;
    int failures;
    float data[TS_FAN_BIG];
} ts_fan;

static void *ts_fan_thread(void *arg)
{
    ts_fan *f = (ts_fan *)arg;
    evo_error err;
    evo_tp *d;
    if (evo_tp_open(&d, f->url, EVO_TP_PUSH, EVO_TP_DIAL, &f->o, &err) != EVO_OK) {
        f->failures = TS_FAN_MSGS;
        return NULL;
    }
    for (uint32_t i = 0; i < TS_FAN_MSGS; i++) {
        int32_t n = i % 2 ? TS_FAN_BIG : 16;
        for (int32_t j = 0; j < n; j++)
            f->data[j] = (float)(f->id * 1000 + i);
        evo_tensor t = {EVO_DT_FLOAT32, {1, {n}}, f->data};
        evo_wire_tensor wt;
        evo_msg m;
        if (evo_wire_tensor_encode(&wt, "t", (int32_t)f->id, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1,
                                   &err) != EVO_OK) {
            f->failures++;
            continue;
        }
        evo_msg_init(&m, EVO_MSG_TENSORS);
        m.request_id = f->id;
        m.sequence = i;
        m.tensors = &wt;
        m.n_tensors = 1;
        if (evo_tp_send(d, &m, &err) != EVO_OK)
            f->failures++;
        evo_wire_tensor_clear(&wt);
    }
    evo_tp_close(d);
    return NULL;
}

/* Three senders at once into one PULL listener whose queue holds only 2
 * messages (so connections park and resume): every message arrives whole,
 * each sender's in order; senders that have gone away do not disturb a new
 * one. */
static void test_stream_many_senders(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    o.stream_depth = 2;
    evo_tp *l;
    evo_error err;
    assert_int_equal(
        evo_tp_open(&l, "tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, &err), EVO_OK);
    ts_fan *f[TS_FAN_SENDERS];
    pthread_t th[TS_FAN_SENDERS];
    for (uint32_t k = 0; k < TS_FAN_SENDERS; k++) {
        f[k] = calloc(1, sizeof *f[k]);
        assert_non_null(f[k]);
        ts_dial_url("tcp+stream://", l, f[k]->url, sizeof f[k]->url);
        ts_opts(&f[k]->o);
        f[k]->id = k + 1;
        assert_int_equal(pthread_create(&th[k], NULL, ts_fan_thread, f[k]), 0);
    }
    uint32_t next[TS_FAN_SENDERS] = {0};
    for (int i = 0; i < TS_FAN_SENDERS * TS_FAN_MSGS; i++) {
        evo_msg got;
        if (evo_tp_recv(l, &got, &err) != EVO_OK)
            fail_msg("recv %d: %s", i, err.msg);
        assert_true(got.request_id >= 1 && got.request_id <= TS_FAN_SENDERS);
        uint32_t k = (uint32_t)got.request_id - 1;
        assert_int_equal(got.sequence, next[k]);
        assert_int_equal(got.n_tensors, 1);
        const float *v;
        assert_int_equal(evo_wire_tensor_view(&got.tensors[0], EVO_DT_FLOAT32, (const void **)&v),
                         EVO_OK);
        size_t n = got.tensors[0].payload_len / 4;
        assert_int_equal(n, next[k] % 2 ? TS_FAN_BIG : 16);
        for (size_t j = 0; j < n; j += 997)
            assert_true(v[j] == (float)((k + 1) * 1000 + next[k]));
        assert_true(v[n - 1] == (float)((k + 1) * 1000 + next[k]));
        next[k]++;
        evo_msg_release(&got);
    }
    for (int k = 0; k < TS_FAN_SENDERS; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(f[k]->failures, 0);
    }
    /* all senders are gone; a new one still gets through */
    f[0]->id = 9;
    ts_fan_thread(f[0]);
    assert_int_equal(f[0]->failures, 0);
    for (uint32_t i = 0; i < TS_FAN_MSGS; i++) {
        evo_msg got;
        if (evo_tp_recv(l, &got, &err) != EVO_OK)
            fail_msg("recv after reconnect %u: %s", i, err.msg);
        assert_int_equal(got.request_id, 9);
        assert_int_equal(got.sequence, i);
        evo_msg_release(&got);
    }
    for (int k = 0; k < TS_FAN_SENDERS; k++)
        free(f[k]);
    evo_tp_close(l);
}

/* A sender whose header is refused is dropped and reported; another
 * sender's messages on the same listener keep arriving. */
static void test_stream_bad_sender_alone_dropped(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    evo_tp *l, *bad, *good;
    ts_pair("tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &o, &l, &bad);
    char url[128];
    ts_dial_url("tcp+stream://", l, url, sizeof url);
    evo_error err;
    assert_int_equal(evo_tp_open(&good, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_OK);
    evo_msg hb, got;
    ts_heartbeat(&hb, 1);
    size_t len;
    uint8_t *b = tt_encode(&hb, &len);
    b[0] = 'X';
    assert_int_equal(evo_tp_send_encoded(bad, b, len, &err), EVO_OK);
    free(b);
    for (uint32_t i = 0; i < 5; i++) {
        hb.sequence = 10 + i;
        assert_int_equal(evo_tp_send(good, &hb, &err), EVO_OK);
    }
    int refused = 0;
    uint32_t next = 10;
    while (next < 15) {
        evo_status st = evo_tp_recv(l, &got, &err);
        if (st != EVO_OK) {
            assert_int_equal(st, EVO_ERR_PARSE);
            assert_non_null(strstr(err.msg, "connection dropped"));
            refused++;
            continue;
        }
        assert_int_equal(got.sequence, next);
        next++;
        evo_msg_release(&got);
    }
    if (refused == 0) { /* the report may come after the good messages */
        assert_int_equal(evo_tp_recv(l, &got, &err), EVO_ERR_PARSE);
        refused++;
    }
    assert_int_equal(refused, 1);
    evo_tp_close(bad);
    evo_tp_close(good);
    evo_tp_close(l);
}

/* Senders of random bytes (valid-looking headers with lying lengths among
 * them) next to a good sender: the listener reports or drops each bad
 * connection, never crashes, and the good sender's messages all arrive. */
static void test_stream_garbage_senders(void **state)
{
    (void)state;
    evo_tp_options o;
    ts_opts(&o);
    o.recv_timeout_ms = 300;
    o.limits.max_body = 1u << 20;
    evo_tp *l, *good;
    evo_error err;
    assert_int_equal(
        evo_tp_open(&l, "tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, &err), EVO_OK);
    char url[128];
    ts_dial_url("tcp+stream://", l, url, sizeof url);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    enum { NBAD = 6, NBYTES = 4096 };
    uint8_t junk[NBYTES];
    evo_msg hb, got;
    ts_heartbeat(&hb, 0);
    size_t hlen;
    uint8_t *valid = tt_encode(&hb, &hlen);
    for (int i = 0; i < NBAD; i++) {
        for (size_t j = 0; j < sizeof junk; j++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            junk[j] = (uint8_t)(rng >> 56);
        }
        if (i % 2 == 1) { /* a valid header whose body length lies (longer) */
            memcpy(junk, valid, EVO_WIRE_HEADER_SIZE);
            junk[24] = (uint8_t)(i * 40);
            junk[25] = 0x0f;
        }
        evo_tp *bad;
        assert_int_equal(evo_tp_open(&bad, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_OK);
        (void)evo_tp_send_encoded(bad, junk, sizeof junk, &err);
        evo_tp_close(bad); /* a lying length leaves a message cut short */
    }
    free(valid);
    assert_int_equal(evo_tp_open(&good, url, EVO_TP_PUSH, EVO_TP_DIAL, &o, &err), EVO_OK);
    for (uint32_t i = 0; i < 5; i++) {
        hb.sequence = 50 + i;
        assert_int_equal(evo_tp_send(good, &hb, &err), EVO_OK);
    }
    uint32_t next = 50;
    for (int tries = 0; next < 55 && tries < 100; tries++) {
        evo_status st = evo_tp_recv(l, &got, &err);
        if (st != EVO_OK) {
            assert_true(st == EVO_ERR_PARSE || st == EVO_ERR_LIMIT || st == EVO_ERR_IO);
            continue; /* a refused bad sender, or a timeout */
        }
        if (got.type == EVO_MSG_HEARTBEAT && got.sequence >= 50) {
            assert_int_equal(got.sequence, next);
            next++;
        }
        evo_msg_release(&got);
    }
    assert_int_equal(next, 55);
    evo_tp_close(good);
    evo_tp_close(l);
}

/* ---------------------------------------------------------------- TLS */

static const char *ts_cert_path(const char *name)
{
    return tt_cert_in(g_dir, name);
}

static void ts_tls_server(evo_tp_options *o, bool mutual)
{
    tt_tls_server_in(g_dir, o, mutual);
}

static void ts_tls_client(evo_tp_options *o, const char *ca, bool with_cert)
{
    tt_tls_client_in(g_dir, o, ca, with_cert);
}

/* Every message type both ways over tls+tcp+stream (server-only and mutual
 * authentication), and a 64 MiB tensor intact. */
static void test_stream_tls(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so, co;
    evo_tp *l, *d;
    for (int mutual = 0; mutual < 2; mutual++) {
        ts_tls_server(&so, mutual);
        ts_tls_client(&co, "ca.pem", mutual);
        ts_pair2("tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &so, &co, &l, &d);
        ts_send_all_recv(d, l);
        evo_tp_close(d);
        evo_tp_close(l);
        ts_pair2("tls+tcp+stream://127.0.0.1:0", EVO_TP_PUSH, EVO_TP_PULL, &so, &co, &l, &d);
        ts_send_all_recv(l, d);
        evo_tp_close(d);
        evo_tp_close(l);
    }
    evo_msg m;
    evo_wire_tensor wt;
    float *x;
    size_t n;
    tt_big_msg(&m, &wt, &x, &n);
    ts_tls_server(&so, false);
    ts_tls_client(&co, "ca.pem", false);
    ts_pair2("tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &so, &co, &l, &d);
    evo_msg got;
    ts_transfer(d, l, &m, &got);
    tt_assert_big_msg(&got, x, n);
    evo_msg_release(&got);
    evo_tp_close(d);
    evo_tp_close(l);
    evo_wire_tensor_clear(&wt);
    free(x);
}

/* A client trusting another CA, and (mutual) one without a certificate,
 * get nothing through, with an error naming the handshake; the listener
 * still serves a good client afterwards. */
static void test_stream_tls_refusals(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    {
        /* missing or wrong files are named at open, before any connection */
        evo_tp_options o;
        evo_tp *tp = NULL;
        evo_error err;
        ts_opts(&o);
        assert_int_equal(
            evo_tp_open(&tp, "tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, &err),
            EVO_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, "tls_cert_file"));
        ts_tls_server(&o, false);
        o.tls_key_file = ts_cert_path("client.key"); /* not server.pem's key */
        assert_int_equal(
            evo_tp_open(&tp, "tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &o, &err),
            EVO_ERR_INVALID_ARG);
        ts_tls_client(&o, "no-such-ca.pem", false);
        assert_int_equal(
            evo_tp_open(&tp, "tls+tcp+stream://127.0.0.1:1", EVO_TP_PUSH, EVO_TP_DIAL, &o, &err),
            EVO_ERR_IO);
        assert_non_null(strstr(err.msg, "no-such-ca.pem"));
        assert_null(tp);
    }
    for (int mutual = 0; mutual < 2; mutual++) {
        evo_tp_options so, co;
        evo_tp *l, *d = NULL;
        evo_error err;
        ts_tls_server(&so, mutual);
        so.recv_timeout_ms = 500;
        assert_int_equal(
            evo_tp_open(&l, "tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &so, &err),
            EVO_OK);
        char url[128];
        ts_dial_url("tls+tcp+stream://", l, url, sizeof url);
        if (mutual)
            ts_tls_client(&co, "ca.pem", false);
        else
            ts_tls_client(&co, "other-ca.pem", false);
        co.send_timeout_ms = 2000;
        evo_msg hb, got;
        ts_heartbeat(&hb, 3);
        evo_status st = evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &co, &err);
        if (st == EVO_OK) { /* the handshake may only run with the first send */
            st = evo_tp_send(d, &hb, &err);
            if (st == EVO_OK) /* the client side may finish before the server's verdict */
                st = evo_tp_send(d, &hb, &err);
            evo_tp_close(d);
        }
        if (!mutual) {
            assert_int_equal(st, EVO_ERR_IO);
            assert_non_null(strstr(err.msg, "TLS handshake"));
        }
        assert_int_equal(evo_tp_recv(l, &got, &err), EVO_ERR_IO); /* nothing got through */
        ts_tls_client(&co, "ca.pem", mutual);
        assert_int_equal(evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &co, &err), EVO_OK);
        assert_int_equal(evo_tp_send(d, &hb, &err), EVO_OK);
        st = EVO_ERR_IO;
        for (int i = 0; i < 20 && st != EVO_OK; i++) /* 500 ms each; the machine may be busy */
            st = evo_tp_recv(l, &got, &err);
        assert_int_equal(st, EVO_OK);
        assert_int_equal(got.sequence, 3);
        evo_msg_release(&got);
        evo_tp_close(d);
        evo_tp_close(l);
    }
}

/* A sender whose TLS peer never reads gives up after its send timeout
 * (nng's TLS streams ignore the aio timeout; the channel enforces it). */
/* *m: a TENSORS message carrying t raw as *wt (evo_wire_tensor_clear it). */
static void ts_one_tensor_msg(const evo_tensor *t, evo_wire_tensor *wt, evo_msg *m)
{
    evo_error err;
    assert_int_equal(evo_wire_tensor_encode(wt, "t", 0, t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err),
                     EVO_OK);
    evo_msg_init(m, EVO_MSG_TENSORS);
    m->tensors = wt;
    m->n_tensors = 1;
}

/* A TLS sender notices that its receiver went away: the first send after
 * the listener closed fails (nng's TLS streams would take it, and several
 * more, into their buffer without a word). */
static void test_stream_tls_peer_gone(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so, co;
    ts_tls_server(&so, false);
    ts_tls_client(&co, "ca.pem", false);
    co.send_timeout_ms = 10000;
    evo_tp *l, *d;
    ts_pair2("tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_PUSH, &so, &co, &l, &d);
    float v[4] = {1, 2, 3, 4};
    evo_tensor t = {EVO_DT_FLOAT32, {1, {4}}, v};
    assert_true(ts_send_tensor(d, &t, "t", 1));
    evo_msg got;
    evo_error err;
    assert_int_equal(evo_tp_recv(l, &got, &err), EVO_OK);
    evo_msg_release(&got);
    evo_tp_close(l);
    struct timespec nap = {0, 300 * 1000000L}, t0, t1;
    nanosleep(&nap, NULL); /* the close reaches the sender */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_false(ts_send_tensor(d, &t, "t", 2));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5); /* refused, not timed out */
    evo_tp_close(d);
}

/* The text of file path (malloc'd), or NULL. */
static char *ts_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = calloc(1, 1 << 16);
    size_t n = b ? fread(b, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (b && n == 0) {
        free(b);
        b = NULL;
    }
    return b;
}

/* A raw nng TLS receiver that takes 512 KiB every 20 ms (26 MB/s). */
typedef struct ts_slow_reader {
    nng_stream *st;
    size_t want, got;
} ts_slow_reader;

static void *ts_slow_read_thread(void *arg)
{
    ts_slow_reader *r = (ts_slow_reader *)arg;
    nng_aio *aio;
    uint8_t *buf = malloc(512u << 10);
    if (!buf || nng_aio_alloc(&aio, NULL, NULL) != 0) {
        free(buf);
        return NULL;
    }
    nng_aio_set_timeout(aio, 10000);
    bool ok = true;
    while (ok && r->got < r->want) {
        struct timespec nap = {0, 20 * 1000000L};
        nanosleep(&nap, NULL);
        /* a TLS read returns at most one record: read until 512 KiB came */
        for (size_t tick = 0; ok && tick < (512u << 10) && r->got < r->want;) {
            nng_iov iov = {buf, (512u << 10) - tick};
            nng_aio_set_iov(aio, 1, &iov);
            nng_stream_recv(r->st, aio);
            nng_aio_wait(aio);
            ok = nng_aio_result(aio) == 0;
            tick += nng_aio_count(aio);
            r->got += nng_aio_count(aio);
        }
    }
    nng_aio_free(aio);
    free(buf);
    return NULL;
}

/* The send timeout bounds a stall, not the whole transfer: a 64 MiB tensor
 * to a TLS peer that reads slowly but steadily (26 MB/s: two seconds
 * beyond what the socket buffers hold) goes through with a 1 s send
 * timeout, as over TCP. */
static void test_stream_tls_slow_peer(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    nng_tls_config *cfg;
    nng_stream_listener *sl;
    nng_aio *aio;
    int port = 0;
    assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER), 0);
    char *cert = ts_slurp(ts_cert_path("server.pem")), *key = ts_slurp(ts_cert_path("server.key"));
    assert_true(cert && key);
    assert_int_equal(nng_tls_config_own_cert(cfg, cert, key, NULL), 0);
    free(cert);
    free(key);
    assert_int_equal(nng_stream_listener_alloc(&sl, "tls+tcp://127.0.0.1:0"), 0);
    assert_int_equal(nng_stream_listener_set_ptr(sl, NNG_OPT_TLS_CONFIG, cfg), 0);
    assert_int_equal(nng_stream_listener_listen(sl), 0);
    assert_int_equal(nng_stream_listener_get_int(sl, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
    nng_stream_listener_accept(sl, aio);

    evo_tp_options co;
    ts_tls_client(&co, "ca.pem", false);
    co.send_timeout_ms = 1000;
    char url[64];
    snprintf(url, sizeof url, "tls+tcp+stream://127.0.0.1:%d", port);
    evo_tp *d;
    evo_error err;
    assert_int_equal(evo_tp_open(&d, url, EVO_TP_PUSH, EVO_TP_DIAL, &co, &err), EVO_OK);
    nng_aio_wait(aio);
    assert_int_equal(nng_aio_result(aio), 0);
    enum { N = 16 << 20 }; /* floats: 64 MiB */
    float *v = calloc(N, sizeof *v);
    assert_non_null(v);
    ts_slow_reader r = {nng_aio_get_output(aio, 0), (size_t)N * 4, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ts_slow_read_thread, &r), 0);
    evo_tensor t = {EVO_DT_FLOAT32, {1, {N}}, v};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    evo_wire_tensor wt;
    evo_msg m;
    ts_one_tensor_msg(&t, &wt, &m);
    evo_status st = evo_tp_send(d, &m, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    evo_wire_tensor_clear(&wt);
    pthread_join(th, NULL);
    if (st != EVO_OK)
        fail_msg("send: %s", err.msg);
    /* it did take longer than one send timeout */
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > 1000);
    assert_true(r.got >= (size_t)N * 4);
    evo_tp_close(d);
    nng_stream_close(r.st);
    nng_stream_free(r.st);
    nng_aio_free(aio);
    nng_stream_listener_free(sl);
    nng_tls_config_free(cfg);
    free(v);
}

/* A TLS sender that stops in the middle of a 1 MiB message leaves the
 * listener's reader waiting inside a record-by-record transfer; closing the
 * listener still ends it promptly (and under ASan frees everything). The
 * sender is a raw nng TLS stream, so it can stop where evo never would. */
static void test_stream_tls_close_mid_message(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so;
    ts_tls_server(&so, false);
    evo_tp *l;
    evo_error err;
    assert_int_equal(
        evo_tp_open(&l, "tls+tcp+stream://127.0.0.1:0", EVO_TP_PULL, EVO_TP_LISTEN, &so, &err),
        EVO_OK);
    float *v = calloc(1 << 18, sizeof *v);
    assert_non_null(v);
    evo_tensor t = {EVO_DT_FLOAT32, {1, {1 << 18}}, v};
    evo_wire_tensor wt;
    evo_msg m;
    ts_one_tensor_msg(&t, &wt, &m);
    size_t cap, len;
    assert_int_equal(evo_wire_encoded_size(&m, &cap, &err), EVO_OK);
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(evo_wire_encode(&m, buf, cap, &len, &err), EVO_OK);

    nng_tls_config *cfg;
    nng_stream_dialer *sd;
    nng_aio *aio;
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", evo_tp_port(l));
    assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
    assert_int_equal(nng_tls_config_ca_file(cfg, ts_cert_path("ca.pem")), 0);
    assert_int_equal(nng_tls_config_server_name(cfg, "localhost"), 0);
    assert_int_equal(nng_stream_dialer_alloc(&sd, url), 0);
    assert_int_equal(nng_stream_dialer_set_ptr(sd, NNG_OPT_TLS_CONFIG, cfg), 0);
    assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
    nng_aio_set_timeout(aio, 10000);
    nng_stream_dialer_dial(sd, aio);
    nng_aio_wait(aio);
    assert_int_equal(nng_aio_result(aio), 0);
    nng_stream *st = nng_aio_get_output(aio, 0);
    /* the header and the first 100 KiB of the body, then nothing */
    size_t sent = 0, part = 100u << 10;
    while (sent < part) {
        nng_iov iov = {buf + sent, part - sent};
        nng_aio_set_iov(aio, 1, &iov);
        nng_stream_send(st, aio);
        nng_aio_wait(aio);
        assert_int_equal(nng_aio_result(aio), 0);
        sent += nng_aio_count(aio);
    }
    struct timespec nap = {0, 300 * 1000000L}, t0, t1;
    nanosleep(&nap, NULL); /* the reader is now waiting for the rest */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    evo_tp_close(l);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    nng_stream_close(st);
    nng_stream_free(st);
    nng_aio_free(aio);
    nng_stream_dialer_free(sd);
    nng_tls_config_free(cfg);
    free(buf);
    evo_wire_tensor_clear(&wt);
    free(v);
}

static void test_stream_tls_send_timeout(void **state)
{
    (void)state;
    if (!g_certs)
        skip();
    evo_tp_options so, co;
    ts_tls_server(&so, false);
    so.send_timeout_ms = 300;
    ts_tls_client(&co, "ca.pem", false);
    evo_tp *l, *d;
    ts_pair2("tls+tcp+stream://127.0.0.1:0", EVO_TP_PUSH, EVO_TP_PULL, &so, &co, &l, &d);
    static float big[1 << 20]; /* 4 MiB: more than the socket buffers hold */
    evo_tensor t = {EVO_DT_FLOAT32, {1, {1 << 20}}, big};
    evo_wire_tensor wt;
    evo_msg m;
    ts_one_tensor_msg(&t, &wt, &m);
    evo_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    evo_status st = EVO_OK;
    for (int i = 0; i < 8 && st == EVO_OK; i++)
        st = evo_tp_send(l, &m, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(st, EVO_ERR_IO);
    assert_non_null(strstr(err.msg, "timed out"));
    assert_true(t1.tv_sec - t0.tv_sec < 30);
    evo_wire_tensor_clear(&wt);
    evo_tp_close(d);
    evo_tp_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_roundtrip_tcp),
        cmocka_unit_test(test_stream_roundtrip_ipc),
        cmocka_unit_test(test_stream_big_tensor),
        cmocka_unit_test(test_stream_gather_encoding),
        cmocka_unit_test(test_stream_concurrent_senders),
        cmocka_unit_test(test_stream_burst_of_sizes),
        cmocka_unit_test(test_stream_received_at_arrival),
        cmocka_unit_test(test_stream_bad_body_keeps_channel),
        cmocka_unit_test(test_stream_bad_magic),
        cmocka_unit_test(test_stream_over_limit),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_many_senders),
        cmocka_unit_test(test_stream_bad_sender_alone_dropped),
        cmocka_unit_test(test_stream_garbage_senders),
        cmocka_unit_test(test_stream_tls),
        cmocka_unit_test(test_stream_tls_refusals),
        cmocka_unit_test(test_stream_tls_send_timeout),
        cmocka_unit_test(test_stream_tls_peer_gone),
        cmocka_unit_test(test_stream_tls_slow_peer),
        cmocka_unit_test(test_stream_tls_close_mid_message),
    };
    return cmocka_run_group_tests(tests, ts_setup, ts_teardown);
}
