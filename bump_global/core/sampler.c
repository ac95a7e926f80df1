/*
 * bump_global/core/sampler.c -- the native timeline sampler of
 * `bump-global run --sample MS --timeline FILE` (bump_global/_timeline.py).
 *
 * Included into _core.c (one translation unit) just before core/module.c,
 * whose method table takes its entries through SAMPLER_METHODS.  It reads the allocator's
 * static state (region, gil_arena, raw_arena, large, classes, class_arena,
 * class_map) and never writes it.
 *
 * Contract
 * ========
 *
 * One pthread per process samples, at ticks of `interval` on CLOCK_MONOTONIC:
 * the time, the bytes of the region handed out (`used`, as stats().used), the
 * resident bytes of the used parts of the region (mincore) and the RSS of the
 * process (/proc/self/statm).  It never takes the GIL and never calls into
 * Python, so it keeps sampling while C code holds the GIL (a long json.loads).
 *
 * No locks of the allocator.  The thread reads the arenas without the GIL and
 * without raw_lock: every field it reads is an aligned 64-bit word, loaded with
 * a relaxed atomic load (__atomic_load_n).  This is a benign race with the
 * threads that allocate: a word is never torn, but the words of one arena may
 * come from before and after one allocation.  So the thread reads them in
 * passes, repeated (up to SAMPLER_READS) until two agree: a sample is then off
 * at most by what is allocated while it reads (well under a microsecond).  If
 * no two agree, the last pass is used, with what a half-seen chunk change
 * could make negative clamped (top > end counts as 0; used is never more than
 * what was consumed, nor below 0).  Not taking raw_lock means the sampler
 * can never slow a RAW allocation, and cannot be caught holding it by fork()
 * (atfork_prepare takes raw_lock around fork): region_used (stats.c) is
 * therefore not called from here at all.
 *
 * Ticks.  Deadlines are absolute, on the grid t0 + n * interval (t0 given at
 * start).  The first sample is taken at once; after a sample taken at time s,
 * the next deadline is the grid point nearest to s + interval (the first one
 * at or after s + interval / 2).  The thread waits for it with
 * pthread_cond_timedwait on a condition variable whose clock is
 * CLOCK_MONOTONIC: an absolute deadline, exactly like clock_nanosleep with
 * TIMER_ABSTIME, but stop() wakes it at once (os.fork pauses the thread, so a
 * sleeping thread would delay every fork by up to a tick).  Guarantees, on the
 * recorded times:
 *   - two consecutive samples are at least floor(interval / 2) ns apart (the
 *     wait ends only once the clock has reached the deadline);
 *   - at most one sample per slot [t0 + n*interval, t0 + (n+1)*interval):
 *     missed ticks are skipped, never caught up;
 *   - a thread that wakes less than interval / 2 late samples every grid point.
 * "At least one interval apart" cannot hold together with absolute deadlines:
 * two on-time ticks are interval + (wake-up delay difference) apart.
 *
 * Storage.  Samples (32 bytes) go to memory mapped from the OS (prim_os_alloc),
 * never from Python's allocators (a sample must not change what it measures): chunk k
 * holds SAMPLER_CHUNK0 << k samples and is mapped when first needed, so a
 * chunk never moves and readers need no lock.  The thread publishes a sample
 * by a release store of `count`; readers (with the GIL) load it with acquire.
 * If the OS refuses a chunk, the thread ends there (sampler_stop returns the
 * errno).
 *
 * Cost per sample: two passes over ~10 words (~570 with reclaim="classes"),
 * one pread of /proc/self/statm, and mincore (prim_resident) over the used
 * parts of the region: one byte per page, in calls of 4096 pages; it grows with the bytes
 * used (about 0.2 ms per GiB used, docs/cli.md), on the sampler's thread.
 *
 * Fork.  The thread does not survive fork().  _timeline.py registers
 * os.register_at_fork(before=sampler_pause, after_in_parent=sampler_resume
 * deferred to a pending call): the parent goes on sampling once os.fork has
 * returned (a gap around the fork), and CPython does not warn about forking a
 * multi-threaded process.  pthread_atfork handlers (a
 * fork from C) hold the sampler's mutexes across fork; in the child they are
 * made anew, the sampler is stopped (its samples are the parent's copy), and
 * the statm descriptor is closed: it names the parent's /proc/<pid>, and the
 * child's own sampler_start opens its own.
 *
 * Control calls (start, stop, pause, resume) are serialised by `ctl`, taken
 * with the GIL released (a thread waiting for the GIL while holding ctl
 * could otherwise deadlock with one holding the GIL and waiting for ctl).
 *
 * Only Linux has it (it needs pthreads, a CLOCK_MONOTONIC condition variable
 * and statm; hence the one platform #if outside prim_*.c); elsewhere
 * sampler_check() says why and _timeline.py uses its Python thread.
 */

#if defined(__linux__)
#  define HAVE_NATIVE_SAMPLER 1
#  include <errno.h>
#  include <fcntl.h>
#  include <math.h>
#  include <time.h>
#endif

#ifdef HAVE_NATIVE_SAMPLER

typedef struct {
    int64_t t_ns;      /* CLOCK_MONOTONIC ns since t0 */
    int64_t used;      /* bytes handed out */
    int64_t resident;  /* resident bytes of the used parts; -1 unknown */
    int64_t rss;       /* bytes; -1 if statm could not be read */
} sample_t;

#define SAMPLER_CHUNK0 ((uint64_t)4096)  /* samples in chunk 0 (128 KiB) */
#define SAMPLER_CHUNKS 40                /* chunk k: SAMPLER_CHUNK0 << k samples */
#define SAMPLER_READS 4                  /* passes to get two that agree */
#define STATM_PATH "/proc/self/statm"

static struct {
    pthread_mutex_t ctl;    /* serialises start/stop/pause/resume */
    pthread_mutex_t lock;   /* guards `stop` for the wait */
    pthread_cond_t wake;    /* CLOCK_MONOTONIC; signalled by stop */
    int initialised;        /* wake has its clock; atfork handlers registered */
    int running;            /* the thread exists (under ctl) */
    int paused;             /* stopped by sampler_pause: resume restarts it */
    int stop;               /* under lock */
    int error;              /* atomic: errno that ended the thread early */
    int statm;              /* descriptor of /proc/self/statm, -1 if none */
    int64_t t0_ns;          /* grid origin, CLOCK_MONOTONIC ns */
    int64_t interval_ns;
    int64_t last_ns;        /* time of the last sample (thread-owned while running) */
    uint64_t count;         /* atomic: samples published */
    sample_t *chunk[SAMPLER_CHUNKS];  /* atomic pointers; never unmapped */
    pthread_t thread;
} sampler = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
             0, 0, 0, 0, 0, -1, 0, 0, 0, 0, {NULL}, 0};

#define RELAXED(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static int64_t
sampler_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The words `used` is computed from, read with relaxed loads.  All uint64_t:
 * no padding, so two views compare with memcmp. */
typedef struct {
    uint64_t cursor, large_top;
    uint64_t gil_waste, gil_end, gil_top;
    uint64_t raw_waste, raw_end, raw_top;
    uint64_t cls_waste, cls_end, cls_top, cls_pages;
    uint64_t cls_live_bytes;
} used_view_t;

static uint64_t
span_or_zero(uint64_t end, uint64_t top)
{
    return top > end ? 0 : end - top;  /* a half-seen chunk change */
}

static void
sampler_read_view(used_view_t *v)
{
    v->cursor = RELAXED(region.cursor);
    v->large_top = RELAXED(large.top);
    v->gil_waste = RELAXED(gil_arena.waste);
    v->gil_end = RELAXED(gil_arena.chunk_end);
    v->gil_top = RELAXED(gil_arena.top);
    v->raw_waste = RELAXED(raw_arena.waste);
    v->raw_end = RELAXED(raw_arena.chunk_end);
    v->raw_top = RELAXED(raw_arena.top);
    v->cls_waste = v->cls_end = v->cls_top = v->cls_pages = v->cls_live_bytes = 0;
    if (RELAXED(class_map) == NULL) {
        return;
    }
    v->cls_waste = RELAXED(class_arena.waste);
    v->cls_end = RELAXED(class_arena.chunk_end);
    v->cls_top = RELAXED(class_arena.top);
    v->cls_pages = RELAXED(class_pages_taken);
    for (unsigned k = 1; k < NCLASSES; k++) {
        class_t *c = &classes[k];
        uint64_t pushes = RELAXED(c->pushes);  /* before the others: live >= 0 */
        uint64_t taken = RELAXED(c->bumps) + RELAXED(c->pops);
        uint64_t size = RELAXED(c->size);
        v->cls_live_bytes += taken > pushes ? (taken - pushes) * size : 0;
    }
}

/* Bytes handed out (as region_used computes it) and, through *view, the
 * cursor and large top it was computed from.  Needs region.installed. */
static uint64_t
sampler_used(used_view_t *view)
{
    used_view_t other;
    sampler_read_view(view);
    for (int pass = 1; pass < SAMPLER_READS; pass++) {
        sampler_read_view(&other);
        if (memcmp(&other, view, sizeof other) == 0) {
            break;
        }
        *view = other;
    }
    uint64_t consumed = (view->cursor - region.base) + (view->large_top - region.end);
    uint64_t unused_bytes = view->gil_waste + span_or_zero(view->gil_end, view->gil_top) +
                            view->raw_waste + span_or_zero(view->raw_end, view->raw_top) +
                            class_unused_bytes(view->cls_pages,
                                               view->cls_waste +
                                               span_or_zero(view->cls_end, view->cls_top),
                                               view->cls_live_bytes);
    return unused_bytes < consumed ? consumed - unused_bytes : 0;
}

/* Resident bytes of [addr, addr + length) (prim_resident: mincore, its
 * vector on this thread's stack), -1 if unknown. */
static int64_t
sampler_resident(uintptr_t addr, uintptr_t length)
{
    uint64_t bytes = 0;
    return prim_resident(addr, length, &bytes) == 1 ? (int64_t)bytes : -1;
}

/* RSS in bytes from the statm descriptor ("size resident shared ..." in
 * pages), -1 if it cannot be read. */
static int64_t
sampler_rss(int fd)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    const char *p = buf;
    while (*p >= '0' && *p <= '9') {  /* size */
        p++;
    }
    if (*p != ' ') {
        return -1;
    }
    p++;
    if (*p < '0' || *p > '9') {
        return -1;
    }
    int64_t pages = 0;
    while (*p >= '0' && *p <= '9') {
        pages = pages * 10 + (*p++ - '0');
    }
    return pages * (int64_t)sysconf(_SC_PAGESIZE);
}

static sample_t *
sampler_slot(uint64_t i, int map)
{
    unsigned k = 63 - (unsigned)__builtin_clzll(i / SAMPLER_CHUNK0 + 1);
    if (k >= SAMPLER_CHUNKS) {
        return NULL;
    }
    sample_t *chunk = __atomic_load_n(&sampler.chunk[k], __ATOMIC_ACQUIRE);
    if (chunk == NULL && map) {
        chunk = prim_os_alloc((size_t)((SAMPLER_CHUNK0 << k) * sizeof(sample_t)));
        if (chunk == NULL) {
            return NULL;
        }
        __atomic_store_n(&sampler.chunk[k], chunk, __ATOMIC_RELEASE);
    }
    if (chunk == NULL) {
        return NULL;
    }
    return &chunk[i - SAMPLER_CHUNK0 * ((1ULL << k) - 1)];
}

static void
sampler_take(sample_t *s, int64_t now)
{
    s->t_ns = now - sampler.t0_ns;
    if (__atomic_load_n(&region.installed, __ATOMIC_ACQUIRE)) {
        used_view_t v;
        s->used = (int64_t)sampler_used(&v);
        int64_t small = sampler_resident(region.base, (uintptr_t)(v.cursor - region.base));
        int64_t big = sampler_resident(region.end, (uintptr_t)(v.large_top - region.end));
        s->resident = small < 0 || big < 0 ? -1 : small + big;
    }
    else {
        s->used = 0;
        s->resident = -1;
    }
    s->rss = sampler_rss(sampler.statm);
}

/* The first grid point t0 + n * interval at or after s + interval / 2. */
static int64_t
sampler_next_deadline(int64_t s)
{
    int64_t iv = sampler.interval_ns;
    int64_t x = s + iv / 2 - sampler.t0_ns;
    int64_t n = x / iv;
    if (x % iv > 0) {
        n++;  /* ceil; C division truncates toward zero */
    }
    return sampler.t0_ns + n * iv;
}

static void *
sampler_main(void *unused)
{
    (void)unused;
    uint64_t i = sampler.count;
    int64_t deadline = i ? sampler_next_deadline(sampler.last_ns) : sampler_now_ns();
    for (;;) {
        int stopping;
        int64_t now;
        pthread_mutex_lock(&sampler.lock);
        for (;;) {
            stopping = sampler.stop;
            now = sampler_now_ns();
            if (stopping || now >= deadline) {
                break;
            }
            struct timespec ts = {(time_t)(deadline / 1000000000),
                                  (long)(deadline % 1000000000)};
            pthread_cond_timedwait(&sampler.wake, &sampler.lock, &ts);
        }
        pthread_mutex_unlock(&sampler.lock);
        if (stopping) {
            break;
        }
        sample_t *s = sampler_slot(i, 1);
        if (s == NULL) {
            __atomic_store_n(&sampler.error, errno ? errno : ENOMEM, __ATOMIC_RELAXED);
            break;
        }
        sampler_take(s, now);  /* `now` >= deadline: the guarantees hold on it */
        sampler.last_ns = now;
        __atomic_store_n(&sampler.count, ++i, __ATOMIC_RELEASE);
        deadline = sampler_next_deadline(now);
    }
    return NULL;
}

static void
sampler_atfork_prepare(void)
{
    pthread_mutex_lock(&sampler.ctl);
    pthread_mutex_lock(&sampler.lock);
}

static void
sampler_atfork_parent(void)
{
    pthread_mutex_unlock(&sampler.lock);
    pthread_mutex_unlock(&sampler.ctl);
}

static void
sampler_init_cond(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sampler.wake, &attr);
    pthread_condattr_destroy(&attr);
}

/* The thread did not follow: the child has a stopped sampler holding a copy
 * of the parent's samples.  Locks and condition made anew (the copies may be
 * mid-way); the statm descriptor names the parent's process: closed. */
static void
sampler_atfork_child(void)
{
    pthread_mutex_init(&sampler.ctl, NULL);
    pthread_mutex_init(&sampler.lock, NULL);
    sampler_init_cond();
    sampler.running = 0;
    sampler.paused = 0;
    if (sampler.statm >= 0) {
        close(sampler.statm);
        sampler.statm = -1;
    }
}

/* With ctl held.  0 or an errno. */
static int
sampler_spawn(void)
{
    sampler.stop = 0;
    int rc = pthread_create(&sampler.thread, NULL, sampler_main, NULL);
    if (rc == 0) {
        sampler.running = 1;
    }
    return rc;
}

/* With ctl held (GIL released): stop the thread and wait for it. */
static void
sampler_halt(void)
{
    if (!sampler.running) {
        return;
    }
    pthread_mutex_lock(&sampler.lock);
    sampler.stop = 1;
    pthread_cond_signal(&sampler.wake);
    pthread_mutex_unlock(&sampler.lock);
    pthread_join(sampler.thread, NULL);
    sampler.running = 0;
}

/* Opens statm and checks it parses.  -1 with errno set (EINVAL: unparsable). */
static int
sampler_open_statm(void)
{
    int fd = open(STATM_PATH, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    if (sampler_rss(fd) < 0) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

#endif /* HAVE_NATIVE_SAMPLER */

static PyObject *
core_sampler_check(PyObject *self, PyObject *unused)
{
#ifdef HAVE_NATIVE_SAMPLER
    int fd = sampler_open_statm();
    if (fd < 0) {
        return PyUnicode_FromFormat("cannot read %s (%s)", STATM_PATH, strerror(errno));
    }
    close(fd);
    Py_RETURN_NONE;
#else
    return PyUnicode_FromString("no native sampler on this platform "
                                "(it needs Linux: pthreads and /proc/self/statm)");
#endif
}

static PyObject *
core_sampler_start(PyObject *self, PyObject *args)
{
    double interval, t0;
    if (!PyArg_ParseTuple(args, "dd:sampler_start", &interval, &t0)) {
        return NULL;
    }
    if (!(interval > 0) || !isfinite(interval) || interval > 1e9 || !isfinite(t0)) {
        PyErr_SetString(PyExc_ValueError,
                        "sampler_start: interval must be a positive number of seconds "
                        "and t0 a finite time.perf_counter() value");
        return NULL;
    }
#ifdef HAVE_NATIVE_SAMPLER
    int64_t interval_ns = (int64_t)llround(interval * 1e9);
    const char *failed = NULL;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&sampler.ctl);
    if (!sampler.initialised) {
        sampler_init_cond();
        if (pthread_atfork(sampler_atfork_prepare, sampler_atfork_parent,
                           sampler_atfork_child) != 0) {
            failed = "pthread_atfork";
            err = ENOMEM;
        }
        else {
            sampler.initialised = 1;
        }
    }
    if (failed == NULL && sampler.running) {
        failed = "running";
    }
    if (failed == NULL) {
        if (sampler.statm < 0) {
            sampler.statm = sampler_open_statm();
        }
        if (sampler.statm < 0) {
            failed = STATM_PATH;
            err = errno;
        }
    }
    if (failed == NULL) {
        sampler.t0_ns = (int64_t)llround(t0 * 1e9);
        sampler.interval_ns = interval_ns > 0 ? interval_ns : 1;
        sampler.count = 0;
        sampler.paused = 0;
        sampler.error = 0;
        if (sampler_slot(0, 1) == NULL) {  /* chunk 0 now: a refusal raises here */
            failed = "mmap";
            err = errno;
        }
    }
    if (failed == NULL && (err = sampler_spawn()) != 0) {
        failed = "pthread_create";
    }
    pthread_mutex_unlock(&sampler.ctl);
    Py_END_ALLOW_THREADS
    if (failed != NULL && strcmp(failed, "running") == 0) {
        PyErr_SetString(PyExc_RuntimeError, "the native sampler is already running "
                        "(one per process): stop it first");
        return NULL;
    }
    if (failed != NULL) {
        errno = err;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, failed);
        return NULL;
    }
    Py_RETURN_NONE;
#else
    (void)t0;
    PyErr_SetString(PyExc_NotImplementedError,
                    "no native sampler on this platform (it needs Linux)");
    return NULL;
#endif
}

/* mode 0: stop; 1: pause (resume restarts it); 2: resume. */
static PyObject *
sampler_control(int mode)
{
#ifdef HAVE_NATIVE_SAMPLER
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&sampler.ctl);
    if (mode == 2) {
        if (sampler.paused && !sampler.running) {
            err = sampler_spawn();
        }
        sampler.paused = 0;
    }
    else {
        int was_running = sampler.running;
        sampler_halt();
        /* a pause while paused (two forks before the resume ran) stays paused */
        sampler.paused = mode == 1 && (was_running || sampler.paused);
        err = __atomic_load_n(&sampler.error, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&sampler.ctl);
    Py_END_ALLOW_THREADS
    if (mode == 2 && err != 0) {
        errno = err;
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "pthread_create");
    }
    if (mode == 0) {
        return PyLong_FromLong(err);
    }
#else
    if (mode == 0) {
        return PyLong_FromLong(0);
    }
#endif
    Py_RETURN_NONE;
}

static PyObject *
core_sampler_stop(PyObject *self, PyObject *unused)
{
    return sampler_control(0);
}

static PyObject *
core_sampler_pause(PyObject *self, PyObject *unused)
{
    return sampler_control(1);
}

static int
sampler_resume_pending(void *unused)
{
    (void)unused;
    PyObject *done = sampler_control(2);
    if (done == NULL) {
        PyErr_WriteUnraisable(NULL);  /* no caller to raise to: the timeline stops here */
        return 0;
    }
    Py_DECREF(done);
    return 0;
}

/* sampler_resume(deferred=False).  Deferred: as a pending call, which the main
 * thread runs at its next bytecode, i.e. once os.fork() has returned.  Since
 * 3.13, os.fork runs the after_in_parent hooks before it counts the threads
 * for its "multi-threaded" DeprecationWarning: a thread restarted by the hook
 * itself would be counted. */
static PyObject *
core_sampler_resume(PyObject *self, PyObject *args)
{
    int deferred = 0;
    if (!PyArg_ParseTuple(args, "|p:sampler_resume", &deferred)) {
        return NULL;
    }
    if (deferred && Py_AddPendingCall(sampler_resume_pending, NULL) == 0) {
        Py_RETURN_NONE;
    }
    return sampler_control(2);  /* or the queue of pending calls is full */
}

/* Four bytes objects of native-endian 8-byte items: times (float64 seconds
 * since t0), used, resident (-1: unknown), rss (-1: unknown) (int64). */
static PyObject *
core_sampler_samples(PyObject *self, PyObject *unused)
{
#ifdef HAVE_NATIVE_SAMPLER
    uint64_t n = __atomic_load_n(&sampler.count, __ATOMIC_ACQUIRE);
#else
    uint64_t n = 0;
#endif
    if (n > (uint64_t)(PY_SSIZE_T_MAX / 8)) {
        return PyErr_NoMemory();
    }
    PyObject *cols[4] = {NULL, NULL, NULL, NULL};
    for (int c = 0; c < 4; c++) {
        cols[c] = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
        if (cols[c] == NULL) {
            for (int d = 0; d < c; d++) {
                Py_DECREF(cols[d]);
            }
            return NULL;
        }
    }
#ifdef HAVE_NATIVE_SAMPLER
    double *times = (double *)PyBytes_AS_STRING(cols[0]);
    int64_t *used = (int64_t *)PyBytes_AS_STRING(cols[1]);
    int64_t *resident = (int64_t *)PyBytes_AS_STRING(cols[2]);
    int64_t *rss = (int64_t *)PyBytes_AS_STRING(cols[3]);
    for (uint64_t i = 0; i < n; i++) {
        const sample_t *s = sampler_slot(i, 0);
        times[i] = (double)s->t_ns / 1e9;
        used[i] = s->used;
        resident[i] = s->resident;
        rss[i] = s->rss;
    }
#endif
    return Py_BuildValue("(NNNN)", cols[0], cols[1], cols[2], cols[3]);
}

#define SAMPLER_METHODS                                                            \
    {"sampler_check", core_sampler_check, METH_NOARGS,                             \
     "sampler_check() -> None if the native sampler can run here, else why not."}, \
    {"sampler_start", core_sampler_start, METH_VARARGS,                            \
     "sampler_start(interval_s, t0): start the native sampler thread (new samples;\n" \
     "times are seconds since t0, a time.perf_counter() value)."},                 \
    {"sampler_stop", core_sampler_stop, METH_NOARGS,                               \
     "sampler_stop() -> errno that ended sampling early, or 0.  Samples are kept."}, \
    {"sampler_pause", core_sampler_pause, METH_NOARGS,                             \
     "sampler_pause(): stop the thread until sampler_resume() (os.fork's before)."}, \
    {"sampler_resume", core_sampler_resume, METH_VARARGS,                          \
     "sampler_resume(deferred=False): restart a thread sampler_pause() stopped, on\n" \
     "the same grid; deferred: at the main thread's next bytecode (os.fork's after)."}, \
    {"sampler_samples", core_sampler_samples, METH_NOARGS,                         \
     "sampler_samples() -> (times, used, resident, rss): bytes of 8-byte items\n"  \
     "(float64 seconds; int64 bytes, -1 unknown)."},
