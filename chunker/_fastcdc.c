/*
 * _fastcdc.c -- CPython binding of the FastCDC kernel (module chunker._fastcdc).
 *
 * Concern: move buffers in and chunk lengths out; the cutting itself lives in
 * fastcdc_scan.c.  Parameters are validated by chunker/__init__.py; this file
 * only refuses values that could make the kernel loop forever or misbehave.
 *
 * Invariant: the scan runs with the GIL released, so several threads can cut
 * different buffers at once.  That is safe because the Py_buffer we hold
 * keeps the exporter (e.g. a bytearray) from being resized or freed until we
 * release it, and the kernel touches nothing but that memory and a C array.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "fastcdc_scan.h"

/* Lengths gathered per GIL-released scan; bounds our scratch memory. */
#define BATCH 4096

PyDoc_STRVAR(cut_doc,
"cut(buf, min_size, normal_size, max_size, mask_s, mask_l, final) -> list[int]\n\n"
"Chunk lengths of buf from its start.  With final false, stop while fewer\n"
"than max_size bytes remain (those cuts are not settled yet); with final\n"
"true, cut to the end.  The lengths sum to the bytes consumed.");

static PyObject *
fastcdc_cut(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t min_size, normal_size, max_size;
    unsigned long long mask_s, mask_l;
    int final;
    fastcdc_params p;
    size_t lengths[BATCH];
    PyObject *result = NULL;
    const uint8_t *data;
    size_t left;

    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnKKp:cut", &view, &min_size, &normal_size,
                          &max_size, &mask_s, &mask_l, &final))
        return NULL;
    if (min_size < 0 || normal_size < 0 || max_size < 1 || min_size > max_size) {
        PyErr_SetString(PyExc_ValueError,
                        "need 0 <= min_size <= max_size and max_size >= 1");
        goto done;
    }
    p.min_size = (size_t)min_size;
    p.normal_size = (size_t)normal_size;
    p.max_size = (size_t)max_size;
    p.mask_s = (uint64_t)mask_s;
    p.mask_l = (uint64_t)mask_l;

    result = PyList_New(0);
    if (result == NULL)
        goto done;
    data = (const uint8_t *)view.buf;
    left = (size_t)view.len;
    for (;;) {
        size_t n, consumed, k;

        Py_BEGIN_ALLOW_THREADS
        n = fastcdc_cut_all(data, left, &p, final, lengths, BATCH, &consumed);
        Py_END_ALLOW_THREADS
        for (k = 0; k < n; k++) {
            PyObject *item = PyLong_FromSize_t(lengths[k]);
            if (item == NULL || PyList_Append(result, item) < 0) {
                Py_XDECREF(item);
                Py_CLEAR(result);
                goto done;
            }
            Py_DECREF(item);
        }
        data += consumed;
        left -= consumed;
        if (n < BATCH)  /* the kernel stopped for want of data, not space */
            break;
    }
done:
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(gear_table_doc,
"gear_table() -> tuple[int, ...]\n\n"
"The 256 gear values compiled into the kernel (for tests and the params id).");

static PyObject *
py_gear_table(PyObject *self, PyObject *unused)
{
    const uint64_t *gear = fastcdc_gear_table();
    PyObject *t;
    int i;

    (void)self;
    (void)unused;
    t = PyTuple_New(256);
    if (t == NULL)
        return NULL;
    for (i = 0; i < 256; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(gear[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

static PyMethodDef fastcdc_methods[] = {
    {"cut", fastcdc_cut, METH_VARARGS, cut_doc},
    {"gear_table", py_gear_table, METH_NOARGS, gear_table_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastcdc_module = {
    PyModuleDef_HEAD_INIT,
    "chunker._fastcdc",
    "Native FastCDC cut-point scanner (see chunker/fastcdc_scan.c).",
    -1,
    fastcdc_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__fastcdc(void)
{
    return PyModule_Create(&fastcdc_module);
}
