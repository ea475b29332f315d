/*
 * `evo status`: the coordinator's devices and deployed models.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"

static const char status_usage[] =
    "usage: evo status [--json] [--coordinator URL]\n"
    "\n"
    "Show the coordinator's security mode, its devices and every loaded model with\n"
    "its plan, requests served and re-plans.\n"
    "\n"
    "  --json   print the status as JSON\n" CLI_COORD_FLAGS_HELP;

static int status_main(int argc, char **argv)
{
    cli_coord cc;
    bool json;
    evo_msg reply;
    cJSON *doc;
    int rc = cli_coord_query(&cli_cmd_status, argc, argv, "status", &cc, &json, &reply, &doc);
    if (rc >= 0)
        return rc;
    if (json) {
        rc = cli_coord_print_json(doc);
    } else {
        const cJSON *devs = cJSON_GetObjectItem(doc, "devices");
        int alive = 0, total = cJSON_GetArraySize(devs);
        const cJSON *d;
        cJSON_ArrayForEach(d, devs) alive += strcmp(cli_coord_str(d, "state"), "alive") == 0;
        printf("coordinator %s (%s): %d of %d device(s) alive\n", evo_client_default_url(cc.url),
               cli_coord_str(doc, "security"), alive, total);
        cJSON_ArrayForEach(d, devs)
        {
            char mem[32];
            cli_fmt_bytes((uint64_t)cli_coord_get(d, "memory"), mem, sizeof mem);
            printf("  %-14s %-8s %-6s %10s  %s\n", cli_coord_str(d, "name"),
                   cli_coord_str(d, "state"), cli_coord_str(d, "class"), mem,
                   cli_coord_str(d, "control_url"));
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "models"))
        {
            printf("\n%s: %s%s, %.0f request(s), %.0f re-plan(s)\n", cli_coord_str(m, "model"),
                   cJSON_IsTrue(cJSON_GetObjectItem(m, "deployed")) ? "deployed" : "not deployed",
                   cJSON_IsTrue(cJSON_GetObjectItem(m, "degraded")) ? " (degraded)" : "",
                   cli_coord_get(m, "requests"), cli_coord_get(m, "replans"));
            if (cJSON_GetArraySize(cJSON_GetObjectItem(m, "stages")) > 0)
                cli_coord_print_plan(m);
        }
        rc = CLI_EXIT_OK;
    }
    cJSON_Delete(doc);
    evo_msg_release(&reply);
    return rc;
}

const cli_command cli_cmd_status = {
    .name = "status",
    .summary = "show a coordinator's devices and deployed models",
    .usage = status_usage,
    .main = status_main,
};
