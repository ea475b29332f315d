/*
 * `evo devices`: the coordinator's device registry.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_coord.h"

static const char devices_usage[] =
    "usage: evo devices [--json] [--coordinator URL] [--token T | --tls-* FILE]\n"
    "\n"
    "List the devices the coordinator knows: state (alive, lost, offline: known\n"
    "from an earlier run), class, memory budget, calibrated speed, link to the\n"
    "coordinator, stages held and requests run.\n"
    "\n"
    "  --json              print the registry as JSON\n" CLI_COORD_FLAGS_HELP;

static int devices_main(int argc, char **argv)
{
    cli_coord cc;
    bool json;
    evo_msg reply;
    cJSON *doc;
    int rc = cli_coord_query(&cli_cmd_devices, argc, argv, "devices", &cc, &json, &reply, &doc);
    if (rc >= 0)
        return rc;
    const cJSON *devs = cJSON_GetObjectItem(doc, "devices");
    if (json) {
        rc = cli_coord_print_json(devs);
    } else {
        printf("%-14s %-8s %-6s %-5s %10s %9s %9s %8s %6s %6s\n", "NAME", "STATE", "CLASS", "LINK",
               "MEMORY", "GFLOP/s", "RTT(us)", "Mbit/s", "STAGES", "RUNS");
        const cJSON *d;
        cJSON_ArrayForEach(d, devs)
        {
            char mem[32];
            cli_fmt_bytes((uint64_t)cli_coord_get(d, "memory"), mem, sizeof mem);
            printf("%-14s %-8s %-6s %-5s %10s %9.2f %9.0f %8.0f %6.0f %6.0f\n",
                   cli_coord_str(d, "name"), cli_coord_str(d, "state"), cli_coord_str(d, "class"),
                   cli_coord_str(d, "transport"), mem, cli_coord_get(d, "gflops"),
                   cli_coord_get(d, "rtt_us"), cli_coord_get(d, "mbps"), cli_coord_get(d, "stages"),
                   cli_coord_get(d, "runs"));
        }
        if (cJSON_GetArraySize(devs) == 0)
            printf("(no devices registered)\n");
        rc = CLI_EXIT_OK;
    }
    cJSON_Delete(doc);
    evo_msg_release(&reply);
    return rc;
}

const cli_command cli_cmd_devices = {
    .name = "devices",
    .summary = "list the devices registered with a coordinator",
    .usage = devices_usage,
    .main = devices_main,
};
