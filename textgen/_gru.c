/* One GRU step's element-wise part, compiled: `textgen.architectures.cells.GRUCell.step`.
 *
 * After the recurrent product (NumPy's BLAS), a GRU step is a dozen element-wise operations over the
 * gates. At one row per step (a reply being decoded) each NumPy call costs more than its arithmetic:
 * about 14 microseconds of a 384-unit step went to them. Here they are one loop that the compiler
 * vectorises.
 *
 * tanh is Eigen's rational approximation for float32 (what TensorFlow's CPU kernels compute, so the
 * decoder stays as close to Keras as before: within about 1e-7 of the exact value). Arrays come in
 * through the buffer protocol (no NumPy headers are needed to build it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "_halfmatmul_kernels.h"

/* tanh(x) for float32, Eigen's `generic_fast_tanh_float`: a 13/6 rational function on [-c, c]. */
static inline float fast_tanh(float x) {
    const float clamp = 7.90531110763549805f;
    float y = x < clamp ? x : clamp;
    y = y > -clamp ? y : -clamp;
    float y2 = y * y;
    float p = -2.76076847742355e-16f;
    p = p * y2 + 2.00018790482477e-13f;
    p = p * y2 + -8.60467152213735e-11f;
    p = p * y2 + 5.12229709037114e-08f;
    p = p * y2 + 1.48572235717979e-05f;
    p = p * y2 + 6.37261928875436e-04f;
    p = p * y2 + 4.89352455891786e-03f;
    p = p * y;
    float q = 1.19825839466702e-06f;
    q = q * y2 + 1.18534705686654e-04f;
    q = q * y2 + 2.26843463243900e-03f;
    q = q * y2 + 4.89352518554385e-03f;
    float t = p / q;
    /* Near 0 tanh(x) is x to float precision; the ratio would round worse. */
    return fabsf(x) < 0.0004f ? x : t;
}

/* h = z * h_prev + (1 - z) * tanh(p_c + r * (inner_c + b_c)), with z and r the sigmoids of
 * p + inner + b over their columns (Keras' `reset_after` GRU). */
static void gru_rows(const float *restrict projected, const float *restrict inner, const float *restrict bias,
                     const float *restrict h_prev, float *restrict out, Py_ssize_t batch, Py_ssize_t units) {
    for (Py_ssize_t row = 0; row < batch; row++) {
        const float *restrict p = projected + row * 3 * units;
        const float *restrict in = inner + row * 3 * units;
        const float *restrict h = h_prev + row * units;
        float *restrict o = out + row * units;
        for (Py_ssize_t j = 0; j < units; j++) {
            float z = 0.5f * fast_tanh(0.5f * (p[j] + (in[j] + bias[j]))) + 0.5f;
            float r = 0.5f * fast_tanh(0.5f * (p[units + j] + (in[units + j] + bias[units + j]))) + 0.5f;
            float candidate = fast_tanh(r * (in[2 * units + j] + bias[2 * units + j]) + p[2 * units + j]);
            o[j] = z * h[j] + (1.0f - z) * candidate;
        }
    }
}

static int float32_buffer(PyObject *object, Py_buffer *view, const char *name, Py_ssize_t items) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (strcmp(view->format, "f") != 0 || view->len != items * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous float32 with %zd values", name, items);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The last two of a function's 7 arguments, batch and units, checked. */
static int batch_and_units(const char *function, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *batch,
                           Py_ssize_t *units) {
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "%s takes 7 arguments", function);
        return -1;
    }
    *batch = PyLong_AsSsize_t(args[5]);
    *units = PyLong_AsSsize_t(args[6]);
    if (PyErr_Occurred()) return -1;
    if (*batch < 0 || *units < 1) {
        PyErr_SetString(PyExc_ValueError, "batch must be 0 or more and units at least 1");
        return -1;
    }
    return 0;
}

/* A float16 recurrent kernel (units, 3 * units). */
static int float16_kernel(PyObject *object, Py_buffer *view, Py_ssize_t units) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (strcmp(view->format, "e") != 0 || view->len != units * 3 * units * 2) {
        PyErr_Format(PyExc_ValueError, "recurrent must be C-contiguous float16 (%zd, %zd)", units, 3 * units);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(gru_update_doc,
             "gru_update(projected, inner, recurrent_bias, h_prev, out, batch, units)\n\n"
             "Write the GRU's new state (batch, units) into `out`, from the input projection and the "
             "recurrent product (batch, 3 * units), its bias (3 * units,) and the state before.");

static PyObject *gru_update(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Py_ssize_t batch, units;
    if (batch_and_units("gru_update", args, nargs, &batch, &units) < 0) return NULL;
    static const char *names[] = {"projected", "inner", "recurrent_bias", "h_prev", "out"};
    Py_ssize_t sizes[] = {batch * 3 * units, batch * 3 * units, 3 * units, batch * units, batch * units};
    Py_buffer views[5];
    int held = 0;
    for (; held < 5; held++)
        if (float32_buffer(args[held], &views[held], names[held], sizes[held]) < 0) break;
    if (held == 5 && views[4].readonly) {
        PyErr_SetString(PyExc_ValueError, "out must be writable");
    } else if (held == 5) {
        Py_BEGIN_ALLOW_THREADS;
        gru_rows(views[0].buf, views[1].buf, views[2].buf, views[3].buf, views[4].buf, batch, units);
        Py_END_ALLOW_THREADS;
    }
    for (int i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(gru_step_half_doc,
             "gru_step_half(projected, h_prev, recurrent, recurrent_bias, out, batch, units)\n\n"
             "A whole GRU step with a float16 recurrent kernel (units, 3 * units): its product with h_prev\n"
             "(`textgen/_halfmatmul_kernels.h`), then `gru_update`, in one call (at one row per step the\n"
             "calls between them cost a fifth of the step).");

static PyObject *gru_step_half(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    Py_ssize_t batch, units;
    if (batch_and_units("gru_step_half", args, nargs, &batch, &units) < 0) return NULL;
    static const char *names[] = {"projected", "h_prev", "recurrent", "recurrent_bias", "out"};
    Py_ssize_t sizes[] = {batch * 3 * units, batch * units, 0, 3 * units, batch * units};
    Py_buffer views[5];
    int held = 0;
    for (; held < 5; held++) {
        int got = held == 2 ? float16_kernel(args[held], &views[held], units)
                            : float32_buffer(args[held], &views[held], names[held], sizes[held]);
        if (got < 0) break;
    }
    if (held == 5 && views[4].readonly) {
        PyErr_SetString(PyExc_ValueError, "out must be writable");
    } else if (held == 5) {
        float *inner = PyMem_RawMalloc((size_t)(batch * 3 * units) * sizeof(float) + 1);
        if (inner == NULL) {
            PyErr_NoMemory();
        } else {
            Py_BEGIN_ALLOW_THREADS;
            half_kernels[0].run(views[1].buf, views[2].buf, inner, batch, units, 3 * units);
            gru_rows(views[0].buf, inner, views[3].buf, views[1].buf, views[4].buf, batch, units);
            Py_END_ALLOW_THREADS;
            PyMem_RawFree(inner);
        }
    }
    for (int i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"gru_update", (PyCFunction)(void (*)(void))gru_update, METH_FASTCALL, gru_update_doc},
    {"gru_step_half", (PyCFunction)(void (*)(void))gru_step_half, METH_FASTCALL, gru_step_half_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "textgen._gru", "One GRU step's element-wise part, compiled (see GRUCell.step).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__gru(void) {
    choose_half_kernels();
    return PyModule_Create(&module);
}
