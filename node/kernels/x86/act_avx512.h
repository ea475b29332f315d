/*
 * The fused Relu / Clip epilogue of the AVX-512 conv kernels, in one place
 * so every kernel treats NaN the same way as evo_act_apply.
 * Callers compile it with AVX-512F enabled (target attribute).
 */
#ifndef EVO_ACT_AVX512_H
#define EVO_ACT_AVX512_H

#include <immintrin.h>

#include "kernels/conv.h"

/* act(v) for Relu and Clip [lo, hi]; any other kind leaves v as it is (the
 * caller applies it afterwards). */
__attribute__((target("avx512f"), always_inline)) static inline __m512
evo_act_avx512(__m512 v, int32_t act, __m512 lo, __m512 hi)
{
    if (act == EVO_ACT_RELU) /* v > 0 ? v : 0, NaN -> 0 as in evo_act_apply */
        return _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == EVO_ACT_CLIP) /* NaN stays NaN */
        return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    return v;
}

#endif
