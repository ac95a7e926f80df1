/*
 * core/histogram.c -- the size histogram (opt-in): requests per power-of-two
 * size class.  Slot 0 counts requests of 0 bytes (upper bound 0), slot 1
 * requests of 1 byte (upper bound 1), slot k + 1 sizes in (2^(k-1), 2^k];
 * sizes past 2^63 (a calloc whose product overflows records SIZE_MAX) go to
 * the last slot.
 * A second set of hooks records the request and calls the chosen hook, and is
 * installed only when asked for, so without it the hot path pays nothing.
 * GIL domains update the GIL table; RAW updates its own table atomically.
 */
#define HIST_SLOTS 65

typedef struct {
    uint64_t count[HIST_SLOTS];
    uint64_t bytes[HIST_SLOTS];
} hist_t;

static hist_t gil_hist, raw_hist;

ALWAYS_INLINE void
hist_record(int is_raw, size_t n)
{
    int k = n <= 1 ? (int)n : 65 - CLZ64(n - 1);
    k = k < HIST_SLOTS ? k : HIST_SLOTS - 1;
    if (is_raw) {
        ATOMIC_ADD(&raw_hist.count[k], 1);
        ATOMIC_ADD(&raw_hist.bytes[k], n);
    }
    else {
        gil_hist.count[k]++;
        gil_hist.bytes[k] += n;
    }
}

/* calloc records nelem * elsize, SIZE_MAX when that overflows. */
#define DEFINE_HIST_HOOKS(name, is_raw)                                        \
    static void *name##_malloc_h(void *ctx, size_t n)                          \
    { hist_record(is_raw, n); return name##_inner.malloc(ctx, n); }            \
    static void *name##_calloc_h(void *ctx, size_t nelem, size_t elsize)       \
    {                                                                          \
        size_t n;                                                              \
        hist_record(is_raw, mul_overflows(nelem, elsize, &n) ? SIZE_MAX : n);   \
        return name##_inner.calloc(ctx, nelem, elsize);                        \
    }                                                                          \
    static void *name##_realloc_h(void *ctx, void *p, size_t n)                \
    { hist_record(is_raw, n); return name##_inner.realloc(ctx, p, n); }

DEFINE_HIST_HOOKS(raw, 1)
DEFINE_HIST_HOOKS(mem, 0)
DEFINE_HIST_HOOKS(obj, 0)

/* ((upper_bound, count, bytes), ...) for the non-empty size classes, or None
 * when the histogram is off. */
static PyObject *
core_histogram(PyObject *self, PyObject *unused)
{
    if (!region.installed || !region.histogram) {
        Py_RETURN_NONE;
    }
    PyObject *rows = PyList_New(0);
    if (rows == NULL) {
        return NULL;
    }
    for (int k = 0; k < HIST_SLOTS; k++) {
        uint64_t count = gil_hist.count[k] + ATOMIC_LOAD(&raw_hist.count[k]);
        uint64_t bytes = gil_hist.bytes[k] + ATOMIC_LOAD(&raw_hist.bytes[k]);
        if (count == 0) {
            continue;
        }
        unsigned long long bound = k == 0 ? 0ULL : 1ULL << (k - 1);
        PyObject *row = Py_BuildValue("(KKK)", bound, (unsigned long long)count,
                                      (unsigned long long)bytes);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(row);
    }
    PyObject *result = PyList_AsTuple(rows);
    Py_DECREF(rows);
    return result;
}
