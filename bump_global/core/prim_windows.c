/*
 * core/prim_windows.c -- the OS primitives on Windows (see prim_posix.c for
 * the list and their contracts).  No prefaulting (PRIM_HAVE_PREFAULT is 0),
 * no page release, residency unknown: those report nothing.
 */
#include <windows.h>
#include <errno.h>
#include <io.h>

#define PRIM_HAVE_PREFAULT 0

typedef SRWLOCK prim_lock_t;
typedef CONDITION_VARIABLE prim_cond_t;
typedef HANDLE prim_thread_t;
#define PRIM_LOCK_INIT SRWLOCK_INIT
#define PRIM_COND_INIT CONDITION_VARIABLE_INIT
#define LOCK(l) AcquireSRWLockExclusive(&(l))
#define UNLOCK(l) ReleaseSRWLockExclusive(&(l))

static void
prim_lock_reinit(prim_lock_t *l)
{
    InitializeSRWLock(l);
}

static void
prim_cond_reinit(prim_cond_t *c)
{
    InitializeConditionVariable(c);
}

static void
prim_cond_wait(prim_cond_t *c, prim_lock_t *l)
{
    SleepConditionVariableSRW(c, l, INFINITE, 0);
}

static void
prim_cond_signal(prim_cond_t *c)
{
    WakeConditionVariable(c);
}

static void *(*prim_thread_fn)(void *);

static DWORD WINAPI
prim_thread_entry(LPVOID unused)
{
    (void)unused;
    prim_thread_fn(NULL);
    return 0;
}

static int
prim_thread_start(prim_thread_t *t, void *(*fn)(void *), size_t stack)
{
    prim_thread_fn = fn;
    *t = CreateThread(NULL, stack, prim_thread_entry, NULL, 0, NULL);
    return *t != NULL;
}

static void
prim_thread_join(prim_thread_t t)
{
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}

/* No fork on Windows. */
static int
prim_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    (void)prepare;
    (void)parent;
    (void)child;
    return 0;
}

static uintptr_t
prim_page_size(void)
{
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return (uintptr_t)info.dwPageSize;
}

static int
prim_commit(uintptr_t addr, uintptr_t len)
{
    return VirtualAlloc((LPVOID)addr, (SIZE_T)len, MEM_COMMIT, PAGE_READWRITE) != NULL;
}

static int
prim_release_pages(uintptr_t addr, uintptr_t len)
{
    (void)addr;
    (void)len;
    return 0;
}

static int
prim_resident(uintptr_t addr, uintptr_t len, uint64_t *out)
{
    (void)addr;
    (void)len;
    (void)out;
    return 0;
}

static void
prim_huge_pages(uintptr_t addr, uintptr_t len)
{
    (void)addr;
    (void)len;
}

/* No prefaulting here (PRIM_HAVE_PREFAULT is 0). */
static int
prim_no_idle_core(void)
{
    return 0;
}

static void
prim_populate(uintptr_t lo, uintptr_t hi, int *use_madvise)
{
    (void)use_madvise;
    for (uintptr_t p = lo; p < hi; p += region.page) {
        InterlockedOr8((volatile char *)p, 0);
    }
}

/* No start-up fast path on Windows: _region.py reserves with VirtualAlloc. */
static void *
prim_reserve(size_t len)
{
    (void)len;
    return NULL;
}

static uint64_t
prim_now_ns(void)
{
    return (uint64_t)GetTickCount64() * 1000000u + 1;
}

static uint64_t
prim_pid(void)
{
    return (uint64_t)GetCurrentProcessId();
}

static uintptr_t
prim_thread_id(void)
{
    return (uintptr_t)GetCurrentThreadId();
}

/* Write all of buf[0:len) to the CRT descriptor fd; 0 or an errno. */
static int
prim_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int n = _write(fd, buf, chunk);
        if (n < 0) {
            return errno ? errno : EIO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
prim_process_gone(uint64_t pid)
{
    (void)pid;
    return 0;  /* unused: no shared budget here */
}

/* No shared budget on Windows: each process has its own (budget.c). */
static void *
prim_shared_page(int *fd)
{
    (void)fd;
    return NULL;
}

static void *
prim_os_alloc(size_t len)
{
    return VirtualAlloc(NULL, (SIZE_T)len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

static void
prim_os_free(void *p, size_t len)
{
    (void)len;
    VirtualFree(p, 0, MEM_RELEASE);
}
