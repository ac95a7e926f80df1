"""Benchmarks: bump_global against the allocators a user would pick, with the same GC policy.

    python scripts/bench.py --python PYTHON [--rounds 3] [--warmup 1] [--seed N]
                            [--families build,churn,startup,real] [--workloads a,b]
                            [--variants a,b] [--work DIR] [--no-install]
                            [--json FILE] [--markdown FILE]
    python scripts/bench.py --from-json FILE [--json FILE] [--markdown FILE]
    python scripts/bench.py --list

Two families of things to run, each a fresh process per run:

- the scripts of ``scripts/workloads/`` (families ``build``: build a structure and exit;
  ``churn``: create and drop temporaries; ``startup``: an empty script);
- real programs (family ``real``): the program definitions of ``scripts/real_programs.py``
  (pyflakes, black, pylint, mypy, sphinx, docutils, pytest, pip..., installed from PyPI into
  that script's own venv together with this checkout; inputs generated or from the stdlib).

Every run, of either family, uses the venv's interpreter (``--python`` builds it) and goes
through ``bump_global/_launch.py``: wall time, user and system CPU, page faults and peak RSS
from ``os.wait4``; for real programs also the peak of the process tree's summed RSS, sampled
from ``/proc`` every ``--sample-ms`` (never below the ``wait4`` peak).  Every variant must
give the pymalloc run's exit status and (normalised) output, in every round.

Variants are data (``VARIANTS``): plain pymalloc; pymalloc, mimalloc, jemalloc (and on 3.13
CPython's own mimalloc) with the GC policy of bump_global's ``gc="relaxed"`` (thresholds x10,
through a ``sitecustomize`` on every variant's ``PYTHONPATH``, switched on by ``GCX=1``);
bump_global through ``BUMP_GLOBAL=1`` the way a user runs any entry point (its default, with
huge pages on, with ``reclaim="classes"``).  A variant whose library is missing is skipped
with one line saying so.  A probe run checks each variant before the first round: its GC
thresholds, whether bump_global is installed, whether the preloaded library is mapped.

Rounds: ``--warmup`` discarded rounds, then ``--rounds`` measured ones; in every round each
workload runs once under every variant, in an order shuffled for that round and workload
(the seed and every order are recorded).  Per cell: the median of the per-round ratios to
plain pymalloc and their min-max spread; and the ratio to pymalloc with the same GC policy,
which separates the GC policy's share of a gain (pymalloc+gc / pymalloc) from the
allocator's share (variant / pymalloc+gc).

With ``--json`` the file is rewritten after every round (``"partial": true`` until the end);
``--from-json`` summarises a JSON file's raw runs again without running anything.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOAD_DIR = HERE / "workloads"
sys.path[:0] = [str(HERE), str(REPO)]

import real_programs as rp  # noqa: E402  (scripts/real_programs.py)

from bump_global._launch import (  # noqa: E402
    Measurement,
    RunFailure,
    find_preload_libraries,
    measure,
)

SCHEMA = "bump_global.bench/2"
MIB = 1024 * 1024
BASE = "pymalloc"
GC_PEER = "pymalloc+gc"


# ---------------------------------------------------------------- what runs


@dataclass(frozen=True)
class Workload:
    name: str
    family: str  # "startup", "build", "churn" (scripts/workloads) or "real" (real programs)
    what: str
    script: str = ""
    args: Tuple[str, ...] = ()
    quick_args: Tuple[str, ...] = ()
    default: bool = True  # run unless --workloads names others


WORKLOADS: Tuple[Workload, ...] = (
    Workload("startup", "startup", "empty script: start-up and exit", "startup.py"),
    Workload("tuples_list", "build", "list of 5M (i, 2*i) tuples", "tuples_list.py",
             ("5000000",), ("50000",)),
    Workload("dict_str", "build", "dict of 2M str(i) -> i", "dict_str.py",
             ("2000000",), ("20000",)),
    Workload("json_loads_big", "build", "json.loads of a ~100 MB document",
             "json_loads_big.py", ("{big_json}",), ("{big_json}",)),
    Workload("ast_compile", "build", "ast.parse + compile of 2 MiB of source",
             "ast_compile.py", ("2048",), ("32",)),
    Workload("nested_serialise", "build", "100k nested records, json.dumps + pickle.dumps",
             "nested_serialise.py", ("100000",), ("1000",)),
    Workload("build_tuples", "build", "build_tuples.py (list of tuples, default size)",
             "build_tuples.py", (), ("50000",), default=False),
    Workload("temporaries", "churn", "10M x = (i, str(i))", "temporaries.py",
             ("10000000",), ("100000",)),
    Workload("json_loads_small", "churn", "3 small JSON documents parsed 40k times",
             "json_loads_small.py", ("40000",), ("400",)),
    Workload("raytrace", "churn", "ray tracer, 300x300 image", "raytrace.py",
             ("300",), ("20",)),
    Workload("go", "churn", "25 random Go playouts, 9x9", "go.py", ("25",), ("1",),
             default=False),
    Workload("deltablue", "churn", "constraint solver, 60 rounds", "deltablue.py",
             ("60",), ("2",)),
    Workload("richards", "churn", "task scheduler simulation, 40 rounds", "richards.py",
             ("40",), ("2",), default=False),
)
BIG_JSON_MB = {"full": "100", "quick": "1"}

#: Real programs run by default (definitions in scripts/real_programs.py), chosen so that a
#: full run (7 or 8 variants, warm-up + 3 rounds, both families) fits in about an hour on a
#: busy 2-core VM: seven programs from PyPI (pyflakes, black, pylint, mypy, docutils, pytest,
#: pip), a pandas script, and compileall.  The others run when named in --workloads: sphinx
#: (35 s a run there), json_tool (30 MB, 15 s of CPU a run), pip_install, pydoc,
#: pytest_more_itertools, mixed (a test of threads and forks more than a workload).
DEFAULT_REAL = ("compileall", "pyflakes", "black", "pylint", "mypy", "docutils", "pandas",
                "pytest_toolz", "pip_download")
FAMILIES = ("startup", "build", "churn", "real")


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    env: Dict[str, str] = field(default_factory=dict)
    preload: Optional[str] = None  # "mimalloc" or "jemalloc": LD_PRELOAD its library
    gcx: bool = False  # the GC policy of gc="relaxed" through the GCX sitecustomize
    min_python: Tuple[int, int] = (3, 9)

    @property
    def bump(self) -> bool:
        return self.env.get("BUMP_GLOBAL") == "1"


VARIANTS: Tuple[Variant, ...] = (
    Variant(BASE, "CPython's default allocator, nothing set"),
    Variant(GC_PEER, "pymalloc, GC thresholds x10 (young and full: gc='relaxed' for anyone)",
            gcx=True),
    Variant("mimalloc+gc", "LD_PRELOAD libmimalloc + PYTHONMALLOC=malloc, GC x10",
            {"PYTHONMALLOC": "malloc"}, preload="mimalloc", gcx=True),
    Variant("jemalloc+gc", "LD_PRELOAD libjemalloc + PYTHONMALLOC=malloc, GC x10",
            {"PYTHONMALLOC": "malloc"}, preload="jemalloc", gcx=True),
    Variant("cpy-mimalloc+gc", "PYTHONMALLOC=mimalloc (CPython's own, 3.13+), GC x10",
            {"PYTHONMALLOC": "mimalloc"}, gcx=True, min_python=(3, 13)),
    Variant("bump", "BUMP_GLOBAL=1: bump_global's default (pure bump, no huge pages, "
            "gc='relaxed')", {"BUMP_GLOBAL": "1"}),
    Variant("bump-huge", "BUMP_GLOBAL=1 BUMP_GLOBAL_HUGE_PAGES=1 (the default until "
            "these measurements)", {"BUMP_GLOBAL": "1", "BUMP_GLOBAL_HUGE_PAGES": "1"}),
    Variant("bump-classes", "BUMP_GLOBAL=1 BUMP_GLOBAL_RECLAIM=classes (size classes with "
            "free lists: the speed configuration)",
            {"BUMP_GLOBAL": "1", "BUMP_GLOBAL_RECLAIM": "classes"}),
)

#: Run by each variant before the first round: what it really got.
PROBE = """\
import gc, json, os, sys
info = {"gc_threshold": list(gc.get_threshold()), "bump": False,
        "pythonmalloc": os.environ.get("PYTHONMALLOC")}
if "bump_global" in sys.modules or os.environ.get("BUMP_GLOBAL"):
    import bump_global
    info["bump"] = bump_global.is_installed()
    config = bump_global.installed_config()
    if config is not None:
        info["bump_config"] = {k: str(getattr(config, k)) for k in
                               ("size", "reclaim", "huge_pages", "gc", "prefault")
                               if hasattr(config, k)}
with open("/proc/self/maps") as maps:
    text = maps.read()
info["mapped"] = sorted(n for n in ("mimalloc", "jemalloc") if "lib" + n in text)
print(json.dumps(info))
"""


# ---------------------------------------------------------------- environment


def loadavg() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def read_text(path: str) -> Optional[str]:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def machine_info() -> Dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                (read_text("/proc/cpuinfo") or "").splitlines()
                if line.startswith("model name")), None)
    mem = next((int(line.split()[1]) * 1024 for line in
                (read_text("/proc/meminfo") or "").splitlines()
                if line.startswith("MemTotal:")), None)
    return {"cpu_model": cpu or platform.processor() or None, "cpu_count": os.cpu_count(),
            "memory_total": mem, "kernel": platform.release(), "machine": platform.machine(),
            "thp_enabled": read_text("/sys/kernel/mm/transparent_hugepage/enabled"),
            "libc": " ".join(platform.libc_ver()).strip() or None,
            "loadavg_start": loadavg()}


def package_version(name: str) -> Optional[str]:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                             capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    return out.strip() or None


def git_commit() -> Optional[str]:
    """This checkout's commit, "+dirty" if bump_global/ has changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "bump_global"], capture_output=True, text=True,
                               check=False).stdout.strip()
    except OSError:
        return None
    return (head + ("+dirty" if dirty else "")) or None


def variant_extra(v: Variant, libraries: Dict[str, Optional[str]]) -> Dict[str, str]:
    """The variables that make a run variant `v` (given to the command, not the launcher)."""
    extra = dict(v.env)
    if v.gcx:
        extra["GCX"] = "1"
    if v.preload:
        extra["LD_PRELOAD"] = libraries[v.preload] or ""
    return extra


def select_variants(names: Optional[List[str]], pyversion: Tuple[int, int],
                    libraries: Dict[str, Optional[str]]) -> Tuple[List[Variant], List[str]]:
    """The variants to run (pymalloc always first) and one note per variant skipped."""
    known = {v.name: v for v in VARIANTS}
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"bench: unknown variant(s) {', '.join(unknown)} in --variants: "
                             f"accepted are {', '.join(known)}")
    wanted = [v for v in VARIANTS if names is None or v.name in names or v.name == BASE]
    chosen, notes = [], []
    for v in wanted:
        if v.preload and not libraries.get(v.preload):
            notes.append(f"variant {v.name} skipped: lib{v.preload} not found "
                         f"(apt-get install {rp_package(v.preload)})")
        elif pyversion < v.min_python:
            notes.append(f"variant {v.name} skipped: needs Python "
                         f"{'.'.join(map(str, v.min_python))}+ (this is "
                         f"{'.'.join(map(str, pyversion))})")
        else:
            chosen.append(v)
    return chosen, notes


def rp_package(name: str) -> str:
    return {"mimalloc": "libmimalloc2.0", "jemalloc": "libjemalloc2"}.get(name, name)


# ---------------------------------------------------------------- running


@dataclass
class Item:
    """One thing to run: a workload script or a real program."""

    workload: Workload
    program: Optional[rp.Program] = None
    ctx: Optional[rp.Ctx] = None


def run_one(item: Item, v: Variant, extra: Dict[str, str], vpy: str, work: Path,
            gcx_dir: Path, tag: str, big_json: Path, quick: bool,
            sample_s: float) -> Dict[str, Any]:
    """One measured run: the record of the raw data."""
    w = item.workload
    rec: Dict[str, Any] = {"workload": w.name, "variant": v.name}
    if item.program is not None and item.ctx is not None:
        run_dir, cmd, env, cwd = rp.run_setup(item.program, v.name, rp.Variant(), item.ctx,
                                              tag, gcx_dir, None)
        timeout = item.program.timeout
        sample: Optional[float] = sample_s
    else:
        run_dir = work / "runs" / "workloads" / w.name / f"{tag}-{v.name}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        args = [a.replace("{big_json}", str(big_json)) for a in
                (w.quick_args if quick else w.args)]
        cmd = [vpy, str(WORKLOAD_DIR / w.script), *args]
        env = rp.base_env()
        env.update({"PYTHONHASHSEED": "0", "PYTHONPATH": str(gcx_dir),
                    "PYTHONDONTWRITEBYTECODE": "1"})
        cwd, timeout, sample = run_dir, 600.0, None
    with open(run_dir / "stdout", "w+b") as out, open(run_dir / "stderr", "w+b") as err:
        try:
            m = measure(cmd, extra, env, stdout=out, stderr=err, cwd=str(cwd), timeout=timeout,
                        sample_interval=sample, accept_status=True)
        except OSError as exc:
            m = RunFailure(f"could not be started: {exc}", [])
    if isinstance(m, RunFailure):
        rec.update(ok=False, error=m.description + (": " + " | ".join(m.stderr_tail[-3:])
                                                    if m.stderr_tail else ""))
        return rec
    assert isinstance(m, Measurement)
    if item.program is not None and item.ctx is not None:
        compared = rp.compared_output(item.program, item.ctx, run_dir)
    else:
        compared = (run_dir / "stdout").read_text(errors="replace")
    rec.update(ok=True, exit=m.exit_code, wall_s=m.wall, user_s=m.user, sys_s=m.system,
               minor_faults=m.minor_faults, major_faults=m.major_faults,
               peak_rss=m.peak_rss, tree_peak_rss=m.tree_peak_rss,
               tree_processes=m.tree_processes, samples=m.samples,
               output_sha256=hashlib.sha256(compared.encode()).hexdigest())
    accepted = (0,) if item.program is None else item.program.ok_status
    if accepted is not None and m.exit_code not in accepted:
        rec.update(ok=False, error=f"exited with code {m.exit_code} (accepted: "
                   f"{', '.join(map(str, accepted))}): "
                   + (run_dir / "stderr").read_text(errors="replace")[-300:])
    if rec["ok"]:
        shutil.rmtree(run_dir, ignore_errors=True)
    return rec


def probe(vpy: str, v: Variant, extra: Dict[str, str], gcx_dir: Path) -> Dict[str, Any]:
    env = rp.base_env()
    env.update(extra, PYTHONPATH=str(gcx_dir))
    proc = subprocess.run([vpy, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=False, timeout=120)
    try:
        info: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (proc.stderr.strip() or "no output")[-300:]}
    problems = []
    if v.bump and not info.get("bump"):
        problems.append("BUMP_GLOBAL=1 did not install bump_global")
    if v.preload and v.preload not in info.get("mapped", []):
        problems.append(f"lib{v.preload} is not mapped")
    if proc.stderr.strip():
        problems.append("stderr: " + proc.stderr.strip()[-200:])
    if problems:
        info["error"] = "; ".join(problems)
    return info


def check_outputs(raw: List[Dict[str, Any]]) -> List[str]:
    """One line per run whose exit status or output differs from pymalloc's of its round."""
    base = {(r["workload"], r["round"]): r for r in raw if r["variant"] == BASE and r["ok"]}
    problems = []
    for r in raw:
        ref = base.get((r["workload"], r["round"]))
        if not r["ok"] or ref is None or r is ref:
            continue
        if (r["exit"], r["output_sha256"]) != (ref["exit"], ref["output_sha256"]):
            r["same_output"] = False
            problems.append(f"{r['workload']} round {r['round']}: {r['variant']} gave exit "
                            f"{r['exit']} and output {r['output_sha256'][:12]}, pymalloc "
                            f"exit {ref['exit']} and output {ref['output_sha256'][:12]}")
    return problems


# ---------------------------------------------------------------- statistics


def med(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [x for x in values if x is not None]
    return statistics.median(vals) if vals else None


def geomean(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [x for x in values if x]
    return math.exp(sum(math.log(x) for x in vals) / len(vals)) if vals else None


def cpu(r: Dict[str, Any]) -> float:
    return float(r["user_s"] + r["sys_s"])


METRICS = {"wall": lambda r: r["wall_s"], "cpu": cpu, "rss": lambda r: r["tree_peak_rss"]}


def ratios(ok: List[Dict[str, Any]], ref: Dict[int, Dict[str, Any]],
           metric: str) -> List[float]:
    get = METRICS[metric]
    return [get(r) / get(ref[r["round"]]) for r in ok
            if r["round"] in ref and get(ref[r["round"]]) > 0]


def summarise(result: Dict[str, Any]) -> Dict[str, Any]:
    """Per workload and variant: medians and per-round ratios; per family: geometric means."""
    measured = [r for r in result["raw"] if r["round"] >= 0]
    variants = [v["name"] for v in result["variants"]]
    cells: Dict[str, Dict[str, Any]] = {}
    for w in result["workloads"]:
        rows = [r for r in measured if r["workload"] == w["name"]]
        refs = {name: {r["round"]: r for r in rows if r["variant"] == name and r["ok"]}
                for name in (BASE, GC_PEER)}
        per: Dict[str, Any] = {}
        for name in variants:
            mine = [r for r in rows if r["variant"] == name]
            ok = [r for r in mine if r["ok"]]
            if not mine:
                continue
            entry: Dict[str, Any] = {"runs": len(ok), "failed": len(mine) - len(ok),
                                     "same_output": all(r.get("same_output", True)
                                                        for r in ok)}
            for key in ("wall_s", "user_s", "sys_s", "minor_faults", "major_faults",
                        "peak_rss", "tree_peak_rss", "tree_processes"):
                entry[key] = med([r[key] for r in ok])
            entry["cpu_s"] = med([cpu(r) for r in ok])
            for ref_name, label in ((BASE, "vs_pymalloc"), (GC_PEER, "vs_gc_peer")):
                for metric in METRICS:
                    values = ratios(ok, refs[ref_name], metric)
                    entry[f"{metric}_{label}"] = {
                        "median": med(values), "min": min(values, default=None),
                        "max": max(values, default=None), "rounds": values}
            per[name] = entry
        cells[w["name"]] = per
    families: Dict[str, Any] = {}
    for family in FAMILIES:
        names = [w["name"] for w in result["workloads"] if w["family"] == family]
        if not names:
            continue
        fam: Dict[str, Any] = {"workloads": names}
        for name in variants:
            entry = {}
            for label in ("vs_pymalloc", "vs_gc_peer"):
                for metric in METRICS:
                    meds = [((cells[n].get(name) or {}).get(f"{metric}_{label}") or {})
                            .get("median") for n in names]
                    vals = [x for x in meds if x is not None]
                    entry[f"{metric}_{label}"] = {
                        "geomean": geomean(vals), "min": min(vals, default=None),
                        "max": max(vals, default=None),
                        "below_1": sum(1 for x in vals if x < 1), "count": len(vals)}
            fam[name] = entry
        families[family] = fam
    return {"cells": cells, "families": families}


# ---------------------------------------------------------------- output


def f2(value: Optional[float], spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def spread(stat: Optional[Dict[str, Any]]) -> str:
    """"median (min-max)" of a ratio."""
    if not stat or stat.get("median") is None:
        return "-"
    if stat["min"] == stat["max"]:
        return f2(stat["median"])
    return f"{f2(stat['median'])} ({f2(stat['min'])}-{f2(stat['max'])})"


def wall_cpu(entry: Dict[str, Any], against: str) -> str:
    """One table cell: the wall ratio (median, min-max) / the CPU ratio (median),
    `against` "pymalloc" or "gc_peer"."""
    return (f"{spread(entry.get(f'wall_vs_{against}'))} / "
            f"{f2((entry.get(f'cpu_vs_{against}') or {}).get('median'))}")


def json_name(result: Dict[str, Any]) -> str:
    """The file name of the run's --json output (from its command line)."""
    words = result["command"].split()
    return (os.path.basename(words[words.index("--json") + 1]) if "--json" in words[:-1]
            else "the --json output")


def load_range(raw: List[Dict[str, Any]]) -> str:
    loads = sorted(r["load"][0] for r in raw if r.get("load"))
    if not loads:
        return "not recorded"
    return f"{loads[0]:.1f} to {loads[-1]:.1f}, median {statistics.median(loads):.1f}"


def table(header: List[str], rows: List[List[str]], right_from: int = 1) -> List[str]:
    rule = "|" + "|".join("---" if i < right_from else "---:" for i in range(len(header))) + "|"
    return ["| " + " | ".join(header) + " |", rule] + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(result: Dict[str, Any]) -> str:
    m = result["machine"]
    s = result["summary"]
    cells, families = s["cells"], s["families"]
    names = [v["name"] for v in result["variants"]]
    others = [n for n in names if n != BASE]
    vs_gc = [n for n in names if n not in (BASE, GC_PEER)]
    st = result["settings"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `scripts/bench.py` (do not edit by hand; the raw runs are in "
        f"[{json_name(result)}]({json_name(result)})). To run it again, from the repository "
        "root:",
        "",
        "```sh",
        result["command"],
        "```",
        "",
        f"(`python` there: a CPython {'.'.join(result['python'].split('.')[:2])}, the "
        "interpreter every run used; `--python PY` builds the venv from another one. The "
        "first run installs the programs from PyPI and makes the inputs, in "
        "`~/.cache/bump_global-real-programs/pyX.Y` unless `--work` says otherwise; drop "
        "`--seed` for new shuffles.)",
        "",
        f"- Date: {result['date']}; Python {result['python']}; bump_global "
        f"{result['versions'].get('bump_global')} (commit {result['versions'].get('commit')}); "
        f"libmimalloc {result['versions'].get('libmimalloc2.0') or 'absent'}, libjemalloc "
        f"{result['versions'].get('libjemalloc2') or 'absent'}.",
        f"- Machine: {m['cpu_model']}, {m['cpu_count']} cores, "
        f"{f2((m.get('memory_total') or 0) / MIB, '.0f')} MiB; Linux {m['kernel']}; THP "
        f"`{m['thp_enabled']}`; load average (1, 5, 15 min) at start {m.get('loadavg_start')}, "
        f"at end {m.get('loadavg_end')}; 1-minute load average when each run started: "
        f"{load_range(result['raw'])}.",
        f"- {st['warmup']} warm-up round(s) discarded, then {st['rounds']} measured round(s); "
        f"in every round each workload ran once under every variant, in an order shuffled for "
        f"that round and workload (seed {st['seed']}; every order is in the JSON file). "
        f"{'**Quick: tiny sizes, not a measurement.** ' if st['quick'] else ''}"
        f"Wall time from just before the spawn to the reaping (`os.wait4`); CPU = user + "
        f"system time of the process and the children it waited for; peak RSS: `ru_maxrss` "
        f"for the workload scripts (one process), and for real programs the largest sum of "
        f"the RSS of the process tree, sampled from `/proc` every {st['sample_ms']:g} ms "
        f"(never below `ru_maxrss`).",
        "- Every variant gave the pymalloc run's exit status and output in every round."
        if not result["output_problems"] else
        f"- **{len(result['output_problems'])} run(s) gave another output or exit status "
        f"than pymalloc's** (listed at the end).",
        "",
        "Variants:",
        "",
    ]
    lines += [f"- `{v['name']}`: {v['what']}" for v in result["variants"]]
    lines += [f"- not run: {n}" for n in result["notes"]]
    lines += ["", "The GC policy: `GCX=1` makes a `sitecustomize.py` (on every variant's "
              "`PYTHONPATH`) do `gc.set_threshold(a * 10, b, c * 10)`, what bump_global's "
              "default `gc=\"relaxed\"` does; the `+gc` peers have it, so a bump variant "
              "compared with `pymalloc+gc` shows the allocator's share alone."]

    lines += ["", "## Summary: geometric means per family", "",
              "Geometric mean over the workloads of a family of the per-workload median "
              "ratios (below 1 is faster or smaller), and how many workloads are below 1. "
              "\"vs pymalloc+gc\" is the allocator's share: the same GC policy on both sides.",
              ""]
    rows = []
    for family, fam in families.items():
        for n in others:
            e = fam.get(n) or {}
            row = [f"{family} ({len(fam['workloads'])})", f"`{n}`"]
            for key in ("wall_vs_pymalloc", "cpu_vs_pymalloc", "wall_vs_gc_peer",
                        "cpu_vs_gc_peer", "rss_vs_pymalloc"):
                g = e.get(key) or {}
                if n == GC_PEER and key.endswith("gc_peer"):
                    row.append("")
                    continue
                row.append("-" if g.get("geomean") is None else
                           f"{f2(g['geomean'])} ({g['below_1']}/{g['count']} < 1)")
            rows.append(row)
    lines += table(["family", "variant", "wall vs pymalloc", "CPU vs pymalloc",
                    "wall vs pymalloc+gc", "CPU vs pymalloc+gc", "peak RSS vs pymalloc"],
                   rows, right_from=2)

    for family, fam in families.items():
        ws = [w for w in result["workloads"] if w["name"] in fam["workloads"]]
        lines += ["", f"## Family `{family}`: wall and CPU time against plain pymalloc", "",
                  "pymalloc: median wall s / CPU s. Other columns: median of the per-round "
                  "ratios to the pymalloc run of the same round, wall (min-max) / CPU.", ""]
        rows = []
        for w in ws:
            c = cells[w["name"]]
            b = c.get(BASE) or {}
            row = [f"{w['name']}", f"{f2(b.get('wall_s'), '.3f')} / {f2(b.get('cpu_s'), '.3f')}"]
            for n in others:
                e = c.get(n) or {}
                row.append(wall_cpu(e, "pymalloc"))
            rows.append(row)
        lines += table(["workload", "pymalloc s"] + [f"`{n}`" for n in others], rows)
        lines += ["", f"## Family `{family}`: the GC policy's share and the allocator's share",
                  "", "GC share: `pymalloc+gc` / `pymalloc` (the GC policy alone, any "
                  "allocator can have it). Other columns: the allocator's share, ratio to "
                  "`pymalloc+gc` of the same round, wall (min-max) / CPU.", ""]
        rows = []
        for w in ws:
            c = cells[w["name"]]
            g = c.get(GC_PEER) or {}
            row = [w["name"], wall_cpu(g, "pymalloc")]
            for n in vs_gc:
                e = c.get(n) or {}
                row.append(wall_cpu(e, "gc_peer"))
            rows.append(row)
        lines += table(["workload", "GC share"] + [f"`{n}`" for n in vs_gc], rows)
        lines += ["", f"## Family `{family}`: peak RSS, system time, page faults", "",
                  "Median peak RSS in MiB (ratio to pymalloc) / system CPU s / minor page "
                  "faults in thousands. " + ("Peak RSS of the process tree (sampled); "
                                              "the processes seen in brackets after the "
                                              "workload's name." if family == "real" else ""),
                  ""]
        rows = []
        for w in ws:
            c = cells[w["name"]]
            procs = max((e.get("tree_processes") or 0) for e in c.values()) if c else 0
            row = [w["name"] + (f" ({procs:.0f})" if family == "real" and procs else "")]
            for n in names:
                e = c.get(n) or {}
                rss, faults = e.get("tree_peak_rss"), e.get("minor_faults")
                ratio = (e.get("rss_vs_pymalloc") or {}).get("median")
                row.append(f"{f2(None if rss is None else rss / MIB, '.0f')}"
                           + ("" if n == BASE else f" ({f2(ratio)})")
                           + f" / {f2(e.get('sys_s'))} / "
                           f"{f2(None if faults is None else faults / 1000, '.0f')}")
            rows.append(row)
        lines += table(["workload"] + [f"`{n}`" for n in names], rows)

    lines += pays_section(result)
    lines += ["", "## Workloads", ""]
    lines += [f"- `{w['name']}` ({w['family']}): {w['what']}" for w in result["workloads"]]
    lines += ["", "## Probes", "", "What each variant got, checked in a run of its own before "
              "the first round:", ""]
    for n, info in result["probes"].items():
        lines.append(f"- `{n}`: GC thresholds {info.get('gc_threshold')}, bump_global "
                     f"installed {info.get('bump')}"
                     + (f" {info['bump_config']}" if info.get("bump_config") else "")
                     + (f", mapped {', '.join(info['mapped'])}" if info.get("mapped") else "")
                     + (f"; **{info['error']}**" if info.get("error") else ""))
    problems = result["output_problems"] + [
        f"{r['workload']} round {r['round']} {r['variant']}: {r.get('error')}"
        for r in result["raw"] if not r["ok"]]
    if result.get("partial"):
        problems.insert(0, "PARTIAL RESULT: the run stopped before its last round")
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def pays_section(result: Dict[str, Any]) -> List[str]:
    """"When bump allocation pays, and when it does not": each bump variant against
    pymalloc+gc, workload by workload, from the figures above."""
    cells = result["summary"]["cells"]
    names = [v["name"] for v in result["variants"]]
    bumps = [n for n in names if n.startswith("bump")]
    if GC_PEER not in names or not bumps:
        return []
    peers = [n for n in names if n.endswith("+gc") and n != GC_PEER]
    lines = ["", "## When bump allocation pays, and when it does not", "",
             "Each bump variant against `pymalloc+gc` (the same GC policy), from the medians "
             "of the per-round ratios, wall / CPU in brackets: faster where both are below "
             "0.95, slower where both are above 1.05, mixed otherwise (within the noise, or "
             "wall and CPU disagree: a helper thread's CPU time shows in CPU, not in wall). "
             "Then the workloads where it is faster than pymalloc+gc in that sense and its "
             "median wall ratio to pymalloc is also at least 5% below that of every other "
             "peer with the same GC policy. Spreads are wide on a busy machine: see the "
             "min-max columns above.", ""]

    def pair(e: Dict[str, Any]) -> str:
        return (f"{f2((e.get('wall_vs_gc_peer') or {}).get('median'))} / "
                f"{f2((e.get('cpu_vs_gc_peer') or {}).get('median'))}")

    for n in bumps:
        groups: Dict[str, List[str]] = {"faster": [], "mixed": [], "slower": []}
        beats: List[str] = []
        for w in result["workloads"]:
            e = cells[w["name"]].get(n) or {}
            r = (e.get("wall_vs_gc_peer") or {}).get("median")
            if r is None:
                continue
            c = (e.get("cpu_vs_gc_peer") or {}).get("median") or r
            key = ("faster" if max(r, c) < 0.95 else "slower" if min(r, c) > 1.05
                   else "mixed")
            groups[key].append(f"{w['name']} ({pair(e)})")
            mine = (e.get("wall_vs_pymalloc") or {}).get("median")
            beaten = [p for p in peers if key == "faster" and mine is not None and
                      mine < 0.95 * (((cells[w["name"]].get(p) or {}).get("wall_vs_pymalloc")
                                      or {}).get("median") or 0)]
            if key == "faster" and len(beaten) == len(peers):
                beats.append(w["name"])
        rss = [(cells[w["name"]].get(n) or {}).get("rss_vs_pymalloc", {}).get("median")
               for w in result["workloads"]]
        rss = [x for x in rss if x is not None]
        lines.append(f"- `{n}`: faster on {len(groups['faster'])}: "
                     f"{', '.join(groups['faster']) or 'none'}. Mixed on "
                     f"{len(groups['mixed'])}: {', '.join(groups['mixed']) or 'none'}. Slower on "
                     f"{len(groups['slower'])}: {', '.join(groups['slower']) or 'none'}. "
                     f"At least 5% faster than every peer with the same GC policy "
                     f"({', '.join([GC_PEER, *peers])}) on: {', '.join(beats) or 'none'}. "
                     f"Peak RSS {f2(min(rss, default=None))} to {f2(max(rss, default=None))} "
                     f"times pymalloc's.")
    return lines


# ---------------------------------------------------------------- main


def parse_list(text: Optional[str]) -> Optional[List[str]]:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter that builds the venv every run uses "
                             "(default: this one)")
    parser.add_argument("--work", type=Path, default=None,
                        help="venv, inputs and run folders (default: the one of "
                             "scripts/real_programs.py for that Python)")
    parser.add_argument("--no-install", action="store_true",
                        help="use the venv as it is (no pip install)")
    parser.add_argument("--interpreter", default=None, metavar="PYTHON",
                        help="no venv: run the workload scripts with PYTHON as it is (it must "
                             "have bump_global installed, editable or not); real programs "
                             "are left out")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds (default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the shuffles (default: from the clock; recorded)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated from {','.join(FAMILIES)} (default: all)")
    parser.add_argument("--workloads", help="comma-separated names (default: the families' "
                                            "defaults; see --list)")
    parser.add_argument("--variants", help="comma-separated names (pymalloc always runs; "
                                           "default: all; see --list)")
    parser.add_argument("--sample-ms", type=float, default=20.0,
                        help="process-tree RSS sampling period of real programs (default 20)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny workload sizes: a smoke run of the instrument")
    parser.add_argument("--json", dest="json_out", type=Path, help="write everything here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown report here")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="run nothing: summarise FILE's raw runs again")
    parser.add_argument("--list", action="store_true", help="list workloads and variants")
    ns = parser.parse_args(argv)
    if ns.rounds < 1 or ns.warmup < 0 or ns.sample_ms <= 0:
        parser.error("--rounds must be 1 or more, --warmup 0 or more, --sample-ms positive")
    return ns


def choose_workloads(ns: argparse.Namespace) -> List[Workload]:
    families = parse_list(ns.families) or []
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise SystemExit(f"bench: unknown famil(ies) {', '.join(bad)} in --families: accepted "
                         f"are {', '.join(FAMILIES)}")
    real = {p.name: p for p in rp.PROGRAMS}
    known = {w.name: w for w in WORKLOADS}
    known.update({n: Workload(n, "real", p.about) for n, p in real.items()})
    names = parse_list(ns.workloads)
    if names is not None:
        bad = [n for n in names if n not in known]
        if bad:
            raise SystemExit(f"bench: unknown workload(s) {', '.join(bad)} in --workloads: "
                             f"accepted are {', '.join(known)}")
        return [known[n] for n in names if known[n].family in families]
    return ([w for w in WORKLOADS if w.family in families and w.default]
            + ([known[n] for n in DEFAULT_REAL] if "real" in families else []))


def write(result: Dict[str, Any], ns: argparse.Namespace) -> None:
    if ns.json_out:
        ns.json_out.write_text(json.dumps(result, indent=1) + "\n")
    if ns.markdown and "summary" in result:
        ns.markdown.write_text(markdown(result))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ns = parse_args(argv)
    if ns.list:
        for w in WORKLOADS:
            print(f"{w.name:22} {w.family + ('' if w.default else '*'):8} {w.what}")
        for p in rp.PROGRAMS:
            mark = "real" if p.name in DEFAULT_REAL else "real*"
            print(f"{p.name:22} {mark:8} {p.about}")
        print("(*: not run by default; name it in --workloads)\n")
        for v in VARIANTS:
            print(f"{v.name:22} {v.what}")
        return 0
    if ns.from_json:
        result = json.loads(ns.from_json.read_text())
        if result.get("schema") != SCHEMA:
            raise SystemExit(f"bench: {ns.from_json} is not a {SCHEMA} file (its schema: "
                             f"{result.get('schema')}): give a --json output of this script")
        result["output_problems"] = check_outputs(result["raw"])
        result["summary"] = summarise(result)
        write(result, ns)
        if not ns.json_out and not ns.markdown:
            print(markdown(result))
        return 0

    workloads = choose_workloads(ns)
    select_variants(parse_list(ns.variants), (3, 99), {})  # unknown names: one line, exit
    if not workloads:
        raise SystemExit("bench: nothing to run (--families and --workloads select nothing)")
    notes: List[str] = []
    if ns.interpreter and any(w.family == "real" for w in workloads):
        notes.append("real programs left out: --interpreter runs workload scripts only")
        workloads = [w for w in workloads if w.family != "real"]
    python = ns.interpreter or ns.python
    pyver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    work = (ns.work or rp.default_work() / f"py{pyver}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    vpy = ns.interpreter or str(venv / "bin" / "python")
    programs = [p for p in rp.PROGRAMS if p.name in {w.name for w in workloads}]
    if ns.interpreter:
        pass
    elif not ns.no_install:
        print(f"bench: venv {venv}: installing the programs and this checkout", flush=True)
        kept = {p.name for p in rp.install_programs(ns.python, venv, programs)}
        workloads = [w for w in workloads if w.family != "real" or w.name in kept]
    elif not Path(vpy).exists():
        raise SystemExit(f"bench: --no-install, but there is no venv in {venv}: run once "
                         "without --no-install")
    facts = rp.venv_facts(vpy)
    pyversion = tuple(facts["version"])
    libraries = find_preload_libraries()
    variants, skipped = select_variants(parse_list(ns.variants), pyversion,  # type: ignore
                                        libraries)
    notes += skipped
    for note in notes:
        print(f"bench: {note}", file=sys.stderr, flush=True)
    gcx_dir = work / "gcx"
    gcx_dir.mkdir(exist_ok=True)
    (gcx_dir / "sitecustomize.py").write_text(rp.GCX_SITE)
    extras = {v.name: variant_extra(v, libraries) for v in variants}
    probes = {v.name: probe(vpy, v, extras[v.name], gcx_dir) for v in variants}
    for name, info in probes.items():
        if info.get("error"):
            print(f"bench: probe of {name}: {info['error']}", file=sys.stderr, flush=True)

    ctx_base = dict(work=work, venv=venv, python=vpy, stdlib=Path(facts["stdlib"]),
                    index=work / "index", pyversion=pyversion)
    items: List[Item] = []
    by_name = {p.name: p for p in programs}
    for w in workloads:
        if w.family != "real":
            items.append(Item(w))
            continue
        ctx = rp.Ctx(inputs=work / "inputs" / w.name, **ctx_base)  # type: ignore[arg-type]
        problem = rp.prepare_inputs(by_name[w.name], ctx)
        if problem:
            notes.append(f"{w.name} left out: {problem}")
            print(f"bench: {w.name} left out: {problem}", file=sys.stderr, flush=True)
            continue
        items.append(Item(w, by_name[w.name], ctx))
    big_json = work / "inputs" / f"big-{BIG_JSON_MB['quick' if ns.quick else 'full']}mb.json"
    if any(i.workload.name == "json_loads_big" for i in items) and not big_json.exists():
        big_json.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([vpy, str(WORKLOAD_DIR / "json_loads_big.py"), "--write", str(big_json),
                        BIG_JSON_MB["quick" if ns.quick else "full"]], check=True,
                       env=rp.base_env())

    seed = ns.seed if ns.seed is not None else int(time.time()) % 100_000
    rng = random.Random(seed)
    args = list(argv if argv is not None else sys.argv[1:])
    if ns.seed is None:
        args += ["--seed", str(seed)]
    result: Dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python scripts/bench.py " + " ".join(shlex.quote(a) for a in args),
        "python": facts["full"], "machine": machine_info(),
        "versions": {"bump_global": facts["bump_global"], "commit": git_commit(),
                     "libmimalloc2.0": package_version("libmimalloc2.0"),
                     "libjemalloc2": package_version("libjemalloc2")},
        "settings": {"rounds": ns.rounds, "warmup": ns.warmup, "seed": seed,
                     "quick": ns.quick, "sample_ms": ns.sample_ms},
        "workloads": [{"name": i.workload.name, "family": i.workload.family,
                       "what": i.workload.what} for i in items],
        "variants": [{"name": v.name, "what": v.what, "env": extras[v.name]}
                     for v in variants],
        "notes": notes, "probes": probes, "orders": [], "raw": [], "partial": True,
    }
    total = (ns.warmup + ns.rounds) * len(items) * len(variants)
    done, t0 = 0, time.perf_counter()
    for rnd in range(-ns.warmup, ns.rounds):
        orders: Dict[str, List[str]] = {}
        for item in items:
            order = list(variants)
            rng.shuffle(order)
            orders[item.workload.name] = [v.name for v in order]
            for position, v in enumerate(order):
                rec = run_one(item, v, extras[v.name], vpy, work, gcx_dir, f"r{rnd}",
                              big_json, ns.quick, ns.sample_ms / 1000)
                rec.update(round=rnd, position=position, load=loadavg())
                result["raw"].append(rec)
                done += 1
                print(f"[{done}/{total} {time.perf_counter() - t0:6.0f}s] round {rnd:2} "
                      f"{item.workload.name:18} {v.name:16} "
                      + (f"{rec['wall_s']:7.2f} s wall {cpu(rec):7.2f} s CPU "
                         f"{rec['tree_peak_rss'] / MIB:7.0f} MiB" if rec["ok"]
                         else f"FAILED: {rec['error']}"), flush=True)
        result["orders"].append({"round": rnd, "order": orders})
        if ns.json_out:
            ns.json_out.write_text(json.dumps(result, indent=1) + "\n")
    result["partial"] = False
    result["elapsed_s"] = time.perf_counter() - t0
    result["machine"]["loadavg_end"] = loadavg()
    result["output_problems"] = check_outputs(result["raw"])
    result["summary"] = summarise(result)
    write(result, ns)
    if not ns.json_out and not ns.markdown:
        print(markdown(result))
    failed = [r for r in result["raw"] if not r["ok"]]
    print(f"bench: {len(result['raw'])} runs in {result['elapsed_s']:.0f} s, {len(failed)} "
          f"failed, {len(result['output_problems'])} with another output than pymalloc's",
          file=sys.stderr)
    return 1 if failed or result["output_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
