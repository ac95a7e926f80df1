/*
 * core/ptrmap.c -- a map from pointers to two 64-bit values: the live fallback
 * blocks (fallback.c) and the blocks a measure(live=True) traces (trace.c).
 *
 * Open addressing (linear probing; deletion by backward shift, so no
 * tombstones), grown by rehash at 3/4 load.  Its memory comes from the OS
 * directly (prim_os_alloc), never from Python's allocators, which are ours.
 * No lock of its own: each user holds its own around every call.  Cost: a
 * multiply and a probe or two per call while the load stays under 3/4.
 */
#define PTRMAP_MIN_SLOTS ((size_t)4096)

typedef struct {
    uint64_t a, b;
} ptrmap_value_t;

typedef struct {
    uintptr_t *keys;         /* 0: an empty slot */
    ptrmap_value_t *values;  /* parallel to keys */
    size_t mask;             /* slots - 1 (a power of two), 0 before the first */
    unsigned shift;          /* 64 - log2(slots) */
    size_t live;
} ptrmap_t;

ALWAYS_INLINE size_t
ptrmap_home(const ptrmap_t *m, uintptr_t key)
{
    return (size_t)(((key >> 4) * (uint64_t)0x9E3779B97F4A7C15ULL) >> m->shift);
}

/* Double the table (or make the first).  0 if the OS refuses. */
static int
ptrmap_grow(ptrmap_t *m)
{
    size_t old_n = m->keys ? m->mask + 1 : 0;
    size_t n = old_n ? 2 * old_n : PTRMAP_MIN_SLOTS;
    uintptr_t *keys = prim_os_alloc(n * sizeof(uintptr_t));
    ptrmap_value_t *values = prim_os_alloc(n * sizeof(ptrmap_value_t));
    if (keys == NULL || values == NULL) {
        if (keys != NULL) {
            prim_os_free(keys, n * sizeof(uintptr_t));
        }
        if (values != NULL) {
            prim_os_free(values, n * sizeof(ptrmap_value_t));
        }
        return 0;
    }
    ptrmap_t old = *m;
    m->keys = keys;
    m->values = values;
    m->mask = n - 1;
    m->shift = 64 - (unsigned)(63 - CLZ64(n));
    for (size_t i = 0; i < old_n; i++) {
        if (old.keys[i] != 0) {
            size_t j = ptrmap_home(m, old.keys[i]) & m->mask;
            while (keys[j] != 0) {
                j = (j + 1) & m->mask;
            }
            keys[j] = old.keys[i];
            values[j] = old.values[i];
        }
    }
    if (old.keys != NULL) {
        prim_os_free(old.keys, old_n * sizeof(uintptr_t));
        prim_os_free(old.values, old_n * sizeof(ptrmap_value_t));
    }
    return 1;
}

/* The slot of key, or -1. */
static Py_ssize_t
ptrmap_find(const ptrmap_t *m, uintptr_t key)
{
    if (m->keys == NULL) {
        return -1;
    }
    size_t i = ptrmap_home(m, key) & m->mask;
    while (m->keys[i] != 0) {
        if (m->keys[i] == key) {
            return (Py_ssize_t)i;
        }
        i = (i + 1) & m->mask;
    }
    return -1;
}

/* key -> value, replacing its value if it is there.  0 if the map cannot grow. */
static int
ptrmap_put(ptrmap_t *m, uintptr_t key, ptrmap_value_t value)
{
    Py_ssize_t found = ptrmap_find(m, key);
    if (found >= 0) {
        m->values[found] = value;
        return 1;
    }
    if ((m->live + 1) * 4 > (m->keys ? m->mask + 1 : 0) * 3 && !ptrmap_grow(m)) {
        return 0;
    }
    size_t i = ptrmap_home(m, key) & m->mask;
    while (m->keys[i] != 0) {
        i = (i + 1) & m->mask;
    }
    m->keys[i] = key;
    m->values[i] = value;
    m->live++;
    return 1;
}

/* Remove key; 1 and its value in *value (if given) if it was there. */
static int
ptrmap_take(ptrmap_t *m, uintptr_t key, ptrmap_value_t *value)
{
    Py_ssize_t found = ptrmap_find(m, key);
    if (found < 0) {
        return 0;
    }
    size_t i = (size_t)found, j = i;
    if (value != NULL) {
        *value = m->values[i];
    }
    for (;;) {
        j = (j + 1) & m->mask;
        if (m->keys[j] == 0) {
            break;
        }
        size_t home = ptrmap_home(m, m->keys[j]) & m->mask;
        /* The entry at j may move to i unless its home lies in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->values[i] = m->values[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->live--;
    return 1;
}

/* Empty the map (its memory is kept). */
static void
ptrmap_clear(ptrmap_t *m)
{
    if (m->keys != NULL) {
        memset(m->keys, 0, (m->mask + 1) * sizeof(uintptr_t));
    }
    m->live = 0;
}
