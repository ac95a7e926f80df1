"""The memory timeline of ``bump-global run --sample MS --timeline FILE``.

Every MS milliseconds each process of the program records: seconds since the
start of the program, bytes of the region handed out, resident bytes of the
region and the RSS of the process.  On Linux the process's recorder thread
(bump_global/core/recorder.c) takes the samples and appends them to
``<session>/<pid>.timeline`` as it goes: it never takes the GIL (it samples
inside long C calls), allocates nothing from the region, and what it wrote
survives the process (a killed worker's samples are still read).  Elsewhere
a Python thread (:class:`PythonSampler`) samples into preallocated arrays and
writes the same file when the process ends normally.

Both tick on the same grid, t0 + n * interval: after a sample taken at time s,
the next is due at the grid point nearest to s + interval (the first one at or
after s + interval / 2).  So two consecutive samples are at least half an
interval apart, at most one sample falls in each slot of the grid, and missed
ticks are skipped, never caught up.

The file the user asked for (CSV for ``.csv``, JSON lines otherwise) has the
columns :data:`COLUMNS`, then the process: ``pid``, ``role`` and ``command``
(:func:`write_rows`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import struct
import sys
import threading
import time
from array import array
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

#: Column names of a sample, in order; a timeline file adds the process's columns.
COLUMNS = ("time_s", "used_bytes", "region_resident_bytes", "rss_bytes")
#: The process's columns of a timeline file (bump_global/_plot.py reads them).
PROCESS_COLUMNS = ("pid", "role", "command")

#: A sample of one process: (time_s, used, region_resident or None, rss).
Sample = Tuple[float, int, Optional[int], int]
#: A row of a timeline file: (pid, time_s, used, region_resident or None, rss).
Row = Tuple[int, float, int, Optional[int], int]

#: One sample in a ``<pid>.timeline`` file: times in ns since t0, bytes, -1 unknown.
_RECORD = struct.Struct("=qqqq")

#: Samples the Python thread's storage holds before it first grows.
INITIAL_CAPACITY = 8192


def read_samples(path: str) -> List[Sample]:
    """The samples of a ``<pid>.timeline`` file (none if it is missing); a last
    record a killed process did not finish is ignored."""
    try:
        with open(path, "rb") as src:
            data = src.read()
    except OSError:
        return []
    whole = len(data) - len(data) % _RECORD.size
    return [(t / 1e9, used, None if resident < 0 else resident, rss)
            for t, used, resident, rss in _RECORD.iter_unpack(data[:whole])]


def write_rows(write: Callable[[str], Any], rows: Sequence[Row], csv_file: bool,
               processes: Dict[int, Tuple[str, str]]) -> None:
    """Write the samples of the program's processes in time order: the COLUMNS, then
    pid, role and command (`processes`: pid -> (role, command))."""
    rows = sorted(rows, key=lambda row: row[1])
    if csv_file:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS + PROCESS_COLUMNS)
        for pid, t, used, resident, rss in rows:
            role, command = processes.get(pid, ("", ""))
            writer.writerow((f"{t:.6f}", used, "" if resident is None else resident, rss,
                             pid, role, command))
        write(out.getvalue())
        return
    for pid, t, used, resident, rss in rows:
        record: Dict[str, Any] = dict(zip(COLUMNS, (round(t, 6), used, resident, rss)))
        role, command = processes.get(pid, ("", ""))
        record.update(pid=pid, role=role, command=command)
        write(json.dumps(record) + "\n")




class PythonSampler:
    """Samples memory every `interval_ms` in a Python thread, where the recorder
    cannot run: preallocated columns made before the install, one C call for used
    and resident bytes, psutil for the RSS; while C code holds the GIL it takes no
    sample.  :meth:`write` puts the samples into a ``<pid>.timeline`` file."""

    def __init__(self, interval_ms: float, capacity: int = INITIAL_CAPACITY) -> None:
        if not (interval_ms > 0 and math.isfinite(interval_ms)):
            raise ValueError(f"invalid interval {interval_ms!r}: expected a positive number")
        self.interval = interval_ms / 1000.0
        zeros = bytes(8 * capacity)
        self._times = array("d", zeros)
        self._used = array("q", zeros)
        self._resident = array("q", zeros)  # -1: unknown
        self._rss = array("q", zeros)
        self._index: List[int] = list(range(capacity))
        self._last = array("q", [-1])  # index of the last complete sample
        self._stop = [False]
        self._t0 = 0.0
        import psutil

        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._loop, name="bump-global-sampler",
                                        daemon=True)

    def _grow(self) -> None:
        for column in (self._times, self._used, self._resident, self._rss):
            column *= 2
        self._index.extend(range(len(self._index), 2 * len(self._index)))

    def _loop(self) -> None:
        from bump_global._api import sample

        # Everything the loop touches is a local: a tick makes as few objects as it can.
        sleep, clock = time.sleep, time.perf_counter
        times, used_col, resident_col, rss_col = (self._times, self._used, self._resident,
                                                  self._rss)
        last, stop, index, interval, t0 = (self._last, self._stop, self._index, self.interval,
                                           self._t0)
        half = interval / 2
        memory_info = self._process.memory_info
        grow_at = index[-1]
        due = clock()  # the first sample at once
        for k in index:  # iterating the list reuses its int objects
            now = clock()
            while now < due:  # sleep may end early (a signal, rounding)
                sleep(due - now)
                now = clock()
            if stop[0]:
                break
            used, resident = sample()
            times[k] = now - t0
            used_col[k] = used
            resident_col[k] = -1 if resident is None else resident
            rss_col[k] = memory_info().rss
            last[0] = k
            if k == grow_at:
                self._grow()
                grow_at = index[-1]
            # The grid point nearest to now + interval: late ticks are skipped.
            due = t0 - (-(now + half - t0) // interval) * interval

    def start(self, t0: float) -> None:
        """Start sampling; times are seconds since `t0` (a time.perf_counter() value)."""
        self._t0 = t0
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (the thread finishes the tick it is in)."""
        self._stop[0] = True
        if self._thread.is_alive():
            self._thread.join(timeout=min(2 * self.interval, 0.05) + 0.01)

    def write(self, path: str) -> None:
        """Write the samples to `path` in the recorder's format (``<pid>.timeline``)."""
        count = self._last[0] + 1
        with open(path, "wb") as out:
            for k in range(count):
                out.write(_RECORD.pack(int(self._times[k] * 1e9), self._used[k],
                                       self._resident[k], self._rss[k]))


def native_unavailable() -> Optional[str]:
    """None if the recorder can run in this process, else why it cannot."""
    from bump_global._errors import BumpGlobalError, load_core

    try:
        core = load_core()
    except BumpGlobalError as exc:
        return str(exc)
    reason: Optional[str] = core.recorder_check()
    if reason is not None:
        return reason
    # The recorder stamps samples with CLOCK_MONOTONIC; t0 comes from perf_counter.
    clock = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC)" not in clock:
        return f"time.perf_counter() does not use CLOCK_MONOTONIC here ({clock})"
    if not sys.platform.startswith("linux") or not hasattr(os, "pread"):
        return "the recorder needs Linux"
    return None
