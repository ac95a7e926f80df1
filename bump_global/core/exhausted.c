/*
 * core/exhausted.c -- what happens when the region cannot serve a request
 * (it is full, or the size is one CPython would refuse): the `on_exhausted`
 * policy.  Cold path only.
 *
 * "fallback": the allocator saved at install serves the request (counted);
 * its pointers are outside the region, so free/realloc forward them.
 * "error": NULL, and CPython raises MemoryError.  Since frees give nothing
 * back, a program whose region is full could not even build the traceback;
 * so the first failure for lack of room releases the emergency reserve
 * (EMERGENCY_RESERVE bytes of budget beyond `size`, room the small area
 * keeps for it) for the unwinding that follows.
 *
 * The report guard (report_guard, internal.h): while on, every policy falls
 * back (a report that runs in a full region under "error" can still import
 * and format), and the released emergency reserve is left to the program
 * (charge(), region.c), which still needs it after the report.  Guarded
 * allocations count as fallbacks.
 */

static NOINLINE void *
exhausted(const domain_t *d, size_t nelem, size_t elsize, int zero)
{
    size_t n = nelem * elsize;  /* callers checked the product */
    if ((region.on_exhausted == ON_EXHAUSTED_FALLBACK || ATOMIC_LOAD(&report_guard)) &&
        n <= (size_t)PY_SSIZE_T_MAX) {
        void *p = zero ? d->prev->calloc(d->prev->ctx, nelem, elsize)
                       : d->prev->malloc(d->prev->ctx, n);
        if (p != NULL) {
            COUNT(d, fallback_allocations, 1);
            COUNT(d, fallback_bytes, n);
            if (!fallback_add(p)) {
                COUNT(d, fallback_untracked, 1);
            }
            return p;
        }
    }
    COUNT(d, failed_allocations, 1);
    if (region.on_exhausted == ON_EXHAUSTED_ERROR && n <= EMERGENCY_RESERVE &&
        ATOMIC_LOAD(&region.budget) == region.size) {
        /* The region is full (not merely too small for a huge request):
         * release the emergency reserve for the unwinding that follows. */
        ATOMIC_STORE(&region.budget, region.size + EMERGENCY_RESERVE);
    }
    return NULL;
}

/* report_guard(on) -> the previous state. */
static PyObject *
core_report_guard(PyObject *self, PyObject *on)
{
    int flag = PyObject_IsTrue(on);
    if (flag < 0) {
        return NULL;
    }
    uintptr_t before = ATOMIC_LOAD(&report_guard);
    ATOMIC_STORE(&report_guard, (uintptr_t)flag);
    return PyBool_FromLong((long)before);
}
