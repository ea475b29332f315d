/*
 * Small pieces the coordinator, node agent and client share: clocks,
 * randomness, hex, HMAC over control messages, envelopes, URL helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "coord_internal.h"

uint64_t coord_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t coord_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void coord_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

evo_status coord_random(void *buf, size_t n, evo_error *err)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return EVO_OK;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        while (got < n) {
            ssize_t r = read(fd, p + got, n - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        close(fd);
    }
    if (got != n)
        return evo_error_set(err, EVO_ERR_IO, "cannot read random bytes for a challenge");
    return EVO_OK;
}

void coord_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int coord_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool coord_unhex(const char *s, uint8_t *out, size_t n)
{
    if (s == NULL || strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = coord_hexval(s[2 * i]), lo = coord_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool coord_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* ---------------------------------------------------------------- HMAC */

evo_status coord_msg_mac(const uint8_t *key, size_t key_len, const uint8_t *nonce, size_t nonce_len,
                         const evo_msg *m, uint8_t out[COORD_MAC_SIZE], evo_error *err)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = info ? mbedtls_md_setup(&md, info, 1) : -1;
    if (rc == 0)
        rc = mbedtls_md_hmac_starts(&md, key, key_len);
    if (rc == 0 && nonce_len > 0)
        rc = mbedtls_md_hmac_update(&md, nonce, nonce_len);
    const char *verb = m->type == EVO_MSG_RUN ? m->u.run.model : "";
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(m->request_id >> (8 * i));
    if (rc == 0)
        rc = mbedtls_md_hmac_update(&md, (const unsigned char *)verb, strlen(verb) + 1);
    if (rc == 0)
        rc = mbedtls_md_hmac_update(&md, le, sizeof le);
    for (uint32_t i = 0; rc == 0 && i < m->n_tensors; i++) {
        const evo_wire_tensor *wt = &m->tensors[i];
        if (strcmp(wt->name, COORD_T_AUTH) == 0)
            continue;
        rc = mbedtls_md_hmac_update(&md, (const unsigned char *)wt->name, strlen(wt->name) + 1);
        for (int b = 0; b < 8; b++)
            le[b] = (uint8_t)(wt->payload_len >> (8 * b));
        if (rc == 0)
            rc = mbedtls_md_hmac_update(&md, le, sizeof le);
        if (rc == 0 && wt->payload_len > 0)
            rc = mbedtls_md_hmac_update(&md, wt->payload, (size_t)wt->payload_len);
    }
    if (rc == 0)
        rc = mbedtls_md_hmac_finish(&md, out);
    mbedtls_md_free(&md);
    if (rc != 0)
        return evo_error_set(err, EVO_ERR_INTERNAL, "HMAC-SHA256 failed (mbedTLS error %d)", rc);
    return EVO_OK;
}

void coord_hmac_str(const uint8_t *key, size_t key_len, const char *s, uint8_t out[COORD_MAC_SIZE])
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (info == NULL ||
        mbedtls_md_hmac(info, key, key_len, (const unsigned char *)s, strlen(s), out) != 0)
        memset(out, 0, COORD_MAC_SIZE);
}

/* ---------------------------------------------------------------- byte tensors */

evo_status coord_bytes_tensor(evo_wire_tensor *wt, const char *name, const void *data, size_t len,
                              evo_error *err)
{
    if (len > (size_t)INT32_MAX)
        return evo_error_set(err, EVO_ERR_LIMIT, "'%s' is %zu bytes; at most 2 GiB can be sent",
                             name, len);
    static const uint8_t empty[1];
    evo_tensor t = {.dtype = EVO_DT_UINT8,
                    .shape = {.rank = 1, .dims = {(int32_t)len}},
                    .data = (void *)(len ? data : empty)};
    return evo_wire_tensor_encode(wt, name, -1, &t, EVO_ENC_RAW, EVO_COMP_NONE, -1, err);
}

const evo_wire_tensor *coord_find_tensor(const evo_msg *m, const char *name)
{
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    return NULL;
}

evo_status coord_tensor_bytes(const evo_wire_tensor *wt, const void **data, size_t *len,
                              evo_error *err)
{
    if (wt->dtype != EVO_DT_UINT8 || wt->shape.rank != 1 || wt->encoding != EVO_ENC_RAW ||
        wt->compress != EVO_COMP_NONE || wt->payload_len != (uint64_t)wt->shape.dims[0])
        return evo_error_set(err, EVO_ERR_PARSE,
                             "tensor '%s' is not a plain byte string (uint8, raw, rank 1)",
                             wt->name);
    *data = wt->payload;
    *len = (size_t)wt->payload_len;
    return EVO_OK;
}

cJSON *coord_msg_json(const evo_msg *m)
{
    const evo_wire_tensor *wt = coord_find_tensor(m, COORD_T_JSON);
    const void *d;
    size_t n;
    if (wt == NULL || coord_tensor_bytes(wt, &d, &n, NULL) != EVO_OK)
        return NULL;
    return cJSON_ParseWithLength(d, n);
}

/* ---------------------------------------------------------------- envelopes */

evo_status coord_env_init(coord_env *e, evo_msg_type type, const char *verb, char *json,
                          evo_error *err)
{
    memset(e, 0, sizeof *e);
    evo_msg_init(&e->m, type);
    if (type == EVO_MSG_RUN)
        snprintf(e->m.u.run.model, sizeof e->m.u.run.model, "%s", verb ? verb : "");
    e->json = json;
    e->m.tensors = e->t;
    if (json != NULL) {
        evo_status rv = coord_bytes_tensor(&e->t[0], COORD_T_JSON, json, strlen(json), err);
        if (rv != EVO_OK)
            return rv;
        e->n = 1;
    }
    e->m.n_tensors = e->n;
    return EVO_OK;
}

evo_status coord_env_add(coord_env *e, const evo_wire_tensor *wt, evo_error *err)
{
    if (e->n >= COORD_ENV_MAX)
        return evo_error_set(err, EVO_ERR_LIMIT, "a control message carries at most %d tensors",
                             COORD_ENV_MAX);
    e->t[e->n] = *wt;
    e->t[e->n].owned_ = NULL;
    e->n++;
    e->m.n_tensors = e->n;
    return EVO_OK;
}

evo_status coord_env_sign(coord_env *e, const uint8_t *key, size_t key_len, const uint8_t *nonce,
                          size_t nonce_len, evo_error *err)
{
    evo_status rv = coord_msg_mac(key, key_len, nonce, nonce_len, &e->m, e->mac, err);
    if (rv != EVO_OK)
        return rv;
    evo_wire_tensor wt;
    if ((rv = coord_bytes_tensor(&wt, COORD_T_AUTH, e->mac, sizeof e->mac, err)) != EVO_OK)
        return rv;
    return coord_env_add(e, &wt, err);
}

void coord_env_clear(coord_env *e)
{
    free(e->json);
    memset(e, 0, sizeof *e);
}

evo_status coord_msg_verify(const evo_msg *m, const uint8_t *key, size_t key_len,
                            const uint8_t *nonce, size_t nonce_len, evo_error *err)
{
    const evo_wire_tensor *wt = coord_find_tensor(m, COORD_T_AUTH);
    const void *d;
    size_t n;
    if (wt == NULL || coord_tensor_bytes(wt, &d, &n, NULL) != EVO_OK || n != COORD_MAC_SIZE)
        return evo_error_set(err, EVO_ERR_MISMATCH, "the request carries no authentication");
    uint8_t want[COORD_MAC_SIZE];
    evo_status rv = coord_msg_mac(key, key_len, nonce, nonce_len, m, want, err);
    if (rv != EVO_OK)
        return rv;
    if (!coord_equal(want, d, COORD_MAC_SIZE))
        return evo_error_set(err, EVO_ERR_MISMATCH,
                             "the request's HMAC does not match: wrong join token or key");
    return EVO_OK;
}

double coord_json_num(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

const char *coord_json_str(const cJSON *o, const char *key, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

/* ---------------------------------------------------------------- URLs */

/* Split url into scheme (with "://"), host and port parts. */
static void coord_url_split(const char *url, char *scheme, size_t scap, char *host, size_t hcap,
                            char *port, size_t pcap)
{
    scheme[0] = host[0] = port[0] = '\0';
    const char *p = strstr(url, "://");
    const char *h = url;
    if (p != NULL) {
        snprintf(scheme, scap, "%.*s", (int)(p - url + 3), url);
        h = p + 3;
    }
    const char *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb != NULL) {
            snprintf(host, hcap, "%.*s", (int)(rb - h + 1), h);
            if (rb + 1 < end && rb[1] == ':')
                snprintf(port, pcap, "%.*s", (int)(end - rb - 2), rb + 2);
            return;
        }
    }
    for (const char *q = h; q < end; q++)
        if (*q == ':')
            colon = q;
    if (colon != NULL) {
        snprintf(host, hcap, "%.*s", (int)(colon - h), h);
        snprintf(port, pcap, "%.*s", (int)(end - colon - 1), colon + 1);
    } else {
        snprintf(host, hcap, "%.*s", (int)(end - h), h);
    }
}

bool coord_url_is_loopback(const char *url)
{
    if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "ipc+stream://", 13) == 0 ||
        strncmp(url, "inproc://", 9) == 0)
        return true;
    char s[32], h[256], p[32];
    coord_url_split(url, s, sizeof s, h, sizeof h, p, sizeof p);
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "[::1]") == 0 || strcmp(h, "localhost") == 0;
}

bool coord_url_is_coap(const char *url)
{
    return strncmp(url, "coap://", 7) == 0 || strncmp(url, "coaps://", 8) == 0;
}

void coord_data_url(const char *url, char *out, size_t cap)
{
    /* tls+tcp too: its stream channel moves large tensors as fast as nng's
     * SP socket and adds less latency (docs/benchmarks.md, "Transport"). */
    static const char *const from[] = {"tcp://", "ipc://", "tls+tcp://"};
    static const char *const to[] = {"tcp+stream://", "ipc+stream://", "tls+tcp+stream://"};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        size_t n = strlen(from[i]);
        if (strncmp(url, from[i], n) == 0) {
            snprintf(out, cap, "%s%s", to[i], url + n);
            return;
        }
    }
    snprintf(out, cap, "%s", url);
}

void coord_url_base(const char *url, char *out, size_t cap)
{
    char s[32], h[256], p[32];
    coord_url_split(url, s, sizeof s, h, sizeof h, p, sizeof p);
    snprintf(out, cap, "%s%s", s, h);
}

void coord_url_with_port(const char *url, int port, char *out, size_t cap)
{
    char s[32], h[256], p[32];
    coord_url_split(url, s, sizeof s, h, sizeof h, p, sizeof p);
    snprintf(out, cap, "%s%s:%d", s, h, port);
}

void coord_url_reachable(const char *url, const char *via, char *out, size_t cap)
{
    char s[32], h[256], p[32], vs[32], vh[256], vp[32];
    coord_url_split(url, s, sizeof s, h, sizeof h, p, sizeof p);
    bool wild =
        h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "*") == 0 || strcmp(h, "[::]") == 0;
    if (!wild || via == NULL) {
        snprintf(out, cap, "%s", url);
        return;
    }
    coord_url_split(via, vs, sizeof vs, vh, sizeof vh, vp, sizeof vp);
    snprintf(out, cap, "%s%s:%s", s, vh, p);
}

void coord_tp_options(evo_tp_options *o, const evo_coord_security *sec, int32_t timeout_ms)
{
    evo_tp_options_default(o);
    o->recv_timeout_ms = timeout_ms;
    o->send_timeout_ms = timeout_ms;
    if (sec != NULL) {
        o->tls_ca_file = sec->tls_ca;
        o->tls_cert_file = sec->tls_cert;
        o->tls_key_file = sec->tls_key;
        o->tls_server_name = sec->tls_server_name ? sec->tls_server_name : "evo-cluster";
    }
    o->stream_depth = 64;
}

const char *coord_fmt_bytes(uint64_t bytes, char *buf)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}
