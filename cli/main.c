/*
 * The `evo` command: one binary, subcommands. This file only dispatches;
 * each command is cli/cmd_<name>.c and registers itself in the table below.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Declared here rather than in cli.h: the split/export commands (issue 4). */
extern const cli_command cli_cmd_split;
extern const cli_command cli_cmd_export;

static const cli_command *const main_commands[] = {
    &cli_cmd_inspect, &cli_cmd_run,     &cli_cmd_check,  &cli_cmd_split,   &cli_cmd_export,
    &cli_cmd_model,   &cli_cmd_profile, &cli_cmd_place,  &cli_cmd_compile, &cli_cmd_coordinator,
    &cli_cmd_node,    &cli_cmd_devices, &cli_cmd_deploy, &cli_cmd_infer,   &cli_cmd_status,
};
#define MAIN_N_COMMANDS (sizeof main_commands / sizeof main_commands[0])

static const cli_command *main_find(const char *name)
{
    for (size_t i = 0; i < MAIN_N_COMMANDS; i++)
        if (strcmp(main_commands[i]->name, name) == 0)
            return main_commands[i];
    return NULL;
}

static void main_usage(FILE *out)
{
    fputs("usage: evo [--quiet|--verbose] <command> [args]\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < MAIN_N_COMMANDS; i++)
        fprintf(out, "  %-11s %s\n", main_commands[i]->name, main_commands[i]->summary);
    fputs("  help        show help for a command: evo help <command>\n"
          "\n"
          "common options (any command):\n"
          "  -q, --quiet    print no log messages (errors are still printed)\n"
          "  -v, --verbose  print informational log messages\n"
          "  -h, --help     show the command's help\n"
          "\n"
          "exit status: 0 success, 1 failure, 2 usage error. See docs/cli.md.\n",
          out);
}

int main(int argc, char **argv)
{
    int i = 1;
    /* Common options may also come before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            main_usage(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            evo_log_set_sink(NULL, NULL);
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            evo_log_set_level(EVO_LOG_INFO);
        } else {
            return cli_usage_error(NULL, "unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            main_usage(stdout);
            return CLI_EXIT_OK;
        }
        const cli_command *cmd = main_find(argv[i + 1]);
        if (cmd == NULL)
            return cli_usage_error(NULL, "unknown command '%s'", argv[i + 1]);
        fputs(cmd->usage, stdout);
        return CLI_EXIT_OK;
    }
    const cli_command *cmd = main_find(name);
    if (cmd == NULL)
        return cli_usage_error(NULL, "unknown command '%s'", name);
    return cmd->main(argc - i, argv + i);
}
