/*
 * TLS configuration for the channels that use nng's mbedTLS engine (nng
 * tls+tcp:// sockets and tls+tcp+stream:// byte streams): certificate files
 * read and checked up front, so a bad or missing file is a clear error at
 * open instead of a failed handshake later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "tp_internal.h"

/* Host part of tls+tcp://host:port, for server-name verification. */
static void tp_tls_url_host(const char *url, char *host, size_t cap)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *end;
    if (*h == '[') { /* IPv6 literal */
        h++;
        end = strchr(h, ']');
    } else {
        end = strrchr(h, ':');
    }
    size_t len = end ? (size_t)(end - h) : strlen(h);
    if (len >= cap)
        len = cap - 1;
    memcpy(host, h, len);
    host[len] = '\0';
}

/* mbedTLS accepts a certificate and a key that do not belong together and
 * only fails at handshake time; check the pair up front for a clear error. */
static evo_status tp_tls_check_pair(const evo_tp *tp, const char *cert, const char *key,
                                    evo_error *err)
{
    const evo_tp_options *o = &tp->opt;
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    evo_status st = EVO_OK;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&pk);
    const char *pw = o->tls_key_password;
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert, strlen(cert) + 1) != 0)
        st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "TLS certificate file '%s' holds no valid PEM certificate",
                           o->tls_cert_file);
    else if (mbedtls_pk_parse_key(&pk, (const unsigned char *)key, strlen(key) + 1,
                                  (const unsigned char *)pw, pw ? strlen(pw) : 0) != 0)
        st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "TLS key file '%s' holds no valid PEM key (or the password is wrong)",
                           o->tls_key_file);
    else if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0)
        st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "TLS key '%s' does not belong to certificate '%s'", o->tls_key_file,
                           o->tls_cert_file);
    mbedtls_pk_free(&pk);
    mbedtls_x509_crt_free(&crt);
    return st;
}

evo_status tp_tls_config_make(const evo_tp *tp, nng_tls_config **out, evo_error *err)
{
    const evo_tp_options *o = &tp->opt;
    bool server = tp->mode == EVO_TP_LISTEN;
    nng_tls_config *cfg = NULL;
    *out = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL;
    evo_status st = EVO_OK;
    int rv;
    if (server && (!o->tls_cert_file || !o->tls_key_file))
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "tls+tcp listener '%s' needs tls_cert_file and tls_key_file", tp->url);
    if (!server && !o->tls_ca_file)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "tls+tcp dialer '%s' needs tls_ca_file to verify the server", tp->url);
    if (!!o->tls_cert_file != !!o->tls_key_file)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "'%s': tls_cert_file and tls_key_file go together", tp->url);
    if (o->tls_ca_file && (st = tp_read_text_file(o->tls_ca_file, "TLS CA", &ca, err)) != EVO_OK)
        goto out;
    if (o->tls_cert_file &&
        ((st = tp_read_text_file(o->tls_cert_file, "TLS certificate", &cert, err)) != EVO_OK ||
         (st = tp_read_text_file(o->tls_key_file, "TLS key", &key, err)) != EVO_OK))
        goto out;
    if (cert && (st = tp_tls_check_pair(tp, cert, key, err)) != EVO_OK)
        goto out;
    if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) !=
        0) {
        st = evo_error_set(err, EVO_ERR_IO, "TLS setup for '%s' failed: %s", tp->url,
                           nng_strerror(rv));
        goto out;
    }
    if (ca && (rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0) {
        st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "TLS CA file '%s' holds no valid PEM certificate (%s)", o->tls_ca_file,
                           nng_strerror(rv));
        goto out;
    }
    if (cert && (rv = nng_tls_config_own_cert(cfg, cert, key, o->tls_key_password)) != 0) {
        st = evo_error_set(err, EVO_ERR_INVALID_ARG,
                           "TLS certificate '%s' with key '%s' is invalid, encrypted with another "
                           "password, or they do not match (%s)",
                           o->tls_cert_file, o->tls_key_file, nng_strerror(rv));
        goto out;
    }
    /* A server with a CA requires client certificates (mutual auth); a client
     * always verifies the server. */
    rv = nng_tls_config_auth_mode(cfg, ca ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE);
    if (rv == 0 && !server) {
        char host[EVO_WIRE_STR_MAX];
        if (o->tls_server_name)
            snprintf(host, sizeof host, "%s", o->tls_server_name);
        else
            tp_tls_url_host(tp->url, host, sizeof host);
        rv = nng_tls_config_server_name(cfg, host);
    }
    if (rv != 0)
        st = evo_error_set(err, EVO_ERR_IO, "TLS setup for '%s' failed: %s", tp->url,
                           nng_strerror(rv));
out:
    free(ca);
    free(cert);
    free(key);
    if (st == EVO_OK)
        *out = cfg;
    else if (cfg)
        nng_tls_config_free(cfg);
    return st;
}

bool tp_tls_handshake_failed(const evo_tp *tp, int rv, evo_error *err, evo_status *st)
{
    if (rv != NNG_EPEERAUTH && rv != NNG_ECRYPTO && rv != NNG_ECLOSED && rv != NNG_ECONNSHUT &&
        rv != NNG_ECONNRESET)
        return false;
    *st = evo_error_set(err, EVO_ERR_IO,
                        "TLS handshake with '%s' failed: the server certificate is not signed by "
                        "CA '%s' or not issued for the server name, or the server refused our "
                        "certificate (%s)",
                        tp->url, tp->opt.tls_ca_file ? tp->opt.tls_ca_file : "(none)",
                        nng_strerror(rv));
    return true;
}
