"""The allocator contract, driven through CPython's C API (in subprocesses)."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import CAPI

DOMAINS = ["raw", "mem", "obj"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_malloc_calloc_contract(py, domain):
    out = py(CAPI + f"""
import bump_global, json
bump_global.install("256M")
s = bump_global.stats()
inside = lambda p: p is not None and s.contains(p)
malloc, calloc, realloc, free = FUNCS[{domain!r}]
zeros = [malloc(0) for _ in range(3)] + [calloc(0, 8), calloc(8, 0)]
blocks = [malloc(n) for n in (1, 15, 16, 17, 100, 4095, 70000)]
c = calloc(1000, 3)
dirty = malloc(3000); ctypes.memset(dirty, 0xFF, 3000)
c2 = calloc(3000, 1)  # never handed out: zero without a memset
huge = calloc(2**63, 4)   # nelem * elsize overflows
free(None)
print(json.dumps({{
    "zeros_distinct": len(set(zeros)) == len(zeros) and all(zeros),
    "all_inside": all(map(inside, zeros + blocks + [c, c2])),
    "aligned": all(p % 16 == 0 for p in zeros + blocks + [c]),
    "no_overlap": all(b - a >= 16 for a, b in zip(sorted(zeros), sorted(zeros)[1:])),
    "calloc_zero": ctypes.string_at(c, 3000) == bytes(3000)
                   and ctypes.string_at(c2, 3000) == bytes(3000),
    "overflow_null": huge is None,
    "realloc_null_is_malloc": inside(realloc(None, 64)),
}}))
""").stdout
    assert json.loads(out) == dict.fromkeys(
        ["zeros_distinct", "all_inside", "aligned", "no_overlap", "calloc_zero",
         "overflow_null", "realloc_null_is_malloc"], True)


LARGE = 64 << 10  # MEM/OBJ blocks of this size and more live in the large area


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize(
    "size, new_size, interleave",
    [
        (100, 10000, 0),        # the most recent block grows where it stands
        (10000, 100, 0),        # ... and shrinks
        (64, 0, 0),             # realloc(p, 0) resizes and returns non-NULL
        (100, 10000, 16),       # an older block moves, contents copied
        (10000, 100, 16),
        (100, 200000, 16),      # a small block grows into the large area
        (3 << 20, 6 << 20, 0),  # past the 1 MiB chunk: the chunk extends
        (3 << 20, 6 << 20, 16),  # a large block is still the last of its area
        (3 << 20, 6 << 20, 1 << 20),  # an older large block moves
        (6 << 20, 3 << 20, 1 << 20),
    ],
)
def test_realloc_keeps_contents(py, domain, size, new_size, interleave):
    large_area = domain != "raw" and size >= LARGE
    # In place when nothing came after the block in its own area.
    in_place = interleave == 0 or (large_area and interleave < LARGE)
    index = DOMAINS.index(domain)
    out = py(f"""
import bump_global, json
from bump_global import _testing
bump_global.install("256M")
s0 = bump_global.stats()
p, q, kept = _testing.probe_realloc({index}, {size}, {new_size}, {interleave})
s1 = bump_global.stats()
print(json.dumps([p == q, kept, s0.contains(q),
                  s1.reallocs_in_place - s0.reallocs_in_place,
                  s1.reallocs_moved - s0.reallocs_moved,
                  s1.bytes_copied - s0.bytes_copied,
                  s1.bytes_released - s0.bytes_released]))
""").stdout
    same, kept, inside, n_in_place, n_moved, copied, released = json.loads(out)
    assert kept and inside
    assert same is in_place
    assert (n_in_place, n_moved) == ((1, 0) if in_place else (0, 1))
    if in_place:
        assert copied == 0
    elif large_area:
        # A large block knows its size: exactly its bytes are copied, and its
        # whole pages go back to the OS.
        assert copied == min(size, new_size)
        assert size - 2 * 4096 <= released <= size
    else:
        assert min(size, new_size) <= copied <= new_size


@pytest.mark.parametrize("domain", DOMAINS)
def test_blocks_from_before_install_go_to_the_previous_allocator(py, domain):
    out = py(CAPI + f"""
import bump_global, json
malloc, calloc, realloc, free = FUNCS[{domain!r}]
old = [malloc(200) for _ in range(50)]
for i, p in enumerate(old):
    fill(p, 200, i)
bump_global.install("256M")
s0 = bump_global.stats()
grown = [realloc(p, 5000) for p in old[:25]]
kept = all(check(p, 200, i) for i, p in enumerate(grown))
kept &= all(check(p, 200, i + 25) for i, p in enumerate(old[25:]))
outside = not any(s0.contains(p) for p in grown)
for p in grown + old[25:]:
    free(p)
s1 = bump_global.stats()
print(json.dumps([kept, outside, s1.foreign_reallocs - s0.foreign_reallocs,
                  s1.foreign_frees - s0.foreign_frees]))
""").stdout
    kept, outside, reallocs, frees = json.loads(out)
    assert kept
    # pymalloc serves a grown MEM/OBJ block above 512 bytes with PyMem_RawMalloc,
    # which is ours now; libc's realloc keeps RAW blocks outside.
    assert outside is (domain == "raw")
    assert reallocs == 25 and frees >= (50 if domain == "raw" else 25)


def test_preexisting_bytearrays_survive_extend(py):
    # Without wrapping, 3.12/3.13 silently corrupted most of these.
    out = py("""
        import bump_global
        arrays = [bytearray(bytes([i % 256]) * 1000) for i in range(100)]
        bump_global.install()
        for i, a in enumerate(arrays):
            a.extend(bytes([i % 256]) * 5000)
        bad = sum(a != bytearray(bytes([i % 256]) * 6000) for i, a in enumerate(arrays))
        print(bad)
    """).stdout
    assert out.strip() == "0"


@pytest.mark.parametrize("domain", DOMAINS)
def test_failed_realloc_leaves_the_block_valid(py, domain):
    out = py(CAPI + f"""
import bump_global, json
bump_global.install("16M", on_exhausted="error")
malloc, calloc, realloc, free = FUNCS[{domain!r}]
p = malloc(1000)
fill(p, 1000, 5)
q = realloc(p, 64 << 20)   # larger than the region
r = malloc(64 << 20)
print(json.dumps([q is None, r is None, check(p, 1000, 5),
                  bump_global.stats().failed_allocations]))
""").stdout
    q_null, r_null, kept, failed = json.loads(out)
    assert q_null and r_null and kept and failed == 2


def test_calloc_clears_memory_given_back_by_an_in_place_shrink(py):
    # The RAW arena sees no Python objects, so its most recent block is ours.
    out = py(CAPI + """
import bump_global, json
bump_global.install("256M")
malloc, calloc, realloc, free = FUNCS["raw"]
p = malloc(3000)
ctypes.memset(p, 0xFF, 3000)
q = realloc(p, 16)               # shrinks in place: the top moves back
c = calloc(3000, 1)              # reuses dirty bytes: they must be cleared
d = calloc(100, 1)               # beyond the dirty mark: fresh, already zero
print(json.dumps([q == p, c == p + 16, ctypes.string_at(c, 3000) == bytes(3000),
                  ctypes.string_at(d, 100) == bytes(100)]))
""").stdout
    assert json.loads(out) == [True, True, True, True]


@pytest.fixture(scope="module")
def libasan() -> str:
    """The path of the C compiler's libasan.so (asked once); skips the test without one."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or sys.platform != "linux":
        pytest.skip("needs libasan.so (gcc or clang) on Linux")
    path = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True,
                          text=True).stdout.strip()
    if not path.startswith("/"):
        pytest.skip("needs libasan.so (gcc or clang) on Linux")
    return path


@pytest.mark.parametrize("domain", [0, 1, 2])
def test_moved_realloc_copies_without_overlapping_memcpy(py, libasan, domain):
    # A block that is not the most recent one moves on realloc.  The old size is unknown,
    # so up to the new size is copied from the old address: when the new block lies just
    # above the old one, source and destination overlap, which memcpy does not allow (C
    # undefined behaviour; ASan's memcpy interceptor, preloaded here, aborts on it).  The
    # copy must use memmove, or stop at the new block (the old block ends below it).
    proc = py(f"""
        import bump_global
        from bump_global import _testing
        bump_global.install("256M")
        for size, new_size in ((100, 10000), (4000, 100000), (16, 3 << 20)):
            p, q, kept = _testing.probe_realloc({domain}, size, new_size, True)
            assert kept and p != q
        print("ok")
    """, env={"LD_PRELOAD": libasan,
              "ASAN_OPTIONS": "detect_leaks=0:allocator_may_return_null=1"}, check=False)
    assert proc.returncode == 0 and "memcpy-param-overlap" not in proc.stderr, \
        proc.stderr[:2000]
