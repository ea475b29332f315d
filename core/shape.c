/* Shape arithmetic with overflow checks: every size that reaches an
 * allocation or an offset passes through here. */
#include <string.h>

#include "evo/core.h"

int64_t evo_shape_numel(const evo_shape *s)
{
    if (s == NULL || s->rank < 0 || s->rank > EVO_MAX_RANK)
        return -1;
    int64_t n = 1;
    for (int32_t i = 0; i < s->rank; i++) {
        int64_t d = s->dims[i];
        if (d < 0)
            return -1;
        if (d != 0 && n > INT64_MAX / d)
            return -1;
        n *= d;
    }
    return n;
}

evo_status evo_shape_nbytes(const evo_shape *s, evo_dtype dt, size_t *out)
{
    size_t es = evo_dtype_size(dt);
    if (es == 0)
        return EVO_ERR_TYPE;
    int64_t n = evo_shape_numel(s);
    if (n < 0)
        return EVO_ERR_LIMIT;
    if ((uint64_t)n > (uint64_t)SIZE_MAX / es)
        return EVO_ERR_LIMIT;
    *out = (size_t)n * es;
    return EVO_OK;
}

bool evo_shape_equal(const evo_shape *a, const evo_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int32_t i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* Small integer printer: no stdio here, this file builds freestanding. */
static size_t shape_put_int(char *buf, size_t pos, size_t cap, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[n++] = '-';
    while (n > 0 && pos + 1 < cap)
        buf[pos++] = tmp[--n];
    return pos;
}

void evo_shape_format(const evo_shape *s, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    size_t pos = 0;
    if (pos + 1 < cap)
        buf[pos++] = '[';
    int32_t rank = s->rank < 0 ? 0 : (s->rank > EVO_MAX_RANK ? EVO_MAX_RANK : s->rank);
    for (int32_t i = 0; i < rank; i++) {
        if (i > 0 && pos + 1 < cap)
            buf[pos++] = ',';
        pos = shape_put_int(buf, pos, cap, s->dims[i]);
    }
    if (pos + 1 < cap)
        buf[pos++] = ']';
    buf[pos] = '\0';
}

evo_status evo_shape_broadcast(const evo_shape *a, const evo_shape *b, evo_shape *out)
{
    int32_t rank = a->rank > b->rank ? a->rank : b->rank;
    if (rank > EVO_MAX_RANK || a->rank < 0 || b->rank < 0)
        return EVO_ERR_SHAPE;
    evo_shape r;
    r.rank = rank;
    for (int32_t i = 0; i < rank; i++) {
        int32_t ia = a->rank - rank + i, ib = b->rank - rank + i;
        int32_t da = ia >= 0 ? a->dims[ia] : 1;
        int32_t db = ib >= 0 ? b->dims[ib] : 1;
        if (da == db || db == 1)
            r.dims[i] = da;
        else if (da == 1)
            r.dims[i] = db;
        else
            return EVO_ERR_SHAPE;
    }
    *out = r;
    return EVO_OK;
}
