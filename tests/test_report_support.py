"""What reports need from the core: the report guard (a full region under
on_exhausted="error" can still allocate while a report runs), fallback blocks
counted apart from blocks from before the install, and a histogram slot of its
own for 0-byte requests.  Each test installs in a subprocess."""

import json

FILL = """
def fill():
    blocks = []
    try:
        while True:
            blocks.append("x" * 3000 + str(len(blocks)))
    except MemoryError:
        pass
    return blocks
"""


def test_report_guard_lets_a_full_region_under_error_allocate(py):
    out = py(FILL + """
import json
import bump_global
from bump_global import _core
bump_global.install("16M", on_exhausted="error")  # the least (MIN_SIZE)
blocks = fill()
s0 = bump_global.stats()
was_on = _core.report_guard(True)
more = [str(i) * 20 for i in range(20000)]      # far more than the reserve holds
import decimal, fractions                        # imports need memory too
s1 = bump_global.stats()
print(json.dumps([was_on, s0.failed_allocations, len(more),
                  s1.fallback_allocations - s0.fallback_allocations,
                  s1.fallback_bytes - s0.fallback_bytes, s1.used <= s1.reserved + (4 << 20),
                  s1.failed_allocations - s0.failed_allocations]))
print(_core.report_guard(True))                  # on until exit: the region is still full
""").stdout.splitlines()
    was_on, failed, n_more, fallbacks, fallback_bytes, within, new_failures = json.loads(out[0])
    assert was_on is False and failed >= 1 and n_more == 20000
    assert fallbacks >= 20000 and fallback_bytes >= 20000 * 40
    assert within and new_failures == 0
    assert out[1] == "True"


def test_fallback_frees_are_counted_apart_from_frees_of_blocks_from_before_the_install(py):
    out = py("""
import json
old = [str(i) * 30 for i in range(50000)]        # from before the install
import bump_global
bump_global.install("16M")                       # on_exhausted="fallback"
s0 = bump_global.stats()
del old
s1 = bump_global.stats()
blocks = [str(i) * 30 for i in range(300000)]   # overflows 16M
b = bytearray()
for i in range(200):
    b += b"y" * 1000                             # a fallback buffer that grows
s2 = bump_global.stats()
del blocks, b
s3 = bump_global.stats()
def d(a, b, f):
    return getattr(b, f) - getattr(a, f)
print(json.dumps({
    "before_fill": [d(s0, s1, "foreign_frees"), d(s0, s1, "fallback_frees")],
    "fallbacks": d(s1, s2, "fallback_allocations"),
    "fallback_reallocs": d(s1, s3, "fallback_reallocs"),
    "after_fill": [d(s2, s3, "foreign_frees"), d(s2, s3, "fallback_frees")],
    "untracked": s3.fallback_untracked,
}))
""").stdout
    r = json.loads(out)
    foreign, fallback = r["before_fill"]
    assert foreign >= 50000 and fallback == 0
    assert r["fallbacks"] >= 90000
    assert r["fallback_reallocs"] >= 1
    foreign, fallback = r["after_fill"]
    # The strings and the bytearray were fallback blocks: their frees are not foreign.
    assert fallback >= 90000 and foreign < 1000
    assert r["untracked"] == 0


def test_fallback_blocks_of_raw_threads_are_all_tracked_through_realloc_and_free(py):
    # Four threads (ctypes drops the GIL) allocate, realloc and free fallback blocks in
    # shuffled order: the set grows several times and deletes across collisions.  A block
    # the set lost would count as a foreign free.
    out = py("""
import ctypes, json, random, threading
import bump_global
api = ctypes.pythonapi
raw_malloc, raw_realloc, raw_free = api.PyMem_RawMalloc, api.PyMem_RawRealloc, api.PyMem_RawFree
raw_malloc.restype, raw_malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
raw_realloc.restype, raw_realloc.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t]
raw_free.restype, raw_free.argtypes = None, [ctypes.c_void_p]
bump_global.install("16M", scope="python")
hold = [str(i) * 30 for i in range(300000)]      # the region is full from here on
s0 = bump_global.stats()
N, T = 5000, 4
def work(seed):
    rnd = random.Random(seed)
    ptrs = [raw_malloc(rnd.randrange(1, 3000)) for _ in range(N)]
    ptrs = [raw_realloc(p, rnd.randrange(1, 5000)) if i % 3 == 0 else p
            for i, p in enumerate(ptrs)]
    rnd.shuffle(ptrs)
    for p in ptrs:
        raw_free(p)
threads = [threading.Thread(target=work, args=(i,)) for i in range(T)]
for t in threads:
    t.start()
for t in threads:
    t.join()
s1 = bump_global.stats()
print(json.dumps([s1.fallback_frees - s0.fallback_frees,
                  s1.fallback_reallocs - s0.fallback_reallocs,
                  s1.foreign_frees - s0.foreign_frees, s1.fallback_untracked]))
""").stdout
    fallback_frees, fallback_reallocs, foreign_frees, untracked = json.loads(out)
    assert fallback_frees >= 5000 * 4 and fallback_reallocs >= 5000 * 4 // 3
    assert foreign_frees < 200 and untracked == 0


def test_histogram_has_a_slot_for_zero_byte_requests(py):
    out = py("""
import ctypes, json
import bump_global
malloc = ctypes.pythonapi.PyMem_Malloc
malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
bump_global.install("64M", histogram=True)
def rows():
    return {bound: (count, nbytes) for bound, count, nbytes in bump_global.stats().histogram}
h0 = rows()
zero = [malloc(0) for _ in range(300)]
h1 = rows()
one = [malloc(1) for _ in range(200)]
h2 = rows()
print(json.dumps([h0.get(0, [0, 0]), h1[0], h1.get(1, [0, 0]), h2[1], h2[0],
                  len(set(zero)) == 300 and all(zero)]))
""").stdout
    zero_before, zero_after, one_before, one_after, zero_later, distinct = json.loads(out)
    assert zero_after[0] - zero_before[0] >= 300 and zero_after[1] == 0
    assert one_after[0] - one_before[0] >= 200
    assert zero_later == zero_after  # 1-byte requests are not filed with the 0-byte ones
    assert distinct
