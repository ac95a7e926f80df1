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
