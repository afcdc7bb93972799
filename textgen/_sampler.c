/* Sampling one request's next token: `textgen.sampling.sample_one`, compiled.
 *
 * A reply is decoded one token at a time, one row per step. For a single row of a few hundred logits each
 * NumPy call costs more than its arithmetic: the same steps as NumPy calls came to 20-40 microseconds a
 * token, more than the model's own step. Here they run as one loop over the row, in float64, in the order
 * `textgen.sampling.sample_tokens` does them, so a request samples the same tokens alone as in a batch
 * (sums may differ in the last bit, which moves a draw only when it falls within about 1e-16 of a
 * boundary). The GIL is released while it runs.
 *
 * Arrays come in through the buffer protocol (no NumPy headers are needed to build it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* Tokens a sample never contains, as in textgen.tokenizers (a test checks that they agree). */
enum { PAD_ID = 0, BOS_ID = 1, EOS_ID = 2, UNK_ID = 3, FIRST_TEXT_ID = 4 };

/* Byte and character vocabularies are a few hundred tokens; larger ones take the NumPy path. */
#define MAX_VOCAB 4096

/* Sift `heap[at]` down a max-heap of `size` entries. */
static void sift_down(double *heap, Py_ssize_t size, Py_ssize_t at) {
    double value = heap[at];
    for (;;) {
        Py_ssize_t child = 2 * at + 1;
        if (child >= size) break;
        if (child + 1 < size && heap[child + 1] > heap[child]) child++;
        if (heap[child] <= value) break;
        heap[at] = heap[child];
        at = child;
    }
    heap[at] = value;
}

/* Take the largest value off a max-heap of `*size` entries. */
static double pop_largest(double *heap, Py_ssize_t *size) {
    double largest = heap[0];
    heap[0] = heap[--*size];
    sift_down(heap, *size, 0);
    return largest;
}

/* The smallest probability kept by top-k and top-p: the most likely tokens whose share reaches `top_p`,
 * never more than `top_k` (the most likely always stays). `probs` holds `vocab` values, unnormalised;
 * `heap` is scratch of the same size. */
static double keep_threshold(const double *probs, double *heap, Py_ssize_t vocab, Py_ssize_t top_k,
                             double top_p) {
    memcpy(heap, probs, (size_t)vocab * sizeof(double));
    Py_ssize_t size = vocab;
    for (Py_ssize_t at = vocab / 2 - 1; at >= 0; at--) sift_down(heap, size, at);
    /* The share is of the top-k tokens' total: with top-k, the first k popped; else the whole row. */
    double total = 0.0;
    if (top_k < vocab) {
        double ranked[top_k];
        for (Py_ssize_t rank = 0; rank < top_k; rank++) ranked[rank] = pop_largest(heap, &size);
        for (Py_ssize_t rank = 0; rank < top_k; rank++) total += ranked[rank];
        double cumulative = 0.0;
        for (Py_ssize_t rank = 0; rank < top_k; rank++) {
            cumulative += ranked[rank];
            if (cumulative / total >= top_p || rank == top_k - 1) return ranked[rank];
        }
    }
    for (Py_ssize_t i = 0; i < vocab; i++) total += probs[i];
    double cumulative = 0.0;
    for (;;) {
        double value = pop_largest(heap, &size);
        cumulative += value;
        if (cumulative / total >= top_p || size == 0) return value;
    }
}

/* log(sum(exp(row - max(row)))) and max(row). */
static double log_total(const double *row, Py_ssize_t vocab, double *top_out) {
    double top = -INFINITY;
    for (Py_ssize_t i = 0; i < vocab; i++)
        if (row[i] > top) top = row[i];
    double total = 0.0;
    for (Py_ssize_t i = 0; i < vocab; i++) total += exp(row[i] - top);
    *top_out = top;
    return log(total);
}

/* The next token after `logits`. Where the masks leave nothing at all (never seen: a UTF-8 state and a
 * lexicon word always allow some byte), the end token: the reply ends rather than breaking a character. */
static Py_ssize_t sample(const double *logits, const unsigned char *allowed, Py_ssize_t vocab, int may_end,
                         int end_untempered, double temperature, Py_ssize_t top_k, double top_p,
                         double min_p, double end_draw, double token_draw) {
    double work[vocab], probs[vocab], heap[vocab], top;
    for (Py_ssize_t i = 0; i < vocab; i++) work[i] = allowed[i] ? logits[i] : -INFINITY;
    work[PAD_ID] = work[BOS_ID] = work[UNK_ID] = -INFINITY;
    if (!may_end) work[EOS_ID] = -INFINITY;
    if (end_untempered) {
        /* The end token's untempered, untruncated probability, drawn before anything else. */
        double log_sum = log_total(work, vocab, &top);
        if (end_draw < exp((work[EOS_ID] - top) - log_sum)) return EOS_ID;
        work[EOS_ID] = -INFINITY;
    }
    top = -INFINITY;
    for (Py_ssize_t i = 0; i < vocab; i++) {
        work[i] /= temperature;
        if (work[i] > top) top = work[i];
    }
    if (top == -INFINITY) return EOS_ID;
    for (Py_ssize_t i = 0; i < vocab; i++) probs[i] = exp(work[i] - top);
    if (top_k < vocab || top_p < 1.0) {
        double threshold = keep_threshold(probs, heap, vocab, top_k, top_p);
        for (Py_ssize_t i = 0; i < vocab; i++)
            if (probs[i] < threshold) probs[i] = 0.0;
    }
    /* min-p: relative to the most likely token, whose value here is exactly 1. */
    for (Py_ssize_t i = 0; i < vocab; i++)
        if (probs[i] < min_p) probs[i] = 0.0;
    double total = 0.0;
    for (Py_ssize_t i = 0; i < vocab; i++) total += probs[i];
    /* Inverse-CDF sampling: the first token whose cumulative share passes the draw. */
    double cumulative = 0.0;
    for (Py_ssize_t i = 0; i < vocab - 1; i++) {
        cumulative += probs[i];
        if (cumulative / total > token_draw) return i;
    }
    return vocab - 1;
}

PyDoc_STRVAR(sample_row_doc,
             "sample_row(logits, allowed, may_end, end_untempered, temperature, top_k, top_p, min_p, "
             "end_draw, token_draw) -> (token, logprob)\n\n"
             "The next token of one row and its log-probability under `logits` as the model gave them.");

/* The row of `view` (float32 or float64) as float64 in `out`. */
static void read_row(const Py_buffer *view, double *out) {
    if (view->format[0] == 'f')
        for (Py_ssize_t i = 0; i < view->shape[0]; i++) out[i] = ((const float *)view->buf)[i];
    else
        memcpy(out, view->buf, (size_t)view->shape[0] * sizeof(double));
}

static PyObject *sample_row(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "sample_row takes 10 arguments");
        return NULL;
    }
    int may_end = PyObject_IsTrue(args[2]), end_untempered = PyObject_IsTrue(args[3]);
    double temperature = PyFloat_AsDouble(args[4]);
    Py_ssize_t top_k = PyLong_AsSsize_t(args[5]);
    double top_p = PyFloat_AsDouble(args[6]), min_p = PyFloat_AsDouble(args[7]);
    double end_draw = PyFloat_AsDouble(args[8]), token_draw = PyFloat_AsDouble(args[9]);
    if (PyErr_Occurred() || may_end < 0 || end_untempered < 0) return NULL;
    Py_buffer row, mask;
    if (PyObject_GetBuffer(args[0], &row, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (row.ndim != 1 || row.shape[0] < FIRST_TEXT_ID || row.shape[0] > MAX_VOCAB ||
        (strcmp(row.format, "f") != 0 && strcmp(row.format, "d") != 0)) {
        PyBuffer_Release(&row);
        PyErr_Format(PyExc_ValueError, "logits must be one row of float32 or float64, %d to %d of them",
                     FIRST_TEXT_ID, MAX_VOCAB);
        return NULL;
    }
    Py_ssize_t vocab = row.shape[0];
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&row);
        return NULL;
    }
    if (mask.len != vocab || mask.itemsize != 1) {
        PyBuffer_Release(&row);
        PyBuffer_Release(&mask);
        PyErr_SetString(PyExc_ValueError, "allowed must be one boolean per logit");
        return NULL;
    }
    Py_ssize_t token;
    double logprob;
    Py_BEGIN_ALLOW_THREADS;
    double logits[vocab], top;
    read_row(&row, logits);
    token = sample(logits, (const unsigned char *)mask.buf, vocab, may_end, end_untempered, temperature,
                   top_k < 1 ? 1 : top_k, top_p, min_p, end_draw, token_draw);
    double log_sum = log_total(logits, vocab, &top);
    logprob = (logits[token] - top) - log_sum;
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&row);
    PyBuffer_Release(&mask);
    return Py_BuildValue("(nd)", token, logprob);
}

static PyMethodDef methods[] = {
    {"sample_row", (PyCFunction)(void (*)(void))sample_row, METH_FASTCALL, sample_row_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "textgen._sampler",
    "One request's next token, sampled in compiled code (see textgen.sampling.sample_one).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sampler(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "PAD_ID", PAD_ID) < 0 || PyModule_AddIntConstant(m, "BOS_ID", BOS_ID) < 0 ||
        PyModule_AddIntConstant(m, "EOS_ID", EOS_ID) < 0 || PyModule_AddIntConstant(m, "UNK_ID", UNK_ID) < 0 ||
        PyModule_AddIntConstant(m, "MAX_VOCAB", MAX_VOCAB) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
