/* Broadcast planning and run iteration; see broadcast.h. */
#include "broadcast.h"

#include <string.h>

evo_status evo_bcast_plan(evo_bcast *b, const evo_shape *out, const evo_shape *const *in,
                          int32_t n_in)
{
    memset(b, 0, sizeof *b);
    if (n_in < 1 || n_in > EVO_BCAST_MAX_IN || out->rank < 0 || out->rank > EVO_MAX_RANK)
        return EVO_ERR_INVALID_ARG;
    int32_t rank = out->rank;
    /* aligned[k][i]: input k's dim at output dim i, after padding with leading 1s. */
    int64_t aligned[EVO_BCAST_MAX_IN][EVO_MAX_RANK];
    for (int32_t k = 0; k < n_in; k++) {
        const evo_shape *s = in[k];
        if (s->rank < 0 || s->rank > rank)
            return s->rank < 0 || s->rank > EVO_MAX_RANK ? EVO_ERR_INVALID_ARG : EVO_ERR_SHAPE;
        int32_t lead = rank - s->rank;
        for (int32_t i = 0; i < rank; i++) {
            int64_t d = i < lead ? 1 : s->dims[i - lead];
            if (d != out->dims[i] && d != 1)
                return EVO_ERR_SHAPE;
            aligned[k][i] = d;
        }
    }
    int64_t numel = evo_shape_numel(out);
    if (numel < 0)
        return EVO_ERR_LIMIT;
    b->n_in = n_in;
    b->numel = numel;
    if (numel == 0)
        return EVO_OK;

    /* Collapse: drop output dims of 1, merge neighbours with equal patterns.
     * dense[k][j] says whether input k spans collapsed dim j. */
    int64_t dims[EVO_MAX_RANK];
    bool dense[EVO_BCAST_MAX_IN][EVO_MAX_RANK];
    int32_t m = 0;
    for (int32_t i = 0; i < rank; i++) {
        int64_t d = out->dims[i];
        if (d == 1)
            continue;
        bool same = m > 0;
        for (int32_t k = 0; k < n_in && same; k++)
            same = dense[k][m - 1] == (aligned[k][i] != 1);
        if (same) {
            dims[m - 1] *= d; /* cannot overflow: bounded by numel */
            continue;
        }
        dims[m] = d;
        for (int32_t k = 0; k < n_in; k++)
            dense[k][m] = aligned[k][i] != 1;
        m++;
    }
    if (m == 0) { /* every dim is 1: a single element */
        b->inner = 1;
        return EVO_OK;
    }
    b->inner = dims[m - 1];
    b->outer_rank = m - 1;
    for (int32_t j = 0; j < m - 1; j++)
        b->outer_dims[j] = dims[j];
    for (int32_t k = 0; k < n_in; k++) {
        b->inner_stride[k] = dense[k][m - 1] ? 1 : 0;
        int64_t span = dense[k][m - 1] ? dims[m - 1] : 1; /* elements of input k inside dim j */
        for (int32_t j = m - 2; j >= 0; j--) {
            b->outer_stride[k][j] = dense[k][j] ? span : 0;
            if (dense[k][j])
                span *= dims[j];
        }
    }
    return EVO_OK;
}

void evo_bcast_begin(const evo_bcast *b, evo_bcast_iter *it)
{
    memset(it, 0, sizeof *it);
    it->runs_left = b->numel > 0 ? b->numel / b->inner : 0;
}

bool evo_bcast_next(const evo_bcast *b, evo_bcast_iter *it)
{
    if (it->runs_left <= 0)
        return false;
    it->runs_left--;
    if (!it->started) {
        it->started = true;
        return true;
    }
    it->out_off += b->inner;
    /* Odometer over the outer dims, innermost first. */
    for (int32_t j = b->outer_rank - 1; j >= 0; j--) {
        if (++it->idx[j] < b->outer_dims[j]) {
            for (int32_t k = 0; k < b->n_in; k++)
                it->in_off[k] += b->outer_stride[k][j];
            return true;
        }
        it->idx[j] = 0;
        for (int32_t k = 0; k < b->n_in; k++)
            it->in_off[k] -= b->outer_stride[k][j] * (b->outer_dims[j] - 1);
    }
    return true; /* unreachable while runs_left was consistent */
}
