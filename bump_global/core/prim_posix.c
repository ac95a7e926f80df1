/*
 * core/prim_posix.c -- the OS primitives on POSIX systems (Linux, macOS, BSD).
 * With prim_windows.c, the only place with platform #ifs.  The engine calls:
 *   prim_page_size()               the OS page size
 *   prim_commit(addr, len)         make reserved pages readable and writable
 *   prim_release_pages(addr, len)  give pages back (their contents are lost;
 *                                  they read as zero if touched again)
 *   prim_resident(addr, len, out)  resident bytes (mincore); 0: not known here
 *   prim_huge_pages(addr, len)     ask for transparent huge pages
 *   prim_populate(lo, hi)          fault pages in (prefault thread only)
 *   prim_no_idle_core()            1 if no core is idle (prefault thread only)
 *   prim_os_alloc / prim_os_free   memory straight from the OS (never from
 *                                  Python's allocators, which we replace)
 *   prim_reserve(len)              the region for the start-up fast path
 *                                  (Linux; NULL elsewhere)
 *   prim_shared_page(&fd)          one page shared between processes (Linux;
 *                                  NULL elsewhere): the shared budget
 *   prim_pid(), prim_process_gone(pid)  this process; whether pid has ended
 *   prim_thread_id()               the calling thread (nonzero)
 *   prim_now_ns()                  a monotonic clock
 *   prim_write(fd, buf, len)       write all of buf to a file (the sites' records)
 *   locks, a condition variable, a thread, and fork handlers.
 * PRIM_HAVE_PREFAULT says whether prefaulting is offered here (Linux).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#  include <sys/syscall.h>
#endif

#if defined(__linux__)
#  define PRIM_HAVE_PREFAULT 1
#  ifndef MADV_POPULATE_WRITE
#    define MADV_POPULATE_WRITE 23
#  endif
#else
#  define PRIM_HAVE_PREFAULT 0
#endif

/* ---- locks, condition variables, threads, fork ---------------------------- */

typedef pthread_mutex_t prim_lock_t;
typedef pthread_cond_t prim_cond_t;
typedef pthread_t prim_thread_t;
#define PRIM_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
#define PRIM_COND_INIT PTHREAD_COND_INITIALIZER
#define LOCK(l) pthread_mutex_lock(&(l))
#define UNLOCK(l) pthread_mutex_unlock(&(l))

static void
prim_lock_reinit(prim_lock_t *l)
{
    pthread_mutex_init(l, NULL);
}

static void
prim_cond_reinit(prim_cond_t *c)
{
    pthread_cond_init(c, NULL);
}

static void
prim_cond_wait(prim_cond_t *c, prim_lock_t *l)
{
    pthread_cond_wait(c, l);
}

static void
prim_cond_signal(prim_cond_t *c)
{
    pthread_cond_signal(c);
}

/* Start fn on a thread with a small stack.  1 on success. */
static int
prim_thread_start(prim_thread_t *t, void *(*fn)(void *), size_t stack)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    int ok = pthread_create(t, &attr, fn, NULL) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

static void
prim_thread_join(prim_thread_t t)
{
    pthread_join(t, NULL);
}

/* Run prepare/parent/child around fork().  0 on success. */
static int
prim_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    return pthread_atfork(prepare, parent, child);
}

/* ---- memory ---------------------------------------------------------------- */

static uintptr_t
prim_page_size(void)
{
    return (uintptr_t)sysconf(_SC_PAGESIZE);
}

/* 1 on success, 0 if the OS refuses. */
static int
prim_commit(uintptr_t addr, uintptr_t len)
{
    return mprotect((void *)addr, (size_t)len, PROT_READ | PROT_WRITE) == 0;
}

/* Whole pages only (the caller rounds).  1 if given back. */
static int
prim_release_pages(uintptr_t addr, uintptr_t len)
{
#ifdef MADV_DONTNEED
    return madvise((void *)addr, (size_t)len, MADV_DONTNEED) == 0;
#else
    (void)addr;
    (void)len;
    return 0;
#endif
}

/* Resident bytes of [addr, addr + len) into *out: 1 if known, 0 where the OS
 * cannot tell, -1 with errno set on failure.  Its vector is on the stack: no
 * allocation, no shared state. */
static int
prim_resident(uintptr_t addr, uintptr_t len, uint64_t *out)
{
#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__)
    unsigned char vec[4096];
    uintptr_t page = region.page;
    uintptr_t start = addr & ~(page - 1);
    uintptr_t stop = addr + len;
    uint64_t pages = 0;
    while (start < stop) {
        uintptr_t span = page * sizeof(vec);
        if (span > stop - start) {
            span = stop - start;
        }
        if (mincore((void *)start, (size_t)span, (void *)vec) != 0) {
            return -1;
        }
        size_t count = (size_t)((span + page - 1) / page);
        for (size_t i = 0; i < count; i++) {
            pages += vec[i] & 1;
        }
        start += span;
    }
    *out = pages * (uint64_t)page;
    return 1;
#else
    (void)addr;
    (void)len;
    (void)out;
    return 0;
#endif
}

static void
prim_huge_pages(uintptr_t addr, uintptr_t len)
{
#ifdef MADV_HUGEPAGE
    madvise((void *)addr, (size_t)len, MADV_HUGEPAGE);
#else
    (void)addr;
    (void)len;
#endif
}

/* 1 if every core this process may run on has a runnable task other than the
 * caller (the prefault thread): then faulting ahead only takes CPU from
 * someone, the program's own threads or processes included, and saves no
 * time.  From /proc/loadavg's "running/total" field (runnable tasks now,
 * the caller counted) and sched_getaffinity.  About 5 us (open, read, close),
 * paid by the prefault thread, at most once per PREFAULT_STEP.  0 (prefault)
 * where it cannot tell. */
static int
prim_no_idle_core(void)
{
#if defined(__linux__)
    static long cores = 0;
    if (cores == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                              : sysconf(_SC_NPROCESSORS_ONLN);
        if (cores < 1) {
            cores = 1;
        }
    }
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    /* "0.50 0.40 0.30 3/456 12345": the numerator of the fourth field. */
    char *p = buf;
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (p == NULL) {
            return 0;
        }
        p++;
    }
    long running = strtol(p, NULL, 10);
    return running - 1 >= cores;
#else
    return 0;
#endif
}

/* Fault [lo, hi) in (page aligned), writing nothing: MADV_POPULATE_WRITE, or
 * an atomic no-op write per page where the kernel lacks it (before Linux
 * 5.14), which is safe even if another thread writes the same bytes. */
static void
prim_populate(uintptr_t lo, uintptr_t hi, int *use_madvise)
{
#if defined(__linux__)
    if (*use_madvise && madvise((void *)lo, (size_t)(hi - lo), MADV_POPULATE_WRITE) == 0) {
        return;
    }
#endif
    *use_madvise = 0;
    for (uintptr_t p = lo; p < hi; p += region.page) {
        __atomic_fetch_or((char *)p, 0, __ATOMIC_RELAXED);
    }
}
/* len bytes of zeroed memory from the OS, or NULL. */
static void *
prim_os_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Reserve len bytes of address space for the region, readable and writable,
 * never charged until touched (MAP_NORESERVE, Linux); NULL where this cannot be
 * had this way (then Python's _region.py reserves, with its fallbacks and its
 * messages).  The start-up fast path's reservation; never unmapped. */
static void *
prim_reserve(size_t len)
{
#if defined(__linux__) && defined(MAP_NORESERVE)
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    (void)len;
    return NULL;
#endif
}

static void
prim_os_free(void *p, size_t len)
{
    munmap(p, len);
}

/* A monotonic clock in nanoseconds (never 0 once the machine is up). */
static uint64_t
prim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1;
}

static uint64_t
prim_pid(void)
{
    return (uint64_t)getpid();
}

static uintptr_t
prim_thread_id(void)
{
    return (uintptr_t)pthread_self();
}

/* Write all of buf[0:len) to fd (retrying on EINTR and short writes); 0 on
 * success, else an errno.  No allocation. */
static int
prim_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno ? errno : EIO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 1 if no process `pid` exists any more (a zombie still exists). */
static int
prim_process_gone(uint64_t pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* One page of memory shared with other processes, or NULL.  *fd < 0: a new
 * page, zero, from a memfd (close-on-exec) whose descriptor is stored in
 * *fd, to be kept open; else the page of that memfd, opened by the caller
 * (at most a page is mapped: a shorter file is refused).  Forked children
 * share the mapping.  Linux 3.17+ (memfd_create); NULL elsewhere. */
static void *
prim_shared_page(int *fd)
{
#if defined(__linux__) && defined(SYS_memfd_create)
    size_t len = (size_t)sysconf(_SC_PAGESIZE);
    int created = -1;
    if (*fd < 0) {
        created = (int)syscall(SYS_memfd_create, "bump_global-budget", 1u /* MFD_CLOEXEC */);
        if (created < 0 || ftruncate(created, (off_t)len) != 0) {
            goto fail;
        }
    }
    else {
        struct stat st;
        if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)len) {
            return NULL;
        }
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                   created >= 0 ? created : *fd, 0);
    if (p == MAP_FAILED) {
        goto fail;
    }
    if (created >= 0) {
        *fd = created;
    }
    return p;
fail:
    if (created >= 0) {
        close(created);
    }
    return NULL;
#else
    (void)fd;
    return NULL;
#endif
}
