/* Client flags and calls shared by the commands that talk to a coordinator
 * (cli/cmd_coord_common.c). */
#ifndef EVO_CLI_COORD_H
#define EVO_CLI_COORD_H

#include <signal.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "evo/coordinator.h"

typedef struct cli_coord {
    const char *url;
    evo_coord_security sec;
    int32_t timeout_ms;
} cli_coord;

/* Defaults from the environment. */
void cli_coord_init(cli_coord *cc);
/* Take --coordinator/--token/--tls-* if the current argument is one. */
bool cli_coord_arg(cli_args *a, cli_coord *cc);
/* One authenticated request; *doc (if not NULL) is the reply's JSON. */
evo_status cli_coord_call(cli_coord *cc, const char *verb, const char *json,
                          const evo_wire_tensor *tensors, uint32_t n, evo_msg *reply, cJSON **doc,
                          evo_error *err);
int cli_coord_print_json(const cJSON *doc);

/* The read-only queries (`evo devices`, `evo status`): parse --json and the
 * connection flags, send `verb`, and return the reply. Returns -1 when the
 * caller should print *doc (then it owns *doc and *reply: cJSON_Delete and
 * evo_msg_release), else the exit code (usage error or failure, reported). */
int cli_coord_query(const cli_command *cmd, int argc, char **argv, const char *verb, cli_coord *cc,
                    bool *json, evo_msg *reply, cJSON **doc);
/* A member as "%.3g", or "-" when absent. */
const char *cli_coord_num(const cJSON *o, const char *key);
double cli_coord_get(const cJSON *o, const char *key);
const char *cli_coord_str(const cJSON *o, const char *key);
/* The plan table of `evo deploy` and `evo status`. */
void cli_coord_print_plan(const cJSON *plan);

/* The long-running commands (`evo coordinator`, `evo node`): before any
 * thread starts, block SIGINT/SIGTERM (so cli_daemon_wait receives them),
 * ignore SIGPIPE and log at least at info level. */
void cli_daemon_begin(sigset_t *stop_signals);
/* Wait for one of the signals blocked by cli_daemon_begin; returns it. */
int cli_daemon_wait(const sigset_t *stop_signals);

/* Help text of the client flags, for usage strings. */
#define CLI_COORD_FLAGS_HELP                                                                       \
    "  --coordinator URL   the coordinator (default: $EVO_COORDINATOR, else\n"                     \
    "                      " EVO_COORD_DEFAULT_URL ")\n"                                           \
    "  --token TOKEN       the cluster's join token (default: $EVO_TOKEN)\n"                       \
    "  --tls-cert FILE     client certificate for mutual TLS (default: $EVO_TLS_CERT)\n"           \
    "  --tls-key FILE      its key (default: $EVO_TLS_KEY)\n"                                      \
    "  --tls-ca FILE       the cluster CA (default: $EVO_TLS_CA)\n"                                \
    "  --tls-server-name N the name in the coordinator's certificate (evo-cluster)\n"

/* `evo model add FILE --coordinator URL`: the model goes to the coordinator's
 * database (cli/cmd_model_remote.c). */
int cli_model_add_remote(int argc, char **argv);
/* True if `evo model` should go through a coordinator. */
bool cli_model_is_remote(int argc, char **argv);

#endif /* EVO_CLI_COORD_H */
