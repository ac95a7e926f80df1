"""What does sampling allocation sites (``sites=True``) cost real programs, against the
same bump_global configuration without it and against what a user would otherwise reach
for (memray, tracemalloc)?  And which default mean rate do the measurements support?
The tables of docs/sites-overhead.md, in one command:

    python scripts/bench_sites.py --seed 20261 --sweep-rounds 7 \\
        --json docs/sites-overhead.json --markdown docs/sites-overhead.md

    python scripts/bench_sites.py [--python PY] [--work DIR] [--no-install] [--seed N]
        [--parts main,sweep] [--rounds 5] [--warmup 1] [--programs a,b,...]
        [--peers memray,memray-py,tracemalloc] [--few PROGRAM:VARIANT,...] [--few-rounds 2]
        [--sweep-programs a,b,...] [--rates 64K,128K,...] [--sweep-configs bump,classes]
        [--sweep-rounds 8] [--sweep-warmup 1] [--harness-reading]
        [--json FILE] [--markdown FILE]
    python scripts/bench_sites.py --from-json FILE [--json FILE] [--markdown FILE]

Two parts, each its own shuffled rounds (docs/measuring.md, through scripts/harness/):

- ``main``: the real programs under ``pymalloc``, ``bump``, ``bump-sites``,
  ``bump-classes``, ``bump-classes-sites`` and the peers (``memray``, ``memray-py``,
  ``tracemalloc``, which cannot run on top of bump_global and are compared with
  ``pymalloc``).  The sites cost is ``bump-sites`` / ``bump`` and
  ``bump-classes-sites`` / ``bump-classes``, per round.  ``--few PROGRAM:VARIANT``
  runs that pair in the first ``--few-rounds`` measured rounds only and not in warm-up
  (tracemalloc makes black's workers ten times slower: repeating it buys nothing).
- ``sweep``: fewer programs under ``bump`` and ``bump-classes`` with and without
  sites at each mean rate of ``--rates`` (``BUMP_GLOBAL_SITES_RATE``).

Every bump variant writes bump_global's JSON report at exit (``BUMP_GLOBAL_JSON``), which
reads and aggregates each process's samples (the sites variants pay for that) and gives
their count.  ``--harness-reading`` (the harness's ``HARNESS_SITES``) makes every process
that samples read its own samples at exit instead, for an engine whose report does not
(before the report had sites).  Every run's
output is checked against pymalloc's of the same round.  With ``--markdown`` the
generated tables replace what lies between the ``<!-- generated: begin -->`` and
``<!-- generated: end -->`` lines of the file (the prose around them is kept), or make
the whole file if it has none.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from harness import venv
from harness.programs import PROGRAMS
from harness.report import load_range, table
from harness.runner import Runner, check_outputs, loadavg, probe, run_rounds
from harness.stats import geomean, pair_summary
from harness.variants import BASE, VARIANTS, Variant, bump_env, run_variables, select_variants
from harness.workloads import Workload

from bump_global._config import OPTIONS
from bump_global._launch import find_preload_libraries

SCHEMA = "bump_global.bench_sites/1"
WHO = "bench_sites"
MIB = 1024 * 1024
BEGIN, END = "<!-- generated: begin -->", "<!-- generated: end -->"

PROGRAMS_DEFAULT = "pyflakes,pylint,docutils,json_tool,black,pytest_toolz"
SWEEP_DEFAULT = "pyflakes,docutils,pytest_toolz"
RATES_DEFAULT = "64K,128K,256K,512K,1M"
DEFAULT_RATE = OPTIONS["sites_rate"].default  # the option's default, from the one table
#: The issue's targets for the sites cost (CPU, per-round ratio to the same
#: configuration without sites): on the geometric mean, and on any one program.
TARGET_GEOMEAN, TARGET_ANY = 1.02, 1.05
#: (sites variant, its configuration without sites) of the main part
SITES_PAIRS = (("bump-sites", "bump"), ("bump-classes-sites", "bump-classes"))
CONFIGS = {"bump": {}, "classes": {"reclaim": "classes"}}


def parse_list(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_rate(text: str) -> int:
    """Bytes of ``64K``, ``1M``, ``524288``."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def rate_name(rate: float) -> str:
    """``64K``, ``1M``: the rate as the variants and tables name it."""
    rate = int(rate)
    if rate % (1 << 20) == 0:
        return f"{rate >> 20}M"
    return f"{rate >> 10}K" if rate % (1 << 10) == 0 else str(rate)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv.add_arguments(parser)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the shuffles (default: from the clock; recorded)")
    parser.add_argument("--parts", default="main,sweep", help="main, sweep or both")
    parser.add_argument("--rounds", type=int, default=5, help="main: measured rounds (5)")
    parser.add_argument("--warmup", type=int, default=1, help="main: warm-up rounds (1)")
    parser.add_argument("--programs", default=PROGRAMS_DEFAULT,
                        help=f"main: real programs (default {PROGRAMS_DEFAULT})")
    parser.add_argument("--peers", default="memray,memray-py,tracemalloc",
                        help="main: the peers, run beside pymalloc (default: all three)")
    parser.add_argument("--few", default="black:tracemalloc",
                        help="main: PROGRAM:VARIANT pairs run in the first --few-rounds "
                             "measured rounds only (default black:tracemalloc; '' for none)")
    parser.add_argument("--few-rounds", type=int, default=2)
    parser.add_argument("--sweep-programs", default=SWEEP_DEFAULT,
                        help=f"sweep: real programs (default {SWEEP_DEFAULT})")
    parser.add_argument("--rates", default=RATES_DEFAULT,
                        help=f"sweep: mean rates (default {RATES_DEFAULT})")
    parser.add_argument("--sweep-configs", default="bump,classes",
                        help="sweep: configurations, bump and/or classes (default both)")
    parser.add_argument("--sweep-rounds", type=int, default=8)
    parser.add_argument("--sweep-warmup", type=int, default=1)
    parser.add_argument("--harness-reading", action="store_true",
                        help="HARNESS_SITES: every sampling process also reads its samples at "
                             "exit for the harness (for an engine whose report does not "
                             "read them itself, as before the report had sites)")
    parser.add_argument("--sample-ms", type=float, default=20.0,
                        help="process-tree RSS sampling period (default 20)")
    parser.add_argument("--json", dest="json_out", type=Path, help="write everything here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--from-json", type=Path, metavar="FILE", action="append",
                        help="run nothing: summarise FILE's raw runs again (repeat: the "
                             "parts of several runs, e.g. --parts main then --parts sweep)")
    ns = parser.parse_args(argv)
    if min(ns.rounds, ns.sweep_rounds) < 1 or min(ns.warmup, ns.sweep_warmup) < 0:
        parser.error("rounds must be 1 or more, warm-up rounds 0 or more")
    return ns


# ------------------------------------------------------------------------ running


def named_variants(names: Sequence[str]) -> List[Variant]:
    known = {v.name: v for v in VARIANTS}
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"{WHO}: unknown variant(s) {', '.join(bad)}: accepted are "
                         f"{', '.join(known)}")
    return [known[n] for n in names]


def sweep_variants(rates: Sequence[int], configs: Sequence[str]) -> List[Variant]:
    """pymalloc (the output's reference), then per configuration the variant without
    sites and one with sites per rate (``bump-sites@64K``, ``bump-classes-sites@64K``)."""
    out = named_variants([BASE])
    for config in configs:
        if config not in CONFIGS:
            raise SystemExit(f"{WHO}: --sweep-configs: unknown {config!r} (bump, classes)")
        base = "bump" if config == "bump" else "bump-classes"
        out += named_variants([base])
        for rate in rates:
            env = bump_env(**CONFIGS[config], sites="1", sites_rate=str(rate))
            out.append(Variant(f"{base}-sites@{rate_name(rate)}",
                               f"{base} with sites, one sample every {rate_name(rate)}B on "
                               "average", env, default=False))
    return out


def sweep_pairs(variants: Sequence[Variant]) -> List[Tuple[str, str]]:
    return [(v.name, v.name.split("-sites@")[0]) for v in variants if "-sites@" in v.name]


def main_pairs(variants: Sequence[Variant]) -> List[Tuple[str, str]]:
    names = {v.name for v in variants}
    pairs = [p for p in SITES_PAIRS if p[0] in names and p[1] in names]
    return pairs + [(n, BASE) for n in (v.name for v in variants) if n != BASE]


def run_part(result: Dict[str, Any], name: str, runner: Runner, jobs: List[Any],
             variants: List[Variant], rounds: int, warmup: int, seed: int,
             pairs: List[Tuple[str, str]], libraries: Dict[str, Optional[str]],
             save: Callable[[], None],
             skip: Optional[Callable[[str, str, int], bool]] = None) -> None:
    """One part's shuffled rounds, recorded in ``result["parts"][name]`` (raw runs,
    orders, the pair summary) as they go."""
    result["parts"][name] = part = {
        "name": name, "settings": {"rounds": rounds, "warmup": warmup, "seed": seed},
        "workloads": [{"name": j.name, "family": j.family, "what": j.what} for j in jobs],
        "variants": [{"name": v.name, "what": v.what, "env": run_variables(v, libraries)}
                     for v in variants],
        "pairs": [list(p) for p in pairs], "probes": {}, "orders": [], "raw": [],
        "run": {k: result.get(k) for k in ("command", "date", "versions", "python",
                                           "machine")},
        "loadavg_start": loadavg(), "partial": True}
    for v in variants:
        part["probes"][v.name] = info = probe(runner, v)
        if info.get("error"):
            print(f"{WHO}: probe of {v.name}: {info['error']}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    run_rounds(runner, jobs, variants, rounds, warmup, seed, part, save, skip)
    part.update(partial=False, elapsed_s=time.perf_counter() - t0, loadavg_end=loadavg())
    summarise_part(part)


def summarise_part(part: Dict[str, Any]) -> None:
    part["output_problems"] = check_outputs(part["raw"], BASE)
    part["summary"] = pair_summary(part, [tuple(p) for p in part["pairs"]])


def merge(results: Sequence[Dict[str, Any]], names: Sequence[str]) -> Dict[str, Any]:
    """One result from the runs of several invocations: the first one's facts, every
    invocation's parts (a later part of the same name replaces an earlier one), each
    part with the command, date, commit and machine of the run that made it."""
    for result, name in zip(results, names):
        if result.get("schema") != SCHEMA:
            raise SystemExit(f"{WHO}: {name} is not a {SCHEMA} file")
    merged = dict(results[0], parts={}, notes=[])
    for result in results:
        for key, part in result["parts"].items():
            part.setdefault("run", {k: result.get(k) for k in
                                    ("command", "date", "versions", "python", "machine")})
            merged["parts"][key] = part
        merged["notes"] += [n for n in result.get("notes") or [] if n not in merged["notes"]]
    if len(results) > 1:
        merged["commands"] = [r["command"] for r in results]
    return merged


def main(argv: Optional[Sequence[str]] = None) -> int:
    ns = parse_args(argv)
    if ns.from_json:
        result = merge([json.loads(path.read_text()) for path in ns.from_json],
                       [str(path) for path in ns.from_json])
        for part in result["parts"].values():
            summarise_part(part)
        write(result, ns)
        return 0
    parts = parse_list(ns.parts)
    known = {p.name for p in PROGRAMS}
    main_programs = parse_list(ns.programs) if "main" in parts else []
    sweep_programs = parse_list(ns.sweep_programs) if "sweep" in parts else []
    bad = [n for n in main_programs + sweep_programs if n not in known]
    if bad or not parts or set(parts) - {"main", "sweep"}:
        raise SystemExit(f"{WHO}: unknown program(s) {', '.join(bad)} or --parts {ns.parts!r}: "
                         f"programs are {', '.join(sorted(known))}")
    main_variants = named_variants([BASE, "bump", "bump-sites", "bump-classes",
                                    "bump-classes-sites", *parse_list(ns.peers)])
    rates = [parse_rate(r) for r in parse_list(ns.rates)]
    sweep_vars = sweep_variants(rates, parse_list(ns.sweep_configs))
    few = {tuple(p.split(":", 1)) for p in parse_list(ns.few)}

    names = list(dict.fromkeys(main_programs + sweep_programs))
    workloads = [Workload(n, "real", next(p.about for p in PROGRAMS if p.name == n), "")
                 for n in names]
    requires = sorted({r for v in main_variants for r in v.requires}) if main_programs else []
    setup, jobs, notes = venv.setup_jobs(ns, workloads, requires, False, WHO)
    by_name = {j.name: j for j in jobs}
    libraries = find_preload_libraries()
    runner = Runner(setup.python, setup.work, libraries, {}, ns.sample_ms / 1000,
                    report="env", sites=ns.harness_reading)
    seed = ns.seed if ns.seed is not None else int(time.time()) % 100_000
    args = list(argv if argv is not None else sys.argv[1:])
    if ns.seed is None:
        args += ["--seed", str(seed)]
    result: Dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python scripts/bench_sites.py " + " ".join(shlex.quote(a) for a in args),
        "python": setup.facts["full"], "machine": venv.machine_info(),
        "versions": {"bump_global": setup.facts["bump_global"], "commit": venv.git_commit()},
        "settings": {"seed": seed, "sample_ms": ns.sample_ms, "few": sorted(map(list, few)),
                     "few_rounds": ns.few_rounds, "default_rate": DEFAULT_RATE,
                     "targets": {"geomean": TARGET_GEOMEAN, "any": TARGET_ANY}},
        "notes": notes, "parts": {}}

    ns.scrubbed = [(str(setup.work), "<WORK>"), (setup.facts["stdlib"], "<STDLIB>")]

    def save() -> None:
        if ns.json_out:
            ns.json_out.write_text(scrub(json.dumps(result, indent=1) + "\n", ns))

    t0 = time.perf_counter()
    if main_programs:
        variants, skipped = select_variants(main_variants, setup.pyversion, libraries,
                                            setup.python)
        result["notes"] += skipped
        for note in skipped:
            print(f"{WHO}: {note}", file=sys.stderr, flush=True)

        def skip(job: str, variant: str, rnd: int) -> bool:
            return (job, variant) in few and not 0 <= rnd < ns.few_rounds

        run_part(
            result, "main", runner, [by_name[n] for n in main_programs if n in by_name], variants,
            ns.rounds, ns.warmup, seed, main_pairs(variants), libraries, save, skip)
        save()
    if sweep_programs:
        run_part(
            result, "sweep", runner, [by_name[n] for n in sweep_programs if n in by_name],
            sweep_vars, ns.sweep_rounds, ns.sweep_warmup, seed + 1, sweep_pairs(sweep_vars),
            libraries, save)
    result["elapsed_s"] = time.perf_counter() - t0
    result["machine"]["loadavg_end"] = loadavg()
    write(result, ns)
    raw = [r for p in result["parts"].values() for r in p["raw"]]
    failed = [r for r in raw if not r["ok"]]
    problems = sum(len(p["output_problems"]) for p in result["parts"].values())
    print(f"{WHO}: {len(raw)} runs in {result['elapsed_s']:.0f} s, {len(failed)} failed, "
          f"{problems} with another output than pymalloc's", file=sys.stderr)
    return 1 if failed or problems else 0


# ------------------------------------------------------------------------ reporting


def pct(stat: Optional[Dict[str, Any]]) -> str:
    """A ratio near 1 as a change: ``+1.3% (-0.4..+2.9)``, median (min..max)."""
    if not stat or stat.get("median") is None:
        return "-"
    text = f"{(stat['median'] - 1) * 100:+.1f}%"
    if stat.get("min") is not None and stat["min"] != stat["max"]:
        text += f" ({(stat['min'] - 1) * 100:+.1f}..{(stat['max'] - 1) * 100:+.1f})"
    return text


def times(stat: Optional[Dict[str, Any]]) -> str:
    """A ratio as a factor: ``2.41x (2.30-2.55)``, median (min-max)."""
    if not stat or stat.get("median") is None:
        return "-"
    text = f"{stat['median']:.2f}x"
    if stat.get("min") is not None and stat["min"] != stat["max"]:
        text += f" ({stat['min']:.2f}-{stat['max']:.2f})"
    n = len(stat.get("rounds") or [])
    return text + (f" [{n} rounds]" if n and n < 3 else "")


def runs_of(part: Dict[str, Any], workload: str, variant: str) -> List[Dict[str, Any]]:
    return [r for r in part["raw"] if r["round"] >= 0 and r["ok"]
            and r["workload"] == workload and r["variant"] == variant]


def median_of(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def cell(part: Dict[str, Any], workload: str, pair: str, metric: str) -> Dict[str, Any]:
    return ((part["summary"]["cells"].get(workload) or {}).get(pair) or {}).get(metric) or {}


def overall(part: Dict[str, Any], pair: str, metric: str) -> Dict[str, Any]:
    return (part["summary"]["overall"].get(pair) or {}).get(metric) or {}


def geo_cell(part: Dict[str, Any], pair: str, metric: str, as_pct: bool = True) -> str:
    """The geometric mean of the per-program medians, with the range of the per-round
    geometric means."""
    o = overall(part, pair, metric)
    g = o.get("geomean")
    if g is None:
        return "-"
    spread = o.get("round_geomeans") or {}
    if as_pct:
        text = f"**{(g - 1) * 100:+.1f}%**"
        if spread.get("min") is not None:
            text += f" ({(spread['min'] - 1) * 100:+.1f}..{(spread['max'] - 1) * 100:+.1f})"
    else:
        text = f"**{g:.2f}x**"
        if spread.get("min") is not None:
            text += f" ({spread['min']:.2f}-{spread['max']:.2f})"
    return text


def samples_stat(part: Dict[str, Any], workload: str, variant: str) -> Dict[str, Any]:
    """Medians over the measured runs of the samples each run's processes read back,
    with the counts of the C core (taken, lost), the processes that sampled, the
    seconds spent aggregating at exit, and the estimates against the engine's exact
    counts of the same run (allocations, bytes handed out: its JSON report)."""
    runs = [r for r in runs_of(part, workload, variant) if r.get("sites")]
    if not runs:
        return {}

    def ratio(r: Dict[str, Any], est: str, exact: str) -> Optional[float]:
        total = (r.get("report") or {}).get(exact)
        return r["sites"][est] / total if total else None

    return {"samples": median_of([r["sites"]["samples"] for r in runs]),
            "samples_min": min(r["sites"]["samples"] for r in runs),
            "lost": sum(r["sites"]["lost"] for r in runs),
            "inside": sum(r["sites"]["inside"] for r in runs),
            "unread": sum(max(0, r["sites"]["recorded"] - r["sites"]["samples"]) for r in runs),
            "processes": median_of([r["sites"]["processes"] for r in runs]),
            "stacks": median_of([r["sites"]["stacks"] for r in runs]),
            "aggregate_ms": median_of([1000 * r["sites"]["aggregate_s"] for r in runs]),
            "est_allocs": median_of([ratio(r, "allocations", "allocations") for r in runs]),
            "est_bytes": median_of([ratio(r, "bytes", "used") for r in runs]),
            "report_samples": median_of([(r.get("report") or {}).get("sites_samples")
                                         for r in runs]),
            "runs": len(runs)}


def verdict(values: Sequence[Optional[float]]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    g, worst = geomean(vals), max(vals)
    ok_g = g is not None and g <= TARGET_GEOMEAN
    return (f"geomean {((g or 1) - 1) * 100:+.1f}% {'met' if ok_g else 'MISSED'}, "
            f"worst {(worst - 1) * 100:+.1f}% {'met' if worst <= TARGET_ANY else 'MISSED'}")


def environment_lines(result: Dict[str, Any]) -> List[str]:
    m = result["machine"]
    lines = ["```sh", *(result.get("commands") or [result["command"]]), "```", "",
             f"- Date: {result['date']}; Python {result['python']}; bump_global "
             f"{result['versions'].get('bump_global')} (commit "
             f"{result['versions'].get('commit')}); seed {result['settings']['seed']}.",
             f"- Machine: {m['cpu_model']}, {m['cpu_count']} cores, "
             f"{(m.get('memory_total') or 0) / MIB / 1024:.0f} GiB; Linux {m['kernel']}; THP "
             f"`{m['thp_enabled']}`; shared with other developers' test runs. Load average "
             f"(1, 5, 15 min) at start {m.get('loadavg_start')}, at end "
             f"{m.get('loadavg_end')}."]
    for name, part in result["parts"].items():
        st = part["settings"]
        problems = part.get("output_problems") or []
        lines.append(
            f"- Part `{name}`: {st['warmup']} warm-up round(s), then {st['rounds']} measured "
            f"round(s), seed {st['seed']}; {len(part['raw'])} runs in "
            f"{part.get('elapsed_s', 0) / 60:.0f} min; 1-minute load average when each run "
            f"started: {load_range(part['raw'])}; "
            + ("every run gave pymalloc's exit status and output."
               if not problems else f"**{len(problems)} run(s) gave another output**."))
    few = result["settings"].get("few") or []
    if few and "main" in result["parts"]:
        lines.append("- Run in the first " + str(result["settings"]["few_rounds"])
                     + " measured rounds only (not in warm-up): "
                     + ", ".join(f"{w} under `{v}`" for w, v in few) + ".")
    failed = [r for p in result["parts"].values() for r in p["raw"] if not r["ok"]]
    if failed:
        lines.append(f"- **{len(failed)} run(s) failed**: "
                     + "; ".join(f"{r['workload']} {r['variant']} round {r['round']}: "
                                 f"{r.get('error', '')[:120]}" for r in failed[:5]))
    lines += [f"- Not run: {n}" for n in result.get("notes") or []]
    return lines


def _rate_text(result: Dict[str, Any]) -> str:
    """The default rate of the run (the runs before it was recorded: 512 KiB)."""
    return f"{result.get('settings', {}).get('default_rate', 512 << 10) >> 10} KiB"


def main_tables(result: Dict[str, Any]) -> List[str]:
    part = result["parts"]["main"]
    ws = [w["name"] for w in part["workloads"]]
    names = [v["name"] for v in part["variants"]]
    lines = ["", f"### The sites cost at the default rate ({_rate_text(result)})", "",
             "Per program, the median of the per-round ratios of the sites variant to the "
             "same configuration without sites (min..max over the rounds), as a change; "
             "CPU is user + system of the whole process tree. The last row: the geometric "
             "mean of the per-program medians (in brackets the range of the per-round "
             "geometric means). Samples: median per run, all processes of the run.", ""]
    rows = []
    for w in ws:
        base_cpu, bump_cpu = (median_of([r["user_s"] + r["sys_s"] for r in runs_of(part, w, n)])
                              for n in (BASE, "bump"))
        row = [w, f"{fmt(base_cpu, '.2f')} / {fmt(bump_cpu, '.2f')}"]
        for variant, ref in SITES_PAIRS:
            pair = f"{variant}/{ref}"
            row += [pct(cell(part, w, pair, "cpu")), pct(cell(part, w, pair, "wall"))]
        row.append(fmt(samples_stat(part, w, "bump-sites").get("samples"), ",.0f"))
        rows.append(row)
    geo = ["**geometric mean**", ""]
    for variant, ref in SITES_PAIRS:
        geo += [geo_cell(part, f"{variant}/{ref}", "cpu"),
                geo_cell(part, f"{variant}/{ref}", "wall")]
    rows.append(geo + [""])
    lines += table(["program", "CPU s: pymalloc / bump", "bump-sites / bump: CPU", "wall",
                    "bump-classes-sites / bump-classes: CPU", "wall", "samples"], rows)
    lines += [""]
    for variant, ref in SITES_PAIRS:
        meds = [cell(part, w, f"{variant}/{ref}", "cpu").get("median") for w in ws]
        lines.append(f"- CPU targets (at most +{(TARGET_GEOMEAN - 1) * 100:.0f}% on the "
                     f"geometric mean, +{(TARGET_ANY - 1) * 100:.0f}% on any program), "
                     f"`{variant}` / `{ref}`: {verdict(meds)}.")

    peers = [n for n in names if n not in (BASE,)]
    lines += ["", "### What each way of watching allocations costs, against pymalloc", "",
              "Median of the per-round ratios to the pymalloc run of the same round, CPU "
              "(min-max); the wall ratio's median after the slash. `bump-sites` and "
              "`bump-classes-sites` are bump_global with its allocation sites, what a user "
              "runs instead of a profiler; `bump` and `bump-classes` are there to split "
              "their cost into the allocator's and the sampling's.", ""]
    rows = []
    for w in ws:
        row = [w]
        for n in peers:
            c, wall = cell(part, w, f"{n}/{BASE}", "cpu"), cell(part, w, f"{n}/{BASE}", "wall")
            row.append(times(c) + (f" / {wall['median']:.2f}" if wall.get("median") else ""))
        rows.append(row)
    rows.append(["**geometric mean**"] + [geo_cell(part, f"{n}/{BASE}", "cpu", as_pct=False)
                                          + " / " + fmt(overall(part, f"{n}/{BASE}", "wall")
                                                        .get("geomean"), ".2f")
                                          for n in peers])
    lines += table(["program"] + [f"`{n}`" for n in peers], rows)

    lines += ["", "### Samples, and what they estimate", "",
              "Per sites variant, medians over the measured runs: processes that sampled, "
              "samples read back at exit (all processes), distinct stacks, milliseconds "
              "spent reading and aggregating them at exit (all processes), and the estimates "
              "divided by the engine's exact counts of the same run (its JSON report: "
              "allocations, and bytes handed out (`used`) -- meaningful for pure bump, where "
              "nothing is reused). Lost: samples the C core could not write, over all runs.",
              ""]
    rows = []
    for w in ws:
        for variant, _ in SITES_PAIRS:
            s = samples_stat(part, w, variant)
            if not s:
                continue
            rows.append([w, f"`{variant}`", fmt(s["processes"], ".0f"),
                         f"{fmt(s['samples'], ',.0f')} (min {s['samples_min']:,})",
                         fmt(s["stacks"], ",.0f"), fmt(s["aggregate_ms"], ".0f"),
                         f"{s['lost']:,}" + (f" ({s['inside']} inside)" if s["inside"] else ""),
                         fmt(s["est_allocs"], ".3f") if variant == "bump-sites" else "",
                         fmt(s["est_bytes"], ".3f") if variant == "bump-sites" else ""])
    lines += table(["program", "variant", "processes", "samples", "stacks", "aggregate ms",
                    "lost", "est. / exact allocations", "est. / exact bytes"], rows, 2)
    return lines


def sweep_tables(result: Dict[str, Any]) -> List[str]:
    part = result["parts"]["sweep"]
    ws = [w["name"] for w in part["workloads"]]
    pairs = [tuple(p) for p in part["pairs"]]
    rates = sorted({p[0].split("@")[1] for p in pairs}, key=parse_rate)
    bases = list(dict.fromkeys(p[1] for p in pairs))
    lines = ["", "### The sites cost by mean rate", "",
             f"Programs: {', '.join(ws)}. CPU ratio of each sites variant to its "
             "configuration without sites, per round, as a change: median (min..max); the "
             "samples per run and the milliseconds spent aggregating them at exit (medians) "
             "after the slashes. Last rows: the geometric mean over the programs (range of "
             "the per-round geometric means) and the targets.", ""]
    header = ["configuration", "program"] + [f"{r}B" for r in rates]
    rows = []
    for base in bases:
        for w in ws:
            row = [f"`{base}`", w]
            for r in rates:
                variant = f"{base}-sites@{r}"
                s = samples_stat(part, w, variant)
                row.append(pct(cell(part, w, f"{variant}/{base}", "cpu"))
                           + f" / {fmt(s.get('samples'), ',.0f')}"
                           + f" / {fmt(s.get('aggregate_ms'), '.0f')} ms")
            rows.append(row)
        rows.append([f"`{base}`", "**geometric mean**"]
                    + [geo_cell(part, f"{base}-sites@{r}/{base}", "cpu") for r in rates])
        rows.append([f"`{base}`", "targets (CPU)"]
                    + [verdict([cell(part, w, f"{base}-sites@{r}/{base}", "cpu").get("median")
                                for w in ws]) for r in rates])
    lines += table(header, rows, 2)
    lines += ["", "Wall time, the same ratios (median):", ""]
    rows = []
    for base in bases:
        for w in ws:
            rows.append([f"`{base}`", w] + [pct({"median": cell(
                part, w, f"{base}-sites@{r}/{base}", "wall").get("median")}) for r in rates])
    lines += table(header, rows, 2)
    lines += ["", "The reading at exit alone: milliseconds spent aggregating the samples (median "
              "per run) as a share of the median CPU time of the configuration without "
              "sites; it has little noise, and grows as the rate gets finer:", ""]
    rows = []
    for base in bases:
        shares: Dict[str, List[float]] = {r: [] for r in rates}
        for w in ws:
            cpu = median_of([r["user_s"] + r["sys_s"] for r in runs_of(part, w, base)])
            row = [f"`{base}`", w]
            for r in rates:
                ms = samples_stat(part, w, f"{base}-sites@{r}").get("aggregate_ms")
                share = ms / 1000 / cpu if ms is not None and cpu else None
                if share is not None:
                    shares[r].append(1 + share)
                row.append("-" if share is None else f"{100 * share:.2f}%")
            rows.append(row)
        rows.append([f"`{base}`", "**geometric mean**"]
                    + [f"{100 * ((geomean(shares[r]) or 1) - 1):.2f}%" for r in rates])
    lines += table(header, rows, 2)
    lost = {r: sum(samples_stat(part, w, f"{b}-sites@{r}").get("lost", 0)
                   for w in ws for b in bases) for r in rates}
    lines += ["", "Lost samples over all runs: "
              + ", ".join(f"{r}B {n}" for r, n in lost.items()) + "."]
    return lines


def accuracy_note(result: Dict[str, Any]) -> List[str]:
    """How many samples a site needs: relative standard error about 1 / sqrt(N)."""
    part = result["parts"].get("main")
    if not part:
        return []
    rows = []
    for w in [w["name"] for w in part["workloads"]]:
        s = samples_stat(part, w, "bump-sites")
        if not s.get("samples"):
            continue
        n = s["samples"]
        row = [w, f"{n:,.0f}"]
        for share in (0.10, 0.01):
            expected = n * share
            row.append(f"{expected:,.0f} ({100 / math.sqrt(expected):.0f}%)"
                       if expected >= 1 else f"{expected:.1f} (-)")
        rows.append(row)
    if not rows:
        return []
    return ["", "### What the default rate resolves", "",
            "A site holding a share p of a run's bytes gets about N*p of its N samples, and "
            "its estimate a relative standard error of about 1/sqrt(N*p) (small allocations; "
            "an allocation larger than the rate is always sampled). Per program at "
            f"{_rate_text(result)} "
            "(`bump-sites`): samples of a site with 10% and with 1% of the bytes, and the "
            "standard error.", ""] + table(
        ["program", "samples", "site of 10%", "site of 1%"], rows)


def markdown(result: Dict[str, Any]) -> str:
    lines = [BEGIN, "", "## The runs", ""] + environment_lines(result)
    if "main" in result["parts"]:
        lines += main_tables(result)
    lines += accuracy_note(result)
    if "sweep" in result["parts"]:
        lines += sweep_tables(result)
    lines += ["", "Every problem of output, if any:", ""]
    problems = [p for part in result["parts"].values() for p in part.get("output_problems")
                or []]
    lines += [f"- {p}" for p in problems] or ["- none"]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def scrub(text: str, ns: argparse.Namespace) -> str:
    """`text` with the work folder (venv, inputs, runs) named ``<WORK>`` and the
    interpreter's standard library ``<STDLIB>``: the files are published, and the
    folders are this machine's business."""
    for folder, name in getattr(ns, "scrubbed", ()):
        text = text.replace(folder, name)
    return text


def write(result: Dict[str, Any], ns: argparse.Namespace) -> None:
    if ns.json_out:
        ns.json_out.write_text(scrub(json.dumps(result, indent=1) + "\n", ns))
    text = scrub(markdown(result), ns)
    if ns.markdown:
        old = ns.markdown.read_text() if ns.markdown.exists() else ""
        if BEGIN in old and END in old:
            head, rest = old.split(BEGIN, 1)
            text = head + text.rstrip("\n") + rest.split(END, 1)[1]
        ns.markdown.write_text(text)
    elif not ns.json_out:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
