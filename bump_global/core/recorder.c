/*
 * core/recorder.c -- a process's recorder: a native thread that keeps what the
 * process did in files its session reads, even after the process is gone
 * (bump_global/_session.py).  Linux only (pthreads, /proc; hence the one
 * platform #if outside prim_*.c); elsewhere recorder_check() says why and the
 * session does without (a process then reports only when it exits normally).
 *
 * What it writes, on its own thread, never taking the GIL nor calling Python,
 * so it keeps going while C code holds the GIL (a long json.loads), and never
 * allocating from the region it measures:
 *   - the state file: a snapshot of the process's figures (every stats()
 *     value, RSS, peak RSS, resident bytes of the region, the time), rewritten
 *     in place (slot 0) whenever they changed, at most every RECORDER_TICK_NS;
 *     a process killed outright (SIGKILL, a crash) is thus known to its session
 *     up to its last tick;
 *   - the timeline file (with --sample MS): one record per sample (time, used,
 *     resident, RSS), appended;
 *   - the sites' records waiting in their buffer (sites.c), written out.
 * A snapshot is read without the GIL and without raw_lock: every word is an
 * aligned 64-bit load (region_view_read, stats.c), repeated until two passes
 * agree (up to RECORDER_READS), so it is off at most by what is allocated
 * while it reads.  Not taking raw_lock means the recorder never slows a RAW
 * allocation nor holds a lock across fork().
 *
 * SIGTERM.  A process that SIGTERM ends (multiprocessing's Pool.__exit__ ends
 * its workers so) would be known only up to its last tick.  Where SIGTERM has
 * its default action when the recorder starts, a handler is installed that
 * writes a last snapshot (slot 1, marked with the signal) and flushes the
 * sites' records if their lock is free, then restores the default action and
 * raises the signal again: the process dies of SIGTERM as it would have, at
 * once, running no Python code.  A program that sets its own SIGTERM handler
 * (signal.signal) replaces this one and keeps its behaviour; the periodic
 * snapshots still stand.  The handler uses only async-signal-safe calls.
 *
 * Ticks.  The timeline's deadlines are absolute, on the grid t0 + n * interval:
 * after a sample taken at time s, the next is due at the first grid point at
 * or after s + interval / 2.  So two samples are at least half an interval
 * apart, at most one falls in each slot of the grid, and missed ticks are
 * skipped, never caught up.  The thread waits with pthread_cond_timedwait on a
 * CLOCK_MONOTONIC condition variable, so stop() wakes it at once.
 *
 * Fork.  The thread does not survive fork(); bump_global/_session.py pauses it
 * before os.fork and resumes it after in the parent (deferred to the main
 * thread's next bytecode: since 3.13 os.fork counts the threads for its
 * "multi-threaded fork" warning after the after_in_parent hooks).  In the
 * child, pthread_atfork handlers reset the locks and forget the parent's files
 * (the child's session hook starts a recorder of its own).
 *
 * Cost: per tick, two passes over the region's words and counters (~40 words,
 * ~570 with reclaim="classes"); per snapshot written, a pread of
 * /proc/self/statm and /proc/self/status and one pwrite; per timeline sample,
 * mincore over the used parts of the region (about 0.2 ms per GiB used).
 */

#if defined(__linux__)
#  define HAVE_RECORDER 1
#  include <errno.h>
#  include <fcntl.h>
#  include <math.h>
#  include <signal.h>
#  include <time.h>
#endif

#define RECORDER_TICK_NS ((int64_t)20 * 1000 * 1000)  /* snapshots: at most this stale */
#define RECORDER_READS 4                               /* passes to get two that agree */
#define RECORDER_SLOT 4096                             /* bytes per snapshot slot */
#define RECORDER_MAGIC 0x3154415453474211ULL           /* "\x11BGSTAT1" */

/* A snapshot, as the state file holds it (native byte order; a reader checks
 * that `seq` equals `seq_end` and that `magic` and `nvalues` are as expected). */
typedef struct {
    uint64_t magic;
    uint64_t seq;         /* snapshots written so far; equals seq_end when whole */
    uint64_t pid;
    int64_t t_ns;         /* CLOCK_MONOTONIC ns since t0 */
    uint64_t ended;       /* the signal that ended the process (slot 1), else 0 */
    int64_t rss, peak_rss, resident;  /* bytes; -1 where unknown */
    uint64_t nvalues;     /* STATS_FIELDS: the five sizes, then COUNTERS */
    uint64_t values[5 + 64];
    uint64_t seq_end;
} snapshot_t;

typedef struct {
    int64_t t_ns, used, resident, rss;  /* a timeline sample: 32 bytes */
} timeline_sample_t;

#ifdef HAVE_RECORDER

static struct {
    pthread_mutex_t ctl;    /* serialises start/stop/pause/resume */
    pthread_mutex_t lock;   /* guards `stop` for the wait */
    pthread_cond_t wake;    /* CLOCK_MONOTONIC; signalled by stop */
    int initialised;        /* wake has its clock; atfork handlers registered */
    int running;            /* the thread exists (under ctl) */
    int paused;             /* stopped by recorder_pause: resume restarts it */
    int stop;               /* under lock */
    int error;              /* atomic: errno of a failed write (the thread goes on) */
    int statm, status;      /* descriptors of /proc/self/statm and status, -1 if none */
    int state_fd;           /* atomic: -1 when none (the SIGTERM handler reads it) */
    int timeline_fd;        /* -1: no timeline */
    int64_t t0_ns;          /* the clock's origin, CLOCK_MONOTONIC ns */
    int64_t interval_ns;    /* timeline interval, 0: none */
    int64_t next_sample_ns; /* the timeline's next deadline */
    uint64_t seq;           /* snapshots written */
    uint64_t samples;       /* timeline samples written */
    region_view_t last;     /* the figures of the last snapshot written */
    int64_t last_rss_ns;    /* when RSS was last written */
    pthread_t thread;
    struct sigaction previous_term;
    int term_hooked;
} recorder = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
              0, 0, 0, 0, 0, -1, -1, -1, -1};

static int64_t
recorder_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The region's words and counters, read until two passes agree. */
static void
recorder_view(region_view_t *view)
{
    region_view_t other;
    region_view_read(view);
    for (int pass = 1; pass < RECORDER_READS; pass++) {
        region_view_read(&other);
        if (memcmp(&other, view, sizeof other) == 0) {
            return;
        }
        *view = other;
    }
}

/* The first decimal number after `key` in buf, times `scale`; -1 if absent.
 * (No sscanf: this runs in a signal handler too.) */
static int64_t
recorder_field(const char *buf, const char *key, int64_t scale)
{
    const char *p = strstr(buf, key);
    if (p == NULL) {
        return -1;
    }
    p += strlen(key);
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return -1;
    }
    int64_t n = 0;
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (*p++ - '0');
    }
    return n * scale;
}

/* RSS and peak RSS (VmRSS, VmHWM: this process's own high-water mark) from
 * /proc/self/status; -1 each if unknown. */
static void
recorder_memory(int64_t *rss, int64_t *peak)
{
    char buf[4096];
    *rss = *peak = -1;
    if (recorder.status < 0) {
        return;
    }
    ssize_t n = pread(recorder.status, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        return;
    }
    buf[n] = '\0';
    *rss = recorder_field(buf, "VmRSS:", 1024);
    *peak = recorder_field(buf, "VmHWM:", 1024);
    if (*peak >= 0 && *rss > *peak) {
        *peak = *rss;  /* the kernel updates the mark lazily */
    }
}

/* Resident bytes of [addr, addr + length), -1 if unknown. */
static int64_t
recorder_resident(uintptr_t addr, uintptr_t length)
{
    uint64_t bytes = 0;
    return prim_resident(addr, length, &bytes) == 1 ? (int64_t)bytes : -1;
}

static int64_t
recorder_region_resident(const region_view_t *v)
{
    int64_t small = recorder_resident(region.base, (uintptr_t)(v->cursor - region.base));
    int64_t big = recorder_resident(region.end, (uintptr_t)(v->large_top - region.end));
    return small < 0 || big < 0 ? -1 : small + big;
}

/* Fill *s from view v (taken at `now`); `ended`: the signal, or 0. */
static void
recorder_fill(snapshot_t *s, const region_view_t *v, int64_t now, uint64_t ended)
{
    memset(s, 0, sizeof *s);
    s->magic = RECORDER_MAGIC;
    s->seq = s->seq_end = ++recorder.seq;
    s->pid = prim_pid();
    s->t_ns = now - recorder.t0_ns;
    s->ended = ended;
    recorder_memory(&s->rss, &s->peak_rss);
    s->resident = recorder_region_resident(v);
    uint64_t consumed;
    uint64_t used = used_of(v, &consumed);
    uint64_t committed = (ATOMIC_LOAD(&region.committed) - region.base) +
                         (ATOMIC_LOAD(&region.large_committed) - region.end);
    uint64_t i = 0;
    s->values[i++] = region.base;
    s->values[i++] = region.size;
    s->values[i++] = used;
    s->values[i++] = consumed;
    s->values[i++] = committed;
#define VALUE(name) s->values[i++] = v->c.name;
    COUNTERS(VALUE)
#undef VALUE
    s->nvalues = i;
}

/* Write a snapshot into slot `slot` of the state file.  0 or an errno. */
static int
recorder_write(int fd, const snapshot_t *s, int slot)
{
    ssize_t n = pwrite(fd, s, sizeof *s, (off_t)slot * RECORDER_SLOT);
    return n == (ssize_t)sizeof *s ? 0 : n < 0 ? errno : EIO;
}

/* SIGTERM with the recorder on: a last snapshot (slot 1), the sites' records
 * if their lock is free, then the default action (module comment). */
static void
recorder_on_term(int signo)
{
    int saved = errno;
    int fd = __atomic_load_n(&recorder.state_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0 && __atomic_load_n(&region.installed, __ATOMIC_ACQUIRE)) {
        region_view_t view;
        snapshot_t snap;
        recorder_view(&view);
        recorder_fill(&snap, &view, recorder_now_ns(), (uint64_t)signo);
        recorder_write(fd, &snap, 1);
        if (pthread_mutex_trylock(&sites.lock) == 0) {
            sites_flush_locked();
            pthread_mutex_unlock(&sites.lock);
        }
    }
    signal(signo, SIG_DFL);
    errno = saved;
    raise(signo);  /* delivered once this handler returns: the process ends as it would have */
}

/* The first timeline grid point at or after s + interval / 2. */
static int64_t
recorder_next_sample(int64_t s)
{
    int64_t iv = recorder.interval_ns;
    int64_t x = s + iv / 2 - recorder.t0_ns;
    int64_t n = x / iv;
    if (x % iv > 0) {
        n++;  /* ceil; C division truncates toward zero */
    }
    return recorder.t0_ns + n * iv;
}

/* One tick: a timeline sample if due, a snapshot if the figures changed (or
 * RSS may have: every 10 ticks), the sites' records written out. */
static void
recorder_tick(int64_t now)
{
    region_view_t view;
    recorder_view(&view);
    if (recorder.interval_ns > 0 && now >= recorder.next_sample_ns) {
        timeline_sample_t t;
        uint64_t consumed;
        t.t_ns = now - recorder.t0_ns;
        t.used = (int64_t)used_of(&view, &consumed);
        t.resident = recorder_region_resident(&view);
        int64_t peak;
        recorder_memory(&t.rss, &peak);
        int err = prim_write(recorder.timeline_fd, (const char *)&t, sizeof t);
        if (err != 0) {
            __atomic_store_n(&recorder.error, err, __ATOMIC_RELAXED);
        }
        recorder.samples++;
        recorder.next_sample_ns = recorder_next_sample(now);
    }
    if (memcmp(&view, &recorder.last, sizeof view) != 0 ||
        now - recorder.last_rss_ns > 10 * RECORDER_TICK_NS) {
        snapshot_t snap;
        recorder_fill(&snap, &view, now, 0);
        int err = recorder_write(recorder.state_fd, &snap, 0);
        if (err != 0) {
            __atomic_store_n(&recorder.error, err, __ATOMIC_RELAXED);
        }
        recorder.last = view;
        recorder.last_rss_ns = now;
    }
    pthread_mutex_lock(&sites.lock);
    sites_flush_locked();
    pthread_mutex_unlock(&sites.lock);
}

static void *
recorder_main(void *unused)
{
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);  /* signals are the program's threads' */
    int64_t next_tick = recorder_now_ns();
    for (;;) {
        int64_t deadline = next_tick;
        if (recorder.interval_ns > 0 && recorder.next_sample_ns < deadline) {
            deadline = recorder.next_sample_ns;
        }
        int stopping;
        int64_t now;
        pthread_mutex_lock(&recorder.lock);
        for (;;) {
            stopping = recorder.stop;
            now = recorder_now_ns();
            if (stopping || now >= deadline) {
                break;
            }
            struct timespec ts = {(time_t)(deadline / 1000000000),
                                  (long)(deadline % 1000000000)};
            pthread_cond_timedwait(&recorder.wake, &recorder.lock, &ts);
        }
        pthread_mutex_unlock(&recorder.lock);
        recorder_tick(now);  /* also the last one, when stopping */
        if (stopping) {
            break;
        }
        if (now >= next_tick) {
            next_tick = now + RECORDER_TICK_NS;
        }
    }
    return NULL;
}

static void
recorder_atfork_prepare(void)
{
    pthread_mutex_lock(&recorder.ctl);
    pthread_mutex_lock(&recorder.lock);
}

static void
recorder_atfork_parent(void)
{
    pthread_mutex_unlock(&recorder.lock);
    pthread_mutex_unlock(&recorder.ctl);
}

static void
recorder_init_cond(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&recorder.wake, &attr);
    pthread_condattr_destroy(&attr);
}

/* The thread did not follow: the child has a stopped recorder, and the
 * parent's files are not its own (a SIGTERM before its session hook starts
 * its own recorder writes nothing).  Locks and condition made anew. */
static void
recorder_atfork_child(void)
{
    pthread_mutex_init(&recorder.ctl, NULL);
    pthread_mutex_init(&recorder.lock, NULL);
    recorder_init_cond();
    recorder.running = 0;
    recorder.paused = 0;
    __atomic_store_n(&recorder.state_fd, -1, __ATOMIC_RELEASE);
    recorder.timeline_fd = -1;
    if (recorder.statm >= 0) {
        close(recorder.statm);  /* they name the parent's /proc/<pid> */
        recorder.statm = -1;
    }
    if (recorder.status >= 0) {
        close(recorder.status);
        recorder.status = -1;
    }
}

/* With ctl held.  0 or an errno. */
static int
recorder_spawn(void)
{
    recorder.stop = 0;
    int rc = pthread_create(&recorder.thread, NULL, recorder_main, NULL);
    if (rc == 0) {
        recorder.running = 1;
    }
    return rc;
}

/* With ctl held (GIL released): stop the thread (its last tick writes) and wait. */
static void
recorder_halt(void)
{
    if (!recorder.running) {
        return;
    }
    pthread_mutex_lock(&recorder.lock);
    recorder.stop = 1;
    pthread_cond_signal(&recorder.wake);
    pthread_mutex_unlock(&recorder.lock);
    pthread_join(recorder.thread, NULL);
    recorder.running = 0;
}

#endif /* HAVE_RECORDER */

static PyObject *
core_recorder_check(PyObject *self, PyObject *unused)
{
#ifdef HAVE_RECORDER
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return PyUnicode_FromFormat("cannot read /proc/self/status (%s)", strerror(errno));
    }
    close(fd);
    Py_RETURN_NONE;
#else
    return PyUnicode_FromString("no recorder on this platform (it needs Linux: pthreads "
                                "and /proc/self/status)");
#endif
}

/* recorder_start(t0, state_fd, timeline_fd, interval_s): see _core.pyi. */
static PyObject *
core_recorder_start(PyObject *self, PyObject *args)
{
    double t0, interval;
    int state_fd, timeline_fd;
    if (!PyArg_ParseTuple(args, "diid:recorder_start", &t0, &state_fd, &timeline_fd,
                          &interval)) {
        return NULL;
    }
    if (!isfinite(t0) || state_fd < 0 || !(interval >= 0) || !isfinite(interval) ||
        interval > 1e9 || (interval > 0) != (timeline_fd >= 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "recorder_start(t0, state_fd, timeline_fd, interval_s): a finite "
                        "t0, a state file, and a timeline file with an interval or neither");
        return NULL;
    }
#ifdef HAVE_RECORDER
    const char *failed = NULL;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&recorder.ctl);
    if (!recorder.initialised) {
        recorder_init_cond();
        if (pthread_atfork(recorder_atfork_prepare, recorder_atfork_parent,
                           recorder_atfork_child) != 0) {
            failed = "pthread_atfork";
            err = ENOMEM;
        }
        else {
            recorder.initialised = 1;
        }
    }
    if (failed == NULL && recorder.running) {
        failed = "running";
    }
    if (failed == NULL && recorder.status < 0) {
        recorder.status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (recorder.status < 0) {
            failed = "/proc/self/status";
            err = errno;
        }
    }
    if (failed == NULL) {
        recorder.t0_ns = (int64_t)llround(t0 * 1e9);
        recorder.interval_ns = interval > 0 ? (int64_t)llround(interval * 1e9) : 0;
        if (recorder.interval_ns == 0 && interval > 0) {
            recorder.interval_ns = 1;
        }
        recorder.next_sample_ns = recorder_now_ns();  /* the first sample at once */
        recorder.timeline_fd = timeline_fd;
        recorder.seq = recorder.samples = 0;
        recorder.error = 0;
        recorder.paused = 0;
        memset(&recorder.last, 0xff, sizeof recorder.last);  /* the first tick writes */
        __atomic_store_n(&recorder.state_fd, state_fd, __ATOMIC_RELEASE);
        if ((err = recorder_spawn()) != 0) {
            failed = "pthread_create";
        }
    }
    pthread_mutex_unlock(&recorder.ctl);
    Py_END_ALLOW_THREADS
    if (failed != NULL && strcmp(failed, "running") == 0) {
        PyErr_SetString(PyExc_RuntimeError, "the recorder is already running (one per "
                        "process): stop it first");
        return NULL;
    }
    if (failed != NULL) {
        errno = err;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, failed);
        return NULL;
    }
    /* A last snapshot on SIGTERM, where SIGTERM has its default action. */
    struct sigaction current;
    if (!recorder.term_hooked && sigaction(SIGTERM, NULL, &current) == 0 &&
        !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL) {
        struct sigaction ours;
        memset(&ours, 0, sizeof ours);
        ours.sa_handler = recorder_on_term;
        sigemptyset(&ours.sa_mask);
        if (sigaction(SIGTERM, &ours, &recorder.previous_term) == 0) {
            recorder.term_hooked = 1;
        }
    }
    Py_RETURN_NONE;
#else
    PyErr_SetString(PyExc_NotImplementedError, "no recorder on this platform (it needs Linux)");
    return NULL;
#endif
}

/* mode 0: stop; 1: pause (resume restarts it); 2: resume. */
static PyObject *
recorder_control(int mode)
{
#ifdef HAVE_RECORDER
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&recorder.ctl);
    if (mode == 2) {
        if (recorder.paused && !recorder.running) {
            err = recorder_spawn();
        }
        recorder.paused = 0;
    }
    else {
        int was_running = recorder.running;
        recorder_halt();
        /* a pause while paused (two forks before the resume ran) stays paused */
        recorder.paused = mode == 1 && (was_running || recorder.paused);
        err = __atomic_load_n(&recorder.error, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&recorder.ctl);
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
core_recorder_stop(PyObject *self, PyObject *unused)
{
    return recorder_control(0);
}

static PyObject *
core_recorder_pause(PyObject *self, PyObject *unused)
{
    return recorder_control(1);
}

static int
recorder_resume_pending(void *unused)
{
    (void)unused;
    PyObject *done = recorder_control(2);
    if (done == NULL) {
        PyErr_WriteUnraisable(NULL);  /* no caller to raise to: recording stops here */
        return 0;
    }
    Py_DECREF(done);
    return 0;
}

/* recorder_resume(deferred=False).  Deferred: as a pending call, which the main
 * thread runs at its next bytecode, i.e. once os.fork() has returned. */
static PyObject *
core_recorder_resume(PyObject *self, PyObject *args)
{
    int deferred = 0;
    if (!PyArg_ParseTuple(args, "|p:recorder_resume", &deferred)) {
        return NULL;
    }
    if (deferred && Py_AddPendingCall(recorder_resume_pending, NULL) == 0) {
        Py_RETURN_NONE;
    }
    return recorder_control(2);  /* or the queue of pending calls is full */
}

/* (magic, slot bytes, snapshot bytes, values, timeline sample bytes): what a
 * reader of the files needs (bump_global/_session.py checks it). */
static PyObject *
core_recorder_layout(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(KnnKn)", (unsigned long long)RECORDER_MAGIC,
                         (Py_ssize_t)RECORDER_SLOT, (Py_ssize_t)sizeof(snapshot_t),
                         (unsigned long long)(sizeof(((snapshot_t *)0)->values) / 8),
                         (Py_ssize_t)sizeof(timeline_sample_t));
}

#define RECORDER_METHODS                                                           \
    {"recorder_check", core_recorder_check, METH_NOARGS,                           \
     "recorder_check() -> None if the recorder can run here, else why not."},     \
    {"recorder_start", core_recorder_start, METH_VARARGS,                          \
     "recorder_start(t0, state_fd, timeline_fd, interval_s): start this process's\n" \
     "recorder thread (see core/recorder.c): snapshots to state_fd, timeline samples\n" \
     "every interval_s to timeline_fd (-1 and 0: none); times are since t0, a\n"   \
     "time.perf_counter() value."},                                                 \
    {"recorder_stop", core_recorder_stop, METH_NOARGS,                             \
     "recorder_stop() -> errno of a failed write, or 0: a last tick, then no more."}, \
    {"recorder_pause", core_recorder_pause, METH_NOARGS,                           \
     "recorder_pause(): stop the thread until recorder_resume() (os.fork's before)."}, \
    {"recorder_resume", core_recorder_resume, METH_VARARGS,                        \
     "recorder_resume(deferred=False): restart a thread recorder_pause() stopped;\n" \
     "deferred: at the main thread's next bytecode (os.fork's after_in_parent)."},  \
    {"recorder_layout", core_recorder_layout, METH_NOARGS,                         \
     "recorder_layout() -> (magic, slot bytes, snapshot bytes, values, timeline\n"  \
     "sample bytes): the files' layout."},
