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

static void
add_counters(counters_t *sum, const counters_t *c)
{
#define ADD_COUNTER(name) sum->name += c->name;
    COUNTERS(ADD_COUNTER)
#undef ADD_COUNTER
}

/* Bytes handed out: what the small arenas took, less the unused tails of
 * their chunks, plus the large area (blocks and headers).  Sets *consumed to
 * all the bytes taken; optionally adds up the counters.  The GIL (held by the
 * caller) guards the GIL arena and the large area; raw_lock the RAW arena. */
static uint64_t
region_used(uint64_t *consumed, uintptr_t *cursor, counters_t *sum)
{
    uint64_t unused_bytes = gil_arena.waste + (gil_arena.chunk_end - gil_arena.top) +
                            classes_unused(sum);
    uint64_t large_bytes = large.top - region.end;
    LOCK(raw_lock);
    unused_bytes += raw_arena.waste + (raw_arena.chunk_end - raw_arena.top);
    *cursor = ATOMIC_LOAD(&region.cursor);
    if (sum != NULL) {
        add_counters(sum, &gil_arena.c);
        add_counters(sum, &raw_arena.c);
    }
    UNLOCK(raw_lock);
    *consumed = (uint64_t)(*cursor - region.base) + large_bytes;
    return *consumed - unused_bytes;
}

/* The five sizes, then the counters in COUNTERS order (the names of all of
 * them are STATS_FIELDS, module.c). */
#define STATS_SIZES(X) X(base) X(reserved) X(used) X(consumed) X(committed)

static PyObject *
core_stats(PyObject *self, PyObject *unused)
{
    if (!region.installed) {
        Py_RETURN_NONE;
    }
    counters_t sum = {0};
    uintptr_t cursor;
    uint64_t consumed;
    uint64_t used = region_used(&consumed, &cursor, &sum);
    uint64_t committed = (ATOMIC_LOAD(&region.committed) - region.base) +
                         (ATOMIC_LOAD(&region.large_committed) - region.end);
    /* by the thread, or by the program one chunk at a time while no core was idle */
    sum.bytes_prefaulted = ATOMIC_LOAD(&prefault.bytes) + ATOMIC_LOAD(&prefault.by_program);
    sum.samples = ATOMIC_LOAD(&sites.seq);  /* one sequence for every domain */
    uint64_t base = region.base, reserved = region.size;
    uint64_t values[] = {
#define VALUE(name) name,
        STATS_SIZES(VALUE)
#undef VALUE
#define VALUE(name) sum.name,
        COUNTERS(VALUE)
#undef VALUE
    };
    Py_ssize_t count = (Py_ssize_t)(sizeof(values) / sizeof(values[0]));
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
