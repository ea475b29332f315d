/*
 * In-register transpose of a 16 x 16 block of floats (AVX-512F).
 *
 * Why: kernels that vectorize over channels (16 channels per vector) read
 * and write NCHW tensors, whose channels are whole planes apart. Gathering
 * one position of 16 channels costs a 16-element gather; loading 16
 * positions of each of 16 channels (16 contiguous loads) and transposing
 * them costs 64 shuffles for the same 256 values. Used by the Winograd conv
 * (x86/conv_wino_avx512.c).
 *
 * On return, r[j] holds element j of every input r[i] (in order of i).
 * Callers must compile it with AVX-512F enabled (target attribute). The
 * loops are unrolled so that everything stays in registers (at -O2 GCC
 * would otherwise keep r and t in memory).
 */
#ifndef EVO_TRANSPOSE16_AVX512_H
#define EVO_TRANSPOSE16_AVX512_H

#include <immintrin.h>

__attribute__((target("avx512f"), always_inline)) static inline void
evo_transpose16_avx512(__m512 r[16])
{
    __m512 t[16];
/* Per 128-bit lane L: lo = a[4L], b[4L], a[4L+1], b[4L+1]; hi = the
 * same at 4L+2 and 4L+3. */
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
/* r[4i + q], lane L: rows 4i..4i+3 at column 4L + q. */
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
/* Column 4L + q gathers lane L of r[q], r[4 + q], r[8 + q], r[12 + q]. */
#pragma GCC unroll 16
    for (int q = 0; q < 4; q++) {
        const __m512 s0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);
        const __m512 s1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
        const __m512 s2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
        const __m512 s3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
        t[q] = _mm512_shuffle_f32x4(s0, s2, 0x88);      /* L = 0 */
        t[4 + q] = _mm512_shuffle_f32x4(s1, s3, 0x88);  /* L = 1 */
        t[8 + q] = _mm512_shuffle_f32x4(s0, s2, 0xDD);  /* L = 2 */
        t[12 + q] = _mm512_shuffle_f32x4(s1, s3, 0xDD); /* L = 3 */
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

#endif
