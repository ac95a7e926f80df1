"""How much do the figures of ``pytest --bump-global`` vary between sessions of one suite?

    python scripts/plugin_spread.py [--sessions 5] [--no-aslr] -- PYTEST_ARGS...
e.g. python scripts/plugin_spread.py -- --pyargs numpy.lib.tests.test_arraysetops

Each session starts from the same state (docs/pytest.md, "Determinism"):
PYTHONHASHSEED=0, no bytecode written, a fresh --basetemp.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

PREFIX: List[str] = []  # --no-aslr: ["setarch", "-R"] (Linux: fixed addresses)
ROW = re.compile(r"\s+([\d,]+) bytes\s+([\d,]+) allocations\s+(\S+)")


def session(args: List[str], basetemp: str) -> Dict[str, Tuple[int, int]]:
    shutil.rmtree(basetemp, ignore_errors=True)
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    env.pop("BUMP_GLOBAL", None)
    out = subprocess.run(
        [*PREFIX, sys.executable, "-m", "pytest", "--bump-global", "--bump-global-top", "1000000",
         "-p", "no:cacheprovider", f"--basetemp={basetemp}", "-q", *args],
        capture_output=True, text=True, env=env,
    ).stdout.splitlines()
    figures = {}
    for line in out[out.index("by bytes:") + 1:]:
        match = ROW.match(line)
        if match is None:
            break
        size, count, nodeid = match.groups()
        figures[nodeid] = (int(size.replace(",", "")), int(count.replace(",", "")))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--no-aslr", action="store_true",
                        help="run each session under setarch -R (addresses fixed)")
    parser.add_argument("pytest_args", nargs="+")
    opts = parser.parse_args()
    if opts.no_aslr:
        PREFIX[:] = ["setarch", "-R"]
    basetemp = os.path.join(tempfile.mkdtemp(prefix="bump-global-spread-"), "basetemp")
    runs = [session(opts.pytest_args, basetemp) for _ in range(opts.sessions)]
    tests = sorted(set.intersection(*(set(run) for run in runs)))
    identical = [t for t in tests if len({run[t] for run in runs}) == 1]
    worst = 0.0
    for t in tests:
        sizes = [run[t][0] for run in runs]
        if max(sizes):
            worst = max(worst, (max(sizes) - min(sizes)) / max(sizes))
    total = [sum(run[t][0] for t in tests) for run in runs]
    print(f"{opts.sessions} sessions, {len(tests)} tests measured in all of them")
    print(f"tests with identical figures (bytes and allocations) in every session: "
          f"{len(identical)} of {len(tests)}")
    print(f"largest spread of one test's bytes: {100 * worst:.3f}%")
    print(f"suite total bytes per session: {', '.join(f'{t:,}' for t in total)}")
    for t in tests:
        if t not in identical:
            print(f"  varies: {t}: {sorted({run[t] for run in runs})}")


if __name__ == "__main__":
    main()
