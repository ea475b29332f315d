/*
 * Transport benchmark (kept short: the machine is shared).
 *
 *   evo_transport_bench [--certs DIR] [--acts LIST] [--skip-net]
 *
 * Part 1: throughput of evo's send path (encode + send + receive + zero-copy
 * view) for one float32 tensor of 1 KiB, 64 KiB, 1 MiB and 16 MiB over tcp,
 * ipc, tls+tcp (needs --certs from scripts/make-test-certs.sh) and CoAP,
 * against a plain TCP socket on loopback that sends the same bytes with an
 * 8-byte length prefix. Also the one-way latency of a 1 KiB message
 * (round trip / 2) and what evo adds to the raw socket's.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evo/transport.h"

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_die(const char *what, const evo_error *e)
{
    fprintf(stderr, "transport_bench: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

/* ---------------------------------------------------------------- raw TCP */

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
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t *buf = (uint8_t *)malloc(r->size);
    for (int i = 0; i < r->n; i++) {
        uint64_t len;
        if (!bench_read_full(fd, &len, 8) || len != r->size || !bench_read_full(fd, buf, len))
            break;
        if (r->pingpong && (!bench_write_full(fd, &len, 8) || !bench_write_full(fd, buf, len)))
            break;
    }
    if (!r->pingpong) {
        uint8_t ack = 1;
        bench_write_full(fd, &ack, 1);
    }
    free(buf);
    close(fd);
    return NULL;
}

/* Seconds for n messages of size bytes (throughput) or per round trip. */
static double bench_raw_run(size_t size, int n, bool pingpong, const void *data)
{
    bench_raw r = {socket(AF_INET, SOCK_STREAM, 0), n, size, pingpong};
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(r.lfd, (struct sockaddr *)&a, sizeof a) || listen(r.lfd, 1) ||
        getsockname(r.lfd, (struct sockaddr *)&a, &al))
        bench_die("raw socket", NULL);
    pthread_t th;
    pthread_create(&th, NULL, bench_raw_server, &r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a))
        bench_die("raw connect", NULL);
    uint8_t *back = pingpong ? (uint8_t *)malloc(size) : NULL;
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        uint64_t len = size;
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
    double t = bench_now() - t0;
    pthread_join(th, NULL);
    close(fd);
    close(r.lfd);
    free(back);
    return pingpong ? t / n : t;
}

/* ---------------------------------------------------------------- evo */

typedef struct bench_evo {
    evo_tp *tp;
    int n;
    bool echo;
} bench_evo;

static void *bench_evo_server(void *arg)
{
    bench_evo *b = (bench_evo *)arg;
    evo_error err;
    for (int i = 0; i < b->n; i++) {
        evo_msg m;
        if (evo_tp_recv(b->tp, &m, &err) != EVO_OK)
            bench_die("evo recv", &err);
        const void *view;
        if (m.n_tensors != 1 ||
            evo_wire_tensor_view(&m.tensors[0], EVO_DT_FLOAT32, &view) != EVO_OK)
            bench_die("evo view", NULL);
        if (b->echo && evo_tp_send(b->tp, &m, &err) != EVO_OK)
            bench_die("evo echo", &err);
        evo_msg_release(&m);
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
    if (!strcmp(scheme, "tls+tcp")) {
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

static double bench_evo_run(const char *scheme, size_t size, int n, bool pingpong, void *data)
{
    char lurl[256], durl[256];
    if (!strcmp(scheme, "ipc"))
        snprintf(lurl, sizeof lurl, "ipc:///tmp/evo-bench-%d.sock", (int)getpid());
    else
        snprintf(lurl, sizeof lurl, "%s://127.0.0.1:0", scheme);
    evo_tp_options lo, dopt;
    bench_opts(scheme, true, &lo);
    bench_opts(scheme, false, &dopt);
    evo_tp *l, *d;
    evo_error err;
    evo_tp_pattern lp = pingpong ? EVO_TP_REP : EVO_TP_PULL;
    evo_tp_pattern dp = pingpong ? EVO_TP_REQ : EVO_TP_PUSH;
    if (evo_tp_open(&l, lurl, lp, EVO_TP_LISTEN, &lo, &err) != EVO_OK)
        bench_die("listen", &err);
    if (evo_tp_port(l) > 0)
        snprintf(durl, sizeof durl, "%s://127.0.0.1:%d", scheme, evo_tp_port(l));
    else
        snprintf(durl, sizeof durl, "%s", lurl);
    if (evo_tp_open(&d, durl, dp, EVO_TP_DIAL, &dopt, &err) != EVO_OK)
        bench_die("dial", &err);
    bench_evo srv = {l, n, pingpong};
    pthread_t th;
    pthread_create(&th, NULL, bench_evo_server, &srv);
    evo_tensor t = {EVO_DT_FLOAT32, {1, {(int32_t)(size / 4)}}, data};
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        evo_wire_tensor wt;
        evo_msg m;
        if (evo_wire_tensor_encode(&wt, "x", -1, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err))
            bench_die("encode", &err);
        evo_msg_init(&m, EVO_MSG_TENSORS);
        m.sequence = (uint32_t)i;
        m.tensors = &wt;
        m.n_tensors = 1;
        if (evo_tp_send(d, &m, &err) != EVO_OK)
            bench_die("send", &err);
        evo_wire_tensor_clear(&wt);
        if (pingpong) {
            evo_msg r;
            const void *view;
            if (evo_tp_recv(d, &r, &err) != EVO_OK)
                bench_die("recv reply", &err);
            if (r.n_tensors != 1 ||
                evo_wire_tensor_view(&r.tensors[0], EVO_DT_FLOAT32, &view) != EVO_OK)
                bench_die("reply view", NULL);
            evo_msg_release(&r);
        }
    }
    pthread_join(th, NULL);
    double el = bench_now() - t0;
    evo_tp_close(d);
    evo_tp_close(l);
    return pingpong ? el / n : el;
}

static void bench_network(void)
{
    static const size_t sizes[] = {1u << 10, 64u << 10, 1u << 20, 16u << 20};
    const char *schemes[] = {"tcp", "ipc", "tls+tcp", "coap"};
    size_t maxs = sizes[3];
    float *data = (float *)malloc(maxs);
    for (size_t i = 0; i < maxs / 4; i++)
        data[i] = (float)(i % 1000) * 0.001f;
    printf("\n## Throughput: one float32 tensor per message, loopback\n\n");
    printf("| size | raw TCP MB/s | tcp MB/s (x raw) | ipc MB/s (x raw) | tls+tcp MB/s (x raw) "
           "| coap MB/s (x raw) |\n|---|---|---|---|---|---|\n");
    for (int s = 0; s < 4; s++) {
        size_t size = sizes[s];
        /* about 64 MiB per run (16 MiB for CoAP), at least 4 messages */
        int n = (int)((64u << 20) / size);
        n = n > 2000 ? 2000 : n < 4 ? 4 : n;
        double raw = (double)size * n / bench_raw_run(size, n, false, data) / 1e6;
        printf("| %zu KiB | %.0f |", size >> 10, raw);
        for (int k = 0; k < 4; k++) {
            if (!strcmp(schemes[k], "tls+tcp") && !bench_certs) {
                printf(" (no certs) |");
                continue;
            }
            int nn = n;
            if (!strcmp(schemes[k], "coap")) {
                nn = (int)((8u << 20) / size);
                nn = nn > 500 ? 500 : nn < 1 ? 1 : nn;
            }
            double mbs = (double)size * nn / bench_evo_run(schemes[k], size, nn, false, data) / 1e6;
            printf(" %.0f (%.2f) |", mbs, mbs / raw);
        }
        printf("\n");
        fflush(stdout);
    }
    printf("\n## Latency of a 1 KiB tensor message (round trip / 2)\n\n");
    printf("| path | one-way us | added over raw TCP us |\n|---|---|---|\n");
    double raw = bench_raw_run(1024, 2000, true, data) / 2 * 1e6;
    printf("| raw TCP | %.1f | - |\n", raw);
    for (int k = 0; k < 4; k++) {
        if (!strcmp(schemes[k], "tls+tcp") && !bench_certs)
            continue;
        double us = bench_evo_run(schemes[k], 1024, 1000, true, data) / 2 * 1e6;
        printf("| %s | %.1f | %.1f |\n", schemes[k], us, us - raw);
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

int main(int argc, char **argv)
{
    const char *acts = NULL;
    bool net = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--certs") && i + 1 < argc)
            bench_certs = argv[++i];
        else if (!strcmp(argv[i], "--acts") && i + 1 < argc)
            acts = argv[++i];
        else if (!strcmp(argv[i], "--skip-net"))
            net = false;
        else {
            fprintf(stderr, "usage: %s [--certs DIR] [--acts LIST] [--skip-net]\n", argv[0]);
            return 2;
        }
    }
    if (net)
        bench_network();
    if (acts)
        bench_encodings(acts);
    return 0;
}
