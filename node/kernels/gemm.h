/*
 * evo's shared single-precision GEMM (used by Conv, ConvTranspose, Gemm and
 * MatMul) and the fused activation that Conv and Gemm apply after bias.
 *
 *   C = act(alpha * op(A) * op(B) + beta * C + bias)
 *
 * All matrices are row-major with explicit leading dimensions (elements
 * between rows), so callers can hand in sub-blocks: a group's slice of a
 * convolution weight, one image of a batch, a chunk of an im2col buffer.
 * op(A) is M x K, op(B) is K x N, C is M x N.
 *
 * Implementation: Goto-style cache blocking (KC x NC panels of B, MC x KC
 * blocks of A, packed into the caller's scratch) around a register-blocked
 * micro-kernel: 8x32 AVX-512F or 6x16 AVX2+FMA when the CPU has them
 * (cpu.h), 6x16 portable C otherwise. Bias and Relu/Clip are applied by the
 * micro-kernel as it stores a tile after its last K block. Single-threaded;
 * no allocation.
 */
#ifndef EVO_KERNELS_GEMM_H
#define EVO_KERNELS_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- fused activation */

/* Activation fused into Conv/Gemm. ONNX attributes never set it; a graph
 * fusion pass writes it into the op's params (see conv.h). The numbers are
 * part of the params layout stored in compact models: never renumber. */
typedef enum evo_act_kind {
    EVO_ACT_NONE = 0,
    EVO_ACT_RELU = 1,       /* max(x, 0) */
    EVO_ACT_CLIP = 2,       /* min(max(x, a), b) */
    EVO_ACT_LEAKY_RELU = 3, /* x >= 0 ? x : a * x */
    EVO_ACT_SIGMOID = 4,    /* 1 / (1 + exp(-x)) */
    EVO_ACT_HARD_SWISH = 5, /* x * max(0, min(1, x / 6 + 1/2)) (ONNX HardSwish) */
    EVO_ACT_COUNT_
} evo_act_kind;

typedef struct evo_act {
    int32_t kind; /* evo_act_kind */
    float a, b;   /* CLIP: min, max; LEAKY_RELU: alpha in a; unused otherwise */
} evo_act;

/* Apply act to n contiguous floats in place. */
void evo_act_apply(const evo_act *act, float *x, size_t n);
/* The same, except for the activations the fast conv kernels fuse into
 * their stores (Relu, Clip; and none): what a caller applies after such a
 * kernel. */
void evo_act_apply_unfused(const evo_act *act, float *x, size_t n);
/* True if kind is a known activation. */
bool evo_act_valid(const evo_act *act);

/* ---------------------------------------------------------------- SGEMM */

typedef enum evo_gemm_bias_mode {
    EVO_GEMM_BIAS_NONE = 0,
    EVO_GEMM_BIAS_ROW = 1, /* bias[i] added to row i (length M): conv channels */
    EVO_GEMM_BIAS_COL = 2, /* bias[j] added to column j (length N): FC layers */
} evo_gemm_bias_mode;

/* What happens to each finished tile of C. NULL means nothing. */
typedef struct evo_gemm_epilogue {
    const float *bias; /* unscaled, added after alpha/beta; NULL = none */
    int32_t bias_mode; /* evo_gemm_bias_mode */
    evo_act act;       /* applied after bias */
} evo_gemm_epilogue;

typedef struct evo_sgemm_args {
    bool trans_a, trans_b; /* op(X) = X^T when set */
    int64_t m, n, k;
    float alpha, beta; /* beta == 0 means C is not read (may hold garbage) */
    const float *a;
    int64_t lda; /* row stride of A as stored (K if !trans_a, M if trans_a) */
    const float *b;
    int64_t ldb; /* row stride of B as stored (N if !trans_b, K if trans_b) */
    float *c;
    int64_t ldc;                  /* >= n */
    const evo_gemm_epilogue *epi; /* may be NULL */
} evo_sgemm_args;

/* Scratch bytes evo_sgemm needs for these sizes (packed panels, plus
 * alignment slack). Always > 0 and at most a few MB whatever the sizes. */
size_t evo_sgemm_scratch_bytes(int64_t m, int64_t n, int64_t k);

/* Compute the product described by *g using scratch (at least
 * evo_sgemm_scratch_bytes(m, n, k) bytes, any alignment). k == 0 gives
 * C = beta * C (+ bias, act). Chooses the AVX2 kernel at run time. */
void evo_sgemm(const evo_sgemm_args *g, void *scratch, size_t scratch_bytes);

/* ---------------------------------------------------------------- micro-kernels */

/* Register-block shape of the portable and AVX2 micro-kernels. */
#define EVO_SGEMM_MR 6
#define EVO_SGEMM_NR 16
/* Register-block shape of the AVX-512 micro-kernel (8 rows x 2 zmm). */
#define EVO_SGEMM_MR_AVX512 8
#define EVO_SGEMM_NR_AVX512 32

/* What a micro-kernel does with its tile after the products. act is
 * EVO_ACT_NONE, EVO_ACT_RELU or EVO_ACT_CLIP (lo, hi); the other
 * activations are applied by the driver afterwards. */
typedef struct evo_sgemm_tail {
    float alpha, beta;     /* beta == 0: C is not read */
    const float *bias_row; /* bias of the tile's first row (one per row), or NULL */
    const float *bias_col; /* bias of the tile's first column (one per column), or NULL */
    int32_t act;           /* evo_act_kind: NONE, RELU or CLIP */
    float lo, hi;          /* CLIP bounds */
} evo_sgemm_tail;

/* A micro-kernel: for i < mr, j < nr (mr <= its MR, nr <= its NR)
 *   C[i][j] = act(alpha * sum_k pa[k][i] * pb[k][j] + beta * C[i][j] + bias)
 * pa holds kc columns of MR floats (packed A), pb kc rows of NR floats
 * (packed B, 64-byte aligned). Only the mr x nr part of C is accessed. */
typedef void (*evo_sgemm_ukernel)(int64_t kc, const float *pa, const float *pb, float *c,
                                  int64_t ldc, int64_t mr, int64_t nr, const evo_sgemm_tail *t);

void evo_sgemm_ukernel_portable(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc,
                                int64_t mr, int64_t nr, const evo_sgemm_tail *t);
#if defined(EVO_HAVE_X86)
void evo_sgemm_ukernel_avx2(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc,
                            int64_t mr, int64_t nr, const evo_sgemm_tail *t);
void evo_sgemm_ukernel_avx512(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc,
                              int64_t mr, int64_t nr, const evo_sgemm_tail *t);
/* The same with A read in place: row i of the tile is a + i * lda (rows
 * i < mr only), element k at a[i * lda + k]. */
/* c[j] = alpha * dot(a, row j of B) (+ beta * c[j] unless beta == 0) for
 * j < n: one row of A times B^T, B row-major with leading dimension ldb. */
void evo_sgemv_bt_avx512(int64_t n, int64_t k, const float *a, const float *b, int64_t ldb,
                         float *c, float alpha, float beta);
void evo_sgemm_ukernel_avx512_direct(int64_t kc, const float *a, int64_t lda, const float *pb,
                                     float *c, int64_t ldc, int64_t mr, int64_t nr,
                                     const evo_sgemm_tail *t);
#endif

#ifdef __cplusplus
}
#endif
#endif /* EVO_KERNELS_GEMM_H */
