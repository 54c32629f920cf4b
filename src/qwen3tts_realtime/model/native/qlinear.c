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
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The loop every kernel shares: blocks of 8 output channels split over the threads; in each block, rows in pairs
 * through a 4-channel x 2-row tile (the block's two halves), the last odd row through an 8-channel x 1-row tile.
 * TILE2 fills `o` for rows m, m+1 and half h; TILE1 fills `o1` for row m; PUT(row, n, value) stores one output
 * (n < N: a block may be padded). The tiles sum each output in the same order, so results do not depend on M. */
#define BLOCK_LOOP(T, TILE2, TILE1, PUT)                                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                                        \
    for (int64_t t = 0; t < blocks; t++) {                                                                  \
        const int64_t n0 = t * 8;                                                                           \
        int64_t m = 0;                                                                                      \
        for (; M > 1 && m + 2 <= M; m += 2)                                                                 \
            for (int h = 0; h < 2; h++) {                                                                   \
                T o[4][2];                                                                                  \
                TILE2;                                                                                      \
                for (int i = 0; i < 4; i++)                                                                 \
                    for (int j = 0; j < 2; j++) PUT(m + j, n0 + h * 4 + i, o[i][j]);                        \
            }                                                                                               \
        for (; m < M; m++) {                                                                                \
            T o1[8][1];                                                                                     \
            TILE1;                                                                                          \
            for (int i = 0; i < 8; i++) PUT(m, n0 + i, o1[i][0]);                                           \
        }                                                                                                   \
    }

/* ---- int8 -------------------------------------------------------------------------------------------- *
 * Weights are stored tile-major: blocks of 8 output channels, and in each block runs of 8 inputs of each of the
 * 8 channels in turn ([ceil(N/8)][ceil(K/8)][8][8], zero-padded): one block is one contiguous stream of memory,
 * which the hardware prefetcher follows at full bandwidth (row-major rows of 1-3 KB read 8 at a time did not:
 * ~15 against ~29 GB/s at one row on a 2-core EPYC). */

static inline __m256 int8x8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* x[k .. k+8) of a row, zero-padded past K */
static inline __m256 xchunk(const float *x, int64_t k, int64_t K) {
    if (k + 8 <= K) return _mm256_loadu_ps(x + k);
    float tmp[8] = {0};
    for (int64_t i = k; i < K; i++) tmp[i - k] = x[i];
    return _mm256_loadu_ps(tmp);
}

/* one block (8 channels) x one row; or channels [h, h + 4) x two rows */
static void int8_block_1(const float *x, int64_t K, const int8_t *qb, float out[8][1]) {
    __m256 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t c = 0, k = 0; k < K; c++, k += 8) {
        const __m256 xv = xchunk(x, k, K);
        const int8_t *qc = qb + c * 64;
        _mm_prefetch((const char *)(qc + 1024), _MM_HINT_T0);
        for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(int8x8(qc + i * 8), xv, acc[i]);
    }
    for (int i = 0; i < 8; i++) out[i][0] = hsum(acc[i]);
}

static void int8_half_2(const float *x, int64_t K, const int8_t *qb, int h, float out[4][2]) {
    __m256 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t c = 0, k = 0; k < K; c++, k += 8) {
        const __m256 x0 = xchunk(x, k, K), x1 = xchunk(x + K, k, K);
        const int8_t *qc = qb + c * 64 + h * 32;
        for (int i = 0; i < 4; i++) {
            const __m256 w = int8x8(qc + i * 8);
            acc[i][0] = _mm256_fmadd_ps(w, x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(w, x1, acc[i][1]);
        }
    }
    for (int i = 0; i < 4; i++) out[i][0] = hsum(acc[i][0]), out[i][1] = hsum(acc[i][1]);
}

void qwen3tts_int8_linear(const float *x, int64_t M, int64_t K, const int8_t *q, const float *scale,
                          const float *bias, int64_t N, float *y, int threads) {
    const int64_t blocks = (N + 7) / 8, block_bytes = 8 * ((K + 7) / 8) * 8;
#define PUT(row, n, value) \
    if ((n) < N) y[(row) * N + (n)] = (value) * scale[n] + (bias ? bias[n] : 0.f)
    BLOCK_LOOP(float, int8_half_2(x + m * K, K, q + t * block_bytes, h, o),
               int8_block_1(x + m * K, K, q + t * block_bytes, o1), PUT)
#undef PUT
}

/* ---- int4 -------------------------------------------------------------------------------------------- *
 * Tile-major like int8: [ceil(N/8)][K/16][8 channels][8 bytes]; the 8 bytes of a channel hold 16 inputs, input j
 * in the low nibble of byte j and input j + 8 in its high nibble. Scales and lows stay [N, K/group]. */

static inline void int4x16(const uint8_t *p, __m256 *lo, __m256 *hi) {
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    *lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
    *hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
}

/* channels [h*NB, h*NB + NB) of a block x MB rows: out = sum_g scale_g * (sum_{k in g} x q) (lows added later) */
#define INT4_TILE(NB, MB)                                                                                   \
    static void int4_tile_##NB##x##MB(const float *x, int64_t K, int64_t group, const uint8_t *qb, int h,    \
                                      const float *scale, int64_t G, int64_t n0, int64_t N,                 \
                                      float out[NB][MB]) {                                                  \
        __m256 total[NB][MB];                                                                               \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) total[i][j] = _mm256_setzero_ps();                                 \
        for (int64_t g = 0; g < G; g++) {                                                                   \
            __m256 acc[NB][MB];                                                                             \
            for (int i = 0; i < NB; i++)                                                                    \
                for (int j = 0; j < MB; j++) acc[i][j] = _mm256_setzero_ps();                               \
            for (int64_t k = g * group; k < (g + 1) * group; k += 16) {                                     \
                const uint8_t *qc = qb + (k / 16) * 64 + h * NB * 8;                                        \
                __m256 xl[MB], xh[MB];                                                                      \
                for (int j = 0; j < MB; j++) {                                                              \
                    xl[j] = _mm256_loadu_ps(x + j * K + k);                                                 \
                    xh[j] = _mm256_loadu_ps(x + j * K + k + 8);                                             \
                }                                                                                           \
                for (int i = 0; i < NB; i++) {                                                              \
                    __m256 wl, wh;                                                                          \
                    int4x16(qc + i * 8, &wl, &wh);                                                          \
                    for (int j = 0; j < MB; j++)                                                            \
                        acc[i][j] = _mm256_fmadd_ps(wh, xh[j], _mm256_fmadd_ps(wl, xl[j], acc[i][j]));      \
                }                                                                                           \
            }                                                                                               \
            for (int i = 0; i < NB; i++) {                                                                  \
                const int64_t n = n0 + h * NB + i;                                                          \
                const __m256 s = _mm256_set1_ps(n < N ? scale[n * G + g] : 0.f);                            \
                for (int j = 0; j < MB; j++) total[i][j] = _mm256_fmadd_ps(acc[i][j], s, total[i][j]);      \
            }                                                                                               \
        }                                                                                                   \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) out[i][j] = hsum(total[i][j]);                                     \
    }
INT4_TILE(8, 1)
INT4_TILE(4, 2)

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
    const int64_t G = K / group, blocks = (N + 7) / 8, block_bytes = 8 * (K / 2);
    float *xsum = malloc(sizeof(float) * (size_t)(M * G));
    if (!xsum) return -1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < G; g++) {
            float s = 0.f;
            for (int64_t k = g * group; k < (g + 1) * group; k++) s += x[m * K + k];
            xsum[m * G + g] = s;
        }
#define INT4_PUT(row, n, value)                                                                             \
    if ((n) < N)                                                                                            \
    y[(row) * N + (n)] = (value) + int4_lows(low + (n) * G, xsum + (row) * G, G) + (bias ? bias[n] : 0.f)
    BLOCK_LOOP(float, int4_tile_4x2(x + m * K, K, group, q + t * block_bytes, h, scale, G, n0, N, o),
               int4_tile_8x1(x + m * K, K, group, q + t * block_bytes, 0, scale, G, n0, N, o1), INT4_PUT)
#undef INT4_PUT
    free(xsum);
    return 0;
}

/* ---- int16 activations: integer dot products ----------------------------------------------------------- *
 * The same int8 and int4 weights against activations rounded per row to 14-bit integers (each row scaled by its
 * own max |x| / 8191): vpmaddwd multiplies 16 int16 pairs and adds neighbours in one instruction, about twice the
 * work per instruction of converting each weight to float, which is what bounds the float32 kernels above at
 * several rows (and int4 at one). Sums are exact int32 (14-bit activations keep them below 2^31 for K up to
 * 16384 with int8 weights), so a row's result depends on that row alone.
 * Layouts (tile-major, zero-padded): int8 [ceil(N/8)][ceil(K/16)][8][16]; int4 [ceil(N/8)][K/32][8][16], a
 * channel's 16 bytes holding inputs j (low nibble) and j + 16 (high nibble) of a run of 32. */

#define ACT_LEVELS 8191.f

/* rows of x as int16 with one scale per row; returns the buffer (NULL: out of memory) */
static int16_t *quantize_rows(const float *x, int64_t M, int64_t K, int64_t Kp, float *row_scale) {
    int16_t *q = calloc((size_t)(M * Kp), sizeof(int16_t));
    if (!q) return NULL;
    for (int64_t m = 0; m < M; m++) {
        const float *r = x + m * K;
        float top = 0.f;
        int finite = 1;
        for (int64_t k = 0; k < K; k++) {
            finite &= isfinite(r[k]) != 0;
            top = fabsf(r[k]) > top ? fabsf(r[k]) : top;
        }
        if (!finite) { /* a row with NaN or infinity: its outputs are NaN (the row scale), as float math gives */
            row_scale[m] = NAN;
            continue;
        }
        const float s = top > 0.f ? top / ACT_LEVELS : 1.f, inv = 1.f / s;
        row_scale[m] = s;
        for (int64_t k = 0; k < K; k++) q[m * Kp + k] = (int16_t)lrintf(r[k] * inv);
    }
    return q;
}

static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* channels [h*NB, h*NB + NB) of an int8 block x MB rows of int16 activations: exact integer dot products */
#define I8A16_TILE(NB, MB)                                                                                  \
    static void i8a16_tile_##NB##x##MB(const int16_t *x, int64_t Kp, const int8_t *qb, int h,              \
                                       int32_t out[NB][MB]) {                                              \
        __m256i acc[NB][MB];                                                                                \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) acc[i][j] = _mm256_setzero_si256();                                \
        for (int64_t c = 0; c < Kp / 16; c++) {                                                             \
            const int8_t *qc = qb + c * 128 + h * NB * 16;                                                  \
            _mm_prefetch((const char *)(qc + 1024), _MM_HINT_T0);                                           \
            __m256i xv[MB];                                                                                 \
            for (int j = 0; j < MB; j++) xv[j] = _mm256_loadu_si256((const __m256i *)(x + j * Kp + c * 16)); \
            for (int i = 0; i < NB; i++) {                                                                  \
                const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(qc + i * 16)));    \
                for (int j = 0; j < MB; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(w, xv[j])); \
            }                                                                                               \
        }                                                                                                   \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) out[i][j] = hsum_i32(acc[i][j]);                                   \
    }
I8A16_TILE(8, 1)
I8A16_TILE(4, 2)

int qwen3tts_int8_linear_a16(const float *x, int64_t M, int64_t K, const int8_t *q, const float *scale,
                             const float *bias, int64_t N, float *y, int threads) {
    const int64_t Kp = (K + 15) / 16 * 16, blocks = (N + 7) / 8, block_bytes = 8 * Kp;
    float *sx = malloc(sizeof(float) * (size_t)M);
    int16_t *xq = sx ? quantize_rows(x, M, K, Kp, sx) : NULL;
    if (!xq) return free(sx), -1;
#define A16_PUT(row, n, acc) \
    if ((n) < N) y[(row) * N + (n)] = ((float)(acc) * sx[row]) * scale[n] + (bias ? bias[n] : 0.f)
    BLOCK_LOOP(int32_t, i8a16_tile_4x2(xq + m * Kp, Kp, q + t * block_bytes, h, o),
               i8a16_tile_8x1(xq + m * Kp, Kp, q + t * block_bytes, 0, o1), A16_PUT)
#undef A16_PUT
    free(xq), free(sx);
    return 0;
}

/* int4 x int16: per group, exact integer sums; then the group's scale in float, in group order */
#define I4A16_TILE(NB, MB)                                                                                  \
    static void i4a16_tile_##NB##x##MB(const int16_t *x, int64_t K, int64_t group, const uint8_t *qb, int h, \
                                       const float *scale, int64_t G, int64_t n0, int64_t N,               \
                                       float out[NB][MB]) {                                                \
        __m256 total[NB][MB];                                                                               \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) total[i][j] = _mm256_setzero_ps();                                 \
        const __m256i low4 = _mm256_set1_epi16(15);                                                         \
        for (int64_t g = 0; g < G; g++) {                                                                   \
            __m256i acc[NB][MB];                                                                            \
            for (int i = 0; i < NB; i++)                                                                    \
                for (int j = 0; j < MB; j++) acc[i][j] = _mm256_setzero_si256();                            \
            for (int64_t k = g * group; k < (g + 1) * group; k += 32) {                                     \
                const uint8_t *qc = qb + (k / 32) * 128 + h * NB * 16;                                      \
                __m256i xl[MB], xh[MB];                                                                     \
                for (int j = 0; j < MB; j++) {                                                              \
                    xl[j] = _mm256_loadu_si256((const __m256i *)(x + j * K + k));                           \
                    xh[j] = _mm256_loadu_si256((const __m256i *)(x + j * K + k + 16));                      \
                }                                                                                           \
                for (int i = 0; i < NB; i++) {                                                              \
                    const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(qc + i * 16))); \
                    const __m256i wl = _mm256_and_si256(v, low4), wh = _mm256_srli_epi16(v, 4);             \
                    for (int j = 0; j < MB; j++)                                                            \
                        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_add_epi32(_mm256_madd_epi16(wl, xl[j]), \
                                                                                 _mm256_madd_epi16(wh, xh[j]))); \
                }                                                                                           \
            }                                                                                               \
            for (int i = 0; i < NB; i++) {                                                                  \
                const int64_t n = n0 + h * NB + i;                                                          \
                const __m256 s = _mm256_set1_ps(n < N ? scale[n * G + g] : 0.f);                            \
                for (int j = 0; j < MB; j++)                                                                \
                    total[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i][j]), s, total[i][j]);           \
            }                                                                                               \
        }                                                                                                   \
        for (int i = 0; i < NB; i++)                                                                        \
            for (int j = 0; j < MB; j++) out[i][j] = hsum(total[i][j]);                                     \
    }
I4A16_TILE(8, 1)
I4A16_TILE(4, 2)

/* K % group == 0 and group % 32 == 0 (checked by the caller) */
int qwen3tts_int4_linear_a16(const float *x, int64_t M, int64_t K, int64_t group, const uint8_t *q,
                             const float *scale, const float *low, const float *bias, int64_t N, float *y,
                             int threads) {
    const int64_t G = K / group, blocks = (N + 7) / 8, block_bytes = 8 * (K / 2);
    float *sx = malloc(sizeof(float) * (size_t)M), *xsum = malloc(sizeof(float) * (size_t)(M * G));
    int16_t *xq = sx && xsum ? quantize_rows(x, M, K, K, sx) : NULL;
    if (!xq) return free(sx), free(xsum), -1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < G; g++) {
            int32_t s = 0;
            for (int64_t k = g * group; k < (g + 1) * group; k++) s += xq[m * K + k];
            xsum[m * G + g] = (float)s * sx[m];
        }
#define A16_PUT(row, n, value)                                                                              \
    if ((n) < N)                                                                                            \
    y[(row) * N + (n)] = (value) * sx[row] + int4_lows(low + (n) * G, xsum + (row) * G, G) + (bias ? bias[n] : 0.f)
    BLOCK_LOOP(float, i4a16_tile_4x2(xq + m * K, K, group, q + t * block_bytes, h, scale, G, n0, N, o),
               i4a16_tile_8x1(xq + m * K, K, group, q + t * block_bytes, 0, scale, G, n0, N, o1), A16_PUT)
#undef A16_PUT
    free(xq), free(sx), free(xsum);
    return 0;
}

/* ---- a whole decoder stack (Qwen3: pre-norm, q/k RMSNorm, rotate-half RoPE, GQA, SwiGLU) -------------------
 *
 * One call runs every layer and the final norm for B rows of T new positions each; row b's positions are
 * start[b] .. start[b] + T - 1 and it attends causally to its own cache row. The math is the module's
 * (model/transformer.py), in float32, with every linear one of the kernels above: the Python per-operation
 * overhead of ~60 small torch ops per layer (about half of a quantized code predictor's time) becomes one call.
 * Each row is computed from that row alone, in a fixed order: batched == alone still holds bit for bit.
 */

typedef struct {
    int64_t bits, act, out, in, group; /* bits 8: q int8, scale [out]; 4: q int4, scale/low [out, in/group];
                                          act 32: float32 activations, 16: int16 (the layouts above) */
    const void *q;
    const float *scale, *low;
} qwen3tts_qweight;

typedef struct {
    const float *input_norm, *post_norm, *q_norm, *k_norm;
    qwen3tts_qweight qkv, o, gate_up, down;
} qwen3tts_layer;

typedef struct {
    int64_t layers, hidden, heads, kv_heads, head_dim, intermediate;
    float eps;
    const qwen3tts_layer *layer;
    const float *final_norm;
} qwen3tts_stack;

static int run_linear(const qwen3tts_qweight *w, const float *x, int64_t M, float *y, int threads) {
    if (w->act == 16)
        return w->bits == 8 ? qwen3tts_int8_linear_a16(x, M, w->in, (const int8_t *)w->q, w->scale, 0, w->out, y,
                                                      threads)
                            : qwen3tts_int4_linear_a16(x, M, w->in, w->group, (const uint8_t *)w->q, w->scale,
                                                      w->low, 0, w->out, y, threads);
    if (w->bits == 8) {
        qwen3tts_int8_linear(x, M, w->in, (const int8_t *)w->q, w->scale, 0, w->out, y, threads);
        return 0;
    }
    return qwen3tts_int4_linear(x, M, w->in, w->group, (const uint8_t *)w->q, w->scale, w->low, 0, w->out, y,
                                threads);
}

/* exp for AVX2, Cephes' polynomial on the reduced argument (relative error ~1e-7 over the float range) */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline float dot(const float *a, const float *b, int64_t n) { /* n % 8 == 0 */
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    return hsum(acc);
}

/* out = weight * x / sqrt(mean(x^2) + eps), n % 8 == 0 */
static void rms_norm(const float *x, const float *weight, int64_t n, float eps, float *out) {
    float inv = 1.f / sqrtf(dot(x, x, n) / (float)n + eps);
    __m256 s = _mm256_set1_ps(inv);
    for (int64_t i = 0; i < n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), s)));
}

/* rotate-half RoPE in place: x * cos + roll(x, hd / 2) * signed_sin */
static void rope(float *x, const float *cos, const float *ssin, int64_t hd) {
    float tmp[512];
    const int64_t half = hd / 2;
    for (int64_t i = 0; i < hd; i++) tmp[i] = x[(i + half) % hd];
    for (int64_t i = 0; i < hd; i += 8)
        _mm256_storeu_ps(x + i, _mm256_fmadd_ps(_mm256_loadu_ps(tmp + i), _mm256_loadu_ps(ssin + i),
                                                _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(cos + i))));
}

/* returns 0, -1 out of memory, -2 unsupported shape */
int qwen3tts_stack_forward(const qwen3tts_stack *s, const float *x_in, float *x_out, int64_t B, int64_t T,
                           const int64_t *start, float *const *k_cache, float *const *v_cache,
                           const int64_t *cache_strides, const float *cos, const float *ssin, int threads) {
    const int64_t D = s->hidden, H = s->heads, KVH = s->kv_heads, hd = s->head_dim, I = s->intermediate;
    const int64_t BT = B * T, QKV = (H + 2 * KVH) * hd, rep = H / KVH;
    const int64_t s0 = cache_strides[0], s1 = cache_strides[1], s2 = cache_strides[2];
    if (D % 8 || hd % 8 || hd > 512 || H % KVH) return -2;
    int64_t span = 0;
    for (int64_t b = 0; b < B; b++) span = start[b] + T > span ? start[b] + T : span;
    float *h = malloc(sizeof(float) * BT * D), *qkv = malloc(sizeof(float) * BT * QKV);
    float *att = malloc(sizeof(float) * BT * H * hd), *gu = malloc(sizeof(float) * BT * 2 * I);
    float *act = malloc(sizeof(float) * BT * I), *proj = malloc(sizeof(float) * BT * D);
    /* attention scores: one row of `span` per thread (a long prompt's [T, span] per head would be large) */
    float *scores = malloc(sizeof(float) * (size_t)threads * span);
    int status = (h && qkv && att && gu && act && proj && scores) ? 0 : -1;
    const float scale = 1.f / sqrtf((float)hd);
    float *x = x_out;
    if (!status) memcpy(x, x_in, sizeof(float) * BT * D);
    for (int64_t l = 0; l < s->layers && !status; l++) {
        const qwen3tts_layer *L = s->layer + l;
        for (int64_t r = 0; r < BT; r++) rms_norm(x + r * D, L->input_norm, D, s->eps, h + r * D);
        if ((status = run_linear(&L->qkv, h, BT, qkv, threads))) break;
        /* q/k norm, RoPE, the new keys and values into the cache */
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                const int64_t pos = start[b] + t;
                float *row = qkv + (b * T + t) * QKV;
                for (int64_t j = 0; j < H + KVH; j++) {
                    float *head = row + j * hd;
                    rms_norm(head, j < H ? L->q_norm : L->k_norm, hd, s->eps, head);
                    rope(head, cos + pos * hd, ssin + pos * hd, hd);
                }
                for (int64_t j = 0; j < KVH; j++) {
                    float *kd = k_cache[l] + b * s0 + j * s1 + pos * s2, *vd = v_cache[l] + b * s0 + j * s1 + pos * s2;
                    for (int64_t d = 0; d < hd; d++) {
                        kd[d] = row[(H + j) * hd + d];
                        vd[d] = row[(H + KVH + j) * hd + d];
                    }
                }
            }
        /* attention: each (row, head, new position) over its cache row, causally */
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++)
                for (int64_t t = 0; t < T; t++) {
                    const int64_t n = start[b] + t + 1;
                    const float *q = qkv + (b * T + t) * QKV + j * hd;
                    const float *kb = k_cache[l] + b * s0 + (j / rep) * s1, *vb = v_cache[l] + b * s0 + (j / rep) * s1;
                    float *p = scores + (int64_t)omp_get_thread_num() * span, top = -INFINITY, sum = 0.f;
                    for (int64_t i = 0; i < n; i++) {
                        p[i] = dot(q, kb + i * s2, hd) * scale;
                        top = p[i] > top ? p[i] : top;
                    }
                    int64_t i = 0;
                    for (; i + 8 <= n; i += 8)
                        _mm256_storeu_ps(p + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(p + i), _mm256_set1_ps(top))));
                    for (; i < n; i++) p[i] = expf(p[i] - top);
                    for (i = 0; i < n; i++) sum += p[i];
                    float *o = att + (b * T + t) * H * hd + j * hd;
                    for (int64_t d = 0; d < hd; d += 8) {
                        __m256 acc = _mm256_setzero_ps();
                        for (i = 0; i < n; i++)
                            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[i]), _mm256_loadu_ps(vb + i * s2 + d), acc);
                        _mm256_storeu_ps(o + d, _mm256_div_ps(acc, _mm256_set1_ps(sum)));
                    }
                }
        if ((status = run_linear(&L->o, att, BT, proj, threads))) break;
        for (int64_t i = 0; i < BT * D; i++) x[i] += proj[i];
        for (int64_t r = 0; r < BT; r++) rms_norm(x + r * D, L->post_norm, D, s->eps, h + r * D);
        if ((status = run_linear(&L->gate_up, h, BT, gu, threads))) break;
        for (int64_t r = 0; r < BT; r++) {
            const float *g = gu + r * 2 * I, *u = g + I;
            float *a = act + r * I;
            int64_t i = 0;
            for (; i + 8 <= I; i += 8) {
                __m256 gv = _mm256_loadu_ps(g + i);
                __m256 sig = _mm256_add_ps(_mm256_set1_ps(1.f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), gv)));
                _mm256_storeu_ps(a + i, _mm256_mul_ps(_mm256_div_ps(gv, sig), _mm256_loadu_ps(u + i)));
            }
            for (; i < I; i++) a[i] = g[i] / (1.f + expf(-g[i])) * u[i];
        }
        if ((status = run_linear(&L->down, act, BT, proj, threads))) break;
        for (int64_t i = 0; i < BT * D; i++) x[i] += proj[i];
    }
    if (!status)
        for (int64_t r = 0; r < BT; r++) rms_norm(x + r * D, s->final_norm, D, s->eps, x + r * D);
    free(h), free(qkv), free(att), free(gu), free(act), free(proj), free(scores);
    return status;
}
