"""Summaries of shuffled rounds: per job and variant, the medians of the runs and the
medians of the per-round ratios to two references (plain pymalloc, and pymalloc with the
same GC policy) with their min-max spread; per family, geometric means of those medians.

The ratio of each round is taken against the reference's run of the same round
(``bump_global._launch.per_round_ratios``): a ratio of medians would pair runs that did
not meet the same machine.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Dict, List, Optional, Sequence

from bump_global._launch import per_round_ratios, ratio_summary
from harness.runner import cpu
from harness.variants import BASE, GC_PEER

FAMILIES = ("startup", "build", "churn", "real")


def med(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [x for x in values if x is not None]
    return statistics.median(vals) if vals else None


def geomean(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [x for x in values if x]
    return math.exp(sum(math.log(x) for x in vals) / len(vals)) if vals else None


METRICS = {"wall": lambda r: r["wall_s"], "cpu": cpu, "rss": lambda r: r["tree_peak_rss"]}


def ratios(ok: List[Dict[str, Any]], ref: Dict[int, Dict[str, Any]],
           metric: str) -> List[float]:
    """The per-round ratios of `metric` of the runs `ok` to the reference runs `ref`
    (round -> run)."""
    get = METRICS[metric]
    return per_round_ratios({r["round"]: get(r) for r in ok},
                            {n: get(r) for n, r in ref.items()})


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
                    entry[f"{metric}_{label}"] = ratio_summary(
                        ratios(ok, refs[ref_name], metric))
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


def pair_summary(result: Dict[str, Any], pairs: Sequence[Sequence[str]],
                 metrics: Sequence[str] = ("cpu", "wall")) -> Dict[str, Any]:
    """What one variant costs against another of the same rounds: for each
    ``(variant, reference)`` of `pairs` (named ``"variant/reference"``), per workload
    the median of the per-round ratios with their spread (rounds where both ran and
    gave the reference's output), and across workloads the geometric mean of those
    medians, and per round the geometric mean over the workloads that round (its
    spread says how much the geometric mean itself moves between rounds).

    A variant's cost is often measured against another variant than pymalloc (a
    feature switched on in the same configuration), which :func:`summarise` does
    not do."""
    measured = [r for r in result["raw"] if r["round"] >= 0 and r["ok"]
                and r.get("same_output", True)]
    runs: Dict[Any, Dict[int, Dict[str, Any]]] = {}
    for r in measured:
        runs.setdefault((r["workload"], r["variant"]), {})[r["round"]] = r
    workloads = [w["name"] for w in result["workloads"]]
    cells: Dict[str, Dict[str, Any]] = {}
    overall: Dict[str, Any] = {}
    for variant, reference in pairs:
        name = f"{variant}/{reference}"
        per_metric: Dict[str, Any] = {}
        for metric in metrics:
            by_round: Dict[int, List[float]] = {}
            medians = []
            for w in workloads:
                mine, ref = runs.get((w, variant)), runs.get((w, reference))
                if not mine or not ref:
                    continue
                values = ratios(list(mine.values()), ref, metric)
                stat = ratio_summary(values)
                cells.setdefault(w, {}).setdefault(name, {})[metric] = stat
                if stat["median"] is not None:
                    medians.append(stat["median"])
                for rnd in sorted(set(mine) & set(ref)):
                    base = METRICS[metric](ref[rnd])
                    if base > 0:
                        by_round.setdefault(rnd, []).append(METRICS[metric](mine[rnd]) / base)
            complete = [geomean(v) for v in by_round.values() if len(v) == len(medians)]
            per_metric[metric] = {
                "geomean": geomean(medians), "count": len(medians),
                "min": min(medians, default=None), "max": max(medians, default=None),
                "round_geomeans": ratio_summary([g for g in complete if g is not None])}
        overall[name] = per_metric
    return {"pairs": [f"{v}/{r}" for v, r in pairs], "cells": cells, "overall": overall}
