/*
 * core/module.c -- the module bump_global._core: its functions and constants.
 * The test probes and the microbenchmarks are in bump_global._testing.
 */

static PyMethodDef core_methods[] = {
    RECORDER_METHODS
    SITES_METHODS
    TRACE_METHODS
    {"install", core_install, METH_VARARGS,
     "install(mapping, base, size, committed, commit_step, options)\n"
     "Install the hooks over a reserved region (see bump_global.install); `options` is a\n"
     "dict of every install option but the size, by name, a choice as its code."},
    {"config", core_config, METH_NOARGS,
     "config() -> the options install() was given, with the size as installed (a new\n"
     "dict), or None before install."},
    {"stats", core_stats, METH_NOARGS,
     "stats() -> tuple of counters (see bump_global.stats) or None."},
    {"reserve", core_reserve, METH_O,
     "reserve(n) -> address of n bytes of fresh, never-unmapped address space\n"
     "(Linux, MAP_NORESERVE), or None where this cannot be had."},
    {"buffer_address", core_buffer_address, METH_O,
     "buffer_address(obj) -> address of obj's buffer (e.g. an mmap object)."},
    {"prefault_counts", core_prefault_counts, METH_NOARGS,
     "prefault_counts() -> (bytes the thread faulted ahead, bytes it left because no\n"
     "core was idle, bytes the program populated itself meanwhile)."},
    {"prefault_stop", core_prefault_stop, METH_NOARGS,
     "prefault_stop(): stop the prefault thread until it is next needed."},
    {"sample", core_sample, METH_NOARGS,
     "sample() -> (used, resident): bytes handed out and resident bytes of the region."},
    {"histogram", core_histogram, METH_NOARGS,
     "histogram() -> ((upper_bound, count, bytes), ...) or None if off."},
    {"report_guard", core_report_guard, METH_O,
     "report_guard(on) -> the previous state.  While on, an allocation the region cannot\n"
     "serve goes to the previous allocator whatever on_exhausted says (for reports)."},
    {"share_budget", core_share_budget, METH_VARARGS,
     "share_budget(fd, limit) -> fd of a new shared budget (fd < 0), -1 when the budget\n"
     "page fd opens was joined, or None where it cannot be had (see core/budget.c)."},
    {"shared_budget", core_shared_budget, METH_NOARGS,
     "shared_budget() -> (limit, used, own, processes, refusals, refused here) or None."},
    {"region_resident", core_region_resident, METH_NOARGS,
     "region_resident() -> resident bytes of the used parts of the region, or None."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "bump_global._core",
    "The allocator hooks of bump_global (use the bump_global package).",
    -1, core_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__core(void)
{
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "ALIGNMENT", (long)ALIGNMENT) < 0 ||
        PyModule_AddIntConstant(m, "MIN_SIZE", (long)MIN_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "EMERGENCY_RESERVE", (long)EMERGENCY_RESERVE) < 0 ||
#ifdef Py_GIL_DISABLED
        PyModule_AddIntConstant(m, "FREE_THREADED", 1) < 0
#else
        PyModule_AddIntConstant(m, "FREE_THREADED", 0) < 0
#endif
    ) {
        Py_DECREF(m);
        return NULL;
    }
    /* The names of stats()'s fields, in its order. */
    static const char *const names[] = {
#define NAME(name) #name,
        STATS_SIZES(NAME) COUNTERS(NAME)
#undef NAME
    };
    Py_ssize_t count = (Py_ssize_t)(sizeof(names) / sizeof(names[0]));
    PyObject *fields = PyTuple_New(count);
    if (fields == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyUnicode_InternFromString(names[i]);
        if (name == NULL) {
            Py_DECREF(fields);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(fields, i, name);
    }
    if (PyModule_AddObject(m, "STATS_FIELDS", fields) < 0) {
        Py_DECREF(fields);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
