"""The compare subcommand: shuffled rounds of a script under several allocators.

compare never installs the allocator in its own process (it only spawns
children), so most tests call its command line in-process.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from bump_global import _compare, _launch
from bump_global.commands import main as cli_main

REPO = Path(__file__).resolve().parents[1]


def write_script(directory: Path, code: str, name: str = "tiny.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(code))
    return path


def compare(argv: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str, str]:
    code = cli_main(["compare", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> dict:
    """allocator -> the cells of its row in the table compare printed (cells are
    separated by two spaces or more)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("allocator"))
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip())
                                          for line in lines[start + 1:] if line.strip())}


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
        # time, min-max time, CPU time, peak RSS, then three ratios (median, spread)
        assert len(cells) == 8
        assert cells[1].endswith(" s") and cells[2].endswith(" s") and cells[3].endswith(" s")
        assert 0 < float(cells[3][:-2]) < 10  # CPU seconds of a bare Python
        assert 1 < float(cells[4][:-4]) < 1000  # median peak RSS of a bare Python, MiB
        for ratio in cells[5:]:
            assert re.fullmatch(r"\d+\.\d\d( \(\d+\.\d\d-\d+\.\d\d\))?", ratio), ratio
    assert re.search(r"tiny.py: 2 rounds after 1 warm-up, each allocator once per round in a "
                     r"shuffled order \(--seed \d+\)", out)
    # the script's output is discarded, progress goes to stderr only
    assert "hello from the script" not in out
    assert re.search(r"\[2/6\] warm-up 1/1 \w+: [\d.]+ s, CPU [\d.]+ s, peak RSS", err)
    assert re.search(r"\[6/6\] run 2/2 \w+: [\d.]+ s, CPU [\d.]+ s, peak RSS", err)
    assert "[1/6]" not in out and "run 1/2" not in out


def run_order(err: str) -> List[Tuple[int, str]]:
    """(round, allocator) of every measured run, in the order the runs happened."""
    return [(int(r), a) for r, a in re.findall(r"\] run (\d+)/\d+ ([\w+-]+):", err)]


def announced_orders(err: str) -> Dict[int, List[str]]:
    """round -> the order compare announced for it (warm-up rounds: 0, -1, ...)."""
    orders = {int(r): order.split(", ")
              for r, order in re.findall(r": round (\d+)/\d+ order: (.*)", err)}
    warmups = re.findall(r": warm-up (\d+)/(\d+) order: (.*)", err)
    orders.update({int(r) - int(n): order.split(", ") for r, n, order in warmups})
    return orders


def test_each_round_runs_every_allocator_once_in_the_recorded_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, "pass\n")
    code, out, err = compare(["--runs", "4", "--seed", "11", "--allocators",
                              "malloc,pymalloc,pymalloc+gc", str(script)], capsys)
    assert code == 0, err
    orders = announced_orders(err)
    assert sorted(orders) == [0, 1, 2, 3, 4]  # the warm-up round, then four
    runs = run_order(err)
    for round_index, order in orders.items():
        assert sorted(order) == ["malloc", "pymalloc", "pymalloc+gc"]
        if round_index:
            assert [a for r, a in runs if r == round_index] == order
    assert [r for r, _ in runs] == sorted(r for r, _ in runs)  # round after round
    plan = _launch.plan_rounds([str(script)], ["malloc", "pymalloc", "pymalloc+gc"], 4, 1, 11)
    assert [orders[r] for r in (0, 1, 2, 3, 4)] == [[t.variant for t in turns]
                                                     for turns in plan]
    assert "(--seed 11)" in out


def test_seed_repeats_the_plan_and_orders_vary() -> None:
    names = ["pymalloc", "malloc", "jemalloc", "mimalloc", "bump"]
    first = _launch.plan_rounds(["a", "b"], names, 20, 2, 3)
    assert first == _launch.plan_rounds(["a", "b"], names, 20, 2, 3)
    assert [turns[0].round for turns in first] == list(range(-2, 20))  # warm-up first
    orders = [[t.variant for t in turns if t.item == item] for turns in first
              for item in ("a", "b")]
    assert all(sorted(order) == sorted(names) for order in orders)
    assert all([t.position for t in turns if t.item == "b"] == list(range(len(names)))
               for turns in first)
    assert len({tuple(order) for order in orders}) > 1
    assert first != _launch.plan_rounds(["a", "b"], names, 20, 2, 4)


def test_gc_policy_peer_runs_with_the_relaxed_thresholds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "thresholds.txt"
    script = write_script(tmp_path, """\
        import gc, sys
        with open(sys.argv[1], "a") as f:
            f.write(" ".join(map(str, gc.get_threshold())) + "\\n")
        """)
    code, out, err = compare(["--runs", "1", "--warmup", "0", "--allocators", "pymalloc",
                              "--gc-policy", str(script), str(record)], capsys)
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
    assert len(rows["pymalloc"]) == 9


def test_show_output_and_script_arguments(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = write_script(tmp_path, "import sys\nprint('args', sys.argv[1:])\n")
    argv = ["--runs", "1", "--warmup", "0", "--allocators", "pymalloc", "--show-output",
            str(script),
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
    code, _, err = compare(["--runs", "1", "--warmup", "0", "--allocators", "pymalloc,malloc",
                            str(script), str(record)], capsys)
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
    command, extra = _compare.command_for("pymalloc+gc", "s.py", [], "2G", libs)
    assert command == [sys.executable, "s.py"] and extra == {"GCX": "1"}
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
    first = announced_orders(err)[0][0]
    assert f"bump-global: error: the {first} run (warm-up 1 of 1) exited with code 3" in err
    assert "ValueError: the last words" in err
    assert "] warm-up" not in err and run_order(err) == []  # stopped at the first failure


def test_killed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    code, _, err = compare(["--runs", "1", "--warmup", "0", "--allocators", "malloc",
                            str(script)], capsys)
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
    (["--runs", "0"], "argument --runs: expected at least 1, got 0"),
    (["--warmup", "-1"], "argument --warmup: expected at least 0, got -1"),
])
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      argv: List[str], message: str) -> None:
    script = write_script(tmp_path, "raise SystemExit('must not run')\n")
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    code, out, err = compare([*argv, str(script)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("bump-global: error: ")
    assert message in err and len(err.splitlines()) == 1


def test_missing_script(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = compare(["no_such_script.py"], capsys)
    assert code == 2 and "no such script: no_such_script.py" in err


def test_the_library_does_not_import_the_command_line() -> None:
    source = (REPO / "bump_global" / "_compare.py").read_text()
    assert "bump_global.commands" not in source and "argparse" not in source


def test_find_preload_libraries() -> None:
    found = _launch.find_preload_libraries()
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
    env = _launch.child_environment()
    small_run = _launch.measure_child([sys.executable, str(small)], {}, env)
    big_run = _launch.measure_child([sys.executable, str(big)], {}, env)
    del ballast
    assert isinstance(small_run, _launch.Measurement)
    assert isinstance(big_run, _launch.Measurement)
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
    code, _, err = compare(["--runs", "1", "--warmup", "0", "--allocators", "pymalloc,malloc",
                            "--plot", str(png), str(script)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {png}" in err


def test_the_plot_shows_the_table_s_ratios(tmp_path: Path) -> None:
    """Both show the median of the per-round ratios with its spread; here the ratio of
    the medians (2.4 / 2.0 = 1.20) is another figure, which neither may show."""
    pytest.importorskip("matplotlib")
    base = _compare.Summary("pymalloc", [1.0, 2.0, 3.0], [100 << 20, 100 << 20, 100 << 20],
                            (1.0, 2.0, 3.0))
    other = _compare.Summary("bump", [0.5, 3.0, 2.4], [200 << 20, 300 << 20, 250 << 20],
                             (0.5, 3.0, 2.4))
    table = table_rows(_compare.format_table([base, other]))
    assert table["bump"][5] == "0.80 (0.50-1.50)"  # ratios 0.5, 1.5, 0.8
    assert table["bump"][7] == "2.50 (2.00-3.00)"
    figure = _compare.plot(str(tmp_path / "p.png"), [base, other], "test")
    time_axis, rss_axis = figure.axes
    # each label: the median, then the ratio (its spread on a line of its own)
    labels = {axis: [" ".join(text.get_text().splitlines()[1:]) for text in axis.texts]
              for axis in figure.axes}
    assert labels[time_axis][1] == "×" + table["bump"][5]
    assert labels[rss_axis][1] == "×" + table["bump"][7]
    assert labels[time_axis][0] == "×" + table["pymalloc"][5] == "×1.00"
    assert "1.20" not in labels[time_axis][1]


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
    env = _launch.child_environment()
    proc = subprocess.run(
        [sys.executable, "-m", "bump_global", "compare", "--runs", "1", "--warmup", "0",
         "--allocators", "pymalloc,bump,bump-classes", str(script)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert list(rows) == ["pymalloc", "bump", "bump-classes"]
    assert rows["pymalloc"][-3:] == ["1.00", "1.00", "1.00"]
    assert sorted(a for _, a in run_order(proc.stderr)) == ["bump", "bump-classes", "pymalloc"]
