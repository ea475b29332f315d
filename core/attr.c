/* Attribute readers used by op parse functions. Portable: no allocation. */
#include <string.h>

#include "evo/graph.h"

const evo_attr *evo_node_attr(const evo_node *n, const char *name)
{
    for (int32_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

static evo_status attr_wrong_type(void)
{
    return EVO_ERR_TYPE;
}

evo_status evo_attr_get_int(const evo_node *n, const char *name, int64_t def, int64_t *out)
{
    const evo_attr *a = evo_node_attr(n, name);
    if (a == NULL) {
        *out = def;
        return EVO_OK;
    }
    if (a->type != EVO_ATTR_INT)
        return attr_wrong_type();
    *out = a->i;
    return EVO_OK;
}

evo_status evo_attr_get_float(const evo_node *n, const char *name, float def, float *out)
{
    const evo_attr *a = evo_node_attr(n, name);
    if (a == NULL) {
        *out = def;
        return EVO_OK;
    }
    if (a->type == EVO_ATTR_FLOAT)
        *out = a->f;
    else if (a->type == EVO_ATTR_INT) /* some exporters write 0 for 0.0 */
        *out = (float)a->i;
    else
        return attr_wrong_type();
    return EVO_OK;
}

evo_status evo_attr_get_string(const evo_node *n, const char *name, const char *def,
                               const char **out)
{
    const evo_attr *a = evo_node_attr(n, name);
    if (a == NULL) {
        *out = def;
        return EVO_OK;
    }
    if (a->type != EVO_ATTR_STRING)
        return attr_wrong_type();
    *out = a->s;
    return EVO_OK;
}

evo_status evo_attr_get_ints(const evo_node *n, const char *name, int64_t *out, size_t cap,
                             size_t *count)
{
    const evo_attr *a = evo_node_attr(n, name);
    *count = 0;
    if (a == NULL)
        return EVO_OK;
    if (a->type != EVO_ATTR_INTS)
        return attr_wrong_type();
    if (a->count > cap)
        return EVO_ERR_LIMIT;
    if (a->count > 0)
        memcpy(out, a->ints, a->count * sizeof *out);
    *count = a->count;
    return EVO_OK;
}

evo_status evo_attr_get_floats(const evo_node *n, const char *name, float *out, size_t cap,
                               size_t *count)
{
    const evo_attr *a = evo_node_attr(n, name);
    *count = 0;
    if (a == NULL)
        return EVO_OK;
    if (a->type != EVO_ATTR_FLOATS)
        return attr_wrong_type();
    if (a->count > cap)
        return EVO_ERR_LIMIT;
    if (a->count > 0)
        memcpy(out, a->floats, a->count * sizeof *out);
    *count = a->count;
    return EVO_OK;
}
