/*
 * Pass: store Conv weights in the layout their fastest kernel reads, once,
 * so that a compiled .evm keeps it (constants and params are stored as they
 * are) and no node re-packs at load. Two layouts (node/kernels/conv.h):
 *
 * - Winograd F(4x4, 3x3), EVO_CONV_W_WINO43 (checked first, wino_wants):
 *   U[36][C][M] = G W G^T for 3x3 stride-1 convs, run as 36 GEMMs with
 *   2.25x fewer multiply-adds (node/kernels/conv_wino.c).
 * - Output channels innermost, EVO_CONV_W_KM, for small output planes:
 *
 *   W_km[(c * k_size + t) * M + m] = W[m][c][t],   shape [C * k_size, M]
 *
 *   A 6x6 or 3x3 output plane has too few positions to fill the vector
 *   lanes of kernels that vectorize over positions; with M innermost the
 *   Conv kernel vectorizes over output channels instead.
 *
 * The Conv's params get the layout and kernel_shape (W's shape no longer
 * carries the kernel dims); ONNX export writes W back in ONNX's layout.
 *
 * The KM layout fires for float32 Convs with group 1, a constant W of at most
 * LAYOUT_MAX_W_BYTES, M fitting the kernel's blocks and at most
 * LAYOUT_MAX_POSITIONS output positions per image. The transposed
 * weights are a new constant read only by this node (the old one may be
 * shared; the driver's compaction drops it when nothing else reads it).
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/conv.h"
#include "pass_internal.h"

/* Output positions per image up to which the KM kernel beats the
 * position-vectorized ones. Measured on the zoo (AVX-512, per-op medians):
 * tiny_vww_mbv1's 6x6 and 3x3 1x1 convs gain 25-40%, its 12x12 ones up to
 * 10%; tiny_ic_resnet8's 8x8 3x3 convs 29 -> 20 and 45 -> 35 us, its 16x16
 * ones (M = 32) 26 -> 21 and 40 -> 35 us. */
#define LAYOUT_MAX_POSITIONS 256
/* The kernel's fast blocks are 64 channels x 4 positions and 32 x 8; any
 * other partial block takes a generic loop that is many times slower, so M
 * must be a multiple of 64, or of 32 with output rows a multiple of 8. */
#define LAYOUT_M_BLOCK 64
#define LAYOUT_M_HALF 32
/* W must stay cache-resident: the kernel re-reads it per row of output
 * positions. resnet18's 7x7 and 14x14 convs (W of 2.4-9.4 MB) ran twice
 * as slow in the KM layout. */
#define LAYOUT_MAX_W_BYTES ((int64_t)512 * 1024)

/* Winograd: W of at most this many bytes after the transform, and output
 * planes at least this wide and high. Measured with bench/conv_bench.py
 * (3x3 pad 1 + Relu, evo before -> with this layout): 16, 32, 64 channels
 * on 32x32, 16x16, 8x8 maps 43 -> 29, 33 -> 14, 34 -> 12 us; 64 on 56x56
 * 1.74 -> 0.60 ms; 128 on 28x28 (W 2.3 MiB transformed) 1.73 -> 0.86 ms.
 * With the cap raised, 256 on 14x14 (9 MiB) went 1.68 -> 1.74 ms and 512
 * on 7x7 2.0 -> 4.0 ms: U no longer stays in cache while few tiles share
 * it. */
#define WINO_MAX_W_BYTES ((int64_t)4 * 1024 * 1024)
#define WINO_MIN_SIDE 4

extern const evo_op_def evo_op_Conv;

/* What both layouts need first: node n is a group-1 Conv with its W still
 * in ONNX's layout, W a float32 constant with data; *x and *w are its X and
 * W. */
static bool layout_candidate(const evo_graph *g, const evo_node *n, const evo_value **x,
                             const evo_value **w)
{
    if (n->op != &evo_op_Conv || n->n_inputs < 2 || n->n_outputs < 1 || n->inputs[0] < 0 ||
        n->inputs[1] < 0 || n->outputs[0] < 0)
        return false;
    const evo_conv_params *p = (const evo_conv_params *)(const void *)n->params;
    if (p->w_layout != EVO_CONV_W_ONNX || p->group != 1)
        return false;
    *x = &g->values[n->inputs[0]];
    *w = &g->values[n->inputs[1]];
    return ((*w)->flags & EVO_VALUE_CONST) && (*w)->t.data != NULL &&
           (*w)->t.dtype == EVO_DT_FLOAT32;
}

/* Whether node i qualifies; *x, *w and *y are its X, W and Y. */
static bool layout_wants(const evo_graph *g, const evo_node *n, const evo_value **x,
                         const evo_value **w, const evo_value **y)
{
    if (!layout_candidate(g, n, x, w))
        return false;
    *y = &g->values[n->outputs[0]];
    const evo_tensor *wt = &(*w)->t, *yt = &(*y)->t;
    if (wt->shape.rank < 3 || wt->shape.rank != (*x)->t.shape.rank ||
        yt->shape.rank != wt->shape.rank || wt->shape.dims[0] < 1)
        return false;
    const int64_t m = wt->shape.dims[0], ow = yt->shape.dims[yt->shape.rank - 1];
    if (m % LAYOUT_M_BLOCK != 0 && !(m % LAYOUT_M_HALF == 0 && ow % 8 == 0))
        return false;
    int64_t wbytes = (int64_t)sizeof(float);
    for (int32_t d = 0; d < wt->shape.rank && wbytes <= LAYOUT_MAX_W_BYTES; d++)
        wbytes *= wt->shape.dims[d];
    if (wbytes > LAYOUT_MAX_W_BYTES)
        return false;
    int64_t positions = 1;
    for (int32_t d = 2; d < yt->shape.rank; d++)
        positions *= yt->shape.dims[d];
    return positions >= 1 && positions <= LAYOUT_MAX_POSITIONS;
}

/* Whether node n (a float32 Conv with ONNX-layout constant W) should run
 * as Winograd F(4x4, 3x3): 2-D 3x3, stride 1, dilation 1, group 1, channel
 * counts the AVX-512 kernel vectorizes (C and M multiples of 16), and an
 * output plane where the 2.25x fewer multiply-adds outweigh the transforms.
 * W grows 4x (36 values per 3x3 kernel), so it must stay cache-sized. */
static bool wino_wants(const evo_graph *g, const evo_node *n, const evo_value **x,
                       const evo_value **w, evo_conv_geom *geo)
{
    if (!layout_candidate(g, n, x, w))
        return false;
    const evo_tensor *wt = &(*w)->t;
    const evo_conv_params *p = (const evo_conv_params *)(const void *)n->params;
    if (wt->shape.rank != 4 || (*x)->t.shape.rank != 4 || (*x)->t.dtype != EVO_DT_FLOAT32)
        return false;
    if (evo_conv_resolve(p, &(*x)->t.shape, &wt->shape, geo, NULL) != EVO_OK)
        return false;
    if (geo->k[1] != 3 || geo->k[2] != 3 || geo->stride[1] != 1 || geo->stride[2] != 1 ||
        geo->dil[1] != 1 || geo->dil[2] != 1 || geo->c % 16 != 0 || geo->m % 16 != 0)
        return false;
    if (36 * geo->c * geo->m * (int64_t)sizeof(float) > WINO_MAX_W_BYTES)
        return false;
    return geo->out[1] >= WINO_MIN_SIDE && geo->out[2] >= WINO_MIN_SIDE;
}

/* Give node i the weights `data` (shape, in the layout params p names) in
 * place of its W, after checking that they describe the same convolution
 * as geo. Takes data (freed when refused or on error). *installed says
 * whether the node changed. */
static evo_status layout_install(evo_pass_ctx *c, int32_t i, const evo_conv_geom *geo,
                                 const evo_conv_params *p, const evo_shape *shape, float *data,
                                 const char *suffix, bool *installed)
{
    evo_graph *g = c->g;
    evo_node *n = &g->nodes[i];
    const evo_value *xv = &g->values[n->inputs[0]], *wv = &g->values[n->inputs[1]];
    *installed = false;
    evo_conv_geom check;
    if (evo_conv_resolve(p, &xv->t.shape, shape, &check, NULL) != EVO_OK || check.m != geo->m ||
        check.c != geo->c || check.k_size != geo->k_size || check.out_size != geo->out_size) {
        free(data);
        return EVO_OK;
    }
    /* A copy: adding a value may move g->values and wv's name with it. */
    char *base = malloc(strlen(wv->name) + 1);
    if (base == NULL) {
        free(data);
        return evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph",
                             evo_pass_file(g));
    }
    strcpy(base, wv->name);
    int32_t nv;
    evo_status rv = evo_pass_new_const(c, base, suffix, EVO_DT_FLOAT32, shape, data, &nv);
    free(base);
    if (rv != EVO_OK)
        return rv;
    n = &g->nodes[i]; /* g->values may have moved; nodes did not */
    n->inputs[1] = nv;
    memcpy(n->params, p, sizeof *p);
    *installed = true;
    return EVO_OK;
}

/* 64-byte aligned weights (free() releases them): the kernels load whole
 * 64-byte rows, which cost twice as much across cache lines. */
static float *layout_alloc(evo_pass_ctx *c, size_t bytes)
{
    float *d = aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes == 0 ? 64 : 0));
    if (d == NULL)
        evo_error_set(c->err, EVO_ERR_NOMEM, "%s: out of memory optimizing the graph",
                      evo_pass_file(c->g));
    return d;
}

/* Node i's W as its Winograd transform U[36][C][M]. */
static evo_status wino_relayout(evo_pass_ctx *c, int32_t i, const evo_value *wv,
                                const evo_conv_geom *geo, bool *installed)
{
    const int64_t cc = geo->c, mm = geo->m;
    float *u = layout_alloc(c, (size_t)(EVO_WINO43_XI * cc * mm) * sizeof(float));
    if (u == NULL)
        return EVO_ERR_NOMEM;
    const float *src = wv->t.data;
    for (int64_t m = 0; m < mm; m++)
        for (int64_t ch = 0; ch < cc; ch++) {
            float ut[EVO_WINO43_XI];
            evo_wino43_weight(src + (m * cc + ch) * 9, ut);
            for (int xi = 0; xi < EVO_WINO43_XI; xi++)
                u[(xi * cc + ch) * mm + m] = ut[xi];
        }
    evo_shape shape;
    memset(&shape, 0, sizeof shape);
    shape.rank = 3;
    shape.dims[0] = EVO_WINO43_XI;
    shape.dims[1] = (int32_t)cc;
    shape.dims[2] = (int32_t)mm;
    evo_conv_params p;
    memcpy(&p, c->g->nodes[i].params, sizeof p);
    p.n_kernel = 2;
    p.kernel[0] = p.kernel[1] = 3;
    p.w_layout = EVO_CONV_W_WINO43;
    return layout_install(c, i, geo, &p, &shape, u, "_wino", installed);
}

/* Node i's W as W_km [C * k_size, M]. */
static evo_status km_relayout(evo_pass_ctx *c, int32_t i, const evo_value *xv, const evo_value *wv,
                              bool *installed)
{
    *installed = false;
    evo_conv_params p;
    memcpy(&p, c->g->nodes[i].params, sizeof p);
    evo_conv_geom geo;
    if (evo_conv_resolve(&p, &xv->t.shape, &wv->t.shape, &geo, NULL) != EVO_OK)
        return EVO_OK; /* infer accepted it; never relayout what does not resolve */
    const int64_t mm = geo.m, rows = geo.cg * geo.k_size;
    size_t bytes = 0;
    if (evo_shape_nbytes(&wv->t.shape, EVO_DT_FLOAT32, &bytes) != EVO_OK ||
        bytes != (size_t)(mm * rows) * sizeof(float) || rows > INT32_MAX)
        return EVO_OK;
    float *km = layout_alloc(c, bytes);
    if (km == NULL)
        return EVO_ERR_NOMEM;
    const float *src = wv->t.data;
    for (int64_t m = 0; m < mm; m++)
        for (int64_t r = 0; r < rows; r++)
            km[r * mm + m] = src[m * rows + r];
    evo_shape shape;
    memset(&shape, 0, sizeof shape);
    shape.rank = 2;
    shape.dims[0] = (int32_t)rows;
    shape.dims[1] = (int32_t)mm;
    const int32_t nsp = wv->t.shape.rank - 2;
    p.n_kernel = nsp;
    for (int32_t d = 0; d < nsp; d++)
        p.kernel[d] = wv->t.shape.dims[2 + d];
    p.w_layout = EVO_CONV_W_KM;
    return layout_install(c, i, &geo, &p, &shape, km, "_km", installed);
}

evo_status evo_pass_layout_conv(evo_pass_ctx *c, int32_t *count)
{
    evo_graph *g = c->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (!evo_pass_live(c, i))
            continue;
        const evo_node *n = &g->nodes[i];
        const evo_value *xv, *wv, *yv;
        evo_conv_geom geo;
        bool installed = false;
        evo_status rv = EVO_OK;
        if (wino_wants(g, n, &xv, &wv, &geo))
            rv = wino_relayout(c, i, wv, &geo, &installed);
        else if (layout_wants(g, n, &xv, &wv, &yv))
            rv = km_relayout(c, i, xv, wv, &installed);
        if (rv != EVO_OK)
            return rv;
        if (installed)
            (*count)++;
    }
    return evo_pass_count_uses(c);
}
