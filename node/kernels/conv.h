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
} evo_conv_params;
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

/* Fuse an activation into a Conv or Gemm node's params (the fusion pass's
 * entry point). EVO_ERR_UNSUPPORTED for other ops, EVO_ERR_INVALID_ARG if the
 * params already carry an activation or act is unknown. */
evo_status evo_kconv_fuse_activation(const evo_op_def *op, void *params, const evo_act *act);

/* A convolution resolved for concrete shapes (normalized to 3 spatial dims).
 * For ConvTranspose, "in" and "out" keep their tensor meaning (X and Y);
 * C is X's channels and M is Y's channels in both ops. */
typedef struct evo_conv_geom {
    int64_t n, c, m, group, cg, mg; /* batch, in/out channels, per group */
    int32_t nsp;                    /* spatial rank of the tensors: 1..3 */
    int64_t in[3], out[3], k[3], stride[3], dil[3], pad_b[3], pad_e[3];
    int64_t in_size, out_size, k_size; /* products over the 3 dims */
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
#endif

/* Implicit-GEMM conv kernel (x86/conv_implicit_avx512.c): for i < mr,
 * j < nr (mr <= 8, nr <= 32), stride s of 1 or 2,
 *   c[i * ldc + j] = act(bias_row[i] + sum_{k < kk} a[i * lda + k] * x[tab[k] + s * j])
 * with the tail's bias_row and Relu/Clip (alpha 1, beta 0, no column bias).
 * Reads x[tab[k] .. tab[k] + 32 * s) whatever nr is. */
#if defined(EVO_HAVE_X86)
void evo_conv_implicit_avx512(int64_t kk, const float *a, int64_t lda, const float *x,
                              const int32_t *tab, int64_t stride, float *c, int64_t ldc, int64_t mr,
                              int64_t nr, const evo_sgemm_tail *t);
#endif

#ifdef __cplusplus
}
#endif
#endif /* EVO_KERNELS_CONV_H */
