"""The benchmark instrument runs and writes well-formed output (scripts/bench.py --quick).

This checks the instrument, not how fast anything is.  Needs pyperf (the
benchmark's one requirement); skipped without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scripts" / "bench.py"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pyperf") is None,
                                reason="scripts/bench.py needs pyperf (pip install pyperf)")
pytestmark = [pytest.mark.slow, pytestmark]  # many benchmark processes: not in the quick lane


def test_quick_run_writes_json_and_markdown(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    out_md = tmp_path / "bench.md"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--micro", "--quiet",
         "--json", str(out_json), "--markdown", str(out_md)],
        capture_output=True, text=True, env=env, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    data = json.loads(out_json.read_text())
    for key in ("schema", "date", "command", "machine", "python", "versions", "settings",
                "workloads", "variants", "summary", "raw", "pyperf_suite", "micro"):
        assert key in data, key
    assert data["settings"]["quick"] is True
    for key in ("cpu_model", "cpu_count", "kernel", "thp_enabled", "overcommit_memory"):
        assert key in data["machine"]
    names = [w["name"] for w in data["workloads"]]
    assert {"tuples_list", "dict_str", "temporaries"} <= set(names)
    run_variants = [v["name"] for v in data["variants"] if v["available"]]
    assert "pymalloc" in run_variants and "bump" in run_variants
    skipped = [v for v in data["variants"] if not v["available"]]
    assert all(v["note"] for v in skipped)

    for name in names:
        per = data["summary"][name]
        assert set(run_variants) <= set(per)
        assert per["pymalloc"]["ratio_to_pymalloc"] == pytest.approx(1.0)
        for variant in run_variants:
            entry = per[variant]
            assert entry["runs"] == 1 and entry["failed"] == 0
            assert entry["wall_median_s"] > 0 and entry["peak_rss_kib_median"] > 0
            assert entry["ratio_to_pymalloc"] > 0
        bump = per["bump"]["bump"]
        assert bump is not None and bump["used"] > 0 and bump["allocations"] > 0
    assert len(data["raw"]) == len(names) * len(run_variants)
    assert all(r["ok"] for r in data["raw"])
    assert {b["metadata"]["name"] for b in data["pyperf_suite"]["benchmarks"]} >= {
        f"{n}:pymalloc" for n in names}
    micro = data["micro"]
    assert "skipped" in micro or set(run_variants) <= set(micro["summary"])

    text = out_md.read_text()
    assert text.startswith("# Benchmarks")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for name in names:
        assert any(line.startswith(f"| {name} (") for line in rows), name
    assert "| workload | family | pymalloc s / MiB |" in text
    assert data["versions"]["pyperf"] in text


def test_missing_pyperf_message() -> None:
    code = ("import sys, runpy; sys.modules['pyperf'] = None; "
            f"sys.argv = [{str(BENCH)!r}, '--quick']; runpy.run_path({str(BENCH)!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0
    assert "pip install pyperf" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
