"""The opt-in reclaim policies: "last" (roll back the most recent block) and
"classes" (size classes with free lists), against the default "none".

Each test installs in a subprocess.  The block-level probes run malloc, free
and malloc again in one C call (_testing.probe_reuse), so nothing else is
allocated in between.
"""

import hashlib
import json

import pytest
from conftest import run_python

RAW, MEM, OBJ = 0, 1, 2

PROBE = """
import json, sys
import bump_global
from bump_global import _testing
bump_global.install("1G", reclaim=sys.argv[1])
cases = json.loads(sys.argv[2])
out = []
for domain, size, use_calloc in cases:
    p, q, zeroed = _testing.probe_reuse(domain, size, use_calloc)
    out.append([p == q, zeroed])
print(json.dumps(out))
"""

# (domain, size) -> is the freed block handed out again, per policy.
#   32, 600, 16000, 30000, 40000: class sizes (up to 64 KiB); 100000: the large area,
#   where the block is the most recent one.
CASES = [
    (OBJ, 32, {"none": False, "last": True, "classes": True}),
    (MEM, 32, {"none": False, "last": True, "classes": True}),
    (OBJ, 0, {"none": False, "last": True, "classes": True}),
    (MEM, 600, {"none": False, "last": True, "classes": True}),
    (OBJ, 16000, {"none": False, "last": True, "classes": True}),
    (OBJ, 30000, {"none": False, "last": True, "classes": True}),
    (OBJ, 40000, {"none": False, "last": True, "classes": True}),
    (MEM, 100000, {"none": False, "last": True, "classes": True}),
    (RAW, 32, {"none": False, "last": False, "classes": False}),  # RAW never reclaims
    (RAW, 100000, {"none": False, "last": False, "classes": False}),
]
EXPECTED = {(domain, size): by_policy for domain, size, by_policy in CASES}


@pytest.mark.parametrize("reclaim", ["none", "last", "classes"])
def test_what_a_free_gives_back_per_policy(py, reclaim):
    cases = [[d, n, c] for d, n, _ in CASES for c in (False, True)]
    out = json.loads(py(PROBE, args=[reclaim, json.dumps(cases)]).stdout)
    for (domain, size, use_calloc), (same, zeroed) in zip(cases, out):
        assert same is EXPECTED[(domain, size)][reclaim], (reclaim, domain, size, use_calloc)
        if use_calloc:
            assert zeroed is True, f"calloc after free not zero: {reclaim} {domain} {size}"


def test_classes_realloc_keeps_contents_and_picks_the_right_block(py):
    out = json.loads(py("""
        import json
        import bump_global
        from bump_global import _testing
        bump_global.install("1G", reclaim="classes")
        rows = []
        for domain in (1, 2):
            for size, new in ((100, 600), (600, 100), (500, 480), (30000, 40000),
                              (40000, 100), (100, 100000), (100000, 300), (0, 17)):
                p, q, kept = _testing.probe_realloc(domain, size, new, 0)
                rows.append([size, new, p == q, kept])
        print(json.dumps(rows))
    """).stdout)
    for size, new, same, kept in out:
        assert kept, f"realloc {size} -> {new} lost bytes"
        if (size, new) in ((500, 480), (100000, 300)):
            # 480 still fills 3/4 of the 512-byte class; a large block that is
            # the most recent one shrinks where it stands.
            assert same, (size, new)
        if (size, new) in ((100, 600), (600, 100), (30000, 40000), (100, 100000)):
            assert not same, (size, new)


def test_classes_give_empty_pages_to_another_class_and_calloc_clears_them(py):
    out = json.loads(py("""
        import json
        import bump_global
        bump_global.install("1G", reclaim="classes")
        # 20,000 blocks of one class (about 1 KiB each), all written, then freed:
        # every page of that class but its current one has no live block left.
        blocks = [b"x" * 1000 + bytes([i % 256]) for i in range(20000)]
        s0 = bump_global.stats()
        del blocks
        s1 = bump_global.stats()
        # 5,000 calloc'ed blocks of another class (bytes(n) asks for zeroed memory).
        zeros = [bytes(3000) for _ in range(5000)]
        s2 = bump_global.stats()
        print(json.dumps({"all_zero": all(z.count(0) == 3000 for z in zeros),
                          "freed": s0.used - s1.used,
                          "grown": s2.consumed - s1.consumed,
                          "used_again": s2.used - s1.used}))
    """).stdout)
    assert out["all_zero"], "a block bumped from a page that held other blocks was not cleared"
    assert out["freed"] > 18 << 20  # the freed blocks count as unused at once
    # 15 MB of new blocks, and the region grew by under 2 MiB: they took the
    # first class's empty pages instead of fresh ones.
    assert out["used_again"] > 14 << 20
    assert out["grown"] < 2 << 20


CHURN = """
import json, sys
import bump_global
bump_global.install("4G", reclaim=sys.argv[1])
def work():
    # Temporaries of many sizes, dropped at once: what pymalloc recycles.
    for i in range(20000):
        row = [(j, str(j) * (i % 7), {"k": j}) for j in range(10)]
        text = json.dumps(row)
        assert json.loads(text)[3][0] == 3
work()
s0 = bump_global.stats()
work()
s1 = bump_global.stats()
print(json.dumps({"used": s1.used - s0.used, "reclaimed": s1.bytes_reclaimed - s0.bytes_reclaimed,
                  "frees_reclaimed": s1.frees_reclaimed - s0.frees_reclaimed,
                  "reused": s1.allocations_reused - s0.allocations_reused,
                  "ignored": s1.frees_ignored - s0.frees_ignored,
                  "consumed": s1.consumed - s0.consumed}))
"""


@pytest.mark.slow  # 2-8 s: two programs of 40,000 json round trips
def test_classes_recycle_temporaries_and_stats_show_it(py):
    none = json.loads(py(CHURN, args=["none"]).stdout)
    classes = json.loads(py(CHURN, args=["classes"]).stdout)
    # Without reclaim every temporary is fresh memory.
    assert none["used"] > 50 << 20
    assert none["reclaimed"] == none["reused"] == none["frees_reclaimed"] == 0
    # With size classes, the second pass lives on the first one's free blocks.
    assert classes["reused"] > 1_000_000
    assert classes["frees_reclaimed"] > 1_000_000
    assert classes["reclaimed"] > 50 << 20
    assert classes["used"] < none["used"] / 20
    assert classes["consumed"] < none["consumed"] / 10


def test_last_rolls_back_only_the_most_recent_block(py):
    out = json.loads(py("""
        import json
        import bump_global
        from bump_global import _testing
        bump_global.install("1G", reclaim="last")
        s0 = bump_global.stats()
        a, b, _ = _testing.probe_reuse(2, 64, False)  # freed while the most recent: reused
        s1 = bump_global.stats()
        # x is allocated after `first`, so freeing `first` gives nothing back.
        first = bytes(40)
        x = bytes(40)
        addr = id(first)
        del first
        again = bytes(40)
        s2 = bump_global.stats()
        print(json.dumps([a == b, s1.frees_reclaimed - s0.frees_reclaimed,
                          id(again) == addr, s2.frees_ignored > s1.frees_ignored]))
    """).stdout)
    same, reclaimed, reused_earlier, ignored = out
    assert same and reclaimed >= 1
    assert not reused_earlier and ignored


def test_classes_give_the_pages_of_freed_large_blocks_back(py):
    out = json.loads(py("""
        import json
        import bump_global
        bump_global.install("1G", reclaim="classes", huge_pages=False, prefault=False)
        first = bytearray(8 << 20)
        second = bytearray(8 << 20)   # `first` is no longer the most recent large block
        for i in range(0, len(first), 4096):
            first[i] = second[i] = 1
        bump_global.memory()  # imports psutil (megabytes of allocations) before we measure
        s0 = bump_global.stats()
        r0 = bump_global.memory().region_resident
        del first
        s1 = bump_global.stats()
        r1 = bump_global.memory().region_resident
        print(json.dumps([s1.bytes_released - s0.bytes_released, r0, r1]))
    """).stdout)
    released, before, after = out
    assert released >= (8 << 20) - 8192
    if before is not None:
        assert before - after >= (8 << 20) - 8192


def test_reclaim_in_config_report_json_and_reinstall(py):
    out = json.loads(py("""
        import json
        import bump_global
        bump_global.install("256M", reclaim="classes")
        bump_global.install("256M", reclaim="classes")   # same: nothing happens
        try:
            bump_global.install("256M")
        except bump_global.BumpGlobalError as exc:
            error = str(exc)
        junk = [str(i) for i in range(10000)]
        del junk
        d = bump_global.report_dict()
        print(json.dumps([error, bump_global.stats().reclaim, d["config"]["reclaim"],
                          d["counters"]["frees_reclaimed"], bump_global.report()]))
    """).stdout)
    error, name, in_json, reclaimed, report = out
    assert "reclaim='classes'" in error and "cannot be reinstalled" in error
    assert name == in_json == "classes"
    assert reclaimed >= 10000
    assert "reclaim    classes:" in report


MIXED = """
import hashlib, json, random, sys, threading
if sys.argv[1] != "pymalloc":
    import bump_global
    bump_global.install("4G", reclaim=sys.argv[1])
rng = random.Random(7)
out = hashlib.sha256()
# Dicts and lists that grow and shrink, strings built and dropped, sorting,
# json round trips, bytearrays resized, and RAW traffic from a thread.
d = {}
for i in range(60000):
    d[str(rng.random())] = [i] * (i % 13)
    if i % 3 == 0:
        d.pop(next(iter(d)))
out.update(json.dumps(sorted(d.items())[:2000]).encode())
b = bytearray()
for i in range(20000):
    b += bytes([i % 256]) * (i % 50)
    if i % 100 == 0:
        del b[: len(b) // 3]
out.update(bytes(b))
def raw_worker(box):
    box.append(hashlib.sha256(b"".join(str(i).encode() for i in range(100000))).hexdigest())
box = []
t = threading.Thread(target=raw_worker, args=(box,))
t.start()
words = [("w%d" % rng.randrange(5000)) * rng.randrange(1, 30) for _ in range(50000)]
out.update(" ".join(sorted(set(words))).encode())
t.join()
out.update(box[0].encode())
print(out.hexdigest())
"""


@pytest.fixture(scope="module")
def pymalloc_digest() -> str:
    """MIXED's digest without bump_global: computed once for every policy."""
    return run_python(MIXED, args=["pymalloc"]).stdout.strip()


@pytest.mark.parametrize("reclaim", ["none", "last", "classes"])
def test_mixed_program_computes_the_same_under_every_policy(py, pymalloc_digest, reclaim):
    expected = pymalloc_digest
    got = py(MIXED, args=[reclaim]).stdout.strip()
    assert len(expected) == len(hashlib.sha256().hexdigest())
    assert got == expected
