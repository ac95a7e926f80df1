"""Instructions executed (callgrind) by workloads under allocator modes and builds.

    python scripts/perf_instructions.py --build old=DIR --build new=DIR
        [--mode gcx] [--mode bump:classes] [--job 'deltablue.py 10'] ...

Each DIR holds a ``bump_global`` package with its built C core (copy the package
folder of a checkout after ``setup.py build_ext --inplace``).  Each job is a script of
scripts/workloads/ with its arguments; it runs under ``valgrind --tool=callgrind``
(instruction counts are repeatable on a shared machine where times are not;
PYTHONHASHSEED=0 so that dict layouts are the same in every run) after
this preamble: mode ``gcx``: pymalloc with the GC thresholds x10 (the same GC
policy as bump_global's gc="relaxed"); ``bump:POLICY``: bump_global.install(
"4G", reclaim=POLICY, prefault=False, huge_pages=False) (threads and huge pages
off: callgrind serialises threads, and page faults are not instructions).
A mode ending in ``+exit`` also skips the interpreter's teardown: an atexit handler
registered first (so it runs last) flushes stdout and stderr and calls os._exit(0)
(an upper bound of what a faster exit can save; exit statuses are not kept).
Prints the instruction count per job, mode and build, and the ratio to the first
mode of the first build.  Kernel time (page faults) is not counted: see
scripts/perf_firsttouch.py for that.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent

PREAMBLE = r'''
import sys, runpy, gc
mode, _, fast_exit = sys.argv[1].partition("+exit")
if "+exit" in sys.argv[1]:
    import atexit, os
    def _exit_now():  # registered first, so it runs after every other atexit handler
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    atexit.register(_exit_now)
if mode.startswith("bump"):
    import bump_global
    bump_global.install("4G", reclaim=mode.partition(":")[2] or "none", prefault=False,
                        huge_pages=False)
else:
    a, b, c = gc.get_threshold()
    gc.set_threshold(a * 10, b, c * 10)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def count(python: str, pkg: str, mode: str, job: List[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.py")
        Path(pre).write_text(PREAMBLE)
        out = os.path.join(tmp, "cg.out")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUMP_GLOBAL", "PYTHON"))}
        env["PYTHONPATH"] = pkg
        env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        python, pre, mode, *job], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, cwd=tmp)
        match = re.search(r"^(?:summary|totals): (\d+)", Path(out).read_text(), re.M)
    assert match
    return int(match.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR")
    ap.add_argument("--mode", action="append", default=[])
    ap.add_argument("--job", action="append", default=[])
    ns = ap.parse_args(argv)
    builds: List[Tuple[str, str]] = [tuple(b.split("=", 1)) for b in ns.build]  # type: ignore
    modes = ns.mode or ["gcx", "bump:none", "bump:classes"]
    jobs = ns.job or ["tuples_list.py", "deltablue.py 10"]
    for job in jobs:
        argv_job = shlex.split(job)
        argv_job[0] = str(HERE / "workloads" / argv_job[0])
        results: Dict[Tuple[str, str], int] = {}
        for bname, pkg in builds:
            for mode in modes:
                if mode == "gcx" and bname != builds[0][0]:
                    continue  # the peer does not load the build
                results[(bname, mode)] = count(ns.python, pkg, mode, argv_job)
        ref = next(iter(results.values()))
        print(f"{job}:")
        for (bname, mode), n in results.items():
            print(f"  {mode:<14}{bname:<8}{n:>16,}  {n / ref:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
