/*
 * The op registry: maps (domain, op_type) and stable ids to op definitions.
 *
 * The list of ops lives in ops_list.h (one line per op). Each op's definition
 * is referenced as a weak symbol, so a build that leaves an op's file out (a
 * trimmed microcontroller build, or an op not written yet) still links, and
 * the op is reported as unsupported by name instead of failing to link.
 */
#include <string.h>

#include "evo/op.h"

#if defined(__GNUC__)
#define EVO_WEAK __attribute__((weak))
#else
#define EVO_WEAK
#endif

#define EVO_OP(name, id) extern const evo_op_def evo_op_##name EVO_WEAK;
#include "ops_list.h"
#undef EVO_OP

static const evo_op_def *const registry_table[] = {
#define EVO_OP(name, id) &evo_op_##name,
#include "ops_list.h"
#undef EVO_OP
};

#define REGISTRY_SIZE (sizeof registry_table / sizeof registry_table[0])

static bool registry_domain_is_onnx(const char *domain)
{
    return domain == NULL || domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0;
}

const evo_op_def *evo_op_find(const char *domain, const char *op_type)
{
    if (op_type == NULL)
        return NULL;
    for (size_t i = 0; i < REGISTRY_SIZE; i++) {
        const evo_op_def *op = registry_table[i];
        if (op == NULL || strcmp(op->name, op_type) != 0)
            continue;
        bool want_onnx = registry_domain_is_onnx(domain);
        bool have_onnx = registry_domain_is_onnx(op->domain);
        if (want_onnx ? have_onnx : (!have_onnx && strcmp(op->domain, domain) == 0))
            return op;
    }
    return NULL;
}

const evo_op_def *evo_op_by_id(uint16_t id)
{
    for (size_t i = 0; i < REGISTRY_SIZE; i++)
        if (registry_table[i] != NULL && registry_table[i]->id == id)
            return registry_table[i];
    return NULL;
}

size_t evo_op_count(void)
{
    return REGISTRY_SIZE;
}

/* May return NULL for an op whose file is not linked into this build. */
const evo_op_def *evo_op_at(size_t index)
{
    return index < REGISTRY_SIZE ? registry_table[index] : NULL;
}

evo_status evo_op_check_arity(const evo_op_def *op, const evo_kctx *c)
{
    if (c->n_in < op->min_inputs || (op->max_inputs >= 0 && c->n_in > op->max_inputs))
        return evo_error_set(c->err, EVO_ERR_GRAPH, "%s takes %d..%d inputs, got %d", op->name,
                             (int)op->min_inputs, (int)op->max_inputs, (int)c->n_in);
    if (c->n_out < op->min_outputs || (op->max_outputs >= 0 && c->n_out > op->max_outputs))
        return evo_error_set(c->err, EVO_ERR_GRAPH, "%s makes %d..%d outputs, got %d", op->name,
                             (int)op->min_outputs, (int)op->max_outputs, (int)c->n_out);
    for (int32_t i = 0; i < op->min_inputs && i < c->n_in; i++)
        if (c->in[i] == NULL)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: required input %d is missing",
                                 op->name, (int)i);
    for (int32_t i = 0; i < op->min_outputs && i < c->n_out; i++)
        if (c->out[i] == NULL)
            return evo_error_set(c->err, EVO_ERR_GRAPH, "%s: required output %d is missing",
                                 op->name, (int)i);
    return EVO_OK;
}

evo_status evo_op_eval(const evo_op_def *op, const evo_kctx *c)
{
    bool any = c->n_out == 0;
    for (int32_t i = 0; i < c->n_out && !any; i++)
        any = c->out[i] != NULL && evo_shape_numel(&c->out[i]->shape) != 0;
    return any ? op->eval(c) : EVO_OK;
}

evo_status evo_op_norm_axis(int64_t axis, int32_t rank, int32_t *out)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)rank)
        return EVO_ERR_SHAPE;
    *out = (int32_t)(axis < 0 ? axis + rank : axis);
    return EVO_OK;
}
