/*
 * The client side of the coordinator protocol: every request is preceded by
 * a challenge, and carries an HMAC under the join token over the challenge,
 * the verb and every tensor (token mode), or rides on mutual TLS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"

struct evo_client {
    evo_tp *tp;
    char url[EVO_WIRE_STR_MAX];
    char *token;
};

const char *evo_client_default_url(const char *url)
{
    if (url != NULL && url[0] != '\0')
        return url;
    const char *env = getenv("EVO_COORDINATOR");
    return env != NULL && env[0] != '\0' ? env : EVO_COORD_DEFAULT_URL;
}

evo_status evo_client_open(const char *url, const evo_coord_security *sec, int32_t timeout_ms,
                           evo_client **out, evo_error *err)
{
    *out = NULL;
    url = evo_client_default_url(url);
    evo_client *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory opening a client");
    snprintf(cl->url, sizeof cl->url, "%s", url);
    if (sec != NULL && sec->token != NULL && (cl->token = strdup(sec->token)) == NULL) {
        free(cl);
        return evo_error_set(err, EVO_ERR_NOMEM, "out of memory opening a client");
    }
    evo_tp_options o;
    coord_tp_options(&o, sec, timeout_ms > 0 ? timeout_ms : 120000);
    evo_status rv = evo_tp_open(&cl->tp, url, EVO_TP_REQ, EVO_TP_DIAL, &o, err);
    if (rv != EVO_OK) {
        evo_error_prefix(err, "cannot reach the coordinator at %s", url);
        evo_client_close(cl);
        return rv;
    }
    *out = cl;
    return EVO_OK;
}

void evo_client_close(evo_client *cl)
{
    if (cl == NULL)
        return;
    evo_tp_close(cl->tp);
    free(cl->token);
    free(cl);
}

static evo_status client_roundtrip(evo_client *cl, const evo_msg *m, evo_msg *reply, evo_error *err)
{
    evo_status rv = evo_tp_send(cl->tp, m, err);
    if (rv == EVO_OK)
        rv = evo_tp_recv(cl->tp, reply, err);
    if (rv != EVO_OK) {
        evo_error_prefix(err, "coordinator %s", cl->url);
        return rv;
    }
    if (reply->type == EVO_MSG_ERROR) {
        rv = evo_error_set(err, (evo_status)reply->u.error.status, "%s", reply->u.error.message);
        evo_msg_release(reply);
    }
    return rv;
}

evo_status evo_client_call(evo_client *cl, const char *verb, const char *json,
                           const evo_wire_tensor *tensors, uint32_t n_tensors, evo_msg *reply,
                           evo_error *err)
{
    memset(reply, 0, sizeof *reply);
    coord_env env;
    evo_msg r;
    evo_status rv = coord_env_init(&env, EVO_MSG_RUN, "challenge", NULL, err);
    if (rv == EVO_OK)
        rv = client_roundtrip(cl, &env.m, &r, err);
    coord_env_clear(&env);
    if (rv != EVO_OK)
        return rv;
    cJSON *cj = coord_msg_json(&r);
    char nonce_hex[2 * COORD_NONCE_SIZE + 1];
    char mode[16];
    snprintf(nonce_hex, sizeof nonce_hex, "%s", coord_json_str(cj, "nonce", ""));
    snprintf(mode, sizeof mode, "%s", coord_json_str(cj, "mode", "open"));
    cJSON_Delete(cj);
    evo_msg_release(&r);
    if (strcmp(mode, "token") == 0 && cl->token == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG,
                             "the coordinator at %s requires a join token (--token or EVO_TOKEN)",
                             cl->url);
    /* The nonce goes into the JSON so the coordinator knows which challenge
     * this answers; the MAC covers it through the JSON tensor. */
    cJSON *doc = json ? cJSON_Parse(json) : cJSON_CreateObject();
    if (doc == NULL)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "request document is not JSON");
    cJSON_DeleteItemFromObject(doc, "nonce");
    cJSON_AddStringToObject(doc, "nonce", nonce_hex);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if ((rv = coord_env_init(&env, EVO_MSG_RUN, verb, text, err)) != EVO_OK) {
        coord_env_clear(&env);
        return rv;
    }
    for (uint32_t i = 0; i < n_tensors && rv == EVO_OK; i++)
        rv = coord_env_add(&env, &tensors[i], err);
    uint8_t nonce[COORD_NONCE_SIZE];
    if (rv == EVO_OK && cl->token != NULL && coord_unhex(nonce_hex, nonce, sizeof nonce))
        rv = coord_env_sign(&env, (const uint8_t *)cl->token, strlen(cl->token), nonce,
                            sizeof nonce, err);
    if (rv == EVO_OK)
        rv = client_roundtrip(cl, &env.m, reply, err);
    coord_env_clear(&env);
    return rv;
}

char *evo_client_reply_json(const evo_msg *reply)
{
    const evo_wire_tensor *wt = coord_find_tensor(reply, COORD_T_JSON);
    const void *d;
    size_t n;
    if (wt == NULL || coord_tensor_bytes(wt, &d, &n, NULL) != EVO_OK)
        return NULL;
    char *s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, d, n);
        s[n] = '\0';
    }
    return s;
}
