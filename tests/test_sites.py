"""Allocation sites (install(sites=True), --sites): sampling by bytes, the stacks it
records, its unbiased estimates, and where they show (report, JSON, measure(),
flame graph).  Every test that installs the allocator runs it in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import CAPI, RAW_NOGIL, run_python

from bump_global import _sites
from bump_global._launch import child_environment

# A program with known sites: each function's share of the bytes is set by how much
# it allocates (small strs, mid-size bytearrays, lists, dicts, large bytes blocks:
# from 5% to half of the whole).  measure() gives each one's exact figure; the
# estimate is the sum of the sampled stacks that pass through it.
KNOWN_SITES = """
import json, sys
import bump_global
from bump_global import _sites

UNIT = 1 << 20

def strings(n):      # many 64-byte blocks
    return [str(i).zfill(10) for i in range(n)]

def buffers(n):      # 1 KiB blocks
    return [bytearray(1000) for _ in range(n)]

def lists(n):        # 16-item lists
    return [[0] * 16 for _ in range(n)]

def mappings(n):     # small dicts
    return [{"a": i, "b": i} for i in range(n)]

def blocks(n):       # 256 KiB blocks: the large area
    return [bytes(256 << 10) for _ in range(n)]

bump_global.install("4G", sites=True, sites_rate=sys.argv[1])
scale = int(sys.argv[2])
plan = [(strings, 90_000 * scale), (buffers, 6_000 * scale), (lists, 12_000 * scale),
        (mappings, 5_000 * scale), (blocks, 7 * scale)]
exact, keep = {}, []
for function, n in plan:
    with bump_global.measure() as m:
        keep.append(function(n))
    exact[function.__name__] = m.bytes
sites = _sites.process_sites()
estimated = dict.fromkeys(exact, 0.0)
names = [loc["function"] for loc in sites["locations"]]
for stack in sites["stacks"]:
    owners = {names[i].split(".")[0] for i in stack["frames"]} & set(exact)
    for owner in owners:
        estimated[owner] += stack["bytes"]
print(json.dumps({"exact": exact, "estimated": estimated, "samples": sites["samples"],
                  "state": _sites.state()}))
"""


@pytest.mark.slow
def test_sites_holding_five_percent_are_estimated_within_ten_percent_in_most_runs() -> None:
    """Five independent runs (each process draws its own sampling points).  With a
    mean interval of 4 KiB, the smallest site (about 5% of ~60 MiB) holds about 750
    samples: the relative standard error of its estimate is about 1/sqrt(750), 3.7%,
    so 10% is more than 2.5 standard errors -- within it in about 99% of runs per
    site.  Asking 4 runs of 5 for every site, a correct estimator fails this test
    less than once in a thousand; a biased one (a weight ignoring the allocation's
    size, or a point counted twice) is off by far more than 10% every time."""
    results = [json.loads(run_python(KNOWN_SITES, args=["4K", "2"]).stdout)
               for _ in range(5)]
    shares: Dict[str, float] = {}
    within: Dict[str, int] = {}
    for result in results:
        assert result["state"]["inside"] == 0 and result["state"]["lost"] == 0
        total = sum(result["exact"].values())
        for name, exact in result["exact"].items():
            shares[name] = exact / total
            error = abs(result["estimated"][name] - exact) / exact
            within[name] = within.get(name, 0) + (error <= 0.10)
    assert min(shares.values()) >= 0.04 and max(shares.values()) >= 0.40, shares
    assert all(count >= 4 for count in within.values()), (within, results)


def test_the_default_rate_estimates_a_program_totals_without_bias() -> None:
    # One quick run at the default rate: the estimated total of all sites is the
    # bytes handed out, to within the error sqrt(1/samples) allows (4 sigmas).
    result = json.loads(run_python(KNOWN_SITES, args=["512K", "4"]).stdout)
    exact = sum(result["exact"].values())
    estimated = sum(result["estimated"].values())
    assert result["samples"] >= 100
    assert abs(estimated - exact) / exact < 4 / result["samples"] ** 0.5


NOTHING_INSIDE = CAPI + RAW_NOGIL + """
import json, sys, threading
import bump_global
from bump_global import _sites, _testing
bump_global.install("2G", reclaim=sys.argv[1], sites=True, sites_rate="2K")

def churn():
    keep = []
    for i in range(20000):
        keep.append(str(i) * 3)
        keep.append([i] * 20)
        if i % 3 == 0:
            keep.pop()
    return keep

def raw_without_gil():
    malloc, _, realloc, free = RAW_NOGIL
    for _ in range(2000):
        p = malloc(700)
        p = realloc(p, 3000)
        free(p)

threads = [threading.Thread(target=raw_without_gil) for _ in range(3)]
for t in threads:
    t.start()
kept = [churn() for _ in range(3)]
for t in threads:
    t.join()
_testing.raw_from_c_thread(3000, 300)
print(json.dumps(_sites.state()))
"""


@pytest.mark.parametrize("reclaim", ["none", "last", "classes"])
def test_no_allocation_is_made_while_a_sample_is_recorded(reclaim: str) -> None:
    # The C core counts every sampling point reached while a thread records a sample
    # and every GIL-domain allocation made while it records: allocating inside the
    # hook would show there.  Thousands of samples, in every domain, from threads
    # with and without the GIL and from a C thread with no Python state.
    state = json.loads(run_python(NOTHING_INSIDE, args=[reclaim]).stdout)
    assert state["taken"] > 2000 and state["recorded"] == state["taken"], state
    assert state["inside"] == 0 and state["lost"] == 0, state


STACKS = """
import asyncio, json, sys, threading
import bump_global
from bump_global import _sites, _testing

def through_c():                      # json.loads allocates in C, called from here
    return json.loads("[" + ",".join(['{"k": [1, 2, 3]}'] * 20000) + "]")

def generator():                      # allocates in a generator's body
    for i in range(30000):
        yield str(i) * 4

def consume():
    return list(generator())

def in_a_thread(out):
    out.append([bytearray(500) for _ in range(4000)])

async def coroutine():
    await asyncio.sleep(0)
    return [str(i) * 5 for i in range(30000)]

def deep(n):
    return deep(n - 1) if n else [bytearray(300) for _ in range(3000)]

bump_global.install("2G", sites=True, sites_rate="4K")
keep = [through_c(), consume()]
out = []
t = threading.Thread(target=in_a_thread, args=(out,), name="worker")
t.start(); t.join()
keep.append(asyncio.run(coroutine()))
keep.append(deep(300))
_testing.raw_from_c_thread(2000, 400)
sites = _sites.process_sites()
names = [loc["function"] for loc in sites["locations"]]
print(json.dumps([[names[i] for i in stack["frames"]] for stack in sites["stacks"]]))
"""


def _stacks() -> List[List[str]]:
    return json.loads(run_python(STACKS).stdout)  # type: ignore[no-any-return]


def test_stacks_name_the_python_callers_through_c_calls_generators_threads_and_async(
) -> None:
    stacks = _stacks()

    def some(predicate: Any) -> bool:
        return any(predicate(stack) for stack in stacks)

    # A C function's allocation is the Python line that called it.
    assert some(lambda s: s[-1] in ("JSONDecoder.raw_decode", "raw_decode")
                and "through_c" in s)
    # A generator's allocation has its consumer among its callers, outermost first.
    assert some(lambda s: s[-1] == "generator" and "consume" in s
                and s.index("consume") < s.index("generator"))
    # A thread's allocation has the thread's function (not the main thread's stack).
    assert some(lambda s: "in_a_thread" in s and "<module>" not in s)
    # A coroutine's allocation names the coroutine (its comprehension's frame, named
    # "<listcomp>" before 3.11, which has no qualified names, and none from 3.12).
    assert some(lambda s: any(f.startswith("coroutine") for f in s[-2:]))
    # A stack deeper than the C core keeps is cut at its outermost end, and says so.
    assert some(lambda s: s[0] == "[truncated]" and any(f.startswith("deep") for f in s[-2:])
                and len(s) == 129)
    # A C thread with no Python state: the honest bucket.
    assert ["[no Python stack]"] in stacks


CHILDREN = """
import multiprocessing as mp, os, sys

def child_work():
    return len([str(i) * 8 for i in range(300000)])

def spawned(queue):
    queue.put(child_work())

if __name__ == "__main__":
    pid = os.fork()
    if pid == 0:
        child_work()
        os._exit(0)
    os.waitpid(pid, 0)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=spawned, args=(queue,))
    p.start(); print(queue.get()); p.join()
"""


@pytest.mark.slow
def test_forked_and_spawned_children_have_their_own_sites_in_the_report(
        tmp_path: Path) -> None:
    script = tmp_path / "children.py"
    script.write_text(CHILDREN)
    out, flame = tmp_path / "r.json", tmp_path / "flame.html"
    proc = subprocess.run(
        [sys.executable, "-m", "bump_global", "run", "--sites", "--sites-rate", "16K",
         "--json", str(out), "--flamegraph", str(flame), "--report", str(script)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=child_environment())
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    by_role: Dict[str, List[Dict[str, Any]]] = {}
    for record in data["processes"]:
        by_role.setdefault(record["role"], []).append(record)
    for role in ("fork", "spawn"):
        # the child that did the work (a spawn context also starts a resource tracker)
        children = [r for r in by_role[role] if r.get("sites", {}).get("samples")]
        assert children, role
        sites = max(children, key=lambda r: r["region"]["used"])["sites"]
        names = [loc["function"] for loc in sites["locations"]]
        # most of the child's bytes are its own work's, not its parent's or its start-up's
        work = sum(stack["bytes"] for stack in sites["stacks"]
                   if any(names[i] == "child_work" for i in stack["frames"]))
        assert work > 0.5 * sites["bytes"], (role, names)
    # the report: each process's sites, then the whole program's, in the same columns
    summaries = [line for line in proc.stderr.splitlines()
                 if line.startswith(("  sites ", "  all sites "))]
    assert summaries[-1].startswith("  all sites ") and len(summaries) >= 2, summaries
    assert {len(line) - len(line[13:].lstrip()) for line in summaries} == {13}, summaries
    text = flame.read_text()
    assert "child_work" in text and "http://" not in text.replace(
        "http://www.w3.org", "")  # one self-contained file


def test_the_report_and_the_json_show_the_sites(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""\
        def load(n):
            return [str(i) * 10 for i in range(n)]

        def main():
            return load(200000)

        data = main()
    """))
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bump_global", "run", "--sites", "--report", "--json", str(out),
         str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=child_environment())
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(out.read_text())["processes"]
    sites = record["sites"]
    assert sites["rate"] == 256 << 10 and sites["samples"] > 20 and sites["lost"] == 0
    assert set(sites) >= {"rate", "samples", "lost", "bytes", "allocations", "locations",
                          "stacks"}
    # stacks start at the program (the command line that runs it is left out)
    package = os.path.dirname(_sites.__file__)
    assert not [loc for loc in sites["locations"] if loc["file"].startswith(package)]
    top = _sites.top_sites(sites, 1)[0]
    assert top["function"] == "<listcomp>" or top["function"].startswith("load")
    assert top["share"] > 0.8 and os.path.basename(top["file"]) == "app.py"
    # the estimate is of the order of what the program handed out
    assert 0.5 < sites["bytes"] / record["region"]["used"] < 1.5
    # the text report: the sites row, then the top site with its caller
    assert "samples, one every 256.0 KiB on average: estimates" in proc.stderr
    assert "(app.py:2) <- load (app.py:2)" in proc.stderr or "load (app.py:2)" in proc.stderr


MEASURED = """
import json
import bump_global
bump_global.install("1G")

def hot():
    return [bytes(100) for _ in range(50000)]

# Warm: the interpreter's caches and specializations are made in the first calls
# (on 3.14+, the third call still differs from later ones by a few blocks).
kept = [hot(), hot(), hot(), None]
figures = []
for sites in (None, True, None, True):  # plain and sampled blocks, alternating
    with bump_global.measure(sites=sites) as m:
        kept[3] = hot()
    figures.append(m.bytes)
try:
    with bump_global.measure() as plain:
        kept[3] = hot()
    plain.sites()
except bump_global.BumpGlobalError as exc:
    refused = str(exc)
print(json.dumps({"figures": figures, "samples": m.samples, "sites": m.sites(3),
                  "refused": refused}))
"""


def test_measure_names_the_sites_of_its_block_and_sampling_changes_no_figure() -> None:
    out = json.loads(run_python(MEASURED).stdout)
    plain, sampled = out["figures"][2], out["figures"][3]
    assert plain == sampled == out["figures"][1]  # sampling allocates nothing from the region
    assert out["samples"] > 50
    assert "measure(sites=True)" in out["refused"]
    top = out["sites"][0]
    assert top["function"] in ("<listcomp>", "hot.<locals>.<listcomp>", "hot")
    assert abs(sum(s["bytes"] for s in out["sites"]) - sampled) < 0.3 * sampled


def test_a_stream_cut_short_is_read_up_to_its_last_whole_record() -> None:
    # A killed process may leave half a record at the end of its file.
    data = _sites.MAGIC
    location = (b"L\0" + (4).to_bytes(2, sys.byteorder) + (6).to_bytes(2, sys.byteorder)
                + bytes(2) + (0).to_bytes(4, sys.byteorder) + (7).to_bytes(4, sys.byteorder)
                + (1).to_bytes(4, sys.byteorder) + b"main" + b"app.py")
    sample = (b"S" + bytes([1]) + (1).to_bytes(2, sys.byteorder) + bytes(4)
              + (0).to_bytes(8, sys.byteorder) + (1 << 20).to_bytes(8, sys.byteorder)
              + (1 << 19).to_bytes(8, sys.byteorder) + (0).to_bytes(4, sys.byteorder))
    whole = _sites.parse(data + location + sample)
    cut = _sites.parse(data + location + sample + sample[:20])
    assert whole.samples == cut.samples == 1
    ((stack, (nbytes, allocations, count)),) = whole.stacks.items()
    assert stack == (("main", "app.py", 7),) and count == 1
    # a 1 MiB allocation at a mean of 512 KiB: sampled with probability 1 - e**-2
    probability = 1 - 2.718281828459045 ** -2
    assert abs(nbytes - (1 << 20) / probability) < 1
    assert abs(allocations - 1 / probability) < 1e-9


def test_the_command_lines_frames_are_left_out_and_its_loading_has_no_python_stack() -> None:
    package = os.path.dirname(_sites.__file__)
    program = ("main", "/src/app.py", 3)
    runner = ("_exec_file", os.path.join(package, "_runner.py"), 130)
    runpy = ("_run_code", "<frozen runpy>", 88)
    # innermost first: the program's frame stays, the runner's below it go
    assert _sites._without_the_tool((program, runner, runpy)) == (program,)
    # a frame of ours called by the program is the program's business: it stays
    assert _sites._without_the_tool((runner, program, runpy)) == (runner, program)
    # reading and compiling the script: no Python frame, as under python itself
    assert _sites._without_the_tool((runner, runner, runpy)) == ()


FORKED_CHILD_FILES = """
import json, os, sys
import bump_global
from bump_global import _sites

bump_global.install("1G", sites=True, sites_rate="4K")
keep = [str(i) * 10 for i in range(20000)]
pid = os.fork()
if pid == 0:
    # the child's first descriptors are the numbers its parent's sites file had
    path = sys.argv[1]
    with open(path, "w") as out:
        out.write("first\\n")
        more = [bytes(100) * (i % 7) for i in range(50000)]   # many samples meanwhile
        _sites.own_records()                                   # flushed
        out.write("second\\n")
    records = _sites.own_records()
    os._exit(0 if records and _sites.parse(records).samples > 0 else 3)
_, status = os.waitpid(pid, 0)
print(json.dumps({"child": os.WEXITSTATUS(status),
                  "parent": _sites.parse(_sites.own_records()).samples}))
"""


def test_a_forked_childs_samples_never_go_into_a_file_the_child_opened(tmp_path: Path) -> None:
    path = tmp_path / "child.txt"
    result = json.loads(run_python(FORKED_CHILD_FILES, args=[str(path)]).stdout)
    assert result == {"child": 0, "parent": result["parent"]} and result["parent"] > 0
    assert path.read_text() == "first\nsecond\n"  # nothing but what the child wrote


def test_the_records_file_without_a_session_is_anonymous_with_or_without_memfd(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any) -> int:
        raise OSError(38, "Function not implemented")

    for patch in (False, True):
        if patch:  # a kernel or sandbox without memfd_create: tempfile's file instead
            monkeypatch.setattr(os, "memfd_create", refused, raising=False)
        with _sites._anonymous_file() as file:
            file.write(b"records")
            file.flush()
            assert os.pread(file.fileno(), 7, 0) == b"records"
            assert not os.path.exists(str(file.name))  # no name left in any directory
