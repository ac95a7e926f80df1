"""Do widely used programs nobody here wrote give the same output and exit status under
bump_global, and what does bump_global's report say they used?  (docs/real_programs.md)

    python scripts/real_programs.py --list
    python scripts/real_programs.py [--python PY] [--work DIR] [--no-install]
        [--programs a,b | all] [--skip a,b] [--variants pymalloc,bump,...]
        [--rounds 1] [--warmup 0] [--seed 0] [--report-via env|cli|none]
        [--timeout-scale X] [--keep-runs] [--json FILE] [--markdown FILE]

Each program (scripts/harness/programs.py) runs once per variant per round, in the
harness's shuffled rounds, from the benchmark venv (this checkout and the programs from
PyPI).  Every variant must give the reference's (pymalloc's) exit status and normalised
output; bump variants write bump_global's JSON report (``BUMP_GLOBAL_JSON``, or
``bump-global run --json`` with ``--report-via cli``), whose region used and processes
the table shows beside wall, CPU and the process tree's peak RSS.  Exits 1 when any
program failed or differed (the run folders of those programs are kept).  Speed is
bench.py's question (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import venv
from harness.programs import PROGRAM_NAMES, PROGRAMS, Program
from harness.report import first_diff, programs_markdown
from harness.runner import Runner, check_outputs, program_job, run_rounds
from harness.variants import BASE, VARIANTS, parse_variants, run_variables, select_variants

from bump_global._launch import find_preload_libraries

SCHEMA = "bump_global.real_programs/2"
WHO = "real_programs"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv.add_arguments(parser)
    parser.add_argument("--programs", default="all",
                        help="comma-separated names, or all (default); see --list")
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--variants", default="pymalloc,bump",
                        help="comma-separated names or [NAME=]VAR=VALUE[+...] (default: "
                             "pymalloc,bump; pymalloc, the reference, always runs)")
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds (default 1)")
    parser.add_argument("--warmup", type=int, default=0, help="unrecorded rounds first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the variant shuffles")
    parser.add_argument("--sample-ms", type=float, default=20.0,
                        help="tree RSS sampling period (default 20 ms)")
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiply every program's timeout")
    parser.add_argument("--report-via", choices=("env", "cli", "none"), default="env",
                        help="how bump variants write the JSON report: BUMP_GLOBAL_JSON "
                             "(env, default), bump-global run --json (cli), none")
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep every run's folder (default: only those of programs "
                             "that failed)")
    parser.add_argument("--json", type=Path, help="write all runs and the summary here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--list", action="store_true", help="list programs and variants")
    ns = parser.parse_args(argv)
    if ns.rounds < 1 or ns.warmup < 0:
        parser.error("--rounds must be 1 or more and --warmup 0 or more")
    if ns.sample_ms <= 0 or ns.timeout_scale <= 0:
        parser.error("--sample-ms and --timeout-scale must be positive")
    if ns.interpreter:
        parser.error("--interpreter: real programs need the benchmark venv (use --python)")
    return ns


def select_programs(ns: argparse.Namespace) -> List[Program]:
    wanted = PROGRAM_NAMES if ns.programs == "all" else [
        n.strip() for n in ns.programs.split(",") if n.strip()]
    skip = {n.strip() for n in ns.skip.split(",") if n.strip()}
    unknown = [n for n in [*wanted, *skip] if n not in PROGRAM_NAMES]
    if unknown:
        raise SystemExit(f"{WHO}: unknown program(s) {', '.join(unknown)} in --programs or "
                         f"--skip: accepted are {', '.join(PROGRAM_NAMES)}")
    return [p for p in PROGRAMS if p.name in wanted and p.name not in skip]


def problems_of(name: str, raw: List[Dict[str, Any]], report: bool) -> List[str]:
    """What went wrong with program `name`'s measured runs, one line each (with the
    first lines of a diff where an output differs from the reference's)."""
    runs = [r for r in raw if r["workload"] == name and r["round"] >= 0]
    problems = [f"{r['variant']} round {r['round']}: {r['error']}" for r in runs if not r["ok"]]
    if report:
        problems += [f"{r['variant']} round {r['round']}: no JSON report" for r in runs
                     if r["ok"] and "report" in r and not r["report"]]
    refs = {r["round"]: r for r in runs if r["variant"] == BASE and r["ok"]}
    for r in runs:
        if r.get("same_output") is False:
            problems.append(f"{r['variant']} round {r['round']}: exit {r['exit']} or output "
                            f"differs from {BASE}'s:\n"
                            + first_diff(Path(refs[r["round"]]["run_dir"]), Path(r["run_dir"])))
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    ns = parse_args(argv)
    if ns.list:
        for p in PROGRAMS:
            req = ", ".join(p.requires) or "stdlib"
            print(f"{p.name:24} {p.about} [{req}; timeout {p.timeout:.0f} s]")
        print()
        for v in VARIANTS:
            print(f"{v.name:24} {v.what}")
        return 0
    wanted = parse_variants(ns.variants, WHO) or []
    setup, programs = venv.prepare(ns, select_programs(ns),
                                   sorted({r for v in wanted for r in v.requires}), WHO)
    libraries = find_preload_libraries()
    variants, notes = select_variants(wanted, setup.pyversion, libraries, setup.python)
    for note in notes:
        print(f"{WHO}: {note}", file=sys.stderr, flush=True)
    ready, left_out = venv.prepared(setup, programs, WHO)
    runner = Runner(setup.python, setup.work, libraries, sample_s=ns.sample_ms / 1000,
                    timeout_scale=ns.timeout_scale, report=ns.report_via, keep_runs=True)
    result: Dict[str, Any] = {
        "schema": SCHEMA, "python": setup.facts["full"],
        "bump_global": setup.facts["bump_global"],
        "command": [os.path.basename(sys.argv[0]), *(argv or sys.argv[1:])],
        "rounds": ns.rounds, "warmup": ns.warmup, "seed": ns.seed, "sample_ms": ns.sample_ms,
        "report_via": ns.report_via, "report_schema": None, "reference": BASE,
        "variants": [{"name": v.name, "what": v.what, "env": run_variables(v, libraries)}
                     for v in variants],
        "notes": notes + left_out, "programs": [], "orders": [], "raw": [],
    }
    run_rounds(runner, [program_job(p, ctx) for p, ctx in ready], variants, ns.rounds,
               ns.warmup, ns.seed, result)
    check_outputs(result["raw"], BASE)
    for program, _ in ready:
        problems = problems_of(program.name, result["raw"], ns.report_via != "none")
        result["programs"].append({"name": program.name, "about": program.about,
                                   "same": not problems, "problems": problems})
        if not problems and not ns.keep_runs:
            shutil.rmtree(setup.work / "runs" / program.name, ignore_errors=True)
    result["report_schema"] = next((r["report"].get("schema") for r in result["raw"]
                                    if r.get("report")), None)
    table = programs_markdown(result)
    print(table)
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=2) + "\n")
    if ns.markdown:
        ns.markdown.write_text(table)
    bad = [p["name"] for p in result["programs"] if p["problems"]] + [
        n.split()[0] for n in left_out]
    print("FAILED: " + ", ".join(bad) if bad else "all programs: same output and exit status",
          flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
