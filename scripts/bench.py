"""How fast, and how big, is bump_global against the allocators a user would pick, with
the same GC policy on both sides?  The suite that publishes docs/benchmarks.md.

    python scripts/bench.py [--python PY | --interpreter PY] [--work DIR] [--no-install]
                            [--rounds 3] [--warmup 1] [--seed N]
                            [--families build,churn,startup,real] [--workloads a,b]
                            [--variants a,b,NAME=VAR=VALUE] [--build NAME=DIR]...
                            [--counters] [--quick] [--json FILE] [--markdown FILE]
    python scripts/bench.py --from-json FILE [--json FILE] [--markdown FILE]
    python scripts/bench.py --list

Families, each run a fresh process: the scripts of ``scripts/workloads/`` (``build``:
build a structure and exit; ``churn``: create and drop temporaries; ``startup``: an
empty script) and real programs (``real``: scripts/harness/programs.py, installed from
PyPI into the benchmark venv with this checkout).  Variants (scripts/harness/variants.py,
``--list``): plain pymalloc, the peers with bump_global's GC policy (pymalloc, mimalloc,
jemalloc, CPython's own mimalloc on 3.13+), bump_global through ``BUMP_GLOBAL=1`` and its
options, and opt-in ones (no prefault, allocation sites, memray, tracemalloc); any
``[NAME=]VAR=VALUE[+...]`` too.  ``--build NAME=DIR`` runs every bump variant once per
engine build (e.g. two checkouts: what a change to the engine does).

The method is docs/measuring.md's, through the harness (scripts/harness/): warm-up
rounds, then in every round each workload under every variant in a shuffled order (seed
and orders recorded); per cell the median of the per-round ratios to pymalloc and to
pymalloc+gc with their min-max spread, CPU beside wall, the process tree's peak RSS for
real programs, and every run's exit status and output checked against pymalloc's.
``--counters`` records the engine's prefault counts per run (in the JSON file).

With ``--json`` the file is rewritten after every round (``"partial": true`` until the
end); ``--from-json`` summarises a JSON file's raw runs again without running anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import venv
from harness.builds import parse_builds
from harness.programs import BENCH_DEFAULT, PROGRAMS
from harness.report import GC_POLICY, markdown
from harness.runner import (
    Runner,
    check_outputs,
    loadavg,
    probe,
    run_rounds,
)
from harness.stats import FAMILIES, summarise
from harness.variants import (
    BASE,
    VARIANTS,
    parse_variants,
    run_variables,
    select_variants,
    with_builds,
)
from harness.workloads import WORKLOADS, Workload

from bump_global._launch import find_preload_libraries

SCHEMA = "bump_global.bench/2"
WHO = "bench"


def parse_list(text: Optional[str]) -> Optional[List[str]]:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv.add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds (default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the shuffles (default: from the clock; recorded)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated from {','.join(FAMILIES)} (default: all)")
    parser.add_argument("--workloads", help="comma-separated names (default: the families' "
                                            "defaults; see --list)")
    parser.add_argument("--variants", help="comma-separated names or [NAME=]VAR=VALUE[+...] "
                                           "(pymalloc always runs; default: the default "
                                           "set; see --list)")
    parser.add_argument("--build", action="append", default=[], metavar="NAME=DIR",
                        help="run every bump variant with this engine build (repeat)")
    parser.add_argument("--counters", action="store_true",
                        help="record the engine's counters at exit (prefault) in the JSON")
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
    """The workloads --families and --workloads select (real programs as workloads of
    family "real", without a script)."""
    families = parse_list(ns.families) or []
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise SystemExit(f"{WHO}: unknown famil(ies) {', '.join(bad)} in --families: accepted "
                         f"are {', '.join(FAMILIES)}")
    known = {w.name: w for w in WORKLOADS}
    known.update({p.name: Workload(p.name, "real", p.about, "") for p in PROGRAMS})
    names = parse_list(ns.workloads)
    if names is not None:
        bad = [n for n in names if n not in known]
        if bad:
            raise SystemExit(f"{WHO}: unknown workload(s) {', '.join(bad)} in --workloads: "
                             f"accepted are {', '.join(known)}")
        return [known[n] for n in names if known[n].family in families]
    return ([w for w in WORKLOADS if w.family in families and w.default]
            + ([known[n] for n in BENCH_DEFAULT] if "real" in families else []))


def write(result: Dict[str, Any], ns: argparse.Namespace) -> None:
    if ns.json_out:
        ns.json_out.write_text(json.dumps(result, indent=1) + "\n")
    if ns.markdown and "summary" in result:
        ns.markdown.write_text(markdown(result))


def list_everything() -> int:
    for w in WORKLOADS:
        print(f"{w.name:22} {w.family + ('' if w.default else '*'):8} {w.what}")
    for p in PROGRAMS:
        print(f"{p.name:22} {'real' if p.name in BENCH_DEFAULT else 'real*':8} {p.about}")
    print("(*: not run by default; name it in --workloads)\n")
    for v in VARIANTS:
        print(f"{v.name + ('' if v.default else '*'):22} {v.what}")
    print("(*: not run by default; name it in --variants)")
    return 0


def from_json(ns: argparse.Namespace) -> int:
    result = json.loads(ns.from_json.read_text())
    if result.get("schema") != SCHEMA:
        raise SystemExit(f"{WHO}: {ns.from_json} is not a {SCHEMA} file (its schema: "
                         f"{result.get('schema')}): give a --json output of this script")
    result["output_problems"] = check_outputs(result["raw"], BASE)
    result["summary"] = summarise(result)
    write(result, ns)
    if not ns.json_out and not ns.markdown:
        print(markdown(result))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ns = parse_args(argv)
    if ns.list:
        return list_everything()
    if ns.from_json:
        return from_json(ns)
    workloads = choose_workloads(ns)
    wanted = parse_variants(ns.variants, WHO)
    builds = parse_builds(ns.build, WHO)
    if not workloads:
        raise SystemExit(f"{WHO}: nothing to run (--families and --workloads select nothing)")
    notes: List[str] = []
    if ns.interpreter and any(w.family == "real" for w in workloads):
        notes.append("real programs left out: --interpreter runs workload scripts only")
        workloads = [w for w in workloads if w.family != "real"]
    setup, jobs, left_out = venv.setup_jobs(
        ns, workloads, sorted({r for v in (wanted or []) for r in v.requires}), ns.quick, WHO)
    notes += left_out
    libraries = find_preload_libraries()
    variants, skipped = select_variants(wanted, setup.pyversion, libraries, setup.python)
    variants = with_builds(variants, list(builds))
    notes += skipped
    for note in notes:
        print(f"{WHO}: {note}", file=sys.stderr, flush=True)
    runner = Runner(setup.python, setup.work, libraries, builds, ns.sample_ms / 1000,
                    counters=ns.counters)
    probes = {v.name: probe(runner, v) for v in variants}
    for name, info in probes.items():
        if info.get("error"):
            print(f"{WHO}: probe of {name}: {info['error']}", file=sys.stderr, flush=True)

    seed = ns.seed if ns.seed is not None else int(time.time()) % 100_000
    args = list(argv if argv is not None else sys.argv[1:])
    if ns.seed is None:
        args += ["--seed", str(seed)]
    result: Dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python scripts/bench.py " + " ".join(shlex.quote(a) for a in args),
        "python": setup.facts["full"], "machine": venv.machine_info(),
        "versions": {"bump_global": setup.facts["bump_global"], "commit": venv.git_commit(),
                     "libmimalloc2.0": venv.package_version("libmimalloc2.0"),
                     "libjemalloc2": venv.package_version("libjemalloc2")},
        "settings": {"rounds": ns.rounds, "warmup": ns.warmup, "seed": seed,
                     "quick": ns.quick, "sample_ms": ns.sample_ms},
        "workloads": [{"name": j.name, "family": j.family, "what": j.what} for j in jobs],
        "variants": [{"name": v.name, "what": v.what, "env": run_variables(v, libraries)}
                     for v in variants],
        "builds": {name: str(path) for name, path in builds.items()},
        "gc_policy": GC_POLICY, "notes": notes, "probes": probes, "orders": [], "raw": [],
        "partial": True,
    }
    t0 = time.perf_counter()

    def after_round() -> None:
        if ns.json_out:
            ns.json_out.write_text(json.dumps(result, indent=1) + "\n")

    run_rounds(runner, jobs, variants, ns.rounds, ns.warmup, seed, result, after_round)
    result["partial"] = False
    result["elapsed_s"] = time.perf_counter() - t0
    result["machine"]["loadavg_end"] = loadavg()
    result["output_problems"] = check_outputs(result["raw"], BASE)
    result["summary"] = summarise(result)
    write(result, ns)
    if not ns.json_out and not ns.markdown:
        print(markdown(result))
    failed = [r for r in result["raw"] if not r["ok"]]
    print(f"{WHO}: {len(result['raw'])} runs in {result['elapsed_s']:.0f} s, {len(failed)} "
          f"failed, {len(result['output_problems'])} with another output than pymalloc's",
          file=sys.stderr)
    return 1 if failed or result["output_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
