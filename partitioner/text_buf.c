/*
 * A growing text buffer for the partitioner's reports (the auto planner's
 * explanation, plan tables, DOT and SVG). Hand-written because it is a dozen
 * lines over vsnprintf and no dependency of evo offers one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "pt_internal.h"

void pt_buf_printf(pt_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = true;
            return;
        }
        if (b->s && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 1024) + (size_t)w;
        char *ns = realloc(b->s, nc);
        if (ns == NULL) {
            b->failed = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

char *pt_buf_take(pt_buf *b)
{
    if (b->failed) {
        free(b->s);
        b->s = NULL;
        return NULL;
    }
    return b->s;
}
