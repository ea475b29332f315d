/*
 * `evo deploy`: place a model on the coordinator's devices and deploy it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"

static const char deploy_usage[] =
    "usage: evo deploy MODEL [--mode auto|standalone|cluster|cloud]\n"
    "                  [--objective latency|throughput] [--json] [--coordinator URL]\n"
    "\n"
    "Place MODEL (added with `evo model add FILE --coordinator URL`) on the live\n"
    "devices, send each node its stage (a node that already holds a stage's digest\n"
    "is not sent it again) and print the plan.\n"
    "\n"
    "  --mode auto        latency: the whole model on the fastest device that holds\n"
    "                     it, else as few stages as the memory budgets allow;\n"
    "                     throughput: like cluster (default)\n"
    "  --mode standalone  the whole model on one device\n"
    "  --mode cluster     one stage per live device, work shared by speed\n"
    "  --mode cloud       the whole model on a device of class cloud\n"
    "  --objective O      latency (default) or throughput\n"
    "  --json             print the plan as JSON\n" CLI_COORD_FLAGS_HELP;

static int deploy_main(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, &cli_cmd_deploy, argc, argv);
    cli_coord cc;
    cli_coord_init(&cc);
    const char *model = NULL, *mode = "auto", *objective = "latency";
    bool json = false;
    int rc = -1;
    for (const char *arg; rc < 0 && (arg = cli_args_next(&a)) != NULL;) {
        const char *val;
        if (cli_args_common(&a, &rc) || cli_coord_arg(&a, &cc))
            continue;
        if (cli_args_value(&a, "--mode", &val)) {
            mode = val;
            if (strcmp(val, "auto") && strcmp(val, "standalone") && strcmp(val, "cluster") &&
                strcmp(val, "cloud"))
                rc = cli_usage_error(a.cmd->name,
                                     "--mode is auto, standalone, cluster or cloud, not '%s'", val);
        } else if (cli_args_value(&a, "--objective", &val)) {
            objective = val;
            if (strcmp(val, "latency") && strcmp(val, "throughput"))
                rc = cli_usage_error(a.cmd->name, "--objective is latency or throughput, not '%s'",
                                     val);
        } else if (cli_args_flag(&a, "--json")) {
            json = true;
        } else if (a.failed) {
            rc = CLI_EXIT_USAGE;
        } else if (arg[0] != '-' && model == NULL) {
            model = arg;
        } else {
            rc = cli_args_unknown(&a);
        }
    }
    if (rc >= 0)
        return rc;
    if (model == NULL)
        return cli_usage_error(a.cmd->name, "no model given");
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", model);
    cJSON_AddStringToObject(req, "mode", mode);
    cJSON_AddStringToObject(req, "objective", objective);
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    evo_error err = {0};
    evo_msg reply;
    cJSON *doc = NULL;
    double t0 = cli_now_ms();
    evo_status rv = cli_coord_call(&cc, "deploy", text, NULL, 0, &reply, &doc, &err);
    free(text);
    if (rv != EVO_OK) {
        cli_error(a.cmd->name, "%s", err.msg);
        return CLI_EXIT_FAIL;
    }
    if (json) {
        rc = cli_coord_print_json(doc);
    } else {
        cli_coord_print_plan(doc);
        printf("deployed in %.0f ms\n", cli_now_ms() - t0);
        rc = CLI_EXIT_OK;
    }
    cJSON_Delete(doc);
    evo_msg_release(&reply);
    return rc;
}

const cli_command cli_cmd_deploy = {
    .name = "deploy",
    .summary = "place a model on a coordinator's devices and deploy its stages",
    .usage = deploy_usage,
    .main = deploy_main,
};
