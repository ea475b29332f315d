/*
 * `evo coordinator`: run the coordinator until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"

static const char coordinator_usage[] =
    "usage: evo coordinator --listen URL [--listen URL]... --db FILE\n"
    "                       [--tls-cert FILE --tls-key FILE --tls-ca FILE | --token TOKEN]\n"
    "                       [--coap-listen coap://HOST:PORT] [--heartbeat-ms N]\n"
    "                       [--lost-after-ms N] [--request-timeout-ms N] [--port-file FILE]\n"
    "\n"
    "Keep the device registry (in the model database), accept node registrations\n"
    "and heartbeats, place submitted models on the registered nodes, deploy their\n"
    "stages and serve inference requests. Runs until interrupted.\n"
    "\n"
    "  --listen URL          control endpoint: tcp://HOST:PORT, tls+tcp://HOST:PORT,\n"
    "                        ipc:///PATH; port 0 picks a free port (printed)\n"
    "  --db FILE             the model database (registry, models, plans, stages)\n"
    "  --tls-cert/--tls-key/--tls-ca FILE\n"
    "                        mutual TLS: only peers with certificates signed by the\n"
    "                        CA may connect (scripts/make-cluster-certs.sh)\n"
    "  --token TOKEN         join token for setups without TLS (default: $EVO_TOKEN);\n"
    "                        requests prove it with an HMAC over a fresh challenge\n"
    "  --coap-listen URL     also accept CoAP nodes (their tensors are relayed)\n"
    "  --heartbeat-ms N      heartbeat interval nodes are told to use (500)\n"
    "  --lost-after-ms N     a node without heartbeat this long is lost (2000)\n"
    "  --request-timeout-ms N  one attempt of one request (10000)\n"
    "  --port-file FILE      write the first listener's port there once listening\n"
    "\n"
    "Without TLS or a token the coordinator runs open, on loopback only, and says so.\n";

static int coordinator_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_coordinator, argc, argv);
    evo_coord_options opt;
    memset(&opt, 0, sizeof opt);
    opt.sec.token = getenv("EVO_TOKEN");
    const char *port_file = NULL;
    int rc = -1;
    int64_t v;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc))
            continue;
        if (cli_args_value(&a, "--listen", &val)) {
            if (opt.n_listen == EVO_COORD_MAX_LISTEN)
                rc = cli_usage_error(a.cmd->name, "at most %d --listen URLs", EVO_COORD_MAX_LISTEN);
            else
                opt.listen[opt.n_listen++] = val;
        } else if (cli_args_value(&a, "--db", &val)) {
            opt.db_path = val;
        } else if (cli_args_value(&a, "--tls-cert", &val)) {
            opt.sec.tls_cert = val;
        } else if (cli_args_value(&a, "--tls-key", &val)) {
            opt.sec.tls_key = val;
        } else if (cli_args_value(&a, "--tls-ca", &val)) {
            opt.sec.tls_ca = val;
        } else if (cli_args_value(&a, "--tls-server-name", &val)) {
            opt.sec.tls_server_name = val;
        } else if (cli_args_value(&a, "--token", &val)) {
            opt.sec.token = val;
        } else if (cli_args_value(&a, "--coap-listen", &val)) {
            opt.coap_listen = val;
        } else if (cli_args_value(&a, "--port-file", &val)) {
            port_file = val;
        } else if (cli_args_value(&a, "--heartbeat-ms", &val)) {
            if (!cli_parse_i64(a.cmd, "--heartbeat-ms", val, 10, 600000, &v))
                rc = CLI_EXIT_USAGE;
            opt.heartbeat_ms = (int32_t)v;
        } else if (cli_args_value(&a, "--lost-after-ms", &val)) {
            if (!cli_parse_i64(a.cmd, "--lost-after-ms", val, 50, 3600000, &v))
                rc = CLI_EXIT_USAGE;
            opt.lost_after_ms = (int32_t)v;
        } else if (cli_args_value(&a, "--request-timeout-ms", &val)) {
            if (!cli_parse_i64(a.cmd, "--request-timeout-ms", val, 100, 3600000, &v))
                rc = CLI_EXIT_USAGE;
            opt.request_timeout_ms = (int32_t)v;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (opt.n_listen == 0)
        return cli_usage_error(a.cmd->name, "no --listen URL given");
    if (opt.db_path == NULL && (opt.db_path = getenv("EVO_DB")) == NULL)
        return cli_usage_error(a.cmd->name, "no database given: use --db FILE or set EVO_DB");
    if (opt.sec.token != NULL && opt.sec.token[0] == '\0')
        opt.sec.token = NULL;

    sigset_t set;
    cli_daemon_begin(&set);
    evo_error err = {0};
    evo_coord *c = NULL;
    if (evo_coord_start(&opt, &c, &err) != EVO_OK) {
        cli_error(a.cmd->name, "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    int port = evo_coord_port(c, 0);
    printf("evo coordinator: listening on %s (port %d), database %s, %s\n", opt.listen[0], port,
           opt.db_path,
           opt.sec.tls_cert ? "mutual TLS"
           : opt.sec.token  ? "join token"
                            : "OPEN (loopback only)");
    /* The CoAP listener comes after the --listen ones. */
    if (opt.coap_listen != NULL)
        printf("evo coordinator: CoAP nodes on %s (port %d)\n", opt.coap_listen,
               evo_coord_port(c, opt.n_listen));
    fflush(stdout);
    if (port_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            cli_error(a.cmd->name, "cannot write the port file '%s'", port_file);
            evo_coord_stop(c);
            return CLI_EXIT_FAIL;
        }
    }
    int sig = cli_daemon_wait(&set);
    EVO_LOGI("coordinator: %s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    evo_coord_stop(c);
    printf("evo coordinator: stopped\n");
    return CLI_EXIT_OK;
}

const cli_command cli_cmd_coordinator = {
    .name = "coordinator",
    .summary = "run the coordinator: registry, placement, deployment, inference",
    .usage = coordinator_usage,
    .main = coordinator_main,
};
