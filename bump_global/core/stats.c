/*
 * core/stats.c -- what Python reads: config(), stats(), sample() and
 * region_resident().  Counters are plain integers in the GIL arena (the GIL
 * guards them) and in the RAW arena either updated under raw_lock or
 * atomically (COUNT); stats() adds the arenas and the size classes up.
 */

/* The options install() was given, with the size as installed: a new dict, or
 * None before install.  Python names the values (bump_global/_config.py). */
static PyObject *
core_config(PyObject *self, PyObject *unused)
{
    if (!region.installed || installed_options == NULL) {
        Py_RETURN_NONE;
    }
    return PyDict_Copy(installed_options);
}

/* The words `used` is computed from, and the counters.  All uint64_t: no
 * padding, so two views compare with memcmp (the recorder's passes). */
typedef struct {
    uint64_t cursor, large_top;
    uint64_t gil_waste, gil_end, gil_top;
    uint64_t raw_waste, raw_end, raw_top;
    uint64_t cls_waste, cls_end, cls_top, cls_pages;
    uint64_t cls_live_bytes;
    counters_t c;
} region_view_t;

/* Read everything `used` and the counters are made of, with relaxed loads: the
 * caller holds the GIL and raw_lock (stats()), or is the recorder thread, which
 * holds no lock and so may see the words of one allocation half updated
 * (recorder.c reads until two passes agree). */
static void
region_view_read(region_view_t *v)
{
    memset(v, 0, sizeof *v);
    v->cursor = ATOMIC_LOAD_RELAXED(region.cursor);
    v->large_top = ATOMIC_LOAD_RELAXED(large.top);
    v->gil_waste = ATOMIC_LOAD_RELAXED(gil_arena.waste);
    v->gil_end = ATOMIC_LOAD_RELAXED(gil_arena.chunk_end);
    v->gil_top = ATOMIC_LOAD_RELAXED(gil_arena.top);
    v->raw_waste = ATOMIC_LOAD_RELAXED(raw_arena.waste);
    v->raw_end = ATOMIC_LOAD_RELAXED(raw_arena.chunk_end);
    v->raw_top = ATOMIC_LOAD_RELAXED(raw_arena.top);
#define ADD_COUNTER(name)                                                      \
    v->c.name = ATOMIC_LOAD_RELAXED(gil_arena.c.name) +                        \
                ATOMIC_LOAD_RELAXED(raw_arena.c.name);
    COUNTERS(ADD_COUNTER)
#undef ADD_COUNTER
    classes_add_counters(&v->c);
    /* by the thread, or by the program one chunk at a time while no core was idle */
    v->c.bytes_prefaulted = ATOMIC_LOAD(&prefault.bytes) + ATOMIC_LOAD(&prefault.by_program);
    v->c.samples = ATOMIC_LOAD(&sites.seq);  /* one sequence for every domain */
    if (ATOMIC_LOAD_RELAXED(class_map) == NULL) {
        return;
    }
    v->cls_waste = ATOMIC_LOAD_RELAXED(class_arena.waste);
    v->cls_end = ATOMIC_LOAD_RELAXED(class_arena.chunk_end);
    v->cls_top = ATOMIC_LOAD_RELAXED(class_arena.top);
    v->cls_pages = ATOMIC_LOAD_RELAXED(class_pages_taken);
    for (unsigned k = 1; k < NCLASSES; k++) {
        const class_t *k_class = &classes[k];
        uint64_t pushes = ATOMIC_LOAD_RELAXED(k_class->pushes);  /* first: live >= 0 */
        uint64_t taken = ATOMIC_LOAD_RELAXED(k_class->bumps) +
                         ATOMIC_LOAD_RELAXED(k_class->pops);
        v->cls_live_bytes += taken > pushes ? (taken - pushes) * k_class->size : 0;
    }
}

static uint64_t
span_or_zero(uint64_t end, uint64_t top)
{
    return top > end ? 0 : end - top;  /* a half-seen chunk change (recorder) */
}

/* The one formula for `used`, bytes handed out: what the small arenas took
 * (`consumed`, with the large area: blocks and headers), less the unused tails
 * of their chunks, what they abandoned, and the class pages' free blocks. */
static uint64_t
used_of(const region_view_t *v, uint64_t *consumed)
{
    *consumed = (v->cursor - region.base) + (v->large_top - region.end);
    uint64_t unused_bytes = v->gil_waste + span_or_zero(v->gil_end, v->gil_top) +
                            v->raw_waste + span_or_zero(v->raw_end, v->raw_top) +
                            class_unused_bytes(v->cls_pages,
                                               v->cls_waste +
                                               span_or_zero(v->cls_end, v->cls_top),
                                               v->cls_live_bytes);
    return unused_bytes < *consumed ? *consumed - unused_bytes : 0;
}

/* Bytes handed out, and *consumed, *cursor and the counters (*sum if given),
 * consistent: the caller holds the GIL (the GIL arena, the large area, the
 * classes), and raw_lock is taken for the RAW arena. */
static uint64_t
region_used(uint64_t *consumed, uintptr_t *cursor, counters_t *sum)
{
    region_view_t v;
    LOCK(raw_lock);
    region_view_read(&v);
    UNLOCK(raw_lock);
    *cursor = (uintptr_t)v.cursor;
    if (sum != NULL) {
        *sum = v.c;
    }
    return used_of(&v, consumed);
}

/* The five sizes, then the counters in COUNTERS order (the names of all of
 * them are STATS_FIELDS, module.c). */
#define STATS_SIZES(X) X(base) X(reserved) X(used) X(consumed) X(committed)

/* The STATS_COUNT values of stats(), read now (with the GIL). */
static void
stats_read(uint64_t *values)
{
    counters_t sum = {0};
    uintptr_t cursor;
    uint64_t consumed;
    uint64_t used = region_used(&consumed, &cursor, &sum);
    uint64_t committed = (ATOMIC_LOAD(&region.committed) - region.base) +
                         (ATOMIC_LOAD(&region.large_committed) - region.end);
    uint64_t base = region.base, reserved = region.size;
    uint64_t read[] = {
#define VALUE(name) name,
        STATS_SIZES(VALUE)
#undef VALUE
#define VALUE(name) sum.name,
        COUNTERS(VALUE)
#undef VALUE
    };
    memcpy(values, read, sizeof read);
}

/* A tuple of the `count` values (built after they were read: a measurement
 * takes its cost off, bump_global/_measure.py). */
static PyObject *
stats_tuple(const uint64_t *values, Py_ssize_t count)
{
    PyObject *result = PyTuple_New(count);
    if (result == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong((unsigned long long)values[i]);
        if (v == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(result, i, v);
    }
    return result;
}

static PyObject *
core_stats(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    uint64_t values[STATS_COUNT];
    stats_read(values);
    return stats_tuple(values, STATS_COUNT);
}

/* Resident bytes of [addr, addr + length), None where the OS cannot tell. */
static PyObject *
resident_bytes(uintptr_t addr, uintptr_t length)
{
    uint64_t bytes = 0;
    int known = prim_resident(addr, length, &bytes);
    if (known < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (known == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLongLong(bytes);
}

/* Resident bytes of the parts of both areas handed out so far. */
static PyObject *
region_resident(uintptr_t cursor)
{
    PyObject *small = resident_bytes(region.base, cursor - region.base);
    if (small == NULL || small == Py_None) {
        return small;
    }
    PyObject *big = resident_bytes(region.end, large.top - region.end);
    if (big == NULL) {
        Py_DECREF(small);
        return NULL;
    }
    PyObject *sum = PyNumber_Add(small, big);
    Py_DECREF(small);
    Py_DECREF(big);
    return sum;
}

static PyObject *
core_region_resident(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    return region_resident(ATOMIC_LOAD(&region.cursor));
}

/* (used, resident) in one call and one small tuple: for samplers. */
static PyObject *
core_sample(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        return Py_BuildValue("(iO)", 0, Py_None);
    }
    uintptr_t cursor;
    uint64_t consumed;
    uint64_t used = region_used(&consumed, &cursor, NULL);
    return Py_BuildValue("(KN)", (unsigned long long)used,
                         region_resident(cursor));
}
