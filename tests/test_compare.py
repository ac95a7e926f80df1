"""The compare subcommand: paired runs of a script under several allocators.

compare never installs the allocator in its own process (it only spawns
children), so most tests call it in-process.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from bump_global import _compare

REPO = Path(__file__).resolve().parents[1]


def write_script(directory: Path, code: str, name: str = "tiny.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(code))
    return path


def compare(argv: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="bump-global compare")
    _compare.add_arguments(parser)
    code = _compare.run(parser.parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> dict:
    """allocator -> the cells of its row in the table compare printed."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("allocator"))
    return {line.split()[0]: line.split() for line in lines[start + 1:] if line.strip()}


@pytest.fixture
def no_preload_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compare, "find_preload_libraries",
                        lambda: {"jemalloc": None, "mimalloc": None})


def test_table_of_two_allocators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, "print('hello from the script')\n")
    code, out, err = compare(["--runs", "2", "--allocators", "pymalloc,malloc", str(script)],
                             capsys)
    assert code == 0, err
    rows = table_rows(out)
    assert list(rows) == ["pymalloc", "malloc"]
    assert rows["pymalloc"][-3:] == ["1.00", "1.00", "1.00"]
    for cells in rows.values():
        # time, min-max time, CPU time, peak RSS, then three ratios
        assert cells[2] == "s" and cells[4] == "s" and cells[6] == "s" and cells[8] == "MiB"
        assert 0 < float(cells[5]) < 10  # CPU seconds of a bare Python
        assert 1 < float(cells[7]) < 1000  # median peak RSS of a bare Python, MiB
        assert len(cells) == 12
    assert re.search(r"tiny.py: 2 rounds, each allocator once per round in a shuffled order "
                     r"\(--seed \d+\)", out)
    # the script's output is discarded, progress goes to stderr only
    assert "hello from the script" not in out
    assert re.search(r"\[4/4\] run 2/2 \w+: [\d.]+ s, CPU [\d.]+ s, peak RSS", err)
    assert "[1/4]" not in out and "run 1/2" not in out


def run_order(err: str) -> List[Tuple[int, str]]:
    """(round, allocator) of every run, in the order the runs happened."""
    return [(int(r), a) for r, a in re.findall(r"\] run (\d+)/\d+ ([\w+-]+):", err)]


def announced_orders(err: str) -> Dict[int, List[str]]:
    """round -> the order compare announced for it."""
    return {int(r): order.split(", ")
            for r, order in re.findall(r"round (\d+)/\d+ order: (.*)", err)}


def test_each_round_runs_every_allocator_once_in_the_recorded_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, "pass\n")
    code, out, err = compare(["--runs", "4", "--seed", "11", "--allocators",
                              "malloc,pymalloc,pymalloc+gc", str(script)], capsys)
    assert code == 0, err
    orders = announced_orders(err)
    assert sorted(orders) == [1, 2, 3, 4]
    runs = run_order(err)
    for round_index, order in orders.items():
        assert sorted(order) == ["malloc", "pymalloc", "pymalloc+gc"]
        assert [a for r, a in runs if r == round_index] == order
    assert [r for r, _ in runs] == sorted(r for r, _ in runs)  # round after round
    assert [orders[r] for r in (1, 2, 3, 4)] == _compare.round_orders(
        ["malloc", "pymalloc", "pymalloc+gc"], 4, 11)
    assert "(--seed 11)" in out


def test_seed_repeats_the_orders_and_orders_vary() -> None:
    names = ["pymalloc", "malloc", "jemalloc", "mimalloc", "bump"]
    first = _compare.round_orders(names, 20, 3)
    assert first == _compare.round_orders(names, 20, 3)
    assert all(sorted(order) == sorted(names) for order in first)
    assert len({tuple(order) for order in first}) > 1
    assert first != _compare.round_orders(names, 20, 4)


def test_gc_policy_peer_runs_with_the_relaxed_thresholds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "thresholds.txt"
    script = write_script(tmp_path, """\
        import gc, sys
        with open(sys.argv[1], "a") as f:
            f.write(" ".join(map(str, gc.get_threshold())) + "\\n")
        """)
    code, out, err = compare(["--runs", "1", "--allocators", "pymalloc", "--gc-policy",
                              str(script), str(record)], capsys)
    assert code == 0, err
    import gc

    from bump_global._gc import collector_is_incremental, relaxed_thresholds

    before = gc.get_threshold()
    relaxed = relaxed_thresholds(before, collector_is_incremental(gc))
    assert sorted(record.read_text().splitlines()) == sorted(
        [" ".join(map(str, before)), " ".join(map(str, relaxed))])
    rows = table_rows(out)
    assert list(rows) == ["pymalloc", "pymalloc+gc"]
    assert out.splitlines()[1].split()[-3:] == ["time", "/", "pymalloc+gc"]
    assert rows["pymalloc+gc"][-1] == "1.00"  # its time ratio to itself
    assert len(rows["pymalloc"]) == 13


def test_show_output_and_script_arguments(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = write_script(tmp_path, "import sys\nprint('args', sys.argv[1:])\n")
    argv = ["--runs", "1", "--allocators", "pymalloc", "--show-output", str(script),
            "--runs", "x", "-v"]
    code, out, err = compare(argv, capfd)
    assert code == 0, err
    assert "args ['--runs', 'x', '-v']" in out  # options after SCRIPT belong to it
    argv.remove("--show-output")
    code, out, err = compare(argv, capfd)
    assert code == 0, err
    assert "args" not in out


def test_child_environment_is_stripped_and_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "env.txt"
    script = write_script(tmp_path, """\
        import os, sys
        names = ("PYTHONMALLOC", "LD_PRELOAD", "BUMP_GLOBAL_COMMIT", "KEEP_ME")
        with open(sys.argv[1], "a") as f:
            f.write(" ".join(f"{n}={os.environ.get(n, '-')}" for n in names) + "\\n")
        """)
    monkeypatch.setenv("PYTHONMALLOC", "debug")
    monkeypatch.setenv("BUMP_GLOBAL_COMMIT", "incremental")
    monkeypatch.setenv("KEEP_ME", "yes")
    code, _, err = compare(["--runs", "1", "--allocators", "pymalloc,malloc", str(script),
                            str(record)], capsys)
    assert code == 0, err
    assert sorted(record.read_text().splitlines()) == [
        "PYTHONMALLOC=- LD_PRELOAD=- BUMP_GLOBAL_COMMIT=- KEEP_ME=yes",
        "PYTHONMALLOC=malloc LD_PRELOAD=- BUMP_GLOBAL_COMMIT=- KEEP_ME=yes",
    ]


def test_preload_environment() -> None:
    libs = {"jemalloc": "/some/libjemalloc.so.2", "mimalloc": None}
    command, extra = _compare.command_for("jemalloc", "s.py", ["1"], "4G", libs)
    assert command == [sys.executable, "s.py", "1"]
    assert extra == {"PYTHONMALLOC": "malloc", "LD_PRELOAD": "/some/libjemalloc.so.2"}
    command, extra = _compare.command_for("bump", "s.py", ["1"], "2G", libs)
    assert command == [sys.executable, "-m", "bump_global", "run", "--size", "2G", "s.py", "1"]
    assert extra == {}
    command, extra = _compare.command_for("bump-classes", "s.py", [], "2G", libs)
    assert command == [sys.executable, "-m", "bump_global", "run", "--size", "2G",
                       "--reclaim", "classes", "s.py"]
    assert extra == {}


def test_failing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, """\
        import sys
        print("line one of the failure", file=sys.stderr)
        print("ValueError: the last words", file=sys.stderr)
        sys.exit(3)
        """)
    code, out, err = compare(["--runs", "2", "--allocators", "pymalloc,malloc", str(script)],
                             capsys)
    assert code == 1
    assert out == ""
    first = announced_orders(err)[1][0]
    assert f"error: the {first} run (1 of 2) exited with code 3" in err
    assert "ValueError: the last words" in err
    assert run_order(err) == []  # stopped at the first failure


def test_killed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    code, _, err = compare(["--runs", "1", "--allocators", "malloc", str(script)], capsys)
    assert code == 1
    assert "the malloc run (1 of 1) was killed by SIGKILL" in err


def test_absent_library_requested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_preload_libraries: None
) -> None:
    script = write_script(tmp_path, "raise SystemExit('must not run')\n")
    code, out, err = compare(["--allocators", "pymalloc,jemalloc", str(script)], capsys)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "jemalloc was asked for but libjemalloc.so.2 is not installed" in err


def test_absent_libraries_skipped_by_default() -> None:
    chosen, notes = _compare.select_allocators(None, {"jemalloc": None, "mimalloc": None})
    assert chosen == ["pymalloc", "malloc", "bump"]
    assert len(notes) == 2 and "jemalloc skipped" in notes[0] and "mimalloc" in notes[1]
    chosen, notes = _compare.select_allocators(None, {"jemalloc": "/x.so", "mimalloc": "/y.so"})
    assert chosen == list(_compare.DEFAULT_ALLOCATORS) and notes == []
    assert "bump-classes" not in chosen  # opt-in policies are asked for by name
    chosen, _ = _compare.select_allocators(" Malloc, pymalloc,malloc,", {})
    assert chosen == ["malloc", "pymalloc"]


@pytest.mark.parametrize("argv, message", [
    (["--allocators", "pymalloc,tcmalloc"], "unknown allocator 'tcmalloc'"),
    (["--allocators", ","], "--allocators is empty"),
    (["--allocators", "bump", "--size", "lots"], "--size: invalid size 'lots'"),
    (["--plot", "no/such/dir/x.png"], "--plot: no such directory"),
])
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      argv: List[str], message: str) -> None:
    script = write_script(tmp_path, "raise SystemExit('must not run')\n")
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    code, out, err = compare([*argv, str(script)], capsys)
    assert (code, out) == (2, "")
    assert message in err and len(err.splitlines()) == 1


def test_missing_script(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = compare(["no_such_script.py"], capsys)
    assert code == 2 and "no such script: no_such_script.py" in err


def test_runs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    _compare.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--runs", "0", "x.py"])
    assert "expected at least 1" in capsys.readouterr().err


def test_find_preload_libraries() -> None:
    found = _compare.find_preload_libraries()
    assert set(found) == {"jemalloc", "mimalloc"}
    for path in found.values():
        assert path is None or os.path.isfile(path)


def test_peak_rss_is_the_script_s_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The process that spawns a child counts in its peak RSS on Linux: a large
    # parent must not show in the measurement of a small script, and a large
    # script must.
    ballast = bytearray(256 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    small = write_script(tmp_path, "pass\n", "small.py")
    big = write_script(tmp_path, "x = bytearray(200 << 20)\nx[::4096] = b'1' * len(x[::4096])\n",
                       "big.py")
    env = _compare.child_environment()
    small_run = _compare.measure([sys.executable, str(small)], {}, env)
    big_run = _compare.measure([sys.executable, str(big)], {}, env)
    del ballast
    assert isinstance(small_run, _compare.Measurement)
    assert isinstance(big_run, _compare.Measurement)
    assert small_run.peak_rss < 100 << 20
    assert big_run.peak_rss > 200 << 20
    assert 0 < small_run.wall < big_run.wall + 10


def test_progress_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = _compare.Progress(stream)
    assert progress.single_line
    progress.running("[1/2] run 1/1 pymalloc running...")
    progress.finished("[1/2] run 1/1 pymalloc: 0.010 s")
    progress.clear()
    text = stream.getvalue()
    assert "\n" not in text and text.count("\r\x1b[K") == 3 and text.endswith("\r\x1b[K")

    plain = io.StringIO()
    progress = _compare.Progress(plain)
    progress.running("not shown")
    progress.finished("[1/2] run 1/1 pymalloc: 0.010 s")
    assert plain.getvalue() == "bump-global compare: [1/2] run 1/1 pymalloc: 0.010 s\n"


def test_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    script = write_script(tmp_path, "pass\n")
    png = tmp_path / "compare.png"
    code, _, err = compare(["--runs", "1", "--allocators", "pymalloc,malloc", "--plot",
                            str(png), str(script)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {png}" in err


def test_plot_without_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    script = write_script(tmp_path, "raise SystemExit('must not run')\n")
    code, out, err = compare(["--plot", str(tmp_path / "x.png"), str(script)], capsys)
    assert (code, out) == (2, "")
    assert "pip install 'bump_global[plot]'" in err and len(err.splitlines()) == 1


def test_through_the_cli(tmp_path: Path) -> None:
    script = write_script(tmp_path, "data = [(i, i) for i in range(10000)]\n")
    env = _compare.child_environment()
    proc = subprocess.run(
        [sys.executable, "-m", "bump_global", "compare", "--runs", "1",
         "--allocators", "pymalloc,bump,bump-classes", str(script)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert list(rows) == ["pymalloc", "bump", "bump-classes"]
    assert rows["pymalloc"][-3:] == ["1.00", "1.00", "1.00"]
    assert sorted(a for _, a in run_order(proc.stderr)) == ["bump", "bump-classes", "pymalloc"]
