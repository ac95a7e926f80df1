/*
 * core/prefault.c -- the prefault thread and transparent huge pages.
 *
 * On a machine where a page fault costs microseconds, a bump allocator that
 * never reuses memory pays one per 4 KiB handed out.  With `prefault`, a
 * helper thread faults pages in ahead of each area's top (prim_populate), on
 * the other core, off the critical path -- only while a core is idle
 * (prim_no_idle_core, checked by the thread once per pass): on a machine whose
 * cores are all busy (the program's own workers, or other programs) faulting
 * ahead saves no time and takes CPU from someone, so the thread leaves those
 * pages to the program (counted in prefault.skipped: prefault_counts()).  It
 * starts only once PREFAULT_START bytes were taken, so small programs pay
 * nothing, and it stays at most
 * `ahead` bytes (1/16 of what was taken, 2 to 8 MiB) in front of the top.  It
 * never writes data.  With `huge_pages`, the region is madvised MADV_HUGEPAGE
 * (transparent huge pages in "madvise" mode) at the same moment: a fault then
 * maps 2 MiB, and RSS grows in 2 MiB steps, which only a program past
 * PREFAULT_START can afford.
 *
 * The cold paths that move an area's top (a new chunk, a large block, a large
 * block grown in place) call area_grew(), which does both.  Linux only
 * (PRIM_HAVE_PREFAULT); elsewhere `prefault` stays disabled.
 */
#define PREFAULT_START ((uintptr_t)32 << 20)
#define PREFAULT_STEP ((uintptr_t)2 << 20)
/* The window ahead: taken / 16, 2 to 8 MiB.  It only needs to cover the time
 * the thread takes to wake up and populate a step: a wider one bought no
 * speed and cost up to twice its size in peak RSS (one window per area):
 * 64 MiB windows put the tuples workload at 797 MiB peak, 8 MiB at 685, for
 * pymalloc's 663, at the same wall time (docs/benchmarks.md, "Prefault
 * window": 7 paired rounds against a build with the old window). */
#define PREFAULT_AHEAD_DIV 16
#define PREFAULT_AHEAD_MIN ((uintptr_t)2 << 20)
#define PREFAULT_AHEAD_MAX ((uintptr_t)8 << 20)

typedef struct {
    uintptr_t want;   /* atomic: fault in up to here */
    uintptr_t floor;  /* atomic: never below here (the top when asked) */
    uintptr_t done;   /* atomic: faulted in up to here; written by the thread */
} prefault_range_t;

static struct {
    int enabled;
    int running;        /* the thread exists in this process (under `lock`) */
    uintptr_t stop;     /* atomic: asks the thread to exit (before os.fork) */
    int use_madvise;    /* MADV_POPULATE_WRITE works (the thread's own) */
    prefault_range_t area[2];  /* 0: small area, 1: large area */
    uint64_t bytes;     /* atomic */
    uint64_t skipped;   /* atomic: bytes the thread left: no core was idle */
    uintptr_t busy;     /* atomic: 1 while no core is idle (the program populates) */
    uintptr_t since_check;  /* bytes the program populated since it last looked */
    uint64_t by_program;    /* atomic: bytes the program populated itself */
    uintptr_t populated;    /* atomic: the program populated the small area up to here */
    uint64_t stopped_at;    /* prim_now_ns() of the last prefault_stop (under `lock`) */
    prim_thread_t thread;
    prim_lock_t lock;
    prim_cond_t wake;
} prefault = {.use_madvise = 1, .lock = PRIM_LOCK_INIT, .wake = PRIM_COND_INIT};

static void
prefault_range(uintptr_t lo, uintptr_t hi)
{
    lo &= ~(region.page - 1);
    hi = ROUND_UP(hi, region.page);
    prim_populate(lo, hi, &prefault.use_madvise);
    ATOMIC_ADD(&prefault.bytes, hi - lo);
}

static void *
prefault_main(void *unused)
{
    (void)unused;
    while (!ATOMIC_LOAD(&prefault.stop)) {
        int worked = 0;
        /* Checked once per pass (at most PREFAULT_STEP per area): with no idle
         * core, the pass skips its ranges and the program faults them itself,
         * at the same cost, without a thread competing for its cores. */
        int busy = -1;
        for (int i = 0; i < 2; i++) {
            prefault_range_t *r = &prefault.area[i];
            uintptr_t from = ATOMIC_LOAD(&r->done);
            uintptr_t floor = ATOMIC_LOAD(&r->floor);
            uintptr_t want = ATOMIC_LOAD(&r->want);
            from = from > floor ? from : floor;
            if (from < want && busy < 0) {
                busy = prim_no_idle_core();
                if (busy) {
                    ATOMIC_STORE(&prefault.busy, 1);  /* the program takes over */
                }
            }
            if (from >= want || busy > 0) {
                ATOMIC_STORE(&r->done, from > want ? from : want);  /* nothing left below `want` */
                if (busy > 0) {
                    ATOMIC_ADD(&prefault.skipped, want > from ? want - from : 0);
                }
            }
            else {
                uintptr_t stop = want - from > PREFAULT_STEP ? from + PREFAULT_STEP : want;
                prefault_range(from, stop);
                ATOMIC_STORE(&r->done, stop);
                worked = 1;
            }
        }
        if (!worked) {
            LOCK(prefault.lock);
            while (!ATOMIC_LOAD(&prefault.stop) &&
                   ATOMIC_LOAD(&prefault.area[0].done) >= ATOMIC_LOAD(&prefault.area[0].want) &&
                   ATOMIC_LOAD(&prefault.area[1].done) >= ATOMIC_LOAD(&prefault.area[1].want)) {
                prim_cond_wait(&prefault.wake, &prefault.lock);
            }
            UNLOCK(prefault.lock);
        }
    }
    return NULL;
}

/* Huge pages: 2 MiB per fault instead of 4 KiB, once (the first caller wins). */
static void
huge_pages_apply(void)
{
    uintptr_t off = 0;
    if (region.huge_pages && ATOMIC_CAS(&region.huge_applied, off, 1)) {
        prim_huge_pages(region.base, region.large_end - region.base);
    }
}

/* After prefault_stop (os.fork's `before` hook) the thread is not started
 * again for this long.  Since 3.12 os.fork counts the process's threads after
 * the fork, in the parent, to warn about forking a multi-threaded process; on
 * 3.13 the after_in_parent hooks run first, and an allocation there (or in the
 * fork itself) that crossed a chunk boundary restarted the thread in time to
 * be counted (seen once in CI).  Meanwhile chunks fault on demand. */
#define PREFAULT_FORK_QUIET_NS ((uint64_t)100 * 1000 * 1000)

/* Ask the thread to fault area `which` (0 small, 1 large) in ahead of `top`,
 * starting it if needed; `taken` is the budget charged so far. */
static void
prefault_ask(int which, uintptr_t top, uintptr_t taken)
{
    uintptr_t ahead = taken / PREFAULT_AHEAD_DIV;
    ahead = ahead < PREFAULT_AHEAD_MIN ? PREFAULT_AHEAD_MIN
          : ahead > PREFAULT_AHEAD_MAX ? PREFAULT_AHEAD_MAX : ahead;
    uintptr_t limit = ATOMIC_LOAD(which ? &region.large_committed : &region.committed);
    uintptr_t want = top + ahead < limit ? top + ahead : limit;
    prefault_range_t *r = &prefault.area[which];
    /* Both arenas ask for the small area: keep the highest top and want. */
    uintptr_t seen = ATOMIC_LOAD(&r->floor);
    while (seen < top && !ATOMIC_CAS(&r->floor, seen, top)) {
    }
    seen = ATOMIC_LOAD(&r->want);
    while (seen < want && !ATOMIC_CAS(&r->want, seen, want)) {
    }
    if (ATOMIC_LOAD(&r->done) >= want) {
        return;
    }
    LOCK(prefault.lock);
    if (!prefault.running && prefault.stopped_at != 0 &&
        prim_now_ns() - prefault.stopped_at < PREFAULT_FORK_QUIET_NS) {
        UNLOCK(prefault.lock);  /* just stopped for os.fork: not yet (see there) */
        return;
    }
    if (!prefault.running) {
        ATOMIC_STORE(&prefault.stop, 0);
        prefault.running = prim_thread_start(&prefault.thread, prefault_main, 64 << 10);
        if (!prefault.running) {
            prefault.enabled = 0;  /* no thread, no prefaulting: nothing breaks */
        }
    }
    prim_cond_signal(&prefault.wake);
    UNLOCK(prefault.lock);
}

/* Area `which` now reaches `top`: past PREFAULT_START, apply huge pages (if
 * asked) and ask the thread to fault ahead (if enabled) -- unless no core is
 * idle, when the program populates its new small-area chunks itself
 * (chunk_taken).  Cold paths only: once per chunk (1 MiB) or large block. */
static void
area_grew(int which, uintptr_t top)
{
    uintptr_t taken = ATOMIC_LOAD(&region.charged);
    if (taken < PREFAULT_START) {
        return;
    }
    huge_pages_apply();
    if (prefault.enabled && !ATOMIC_LOAD(&prefault.busy)) {
        prefault_ask(which, top, taken);
    }
}

/* While no core is idle, populate each new chunk of the small area [lo, hi)
 * in this thread, in one call: MADV_POPULATE_WRITE faults a whole chunk with
 * no trap per page, about 2/3 of the CPU of faulting its pages one by one
 * (scripts/perf_firsttouch.py), on the critical path but cheaper than what
 * the program would pay anyway.  Every PREFAULT_RECHECK bytes it looks again
 * (prim_no_idle_core, ~5 us) and hands back to the thread when a core is
 * idle.  Cold path: once per chunk, past PREFAULT_START.  The caller holds
 * its arena's lock. */
#define PREFAULT_RECHECK ((uintptr_t)8 << 20)
static void
chunk_taken(uintptr_t lo, uintptr_t hi)
{
    if (!prefault.enabled || !ATOMIC_LOAD(&prefault.busy) ||
        ATOMIC_LOAD(&region.charged) < PREFAULT_START) {
        return;
    }
    prefault.since_check += hi - lo;
    if (prefault.since_check >= PREFAULT_RECHECK) {
        prefault.since_check = 0;
        if (!prim_no_idle_core()) {
            ATOMIC_STORE(&prefault.busy, 0);  /* the thread takes over again */
            return;
        }
    }
    int use_madvise = ATOMIC_LOAD(&prefault.use_madvise);
    if (use_madvise) {
        /* Chunks come from the cursor in address order, so a page below the
         * high-water mark was populated already: near the end of the budget,
         * where chunks are smaller than a page, each page is populated (and
         * counted) once, not once per chunk.  The two arenas may race on the
         * mark: the loser populates a page twice, harmlessly. */
        uintptr_t done = ATOMIC_LOAD(&prefault.populated);
        lo = lo & ~(region.page - 1);
        lo = lo > done ? lo : done;
        hi = ROUND_UP(hi, region.page);
        if (hi <= lo) {
            return;
        }
        prim_populate(lo, hi, &use_madvise);
        ATOMIC_ADD(&prefault.by_program, hi - lo);
        while (done < hi && !ATOMIC_CAS(&prefault.populated, done, hi)) {
        }
    }
}

/* Stop the prefault thread and wait for it (it restarts when next needed).
 * bump_global registers this with os.register_at_fork(before=...): CPython
 * warns about fork() in a multi-threaded process, and ours would count. */
static PyObject *
core_prefault_stop(PyObject *self, PyObject *unused)
{
    LOCK(prefault.lock);
    prefault.stopped_at = prim_now_ns();
    int running = prefault.running;
    if (running) {
        ATOMIC_STORE(&prefault.stop, 1);
        prim_cond_signal(&prefault.wake);
    }
    UNLOCK(prefault.lock);
    if (running) {
        Py_BEGIN_ALLOW_THREADS
        prim_thread_join(prefault.thread);
        Py_END_ALLOW_THREADS
        LOCK(prefault.lock);
        prefault.running = 0;
        UNLOCK(prefault.lock);
    }
    Py_RETURN_NONE;
}

/* (bytes faulted ahead by the thread, bytes it left because no core was
 * idle, bytes the program populated itself meanwhile): for measurements
 * (scripts/perf_*.py). */
static PyObject *
core_prefault_counts(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(KKK)", (unsigned long long)ATOMIC_LOAD(&prefault.bytes),
                         (unsigned long long)ATOMIC_LOAD(&prefault.skipped),
                         (unsigned long long)ATOMIC_LOAD(&prefault.by_program));
}
