/*
 * Transport benchmark (kept short: the machine is shared).
 *
 *   evo_transport_bench [--certs DIR] [--acts LIST] [--skip-net] [--no-coap] [--trials N]
 *                       [--path NAME]   (NAME: a column title, e.g. "evo tcp+stream")
 *
 * Part 1: throughput for one float32 tensor of 1 KiB, 64 KiB, 1 MiB and
 * 16 MiB per message, in one run, on loopback:
 *   raw TCP / raw unix  the bytes with an 8-byte length prefix over a blocking
 *                       socket, received into one reused buffer (the target's
 *                       baseline);
 *   nng stream tcp      nng's byte-stream API (aio + iov, no messages);
 *   nng tcp / nng ipc   plain nng PUSH/PULL messages, nothing of evo;
 *   evo tcp/ipc/tls+tcp/coap  evo's path: encode + send + receive + zero-copy
 *                       view (tls+tcp needs --certs from scripts/make-test-certs.sh);
 *   evo tcp+stream / ipc+stream / tls+tcp+stream  the same over evo's
 *                       nng_stream channels (what the coordinator and nodes
 *                       use for tensors).
 * Every run sends BENCH_WARM untimed messages (round trips) first; the paths are
 * interleaved within each of N trials (default 5) and the median is reported,
 * with the process CPU time (all threads) per MiB moved. Then the one-way
 * latency of a 1 KiB message (round trip / 2) and what evo adds to the raw
 * socket's.
 *
 * With --certs it ends with what mbedTLS alone encrypts per second (the
 * TLS paths' ceiling).
 *
 * Part 2 (--acts LIST): encoded size, encode/decode time and error of every
 * encoding on real activations. LIST is a text file of lines
 *   <label> <file of float32 values> <rank> <dim>...
 * (bench/transport_bench.sh writes it from intermediate tensors of the zoo
 * models).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "evo/transport.h"

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static _Noreturn void bench_die(const char *what, const evo_error *e)
{
    fprintf(stderr, "transport_bench: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

/* ------------------------------------------------------------ measurement */

/* Process CPU seconds (all threads: sender, receiver and nng's workers). */
static double bench_cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

/* One timed run: wall and CPU seconds for n messages (after the warm-up). */
typedef struct bench_time {
    double wall, cpu;
} bench_time;

/* Warm-up messages before the clock starts: connection set up, first
 * allocations and page faults, TCP window grown. */
enum { BENCH_WARM = 4 };

/* Both ends meet here after the warm-up, so timing starts with an empty pipe. */
static pthread_barrier_t bench_barrier;

/* ------------------------------------------------------------ raw sockets */

typedef struct bench_raw {
    int lfd;
    int n;
    size_t size;
    bool pingpong;
} bench_raw;

static bool bench_read_full(int fd, void *p, size_t n)
{
    uint8_t *b = (uint8_t *)p;
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

static bool bench_write_full(int fd, const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    while (n) {
        ssize_t r = write(fd, b, n);
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

static void *bench_raw_server(void *arg)
{
    bench_raw *r = (bench_raw *)arg;
    int fd = accept(r->lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix */
    uint8_t *buf = (uint8_t *)malloc(r->size);
    int total = r->n + BENCH_WARM; /* round trips too: connection and first buffers */
    for (int i = 0; i < total; i++) {
        uint64_t len;
        if (!bench_read_full(fd, &len, 8) || len != r->size || !bench_read_full(fd, buf, len))
            break;
        if (r->pingpong && (!bench_write_full(fd, &len, 8) || !bench_write_full(fd, buf, len)))
            break;
        if (!r->pingpong && i == BENCH_WARM - 1)
            pthread_barrier_wait(&bench_barrier);
    }
    if (!r->pingpong) {
        uint8_t ack = 1;
        bench_write_full(fd, &ack, 1);
    }
    free(buf);
    close(fd);
    return NULL;
}

/* n messages of size bytes with an 8-byte length prefix over a blocking
 * socket (TCP on loopback, or a unix stream socket: the raw baseline for
 * ipc), received into one reused buffer. pingpong: time per round trip. */
static bench_time bench_raw_run(bool unix_sock, size_t size, int n, bool pingpong, const void *data)
{
    struct sockaddr_in a = {0};
    struct sockaddr_un ua = {0};
    struct sockaddr *sa = (struct sockaddr *)&a;
    socklen_t al = sizeof a;
    if (unix_sock) {
        ua.sun_family = AF_UNIX;
        snprintf(ua.sun_path, sizeof ua.sun_path, "/tmp/evo-bench-raw-%d.sock", (int)getpid());
        unlink(ua.sun_path);
        sa = (struct sockaddr *)&ua;
        al = sizeof ua;
    } else {
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    bench_raw r = {socket(unix_sock ? AF_UNIX : AF_INET, SOCK_STREAM, 0), n, size, pingpong};
    if (bind(r.lfd, sa, al) || listen(r.lfd, 1) || getsockname(r.lfd, sa, &al))
        bench_die("raw socket", NULL);
    pthread_barrier_init(&bench_barrier, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, bench_raw_server, &r);
    int fd = socket(unix_sock ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (!unix_sock)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, sa, al))
        bench_die("raw connect", NULL);
    uint8_t *back = pingpong ? (uint8_t *)malloc(size) : NULL;
    uint64_t len = size;
    if (!pingpong) {
        for (int i = 0; i < BENCH_WARM; i++)
            if (!bench_write_full(fd, &len, 8) || !bench_write_full(fd, data, size))
                bench_die("raw send", NULL);
        pthread_barrier_wait(&bench_barrier);
    }
    double t0 = bench_now(), c0 = bench_cpu();
    for (int i = pingpong ? -BENCH_WARM : 0; i < n; i++) {
        if (i == 0 && pingpong) { /* after the untimed round trips */
            t0 = bench_now();
            c0 = bench_cpu();
        }
        bench_write_full(fd, &len, 8);
        bench_write_full(fd, data, size);
        if (pingpong) {
            bench_read_full(fd, &len, 8);
            bench_read_full(fd, back, size);
        }
    }
    if (!pingpong) {
        uint8_t ack;
        bench_read_full(fd, &ack, 1);
    }
    bench_time t = {bench_now() - t0, bench_cpu() - c0};
    pthread_join(th, NULL);
    pthread_barrier_destroy(&bench_barrier);
    close(fd);
    close(r.lfd);
    if (unix_sock)
        unlink(ua.sun_path);
    free(back);
    return t;
}

/* ------------------------------------------------------------ raw nng */

/* The same bytes over nng PUSH/PULL with nothing of evo: nng_msg_alloc +
 * memcpy on send (nng 1.5.2 has no way to send from caller memory, so any
 * nng user pays this copy), nng_recvmsg + nng_msg_free on receive. This
 * separates nng's cost from evo's. Options as evo sets them. */
typedef struct bench_nng {
    nng_socket pull;
    int n;
    size_t size;
} bench_nng;

static void *bench_nng_server(void *arg)
{
    bench_nng *b = (bench_nng *)arg;
    for (int i = 0; i < b->n + BENCH_WARM; i++) {
        nng_msg *m;
        if (nng_recvmsg(b->pull, &m, 0) != 0 || nng_msg_len(m) != b->size)
            bench_die("nng recv", NULL);
        nng_msg_free(m);
        if (i == BENCH_WARM - 1)
            pthread_barrier_wait(&bench_barrier);
    }
    return NULL;
}

static bench_time bench_nng_run(const char *scheme, size_t size, int n, const void *data)
{
    char url[256];
    bench_nng b = {NNG_SOCKET_INITIALIZER, n, size};
    nng_socket push;
    nng_listener l;
    int port = 0;
    if (!strcmp(scheme, "ipc"))
        snprintf(url, sizeof url, "ipc:///tmp/evo-bench-nng-%d.sock", (int)getpid());
    else
        snprintf(url, sizeof url, "tcp://127.0.0.1:0");
    if (nng_pull0_open(&b.pull) || nng_push0_open(&push) ||
        nng_socket_set_size(b.pull, NNG_OPT_RECVMAXSZ, size + 64) ||
        nng_socket_set_int(b.pull, NNG_OPT_RECVBUF, 32) ||
        nng_socket_set_int(push, NNG_OPT_SENDBUF, 32) || nng_listener_create(&l, b.pull, url) ||
        nng_listener_start(l, 0))
        bench_die("nng listen", NULL);
    if (!strcmp(scheme, "tcp")) {
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    }
    if (nng_dial(push, url, NULL, 0))
        bench_die("nng dial", NULL);
    pthread_barrier_init(&bench_barrier, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, bench_nng_server, &b);
    double t0 = 0, c0 = 0;
    for (int i = 0; i < n + BENCH_WARM; i++) {
        if (i == BENCH_WARM) {
            pthread_barrier_wait(&bench_barrier);
            t0 = bench_now();
            c0 = bench_cpu();
        }
        nng_msg *m;
        if (nng_msg_alloc(&m, size))
            bench_die("nng alloc", NULL);
        memcpy(nng_msg_body(m), data, size);
        if (nng_sendmsg(push, m, 0))
            bench_die("nng send", NULL);
    }
    pthread_join(th, NULL);
    bench_time t = {bench_now() - t0, bench_cpu() - c0};
    pthread_barrier_destroy(&bench_barrier);
    nng_close(push);
    nng_close(b.pull);
    return t;
}

/* ------------------------------------------------------------ nng stream */

/* nng's byte-stream API (no SP messages): the sender hands nng an iov that
 * points at its own buffer, the receiver reads into one reused buffer, each
 * through an nng_aio that nng's I/O threads complete. This keeps nng's
 * non-blocking I/O model and drops the per-message calloc and copy, to show
 * which of the two costs what. */
typedef struct bench_stream {
    nng_stream *s;
    int n;
    size_t size;
} bench_stream;

static void bench_stream_io(nng_stream *s, nng_aio *a, void *p, size_t n, bool send)
{
    uint8_t *b = (uint8_t *)p;
    while (n) {
        nng_iov iov = {b, n};
        nng_aio_set_iov(a, 1, &iov);
        if (send)
            nng_stream_send(s, a);
        else
            nng_stream_recv(s, a);
        nng_aio_wait(a);
        if (nng_aio_result(a) != 0)
            bench_die("nng stream io", NULL);
        size_t c = nng_aio_count(a);
        b += c;
        n -= c;
    }
}

static void *bench_stream_server(void *arg)
{
    bench_stream *b = (bench_stream *)arg;
    nng_aio *a;
    uint8_t *buf = (uint8_t *)malloc(b->size);
    if (!buf || nng_aio_alloc(&a, NULL, NULL))
        bench_die("nng stream server", NULL);
    for (int i = 0; i < b->n + BENCH_WARM; i++) {
        uint64_t len;
        bench_stream_io(b->s, a, &len, 8, false);
        if (len != b->size)
            bench_die("nng stream length", NULL);
        bench_stream_io(b->s, a, buf, len, false);
        if (i == BENCH_WARM - 1)
            pthread_barrier_wait(&bench_barrier);
    }
    nng_aio_free(a);
    free(buf);
    return NULL;
}

static bench_time bench_stream_run(size_t size, int n, const void *data)
{
    nng_stream_listener *l;
    nng_stream_dialer *d;
    nng_aio *la, *da;
    char url[64];
    int port = 0;
    if (nng_stream_listener_alloc(&l, "tcp://127.0.0.1:0") || nng_stream_listener_listen(l) ||
        nng_stream_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port))
        bench_die("nng stream listen", NULL);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    if (nng_stream_dialer_alloc(&d, url) || nng_aio_alloc(&la, NULL, NULL) ||
        nng_aio_alloc(&da, NULL, NULL))
        bench_die("nng stream dial", NULL);
    nng_stream_listener_accept(l, la);
    nng_stream_dialer_dial(d, da);
    nng_aio_wait(la);
    nng_aio_wait(da);
    if (nng_aio_result(la) || nng_aio_result(da))
        bench_die("nng stream connect", NULL);
    bench_stream b = {(nng_stream *)nng_aio_get_output(la, 0), n, size};
    nng_stream *w = (nng_stream *)nng_aio_get_output(da, 0);
    nng_stream_set_bool(w, NNG_OPT_TCP_NODELAY, true);
    pthread_barrier_init(&bench_barrier, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, bench_stream_server, &b);
    double t0 = 0, c0 = 0;
    for (int i = 0; i < n + BENCH_WARM; i++) {
        if (i == BENCH_WARM) {
            pthread_barrier_wait(&bench_barrier);
            t0 = bench_now();
            c0 = bench_cpu();
        }
        uint64_t len = size;
        bench_stream_io(w, da, &len, 8, true);
        bench_stream_io(w, da, (void *)(uintptr_t)data, size, true);
    }
    pthread_join(th, NULL);
    bench_time t = {bench_now() - t0, bench_cpu() - c0};
    pthread_barrier_destroy(&bench_barrier);
    nng_stream_free(w);
    nng_stream_free(b.s);
    nng_stream_dialer_free(d);
    nng_stream_listener_free(l);
    nng_aio_free(la);
    nng_aio_free(da);
    return t;
}

/* ---------------------------------------------------------------- evo */

typedef struct bench_evo {
    evo_tp *tp;
    evo_tp *reply; /* echo channel of a one-way (stream) pair, else NULL */
    int n;
    bool echo;
} bench_evo;

static void *bench_evo_server(void *arg)
{
    bench_evo *b = (bench_evo *)arg;
    evo_error err;
    int total = b->n + BENCH_WARM; /* round trips too: connection, TLS handshake */
    for (int i = 0; i < total; i++) {
        evo_msg m;
        if (evo_tp_recv(b->tp, &m, &err) != EVO_OK)
            bench_die("evo recv", &err);
        const void *view;
        if (m.n_tensors != 1 ||
            evo_wire_tensor_view(&m.tensors[0], EVO_DT_FLOAT32, &view) != EVO_OK)
            bench_die("evo view", NULL);
        if (b->echo && evo_tp_send(b->reply ? b->reply : b->tp, &m, &err) != EVO_OK)
            bench_die("evo echo", &err);
        evo_msg_release(&m);
        if (!b->echo && i == BENCH_WARM - 1)
            pthread_barrier_wait(&bench_barrier);
    }
    return NULL;
}

static const char *bench_certs;

static void bench_opts(const char *scheme, bool server, evo_tp_options *o)
{
    evo_tp_options_default(o);
    o->recv_timeout_ms = 60000;
    o->send_timeout_ms = 60000;
    o->stream_depth = 32;
    if (!strncmp(scheme, "tls+tcp", 7)) {
        static char ca[512], cert[512], key[512];
        snprintf(ca, sizeof ca, "%s/ca.pem", bench_certs);
        snprintf(cert, sizeof cert, "%s/server.pem", bench_certs);
        snprintf(key, sizeof key, "%s/server.key", bench_certs);
        if (server) {
            o->tls_cert_file = cert;
            o->tls_key_file = key;
        } else {
            o->tls_ca_file = ca;
            o->tls_server_name = "localhost";
        }
    }
}

static void bench_evo_send_one(evo_tp *d, const evo_tensor *t, int i)
{
    evo_wire_tensor wt;
    evo_msg m;
    evo_error err;
    if (evo_wire_tensor_encode(&wt, "x", -1, t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err))
        bench_die("encode", &err);
    evo_msg_init(&m, EVO_MSG_TENSORS);
    m.sequence = (uint32_t)i;
    m.tensors = &wt;
    m.n_tensors = 1;
    if (evo_tp_send(d, &m, &err) != EVO_OK)
        bench_die("send", &err);
    evo_wire_tensor_clear(&wt);
}

/* evo = encode + send + receive + zero-copy view of one float32 tensor.
 * pingpong: REQ/REP, or for the one-way +stream channels a second PUSH/PULL
 * pair back (how a node answers the coordinator on the data path). */
static bench_time bench_evo_run(const char *scheme, size_t size, int n, bool pingpong, void *data)
{
    const bool oneway = strstr(scheme, "+stream") != NULL;
    char lurl[256], durl[256];
    if (!strncmp(scheme, "ipc", 3))
        snprintf(lurl, sizeof lurl, "%s:///tmp/evo-bench-%d.sock", scheme, (int)getpid());
    else
        snprintf(lurl, sizeof lurl, "%s://127.0.0.1:0", scheme);
    evo_tp_options lo, dopt;
    bench_opts(scheme, true, &lo);
    bench_opts(scheme, false, &dopt);
    evo_tp *l, *d;
    evo_error err;
    evo_tp_pattern lp = pingpong && !oneway ? EVO_TP_REP : EVO_TP_PULL;
    evo_tp_pattern dp = pingpong && !oneway ? EVO_TP_REQ : EVO_TP_PUSH;
    if (evo_tp_open(&l, lurl, lp, EVO_TP_LISTEN, &lo, &err) != EVO_OK)
        bench_die("listen", &err);
    if (evo_tp_port(l) > 0)
        snprintf(durl, sizeof durl, "%s://127.0.0.1:%d", scheme, evo_tp_port(l));
    else
        snprintf(durl, sizeof durl, "%s", lurl);
    if (evo_tp_open(&d, durl, dp, EVO_TP_DIAL, &dopt, &err) != EVO_OK)
        bench_die("dial", &err);
    evo_tp *back_l = NULL, *back_d = NULL; /* replies of a one-way pair */
    if (pingpong && oneway) {
        char burl[300];
        snprintf(burl, sizeof burl, "%s.back", lurl);
        if (evo_tp_open(&back_l, evo_tp_port(l) > 0 ? lurl : burl, EVO_TP_PULL, EVO_TP_LISTEN, &lo,
                        &err) != EVO_OK)
            bench_die("listen back", &err);
        if (evo_tp_port(back_l) > 0)
            snprintf(burl, sizeof burl, "%s://127.0.0.1:%d", scheme, evo_tp_port(back_l));
        if (evo_tp_open(&back_d, burl, EVO_TP_PUSH, EVO_TP_DIAL, &dopt, &err) != EVO_OK)
            bench_die("dial back", &err);
    }
    bench_evo srv = {l, back_d, n, pingpong};
    pthread_barrier_init(&bench_barrier, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, bench_evo_server, &srv);
    evo_tensor t = {EVO_DT_FLOAT32, {1, {(int32_t)(size / 4)}}, data};
    if (!pingpong) {
        for (int i = 0; i < BENCH_WARM; i++)
            bench_evo_send_one(d, &t, i);
        pthread_barrier_wait(&bench_barrier);
    }
    double t0 = bench_now(), c0 = bench_cpu();
    for (int i = pingpong ? -BENCH_WARM : 0; i < n; i++) {
        if (i == 0 && pingpong) { /* after the untimed round trips */
            t0 = bench_now();
            c0 = bench_cpu();
        }
        bench_evo_send_one(d, &t, i);
        if (pingpong) {
            evo_msg r;
            const void *view;
            if (evo_tp_recv(back_l ? back_l : d, &r, &err) != EVO_OK)
                bench_die("recv reply", &err);
            if (r.n_tensors != 1 ||
                evo_wire_tensor_view(&r.tensors[0], EVO_DT_FLOAT32, &view) != EVO_OK)
                bench_die("reply view", NULL);
            evo_msg_release(&r);
        }
    }
    pthread_join(th, NULL);
    bench_time bt = {bench_now() - t0, bench_cpu() - c0};
    pthread_barrier_destroy(&bench_barrier);
    evo_tp_close(back_d);
    evo_tp_close(back_l);
    evo_tp_close(d);
    evo_tp_close(l);
    return bt;
}

/* ------------------------------------------------------------ throughput */

enum bench_path {
    BP_RAW_TCP,
    BP_NNG_STREAM,
    BP_NNG_TCP,
    BP_EVO_TCP,
    BP_EVO_TCP_STREAM,
    BP_RAW_UNIX,
    BP_NNG_IPC,
    BP_EVO_IPC,
    BP_EVO_IPC_STREAM,
    BP_EVO_TLS,
    BP_EVO_TLS_STREAM,
    BP_EVO_COAP,
    BENCH_PATHS
};
enum { BENCH_MAX_TRIALS = 15 };
static const char *const bench_path_names[BENCH_PATHS] = {
    "raw TCP", "nng stream tcp", "nng tcp",        "evo tcp",     "evo tcp+stream",     "raw unix",
    "nng ipc", "evo ipc",        "evo ipc+stream", "evo tls+tcp", "evo tls+tcp+stream", "evo coap"};

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static bench_time bench_path_run(int p, size_t size, int n, void *data)
{
    switch (p) {
    case BP_RAW_TCP:
        return bench_raw_run(false, size, n, false, data);
    case BP_NNG_STREAM:
        return bench_stream_run(size, n, data);
    case BP_NNG_TCP:
        return bench_nng_run("tcp", size, n, data);
    case BP_EVO_TCP:
        return bench_evo_run("tcp", size, n, false, data);
    case BP_EVO_TCP_STREAM:
        return bench_evo_run("tcp+stream", size, n, false, data);
    case BP_RAW_UNIX:
        return bench_raw_run(true, size, n, false, data);
    case BP_NNG_IPC:
        return bench_nng_run("ipc", size, n, data);
    case BP_EVO_IPC:
        return bench_evo_run("ipc", size, n, false, data);
    case BP_EVO_IPC_STREAM:
        return bench_evo_run("ipc+stream", size, n, false, data);
    case BP_EVO_TLS:
        return bench_evo_run("tls+tcp", size, n, false, data);
    case BP_EVO_TLS_STREAM:
        return bench_evo_run("tls+tcp+stream", size, n, false, data);
    default:
        return bench_evo_run("coap", size, n, false, data);
    }
}

/* --path NAME: run only that path (for perf/strace of one path). */
static const char *bench_only;

static void bench_network(int trials, bool coap)
{
    static const size_t sizes[] = {1u << 10, 64u << 10, 1u << 20, 16u << 20};
    size_t maxs = sizes[3];
    float *data = (float *)malloc(maxs);
    for (size_t i = 0; i < maxs / 4; i++)
        data[i] = (float)(i % 1000) * 0.001f;
    double mbs[4][BENCH_PATHS] = {{0}}, cpu_ms[4][BENCH_PATHS] = {{0}};
    bool run[BENCH_PATHS];
    for (int p = 0; p < BENCH_PATHS; p++)
        run[p] = !((p == BP_EVO_TLS || p == BP_EVO_TLS_STREAM) && !bench_certs) &&
                 !(p == BP_EVO_COAP && !coap) &&
                 !(bench_only && strcmp(bench_only, bench_path_names[p]));
    for (int s = 0; s < 4; s++) {
        size_t size = sizes[s];
        double w[BENCH_PATHS][BENCH_MAX_TRIALS], c[BENCH_PATHS][BENCH_MAX_TRIALS];
        /* Trials interleave the paths, so a burst of load from other jobs on
         * the machine hits all of them alike; the median drops outliers. */
        for (int k = 0; k < trials; k++) {
            for (int q = 0; q < BENCH_PATHS; q++) {
                /* Each trial starts at another path, so no path always runs
                 * right after the same neighbour (nng closes sockets and
                 * frees their messages in background threads); a short
                 * pause lets that work finish outside the timed runs. */
                int p = (q + k * 3) % BENCH_PATHS;
                if (!run[p])
                    continue;
                usleep(20000);
                /* about 192 MiB per timed run and at least 12 messages (8 MiB
                 * and 4 for the slow TLS and CoAP paths) */
                bool slow = p >= BP_EVO_TLS;
                int n = (int)((slow ? 8u << 20 : 192u << 20) / size);
                int lo = slow ? 4 : 12;
                n = n > 4000 ? 4000 : n < lo ? lo : n;
                bench_time t = bench_path_run(p, size, n, data);
                w[p][k] = (double)size * n / t.wall / 1e6;
                c[p][k] = t.cpu * 1e3 / ((double)size * n / (1 << 20));
            }
        }
        for (int p = 0; p < BENCH_PATHS; p++)
            if (run[p]) {
                mbs[s][p] = bench_median(w[p], trials);
                cpu_ms[s][p] = bench_median(c[p], trials);
            }
        fprintf(stderr, "transport_bench: %zu KiB done\n", size >> 10);
    }
    printf("\n## Throughput: one float32 tensor per message, loopback (median of %d trials)\n\n",
           trials);
    printf("MB/s; in brackets the ratio to the raw socket of the same kind (TCP for tcp, tls "
           "and coap; unix for ipc).\n\n| size |");
    for (int p = 0; p < BENCH_PATHS; p++)
        if (run[p])
            printf(" %s |", bench_path_names[p]);
    printf("\n|---|");
    for (int p = 0; p < BENCH_PATHS; p++)
        if (run[p])
            printf("---|");
    printf("\n");
    for (int s = 0; s < 4; s++) {
        printf("| %zu KiB |", sizes[s] >> 10);
        for (int p = 0; p < BENCH_PATHS; p++) {
            if (!run[p])
                continue;
            double base =
                mbs[s][(p == BP_NNG_IPC || p == BP_EVO_IPC || p == BP_EVO_IPC_STREAM) ? BP_RAW_UNIX
                                                                                      : BP_RAW_TCP];
            if (p == BP_RAW_TCP || p == BP_RAW_UNIX)
                printf(" %.0f |", mbs[s][p]);
            else
                printf(" %.0f (%.2f) |", mbs[s][p], mbs[s][p] / base);
        }
        printf("\n");
    }
    printf("\nCPU time of the whole process (sender, receiver, nng threads) per MiB moved, ms:\n\n"
           "| size |");
    for (int p = 0; p < BENCH_PATHS; p++)
        if (run[p])
            printf(" %s |", bench_path_names[p]);
    printf("\n|---|");
    for (int p = 0; p < BENCH_PATHS; p++)
        if (run[p])
            printf("---|");
    printf("\n");
    for (int s = 0; s < 4; s++) {
        printf("| %zu KiB |", sizes[s] >> 10);
        for (int p = 0; p < BENCH_PATHS; p++)
            if (run[p])
                printf(" %.2f |", cpu_ms[s][p]);
        printf("\n");
    }
    fflush(stdout);

    if (bench_only) {
        free(data);
        return;
    }
    printf("\n## Latency of a 1 KiB tensor message (round trip / 2, median of %d trials)\n\n",
           trials);
    printf("| path | one-way us | added over raw TCP us |\n|---|---|---|\n");
    double lat[BENCH_MAX_TRIALS];
    for (int k = 0; k < trials; k++)
        lat[k] = bench_raw_run(false, 1024, 2000, true, data).wall / 2000 / 2 * 1e6;
    double raw = bench_median(lat, trials);
    printf("| raw TCP | %.1f | - |\n", raw);
    static const char *const schemes[] = {"tcp",        "ipc",        "tls+tcp",       "coap",
                                          "tcp+stream", "ipc+stream", "tls+tcp+stream"};
    for (int q = 0; q < 7; q++) {
        if ((strstr(schemes[q], "tls") && !bench_certs) || (q == 3 && !coap))
            continue;
        for (int k = 0; k < trials; k++)
            lat[k] = bench_evo_run(schemes[q], 1024, 1000, true, data).wall / 1000 / 2 * 1e6;
        double us = bench_median(lat, trials);
        printf("| %s | %.1f | %.1f |\n", schemes[q], us, us - raw);
        fflush(stdout);
    }
    free(data);
}

/* ---------------------------------------------------------------- encodings */

static void bench_encodings(const char *list)
{
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "transport_bench: cannot open %s\n", list);
        exit(1);
    }
    printf("\n## Encodings on real activations\n\n");
    printf(
        "| tensor | elems | encoding | compress | bytes %% of raw | enc ms | dec ms | max abs err "
        "| rel RMS err |\n|---|---|---|---|---|---|---|---|---|\n");
    char label[256], file[1024];
    int rank;
    double tot_raw = 0, tot[4][3] = {{0}};
    while (fscanf(f, "%255s %1023s %d", label, file, &rank) == 3) {
        evo_shape sh = {rank, {0}};
        for (int d = 0; d < rank; d++)
            if (fscanf(f, "%d", &sh.dims[d]) != 1)
                exit(1);
        size_t bytes;
        if (evo_shape_nbytes(&sh, EVO_DT_FLOAT32, &bytes) != EVO_OK)
            continue;
        float *x = (float *)malloc(bytes), *y = (float *)malloc(bytes);
        FILE *g = fopen(file, "rb");
        if (!g || fread(x, 1, bytes, g) != bytes) {
            fprintf(stderr, "transport_bench: short file %s\n", file);
            exit(1);
        }
        fclose(g);
        size_t n = bytes / 4;
        double rms = 0;
        for (size_t i = 0; i < n; i++)
            rms += (double)x[i] * x[i];
        rms = sqrt(rms / n);
        tot_raw += (double)bytes;
        evo_tensor t = {EVO_DT_FLOAT32, sh, x};
        static const evo_encoding encs[4] = {EVO_ENC_RAW, EVO_ENC_FP16, EVO_ENC_INT8, EVO_ENC_INT8};
        for (int e = 0; e < 4; e++) {
            int axis = e == 3 ? (rank > 1 ? 1 : -1) : -1;
            if (e == 3 && axis < 0)
                continue;
            for (int c = 0; c < 3; c++) {
                evo_wire_tensor wt;
                evo_error err;
                int reps = n < 100000 ? 20 : 3;
                double t0 = bench_now();
                for (int r = 0; r < reps; r++) {
                    if (r)
                        evo_wire_tensor_clear(&wt);
                    if (evo_wire_tensor_encode(&wt, label, -1, &t, encs[e], (evo_compress)c, axis,
                                               &err) != EVO_OK)
                        bench_die("encode", &err);
                }
                double te = (bench_now() - t0) / reps;
                t0 = bench_now();
                for (int r = 0; r < reps; r++)
                    if (evo_wire_tensor_decode(&wt, EVO_DT_FLOAT32, y, bytes, NULL, &err))
                        bench_die("decode", &err);
                double td = (bench_now() - t0) / reps;
                double maxe = 0, se = 0;
                for (size_t i = 0; i < n; i++) {
                    double dlt = fabs((double)y[i] - x[i]);
                    maxe = dlt > maxe ? dlt : maxe;
                    se += dlt * dlt;
                }
                double sz = (double)wt.payload_len + wt.quant_count * 8.0;
                tot[e][c] += sz;
                /* '*': the compressor did not shrink it, so it went uncompressed */
                printf("| %s | %zu | %s%s | %s%s | %.1f | %.2f | %.2f | %.3g | %.3g |\n", label, n,
                       evo_encoding_name(encs[e]), e == 3 ? "/ch" : "",
                       evo_compress_name((evo_compress)c),
                       c && wt.compress == EVO_COMP_NONE ? "*" : "", 100.0 * sz / bytes, te * 1e3,
                       td * 1e3, maxe, rms > 0 ? sqrt(se / n) / rms : 0.0);
                evo_wire_tensor_clear(&wt);
            }
        }
        free(x);
        free(y);
    }
    fclose(f);
    printf(
        "\n### Total over all tensors (bytes %% of raw; per-channel int8 only where rank>1)\n\n");
    printf("| encoding | none | zstd | lz4 |\n|---|---|---|---|\n");
    static const char *names[4] = {"raw", "fp16", "int8", "int8/ch"};
    for (int e = 0; e < 4; e++)
        printf("| %s | %.1f | %.1f | %.1f |\n", names[e], 100 * tot[e][0] / tot_raw,
               100 * tot[e][1] / tot_raw, 100 * tot[e][2] / tot_raw);
}

/* ---------------------------------------------------------------- TLS ciphers */

/* What mbedTLS alone encrypts, one 16 KiB TLS record at a time: the
 * ceiling of every TLS path above (each byte is encrypted once and
 * decrypted once on the same two cores). ChaCha20-Poly1305 is what the
 * handshake picks (mbedTLS 2.28's server preference; nng has no option to
 * change it); AES-128-GCM is shown to say whether preferring it would
 * help. */
static void bench_ciphers(void)
{
    enum { REC = 16384, REPS = 2048 };
    uint8_t *in = calloc(1, REC), *out = calloc(1, REC), key[32] = {1}, iv[12] = {2}, tag[16];
    if (!in || !out)
        bench_die("cipher buffers", NULL);
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    mbedtls_chachapoly_context cp;
    mbedtls_chachapoly_init(&cp);
    if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 128) != 0 ||
        mbedtls_chachapoly_setkey(&cp, key) != 0)
        bench_die("cipher keys", NULL);
    double gcm_s = 1e30, cp_s = 1e30; /* best of 3 */
    for (int t = 0; t < 3; t++) {
        double t0 = bench_now();
        for (int i = 0; i < REPS; i++)
            mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, REC, iv, 12, NULL, 0, in, out, 16,
                                      tag);
        double t1 = bench_now();
        for (int i = 0; i < REPS; i++)
            mbedtls_chachapoly_encrypt_and_tag(&cp, REC, iv, NULL, 0, in, out, tag);
        double t2 = bench_now();
        gcm_s = t1 - t0 < gcm_s ? t1 - t0 : gcm_s;
        cp_s = t2 - t1 < cp_s ? t2 - t1 : cp_s;
    }
    printf("\n## TLS record ciphers: mbedTLS alone, 16 KiB records, one core (best of 3)\n\n"
           "| cipher | MB/s |\n|---|---|\n| ChaCha20-Poly1305 (negotiated) | %.0f |\n"
           "| AES-128-GCM | %.0f |\n",
           (double)REC * REPS / cp_s / 1e6, (double)REC * REPS / gcm_s / 1e6);
    mbedtls_gcm_free(&gcm);
    mbedtls_chachapoly_free(&cp);
    free(in);
    free(out);
}

int main(int argc, char **argv)
{
    const char *acts = NULL;
    bool net = true, coap = true;
    int trials = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--certs") && i + 1 < argc)
            bench_certs = argv[++i];
        else if (!strcmp(argv[i], "--acts") && i + 1 < argc)
            acts = argv[++i];
        else if (!strcmp(argv[i], "--skip-net"))
            net = false;
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            bench_only = argv[++i];
        else if (!strcmp(argv[i], "--no-coap"))
            coap = false;
        else if (!strcmp(argv[i], "--trials") && i + 1 < argc) {
            trials = atoi(argv[++i]);
            if (trials < 1 || trials > BENCH_MAX_TRIALS) {
                fprintf(stderr, "transport_bench: --trials takes 1..%d\n", BENCH_MAX_TRIALS);
                return 2;
            }
        } else {
            fprintf(stderr,
                    "usage: %s [--certs DIR] [--acts LIST] [--skip-net] [--no-coap] [--trials N] "
                    "[--path NAME]\n",
                    argv[0]);
            return 2;
        }
    }
    if (net)
        bench_network(trials, coap);
    if (net && bench_certs && !bench_only)
        bench_ciphers();
    if (acts)
        bench_encodings(acts);
    return 0;
}
