"""Real programs nobody here wrote, plain and under BUMP_GLOBAL=1: same output, same status.

Each program runs in a fresh interpreter twice, without bump_global and with ``BUMP_GLOBAL=1``
(the way a user runs any entry point), from a clean environment.  The report tests read what
``BUMP_GLOBAL_REPORT=1``, ``BUMP_GLOBAL_JSON=FILE`` and ``bump-global run --json`` say about
the same programs.  scripts/real_programs.py runs the big ones (pip, black, mypy, sphinx...).

The report tests check the several-process report of schema ``bump_global.report/2``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

REPORT2 = "bump_global.report/2"
STRIPPED = ("BUMP_GLOBAL", "PYTHONMALLOC", "PYTHONTRACEMALLOC", "PYTHONDEVMODE", "PYTHONPATH",
            "PYTHONHASHSEED")
STDLIB = Path(sysconfig.get_paths()["stdlib"])
BUMP = {"BUMP_GLOBAL": "1"}


def run(args: Sequence[str], *, env: Optional[Mapping[str, str]] = None,
        cwd: Optional[Path] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python ARGS` from a clean environment plus `env` (hash seed fixed for every run)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    full_env["PYTHONHASHSEED"] = "0"
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full_env,
                          cwd=None if cwd is None else str(cwd), timeout=timeout)


def assert_same(plain: subprocess.CompletedProcess, bump: subprocess.CompletedProcess) -> None:
    assert bump.returncode == plain.returncode, (
        f"exit status {bump.returncode} under BUMP_GLOBAL=1, {plain.returncode} plain\n"
        f"--- stderr (bump)\n{bump.stderr[-3000:]}")
    assert bump.stdout == plain.stdout


def load_report(path: Path) -> Dict[str, Any]:
    assert path.exists(), f"no JSON report at {path}"
    data: Dict[str, Any] = json.loads(path.read_text())
    assert data["schema"] == REPORT2
    return data


def assert_totals_add_up(data: Dict[str, Any]) -> None:
    procs: List[Dict[str, Any]] = data["processes"]
    total = data["total"]
    assert total["processes"] == len(procs)
    assert total["used"] == sum(p["region"]["used"] for p in procs)
    assert total["allocations"] == sum(p["counters"]["allocations"] for p in procs)
    peaks = [p["process"]["peak_rss"] for p in procs]
    assert total["peak_rss_max"] == max(peaks)
    assert total["peak_rss_sum"] == sum(peaks)
    assert len({p["pid"] for p in procs}) == len(procs), "one record per process"


# ------------------------------------------------------------------ compileall

def test_compileall_of_a_stdlib_package_writes_the_same_pyc_files_under_bump(tmp_path):
    results, listings = [], []
    for name, env in (("plain", {}), ("bump", BUMP)):
        dest = tmp_path / name / "email"
        shutil.copytree(STDLIB / "email", dest, ignore=shutil.ignore_patterns("__pycache__"))
        results.append(run(["-m", "compileall", "-q", "-f", str(dest)], env=env))
        listings.append(sorted(str(p.relative_to(dest)) for p in dest.rglob("*.pyc")))
    assert_same(*results)
    assert results[0].returncode == 0
    sources = sorted(p for p in (tmp_path / "plain" / "email").rglob("*.py"))
    assert len(listings[0]) == len(sources) > 10
    assert listings[1] == listings[0]


# ------------------------------------------------------------------ json.tool

def _write_json(path: Path, records: int) -> Any:
    import random

    rng = random.Random(5)
    data = [{"id": i, "name": f"record {i} é", "values": [rng.random() for _ in range(6)],
             "tags": {f"t{rng.randrange(50)}": rng.randrange(10**6) for _ in range(3)},
             "ok": i % 3 == 0, "none": None} for i in range(records)]
    path.write_text(json.dumps(data), encoding="utf-8")
    return data


@pytest.mark.slow  # 5 s: json.tool on 8,000 records, twice
def test_json_tool_on_a_generated_file_prints_the_same_document_under_bump(tmp_path):
    source = tmp_path / "data.json"
    data = _write_json(source, 8_000)
    plain = run(["-m", "json.tool", str(source)])
    bump = run(["-m", "json.tool", str(source)], env=BUMP)
    assert_same(plain, bump)
    assert plain.returncode == 0
    assert plain.stdout == json.dumps(data, indent=4) + "\n"


def test_json_tool_under_bump_global_report_prints_one_unlabelled_report(tmp_path):
    """One process: the report is today's single table, on stderr, after the output."""
    source = tmp_path / "data.json"
    _write_json(source, 5_000)
    plain = run(["-m", "json.tool", str(source)])
    bump = run(["-m", "json.tool", str(source)], env={**BUMP, "BUMP_GLOBAL_REPORT": "1"})
    assert_same(plain, bump)
    assert bump.stderr.count("bump_global report") == 1
    used = re.search(r"region .*?([\d.]+) (B|KiB|MiB|GiB) used", bump.stderr)
    assert used is not None and float(used.group(1)) > 0, bump.stderr
    assert not re.search(r"process \d+ \(", bump.stderr), "a single process is not labelled"


# ------------------------------------------------------------------ pydoc

def test_pydoc_html_of_stdlib_modules_is_the_same_under_bump(tmp_path):
    modules = ["json", "textwrap", "email.message"]
    pages = []
    for name, env in (("plain", {}), ("bump", BUMP)):
        out = tmp_path / name
        out.mkdir()
        result = run(["-m", "pydoc", "-w", *modules], env=env, cwd=out)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "".join(f"wrote {m}.html\n" for m in modules)
        pages.append({p.name: re.sub(r"0x[0-9a-f]{6,}", "0x?", p.read_text())
                      for p in sorted(out.glob("*.html"))})
    assert sorted(pages[0]) == [f"{m}.html" for m in sorted(modules)]
    assert pages[1] == pages[0]


# ------------------------------------------------------------------ multiprocessing

WORKERS = textwrap.dedent("""\
    import json, multiprocessing as mp, os, sys

    def work(n, conn):
        conn.send((n, sum(i * i for i in range(n)), os.getpid()))
        conn.close()

    def main(methods, pids_file, big_mib):
        big = b"x" * (big_mib << 20)  # the root's peak, before any worker starts
        pids = {"root": os.getpid(), "fork": [], "spawn": []}
        for method in methods:
            ctx = mp.get_context(method)
            got = []
            for k in range(2):
                parent, child = ctx.Pipe()
                p = ctx.Process(target=work, args=(20000 + k, child))
                p.start()
                got.append(parent.recv())
                p.join()
                assert p.exitcode == 0, p.exitcode
            pids[method] += [g[2] for g in got]
            print(method, [g[:2] for g in got])
        with open(pids_file, "w") as out:
            json.dump(pids, out)
        print(len(big))

    if __name__ == "__main__":
        main(sys.argv[1].split(","), sys.argv[2], int(sys.argv[3]))
    """)


def _workers(tmp_path: Path, methods: str, env: Mapping[str, str], tag: str,
             big_mib: int = 1) -> Tuple[subprocess.CompletedProcess, Dict[str, Any]]:
    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    pids_file = tmp_path / f"pids-{tag}.json"
    result = run([str(script), methods, str(pids_file), str(big_mib)], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result, json.loads(pids_file.read_text())


def test_multiprocessing_fork_and_spawn_workers_give_the_same_output_under_bump(tmp_path):
    plain, _ = _workers(tmp_path, "fork,spawn", {}, "plain")
    bump, _ = _workers(tmp_path, "fork,spawn", BUMP, "bump")
    assert_same(plain, bump)
    assert plain.stdout.splitlines()[0].startswith("fork [(20000, ")


def test_json_report_has_one_record_per_fork_and_spawn_worker_and_totals_add_up(tmp_path):
    """WAITS FOR report/2."""
    report = tmp_path / "report.json"
    _, pids = _workers(tmp_path, "fork,spawn", {**BUMP, "BUMP_GLOBAL_JSON": str(report)}, "j",
                       big_mib=200)
    data = load_report(report)
    procs = data["processes"]
    by_pid = {p["pid"]: p for p in procs}
    assert procs[0]["pid"] == pids["root"] and procs[0]["role"] == "root"
    assert procs[0]["argv"][0].endswith("workers.py")
    for role in ("fork", "spawn"):
        for pid in pids[role]:
            assert pid in by_pid, f"no record for the {role} worker {pid}: {sorted(by_pid)}"
            record = by_pid[pid]
            assert record["role"] == role and record["ppid"] == pids["root"]
            assert record["installed"] and record["counters"]["allocations"] > 0
    # multiprocessing ends a forked worker with os._exit: its record must still be there
    assert all(by_pid[pid]["exit"] == "os._exit" for pid in pids["fork"])
    assert not {m["pid"] for m in data["missing"]} & set(pids["fork"] + pids["spawn"])
    assert_totals_add_up(data)
    # each peak RSS is the process's own: a spawned worker does not inherit the root's 200 MiB
    root_peak = procs[0]["process"]["peak_rss"]
    assert root_peak > 200 << 20
    for pid in pids["spawn"]:
        assert by_pid[pid]["process"]["peak_rss"] < root_peak // 2


def test_text_report_labels_each_of_three_processes_and_ends_with_the_total(tmp_path):
    """WAITS FOR report/2: root and two forked workers, each with its full table."""
    result, pids = _workers(tmp_path, "fork", {**BUMP, "BUMP_GLOBAL_REPORT": "1"}, "t")
    err = result.stderr
    root = pids["root"]
    assert re.search(rf"process {root} \(root\b", err), err
    for pid in pids["fork"]:
        # schema2.md: "process PID (role, parent PPID): argv"; "forked" and added words pass
        assert re.search(rf"process {pid} \(fork(ed)?, parent {root}\b", err), err
    assert err.count("bump_global report") == 1, "one combined report, not one per process"
    assert re.search(r"(?m)^\s*total\b", err), err


def test_text_report_of_many_processes_names_every_one_and_ends_with_the_total(tmp_path):
    """WAITS FOR report/2: more than three processes give a summary, still one per line."""
    result, pids = _workers(tmp_path, "fork,spawn", {**BUMP, "BUMP_GLOBAL_REPORT": "1"}, "m")
    err = result.stderr
    for pid in [pids["root"], *pids["fork"], *pids["spawn"]]:
        assert re.search(rf"\b{pid}\b", err), f"process {pid} not in the report:\n{err}"
    assert err.count("bump_global report") == 1
    assert re.search(r"(?m)^\s*total\b", err), err


# ------------------------------------------------------------------ os._exit

OS_EXIT = "import os, sys\nkeep = [str(i) * 3 for i in range(50000)]\nprint(len(keep))\n" \
          "sys.stdout.flush()\nos._exit(3)\n"


def test_program_ending_with_os_exit_keeps_its_output_and_status_under_bump(tmp_path):
    plain = run(["-c", OS_EXIT])
    bump = run(["-c", OS_EXIT], env=BUMP)
    assert_same(plain, bump)
    assert plain.returncode == 3 and plain.stdout == "50000\n"


def test_program_ending_with_os_exit_still_writes_its_json_report(tmp_path):
    """WAITS FOR report/2 (mypy ends this way)."""
    report = tmp_path / "report.json"
    result = run(["-c", OS_EXIT], env={**BUMP, "BUMP_GLOBAL_JSON": str(report)})
    assert result.returncode == 3 and result.stdout == "50000\n"
    data = load_report(report)
    assert [p["exit"] for p in data["processes"]] == ["os._exit"]
    assert data["processes"][0]["region"]["used"] > 0
    assert_totals_add_up(data)


# ------------------------------------------------------------------ counters that do not inflate

TUPLES = 200_000
KEEP_TUPLES = f"KEEP = [(i, i * 2) for i in range({TUPLES})]\nprint(len(KEEP))\n"


def test_kept_objects_are_not_counted_as_frees_by_bump_global_report(tmp_path):
    """The program frees next to nothing: the report must not count the teardown."""
    result = run(["-c", KEEP_TUPLES], env={**BUMP, "BUMP_GLOBAL_REPORT": "1"})
    assert result.returncode == 0 and result.stdout == f"{TUPLES}\n"
    found = re.search(r"([\d,]+) frees ignored", result.stderr)
    assert found is not None, result.stderr
    assert int(found.group(1).replace(",", "")) < TUPLES // 4


def test_kept_objects_give_the_same_counters_through_the_env_and_the_cli(tmp_path):
    """WAITS FOR report/2: BUMP_GLOBAL=1 and bump-global run report the same program alike."""
    script = tmp_path / "keep.py"
    script.write_text(KEEP_TUPLES)
    env_json, cli_json = tmp_path / "env.json", tmp_path / "cli.json"
    by_env = run([str(script)], env={**BUMP, "BUMP_GLOBAL_JSON": str(env_json)})
    by_cli = run(["-m", "bump_global", "run", "--json", str(cli_json), str(script)])
    for result in (by_env, by_cli):
        assert result.returncode == 0 and result.stdout == f"{TUPLES}\n", result.stderr
    counters = []
    for path in (env_json, cli_json):
        data = load_report(path)
        assert data["total"]["processes"] == 1
        counters.append(data["processes"][0]["counters"])
    for c in counters:
        assert c["frees_ignored"] < TUPLES // 4, c
        assert c["allocations"] > TUPLES
    for key in ("frees_ignored", "allocations"):
        assert abs(counters[0][key] - counters[1][key]) < TUPLES // 10, (key, counters)
