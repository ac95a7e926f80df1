"""The timeline sampler of ``bump-global run --sample MS --timeline FILE``.

A daemon thread records, every MS milliseconds: seconds since the start of the
target, bytes of the region handed out, resident bytes of the region and the
RSS of the process.  It is written to be cheap in the very thing it measures,
allocations from the region:

- storage is preallocated (``array.array`` columns and a list of the index
  objects, made before the allocator is installed) and grows by doubling;
- one C call (``bump_global._sample``) gives used and resident bytes;
- on Linux the RSS is the raw head of ``/proc/self/statm`` (one ``os.pread``,
  one 64-byte bytes object), parsed at exit; psutil elsewhere;
- the thread waits with ``time.sleep`` (``threading.Event.wait`` would make a
  lock per tick);
- the file is written once, at exit.

What a tick still allocates (the result of ``_sample`` and the statm bytes) is
measured in docs/cli.md: about 176 bytes.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import sys
import threading
import time
from array import array
from typing import Any, Callable, Dict, List, Optional, Tuple

import bump_global

#: Column names, in order, of the CSV header and of each JSON line.
COLUMNS = ("time_s", "used_bytes", "region_resident_bytes", "rss_bytes")

#: Samples the storage holds before it first grows (32 bytes each, preallocated).
INITIAL_CAPACITY = 8192

#: Bytes of /proc/self/statm read per tick: enough for its first two fields
#: (size and resident, in pages), and a bytes object of exactly 64 bytes.
_STATM_HEAD = 31


def _statm_pages(head: bytes) -> int:
    """The resident pages in the head of /proc/self/statm ("size resident ...")."""
    return int(head.split(None, 2)[1])


def _open_statm() -> int:
    """A descriptor of /proc/self/statm when it can be read and parsed, else -1."""
    if not sys.platform.startswith("linux"):
        return -1
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        return -1
    try:
        _statm_pages(os.pread(fd, _STATM_HEAD, 0))
    except (OSError, ValueError, IndexError):
        os.close(fd)
        return -1
    return fd


class Sampler:
    """Samples memory figures every `interval_ms` milliseconds in a daemon thread.

    Make it before ``bump_global.install()`` (its storage is then allocated by
    the previous allocator), :meth:`start` it when the target starts,
    :meth:`stop` it and :meth:`write` the timeline at exit.
    """

    def __init__(self, interval_ms: float, capacity: int = INITIAL_CAPACITY) -> None:
        if not (interval_ms > 0 and math.isfinite(interval_ms)):
            raise ValueError(f"invalid interval {interval_ms!r}: expected a positive number")
        self.interval = interval_ms / 1000.0
        zeros = bytes(8 * capacity)
        self._times = array("d", zeros)
        self._used = array("q", zeros)
        self._resident = array("q", zeros)  # -1: unknown
        # statm heads (bytes, parsed at exit) or, without statm, RSS in bytes (int)
        self._rss: List[Any] = [None] * capacity
        self._index: List[int] = list(range(capacity))
        self._last = array("q", [-1])  # index of the last complete sample
        self._stop = [False]
        self._statm = _open_statm()
        self._process: Any = None
        if self._statm < 0:
            import psutil

            self._process = psutil.Process()
        self._t0 = 0.0
        self._thread = threading.Thread(target=self._loop, name="bump-global-sampler",
                                        daemon=True)

    def start(self, t0: Optional[float] = None) -> None:
        """Start sampling; times are seconds since `t0` (a time.perf_counter() value)."""
        self._t0 = time.perf_counter() if t0 is None else t0
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it finishes the tick it is in)."""
        self._stop[0] = True
        if self._thread.is_alive():
            self._thread.join(timeout=min(2 * self.interval, 0.05))

    def _grow(self) -> None:
        for column in (self._times, self._used, self._resident):
            column *= 2
        self._rss.extend([None] * len(self._index))
        self._index.extend(range(len(self._index), 2 * len(self._index)))

    def _loop(self) -> None:
        # Everything the loop touches is a local: a tick makes as few objects as it can.
        sleep, clock, sample = time.sleep, time.perf_counter, bump_global._sample
        times, used_col, resident_col, rss_col = (self._times, self._used, self._resident,
                                                  self._rss)
        last, stop, index, interval, t0 = (self._last, self._stop, self._index, self.interval,
                                           self._t0)
        fd, pread = self._statm, getattr(os, "pread", None)
        process = self._process
        grow_at = index[-1]
        due = clock()
        for k in index:  # iterating the list reuses its int objects
            if stop[0]:
                break
            now = clock()
            used, resident = sample()
            rss = pread(fd, _STATM_HEAD, 0) if fd >= 0 else process.memory_info().rss
            times[k] = now - t0
            used_col[k] = used
            resident_col[k] = -1 if resident is None else resident
            rss_col[k] = rss
            last[0] = k
            if k == grow_at:
                self._grow()
                grow_at = index[-1]
            due += interval
            delay = due - clock()
            if delay > 0:
                sleep(delay)
            else:
                due = clock()  # late: skip the missed ticks rather than burst

    def samples(self) -> List[Tuple[float, int, Optional[int], int]]:
        """The samples taken so far: (time_s, used, region_resident or None, rss)."""
        count = self._last[0] + 1
        rows = []
        for k in range(count):
            rss = self._rss[k]
            if isinstance(rss, bytes):
                rss = _statm_pages(rss) * mmap.PAGESIZE
            resident = self._resident[k]
            rows.append((self._times[k], self._used[k], None if resident < 0 else resident,
                         rss))
        return rows

    def write(self, path: str) -> int:
        """Write the samples to `path`: CSV if it ends in .csv, else JSON lines."""
        rows = self.samples()
        with open(path, "w", encoding="utf-8", newline="") as out:
            write_rows(out.write, rows, csv=path.lower().endswith(".csv"))
        return len(rows)

    def close(self) -> None:
        if self._statm >= 0:
            os.close(self._statm)
            self._statm = -1


def write_rows(write: Callable[[str], Any], rows: List[Tuple[float, int, Optional[int], int]],
               csv: bool) -> None:
    if csv:
        write(",".join(COLUMNS) + "\n")
        for t, used, resident, rss in rows:
            write(f"{t:.6f},{used},{'' if resident is None else resident},{rss}\n")
        return
    for t, used, resident, rss in rows:
        record: Dict[str, Any] = dict(zip(COLUMNS, (round(t, 6), used, resident, rss)))
        write(json.dumps(record) + "\n")


def write_session_rows(write: Callable[[str], Any],
                       rows: List[Tuple[int, float, int, Optional[int], int]],
                       csv: bool) -> None:
    """Write the samples of several processes, rows (pid, time_s, used, resident, rss),
    in time order, with the pid as the last column."""
    rows = sorted(rows, key=lambda row: row[1])
    if csv:
        write(",".join(COLUMNS) + ",pid\n")
        for pid, t, used, resident, rss in rows:
            write(f"{t:.6f},{used},{'' if resident is None else resident},{rss},{pid}\n")
        return
    for pid, t, used, resident, rss in rows:
        record: Dict[str, Any] = dict(zip(COLUMNS, (round(t, 6), used, resident, rss)))
        record["pid"] = pid
        write(json.dumps(record) + "\n")
