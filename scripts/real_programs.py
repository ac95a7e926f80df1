#!/usr/bin/env python3
"""Run widely used programs nobody here wrote, plain and under bump_global, and compare.

The script makes its own virtual environment under ``--work`` (by default a folder in the
user's cache directory), installs the programs from PyPI and the current checkout of
bump_global into it, builds every input once (from the standard library or generated with a
fixed seed), then runs each program once per variant per round, the variants in a shuffled
order every round.  It checks that every variant gives the same (normalised) output and exit
status as the plain run, and records per run: wall time, CPU time (user + sys of the process
and the children it waited for, from ``os.wait4``), the peak RSS of the process tree (sampled
every ``--sample-ms``) and, for bump_global variants, the report JSON (region used, processes
reported).  See docs/real_programs.md.

    python scripts/real_programs.py --list
    python scripts/real_programs.py --rounds 1 --json out.json --markdown out.md
    python scripts/real_programs.py --programs json_tool,black --variants plain,bump,bump-classes

Programs and variants are data (``PROGRAMS``, ``VARIANTS``): a benchmark adds rows there.
"""

from __future__ import annotations

import argparse
import ctypes.util
import difflib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "bump_global.real_programs/1"
MiB = 1024 * 1024
#: Variables of the caller's environment that would change what a run does.
STRIPPED_PREFIXES = ("BUMP_GLOBAL", "PYTHONMALLOC", "PYTHONTRACEMALLOC", "PYTHONDEVMODE",
                     "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONHASHSEED", "GCX",
                     "LD_PRELOAD", "VIRTUAL_ENV", "PYTHONWARNINGS", "PYTHONINSPECT")


# --------------------------------------------------------------------------- variants

@dataclass(frozen=True)
class Variant:
    """How one variant runs a program: extra environment, an optional preloaded allocator."""

    env: Dict[str, str] = field(default_factory=dict)
    #: a malloc library to LD_PRELOAD (with PYTHONMALLOC=malloc): "mimalloc" or "jemalloc"
    preload: Optional[str] = None
    #: the GC policy of bump_global's gc="relaxed" for any allocator (GCX=1, see GCX_SITE)
    gcx: bool = False
    note: str = ""

    @property
    def bump(self) -> bool:
        return self.env.get("BUMP_GLOBAL", "0") not in ("", "0", "false", "no", "off")


VARIANTS: Dict[str, Variant] = {
    "plain": Variant(note="pymalloc, nothing set (the reference)"),
    "bump": Variant({"BUMP_GLOBAL": "1"}, note="BUMP_GLOBAL=1: the default"),
    "bump-classes": Variant({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_RECLAIM": "classes"},
                            note="BUMP_GLOBAL=1 BUMP_GLOBAL_RECLAIM=classes"),
    "bump-huge": Variant({"BUMP_GLOBAL": "1", "BUMP_GLOBAL_HUGE_PAGES": "1"},
                         note="BUMP_GLOBAL=1 BUMP_GLOBAL_HUGE_PAGES=1"),
    "gcx": Variant(gcx=True, note="pymalloc with the GC thresholds x10 (gc='relaxed' for all)"),
    "mimalloc-gcx": Variant({"PYTHONMALLOC": "malloc"}, preload="mimalloc", gcx=True,
                            note="LD_PRELOAD libmimalloc, PYTHONMALLOC=malloc, GC x10"),
    "jemalloc-gcx": Variant({"PYTHONMALLOC": "malloc"}, preload="jemalloc", gcx=True,
                            note="LD_PRELOAD libjemalloc, PYTHONMALLOC=malloc, GC x10"),
    "pymimalloc-gcx": Variant({"PYTHONMALLOC": "mimalloc"}, gcx=True,
                              note="CPython's own mimalloc (3.13+), GC x10"),
}

#: sitecustomize of the GC-policy peer (shared/reference/measuring.md): on PYTHONPATH for
#: every variant once any variant uses it, so all pay the same import.
GCX_SITE = """\
import os
if os.environ.get("GCX") == "1":
    import gc
    a, b, c = gc.get_threshold()
    gc.set_threshold(a * 10, b, c * 10)
"""


def parse_variant(spec: str) -> Tuple[str, Variant]:
    """A name from VARIANTS, or ``VAR=VALUE[+VAR=VALUE...]`` (BUMP_GLOBAL=1 implied by
    any BUMP_GLOBAL_* variable); ValueError otherwise."""
    if spec in VARIANTS:
        return spec, VARIANTS[spec]
    if "=" not in spec:
        raise ValueError(f"--variants: unknown variant {spec!r}: accepted are "
                         f"{', '.join(VARIANTS)} or VAR=VALUE[+VAR=VALUE...]")
    env: Dict[str, str] = {}
    for item in spec.split("+"):
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"--variants: {item!r} in {spec!r} is not VAR=VALUE")
        env[name] = value
    if any(k.startswith("BUMP_GLOBAL_") for k in env) and "BUMP_GLOBAL" not in env:
        env["BUMP_GLOBAL"] = "1"
    return spec, Variant(env, note=spec)


def find_preload(name: str) -> Optional[str]:
    """The path of lib<name>.so.N, or None."""
    found = ctypes.util.find_library(name)
    dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
            "/usr/lib", "/usr/local/lib"]
    for folder in dirs:
        if found and os.path.exists(os.path.join(folder, found)):
            return os.path.join(folder, found)
        for candidate in sorted(Path(folder).glob(f"lib{name}.so*")) if os.path.isdir(
                folder) else []:
            return str(candidate)
    return None


# --------------------------------------------------------------------------- programs

@dataclass
class Ctx:
    """What a program's steps see."""

    work: Path          # --work
    venv: Path          # the venv
    python: str         # its interpreter
    inputs: Path        # this program's input folder (made once, kept between invocations)
    stdlib: Path        # the venv interpreter's standard library
    index: Path         # the local package index (pip download into it at setup)
    pyversion: Tuple[int, int]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


Step = Callable[[Ctx], None]
RunStep = Callable[[Ctx, Path], None]


@dataclass
class Program:
    """One real program: how to install it, make its inputs, run and compare it."""

    name: str
    about: str
    requires: Sequence[str]
    command: Callable[[Ctx, Path], List[str]]          # (ctx, run dir) -> argv
    setup: Optional[Step] = None                       # once: make ctx.inputs
    prepare: Optional[RunStep] = None                  # before each run, not timed
    #: regular expressions replaced in stdout (after run dir/work paths); sort: sort lines
    subs: Sequence[Tuple[str, str]] = ()
    sort_lines: bool = False
    #: also compare stderr (normalised the same way)
    stderr: bool = False
    #: what a run left behind, as text compared between variants (e.g. files written)
    artifacts: Optional[Callable[[Ctx, Path], str]] = None
    #: exit statuses that count as the program working (None: any, as long as all agree)
    ok_status: Optional[Sequence[int]] = (0,)
    timeout: float = 300.0
    env: Dict[str, str] = field(default_factory=dict)
    #: run in this folder of ctx.inputs (None: in the run's own folder)
    cwd: Optional[str] = None
    min_python: Tuple[int, int] = (3, 9)


def _copy_stdlib(ctx: Ctx, dest: Path, packages: Sequence[str]) -> None:
    """Copy stdlib packages (sources only, no tests, no __pycache__) into dest."""
    for name in packages:
        src = ctx.stdlib / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__", "test", "tests", "*.pyc"))
        else:
            shutil.copy2(ctx.stdlib / (name + ".py"), dest / (name + ".py"))


def _pyc_listing(ctx: Ctx, run: Path) -> str:
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*.pyc"))
    return f"{len(files)} .pyc files\n" + "\n".join(files)


def _listing(sub: str) -> Callable[[Ctx, Path], str]:
    def listing(ctx: Ctx, run: Path) -> str:
        root = run / sub
        if not root.exists():
            return "(nothing written)"
        return "\n".join(sorted(str(p.relative_to(root)) for p in root.rglob("*")))
    return listing


def _html_files(ctx: Ctx, run: Path) -> str:
    out = []
    for path in sorted(run.glob("*.html")):
        text = path.read_text(encoding="utf-8", errors="replace")
        text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x?", text)
        out.append(f"{path.name} {hashlib.sha256(text.encode()).hexdigest()}")
    return "\n".join(out)


COMPILEALL_PACKAGES = ("email", "json", "asyncio", "http", "logging", "xml", "unittest",
                       "importlib", "concurrent", "urllib", "argparse", "typing", "inspect")


def _setup_stdlib_copy(packages: Sequence[str]) -> Step:
    def setup(ctx: Ctx) -> None:
        _copy_stdlib(ctx, ctx.inputs / "src", packages)
    return setup


def _prepare_copy(ctx: Ctx, run: Path) -> None:
    shutil.copytree(ctx.inputs / "src", run / "src")


def _setup_json(ctx: Ctx) -> None:
    """About 30 MB of JSON: records of strings, numbers, lists and nested objects."""
    rng = random.Random(12)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "θeta", "iota"]
    with open(ctx.inputs / "data.json", "w", encoding="utf-8") as out:
        out.write("[")
        for i in range(115_000):
            record = {
                "id": i, "name": " ".join(rng.choice(words) for _ in range(4)),
                "score": rng.random() * 1000, "flags": [rng.random() < 0.5 for _ in range(5)],
                "tags": {rng.choice(words): rng.randrange(10**6) for _ in range(4)},
                "nested": {"a": [rng.randrange(100) for _ in range(8)], "b": None,
                           "c": {"d": rng.choice(words), "e": -rng.random()}},
            }
            out.write(("," if i else "") + json.dumps(record, ensure_ascii=False))
        out.write("]")


PYDOC_MODULES = ("json", "email.message", "asyncio.base_events", "collections", "typing",
                 "argparse", "http.client", "logging", "inspect", "unittest.case")


def _setup_rst(ctx: Ctx) -> None:
    """About 700 KB of reST using most constructs docutils knows."""
    rng = random.Random(7)
    words = ("allocator region bump page memory object python reference count frees "
             "table header interpreter module parser section footnote literal").split()
    parts = ["=" * 30, "A generated document", "=" * 30, "", ".. contents::", ""]
    for s in range(260):
        title = f"Section {s}: " + " ".join(rng.choice(words) for _ in range(3))
        parts += [title, "-" * len(title), ""]
        for p in range(4):
            sentence = " ".join(rng.choice(words) for _ in range(60))
            parts += [f"Paragraph {p} with *emphasis*, **strong**, ``literal`` and a "
                      f"reference to `Section {rng.randrange(260)}`_ [#f{s}_{p}]_. "
                      + sentence, ""]
        parts += ["- item one " + rng.choice(words), "- item two", "  continued", "",
                  "1. first", "2. second", "", "::", "",
                  "    def f(x):", "        return x * 2", ""]
        parts += ["+-------+--------+", "| a     | b      |", "+=======+========+",
                  f"| {s:<5} | {rng.choice(words)[:6]:<6} |", "+-------+--------+", ""]
        parts += [f".. [#f{s}_{p}] Footnote {s}.{p}." for p in range(4)] + [""]
        parts += [".. note::", "", "   " + " ".join(rng.choice(words) for _ in range(20)), ""]
    (ctx.inputs / "doc.rst").write_text("\n".join(parts) + "\n", encoding="utf-8")


SPHINX_MODULES = 12


def _setup_sphinx(ctx: Ctx) -> None:
    """A small project: one package of 12 modules with docstrings, autodoc over all."""
    src = ctx.inputs / "src"
    pkg = src / "genpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A generated package."""\n')
    for m in range(SPHINX_MODULES):
        body = [f'"""Module {m}: generated for the autodoc run."""', ""]
        for c in range(12):
            body += [f"class Thing{c}:",
                     f'    """Class {c} of module {m}.', "",
                     "    :param size: how big", "    :param name: what it is called", '    """',
                     "", "    def __init__(self, size: int = 0, name: str = '') -> None:",
                     "        self.size = size", "        self.name = name", ""]
            for f in range(6):
                body += [f"    def method_{f}(self, x: int, y: float = 1.0) -> float:",
                         f'        """Return *x* times *y* plus {f}.', "",
                         "        :param x: the first factor", "        :param y: the second",
                         '        :returns: the product"""',
                         f"        return x * y + {f}", ""]
        (pkg / f"mod{m}.py").write_text("\n".join(body) + "\n")
    (src / "conf.py").write_text(textwrap.dedent("""\
        import os, sys
        sys.path.insert(0, os.path.abspath("."))
        project = "genpkg"
        extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
        html_theme = "alabaster"
        """))
    index = ["genpkg", "======", "", ".. toctree::", "",
             *[f"   mod{m}" for m in range(SPHINX_MODULES)], ""]
    (src / "index.rst").write_text("\n".join(index))
    for m in range(SPHINX_MODULES):
        (src / f"mod{m}.rst").write_text(
            f"mod{m}\n{'=' * (3 + len(str(m)))}\n\n.. automodule:: genpkg.mod{m}\n"
            "   :members:\n   :undoc-members:\n")


def _setup_csv(ctx: Ctx) -> None:
    import csv

    rng = random.Random(3)
    cities = [f"city{i}" for i in range(300)]
    with open(ctx.inputs / "data.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "category", "city", "value", "qty", "day"])
        for i in range(1_000_000):
            writer.writerow([i, f"c{rng.randrange(50)}", rng.choice(cities),
                             f"{rng.random() * 100:.4f}", rng.randrange(1, 20),
                             f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"])
    (ctx.inputs / "script.py").write_text(textwrap.dedent("""\
        import sys
        import pandas as pd
        df = pd.read_csv(sys.argv[1], parse_dates=["day"])
        df["total"] = df["value"] * df["qty"]
        df["month"] = df["day"].dt.month
        by_cat = df.groupby("category").agg(n=("id", "size"), total=("total", "sum"),
                                            mean=("value", "mean")).sort_index()
        pivot = df.pivot_table(index="month", columns="category", values="qty",
                               aggfunc="sum").fillna(0)
        cities = df.groupby("city")["total"].sum().sort_values(ascending=False).head(10)
        top = df.sort_values(["total", "id"], ascending=[False, True]).head(5)
        df["label"] = df["city"].str.upper() + "-" + df["category"]
        merged = df.merge(by_cat[["mean"]], left_on="category", right_index=True)
        print(len(df), len(merged), df["label"].nunique())
        print(by_cat.round(6).to_string())
        print(int(pivot.values.sum()), pivot.shape)
        print(cities.round(4).to_string())
        print(top[["id", "category", "city", "total"]].round(4).to_string())
        """))


def _setup_pip_index(ctx: Ctx) -> None:
    """The local index: wheels of requests and attrs with their dependencies, the sdist of
    toolz and what building it needs."""
    index = ctx.index
    index.mkdir(parents=True, exist_ok=True)
    pip = [ctx.python, "-m", "pip", "download", "-q", "-d", str(index)]
    _check_call(pip + ["requests", "attrs", "setuptools", "setuptools-git-versioning",
                       "wheel", "packaging"])
    _check_call(pip + ["--no-binary", ":all:", "--no-deps", "toolz"])


def _sdist_tests(project: str, member: str) -> Step:
    """Download `project`'s sdist and unpack it into inputs/src (its tests come with it)."""
    def setup(ctx: Ctx) -> None:
        down = ctx.inputs / "sdist"
        _check_call([ctx.python, "-m", "pip", "download", "-q", "--no-binary", ":all:",
                     "--no-deps", "-d", str(down), project])
        archive = next(down.glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(ctx.inputs)  # noqa: S202 (a PyPI sdist we just downloaded)
        top = next(p for p in ctx.inputs.iterdir() if p.is_dir() and p.name != "sdist")
        top.rename(ctx.inputs / "src")
        if not (ctx.inputs / "src" / member).exists():
            raise RuntimeError(f"{project}'s sdist has no {member}")
    return setup


MIXED_SCRIPT = '''\
"""Threads, sqlite, zipfile, asyncio and multiprocessing (fork and spawn) in one run."""
import asyncio, hashlib, io, multiprocessing as mp, sqlite3, sys, threading, zipfile


def square_sum(n):
    data = {i: str(i) * 3 for i in range(n)}
    return sum(len(v) for v in data.values()) + sum(i * i for i in range(n))


def digests(seed, out, lock):
    h = hashlib.sha256()
    for i in range(2000):
        h.update((f"{seed}-{i}-" * 20).encode())
    with lock:
        out.append((seed, h.hexdigest()[:16]))


def queue_worker(q, n):
    q.put(sorted(str(i) for i in range(n))[-1])


async def producer(q, n):
    for i in range(n):
        await q.put(i)
    await q.put(None)


async def consumer(q):
    total = 0
    while (item := await q.get()) is not None:
        total += item
        await asyncio.sleep(0)
    return total


async def main_async():
    q = asyncio.Queue(maxsize=50)
    results = await asyncio.gather(producer(q, 20000), consumer(q),
                                   *[asyncio.sleep(0.001, result=i) for i in range(200)])
    return results[1], sum(results[2:])


def main():
    out, lock = [], threading.Lock()
    threads = [threading.Thread(target=digests, args=(s, out, lock)) for s in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("threads", sorted(out))
    db = sqlite3.connect(":memory:")
    db.execute("create table t (k integer primary key, name text, v real)")
    db.executemany("insert into t values (?, ?, ?)",
                   ((i, f"name{i % 97}", i * 0.5) for i in range(60000)))
    print("sqlite", db.execute("select count(*), count(distinct name), sum(v) from t").fetchone())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(300):
            z.writestr(f"dir/file{i}.txt", f"content {i} " * (i + 10))
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        print("zip", len(z.namelist()), z.testzip(), sum(len(z.read(n)) for n in z.namelist()))
    print("asyncio", asyncio.run(main_async()))
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            print(method, "pool", pool.map(square_sum, [20000 + i for i in range(8)]))
        q = ctx.Queue()
        p = ctx.Process(target=queue_worker, args=(q, 50000))
        p.start()
        got = q.get()
        p.join()
        print(method, "process", got, p.exitcode)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
'''


def _setup_mixed(ctx: Ctx) -> None:
    (ctx.inputs / "mixed.py").write_text(MIXED_SCRIPT)


TIMES = [(r"\b\d+(\.\d+)?\s?(s|ms|seconds?)\b", "<T>"), (r" \(\d+:\d\d:\d\d\)", "")]
#: more-itertools' three slowest tests (a prime sieve, a DFT round trip): 25 s of the 45 here.
#: (The whole suite took the process tree to 15.8 GiB under BUMP_GLOBAL=1's 16 GiB default.)
MORE_ITERTOOLS_SLOW = "not test_primes and not test_roundtrip and not test_nth_prime_approximate"

PROGRAMS: List[Program] = [
    Program("compileall", "python -m compileall -q -f over a copy of 13 stdlib packages",
            (), lambda c, r: [c.python, "-m", "compileall", "-q", "-f", str(r / "src")],
            setup=_setup_stdlib_copy(COMPILEALL_PACKAGES), prepare=_prepare_copy,
            artifacts=_pyc_listing, timeout=300),
    Program("json_tool", "python -m json.tool on a generated 30 MB file", (),
            lambda c, r: [c.python, "-m", "json.tool", str(c.inputs / "data.json")],
            setup=_setup_json, timeout=300),
    Program("pydoc", "python -m pydoc -w of 10 stdlib modules", (),
            lambda c, r: [c.python, "-m", "pydoc", "-w", *PYDOC_MODULES],
            subs=[(r"0x[0-9a-fA-F]{6,}", "0x?")], artifacts=_html_files, timeout=300),
    Program("pip_download", "pip download requests, attrs, toolz from a local index", (),
            lambda c, r: [c.python, "-m", "pip", "download", "--no-index", "--find-links",
                          str(c.index), "-d", str(r / "dl"),
                          "--no-deps", "requests", "attrs", "toolz", "idna", "certifi",
                          "urllib3", "charset-normalizer"],
            setup=_setup_pip_index, artifacts=_listing("dl"), sort_lines=True,
            subs=[(r"(?m)^(?!Saved|Successfully).*\n?", "")],
            env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"}, timeout=300),
    Program("pip_install", "pip install requests, attrs and the sdist of toolz (built) from a "
            "local index into a target folder", (),
            lambda c, r: [c.python, "-m", "pip", "install", "--no-index", "--find-links",
                          str(c.index), "--target", str(r / "target"), "--no-compile",
                          "requests", "attrs", "toolz"],
            setup=_setup_pip_index, artifacts=_listing("target"),
            subs=[(r"(?m)^(?!Successfully installed).*\n?", "")],
            env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"}, timeout=600),
    Program("black", "black --check on a copy of asyncio, email, json (a process pool)",
            ("black",),
            lambda c, r: [c.bin("black"), "--check", str(c.inputs / "src")],
            setup=_setup_stdlib_copy(("asyncio", "email", "json")), stderr=True,
            sort_lines=True, ok_status=(0, 1), timeout=600),
    Program("pyflakes", "pyflakes over a copy of 13 stdlib packages", ("pyflakes",),
            lambda c, r: [c.python, "-m", "pyflakes", str(c.inputs / "src")],
            setup=_setup_stdlib_copy(COMPILEALL_PACKAGES), sort_lines=True,
            ok_status=(0, 1), timeout=300),
    Program("pylint", "pylint on stdlib json and http (one job)", ("pylint",),
            lambda c, r: [c.python, "-m", "pylint", "--persistent=n", "--jobs=1",
                          "--score=y", str(c.inputs / "src" / "json"),
                          str(c.inputs / "src" / "http")],
            setup=_setup_stdlib_copy(("json", "http")), ok_status=None, timeout=900),
    Program("mypy", "mypy on a copy of stdlib email (ends with os._exit)", ("mypy",),
            lambda c, r: [c.python, "-m", "mypy", "--cache-dir", str(r / "cache"),
                          "--no-color-output", "--ignore-missing-imports",
                          "--python-version", "%d.%d" % c.pyversion,
                          str(c.inputs / "email_pkg")],
            setup=lambda c: (c.inputs / "email_pkg").mkdir() or _copy_stdlib(
                c, c.inputs / "email_pkg", ("email",)),
            ok_status=(0, 1), timeout=900),
    Program("sphinx", "sphinx-build -b html with autodoc over a generated 12-module package",
            ("sphinx",),
            lambda c, r: [c.bin("sphinx-build"), "-q", "-E", "-b", "html",
                          str(c.inputs / "src"), str(r / "html")],
            setup=_setup_sphinx, stderr=True, artifacts=_listing("html"), timeout=600),
    Program("docutils", "docutils reST to HTML on a generated 700 KB file", ("docutils",),
            lambda c, r: [c.python, "-m", "docutils", "--writer=html",
                          str(c.inputs / "doc.rst")],
            setup=_setup_rst, timeout=600),
    Program("pandas", "a pandas script on a generated million-row CSV", ("pandas",),
            lambda c, r: [c.python, str(c.inputs / "script.py"), str(c.inputs / "data.csv")],
            setup=_setup_csv, timeout=600),
    Program("pytest_more_itertools", "pytest running more-itertools' suite from its sdist, "
            "3 slow tests left out",
            ("pytest",),
            lambda c, r: [c.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-W", "ignore::DeprecationWarning", "-k", MORE_ITERTOOLS_SLOW, "tests"],
            setup=_sdist_tests("more-itertools", "tests"), cwd="src",
            subs=TIMES, timeout=600),
    Program("pytest_toolz", "pytest running toolz' suite from its sdist", ("pytest",),
            lambda c, r: [c.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-W", "ignore::DeprecationWarning", "toolz"],
            setup=_sdist_tests("toolz", "toolz/tests"), cwd="src",
            subs=TIMES, timeout=600),
    Program("mixed", "threads, sqlite, zipfile, asyncio, multiprocessing fork and spawn", (),
            lambda c, r: [c.python, str(c.inputs / "mixed.py")], setup=_setup_mixed,
            timeout=300),
]
PROGRAM_NAMES = [p.name for p in PROGRAMS]


# --------------------------------------------------------------------------- environment

def _check_call(cmd: Sequence[str], **kwargs: Any) -> None:
    print("  $ " + " ".join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, **kwargs)


def default_work() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.access(os.path.dirname(base) or ".", os.W_OK) and not os.path.isdir(base):
        base = tempfile.gettempdir()
    return Path(base) / "bump_global-real-programs"


def base_env() -> Dict[str, str]:
    """The caller's environment without what would change the runs."""
    return {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_PREFIXES)}


def make_venv(python: str, venv: Path, requires: Sequence[str], reinstall: bool) -> None:
    if not (venv / "bin" / "python").exists():
        _check_call([python, "-m", "venv", str(venv)])
    vpy = str(venv / "bin" / "python")
    env = base_env()
    if requires:
        _check_call([vpy, "-m", "pip", "install", "-q", *requires], env=env)
    if reinstall:
        # The checkout as it is now (not editable: the venv must not depend on the tree).
        _check_call([vpy, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps",
                     str(REPO)], env=env)
        _check_call([vpy, "-m", "pip", "install", "-q", "psutil"], env=env)


def venv_facts(vpy: str) -> Dict[str, Any]:
    code = ("import sys, sysconfig, json; import bump_global, importlib.metadata as m;"
            "print(json.dumps({'stdlib': sysconfig.get_paths()['stdlib'],"
            "'version': list(sys.version_info[:2]), 'full': sys.version.split()[0],"
            "'bump_global': m.version('bump_global')}))")
    out = subprocess.run([vpy, "-c", code], env=base_env(), check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def probe_report_via(vpy: str, tmp: Path) -> Tuple[str, Optional[str]]:
    """("env", schema) when BUMP_GLOBAL_JSON writes a report, else ("cli", None)."""
    target = tmp / "probe.json"
    env = dict(base_env(), BUMP_GLOBAL="1", BUMP_GLOBAL_JSON=str(target))
    subprocess.run([vpy, "-c", "pass"], env=env, timeout=60, check=False)
    if target.exists():
        try:
            return "env", json.loads(target.read_text()).get("schema")
        except ValueError:
            return "env", None
    return "cli", None


_CLI_OPTIONS = {"BUMP_GLOBAL_SIZE": "--size", "BUMP_GLOBAL_SCOPE": "--scope",
                "BUMP_GLOBAL_ON_EXHAUSTED": "--on-exhausted", "BUMP_GLOBAL_GC": "--gc",
                "BUMP_GLOBAL_RECLAIM": "--reclaim"}
_CLI_FLAGS = {"BUMP_GLOBAL_PREFAULT": ("", "--no-prefault"),
              "BUMP_GLOBAL_HUGE_PAGES": ("", "--no-huge-pages"),
              "BUMP_GLOBAL_HISTOGRAM": ("--histogram", "")}


def cli_wrap(cmd: List[str], python: str, env: Dict[str, str], report: Path) -> List[str]:
    """`cmd` run through ``bump-global run --json REPORT`` with the options that `env` asks
    for (the environment keeps BUMP_GLOBAL=1 so that child interpreters are served too; the
    CLI's install then finds the same configuration already installed, which it accepts)."""
    opts = ["--json", str(report)]
    for var, option in _CLI_OPTIONS.items():
        if var in env:
            opts += [option, env[var]]
    for var, (on, off) in _CLI_FLAGS.items():
        if var in env:
            flag = on if env[var].strip().lower() in ("1", "true", "yes", "on") else off
            if flag:
                opts.append(flag)
    rest = cmd[1:] if cmd[0] == python else cmd
    return [python, "-m", "bump_global", "run", *opts, *rest]


# --------------------------------------------------------------------------- one run

@dataclass
class Run:
    program: str
    variant: str
    round: int
    position: int
    status: str = "ok"          # ok, timeout, error
    exit: Optional[int] = None
    wall_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    tree_peak_rss: int = 0
    tree_processes: int = 0     # distinct processes seen in the tree
    samples: int = 0
    stdout_sha256: str = ""
    compared_sha256: str = ""   # of normalised stdout (+ stderr) + artifacts
    report: Optional[Dict[str, Any]] = None
    error: str = ""
    run_dir: str = ""

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def measure(cmd: List[str], env: Dict[str, str], cwd: Path, out: Path, err: Path,
            timeout: float, sample_s: float) -> Dict[str, Any]:
    """Run `cmd`; wall, CPU of it and its waited-for children, the tree's peak RSS."""
    import psutil

    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env,
                                cwd=str(cwd), start_new_session=True)
    known: Dict[int, Any] = {}
    seen = set()
    peak = samples = 0
    timed_out = False
    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        root = None
    while True:
        pid, wstatus, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if root is not None:
            total = 0
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.Error:
                members = [root]
            for member in members:
                member = known.setdefault(member.pid, member)
                try:
                    total += member.memory_info().rss
                    seen.add(member.pid)
                except psutil.Error:
                    pass
            peak = max(peak, total)
            samples += 1
        if time.perf_counter() - t0 > timeout:
            timed_out = True
            kill_tree(proc.pid, root)
            pid, wstatus, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(sample_s)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(wstatus)  # Popen must not wait again
    kill_tree(proc.pid, None)  # leftovers of the session (daemons a program left behind)
    return {"exit": proc.returncode, "wall": wall, "user": usage.ru_utime,
            "sys": usage.ru_stime, "peak": peak, "seen": len(seen), "samples": samples,
            "timed_out": timed_out}


def kill_tree(pid: int, root: Any) -> None:
    """SIGKILL the process group this harness started for one run (and root's tree)."""
    import psutil

    members = []
    if root is not None:
        try:
            members = root.children(recursive=True)
        except psutil.Error:
            pass
    for member in members:
        try:
            member.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def normalise(program: Program, text: str, ctx: Ctx, run: Path) -> str:
    for path, name in ((run, "<RUN>"), (ctx.inputs, "<INPUTS>"), (ctx.work, "<WORK>")):
        text = text.replace(str(path), name)
    for pattern, repl in program.subs:
        text = re.sub(pattern, repl, text)
    if program.sort_lines:
        text = "\n".join(sorted(text.splitlines()))
    return text


def read_report(path: Path) -> Optional[Dict[str, Any]]:
    """The figures the table shows, from a report/1 or report/2 JSON file."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        return {"error": f"unreadable JSON report: {exc}"}
    schema = data.get("schema")
    if schema == "bump_global.report/2":
        total = data.get("total") or {}
        procs = data.get("processes") or []
        return {"schema": schema, "used": total.get("used"), "processes": total.get("processes"),
                "records": len(procs), "missing": len(data.get("missing") or []),
                "roles": sorted({p.get("role", "?") for p in procs}),
                "full": any((p.get("region") or {}).get("full") for p in procs),
                "frees_ignored": sum((p.get("counters") or {}).get("frees_ignored", 0)
                                     for p in procs),
                "peak_rss_max": total.get("peak_rss_max"),
                "peak_rss_sum": total.get("peak_rss_sum")}
    region = data.get("region") or {}
    counters = data.get("counters") or {}
    return {"schema": schema, "used": region.get("used"), "processes": 1, "records": 1,
            "missing": None, "roles": ["root"], "full": None,
            "frees_ignored": counters.get("frees_ignored"),
            "peak_rss_max": (data.get("process") or {}).get("peak_rss"), "peak_rss_sum": None}


def run_setup(program: Program, name: str, variant: Variant, ctx: Ctx, tag: str,
              gcx_dir: Optional[Path], preload: Optional[str]
              ) -> Tuple[Path, List[str], Dict[str, str], Path]:
    """A fresh run folder (``runs/PROGRAM/TAG-NAME``, prepared) and the command, environment
    and working directory of one run of `program` under variant `name` (without the report:
    see run_once).  Also used by scripts/bench.py."""
    run_dir = ctx.work / "runs" / program.name / f"{tag}-{name}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "tmp").mkdir(parents=True)
    if program.prepare is not None:
        program.prepare(ctx, run_dir)
    env = base_env()
    env["PATH"] = str(ctx.venv / "bin") + os.pathsep + env.get("PATH", "")
    env.update({"PYTHONHASHSEED": "0", "TMPDIR": str(run_dir / "tmp"),
                "BLACK_CACHE_DIR": str(run_dir / "black-cache"),
                "PYLINTHOME": str(run_dir / "pylint-home"), "COLUMNS": "100",
                "PYTHONDONTWRITEBYTECODE": "1"})
    if program.name == "compileall":
        del env["PYTHONDONTWRITEBYTECODE"]
    env.update(program.env)
    env.update(variant.env)
    if gcx_dir is not None:
        env["PYTHONPATH"] = str(gcx_dir)
        if variant.gcx:
            env["GCX"] = "1"
    if preload:
        env["LD_PRELOAD"] = preload
    cmd = [str(part) for part in program.command(ctx, run_dir)]
    cwd = run_dir if program.cwd is None else ctx.inputs / program.cwd
    return run_dir, cmd, env, cwd


def compared_output(program: Program, ctx: Ctx, run_dir: Path) -> str:
    """What is compared between variants: the run's normalised stdout (and stderr, without
    bump_global's own report, for programs that compare it) and artifacts; also written to
    ``compared.txt`` in the run folder.  Also used by scripts/bench.py."""
    raw = (run_dir / "stdout").read_bytes()
    compared = normalise(program, raw.decode("utf-8", "replace"), ctx, run_dir)
    if program.stderr:
        compared += "\n--- stderr\n" + normalise(program, strip_bump_lines(
            (run_dir / "stderr").read_bytes().decode("utf-8", "replace")), ctx, run_dir)
    if program.artifacts is not None:
        compared += "\n--- artifacts\n" + program.artifacts(ctx, run_dir)
    (run_dir / "compared.txt").write_text(compared, encoding="utf-8")
    return compared


def prepare_inputs(program: Program, ctx: Ctx) -> Optional[str]:
    """Make `program`'s inputs once (kept between invocations); what went wrong, or None.
    Also used by scripts/bench.py."""
    if ctx.pyversion < program.min_python:
        return f"needs Python {program.min_python}"
    stamp = ctx.inputs / ".ready"
    try:
        if not stamp.exists():
            if ctx.inputs.exists():
                shutil.rmtree(ctx.inputs)
            ctx.inputs.mkdir(parents=True)
            if program.setup is not None:
                program.setup(ctx)
            stamp.write_text("ok\n")
    except Exception as exc:  # noqa: BLE001 - one program's setup must not stop the others
        return f"setup failed: {exc!r}"
    return None


def install_programs(python: str, venv: Path, programs: List[Program]) -> List[Program]:
    """The venv with the programs' requirements, psutil and this checkout (not editable);
    the programs whose requirements could be installed.  Also used by scripts/bench.py."""
    requires = sorted({r for p in programs for r in p.requires})
    try:
        make_venv(python, venv, requires, reinstall=True)
    except subprocess.CalledProcessError:
        print("!! installing everything at once failed; trying program by program",
              flush=True)
        make_venv(python, venv, [], reinstall=True)
        kept = []
        for p in programs:
            try:
                make_venv(python, venv, p.requires, reinstall=False)
                kept.append(p)
            except subprocess.CalledProcessError:
                print(f"!! {p.name}: cannot install {', '.join(p.requires)}: left out",
                      flush=True)
        return kept
    return list(programs)


def run_once(program: Program, name: str, variant: Variant, ctx: Ctx, rnd: int, position: int,
             args: argparse.Namespace, report_via: str, gcx_dir: Optional[Path],
             preload: Optional[str]) -> Run:
    run_dir, cmd, env, cwd = run_setup(program, name, variant, ctx, f"r{rnd}", gcx_dir, preload)
    record = Run(program.name, name, rnd, position, run_dir=str(run_dir))
    report_path = run_dir / "report.json"
    if variant.bump and report_via == "env":
        env["BUMP_GLOBAL_JSON"] = str(report_path)
    elif variant.bump and report_via == "cli":
        cmd = cli_wrap(cmd, ctx.python, env, report_path)
    out, err = run_dir / "stdout", run_dir / "stderr"
    try:
        m = measure(cmd, env, cwd, out, err, program.timeout * args.timeout_scale,
                    args.sample_ms / 1000)
    except OSError as exc:
        record.status, record.error = "error", f"cannot start {cmd[0]}: {exc}"
        return record
    record.exit, record.wall_s, record.user_s, record.sys_s = (m["exit"], m["wall"], m["user"],
                                                               m["sys"])
    record.tree_peak_rss, record.tree_processes, record.samples = m["peak"], m["seen"], m[
        "samples"]
    if m["timed_out"]:
        record.status = "timeout"
        record.error = f"timed out after {program.timeout * args.timeout_scale:.0f} s (killed)"
    record.stdout_sha256 = hashlib.sha256(out.read_bytes()).hexdigest()
    compared = compared_output(program, ctx, run_dir)
    record.compared_sha256 = hashlib.sha256(compared.encode()).hexdigest()
    if variant.bump and report_via != "none":
        record.report = read_report(report_path)
        if record.report is None:
            record.error = (record.error + "; " if record.error else "") + "no JSON report"
    return record


def strip_bump_lines(text: str) -> str:
    """stderr without bump_global's own report (programs' stderr is compared without it)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("bump_global report"):
            return "\n".join(lines[:i])
    return text


# --------------------------------------------------------------------------- checks, output

def check_program(program: Program, runs: List[Run]) -> List[str]:
    """What went wrong with `program`'s runs, one line each (empty: all agree)."""
    problems = []
    plain = [r for r in runs if r.variant == "plain"]
    for r in runs:
        if r.status != "ok":
            problems.append(f"{r.variant} round {r.round}: {r.status}: {r.error}")
        elif r.error:
            problems.append(f"{r.variant} round {r.round}: {r.error}")
    if program.ok_status is not None:
        for r in plain:
            if r.status == "ok" and r.exit not in program.ok_status:
                problems.append(f"plain round {r.round}: exit status {r.exit}, expected one of "
                                f"{list(program.ok_status)} (see {r.run_dir}/stderr)")
    for r in runs:
        ref = next((p for p in plain if p.round == r.round), None)
        if ref is None or r is ref or r.status != "ok" or ref.status != "ok":
            continue
        if r.exit != ref.exit:
            problems.append(f"{r.variant} round {r.round}: exit status {r.exit}, plain {ref.exit}")
        if r.compared_sha256 != ref.compared_sha256:
            problems.append(f"{r.variant} round {r.round}: output differs from plain's:\n"
                            + first_diff(Path(ref.run_dir), Path(r.run_dir)))
    return problems


def all_agree(runs: List[Run]) -> bool:
    """Whether every run finished and gave plain's exit status and output of its round."""
    for r in runs:
        ref = next((p for p in runs if p.variant == "plain" and p.round == r.round), None)
        if r.status != "ok" or ref is None or (r.exit, r.compared_sha256) != (
                ref.exit, ref.compared_sha256):
            return False
    return bool(runs)


def first_diff(a: Path, b: Path, lines: int = 12) -> str:
    left = (a / "compared.txt").read_text(encoding="utf-8").splitlines()
    right = (b / "compared.txt").read_text(encoding="utf-8").splitlines()
    diff = list(difflib.unified_diff(left, right, "plain", "variant", lineterm="", n=1))
    return "\n".join("      " + d[:160] for d in diff[:lines])


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[n // 2] + ordered[(n - 1) // 2]) / 2 if n else float("nan")


def summarise(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows = []
    for prog in results["programs"]:
        runs = [r for r in results["runs"] if r["program"] == prog["name"]]
        plain = [r for r in runs if r["variant"] == "plain" and r["status"] == "ok"]
        plain_wall = median([r["wall_s"] for r in plain]) if plain else None
        for variant in results["variant_order"]:
            mine = [r for r in runs if r["variant"] == variant]
            ok = [r for r in mine if r["status"] == "ok"]
            if not mine:
                continue
            reports = [r["report"] for r in ok if r.get("report")]
            wall = median([r["wall_s"] for r in ok]) if ok else None
            rows.append({
                "program": prog["name"], "variant": variant, "same": prog["same"],
                "exit": sorted({r["exit"] for r in mine}),
                "wall_s": wall, "cpu_s": median([r["user_s"] + r["sys_s"] for r in ok]) if ok
                else None,
                "wall_ratio": (wall / plain_wall) if wall and plain_wall else None,
                "tree_peak_rss": max((r["tree_peak_rss"] for r in ok), default=None),
                "tree_processes": max((r["tree_processes"] for r in ok), default=None),
                "used": max((rep.get("used") or 0 for rep in reports), default=None),
                "processes": max((rep.get("processes") or 0 for rep in reports), default=None),
                "missing": max((rep.get("missing") or 0 for rep in reports), default=None),
                "schema": reports[0].get("schema") if reports else None,
                "rounds": len(ok),
            })
    return rows


def _mib(value: Optional[float]) -> str:
    return "" if value is None else f"{value / MiB:,.1f}"


def _num(value: Optional[float], fmt: str = "{:.2f}") -> str:
    return "" if value is None else fmt.format(value)


def _processes(row: Dict[str, Any]) -> str:
    text = _num(row["processes"], "{}")
    return text + (f" (+{row['missing']} missing)" if row.get("missing") else "")


def markdown(results: Dict[str, Any]) -> str:
    lines = [
        f"Python {results['python']}, bump_global {results['bump_global']}, "
        f"{results['rounds']} round(s), variant order shuffled per round, report via "
        f"{results['report_via']} ({results['report_schema'] or 'no report'}).",
        "",
        "| program | same output and status | exit | variant | wall s | CPU s | wall / plain "
        "| tree peak RSS MiB | processes seen | region used MiB | processes reported |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summarise(results):
        bump = Variant(results["variants"][row["variant"]]["env"]).bump
        lines.append(
            f"| {row['program']} | {'yes' if row['same'] else '**no**'} | "
            f"{','.join(map(str, row['exit']))} | {row['variant']} | {_num(row['wall_s'])} | "
            f"{_num(row['cpu_s'])} | {_num(row['wall_ratio'])} | {_mib(row['tree_peak_rss'])} | "
            f"{_num(row['tree_processes'], '{}')} | "
            f"{_mib(row['used']) if bump else ''} | "
            f"{_processes(row) if bump else ''} |")
    failures = [(p["name"], p["problems"]) for p in results["programs"] if p["problems"]]
    if failures:
        lines += ["", "Problems:", ""]
        for name, problems in failures:
            lines += [f"- {name}: " + problems[0].splitlines()[0]]
            lines += [f"  - {p.splitlines()[0]}" for p in problems[1:]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main

def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run real programs plain and under bump_global; compare output, time, "
                    "peak RSS of the process tree and the report.")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the venv, inputs and runs (default: "
                             f"{default_work()}/pyX.Y)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter to build the venv from (default: this one)")
    parser.add_argument("--programs", default="all",
                        help="comma-separated names, or all (default); see --list")
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--variants", default="plain,bump",
                        help="comma-separated: names of built-in variants ("
                             + ", ".join(VARIANTS) + ") or VAR=VALUE[+VAR=VALUE] "
                             "(default: plain,bump; plain is always run)")
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds (default 1)")
    parser.add_argument("--warmup", type=int, default=0, help="unrecorded rounds first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the variant shuffles")
    parser.add_argument("--sample-ms", type=float, default=20.0,
                        help="tree RSS sampling period (default 20 ms)")
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiply every program's timeout")
    parser.add_argument("--report-via", choices=("auto", "env", "cli", "none"), default="auto",
                        help="how bump variants write the JSON report: BUMP_GLOBAL_JSON (env), "
                             "bump-global run --json (cli), none; auto: env when the installed "
                             "bump_global writes it, else cli")
    parser.add_argument("--no-install", action="store_true",
                        help="use the venv as it is (no pip install of programs or checkout)")
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep every run's folder (default: only those that failed)")
    parser.add_argument("--json", type=Path, help="write all runs and the summary here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--list", action="store_true", help="list programs and variants")
    ns = parser.parse_args(argv)
    if ns.rounds < 1 or ns.warmup < 0:
        parser.error("--rounds must be 1 or more and --warmup 0 or more")
    if ns.sample_ms <= 0 or ns.timeout_scale <= 0:
        parser.error("--sample-ms and --timeout-scale must be positive")
    return ns


def select_programs(ns: argparse.Namespace) -> List[Program]:
    wanted = PROGRAM_NAMES if ns.programs == "all" else [
        n.strip() for n in ns.programs.split(",") if n.strip()]
    skip = {n.strip() for n in ns.skip.split(",") if n.strip()}
    unknown = [n for n in [*wanted, *skip] if n not in PROGRAM_NAMES]
    if unknown:
        raise SystemExit(f"real_programs: unknown program(s) {', '.join(unknown)}: accepted are "
                         f"{', '.join(PROGRAM_NAMES)}")
    return [p for p in PROGRAMS if p.name in wanted and p.name not in skip]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ns = parse_args(argv)
    if ns.list:
        for p in PROGRAMS:
            req = ", ".join(p.requires) or "stdlib"
            print(f"{p.name:24} {p.about} [{req}; timeout {p.timeout:.0f} s]")
        print()
        for name, v in VARIANTS.items():
            print(f"{name:24} {v.note}")
        return 0
    try:
        variants = dict(parse_variant(s.strip()) for s in ns.variants.split(",") if s.strip())
    except ValueError as exc:
        raise SystemExit(f"real_programs: {exc}") from None
    variants = {"plain": VARIANTS["plain"], **variants}
    programs = select_programs(ns)
    pyver = subprocess.run([ns.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    work = (ns.work or default_work() / f"py{pyver}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    vpy = str(venv / "bin" / "python")

    if not ns.no_install:
        print(f"== venv {venv}: installing programs and this checkout", flush=True)
        programs = install_programs(ns.python, venv, programs)
    try:
        import psutil  # noqa: F401
    except ImportError:
        if Path(sys.prefix).resolve() != venv.resolve():
            # The harness measures with psutil: go on in the venv, which has it.
            os.execv(vpy, [vpy, os.path.abspath(__file__), *(argv or sys.argv[1:]),
                           "--no-install", "--work", str(work)])
        raise SystemExit("real_programs: psutil is needed (pip install psutil)") from None

    facts = venv_facts(vpy)
    ctx_base = dict(work=work, venv=venv, python=vpy, stdlib=Path(facts["stdlib"]),
                    index=work / "index", pyversion=tuple(facts["version"]))
    report_via, schema = ns.report_via, None
    if report_via in ("auto", "env"):
        via, schema = probe_report_via(vpy, work)
        if report_via == "auto":
            report_via = via
    print(f"== Python {facts['full']}, bump_global {facts['bump_global']}, reports via "
          f"{report_via}" + (f" ({schema})" if schema else ""), flush=True)

    gcx_dir = None
    if any(v.gcx for v in variants.values()):
        gcx_dir = work / "gcx"
        gcx_dir.mkdir(exist_ok=True)
        (gcx_dir / "sitecustomize.py").write_text(GCX_SITE)
    preloads: Dict[str, Optional[str]] = {}
    for name, v in list(variants.items()):
        if v.preload:
            preloads[name] = find_preload(v.preload)
            if preloads[name] is None:
                print(f"!! variant {name}: lib{v.preload} not found (on Debian: apt-get install "
                      f"lib{v.preload}2 or similar): left out", flush=True)
                del variants[name]
        if v.env.get("PYTHONMALLOC") == "mimalloc" and tuple(facts["version"]) < (3, 13):
            print(f"!! variant {name}: PYTHONMALLOC=mimalloc needs Python 3.13+: left out")
            variants.pop(name, None)

    results: Dict[str, Any] = {
        "schema": SCHEMA, "python": facts["full"], "bump_global": facts["bump_global"],
        "command": [os.path.basename(sys.argv[0]), *(argv or sys.argv[1:])],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rounds": ns.rounds, "warmup": ns.warmup, "sample_ms": ns.sample_ms,
        "report_via": report_via, "report_schema": schema,
        "variants": {n: {"env": v.env, "preload": preloads.get(n), "gcx": v.gcx, "note": v.note}
                     for n, v in variants.items()},
        "variant_order": list(variants), "programs": [], "runs": [],
    }
    rng = random.Random(ns.seed)
    failed = False
    for program in programs:
        ctx = Ctx(inputs=work / "inputs" / program.name, **ctx_base)  # type: ignore[arg-type]
        entry: Dict[str, Any] = {"name": program.name, "about": program.about, "same": False,
                                 "problems": []}
        results["programs"].append(entry)
        print(f"== {program.name}: {program.about}", flush=True)
        problem = prepare_inputs(program, ctx)
        if problem is not None:
            entry["problems"].append(problem)
            if problem.startswith("setup failed"):
                print(f"!! {program.name}: {problem}", flush=True)
                failed = True
            continue
        runs: List[Run] = []
        for rnd in range(-ns.warmup, ns.rounds):
            order = list(variants)
            rng.shuffle(order)
            for position, name in enumerate(order):
                r = run_once(program, name, variants[name], ctx, rnd, position, ns, report_via,
                             gcx_dir, preloads.get(name))
                rep = r.report or {}
                print(f"   round {rnd} {name:14} exit {r.exit} {r.status:7} wall {r.wall_s:7.2f} s"
                      f"  CPU {r.cpu_s:7.2f} s  tree peak {r.tree_peak_rss / MiB:8.1f} MiB"
                      + (f"  used {(rep.get('used') or 0) / MiB:8.1f} MiB, "
                         f"{rep.get('processes')} process(es)" if r.report else "")
                      + (f"  [{r.error}]" if r.error else ""), flush=True)
                if rnd >= 0:
                    runs.append(r)
        problems = check_program(program, runs)
        entry["problems"] = problems
        entry["same"] = all_agree(runs)
        for r in runs:
            results["runs"].append(dict(vars(r), cpu_s=r.cpu_s))
        if problems:
            failed = True
            print(f"!! {program.name}: FAILED", flush=True)
            for p in problems:
                print("   - " + p, flush=True)
        else:
            print(f"   {program.name}: same output and exit status in every variant", flush=True)
            if not ns.keep_runs:
                shutil.rmtree(work / "runs" / program.name, ignore_errors=True)
    if results["report_schema"] is None:
        results["report_schema"] = next((r["report"].get("schema") for r in results["runs"]
                                         if r.get("report")), None)
    table = markdown(results)
    print()
    print(table)
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    if ns.markdown:
        ns.markdown.write_text(table)
    bad = [p["name"] for p in results["programs"] if p["problems"]]
    print("FAILED: " + ", ".join(bad) if bad else "all programs: same output and exit status",
          flush=True)
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
