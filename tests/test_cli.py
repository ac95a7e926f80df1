"""The bump-global command line, driven in subprocesses (python -m bump_global)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

from bump_global import _config
from bump_global._launch import child_environment
from bump_global._runner import Target, split_run_args

SHOW = """\
import json, os, sys
print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "name": __name__,
                  "file": globals().get("__file__"), "cwd": os.getcwd()}))
"""


def _env() -> Dict[str, str]:
    return child_environment()


def python(*args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """`python ARGS` (the reference behaviour)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=_env(), cwd=cwd, timeout=60)


def cli(*args: str, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """`bump-global ARGS`."""
    return python("-m", "bump_global", *args, cwd=cwd)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with a script, a module, a package with __main__ and a failing script."""
    write(tmp_path / "sub" / "show.py", SHOW)
    write(tmp_path / "showmod.py", SHOW)
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "__main__.py", SHOW)
    write(tmp_path / "pkg" / "tool.py", SHOW)
    write(tmp_path / "fail.py", """\
        def inner():
            return 1 / 0
        print("before")
        inner()
        """)
    return tmp_path


# ------------------------------------------------------------ running like python


@pytest.mark.parametrize("target", [
    ["sub/show.py", "a", "--report", "-m", "x"],
    ["-m", "showmod", "b", "--json", "f"],
    ["-m", "pkg", "c"],
    ["-m", "pkg.tool", "d", "-c"],
    ["-c", SHOW, "e", "--size", "1"],
])
def test_target_sees_what_python_gives(project: Path, target: Sequence[str]) -> None:
    plain = python(*target, cwd=project)
    ours = cli("run", *target, cwd=project)
    assert plain.returncode == 0, plain.stderr
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, plain.stdout, "")
    seen = json.loads(ours.stdout)
    assert seen["name"] == "__main__"
    assert seen["argv"][1:] == list(target[2 if target[0] in ("-m", "-c") else 1:])


def test_script_given_with_an_absolute_path_and_a_symlink(project: Path) -> None:
    link = project / "link.py"
    link.symlink_to(project / "sub" / "show.py")
    for script in (str(project / "sub" / "show.py"), "link.py"):
        plain = python(script, "z", cwd=project)
        ours = cli("run", script, "z", cwd=project)
        assert (ours.returncode, ours.stdout) == (0, plain.stdout)


def test_console_script_entry_point(project: Path) -> None:
    # What pip generates for [project.scripts]: its own directory is sys.path[0].
    wrapper = write(project / "bin" / "bump-global", """\
        import sys
        from bump_global.commands import main
        if __name__ == "__main__":
            sys.exit(main())
        """)
    for target in (["sub/show.py", "a"], ["-m", "pkg.tool", "b"], ["-c", SHOW, "c"]):
        plain = python(*target, cwd=project)
        ours = python(str(wrapper), "run", *target, cwd=project)
        assert (ours.returncode, ours.stdout, ours.stderr) == (0, plain.stdout, "")


def test_module_traceback_has_no_frames_of_ours(project: Path) -> None:
    ours = cli("run", "-m", "fail", cwd=project)
    assert (ours.returncode, ours.stdout) == (1, "before\n")
    frames = [line for line in ours.stderr.splitlines() if line.startswith("  File ")]
    assert len(frames) == 2 and all("fail.py" in line for line in frames), ours.stderr


def test_directory_and_zip_file_with_main(project: Path) -> None:
    import zipfile

    with zipfile.ZipFile(project / "app.zip", "w") as archive:
        archive.writestr("__main__.py", SHOW)
    for target in ("pkg", "app.zip"):
        plain = python(target, "q", cwd=project)
        ours = cli("run", target, "q", cwd=project)
        assert (ours.returncode, ours.stdout, ours.stderr) == (0, plain.stdout, "")
        assert json.loads(ours.stdout)["argv"] == [target, "q"]


def test_options_after_the_target_belong_to_the_target(project: Path) -> None:
    ours = cli("run", "--report", "sub/show.py", "--report", cwd=project)
    assert json.loads(ours.stdout)["argv"] == ["sub/show.py", "--report"]
    assert ours.stderr.count("bump_global report") == 1


# ---------------------------------------------------------------------- exit codes


def test_uncaught_exception_exits_1_with_the_target_traceback(project: Path) -> None:
    plain = python("fail.py", cwd=project)
    ours = cli("run", "fail.py", cwd=project)
    assert (ours.returncode, ours.stdout) == (1, plain.stdout) == (1, "before\n")
    assert ours.stderr.startswith("Traceback (most recent call last):")
    assert ours.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "in inner" in ours.stderr
    # Our own frames (the CLI, runpy) are trimmed: the traceback is the script's.
    assert ours.stderr == plain.stderr
    assert "cli.py" not in ours.stderr and "runpy" not in ours.stderr


@pytest.mark.parametrize("code, status, stderr", [
    ("import sys; sys.exit(7)", 7, ""),
    ("import sys; sys.exit(0)", 0, ""),
    ("import sys; sys.exit()", 0, ""),
    ("raise SystemExit('goodbye')", 1, "goodbye\n"),
    ("import sys; sys.exit(None)", 0, ""),
])
def test_exit_status_as_python(code: str, status: int, stderr: str) -> None:
    plain = python("-c", code)
    ours = cli("run", "-c", code)
    assert (plain.returncode, plain.stderr) == (status, stderr)
    assert (ours.returncode, ours.stdout, ours.stderr) == (status, "", stderr)


def test_keyboard_interrupt_as_python() -> None:
    code = "raise KeyboardInterrupt"
    plain, ours = python("-c", code), cli("run", "-c", code)
    assert ours.returncode == plain.returncode != 0
    assert ours.stderr == plain.stderr


def test_syntax_error_in_the_target_is_the_target_failure(tmp_path: Path) -> None:
    write(tmp_path / "bad.py", "x = (\n")
    ours = cli("run", "bad.py", cwd=tmp_path)
    assert ours.returncode == 1
    assert "SyntaxError" in ours.stderr and "bad.py" in ours.stderr


# ------------------------------------------------------------------ report and JSON


def test_no_report_unless_asked(project: Path) -> None:
    assert cli("run", "sub/show.py", cwd=project).stderr == ""


@pytest.mark.parametrize("code, status", [
    ("print('out')", 0),
    ("print('out'); import sys; sys.exit(3)", 3),
    ("print('out'); raise ValueError('bad')", 1),
])
def test_report_and_json_in_every_exit_path(tmp_path: Path, code: str, status: int) -> None:
    out = tmp_path / "report.json"
    ours = cli("run", "--report", "--json", str(out), "-c", code)
    assert (ours.returncode, ours.stdout) == (status, "out\n")
    assert "bump_global report" in ours.stderr
    if status == 1:  # the report comes after the traceback
        assert ours.stderr.index("ValueError: bad") < ours.stderr.index("bump_global report")
    data = json.loads(out.read_text())
    assert data["schema"] == "bump_global.report/2"
    for key in ("python", "platform", "processes", "total"):
        assert key in data
    (root,) = data["processes"]
    assert (root["role"], root["exit"]) == ("root", "normal") and root["pid"] > 0
    assert root["installed"] is True
    assert root["wall_time_s"] >= 0
    assert root["config"]["scope"] == "python"
    assert root["region"]["used"] > 0 and root["region"]["full"] is False
    for key in ("counters", "process", "histogram"):
        assert key in root
    assert data["total"]["used"] == root["region"]["used"]


def test_run_options_reach_install(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    ours = cli("run", "--size", "64M", "--scope", "objects", "--on-exhausted", "error",
               "--histogram", "--no-prefault", "--no-huge-pages", "--gc", "off",
               "--reclaim", "classes", "--json", str(out),
               "-c", "x = [str(i) for i in range(1000)]")
    assert ours.returncode == 0, ours.stderr
    (data,) = json.loads(out.read_text())["processes"]
    assert data["config"] == {"scope": "objects", "on_exhausted": "error",
                              "size": 64 << 20, "histogram": True, "prefault": False,
                              "huge_pages": False, "gc": "off", "reclaim": "classes",
                              "numpy": False, "sites": False,
                              "sites_rate": _config.OPTIONS["sites_rate"].default}
    assert data["histogram"]
    assert data["counters"]["frees_reclaimed"] > 0


# ------------------------------------------------------------------------ timeline


GROW = """\
import time
t, keep = time.perf_counter(), []
while time.perf_counter() - t < 0.5:
    keep.append(str(len(keep)) * 20)
"""


def test_timeline_csv_grows_with_the_workload(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    ours = cli("run", "--sample", "10", "--timeline", str(out), "-c", GROW)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, "", "")
    with out.open() as src:
        reader = csv.DictReader(src)
        assert reader.fieldnames == ["time_s", "used_bytes", "region_resident_bytes",
                                     "rss_bytes", "pid", "role", "command"]
        rows = list(reader)
    assert {(r["role"], r["command"]) for r in rows} == {
        ("root", "-c " + GROW.replace("\n", "\\n"))}
    assert len(rows) >= 10
    times = [float(r["time_s"]) for r in rows]
    used = [int(r["used_bytes"]) for r in rows]
    assert times == sorted(times) and times[-1] >= 0.4
    assert all(a <= b for a, b in zip(used, used[1:]))
    assert used[-1] > used[0] + (1 << 20)
    assert all(int(r["rss_bytes"]) > 0 and int(r["region_resident_bytes"]) > 0 for r in rows)


def test_timeline_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    ours = cli("run", "--sample", "5", "--timeline", str(out), "-c",
               "import time, sys; time.sleep(0.1); sys.exit(4)")
    assert ours.returncode == 4
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) >= 5
    assert set(records[0]) == {"time_s", "used_bytes", "region_resident_bytes", "rss_bytes",
                               "pid", "role", "command"}


# ---------------------------------------------------------------------- bad input


@pytest.fixture
def bad_inputs(tmp_path: Path) -> Path:
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    write(tmp_path / "ok.py", "print('must not run')\n")
    # A package without __main__ of our own: the standard library's change (3.14 gave
    # json one).
    write(tmp_path / "plainpkg" / "__init__.py", "")
    return tmp_path


@pytest.mark.parametrize("args, words", [
    (["run", "--size", "12X", "ok.py"], "--size"),
    (["run", "--size", "100", "ok.py"], "--size"),
    (["run", "--scope", "everything", "ok.py"], "--scope"),
    (["run", "--on-exhausted", "crash", "ok.py"], "--on-exhausted"),
    (["run", "missing.py"], "no such script"),
    (["run", "empty_dir"], "directory without __main__.py"),
    (["run", "blob.bin"], "not a Python script"),
    (["run", "-m", "no_such_module_anywhere"], "no module named"),
    (["run", "-m", "plainpkg"], "package without a __main__"),
    (["run", "-m"], "-m MODULE"),
    (["run", "--sample", "10", "ok.py"], "--timeline"),
    (["run", "--timeline", "t.csv", "ok.py"], "--sample"),
    (["run", "--sample", "-5", "--timeline", "t.csv", "ok.py"], "positive"),
    (["run", "--sample", "0", "--timeline", "t.csv", "ok.py"], "positive"),
    (["run", "--json", "no/such/dir/r.json", "ok.py"], "does not exist"),
    (["run", "--bogus", "ok.py"], "unrecognized"),
    (["run"], "nothing to run"),
    ([], "no command"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_status_2(bad_inputs: Path, args: Sequence[str],
                                            words: str) -> None:
    ours = cli(*args, cwd=bad_inputs)
    assert ours.returncode == 2
    assert ours.stdout == ""
    lines = ours.stderr.splitlines()
    assert len(lines) == 1, ours.stderr
    assert lines[0].startswith("bump-global: error: ")
    assert words in lines[0]


def test_install_refusal_is_one_line_and_status_2(bad_inputs: Path) -> None:
    ours = python("-X", "tracemalloc", "-m", "bump_global", "run", "ok.py", cwd=bad_inputs)
    assert (ours.returncode, ours.stdout) == (2, "")
    assert len(ours.stderr.splitlines()) == 1
    assert "tracemalloc" in ours.stderr


# ------------------------------------------------------------------------- compare


def test_compare_is_wired() -> None:
    ours = cli("compare", "--help")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.startswith("usage: bump-global compare")


# ---------------------------------------------------------------------------- info


INFO_KEYS = ["bump_global", "platform", "python", "implementation", "build", "pythonmalloc",
             "page_size", "memory", "default_size", "transparent_hugepages",
             "overcommit_memory", "max_region",
             "jemalloc", "mimalloc"]


def test_info_text() -> None:
    ours = cli("info")
    assert ours.returncode == 0, ours.stderr
    keys = [line.split(":", 1)[0] for line in ours.stdout.splitlines()]
    assert keys == INFO_KEYS
    columns = {line.index(": ") + 1 + len(line[line.index(": ") + 1:]) -
               len(line[line.index(": ") + 1:].lstrip()) for line in ours.stdout.splitlines()}
    assert len(columns) == 1  # values are aligned


def test_info_json() -> None:
    ours = cli("info", "--json")
    assert ours.returncode == 0, ours.stderr
    data = json.loads(ours.stdout)
    assert list(data) == INFO_KEYS
    assert data["build"] in ("GIL", "free-threaded")
    assert data["page_size"] > 0
    if sys.platform.startswith("linux"):
        assert data["max_region"] >= 1 << 30


def test_info_probe_does_not_leak_address_space() -> None:
    code = """\
        from bump_global._platform import largest_region
        first = largest_region()
        for _ in range(3):
            again = largest_region()
        assert abs(again - first) < (1 << 30), (first, again)
        """
    proc = python("-c", textwrap.dedent(code))
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------ argument split


@pytest.mark.parametrize("args, own, target", [
    (["x.py", "--report"], [], Target("script", "x.py", ["--report"])),
    (["--size", "2G", "--report", "x.py", "a"], ["--size", "2G", "--report"],
     Target("script", "x.py", ["a"])),
    (["--size=2G", "-m", "pkg.mod", "-c", "z"], ["--size=2G"],
     Target("module", "pkg.mod", ["-c", "z"])),
    (["-mpkg", "a"], [], Target("module", "pkg", ["a"])),
    (["-c", "print(1)", "-m"], [], Target("code", "print(1)", ["-m"])),
    (["--json", "r.json", "--", "-weird.py", "a"], ["--json", "r.json"],
     Target("script", "-weird.py", ["a"])),
    (["--report"], ["--report"], None),
])
def test_split_run_args(args: Sequence[str], own: Sequence[str],
                        target: Optional[Target]) -> None:
    assert split_run_args(args) == (own, target)
