/*
 * `evo node`: run a node agent until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"
#include "evo/partition.h"

static const char node_usage[] =
    "usage: evo node --coordinator URL --name NAME [--memory SIZE] [--listen URL]\n"
    "                [--transport nng|coap] [--class NAME] [--token TOKEN]\n"
    "                [--tls-cert FILE --tls-key FILE --tls-ca FILE] [--no-calibrate]\n"
    "                [--gflops G] [--threads N]\n"
    "\n"
    "Register with the coordinator (memory budget, calibration, link to the\n"
    "coordinator), then hold the stages it assigns (.evm) and run requests. A stage\n"
    "that does not fit the memory budget (the .evm, the loader's tables and the\n"
    "arena) or whose SHA-256 does not match is refused. Runs until interrupted.\n"
    "\n"
    "  --coordinator URL  the coordinator's control URL (default: $EVO_COORDINATOR,\n"
    "                     else " EVO_COORD_DEFAULT_URL "); with --transport coap its\n"
    "                     coap:// URL\n"
    "  --name NAME        this node's name in the registry\n"
    "  --memory SIZE      budget for stages: 256K, 64M, 2G (default 1G)\n"
    "  --listen URL       where to accept work (default: loopback, a free port)\n"
    "  --transport T      nng (default) or coap (tensors are relayed by the coordinator)\n"
    "  --class NAME       device class: edge (default), cloud, mcu, ...\n"
    "  --no-calibrate     skip the ~1 s calibration; claim --gflops (default 1)\n"
    "  --threads N        split each stage's big Convs over N threads (default 1)\n"
    "  --token, --tls-cert, --tls-key, --tls-ca, --tls-server-name: as for clients\n";

static int node_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_node, argc, argv);
    cli_coord cc;
    cli_coord_init(&cc);
    evo_agent_options opt;
    memset(&opt, 0, sizeof opt);
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc) || cli_coord_arg(&a, &cc))
            continue;
        if (cli_args_value(&a, "--name", &val)) {
            opt.name = val;
        } else if (cli_args_value(&a, "--memory", &val)) {
            if (!evo_pt_parse_size(val, &opt.memory_bytes) || opt.memory_bytes == 0)
                rc = cli_usage_error(a.cmd->name, "--memory '%s' is not a size like 256K or 2G",
                                     val);
        } else if (cli_args_value(&a, "--listen", &val)) {
            opt.listen = val;
        } else if (cli_args_value(&a, "--transport", &val)) {
            if (strcmp(val, "nng") != 0 && strcmp(val, "coap") != 0)
                rc = cli_usage_error(a.cmd->name, "--transport is nng or coap, not '%s'", val);
            opt.transport = val;
        } else if (cli_args_value(&a, "--class", &val)) {
            opt.device_class = val;
        } else if (cli_args_value(&a, "--gflops", &val)) {
            if (!cli_parse_double(a.cmd, "--gflops", val, 0.001, &opt.gflops))
                rc = CLI_EXIT_USAGE;
        } else if (cli_args_value(&a, "--threads", &val)) {
            int64_t n = 1;
            if (!cli_parse_i64(a.cmd, "--threads", val, 1, EVO_THREADS_MAX, &n))
                rc = CLI_EXIT_USAGE;
            opt.threads = (int32_t)n;
        } else if (cli_args_flag(&a, "--no-calibrate")) {
            opt.no_calibrate = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (opt.name == NULL)
        return cli_usage_error(a.cmd->name, "no --name given");
    bool coap = opt.transport != NULL && strcmp(opt.transport, "coap") == 0;
    opt.coordinator = coap ? NULL : cc.url;
    opt.coap_coordinator = coap ? cc.url : NULL;
    opt.sec = cc.sec;
    if (opt.sec.token != NULL && opt.sec.token[0] == '\0')
        opt.sec.token = NULL;

    sigset_t set;
    cli_daemon_begin(&set);
    evo_error err = {0};
    evo_agent *ag = NULL;
    if (evo_agent_start(&opt, &ag, &err) != EVO_OK) {
        cli_error(a.cmd->name, "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    printf("evo node %s: registered with %s\n", opt.name,
           evo_client_default_url(coap ? opt.coap_coordinator : opt.coordinator));
    fflush(stdout);
    cli_daemon_wait(&set);
    evo_agent_stop(ag);
    printf("evo node %s: stopped\n", opt.name);
    return CLI_EXIT_OK;
}

const cli_command cli_cmd_node = {
    .name = "node",
    .summary = "run a node: register with a coordinator, hold stages, run requests",
    .usage = node_usage,
    .main = node_main,
};
