/*
 * AVX2 interior of the 2-D float MaxPool fast path (ref/pool.c): eight
 * outputs of one output row per step, every tap in bounds. The running max
 * is _mm256_max_ps(v, acc), which is v > acc ? v : acc lane by lane (NaN in
 * either operand yields acc), the same rule as the scalar loops, so the
 * results are bit-identical. Stride 2 gathers the even inputs with two loads
 * and a shuffle; the second load starts at +7 so it never reads past the
 * last input the eight outputs need.
 */
#include <immintrin.h>
#include <stdint.h>

int64_t evo_maxpool_rows_avx2(float *y, int64_t n, const float *x, int64_t row, int64_t rows,
                              int64_t k, int64_t stride, int64_t dil);

static inline __m256 pool_load(const float *s, int64_t stride)
{
    if (stride == 1)
        return _mm256_loadu_ps(s);
    const __m256 lo = _mm256_loadu_ps(s);     /* s0 .. s7 */
    const __m256 hi = _mm256_loadu_ps(s + 7); /* s7 .. s14: evens at odd lanes */
    const __m256 mix = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mix), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* y[t] = max over r < rows, q < k of x[r * row + t * stride + q * dil], the
 * first tap (r = q = 0) taken as is; for t in [0, n / 8 * 8). */
int64_t evo_maxpool_rows_avx2(float *y, int64_t n, const float *x, int64_t row, int64_t rows,
                              int64_t k, int64_t stride, int64_t dil)
{
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        const float *base = x + t * stride;
        __m256 acc = pool_load(base, stride);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < k; q++)
                acc = _mm256_max_ps(pool_load(base + r * row + q * dil, stride), acc);
        _mm256_storeu_ps(y + t, acc);
    }
    return t;
}
