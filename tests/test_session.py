"""Reports of whole programs: several processes, os._exit, the CLI beside BUMP_GLOBAL=1.

Every program runs in a fresh interpreter (the allocator cannot be uninstalled).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from bump_global import _config, _report
from bump_global._config import default_size, memory_limit
from bump_global._launch import child_environment

WORKERS = """\
import multiprocessing as mp, os, sys

def work(n):
    keep = [str(i) * 3 for i in range(n)]
    return len(keep)

if __name__ == "__main__":
    parents_own = [str(i) for i in range(400000)]  # the counters a forked child inherits
    for method in sys.argv[1].split(","):
        ctx = mp.get_context(method)
        procs = [ctx.Process(target=work, args=(n,)) for n in (20000, 40000)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print(method, [p.exitcode for p in procs])
    with mp.get_context("fork").Pool(2) as pool:  # terminated at the end: SIGTERM
        print("pool", sum(pool.map(work, [1000, 2000], chunksize=1)))
"""


clean_env = child_environment


def run(args: List[str], cwd: Path, env: Optional[Dict[str, str]] = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def workers(tmp_path: Path) -> Path:
    path = tmp_path / "workers.py"
    path.write_text(WORKERS)
    return path


def check_totals(data: dict) -> None:
    records = data["processes"]
    total = data["total"]
    assert total["processes"] == len(records)
    assert total["used"] == sum(r["region"]["used"] for r in records)
    assert total["allocations"] == sum(r["counters"]["allocations"] for r in records)
    assert total["peak_rss_max"] == max(r["process"]["peak_rss"] for r in records)
    assert total["peak_rss_sum"] == sum(r["process"]["peak_rss"] for r in records)


@pytest.mark.parametrize("how", ["cli", "env"])
def test_every_worker_is_a_labelled_record_with_its_own_figures(
        tmp_path: Path, workers: Path, how: str) -> None:
    out = tmp_path / "report.json"
    plain = run([str(workers), "fork,spawn"], tmp_path)
    if how == "cli":
        ours = run(["-m", "bump_global", "run", "--report", "--json", str(out), str(workers),
                    "fork,spawn"], tmp_path)
    else:
        ours = run([str(workers), "fork,spawn"], tmp_path,
                   clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_REPORT="1",
                             BUMP_GLOBAL_JSON=str(out)))
    assert (ours.returncode, ours.stdout) == (plain.returncode, plain.stdout), ours.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == "bump_global.report/2"
    records = data["processes"]
    roles = [r["role"] for r in records if "resource_tracker" not in " ".join(r["argv"])]
    # (multiprocessing's resource tracker runs `-c "from multiprocessing.resource_tracker
    # import main; ..."`: its command as typed, on 3.9 too)
    # The root, two forked and two spawned Processes, and the pool's two forked workers
    # (the pool terminates them with SIGTERM: reported from their recorders' files);
    # multiprocessing's resource tracker outlives the root: reported as still running.
    assert roles[0] == "root" and roles.count("fork") == 4 and roles.count("spawn") == 2, roles
    assert data["missing"] == []
    assert all(r["exit"] in ("normal", "os._exit", "signal", "running") for r in records)
    root = records[0]
    assert root["counters"]["allocations"] > 400000
    for child in records[1:]:
        assert child["ppid"] == root["pid"]
        assert child["installed"] and child["argv"]
        assert child["process"]["peak_rss"] > 0
        # A forked child's figures are its own: not the 400,000 strings of its parent.
        assert child["counters"]["allocations"] < 300000
    # The Processes of each method built 60,000 strings of their own, two blocks each.
    for role in ("fork", "spawn"):
        assert sum(r["counters"]["allocations"] for r in records if r["role"] == role) > 120000
    forked = [r for r in records if r["role"] == "fork"]
    assert any(r["exit"] == "os._exit" for r in forked)  # multiprocessing ends them so
    check_totals(data)
    # The text report: one report (not one per process), every process labelled, totals.
    assert ours.stderr.count("bump_global report") == 1
    for record in records:
        assert f"{record['pid']}" in ours.stderr
    assert "total" in ours.stderr and f"{len(records)} processes" in ours.stderr


def test_forkserver_workers_are_reported(tmp_path: Path, workers: Path) -> None:
    out = tmp_path / "report.json"
    ours = run(["-m", "bump_global", "run", "--json", str(out), str(workers), "forkserver"],
               tmp_path)
    assert ours.returncode == 0, ours.stderr
    records = json.loads(out.read_text())["processes"]
    # The fork server itself is spawned; its workers are forked from it.
    servers = {r["ppid"] for r in records if r["role"] == "fork"} - {records[0]["pid"]}
    assert len([r for r in records if r["ppid"] in servers]) == 2, records


@pytest.mark.parametrize("how", ["cli", "env"])
def test_a_program_ending_with_os_exit_is_reported(tmp_path: Path, how: str) -> None:
    code = "import os; keep = [str(i) for i in range(30000)]; print('bye', flush=True); os._exit(7)"
    out = tmp_path / "r.json"
    if how == "cli":
        ours = run(["-m", "bump_global", "run", "--report", "--json", str(out), "-c", code],
                   tmp_path)
    else:
        ours = run(["-c", code], tmp_path, clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_REPORT="1",
                                                     BUMP_GLOBAL_JSON=str(out)))
    assert (ours.returncode, ours.stdout) == (7, "bye\n")
    assert ours.stderr.count("bump_global report") == 1
    (root,) = json.loads(out.read_text())["processes"]
    assert root["exit"] == "os._exit" and root["counters"]["allocations"] >= 30000


def test_a_worker_terminated_with_sigterm_is_reported_with_the_figures_of_its_end(
        tmp_path: Path) -> None:
    script = tmp_path / "terminated.py"
    script.write_text(textwrap.dedent("""\
        import multiprocessing as mp, time

        def wait(ready):
            keep = [str(i) for i in range(50000)]
            ready.set()
            time.sleep(60)

        if __name__ == "__main__":
            for method in ("fork", "spawn"):
                ctx = mp.get_context(method)
                ready = ctx.Event()
                child = ctx.Process(target=wait, args=(ready,))
                child.start()
                ready.wait(30)
                child.terminate()
                child.join()
                print(method, child.exitcode)
    """))
    out = tmp_path / "r.json"
    ours = run(["-m", "bump_global", "run", "--report", "--json", str(out), str(script)],
               tmp_path)
    # The workers die of SIGTERM as they would without bump_global, at once.
    assert (ours.returncode, ours.stdout) == (0, "fork -15\nspawn -15\n"), ours.stderr
    data = json.loads(out.read_text())
    terminated = [r for r in data["processes"] if r["exit"] == "signal"]
    assert [(r["role"], r["signal"]) for r in terminated] == [("fork", "SIGTERM"),
                                                             ("spawn", "SIGTERM")]
    for record in terminated:  # their own 50,000 strings, counted up to their end
        assert record["counters"]["allocations"] >= 50000
        assert record["region"]["used"] >= 50000 * 48
    assert data["missing"] == []
    assert ours.stderr.count(" SIGTERM ") == 2  # the processes' table says how they ended


KEEP_TUPLES = "keep = [(i, i + 1) for i in range(200000)]\n"


def test_the_cli_and_the_environment_report_the_same_frees(tmp_path: Path) -> None:
    """The CLI does not count the teardown of the target's namespace (python does
    not tear __main__ down before exit either)."""
    script = tmp_path / "keep.py"
    script.write_text(KEEP_TUPLES)
    cli_json, env_json = tmp_path / "cli.json", tmp_path / "env.json"
    assert run(["-m", "bump_global", "run", "--json", str(cli_json), str(script)],
               tmp_path).returncode == 0
    assert run([str(script)], tmp_path, clean_env(BUMP_GLOBAL="1",
                                                   BUMP_GLOBAL_JSON=str(env_json))
               ).returncode == 0
    (by_cli,) = json.loads(cli_json.read_text())["processes"]
    (by_env,) = json.loads(env_json.read_text())["processes"]
    frees = by_cli["counters"]["frees_ignored"], by_env["counters"]["frees_ignored"]
    # 600,000 blocks are kept alive (200,000 tuples and 400,000 ints): a teardown of
    # the namespace before the report would free them all.
    assert max(frees) < 100000, frees
    assert abs(frees[0] - frees[1]) < 20000, frees


def test_cli_options_win_over_an_exported_bump_global(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_REPORT="1", BUMP_GLOBAL_SIZE="2G")
    ours = run(["-m", "bump_global", "run", "--size", "1G", "--report", "--json", str(out),
                "-c", "print('ok')"], tmp_path, env)
    assert (ours.returncode, ours.stdout) == (0, "ok\n"), ours.stderr
    assert ours.stderr.count("bump_global report") == 1
    (root,) = json.loads(out.read_text())["processes"]
    assert root["config"]["size"] == 1 << 30
    # Without the option, the variable is the default.
    ours = run(["-m", "bump_global", "run", "--json", str(out), "-c", "pass"], tmp_path, env)
    assert ours.returncode == 0, ours.stderr
    assert json.loads(out.read_text())["processes"][0]["config"]["size"] == 2 << 30


def test_console_script_under_bump_global_env_installs_once(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("bump-global")
    if not script.exists():
        pytest.skip("the bump-global console script is not installed beside this python")
    out = tmp_path / "r.json"
    proc = subprocess.run([str(script), "run", "--size", "1G", "--json", str(out), "-c",
                           "print('ok')"], cwd=tmp_path, capture_output=True, text=True,
                          env=clean_env(BUMP_GLOBAL="1"), timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")
    assert json.loads(out.read_text())["processes"][0]["config"]["size"] == 1 << 30


@pytest.mark.parametrize(("args", "env", "names", "hint"), [
    (["--size", "-5G"], {}, "--size '-5G'", "expected a number of bytes"),
    (["--size", "lots"], {}, "--size 'lots'", "'512M'"),
    (["--gc", "never"], {}, "--gc 'never'", "'relaxed'"),
    ([], {"BUMP_GLOBAL_SIZE": "lots"}, "BUMP_GLOBAL_SIZE='lots'", "unset the variable"),
    (["--sample", "10"], {}, "--sample MS and --timeline FILE", "give both"),
])
def test_bad_run_options_are_one_line_naming_what_was_set(
        tmp_path: Path, args: List[str], env: Dict[str, str], names: str, hint: str) -> None:
    ours = run(["-m", "bump_global", "run", *args, "-c", "print('ran')"], tmp_path,
               clean_env(**env))
    assert ours.returncode == 2 and ours.stdout == ""
    (line,) = ours.stderr.splitlines()
    assert line.startswith("bump-global: error: ") and names in line and hint in line, line


def test_a_size_too_large_to_reserve_names_the_variable_and_the_limit(tmp_path: Path) -> None:
    ours = run(["-c", "print('ran')"], tmp_path,
               clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE="100000T"))
    assert (ours.returncode, ours.stdout) == (0, "ran\n")
    (line,) = ours.stderr.splitlines()
    assert "BUMP_GLOBAL_SIZE" in line and "BUMP_GLOBAL='1'" not in line, line
    assert "size='" not in line and "ulimit" not in line, line
    assert line.count("Cannot allocate memory") <= 1, line
    assert "at most" in line and "not installed" in line, line


def test_compare_errors_use_the_one_prefix(tmp_path: Path) -> None:
    ours = run(["-m", "bump_global", "compare", "--runs", "1", "no_such_script.py"], tmp_path)
    assert ours.returncode == 2
    assert ours.stderr.startswith("bump-global: error: "), ours.stderr


def test_default_budget_is_half_of_the_memory_and_info_says_so(tmp_path: Path) -> None:
    limit, source = memory_limit()
    assert limit is not None and limit > 0
    size, why = default_size()
    assert size == min(1 << 40, (limit // 2) >> 20 << 20) and "half of" in why
    ours = run(["-m", "bump_global", "info", "--json"], tmp_path)
    info = json.loads(ours.stdout)
    assert info["default_size"] == size and info["memory"] == limit


def test_the_histogram_counts_zero_byte_requests_apart() -> None:
    rows = [(0, 5, 0), (1, 2, 2), (16, 3, 40)]
    lines = _report.format_histogram(rows)
    assert lines[1].split()[:3] == ["0", "B", "5"]
    assert lines[2].split()[:3] == ["1", "B", "2"]


def test_the_tree_peak_of_a_merged_timeline() -> None:
    rows = [(1, 0.0, 0, 0, 100), (2, 0.05, 0, 0, 50), (1, 0.1, 0, 0, 120),
            (2, 0.1, 0, 0, 60), (1, 0.2, 0, 0, 90)]
    assert _report.timeline_tree_peak(rows) == 180
    # A process whose last sample is past no longer counts.
    assert _report.timeline_tree_peak([(1, 0.0, 0, 0, 100), (2, 0.1, 0, 0, 10)]) == 100


def test_a_report_after_the_region_filled_finishes(tmp_path: Path) -> None:
    """The report, and whatever it imports, runs with the region full under
    on_exhausted='error': it finishes, with the program's exit status, and says so."""
    out = tmp_path / "r.json"
    code = "x = [str(i) for i in range(10**7)]"
    ours = run(["-m", "bump_global", "run", "--size", "64M", "--on-exhausted", "error",
                "--report", "--json", str(out), "-c", code], tmp_path, timeout=60)
    assert ours.returncode == 1 and "MemoryError" in ours.stderr
    assert "the region was full" in ours.stderr
    (root,) = json.loads(out.read_text())["processes"]
    assert root["region"]["full"] is True and root["counters"]["failed_allocations"] > 0


@pytest.mark.parametrize("how", ["env", "api"])
def test_a_report_after_the_region_filled_finishes_on_every_path(tmp_path: Path,
                                                                 how: str) -> None:
    if how == "env":
        code = "x = [str(i) for i in range(10**7)]"
        env = clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE="64M",
                        BUMP_GLOBAL_ON_EXHAUSTED="error", BUMP_GLOBAL_REPORT="1")
        status = 1
    else:
        code = textwrap.dedent("""\
            import bump_global
            bump_global.install("64M", on_exhausted="error")
            keep = []
            try:
                for i in range(10**7):
                    keep.append(str(i))
            except MemoryError:
                pass
            text = bump_global.report()
            print("the region was full" in text)
        """)
        env = clean_env()
        status = 0
    ours = run(["-c", code], tmp_path, env, timeout=60)
    assert ours.returncode == status, ours.stderr[-2000:]
    if how == "env":
        assert "the region was full" in ours.stderr
    else:
        assert ours.stdout == "True\n"


# ------------------------------------------------------------------ outputs checked first


@pytest.mark.parametrize(("option", "extra"), [("--json", []),
                                               ("--timeline", ["--sample", "10"])])
def test_an_output_that_cannot_be_written_stops_run_before_the_program(
        tmp_path: Path, option: str, extra: List[str]) -> None:
    marker = tmp_path / "ran"
    ours = run(["-m", "bump_global", "run", *extra, option, "/proc/out.file", "-c",
                f"open({str(marker)!r}, 'w').close()"], tmp_path)
    assert ours.returncode == 2 and ours.stdout == ""
    (line,) = ours.stderr.splitlines()
    assert line.startswith(f"bump-global: error: {option} '/proc/out.file': cannot be written"), \
        line
    assert "write elsewhere" in line
    assert not marker.exists(), "the program ran"


@pytest.mark.parametrize(("variable", "extra"), [
    ("BUMP_GLOBAL_JSON", {}), ("BUMP_GLOBAL_TIMELINE", {"BUMP_GLOBAL_SAMPLE": "10"})])
def test_an_output_variable_that_cannot_be_written_is_one_line_and_the_program_runs(
        tmp_path: Path, variable: str, extra: Dict[str, str]) -> None:
    ours = run(["-c", "print('ran')"], tmp_path,
               clean_env(BUMP_GLOBAL="1", **{variable: "/proc/out.file"}, **extra))
    assert (ours.returncode, ours.stdout) == (0, "ran\n")
    (line,) = ours.stderr.splitlines()
    assert f"{variable}='/proc/out.file'" in line and "nothing is written there" in line, line


@pytest.mark.parametrize(("status", "expected"), [(0, 1), (3, 3)])
def test_an_output_that_fails_at_the_end_is_one_line_and_a_failing_status(
        tmp_path: Path, status: int, expected: int) -> None:
    """The JSON's directory is removed while the program runs: the report is still
    printed, one line says the JSON could not be written, and bump-global's status says
    it failed (1 if the program's was 0; the program's own otherwise)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    code = f"import shutil, sys; shutil.rmtree({str(gone)!r}); print('ran'); sys.exit({status})"
    ours = run(["-m", "bump_global", "run", "--report", "--json", str(gone / "r.json"),
                "-c", code], tmp_path)
    assert (ours.returncode, ours.stdout) == (expected, "ran\n"), ours.stderr
    assert "bump_global report" in ours.stderr  # the text report is still there
    failures = [line for line in ours.stderr.splitlines() if "r.json" in line]
    assert len(failures) == 1 and failures[0].startswith(
        f"bump-global: error: --json/BUMP_GLOBAL_JSON {str(gone / 'r.json')!r}: cannot "
        "write the JSON report there (No such file or directory); it is in "), failures
    # the figures are not lost: the JSON is where the line says
    rescued = Path(failures[0].rsplit(" it is in ", 1)[1].rsplit(" instead", 1)[0])
    try:
        data = json.loads(rescued.read_text())
        assert data["schema"] == "bump_global.report/2" and data["processes"]
    finally:
        rescued.unlink()


# ------------------------------------------------------------------ naming what was set


@pytest.mark.parametrize(("args", "env", "named", "not_named"), [
    ([], {"BUMP_GLOBAL_SIZE": "100000T"}, "BUMP_GLOBAL_SIZE", "--size"),
    (["--size", "100000T"], {}, "--size", "BUMP_GLOBAL_SIZE"),
])
def test_a_size_too_large_for_run_names_where_it_was_set(
        tmp_path: Path, args: List[str], env: Dict[str, str], named: str,
        not_named: str) -> None:
    ours = run(["-m", "bump_global", "run", *args, "-c", "print('ran')"], tmp_path,
               clean_env(**env))
    assert ours.returncode == 2 and ours.stdout == ""
    (line,) = ours.stderr.splitlines()
    assert f"({named})" in line and f"try a smaller size with {named}" in line, line
    assert not_named not in line and "at most" in line, line


def test_a_root_started_with_dash_m_keeps_the_module_in_its_command(tmp_path: Path) -> None:
    """run -m PACKAGE: the JSON's argv and the text's label are the command as typed."""
    package = tmp_path / "tool"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent("""\
        import subprocess, sys
        subprocess.run([sys.executable, "-c", "print('child')"], check=True)
        print("tool", sys.argv[1:])
    """))
    out = tmp_path / "r.json"
    ours = run(["-m", "bump_global", "run", "--report", "--json", str(out), "-m", "tool",
                "--flag", "x"], tmp_path)
    assert (ours.returncode, ours.stdout) == (0, "child\ntool ['--flag', 'x']\n"), ours.stderr
    root, child = json.loads(out.read_text())["processes"]
    assert root["argv"] == ["-m", "tool", "--flag", "x"]
    # (3.9 has no sys.orig_argv: a spawned child knows only "-c" of its command)
    assert child["argv"] == ["-c", "print('child')"] or (sys.version_info < (3, 10)
                                                         and child["argv"] == ["-c"])
    assert f"process {root['pid']} (root): -m tool --flag x" in ours.stderr, ours.stderr


def test_the_processes_table_keeps_what_tells_long_commands_apart(tmp_path: Path) -> None:
    """Children whose commands share a long prefix (scripts deep in one directory): each
    line of the table keeps the head and the tail of its command (where they differ),
    not one common prefix."""
    deep = tmp_path.joinpath(*["a_rather_long_directory_name"] * 4)
    deep.mkdir(parents=True)
    for k in range(4):
        (deep / f"child_{k}.py").write_text("print('child')\n")
    script = tmp_path / "many.py"
    script.write_text(textwrap.dedent(f"""\
        import subprocess, sys
        for k in range(4):
            subprocess.run([sys.executable, {str(deep)!r} + f"/child_{{k}}.py", "--flag"],
                           check=True)
    """))
    ours = run(["-m", "bump_global", "run", "--report", str(script)], tmp_path)
    assert ours.returncode == 0, ours.stderr
    table = ours.stderr.split("  processes ", 1)[1].split("  total ", 1)[0].splitlines()[1:]
    children = [line for line in table if " spawn " in line]
    assert len(children) == 4, ours.stderr
    head = str(tmp_path)[:10]
    commands = [line[line.index(head):] for line in children]  # the last column
    assert len(set(commands)) == 4, commands  # told apart
    for k, command in enumerate(commands):
        assert "..." in command, command
        assert command.endswith(f"child_{k}.py --flag"), command


# ------------------------------------------------------------------ rows that read right


def test_used_past_the_budget_says_it_is_the_emergency_reserve() -> None:
    mib = 1 << 20
    assert _report._used_cell(32 * mib, 64 * mib) == "32.0 MiB used (50.0%)"
    cell = _report._used_cell(64 * mib + 100 * 1024, 64 * mib)
    assert cell.startswith("64.1 MiB used (100.2%: 100.0 KiB beyond the budget, from the "
                           "emergency reserve"), cell
    assert "on_exhausted='error'" in cell


def test_the_prefault_row_never_reads_as_a_size_larger_than_what_was_taken() -> None:
    mib = 1 << 20
    assert _report._prefault_cell(0, 10 * mib) == ""
    assert _report._prefault_cell(10 * mib, 65 * mib).startswith("10.0 MiB faulted in ahead")
    cell = _report._prefault_cell(70 * mib, 65 * mib)
    assert cell.startswith("70.0 MiB faulted in ahead, more than the 65.0 MiB taken: the "
                           "helper thread's window"), cell


def test_a_full_region_reports_rows_within_the_region(tmp_path: Path) -> None:
    """A 64 MiB region filled under on_exhausted="error": no row gives a size larger than
    the region without saying what it is."""
    out = tmp_path / "r.json"
    ours = run(["-m", "bump_global", "run", "--size", "64M", "--on-exhausted", "error",
                "--report", "--json", str(out), "-c", "x = [str(i) for i in range(10**7)]"],
               tmp_path, timeout=60)
    assert ours.returncode == 1 and "MemoryError" in ours.stderr
    (root,) = json.loads(out.read_text())["processes"]
    region = root["region"]
    assert region["full"] and region["used"] <= region["reserved"] + (4 << 20)
    rows = {line.split()[0]: line for line in ours.stderr.splitlines()
            if line.startswith("  ") and line.split()}
    used = _report._used_cell(region["used"], region["reserved"])
    assert used in rows["region"]
    prefaulted = root["counters"]["bytes_prefaulted"]
    if "prefault" in rows:
        assert rows["prefault"].split(None, 1)[1] == _report._prefault_cell(
            prefaulted, region["consumed"])


# ------------------------------------------------------------------ the smallest region


@pytest.mark.parametrize("how", ["run", "env", "api"])
def test_the_smallest_region_runs_a_program_its_report_and_its_timeline(
        tmp_path: Path, how: str) -> None:
    """MIN_SIZE under on_exhausted="error": the program, the report, the JSON and a
    sampled timeline all fit (scripts/min_size.py measures what each way needs)."""
    size = str(_config.MIN_SIZE)
    if how == "run":
        ours = run(["-m", "bump_global", "run", "--size", size, "--on-exhausted", "error",
                    "--report", "--json", "r.json", "--sample", "10", "--timeline", "t.csv",
                    "-c", "print(1)"], tmp_path)
    elif how == "env":
        ours = run(["-c", "print(1)"], tmp_path, clean_env(
            BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE=size, BUMP_GLOBAL_ON_EXHAUSTED="error",
            BUMP_GLOBAL_REPORT="1", BUMP_GLOBAL_JSON="r.json"))
    else:
        ours = run(["-c", f"import bump_global; bump_global.install({size}, "
                          "on_exhausted='error'); print(1); bump_global.report()"], tmp_path)
    assert (ours.returncode, ours.stdout) == (0, "1\n"), ours.stderr
    assert "Traceback" not in ours.stderr and "MemoryError" not in ours.stderr, ours.stderr
    if how != "api":
        assert "bump_global report" in ours.stderr
        (root,) = json.loads((tmp_path / "r.json").read_text())["processes"]
        assert root["config"]["size"] == _config.MIN_SIZE
    if how == "run":
        assert len((tmp_path / "t.csv").read_text().splitlines()) > 1


@pytest.mark.parametrize("how", ["run", "env"])
def test_one_byte_below_the_smallest_region_is_refused_in_one_line(
        tmp_path: Path, how: str) -> None:
    below = str(_config.MIN_SIZE - 1)
    if how == "run":
        ours = run(["-m", "bump_global", "run", "--size", below, "-c", "print('ran')"],
                   tmp_path)
        assert ours.returncode == 2 and ours.stdout == ""
        named = f"--size '{below}'"
    else:
        ours = run(["-c", "print('ran')"], tmp_path,
                   clean_env(BUMP_GLOBAL="1", BUMP_GLOBAL_SIZE=below))
        assert (ours.returncode, ours.stdout) == (0, "ran\n")  # runs, not installed
        named = f"BUMP_GLOBAL_SIZE='{below}'"
    (line,) = ours.stderr.splitlines()
    assert named in line and f"at least {_config.MIN_SIZE >> 20}M" in line, line
    assert "cannot hold what the interpreter allocates after the install" in line, line


def test_every_output_that_fails_at_the_end_is_kept_in_the_temporary_directory(
        tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (f"import shutil; shutil.rmtree({str(gone)!r}); "
            "data = [str(i) * 20 for i in range(200000)]")
    ours = run(["-m", "bump_global", "run", "--sample", "5", "--timeline", str(gone / "t.csv"),
                "--flamegraph", str(gone / "f.html"), "--json", str(gone / "r.json"),
                "-c", code], tmp_path)
    assert ours.returncode == 1, ours.stderr
    lines = ours.stderr.splitlines()
    assert len(lines) == 3, lines
    rescued = {}
    for line in lines:
        flag = line.split()[2].split("/")[0]
        rescued[flag] = Path(line.rsplit(" it is in ", 1)[1].rsplit(" instead", 1)[0])
    try:
        assert rescued["--timeline"].suffix == ".csv"
        assert rescued["--timeline"].read_text().startswith("time_s,")
        assert "<html" in rescued["--flamegraph"].read_text().lower()
        assert json.loads(rescued["--json"].read_text())["processes"]
    finally:
        for path in rescued.values():
            path.unlink()
