"""The benchmark instrument (scripts/bench.py and its harness, scripts/harness/): what it
records and how it summarises.

These check the instrument on two variants and two tiny workloads, not how fast anything
is: the JSON and Markdown shapes, the shuffled order recorded for every round, the ratios
computed from the raw runs; and the harness's variants: bump_global's variables derived
from the package's option list, the GC peer's policy being bump_global's own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scripts" / "bench.py"



@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The scripts' harness package, imported as the scripts import it."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import harness.variants

    yield harness


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """Two rounds after one warm-up of two workloads under pymalloc and bump (benchmark
    processes: every test that uses it is slow)."""
    tmp = tmp_path_factory.mktemp("bench")
    out_json, out_md = tmp / "bench.json", tmp / "bench.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUMP_GLOBAL")}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--interpreter", sys.executable, "--work", str(tmp),
         "--quick", "--families", "build", "--workloads", "tuples_list,dict_str",
         "--variants", "pymalloc,bump", "--rounds", "2", "--warmup", "1", "--seed", "7",
         "--json", str(out_json), "--markdown", str(out_md)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"data": json.loads(out_json.read_text()), "markdown": out_md.read_text(),
            "json_path": out_json, "tmp": tmp, "stderr": proc.stderr}


@pytest.mark.slow
def test_json_records_every_run_with_its_measurements(quick_run: Dict[str, Any]) -> None:
    data = quick_run["data"]
    assert data["schema"] == "bump_global.bench/2" and data["partial"] is False
    assert [v["name"] for v in data["variants"]] == ["pymalloc", "bump"]
    assert [w["name"] for w in data["workloads"]] == ["tuples_list", "dict_str"]
    assert data["settings"]["seed"] == 7 and data["settings"]["rounds"] == 2
    raw = data["raw"]
    assert len(raw) == 3 * 2 * 2  # (warm-up + 2 rounds) x workloads x variants
    for run in raw:
        assert run["ok"], run
        assert run["wall_s"] > 0 and run["user_s"] + run["sys_s"] > 0
        assert run["minor_faults"] > 0 and run["peak_rss"] > 1 << 20
        assert run["tree_peak_rss"] >= run["peak_rss"]
    assert data["probes"]["bump"]["bump"] is True
    assert data["probes"]["pymalloc"]["bump"] is False
    assert data["output_problems"] == []


@pytest.mark.slow
def test_each_round_runs_every_variant_once_in_the_recorded_order(
        quick_run: Dict[str, Any]) -> None:
    data = quick_run["data"]
    assert [o["round"] for o in data["orders"]] == [-1, 0, 1]
    for entry in data["orders"]:
        for workload, order in entry["order"].items():
            assert sorted(order) == ["bump", "pymalloc"]
            ran = sorted((r for r in data["raw"]
                          if r["round"] == entry["round"] and r["workload"] == workload),
                         key=lambda r: r["position"])
            assert [r["variant"] for r in ran] == order


@pytest.mark.slow
def test_shuffle_is_reproducible_from_the_seed(quick_run: Dict[str, Any],
                                               harness: ModuleType) -> None:
    import random

    rng = random.Random(quick_run["data"]["settings"]["seed"])
    expected = []
    for _ in quick_run["data"]["orders"]:
        for _ in ("tuples_list", "dict_str"):
            order = ["pymalloc", "bump"]
            rng.shuffle(order)
            expected.append(order)
    recorded = [order for entry in quick_run["data"]["orders"]
                for order in entry["order"].values()]
    assert recorded == expected
    assert harness.variants.BASE == "pymalloc"


@pytest.mark.slow
def test_ratios_are_medians_of_per_round_ratios(quick_run: Dict[str, Any]) -> None:
    data = quick_run["data"]
    cells = data["summary"]["cells"]
    for workload in ("tuples_list", "dict_str"):
        runs = {(r["variant"], r["round"]): r for r in data["raw"]
                if r["workload"] == workload and r["round"] >= 0}
        walls = [runs["bump", k]["wall_s"] / runs["pymalloc", k]["wall_s"] for k in (0, 1)]
        cpus = [(runs["bump", k]["user_s"] + runs["bump", k]["sys_s"])
                / (runs["pymalloc", k]["user_s"] + runs["pymalloc", k]["sys_s"]) for k in (0, 1)]
        cell = cells[workload]["bump"]
        assert cell["wall_vs_pymalloc"]["median"] == pytest.approx(statistics.median(walls))
        assert cell["wall_vs_pymalloc"]["min"] == pytest.approx(min(walls))
        assert cell["wall_vs_pymalloc"]["max"] == pytest.approx(max(walls))
        assert cell["cpu_vs_pymalloc"]["median"] == pytest.approx(statistics.median(cpus))
        assert cells[workload]["pymalloc"]["wall_vs_pymalloc"]["median"] == pytest.approx(1.0)
        assert cell["runs"] == 2 and cell["failed"] == 0
        # without the pymalloc+gc peer there is no allocator's share to compute
        assert cell["wall_vs_gc_peer"]["median"] is None
    family = data["summary"]["families"]["build"]["bump"]["wall_vs_pymalloc"]
    medians = [cells[w]["bump"]["wall_vs_pymalloc"]["median"] for w in ("tuples_list", "dict_str")]
    assert family["geomean"] == pytest.approx(statistics.geometric_mean(medians))
    assert family["count"] == 2


@pytest.mark.slow
def test_markdown_has_the_command_and_tables_with_cpu_beside_wall(
        quick_run: Dict[str, Any]) -> None:
    text = quick_run["markdown"]
    assert text.startswith("# Benchmarks")
    assert "python scripts/bench.py --interpreter" in text and "--seed 7" in text
    assert "| workload | pymalloc s | `bump` |" in text
    assert "| family | variant | wall vs pymalloc | CPU vs pymalloc |" in text
    rows = [line for line in text.splitlines() if line.startswith("| tuples_list |")]
    assert len(rows) == 3  # time, shares, memory
    wall_cpu = rows[0].split(" | ")
    assert len(wall_cpu[1].split(" / ")) == 2 and len(wall_cpu[2].split(" / ")) == 2
    assert "**Quick: tiny sizes, not a measurement.**" in text


@pytest.mark.slow
def test_from_json_renders_the_same_report(quick_run: Dict[str, Any]) -> None:
    again = quick_run["tmp"] / "again.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--from-json",
                           str(quick_run["json_path"]), "--markdown", str(again)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert again.read_text() == quick_run["markdown"]


def test_missing_library_is_one_line_and_skips_its_variant(harness: ModuleType) -> None:
    variants = harness.variants
    chosen, notes = variants.select_variants(
        None, (3, 11), {"mimalloc": None, "jemalloc": "/lib/libjemalloc.so.2"})
    names = [v.name for v in chosen]
    assert "mimalloc+gc" not in names and "jemalloc+gc" in names
    assert "cpy-mimalloc+gc" not in names  # CPython's own mimalloc needs 3.13
    assert names == ["pymalloc", "pymalloc+gc", "jemalloc+gc", "bump", "bump-huge",
                     "bump-classes"]  # the default set: opt-in variants are named
    assert len(notes) == 2 and all("\n" not in n for n in notes)
    assert any("mimalloc+gc skipped: libmimalloc not found (Debian/Ubuntu: apt install "
               "libmimalloc2.0)" in n for n in notes)
    chosen, notes = variants.select_variants([variants.parse_variant("bump")], (3, 13),
                                             {"mimalloc": None, "jemalloc": None})
    assert [v.name for v in chosen] == ["pymalloc", "bump"] and notes == []


def test_unknown_variant_is_one_clear_line() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--variants", "pymalloc,tcmalloc",
                           "--interpreter", sys.executable],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("bench: --variants: unknown variant 'tcmalloc': expected a name "
                           "from pymalloc, pymalloc+gc, mimalloc+gc, "), line
    assert "or [NAME=]KEY=VALUE[+KEY=VALUE...]" in line


def test_the_published_json_renders_the_published_markdown(tmp_path: Path) -> None:
    for name in ("benchmarks", "benchmarks-3.13"):
        out = tmp_path / f"{name}.md"
        proc = subprocess.run([sys.executable, str(BENCH), "--from-json",
                               str(ROOT / "docs" / f"{name}.json"), "--markdown", str(out)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert out.read_text() == (ROOT / "docs" / f"{name}.md").read_text()


# ---------------------------------------------------------------- the harness's variants


def test_bump_variables_come_from_the_option_list(harness: ModuleType) -> None:
    from bump_global._config import INSTALL_OPTIONS

    variants = harness.variants
    options = {o.name: o for o in INSTALL_OPTIONS}
    assert variants.bump_env(reclaim="classes", numpy="1") == {
        "BUMP_GLOBAL": "1", options["reclaim"].env: "classes", options["numpy"].env: "1"}
    known = {o.env for o in INSTALL_OPTIONS}
    for v in variants.VARIANTS:
        assert {k for k in v.env if k.startswith("BUMP_GLOBAL_")} <= known, v
    assert variants.parse_variant("classes=--reclaim=classes+huge_pages=0").env == {
        "BUMP_GLOBAL": "1", options["reclaim"].env: "classes", options["huge_pages"].env: "0"}
    with pytest.raises(ValueError, match="no install option 'no_such'"):
        variants.bump_env(no_such="1")


@pytest.mark.parametrize("spec, name, env", [
    ("bump-classes", "bump-classes", {"BUMP_GLOBAL": "1", "BUMP_GLOBAL_RECLAIM": "classes"}),
    ("BUMP_GLOBAL_RECLAIM=classes+BUMP_GLOBAL_GC=keep",
     "BUMP_GLOBAL_RECLAIM=classes+BUMP_GLOBAL_GC=keep",
     {"BUMP_GLOBAL": "1", "BUMP_GLOBAL_RECLAIM": "classes", "BUMP_GLOBAL_GC": "keep"}),
    ("mimalloc+gc=GCX=1+PYTHONMALLOC=malloc+LD_PRELOAD=libmimalloc.so.2", "mimalloc+gc",
     {"GCX": "1", "PYTHONMALLOC": "malloc", "LD_PRELOAD": "libmimalloc.so.2"}),
    ("off=BUMP_GLOBAL=0", "off", {"BUMP_GLOBAL": "0"}),
    ("sites=sites=1", "sites", {"BUMP_GLOBAL": "1", "BUMP_GLOBAL_SITES": "1"}),
])
def test_parse_variant(harness: ModuleType, spec: str, name: str, env: Dict[str, str]) -> None:
    variant = harness.variants.parse_variant(spec)
    assert (variant.name, dict(variant.env)) == (name, env)


@pytest.mark.parametrize("spec, message", [
    ("tcmalloc", "unknown variant 'tcmalloc'"),
    ("x=BUMP_GLOBAL=1+PYTHONTRACEMALLOC=1", "tracemalloc cannot run together with bump_global"),
    ("x=GCX=1+junk", "is not KEY=VALUE"),
    ("1x=2", "is not KEY=VALUE"),
])
def test_bad_variant_is_one_line(harness: ModuleType, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        harness.variants.parse_variant(spec)
    assert "\n" not in str(info.value)


def test_profiler_variants_wrap_the_command(harness: ModuleType) -> None:
    variants = harness.variants
    memray = variants.parse_variant("memray-py")
    assert variants.wrap(["py", "-m", "pyflakes", "src"], "py", memray, "OUT") == [
        "py", "-m", "memray", "run", "--quiet", "--force", "-o", "OUT",
        "--trace-python-allocators", "-m", "pyflakes", "src"]
    assert variants.wrap(["/venv/bin/black", "src"], "py", memray, "OUT")[-2:] == [
        "/venv/bin/black", "src"]
    assert variants.parse_variant("tracemalloc").env == {"PYTHONTRACEMALLOC": "1"}
    plain = variants.parse_variant("pymalloc")
    assert variants.wrap(["py", "x.py"], "py", plain, "OUT") == ["py", "x.py"]


def test_the_gc_peer_runs_bump_global_s_own_policy(harness: ModuleType,
                                                   tmp_path: Path) -> None:
    import harness.runner

    from bump_global._launch import child_environment

    runner = harness.runner.Runner(sys.executable, tmp_path, {})
    code = "import gc; print(*gc.get_threshold())"
    relaxed = ("from bump_global._gc import apply_gc_policy; apply_gc_policy('relaxed'); "
               + code)
    env = dict(child_environment(), PYTHONPATH=str(runner.site))
    peer = variant_thresholds(code, dict(env, GCX="1"))
    assert peer == variant_thresholds(relaxed, child_environment())
    assert peer != variant_thresholds(code, env)  # without GCX=1 nothing changes


def variant_thresholds(code: str, env: Dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout


# ---------------------------------------------------------------- bump_global/_launch.py


WORKERS = """\
import subprocess, sys, time
CHILD = "x = bytearray(80 << 20); x[::4096] = b'1' * len(x[::4096]); import time; time.sleep(1.5)"
children = [subprocess.Popen([sys.executable, "-c", CHILD]) for _ in range(2)]
for child in children:
    child.wait()
print("done")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="samples /proc")
def test_measure_samples_the_process_tree_peak(tmp_path: Path) -> None:
    from bump_global._launch import Measurement, child_environment, measure_child

    out = open(tmp_path / "out", "w+b")
    with out:
        m = measure_child([sys.executable, "-c", WORKERS], {}, child_environment(), stdout=out,
                    sample_interval=0.02)
    assert isinstance(m, Measurement)
    assert (tmp_path / "out").read_text() == "done\n"
    assert 80 << 20 < m.peak_rss < 150 << 20  # wait4: the largest single process
    assert m.tree_peak_rss > 160 << 20  # both workers at once (plus their parent)
    assert m.tree_processes == 3 and m.samples > 10
    unsampled = measure_child([sys.executable, "-c", "pass"], {}, child_environment())
    assert isinstance(unsampled, Measurement)
    assert unsampled.tree_peak_rss == unsampled.peak_rss and unsampled.samples == 0


def test_measure_accepts_an_exit_status_when_asked() -> None:
    from bump_global._launch import Measurement, RunFailure, child_environment, measure_child

    command = [sys.executable, "-c", "import sys; sys.exit(3)"]
    assert isinstance(measure_child(command, {}, child_environment()), RunFailure)
    m = measure_child(command, {}, child_environment(), accept_status=True)
    assert isinstance(m, Measurement) and m.exit_code == 3 and m.wall > 0


def test_measure_kills_a_tree_that_times_out(tmp_path: Path) -> None:
    from bump_global._launch import RunFailure, child_environment, measure_child

    marker = tmp_path / "child.pid"
    code = ("import os, subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(60)\n")
    m = measure_child([sys.executable, "-c", code], {}, child_environment(), timeout=3,
                sample_interval=0.05)
    assert isinstance(m, RunFailure) and "timed out after 3 s" in m.description
    pid = int(marker.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        import time

        time.sleep(0.1)
    else:
        raise AssertionError("the grandchild survived the timeout")
