"""The timeline sampler of ``bump-global run --sample MS --timeline FILE``.

Every MS milliseconds it records: seconds since the start of the target, bytes
of the region handed out, resident bytes of the region and the RSS of the
process.  Two samplers, one interface (:class:`Sampler`):

- **native** (Linux): a pthread of the C core (bump_global/core/sampler.c) that
  never takes the GIL, so it keeps sampling while C code holds the GIL (a long
  ``json.loads``).  Its samples live in memory mapped from the OS: it
  allocates nothing from the region it measures.
- **Python thread** (elsewhere, or when the native one cannot start): a daemon
  thread written to allocate as little as possible per tick (preallocated
  ``array.array`` columns made before the install, one C call for used and
  resident bytes, the raw head of ``/proc/self/statm`` parsed at exit, psutil
  elsewhere, ``time.sleep`` waits).  It needs the GIL: while C code holds it,
  no sample is taken.  A tick still allocates about 176 bytes (docs/cli.md).

Both tick on the same grid, t0 + n * interval: after a sample taken at time s,
the next is due at the grid point nearest to s + interval (the first one at or
after s + interval / 2).  So two consecutive samples are at least half an
interval apart, at most one sample falls in each slot of the grid, and missed
ticks are skipped, never caught up.

Files: CSV (``.csv``) or JSON lines, columns :data:`COLUMNS` then ``pid``, the
process that took the sample: :func:`write_session_rows` writes the rows of
several processes (bump_global/_session.py gathers them) into one file.
"""

from __future__ import annotations

import functools
import json
import math
import mmap
import os
import sys
import threading
import time
from array import array
from typing import Any, Callable, Dict, List, Optional, Tuple

from bump_global._api import sample as _sample
from bump_global._errors import BumpGlobalError, load_core

#: Column names of a sample, in order; a timeline file adds a last column, ``pid``.
COLUMNS = ("time_s", "used_bytes", "region_resident_bytes", "rss_bytes")

#: A sample of one process: (time_s, used, region_resident or None, rss).
Sample = Tuple[float, int, Optional[int], int]
#: A row of a timeline file: (pid, time_s, used, region_resident or None, rss).
Row = Tuple[int, float, int, Optional[int], int]

#: Samples the Python thread's storage holds before it first grows (32 bytes each).
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


def native_unavailable() -> Optional[str]:
    """None if the native sampler can run in this process, else why it cannot."""
    try:
        core = load_core()
    except BumpGlobalError as exc:
        return str(exc)
    reason: Optional[str] = core.sampler_check()
    if reason is not None:
        return reason
    # The C thread stamps samples with CLOCK_MONOTONIC; t0 comes from perf_counter.
    clock = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC)" not in clock:
        return f"time.perf_counter() does not use CLOCK_MONOTONIC here ({clock})"
    return None


# The native sampler is one per process: the Sampler that runs it, if any, and
# the process it runs in (a forked child inherits the object, not the thread).
_native_owner: Optional["Sampler"] = None
_native_pid = 0
_fork_hooks = False


def _forget_inherited() -> None:
    """In a forked child, before anything else touches the native sampler: the
    thread did not follow (the C core stopped it); the inherited owner keeps
    the samples copied from the parent, and this process may start its own.
    Called by every user, so the order of the at-fork hooks does not matter."""
    global _native_owner
    owner = _native_owner
    if owner is not None and _native_pid != os.getpid():
        _native_owner = None
        owner._columns = load_core().sampler_samples()


def _before_fork() -> None:
    _forget_inherited()
    if _native_owner is not None:
        load_core().sampler_pause()


class Sampler:
    """Samples memory figures every `interval_ms` milliseconds in a thread.

    Make it before ``bump_global.install()`` (the Python thread's storage is
    then allocated by the previous allocator), :meth:`start` it when the target
    starts, :meth:`stop` it and :meth:`write` the timeline at exit.

    `native`: None (default) uses the native sampler where it can run and the
    Python thread elsewhere; False forces the Python thread; True requires the
    native one (RuntimeError where it is unavailable).
    """

    def __init__(self, interval_ms: float, capacity: int = INITIAL_CAPACITY, *,
                 native: Optional[bool] = None) -> None:
        if not (interval_ms > 0 and math.isfinite(interval_ms)):
            raise ValueError(f"invalid interval {interval_ms!r}: expected a positive number")
        self.interval = interval_ms / 1000.0
        self.capacity = capacity
        #: Why the native sampler is not used (None when it is).
        self.why_not_native: Optional[str] = "not requested" if native is False else None
        if native is not False:
            self.why_not_native = native_unavailable()
            if native and self.why_not_native is not None:
                raise RuntimeError(f"no native sampler: {self.why_not_native}")
        #: True when samples come from the native thread.
        self.native = self.why_not_native is None
        #: The error that ended sampling early (the OS refused memory), if any.
        self.error: Optional[str] = None
        self.pid = os.getpid()
        self._require_native = bool(native)
        self._t0 = 0.0
        self._columns: Optional[Tuple[bytes, bytes, bytes, bytes]] = None  # native, stopped
        self._statm = -1
        self._thread: Optional[threading.Thread] = None
        if not self.native:
            self._prepare_thread()

    # ---- the Python thread ------------------------------------------------

    def _prepare_thread(self) -> None:
        zeros = bytes(8 * self.capacity)
        self._times = array("d", zeros)
        self._used = array("q", zeros)
        self._resident = array("q", zeros)  # -1: unknown
        # statm heads (bytes, parsed at exit) or, without statm, RSS in bytes (int)
        self._rss: List[Any] = [None] * self.capacity
        self._index: List[int] = list(range(self.capacity))
        self._last = array("q", [-1])  # index of the last complete sample
        self._stop = [False]
        self._statm = _open_statm()
        self._process: Any = None
        if self._statm < 0:
            import psutil

            self._process = psutil.Process()
        self._thread = threading.Thread(target=self._loop, name="bump-global-sampler",
                                        daemon=True)

    def _grow(self) -> None:
        for column in (self._times, self._used, self._resident):
            column *= 2
        self._rss.extend([None] * len(self._index))
        self._index.extend(range(len(self._index), 2 * len(self._index)))

    def _loop(self) -> None:
        # Everything the loop touches is a local, and its arithmetic is on floats
        # (from CPython's float free list): a tick makes as few objects as it can.
        sleep, clock, sample = time.sleep, time.perf_counter, _sample
        times, used_col, resident_col, rss_col = (self._times, self._used, self._resident,
                                                  self._rss)
        last, stop, index, interval, t0 = (self._last, self._stop, self._index, self.interval,
                                           self._t0)
        half = interval / 2
        fd, pread = self._statm, getattr(os, "pread", None)
        process = self._process
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
            rss = pread(fd, _STATM_HEAD, 0) if fd >= 0 else process.memory_info().rss
            times[k] = now - t0
            used_col[k] = used
            resident_col[k] = -1 if resident is None else resident
            rss_col[k] = rss
            last[0] = k
            if k == grow_at:
                self._grow()
                grow_at = index[-1]
            # The grid point nearest to now + interval: late ticks are skipped.
            due = t0 - (-(now + half - t0) // interval) * interval

    # ---- the interface cli.py uses -----------------------------------------

    def start(self, t0: Optional[float] = None) -> None:
        """Start sampling; times are seconds since `t0` (a time.perf_counter() value)."""
        global _native_owner, _native_pid, _fork_hooks
        self._t0 = time.perf_counter() if t0 is None else t0
        self.pid = os.getpid()
        if self.native:
            core = load_core()
            _forget_inherited()
            try:
                if _native_owner is not None:
                    raise RuntimeError("the native sampler is busy (one per process)")
                core.sampler_start(self.interval, self._t0)
            except (OSError, RuntimeError) as exc:
                if self._require_native:
                    raise RuntimeError(f"the native sampler did not start: {exc}") from exc
                self.native = False
                self.why_not_native = f"the native sampler did not start: {exc}"
                self._prepare_thread()
            else:
                _native_owner, _native_pid = self, self.pid
                if not _fork_hooks and hasattr(os, "register_at_fork"):
                    # The parent resumes (if _before_fork paused it) at the main
                    # thread's next bytecode: CPython 3.13 counts the threads for
                    # its fork warning after the after_in_parent hooks.  The hook
                    # is C (a partial of a builtin): Python code would run the
                    # pending call at once.
                    os.register_at_fork(before=_before_fork,
                                        after_in_parent=functools.partial(
                                            core.sampler_resume, True),
                                        after_in_child=_forget_inherited)
                    _fork_hooks = True
                return
        assert self._thread is not None
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (the Python thread finishes the tick it is in)."""
        global _native_owner
        if self.native:
            _forget_inherited()
            if _native_owner is self:
                err = load_core().sampler_stop()
                if err:
                    self.error = f"sampling ended early: {os.strerror(err)}"
                self._columns = load_core().sampler_samples()
                _native_owner = None
            return
        self._stop[0] = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=min(2 * self.interval, 0.05) + 0.01)

    def samples(self) -> List[Sample]:
        """The samples taken so far: (time_s, used, region_resident or None, rss)."""
        if self.native:
            _forget_inherited()
            columns = self._columns
            if columns is None:
                if _native_owner is not self:
                    return []  # never started
                columns = load_core().sampler_samples()
            times, used, resident, rss = (array("d"), array("q"), array("q"), array("q"))
            for column, data in zip((times, used, resident, rss), columns):
                column.frombytes(data)
            return [(t, u, None if r < 0 else r, s)
                    for t, u, r, s in zip(times, used, resident, rss)]
        count = self._last[0] + 1
        rows = []
        for k in range(count):
            rss_value = self._rss[k]
            if isinstance(rss_value, bytes):
                rss_value = _statm_pages(rss_value) * mmap.PAGESIZE
            resident_value = self._resident[k]
            rows.append((self._times[k], self._used[k],
                         None if resident_value < 0 else resident_value, rss_value))
        return rows

    def rows(self) -> List[Row]:
        """The samples as rows of a timeline file: (pid, time_s, used, resident, rss)."""
        return [(self.pid, *sample) for sample in self.samples()]

    def write(self, path: str) -> int:
        """Write the samples to `path`: CSV if it ends in .csv, else JSON lines."""
        rows = self.rows()
        with open(path, "w", encoding="utf-8", newline="") as out:
            write_session_rows(out.write, rows, csv=path.lower().endswith(".csv"))
        return len(rows)

    def close(self) -> None:
        if self._statm >= 0:
            os.close(self._statm)
            self._statm = -1


def write_rows(write: Callable[[str], Any], rows: List[Sample], csv: bool) -> None:
    """Write the samples of one process, without the pid column (files of older
    versions; bump_global/_plot.py reads both)."""
    if csv:
        write(",".join(COLUMNS) + "\n")
        for t, used, resident, rss in rows:
            write(f"{t:.6f},{used},{'' if resident is None else resident},{rss}\n")
        return
    for t, used, resident, rss in rows:
        record: Dict[str, Any] = dict(zip(COLUMNS, (round(t, 6), used, resident, rss)))
        write(json.dumps(record) + "\n")


def write_session_rows(write: Callable[[str], Any], rows: List[Row], csv: bool) -> None:
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
