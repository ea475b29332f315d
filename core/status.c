/* evo_status descriptions. */
#include "evo/core.h"

static const char *const status_text[EVO_STATUS_COUNT_] = {
    [EVO_OK] = "success",
    [EVO_ERR_INVALID_ARG] = "invalid argument",
    [EVO_ERR_NOMEM] = "out of memory",
    [EVO_ERR_IO] = "input/output error",
    [EVO_ERR_PARSE] = "malformed input",
    [EVO_ERR_UNSUPPORTED] = "unsupported",
    [EVO_ERR_SHAPE] = "shape error",
    [EVO_ERR_TYPE] = "type error",
    [EVO_ERR_GRAPH] = "invalid graph",
    [EVO_ERR_LIMIT] = "limit exceeded",
    [EVO_ERR_NOT_FOUND] = "not found",
    [EVO_ERR_MISMATCH] = "mismatch",
    [EVO_ERR_INTERNAL] = "internal error",
};

const char *evo_strerror(evo_status status)
{
    if ((unsigned)status >= EVO_STATUS_COUNT_ || status_text[status] == NULL)
        return "unknown status";
    return status_text[status];
}
