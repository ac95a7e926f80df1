/*
 * core/install.c -- install(): check the region and configuration, set the
 * state up, and install the hooks.
 *
 * We install our functions with the previous allocator's ctx, so a thread
 * that reads a mix of old and new fields of the struct (CPython reads it
 * without a lock) still passes the right ctx to the previous functions.  RAW
 * is installed in two steps: first free/realloc (which forward foreign
 * pointers), then malloc/calloc, so no thread can hand a region pointer to the
 * old free.  Nothing installed is ever uninstalled.
 *
 * The region is never unmapped: install() holds a buffer export on the mmap
 * object that maps it (region_pin) for the life of the process, so neither
 * close() nor interpreter shutdown can tear it down.
 */

/* fork() copies a lock in whatever state another thread left it: hold them
 * all across the fork (in the lock order) so the child gets them unlocked and
 * consistent. */
static void
atfork_prepare(void)
{
    LOCK(raw_lock);
    LOCK(commit_lock);
    LOCK(prefault.lock);
    LOCK(fallback.lock);
    sites_atfork_prepare();
}

static void
atfork_parent(void)
{
    sites_atfork_parent();
    UNLOCK(fallback.lock);
    UNLOCK(prefault.lock);
    UNLOCK(commit_lock);
    UNLOCK(raw_lock);
}

static void
atfork_child(void)
{
    /* The thread did not follow; the next ask restarts it.  It may have been
     * inside the condition wait at the fork, leaving the condition variable's
     * internal state mid-way: make both anew rather than trust the copy. */
    prefault.running = 0;
    prefault.stopped_at = 0;  /* the child's count of threads is not checked */
    prim_lock_reinit(&prefault.lock);
    prim_cond_reinit(&prefault.wake);
    UNLOCK(fallback.lock);
    UNLOCK(commit_lock);
    UNLOCK(raw_lock);
    shared_budget_atfork_child();
    sites_atfork_child();
}

static void
install_domain(PyMemAllocatorDomain which, const domain_t *d,
               void *(*m)(void *, size_t), void *(*c)(void *, size_t, size_t),
               void *(*r)(void *, void *, size_t), void (*f)(void *, void *))
{
    PyMem_GetAllocator(which, d->prev);
    /* Step 1: free/realloc first (they forward what is not ours), so no
     * thread can pass a region pointer to the previous free. */
    PyMemAllocatorEx hooks = {d->prev->ctx, d->prev->malloc, d->prev->calloc, r, f};
    PyMem_SetAllocator(which, &hooks);
    FENCE();
    hooks.malloc = m;
    hooks.calloc = c;
    PyMem_SetAllocator(which, &hooks);
    FENCE();
}

static Py_buffer region_pin;

static PyObject *
core_buffer_address(PyObject *self, PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *address = PyLong_FromVoidPtr(view.buf);
    PyBuffer_Release(&view);
    return address;
}

/* reserve(n) -> the address of n bytes of fresh address space, or None: the
 * BUMP_GLOBAL=1 start-up fast path (bump_global/_startup.py) reserves here
 * instead of importing mmap; install() then gets mapping None (nothing to
 * pin: this mapping is never unmapped). */
static PyObject *
core_reserve(PyObject *self, PyObject *arg)
{
    size_t n = PyLong_AsSize_t(arg);
    if (n == (size_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    void *p = n ? prim_reserve(n) : NULL;
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    return PyLong_FromVoidPtr(p);
}

/* The options the engine reads, by name, from install()'s mapping (Python's one
 * option table, bump_global/_config.py, gives them: a choice as its code).  The
 * mapping itself is kept, with the size, for config(). */
static PyObject *installed_options;

/* options[name] as an int (a bool is 0 or 1); -1 with an exception if missing. */
static int
option_int(PyObject *options, const char *name, int *out)
{
    PyObject *value = PyDict_GetItemString(options, name);  /* borrowed */
    if (value == NULL) {
        PyErr_Format(PyExc_ValueError, "install(): option %s is missing", name);
        return -1;
    }
    long v = PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static PyObject *
core_install(PyObject *self, PyObject *args)
{
    PyObject *mapping, *options;
    unsigned long long base, size, committed, commit_step;
    int scope, on_exhausted, histogram, prefault_on, huge_pages, reclaim;
    if (!PyArg_ParseTuple(args, "OKKKKO!:install", &mapping, &base, &size, &committed,
                          &commit_step, &PyDict_Type, &options)) {
        return NULL;
    }
    if (option_int(options, "scope", &scope) < 0 ||
        option_int(options, "on_exhausted", &on_exhausted) < 0 ||
        option_int(options, "histogram", &histogram) < 0 ||
        option_int(options, "prefault", &prefault_on) < 0 ||
        option_int(options, "huge_pages", &huge_pages) < 0 ||
        option_int(options, "reclaim", &reclaim) < 0) {
        return NULL;
    }
    if (region.installed) {
        PyErr_SetString(PyExc_RuntimeError, "bump_global is already installed");
        return NULL;
    }
    if (mapping != Py_None) {
        if (PyObject_GetBuffer(mapping, &region_pin, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        if ((uintptr_t)region_pin.buf != (uintptr_t)base ||
            (unsigned long long)region_pin.len < 2 * size + EMERGENCY_RESERVE) {
            PyBuffer_Release(&region_pin);
            PyErr_SetString(PyExc_ValueError, "the mapping does not hold the region");
            return NULL;
        }
    }
    /* The reservation: the small area (with the emergency reserve), then the
     * large area. */
    unsigned long long span = 2 * size + EMERGENCY_RESERVE;
    if (base == 0 || base % ALIGNMENT || size < MIN_SIZE || size % ALIGNMENT ||
        committed > span || base + span < base ||
        (committed < span && (commit_step == 0 || commit_step % ALIGNMENT)) ||
        (scope != SCOPE_OBJECTS && scope != SCOPE_PYTHON && scope != SCOPE_RAW) ||
        (on_exhausted != ON_EXHAUSTED_FALLBACK && on_exhausted != ON_EXHAUSTED_ERROR) ||
        reclaim < RECLAIM_NONE || reclaim > RECLAIM_CLASSES) {
        PyErr_SetString(PyExc_ValueError, "invalid region or configuration");
        goto unpin;
    }
#ifdef Py_GIL_DISABLED
    if (scope != SCOPE_RAW) {
        PyErr_SetString(PyExc_ValueError,
                        "only the RAW domain can be replaced on a free-threaded build");
        goto unpin;
    }
#endif
    PyObject *kept = PyDict_Copy(options);
    PyObject *size_obj = PyLong_FromUnsignedLongLong(size);
    if (kept == NULL || size_obj == NULL || PyDict_SetItemString(kept, "size", size_obj) < 0) {
        Py_XDECREF(kept);
        Py_XDECREF(size_obj);
        goto unpin;
    }
    Py_DECREF(size_obj);
    if (reclaim == RECLAIM_CLASSES && scope != SCOPE_RAW) {
        /* One byte and one class_page_t per class page of the small area
         * (size + reserve); calloc's pages stay untouched (zero) until a class
         * page lands in them. */
        size_t npages = (size_t)((size + EMERGENCY_RESERVE) >> CLASS_SHIFT) + 1;
        class_map = calloc(npages, 1);
        class_pages = calloc(npages, sizeof(class_page_t));
        if (class_map == NULL || class_pages == NULL) {
            free(class_map);
            free(class_pages);
            class_map = NULL;
            class_pages = NULL;
            Py_DECREF(kept);
            PyErr_NoMemory();
            goto unpin;
        }
        classes_init();
    }
    if (prim_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
        Py_DECREF(kept);
        PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
        goto unpin;
    }
    installed_options = kept;  /* for config(); kept for the life of the process */
    region.base = (uintptr_t)base;
    region.size = (uintptr_t)size;
    region.end = region.base + region.size + EMERGENCY_RESERVE;
    region.large_end = region.end + region.size;
    region.budget = region.size;
    region.charged = 0;
    region.cursor = region.base;
    if (committed == span) {
        region.committed = region.end;
        region.large_committed = region.large_end;
    }
    else {
        uintptr_t small = region.end - region.base;
        region.committed = region.base + (uintptr_t)(committed < small ? committed : small);
        region.large_committed = region.end;
    }
    region.commit_step = (uintptr_t)(commit_step ? commit_step : size);
    region.page = prim_page_size();
    large.top = region.end;
    prefault.enabled = prefault_on && PRIM_HAVE_PREFAULT;
    region.scope = scope;
    region.on_exhausted = on_exhausted;
    region.histogram = histogram;
    region.huge_pages = huge_pages;
    region.reclaim = reclaim;
    region.installed = 1;
    FENCE();
#define INSTALL(DOMAIN, name)                                                  \
    if (histogram) {                                                           \
        install_domain(DOMAIN, &name##_dom, name##_malloc_h, name##_calloc_h,   \
                       name##_realloc_h, name##_inner.free);                    \
    }                                                                          \
    else {                                                                     \
        install_domain(DOMAIN, &name##_dom, name##_inner.malloc,                \
                       name##_inner.calloc, name##_inner.realloc,               \
                       name##_inner.free);                                      \
    }
    choose_hooks(reclaim);
    if (scope == SCOPE_PYTHON || scope == SCOPE_RAW) {
        INSTALL(PYMEM_DOMAIN_RAW, raw)
    }
    if (scope == SCOPE_PYTHON) {
        INSTALL(PYMEM_DOMAIN_MEM, mem)
    }
    if (scope == SCOPE_PYTHON || scope == SCOPE_OBJECTS) {
        INSTALL(PYMEM_DOMAIN_OBJ, obj)
    }
#undef INSTALL
    Py_RETURN_NONE;
unpin:
    if (mapping != Py_None) {
        PyBuffer_Release(&region_pin);
    }
    return NULL;
}
