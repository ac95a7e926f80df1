"""bump_global._plot: timelines (CSV, JSON lines, with and without pids) drawn as a PNG."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from bump_global._plot import MatplotlibMissing, check_matplotlib, plot_timelines, read_timeline
from bump_global._timeline import COLUMNS

Row = Tuple[float, int, Optional[int], int]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rows(count: int, growth: int, resident_known: bool = True) -> List[Row]:
    return [(0.01 * k, 1000 + growth * k, (900 + growth * k) if resident_known else None,
             5_000_000 + 2 * growth * k) for k in range(count)]


def write_timeline(path: Path, samples: List[Row]) -> Path:
    """A timeline of one process without the process's columns (an older version's)."""
    lines = []
    if path.suffix == ".csv":
        lines.append(",".join(COLUMNS))
        for t, used, resident, rss in samples:
            lines.append(f"{t:.6f},{used},{'' if resident is None else resident},{rss}")
    else:
        lines = [json.dumps(dict(zip(COLUMNS, sample))) for sample in samples]
    path.write_text("\n".join(lines) + "\n")
    return path


def with_pids(path: Path, by_pid: dict) -> Path:
    """A timeline with the pid column (last in CSV, a "pid" key in JSON lines)."""
    lines = []
    if path.suffix == ".csv":
        lines.append(",".join((*COLUMNS, "pid")))
        for pid, samples in by_pid.items():
            for t, used, resident, rss in samples:
                lines.append(f"{t},{used},{'' if resident is None else resident},{rss},{pid}")
    else:
        for pid, samples in by_pid.items():
            for sample in samples:
                lines.append(json.dumps({**dict(zip(COLUMNS, sample)), "pid": pid}))
    path.write_text("\n".join(lines) + "\n")
    return path


def png_size(path: Path) -> Tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def test_a_timeline_without_pids_reads_as_one_process_in_time_order(tmp_path):
    samples = rows(50, 4096, resident_known=False)
    for name in ("t.csv", "t.jsonl"):
        path = write_timeline(tmp_path / name, list(reversed(samples)))
        series = read_timeline(str(path))
        assert list(series) == [0]
        times, used, resident, rss = series[0]
        assert times == sorted(times) and len(times) == 50
        assert used == [s[1] for s in samples] and rss == [s[3] for s in samples]
        assert resident == [None] * 50


def test_a_timeline_with_pids_reads_one_series_per_process(tmp_path):
    by_pid = {101: rows(20, 1000), 202: rows(30, 3000)}
    for name in ("p.csv", "p.jsonl"):
        series = read_timeline(str(with_pids(tmp_path / name, by_pid)))
        assert sorted(series) == [101, 202]
        assert series[202][1] == [s[1] for s in by_pid[202]]
        assert series[101][2] == [s[2] for s in by_pid[101]]


@pytest.mark.parametrize("name", ["one.csv", "one.jsonl"])
def test_one_process_is_drawn_as_a_png_of_a_sane_size(tmp_path, name):
    pytest.importorskip("matplotlib")
    timeline = write_timeline(tmp_path / name, rows(200, 1 << 20))
    out = tmp_path / "out.png"
    plot_timelines([str(timeline)], str(out), title="one process")
    width, height = png_size(out)
    assert 600 <= width <= 3000 and 400 <= height <= 3000
    assert out.stat().st_size > 10_000


def test_several_processes_and_files_are_drawn_in_one_picture(tmp_path):
    pytest.importorskip("matplotlib")
    csv = with_pids(tmp_path / "a.csv", {11: rows(100, 1 << 20), 12: rows(80, 1 << 18)})
    jsonl = write_timeline(tmp_path / "b.jsonl", rows(60, 1 << 19, resident_known=False))
    out = tmp_path / "many.png"
    plot_timelines([str(csv), str(jsonl)], str(out))
    width, height = png_size(out)
    assert 600 <= width <= 3000 and 400 <= height <= 3000
    assert out.stat().st_size > 10_000


def test_an_unwritable_output_is_one_line_naming_it(tmp_path):
    pytest.importorskip("matplotlib")
    timeline = write_timeline(tmp_path / "t.csv", rows(10, 100))
    out = tmp_path / "no-such-dir" / "out.png"
    with pytest.raises(ValueError, match="out.png: cannot write the picture") as info:
        plot_timelines([str(timeline)], str(out))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content, message", [
    ("", "empty: no samples to draw"),
    ("time_s,used_bytes,rss_bytes\n1,2,3\n", "line 1: the CSV header is"),
    (",".join(COLUMNS) + "\n", "a header but no samples"),
    (",".join(COLUMNS) + "\n0.1,100,,200\n0.2,100,300\n", "line 3: 3 fields, expected 4"),
    (",".join(COLUMNS) + "\n0.1,lots,,200\n", "line 2: used_bytes must be a whole number"),
    (",".join(COLUMNS) + "\n-1,10,,200\n", "line 2: time_s must be a finite number >= 0"),
    (",".join(COLUMNS) + ",pid\n0.1,10,,200,abc\n", "line 2: pid must be a whole number"),
    ('{"time_s": 0.1, "used_bytes": 5}\n', "line 1: missing region_resident_bytes, rss_bytes"),
    ('{"time_s": 0.1, "used_bytes": 5, "region_resident_bytes": null, "rss_bytes": 7}\n{oops\n',
     "line 2: not JSON"),
    ('{"time_s": 0.1, "used_bytes": 5, "region_resident_bytes": null, "rss_bytes": 7}\n'
     '{"time_s": 0.2, "used_bytes": 5, "region_resident_bytes": null, "rss_bytes": 7, '
     '"pid": 3}\n', "line 2: some lines have a pid and some do not"),
    ('{"time_s": 0.1, "used_bytes": 5.5, "region_resident_bytes": null, "rss_bytes": 7}\n',
     "line 1: used_bytes must be a whole number"),
])
def test_bad_timelines_give_one_line_naming_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.timeline"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        read_timeline(str(path))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ") and message in text, text


def test_a_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(ValueError, match=r"nope\.csv: cannot read it") as info:
        plot_timelines([str(missing)], str(tmp_path / "out.png"))
    assert "\n" not in str(info.value)


def test_a_bad_file_among_good_ones_writes_no_picture(tmp_path):
    good = write_timeline(tmp_path / "good.csv", rows(10, 100))
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,timeline\n")
    out = tmp_path / "out.png"
    with pytest.raises(ValueError, match="bad.csv: line 1"):
        plot_timelines([str(good), str(bad)], str(out))
    assert not out.exists()


def test_without_matplotlib_the_option_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    with pytest.raises(MatplotlibMissing) as info:
        check_matplotlib("plot")
    assert str(info.value) == ("plot needs matplotlib, which is not installed: "
                               "pip install 'bump_global[plot]'")


def test_the_plot_command_draws_and_names_bad_files(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("matplotlib")

    good = write_timeline(tmp_path / "t.csv", rows(20, 1 << 20))
    out = tmp_path / "t.png"
    proc = subprocess.run([sys.executable, "-m", "bump_global", "plot", str(good), "-o",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert png_size(out)[0] > 200
    bad = tmp_path / "bad.csv"
    bad.write_text("nonsense\n")
    proc = subprocess.run([sys.executable, "-m", "bump_global", "plot", str(bad), "-o",
                           str(tmp_path / "b.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("bump-global: error: ") and "bad.csv" in line


def test_the_plot_command_without_matplotlib_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    from bump_global.commands import main as cli_main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    code = cli_main(["plot", "-o", str(tmp_path / "out.png"), str(tmp_path / "t.csv")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "plot needs matplotlib" in err and "pip install 'bump_global[plot]'" in err
    assert len(err.splitlines()) == 1


def with_processes(path: Path, by_pid: dict, processes: dict) -> Path:
    """A timeline as bump-global run writes it now: the COLUMNS, then pid, role and command
    (CSV through the csv module, as bump_global/_timeline.py writes it)."""
    import csv
    import io

    from bump_global._timeline import write_rows

    rows = [(pid, *sample) for pid, samples in by_pid.items() for sample in samples]
    out = io.StringIO()
    write_rows(out.write, rows, path.suffix == ".csv", processes)
    path.write_text(out.getvalue())
    if path.suffix == ".csv":  # the file is what the csv module reads back
        assert next(csv.reader(io.StringIO(out.getvalue())))[-3:] == ["pid", "role", "command"]
    return path


PROCESSES = {101: ("root", "build.py --jobs 2"),
             202: ("fork", "build.py --jobs 2"),
             303: ("spawn", '-c import json, sys; print("a, b")  # a command with commas')}


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl"])
def test_a_timeline_with_the_process_columns_reads_roles_and_commands(tmp_path, name):
    from bump_global._plot import read_timeline_file

    by_pid = {101: rows(20, 1000), 202: rows(10, 3000), 303: rows(5, 500)}
    series, processes = read_timeline_file(str(with_processes(tmp_path / name, by_pid,
                                                              PROCESSES)))
    assert sorted(series) == [101, 202, 303]
    assert series[202][1] == [s[1] for s in by_pid[202]]
    assert processes == PROCESSES  # commas and quotes intact


def test_older_timelines_have_no_processes_and_still_read(tmp_path):
    from bump_global._plot import read_timeline_file

    for path in (write_timeline(tmp_path / "old.csv", rows(5, 10)),
                 with_pids(tmp_path / "pids.csv", {7: rows(5, 10)}),
                 with_pids(tmp_path / "pids.jsonl", {7: rows(5, 10)})):
        series, processes = read_timeline_file(str(path))
        assert len(series) == 1 and processes == {}


def test_the_whole_tree_counts_each_process_between_its_first_and_last_sample():
    from bump_global._plot import tree_rss

    series = {1: ([0.0, 0.1, 0.2, 0.3], [0] * 4, [None] * 4, [100, 110, 120, 130]),
              2: ([0.1, 0.2], [0] * 2, [None] * 2, [50, 60]),
              3: ([0.25], [0], [None], [7])}
    times, sums = tree_rss(series)
    assert times == [0.0, 0.1, 0.2, 0.25, 0.3]
    # 2 counts from 0.1 to 0.2, 3 only at 0.25 (its one sample)
    assert sums == [100, 110 + 50, 120 + 60, 120 + 7, 130]
    from bump_global._report import timeline_tree_peak

    merged = [(pid, t, 0, None, rss) for pid, data in series.items()
              for t, rss in zip(data[0], data[3])]
    assert max(sums) == timeline_tree_peak(merged)


def test_processes_are_labelled_pid_role_command_and_the_tree_has_its_line(tmp_path):
    pytest.importorskip("matplotlib")
    from bump_global._flamegraph import shorten
    from bump_global._plot import LABEL_WIDTH, figure

    long_command = "-c " + "x = 1; " * 30 + "print('the end')"
    processes = {**PROCESSES, 404: ("spawn", long_command)}
    by_pid = {101: rows(40, 1 << 20), 202: rows(20, 1 << 19), 303: rows(10, 1 << 18),
              404: rows(10, 1 << 18)}
    path = with_processes(tmp_path / "tree.csv", by_pid, processes)
    fig = figure([str(path)])
    (legend,) = fig.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[:2] == ["101 root: build.py --jobs 2", "202 fork: build.py --jobs 2"]
    assert labels[2] == f"303 spawn: {shorten(PROCESSES[303][1], LABEL_WIDTH)}"
    assert labels[2].startswith('303 spawn: -c import json, sys; print("a, b")')
    shortened = labels[3][len("404 spawn: "):]
    assert len(shortened) == LABEL_WIDTH and "..." in shortened
    assert shortened.startswith("-c x = 1;") and shortened.endswith("print('the end')")
    ax_region, ax_rss = fig.axes
    tree = [line for line in ax_rss.get_lines() if line.get_label().startswith("whole tree")]
    assert len(tree) == 1
    firsts = [line.get_ydata()[0] for line in ax_rss.get_lines() if line is not tree[0]]
    assert len(firsts) == 4 and tree[0].get_ydata()[0] == pytest.approx(sum(firsts))
    out = tmp_path / "tree.png"
    fig.savefig(str(out))
    width, height = png_size(out)
    assert 600 <= width <= 3000 and 400 <= height <= 3000


def test_one_process_has_no_tree_line(tmp_path):
    pytest.importorskip("matplotlib")
    from bump_global._plot import figure

    path = with_processes(tmp_path / "one.jsonl", {5: rows(20, 1 << 20)},
                          {5: ("root", "-c pass")})
    fig = figure([str(path)])
    ax_region, ax_rss = fig.axes
    assert not [line for line in ax_rss.get_lines() if "tree" in line.get_label()]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["5 root: -c pass"]


def test_a_real_program_of_several_processes_is_drawn_with_its_labels(tmp_path):
    """bump-global run --sample --timeline on a program that forks, then plot."""
    import subprocess
    import sys

    pytest.importorskip("matplotlib")
    from bump_global._plot import figure, read_timeline_file

    script = tmp_path / "tree.py"
    script.write_text("import os, time\n"
                      "keep = [str(i) for i in range(100000)]\n"
                      "pid = os.fork()\n"
                      "if pid == 0:\n"
                      "    more = [str(i) for i in range(200000)]\n"
                      "    time.sleep(0.1)\n"
                      "    os._exit(0)\n"
                      "os.waitpid(pid, 0)\n")
    timeline = tmp_path / "t.csv"
    proc = subprocess.run([sys.executable, "-m", "bump_global", "run", "--sample", "5",
                           "--timeline", str(timeline), "tree.py"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    series, processes = read_timeline_file(str(timeline))
    assert len(series) == 2 and sorted(role for role, _ in processes.values()) == ["fork",
                                                                                   "root"]
    labels = [t.get_text() for t in figure([str(timeline)]).legends[0].get_texts()]
    assert sorted(label.split(" ", 1)[1] for label in labels) == ["fork: tree.py",
                                                                  "root: tree.py"]
