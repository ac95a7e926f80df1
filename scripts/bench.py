"""Benchmarks: bump_global against pymalloc, glibc malloc, jemalloc and mimalloc.

    pip install pyperf        # required; psutil is optional
    python scripts/bench.py [--runs 5] [--workloads a,b] [--variants a,b] [--quick]
                            [--micro] [--json FILE] [--markdown FILE] [--pyperf-json FILE]
    python scripts/bench.py --from-json FILE [--json FILE] [--markdown FILE]

Every workload (a small script in ``scripts/workloads/``) runs under every
allocator variant in a fresh interpreter process:

- ``pymalloc``: CPython's default allocator;
- ``malloc``: ``PYTHONMALLOC=malloc`` (the C library's malloc, glibc on Linux);
- ``jemalloc``, ``mimalloc``: ``LD_PRELOAD`` of the system library (Debian
  ``libjemalloc2``, ``libmimalloc2.0``) with ``PYTHONMALLOC=malloc``; skipped
  with a note where the library is absent (this script installs nothing);
- ``bump``: ``bump_global.install()`` with its defaults (1 GiB region, scope
  "python", fallback when full);
- ``bump_16g``: a 16 GiB region, so that no workload reaches the fallback;
- ``bump_obj_16g``: scope "objects" (only ``PyObject_Malloc``), 16 GiB;
- ``bump_thp``: transparent huge pages, only if ``bump_global.install`` accepts
  a ``huge_pages`` parameter (otherwise noted as not offered by the engine);
- ``bump_incr`` (not in the default set): ``BUMP_GLOBAL_COMMIT=incremental``.

Why the runs are spawned here and not by ``pyperf.Runner``: the Runner runs all
the worker processes of one benchmark, then the next benchmark, and its workers
share one environment, while the allocator is chosen by the environment
(``PYTHONMALLOC``, ``LD_PRELOAD``) and must change from one process to the next.
On a small, noisy virtual machine the ratio to pymalloc is only meaningful when
measured side by side, so this script interleaves the processes itself: round
after round, each workload runs once under every variant (A, B, C, ..., A, B,
C, ..., the variant order rotated each round), and a ratio is computed per
round against the pymalloc run of the same round.  The first ``--warmups``
rounds (default 1) are discarded.  pyperf keeps the statistics and the storage:
each process is a ``pyperf.Run`` (value: its wall time), each workload x variant
a ``pyperf.Benchmark`` (median, spread), all of them a ``pyperf.BenchmarkSuite``
that is embedded in the JSON output and can be written on its own
(``--pyperf-json``) for ``python -m pyperf stats|compare_to``.

Per process the parent records the wall time from spawn to exit, and from
``os.wait4`` the peak RSS (``ru_maxrss``), user and system time, page faults and
context switches.  A small runner inside the child times the workload itself
and, for the bump variants, writes ``bump_global.report_dict()`` (bytes bumped,
reallocs moved, bytes copied, fallbacks...).  If ``python -m bump_global run``
exists (with ``--json`` and the options a variant needs), it is used for the bump
variants instead: what a user runs, including its own start-up and the report
it writes at exit.  The ``startup`` workload (an empty script) measures these
fixed costs for every variant; the "workload's own time" table leaves them out,
and the CPU-time table (user + system) is less sensitive than wall time to
other load on the machine.

With ``--json``, the file is rewritten after every round with the raw data so
far (``"partial": true``): an interrupted run can still be rendered with
``--from-json``, which runs nothing and summarises a JSON file's raw data again.

``json_loads_big`` reads a document of about 100 MB written once, untimed,
into a temporary directory before the first round: its time is reading the
file from the page cache plus ``json.loads``.

``--micro`` adds the C microbenchmarks of ``bump_global._testing`` (if that
extension is built): ns per ``PyObject_Malloc``+``PyObject_Free`` pair and per
allocation in batches, under every variant in fresh processes, and the cost of
a first touch of fresh memory (4 KiB pages, and with ``MADV_HUGEPAGE``).

``--quick``: every workload at a tiny size, one round, no warm-up: a smoke run
of the instrument, not a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

try:
    import pyperf
except ImportError:
    raise SystemExit("scripts/bench.py needs pyperf: pip install pyperf") from None

HERE = Path(__file__).resolve().parent
WORKLOAD_DIR = HERE / "workloads"
REPO = HERE.parent
MIB = 1024 * 1024


@dataclass(frozen=True)
class Workload:
    name: str
    family: str  # "build" (build-and-exit) or "churn"
    script: str
    args: Tuple[str, ...]
    quick_args: Tuple[str, ...]
    what: str


# Arguments are scales (see each script's docstring).  "{big_json}" is replaced
# by the path of the document written in the setup step.
WORKLOADS: Tuple[Workload, ...] = (
    Workload("startup", "base", "startup.py", (), (), "empty script: start-up and set-up"),
    Workload("tuples_list", "build", "tuples_list.py", ("5000000",), ("50000",),
             "list of 5M (i, 2*i) tuples"),
    Workload("dict_str", "build", "dict_str.py", ("2000000",), ("20000",),
             "dict of 2M str(i) -> i"),
    Workload("json_loads_big", "build", "json_loads_big.py", ("{big_json}",),
             ("{big_json}",), "json.loads of a ~100 MB document"),
    Workload("ast_compile", "build", "ast_compile.py", ("2048",), ("32",),
             "ast.parse + compile of 2 MiB of source"),
    Workload("nested_serialise", "build", "nested_serialise.py", ("100000",), ("1000",),
             "100k nested records, json.dumps + pickle.dumps"),
    Workload("temporaries", "churn", "temporaries.py", ("10000000",), ("100000",),
             "10M x = (i, str(i))"),
    Workload("json_loads_small", "churn", "json_loads_small.py", ("40000",), ("400",),
             "3 small JSON documents parsed 40k times"),
    Workload("raytrace", "churn", "raytrace.py", ("300",), ("20",),
             "ray tracer, 300x300 image"),
    Workload("go", "churn", "go.py", ("25",), ("1",), "25 random Go playouts, 9x9"),
    Workload("deltablue", "churn", "deltablue.py", ("60",), ("2",),
             "constraint solver, 60 rounds"),
    Workload("richards", "churn", "richards.py", ("40",), ("2",),
             "task scheduler simulation, 40 rounds"),
)
BIG_JSON_MB = {"full": "100", "quick": "1"}


@dataclass
class Variant:
    name: str
    env: Dict[str, str] = field(default_factory=dict)
    preload: Optional[str] = None  # library file name to LD_PRELOAD
    bump: Optional[Dict[str, Any]] = None  # bump_global.install keyword arguments
    default: bool = True
    what: str = ""
    # Filled in by resolve_variants:
    available: bool = True
    note: str = ""
    harness: str = "runner"


def all_variants() -> List[Variant]:
    return [
        Variant("pymalloc", what="CPython default (pymalloc)"),
        Variant("malloc", env={"PYTHONMALLOC": "malloc"}, what="PYTHONMALLOC=malloc (libc)"),
        Variant("jemalloc", env={"PYTHONMALLOC": "malloc"}, preload="libjemalloc.so.2",
                what="LD_PRELOAD jemalloc + PYTHONMALLOC=malloc"),
        Variant("mimalloc", env={"PYTHONMALLOC": "malloc"}, preload="libmimalloc.so.2",
                what="LD_PRELOAD mimalloc + PYTHONMALLOC=malloc"),
        Variant("bump", bump={}, what="bump_global.install() with its defaults (listed above)"),
        Variant("bump_16g", bump={"size": "16G"}, what="bump_global, 16 GiB region"),
        Variant("bump_obj_16g", bump={"size": "16G", "scope": "objects"},
                what="bump_global, scope objects, 16 GiB"),
        Variant("bump_nopf_16g", bump={"size": "16G", "prefault": False, "huge_pages": False,
                                       "gc": "keep"},
                what="bump_global, 16 GiB, no prefault thread, no huge pages, gc='keep'"),
        Variant("bump_thp", bump={"size": "16G", "huge_pages": True, "gc": "keep"},
                what="bump_global, 16 GiB, transparent huge pages, gc='keep'"),
        Variant("bump_gc_relaxed", bump={"size": "16G", "huge_pages": False, "gc": "relaxed"},
                what="bump_global, 16 GiB, no huge pages, gc='relaxed' (collections 10 "
                     "times rarer)"),
        Variant("bump_gc_off", bump={"size": "16G", "huge_pages": False, "gc": "off"},
                what="bump_global, 16 GiB, no huge pages, gc='off'"),
        Variant("bump_best", bump={"size": "16G", "huge_pages": True, "gc": "relaxed"},
                what="bump_global, 16 GiB, huge pages and gc='relaxed'"),
        Variant("bump_last", bump={"size": "16G", "reclaim": "last"},
                what="bump_global, 16 GiB, defaults otherwise, reclaim='last' (opt-in)"),
        Variant("bump_classes", bump={"size": "16G", "reclaim": "classes"},
                what="bump_global, 16 GiB, defaults otherwise, reclaim='classes' (opt-in)"),
        Variant("bump_naive", bump={"size": "16G", "huge_pages": False, "gc": "keep",
                                    "prefault": False},
                default=False, what="bump_global, 16 GiB, no prefault, no huge pages, "
                                    "gc='keep'"),
        Variant("bump_incr", env={"BUMP_GLOBAL_COMMIT": "incremental"}, bump={"size": "16G"},
                default=False, what="bump_global, 16 GiB, BUMP_GLOBAL_COMMIT=incremental"),
    ]


# The child: runs one workload script, timing it; for bump variants installs the
# allocator first and writes its report.  argv: OUT INSTALL_KWARGS_JSON SCRIPT ARGS...
RUNNER = """\
import json, runpy, sys, time
out, kwargs = sys.argv[1], json.loads(sys.argv[2])
if kwargs is not None:
    import bump_global
    bump_global.install(**kwargs)
sys.argv = sys.argv[3:]
start = time.perf_counter()
runpy.run_path(sys.argv[0], run_name="__main__")
elapsed = time.perf_counter() - start
result = {"workload_s": elapsed}
if kwargs is not None:
    result["report"] = bump_global.report_dict(elapsed)
with open(out, "w") as f:
    json.dump(result, f)
"""

# The child of --micro: argv: OUT INSTALL_KWARGS_JSON SPEC_JSON
MICRO_RUNNER = """\
import json, sys
out, kwargs, spec = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
if kwargs is not None:
    import bump_global
    bump_global.install(**kwargs)
from bump_global import _testing as mb
result = {}
for name, fn, args in spec:
    result[name] = getattr(mb, fn)(*args)
if kwargs is not None:
    result["report"] = bump_global.report_dict()
with open(out, "w") as f:
    json.dump(result, f)
"""

# Probe of the bump_global the children will import.
PROBE = """\
import inspect, json, sys
info = {"ok": False}
try:
    import bump_global
    info["version"] = bump_global.__version__
    params = inspect.signature(bump_global.install).parameters
    info["params"] = list(params)
    info["defaults"] = {k: p.default for k, p in params.items()
                        if isinstance(p.default, (str, int, float, bool))}
    info["ok"] = True
    try:
        import bump_global._testing
        info["microbench"] = True
    except ImportError as exc:
        info["microbench"] = False
        info["microbench_error"] = str(exc)
except Exception as exc:
    info["error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(info))
"""


# ---------------------------------------------------------------- environment


def read_text(path: str) -> Optional[str]:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def find_library(filename: str) -> Optional[str]:
    """The path of a shared library: `ldconfig -p`, then the usual lib directories."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        left, _, right = line.partition("=>")
        if left.strip().split(" ")[0] == filename and Path(right.strip()).exists():
            return right.strip()
    dirs = ["/usr/lib", "/usr/local/lib", "/lib"]
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    if multiarch:
        dirs = [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] + dirs
    for d in dirs:
        candidate = Path(d, filename)
        if candidate.exists():
            return str(candidate)
    return None


def package_version(name: str) -> Optional[str]:
    try:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                              capture_output=True, text=True, check=False)
    except OSError:
        return None
    return proc.stdout.strip() or None


def child_env(extra: Dict[str, str], preload: Optional[str]) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONMALLOC", "LD_PRELOAD", "BUMP_GLOBAL", "BUMP_GLOBAL_COMMIT",
                "PYTHONTRACEMALLOC", "PYTHONDEVMODE"):
        env.pop(key, None)
    env.update(extra)
    if preload:
        env["LD_PRELOAD"] = preload
    return env


def probe_bump(env: Dict[str, str]) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, check=False, cwd=tempfile.gettempdir())
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    except (IndexError, ValueError):
        return {"ok": False, "error": proc.stderr.strip()[-300:]}


def probe_cli(env: Dict[str, str]) -> Optional[str]:
    """The help text of ``python -m bump_global run`` if it exists and has --json."""
    proc = subprocess.run([sys.executable, "-m", "bump_global", "run", "--help"], env=env,
                          capture_output=True, text=True, check=False,
                          cwd=tempfile.gettempdir())
    if proc.returncode == 0 and "--json" in proc.stdout:
        return proc.stdout
    return None


def resolve_variants(names: Optional[Sequence[str]], env: Dict[str, str],
                     bump_info: Dict[str, Any], cli_help: Optional[str]) -> List[Variant]:
    variants = all_variants()
    known = {v.name: v for v in variants}
    if names is None:
        chosen = [v for v in variants if v.default]
    else:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"bench: unknown variant(s) {', '.join(unknown)}; "
                             f"known: {', '.join(known)}")
        chosen = [known[n] for n in names]
        if "pymalloc" not in names:
            chosen.insert(0, known["pymalloc"])  # ratios need it
    for v in chosen:
        if v.preload:
            path = find_library(v.preload)
            if path is None:
                v.available = False
                v.note = f"{v.preload} not found (Debian: apt-get install " \
                         f"{'libjemalloc2' if 'jemalloc' in v.preload else 'libmimalloc2.0'})"
            else:
                v.preload = path
        if v.bump is not None:
            params = bump_info.get("params", [])
            if not bump_info.get("ok"):
                v.available = False
                v.note = f"bump_global cannot be imported: {bump_info.get('error')}"
            elif any(k not in params for k in v.bump):
                v.available = False
                missing = [k for k in v.bump if k not in params]
                v.note = f"not offered by the engine (install() has no {', '.join(missing)})"
            elif cli_help is not None and all(cli_flag(k, val)[0] in cli_help
                                              for k, val in v.bump.items()):
                v.harness = "cli"
    return chosen


def loadavg() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_info() -> Dict[str, Any]:
    cpu = None
    cpuinfo = read_text("/proc/cpuinfo") or ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_total = None
    for line in (read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem_total = int(line.split()[1]) * 1024
    return {
        "cpu_model": cpu or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "memory_total": mem_total,
        "system": platform.system(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "thp_enabled": read_text("/sys/kernel/mm/transparent_hugepage/enabled"),
        "thp_defrag": read_text("/sys/kernel/mm/transparent_hugepage/defrag"),
        "overcommit_memory": read_text("/proc/sys/vm/overcommit_memory"),
        "libc": " ".join(platform.libc_ver()).strip() or None,
        "loadavg_start": loadavg(),
    }


# ---------------------------------------------------------------- running


@dataclass
class Measure:
    ok: bool
    wall_s: float
    rusage: Dict[str, float]
    child: Dict[str, Any]
    error: str = ""


def spawn(cmd: List[str], env: Dict[str, str], log: Path, out: Path) -> Measure:
    """Run one child process; wall time from spawn to exit, rusage from wait4."""
    if out.exists():
        out.unlink()
    with open(log, "wb") as logf:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                cwd=str(log.parent))
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    usage = {
        "peak_rss_kib": ru.ru_maxrss,  # KiB on Linux
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "minor_faults": ru.ru_minflt,
        "major_faults": ru.ru_majflt,
        "vol_ctx_switches": ru.ru_nvcsw,
        "invol_ctx_switches": ru.ru_nivcsw,
    }
    child: Dict[str, Any] = {}
    error = ""
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        error = f"exit status {proc.returncode}: " + " | ".join(tail)
    elif out.exists():
        try:
            child = json.loads(out.read_text())
        except ValueError as exc:
            error = f"unreadable child output: {exc}"
    return Measure(ok=not error, wall_s=wall, rusage=usage, child=child, error=error)


def workload_command(variant: Variant, script: Path, args: List[str], out: Path,
                     runner: Path) -> List[str]:
    if variant.bump is not None and variant.harness == "cli":
        cmd = [sys.executable, "-m", "bump_global", "run", "--json", str(out)]
        for key, value in variant.bump.items():
            cmd += cli_flag(key, value)
        return cmd + [str(script)] + args
    kwargs = json.dumps(variant.bump) if variant.bump is not None else "null"
    return [sys.executable, str(runner), str(out), kwargs, str(script)] + args


def cli_flag(key: str, value: Any) -> List[str]:
    """The `python -m bump_global run` option for install(key=value)."""
    flag = key.replace("_", "-")
    if value is True:
        return [f"--{flag}"]
    if value is False:
        return [f"--no-{flag}"]
    return [f"--{flag}", str(value)]


def child_workload_s(child: Dict[str, Any]) -> Optional[float]:
    """The workload's own time: the runner's, else the CLI report's time since install."""
    if "workload_s" in child:
        return child["workload_s"]  # type: ignore[no-any-return]
    return child.get("wall_time_s")


def bump_counters(child: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Engine counters from the runner's report_dict or the CLI's JSON report (its root)."""
    report = child.get("report", child if ("counters" in child or "processes" in child)
                       else None)
    if report and report.get("processes"):
        report = report["processes"][0]  # schema report/2: the root process
    if not report or not report.get("counters"):
        return None
    counters = dict(report["counters"])
    region = report.get("region") or {}
    counters["used"] = region.get("used")
    counters["resident"] = region.get("resident")
    counters["reserved"] = region.get("reserved")
    return counters


def run_record(m: Measure, v: Variant, fields: Dict[str, Any]) -> Dict[str, Any]:
    """One run's record: `fields`, then the rusage, the engine counters and any error."""
    rec = {**fields, **m.rusage}
    if v.bump is not None:
        rec["bump"] = bump_counters(m.child)
    if m.error:
        rec["error"] = m.error
    return rec


def run_suite(workloads: List[Workload], variants: List[Variant], rounds: int,
              warmups: int, quick: bool, tmp: Path, progress: bool,
              on_round: Optional[Callable[[List[Dict[str, Any]]], None]] = None
              ) -> List[Dict[str, Any]]:
    runner = tmp / "runner.py"
    runner.write_text(RUNNER)
    big_json = tmp / "big.json"
    if any(w.name == "json_loads_big" for w in workloads):
        mb = BIG_JSON_MB["quick" if quick else "full"]
        subprocess.run([sys.executable, str(WORKLOAD_DIR / "json_loads_big.py"), "--write",
                        str(big_json), mb], check=True, env=child_env({}, None))
    active = [v for v in variants if v.available]
    raw: List[Dict[str, Any]] = []
    total = (rounds + warmups) * len(workloads) * len(active)
    done = 0
    t0 = time.perf_counter()
    for rnd in range(warmups + rounds):
        shift = rnd % len(active)
        order = active[shift:] + active[:shift]
        for w in workloads:
            args = [a.replace("{big_json}", str(big_json))
                    for a in (w.quick_args if quick else w.args)]
            for v in order:
                out = tmp / "child.json"
                cmd = workload_command(v, WORKLOAD_DIR / w.script, args, out, runner)
                m = spawn(cmd, child_env(v.env, v.preload), tmp / "child.log", out)
                done += 1
                raw.append(run_record(m, v, {
                    "workload": w.name, "variant": v.name, "round": rnd - warmups,
                    "warmup": rnd < warmups, "ok": m.ok, "wall_s": m.wall_s,
                    "workload_s": child_workload_s(m.child)}))
                if progress:
                    print(f"[{done}/{total} {time.perf_counter() - t0:7.1f}s] round {rnd - warmups}"
                          f" {w.name:17s} {v.name:13s} {m.wall_s:7.3f} s "
                          f"{m.rusage['peak_rss_kib'] / 1024:8.1f} MiB"
                          + ("" if m.ok else f"  FAILED: {m.error}"), flush=True)
        if on_round is not None:
            on_round(raw)
    return raw


MICRO_SPEC_FULL = [
    ["pair_ns", "pair_loop", [10_000_000, 32]],
    ["batch_ns", "batch_loop", [10_000_000, 1000, 32]],
]
MICRO_SPEC_QUICK = [
    ["pair_ns", "pair_loop", [100_000, 32]],
    ["batch_ns", "batch_loop", [100_000, 1000, 32]],
]
PAGE_SPEC_FULL = [
    ["page_4k_ns", "page_touch", [1 << 30, False]],
    ["page_huge_ns", "page_touch", [1 << 30, True]],
]
PAGE_SPEC_QUICK = [
    ["page_4k_ns", "page_touch", [16 << 20, False]],
    ["page_huge_ns", "page_touch", [16 << 20, True]],
]


def run_micro(variants: List[Variant], rounds: int, quick: bool, tmp: Path,
              progress: bool) -> Dict[str, Any]:
    """The C microbenchmarks under every variant (interleaved), then page_touch."""
    runner = tmp / "micro.py"
    runner.write_text(MICRO_RUNNER)
    spec = MICRO_SPEC_QUICK if quick else MICRO_SPEC_FULL
    active = [v for v in variants if v.available]
    raw: List[Dict[str, Any]] = []
    out = tmp / "micro.json"
    for rnd in range(rounds):
        for v in active:
            kwargs = json.dumps(v.bump) if v.bump is not None else "null"
            cmd = [sys.executable, str(runner), str(out), kwargs, json.dumps(spec)]
            m = spawn(cmd, child_env(v.env, v.preload), tmp / "micro.log", out)
            raw.append(run_record(m, v, {
                "variant": v.name, "round": rnd, "ok": m.ok, "wall_s": m.wall_s,
                **{k: m.child.get(k) for k, _, _ in spec}}))
            if progress:
                print(f"[micro round {rnd}] {v.name:13s} "
                      + " ".join(f"{k}={m.child.get(k)}" for k, _, _ in spec)
                      + ("" if m.ok else f"  FAILED: {m.error}"), flush=True)
    pages: List[Dict[str, Any]] = []
    page_spec = PAGE_SPEC_QUICK if quick else PAGE_SPEC_FULL
    for rnd in range(rounds):
        cmd = [sys.executable, str(runner), str(out), "null", json.dumps(page_spec)]
        m = spawn(cmd, child_env({}, None), tmp / "micro.log", out)
        rec = {"round": rnd, "ok": m.ok, **{k: m.child.get(k) for k, _, _ in page_spec},
               "sys_s": m.rusage["sys_s"], "minor_faults": m.rusage["minor_faults"]}
        if rec.get("page_huge_ns") is not None:
            rec["page_huge_per_2m_ns"] = rec["page_huge_ns"] * 512
        if m.error:
            rec["error"] = m.error
        pages.append(rec)
    summary: Dict[str, Any] = {}
    for v in active:
        rows = [r for r in raw if r["variant"] == v.name and r["ok"]]
        summary[v.name] = {k: med([r[k] for r in rows if r.get(k) is not None])
                           for k, _, _ in spec}
    okp = [p for p in pages if p["ok"]]
    page_summary = {k: med([p[k] for p in okp if p.get(k) is not None])
                    for k in ("page_4k_ns", "page_huge_ns", "page_huge_per_2m_ns")}
    return {"spec": spec, "page_spec": page_spec, "raw": raw, "pages": pages,
            "summary": summary, "page_summary": page_summary}


# ---------------------------------------------------------------- statistics


def med(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def build_suite(raw: List[Dict[str, Any]]) -> "Optional[pyperf.BenchmarkSuite]":
    benches: Dict[str, pyperf.Benchmark] = {}
    for rec in raw:
        if rec["warmup"] or not rec["ok"]:
            continue
        name = f"{rec['workload']}:{rec['variant']}"
        meta = {"name": name, "unit": "second", "loops": 1,
                "mem_max_rss": int(rec["peak_rss_kib"]) * 1024}
        run = pyperf.Run([rec["wall_s"]], metadata=meta, collect_metadata=False)
        if name in benches:
            benches[name].add_run(run)
        else:
            benches[name] = pyperf.Benchmark([run])
    return pyperf.BenchmarkSuite(list(benches.values())) if benches else None


def summarise(raw: List[Dict[str, Any]], workloads: List[Workload],
              variants: List[Variant]) -> Dict[str, Any]:
    suite = build_suite(raw)
    by_name = {b.get_name(): b for b in suite.get_benchmarks()} if suite else {}
    measured = [r for r in raw if not r["warmup"]]
    summary: Dict[str, Any] = {}
    for w in workloads:
        base = {r["round"]: r for r in measured
                if r["workload"] == w.name and r["variant"] == "pymalloc" and r["ok"]}
        per: Dict[str, Any] = {}
        for v in variants:
            if not v.available:
                continue
            rows = [r for r in measured if r["workload"] == w.name and r["variant"] == v.name]
            ok = [r for r in rows if r["ok"]]
            bench = by_name.get(f"{w.name}:{v.name}")
            entry: Dict[str, Any] = {"runs": len(ok), "failed": len(rows) - len(ok)}
            if bench is not None:
                values = bench.get_values()
                entry.update({
                    "wall_median_s": bench.median(),
                    "wall_min_s": min(values),
                    "wall_max_s": max(values),
                    "wall_stdev_s": bench.stdev() if len(values) > 1 else None,
                })
            ratios = [r["wall_s"] / base[r["round"]]["wall_s"] for r in ok if r["round"] in base]
            own = [r["workload_s"] / base[r["round"]]["workload_s"] for r in ok
                   if r["round"] in base and r.get("workload_s")
                   and base[r["round"]].get("workload_s")]
            entry["workload_ratio_to_pymalloc"] = med(own)
            cpu = [(r["user_s"] + r["sys_s"]) / (base[r["round"]]["user_s"]
                                                 + base[r["round"]]["sys_s"])
                   for r in ok if r["round"] in base
                   and base[r["round"]]["user_s"] + base[r["round"]]["sys_s"] > 0]
            entry["cpu_ratio_to_pymalloc"] = med(cpu)
            entry["ratio_to_pymalloc"] = med(ratios)
            entry["ratio_min"] = min(ratios) if ratios else None
            entry["ratio_max"] = max(ratios) if ratios else None
            entry["ratios"] = ratios
            for key in ("workload_s", "peak_rss_kib", "user_s", "sys_s", "minor_faults",
                        "major_faults", "invol_ctx_switches"):
                entry[f"{key}_median"] = med([r.get(key) for r in ok])
            if v.bump is not None:
                counters = [r["bump"] for r in ok if r.get("bump")]
                entry["bump"] = {k: med([c.get(k) for c in counters])
                                 for k in ("used", "allocations", "reallocs_in_place",
                                           "reallocs_moved", "bytes_copied",
                                           "fallback_allocations", "fallback_bytes",
                                           "resident", "large_allocations", "bytes_released",
                                           "bytes_prefaulted", "frees_reclaimed",
                                           "allocations_reused")} if counters else None
            per[v.name] = entry
        summary[w.name] = per
    return {"summary": summary, "suite": suite}


# ---------------------------------------------------------------- output


def fmt(value: Optional[float], spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def mib(value: Optional[float]) -> Optional[float]:
    return None if value is None else value / MIB


def markdown(result: Dict[str, Any], workloads: List[Workload],
             variants: List[Variant]) -> str:
    m = result["machine"]
    avail = [v for v in variants if v.available]
    others = [v for v in avail if v.name != "pymalloc"]
    bumps = [v for v in avail if v.bump is not None]
    summary = result["summary"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `scripts/bench.py`; the raw data is in the JSON file written by the "
        "same run. Do not edit by hand: rerun the command below.",
        "",
        f"- Date: {result['date']}",
        f"- Command: `{result['command']}`",
        f"- Machine: {m['cpu_model']}, {m['cpu_count']} cores, "
        f"{fmt(mib(m['memory_total']), '.0f')} MiB RAM; {m['system']} {m['kernel']}; "
        f"THP `{m['thp_enabled']}`; overcommit_memory {m['overcommit_memory']}; {m['libc']}; "
        f"load average at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')}",
        f"- Python {result['python']['version']}; pyperf {result['versions']['pyperf']}; "
        f"bump_global {result['versions'].get('bump_global')} "
        f"(commit {result['versions'].get('bump_global_commit')}, install() defaults "
        f"{result['versions'].get('bump_global_defaults')}); jemalloc "
        f"{result['versions'].get('libjemalloc2') or 'absent'}; mimalloc "
        f"{result['versions'].get('libmimalloc2.0') or 'absent'}",
        f"- Runs: {result['settings']['runs']} per workload and variant "
        f"({result['settings']['warmups']} warm-up round(s) discarded), fresh process each, "
        "interleaved round by round" + (" (**quick: tiny sizes, not a measurement**)"
                                         if result["settings"]["quick"] else ""),
        "",
        "Variants: " + "; ".join(f"`{v.name}`: {v.what}" for v in avail) + ".",
    ]
    skipped = [v for v in variants if not v.available]
    if skipped:
        lines.append("Not run: " + "; ".join(f"`{v.name}`: {v.note}" for v in skipped) + ".")
    ratios = "---:|" * len(others)

    def cell(workload: Workload, variant: Variant) -> Dict[str, Any]:
        return summary[workload.name].get(variant.name) or {}

    def base(workload: Workload) -> Dict[str, Any]:
        return summary[workload.name].get("pymalloc", {})

    lines += table(
        "Wall time and peak RSS",
        "Median wall time of the whole process (spawn to exit). pymalloc: seconds / peak "
        "MiB. Other columns: median of the per-round ratios to the pymalloc run of the same "
        "round (below 1 is faster), then the median peak RSS in MiB.",
        ["workload", "family", "pymalloc s / MiB"] + [v.name for v in others],
        "|---|---|---:|" + ratios,
        [[f"{w.name} ({w.what})", w.family,
          f"{fmt(base(w).get('wall_median_s'), '.3f')} / "
          f"{fmt(kib_mib(base(w).get('peak_rss_kib_median')), '.0f')}"]
         + [f"{fmt(cell(w, v).get('ratio_to_pymalloc'))} "
            f"({fmt(kib_mib(cell(w, v).get('peak_rss_kib_median')), '.0f')})" for v in others]
         for w in workloads])
    lines += table(
        "Spread", "Lowest and highest per-round ratio to pymalloc; pymalloc: min-max seconds.",
        ["workload", "pymalloc s"] + [v.name for v in others], "|---|---:|" + ratios,
        [[w.name, f"{fmt(base(w).get('wall_min_s'), '.3f')}-"
                  f"{fmt(base(w).get('wall_max_s'), '.3f')}"]
         + ["-" if cell(w, v).get("ratio_min") is None
            else f"{fmt(cell(w, v).get('ratio_min'))}-{fmt(cell(w, v).get('ratio_max'))}"
            for v in others]
         for w in workloads])
    lines += table(
        "The workload's own time",
        "Time measured inside the child around the workload script alone (no interpreter "
        "start-up, no allocator import and install, nothing at exit): pymalloc seconds, then "
        "median per-round ratios to it.",
        ["workload", "pymalloc s"] + [v.name for v in others], "|---|---:|" + ratios,
        [[w.name, fmt(base(w).get("workload_s_median"), ".3f")]
         + [fmt(cell(w, v).get("workload_ratio_to_pymalloc")) for v in others]
         for w in workloads])

    def cpu_s(workload: Workload) -> Optional[float]:
        user, system = base(workload).get("user_s_median"), base(workload).get("sys_s_median")
        return None if user is None or system is None else user + system

    lines += table(
        "CPU time",
        "User + system CPU time of the process (`wait4` rusage): pymalloc seconds, then median "
        "per-round ratios to it. Less sensitive than wall time to other load on the machine.",
        ["workload", "pymalloc s"] + [v.name for v in others], "|---|---:|" + ratios,
        [[w.name, fmt(cpu_s(w), ".3f")]
         + [fmt(cell(w, v).get("cpu_ratio_to_pymalloc")) for v in others]
         for w in workloads])

    def faults(e: Dict[str, Any]) -> str:
        count = e.get("minor_faults_median")
        return (f"{fmt(e.get('user_s_median'))} / {fmt(e.get('sys_s_median'))} / "
                f"{fmt(None if count is None else count / 1000, '.0f')}")

    lines += table(
        "User time, system time and page faults",
        "Median user s / system s / minor page faults (thousands), from `wait4` rusage.",
        ["workload"] + [v.name for v in avail], "|---|" + "---:|" * len(avail),
        [[w.name] + [faults(cell(w, v)) for v in avail] for w in workloads])

    def engine(b: Dict[str, Any]) -> str:
        return (f"{fmt(mib(b.get('used')), '.0f')} / {fmt(b.get('reallocs_moved'), ',.0f')} / "
                f"{fmt(mib(b.get('bytes_copied')), '.0f')} / "
                f"{fmt(b.get('fallback_allocations'), ',.0f')} / "
                f"{fmt(mib(b.get('bytes_prefaulted')), '.0f')}"
                + (f" / {fmt(b['allocations_reused'] / 1e6, '.1f')}M reused"
                   if b.get("allocations_reused") else ""))

    if bumps:
        lines += table(
            "What the bump allocator did",
            "Per bump variant (medians): MiB in use at exit (handed out and not reclaimed) / "
            "reallocs moved / MiB copied by them / fallback allocations (region full) / MiB "
            "prefaulted by the helper thread (where the engine reports it) / with "
            "reclaim='classes', millions of allocations served from a free list.",
            ["workload"] + [v.name for v in bumps], "|---|" + "---:|" * len(bumps),
            [[w.name] + [engine(cell(w, v).get("bump") or {}) for v in bumps]
             for w in workloads])
    micro = result.get("micro")
    lines += ["", "## Microbenchmarks (C loops over PyObject_Malloc/PyObject_Free)", ""]
    if micro is None:
        lines.append("Not run (pass `--micro`).")
    elif micro.get("skipped"):
        lines.append(f"Not run: {micro['skipped']}.")
    else:
        spec = {name: args for name, _, args in micro["spec"]}
        lines += [
            f"Median of {result['settings']['micro_runs']} fresh processes per variant. "
            f"pair: ns per malloc+free pair of {spec['pair_ns'][1]} bytes, "
            f"{spec['pair_ns'][0]:,} pairs; batch: ns per allocation, "
            f"{spec['batch_ns'][0]:,} allocations of {spec['batch_ns'][2]} bytes in batches of "
            f"{spec['batch_ns'][1]} then freed. Every block gets one byte written.",
            "",
            "| loop | " + " | ".join(v.name for v in avail) + " |",
            "|---|" + "---:|" * len(avail),
        ]
        for key, label in (("pair_ns", "pair (ns)"), ("batch_ns", "batch (ns/alloc)")):
            cells = [label] + [fmt((micro["summary"].get(v.name) or {}).get(key), ".1f")
                               for v in avail]
            lines.append("| " + " | ".join(cells) + " |")
        ps = micro["page_summary"]
        lines += [
            "",
            f"First touch of fresh anonymous memory ({micro['page_spec'][0][2][0] // MIB} MiB, "
            "one byte per 4 KiB): "
            f"{fmt(ps.get('page_4k_ns'), '.0f')} ns per 4 KiB page; with MADV_HUGEPAGE "
            f"{fmt(ps.get('page_huge_ns'), '.0f')} ns per 4 KiB, "
            f"{fmt(ps.get('page_huge_per_2m_ns'), ',.0f')} ns per 2 MiB page.",
        ]
    notes = list(result.get("notes") or [])
    if result.get("partial"):
        done = max([r["round"] for r in result["raw"]] + [-1]) + 1
        notes.insert(0, f"PARTIAL RESULT: the run was stopped after {done} measured round(s)")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def table(title: str, intro: str, header: List[str], rule: str,
          rows: List[List[str]]) -> List[str]:
    """A Markdown section: its title, a paragraph, and a table."""
    return (["", f"## {title}", "", intro, "", "| " + " | ".join(header) + " |", rule]
            + ["| " + " | ".join(row) + " |" for row in rows])


def kib_mib(value: Optional[float]) -> Optional[float]:
    return None if value is None else value / 1024


# ---------------------------------------------------------------- main


def parse_list(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--warmups", type=int, default=None,
                        help="discarded rounds first (default 1; 0 with --quick)")
    parser.add_argument("--workloads", help="comma-separated subset (default: all)")
    parser.add_argument("--variants", help="comma-separated subset (pymalloc always runs)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 1 round, no warm-up: a smoke run")
    parser.add_argument("--micro", action="store_true",
                        help="also run the C microbenchmarks (bump_global._testing)")
    parser.add_argument("--micro-runs", type=int, default=3, help="rounds of --micro")
    parser.add_argument("--json", dest="json_out", help="write everything here")
    parser.add_argument("--markdown", help="write the Markdown tables here")
    parser.add_argument("--pyperf-json", help="also write the pyperf BenchmarkSuite here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--from-json", metavar="FILE",
                        help="run nothing: summarise the raw data of FILE (a --json output) "
                             "again and write --json/--markdown from it")
    opts = parser.parse_args(argv)
    if opts.from_json:
        return rerender(opts.from_json, opts)
    if opts.quick:
        opts.runs = 1
        opts.micro_runs = 1
    warmups = opts.warmups if opts.warmups is not None else (0 if opts.quick else 1)
    if opts.runs < 1:
        parser.error("--runs must be at least 1")

    names = parse_list(opts.workloads)
    known = {w.name: w for w in WORKLOADS}
    if names is not None and any(n not in known for n in names):
        parser.error(f"unknown workload(s); known: {', '.join(known)}")
    workloads = [known[n] for n in names] if names is not None else list(WORKLOADS)

    base_env = child_env({}, None)
    if not importable_bump(base_env):
        # Not installed: use the source tree (with its extension built in place).
        base_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), base_env.get("PYTHONPATH", "")) if p)
        os.environ["PYTHONPATH"] = base_env["PYTHONPATH"]
    bump_info = probe_bump(base_env)
    cli_help = probe_cli(base_env) if bump_info.get("ok") else None
    variants = resolve_variants(parse_list(opts.variants), base_env, bump_info, cli_help)
    notes: List[str] = []
    for v in variants:
        if not v.available:
            notes.append(f"variant {v.name} skipped: {v.note}")
            print(f"bench: skipping {v.name}: {v.note}", file=sys.stderr)
    if bump_info.get("ok") and "huge_pages" not in bump_info.get("params", []):
        if not any(v.name == "bump_thp" for v in variants):
            notes.append("bump_thp: not offered by the engine (install() has no huge_pages)")
    harnesses = sorted({v.harness for v in variants if v.bump is not None and v.available})
    if harnesses:
        notes.append("bump variants run through "
                     + (" and ".join("`python -m bump_global run`" if h == "cli"
                                     else "the bench's own runner" for h in harnesses)))

    versions: Dict[str, Any] = {
        "pyperf": pyperf.__version__,
        "bump_global": bump_info.get("version"),
        "bump_global_commit": git_commit(),
        "bump_global_defaults": bump_info.get("defaults"),
        "libjemalloc2": package_version("libjemalloc2"),
        "libmimalloc2.0": package_version("libmimalloc2.0"),
    }
    command = "python " + " ".join(
        [shlex.quote(os.path.relpath(__file__))] + [shlex.quote(a) for a in
                                                      (argv if argv is not None else sys.argv[1:])])
    result: Dict[str, Any] = {
        "schema": "bump_global.bench/1",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": machine_info(),
        "python": {"version": platform.python_version(),
                   "implementation": sys.implementation.name,
                   "build": " ".join(platform.python_build())},
        "versions": versions,
        "settings": {"runs": opts.runs, "warmups": warmups, "quick": opts.quick,
                     "micro_runs": opts.micro_runs},
        "workloads": [{"name": w.name, "family": w.family, "script": f"workloads/{w.script}",
                       "args": list(w.quick_args if opts.quick else w.args), "what": w.what}
                      for w in workloads],
        "variants": [{"name": v.name, "what": v.what, "env": v.env,
                      "ld_preload": bool(v.preload), "install": v.bump,
                      "available": v.available, "note": v.note, "harness": v.harness}
                     for v in variants],
        "notes": notes,
    }
    start = time.perf_counter()

    def save_partial(raw: List[Dict[str, Any]]) -> None:
        """After each round: the raw data so far (render it with --from-json)."""
        if opts.json_out:
            partial = dict(result, partial=True, raw=raw,
                           elapsed_s=time.perf_counter() - start)
            Path(opts.json_out).write_text(json.dumps(partial, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="bump-bench-") as tmpdir:
        tmp = Path(tmpdir)
        raw = run_suite(workloads, variants, opts.runs, warmups, opts.quick, tmp,
                        progress=not opts.quiet, on_round=save_partial)
        result.pop("partial", None)
        if opts.micro:
            bump_info = probe_bump(base_env)  # it may have been built while the suite ran
            if bump_info.get("microbench"):
                result["micro"] = run_micro(variants, opts.micro_runs, opts.quick, tmp,
                                            progress=not opts.quiet)
            else:
                reason = ("bump_global._testing is not built "
                          f"({bump_info.get('microbench_error', 'unknown')})")
                result["micro"] = {"skipped": reason}
                print(f"bench: --micro skipped: {reason}", file=sys.stderr)
    result["elapsed_s"] = time.perf_counter() - start
    result["machine"]["loadavg_end"] = loadavg()
    result["raw"] = raw
    return finish(result, workloads, variants, opts)


def finish(result: Dict[str, Any], workloads: List[Workload], variants: List[Variant],
           opts: argparse.Namespace) -> int:
    """Summarise result["raw"] (with pyperf) and write the outputs."""
    raw = result["raw"]
    stats = summarise(raw, workloads, variants)
    result["summary"] = stats["summary"]
    suite = stats["suite"]
    result["pyperf_suite"] = None
    if suite is not None:
        with tempfile.TemporaryDirectory() as tmpdir:
            path = Path(tmpdir, "suite.json")
            suite.dump(str(path))
            result["pyperf_suite"] = json.loads(path.read_text())
        if opts.pyperf_json:
            suite.dump(opts.pyperf_json, replace=True)
    failures = [r for r in raw if not r["ok"]]
    if opts.json_out:
        Path(opts.json_out).write_text(json.dumps(result, indent=1) + "\n")
    if opts.markdown:
        Path(opts.markdown).write_text(markdown(result, workloads, variants))
    if not opts.json_out and not opts.markdown:
        print(markdown(result, workloads, variants))
    print(f"bench: {len(raw)} runs in {result.get('elapsed_s', 0):.1f} s, "
          f"{len(failures)} failed", file=sys.stderr)
    for r in failures:
        print(f"bench: FAILED {r['workload']} under {r['variant']}: {r.get('error')}",
              file=sys.stderr)
    return 1 if failures else 0


def rerender(path: str, opts: argparse.Namespace) -> int:
    """--from-json: summarise and write the outputs again from a JSON file's raw data."""
    result = json.loads(Path(path).read_text())
    known = {w.name: w for w in WORKLOADS}
    workloads = [known.get(w["name"]) or Workload(w["name"], w["family"], w["script"],
                                                   tuple(w["args"]), (), w["what"])
                 for w in result["workloads"]]
    variants = [Variant(v["name"], env=v["env"], bump=v["install"], what=v["what"],
                        available=v["available"], note=v["note"], harness=v["harness"])
                for v in result["variants"]]
    return finish(result, workloads, variants, opts)


def git_commit() -> Optional[str]:
    """The commit of this checkout, with "+dirty" if bump_global/ has changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "bump_global"], capture_output=True, text=True,
                               check=False).stdout.strip()
    except OSError:
        return None
    return (head + ("+dirty" if dirty else "")) or None


def importable_bump(env: Dict[str, str]) -> bool:
    proc = subprocess.run([sys.executable, "-c", "import bump_global._core"], env=env,
                          capture_output=True, check=False, cwd=tempfile.gettempdir())
    return proc.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
