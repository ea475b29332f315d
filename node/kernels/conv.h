/*
 * Shared declarations of the convolution and matrix-product ops: parsed
 * params (the layout a fusion pass writes the fused activation into),
 * the resolved geometry of a convolution, and the fast paths in
 * conv_fast.c that the reference op files dispatch to.
 *
 * Spatial dimensions are normalized to three (D, H, W): a 1-D conv is
 * (1, 1, W), a 2-D conv (1, H, W), with kernel 1, stride 1, dilation 1 and
 * no padding in the added dimensions. Every kernel is then written once.
 */
#ifndef EVO_KERNELS_CONV_H
#define EVO_KERNELS_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evo/op.h"
#include "kernels/gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVO_CONV_MAX_SPATIAL 3

typedef enum evo_auto_pad {
    EVO_AUTO_PAD_NOTSET = 0,
    EVO_AUTO_PAD_SAME_UPPER = 1,
    EVO_AUTO_PAD_SAME_LOWER = 2,
    EVO_AUTO_PAD_VALID = 3,
} evo_auto_pad;

/* Params of Conv and ConvTranspose. Counts are the number of entries the
 * attribute had (0 = absent, defaults apply). */
typedef struct evo_conv_params {
    int32_t group;
    int32_t auto_pad; /* evo_auto_pad */
    int32_t n_kernel, n_strides, n_dilations, n_pads, n_output_padding, n_output_shape;
    int32_t kernel[EVO_CONV_MAX_SPATIAL];
    int32_t strides[EVO_CONV_MAX_SPATIAL];
    int32_t dilations[EVO_CONV_MAX_SPATIAL];
    int32_t pads[2 * EVO_CONV_MAX_SPATIAL];       /* ONNX order: all begins, then all ends */
    int32_t output_padding[EVO_CONV_MAX_SPATIAL]; /* ConvTranspose only */
    /* ConvTranspose only: spatial dims, or N, C and spatial dims as some
     * exporters write it (told apart once the input rank is known). */
    int32_t output_shape[EVO_CONV_MAX_SPATIAL + 2];
    evo_act act; /* fused activation after bias; EVO_ACT_NONE from ONNX */
    /* Conv only: how W is stored (evo_conv_w_layout). Parse leaves it
     * EVO_CONV_W_ONNX; the layout pass (modeldb/pass_layout.c) sets
     * EVO_CONV_W_KM together with n_kernel/kernel, which then carry the
     * kernel dims that W's 2-D shape no longer has. */
    int32_t w_layout;
} evo_conv_params;

typedef enum evo_conv_w_layout {
    EVO_CONV_W_ONNX = 0, /* [M, C/group, k...] */
    /* [C * k_size, M] with W_km[(c * k_size + t) * M + m] = W[m][c][t], group 1
     * only: output channels innermost, so a kernel can vectorize over M
     * (small output planes leave too few positions to fill vector lanes). */
    EVO_CONV_W_KM = 1,
    /* [36, C, M]: Winograd F(4x4, 3x3) weights U[xi][c][m] = (G W[m][c] G^T)
     * at xi = 6 i + j (conv_wino.c has G), for 2-D 3x3 convs with stride 1,
     * dilation 1 and group 1. kernel_shape must be {3, 3}. The transform
     * is done once (modeldb/pass_layout.c), so a node runs the 36 small
     * GEMMs of Winograd's algorithm without re-packing at load. */
    EVO_CONV_W_WINO43 = 2,
} evo_conv_w_layout;
_Static_assert(sizeof(evo_conv_params) <= EVO_PARAMS_MAX, "conv params exceed EVO_PARAMS_MAX");

typedef struct evo_gemm_params {
    float alpha, beta;
    int32_t trans_a, trans_b;
    evo_act act; /* fused activation after the C term; EVO_ACT_NONE from ONNX */
} evo_gemm_params;
_Static_assert(sizeof(evo_gemm_params) <= EVO_PARAMS_MAX, "gemm params exceed EVO_PARAMS_MAX");

/* Read Conv (transpose = false) or ConvTranspose attributes into *p.
 * Checks attribute types and counts; values are validated by the resolve
 * functions below, which infer calls. */
evo_status evo_conv_parse_params(const evo_node *node, bool transpose, evo_conv_params *p,
                                 evo_error *err);

/* Params of Add: ONNX gives it none, so parse leaves them zero (no
 * activation) and older compact models stay valid. The fusion pass may set
 * act to Relu or Clip for a float32 Add (residual block: Add then Relu). */
typedef struct evo_add_params {
    evo_act act;
} evo_add_params;
_Static_assert(sizeof(evo_add_params) <= EVO_PARAMS_MAX, "add params exceed EVO_PARAMS_MAX");

/* Fuse an activation into a Conv, Gemm or Add node's params (the fusion
 * pass's entry point). EVO_ERR_UNSUPPORTED for other ops and for an Add with
 * an activation other than Relu or Clip, EVO_ERR_INVALID_ARG if the params
 * already carry an activation or act is unknown. */
evo_status evo_kconv_fuse_activation(const evo_op_def *op, void *params, const evo_act *act);

/* A convolution resolved for concrete shapes (normalized to 3 spatial dims).
 * For ConvTranspose, "in" and "out" keep their tensor meaning (X and Y);
 * C is X's channels and M is Y's channels in both ops. */
typedef struct evo_conv_geom {
    int64_t n, c, m, group, cg, mg; /* batch, in/out channels, per group */
    int32_t nsp;                    /* spatial rank of the tensors: 1..3 */
    int64_t in[3], out[3], k[3], stride[3], dil[3], pad_b[3], pad_e[3];
    int64_t in_size, out_size, k_size; /* products over the 3 dims */
    int32_t w_km;                      /* W is in the EVO_CONV_W_KM layout */
    int32_t w_wino;                    /* W is in the EVO_CONV_W_WINO43 layout */
} evo_conv_geom;

/* Resolve Conv / ConvTranspose geometry from params and X/W shapes,
 * validating everything (EVO_ERR_SHAPE / EVO_ERR_UNSUPPORTED with a message
 * in err, which may be NULL). */
evo_status evo_conv_resolve(const evo_conv_params *p, const evo_shape *x, const evo_shape *w,
                            evo_conv_geom *g, evo_error *err);
evo_status evo_conv_transpose_resolve(const evo_conv_params *p, const evo_shape *x,
                                      const evo_shape *w, evo_conv_geom *g, evo_error *err);

/* Fast paths (conv_fast.c). Each computes the whole output (bias, act). */
size_t evo_conv_fast_scratch(const evo_conv_geom *g);
void evo_conv_fast(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                   const evo_act *act, float *y, void *scratch, size_t scratch_bytes);
size_t evo_conv_transpose_fast_scratch(const evo_conv_geom *g);
void evo_conv_transpose_fast(const evo_conv_geom *g, const float *x, const float *w,
                             const float *bias, const evo_act *act, float *y, void *scratch,
                             size_t scratch_bytes);

/* Winograd F(4x4, 3x3) (conv_wino.c). The transforms of one 3x3 kernel:
 * u[36] = G g G^T and back (exact up to rounding: G has full column
 * rank), used by the layout pass, ONNX export and the reference kernel. */
#define EVO_WINO43_TILE 6 /* input tile side; 4 x 4 outputs per tile */
#define EVO_WINO43_XI 36  /* transformed positions per tile */
void evo_wino43_weight(const float g[9], float u[EVO_WINO43_XI]);
void evo_wino43_weight_inverse(const float u[EVO_WINO43_XI], float g[9]);
/* Conv with W in the EVO_CONV_W_WINO43 layout: the whole output, bias and
 * activation included. Picks the AVX-512 kernel when the CPU has it and
 * C and M are multiples of 16, the portable one otherwise. scratch holds
 * evo_conv_wino_scratch(g) bytes (any alignment). */
size_t evo_conv_wino_scratch(const evo_conv_geom *g);
void evo_conv_wino(const evo_conv_geom *g, const float *x, const float *u, const float *bias,
                   const evo_act *act, float *y, void *scratch);
#if defined(EVO_HAVE_X86)
/* The AVX-512 kernel (x86/conv_wino_avx512.c): c % 16 == 0, m % 16 == 0.
 * Scratch layout and block size in evo_wino_plan (conv_wino.c). */
typedef struct evo_wino_plan {
    int64_t tiles_h, tiles_w, tiles;       /* 4 x 4 output tiles per image */
    int64_t ph, pw;                        /* padded input plane: 4 tiles + 2 */
    int64_t block;                         /* tiles transformed per GEMM pass */
    int64_t xp_floats, v_floats, m_floats; /* scratch: xp, V, M in order */
} evo_wino_plan;
void evo_wino_plan_make(const evo_conv_geom *g, evo_wino_plan *p);
void evo_conv_wino_avx512(const evo_conv_geom *g, const evo_wino_plan *p, const float *x,
                          const float *u, const float *bias, const evo_act *act, float *y,
                          float *scratch);
#endif

/* Depthwise row kernel (x86/dwconv_avx2.c): for t in [0, n),
 *   out[t] = act(bias + sum_{r < rows, q < kw} w[r * kw + q] * in[r * in_row + t * stride + q *
 * dil]) for stride 1 or 2, where act is applied only if it is Relu or Clip. */
#if defined(EVO_HAVE_X86)
void evo_dwconv_rows_avx2(float *out, int64_t n, const float *in, int64_t in_row, const float *w,
                          int64_t rows, int64_t kw, int64_t stride, int64_t dil, float bias,
                          const evo_act *act);
/* The same with AVX-512F (x86/dwconv_avx512.c), and a whole plane of it:
 * rows_out runs of n outputs, run r at out + r * out_row reading
 * in + r * in_step (3x3 kernels keep the weights in registers). */
void evo_dwconv_plane_avx512(float *out, int64_t rows_out, int64_t n, int64_t out_row,
                             const float *in, int64_t in_step, int64_t in_row, const float *w,
                             int64_t kh, int64_t kw, int64_t stride, int64_t dil, float bias,
                             const evo_act *act);
void evo_dwconv_rows_avx512(float *out, int64_t n, const float *in, int64_t in_row, const float *w,
                            int64_t rows, int64_t kw, int64_t stride, int64_t dil, float bias,
                            const evo_act *act);
/* Depthwise conv of one channel as a flat run over the output plane
 * (conv_fast.c, conv_dw_masked): for t < n_out,
 *   y[t] = act(bias + sum_{i < nt, lane t in masks[(t / 16) * nt + i]} w[i] * src[off[i] + t])
 * (Relu/Clip only). masks come from evo_dwconv_masks_avx512: tap (a, b)
 * of output (r, c) = (t / ow, t % ow) is live when input row s r + a dil
 * - pt and column s c + b dil - pl are inside ih x iw. Masked-off lanes are
 * never read, so off[i] + t may point outside src for them. */
void evo_dwconv_masks_avx512(uint16_t *masks, int64_t n_out, int64_t ow, int64_t s, int64_t ih,
                             int64_t iw, int64_t kh, int64_t kw, int64_t pt, int64_t pl,
                             int64_t dil);
void evo_dwconv_masked_avx512(float *y, int64_t n_out, const float *src, const int64_t *off,
                              const float *w, int64_t nt, const uint16_t *masks, float bias,
                              const evo_act *act);
/* Depthwise 3x3, stride 1, dilation 1, pads 1 on every side, of one h x w
 * channel plane x into y (x86/dwconv3x3_avx512.c):
 *   y[r][c] = act(bias + sum_{a, b < 3} k[3 a + b] * x[r + a - 1][c + b - 1])
 * with x zero outside the plane (Relu/Clip only). zero_row: at least w
 * zeros, read in place of the rows above and below the plane. */
void evo_dwconv3x3s1_avx512(float *y, const float *x, int64_t h, int64_t w, const float *k,
                            float bias, const evo_act *act, const float *zero_row);
/* The same with stride 2 into an oh x ow plane (pads 1 before and 0 or 1
 * after, oh and ow as ONNX computes them from those):
 *   y[r][c] = act(bias + sum_{a, b < 3} k[3 a + b] * x[2r + a - 1][2c + b - 1]).
 * zero_row: at least w zeros. */
void evo_dwconv3x3s2_avx512(float *y, int64_t oh, int64_t ow, const float *x, int64_t h, int64_t w,
                            const float *k, float bias, const evo_act *act, const float *zero_row);
#endif

/* One 32-wide tile of the implicit-GEMM conv (conv_fast.c): of its flat
 * positions 16 h .. 16 h + 15 (h = 0, 1) those in valid[h] are outputs; they
 * are consecutive outputs starting at Y offset off[h], stored with mask
 * store[h] (the low popcount(valid[h]) bits). valid[1] == 0: a 16-wide tile. */
typedef struct evo_conv_tile {
    uint16_t valid[2], store[2];
    int32_t off[2];
} evo_conv_tile;

/* Implicit-GEMM conv kernel (x86/conv_implicit_avx512.c): for i < mr
 * (mr <= 8) and each valid lane j of the tile,
 *   c[i * ldc + off(j)] = act(bias_row[i] + sum_{k < kk} a[i * lda + k] * x[tab[k] + j])
 * with the tail's bias_row and Relu/Clip (alpha 1, beta 0, no column bias).
 * Reads x[tab[k] .. tab[k] + 32) (16 for a 16-wide tile). */
#if defined(EVO_HAVE_X86)
void evo_conv_implicit_avx512(int64_t kk, const float *a, int64_t lda, const float *x,
                              const int32_t *tab, float *c, int64_t ldc, int64_t mr,
                              const evo_conv_tile *tile, const evo_sgemm_tail *t);
/* Conv with W in the EVO_CONV_W_KM layout (x86/conv_km_avx512.c): for
 * p < np and m < mm,
 *   y[m * ldy + p] = act(bias[m] + sum_{k < kk} b[row(k) + off(p)] * wt[k * mm + m])
 * with row(k) = tab[k], or k * ldb when tab is NULL, and off(p) = pos[p],
 * or p * ps when pos is NULL (pos lets one call run the positions of
 * several output rows, whose inputs are not evenly spaced), vectorized
 * over m; bias may be NULL; act is applied only if Relu or Clip (the
 * caller applies the others). */
void evo_conv_km_avx512(int64_t kk, const float *b, int64_t ldb, const int32_t *tab, int64_t ps,
                        const int32_t *pos, int64_t np, const float *wt, int64_t mm,
                        const float *bias, const evo_act *act, float *y, int64_t ldy);
/* The same with AVX2 (x86/conv_km_avx2.c). */
void evo_conv_km_avx2(int64_t kk, const float *b, int64_t ldb, int64_t np, const float *wt,
                      int64_t mm, const float *bias, const evo_act *act, float *y, int64_t ldy);
/* Depthwise 2-D conv of small planes on AVX-512F, 16 channels per vector
 * (x86/dwconv_cv_avx512.c): g depthwise with c % 16 == 0, dilation 1; the
 * whole output, bias and Relu/Clip included (other activations are the
 * caller's). scratch: evo_dwconv_cv_scratch_floats(g) floats, 64-byte
 * aligned. */
size_t evo_dwconv_cv_scratch_floats(const evo_conv_geom *g);
void evo_dwconv_cv_avx512(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                          const evo_act *act, float *y, float *scratch);
/* even[i] = src[2 i], odd[i] = src[2 i + 1] for i < n. */
void evo_deinterleave_avx512(const float *src, int64_t n, float *even, float *odd);
/* 2-D conv, 3x3 kernel, stride 2, dilation 1, one group, any pads, C and M
 * at most the limits below (a network's stem) on AVX-512F (x86/conv3x3s2_avx512.c), straight from
 * NCHW without scratch: the whole output, bias (may be NULL) and Relu/Clip
 * included (other activations are the caller's). */
/* 1x1 conv, stride 1, no pads, one group, short reduction (C <= _MAX_K,
 * C * M rounded up to 8 channels <= _MAX_W) on AVX-512F
 * (x86/conv1x1_avx512.c), straight from NCHW without scratch: the whole
 * output, bias (may be NULL) and Relu/Clip included (other activations are
 * the caller's). */
#define EVO_CONV1X1_SMALLK_MAX_K 32
#define EVO_CONV1X1_SMALLK_MAX_W 4096
void evo_conv1x1_smallk_avx512(const evo_conv_geom *g, const float *x, const float *w,
                               const float *bias, const evo_act *act, float *y);
#define EVO_CONV3X3S2_MAX_C 4  /* input channels */
#define EVO_CONV3X3S2_MAX_M 64 /* output channels */
void evo_conv3x3s2_avx512(const evo_conv_geom *g, const float *x, const float *w, const float *bias,
                          const evo_act *act, float *y);
#endif

#ifdef __cplusplus
}
#endif
#endif /* EVO_KERNELS_CONV_H */
