/* The float16 products of `textgen/_halfmatmul.c`, also used by the fused GRU step of `textgen/_gru.c`:
 * out = x @ w for float32 rows x (rows, n_in) and a float16 matrix w (n_in, n_out), summed in float32.
 * Include it after <Python.h>; call `choose_half_kernels()` once when the module loads, then
 * `half_kernels[0].run` is the fastest kernel this CPU has. */
#ifndef CHATSMITH_HALFMATMUL_KERNELS_H
#define CHATSMITH_HALFMATMUL_KERNELS_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

typedef void (*matmul_fn)(const float *x, const uint16_t *w, float *out, Py_ssize_t rows, Py_ssize_t n_in,
                          Py_ssize_t n_out);

/* IEEE half to float, exactly (subnormals, infinities and NaN included). */
static float half_to_float(uint16_t half) {
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1fu) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* Subnormal: normalise the mantissa. */
        exponent = 113u;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static void matmul_generic(const float *x, const uint16_t *w, float *out, Py_ssize_t rows, Py_ssize_t n_in,
                           Py_ssize_t n_out) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        float *o = out + r * n_out;
        for (Py_ssize_t j = 0; j < n_out; j++) o[j] = 0.0f;
        for (Py_ssize_t i = 0; i < n_in; i++) {
            float xi = x[r * n_in + i];
            const uint16_t *wi = w + i * n_out;
            for (Py_ssize_t j = 0; j < n_out; j++) o[j] += xi * half_to_float(wi[j]);
        }
    }
}

#if HAVE_X86

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))
#define AVX2 __attribute__((target("avx2,f16c,fma")))

AVX512 static inline __m512 load16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* Columns [j, j + count) with count < 16, for `rows` rows (at most 4), by masked loads and stores. */
AVX512 static void tail512(const float *x, const uint16_t *w, float *out, Py_ssize_t rows, Py_ssize_t n_in,
                           Py_ssize_t n_out, Py_ssize_t j, Py_ssize_t count) {
    __mmask16 mask = (__mmask16)((1u << count) - 1u);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (Py_ssize_t i = 0; i < n_in; i++) {
        __m512 wi = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w + i * n_out + j));
        for (Py_ssize_t r = 0; r < rows; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * n_in + i]), wi, acc[r]);
    }
    for (Py_ssize_t r = 0; r < rows; r++) _mm512_mask_storeu_ps(out + r * n_out + j, mask, acc[r]);
}

/* One row: 128 columns at a time, eight independent sums (enough to keep both FMA ports busy); constant
 * loops the compiler unrolls, so the sums stay in registers. */
AVX512 static void row512(const float *x, const uint16_t *w, float *out, Py_ssize_t n_in, Py_ssize_t n_out) {
    Py_ssize_t j = 0;
    for (; j + 128 <= n_out; j += 128) {
        __m512 acc[8];
        for (int c = 0; c < 8; c++) acc[c] = _mm512_setzero_ps();
        for (Py_ssize_t i = 0; i < n_in; i++) {
            const uint16_t *p = w + i * n_out + j;
            __m512 xi = _mm512_set1_ps(x[i]);
            for (int c = 0; c < 8; c++) acc[c] = _mm512_fmadd_ps(xi, load16(p + 16 * c), acc[c]);
        }
        for (int c = 0; c < 8; c++) _mm512_storeu_ps(out + j + 16 * c, acc[c]);
    }
    for (; j + 16 <= n_out; j += 16) tail512(x, w, out, 1, n_in, n_out, j, 16);
    if (j < n_out) tail512(x, w, out, 1, n_in, n_out, j, n_out - j);
}

/* Four rows (a batch of requests): each weight widened once serves four sums (widening, one instruction
 * per 16 weights, is what bounds a single row's product). */
AVX512 static void rows4_512(const float *x, const uint16_t *w, float *out, Py_ssize_t n_in, Py_ssize_t n_out) {
    const float *x0 = x, *x1 = x + n_in, *x2 = x + 2 * n_in, *x3 = x + 3 * n_in;
    Py_ssize_t j = 0;
    for (; j + 64 <= n_out; j += 64) {
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
        for (Py_ssize_t i = 0; i < n_in; i++) {
            const uint16_t *p = w + i * n_out + j;
            __m512 w0 = load16(p), w1 = load16(p + 16), w2 = load16(p + 32), w3 = load16(p + 48);
            __m512 xs[4] = {_mm512_set1_ps(x0[i]), _mm512_set1_ps(x1[i]), _mm512_set1_ps(x2[i]),
                            _mm512_set1_ps(x3[i])};
            for (int r = 0; r < 4; r++) {
                acc[r][0] = _mm512_fmadd_ps(xs[r], w0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(xs[r], w1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(xs[r], w2, acc[r][2]);
                acc[r][3] = _mm512_fmadd_ps(xs[r], w3, acc[r][3]);
            }
        }
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) _mm512_storeu_ps(out + r * n_out + j + 16 * c, acc[r][c]);
    }
    for (; j + 16 <= n_out; j += 16) tail512(x, w, out, 4, n_in, n_out, j, 16);
    if (j < n_out) tail512(x, w, out, 4, n_in, n_out, j, n_out - j);
}

/* Two rows (a reply reading a message beside the zero state, two requests): 128 columns at a time. */
AVX512 static void rows2_512(const float *x, const uint16_t *w, float *out, Py_ssize_t n_in, Py_ssize_t n_out) {
    const float *x0 = x, *x1 = x + n_in;
    Py_ssize_t j = 0;
    for (; j + 128 <= n_out; j += 128) {
        __m512 acc[2][8];
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 8; c++) acc[r][c] = _mm512_setzero_ps();
        for (Py_ssize_t i = 0; i < n_in; i++) {
            const uint16_t *p = w + i * n_out + j;
            __m512 first = _mm512_set1_ps(x0[i]), second = _mm512_set1_ps(x1[i]);
            for (int c = 0; c < 8; c++) {
                __m512 wc = load16(p + 16 * c);
                acc[0][c] = _mm512_fmadd_ps(first, wc, acc[0][c]);
                acc[1][c] = _mm512_fmadd_ps(second, wc, acc[1][c]);
            }
        }
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 8; c++) _mm512_storeu_ps(out + r * n_out + j + 16 * c, acc[r][c]);
    }
    for (; j + 16 <= n_out; j += 16) tail512(x, w, out, 2, n_in, n_out, j, 16);
    if (j < n_out) tail512(x, w, out, 2, n_in, n_out, j, n_out - j);
}

AVX512 static void matmul_avx512(const float *x, const uint16_t *w, float *out, Py_ssize_t rows, Py_ssize_t n_in,
                                 Py_ssize_t n_out) {
    Py_ssize_t r = 0;
    for (; r + 4 <= rows; r += 4) rows4_512(x + r * n_in, w, out + r * n_out, n_in, n_out);
    for (; r + 2 <= rows; r += 2) rows2_512(x + r * n_in, w, out + r * n_out, n_in, n_out);
    for (; r < rows; r++) row512(x + r * n_in, w, out + r * n_out, n_in, n_out);
}

AVX2 static inline __m256 load8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* One row: 64 columns at a time, eight independent sums; the last columns one at a time. */
AVX2 static void row256(const float *x, const uint16_t *w, float *out, Py_ssize_t n_in, Py_ssize_t n_out) {
    Py_ssize_t j = 0;
    for (; j + 64 <= n_out; j += 64) {
        __m256 acc[8];
        for (int c = 0; c < 8; c++) acc[c] = _mm256_setzero_ps();
        for (Py_ssize_t i = 0; i < n_in; i++) {
            const uint16_t *p = w + i * n_out + j;
            __m256 xi = _mm256_set1_ps(x[i]);
            for (int c = 0; c < 8; c++) acc[c] = _mm256_fmadd_ps(xi, load8(p + 8 * c), acc[c]);
        }
        for (int c = 0; c < 8; c++) _mm256_storeu_ps(out + j + 8 * c, acc[c]);
    }
    for (; j + 8 <= n_out; j += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (Py_ssize_t i = 0; i < n_in; i++) acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i]), load8(w + i * n_out + j), acc);
        _mm256_storeu_ps(out + j, acc);
    }
    for (; j < n_out; j++) {
        float sum = 0.0f;
        for (Py_ssize_t i = 0; i < n_in; i++) sum += x[i] * _cvtsh_ss(w[i * n_out + j]);
        out[j] = sum;
    }
}

AVX2 static void matmul_avx2(const float *x, const uint16_t *w, float *out, Py_ssize_t rows, Py_ssize_t n_in,
                             Py_ssize_t n_out) {
    for (Py_ssize_t r = 0; r < rows; r++) row256(x + r * n_in, w, out + r * n_out, n_in, n_out);
}

#endif


/* The kernels this CPU can run, fastest first (`choose_half_kernels` fills them in); the first is used. */
typedef struct {
    const char *name;
    matmul_fn run;
} HalfKernel;
static HalfKernel half_kernels[3];
static int half_kernel_count = 0;

static void choose_half_kernels(void) {
    half_kernel_count = 0;
#if HAVE_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        half_kernels[half_kernel_count++] = (HalfKernel){"avx512", matmul_avx512};
    if (avx2) half_kernels[half_kernel_count++] = (HalfKernel){"avx2", matmul_avx2};
#endif
    half_kernels[half_kernel_count++] = (HalfKernel){"generic", matmul_generic};
}

#endif
