/*
 * The evo adapter: a compiled program (nodes in execution order, activation
 * tensors, weights, scratch, in-place rules) and per-device latencies from
 * the model database or the roofline -> the abstract cost problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evo/db.h"
#include "pt_internal.h"

/* How each device's op latencies are obtained. */
typedef struct fp_device_cost {
    enum { FP_PROFILE, FP_PREDICT, FP_ROOFLINE } how;
    evo_profile prof;
    evo_calibration cal;
} fp_device_cost;

static evo_status fp_prepare(const evo_pt_topology *topo, evo_db *db, int64_t model_id,
                             int32_t n_nodes, fp_device_cost *dc, evo_predictor *pred,
                             bool *pred_ready, evo_error *err)
{
    for (int32_t d = 0; d < topo->n_devices; d++) {
        const evo_pt_device *dev = &topo->devices[d];
        fp_device_cost *c = &dc[d];
        memset(c, 0, sizeof *c);
        c->how = FP_ROOFLINE;
        if (dev->device_class[0] != '\0' && db != NULL) {
            if (model_id > 0 && evo_db_profile_get(db, model_id, dev->device_class, NULL, &c->prof,
                                                   NULL) == EVO_OK) {
                if (c->prof.n_ops == n_nodes && c->prof.first == 0) {
                    c->how = FP_PROFILE;
                    continue;
                }
                evo_profile_free(&c->prof);
            }
            if (evo_db_calibration_get(db, dev->device_class, &c->cal, NULL) == EVO_OK) {
                if (!*pred_ready) {
                    evo_status st = evo_predictor_fit(db, 0, pred, err);
                    if (st != EVO_OK)
                        return st;
                    *pred_ready = true;
                }
                c->how = FP_PREDICT;
                continue;
            }
        }
        if (dev->device_class[0] != '\0' && dev->gflops <= 0)
            return evo_error_set(err, EVO_ERR_NOT_FOUND,
                                 "device '%s': class '%s' has no calibration in the model "
                                 "database%s, and the device gives no gflops",
                                 dev->name, dev->device_class, db ? "" : " (no --db given)");
        c->cal.dense_gflops = c->cal.dw_gflops = c->cal.elem_gflops = dev->gflops;
        c->cal.mem_gbps = dev->mem_gbps;
    }
    return EVO_OK;
}

evo_status evo_pt_problem_from_program(const evo_program *prog, const evo_pt_topology *topo,
                                       struct evo_db *db, int64_t model_id, const char *model_name,
                                       evo_pt_problem *out, evo_error *err)
{
    memset(out, 0, sizeof *out);
    if (prog == NULL || topo == NULL || prog->n_tensors < 0 || prog->n_nodes < 0)
        return evo_error_set(err, EVO_ERR_INVALID_ARG, "placement: no program or no devices");
    int32_t *tmap = malloc((size_t)(prog->n_tensors ? prog->n_tensors : 1) * sizeof *tmap);
    int32_t *ins = malloc(((size_t)prog->n_tensors + 1) * sizeof *ins);
    int32_t *outs = malloc(((size_t)prog->n_tensors + 1) * sizeof *outs);
    fp_device_cost *dc = calloc((size_t)topo->n_devices, sizeof *dc);
    evo_predictor pred;
    bool pred_ready = false;
    evo_status st = EVO_OK;
    if (!tmap || !ins || !outs || !dc) {
        st = evo_error_set(err, EVO_ERR_NOMEM, "placement: out of memory");
        goto done;
    }
    int32_t nt = 0;
    for (int32_t t = 0; t < prog->n_tensors; t++)
        tmap[t] = (prog->tensors[t].flags & EVO_PT_CONST) ? -1 : nt++;
    if ((st = evo_pt_problem_init(out, topo, prog->n_nodes, nt, err)) != EVO_OK)
        goto done;
    for (int32_t t = 0; t < prog->n_tensors; t++) {
        if (tmap[t] < 0)
            continue;
        const evo_prog_tensor *pt = &prog->tensors[t];
        evo_pt_tensor *x = &out->tensors[tmap[t]];
        x->bytes = pt->nbytes;
        x->f32_numel = pt->dtype == EVO_DT_FLOAT32 ? pt->nbytes / 4 : 0;
        x->graph_output = (pt->flags & EVO_PT_OUTPUT) != 0;
        if (pt->name != NULL && (x->name = malloc(strlen(pt->name) + 1)) != NULL)
            memcpy(x->name, pt->name, strlen(pt->name) + 1);
    }
    if ((st = fp_prepare(topo, db, model_id, prog->n_nodes, dc, &pred, &pred_ready, err)) != EVO_OK)
        goto done;
    for (int32_t k = 0; k < prog->n_nodes; k++) {
        const evo_prog_node *pn = &prog->nodes[k];
        int32_t ni = 0, no = 0, nconst = 0;
        uint64_t wbytes = 0;
        for (int32_t i = 0; i < pn->n_in; i++) {
            int32_t t = pn->in[i];
            if (t < 0 || t >= prog->n_tensors)
                continue;
            if (tmap[t] < 0) {
                /* a constant read twice by one node counts once */
                bool seen = false;
                for (int32_t j = 0; j < i; j++)
                    seen |= pn->in[j] == t;
                if (!seen) {
                    wbytes += prog->tensors[t].nbytes;
                    nconst++;
                }
            } else {
                ins[ni++] = tmap[t];
            }
        }
        for (int32_t i = 0; i < pn->n_out; i++)
            if (pn->out[i] >= 0 && pn->out[i] < prog->n_tensors && tmap[pn->out[i]] >= 0)
                outs[no++] = tmap[pn->out[i]];
        if ((st = evo_pt_node_set(out, k, pn->name, pn->op ? pn->op->name : NULL, ins, ni, outs, no,
                                  err)) != EVO_OK)
            goto done;
        evo_pt_node *n = &out->nodes[k];
        n->weight_bytes = wbytes;
        n->n_consts = nconst;
        n->n_ptrs = pn->n_in + pn->n_out;
        n->scratch_bytes = pn->scratch_bytes;
        if (pn->op != NULL && (pn->op->flags & EVO_OP_INPLACE) && pn->n_in > 0 && pn->n_out > 0 &&
            pn->in[0] >= 0 && pn->out[0] >= 0 && tmap[pn->in[0]] >= 0 && tmap[pn->out[0]] >= 0 &&
            prog->tensors[pn->in[0]].dtype == prog->tensors[pn->out[0]].dtype)
            n->inplace_in = tmap[pn->in[0]];
        evo_db_op facts;
        if ((st = evo_program_op_facts(prog, k, &facts, err)) != EVO_OK)
            goto done;
        for (int32_t d = 0; d < topo->n_devices; d++) {
            double us;
            switch (dc[d].how) {
            case FP_PROFILE:
                us = dc[d].prof.op_median_us[k];
                break;
            case FP_PREDICT:
                us = evo_predict_op_us(&pred, &dc[d].cal, &facts);
                break;
            default:
                us = evo_roofline_us(&dc[d].cal, &facts);
                break;
            }
            out->cost_us[(size_t)k * (size_t)topo->n_devices + (size_t)d] = us >= 0 ? us : 0;
        }
        /* the facts' strings (the struct itself is on the stack) */
        free(facts.name);
        free(facts.op);
        free(facts.in_shapes);
        free(facts.out_shapes);
    }
    if (model_name != NULL && (out->model_name = malloc(strlen(model_name) + 1)) != NULL)
        memcpy(out->model_name, model_name, strlen(model_name) + 1);
    st = evo_pt_problem_finalize(out, err);
done:
    for (int32_t d = 0; dc != NULL && d < topo->n_devices; d++)
        if (dc[d].how == FP_PROFILE)
            evo_profile_free(&dc[d].prof);
    free(dc);
    free(tmap);
    free(ins);
    free(outs);
    if (st != EVO_OK)
        evo_pt_problem_free(out);
    return st;
}
