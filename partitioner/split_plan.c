/*
 * A placement plan (JSON from `evo place`) -> a split plan for the graph it
 * was made from, so `evo split --plan` extracts one model per stage.
 *
 * The plan names nodes by their index in the compiled program's execution
 * order (node_indices); the program is built again from the graph and each
 * program node is traced back to its graph node through the parameters it
 * borrows. Names recorded in the plan are checked against the graph.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "evo/split.h"
#include "pt_internal.h"

evo_status evo_pt_split_plan_from_json(const evo_graph *g, const char *json, size_t len,
                                       const char *name, struct evo_split_plan *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    const char *file = name ? name : "plan";
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        return evo_error_set(err, EVO_ERR_PARSE, "%s: not valid JSON", file);
    evo_program *prog = NULL;
    int32_t *gidx = NULL;
    evo_status st = EVO_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(root, "stages");
    const cJSON *nn = cJSON_GetObjectItemCaseSensitive(root, "n_nodes");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "evo-plan") != 0 ||
        !cJSON_IsArray(stages) || !cJSON_IsNumber(nn)) {
        st = evo_error_set(err, EVO_ERR_PARSE,
                           "%s: not an evo placement plan (expected \"format\": \"evo-plan\", "
                           "\"n_nodes\" and \"stages\"; see docs/placement.md)",
                           file);
        goto done;
    }
    if ((st = evo_program_build(g, NULL, &prog, err)) != EVO_OK)
        goto done;
    if (nn->valuedouble != prog->n_nodes) {
        st = evo_error_set(err, EVO_ERR_MISMATCH,
                           "%s: the plan is for a model of %g ops, this one runs %d; plan and "
                           "split the same file with the same --dim values",
                           file, nn->valuedouble, (int)prog->n_nodes);
        goto done;
    }
    gidx = malloc((size_t)(prog->n_nodes ? prog->n_nodes : 1) * sizeof *gidx);
    if (gidx == NULL) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    for (int32_t k = 0; k < prog->n_nodes; k++) {
        gidx[k] = -1;
        for (int32_t i = 0; i < g->n_nodes && gidx[k] < 0; i++)
            if ((const void *)g->nodes[i].params == prog->nodes[k].params)
                gidx[k] = i;
        if (gidx[k] < 0) {
            st = evo_error_set(err, EVO_ERR_INTERNAL, "%s: program node %d has no graph node", file,
                               (int)k);
            goto done;
        }
    }
    int ns = cJSON_GetArraySize(stages);
    if (ns < 1 || ns > 4096) {
        st = evo_error_set(err, EVO_ERR_PARSE, "%s: the plan has %d stages", file, ns);
        goto done;
    }
    out->stages = calloc((size_t)ns, sizeof *out->stages);
    if (out->stages == NULL) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    out->n_stages = ns;
    for (int s = 0; s < ns; s++) {
        const cJSON *so = cJSON_GetArrayItem(stages, s);
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(so, "node_indices");
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(so, "nodes");
        int n = cJSON_IsArray(idx) ? cJSON_GetArraySize(idx) : -1;
        if (n < 1) {
            st = evo_error_set(err, EVO_ERR_PARSE, "%s: stage %d has no \"node_indices\"", file, s);
            goto done;
        }
        evo_split_stage *ss = &out->stages[s];
        ss->nodes = malloc((size_t)n * sizeof *ss->nodes);
        if (ss->nodes == NULL) {
            st = evo_error_set(err, EVO_ERR_NOMEM, "%s: out of memory", file);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            const cJSON *v = cJSON_GetArrayItem(idx, i);
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= prog->n_nodes ||
                v->valuedouble != (double)(int32_t)v->valuedouble) {
                st = evo_error_set(err, EVO_ERR_PARSE,
                                   "%s: stage %d: node index %d is not in [0, %d)", file, s, i,
                                   (int)prog->n_nodes);
                goto done;
            }
            int32_t k = (int32_t)v->valuedouble;
            const cJSON *nm = cJSON_IsArray(names) ? cJSON_GetArrayItem(names, i) : NULL;
            const char *gname = g->nodes[gidx[k]].name;
            if (cJSON_IsString(nm) && gname != NULL && gname[0] != '\0' &&
                strcmp(nm->valuestring, gname) != 0) {
                st = evo_error_set(err, EVO_ERR_MISMATCH,
                                   "%s: stage %d names node %d '%s', but the model's node %d is "
                                   "'%s': the plan was made for another model",
                                   file, s, i, nm->valuestring, (int)k, gname);
                goto done;
            }
            ss->nodes[i] = gidx[k];
            ss->n_nodes = i + 1;
        }
    }
    st = evo_split_plan_finish(g, out, err);
    if (st != EVO_OK)
        evo_error_prefix(err, "%s", file);
done:
    cJSON_Delete(root);
    free(gidx);
    evo_program_free(prog);
    if (st != EVO_OK)
        evo_split_plan_free(out);
    return st;
}
