/* Option parsing, error messages and formatting shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---------------------------------------------------------------- messages */

static void cli_verror(const char *cmd, const char *fmt, va_list ap)
{
    fflush(stdout); /* keep the order of stdout and stderr lines on a terminal */
    if (cmd != NULL)
        fprintf(stderr, "evo %s: ", cmd);
    else
        fputs("evo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(cmd, fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_verror(cmd, fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "Try 'evo %s --help'.\n", cmd);
    else
        fputs("Try 'evo --help'.\n", stderr);
    return CLI_EXIT_USAGE;
}

/* ---------------------------------------------------------------- options */

void cli_args_init(cli_args *a, const cli_command *cmd, int argc, char **argv)
{
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 0; /* argv[0] is the command name: the first next() skips it */
    a->failed = false;
}

const char *cli_args_next(cli_args *a)
{
    if (a->i + 1 >= a->argc)
        return NULL;
    return a->argv[++a->i];
}

bool cli_args_value(cli_args *a, const char *name, const char **value)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    if (arg[n] != '\0')
        return false;
    if (a->i + 1 >= a->argc) {
        cli_usage_error(a->cmd->name, "option %s needs a value", name);
        a->failed = true;
        return false;
    }
    *value = a->argv[++a->i];
    return true;
}

bool cli_args_flag(cli_args *a, const char *name)
{
    return strcmp(a->argv[a->i], name) == 0;
}

bool cli_args_common(cli_args *a, int *exit_now)
{
    if (cli_args_flag(a, "--quiet") || cli_args_flag(a, "-q")) {
        evo_log_set_sink(NULL, NULL);
        return true;
    }
    if (cli_args_flag(a, "--verbose") || cli_args_flag(a, "-v")) {
        evo_log_set_level(EVO_LOG_INFO);
        return true;
    }
    if (cli_args_flag(a, "--help") || cli_args_flag(a, "-h")) {
        fputs(a->cmd->usage, stdout);
        *exit_now = CLI_EXIT_OK;
        return true;
    }
    return false;
}

int cli_args_unknown(cli_args *a)
{
    const char *arg = a->argv[a->i];
    if (arg[0] == '-' && arg[1] != '\0')
        return cli_usage_error(a->cmd->name, "unknown option '%s'", arg);
    return cli_usage_error(a->cmd->name, "unexpected argument '%s'", arg);
}

bool cli_parse_i64(const cli_command *cmd, const char *flag, const char *s, int64_t min,
                   int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max) {
        cli_usage_error(cmd->name, "%s expects an integer in [%lld, %lld], got '%s'", flag,
                        (long long)min, (long long)max, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_double(const cli_command *cmd, const char *flag, const char *s, double min,
                      double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v) || v < min) {
        cli_usage_error(cmd->name, "%s expects a number >= %g, got '%s'", flag, min, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_dims_add(const cli_command *cmd, cli_dims *d, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        cli_usage_error(cmd->name, "--dim expects NAME=VALUE, got '%s'", arg);
        return false;
    }
    int64_t value;
    if (!cli_parse_i64(cmd, "--dim", eq + 1, 0, EVO_MAX_DIM, &value))
        return false;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        evo_dim_binding *items = realloc(d->items, cap * sizeof *items);
        if (items == NULL) {
            cli_error(cmd->name, "out of memory");
            return false;
        }
        d->items = items;
        d->cap = cap;
    }
    /* The binding's name is the argument up to '='; keep a copy so argv is
     * not modified. */
    size_t n = (size_t)(eq - arg);
    char *name = malloc(n + 1);
    if (name == NULL) {
        cli_error(cmd->name, "out of memory");
        return false;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    d->items[d->n].name = name;
    d->items[d->n].value = value;
    d->n++;
    return true;
}

void cli_dims_free(cli_dims *d)
{
    for (size_t i = 0; i < d->n; i++)
        free((char *)d->items[i].name);
    free(d->items);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- formatting */

const char *cli_fmt_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, cap, "%.1f %s", v, unit[u]);
    return buf;
}

void cli_fmt_value_shape(const evo_value *v, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (!(v->flags & EVO_VALUE_HAS_SHAPE) && v->t.shape.rank == 0) {
        snprintf(buf, cap, "?");
        return;
    }
    size_t pos = 0;
    int32_t rank = v->t.shape.rank < 0 ? 0 : v->t.shape.rank;
    if (rank > EVO_MAX_RANK)
        rank = EVO_MAX_RANK;
    snprintf(buf, cap, "[");
    pos = cap > 1 ? 1 : 0;
    for (int32_t d = 0; d < rank && pos + 1 < cap; d++) {
        const char *param = v->dim_params ? v->dim_params[d] : NULL;
        int32_t dim = v->t.shape.dims[d];
        const char *sep = d ? "," : "";
        int n;
        if (param && param[0] && dim >= 0)
            n = snprintf(buf + pos, cap - pos, "%s%s=%d", sep, param, (int)dim);
        else if (param && param[0])
            n = snprintf(buf + pos, cap - pos, "%s%s", sep, param);
        else if (dim >= 0)
            n = snprintf(buf + pos, cap - pos, "%s%d", sep, (int)dim);
        else
            n = snprintf(buf + pos, cap - pos, "%s?", sep);
        if (n > 0) /* snprintf reports what it would have written: clamp */
            pos = (size_t)n >= cap - pos ? cap - 1 : pos + (size_t)n;
    }
    if (pos + 1 < cap)
        snprintf(buf + pos, cap - pos, "]");
}

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

evo_status cli_write_file(const char *path, const void *data, size_t len, evo_error *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        remove(path); /* no half-written model is left behind */
        return evo_error_set(err, EVO_ERR_IO, "%s: cannot write %zu bytes", path, len);
    }
    return EVO_OK;
}
