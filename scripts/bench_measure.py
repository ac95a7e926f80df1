"""What does bump_global.measure() cost, against tracemalloc?  (docs/measure.md)

    python scripts/bench_measure.py [--reclaim none|last|classes] [--repeat 20000]

Prints, in one Markdown table:
- enter + exit of an empty block (median of 20,000 single timings, less an empty call's), for
  ``with measure():``, a reused Measure and tracemalloc's equivalent
  (get_traced_memory before and after, tracing on);
- one workload block (objects, lists, dicts, strings) timed plain under
  bump_global, inside measure(), and under tracemalloc tracing (median of 30
  alternating runs each), with what each reports.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc

import bump_global


def workload() -> int:
    rows = []
    for i in range(20_000):
        rows.append({"id": i, "name": f"row{i}", "tags": [i, i + 1, i + 2]})
    text = ",".join(row["name"] for row in rows)
    return len(text) + len(rows)


def median_ns(fn, repeat: int) -> float:
    timings = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        t0 = clock()
        fn()
        timings.append(clock() - t0)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reclaim", default="none")
    parser.add_argument("--repeat", type=int, default=20_000)
    args = parser.parse_args()
    bump_global.install(reclaim=args.reclaim)
    measure = bump_global.measure

    def nothing() -> None:
        pass

    def with_measure() -> None:
        with measure():
            pass

    reused = measure()

    def with_reused() -> None:
        with reused:
            pass

    def with_tracemalloc() -> None:
        tracemalloc.get_traced_memory()
        tracemalloc.get_traced_memory()

    with_measure()  # first use calibrates
    base = median_ns(nothing, args.repeat)
    rows = [
        ("enter+exit, `with measure():`", median_ns(with_measure, args.repeat) - base, ""),
        ("enter+exit, reused Measure", median_ns(with_reused, args.repeat) - base, ""),
    ]
    tracemalloc.start()
    rows.append(("two get_traced_memory() calls (tracing)",
                 median_ns(with_tracemalloc, args.repeat) - base, ""))
    tracemalloc.stop()

    m = measure()
    traced_peak = [0]

    def measured() -> None:
        with m:
            workload()

    def traced() -> None:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        workload()
        traced_peak[0] = tracemalloc.get_traced_memory()[1] - before

    # The three alternate run by run, plain and measured in swapped order every
    # other round, so that all meet the same machine load and region state; the
    # median of 30 runs of each is kept.
    plain_ns, inside_ns, traced_ns = [], [], []
    for i in range(30):
        pair = ((workload, plain_ns), (measured, inside_ns))
        for fn, timings in pair if i % 2 else pair[::-1]:
            timings.append(median_ns(fn, 1))
        tracemalloc.start()
        traced_ns.append(median_ns(traced, 1))
        tracemalloc.stop()
    plain, inside = statistics.median(plain_ns), statistics.median(inside_ns)
    under_tracemalloc = statistics.median(traced_ns)
    print(f"Python {sys.version.split()[0]}, reclaim={args.reclaim!r}\n")
    print("| what | time | reports |")
    print("|---|---:|---|")
    for what, ns, reports in rows:
        print(f"| {what} | {ns / 1000:.2f} µs | {reports} |")
    print(f"| workload, plain (bump_global installed) | {plain / 1e6:.2f} ms | |")
    print(f"| workload inside `measure()` | {inside / 1e6:.2f} ms "
          f"({inside / plain:.2f}x) | {m.allocations:,} allocations, {m.bytes:,} bytes |")
    print(f"| workload under tracemalloc | {under_tracemalloc / 1e6:.2f} ms "
          f"({under_tracemalloc / plain:.2f}x) | peak {traced_peak[0]:,} bytes |")


if __name__ == "__main__":
    main()
