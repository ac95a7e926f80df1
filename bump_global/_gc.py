"""The ``gc`` install option: what bump_global does to CPython's cyclic GC.

A bump allocator gets nothing back from a collection (free is a no-op), so
collections cost time and give no memory back.  ``"relaxed"`` makes young
collections ten times rarer, and full ones rarer too; ``"off"`` disables the
collector; ``"keep"`` leaves it as configured.  Both start-up paths
(bump_global/_startup.py) and the benchmarks' peers with "the same GC policy"
(scripts/) call :func:`apply_gc_policy`, so the policy is written once.

What the thresholds mean depends on the collector the interpreter has:

- *generational* (CPython 3.9 to 3.13, 3.14.5 and later, 3.15; the free-threaded
  builds' collector reads only the first): a young collection runs after
  *threshold0* net allocations of tracked objects, the middle generation is
  collected every *threshold1* young collections, the old one every *threshold2*
  middle ones (and only once the objects waiting for it are a quarter of those
  it holds).  Relaxed: ``(10 * t0, t1, 10 * t2)``.
- *incremental* (CPython 3.14.0 to 3.14.4): each collection, after *threshold0*
  allocations, takes the young objects and an increment of the old generation
  whose size is inversely proportional to *threshold1* (1% of the heap at the
  default 10), so *threshold1* sets how fast the whole old generation is
  scanned; *threshold2* is ignored.  Relaxed: ``(10 * t0, 10 * t1, t2)``.

Which one runs is found by what it does (:func:`collector_is_incremental`), not by
the version number.  Imports nothing beyond ``gc`` and ``sys`` (start-up stays
cheap).
"""

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Tuple

#: How much rarer "relaxed" makes collections.
RELAXED_FACTOR = 10


def relaxed_thresholds(thresholds: "Tuple[int, ...]", incremental: bool) -> "Tuple[int, int, int]":
    """The thresholds ``gc="relaxed"`` sets, from the current `thresholds`
    (``gc.get_threshold()``) and the kind of collector (`incremental` or not):
    young collections ten times rarer on both; full ones through *threshold2* on the
    generational collector, through the old generation's scan rate (*threshold1*) on
    the incremental one.  A threshold0 of 0 (collection disabled) stays 0."""
    young, middle, old = (tuple(thresholds) + (0, 0, 0))[:3]
    if incremental:
        return young * RELAXED_FACTOR, middle * RELAXED_FACTOR, old
    return young * RELAXED_FACTOR, middle, old * RELAXED_FACTOR


def _free_threaded() -> bool:
    """True on a free-threaded build (its collector has no generations)."""
    if "t" in getattr(sys, "abiflags", ""):
        return True
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return gil_enabled is not None and not gil_enabled()


def collector_is_incremental(gc_module: "Any") -> bool:
    """True if `gc_module` (the ``gc`` module) drives CPython's incremental collector.

    The feature test: the generational collector moves the objects that survive a
    young collection to generation 1, while the incremental one keeps no generation 1
    (``gc.get_objects(1)`` is always empty there); so an object of ours, young before
    one young collection, is in generation 1 afterwards on the generational collector
    only.  That costs a young collection and a walk of generation 1 (a few hundred
    microseconds at start-up), so it runs only where its answer can be yes: the
    incremental collector does not read *threshold2* and starts it at 0, the
    generational one at 10 (a program that set it to 0 gets the test, one that gave the
    incremental collector a non-zero *threshold2* gets the generational policy, which
    still makes young collections ten times rarer).  Free-threaded builds answer False
    without a look: their collector has no generations, and their ``get_objects`` walks
    the whole heap.
    """
    if _free_threaded() or gc_module.get_threshold()[2] != 0:
        return False
    if gc_module.get_objects(1):
        return False
    probe: "list[Any]" = []  # a new tracked container: in the young generation
    gc_module.collect(0)
    return not any(obj is probe for obj in gc_module.get_objects(1))


def apply_gc_policy(policy: str) -> None:
    """Apply gc policy `policy` ("keep", "relaxed" or "off") to CPython's cyclic GC."""
    import gc

    if policy == "off":
        gc.disable()
    elif policy == "relaxed":
        gc.set_threshold(*relaxed_thresholds(gc.get_threshold(), collector_is_incremental(gc)))
