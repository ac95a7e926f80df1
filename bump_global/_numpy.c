/*
 * bump_global/_numpy.c -- a numpy data-memory handler (NEP 49) that serves
 * array data through CPython's installed RAW allocator, so that, once
 * bump_global is installed, numpy's array buffers come from the region too.
 *
 * Contract
 * ========
 *
 * What it is.  One static PyDataMem_Handler named "bump_global", version 1,
 * in a PyCapsule named "mem_handler" (NEP 49, numpy >= 1.22).  numpy keeps a
 * reference to the handler capsule in every array it allocates with it and
 * uses that handler to realloc and free the array's data, so arrays made
 * before the handler was set keep numpy's own handler, and ours are freed by
 * us even if the handler is changed later.  The struct and the capsule are
 * never freed (NEP 49: "in practice the handler must be immortal").
 *
 * No numpy headers.  numpy is not a build dependency: the two structs below
 * repeat the layout of PyDataMemAllocator and PyDataMem_Handler from numpy's
 * ndarraytypes.h (identical in 1.22 and 2.x: char name[127]; uint8_t version;
 * then ctx, malloc, calloc, realloc, free(ctx, p, size)).  PyDataMem_SetHandler
 * and PyDataMem_GetHandler are found at run time in numpy's C-API table (the
 * `_ARRAY_API` capsule of numpy's _multiarray_umath module, a capsule without
 * a name): slots 304 and 305 in numpy_api.py, "MinVersion 1.22", unchanged in
 * 2.x.  set_handler() first checks the table's feature version (slot 211,
 * PyArray_GetNDArrayCFeatureVersion, 0xf for 1.22) and that slot 305 returns a
 * valid "mem_handler" capsule; the Python side (_numpy_hook.py) then checks
 * that the name we read from it equals numpy's own get_handler_name().
 *
 * Which allocator domain: RAW, because numpy does NOT guarantee the GIL.
 * numpy calls a handler only through PyDataMem_UserNEW/_ZEROED/RENEW/FREE
 * (numpy/_core/src/multiarray/alloc.c).  Most call sites hold the GIL (array
 * creation and dealloc, ndarray.resize, __setstate__, the sort buffers, which
 * are taken before NPY_BEGIN_THREADS and freed after NPY_END_THREADS), but two
 * do not, in 1.22 as in 2.x:
 *   - array_from_text() (ctors.c; np.fromstring/np.fromfile with a `sep`)
 *     grows and trims the array with PyDataMem_UserRENEW inside
 *     NPY_BEGIN_ALLOW_THREADS;
 *   - VOID_compare() (arraytypes.c.src) takes and frees temporary field
 *     buffers with UserNEW/UserFREE; sorting a structured array whose fields
 *     are byte-swapped or unaligned calls it from the sort loop, which runs
 *     with the GIL released when the dtype needs no Python API.
 * The MEM domain must be called with the GIL held, so these functions call
 * PyMem_RawMalloc/RawCalloc/RawRealloc/RawFree, which bump_global hooks (scope
 * "python" or "raw") and which are safe from any thread.  What follows from
 * that: array data is bumped in the RAW arena (under its mutex), never in the
 * large area, and the reclaim policies (MEM/OBJ only) do not apply to it: a
 * freed array's bytes are not reused.  With scope "objects" the RAW domain is
 * not hooked and array data stays outside the region.  calls_without_gil()
 * counts the calls that came without the GIL (PyGILState_Check), so the
 * finding is tested, not only read.
 *
 * The size header.  numpy's free receives the size, but its realloc does not
 * receive the old one; to keep exact counters through reallocs, each block
 * carries a HEADER-byte prefix holding its size (HEADER keeps the data
 * 16-aligned, as malloc's).  free trusts the header (numpy passes the same
 * figure; frees_size_mismatch() counts any difference).
 *
 * Counters (atomics: calls may come from any thread, without the GIL):
 * arrays (malloc + calloc calls that succeeded), bytes_allocated (their
 * sizes plus the growth of reallocs), bytes_freed (sizes freed plus the
 * shrinkage of reallocs), live = allocated - freed, peak live, reallocs.
 * Sizes are the sizes numpy asked for (the header is not counted).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#  define ATOMIC_ADD(p, v) ((void)__atomic_fetch_add((p), (v), __ATOMIC_RELAXED))
#  define ATOMIC_ADD_FETCH(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#  define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#  define ATOMIC_CAS(p, expected, desired) \
       __atomic_compare_exchange_n((p), &(expected), (desired), 1, \
                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED)
#elif defined(_MSC_VER)
#  include <intrin.h>
#  define ATOMIC_ADD(p, v) ((void)_InterlockedExchangeAdd64((volatile long long *)(p), \
                                                          (long long)(v)))
#  define ATOMIC_ADD_FETCH(p, v) \
       (_InterlockedExchangeAdd64((volatile long long *)(p), (long long)(v)) + (long long)(v))
#  define ATOMIC_LOAD(p) (*(volatile long long *)(p))
static int atomic_cas_ll(volatile long long *p, long long *expected, long long desired)
{
    long long seen = _InterlockedCompareExchange64(p, desired, *expected);
    if (seen == *expected) {
        return 1;
    }
    *expected = seen;
    return 0;
}
#  define ATOMIC_CAS(p, expected, desired) atomic_cas_ll((p), &(expected), (desired))
#else
#  error "bump_global._numpy needs GCC, Clang or MSVC atomics"
#endif

/* numpy's PyDataMemAllocator and PyDataMem_Handler (ndarraytypes.h), version 1. */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} DataMemAllocator;

typedef struct {
    char name[127];
    uint8_t version;
    DataMemAllocator allocator;
} DataMemHandler;

#define CAPSULE_NAME "mem_handler"
#define HEADER ((size_t)16)          /* size prefix; keeps the data 16-aligned */
#define MAX_REQUEST ((size_t)PY_SSIZE_T_MAX - HEADER)

/* Slots of numpy's C-API table (numpy_api.py; the same in 1.22 and 2.x). */
#define API_FEATURE_VERSION 211      /* PyArray_GetNDArrayCFeatureVersion */
#define API_SET_HANDLER 304          /* PyDataMem_SetHandler */
#define API_GET_HANDLER 305          /* PyDataMem_GetHandler */
#define FEATURE_1_22 0xfu            /* NPY_1_22_API_VERSION */

/* Counters, one per cache line would be overkill: array allocations are rare
 * next to the work numpy does with them. */
static long long n_arrays, n_bytes_allocated, n_bytes_freed, n_live, n_peak, n_reallocs;
static long long n_without_gil, n_size_mismatch;

static void count_gil(void)
{
    if (!PyGILState_Check()) {
        ATOMIC_ADD(&n_without_gil, 1);
    }
}

static void grow_live(long long delta)
{
    long long live = ATOMIC_ADD_FETCH(&n_live, delta);
    long long peak = ATOMIC_LOAD(&n_peak);
    while (live > peak && !ATOMIC_CAS(&n_peak, peak, live)) {
    }
}

/* The header of a block; `data` is what numpy holds. */
static size_t *header_of(void *data)
{
    return (size_t *)((char *)data - HEADER);
}

static void *handed_out(void *block, size_t size)
{
    *(size_t *)block = size;
    ATOMIC_ADD(&n_arrays, 1);
    ATOMIC_ADD(&n_bytes_allocated, (long long)size);
    grow_live((long long)size);
    return (char *)block + HEADER;
}

static void *h_malloc(void *ctx, size_t size)
{
    (void)ctx;
    count_gil();
    if (size > MAX_REQUEST) {
        return NULL;
    }
    void *block = PyMem_RawMalloc(size + HEADER);
    return block == NULL ? NULL : handed_out(block, size);
}

static void *h_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    count_gil();
    if (elsize != 0 && nelem > MAX_REQUEST / elsize) {
        return NULL;
    }
    size_t size = nelem * elsize;
    void *block = PyMem_RawCalloc(1, size + HEADER);
    return block == NULL ? NULL : handed_out(block, size);
}

static void *h_realloc(void *ctx, void *ptr, size_t new_size)
{
    if (ptr == NULL) {
        return h_malloc(ctx, new_size);
    }
    count_gil();
    if (new_size > MAX_REQUEST) {
        return NULL;
    }
    size_t old_size = *header_of(ptr);
    void *block = PyMem_RawRealloc(header_of(ptr), new_size + HEADER);
    if (block == NULL) {
        return NULL;  /* the old block stays valid, as realloc's contract says */
    }
    *(size_t *)block = new_size;
    ATOMIC_ADD(&n_reallocs, 1);
    if (new_size >= old_size) {
        ATOMIC_ADD(&n_bytes_allocated, (long long)(new_size - old_size));
        grow_live((long long)(new_size - old_size));
    }
    else {
        ATOMIC_ADD(&n_bytes_freed, (long long)(old_size - new_size));
        ATOMIC_ADD(&n_live, -(long long)(old_size - new_size));
    }
    return (char *)block + HEADER;
}

static void h_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (ptr == NULL) {
        return;
    }
    count_gil();
    size_t *header = header_of(ptr);
    size_t have = *header;
    if (have != size) {
        ATOMIC_ADD(&n_size_mismatch, 1);
    }
    ATOMIC_ADD(&n_bytes_freed, (long long)have);
    ATOMIC_ADD(&n_live, -(long long)have);
    PyMem_RawFree(header);
}

static DataMemHandler bump_handler = {
    "bump_global",
    1,
    {NULL, h_malloc, h_calloc, h_realloc, h_free},
};

static PyObject *handler_capsule;  /* immortal: one reference is never dropped */

/* ---- numpy's C-API table ------------------------------------------------ */

typedef unsigned int (*feature_version_fn)(void);
typedef PyObject *(*set_handler_fn)(PyObject *);
typedef PyObject *(*get_handler_fn)(void);

/* numpy's API table from its `_ARRAY_API` capsule (checked for 1.22+), or NULL. */
static void **api_table(PyObject *capsule)
{
    if (!PyCapsule_CheckExact(capsule)) {
        PyErr_SetString(PyExc_TypeError, "expected numpy's _ARRAY_API capsule");
        return NULL;
    }
    void **api = (void **)PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule));
    if (api == NULL) {
        return NULL;
    }
    unsigned int feature = ((feature_version_fn)api[API_FEATURE_VERSION])();
    if (feature < FEATURE_1_22) {
        PyErr_Format(PyExc_RuntimeError,
                     "numpy's C API is version %#x; data-memory handlers need numpy 1.22 "
                     "or later (C API 0xf)", feature);
        return NULL;
    }
    return api;
}

/* The handler numpy would use now in this context (a new reference), checked. */
static PyObject *current(void **api)
{
    PyObject *handler = ((get_handler_fn)api[API_GET_HANDLER])();
    if (handler == NULL) {
        return NULL;
    }
    if (!PyCapsule_IsValid(handler, CAPSULE_NAME)) {
        Py_DECREF(handler);
        PyErr_SetString(PyExc_RuntimeError,
                        "numpy's PyDataMem_GetHandler (C-API slot 305) did not return a "
                        "'mem_handler' capsule: unknown numpy C-API layout");
        return NULL;
    }
    return handler;
}

static PyObject *name_of(PyObject *capsule)
{
    DataMemHandler *h = (DataMemHandler *)PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (h == NULL) {
        return NULL;
    }
    return PyUnicode_FromStringAndSize(h->name, (Py_ssize_t)strnlen(h->name, sizeof h->name));
}

PyDoc_STRVAR(current_handler_name_doc,
"current_handler_name(api) -> str\n\n"
"Name of the handler numpy uses in this context, read through the C-API table.");

static PyObject *current_handler_name(PyObject *self, PyObject *api_capsule)
{
    (void)self;
    void **api = api_table(api_capsule);
    if (api == NULL) {
        return NULL;
    }
    PyObject *handler = current(api);
    if (handler == NULL) {
        return NULL;
    }
    PyObject *name = name_of(handler);
    Py_DECREF(handler);
    return name;
}

PyDoc_STRVAR(set_handler_doc,
"set_handler(api) -> str\n\n"
"Make bump_global's handler numpy's handler in the current context (a context\n"
"variable: new threads start without it before Python 3.14).  `api` is numpy's\n"
"_ARRAY_API capsule.  Returns the name of the handler it replaced.");

static PyObject *set_handler(PyObject *self, PyObject *api_capsule)
{
    (void)self;
    void **api = api_table(api_capsule);
    if (api == NULL) {
        return NULL;
    }
    PyObject *before = current(api);
    if (before == NULL) {
        return NULL;
    }
    PyObject *name = name_of(before);
    Py_DECREF(before);
    if (name == NULL) {
        return NULL;
    }
    PyObject *old = ((set_handler_fn)api[API_SET_HANDLER])(handler_capsule);
    if (old == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    Py_DECREF(old);
    return name;
}

PyDoc_STRVAR(stats_doc,
"stats() -> (arrays, bytes_allocated, bytes_freed, live_bytes, peak_live_bytes, reallocs)");

static PyObject *stats(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("(LLLLLL)", ATOMIC_LOAD(&n_arrays), ATOMIC_LOAD(&n_bytes_allocated),
                         ATOMIC_LOAD(&n_bytes_freed), ATOMIC_LOAD(&n_live),
                         ATOMIC_LOAD(&n_peak), ATOMIC_LOAD(&n_reallocs));
}

PyDoc_STRVAR(calls_without_gil_doc,
"calls_without_gil() -> int\n\nHandler calls numpy made without holding the GIL.");

static PyObject *calls_without_gil(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLongLong(ATOMIC_LOAD(&n_without_gil));
}

PyDoc_STRVAR(frees_size_mismatch_doc,
"frees_size_mismatch() -> int\n\n"
"Frees whose size argument differed from the size the block was allocated with.");

static PyObject *frees_size_mismatch(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLongLong(ATOMIC_LOAD(&n_size_mismatch));
}

static PyMethodDef methods[] = {
    {"set_handler", set_handler, METH_O, set_handler_doc},
    {"current_handler_name", current_handler_name, METH_O, current_handler_name_doc},
    {"stats", stats, METH_NOARGS, stats_doc},
    {"calls_without_gil", calls_without_gil, METH_NOARGS, calls_without_gil_doc},
    {"frees_size_mismatch", frees_size_mismatch, METH_NOARGS, frees_size_mismatch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "bump_global._numpy",
    "A numpy data-memory handler (NEP 49) serving array data through the RAW allocator.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__numpy(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (handler_capsule == NULL) {
        handler_capsule = PyCapsule_New(&bump_handler, CAPSULE_NAME, NULL);
        if (handler_capsule == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    Py_INCREF(handler_capsule);
    if (PyModule_AddObject(module, "handler", handler_capsule) < 0) {
        Py_DECREF(handler_capsule);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "HEADER", (long)HEADER) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
