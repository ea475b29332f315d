/*
 * Shared pieces of the `evo` command: the subcommand table, option parsing,
 * error printing and number formatting. Each subcommand lives in
 * cli/cmd_<name>.c and is listed in main.c.
 *
 * Exit codes (docs/cli.md): 0 success, 1 the command ran and failed (bad
 * model or data, a check that did not pass), 2 a usage error (unknown command
 * or flag, malformed flag value).
 */
#ifndef EVO_CLI_H
#define EVO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evo/core.h"
#include "evo/graph.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary;                /* one line for `evo --help` */
    const char *usage;                  /* full help text for `evo help NAME` */
    int (*main)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

extern const cli_command cli_cmd_inspect;
extern const cli_command cli_cmd_run;
extern const cli_command cli_cmd_check;
extern const cli_command cli_cmd_model;   /* cli/cmd_model.c */
extern const cli_command cli_cmd_profile; /* cli/cmd_profile.c */
extern const cli_command cli_cmd_place;   /* cli/cmd_place.c */
extern const cli_command cli_cmd_compile; /* cli/cmd_compile.c */
/* The coordinator and its clients (issue 8). */
extern const cli_command cli_cmd_coordinator; /* cli/cmd_coordinator.c */
extern const cli_command cli_cmd_node;        /* cli/cmd_node.c */
extern const cli_command cli_cmd_devices;     /* cli/cmd_devices.c */
extern const cli_command cli_cmd_deploy;      /* cli/cmd_deploy.c */
extern const cli_command cli_cmd_infer;       /* cli/cmd_infer.c */
extern const cli_command cli_cmd_status;      /* cli/cmd_status.c */

/* ---------------------------------------------------------------- messages */

/* "evo CMD: <message>" on stderr: one line for a failure the user must read. */
void cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The same plus "Try 'evo CMD --help'." and CLI_EXIT_USAGE as the result. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- options */

/* A walk over a command's arguments. Flags take their value either as the
 * next argument or after '=' (--repeat 5, --repeat=5). */
typedef struct cli_args {
    const cli_command *cmd;
    int argc;
    char **argv;
    int i;       /* the argument being looked at */
    bool failed; /* a usage error was printed */
} cli_args;

void cli_args_init(cli_args *a, const cli_command *cmd, int argc, char **argv);
/* The next argument, or NULL at the end. */
const char *cli_args_next(cli_args *a);
/* If the current argument is flag `name` with a value, store the value and
 * return true. A missing value prints a usage error and sets a->failed. */
bool cli_args_value(cli_args *a, const char *name, const char **value);
/* If the current argument is the boolean flag `name`, return true. */
bool cli_args_flag(cli_args *a, const char *name);
/* Handle --quiet, --verbose and --help (which prints usage and sets *exit_now
 * to CLI_EXIT_OK). Returns true if the argument was one of them. */
bool cli_args_common(cli_args *a, int *exit_now);
/* Print the usage error for an argument nothing accepted. */
int cli_args_unknown(cli_args *a);

/* Parse numbers for flag values; print a usage error naming the flag. */
bool cli_parse_i64(const cli_command *cmd, const char *flag, const char *s, int64_t min,
                   int64_t max, int64_t *out);
bool cli_parse_double(const cli_command *cmd, const char *flag, const char *s, double min,
                      double *out);

/* A growing list of --dim NAME=VALUE bindings (names point into argv). */
typedef struct cli_dims {
    evo_dim_binding *items;
    size_t n, cap;
} cli_dims;
/* Parse "NAME=VALUE" and append; prints a usage error on failure. */
bool cli_dims_add(const cli_command *cmd, cli_dims *d, const char *arg);
void cli_dims_free(cli_dims *d);

/* ---------------------------------------------------------------- formatting */

/* "13.3 MiB", "512 B": bytes with binary units, into buf. */
const char *cli_fmt_bytes(uint64_t bytes, char *buf, size_t cap);
/* Shape of a graph value with symbolic names shown: "[N=1,3,224,224]", or
 * "[?,3]" for a dim that is still unknown. */
void cli_fmt_value_shape(const evo_value *v, char *buf, size_t cap);

/* Time since an arbitrary fixed point, in milliseconds (CLOCK_MONOTONIC). */
double cli_now_ms(void);

/* Write len bytes to path (created or truncated); on failure the file is
 * removed and err names it. */
evo_status cli_write_file(const char *path, const void *data, size_t len, evo_error *err);

#endif /* EVO_CLI_H */
