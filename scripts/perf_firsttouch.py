"""What does a first touch of fresh memory cost on this machine (the price of never
reusing)?

    python scripts/perf_firsttouch.py [--mib 64] [--rounds 9]

Maps `mib` MiB of fresh anonymous memory, writes it once (memset: every 4 KiB page
faults in, zeroed by the kernel), then writes it again (no faults): the difference
per page is the first-touch cost.  Also with MADV_HUGEPAGE on the mapping (2 MiB
pages where the kernel has them) and with MADV_POPULATE_WRITE ahead of the writes
(what bump_global's prefault thread does off the critical path; its cost counted
in the first touch: one call faults the whole mapping, without a trap per page).  Prints the median
of `rounds` (a fresh mapping each), in microseconds per 4 KiB page, wall and CPU
(this process's user + sys, from resource.getrusage).
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

PAGE = mmap.PAGESIZE
MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", 14)
MADV_NOHUGEPAGE = getattr(mmap, "MADV_NOHUGEPAGE", 15)
MADV_POPULATE_WRITE = 23


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Callable[[], None]) -> Tuple[float, float]:
    cpu, wall = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


def one_round(size: int, how: str) -> Tuple[float, float, float, float]:
    """(first wall, first cpu, second wall, second cpu) of writing a fresh mapping."""
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    if how == "huge":
        m.madvise(MADV_HUGEPAGE)
    else:
        m.madvise(MADV_NOHUGEPAGE)
    populate = (0.0, 0.0)
    if how == "populated":
        populate = _timed(lambda: m.madvise(MADV_POPULATE_WRITE))
    first = _timed(lambda: ctypes.memset(addr, 1, size))
    first = (first[0] + populate[0], first[1] + populate[1])
    second = _timed(lambda: ctypes.memset(addr, 2, size))
    m.close()
    return first[0], first[1], second[0], second[1]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=9)
    ns = ap.parse_args(argv)
    size = ns.mib << 20
    pages = size // PAGE
    results: Dict[str, List[Tuple[float, float, float, float]]] = {}
    for _ in range(ns.rounds):
        for how in ("4k", "huge", "populated"):
            try:
                results.setdefault(how, []).append(one_round(size, how))
            except OSError as exc:  # e.g. MADV_POPULATE_WRITE before Linux 5.14
                results.pop(how, None)
                print(f"{how}: {exc}")
    print(f"{ns.mib} MiB per round, {ns.rounds} rounds, medians, microseconds per 4 KiB page")
    for how, runs in results.items():
        wall = statistics.median((r[0] - r[2]) / pages for r in runs) * 1e6
        cpu = statistics.median((r[1] - r[3]) / pages for r in runs) * 1e6
        write = statistics.median(r[2] / pages for r in runs) * 1e6
        label = {"4k": "fresh 4 KiB pages", "huge": "MADV_HUGEPAGE",
                 "populated": "MADV_POPULATE_WRITE, then the writes"}[how]
        print(f"  {label:<44} first touch {wall:6.3f} us wall, {cpu:6.3f} us cpu "
              f"(a write of a resident page: {write:.3f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
