/* Weight-only int8 and int4 linear layers for x86-64 CPUs with AVX2 and FMA, float32 activations and sums.
 *
 * y[m, n] = sum_k x[m, k] * w[n, k] + bias[n], where w is held quantized:
 *   int8: w[n, k] = q[n, k] * scale[n]                       (q int8 [N, K], scale float32 [N])
 *   int4: w[n, k] = q[n, k] * scale[n, g] + low[n, g]         (g = k / group; q 0..15 packed two per byte,
 *         [N, K/2]: in each run of 16 weights, byte j holds weight j in its low nibble and weight j+8 in its high
 *         nibble; scale and low float32 [N, K/group])
 *
 * Every output element is summed in one fixed order, whatever the number of rows, the tile it falls in or the
 * number of threads (one accumulator per (n, m), k in order, one horizontal sum), so a row's result does not
 * depend on the rows batched with it: batched == alone and stream == offline hold bit for bit.
 * Threads: OpenMP over output channels (the process's libgomp, torch's own, is the one linked at load).
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- int8 -------------------------------------------------------------------------------------------- */

static inline __m256 int8x8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* NB channels x MB rows: out[i][j] = sum_k x[j, k] q[i, k] */
#define INT8_TILE(NB, MB)                                                                                   \
    static void int8_tile_##NB##x##MB(const float *x, int64_t K, const int8_t *q, float out[NB][MB]) {      \
        __m256 acc[NB][MB];                                                                                 \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) acc[i][j] = _mm256_setzero_ps();                                   \
        int64_t k = 0;                                                                                      \
        for (; k + 8 <= K; k += 8) {                                                                        \
            __m256 xv[MB];                                                                                  \
            for (int j = 0; j < MB; j++) xv[j] = _mm256_loadu_ps(x + j * K + k);                            \
            for (int i = 0; i < NB; i++) {                                                                  \
                __m256 w = int8x8(q + i * K + k);                                                           \
                for (int j = 0; j < MB; j++) acc[i][j] = _mm256_fmadd_ps(w, xv[j], acc[i][j]);              \
            }                                                                                               \
        }                                                                                                   \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) {                                                                  \
                float s = hsum(acc[i][j]);                                                                  \
                for (int64_t t = k; t < K; t++) s += x[j * K + t] * (float)q[i * K + t];                    \
                out[i][j] = s;                                                                              \
            }                                                                                               \
    }
INT8_TILE(8, 1)
INT8_TILE(4, 2)
INT8_TILE(4, 1)
INT8_TILE(1, 1)

void qwen3tts_int8_linear(const float *x, int64_t M, int64_t K, const int8_t *q, const float *scale,
                          const float *bias, int64_t N, float *y, int threads) {
    const int64_t NB = M == 1 ? 8 : 4, tiles = N / NB;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t n0 = t * NB;
        const int8_t *qt = q + n0 * K;
        int64_t m = 0;
        if (NB == 8) {
            float o[8][1];
            int8_tile_8x1(x, K, qt, o);
            for (int i = 0; i < 8; i++) y[n0 + i] = o[i][0] * scale[n0 + i] + (bias ? bias[n0 + i] : 0.f);
            continue;
        }
        for (; m + 2 <= M; m += 2) {
            float o[4][2];
            int8_tile_4x2(x + m * K, K, qt, o);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 2; j++)
                    y[(m + j) * N + n0 + i] = o[i][j] * scale[n0 + i] + (bias ? bias[n0 + i] : 0.f);
        }
        if (m < M) {
            float o[4][1];
            int8_tile_4x1(x + m * K, K, qt, o);
            for (int i = 0; i < 4; i++) y[m * N + n0 + i] = o[i][0] * scale[n0 + i] + (bias ? bias[n0 + i] : 0.f);
        }
    }
    for (int64_t n = tiles * NB; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            float o[1][1];
            int8_tile_1x1(x + m * K, K, q + n * K, o);
            y[m * N + n] = o[0][0] * scale[n] + (bias ? bias[n] : 0.f);
        }
}

/* ---- int4 -------------------------------------------------------------------------------------------- */

/* 16 weights from 8 bytes: low nibbles are weights 0..7, high nibbles 8..15 */
static inline void int4x16(const uint8_t *p, __m256 *lo, __m256 *hi) {
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    *lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
    *hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
}

/* NB channels x MB rows: out[i][j] = sum_g scale[i, g] * sum_{k in g} x[j, k] q[i, k]  (lows added by caller) */
#define INT4_TILE(NB, MB)                                                                                   \
    static void int4_tile_##NB##x##MB(const float *x, int64_t K, int64_t group, const uint8_t *q,           \
                                      const float *scale, float out[NB][MB]) {                             \
        const int64_t G = K / group;                                                                        \
        __m256 total[NB][MB];                                                                               \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) total[i][j] = _mm256_setzero_ps();                                 \
        for (int64_t g = 0; g < G; g++) {                                                                   \
            __m256 acc[NB][MB];                                                                             \
            for (int i = 0; i < NB; i++)                                                                    \
                for (int j = 0; j < MB; j++) acc[i][j] = _mm256_setzero_ps();                               \
            for (int64_t k = g * group; k < (g + 1) * group; k += 16) {                                     \
                __m256 xl[MB], xh[MB];                                                                      \
                for (int j = 0; j < MB; j++) {                                                              \
                    xl[j] = _mm256_loadu_ps(x + j * K + k);                                                 \
                    xh[j] = _mm256_loadu_ps(x + j * K + k + 8);                                             \
                }                                                                                           \
                for (int i = 0; i < NB; i++) {                                                              \
                    __m256 wl, wh;                                                                          \
                    int4x16(q + i * (K / 2) + k / 2, &wl, &wh);                                             \
                    for (int j = 0; j < MB; j++) {                                                          \
                        acc[i][j] = _mm256_fmadd_ps(wl, xl[j], acc[i][j]);                                  \
                        acc[i][j] = _mm256_fmadd_ps(wh, xh[j], acc[i][j]);                                  \
                    }                                                                                       \
                }                                                                                           \
            }                                                                                               \
            for (int i = 0; i < NB; i++) {                                                                  \
                __m256 s = _mm256_set1_ps(scale[i * G + g]);                                                \
                for (int j = 0; j < MB; j++) total[i][j] = _mm256_fmadd_ps(acc[i][j], s, total[i][j]);      \
            }                                                                                               \
        }                                                                                                   \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) out[i][j] = hsum(total[i][j]);                                     \
    }
INT4_TILE(4, 1)
INT4_TILE(2, 2)
INT4_TILE(1, 1)

/* the low term of channel n for a row: sum_g low[n, g] * xsum[g], in g order */
static inline float int4_lows(const float *low, const float *xsum, int64_t G) {
    float s = 0.f;
    for (int64_t g = 0; g < G; g++) s += low[g] * xsum[g];
    return s;
}

/* K % group == 0 and group % 16 == 0 (checked by the caller); returns 0, or -1 when out of memory */
int qwen3tts_int4_linear(const float *x, int64_t M, int64_t K, int64_t group, const uint8_t *q,
                         const float *scale, const float *low, const float *bias, int64_t N, float *y,
                         int threads) {
    const int64_t G = K / group, NB = M == 1 ? 4 : 2, tiles = N / NB;
    float *xsum = malloc(sizeof(float) * (size_t)(M * G));
    if (!xsum) return -1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < G; g++) {
            float s = 0.f;
            for (int64_t k = g * group; k < (g + 1) * group; k++) s += x[m * K + k];
            xsum[m * G + g] = s;
        }
#define INT4_PUT(row, n, value)                                                                             \
    y[(row) * N + (n)] = (value) + int4_lows(low + (n) * G, xsum + (row) * G, G) + (bias ? bias[n] : 0.f)
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t n0 = t * NB;
        const uint8_t *qt = q + n0 * (K / 2);
        const float *st = scale + n0 * G;
        int64_t m = 0;
        if (NB == 4) {
            float o[4][1];
            int4_tile_4x1(x, K, group, qt, st, o);
            for (int i = 0; i < 4; i++) INT4_PUT(0, n0 + i, o[i][0]);
            continue;
        }
        for (; m + 2 <= M; m += 2) {
            float o[2][2];
            int4_tile_2x2(x + m * K, K, group, qt, st, o);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) INT4_PUT(m + j, n0 + i, o[i][j]);
        }
        for (; m < M; m++)
            for (int i = 0; i < 2; i++) {
                float o[1][1];
                int4_tile_1x1(x + m * K, K, group, qt + i * (K / 2), st + i * G, o);
                INT4_PUT(m, n0 + i, o[0][0]);
            }
    }
    for (int64_t n = tiles * NB; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            float o[1][1];
            int4_tile_1x1(x + m * K, K, group, q + n * (K / 2), scale + n * G, o);
            INT4_PUT(m, n, o[0][0]);
        }
#undef INT4_PUT
    free(xsum);
    return 0;
}
