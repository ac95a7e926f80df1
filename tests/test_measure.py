"""bump_global.measure(): exact figures of a block, under every reclaim policy.

Every test installs the allocator, so each runs in a subprocess (run_python).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_python

POLICIES = ["none", "last", "classes"]

# Prints one JSON line: figures of several blocks, measured after install.
PRELUDE = """
import json, sys
import bump_global
bump_global.install(reclaim=sys.argv[1], scope=sys.argv[2])
keep = []  # rebinding `as m` would free the previous Measure inside the next block

def figures(m):
    keep.append(m)
    return m.as_dict()
"""


def run(code: str, reclaim: str, scope: str = "python") -> dict:
    proc = run_python(PRELUDE + code, args=[reclaim, scope])
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("reclaim", POLICIES)
def test_empty_block_measures_nothing(reclaim: str) -> None:
    out = run("""
results = []
for _ in range(50):
    with bump_global.measure() as m:
        pass
    results.append(figures(m))
print(json.dumps(results))
""", reclaim)
    for result in out:
        assert result["allocations"] == 0 and result["bytes"] == 0 and result["frees"] == 0
        assert result["bytes_net"] == 0 and result["reallocs_moved"] == 0


@pytest.mark.parametrize("reclaim", POLICIES)
def test_every_allocation_counts_under_each_policy(reclaim: str) -> None:
    # 1000 bytes objects of 100 bytes made and dropped one by one: under
    # "classes" all but the first come from a free list; all are counted.
    out = run("""
import sys
from itertools import repeat
size = sys.getsizeof(b"x" * 100)
with bump_global.measure() as loop:  # the loop alone
    for _ in repeat(None, 1000):
        b = None
with bump_global.measure() as m:
    for _ in repeat(None, 1000):
        b = bytes(100)
print(json.dumps([figures(loop), figures(m), size]))
""", reclaim)
    loop, result, size = out
    block = (size + 15) // 16 * 16
    assert result["allocations"] - loop["allocations"] == 1000
    assert result["bytes"] - loop["bytes"] == 1000 * block
    assert result["frees"] - loop["frees"] >= 999
    if reclaim == "none":
        assert result["bytes_net"] == result["bytes"]
    elif reclaim == "classes":
        assert result["bytes_net"] - loop["bytes_net"] <= 2 * block  # blocks given back


@pytest.mark.parametrize("reclaim", POLICIES)
def test_reallocs_moved_and_bytes_copied_are_counted(reclaim: str) -> None:
    out = run("""
keep_alive = []
with bump_global.measure() as m:
    data = bytearray(1000)
    keep_alive.append(bytearray(16))  # data is no longer the most recent block
    data.extend(bytes(3000))
print(json.dumps(figures(m)))
""", reclaim)
    assert out["reallocs_moved"] >= 1
    assert out["bytes_copied"] >= 1000


@pytest.mark.parametrize("reclaim", POLICIES)
def test_outer_measures_what_inner_measures(reclaim: str) -> None:
    out = run("""
results = []
for n in (0, 10, 1000):
    with bump_global.measure() as outer:
        with bump_global.measure() as inner:
            x = [n] * n
    results.append((figures(outer), figures(inner)))
    del x
print(json.dumps(results))
""", reclaim)
    for outer, inner in out:
        for name in ("allocations", "bytes", "frees"):
            assert outer[name] == inner[name], (name, outer, inner)
    assert out[2][1]["bytes"] >= 8000


def test_decorator_measures_each_call_and_nests() -> None:
    out = run("""
@bump_global.measure()
def build(n):
    return [n] * n

results = []
for n in (10, 1000, 10):
    build(n)
    results.append(dict(figures(build.measure), calls=build.measure.calls))
with bump_global.measure() as outer:
    build(1000)
results.append(figures(outer))
results.append(figures(build.measure))
print(json.dumps(results))
""", "none")
    small, big, small_again, outer, inner = out
    assert small["allocations"] == small_again["allocations"]
    assert small["bytes"] == small_again["bytes"]
    assert big["bytes"] - small["bytes"] == 990 * 8
    assert [small["calls"], big["calls"], small_again["calls"]] == [1, 2, 3]
    assert outer["allocations"] == inner["allocations"]
    assert outer["bytes"] == inner["bytes"]


def test_scope_raw_counts_no_object_allocations() -> None:
    out = run("""
with bump_global.measure() as empty:
    pass
with bump_global.measure() as m:
    x = [object() for _ in range(100)]
print(json.dumps([figures(empty), figures(m)]))
""", "none", scope="raw")
    empty, objects = out
    assert empty["allocations"] == 0 and empty["bytes"] == 0
    assert objects["allocations"] < 10  # objects are OBJ: not served, not counted


def test_figures_before_the_block_ends_raise_a_clear_error() -> None:
    proc = run_python(PRELUDE + """
with bump_global.measure() as m:
    try:
        m.allocations
    except AttributeError as exc:
        print(exc)
""", args=["none", "python"])
    assert "has not finished a block yet" in proc.stdout


def test_measure_before_install_says_how_to_install() -> None:
    proc = run_python("""
import bump_global
try:
    with bump_global.measure():
        pass
except bump_global.BumpGlobalError as exc:
    print(exc)
""")
    assert "bump_global.install()" in proc.stdout
    assert "BUMP_GLOBAL=1" in proc.stdout and "--bump-global" in proc.stdout


def test_other_threads_allocations_are_counted() -> None:
    out = run("""
import threading
go, done = threading.Event(), threading.Event()
def work():
    go.wait()
    global made
    made = [bytes(100) for _ in range(1000)]
    done.set()
t = threading.Thread(target=work)
t.start()
with bump_global.measure() as m:
    go.set()
    done.wait()
t.join()
print(json.dumps(figures(m)))
""", "none")
    assert out["allocations"] >= 1000


@pytest.mark.parametrize("reclaim", POLICIES)
def test_deep_nesting_takes_each_measurement_off_once(reclaim: str) -> None:
    out = run("""
@bump_global.measure()
def build(n):
    return [n] * n

build(1)  # first calls make caches (3.9: the wrapper's frame), counted by the outer blocks
results = []
for n in (10, 1000):
    with bump_global.measure() as a:
        with bump_global.measure() as b:
            with bump_global.measure() as c:
                build(n)
    results.append([figures(a), figures(b), figures(c), figures(build.measure)])
print(json.dumps(results))
""", reclaim)
    for levels in out:
        a, b, c, call = levels
        for name in ("allocations", "bytes", "frees"):
            assert a[name] == b[name] == c[name], (name, levels)
        assert c["allocations"] == call["allocations"] and c["bytes"] == call["bytes"]
    if reclaim != "classes":  # classes round 8 KB blocks to their size class
        assert out[1][0]["bytes"] - out[0][0]["bytes"] == 990 * 8


def test_numpy_array_bytes_count_with_the_numpy_handler() -> None:
    pytest.importorskip("numpy")
    proc = run_python("""
import json
import bump_global
bump_global.install(numpy=True)
import numpy as np
np.ones(1)
with bump_global.measure() as m:
    a = np.ones(1_000_000)
print(json.dumps(m.as_dict()))
""")
    result = json.loads(proc.stdout)
    # Array data comes through the RAW domain: counted, with its small header.
    assert 8_000_000 <= result["bytes"] < 8_000_000 + 4096
    assert result["allocations"] < 20


LIVE = """
import json, sys, tracemalloc
import bump_global
bump_global.install("1G", reclaim=sys.argv[1])

def work():
    keep = [str(i) * 5 for i in range(10000)]
    temp = [bytes(200) for _ in range(5000)]   # freed before the block ends
    del temp
    return keep

kept = [work(), work(), None, None, None]  # warm; slots for the measured blocks
with bump_global.measure(live=True) as empty:
    pass
with bump_global.measure(live=True) as traced:
    kept[2] = work()
with bump_global.measure() as plain:
    kept[3] = work()
tracemalloc.start()  # after the install: allowed
before = tracemalloc.get_traced_memory()[0]
with bump_global.measure(live=True) as both:
    kept[4] = work()
after = tracemalloc.get_traced_memory()[0]
with bump_global.measure(live=True) as outer:
    a = [1] * 1000
    with bump_global.measure(live=True) as inner:
        b = [2] * 2000
try:
    plain.bytes_live
except AttributeError as exc:
    refused = str(exc)
expected = sys.getsizeof(kept[2]) + sum(map(sys.getsizeof, kept[2]))  # requested bytes
print(json.dumps({"empty": [empty.bytes, empty.allocations_live, empty.bytes_live],
                  "expected": expected,
                  "traced": [traced.bytes, traced.allocations_live, traced.bytes_live],
                  "plain": plain.bytes, "tracemalloc": after - before,
                  "both": both.bytes_live, "outer": outer.bytes_live,
                  "inner": inner.bytes_live, "refused": refused}))
"""


@pytest.mark.parametrize("reclaim", ["none", "classes"])
def test_live_bytes_are_tracemallocs_and_tracing_changes_no_other_figure(
        reclaim: str) -> None:
    out = json.loads(run_python(LIVE, args=[reclaim]).stdout)
    assert out["empty"] == [0, 0, 0]
    handed_out, allocations_live, bytes_live = out["traced"]
    assert handed_out == out["plain"]  # tracing allocates nothing from the region
    # the 10,000 strings and their list stayed; the 5,000 bytes objects did not
    assert 10000 <= allocations_live <= 10002
    assert abs(bytes_live - out["expected"]) < 0.01 * out["expected"], out
    # tracemalloc, tracing the same block (its call to get_traced_memory aside)
    assert abs(out["both"] - out["tracemalloc"]) < 2048, out
    # nesting: the outer block's live bytes hold the inner block's
    assert out["inner"] >= 16000 and out["outer"] >= out["inner"] + 8000
    assert "measure(live=True)" in out["refused"]
