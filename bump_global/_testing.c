/*
 * bump_global/_testing.c -- the module bump_global._testing: test probes and
 * raw allocator microbenchmarks.  Not part of the runtime: bump_global never
 * imports it; tests/ and scripts/bench.py do.
 *
 * Probes (tests): a few allocator calls in one C call, with nothing allocated
 * in between (ctypes would allocate Python ints between calls).  They go
 * through CPython's public API, so they exercise whatever is installed.
 *
 * Microbenchmarks (scripts/bench.py): loops in C over CPython's public
 * allocator API, so they measure whatever is installed underneath (pymalloc,
 * PYTHONMALLOC=malloc, an LD_PRELOADed malloc, or bump_global) without
 * interpreter overhead.  Every block gets one byte written, as a real object
 * would be initialised: for an allocator that never reuses memory that write
 * is what faults fresh pages in, and that cost is part of what we measure.
 * Results are plain floats (ns); scripts/bench.py names and reports them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
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

/* ---- test probes ---- */

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
    {"pair_loop", mb_pair_loop, METH_VARARGS,
     "pair_loop(n, size) -> ns per PyObject_Malloc + PyObject_Free pair"},
    {"batch_loop", mb_batch_loop, METH_VARARGS,
     "batch_loop(n, batch, size) -> ns per allocation, in batches of mallocs then frees"},
    {"page_touch", mb_page_touch, METH_VARARGS,
     "page_touch(nbytes, huge) -> ns per 4 KiB page first touched (None without mmap)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef testing_module = {
    PyModuleDef_HEAD_INIT, "bump_global._testing",
    "Test probes and raw allocator microbenchmarks (tests/, scripts/bench.py).", -1,
    testing_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__testing(void)
{
    return PyModule_Create(&testing_module);
}
