/*
 * The channel API: option defaults, URL scheme dispatch to the nng, nng stream
 * or CoAP backend, and helpers both backends use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_internal.h"

void evo_tp_options_default(evo_tp_options *opt)
{
    memset(opt, 0, sizeof *opt);
    evo_tp_limits_default(&opt->limits);
    opt->recv_timeout_ms = -1;
    opt->send_timeout_ms = -1;
    opt->stream_depth = 16;
}

/* Certificates and keys are small; anything above this is not a PEM file. */
#define TP_MAX_TEXT_FILE (1u << 20)

evo_status tp_read_text_file(const char *path, const char *what, char **out, evo_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return evo_error_set(err, EVO_ERR_IO, "%s file '%s' cannot be opened: %s", what, path,
                             strerror(errno));
    char *buf = (char *)malloc(TP_MAX_TEXT_FILE + 1);
    if (!buf) {
        fclose(f);
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory to read %s file '%s'", what, path);
    }
    size_t n = fread(buf, 1, TP_MAX_TEXT_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > TP_MAX_TEXT_FILE || n == 0) {
        free(buf);
        return evo_error_set(err, EVO_ERR_IO, "%s file '%s' is %s", what, path,
                             bad      ? "unreadable"
                             : n == 0 ? "empty"
                                      : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    return EVO_OK;
}

evo_status evo_tp_open(evo_tp **out, const char *url, evo_tp_pattern pattern, evo_tp_mode mode,
                       const evo_tp_options *opt, evo_error *err)
{
    evo_status rv;
    *out = NULL;
    if (!url || strlen(url) >= EVO_WIRE_STR_MAX)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "transport URL is missing or too long");
    if ((unsigned)pattern > EVO_TP_PULL || (unsigned)mode > EVO_TP_DIAL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "unknown transport pattern or mode");
    evo_tp *tp = (evo_tp *)calloc(1, sizeof *tp);
    if (!tp)
        return evo_error_set(err, EVO_ERR_NOMEM, "no memory for a transport");
    if (opt)
        tp->opt = *opt;
    else
        evo_tp_options_default(&tp->opt);
    if (tp->opt.stream_depth <= 0)
        tp->opt.stream_depth = 16;
    tp->pattern = pattern;
    tp->mode = mode;
    strcpy(tp->url, url);
    if (!strncmp(url, "tcp+stream://", 13) || !strncmp(url, "ipc+stream://", 13) ||
        !strncmp(url, "tls+tcp+stream://", 17)) {
        rv = tp_stream_open(tp, err);
    } else if (!strncmp(url, "tcp://", 6) || !strncmp(url, "ipc://", 6) ||
               !strncmp(url, "inproc://", 9) || !strncmp(url, "tls+tcp://", 10)) {
        rv = tp_nng_open(tp, err);
    } else if (!strncmp(url, "coap://", 7) || !strncmp(url, "coaps://", 8)) {
        rv = tp_coap_open(tp, err);
    } else {
        rv = evo_error_set(err, EVO_ERR_UNSUPPORTED,
                           "transport URL '%s' has an unknown scheme (tcp, ipc, inproc, tls+tcp, "
                           "tcp+stream, ipc+stream, tls+tcp+stream, coap, coaps)",
                           url);
    }
    if (rv != EVO_OK) {
        free(tp);
        return rv;
    }
    *out = tp;
    return EVO_OK;
}

evo_status evo_tp_send(evo_tp *tp, const evo_msg *m, evo_error *err)
{
    if (!tp || !m)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_tp_send: NULL argument");
    return tp->ops->send(tp, m, err);
}

evo_status evo_tp_send_encoded(evo_tp *tp, const void *buf, size_t len, evo_error *err)
{
    if (!tp || (!buf && len))
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_tp_send_encoded: NULL argument");
    return tp->ops->send_encoded(tp, buf, len, err);
}

evo_status evo_tp_recv(evo_tp *tp, evo_msg *out, evo_error *err)
{
    if (!tp || !out)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "evo_tp_recv: NULL argument");
    memset(out, 0, sizeof *out);
    return tp->ops->recv(tp, out, err);
}

int evo_tp_port(const evo_tp *tp)
{
    return tp ? tp->ops->port(tp) : -1;
}

void evo_tp_close(evo_tp *tp)
{
    if (!tp)
        return;
    tp->ops->close(tp);
    free(tp);
}
