/*
 * core/budget.c -- the budget the processes of one program share.
 *
 * The automatic size ("auto": half of the machine's memory) is the budget of
 * the whole program, not of each of its processes: a program that starts
 * eight workers must not take four machines' halves.  Processes that install
 * with it charge every chunk and large block both to their own region
 * (region.charged) and to one counter in a page shared between them; past
 * the shared limit, charge() refuses as if the region were full, and the
 * on_exhausted policy serves (fallback: the previous allocator).
 *
 * The first process creates the page (prim_shared_page: a memfd) and keeps
 * its descriptor open; forked children share the mapping (atfork_child counts
 * them in), spawned ones map the same file again (Python passes its path,
 * /proc/<pid>/fd/<fd>, in BUMP_GLOBAL_SHARED_BUDGET: bump_global/_startup.py).
 * Each process has a slot in the page with what it charged (shared_slot_t);
 * the used total is their sum, and the slots of processes that ended without
 * giving anything back (every process: frees are no-ops) are freed when the
 * limit would be passed (shared_reap), so a program that starts many short
 * workers does not run out.  An explicit size is per process
 * and never shares.  Cold paths only (a chunk, a large block, a large free).
 * No shared budget on Windows (prim_windows.c): each process has its own.
 */

#define SHARED_MAGIC 0x6762647542706d62ULL  /* "bmpBudg" + layout version */
#define SHARED_SLOTS 240                    /* processes alive at once */

/* One process of the program: what it charged.  pid 0: a free slot.  Only the
 * process writes its `charged`; any process may free the slot of one that has
 * ended (shared_reap): charged first, then pid. */
typedef struct {
    uint64_t pid;      /* atomic */
    uint64_t charged;  /* atomic */
} shared_slot_t;

typedef struct {
    uint64_t magic;      /* SHARED_MAGIC once the creator filled the page */
    uint64_t limit;      /* bytes the processes may take together */
    uint64_t processes;  /* atomic: processes that joined so far */
    uint64_t refusals;   /* atomic: charges refused for lack of shared room */
    uint64_t high;       /* atomic: slots [0, high) have been used */
    shared_slot_t slot[SHARED_SLOTS];
} shared_budget_t;       /* 3,880 bytes: one page */

static shared_budget_t *shared_budget;  /* NULL: this process's budget alone */
static shared_slot_t *shared_slot;      /* this process's slot in it */
static uint64_t shared_refused;         /* atomic: refusals in this process */

/* Bytes the live processes took together (ended ones until reaped).  A loop
 * over the slots used so far: a few for most programs. */
static uint64_t
shared_used(const shared_budget_t *s)
{
    uint64_t sum = 0, high = ATOMIC_LOAD(&s->high);
    for (uint64_t i = 0; i < high && i < SHARED_SLOTS; i++) {
        if (ATOMIC_LOAD(&s->slot[i].pid) != 0) {
            sum += ATOMIC_LOAD(&s->slot[i].charged);
        }
    }
    return sum;
}

/* Free the slots of processes that have ended (a crash, a signal, os._exit:
 * nothing gave their bytes back).  Returns how many. */
static int
shared_reap(shared_budget_t *s)
{
    int reaped = 0;
    uint64_t me = prim_pid(), high = ATOMIC_LOAD(&s->high);
    for (uint64_t i = 0; i < high && i < SHARED_SLOTS; i++) {
        uint64_t pid = ATOMIC_LOAD(&s->slot[i].pid);
        if (pid != 0 && pid != me && prim_process_gone(pid)) {
            ATOMIC_STORE(&s->slot[i].charged, 0);
            if (ATOMIC_CAS(&s->slot[i].pid, pid, 0)) {
                reaped++;
            }
        }
    }
    return reaped;
}

/* Take a free slot for this process, charged with `taken`; NULL if none. */
static shared_slot_t *
shared_join(shared_budget_t *s, uint64_t taken)
{
    uint64_t me = prim_pid(), high = ATOMIC_LOAD(&s->high);
    /* A child of fork() that then exec'd (subprocess on 3.9, which forks, so
     * the fork handlers ran) has a slot already: the same process. */
    for (uint64_t i = 0; i < high && i < SHARED_SLOTS; i++) {
        if (ATOMIC_LOAD(&s->slot[i].pid) == me) {
            ATOMIC_STORE(&s->slot[i].charged, taken);
            return &s->slot[i];
        }
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        for (int i = 0; i < SHARED_SLOTS; i++) {
            uint64_t free_pid = 0;
            if (ATOMIC_LOAD(&s->slot[i].pid) == 0 &&
                ATOMIC_CAS(&s->slot[i].pid, free_pid, me)) {
                ATOMIC_STORE(&s->slot[i].charged, taken);
                ATOMIC_ADD(&s->processes, 1);
                high = ATOMIC_LOAD(&s->high);
                while (high < (uint64_t)i + 1 && !ATOMIC_CAS(&s->high, high, (uint64_t)i + 1)) {
                }
                return &s->slot[i];
            }
        }
        if (!shared_reap(s)) {
            break;
        }
    }
    return NULL;
}

/* Once the shared budget is full, every allocation that needs a chunk asks
 * again (and falls back): reaping, a kill(pid, 0) per other process, is done
 * at most once per SHARED_REAP_NS, not on each of those asks. */
#define SHARED_REAP_NS ((uint64_t)10 * 1000 * 1000)
static uint64_t shared_reaped_at;  /* atomic: prim_now_ns() of the last reap here */

static int
shared_reap_now(void)
{
    uint64_t now = prim_now_ns(), last = ATOMIC_LOAD(&shared_reaped_at);
    return (last == 0 || now - last >= SHARED_REAP_NS) &&
           ATOMIC_CAS(&shared_reaped_at, last, now);
}

/* Take n bytes from the shared budget, `slack` bytes beyond its limit allowed
 * (the emergency reserve, once released).  1 if there is no shared budget.
 * Charged first, then checked: two processes racing for the last bytes may
 * both be refused, never both served past the limit. */
static int
shared_charge(uintptr_t n, uintptr_t slack)
{
    shared_budget_t *s = shared_budget;
    shared_slot_t *me = shared_slot;
    if (s == NULL || me == NULL) {
        return 1;
    }
    ATOMIC_ADD(&me->charged, n);
    uint64_t limit = s->limit + slack;
    if (shared_used(s) <= limit || (shared_reap_now() && shared_reap(s) &&
                                    shared_used(s) <= limit)) {
        return 1;
    }
    ATOMIC_SUB(&me->charged, n);
    ATOMIC_ADD(&s->refusals, 1);
    ATOMIC_ADD(&shared_refused, 1);
    return 0;
}

/* Give back up to n bytes, no more than this process charged: a forked child
 * that frees a large block of its parent's gives nothing back (the parent
 * still holds those pages). */
static void
shared_uncharge(uintptr_t n)
{
    shared_slot_t *me = shared_slot;
    if (me == NULL) {
        return;
    }
    uint64_t own = ATOMIC_LOAD(&me->charged);
    for (;;) {
        uint64_t m = n < own ? n : own;
        if (m == 0 || ATOMIC_CAS(&me->charged, own, own - m)) {
            return;
        }
    }
}

/* In a child of fork(): the mapping is shared; the child takes a slot of its
 * own, with nothing charged yet (or, with no slot free, its budget alone). */
static void
shared_budget_atfork_child(void)
{
    if (shared_budget != NULL) {
        shared_refused = 0;
        shared_reaped_at = 0;
        shared_slot = shared_join(shared_budget, 0);
        if (shared_slot == NULL) {
            shared_budget = NULL;
        }
    }
}

/* share_budget(fd, limit) -> int | None, after install().  fd < 0: create a
 * shared budget of `limit` bytes, charged with what this process took so
 * far, and return the descriptor of its page (the caller keeps it open);
 * else join the budget whose page `fd` opens (the caller closes fd) and
 * return -1.  None when it cannot be had here (not Linux, no memfd, not a
 * budget page): the process keeps its own budget alone. */
static PyObject *
core_share_budget(PyObject *self, PyObject *args)
{
    int fd;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "iK", &fd, &limit)) {
        return NULL;
    }
    if (!region.installed || shared_budget != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "share_budget() needs an install and no shared budget yet");
        return NULL;
    }
    int create = fd < 0;
    shared_budget_t *s = prim_shared_page(&fd);
    if (s == NULL) {
        Py_RETURN_NONE;
    }
    uint64_t taken = ATOMIC_LOAD(&region.charged);
    if (create) {
        s->limit = limit;
        ATOMIC_STORE(&s->magic, SHARED_MAGIC);
    }
    else if (ATOMIC_LOAD(&s->magic) != SHARED_MAGIC || s->limit == 0) {
        Py_RETURN_NONE;  /* not a budget page: left mapped, unused */
    }
    shared_slot_t *slot = shared_join(s, taken);
    if (slot == NULL) {
        Py_RETURN_NONE;  /* SHARED_SLOTS processes alive: this one goes alone */
    }
    shared_slot = slot;
    FENCE();
    shared_budget = s;
    return PyLong_FromLong(create ? fd : -1);
}

/* shared_budget() -> (limit, used, own, processes, refusals, refused here):
 * `used` by the processes alive, `own` by this one,
 * `processes` that joined so far; or None when this process's budget is its
 * own alone. */
static PyObject *
core_shared_budget(PyObject *self, PyObject *unused)
{
    shared_budget_t *s = shared_budget;
    if (s == NULL || shared_slot == NULL) {
        Py_RETURN_NONE;
    }
    shared_reap(s);  /* the figure is of processes alive */
    return Py_BuildValue("(KKKKKK)", (unsigned long long)s->limit,
                         (unsigned long long)shared_used(s),
                         (unsigned long long)ATOMIC_LOAD(&shared_slot->charged),
                         (unsigned long long)ATOMIC_LOAD(&s->processes),
                         (unsigned long long)ATOMIC_LOAD(&s->refusals),
                         (unsigned long long)ATOMIC_LOAD(&shared_refused));
}
