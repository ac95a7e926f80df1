/*
 * core/exhausted.c -- what happens when the region cannot serve a request
 * (it is full, or the size is one CPython would refuse): the `on_exhausted`
 * policy.  Cold path only; no lock (atomics), nothing allocated from Python's
 * allocators, no wait: a hook that gets here returns, or ends the process.
 *
 * "fallback": the allocator saved at install serves the request (counted);
 * its pointers are outside the region, so free/realloc forward them.
 *
 * "error": NULL, and CPython raises MemoryError -- once.  Since frees give
 * nothing back, the program that catches it, and CPython printing its
 * traceback, need memory the full region no longer has; and a MemoryError
 * raised inside that unwinding, rather than in the program's own code, is one
 * CPython does not always survive (below).  So:
 *   1. A request larger than the whole region can never fit: NULL, nothing
 *      else.  Neither can one that still leaves the region UNWIND_ROOM or
 *      more: NULL (the program asked for too much, the region is not full).
 *   2. Any other failure means the region is full: the first one returns
 *      NULL -- the program's MemoryError, whatever the size it asked for --
 *      and releases the emergency reserve (EMERGENCY_RESERVE bytes of budget
 *      beyond `size`, room the small area keeps for it).  From then on the
 *      program is unwinding.
 *   3. While unwinding, a request the reserve could serve (at most
 *      EMERGENCY_RESERVE bytes) that no longer fits is never refused: the
 *      previous allocator serves it (counted as a fallback), up to
 *      UNWIND_ALLOWANCE bytes in all; so do reallocs of its blocks, charged
 *      the same way (unwind_may_realloc).  Larger requests get NULL, as in 1.
 *   4. When that is used up too, the process ends: one line on stderr saying
 *      so, then _Exit(EXHAUSTED_EXIT_STATUS).  So after the program's
 *      MemoryError no request the reserve could serve ever fails again.
 *
 * Why the unwinding must never see a second MemoryError: CPython has places
 * that, once every allocation fails, loop or wait forever.
 *   - The spin (3.11 to 3.13; 100% CPU in our allocation path).  The eval
 *     loop's exception_unwind (Python/ceval.c), entering an except/finally
 *     handler that needs the frame's last instruction, pushes it as an int:
 *     PyLong_FromLong(lasti), an allocation past the small-int cache (256).
 *     If that fails it does `goto exception_unwind`, finds the same handler,
 *     and allocates again, forever.  On 3.13 printing an uncaught exception
 *     imports `traceback` (_PyErr_Display -> PyImport_ImportModule); when
 *     memory runs out inside that module's execution, the unwinding passes
 *     importlib's _load_unlocked, whose `except:` handler is at offset 368:
 *     the stack seen was arena_bump_cold under _PyErr_Display ->
 *     import_find_and_load.  (Plain 3.13 does the same under
 *     _testcapi.set_nomemory; 3.14 and 3.15 did not.)  With the old policy that happened once the
 *     4 MiB reserve was used up -- as printing one traceback alone does on
 *     3.14 and 3.15: 10 and 20 MiB of bump allocations for the traceback
 *     module and what it imports (re, enum, dataclasses, ...).
 *   - The hang (3.9 to 3.15; asleep).  threading.Thread.start() waits for the
 *     new thread's _started event with no timeout; the new thread sets it in
 *     _bootstrap_inner() only after _set_ident() and _set_native_id() (3.14+:
 *     _set_os_name()), which allocate.  A MemoryError there kills the thread
 *     before it sets the event (its `finally: _delete()` then fails with
 *     KeyError) and the parent sleeps in Condition.wait() forever.  With the
 *     old policy (the reserve released only by a failed request of at most
 *     4 MiB, and that request failing anyway) a program whose MemoryError
 *     came from a list growing by more than 4 MiB got its next small failure
 *     wherever its handler was: in the thread it had just started (the hang),
 *     or in print() ("lost sys.stderr", exit status 120).
 * The first MemoryError itself still lands wherever the region fills: a
 * thread started at that very moment can die of it before it says it
 * started, and Thread.start() then waits forever -- CPython's to fix; the
 * allocator cannot tell that request from any other.
 *
 * UNWIND_ROOM is UNWIND_ALLOWANCE: a region with that much room left can
 * serve the unwinding itself, so a failure there is the program's own big
 * request, not a full region.  (With a shared budget, core/budget.c, room is
 * the smaller of the region's and the program's.)
 *
 * The report guard (report_guard, internal.h): while on, every policy falls
 * back (a report that runs in a full region under "error" can still import
 * and format), the allowance is not touched, and the released emergency
 * reserve is left to the program (charge(), region.c), which still needs it
 * after the report.  Guarded allocations count as fallbacks.
 */

#define UNWIND_ALLOWANCE ((uint64_t)64 << 20)  /* the previous allocator's, step 3 */
#define UNWIND_ROOM UNWIND_ALLOWANCE             /* room that makes a failure no exhaustion */
#define EXHAUSTED_EXIT_STATUS 1                  /* step 4: as an uncaught MemoryError */

static uint64_t unwind_served;  /* atomic: bytes step 3 had the previous allocator serve */

/* Bytes the program may still take: the budget less what both areas took,
 * and no more than the shared budget has left (core/budget.c). */
static uint64_t
room_left(void)
{
    uint64_t budget = ATOMIC_LOAD(&region.budget), charged = ATOMIC_LOAD(&region.charged);
    uint64_t room = budget > charged ? budget - charged : 0;
    shared_budget_t *s = shared_budget;
    if (s != NULL && shared_slot != NULL) {
        uint64_t limit = s->limit + (budget - region.size), used = shared_used(s);
        uint64_t shared_room = limit > used ? limit - used : 0;
        room = shared_room < room ? shared_room : room;
    }
    return room;
}

/* The previous allocator serves a request (counted as a fallback); NULL if it
 * cannot. */
static void *
serve_previous(const domain_t *d, size_t nelem, size_t elsize, int zero)
{
    size_t n = nelem * elsize;
    void *p = zero ? d->prev->calloc(d->prev->ctx, nelem, elsize)
                   : d->prev->malloc(d->prev->ctx, n);
    if (p != NULL) {
        COUNT(d, fallback_allocations, 1);
        COUNT(d, fallback_bytes, n);
        if (!fallback_add(p)) {
            COUNT(d, fallback_untracked, 1);
        }
    }
    return p;
}

/* Take n bytes of the unwinding allowance: 0 if it has not that much left. */
static int
unwind_take(uint64_t n)
{
    uint64_t have = ATOMIC_LOAD(&unwind_served);
    for (;;) {  /* retried only when another thread took some meanwhile */
        if (n > UNWIND_ALLOWANCE || have > UNWIND_ALLOWANCE - n) {
            return 0;
        }
        if (ATOMIC_CAS(&unwind_served, have, have + n)) {
            return 1;
        }
    }
}

/* Append the decimal digits of v to *at (no allocation, no locale). */
static void
put_decimal(char **at, uint64_t v)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (k > 0) {
        *(*at)++ = digits[--k];
    }
}

static void
put_text(char **at, const char *text)
{
    size_t len = strlen(text);
    memcpy(*at, text, len);
    *at += len;
}

/* Step 4: say why in one line on stderr, and end the process.  stdio's
 * stderr is unbuffered (nothing to allocate); buffers Python had not flushed
 * are lost, as at any _exit. */
static void
exhausted_exit(size_t n)
{
    char line[512];
    char *at = line;
    put_text(&at, "bump_global: out of memory: the region (");
    int in_mib = (region.size & (((uintptr_t)1 << 20) - 1)) == 0;
    put_decimal(&at, (uint64_t)(in_mib ? region.size >> 20 : region.size));
    put_text(&at, in_mib ? " MiB" : " bytes");
    put_text(&at, ") is full and so is what on_exhausted='error' keeps for handling "
                  "the MemoryError (a ");
    put_decimal(&at, (uint64_t)(EMERGENCY_RESERVE >> 20));
    put_text(&at, " MiB reserve, then ");
    put_decimal(&at, UNWIND_ALLOWANCE >> 20);
    put_text(&at, " MiB of the previous allocator); a request of ");
    put_decimal(&at, (uint64_t)n);
    put_text(&at, " bytes cannot be served, ending the process (exit status ");
    put_decimal(&at, EXHAUSTED_EXIT_STATUS);
    put_text(&at, "): give it a larger size, or on_exhausted='fallback'\n");
    fwrite(line, 1, (size_t)(at - line), stderr);
    fflush(stderr);
    _Exit(EXHAUSTED_EXIT_STATUS);
}

static NOINLINE void *
exhausted(const domain_t *d, size_t nelem, size_t elsize, int zero)
{
    size_t n = nelem * elsize;  /* callers checked the product */
    int guarded = ATOMIC_LOAD(&report_guard) != 0;
    if ((region.on_exhausted == ON_EXHAUSTED_FALLBACK || guarded) &&
        n <= (size_t)PY_SSIZE_T_MAX) {
        void *p = serve_previous(d, nelem, elsize, zero);
        if (p != NULL) {
            return p;
        }
    }
    if (region.on_exhausted == ON_EXHAUSTED_ERROR && !guarded && n <= region.size) {
        int unwinding = ATOMIC_LOAD(&region.budget) != region.size;
        if (!unwinding && room_left() < UNWIND_ROOM) {
            /* Step 2: the region is full.  This failure is the program's
             * MemoryError; the reserve is for the unwinding that follows. */
            ATOMIC_STORE(&region.budget, region.size + EMERGENCY_RESERVE);
        }
        else if (unwinding && n <= EMERGENCY_RESERVE) {
            /* Step 3, or 4 when the allowance is used up.  The reserve is part of
             * the budget now, and none of it was left for this request. */
            ASSERT(ATOMIC_LOAD(&region.budget) == region.size + EMERGENCY_RESERVE);
            if (unwind_take(n)) {
                void *p = serve_previous(d, nelem, elsize, zero);
                if (p != NULL) {
                    return p;
                }
            }
            exhausted_exit(n);
        }
    }
    COUNT(d, failed_allocations, 1);
    return NULL;
}

/* Step 3 for a fallback block being reallocated (hooks.c, realloc_foreign):
 * while unwinding, and not guarded, the previous allocator's realloc is taken
 * from the allowance like a new request of n bytes, so a buffer the handler
 * grows cannot escape it.  1: go ahead; 0: refused, counted (larger than the
 * reserve could serve: the caller returns NULL); the process ends when the
 * allowance is used up (step 4). */
static int
unwind_may_realloc(const domain_t *d, size_t n)
{
    if (region.on_exhausted != ON_EXHAUSTED_ERROR || ATOMIC_LOAD(&report_guard) ||
        ATOMIC_LOAD(&region.budget) == region.size) {
        return 1;
    }
    if (n > EMERGENCY_RESERVE) {
        COUNT(d, failed_allocations, 1);
        return 0;
    }
    if (!unwind_take(n)) {
        exhausted_exit(n);
    }
    return 1;
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
