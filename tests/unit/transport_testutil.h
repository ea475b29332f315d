/*
 * Shared by the transport tests: one sample message of every type (with
 * tensors in every encoding), a deep comparison of messages, TLS material and
 * options, a 64 MiB message and temporary directories. Header-only so each test stays one program.
 */
#ifndef EVO_TRANSPORT_TESTUTIL_H
#define EVO_TRANSPORT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evo/transport.h"

#define TT_NTYPES 8

typedef struct tt_samples {
    evo_msg msgs[TT_NTYPES];
    evo_wire_tensor tensors[6];
    evo_stage_timing timings[2];
    float act[2 * 8 * 64];
    int64_t ids[5];
    uint16_t half[4];
    uint8_t blob[3000];
} tt_samples;

/* Fill s with one message per type. Tensors: raw float32, raw int64, fp16,
 * int8 per-tensor, int8 per-channel + zstd, raw + lz4. */
static inline void tt_make_samples(tt_samples *s)
{
    evo_error err;
    memset(s, 0, sizeof *s);
    /* post-ReLU-like: two thirds zeros, the rest spread over [-0.65, 0.65] */
    for (int i = 0; i < 2 * 8 * 64; i++)
        s->act[i] = (i % 3) ? 0.0f : (float)((i * 37) % 101 - 50) * 0.013f;
    for (int i = 0; i < 5; i++)
        s->ids[i] = (int64_t)i * 1000000007LL - 3;
    for (size_t i = 0; i < sizeof s->blob; i++)
        s->blob[i] = (uint8_t)(i * 7 + 1);
    evo_tensor f = {EVO_DT_FLOAT32, {3, {2, 8, 64}}, s->act};
    evo_tensor l = {EVO_DT_INT64, {1, {5}}, s->ids};
    assert_int_equal(
        evo_wire_tensor_encode(&s->tensors[0], "act", -1, &f, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&s->tensors[1], NULL, 3, &l, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    assert_int_equal(evo_wire_tensor_encode(&s->tensors[2], "half", 1, &f, EVO_ENC_FP16,
                                            EVO_COMP_NONE, -1, &err),
                     EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&s->tensors[3], "q", -1, &f, EVO_ENC_INT8, EVO_COMP_NONE, -1, &err),
        EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&s->tensors[4], "qc", -1, &f, EVO_ENC_INT8, EVO_COMP_ZSTD, 1, &err),
        EVO_OK);
    assert_int_equal(
        evo_wire_tensor_encode(&s->tensors[5], "z", -1, &f, EVO_ENC_RAW, EVO_COMP_LZ4, -1, &err),
        EVO_OK);
    s->timings[0] = (evo_stage_timing){0, 10, 2000, 300};
    s->timings[1] = (evo_stage_timing){1, 11, 1234567890123ull, 5};

    evo_msg *m = s->msgs;
    evo_msg_init(m, EVO_MSG_REGISTER);
    m->request_id = 1;
    strcpy(m->u.reg.name, "edge-7");
    strcpy(m->u.reg.device_class, "mcu");
    strcpy(m->u.reg.listen_url, "coap://10.0.0.7:5683");
    m->u.reg.memory_bytes = 512ull << 10;
    m->u.reg.flash_bytes = 2ull << 20;
    m->u.reg.gflops = 0.125;
    m->u.reg.role = EVO_ROLE_SENSOR;
    m++;
    evo_msg_init(m, EVO_MSG_HEARTBEAT);
    m->request_id = 2;
    m->sequence = 99;
    strcpy(m->u.heartbeat.name, "edge-7");
    m->u.heartbeat.uptime_ms = 86400000;
    m->u.heartbeat.free_memory_bytes = 123456;
    m->u.heartbeat.timestamp_ns = 0xfedcba9876543210ull;
    m->u.heartbeat.load_permille = 750;
    m++;
    evo_msg_init(m, EVO_MSG_DEPLOY);
    m->request_id = 3;
    strcpy(m->u.deploy.model, "mobilenet");
    m->u.deploy.blob = s->blob;
    m->u.deploy.blob_len = m->u.deploy.blob_size = sizeof s->blob;
    m->u.deploy.stage = 2;
    evo_sha256(s->blob, sizeof s->blob, m->u.deploy.digest);
    m++;
    evo_msg_init(m, EVO_MSG_RUN);
    m->request_id = 0x1122334455667788ull;
    strcpy(m->u.run.model, "mobilenet");
    m->u.run.stage = 1;
    m->tensors = s->tensors;
    m->n_tensors = 2;
    m++;
    evo_msg_init(m, EVO_MSG_TENSORS);
    m->request_id = 5;
    m->sequence = 3;
    m->flags = EVO_MSG_FLAG_LAST;
    m->u.tensors.stage = 4;
    m->tensors = s->tensors;
    m->n_tensors = 6;
    m++;
    evo_msg_init(m, EVO_MSG_RESULT);
    m->request_id = 6;
    m->u.result.status = EVO_OK;
    m->tensors = s->tensors + 2;
    m->n_tensors = 3;
    m->timings = s->timings;
    m->n_timings = 2;
    m++;
    evo_msg_init(m, EVO_MSG_ERROR);
    m->request_id = 7;
    m->u.error.status = EVO_ERR_SHAPE;
    strcpy(m->u.error.message, "node 'conv1': input has 3 channels, weights 4");
    m++;
    evo_msg_init(m, EVO_MSG_ACK);
    m->request_id = 8;
    m->u.ack.value = 42;
}

static inline void tt_free_samples(tt_samples *s)
{
    for (int i = 0; i < 6; i++)
        evo_wire_tensor_clear(&s->tensors[i]);
}

static inline void tt_assert_tensor_equal(const evo_wire_tensor *a, const evo_wire_tensor *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->dtype, b->dtype);
    assert_true(evo_shape_equal(&a->shape, &b->shape));
    assert_int_equal(a->encoding, b->encoding);
    assert_int_equal(a->compress, b->compress);
    assert_int_equal(a->encoded_len, b->encoded_len);
    assert_int_equal(a->payload_len, b->payload_len);
    assert_memory_equal(a->payload, b->payload, (size_t)a->payload_len);
    if (a->encoding == EVO_ENC_INT8) {
        assert_int_equal(a->quant_axis, b->quant_axis);
        assert_int_equal(a->quant_count, b->quant_count);
        assert_memory_equal(a->quant, b->quant, (size_t)a->quant_count * 8);
    }
}

/* m came from evo_tp_recv: it says when the channel had it (within the
 * last minute; a decoded message says 0). */
static inline void tt_assert_received(const evo_msg *m)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    assert_true(m->received_ns > 0 && m->received_ns <= now);
    assert_true(now - m->received_ns < 60000000000ull);
}

static inline void tt_assert_msg_equal(const evo_msg *a, const evo_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->request_id, b->request_id);
    assert_int_equal(a->sequence, b->sequence);
    switch (a->type) {
    case EVO_MSG_REGISTER:
        assert_string_equal(a->u.reg.name, b->u.reg.name);
        assert_string_equal(a->u.reg.device_class, b->u.reg.device_class);
        assert_string_equal(a->u.reg.listen_url, b->u.reg.listen_url);
        assert_int_equal(a->u.reg.memory_bytes, b->u.reg.memory_bytes);
        assert_int_equal(a->u.reg.flash_bytes, b->u.reg.flash_bytes);
        assert_true(a->u.reg.gflops == b->u.reg.gflops);
        assert_int_equal(a->u.reg.role, b->u.reg.role);
        break;
    case EVO_MSG_HEARTBEAT:
        assert_string_equal(a->u.heartbeat.name, b->u.heartbeat.name);
        assert_int_equal(a->u.heartbeat.uptime_ms, b->u.heartbeat.uptime_ms);
        assert_int_equal(a->u.heartbeat.free_memory_bytes, b->u.heartbeat.free_memory_bytes);
        assert_int_equal(a->u.heartbeat.timestamp_ns, b->u.heartbeat.timestamp_ns);
        assert_int_equal(a->u.heartbeat.load_permille, b->u.heartbeat.load_permille);
        break;
    case EVO_MSG_DEPLOY:
        assert_string_equal(a->u.deploy.model, b->u.deploy.model);
        assert_memory_equal(a->u.deploy.digest, b->u.deploy.digest, 32);
        assert_int_equal(a->u.deploy.blob_size, b->u.deploy.blob_size);
        assert_int_equal(a->u.deploy.blob_len, b->u.deploy.blob_len);
        assert_int_equal(a->u.deploy.stage, b->u.deploy.stage);
        if (a->u.deploy.blob_len)
            assert_memory_equal(a->u.deploy.blob, b->u.deploy.blob, a->u.deploy.blob_len);
        break;
    case EVO_MSG_RUN:
        assert_string_equal(a->u.run.model, b->u.run.model);
        assert_int_equal(a->u.run.stage, b->u.run.stage);
        break;
    case EVO_MSG_TENSORS:
        assert_int_equal(a->u.tensors.stage, b->u.tensors.stage);
        break;
    case EVO_MSG_RESULT:
        assert_int_equal(a->u.result.status, b->u.result.status);
        break;
    case EVO_MSG_ERROR:
        assert_int_equal(a->u.error.status, b->u.error.status);
        assert_string_equal(a->u.error.message, b->u.error.message);
        break;
    case EVO_MSG_ACK:
        assert_int_equal(a->u.ack.value, b->u.ack.value);
        break;
    default:
        fail_msg("unknown type %u", a->type);
    }
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint32_t i = 0; i < a->n_tensors; i++)
        tt_assert_tensor_equal(&a->tensors[i], &b->tensors[i]);
    assert_int_equal(a->n_timings, b->n_timings);
    /* field by field: the struct has padding after `stage` */
    for (uint32_t i = 0; i < a->n_timings; i++) {
        assert_int_equal(a->timings[i].stage, b->timings[i].stage);
        assert_int_equal(a->timings[i].queue_ns, b->timings[i].queue_ns);
        assert_int_equal(a->timings[i].compute_ns, b->timings[i].compute_ns);
        assert_int_equal(a->timings[i].transfer_ns, b->timings[i].transfer_ns);
    }
}

/* int8 scale of channel c of a wire tensor. */
static inline float tp_test_scale(const evo_wire_tensor *t, uint32_t c)
{
    float f;
    assert_true(c < t->quant_count);
    memcpy(&f, t->quant + 8 * c, 4);
    return f;
}

/* Encode m into a malloc'd buffer. */
static inline uint8_t *tt_encode(const evo_msg *m, size_t *len)
{
    evo_error err;
    assert_int_equal(evo_wire_encoded_size(m, len, &err), EVO_OK);
    uint8_t *buf = (uint8_t *)malloc(*len);
    assert_non_null(buf);
    size_t w = 0;
    assert_int_equal(evo_wire_encode(m, buf, *len, &w, &err), EVO_OK);
    assert_int_equal(w, *len);
    return buf;
}

static inline char *tt_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *p = (char *)malloc(512);
    assert_non_null(p);
    snprintf(p, 512, "%s/evo-tp-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(p));
    return p;
}

static inline void tt_rmrf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* TLS material: scripts/make-test-certs.sh writes a CA, a server and a
 * client certificate (and another CA) into dir/certs; false if it could not
 * (then the TLS tests skip). */
static inline bool tt_make_certs(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/make-test-certs.sh' '%s/certs' >/dev/null 2>&1",
             EVO_SOURCE_DIR, dir);
    return system(cmd) == 0;
}

/* dir/certs/name, in one of 8 rotating buffers (several live at once). */
static inline const char *tt_cert_in(const char *dir, const char *name)
{
    static char bufs[8][600];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 600, "%s/certs/%s", dir, name);
    return b;
}

/* Options with 10 s timeouts. */
static inline void tt_opts(evo_tp_options *o)
{
    evo_tp_options_default(o);
    o->recv_timeout_ms = 10000;
    o->send_timeout_ms = 10000;
}

/* A TLS server's options (mutual: it also requires client certificates). */
static inline void tt_tls_server_in(const char *dir, evo_tp_options *o, bool mutual)
{
    tt_opts(o);
    o->tls_cert_file = tt_cert_in(dir, "server.pem");
    o->tls_key_file = tt_cert_in(dir, "server.key");
    if (mutual)
        o->tls_ca_file = tt_cert_in(dir, "ca.pem");
}

/* A TLS client trusting CA file ca, presenting the client certificate if
 * with_cert. */
static inline void tt_tls_client_in(const char *dir, evo_tp_options *o, const char *ca,
                                    bool with_cert)
{
    tt_opts(o);
    o->tls_ca_file = tt_cert_in(dir, ca);
    o->tls_server_name = "localhost";
    if (with_cert) {
        o->tls_cert_file = tt_cert_in(dir, "client.pem");
        o->tls_key_file = tt_cert_in(dir, "client.key");
    }
}

/* A message with one float32 tensor of 64 MiB (the acceptance size for tcp
 * and tls+tcp), its data in *x (free it after evo_wire_tensor_clear(wt)). */
static inline void tt_big_msg(evo_msg *m, evo_wire_tensor *wt, float **x, size_t *n)
{
    *n = (64u << 20) / 4;
    *x = (float *)malloc(*n * sizeof **x);
    assert_non_null(*x);
    for (size_t i = 0; i < *n; i++)
        (*x)[i] = (float)(i % 65521) * 0.5f - (float)(i % 7);
    evo_tensor t = {EVO_DT_FLOAT32, {2, {4096, (int32_t)(*n / 4096)}}, *x};
    evo_error err;
    assert_int_equal(
        evo_wire_tensor_encode(wt, "big", -1, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1, &err), EVO_OK);
    evo_msg_init(m, EVO_MSG_TENSORS);
    m->request_id = 64;
    m->tensors = wt;
    m->n_tensors = 1;
}

/* got is tt_big_msg's message, its tensor read in place (zero-copy). */
static inline void tt_assert_big_msg(const evo_msg *got, const float *x, size_t n)
{
    assert_int_equal(got->n_tensors, 1);
    assert_int_equal(got->request_id, 64);
    const void *view;
    assert_int_equal(evo_wire_tensor_view(&got->tensors[0], EVO_DT_FLOAT32, &view), EVO_OK);
    assert_int_equal(got->tensors[0].payload_len, n * 4);
    assert_true(memcmp(view, x, n * 4) == 0);
}

#endif
