/*
 * What the commands that talk to a coordinator share: the --coordinator,
 * --token and --tls-* flags (with EVO_COORDINATOR, EVO_TOKEN, EVO_TLS_CERT,
 * EVO_TLS_KEY, EVO_TLS_CA as defaults), one authenticated call, and the
 * number formats of their tables.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"

void cli_coord_init(cli_coord *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->url = getenv("EVO_COORDINATOR");
    cc->sec.token = getenv("EVO_TOKEN");
    cc->sec.tls_cert = getenv("EVO_TLS_CERT");
    cc->sec.tls_key = getenv("EVO_TLS_KEY");
    cc->sec.tls_ca = getenv("EVO_TLS_CA");
    cc->sec.tls_server_name = getenv("EVO_TLS_SERVER_NAME");
    cc->timeout_ms = 120000;
}

bool cli_coord_arg(cli_args *a, cli_coord *cc)
{
    const char *val;
    if (cli_args_value(a, "--coordinator", &val))
        cc->url = val;
    else if (cli_args_value(a, "--token", &val))
        cc->sec.token = val;
    else if (cli_args_value(a, "--tls-cert", &val))
        cc->sec.tls_cert = val;
    else if (cli_args_value(a, "--tls-key", &val))
        cc->sec.tls_key = val;
    else if (cli_args_value(a, "--tls-ca", &val))
        cc->sec.tls_ca = val;
    else if (cli_args_value(a, "--tls-server-name", &val))
        cc->sec.tls_server_name = val;
    else
        return false;
    return true;
}

evo_status cli_coord_call(cli_coord *cc, const char *verb, const char *json,
                          const evo_wire_tensor *tensors, uint32_t n, evo_msg *reply, cJSON **doc,
                          evo_error *err)
{
    evo_client *cl = NULL;
    if (doc != NULL)
        *doc = NULL;
    evo_status rv = evo_client_open(cc->url, &cc->sec, cc->timeout_ms, &cl, err);
    if (rv == EVO_OK)
        rv = evo_client_call(cl, verb, json, tensors, n, reply, err);
    evo_client_close(cl);
    if (rv == EVO_OK && doc != NULL) {
        char *text = evo_client_reply_json(reply);
        *doc = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (*doc == NULL) {
            evo_msg_release(reply);
            rv = evo_error_set(err, EVO_ERR_PARSE, "the coordinator's reply carries no JSON");
        }
    }
    return rv;
}

int cli_coord_print_json(const cJSON *doc)
{
    char *text = cJSON_Print(doc);
    if (text == NULL)
        return CLI_EXIT_FAIL;
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

const char *cli_coord_num(const cJSON *o, const char *key)
{
    static _Thread_local char buf[4][32];
    static _Thread_local int k;
    char *b = buf[k++ & 3];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return "-";
    snprintf(b, 32, "%.3g", v->valuedouble);
    return b;
}

double cli_coord_get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *cli_coord_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

void cli_coord_print_plan(const cJSON *plan)
{
    const cJSON *st = cJSON_GetObjectItem(plan, "stages");
    printf("plan for %s: mode %s, objective %s, %d stage(s)\n", cli_coord_str(plan, "model"),
           cli_coord_str(plan, "mode"), cli_coord_str(plan, "objective"), cJSON_GetArraySize(st));
    if (cli_coord_str(plan, "partitioner")[0] != '\0')
        printf("partitioner: %s; predicted latency %.2f ms, period %.2f ms\n",
               cli_coord_str(plan, "partitioner"), cli_coord_get(plan, "predicted_latency_ms"),
               cli_coord_get(plan, "predicted_period_ms"));
    printf("%-5s %-14s %-6s %10s %9s %10s %10s %10s %10s %-22s %s\n", "STAGE", "DEVICE", "CLASS",
           "BUDGET", "NODES", "MFLOP", "WEIGHTS", "ARENA", "SENT", "INPUT", "DIGEST");
    const cJSON *s;
    cJSON_ArrayForEach(s, st)
    {
        char bud[32], w[32], ar[32], sent[32], nodes[32];
        cli_fmt_bytes((uint64_t)cli_coord_get(s, "device_memory"), bud, sizeof bud);
        cli_fmt_bytes((uint64_t)cli_coord_get(s, "weights_bytes"), w, sizeof w);
        cli_fmt_bytes((uint64_t)cli_coord_get(s, "arena_bytes"), ar, sizeof ar);
        cli_fmt_bytes((uint64_t)cli_coord_get(s, "sent_bytes"), sent, sizeof sent);
        snprintf(nodes, sizeof nodes, "%.0f-%.0f", cli_coord_get(s, "first"),
                 cli_coord_get(s, "last"));
        printf("%-5.0f %-14s %-6s %10s %9s %10.1f %10s %10s %10s %-22s %.12s\n",
               cli_coord_get(s, "stage"), cli_coord_str(s, "device"), cli_coord_str(s, "class"),
               bud, nodes, cli_coord_get(s, "flops") / 1e6, w, ar,
               cli_coord_get(s, "sent_bytes") > 0 ? sent : "(held)", cli_coord_str(s, "input_path"),
               cli_coord_str(s, "digest"));
    }
}

int cli_coord_query(const cli_command *cmd, int argc, char **argv, const char *verb, cli_coord *cc,
                    bool *json, evo_msg *reply, cJSON **doc)
{
    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    cli_coord_init(cc);
    *json = false;
    *doc = NULL;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        if (cli_args_common(&a, &rc) || cli_coord_arg(&a, cc))
            continue;
        if (cli_args_flag(&a, "--json"))
            *json = true;
        else if (a.failed)
            rc = CLI_EXIT_USAGE;
        else
            rc = cli_args_unknown(&a);
    }
    if (rc >= 0)
        return rc;
    evo_error err = {0};
    if (cli_coord_call(cc, verb, NULL, NULL, 0, reply, doc, &err) != EVO_OK) {
        cli_error(cmd->name, "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    return -1;
}

void cli_daemon_begin(sigset_t *stop_signals)
{
    sigemptyset(stop_signals);
    sigaddset(stop_signals, SIGINT);
    sigaddset(stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (evo_log_get_level() < EVO_LOG_INFO)
        evo_log_set_level(EVO_LOG_INFO);
}

int cli_daemon_wait(const sigset_t *stop_signals)
{
    int sig = 0;
    sigwait(stop_signals, &sig);
    return sig;
}
