#!/usr/bin/env python3
"""Do CPython's own regression tests pass under bump_global as they pass plainly?

    python scripts/regrtest.py [--python PY]... [--versions 3.9,...] [--modules a,b]
        [--quick | --heavy] [--jobs 2] [--size 8G] [--reclaim none|last|classes]
        [--timeout 900] [--keep-dir DIR]

For each CPython 3.9 to 3.13 found (or given with --python), every chosen test module of
the stdlib ``test`` package runs twice, each in its own interpreter:

- plain: ``python -c PLAIN -m test <module>`` (regrtest in the process, nothing installed);
- bump: the same, but the process first calls ``bump_global.install(SIZE, on_exhausted=
  "fallback", gc="keep")`` and reports what the region served when regrtest exits (the
  GC is kept as configured: the comparison is about the allocator, and gc="relaxed"
  delays collections that test_gc waits for).

regrtest runs in the process it was started in (no -j), so the allocator really serves the
tests; modules run in parallel in separate processes (--jobs).  Per-test-case results come
from ``--junit-xml``; the module result from regrtest's "Tests result:" line.  The table
gives, per version, the modules and test cases passed/failed/skipped under each run, the
region size and the most any module used, and every module whose result differs, with the
cause when it is known (KNOWN below) and its output kept in --keep-dir.

Each interpreter must be able to ``import bump_global`` and have the ``test`` package: one
venv per version with ``pip install -e .`` in it, passed with ``--python``, or found
automatically (pyenv versions and python3.X on PATH that can import bump_global).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bump_global._launch import child_environment

VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")

# A broad default: core types, text, numbers, containers, functional tools, the compiler,
# the runtime (gc, weakref, sys, threads), serialisation, compression, files, email...
# "a/b": the first of the names this version has (modules renamed between versions).
DEFAULT_MODULES = [
    # core types
    "test_bool", "test_int", "test_long", "test_float", "test_complex", "test_bytes",
    "test_str/test_unicode", "test_string", "test_string_literals", "test_list",
    "test_tuple", "test_dict", "test_dictviews", "test_set", "test_range", "test_slice",
    "test_memoryview", "test_enumerate", "test_iter", "test_generators", "test_class",
    "test_exceptions", "test_format", "test_unicodedata",
    # the compiler and the runtime
    "test_grammar", "test_syntax", "test_compile", "test_ast", "test_scope",
    "test_gc", "test_weakref", "test_weakset", "test_sys", "test_types", "test_marshal",
    "test_threading", "test_thread", "test_queue", "test_contextlib", "test_traceback",
    # library
    "test_re", "test_json", "test_pickle", "test_copy", "test_collections",
    "test_deque", "test_defaultdict", "test_ordered_dict", "test_userdict",
    "test_itertools", "test_functools", "test_operator", "test_heapq", "test_bisect",
    "test_struct", "test_array", "test_math", "test_fractions", "test_statistics",
    "test_random", "test_datetime", "test_decimal", "test_enum", "test_dataclasses",
    "test_typing", "test_textwrap", "test_csv", "test_sqlite3/test_sqlite", "test_zlib",
    "test_gzip", "test_bz2", "test_hashlib", "test_hmac", "test_base64",
    "test_binascii", "test_codecs", "test_memoryio", "test_fileio", "test_os",
    "test_tempfile", "test_shutil", "test_email", "test_argparse", "test_pprint",
    "test_difflib", "test_uuid", "test_tracemalloc", "test_asyncio.test_futures",
    "test_asyncio.test_queues", "test_asyncio.test_locks",
]

# Left out of the default list (run them with --heavy), with the reason.  They pass under
# bump_global, but only because the fallback serves what the region cannot.
HEAVY = {
    "test_fstring": "allocates more than 8 GiB under a no-reuse allocator, and runs about 4x "
                    "slower for it (3.12: 2 s plain, 9 s under bump_global)",
    "test_lzma": "allocates more than 8 GiB under a no-reuse allocator (large buffers "
                 "allocated and freed over and over)",
    "test_zipfile": "allocates more than 8 GiB under a no-reuse allocator",
    "test_tarfile": "allocates more than 8 GiB under a no-reuse allocator (18 million "
                    "allocations); 20 s per run",
    "test_asyncio.test_tasks": "20 s per run; test_futures, test_queues and test_locks cover "
                               "asyncio",
}

QUICK_MODULES = [
    "test_dict", "test_list", "test_tuple", "test_set", "test_bytes", "test_str/test_unicode",
    "test_json", "test_re", "test_threading", "test_weakref", "test_gc", "test_pickle",
]

# Results that cannot be the same under a no-reuse allocator, with the reason.  A difference
# is "explained" when every test case that differs matches one of these (regex on the
# test-case id); it is still listed in the table.
KNOWN: Dict[str, str] = {
    r"BumpGlobalError: bump_global serves the MEM/OBJ allocator domains":
        "3.12+: the test creates a subinterpreter with its own GIL, which bump_global refuses "
        "(BumpGlobalError, by design) while it serves the MEM/OBJ domains",
}

RUNNER = """
import json, runpy, signal, sys
# Started in the background (cmd &), a job ignores SIGINT and its children inherit that:
# test_threading's interrupt_main tests need the default handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
SIZE = {size!r}
if SIZE:
    import bump_global
    bump_global.install(SIZE, on_exhausted="fallback", gc="keep", reclaim={reclaim!r})
sys.argv = ["python -m test", *sys.argv[1:]]
try:
    runpy.run_module("test", run_name="__main__", alter_sys=True)
finally:
    if SIZE:
        s = bump_global.stats()
        print("BUMP_GLOBAL_STATS " + json.dumps(dict(
            reserved=s.reserved, used=s.used, allocations=s.allocations,
            fallback=s.fallback_allocations, failed=s.failed_allocations)), file=sys.stderr)
"""

PROBE = """
import json, sys, importlib.util as u
print(json.dumps({"version": "%d.%d" % sys.version_info[:2],
                  "full": sys.version.split()[0],
                  "bump_global": u.find_spec("bump_global") is not None,
                  "regrtest": u.find_spec("test.libregrtest") is not None}))
"""


@dataclass
class RunResult:
    status: str = "missing"  # passed, failed, skipped, env changed, crashed, timeout
    seconds: float = 0.0
    returncode: Optional[int] = None
    cases: Dict[str, str] = field(default_factory=dict)  # test-case id -> pass/fail/skip
    messages: Dict[str, str] = field(default_factory=dict)  # test-case id -> failure message
    bump: Optional[dict] = None
    output: str = ""

    def counts(self) -> Tuple[int, int, int]:
        values = list(self.cases.values())
        return values.count("pass"), values.count("fail"), values.count("skip")


@dataclass
class ModuleResult:
    module: str
    plain: RunResult
    bump: RunResult
    differences: List[str] = field(default_factory=list)  # test cases whose outcome differs
    explained: Optional[str] = None

    @property
    def differs(self) -> bool:
        return self.plain.status != self.bump.status or bool(self.differences)


# ---- finding interpreters ---------------------------------------------------------------

def probe(python: str) -> Optional[dict]:
    try:
        out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        info = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    info["python"] = python
    return info


def candidates() -> List[str]:
    found = []
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        try:
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = None
    if root:
        for version in VERSIONS:
            for path in sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}")):
                found.append(str(path))
    for version in VERSIONS:
        path = shutil.which(f"python{version}")
        if path:
            found.append(path)
    return found


def find_interpreters(given: Sequence[str], versions: Sequence[str]) -> List[dict]:
    chosen: Dict[str, dict] = {}
    for python in list(given) or candidates():
        info = probe(python)
        if info is None:
            print(f"skipping {python}: it does not run", file=sys.stderr)
            continue
        if info["version"] not in versions or info["version"] in chosen:
            continue
        if not info["bump_global"] or not info["regrtest"]:
            missing = "bump_global" if not info["bump_global"] else "the test package"
            print(f"skipping {python} ({info['full']}): no {missing}", file=sys.stderr)
            continue
        chosen[info["version"]] = info
    return [chosen[v] for v in versions if v in chosen]


def resolve_modules(python: str, names: Sequence[str]) -> Tuple[List[str], List[str]]:
    """The names this interpreter has ("a/b": the first it has), and those it lacks."""
    flat = sorted({n.split(".")[0] for name in names for n in name.split("/")})
    code = ("import importlib.util as u, json, sys\n"
            "print(json.dumps([n for n in sys.argv[1:] if u.find_spec('test.' + n)]))")
    have = set(json.loads(subprocess.run([python, "-c", code, *flat], capture_output=True,
                                         text=True, check=True).stdout))
    modules, missing = [], []
    for name in names:
        options = [n for n in name.split("/") if n.split(".")[0] in have]
        if options:
            modules.append(options[0])
        else:
            missing.append(name)
    return modules, missing


# ---- running ----------------------------------------------------------------------------

def parse_junit(path: Path) -> Tuple[Dict[str, str], Dict[str, str]]:
    """{test case: pass, fail or skip}, {failed test case: first line of its message}."""
    cases: Dict[str, str] = {}
    messages: Dict[str, str] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return cases, messages
    for case in root.iter("testcase"):
        name = ".".join(filter(None, (case.get("classname"), case.get("name"))))
        outcome = "pass"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "fail"
                text = (child.get("message") or child.text or "").strip()
                messages[name] = text.splitlines()[-1][:200] if text else child.tag
            elif child.tag == "skipped" and outcome == "pass":
                outcome = "skip"
        cases[name] = outcome
    return cases, messages


def module_status(returncode: Optional[int], output: str) -> str:
    match = re.findall(r"^(?:== )?Tests result: ([A-Z ,]+)", output, re.M)
    result = match[-1] if match else ""
    if "FAILURE" in result or "INTERRUPTED" in result:
        return "failed"
    if "ENV CHANGED" in result:
        return "env changed"
    if "NO TESTS RAN" in result or re.search(r"^\d+ tests? skipped", output, re.M):
        return "skipped"
    if result.startswith("SUCCESS") and returncode == 0:
        return "passed"
    return "crashed"


def run_one(python: str, module: str, size: Optional[str], timeout: float,
            extra: Sequence[str], reclaim: str = "none") -> RunResult:
    with tempfile.TemporaryDirectory(prefix="bg-regrtest-") as tmp:
        xml = Path(tmp, "junit.xml")
        env = child_environment(TMPDIR=tmp)
        cmd = [python, "-c", RUNNER.format(size=size, reclaim=reclaim), "--junit-xml", str(xml),
               *extra, module]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  timeout=timeout, env=env, cwd=tmp)
            returncode, output = proc.returncode, proc.stdout + proc.stderr
            status = module_status(returncode, output)
        except subprocess.TimeoutExpired as exc:
            returncode, status = None, "timeout"
            output = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
                             for x in (exc.stdout, exc.stderr))
        cases, messages = parse_junit(xml)
        result = RunResult(status=status, seconds=time.monotonic() - start,
                           returncode=returncode, cases=cases, messages=messages,
                           output=output)
    stats = re.findall(r"^BUMP_GLOBAL_STATS (.*)$", output, re.M)
    if stats:
        result.bump = json.loads(stats[-1])
    return result


def compare(module: str, plain: RunResult, bump: RunResult) -> ModuleResult:
    result = ModuleResult(module, plain, bump)
    for case in sorted(set(plain.cases) | set(bump.cases)):
        a, b = plain.cases.get(case, "absent"), bump.cases.get(case, "absent")
        if a != b:
            why = bump.messages.get(case) or plain.messages.get(case)
            result.differences.append(f"{case or '(unnamed)'}: {a} -> {b}"
                                      + (f" ({why})" if why else ""))
    return result


def failure_blocks(output: str) -> List[Tuple[str, str]]:
    """(test, last line of its traceback) for each ERROR/FAIL block of a verbose run."""
    blocks = []
    for chunk in re.split(r"^={60,}$", output, flags=re.M):
        match = re.match(r"\s*(?:ERROR|FAIL): (.*)", chunk)
        if match:
            # header, dashes, traceback, [dashes, "Ran N tests" and the rest, last block]
            parts = re.split(r"^-{60,}$", chunk, flags=re.M)
            lines = [line for line in (parts[1] if len(parts) > 1 else "").splitlines()
                     if line.strip()]
            raised = [line for line in lines
                      if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Failure|Exit)\b", line)]
            last = (raised or lines or [""])[-1]
            blocks.append((match.group(1).strip(), last.strip()))
    return blocks


def explain(python: str, result: ModuleResult, args: argparse.Namespace) -> None:
    """Re-run a differing module verbosely under bump_global and find the cause of each
    failure: the difference is explained when every failure matches KNOWN."""
    if not result.differs or result.bump.status not in ("failed", "env changed"):
        return
    verbose = run_one(python, result.module, args.size, args.timeout,
                      [*args.regrtest_args, "-v"], args.reclaim)
    result.bump.output += "\n--- verbose rerun under bump_global ---\n" + verbose.output
    blocks = failure_blocks(verbose.output)
    plain_failed = {case for case, outcome in result.plain.cases.items() if outcome == "fail"}
    reasons = set()
    for test, last in blocks:
        if any(case and case in test for case in plain_failed):
            continue  # fails without bump_global too
        reason = next((why for pattern, why in KNOWN.items() if re.search(pattern, last)), None)
        if reason is None:
            return
        reasons.add(reason)
    if reasons:
        result.explained = "; ".join(sorted(reasons)) + (
            f" ({len(blocks)} failing test(s) or subtest(s) in a verbose rerun, all for it)")


def submit_version(info: dict, modules: Sequence[str], args: argparse.Namespace,
                   pool: concurrent.futures.Executor) -> dict:
    jobs = {}
    for module in modules:
        for kind, size in (("plain", None), ("bump", args.size)):
            jobs[module, kind] = pool.submit(run_one, info["python"], module, size,
                                             args.timeout, args.regrtest_args, args.reclaim)
    return jobs


def collect_version(info: dict, modules: Sequence[str], jobs: dict,
                    args: argparse.Namespace) -> List[ModuleResult]:
    results = []
    for module in modules:
        plain, bump = jobs[module, "plain"].result(), jobs[module, "bump"].result()
        result = compare(module, plain, bump)
        explain(info["python"], result, args)
        mark = "DIFFERS" if result.differs else "same"
        print(f"  {info['version']} {module:<28} plain {plain.status:<8} {plain.seconds:6.1f}s"
              f"  bump {bump.status:<8} {bump.seconds:6.1f}s  "
              f"used {fmt_bytes((bump.bump or {}).get('used'))}  {mark}", file=sys.stderr)
        results.append(result)
    return results


# ---- the table --------------------------------------------------------------------------

def fmt_bytes(n: Optional[int]) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def summarize(kind: str, runs: List[RunResult]) -> dict:
    statuses = [r.status for r in runs]
    cases = [sum(r.counts()[i] for r in runs) for i in range(3)]
    return {
        "modules passed": statuses.count("passed"),
        "modules failed": sum(s in ("failed", "crashed", "timeout") for s in statuses),
        "modules skipped": statuses.count("skipped"),
        "modules env changed": statuses.count("env changed"),
        "cases passed": cases[0], "cases failed": cases[1], "cases skipped": cases[2],
        "seconds": round(sum(r.seconds for r in runs), 1),
    }


def table(version_results: List[Tuple[dict, List[str], List[ModuleResult]]],
          size: str) -> str:
    lines = []
    for info, missing, results in version_results:
        plain = summarize("plain", [r.plain for r in results])
        bump = summarize("bump", [r.bump for r in results])
        used = [r.bump.bump["used"] for r in results if r.bump.bump]
        fallback = sum(r.bump.bump["fallback"] for r in results if r.bump.bump)
        failed = sum(r.bump.bump["failed"] for r in results if r.bump.bump)
        no_stats = [r.module for r in results if not r.bump.bump]
        biggest = max(results, key=lambda r: (r.bump.bump or {}).get("used", 0))
        lines.append(f"### CPython {info['full']}: {len(results)} modules")
        lines.append("")
        lines.append("| run | modules passed | failed | skipped | env changed "
                     "| test cases passed | failed | skipped | time (s) |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for name, s in (("plain", plain), ("bump_global", bump)):
            lines.append(f"| {name} | {s['modules passed']} | {s['modules failed']} "
                         f"| {s['modules skipped']} | {s['modules env changed']} "
                         f"| {s['cases passed']} | {s['cases failed']} | {s['cases skipped']} "
                         f"| {s['seconds']} |")
        lines.append("")
        lines.append(f"Region {size} per process, policy fallback; used: largest "
                     f"{fmt_bytes(max(used) if used else None)} ({biggest.module}), median "
                     f"{fmt_bytes(sorted(used)[len(used) // 2] if used else None)}, total "
                     f"{fmt_bytes(sum(used))}; fallback allocations {fallback}, "
                     f"failed allocations {failed}.")
        outgrown = [r for r in results if (r.bump.bump or {}).get("fallback")]
        for r in outgrown:
            b = r.bump.bump
            lines.append(f"Outgrew the region: {r.module} used {fmt_bytes(b['used'])}, then the "
                         f"fallback served {b['fallback']} allocations"
                         + (f" ({HEAVY[r.module]})" if r.module in HEAVY else "") + ".")
        refused = [r for r in results if (r.bump.bump or {}).get("failed")]
        if refused:
            lines.append("Allocations that failed under bump_global (requests that no "
                         "allocator can serve, which these tests expect to fail): "
                         + ", ".join(f"{r.module} {r.bump.bump['failed']}" for r in refused)
                         + ".")
        if no_stats:
            lines.append(f"No allocator figures from: {', '.join(no_stats)} "
                         f"(the process did not reach the end of regrtest).")
        if missing:
            lines.append(f"Not in this version: {', '.join(missing)}.")
        differing = [r for r in results if r.differs]
        if not differing:
            lines.append("Identical results in every module.")
        for r in differing:
            cause = (f"explained: {r.explained}" if r.explained else "UNEXPLAINED")
            lines.append(f"- {r.module}: plain {r.plain.status}, bump {r.bump.status}; "
                         f"{cause}")
            for diff in r.differences[:10]:
                lines.append(f"    - {diff}")
            if len(r.differences) > 10:
                lines.append(f"    - ... {len(r.differences) - 10} more")
        lines.append("")
    return "\n".join(lines)


def keep(keep_dir: Path, info: dict, results: List[ModuleResult]) -> None:
    out = keep_dir / info["version"]
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.differs:
            for kind, run in (("plain", r.plain), ("bump", r.bump)):
                (out / f"{r.module}.{kind}.txt").write_text(run.output)
    summary = []
    for r in results:
        item = {"module": r.module, "differs": r.differs, "explained": r.explained,
                "differences": r.differences}
        for kind, run in (("plain", r.plain), ("bump", r.bump)):
            data = asdict(run)
            del data["output"], data["cases"], data["messages"]
            data["counts"] = dict(zip(("pass", "fail", "skip"), run.counts()))
            item[kind] = data
        summary.append(item)
    (out / "results.json").write_text(json.dumps({"python": info, "modules": summary},
                                                 indent=1))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[],
                        help="an interpreter that can import bump_global (repeat; one per "
                             "version); default: pyenv versions and python3.X on PATH")
    parser.add_argument("--versions", default=",".join(VERSIONS),
                        help="comma-separated minor versions (default: %(default)s)")
    parser.add_argument("--modules", help="comma-separated test modules (default: a broad "
                        f"list of {len(DEFAULT_MODULES)}); 'a/b' takes the first that exists")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short list of {len(QUICK_MODULES)} modules")
    parser.add_argument("--heavy", action="store_true",
                        help="also run the modules left out of the default list (HEAVY)")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="processes at once (default: %(default)s)")
    parser.add_argument("--size", default="8G", help="region per process (default: %(default)s)")
    parser.add_argument("--reclaim", default="none", choices=("none", "last", "classes"),
                        help="bump_global's reclaim policy (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds per module and run (default: %(default)s)")
    parser.add_argument("--keep-dir", default="regrtest-results",
                        help="where the output of differing modules and results.json go "
                             "(default: %(default)s)")
    parser.add_argument("regrtest_args", nargs="*",
                        help="extra regrtest arguments, after --  (e.g. -- -u cpu)")
    args = parser.parse_args(argv)

    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    if args.modules:
        names = [m.strip() for m in args.modules.split(",") if m.strip()]
    else:
        names = QUICK_MODULES if args.quick else DEFAULT_MODULES
        if args.heavy:
            names = names + list(HEAVY)
    interpreters = find_interpreters(args.python, versions)
    if not interpreters:
        print("no interpreter found that can import bump_global: make one venv per version "
              "with `pip install -e .` and pass its python with --python", file=sys.stderr)
        return 2
    keep_dir = Path(args.keep_dir)
    started = time.monotonic()
    version_results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending = []
        for info in interpreters:
            modules, missing = resolve_modules(info["python"], names)
            print(f"CPython {info['full']} ({info['python']}): {len(modules)} modules",
                  file=sys.stderr)
            pending.append((info, modules, missing, submit_version(info, modules, args, pool)))
        for info, modules, missing, jobs in pending:
            results = collect_version(info, modules, jobs, args)
            keep(keep_dir, info, results)
            version_results.append((info, missing, results))
    text = table(version_results, args.size)
    if args.reclaim != "none":
        text = f"bump_global installed with reclaim={args.reclaim!r}.\n\n" + text
    left_out = [m for m in HEAVY if m not in names]
    if left_out:
        text += "\nLeft out of this run (--heavy runs them):\n" + "".join(
            f"- {m}: {HEAVY[m]}\n" for m in left_out)
    elapsed = time.monotonic() - started
    text += f"\nWall time {elapsed / 60:.1f} min with {args.jobs} parallel processes.\n"
    print(text)
    (keep_dir / "table.md").write_text(text)
    unexplained = [r for _, _, results in version_results for r in results
                   if r.differs and not r.explained]
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
