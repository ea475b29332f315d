/*
 * Logging: one process-wide sink and level. They are settings a program makes
 * once (the CLI's --quiet, a test silencing output), not state objects share,
 * which is why this is the one global in core/.
 */
#include <stdarg.h>

#include "evo/core.h"

#ifndef EVO_FREESTANDING
#include <stdio.h>

static void log_stderr_sink(evo_log_level level, const char *line, void *user)
{
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    (void)user;
    fprintf(stderr, "evo: %s: %s\n", tag[level], line);
}
#define LOG_DEFAULT_SINK log_stderr_sink
#else
#define LOG_DEFAULT_SINK NULL
#endif

static evo_log_sink log_sink = LOG_DEFAULT_SINK;
static void *log_user;
static evo_log_level log_level = EVO_LOG_WARN;

void evo_log_set_sink(evo_log_sink sink, void *user)
{
    log_sink = sink;
    log_user = user;
}

void evo_log_set_level(evo_log_level level)
{
    log_level = level;
}

evo_log_level evo_log_get_level(void)
{
    return log_level;
}

void evo_log(evo_log_level level, const char *fmt, ...)
{
    if (log_sink == NULL || level > log_level)
        return;
    char line[512];
#ifndef EVO_FREESTANDING
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
#else
    size_t i = 0;
    for (; fmt[i] != '\0' && i + 1 < sizeof line; i++)
        line[i] = fmt[i];
    line[i] = '\0';
#endif
    log_sink(level, line, log_user);
}
