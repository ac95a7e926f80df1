"""Where the CPU time goes, per allocator variant, on real programs (perf sampling).

    python scripts/perf_profile.py --venv VENV [--work DIR] [--rounds 3]
        [--jobs pyflakes,docutils,compileall,pylint] [--frequency 4000]
        [--variant NAME=VAR=VALUE[+VAR=VALUE...]] ...

Each job runs under each variant ``--rounds`` times (variant order shuffled every
round) inside ``perf record -e cpu-clock`` (a software clock: this VM has no
hardware counters), following its child processes.  The samples of a job and
variant are summed over the rounds and sorted into five kinds by the symbol and
the object they fell in:

- ``allocator``: pymalloc (``_PyObject_Malloc``, ``pymalloc_*``, ...), libc's malloc
  family, libmimalloc and libjemalloc, and bump_global's hooks (``_core``);
- ``gc``: the cyclic GC (``gc_collect_main``, ``visit_decref``, the ``*_traverse``
  functions it calls, ...);
- ``faults``: the kernel while it serves page faults and zeroes fresh pages
  (``clear_page*``, ``*handle_mm_fault``, ``do_anonymous_page``, ...);
- ``kernel``: the rest of the kernel (system calls, scheduling);
- ``interpreter``: everything else (the eval loop, dicts, the parser, ...).

Printed per job: each kind's samples as a share of the first variant's whole
(so a variant's row adds up to its time relative to that variant, and the
differences say where a variant gains or loses), and the allocator's share of the
first variant's own time: what an allocator that cost nothing could save, at
most, on that program.  Jobs and variants as in scripts/perf_variants.py (same
GCX sitecustomize; same VENV set-up).  Needs ``perf`` (linux-perf).
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import perf_variants  # noqa: E402
from perf_startup import parse_variant  # noqa: E402

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


def record(argv: List[str], cwd: Path, env: Dict[str, str], out: Path,
           frequency: int) -> Dict[str, int]:
    cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(frequency), "-o", str(out),
           "--", *argv]
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    report = subprocess.run(["perf", "report", "-i", str(out), "--stdio", "-n",
                             "--sort", "dso,sym"], capture_output=True, text=True,
                            check=False).stdout
    out.unlink()
    return parse_report(report)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "perf-variants")
    ap.add_argument("--jobs", default="pyflakes,docutils,compileall,pylint")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frequency", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--variant", action="append", default=None,
                    help="NAME=VAR=VALUE[+VAR=VALUE...]; the first is the reference")
    ns = ap.parse_args(argv)
    variants = [parse_variant(s) for s in (ns.variant or perf_variants.DEFAULT_VARIANTS)]
    venv = ns.venv.resolve()
    jobs = perf_variants.jobs_for(ns.jobs.split(","), venv, ns.work)
    gcx = ns.work / "gcx"
    gcx.mkdir(parents=True, exist_ok=True)
    (gcx / "sitecustomize.py").write_text(perf_variants.GCX_SITE)
    rng = random.Random(ns.seed)
    base_env = perf_variants.rp.base_env()
    totals: Dict[Tuple[str, str], Dict[str, int]] = collections.defaultdict(
        collections.Counter)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ns.rounds):
            for job, (cmd, cwd) in jobs.items():
                order = list(variants)
                rng.shuffle(order)
                for name, extra in order:
                    env = dict(base_env, PYTHONPATH=str(gcx), **extra)
                    kinds = record(cmd, cwd, env, Path(tmp) / "perf.data", ns.frequency)
                    totals[(job, name)].update(kinds)
    ref = variants[0][0]
    print(f"samples per kind as a share of `{ref}`'s whole ({ns.rounds} rounds, "
          f"cpu-clock at {ns.frequency} Hz)")
    print(f"{'job':<12}{'variant':<12}{'total':>7}" + "".join(f"{k:>13}" for k in KINDS))
    for job in jobs:
        whole = sum(totals[(job, ref)].values()) or 1
        for name, _ in variants:
            kinds = totals[(job, name)]
            print(f"{job:<12}{name:<12}{sum(kinds.values()) / whole:>7.3f}"
                  + "".join(f"{kinds.get(k, 0) / whole:>13.3f}" for k in KINDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
