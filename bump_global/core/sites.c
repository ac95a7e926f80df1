/*
 * core/sites.c -- what an allocation sample records, and where (the sites
 * feature; where samples fall: sampling.c; the stack: frames.c).
 *
 * A sample is one record appended to a stream of records: its size (the bytes
 * handed out, whose weight Python computes with the mean interval it carries),
 * its domain, a sequence number (measure() selects the samples of a block by
 * it), and its stack: up to SITES_DEPTH locations, the innermost first.  A
 * location is a (code object, instruction offset) pair, numbered the first time
 * a sample meets it, when a location record is appended first: its function
 * name, file name and line, copied as UTF-8 from the code object's strings
 * without allocating.  So the stream describes itself: a reader needs nothing
 * but the stream, not even the process (which may be gone: a killed worker's
 * stream is still read by its session).
 *
 * Where records go.  Into a buffer (SITES_BUF bytes from the OS), written out to
 * `fd` (a file Python opened: in a session's directory, or an anonymous one)
 * when it fills, every SITES_FLUSH_NS, and when Python reads.  Before a file is
 * given (a child of fork(), until its Python hook gives it its own), records
 * wait in the buffer; what does not fit is counted as lost, never blocked on.
 *
 * Locations are found in an open-addressing table (OS memory, grown by rehash
 * at 3/4 load) keyed by (code, offset).  No reference is taken on the code: an
 * entry also keeps the code's file name, name and line table pointers and its
 * first line, and a code object found at the address of a dead one matches
 * only if all of them are the same -- then it is the same function at the same
 * place (a module run again, a function defined in a loop), and its location
 * is too.
 *
 * Nothing here allocates from Python's allocators, and nothing calls into
 * Python (PyCode_Addr2Line walks the line table).  An allocation that would
 * reach a sampling point while this thread records (it cannot happen; it would
 * be a bug) is not recorded but counted (`inside`, tested).
 *
 * Lock: sites.lock, taken by sites_record, the flush, and the control calls;
 * never with an arena's lock held (samples are recorded after the arena's lock
 * is released), and it takes no other lock.  Cost: a stack walk and a table
 * lookup per frame, per sample (every `mean` bytes, 256 KiB by default).
 */
#define SITES_DEPTH 128                          /* frames kept per sample */
#define SITES_BUF ((size_t)64 << 10)             /* buffered records */
#define SITES_FLUSH_NS ((uint64_t)20 * 1000 * 1000)  /* write out at least this often */
#define SITES_NAME_MAX 512                       /* bytes of a name or file name kept */

/* Sample flags: the domain in the low two bits, then: */
#define SITE_RAW 0
#define SITE_MEM 1
#define SITE_OBJ 2
#define SITE_TRUNCATED 4  /* the stack was deeper than SITES_DEPTH */
#define SITE_GROWTH 8     /* bytes a block grew in place: no allocation counted */

typedef struct {
    uintptr_t code;        /* 0: an empty slot */
    uintptr_t filename, name, lines;  /* the code's identity (see above) */
    int32_t lasti;
    int32_t firstlineno;
    uint32_t id;           /* the location's number in the stream */
    uint32_t generation;   /* older than sites.generation: empty (after fork) */
} site_loc_t;

static struct {
    prim_lock_t lock;
    uintptr_t owner;         /* atomic: the thread recording now, 0 if none */
    int fd;                  /* where records go; -1: none yet */
    char *buf;               /* SITES_BUF bytes, from the OS */
    size_t len;              /* bytes waiting in buf */
    uint64_t flushed_ns;
    uint64_t seq;            /* atomic: samples taken (measure() windows) */
    uint64_t samples;        /* samples recorded (under lock) */
    uint64_t lost;           /* atomic: samples that could not be recorded */
    uint64_t inside;         /* atomic: points reached while recording (a bug) */
    site_loc_t *table;
    size_t mask;             /* slots - 1, 0 before the first */
    size_t count;
    uint32_t next_id;
    uint32_t generation;
    int write_error;         /* errno of the last failed write, 0 if none */
} sites = {PRIM_LOCK_INIT, 0, -1, NULL, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0, 1, 0};

/* Write the buffered records out, if there is a file.  Under sites.lock. */
static void
sites_flush_locked(void)
{
    if (sites.fd < 0 || sites.len == 0) {
        return;
    }
    int err = prim_write(sites.fd, sites.buf, sites.len);
    if (err != 0) {
        sites.write_error = err;
    }
    sites.len = 0;
    sites.flushed_ns = prim_now_ns();
}

/* Room for n more bytes in the buffer (flushing if need be); 0 if there is
 * none (no file yet and the buffer is full).  Under sites.lock. */
static int
sites_room(size_t n)
{
    if (sites.buf == NULL) {
        sites.buf = prim_os_alloc(SITES_BUF);
        if (sites.buf == NULL) {
            return 0;
        }
    }
    if (sites.len + n > SITES_BUF) {
        sites_flush_locked();
    }
    return sites.len + n <= SITES_BUF;
}

static void
sites_put(const void *data, size_t n)
{
    memcpy(sites.buf + sites.len, data, n);
    sites.len += n;
}

/* s as UTF-8 into out (at most cap bytes, whole characters): its length.
 * Reads the string's own storage (any kind); allocates nothing. */
static size_t
sites_utf8(PyObject *s, char *out, size_t cap)
{
    if (s == NULL || !PyUnicode_Check(s)) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(s)) {
        return 0;
    }
#endif
    Py_ssize_t length = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    size_t n = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        unsigned char b[4];
        size_t k;
        if (c < 0x80) {
            b[0] = (unsigned char)c;
            k = 1;
        }
        else if (c < 0x800) {
            b[0] = (unsigned char)(0xC0 | (c >> 6));
            b[1] = (unsigned char)(0x80 | (c & 0x3F));
            k = 2;
        }
        else if (c >= 0xD800 && c < 0xE000) {
            b[0] = '?';  /* a lone surrogate has no UTF-8 */
            k = 1;
        }
        else if (c < 0x10000) {
            b[0] = (unsigned char)(0xE0 | (c >> 12));
            b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (c & 0x3F));
            k = 3;
        }
        else {
            b[0] = (unsigned char)(0xF0 | (c >> 18));
            b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            b[3] = (unsigned char)(0x80 | (c & 0x3F));
            k = 4;
        }
        if (n + k > cap) {
            break;
        }
        memcpy(out + n, b, k);
        n += k;
    }
    return n;
}

ALWAYS_INLINE size_t
sites_home(uintptr_t code, int32_t lasti)
{
    uint64_t h = ((uint64_t)code >> 4) ^ ((uint64_t)(uint32_t)lasti * 0x9E3779B97F4A7C15ULL);
    return (size_t)(h * 0xBF58476D1CE4E5B9ULL >> 17);
}

/* Double the table (or make the first): 0 if the OS refuses.  Under the lock. */
static int
sites_grow(void)
{
    size_t old_n = sites.table != NULL ? sites.mask + 1 : 0;
    size_t n = old_n ? 2 * old_n : 4096;
    site_loc_t *table = prim_os_alloc(n * sizeof(site_loc_t));
    if (table == NULL) {
        return 0;
    }
    for (size_t i = 0; i < old_n; i++) {
        site_loc_t *e = &sites.table[i];
        if (e->code != 0 && e->generation == sites.generation) {
            size_t j = sites_home(e->code, e->lasti) & (n - 1);
            while (table[j].code != 0) {
                j = (j + 1) & (n - 1);
            }
            table[j] = *e;
        }
    }
    if (sites.table != NULL) {
        prim_os_free(sites.table, old_n * sizeof(site_loc_t));
    }
    sites.table = table;
    sites.mask = n - 1;
    return 1;
}

/* Append a location record: 'L', 0, name length (u16), file length (u16),
 * 0 (u16), id (u32), line (i32), first line (i32), name, file.  0 if no room. */
static int
sites_put_location(const site_loc_t *e, PyCodeObject *code)
{
    char name[SITES_NAME_MAX], file[SITES_NAME_MAX];
    size_t name_len = sites_utf8(frames_code_name(code), name, sizeof name);
    size_t file_len = sites_utf8(code->co_filename, file, sizeof file);
    int32_t line = e->lasti < 0 ? e->firstlineno : PyCode_Addr2Line(code, e->lasti);
    unsigned char head[20] = {'L', 0};
    uint16_t lengths[3] = {(uint16_t)name_len, (uint16_t)file_len, 0};
    memcpy(head + 2, lengths, sizeof lengths);
    memcpy(head + 8, &e->id, 4);
    memcpy(head + 12, &line, 4);
    memcpy(head + 16, &e->firstlineno, 4);
    if (!sites_room(sizeof head + name_len + file_len)) {
        return 0;
    }
    sites_put(head, sizeof head);
    sites_put(name, name_len);
    sites_put(file, file_len);
    return 1;
}

/* The number of frame f's location, recording it first if new; -1 if it cannot
 * be recorded.  Under the lock. */
static int64_t
sites_location(const frame_ref_t *f)
{
    if ((sites.count + 1) * 4 > (sites.table != NULL ? sites.mask + 1 : 0) * 3 &&
        !sites_grow()) {
        return -1;
    }
    PyCodeObject *code = f->code;
    uintptr_t key = (uintptr_t)code;
    uintptr_t filename = (uintptr_t)code->co_filename;
    uintptr_t name = (uintptr_t)frames_code_name(code);
    uintptr_t lines = (uintptr_t)frames_code_lines(code);
    int32_t first = code->co_firstlineno;
    size_t i = sites_home(key, f->lasti) & sites.mask;
    for (;; i = (i + 1) & sites.mask) {
        site_loc_t *e = &sites.table[i];
        if (e->code == 0 || e->generation != sites.generation) {
            break;  /* not found: take this slot */
        }
        if (e->code == key && e->lasti == f->lasti) {
            if (e->filename == filename && e->name == name && e->lines == lines &&
                e->firstlineno == first) {
                return e->id;
            }
            break;  /* another code object lives at a dead one's address: replace */
        }
    }
    site_loc_t *e = &sites.table[i];
    int fresh = e->code == 0 || e->generation != sites.generation;
    site_loc_t entry = {key, filename, name, lines, f->lasti, first, sites.next_id,
                        sites.generation};
    if (!sites_put_location(&entry, code)) {
        return -1;
    }
    *e = entry;
    sites.next_id++;
    sites.count += fresh;
    return entry.id;
}

static uint64_t classes_handed_out(void);  /* reclaim_classes.c */

/* Blocks the GIL domains handed out so far (the `inside` check). */
static uint64_t
sites_gil_allocations(void)
{
    return gil_arena.c.allocations + classes_handed_out();
}

/* Record a sample of `size` bytes just handed out by domain d (flags: SITE_*
 * beyond the domain).  Called with no arena lock held (the GIL for MEM/OBJ). */
static NOINLINE void
sites_record(const domain_t *d, size_t size, int flags)
{
    uintptr_t me = prim_thread_id();
    if (ATOMIC_LOAD(&sites.owner) == me) {
        ATOMIC_ADD(&sites.inside, 1);  /* reached while recording: must not happen */
        return;
    }
    frame_ref_t frames[SITES_DEPTH];
    int more;
    int n = frames_walk(frames, SITES_DEPTH, &more);
    uint64_t before = d->is_raw ? 0 : sites_gil_allocations();
    flags |= d->is_raw ? SITE_RAW : d == &mem_dom ? SITE_MEM : SITE_OBJ;
    flags |= more ? SITE_TRUNCATED : 0;
    uint64_t seq = __atomic_fetch_add(&sites.seq, 1, __ATOMIC_RELAXED);
    LOCK(sites.lock);
    ATOMIC_STORE(&sites.owner, me);
    uint32_t ids[SITES_DEPTH];
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        int64_t id = sites_location(&frames[i]);
        ok = id >= 0;
        ids[i] = (uint32_t)id;
    }
    /* 'S', flags, frames (u16), 0 (u32), sequence, size, mean (u64 each). */
    unsigned char head[32] = {'S', (unsigned char)flags};
    uint16_t nframes = (uint16_t)n;
    uint64_t size64 = size, mean = (uint64_t)sampling.mean;
    memcpy(head + 2, &nframes, 2);
    memcpy(head + 8, &seq, 8);
    memcpy(head + 16, &size64, 8);
    memcpy(head + 24, &mean, 8);
    if (ok && sites_room(sizeof head + 4 * (size_t)n)) {
        sites_put(head, sizeof head);
        sites_put(ids, 4 * (size_t)n);
        sites.samples++;
        if (prim_now_ns() - sites.flushed_ns > SITES_FLUSH_NS) {
            sites_flush_locked();
        }
    }
    else {
        ATOMIC_ADD(&sites.lost, 1);
    }
    ATOMIC_STORE(&sites.owner, 0);
    UNLOCK(sites.lock);
    if (!d->is_raw && sites_gil_allocations() != before) {
        ATOMIC_ADD(&sites.inside, 1);  /* something allocated while recording */
    }
}

/* fork(): the child keeps no file (its Python hook gives it its own), none of
 * the parent's waiting records, and numbers its locations anew. */
static void
sites_atfork_prepare(void)
{
    LOCK(sites.lock);
}

static void
sites_atfork_parent(void)
{
    UNLOCK(sites.lock);
}

static void
sites_atfork_child(void)
{
    prim_lock_reinit(&sites.lock);
    sites.owner = 0;
    sites.fd = -1;
    sites.len = 0;
    sites.samples = sites.lost = sites.inside = 0;
    sites.generation++;
    sites.count = 0;
    sites.next_id = 0;
    sites.write_error = 0;
    sampling_atfork_child();
}

static void hooks_refresh(void);  /* domains.c: the classes' sampling hooks */

/* sites_start(mean): arm the sampling points (or change their mean). */
static PyObject *
core_sites_start(PyObject *self, PyObject *arg)
{
    double mean = PyFloat_AsDouble(arg);
    if (mean == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!region.installed || !(mean >= 1.0)) {
        PyErr_SetString(PyExc_ValueError,
                        "sites_start(mean) needs an install and a mean of at least 1 byte");
        return NULL;
    }
    if (sampling.classes_rng == 0) {
        sampling.classes_rng = sampling_seed(&sampling);
    }
    LOCK(raw_lock);
    sampling.on = 1;
    sampling.mean = mean;
    arena_arm(&gil_arena, mean);
    arena_arm(&raw_arena, mean);
    UNLOCK(raw_lock);
    sampling.classes_left = (int64_t)sampling_interval(&sampling.classes_rng);
    hooks_refresh();
    Py_RETURN_NONE;
}

/* sites_stop(): disarm the points; what was recorded stays. */
static PyObject *
core_sites_stop(PyObject *self, PyObject *unused)
{
    LOCK(raw_lock);
    sampling.on = 0;
    arena_arm(&gil_arena, 0);
    arena_arm(&raw_arena, 0);
    UNLOCK(raw_lock);
    if (region.installed) {
        hooks_refresh();
    }
    Py_RETURN_NONE;
}

/* sites_output(fd): where records go from now on (Python keeps the file open,
 * and begins a new stream with its magic, bump_global/_sites.py).  Writes what
 * waited. */
static PyObject *
core_sites_output(PyObject *self, PyObject *arg)
{
    int fd = (int)PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int err;
    Py_BEGIN_ALLOW_THREADS
    LOCK(sites.lock);
    sites.fd = fd;
    sites.write_error = 0;
    sites_flush_locked();
    err = sites.write_error;
    UNLOCK(sites.lock);
    Py_END_ALLOW_THREADS
    if (err != 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* sites_flush(): write out what waits; the errno of a failed write, or 0. */
static PyObject *
core_sites_flush(PyObject *self, PyObject *unused)
{
    int err;
    Py_BEGIN_ALLOW_THREADS
    LOCK(sites.lock);
    sites_flush_locked();
    err = sites.write_error;
    UNLOCK(sites.lock);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(err);
}

/* sites_on() -> whether sampling is on (a bool: nothing allocated, for measure()). */
static PyObject *
core_sites_on(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(sampling.on);
}

/* sites_state() -> (on, mean, taken, recorded, lost, inside, locations). */
static PyObject *
core_sites_state(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(OdKKKKK)", sampling.on ? Py_True : Py_False, sampling.mean,
                         (unsigned long long)ATOMIC_LOAD(&sites.seq),
                         (unsigned long long)sites.samples,
                         (unsigned long long)ATOMIC_LOAD(&sites.lost),
                         (unsigned long long)ATOMIC_LOAD(&sites.inside),
                         (unsigned long long)sites.next_id);
}

#define SITES_METHODS                                                              \
    {"sites_start", core_sites_start, METH_O,                                      \
     "sites_start(mean): sample allocations every `mean` bytes on average, from now on\n" \
     "(or change the mean)."},                                                      \
    {"sites_stop", core_sites_stop, METH_NOARGS,                                   \
     "sites_stop(): sample no more; what was recorded stays."},                    \
    {"sites_output", core_sites_output, METH_O,                                    \
     "sites_output(fd): write the sample records to file descriptor fd from now on\n" \
     "(the caller keeps it open); -1: keep them waiting."},                         \
    {"sites_flush", core_sites_flush, METH_NOARGS,                                 \
     "sites_flush() -> errno of the last failed write, or 0: write out what waits."}, \
    {"sites_on", core_sites_on, METH_NOARGS,                                       \
     "sites_on() -> True while allocations are sampled."},                         \
    {"sites_state", core_sites_state, METH_NOARGS,                                 \
     "sites_state() -> (on, mean, samples taken, recorded, lost, reached while\n"  \
     "recording, locations)."},
