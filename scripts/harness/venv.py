"""The benchmark venv: the interpreter every run uses, with the real programs' packages,
the variants' requirements (memray), psutil and this checkout installed (not editable:
the venv must not depend on the work tree), and the folder of inputs and runs.

``--work DIR`` holds ``venv/``, ``inputs/PROGRAM/`` (made once), ``index/`` (a local
package index for pip's programs) and ``runs/`` (default: ``bump_global-real-programs/
pyX.Y`` in the user's cache directory).  ``--interpreter PY`` skips the venv: the
workload scripts run with PY as it is (it must have bump_global installed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from harness.programs import Ctx, Program, check_call
from harness.runner import clean_env

REPO = Path(__file__).resolve().parents[2]


def default_work() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.access(os.path.dirname(base) or ".", os.W_OK) and not os.path.isdir(base):
        base = tempfile.gettempdir()
    return Path(base) / "bump_global-real-programs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say which interpreter runs and where: --python, --work,
    --no-install, --interpreter."""
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter that builds the venv every run uses "
                             "(default: this one)")
    parser.add_argument("--work", type=Path, default=None,
                        help="venv, inputs and run folders (default: "
                             f"{default_work()}/pyX.Y)")
    parser.add_argument("--no-install", action="store_true",
                        help="use the venv as it is (no pip install)")
    parser.add_argument("--interpreter", default=None, metavar="PYTHON",
                        help="no venv: run the workload scripts with PYTHON as it is (it "
                             "must have bump_global installed); real programs are left out")


@dataclass
class Setup:
    """Where the runs happen: the interpreter and its facts, the work folder."""

    python: str
    work: Path
    venv: Path
    facts: Dict[str, Any]

    @property
    def pyversion(self) -> Tuple[int, int]:
        return tuple(self.facts["version"])  # type: ignore[return-value]

    def ctx(self, program: Program) -> Ctx:
        return Ctx(work=self.work, venv=self.venv, python=self.python,
                   inputs=self.work / "inputs" / program.name,
                   stdlib=Path(self.facts["stdlib"]), index=self.work / "index",
                   pyversion=self.pyversion)


def prepare(ns: argparse.Namespace, programs: Sequence[Program], requires: Sequence[str],
            who: str) -> Tuple[Setup, List[Program]]:
    """The Setup of `ns` (see add_arguments), the venv made or updated with `programs`'
    and `requires`' packages; the programs whose packages could be installed."""
    python = ns.interpreter or ns.python
    pyver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    work = (ns.work or default_work() / f"py{pyver}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    kept = list(programs)
    if ns.interpreter:
        kept = []
    elif not ns.no_install:
        print(f"{who}: venv {venv}: installing the programs and this checkout", flush=True)
        kept = install(ns.python, venv, kept, requires)
    elif not (venv / "bin" / "python").exists():
        raise SystemExit(f"{who}: --no-install, but there is no venv in {venv}: run once "
                         "without --no-install")
    vpy = ns.interpreter or str(venv / "bin" / "python")
    return Setup(vpy, work, venv, venv_facts(vpy)), kept


def make_venv(python: str, venv: Path, requires: Sequence[str], reinstall: bool) -> None:
    if not (venv / "bin" / "python").exists():
        check_call([python, "-m", "venv", str(venv)])
    vpy = str(venv / "bin" / "python")
    env = clean_env()
    if requires:
        check_call([vpy, "-m", "pip", "install", "-q", *requires], env=env)
    if reinstall:
        # The checkout as it is now (not editable: the venv must not depend on the tree).
        check_call([vpy, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps",
                    str(REPO)], env=env)
        check_call([vpy, "-m", "pip", "install", "-q", "psutil"], env=env)


def install(python: str, venv: Path, programs: List[Program],
            requires: Sequence[str]) -> List[Program]:
    """The venv with the programs' requirements, `requires`, psutil and this checkout;
    the programs whose requirements could be installed."""
    wanted = sorted({r for p in programs for r in p.requires} | set(requires))
    try:
        make_venv(python, venv, wanted, reinstall=True)
    except subprocess.CalledProcessError:
        print("!! installing everything at once failed; trying one by one", flush=True)
        make_venv(python, venv, [], reinstall=True)
        for extra in requires:
            try:
                make_venv(python, venv, [extra], reinstall=False)
            except subprocess.CalledProcessError:
                print(f"!! cannot install {extra}: the variants that need it are left out",
                      flush=True)
        kept = []
        for p in programs:
            try:
                make_venv(python, venv, p.requires, reinstall=False)
                kept.append(p)
            except subprocess.CalledProcessError:
                print(f"!! {p.name}: cannot install {', '.join(p.requires)}: left out",
                      flush=True)
        return kept
    return list(programs)


def venv_facts(python: str) -> Dict[str, Any]:
    """The interpreter's standard library, version and bump_global's version."""
    code = ("import sys, sysconfig, json; import bump_global, importlib.metadata as m;"
            "print(json.dumps({'stdlib': sysconfig.get_paths()['stdlib'],"
            "'version': list(sys.version_info[:2]), 'full': sys.version.split()[0],"
            "'bump_global': m.version('bump_global')}))")
    out = subprocess.run([python, "-c", code], env=clean_env(), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def setup_jobs(ns: argparse.Namespace, workloads: Sequence[Any], requires: Sequence[str],
               quick: bool, who: str) -> Tuple[Setup, List[Any], List[str]]:
    """prepare() for `workloads`' real programs and `requires`, then make_jobs(): the
    Setup, a runner job per workload still there, one line per workload left out."""
    from harness.programs import PROGRAMS

    names = {w.name for w in workloads}
    setup, kept = prepare(ns, [p for p in PROGRAMS if p.name in names], requires, who)
    installed = {p.name for p in kept}
    why = ("--interpreter runs workload scripts only" if ns.interpreter
           else "its packages could not be installed")
    notes = [f"{w.name} left out: {why}" for w in workloads
             if w.family == "real" and w.name not in installed]
    jobs, left_out = make_jobs(setup, [w for w in workloads if w.family != "real"
                                       or w.name in installed], quick, who)
    return setup, jobs, notes + left_out


def workloads_named(names: Sequence[str], who: str) -> List[Any]:
    """The workloads (harness.workloads) and real programs (as workloads of family
    "real") of `names`; one line naming the unknown ones."""
    from harness.programs import PROGRAMS
    from harness.workloads import WORKLOADS, Workload

    known = {w.name: w for w in WORKLOADS}
    known.update({p.name: Workload(p.name, "real", p.about, "") for p in PROGRAMS})
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"{who}: unknown job(s) {', '.join(bad)}: accepted are "
                         f"{', '.join(known)}")
    return [known[n] for n in names]


def make_jobs(setup: Setup, workloads: Sequence[Any], quick: bool,
              who: str) -> Tuple[List[Any], List[str]]:
    """A runner job per workload (harness.workloads, or a real program as a workload of
    family "real"), with the inputs made first (the big JSON file, the programs'
    inputs); one line per program left out."""
    from harness.programs import PROGRAMS
    from harness.runner import program_job, workload_job
    from harness.workloads import BIG_JSON_MB, WORKLOAD_DIR

    size = "quick" if quick else "full"
    big_json = setup.work / "inputs" / f"big-{BIG_JSON_MB[size]}mb.json"
    if any(w.name == "json_loads_big" for w in workloads) and not big_json.exists():
        big_json.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([setup.python, str(WORKLOAD_DIR / "json_loads_big.py"), "--write",
                        str(big_json), BIG_JSON_MB[size]], check=True, env=clean_env())
    programs = {p.name: p for p in PROGRAMS}
    ready, notes = prepared(setup, [programs[w.name] for w in workloads
                                    if w.family == "real" and w.name in programs], who)
    contexts = {p.name: (p, ctx) for p, ctx in ready}
    jobs = []
    for w in workloads:
        if w.family != "real":
            args = [a.replace("{big_json}", str(big_json))
                    for a in (w.quick_args if quick else w.args)]
            jobs.append(workload_job(w, setup.python, args))
        elif w.name in contexts:
            jobs.append(program_job(*contexts[w.name]))
    return jobs, notes


def prepared(setup: Setup, programs: Sequence[Program],
             who: str) -> Tuple[List[Tuple[Program, Ctx]], List[str]]:
    """(program, its context) of every program whose inputs are ready, and one line per
    program left out (set-up failed, Python too old)."""
    from harness.programs import prepare_inputs

    ready, notes = [], []
    for program in programs:
        ctx = setup.ctx(program)
        problem: Optional[str] = prepare_inputs(program, ctx)
        if problem:
            notes.append(f"{program.name} left out: {problem}")
            print(f"{who}: {program.name} left out: {problem}", file=sys.stderr, flush=True)
        else:
            ready.append((program, ctx))
    return ready, notes


# ---------------------------------------------------------------- facts of a run


def _read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def machine_info() -> Dict[str, Any]:
    """CPU, cores, memory, kernel, transparent huge pages, libc, load average now."""
    import platform

    from harness.runner import loadavg

    cpu = next((line.split(":", 1)[1].strip() for line in
                (_read("/proc/cpuinfo") or "").splitlines()
                if line.startswith("model name")), None)
    mem = next((int(line.split()[1]) * 1024 for line in
                (_read("/proc/meminfo") or "").splitlines()
                if line.startswith("MemTotal:")), None)
    return {"cpu_model": cpu or platform.processor() or None, "cpu_count": os.cpu_count(),
            "memory_total": mem, "kernel": platform.release(), "machine": platform.machine(),
            "thp_enabled": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
            "libc": " ".join(platform.libc_ver()).strip() or None,
            "loadavg_start": loadavg()}


def package_version(name: str) -> Optional[str]:
    """The version of Debian package `name`, or None."""
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
