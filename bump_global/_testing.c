/*
 * bump_global/_testing.c -- the module bump_global._testing: test probes.  Not
 * part of the runtime: bump_global never imports it; tests/ do.
 *
 * Each probe makes a few allocator calls in one C call, with nothing allocated
 * in between (ctypes would allocate Python ints between calls), or from a
 * thread CPython does not know.  They go through CPython's public API, so they
 * exercise whatever is installed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#include <stdlib.h>

/* A test probe: malloc, optionally one more block of `interleave` bytes, then
 * realloc, with nothing
 * allocated in between (ctypes would allocate Python ints between calls).
 * Goes through CPython's public API, so it exercises whatever is installed. */
static PyObject *
t_probe_realloc(PyObject *self, PyObject *args)
{
    int domain;
    Py_ssize_t first, new_size, interleave;
    if (!PyArg_ParseTuple(args, "innn:probe_realloc", &domain, &first, &new_size,
                          &interleave)) {
        return NULL;
    }
    if (domain < 0 || domain > 2 || first < 0 || new_size < 0 || interleave < 0) {
        PyErr_SetString(PyExc_ValueError, "domain must be 0 (RAW), 1 (MEM) or 2 (OBJ)");
        return NULL;
    }
    static void *(*const mallocs[])(size_t) = {PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc};
    static void *(*const reallocs[])(void *, size_t) = {PyMem_RawRealloc, PyMem_Realloc,
                                                        PyObject_Realloc};
    unsigned char *p = mallocs[domain]((size_t)first);
    if (p == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < first; i++) {
        p[i] = (unsigned char)(i * 7 + 3);
    }
    if (interleave && mallocs[domain]((size_t)interleave) == NULL) {
        return PyErr_NoMemory();
    }
    unsigned char *q = reallocs[domain](p, (size_t)new_size);
    if (q == NULL) {
        return PyErr_NoMemory();
    }
    int ok = 1;
    for (Py_ssize_t i = 0; i < (first < new_size ? first : new_size); i++) {
        ok &= q[i] == (unsigned char)(i * 7 + 3);
    }
    return Py_BuildValue("(KKO)", (unsigned long long)(uintptr_t)p,
                         (unsigned long long)(uintptr_t)q, ok ? Py_True : Py_False);
}

/* A test probe: p = malloc(size), filled with 0xA5, freed, then q = malloc
 * (or calloc(1, size)) of the same size, with nothing allocated in between.
 * Returns (p, q, zeroed): zeroed tells whether the calloc'ed q reads as zero
 * (None for malloc).  Shows what the reclaim policy does with a free. */
static PyObject *
t_probe_reuse(PyObject *self, PyObject *args)
{
    int domain, use_calloc;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "inp:probe_reuse", &domain, &size, &use_calloc)) {
        return NULL;
    }
    if (domain < 0 || domain > 2 || size < 0) {
        PyErr_SetString(PyExc_ValueError, "domain must be 0 (RAW), 1 (MEM) or 2 (OBJ)");
        return NULL;
    }
    static void *(*const mallocs[])(size_t) = {PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc};
    static void *(*const callocs[])(size_t, size_t) = {PyMem_RawCalloc, PyMem_Calloc,
                                                       PyObject_Calloc};
    static void (*const frees[])(void *) = {PyMem_RawFree, PyMem_Free, PyObject_Free};
    unsigned char *p = mallocs[domain]((size_t)size);
    if (p == NULL) {
        return PyErr_NoMemory();
    }
    memset(p, 0xA5, (size_t)size);
    frees[domain](p);
    unsigned char *q = use_calloc ? callocs[domain](1, (size_t)size)
                                  : mallocs[domain]((size_t)size);
    if (q == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *zeroed = Py_None;
    if (use_calloc) {
        zeroed = Py_True;
        for (Py_ssize_t i = 0; i < size; i++) {
            if (q[i] != 0) {
                zeroed = Py_False;
                break;
            }
        }
    }
    return Py_BuildValue("(KKO)", (unsigned long long)(uintptr_t)p,
                         (unsigned long long)(uintptr_t)q, zeroed);
}

#ifndef _WIN32
#  include <pthread.h>

typedef struct {
    Py_ssize_t count;
    size_t size;
    int failed;
} raw_job_t;

/* The body of raw_from_c_thread's thread: no Python state, no GIL. */
static void *
raw_job(void *arg)
{
    raw_job_t *job = arg;
    void **blocks = PyMem_RawMalloc((size_t)job->count * sizeof(void *));
    if (blocks == NULL) {
        job->failed = 1;
        return NULL;
    }
    for (Py_ssize_t i = 0; i < job->count; i++) {
        blocks[i] = PyMem_RawMalloc(job->size);
        if (blocks[i] == NULL) {
            job->failed = 1;
        }
        else {
            memset(blocks[i], 1, job->size);
        }
    }
    for (Py_ssize_t i = 0; i < job->count; i++) {
        PyMem_RawFree(blocks[i]);
    }
    PyMem_RawFree(blocks);
    return NULL;
}
#endif

/* raw_from_c_thread(count, size): `count` PyMem_RawMalloc(size) calls (then
 * frees) from a thread made in C, which has no Python thread state: what a C
 * library's own thread does.  Test probe of the sites' "no Python stack". */
static PyObject *
t_raw_from_c_thread(PyObject *self, PyObject *args)
{
    raw_job_t job = {0, 0, 0};
    if (!PyArg_ParseTuple(args, "nn:raw_from_c_thread", &job.count, &job.size)) {
        return NULL;
    }
#ifdef _WIN32
    PyErr_SetString(PyExc_NotImplementedError, "raw_from_c_thread needs pthreads");
    return NULL;
#else
    pthread_t thread;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_create(&thread, NULL, raw_job, &job);
    if (rc == 0) {
        pthread_join(thread, NULL);
    }
    Py_END_ALLOW_THREADS
    if (rc != 0 || job.failed) {
        PyErr_SetString(PyExc_MemoryError, "raw_from_c_thread: an allocation failed");
        return NULL;
    }
    Py_RETURN_NONE;
#endif
}

static PyMethodDef testing_methods[] = {
    {"raw_from_c_thread", t_raw_from_c_thread, METH_VARARGS,
     "raw_from_c_thread(count, size): PyMem_RawMalloc calls from a C thread with no\n"
     "Python state (then frees them)."},
    {"probe_realloc", t_probe_realloc, METH_VARARGS,
     "probe_realloc(domain, size, new_size, interleave) -> (p, q, contents_kept)\n"
     "Test probe: malloc(size), [malloc(interleave)], realloc(p, new_size) in one C call."},
    {"probe_reuse", t_probe_reuse, METH_VARARGS,
     "probe_reuse(domain, size, calloc) -> (p, q, zeroed)\n"
     "Test probe: malloc, fill, free, then malloc or calloc of the same size in one C call."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef testing_module = {
    PyModuleDef_HEAD_INIT, "bump_global._testing",
    "Test probes (tests/).", -1,
    testing_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__testing(void)
{
    return PyModule_Create(&testing_module);
}
