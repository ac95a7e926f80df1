"""The real programs as data: what each installs, how its inputs are made, its command,
and what of its output is compared between variants.

A :class:`Program` is one row of :data:`PROGRAMS`: pip requirements, a set-up step
that makes its inputs once (generated with a fixed seed, or copied from the standard
library), an optional per-run step (not timed), the command, the exit statuses that
count as working, a timeout, and what to compare: stdout (normalised by ``subs`` and
``sort_lines``), optionally stderr, and ``artifacts`` (files a run wrote).  To add a
program, add a row (docs/real_programs.md lists them).  Running them is the runner's
job (harness.runner), the venv the venv module's.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


def check_call(cmd: Sequence[Any], **kwargs: Any) -> None:
    """Run a set-up command (shown), raising on failure."""
    print("  $ " + " ".join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, **kwargs)


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
    check_call(pip + ["requests", "attrs", "setuptools", "setuptools-git-versioning",
                       "wheel", "packaging"])
    check_call(pip + ["--no-binary", ":all:", "--no-deps", "toolz"])


def _sdist_tests(project: str, member: str) -> Step:
    """Download `project`'s sdist and unpack it into inputs/src (its tests come with it)."""
    def setup(ctx: Ctx) -> None:
        down = ctx.inputs / "sdist"
        check_call([ctx.python, "-m", "pip", "download", "-q", "--no-binary", ":all:",
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

#: Real programs bench.py runs by default, chosen so that a full run (7 or 8 variants,
#: warm-up + 3 rounds, both families) fits in about an hour on a busy 2-core VM: seven
#: programs from PyPI (pyflakes, black, pylint, mypy, docutils, pytest, pip), a pandas
#: script, and compileall.  The others run when named in --workloads: sphinx (35 s a run
#: there), json_tool (30 MB, 15 s of CPU a run), pip_install, pydoc,
#: pytest_more_itertools, mixed (a test of threads and forks more than a workload).
BENCH_DEFAULT = ("compileall", "pyflakes", "black", "pylint", "mypy", "docutils", "pandas",
                 "pytest_toolz", "pip_download")


def normalise(program: Program, text: str, ctx: Ctx, run: Path) -> str:
    """`text` with the run's, inputs' and work's folders named, then `program`'s subs."""
    for path, name in ((run, "<RUN>"), (ctx.inputs, "<INPUTS>"), (ctx.work, "<WORK>")):
        text = text.replace(str(path), name)
    for pattern, repl in program.subs:
        text = re.sub(pattern, repl, text)
    if program.sort_lines:
        text = "\n".join(sorted(text.splitlines()))
    return text


def strip_bump_lines(text: str) -> str:
    """stderr without bump_global's own report (programs' stderr is compared without it)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("bump_global report"):
            return "\n".join(lines[:i])
    return text


def compared_output(program: Program, ctx: Ctx, run_dir: Path) -> str:
    """What is compared between variants: the run's normalised stdout (and stderr, without
    bump_global's own report, for programs that compare it) and artifacts; also written to
    ``compared.txt`` in the run folder."""
    raw = (run_dir / "stdout").read_bytes()
    compared = normalise(program, raw.decode("utf-8", "replace"), ctx, run_dir)
    if program.stderr:
        compared += "\n--- stderr\n" + normalise(program, strip_bump_lines(
            (run_dir / "stderr").read_bytes().decode("utf-8", "replace")), ctx, run_dir)
    if program.artifacts is not None:
        compared += "\n--- artifacts\n" + program.artifacts(ctx, run_dir)
    (run_dir / "compared.txt").write_text(compared, encoding="utf-8")
    return compared


def run_env(program: Program, ctx: Ctx, run_dir: Path) -> Dict[str, str]:
    """The variables of every run of `program` (on top of the clean environment): the
    venv first on PATH, a fixed hash seed, caches and TMPDIR inside the run folder, so
    that no run profits from an earlier one."""
    env = {"PATH": str(ctx.venv / "bin") + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONHASHSEED": "0", "TMPDIR": str(run_dir / "tmp"),
           "BLACK_CACHE_DIR": str(run_dir / "black-cache"),
           "PYLINTHOME": str(run_dir / "pylint-home"), "COLUMNS": "100"}
    if program.name != "compileall":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(program.env)
    return env


def prepare_inputs(program: Program, ctx: Ctx) -> Optional[str]:
    """Make `program`'s inputs once (kept between invocations); what went wrong, or None."""
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
    except Exception as exc:  # noqa: BLE001 - one program's set-up must not stop the others
        return f"setup failed: {exc!r}"
    return None
