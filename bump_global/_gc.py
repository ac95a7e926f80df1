"""The ``gc`` install option: what bump_global does to CPython's cyclic GC.

A bump allocator gets nothing back from a collection (free is a no-op), so
collections cost time and give no memory back.  ``"relaxed"`` makes young
collections, and full ones, ten times rarer; ``"off"`` disables the collector;
``"keep"`` leaves it as configured.  Both start-up paths (bump_global/_startup.py)
and the benchmarks' peers with "the same GC policy" (scripts/) call
:func:`apply_gc_policy`, so the policy is written once.

Imports nothing beyond ``gc`` (start-up stays cheap).
"""


def apply_gc_policy(policy: str) -> None:
    """Apply gc policy `policy` ("keep", "relaxed" or "off") to CPython's cyclic GC."""
    import gc

    if policy == "off":
        gc.disable()
    elif policy == "relaxed":
        # Ten times rarer young collections, and full ones (threshold2 is 0 where
        # the interpreter does not use it).
        young, middle, old = gc.get_threshold()
        gc.set_threshold(young * 10, middle, old * 10)
