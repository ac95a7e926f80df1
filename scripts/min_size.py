"""What is the smallest region with which a program runs under ``on_exhausted="error"``?

    python scripts/min_size.py [--python PYTHON ...] [--low 1M] [--high 4M] [--step 64K]

For each size from --low to --high (every --step) and each PYTHON (bump_global
installed; default: this one), runs ``print(1)`` every way a user can ask for it with
``on_exhausted="error"``: ``bump-global run -c``, the same with ``--report``, with
``--sample 10 --timeline FILE`` and with ``--report --json FILE``, ``BUMP_GLOBAL=1``
with ``BUMP_GLOBAL_REPORT=1``, and ``bump_global.install(SIZE)`` from the API.  A
way passes when the program prints 1, exits 0 and nothing says Traceback or
MemoryError.  Prints per interpreter and way the smallest size from which it passes
at every larger size tried ("-": not even at --high).  MIN_SIZE
(bump_global/_config.py) must be at least the largest of these.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1:].upper()])
    return int(text)


def ways(size: int, directory: str) -> Dict[str, Tuple[List[str], Dict[str, str]]]:
    """name -> (arguments after the interpreter, environment additions)."""
    run = ["-m", "bump_global", "run", "--size", str(size), "--on-exhausted", "error"]
    timeline = os.path.join(directory, "t.csv")
    report = os.path.join(directory, "r.json")
    api = f"import bump_global; bump_global.install({size}, on_exhausted='error'); print(1)"
    return {
        "run": ([*run, "-c", "print(1)"], {}),
        "run --report": ([*run, "--report", "-c", "print(1)"], {}),
        "run --sample": ([*run, "--sample", "10", "--timeline", timeline, "-c", "print(1)"], {}),
        "run --json": ([*run, "--report", "--json", report, "-c", "print(1)"], {}),
        "BUMP_GLOBAL=1": (["-c", "print(1)"], {"BUMP_GLOBAL": "1",
                                               "BUMP_GLOBAL_SIZE": str(size),
                                               "BUMP_GLOBAL_ON_EXHAUSTED": "error",
                                               "BUMP_GLOBAL_REPORT": "1"}),
        "install()": (["-c", api], {}),
        "install() + report()": (["-c", api + "; bump_global.report()"], {}),
    }


def failures(python: str, size: int) -> List[str]:
    """The ways that fail at `size`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BUMP_GLOBAL", "PYTHON"))}
    failed = []
    with tempfile.TemporaryDirectory(prefix="min-size-") as directory:
        for name, (args, extra) in ways(size, directory).items():
            proc = subprocess.run([python, *args], capture_output=True, text=True,
                                  env={**base, **extra}, cwd=directory, timeout=60)
            bad = ("Traceback" in proc.stderr or "MemoryError" in proc.stderr
                   or proc.returncode != 0 or proc.stdout != "1\n")
            if bad:
                failed.append(name)
    return failed


def smallest(python: str, sizes: Sequence[int]) -> Dict[str, Optional[int]]:
    """Per way, the smallest size from which it passes at every larger size tried."""
    found: Dict[str, Optional[int]] = {name: None for name in ways(0, "")}
    broken: set = set()
    for size in reversed(sizes):
        failed = set(failures(python, size))
        broken |= failed
        for name in found:
            if name not in broken:
                found[name] = size
        if broken == set(found):
            break
    return found


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", nargs="+", default=[sys.executable])
    parser.add_argument("--low", type=_size, default=1 << 20)
    parser.add_argument("--high", type=_size, default=4 << 20)
    parser.add_argument("--step", type=_size, default=64 << 10)
    ns = parser.parse_args(argv)
    sizes = list(range(ns.low, ns.high + 1, ns.step))
    for python in ns.python:
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip()
        found = smallest(python, sizes)
        cells = [f"{name} {'-' if size is None else f'{size / (1 << 20):.3f}M'}"
                 for name, size in found.items()]
        print(f"{version}: " + ", ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
