/* x @ w for float32 rows x and a float16 matrix w, in float32: `textgen.half_weights.HalfMatrix`.
 *
 * A reply is decoded one token at a time, and each step multiplies one row by the recurrent kernel and by
 * the output kernel. For a 384-unit GRU over bytes those two are 2.2 MB of float32: more than a core's
 * 2 MB L2 cache, so every step streams both from L3, and the products cost about twice what either does
 * alone. Kept as float16 they are 1.1 MB and stay in L2. Each weight is widened to float32 as it is read
 * (exactly: every float16 is a float32) and the sums are float32, as the float32 product's are; only the
 * weights' rounding to float16 (a relative 2^-11 at most) differs.
 *
 * Kernels: AVX-512 (F, BW, VL with F16C and FMA) or AVX2 (with F16C and FMA), chosen when the module
 * loads from what the CPU has; elsewhere a portable loop, "generic" (correct, not fast: chatsmith keeps
 * float32 weights there). Arrays come in through the buffer protocol (no NumPy
 * headers are needed to build it); the GIL is released while a product runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_halfmatmul_kernels.h"

static int buffer_of(PyObject *object, Py_buffer *view, const char *format, const char *name, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0) return -1;
    if (strcmp(view->format, format) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be %s", name, format[0] == 'e' ? "float16" : "float32");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(matmul_doc,
             "matmul(x, w, out, rows, n_in, n_out, kernel=None)\n--\n\n"
             "out = x @ w: x float32 (rows, n_in), w float16 (n_in, n_out), out float32 (rows, n_out), all\n"
             "C-contiguous. `kernel` names one of `kernels()` (to test each); by default the fastest.");

static PyObject *matmul(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"x", "w", "out", "rows", "n_in", "n_out", "kernel", NULL};
    PyObject *x_object, *w_object, *out_object;
    Py_ssize_t rows, n_in, n_out;
    const char *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOnnn|z", keywords, &x_object, &w_object, &out_object, &rows,
                                     &n_in, &n_out, &name))
        return NULL;
    matmul_fn run = half_kernels[0].run;
    if (name != NULL) {
        run = NULL;
        for (int k = 0; k < half_kernel_count; k++)
            if (strcmp(half_kernels[k].name, name) == 0) run = half_kernels[k].run;
        if (run == NULL) {
            PyErr_Format(PyExc_ValueError, "matmul: this CPU has no %s kernel", name);
            return NULL;
        }
    }
    if (rows < 0 || n_in < 0 || n_out < 0) {
        PyErr_SetString(PyExc_ValueError, "matmul: negative shape");
        return NULL;
    }
    Py_buffer x, w, out;
    if (buffer_of(x_object, &x, "f", "x", 0) < 0) return NULL;
    if (buffer_of(w_object, &w, "e", "w", 0) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (buffer_of(out_object, &out, "f", "out", 1) < 0) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&w);
        return NULL;
    }
    PyObject *result = NULL;
    if (x.len != rows * n_in * 4 || w.len != n_in * n_out * 2 || out.len != rows * n_out * 4) {
        PyErr_SetString(PyExc_ValueError, "matmul: the buffers do not have the shapes given");
    } else {
        Py_BEGIN_ALLOW_THREADS run((const float *)x.buf, (const uint16_t *)w.buf, (float *)out.buf, rows, n_in, n_out);
        Py_END_ALLOW_THREADS result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&w);
    PyBuffer_Release(&out);
    return result;
}

#if HAVE_X86
/* float32 to float16, rounding to nearest even (as NumPy's `astype(float16)`), 16 at a time. */
__attribute__((target("avx512f,f16c"))) static void to_half_avx512(const float *src, uint16_t *dst, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("avx2,f16c"))) static void to_half_avx2(const float *src, uint16_t *dst, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#endif

PyDoc_STRVAR(to_half_doc,
             "to_half(src, dst, n)\n--\n\n"
             "dst = src rounded to float16 (to nearest even, as NumPy's astype): src float32, dst float16,\n"
             "both C-contiguous with n values. The vector kernels only (`kernels()`): elsewhere NumPy does it.\n"
             "Loading a model for replies rounds 0.5 M weights; NumPy's cast takes 0.8 ms for them.");

static PyObject *to_half(PyObject *self, PyObject *args) {
    PyObject *src_object, *dst_object;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOn", &src_object, &dst_object, &n)) return NULL;
    Py_buffer src, dst;
    if (buffer_of(src_object, &src, "f", "src", 0) < 0) return NULL;
    if (buffer_of(dst_object, &dst, "e", "dst", 1) < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    PyObject *result = NULL;
    if (n < 0 || src.len != n * 4 || dst.len != n * 2) {
        PyErr_SetString(PyExc_ValueError, "to_half: the buffers do not hold n values");
#if HAVE_X86
    } else if (strcmp(half_kernels[0].name, "avx512") == 0) {
        Py_BEGIN_ALLOW_THREADS to_half_avx512(src.buf, dst.buf, n);
        Py_END_ALLOW_THREADS result = Py_NewRef(Py_None);
    } else if (strcmp(half_kernels[0].name, "avx2") == 0) {
        Py_BEGIN_ALLOW_THREADS to_half_avx2(src.buf, dst.buf, n);
        Py_END_ALLOW_THREADS result = Py_NewRef(Py_None);
#endif
    } else {
        PyErr_SetString(PyExc_RuntimeError, "to_half: this CPU has no vector kernel; use NumPy's astype");
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

PyDoc_STRVAR(kernels_doc, "kernels()\n--\n\nThe kernels this CPU can run, the one `matmul` uses first:\n"
                          "'avx512', 'avx2', 'generic'.");

static PyObject *list_kernels(PyObject *self, PyObject *unused) {
    PyObject *names = PyTuple_New(half_kernel_count);
    if (names == NULL) return NULL;
    for (int k = 0; k < half_kernel_count; k++) {
        PyObject *name = PyUnicode_FromString(half_kernels[k].name);
        if (name == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, k, name);
    }
    return names;
}

static PyMethodDef methods[] = {
    {"matmul", (PyCFunction)(void (*)(void))matmul, METH_VARARGS | METH_KEYWORDS, matmul_doc},
    {"kernels", list_kernels, METH_NOARGS, kernels_doc},
    {"to_half", to_half, METH_VARARGS, to_half_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "textgen._halfmatmul",
                                    "float32 rows times float16 matrices (textgen.half_weights).", -1, methods};

PyMODINIT_FUNC PyInit__halfmatmul(void) {
    choose_half_kernels();
    return PyModule_Create(&module);
}
