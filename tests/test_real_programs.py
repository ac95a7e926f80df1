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
    assert [(p["exit"], p.get("status")) for p in data["processes"]] == [("os._exit", 3)]
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


# ------------------------------------------------------------------ every process, every ending
#
# The idioms people write, run through `bump-global run` (a supervisor that reports when the
# program has ended, however) and through BUMP_GLOBAL=1 (the root reports at its exit; a
# watcher if it is killed): every worker is in the JSON with its own figures and how it ended.

POOL = textwrap.dedent("""\
    import json, multiprocessing as mp, os, sys

    def w(n):
        keep = [str(i) for i in range(n)]
        return len(keep), os.getpid()

    if __name__ == "__main__":
        parents_own = [str(i) for i in range(500000)]  # what a forked worker inherits
        with mp.Pool(2) as p:
            workers = [q.pid for q in p._pool]
            done = p.map(w, [10**5, 2*10**5, 3*10**5, 4*10**5])
        print([n for n, _ in done])
        with open(sys.argv[1], "w") as out:
            json.dump({"root": os.getpid(), "workers": workers,
                       "tasks": [[n, pid] for n, pid in done]}, out)
    """)


def run_cli(args: Sequence[str], out: Path, *, cwd: Path, env: Optional[Mapping[str, str]] = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """`bump-global run --report --json OUT ARGS` from a clean environment."""
    return run(["-m", "bump_global", "run", "--report", "--json", str(out), *args], env=env,
               cwd=cwd, timeout=timeout)


def test_the_pool_idiom_reports_both_workers_with_their_own_figures(tmp_path):
    """`with mp.Pool(2) as p: p.map(...)`: Pool.__exit__ terminates the workers (SIGTERM),
    or they have already ended through os._exit; both are reported either way, each with
    what it did itself: the strings of its own tasks, not the 500,000 of the root it was
    forked from.  scripts/pool_endings.py repeats this and compares the totals."""
    (tmp_path / "pool.py").write_text(POOL)
    out, facts = tmp_path / "r.json", tmp_path / "facts.json"
    result = run_cli(["pool.py", str(facts)], out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "[100000, 200000, 300000, 400000]\n"
    data, known = load_report(out), json.loads(facts.read_text())
    by_pid = {p["pid"]: p for p in data["processes"]}
    assert data["processes"][0]["pid"] == known["root"]
    for pid in known["workers"]:
        assert pid in by_pid, f"worker {pid} is not reported: {sorted(by_pid)} {data['missing']}"
        worker = by_pid[pid]
        assert worker["installed"] and worker["exit"] in ("os._exit", "signal"), worker["exit"]
        assert worker["exit"] != "signal" or worker["signal"] == "SIGTERM"
        strings = sum(n for n, done_by in known["tasks"] if done_by == pid)
        # Its own strings (one block each, and more for the ints and the list), and not the
        # root's 500,000 strings (a forked child's figures start at the fork).
        assert strings <= worker["counters"]["allocations"] < 5 * strings + 400000, (
            strings, worker["counters"])
    assert_totals_add_up(data)
    for pid in known["workers"]:  # in the text: its table, or its line in the table
        # (3.14+ start a fork server: the workers are forked from it, not from the root)
        assert re.search(rf"(?m)process {pid} \(forked, parent \d+\)|^\s+{pid} fork ",
                         result.stderr), result.stderr


EXECUTOR = textwrap.dedent("""\
    import json, os, signal, sys
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    def w(n):
        keep = [str(i) for i in range(n)]
        return len(keep), os.getpid()

    def crash(how, pid_file):
        keep = [str(i) for i in range(50000)]
        with open(pid_file, "w") as out:
            out.write(str(os.getpid()))
        if how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)

    if __name__ == "__main__":
        how, facts = sys.argv[1], sys.argv[2]
        with ProcessPoolExecutor(2) as ex:
            done = list(ex.map(w, [10**5, 2*10**5]))
            workers = sorted(ex._processes)
            if how != "none":
                try:
                    ex.submit(crash, how, facts + ".crashed").result()
                except BrokenProcessPool:
                    print("broken")
        print([n for n, _ in done])
        with open(facts, "w") as out:
            json.dump({"workers": workers, "tasks": [[n, pid] for n, pid in done]}, out)
    """)


@pytest.mark.parametrize("how", ["none", "exit", "kill"])
def test_process_pool_executor_workers_are_reported_with_how_they_ended(tmp_path, how):
    """ProcessPoolExecutor: its workers end through os._exit; a task that calls os._exit(3)
    or is killed by SIGKILL breaks the pool (BrokenProcessPool), and the executor
    terminates the other worker.  Every worker is reported, with how it ended."""
    (tmp_path / "ex.py").write_text(EXECUTOR)
    out, facts = tmp_path / "r.json", tmp_path / "facts.json"
    result = run_cli(["ex.py", how, str(facts)], out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ("" if how == "none" else "broken\n") + "[100000, 200000]\n"
    data, known = load_report(out), json.loads(facts.read_text())
    by_pid = {p["pid"]: p for p in data["processes"]}
    missing = [pid for pid in known["workers"] if pid not in by_pid]
    assert not missing, f"workers {missing} not reported: {data['missing']}"
    endings = {pid: (by_pid[pid]["exit"], by_pid[pid].get("signal"))
               for pid in known["workers"]}
    for n, pid in known["tasks"]:
        assert by_pid[pid]["counters"]["allocations"] >= n
    if how == "none":
        assert set(endings.values()) <= {("os._exit", None), ("normal", None)}, endings
    else:
        crashed = int(Path(str(facts) + ".crashed").read_text())
        assert crashed in endings, (crashed, endings)
        assert endings[crashed] == (("os._exit", None) if how == "exit" else ("killed", None))
        # Its 50,000 strings before it died (a SIGKILL: as of its recorder's last tick).
        assert by_pid[crashed]["counters"]["allocations"] >= (50000 if how == "exit" else 1)
        for pid, ending in endings.items():
            if pid != crashed:  # terminated by the executor, or ended already
                assert ending in (("signal", "SIGTERM"), ("os._exit", None)), endings
    assert_totals_add_up(data)


# A root that runs until something ends it: it says "ready" once it allocates.
FOREVER = "x = []\nprint('ready', flush=True)\nwhile 1: x.append(str(len(x)))"


def _report_of(path: Path, wait: float = 20) -> Dict[str, Any]:
    """The JSON report at `path`, waiting for it (a watcher writes it just after the
    root ended)."""
    import time

    deadline = time.monotonic() + wait
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return load_report(path)


@pytest.mark.parametrize("how", ["cli", "env"])
def test_a_root_killed_by_timeout_is_reported_with_the_figures_of_its_end(tmp_path, how):
    """`timeout 3 bump-global run --report --json r.json -c ...`: timeout sends SIGTERM to
    the process group and exits 124; the report is printed and r.json has the root's
    figures as of its end, marked SIGTERM."""
    timeout = shutil.which("timeout")
    if timeout is None:
        pytest.skip("no timeout command (GNU coreutils)")
    out = tmp_path / "r.json"
    if how == "cli":
        args = [timeout, "3", sys.executable, "-m", "bump_global", "run", "--report", "--json",
                str(out), "-c", FOREVER]
        env: Mapping[str, str] = {}
    else:
        args = [timeout, "3", sys.executable, "-c", FOREVER]
        env = {**BUMP, "BUMP_GLOBAL_REPORT": "1", "BUMP_GLOBAL_JSON": str(out)}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    # stderr is a file: the watcher (env) keeps it open after timeout has exited.
    with (tmp_path / "stderr").open("w+") as err:
        result = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**full_env, **env}, cwd=tmp_path, timeout=60)
        data = _report_of(out)
        err.seek(0)
        stderr = err.read()
    assert result.returncode == 124 and result.stdout == "ready\n"
    (root,) = data["processes"]
    assert root["exit"] == "signal" and root["signal"] == "SIGTERM", root["exit"]
    assert root["counters"]["allocations"] > 10000 and root["region"]["used"] > 1 << 20
    # The command as typed (under BUMP_GLOBAL=1 before 3.10, which has no sys.orig_argv,
    # python keeps only "-c" of it).
    assert root["argv"] == ["-c", FOREVER] or (how == "env" and sys.version_info < (3, 10)
                                               and root["argv"] == ["-c"]), root["argv"]
    assert "bump_global report" in stderr and "ended by SIGTERM" in stderr, stderr


def _interrupt(args: Sequence[str], env: Mapping[str, str], cwd: Path, signo: int,
               whom: str = "group") -> Tuple[int, str, str]:
    """Start `python ARGS` in a session of its own, wait for its "ready", send `signo` to
    its process group (as a terminal's Ctrl-C does) or to the process; (status, stdout,
    stderr)."""
    import signal as _signal
    import time

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**full_env, **env},
                            cwd=cwd, start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == "ready\n", first + proc.communicate(timeout=30)[1]
        time.sleep(0.3)  # it allocates meanwhile
        if whom == "group":
            os.killpg(proc.pid, signo)
        else:
            os.kill(proc.pid, signo)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, _signal.SIGKILL)
            proc.wait()
    return proc.returncode, first + out, err


@pytest.mark.parametrize("how", ["cli", "env"])
def test_a_root_interrupted_by_ctrl_c_is_reported_and_dies_of_sigint(tmp_path, how):
    """SIGINT to the process group, as Ctrl-C does: KeyboardInterrupt in the program, the
    report printed, and the status the signal gives (-2 from Popen, 130 from a shell)."""
    import signal as _signal

    out = tmp_path / "r.json"
    if how == "cli":
        args = ["-m", "bump_global", "run", "--report", "--json", str(out), "-c", FOREVER]
        env: Dict[str, str] = {}
    else:
        args = ["-c", FOREVER]
        env = {**BUMP, "BUMP_GLOBAL_REPORT": "1", "BUMP_GLOBAL_JSON": str(out)}
    status, stdout, stderr = _interrupt(args, env, tmp_path, _signal.SIGINT)
    assert status == -_signal.SIGINT and stdout == "ready\n", stderr[-3000:]
    assert "KeyboardInterrupt" in stderr and "bump_global report" in stderr, stderr
    (root,) = _report_of(out)["processes"]
    assert root["counters"]["allocations"] > 10000
    # the supervisor saw the program die of SIGINT; under the environment the program
    # knew it was ending on KeyboardInterrupt, which CPython turns into SIGINT
    assert (root["exit"], root.get("signal")) == ("signal", "SIGINT")
    assert "ended by SIGINT" in stderr


HANDLES_SIGTERM = textwrap.dedent("""\
    import signal, sys, time
    def handler(signo, frame):
        print("handled", flush=True)
        sys.exit(7)
    signal.signal(signal.SIGTERM, handler)
    keep = [str(i) for i in range(30000)]
    print("ready", flush=True)
    while True:
        time.sleep(0.01)
    """)
IGNORES_SIGTERM_HANDLING = "import time\nkeep = [str(i) for i in range(30000)]\n" \
    "print('ready', flush=True)\nwhile True: time.sleep(0.01)\n"


@pytest.mark.parametrize("how", ["cli", "env"])
@pytest.mark.parametrize("handles", [True, False], ids=["own-handler", "default"])
def test_sigterm_keeps_its_meaning_for_the_program(tmp_path, how, handles):
    """A program that handles SIGTERM still does (its handler runs, it exits with its own
    status); one that does not still dies of it.  Both are reported."""
    import signal as _signal

    code = HANDLES_SIGTERM if handles else IGNORES_SIGTERM_HANDLING
    out = tmp_path / "r.json"
    if how == "cli":  # SIGTERM to bump-global itself: it passes it on to the program
        args = ["-m", "bump_global", "run", "--report", "--json", str(out), "-c", code]
        env: Dict[str, str] = {}
    else:
        args = ["-c", code]
        env = {**BUMP, "BUMP_GLOBAL_REPORT": "1", "BUMP_GLOBAL_JSON": str(out)}
    status, stdout, stderr = _interrupt(args, env, tmp_path, _signal.SIGTERM, whom="process")
    if handles:
        assert (status, stdout) == (7, "ready\nhandled\n"), stderr[-3000:]
    else:
        assert (status, stdout) == (-_signal.SIGTERM, "ready\n"), stderr[-3000:]
    (root,) = _report_of(out)["processes"]
    assert root["counters"]["allocations"] >= 30000
    assert (root["exit"], root.get("signal")) == (("normal", None) if handles
                                                  else ("signal", "SIGTERM"))
    assert "bump_global report" in stderr
