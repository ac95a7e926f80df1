"""Running jobs under variants in shuffled rounds: the one loop of every script.

A :class:`Job` is what runs (a workload script or a real program): its command,
working folder, variables, what of its output is compared, the exit statuses that
count as working.  :class:`Runner` runs one job under one variant in a fresh run
folder through ``bump_global._launch.measure_child`` (the one place that measures a child:
wall, user and system CPU, faults, peak RSS from ``os.wait4``, the process tree's
peak RSS when sampled) and returns the run's record.  :func:`run_rounds` follows
``bump_global._launch.plan_rounds`` (warm-up rounds, then every job under every
variant in an order shuffled per round and job, from one seed) and
:func:`check_outputs` compares each run's exit status and output with the reference
variant's run of the same round.

Every run has a sitecustomize folder on its ``PYTHONPATH``: the GC peer's
(``GCX=1``: bump_global's ``apply_gc_policy("relaxed")``), followed by two switches
for the measurement scripts: ``HARNESS_COUNTERS=FILE`` writes the C core's
counters at exit (``prefault_counts``, and ``recycle_counts`` in a build with
``experiments/recycle.patch``), ``HARNESS_FAST_EXIT=1`` ends the process at exit
with ``os._exit(0)`` after flushing (what skipping the interpreter's teardown saves),
``HARNESS_SITES=DIR`` makes every process that samples allocation sites read and
aggregate its own samples when it ends (at exit, or in ``os._exit``: forked workers)
and write their count and the time that took to ``DIR/<pid>.json`` (what a report of
the sites costs, and how many samples a run took).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from bump_global._launch import (
    GC_PEER_SITECUSTOMIZE,
    Measurement,
    RunFailure,
    child_environment,
    measure_child,
    plan_rounds,
    prepend_path,
)
from harness.variants import Variant, run_variables, wrap

MIB = 1024 * 1024
#: Variables of the caller's environment that would change what a run does, besides
#: those that choose the allocator (which child_environment strips).
STRIPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONHASHSEED", "GCX",
            "VIRTUAL_ENV", "PYTHONWARNINGS", "PYTHONINSPECT", "HARNESS_")

#: Appended to the GC peer's sitecustomize: the switches of the measurement scripts.
HARNESS_SWITCHES = """\
if os.environ.get("HARNESS_COUNTERS"):
    import atexit

    def _harness_counters(path=os.environ["HARNESS_COUNTERS"]):
        import json, sys
        core = sys.modules.get("bump_global._core")
        names = ("prefault_counts", "recycle_counts")
        with open(path, "w") as out:
            json.dump({n: list(getattr(core, n)()) for n in names if hasattr(core, n)}, out)
    atexit.register(_harness_counters)
if os.environ.get("HARNESS_SITES"):
    import atexit

    def _harness_sites(kind="exit", folder=os.environ["HARNESS_SITES"], done=[]):
        import sys, time
        sites = sys.modules.get("bump_global._sites")
        if done or sites is None or getattr(sites, "_output", None) is None:
            return
        done.append(kind)
        t0 = time.perf_counter()
        state = sites.state()
        samples = sites.parse(sites.own_records() or b"")
        info = {"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv[:2], "end": kind,
                "state": state, "samples": samples.samples,
                "stacks": len(samples.stacks), "bytes": samples.bytes,
                "allocations": samples.allocations, "rates": sorted(samples.rates)}
        info["aggregate_s"] = time.perf_counter() - t0
        import json
        with open(os.path.join(folder, "%d.json" % os.getpid()), "w") as out:
            json.dump(info, out)
    atexit.register(_harness_sites)
    _harness_real_exit = os._exit

    def _harness_exit_sites(status, _real=_harness_real_exit):
        try:
            _harness_sites("os._exit")
        finally:
            _real(status)
    os._exit = _harness_exit_sites
if os.environ.get("HARNESS_FAST_EXIT") == "1":
    import atexit, sys

    def _harness_exit():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    atexit.register(_harness_exit)
"""


def clean_env() -> Dict[str, str]:
    """This environment without what chooses the allocator or changes what a run does."""
    return {k: v for k, v in child_environment().items() if not k.startswith(STRIPPED)}


def loadavg() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


@dataclass
class Job:
    """One thing to run under every variant: a workload script or a real program."""

    name: str
    family: str
    what: str
    argv: Callable[[Path], List[str]]  # run folder -> the command
    compared: Callable[[Path], str]  # run folder -> the text compared between variants
    env: Callable[[Path], Dict[str, str]] = lambda run: {}  # variables on a clean env
    cwd: Optional[Path] = None  # None: the run folder
    prepare: Optional[Callable[[Path], None]] = None  # before each run, not timed
    ok_status: Optional[Sequence[int]] = (0,)  # None: any, as long as all variants agree
    timeout: float = 600.0
    sample: bool = False  # sample the process tree's RSS (programs with workers)


def workload_job(workload: Any, python: str, args: Sequence[str]) -> Job:
    """A job of a script of scripts/workloads/ (a harness.workloads.Workload)."""
    from harness.workloads import WORKLOAD_DIR

    return Job(workload.name, workload.family, workload.what,
               argv=lambda run: [python, str(WORKLOAD_DIR / workload.script), *args],
               compared=lambda run: (run / "stdout").read_text(errors="replace"),
               env=lambda run: {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"})


def program_job(program: Any, ctx: Any) -> Job:
    """A job of a real program (a harness.programs.Program and its Ctx)."""
    from harness.programs import compared_output, run_env

    return Job(program.name, "real", program.about,
               argv=lambda run: [str(part) for part in program.command(ctx, run)],
               compared=lambda run: compared_output(program, ctx, run),
               env=lambda run: run_env(program, ctx, run),
               cwd=None if program.cwd is None else ctx.inputs / program.cwd,
               prepare=None if program.prepare is None else (
                   lambda run: program.prepare(ctx, run)),
               ok_status=program.ok_status, timeout=program.timeout, sample=True)


def read_report(path: Path) -> Optional[Dict[str, Any]]:
    """What the tables show of a bump_global JSON report (schema report/2), or None."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        return {"error": f"unreadable JSON report: {exc}"}
    total = data.get("total") or {}
    procs = data.get("processes") or []
    return {"schema": data.get("schema"), "used": total.get("used"),
            "allocations": total.get("allocations"),
            "processes": total.get("processes"), "records": len(procs),
            "missing": len(data.get("missing") or []),
            "roles": sorted({p.get("role", "?") for p in procs}),
            "full": any((p.get("region") or {}).get("full") for p in procs),
            "frees_ignored": sum((p.get("counters") or {}).get("frees_ignored", 0)
                                 for p in procs),
            "bytes_prefaulted": sum((p.get("counters") or {}).get("bytes_prefaulted", 0)
                                    for p in procs),
            "peak_rss_max": total.get("peak_rss_max"), "peak_rss_sum": total.get("peak_rss_sum"),
            "sites_samples": (sum((p.get("sites") or {}).get("samples", 0) for p in procs)
                              if any(p.get("sites") for p in procs) else None)}


def read_sites(folder: Path) -> Dict[str, Any]:
    """What the processes of one run wrote under ``HARNESS_SITES``: how many sampled,
    their samples (taken by the C core, recorded, lost, read back from their files),
    the estimated bytes and allocations, and the seconds spent reading them at exit.
    (A process's C counts are read before its samples: ``recorded`` above ``samples``
    means records written but not read back.  ``taken`` is not summed: a forked child
    carries on its parent's sequence.)"""
    procs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            procs.append(json.loads(path.read_text()))
        except ValueError:
            continue
    states = [p.get("state") or {} for p in procs]
    return {"processes": len(procs),
            "samples": sum(p.get("samples", 0) for p in procs),
            "recorded": sum(s.get("recorded", 0) for s in states),
            "lost": sum(s.get("lost", 0) for s in states),
            "inside": sum(s.get("inside", 0) for s in states),
            "stacks": sum(p.get("stacks", 0) for p in procs),
            "bytes": sum(p.get("bytes", 0.0) for p in procs),
            "allocations": sum(p.get("allocations", 0.0) for p in procs),
            "aggregate_s": sum(p.get("aggregate_s", 0.0) for p in procs),
            "rates": sorted({r for p in procs for r in p.get("rates", [])}),
            "per_process": [{k: p.get(k) for k in ("pid", "ppid", "argv", "end", "samples")}
                            for p in procs]}


@dataclass
class Runner:
    """Runs one job under one variant (:meth:`run`) and records what it cost."""

    python: str  # the interpreter of the runs
    work: Path  # runs go in work/runs/JOB/TAG-VARIANT
    libraries: Mapping[str, Optional[str]]  # preloadable allocators found
    builds: Mapping[str, Path] = field(default_factory=dict)  # build name -> folder
    sample_s: float = 0.02  # tree RSS sampling period of jobs that sample
    timeout_scale: float = 1.0
    #: put before the command (``{out}``: a file in the run folder), e.g. perf record
    prefix: Sequence[str] = ()
    #: bump variants' JSON report: "env" (BUMP_GLOBAL_JSON), "cli" (bump-global run
    #: --json, which takes the variant's options from the environment) or "none"
    report: str = "none"
    counters: bool = False  # HARNESS_COUNTERS: the core's counters at exit
    #: HARNESS_SITES (bump variants): each process aggregates its allocation samples at
    #: its end and writes their count (the record's ``sites``, see read_sites)
    sites: bool = False
    fast_exit: bool = False  # HARNESS_FAST_EXIT: os._exit(0) at exit
    keep_runs: bool = False  # keep every run folder (default: only failed runs')
    #: called with (run folder, record) after each run, before its folder goes
    inspect: Optional[Callable[[Path, Dict[str, Any]], None]] = None
    site: Path = field(init=False)

    def __post_init__(self) -> None:
        self.site = self.work / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        (self.site / "sitecustomize.py").write_text(GC_PEER_SITECUSTOMIZE + HARNESS_SWITCHES)

    def command(self, job: Job, variant: Variant, run_dir: Path) -> List[str]:
        """The command line of one run (the variant's wrapper, the report, the prefix)."""
        argv = wrap(job.argv(run_dir), self.python, variant, str(run_dir / "wrapper.out"))
        if variant.bump and self.report == "cli":
            rest = argv[1:] if argv[0] == self.python else argv
            argv = [self.python, "-m", "bump_global", "run", "--json",
                    str(run_dir / "report.json"), *rest]
        prefix = [p.replace("{out}", str(run_dir / "prefix.out")) for p in self.prefix]
        return [*prefix, *argv]

    def variables(self, variant: Variant, run_dir: Path) -> Dict[str, str]:
        """The variables given to the command: the variant's, PYTHONPATH, switches."""
        extra = run_variables(variant, self.libraries)
        path = str(self.site)
        if variant.build is not None:
            path = prepend_path(str(self.builds[variant.build]), path)
        extra["PYTHONPATH"] = path
        if variant.bump and self.report == "env":
            extra["BUMP_GLOBAL_JSON"] = str(run_dir / "report.json")
        if self.counters:
            extra["HARNESS_COUNTERS"] = str(run_dir / "counters.json")
        if self.sites and variant.bump:
            (run_dir / "sites").mkdir(exist_ok=True)
            extra["HARNESS_SITES"] = str(run_dir / "sites")
        if self.fast_exit:
            extra["HARNESS_FAST_EXIT"] = "1"
        return extra

    def run(self, job: Job, variant: Variant, tag: str) -> Dict[str, Any]:
        """One measured run in a fresh folder: its record (``ok``, the measurements, the
        sha256 of its compared output; ``error`` when it failed)."""
        rec: Dict[str, Any] = {"workload": job.name, "variant": variant.name}
        run_dir = self.work / "runs" / job.name / f"{tag}-{variant.name}"
        shutil.rmtree(run_dir, ignore_errors=True)
        (run_dir / "tmp").mkdir(parents=True)
        if job.prepare is not None:
            job.prepare(run_dir)
        env = clean_env()
        env.update(job.env(run_dir))
        with open(run_dir / "stdout", "w+b") as out, open(run_dir / "stderr", "w+b") as err:
            try:
                m = measure_child(self.command(job, variant, run_dir),
                                  self.variables(variant, run_dir), env,
                                  stdout=out, stderr=err, cwd=str(job.cwd or run_dir),
                                  timeout=job.timeout * self.timeout_scale,
                                  sample_interval=self.sample_s if job.sample else None,
                                  accept_status=True)
            except OSError as exc:
                m = RunFailure(f"could not be started: {exc}", [])
        if isinstance(m, RunFailure):
            tail = " | ".join(m.stderr_tail[-3:])
            rec.update(ok=False, error=m.description + (": " + tail if tail else ""),
                       run_dir=str(run_dir))
            return rec
        assert isinstance(m, Measurement)
        compared = job.compared(run_dir)
        rec.update(ok=True, exit=m.exit_code, wall_s=m.wall, user_s=m.user, sys_s=m.system,
                   minor_faults=m.minor_faults, major_faults=m.major_faults,
                   peak_rss=m.peak_rss, tree_peak_rss=m.tree_peak_rss,
                   tree_processes=m.tree_processes, samples=m.samples,
                   output_sha256=hashlib.sha256(compared.encode()).hexdigest())
        if variant.bump and self.report != "none":
            rec["report"] = read_report(run_dir / "report.json")
        if self.sites and variant.bump:
            rec["sites"] = read_sites(run_dir / "sites")
        if self.counters and (run_dir / "counters.json").exists():
            rec["counters"] = json.loads((run_dir / "counters.json").read_text())
        if self.inspect is not None:
            self.inspect(run_dir, rec)
        if job.ok_status is not None and m.exit_code not in job.ok_status:
            rec.update(ok=False, error=f"exited with code {m.exit_code} (accepted: "
                       f"{', '.join(map(str, job.ok_status))}): "
                       + (run_dir / "stderr").read_text(errors="replace")[-300:])
        if rec["ok"] and not self.keep_runs:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            rec["run_dir"] = str(run_dir)
        return rec


def cpu(rec: Mapping[str, Any]) -> float:
    return float(rec["user_s"] + rec["sys_s"])


def run_rounds(runner: Runner, jobs: Sequence[Job], variants: Sequence[Variant], rounds: int,
               warmup: int, seed: int, result: Dict[str, Any],
               after_round: Optional[Callable[[], None]] = None,
               skip: Optional[Callable[[str, str, int], bool]] = None) -> None:
    """Every round of the plan: each job under every variant in the round's shuffled
    order.  Appends each round's orders to ``result["orders"]`` and each run's record
    (with its round, position and the load average) to ``result["raw"]``; progress on
    stderr, one line per run.  ``skip(job, variant, round)`` True leaves that run out
    (a run too slow to repeat every round); the others keep the seed's order."""
    by_job = {j.name: j for j in jobs}
    by_variant = {v.name: v for v in variants}
    plan = plan_rounds(list(by_job), list(by_variant), rounds, warmup, seed)
    if skip is not None:
        plan = [[t for t in turns if not skip(t.item, t.variant, t.round)] for turns in plan]
        plan = [turns for turns in plan if turns]
    total = sum(len(turns) for turns in plan)
    done, t0 = 0, time.perf_counter()
    for turns in plan:
        orders: Dict[str, List[str]] = {}
        for turn in turns:
            orders.setdefault(turn.item, []).append(turn.variant)
            rec = runner.run(by_job[turn.item], by_variant[turn.variant], f"r{turn.round}")
            rec.update(round=turn.round, position=turn.position, load=loadavg())
            result["raw"].append(rec)
            done += 1
            print(f"[{done}/{total} {time.perf_counter() - t0:6.0f}s] round {turn.round:2} "
                  f"{turn.item:18} {turn.variant:16} "
                  + (f"{rec['wall_s']:7.2f} s wall {cpu(rec):7.2f} s CPU "
                     f"{rec['tree_peak_rss'] / MIB:7.0f} MiB" if rec["ok"]
                     else f"FAILED: {rec['error']}"), file=sys.stderr, flush=True)
        result["orders"].append({"round": turns[0].round, "order": orders})
        if after_round is not None:
            after_round()


def check_outputs(raw: List[Dict[str, Any]], reference: str) -> List[str]:
    """One line per run whose exit status or output differs from the `reference`
    variant's run of its round (such a record gets ``same_output: False``)."""
    base = {(r["workload"], r["round"]): r for r in raw if r["variant"] == reference and r["ok"]}
    problems = []
    for r in raw:
        ref = base.get((r["workload"], r["round"]))
        if not r["ok"] or ref is None or r is ref:
            continue
        if (r["exit"], r["output_sha256"]) != (ref["exit"], ref["output_sha256"]):
            r["same_output"] = False
            problems.append(f"{r['workload']} round {r['round']}: {r['variant']} gave exit "
                            f"{r['exit']} and output {r['output_sha256'][:12]}, {reference} "
                            f"exit {ref['exit']} and output {ref['output_sha256'][:12]}")
    return problems


#: Run by each variant before the first round: what it really got.
PROBE = """\
import gc, json, os, sys
info = {"gc_threshold": list(gc.get_threshold()), "bump": False,
        "pythonmalloc": os.environ.get("PYTHONMALLOC")}
if "bump_global" in sys.modules or os.environ.get("BUMP_GLOBAL"):
    from bump_global import _api
    info["bump"] = _api.is_installed()
    config = _api.installed_config()
    if config is not None:
        info["bump_config"] = {k: str(getattr(config, k)) for k in
                               ("size", "reclaim", "huge_pages", "gc", "prefault")
                               if hasattr(config, k)}
with open("/proc/self/maps") as maps:
    text = maps.read()
info["mapped"] = sorted(n for n in ("mimalloc", "jemalloc") if "lib" + n in text)
print(json.dumps(info))
"""


def probe(runner: Runner, variant: Variant) -> Dict[str, Any]:
    """What `variant` really gets (GC thresholds, bump_global installed, the preloaded
    library mapped), from one run of PROBE before the first round; ``error`` says what
    is not as the variant asks."""
    job = Job("probe", "probe", "probe", argv=lambda run: [runner.python, "-c", PROBE],
              compared=lambda run: "", timeout=120)
    keep = runner.keep_runs
    runner.keep_runs = True
    try:
        rec = runner.run(job, variant, "probe")
    finally:
        runner.keep_runs = keep
    run_dir = Path(rec["run_dir"])
    stdout = (run_dir / "stdout").read_text(errors="replace").strip()
    stderr = (run_dir / "stderr").read_text(errors="replace").strip()
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        info: Dict[str, Any] = json.loads(stdout.splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (stderr or rec.get("error") or "no output")[-300:]}
    problems = []
    if variant.bump and not info.get("bump"):
        problems.append("BUMP_GLOBAL=1 did not install bump_global")
    if variant.preload and variant.preload not in info.get("mapped", []):
        problems.append(f"lib{variant.preload} is not mapped")
    if stderr:
        problems.append("stderr: " + stderr[-200:])
    if problems:
        info["error"] = "; ".join(problems)
    return info
