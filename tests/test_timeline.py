"""The timeline sampler (bump_global/_timeline.py, bump_global/core/sampler.c).

Everything that installs the allocator or samples for a while runs in a subprocess.
"""

from __future__ import annotations

import csv
import json
import os
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
from bump_global._timeline import COLUMNS, Sampler, write_session_rows

NATIVE = _timeline.native_unavailable() is None
needs_native = pytest.mark.skipif(not NATIVE, reason="no native sampler on this platform")
MODES = [pytest.param(True, id="native", marks=needs_native), pytest.param(False, id="python")]

Row = Tuple[int, float, int, Optional[int], int]


def read_timeline(path: Path) -> List[Row]:
    """(pid, time_s, used, resident, rss) rows of a timeline file, CSV or JSON lines."""
    rows: List[Row] = []
    if path.suffix == ".csv":
        with path.open(newline="") as src:
            reader = csv.reader(src)
            assert next(reader) == [*COLUMNS, "pid"]
            for t, used, resident, rss, pid in reader:
                rows.append((int(pid), float(t), int(used),
                             None if resident == "" else int(resident), int(rss)))
        return rows
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert list(record) == [*COLUMNS, "pid"]
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


def _samples_during_a_gil_holding_call(native: bool) -> Dict[str, Any]:
    """The samples, and the longest stretch of json.loads in which a Python
    thread could not run (the GIL was held): (start, end) in seconds since t0."""
    code = GIL_HOG + f"""
import bump_global
from bump_global._timeline import Sampler
sampler = Sampler(5, native={native})
bump_global.install("2G")
text = big_json(0.8)
t0 = time.perf_counter()
ticker = Ticker(t0); ticker.start()
sampler.start(t0)
time.sleep(0.1)
gc.disable()  # no collection (and no finaliser's Python code) inside the call
a = time.perf_counter() - t0
result = json.loads(text)  # kept: its deallocation is not part of the call
b = time.perf_counter() - t0
gc.enable()
time.sleep(0.1)
ticker.done = True
sampler.stop()
edges = [a] + [t for t in ticker.stamps if a < t < b] + [b]
held = max(zip(edges, edges[1:]), key=lambda pair: pair[1] - pair[0])
print(json.dumps({{"held": held, "native": sampler.native, "samples": sampler.samples()}}))
"""
    return json.loads(run_python(code).stdout)  # type: ignore[no-any-return]


@needs_native
def test_native_sampler_keeps_sampling_while_c_code_holds_the_gil() -> None:
    out = _samples_during_a_gil_holding_call(True)
    start, end = out["held"]
    assert out["native"]
    assert end - start > 0.15  # a Python thread could not run for that long
    inside = [s for s in out["samples"] if start < s[0] < end]
    # Every 5 ms on an idle machine; a loaded one delays the thread's wake-ups
    # (late ticks are skipped, gaps of 100 ms were seen at a load of 8 on 2
    # cores), but the call never shows as one step, as it does with the GIL.
    assert len(inside) >= max(5, 0.2 * (end - start) / 0.005)
    times = [start] + [s[0] for s in inside] + [end]
    assert max(y - x for x, y in zip(times, times[1:])) < (end - start) / 2
    assert inside[-1][1] > inside[0][1] + (1 << 20)  # json.loads allocating, seen live


def test_python_thread_sampler_records_nothing_while_c_code_holds_the_gil() -> None:
    # What docs/cli.md says of the fallback: a gap as long as the GIL is held.
    out = _samples_during_a_gil_holding_call(False)
    start, end = out["held"]
    assert not out["native"]
    assert end - start > 0.15
    # The call shows as one step: a gap of a large part of it (the ticker that measures
    # the stretch is a Python thread too, so its edges are only as exact as its wake-ups;
    # a sample was once seen inside, on 3.12, with the gap still most of the call).
    inside = [s[0] for s in out["samples"] if start < s[0] < end]
    times = [start] + inside + [end]
    assert max(y - x for x, y in zip(times, times[1:])) > 0.4 * (end - start), inside


LATE_TICKS = """
import json, sys, time
import bump_global
from bump_global._timeline import Sampler
sampler = Sampler(10, native={native})
bump_global.install("256M")
t0 = time.perf_counter()
sampler.start(t0)
print("ready", flush=True)
sys.stdin.readline()  # the test stops and continues this process meanwhile
sampler.stop()
print(json.dumps({{"native": sampler.native, "times": [s[0] for s in sampler.samples()]}}))
"""


@pytest.mark.parametrize("native", MODES)
def test_consecutive_samples_stay_half_an_interval_apart_after_late_ticks(
        native: bool) -> None:
    interval = 0.010
    proc = subprocess.Popen([sys.executable, "-c", LATE_TICKS.format(native=native)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "ready\n"
        # Freeze the whole process for odd lengths of time: its sampler wakes
        # late, at every phase of the interval.
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
    result = json.loads(out)
    assert result["native"] is native
    times: List[float] = result["times"]
    gaps = [y - x for x, y in zip(times, times[1:])]
    assert len(times) >= 20
    assert max(gaps) > 1.5 * interval  # ticks did come late
    assert min(gaps) >= interval / 2 - 1e-9
    # at most one sample per slot of the grid t0 + n * interval
    slots = [int(t / interval) for t in times]
    assert all(x < y for x, y in zip(slots, slots[1:]))


@needs_native
def test_native_sampler_allocates_nothing_from_the_region_it_measures() -> None:
    code = """
    import json, time
    import bump_global
    from bump_global._timeline import Sampler
    sampler = Sampler(1, native=True)
    bump_global.install("256M")
    sampler.start()
    time.sleep(0.5)
    sampler.stop()
    print(json.dumps(sampler.samples()))
    """
    samples = json.loads(run_python(code).stdout)
    assert len(samples) >= 50  # 500 on an idle machine; ticks are skipped under load
    # The main thread only sleeps: any growth would be the sampler's own (the
    # Python thread takes about 176 bytes per tick: 8,800 bytes over 50).
    assert samples[-1][1] - samples[1][1] < 2048
    assert all(s[2] is not None and s[2] > 0 and s[3] > 0 for s in samples)


@pytest.mark.parametrize("native", MODES)
def test_fork_child_samples_its_own_process_and_parent_keeps_sampling(
        native: bool, tmp_path: Path) -> None:
    code = f"""
    import json, os, sys, time
    import bump_global
    from bump_global._timeline import Sampler, write_session_rows
    sampler = Sampler(5, native={native})
    bump_global.install("1G")
    t0 = time.perf_counter()
    sampler.start(t0)
    time.sleep(0.1)
    fork_at = time.perf_counter() - t0
    pid = os.fork()
    if pid == 0:
        forked_at = time.perf_counter() - t0  # later than any sample of the parent's
        inherited = sampler.samples()
        ok = len(inherited) >= 5 and all(s[0] < forked_at for s in inherited)
        child = Sampler(5, native={native})
        child.start(t0)
        time.sleep(0.05)
        data = b"x" * (96 << 20)  # written: resident in the child only
        time.sleep(0.1)
        child.stop()
        assert child.native is {native}
        with open(sys.argv[1], "w") as out:
            json.dump({{"inherited_ok": ok, "rows": child.rows()}}, out)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    time.sleep(0.1)
    sampler.stop()
    with open(sys.argv[1]) as src:
        child = json.load(src)
    with open(sys.argv[2], "w", newline="") as out:
        write_session_rows(out.write, sampler.rows() + [tuple(r) for r in child["rows"]],
                           csv=True)
    print(json.dumps({{"status": status, "fork_at": fork_at, "pid": os.getpid(),
                      "child_pid": pid, "inherited_ok": child["inherited_ok"]}}))
    """
    merged = tmp_path / "merged.csv"
    # A native sampler is paused around os.fork: CPython (3.12+) must not warn
    # about forking a multi-threaded process (the Python thread makes it warn).
    proc = run_python(code, python_args=["-W", "always::DeprecationWarning"],
                      args=[str(tmp_path / "child.json"), str(merged)])
    if native:
        assert "multi-threaded" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == 0 and out["inherited_ok"]
    rows = read_timeline(merged)
    parent = [r for r in rows if r[0] == out["pid"]]
    child = [r for r in rows if r[0] == out["child_pid"]]
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    assert len(parent) + len(child) == len(rows)
    fork_at = out["fork_at"]
    assert len([r for r in parent if r[1] > fork_at + 0.05]) >= 5
    assert len(child) >= 5 and all(r[1] > fork_at for r in child)  # 30 when idle
    # the child's RSS is its own (statm opened in the child, not the parent's)
    assert max(r[4] for r in child) - child[0][4] >= 80 << 20
    assert max(r[4] for r in parent) - parent[0][4] < 80 << 20


def test_timeline_files_have_pid_as_last_column(tmp_path: Path) -> None:
    rows: List[Row] = [(41, 0.5, 2048, None, 4096), (7, 0.25, 1024, 512, 8192),
                       (41, 0.125, 1536, 1024, 4096)]
    csv_path, json_path = tmp_path / "t.csv", tmp_path / "t.jsonl"
    for path in (csv_path, json_path):
        with path.open("w", newline="") as out:
            write_session_rows(out.write, rows, csv=path.suffix == ".csv")
    assert csv_path.read_text().splitlines() == [
        "time_s,used_bytes,region_resident_bytes,rss_bytes,pid",
        "0.125000,1536,1024,4096,41", "0.250000,1024,512,8192,7", "0.500000,2048,,4096,41"]
    records = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert records[2] == {"time_s": 0.5, "used_bytes": 2048, "region_resident_bytes": None,
                          "rss_bytes": 4096, "pid": 41}
    expected = sorted(rows, key=lambda r: r[1])
    assert read_timeline(csv_path) == expected == read_timeline(json_path)


def test_cli_timeline_rows_carry_the_targets_pid(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    proc = run_python(
        "import sys; from bump_global.commands import main; sys.exit(main())",
        args=["run", "--sample", "5", "--timeline", str(out), "-c",
              "import os, time; print(os.getpid()); time.sleep(0.1)"])
    rows = read_timeline(out)
    assert len(rows) >= 5  # 20 on an idle machine
    assert {r[0] for r in rows} == {int(proc.stdout)}
    assert all(r[2] > 0 and r[3] is not None and r[4] > 0 for r in rows)


FORKING_TARGET = """
import os, sys, time
time.sleep(0.1)
fork_at = time.perf_counter()
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
    if NATIVE:
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


def test_sampler_rejects_bad_intervals() -> None:
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="expected a positive number"):
            Sampler(bad)


@needs_native
def test_native_sampler_bad_calls_raise() -> None:
    code = """
    import time
    from array import array
    from bump_global import _core as core
    for bad in (0.0, -1.0, float("nan")):
        try:
            core.sampler_start(bad, time.perf_counter())
        except ValueError as exc:
            assert "positive number of seconds" in str(exc)
        else:
            raise AssertionError(bad)
    t0 = time.perf_counter() - 100.0
    started = time.perf_counter() - t0
    core.sampler_start(0.001, t0)
    try:
        core.sampler_start(0.001, time.perf_counter())
    except RuntimeError as exc:
        assert "already running" in str(exc)
    else:
        raise AssertionError("started twice")
    deadline = time.perf_counter() + 10
    while len(core.sampler_samples()[0]) < 3 * 8:  # read while it runs
        assert time.perf_counter() < deadline
        time.sleep(0.01)
    seen = time.perf_counter() - t0
    first = array("d", core.sampler_samples()[0])[0]
    assert started <= first <= seen, (started, first, seen)  # perf_counter's clock
    # paused twice (two forks before the resume ran), resumed once: it runs again
    core.sampler_pause(); core.sampler_pause()
    paused = len(core.sampler_samples()[0])
    time.sleep(0.05)
    assert len(core.sampler_samples()[0]) == paused
    core.sampler_resume()
    while len(core.sampler_samples()[0]) < paused + 3 * 8:
        assert time.perf_counter() < deadline
        time.sleep(0.01)
    assert core.sampler_stop() == 0
    assert core.sampler_stop() == 0  # stopping a stopped sampler is harmless
    stopped = len(core.sampler_samples()[0])
    core.sampler_resume()  # a stopped sampler is not resumed
    time.sleep(0.05)
    assert len(core.sampler_samples()[0]) == stopped
    columns = core.sampler_samples()
    assert len({len(c) for c in columns}) == 1 and len(columns[0]) % 8 == 0
    print("ok")
    """
    assert run_python(textwrap.dedent(code)).stdout == "ok\n"


def test_sampler_uses_python_thread_when_native_is_not_requested() -> None:
    sampler = Sampler(10, native=False)
    sampler.close()
    assert not sampler.native and sampler.why_not_native == "not requested"
    auto = Sampler(10)
    auto.close()
    assert auto.native is NATIVE
    if not NATIVE:
        with pytest.raises(RuntimeError, match="no native sampler"):
            Sampler(10, native=True)
    assert os.getpid() == sampler.pid


@needs_native
def test_second_sampler_falls_back_to_the_python_thread_while_the_native_one_runs() -> None:
    code = """
    import json, time
    import bump_global
    from bump_global._timeline import Sampler
    first, second = Sampler(5), Sampler(5)
    bump_global.install("256M")
    first.start()
    second.start()
    time.sleep(0.2)
    first.stop(); second.stop()
    third = Sampler(5)  # the native sampler is free again
    third.start()
    deadline = time.perf_counter() + 10
    while len(third.samples()) < 2 and time.perf_counter() < deadline:
        time.sleep(0.01)  # a loaded machine may start the thread late
    third.stop()
    print(json.dumps([[s.native, s.why_not_native, len(s.samples())]
                      for s in (first, second, third)]))
    """
    first, second, third = json.loads(run_python(code).stdout)
    assert first[:2] == [True, None] and third[:2] == [True, None]
    assert second[0] is False and "busy" in second[1]
    assert first[2] >= 10 and second[2] >= 10 and third[2] >= 2
