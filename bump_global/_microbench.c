/*
 * bump_global/_microbench.c -- raw allocator microbenchmarks (benchmark-only).
 *
 * Loops in C over CPython's public allocator API, so they measure whatever is
 * installed underneath (pymalloc, PYTHONMALLOC=malloc, an LD_PRELOADed malloc,
 * or bump_global) without interpreter overhead.  Every block gets one byte
 * written, as a real object would be initialised: for an allocator that never
 * reuses memory that write is what faults fresh pages in, and that cost is
 * part of what we measure.  Results are plain floats (ns); scripts/bench.py
 * names and reports them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#ifndef _WIN32
#  include <sys/mman.h>
#endif

static double
now_ns(void)
{
#ifdef _WIN32
    LARGE_INTEGER freq, t;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e9 / (double)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
#endif
}

/* pair_loop(n, size) -> ns per PyObject_Malloc + PyObject_Free pair. */
static PyObject *
mb_pair_loop(PyObject *self, PyObject *args)
{
    Py_ssize_t n, size;
    if (!PyArg_ParseTuple(args, "nn:pair_loop", &n, &size) || n <= 0 || size <= 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "n and size must be positive");
        }
        return NULL;
    }
    double start = now_ns();
    for (Py_ssize_t i = 0; i < n; i++) {
        char *p = PyObject_Malloc((size_t)size);
        if (p == NULL) {
            return PyErr_NoMemory();
        }
        *(volatile char *)p = (char)i;
        PyObject_Free(p);
    }
    return PyFloat_FromDouble((now_ns() - start) / (double)n);
}

/* batch_loop(n, batch, size) -> ns per allocation, allocating `batch` blocks
 * then freeing them, until n blocks were handled. */
static PyObject *
mb_batch_loop(PyObject *self, PyObject *args)
{
    Py_ssize_t n, batch, size;
    if (!PyArg_ParseTuple(args, "nnn:batch_loop", &n, &batch, &size) || n <= 0 ||
        batch <= 0 || size <= 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "n, batch and size must be positive");
        }
        return NULL;
    }
    /* libc, not PyMem: the pointer array must not come from the allocator
     * under test. */
    char **blocks = malloc((size_t)batch * sizeof(char *));
    if (blocks == NULL) {
        return PyErr_NoMemory();
    }
    double start = now_ns();
    for (Py_ssize_t done = 0; done < n; done += batch) {
        for (Py_ssize_t i = 0; i < batch; i++) {
            blocks[i] = PyObject_Malloc((size_t)size);
            if (blocks[i] == NULL) {
                for (Py_ssize_t j = 0; j < i; j++) {
                    PyObject_Free(blocks[j]);
                }
                free(blocks);
                return PyErr_NoMemory();
            }
            *(volatile char *)blocks[i] = (char)i;
        }
        for (Py_ssize_t i = 0; i < batch; i++) {
            PyObject_Free(blocks[i]);
        }
    }
    double elapsed = now_ns() - start;
    free(blocks);
    Py_ssize_t total = (n + batch - 1) / batch * batch;
    return PyFloat_FromDouble(elapsed / (double)total);
}

/* page_touch(nbytes, huge) -> ns per 4 KiB of first-touched fresh memory.
 * Maps a private anonymous range (MADV_HUGEPAGE if `huge`), writes one byte
 * per 4 KiB, unmaps it.  None where the platform has no mmap. */
static PyObject *
mb_page_touch(PyObject *self, PyObject *args)
{
    Py_ssize_t nbytes;
    int huge;
    if (!PyArg_ParseTuple(args, "np:page_touch", &nbytes, &huge) || nbytes < 4096) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "nbytes must be at least 4096");
        }
        return NULL;
    }
#ifdef _WIN32
    Py_RETURN_NONE;
#else
    size_t len = (size_t)nbytes & ~(size_t)4095;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (huge) {
#  ifdef MADV_HUGEPAGE
        if (madvise(p, len, MADV_HUGEPAGE) != 0) {
            munmap(p, len);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
#  else
        munmap(p, len);
        Py_RETURN_NONE;
#  endif
    }
    double start = now_ns();
    for (size_t off = 0; off < len; off += 4096) {
        ((volatile char *)p)[off] = 1;
    }
    double elapsed = now_ns() - start;
    munmap(p, len);
    return PyFloat_FromDouble(elapsed / (double)(len / 4096));
#endif
}

static PyMethodDef mb_methods[] = {
    {"pair_loop", mb_pair_loop, METH_VARARGS,
     "pair_loop(n, size) -> ns per PyObject_Malloc + PyObject_Free pair"},
    {"batch_loop", mb_batch_loop, METH_VARARGS,
     "batch_loop(n, batch, size) -> ns per allocation, in batches of mallocs then frees"},
    {"page_touch", mb_page_touch, METH_VARARGS,
     "page_touch(nbytes, huge) -> ns per 4 KiB page first touched (None without mmap)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef mb_module = {
    PyModuleDef_HEAD_INIT, "bump_global._microbench",
    "Raw allocator microbenchmarks (used by scripts/bench.py).", -1, mb_methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__microbench(void)
{
    return PyModule_Create(&mb_module);
}
