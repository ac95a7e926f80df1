"""gc="relaxed" on both kinds of CPython collector (bump_global/_gc.py).

CPython 3.14.0 to 3.14.4 shipped an incremental cyclic GC: *threshold1* sets how fast the
old generation is scanned and *threshold2* is ignored (and starts at 0).  3.14.5 went back
to the generational GC, which 3.9 to 3.13 and 3.15 have.  The choice of thresholds is a
pure function, tested here for both kinds; the feature test that tells the kinds apart is
tested on stand-ins for both, and once on the running interpreter against what CPython's
changelog says that version has.
"""

from __future__ import annotations

import gc
import json
import sys
from typing import Any, List, Tuple

import pytest

from bump_global import _gc
from bump_global._gc import collector_is_incremental, relaxed_thresholds


@pytest.mark.parametrize("before, incremental, after", [
    ((2000, 10, 10), False, (20000, 10, 100)),   # generational (3.13, 3.14.5+, 3.15)
    ((700, 10, 10), False, (7000, 10, 100)),     # generational (3.9 to 3.12)
    ((2000, 10, 0), True, (20000, 100, 0)),      # incremental (3.14.0 to 3.14.4)
    ((0, 10, 10), False, (0, 10, 100)),          # collection disabled: stays disabled
    ((0, 10, 0), True, (0, 100, 0)),
])
def test_relaxed_thresholds_on_each_kind_of_collector(
        before: Tuple[int, int, int], incremental: bool, after: Tuple[int, int, int]) -> None:
    assert relaxed_thresholds(before, incremental) == after


def test_relaxed_means_young_collections_ten_times_rarer_and_full_ones_rarer() -> None:
    for incremental in (False, True):
        young, middle, old = relaxed_thresholds((2000, 10, 10), incremental)
        assert young == 20000
        if incremental:  # a smaller increment of the old generation per collection
            assert (middle, old) == (100, 10)
        else:            # ten times more middle collections before a full one
            assert (middle, old) == (10, 100)


class FakeGC:
    """Enough of the gc module for collector_is_incremental, for one kind of collector."""

    def __init__(self, thresholds: Tuple[int, int, int], generation1: List[Any],
                 young_moves_to_generation1: bool) -> None:
        self.thresholds = thresholds
        self.generation1 = list(generation1)
        self.young_moves = young_moves_to_generation1
        self.calls: List[str] = []

    def get_threshold(self) -> Tuple[int, int, int]:
        return self.thresholds

    def get_objects(self, generation: int) -> List[Any]:
        self.calls.append(f"get_objects({generation})")
        return list(self.generation1)

    def collect(self, generation: int) -> int:
        self.calls.append(f"collect({generation})")
        if self.young_moves:  # the generational collector: survivors go to generation 1
            self.generation1.extend(gc.get_objects(0))
        return 0


def test_the_incremental_collector_is_recognised() -> None:
    fake = FakeGC((2000, 10, 0), [], young_moves_to_generation1=False)
    assert collector_is_incremental(fake) is True
    assert fake.calls == ["get_objects(1)", "collect(0)", "get_objects(1)"]


def test_a_generational_collector_with_its_default_thresholds_costs_no_probe() -> None:
    fake = FakeGC((2000, 10, 10), [], young_moves_to_generation1=True)
    assert collector_is_incremental(fake) is False
    assert fake.calls == []  # threshold2 is not 0: no collection at start-up


def test_a_generational_collector_with_threshold2_zero_is_recognised() -> None:
    fake = FakeGC((2000, 10, 0), [object()], young_moves_to_generation1=True)
    assert collector_is_incremental(fake) is False  # generation 1 holds objects
    fake = FakeGC((2000, 10, 0), [], young_moves_to_generation1=True)
    assert collector_is_incremental(fake) is False  # our young object moved there
    assert fake.calls == ["get_objects(1)", "collect(0)", "get_objects(1)"]


def test_free_threaded_builds_are_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gc, "_free_threaded", lambda: True)
    fake = FakeGC((2000, 10, 0), [], young_moves_to_generation1=False)
    assert collector_is_incremental(fake) is False and fake.calls == []


def cpython_has_incremental_gc() -> bool:
    """What CPython's changelog says this interpreter has: the incremental collector
    shipped in 3.14.0 to 3.14.4 (gh-108362), replaced by the generational one in 3.14.5
    (gh-142516), never in free-threaded builds."""
    return (sys.implementation.name == "cpython" and (3, 14, 0) <= sys.version_info[:3]
            < (3, 14, 5) and not _gc._free_threaded())


def test_the_running_interpreter_gets_the_policy_of_its_collector(py) -> None:
    out = py("""
        import bump_global, gc, json
        from bump_global._gc import collector_is_incremental
        before = gc.get_threshold()
        incremental = collector_is_incremental(gc)
        bump_global.install("256M", gc="relaxed")
        print(json.dumps([before, incremental, gc.get_threshold()]))
    """).stdout
    before, incremental, after = json.loads(out)
    assert incremental == cpython_has_incremental_gc()
    assert tuple(after) == relaxed_thresholds(tuple(before), incremental)


COUNT_COLLECTIONS = """
import gc, json
from bump_global._gc import apply_gc_policy
counts = []
gc.callbacks.append(lambda phase, info: phase == "start" and counts.append(info["generation"]))
def make(n):
    return [[i] for i in range(n)]  # n tracked containers, kept alive
keep = make(200_000)
default = len(counts)
apply_gc_policy(sys.argv[1])
keep2 = make(200_000)
print(json.dumps([default, len(counts) - default]))
"""


@pytest.mark.skipif(_gc._free_threaded(), reason="a free-threaded build's collector also "
                    "waits for the process's memory to grow, not only for the threshold")
def test_relaxed_collects_ten_times_less_often(py) -> None:
    default, relaxed = json.loads(py("import sys\n" + COUNT_COLLECTIONS,
                                     args=["relaxed"]).stdout)
    _, kept = json.loads(py("import sys\n" + COUNT_COLLECTIONS, args=["keep"]).stdout)
    assert default >= 20 and kept >= 20, (default, kept)  # one per threshold0 allocations
    assert relaxed * 5 <= kept, (relaxed, kept)
