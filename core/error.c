/*
 * Error reports. In a hosted build messages are formatted with vsnprintf; a
 * freestanding build (EVO_FREESTANDING) has no stdio, so the format string is
 * copied as is: the message is less specific but the code path is the same.
 */
#include <stdarg.h>
#include <string.h>

#include "evo/core.h"

#ifndef EVO_FREESTANDING
#include <stdio.h>
#endif

static void error_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
#ifndef EVO_FREESTANDING
    vsnprintf(buf, cap, fmt, ap);
#else
    (void)ap;
    size_t n = strlen(fmt);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, fmt, n);
    buf[n] = '\0';
#endif
}

evo_status evo_error_set(evo_error *err, evo_status code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    error_vformat(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void evo_error_prefix(evo_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[EVO_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    error_vformat(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    size_t mlen = strlen(err->msg);
    /* New message: prefix + ": " + old message, truncated to fit. */
    if (plen + 2 >= sizeof err->msg) {
        memcpy(err->msg, prefix, sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = '\0';
        return;
    }
    size_t keep = sizeof err->msg - 1 - plen - 2;
    if (mlen > keep)
        mlen = keep;
    memmove(err->msg + plen + 2, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    err->msg[plen + 2 + mlen] = '\0';
}

void evo_error_clear(evo_error *err)
{
    if (err == NULL)
        return;
    err->code = EVO_OK;
    err->msg[0] = '\0';
}
