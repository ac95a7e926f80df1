"""A process's recorder (bump_global/core/recorder.c): its timeline samples and the
snapshots of its figures, in files that outlive it; and the Python sampler used where
the recorder cannot run (bump_global/_timeline.py).

Everything that installs the allocator or records for a while runs in a subprocess.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from conftest import run_python

from bump_global import _timeline
from bump_global._timeline import COLUMNS, PROCESS_COLUMNS, write_rows

NATIVE = _timeline.native_unavailable() is None
needs_native = pytest.mark.skipif(not NATIVE, reason="no recorder on this platform (Linux)")

Row = Tuple[int, float, int, Optional[int], int]


def read_timeline(path: Path) -> List[Row]:
    """(pid, time_s, used, resident, rss) rows of a timeline file, CSV or JSON lines."""
    rows: List[Row] = []
    if path.suffix == ".csv":
        with path.open(newline="") as src:
            reader = csv.reader(src)
            assert next(reader) == [*COLUMNS, *PROCESS_COLUMNS]
            for t, used, resident, rss, pid, _, _ in reader:
                rows.append((int(pid), float(t), int(used),
                             None if resident == "" else int(resident), int(rss)))
        return rows
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert list(record) == [*COLUMNS, *PROCESS_COLUMNS]
        rows.append((record["pid"], record["time_s"], record["used_bytes"],
                     record["region_resident_bytes"], record["rss_bytes"]))
    return rows


# Pasted into subprocesses: a json.loads that holds the GIL for about `seconds`
# (sized from a small run), and a Python thread that notes when it can run.
GIL_HOG = """
import gc, json, threading, time

def big_json(seconds):
    unit = json.dumps([[i, str(i), {"k": i}] for i in range(20000)])
    small = 1.0
    gc.disable()  # as for the call itself
    for _ in range(3):  # the best of three: a busy machine only makes the call longer
        t = time.perf_counter(); json.loads(unit); small = min(small, time.perf_counter() - t)
    gc.enable()
    copies = max(1, min(60, round(seconds / small)))
    return "[" + ",".join([unit] * copies) + "]"

class Ticker(threading.Thread):
    def __init__(self, t0):
        super().__init__(daemon=True)
        self.t0 = t0
        self.stamps = []
        self.done = False
    def run(self):
        while not self.done:
            self.stamps.append(time.perf_counter() - self.t0)
            time.sleep(0.001)
"""

# Pasted into subprocesses: start the recorder (or the Python sampler) on files of
# a directory; `stop()` ends it and returns its samples.
RECORDING = """
import os, sys, time
import bump_global
from bump_global import _core
from bump_global._timeline import PythonSampler, read_samples

def record(directory, interval_ms, native, t0):
    state = open(os.path.join(directory, "state"), "wb")
    path = os.path.join(directory, "timeline")
    if native:
        timeline = open(path, "wb")
        _core.recorder_start(t0, state.fileno(), timeline.fileno(), interval_ms / 1000)
        def stop(files=(state, timeline)):  # the files stay open while it records
            assert _core.recorder_stop() == 0
            return read_samples(path)
    else:
        sampler = PythonSampler(interval_ms)
        sampler.start(t0)
        def stop():
            sampler.stop()
            sampler.write(path)
            return read_samples(path)
    return stop
"""

MODES = [pytest.param(True, id="recorder", marks=needs_native),
         pytest.param(False, id="python")]


def _samples_during_a_gil_holding_call(native: bool, tmp_path: Path) -> Dict[str, Any]:
    """The samples, and the longest stretch of json.loads in which a Python thread
    could not run (the GIL was held): (start, end) in seconds since t0."""
    code = GIL_HOG + RECORDING + f"""
bump_global.install("2G")
text = big_json(0.8)
t0 = time.perf_counter()
ticker = Ticker(t0); ticker.start()
stop = record({str(tmp_path)!r}, 5, {native}, t0)
time.sleep(0.1)
gc.disable()  # no collection (and no finaliser's Python code) inside the call
a = time.perf_counter() - t0
result = json.loads(text)  # kept: its deallocation is not part of the call
b = time.perf_counter() - t0
gc.enable()
time.sleep(0.1)
ticker.done = True
samples = stop()
edges = [a] + [t for t in ticker.stamps if a < t < b] + [b]
held = max(zip(edges, edges[1:]), key=lambda pair: pair[1] - pair[0])
print(json.dumps({{"held": held, "samples": samples}}))
"""
    return json.loads(run_python(code).stdout)  # type: ignore[no-any-return]


@needs_native
def test_the_recorder_keeps_sampling_while_c_code_holds_the_gil(tmp_path: Path) -> None:
    out = _samples_during_a_gil_holding_call(True, tmp_path)
    start, end = out["held"]
    assert end - start > 0.15  # a Python thread could not run for that long
    inside = [s for s in out["samples"] if start < s[0] < end]
    # Every 5 ms on an idle machine; a loaded one delays the thread's wake-ups
    # (late ticks are skipped), but the call never shows as one step.
    assert len(inside) >= max(5, 0.2 * (end - start) / 0.005)
    times = [start] + [s[0] for s in inside] + [end]
    assert max(y - x for x, y in zip(times, times[1:])) < (end - start) / 2
    assert inside[-1][1] > inside[0][1] + (1 << 20)  # json.loads allocating, seen live


def test_the_python_sampler_records_nothing_while_c_code_holds_the_gil(
        tmp_path: Path) -> None:
    # What docs/cli.md says of the fallback: a gap as long as the GIL is held.
    out = _samples_during_a_gil_holding_call(False, tmp_path)
    start, end = out["held"]
    assert end - start > 0.15
    inside = [s[0] for s in out["samples"] if start < s[0] < end]
    times = [start] + inside + [end]
    assert max(y - x for x, y in zip(times, times[1:])) > 0.4 * (end - start), inside


LATE_TICKS = RECORDING + """
bump_global.install("256M")
t0 = time.perf_counter()
stop = record(sys.argv[1], 10, {native}, t0)
print("ready", flush=True)
sys.stdin.readline()  # the test stops and continues this process meanwhile
print(json.dumps([s[0] for s in stop()]))
"""


@pytest.mark.parametrize("native", MODES)
def test_consecutive_samples_stay_half_an_interval_apart_after_late_ticks(
        native: bool, tmp_path: Path) -> None:
    interval = 0.010
    proc = subprocess.Popen(
        [sys.executable, "-c", "import json\n" + LATE_TICKS.format(native=native),
         str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "ready\n"
        # Freeze the whole process for odd lengths of time: its recorder wakes late,
        # at every phase of the interval.
        for pause in (0.013, 0.027, 0.0045, 0.0171, 0.0333, 0.0089, 0.0212, 0.0066,
                      0.0157, 0.0298, 0.0121, 0.0049):
            time.sleep(0.025)
            proc.send_signal(signal.SIGSTOP)
            time.sleep(pause)
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
        out, _ = proc.communicate("\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    times: List[float] = json.loads(out)
    gaps = [y - x for x, y in zip(times, times[1:])]
    assert len(times) >= 20
    assert max(gaps) > 1.5 * interval  # ticks did come late
    assert min(gaps) >= interval / 2 - 1e-9
    slots = [int(t / interval) for t in times]  # at most one sample per slot of the grid
    assert all(x < y for x, y in zip(slots, slots[1:]))


@needs_native
def test_the_recorder_allocates_nothing_from_the_region_it_measures(tmp_path: Path) -> None:
    code = RECORDING + f"""
import json
bump_global.install("256M")
stop = record({str(tmp_path)!r}, 1, True, time.perf_counter())
time.sleep(0.5)
print(json.dumps(stop()))
"""
    samples = json.loads(run_python(code).stdout)
    assert len(samples) >= 50  # 500 on an idle machine; ticks are skipped under load
    # The main thread only sleeps: any growth would be the recorder's own.
    assert samples[-1][1] - samples[1][1] < 2048
    assert all(s[2] is not None and s[2] > 0 and s[3] > 0 for s in samples)


def test_timeline_files_end_with_the_process_columns(tmp_path: Path) -> None:
    rows: List[Row] = [(41, 0.5, 2048, None, 4096), (7, 0.25, 1024, 512, 8192),
                       (41, 0.125, 1536, 1024, 4096)]
    processes = {41: ("root", "-m tool --flag"), 7: ("fork", "a, b")}
    csv_path, json_path = tmp_path / "t.csv", tmp_path / "t.jsonl"
    for path in (csv_path, json_path):
        with path.open("w", newline="") as out:
            write_rows(out.write, rows, path.suffix == ".csv", processes)
    assert csv_path.read_text().splitlines() == [
        "time_s,used_bytes,region_resident_bytes,rss_bytes,pid,role,command",
        "0.125000,1536,1024,4096,41,root,-m tool --flag",
        '0.250000,1024,512,8192,7,fork,"a, b"',
        "0.500000,2048,,4096,41,root,-m tool --flag"]
    records = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert records[2] == {"time_s": 0.5, "used_bytes": 2048, "region_resident_bytes": None,
                          "rss_bytes": 4096, "pid": 41, "role": "root",
                          "command": "-m tool --flag"}
    expected = sorted(rows, key=lambda r: r[1])
    assert read_timeline(csv_path) == expected == read_timeline(json_path)


FORKING_TARGET = """
import os, sys, time
time.sleep(0.1)
pid = os.fork()
if pid == 0:
    time.sleep(0.05)
    data = b"x" * (96 << 20)  # written: resident in the child only
    time.sleep(0.1)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.1)
print(os.getpid(), pid)
"""


def test_cli_timeline_holds_a_forked_childs_own_samples(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    proc = run_python(
        "import sys; from bump_global.commands import main; sys.exit(main())",
        python_args=["-W", "always::DeprecationWarning"],
        args=["run", "--sample", "5", "--timeline", str(out), "-c", FORKING_TARGET])
    if NATIVE:  # paused around os.fork: CPython (3.12+) must not warn about threads
        assert "multi-threaded" not in proc.stderr
    parent_pid, child_pid = map(int, proc.stdout.split())
    rows = read_timeline(out)
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    parent = [r for r in rows if r[0] == parent_pid]
    child = [r for r in rows if r[0] == child_pid]
    assert len(parent) + len(child) == len(rows)
    assert len(child) >= 5 and len(parent) >= 20  # 30 and 70 on an idle machine
    assert max(r[4] for r in child) - child[0][4] >= 80 << 20  # the child's own RSS
    assert max(r[4] for r in parent) - parent[0][4] < 80 << 20
    # the parent kept sampling after the fork
    assert max(r[1] for r in parent) > max(r[1] for r in child) + 0.05


def test_the_python_sampler_rejects_bad_intervals() -> None:
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="expected a positive number"):
            _timeline.PythonSampler(bad)


@needs_native
def test_recorder_calls_check_their_arguments_and_state(tmp_path: Path) -> None:
    code = f"""
    import os, time
    import bump_global
    from bump_global import _core as core
    from bump_global._session import read_state
    from bump_global._timeline import read_samples
    bump_global.install("256M")
    state = open(os.path.join({str(tmp_path)!r}, "state"), "wb")
    timeline = open(os.path.join({str(tmp_path)!r}, "timeline"), "wb")
    t0 = time.perf_counter()
    for bad in ((t0, -1, -1, 0.0), (t0, state.fileno(), timeline.fileno(), 0.0),
                (t0, state.fileno(), -1, 0.01), (float("nan"), state.fileno(), -1, 0.0)):
        try:
            core.recorder_start(*bad)
        except ValueError as exc:
            assert "recorder_start" in str(exc)
        else:
            raise AssertionError(bad)
    core.recorder_start(t0, state.fileno(), timeline.fileno(), 0.002)
    try:
        core.recorder_start(t0, state.fileno(), -1, 0.0)
    except RuntimeError as exc:
        assert "already running" in str(exc)
    else:
        raise AssertionError("started twice")
    keep = [str(i) for i in range(100000)]
    time.sleep(0.1)
    core.recorder_pause(); core.recorder_pause()  # two forks before the resume ran
    paused = len(read_samples(timeline.name))
    time.sleep(0.05)
    assert len(read_samples(timeline.name)) == paused
    core.recorder_resume()
    time.sleep(0.05)
    assert core.recorder_stop() == 0
    assert core.recorder_stop() == 0  # stopping a stopped recorder is harmless
    stopped = len(read_samples(timeline.name))
    assert stopped > paused
    snapshot = read_state(state.name)
    stats = bump_global.stats()
    values = dict(zip(core.STATS_FIELDS, snapshot["values"]))
    assert snapshot["ended"] == 0 and snapshot["rss"] > 0 and snapshot["peak_rss"] > 0
    # its last tick came after the strings: their allocations are in it
    assert stats.allocations - 10000 < values["allocations"] <= stats.allocations
    assert values["reserved"] == stats.reserved == 256 << 20
    print("ok")
    """
    assert run_python(textwrap.dedent(code)).stdout == "ok\n"


@needs_native
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_process_killed_by_a_signal_leaves_its_figures(
        tmp_path: Path, signal_name: str) -> None:
    code = f"""
    import os, sys, time
    import bump_global
    from bump_global import _core as core
    bump_global.install("256M")
    state = open(os.path.join({str(tmp_path)!r}, "state"), "wb")
    core.recorder_start(time.perf_counter(), state.fileno(), -1, 0.0)
    keep = [str(i) for i in range(200000)]
    print(bump_global.stats().allocations, flush=True)
    time.sleep(60)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    allocations = int(proc.stdout.readline())
    time.sleep(0.1)  # SIGKILL: the figures are those of the recorder's last tick
    proc.send_signal(getattr(signal, signal_name))
    assert proc.wait(timeout=30) == -getattr(signal, signal_name)  # its own death
    from bump_global._errors import load_core
    from bump_global._session import read_state

    snapshot = read_state(str(tmp_path / "state"))
    assert snapshot is not None
    values = dict(zip(load_core().STATS_FIELDS, snapshot["values"]))
    assert allocations <= values["allocations"] < allocations + 1000
    assert snapshot["ended"] == (signal.SIGTERM if signal_name == "SIGTERM" else 0)
