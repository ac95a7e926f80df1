"""Where does each allocator variant's CPU time go on real programs: the allocator, the
GC, page faults, the kernel, or the interpreter?  (perf sampling; docs/performance.md)

    python scripts/perf_profile.py [--python PY | --interpreter PY] [--work DIR]
        [--no-install] [--jobs pyflakes,docutils,compileall,pylint] [--rounds 3]
        [--warmup 0] [--seed N] [--frequency 4000] [--quick]
        [--variants pymalloc+gc,bump,bump-classes,NAME=VAR=VALUE...]

Each job (a real program or a workload script) runs under each variant ``--rounds``
times, in the harness's shuffled rounds (scripts/harness/), inside ``perf record -e
cpu-clock`` (a software clock: this VM has no hardware counters), following its child
processes.  The samples of a job and variant are summed over the rounds and sorted into
five kinds by the symbol and the object they fell in:

- ``allocator``: pymalloc (``_PyObject_Malloc``, ``pymalloc_*``, ...), libc's malloc
  family, libmimalloc and libjemalloc, and bump_global's hooks (``_core``);
- ``gc``: the cyclic GC (``gc_collect_main``, ``visit_decref``, the ``*_traverse``
  functions it calls, ...);
- ``faults``: the kernel while it serves page faults and zeroes fresh pages
  (``clear_page*``, ``*handle_mm_fault``, ``do_anonymous_page``, ...);
- ``kernel``: the rest of the kernel (system calls, scheduling);
- ``interpreter``: everything else (the eval loop, dicts, the parser, ...).

Printed per job: each kind's samples as a share of the first variant's whole (so a
variant's row adds up to its time relative to that variant, and the differences say
where a variant gains or loses).  The first variant is the reference; every run's exit
status and output are checked against its run of the same round.  Needs ``perf``
(linux-perf).
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from harness import venv
from harness.runner import Runner, check_outputs, run_rounds
from harness.variants import parse_variants, select_variants

from bump_global._launch import find_preload_libraries

WHO = "perf_profile"

KINDS = ("interpreter", "allocator", "gc", "faults", "kernel")

ALLOCATOR_DSOS = ("libmimalloc", "libjemalloc", "_core.cpython")
ALLOCATOR_SYMBOLS = re.compile(
    r"^(_PyObject_(Malloc|Calloc|Realloc|Free)|_PyMem_(Raw)?(Malloc|Calloc|Realloc|Free)"
    r"|pymalloc_\w+|allocate_from_new_pool|insert_to_(used|free)pool|new_arena"
    r"|_PyObject_ArenaMmap|_PyObject_ArenaMunmap|address_in_range"
    r"|(__libc_)?(malloc|calloc|realloc|free)|_int_(malloc|free|realloc)|malloc_consolidate"
    r"|tcache_\w+|unlink_chunk|sysmalloc|cfree|_mi_\w+|mi_\w+|je_\w+|_rjem_\w+)$")
GC_SYMBOLS = re.compile(
    r"^(gc_collect_\w+|collect|visit_\w+|subtract_refs|update_refs|move_unreachable"
    r"|move_legacy_finalizers|move_legacy_finalizer_reachable|handle_weakrefs"
    r"|delete_garbage|finalize_garbage|check_garbage|deduce_unreachable|gc_list_\w+"
    r"|untrack_dicts|untrack_tuples|_PyGC_\w+|\w+_traverse|_PyObject_VisitManagedDict)$")
FAULT_SYMBOLS = re.compile(
    r"^(clear_page\w*|\w*handle_mm_fault|do_anonymous_page|do_huge_pmd_anonymous_page"
    r"|exc_page_fault|asm_exc_page_fault|do_user_addr_fault|__alloc_pages\w*"
    r"|get_page_from_freelist|rmqueue\w*|alloc_pages\w*|folio_\w+|vma_alloc_folio\w*"
    r"|clear_huge_page|__mem_cgroup_charge|lru_add\w*|set_pte_range|__pte_offset_map\w*"
    r"|madvise_\w+|zap_\w+|unmap_page_range|free_pages\w*|release_pages|tlb_\w+"
    r"|__list_del_entry_valid\w*|follow_page_pte|__get_user_pages|get_user_pages\w*"
    r"|populate_vma_page_range|faultin_page|page_reporting_\w+|\w*mem_cgroup\w*"
    r"|\w*memcg\w*|__pte_offset_map_lock|alloc_pages_mpol|__folio_batch_add_and_move"
    r"|__lruvec_stat_mod_folio|__alloc_frozen_pages\w*)$")

LINE = re.compile(r"^\s*[\d.]+%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$")


def classify(dso: str, symbol: str, kernel: bool) -> str:
    """The kind of one sampled symbol (see the module's docstring)."""
    if kernel:
        return "faults" if FAULT_SYMBOLS.match(symbol) else "kernel"
    if any(name in dso for name in ALLOCATOR_DSOS) or ALLOCATOR_SYMBOLS.match(symbol):
        return "allocator"
    if GC_SYMBOLS.match(symbol):
        return "gc"
    return "interpreter"


def parse_report(text: str) -> Dict[str, int]:
    """Samples per kind from ``perf report --stdio -n --sort dso,sym``."""
    kinds: Dict[str, int] = collections.Counter()
    for line in text.splitlines():
        m = LINE.match(line)
        if m is None or line.lstrip().startswith("#"):
            continue
        samples, dso, level, symbol = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        kinds[classify(dso, symbol, level == "k")] += samples
    return dict(kinds)


def inspect(run_dir: Path, rec: Dict[str, Any]) -> None:
    """Sort the samples of the run's perf.data into kinds (the record's ``kinds``)."""
    report = subprocess.run(["perf", "report", "-i", str(run_dir / "prefix.out"), "--stdio",
                             "-n", "--sort", "dso,sym"], capture_output=True, text=True,
                            check=False).stdout
    rec["kinds"] = parse_report(report)
    (run_dir / "prefix.out").unlink(missing_ok=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv.add_arguments(ap)
    ap.add_argument("--jobs", default="pyflakes,docutils,compileall,pylint",
                    help="comma-separated real programs or workload scripts")
    ap.add_argument("--variants", default="pymalloc+gc,bump,bump-classes",
                    help="comma-separated names or NAME=VAR=VALUE[+...]; the first is the "
                         "reference")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frequency", type=int, default=4000)
    ap.add_argument("--quick", action="store_true", help="workload scripts at tiny sizes")
    ns = ap.parse_args(argv)
    wanted = parse_variants(ns.variants, WHO) or []
    if not wanted or ns.rounds < 1 or ns.warmup < 0:
        ap.error("--variants must name one or more, --rounds be 1 or more, --warmup 0 or more")
    workloads = venv.workloads_named([j.strip() for j in ns.jobs.split(",") if j.strip()],
                                     WHO)
    setup, jobs, left_out = venv.setup_jobs(
        ns, workloads, sorted({r for v in wanted for r in v.requires}), ns.quick, WHO)
    libraries = find_preload_libraries()
    reference = wanted[0].name
    variants, notes = select_variants(wanted, setup.pyversion, libraries, setup.python,
                                      reference=reference)
    for note in left_out + notes:
        print(f"{WHO}: {note}", file=sys.stderr, flush=True)
    prefix = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(ns.frequency), "-o",
              "{out}", "--"]
    runner = Runner(setup.python, setup.work, libraries, prefix=prefix, inspect=inspect)
    result: Dict[str, Any] = {"orders": [], "raw": []}
    run_rounds(runner, jobs, variants, ns.rounds, ns.warmup, ns.seed, result)
    problems = check_outputs(result["raw"], reference) + [
        f"{r['workload']} round {r['round']} {r['variant']}: {r['error']}"
        for r in result["raw"] if not r["ok"]]
    totals: Dict[Tuple[str, str], Dict[str, int]] = collections.defaultdict(
        collections.Counter)
    for r in result["raw"]:
        if r["round"] >= 0 and "kinds" in r:
            totals[(r["workload"], r["variant"])].update(r["kinds"])
    print(f"samples per kind as a share of `{reference}`'s whole ({ns.rounds} rounds, "
          f"cpu-clock at {ns.frequency} Hz)")
    print(f"{'job':<12}{'variant':<16}{'total':>7}" + "".join(f"{k:>13}" for k in KINDS))
    for job in jobs:
        whole = sum(totals[(job.name, reference)].values()) or 1
        for v in variants:
            kinds = totals[(job.name, v.name)]
            print(f"{job.name:<12}{v.name:<16}{sum(kinds.values()) / whole:>7.3f}"
                  + "".join(f"{kinds.get(k, 0) / whole:>13.3f}" for k in KINDS))
    for problem in problems:
        print(f"{WHO}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
