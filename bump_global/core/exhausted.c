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
 */

static NOINLINE void *
exhausted(const domain_t *d, size_t nelem, size_t elsize, int zero)
{
    size_t n = nelem * elsize;  /* callers checked the product */
    if (region.on_exhausted == ON_EXHAUSTED_FALLBACK && n <= (size_t)PY_SSIZE_T_MAX) {
        void *p = zero ? d->prev->calloc(d->prev->ctx, nelem, elsize)
                       : d->prev->malloc(d->prev->ctx, n);
        if (p != NULL) {
            COUNT(d, fallback_allocations, 1);
            COUNT(d, fallback_bytes, n);
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
