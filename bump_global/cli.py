"""The ``bump-global`` command line (also ``python -m bump_global``).

``bump-global run [options] (SCRIPT | -m MODULE | -c CODE) [ARGS...]`` runs a
program under the allocator exactly as ``python`` would run it; ``info``
describes what this machine and interpreter allow; ``compare`` is provided by
``bump_global._compare``.  See docs/cli.md.

Exit codes: 2 when the command line is wrong or bump_global refuses to install
(nothing of the target ran); otherwise the target's own: 0, 1 on an uncaught
exception, N from ``sys.exit(N)``.  Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import io
import math
import os
import re
import runpy
import sys
import time
import tokenize
import types
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, NoReturn, Optional, Sequence, Tuple

import bump_global
from bump_global._config import (
    DEFAULT_GC,
    DEFAULT_ON_EXHAUSTED,
    DEFAULT_RECLAIM,
    DEFAULT_SCOPE,
    DEFAULT_SIZE,
    Config,
    format_size,
)

PROG = "bump-global"
USAGE_ERROR = 2

#: Options of ``run`` that take a value (needed to find where the target starts).
_RUN_VALUE_OPTIONS = ("--size", "--scope", "--on-exhausted", "--gc", "--reclaim", "--json",
                      "--sample", "--timeline")

#: Modules whose frames are trimmed from the head of the target's traceback.
_OWN_MODULES = frozenset({__name__, "bump_global._timeline", "runpy"})


class UsageError(Exception):
    """A one-line message for the user; the command exits with status 2."""


def _error(message: str) -> None:
    line = " ".join(str(message).split())  # always one line
    sys.stderr.write(f"{PROG}: error: {line}\n")
    sys.stderr.flush()


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that says where to look."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- run


@dataclass
class Target:
    """What ``run`` executes: a script path, a module name or code, and its arguments."""

    kind: str  # "script", "module" or "code"
    value: str
    args: List[str] = field(default_factory=list)

    def check(self) -> None:
        """Refuse, before anything runs, a target python could not run."""
        if self.kind == "script":
            _check_script(self.value)
        elif self.kind == "module":
            _check_module(self.value)

    def prepare_sys(self) -> None:
        """Set sys.argv and sys.path[0] as ``python`` sets them for this target."""
        own_path0 = not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))
        if self.kind == "script":
            sys.argv = [self.value, *self.args]
            if os.path.isdir(self.value) or zipfile.is_zipfile(self.value):
                path0 = os.path.abspath(self.value)  # __main__ is imported from there
            else:
                path0 = os.path.dirname(os.path.realpath(self.value))
        elif self.kind == "module":
            sys.argv = ["-m", *self.args]  # runpy replaces it with the module's path
            path0 = os.getcwd()
        else:
            sys.argv = ["-c", *self.args]
            path0 = ""
        if own_path0 and sys.path:
            sys.path[0] = path0

    def execute(self) -> None:
        """Run the target as ``__main__``; its exceptions propagate."""
        if self.kind == "script" and (os.path.isdir(self.value)
                                      or zipfile.is_zipfile(self.value)):
            _exec_main_of(self.value)
        elif self.kind == "script" and _is_source_file(self.value):
            _exec_file(self.value)
        elif self.kind == "script":  # compiled bytecode
            runpy.run_path(self.value, run_name="__main__")
        elif self.kind == "module":
            runpy.run_module(self.value, run_name="__main__", alter_sys=True)
        else:
            _exec_code(self.value)


def _exec_main(code: types.CodeType, attributes: Dict[str, Any]) -> None:
    """Run `code` in a fresh ``__main__`` module, as python does."""
    import builtins

    main = types.ModuleType("__main__")
    main.__dict__.update({"__builtins__": builtins, "__spec__": None, "__package__": None,
                          "__annotations__": {}, **attributes})
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _exec_code(source: str) -> None:
    """Run `source` as ``python -c`` does."""
    from importlib.machinery import BuiltinImporter

    if sys.version_info >= (3, 13):  # python -c shows the code's lines in tracebacks from 3.13
        import linecache

        lines = [line + "\n" for line in source.splitlines()]
        linecache.cache["<string>"] = (len(source), None, lines, "<string>")
    # dont_inherit: this module's __future__ imports must not reach the target.
    code = compile(source, "<string>", "exec", dont_inherit=True)
    _exec_main(code, {"__loader__": BuiltinImporter})


def _exec_file(path: str) -> None:
    """Run the source file `path` as ``python path`` does (``__file__`` absolute)."""
    from importlib.machinery import SourceFileLoader

    filename = os.path.abspath(path)
    with open(path, "rb") as src:
        source = src.read()  # compile() honours the coding declaration, as python
    code = compile(source, filename, "exec", dont_inherit=True)
    _exec_main(code, {"__file__": filename, "__cached__": None,
                      "__loader__": SourceFileLoader("__main__", filename)})


def _exec_main_of(path: str) -> None:
    """Run the ``__main__`` of a directory or zip file, as ``python path`` does."""
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("__main__", [os.path.abspath(path)])
    if spec is None or spec.loader is None:
        raise ImportError(f"can't find '__main__' module in {path!r}")
    code = spec.loader.get_code("__main__")  # type: ignore[attr-defined]
    _exec_main(code, {"__file__": spec.origin, "__cached__": spec.cached,
                      "__loader__": spec.loader, "__spec__": spec, "__package__": ""})


def _is_source_file(path: str) -> bool:
    if not os.path.isfile(path) or zipfile.is_zipfile(path):
        return False
    with open(path, "rb") as src:
        return src.read(len(importlib.util.MAGIC_NUMBER)) != importlib.util.MAGIC_NUMBER


def _check_script(path: str) -> None:
    """A UsageError unless python can run `path` (a file, or a directory or zip file)."""
    if path == "-":
        raise UsageError("reading the program from stdin ('-') is not supported: "
                         "save it to a file, or pass it with -c CODE")
    if not os.path.exists(path):
        raise UsageError(f"no such script: {path!r}: give the path of a Python file, "
                         "or use -m MODULE or -c CODE")
    if os.path.isdir(path):
        if not any(os.path.isfile(os.path.join(path, name))
                   for name in ("__main__.py", "__main__.pyc")):
            raise UsageError(f"{path!r} is a directory without __main__.py: give a Python "
                             "file, or a directory or zip file that has a __main__.py")
        return
    if not os.path.isfile(path):
        raise UsageError(f"{path!r} is not a regular file: give the path of a Python file")
    try:
        with open(path, "rb") as src:
            data = src.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path!r} ({exc.strerror or exc}): check its "
                         "permissions") from exc
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        if not names & {"__main__.py", "__main__.pyc"}:
            raise UsageError(f"{path!r} is a zip file without __main__.py: python cannot "
                             "run it")
        return
    if data.startswith(importlib.util.MAGIC_NUMBER):
        return  # compiled bytecode of this Python version
    not_python = (f"{path!r} is not a Python script ({{}}): give a Python source file, "
                  "a directory or zip file with __main__.py, or use -m MODULE")
    if b"\0" in data:
        raise UsageError(not_python.format("it contains binary data"))
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise UsageError(not_python.format(f"it is not text in its encoding: {exc}")) from exc


def _check_module(name: str) -> None:
    """A UsageError unless ``python -m name`` would find something to run."""
    if not name or name.startswith("."):
        raise UsageError(f"invalid module name {name!r}: give an absolute module name "
                         "such as 'package.module'")
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            if importlib.util.find_spec(name + ".__main__") is None:
                raise UsageError(f"{name!r} is a package without a __main__ module: "
                                 "it cannot be run with -m; name one of its modules")
    except (ImportError, ValueError) as exc:
        raise UsageError(f"cannot find module {name!r} ({exc}): check the name and "
                         "sys.path (run from the directory that contains it)") from exc
    if spec is None:
        raise UsageError(f"no module named {name!r}: check the name and sys.path "
                         "(run from the directory that contains it)")


def split_run_args(args: Sequence[str]) -> Tuple[List[str], Optional[Target]]:
    """Split ``run``'s arguments into its own options and the target with its ARGS.

    As with ``python``, everything after SCRIPT, ``-m MODULE`` or ``-c CODE``
    belongs to the target, options included.
    """
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest = args[i + 1:]
            return list(args[:i]), Target("script", rest[0], list(rest[1:])) if rest else None
        if arg in ("-m", "-c"):
            if i + 1 >= len(args):
                what = "MODULE" if arg == "-m" else "CODE"
                raise UsageError(f"{arg} needs an argument: {arg} {what}")
            kind = "module" if arg == "-m" else "code"
            return list(args[:i]), Target(kind, args[i + 1], list(args[i + 2:]))
        if arg[:2] in ("-m", "-c") and len(arg) > 2:  # -mMODULE, -cCODE
            kind = "module" if arg[1] == "m" else "code"
            return list(args[:i]), Target(kind, arg[2:], list(args[i + 1:]))
        if arg.startswith("-") and arg != "-":
            i += 2 if arg in _RUN_VALUE_OPTIONS else 1
            continue
        return list(args[:i]), Target("script", arg, list(args[i + 1:]))
    return list(args), None


def _add_run_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "run", allow_abbrev=False, help="run a Python program under the bump allocator",
        usage=f"{PROG} run [options] (SCRIPT | -m MODULE | -c CODE) [ARGS...]",
        description="Install bump_global, then run SCRIPT, -m MODULE or -c CODE exactly as "
                    "python would (same sys.argv, sys.path[0], __main__ and exit code). "
                    "Everything after the target goes to the target.",
    )
    parser.add_argument("--size", default=DEFAULT_SIZE,
                        help="region to reserve: bytes or e.g. 512M, 4G, 64GiB "
                             "(default: %(default)s)")
    parser.add_argument("--scope", default=DEFAULT_SCOPE,
                        help="objects, python or raw (default: %(default)s)")
    parser.add_argument("--on-exhausted", default=DEFAULT_ON_EXHAUSTED, metavar="POLICY",
                        help="fallback or error (default: %(default)s)")
    parser.add_argument("--histogram", action="store_true",
                        help="count requests per power-of-two size class (in the report)")
    parser.add_argument("--no-prefault", dest="prefault", action="store_false",
                        help="no helper thread faulting pages in ahead of the bump")
    parser.add_argument("--no-huge-pages", dest="huge_pages", action="store_false",
                        help="no transparent huge pages over the region (by default asked "
                             "for once it holds 32 MiB)")
    parser.add_argument("--gc", default=DEFAULT_GC, metavar="POLICY",
                        help="the cyclic GC: keep, relaxed or off (default: %(default)s)")
    parser.add_argument("--reclaim", default=DEFAULT_RECLAIM, metavar="POLICY",
                        help="what free gives back: none (bump allocation), last (the most "
                             "recent block) or classes (size classes, reused as pymalloc "
                             "does) (default: %(default)s)")
    parser.add_argument("--report", action="store_true",
                        help="print the report to stderr at exit")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE at exit")
    parser.add_argument("--sample", metavar="MS",
                        help="sample memory every MS milliseconds (needs --timeline)")
    parser.add_argument("--timeline", metavar="FILE",
                        help="write the samples to FILE at exit: CSV if it ends in .csv, "
                             "else JSON lines")
    target = parser.add_argument_group("target (one of; everything after it is ARGS)")
    target.add_argument("SCRIPT", nargs="?", help="a Python file, or a directory or zip file "
                                                  "with __main__.py")
    target.add_argument("-m", metavar="MODULE", dest="module_help",
                        help="run a module, as python -m")
    target.add_argument("-c", metavar="CODE", dest="code_help",
                        help="run code, as python -c")


@dataclass
class RunOptions:
    """``run``'s options, validated."""

    config: Config
    report: bool
    json_path: Optional[str]
    sample_ms: Optional[float]
    timeline_path: Optional[str]

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> RunOptions:
        try:
            config = Config.make(ns.size, ns.scope, ns.on_exhausted, ns.histogram, ns.prefault,
                                 ns.huge_pages, ns.gc, ns.reclaim)
        except ValueError as exc:
            message = str(exc)
            for kind, option in (("size", "--size"), ("scope", "--scope"),
                                 ("on_exhausted", "--on-exhausted"), ("gc", "--gc"),
                                 ("reclaim", "--reclaim")):
                if message.startswith(f"invalid {kind} "):
                    message = f"argument {option}: {message}"
            raise UsageError(message) from exc
        if (ns.sample is None) != (ns.timeline is None):
            raise UsageError("--sample MS and --timeline FILE go together: give both "
                             "(e.g. --sample 10 --timeline memory.csv) or neither")
        sample_ms = None
        if ns.sample is not None:
            try:
                sample_ms = float(ns.sample)
            except ValueError:
                sample_ms = math.nan
            if not (sample_ms > 0 and math.isfinite(sample_ms)):
                raise UsageError(f"argument --sample: invalid interval {ns.sample!r}: expected "
                                 "a positive number of milliseconds, e.g. --sample 10")
        for option, path in (("--json", ns.json), ("--timeline", ns.timeline)):
            if path is not None:
                _check_output(option, path)
        if ns.json is not None and ns.json == ns.timeline:
            raise UsageError("--json and --timeline name the same file: give two files")
        return cls(config, ns.report, ns.json, sample_ms, ns.timeline)


def _check_output(option: str, path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path):
        raise UsageError(f"argument {option}: {path!r} is a directory: give a file name")
    if not os.path.isdir(parent):
        raise UsageError(f"argument {option}: directory {parent!r} does not exist: "
                         "create it first or write elsewhere")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"argument {option}: directory {parent!r} is not writable")


def _cli_hint(message: str) -> str:
    """Rewrite the Python-API advice of a BumpGlobalError as command-line options."""
    return re.sub(r"\b(size|scope|on_exhausted)='([^']*)'",
                  lambda m: f"--{m.group(1).replace('_', '-')} {m.group(2)}", message)


class _Finisher:
    """At exit: stop the sampler and write the timeline, the JSON and the report.

    Registered with atexit before the target starts, so it runs after the
    target's own exit handlers and threads, in every way the target can end
    short of os._exit or a fatal signal.
    """

    def __init__(self, options: RunOptions, sampler: Any) -> None:
        self.options = options
        self.sampler = sampler
        self.pid = os.getpid()
        self.t0 = 0.0

    def __call__(self) -> None:
        if os.getpid() != self.pid:  # a forked child exiting through atexit
            return
        wall_time = time.perf_counter() - self.t0
        opts = self.options
        if self.sampler is not None and opts.timeline_path is not None:
            self.sampler.stop()
            try:
                self.sampler.write(opts.timeline_path)
            except OSError as exc:
                _error(f"cannot write the timeline to {opts.timeline_path!r}: {exc}")
            self.sampler.close()
        if opts.json_path is not None:
            import json

            data = bump_global.report_dict(wall_time=wall_time)
            try:
                with open(opts.json_path, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=2)
                    out.write("\n")
            except OSError as exc:
                _error(f"cannot write the JSON report to {opts.json_path!r}: {exc}")
        if opts.report:
            sys.stderr.write(bump_global.report(wall_time=wall_time) + "\n")
            sys.stderr.flush()


def _trimmed(tb: Optional[types.TracebackType]) -> Optional[types.TracebackType]:
    """`tb` without its leading frames of this CLI and runpy."""
    while tb is not None and tb.tb_frame.f_globals.get("__name__") in _OWN_MODULES:
        tb = tb.tb_next
    return tb


def _print_uncaught(exc: BaseException) -> None:
    tb = _trimmed(exc.__traceback__)
    exc.__traceback__ = tb
    sys.excepthook(type(exc), exc, tb)


def run_command(ns: argparse.Namespace, target: Optional[Target]) -> int:
    """``run``: validate everything, install, run the target as python would."""
    options = RunOptions.from_args(ns)
    if target is None:
        raise UsageError("nothing to run: give a SCRIPT, -m MODULE or -c CODE "
                         f"(e.g. {PROG} run script.py)")
    target.prepare_sys()  # before the check: -m searches from the target's sys.path
    target.check()
    sampler = None
    if options.sample_ms is not None:
        from bump_global._timeline import Sampler

        sampler = Sampler(options.sample_ms)  # storage made before the install
    config = options.config
    try:
        bump_global.install(config.size, config.scope, config.on_exhausted,
                            histogram=config.histogram, prefault=config.prefault,
                            huge_pages=config.huge_pages, gc=config.gc,
                            reclaim=config.reclaim)
    except bump_global.BumpGlobalError as exc:
        raise UsageError(_cli_hint(str(exc))) from exc
    finisher = _Finisher(options, sampler)
    atexit.register(finisher)
    finisher.t0 = time.perf_counter()
    if sampler is not None:
        sampler.start(finisher.t0)
    try:
        target.execute()
    except SystemExit:
        raise  # the interpreter prints its message and exits with its code, as python
    except KeyboardInterrupt as exc:
        _print_uncaught(exc)
        # Re-raise so the interpreter exits as python does on Ctrl-C (killed by
        # SIGINT), without printing the traceback a second time.
        sys.excepthook = lambda *args: None
        raise
    except BaseException as exc:  # noqa: B036 - as python: any uncaught exception
        _print_uncaught(exc)
        return 1
    return 0


# -------------------------------------------------------------------------- info


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="ascii") as src:
            return src.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def largest_region(limit: int = 128 << 40, step: int = 1 << 20) -> Optional[int]:
    """The largest reservation (to `step` bytes) install() could make now, up to `limit`.

    Each successful probe is closed (unmapped) at once: only the mapping that
    install() pins lives on.  None where it cannot probe (Windows).
    """
    if sys.platform == "win32":
        return None
    from bump_global import _region

    def fits(size: int) -> bool:
        try:
            reservation = _region.reserve_posix(size, address=lambda mapping: 0)
        except OSError:
            return False
        reservation.mapping.close()
        return True

    if fits(limit):
        return limit
    low, high = 0, limit // step  # fits(low * step) or low == 0; not fits(high * step)
    while high - low > 1:
        mid = (low + high) // 2
        if fits(mid * step):
            low = mid
        else:
            high = mid
    return low * step or None


def _pythonmalloc() -> str:
    value = os.environ.get("PYTHONMALLOC")
    if value:
        return value
    if sys.flags.dev_mode:
        return "debug (-X dev)"
    if hasattr(sys, "gettotalrefcount"):
        return "pymalloc_debug (default of a debug build)"
    return "pymalloc (default)"


_OVERCOMMIT = {"0": "heuristic", "1": "always", "2": "strict"}


def collect_info() -> List[Tuple[str, Any, str]]:
    """(key, JSON value, text value) for ``info``."""
    import mmap
    import platform
    import sysconfig

    rows: List[Tuple[str, Any, str]] = []

    def add(key: str, value: Any, text: Optional[str] = None) -> None:
        rows.append((key, value, str(value) if text is None else text))

    add("bump_global", bump_global.__version__)
    add("platform", platform.platform())
    add("python", platform.python_version())
    add("implementation", f"{platform.python_implementation()} ({sys.implementation.name})")
    add("build", "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL")
    add("pythonmalloc", _pythonmalloc())
    add("page_size", mmap.PAGESIZE, f"{mmap.PAGESIZE} bytes")
    thp = _read("/sys/kernel/mm/transparent_hugepage/enabled")
    match = re.search(r"\[(\w+)\]", thp or "")
    add("transparent_hugepages", match.group(1) if match else "n/a")
    overcommit = _read("/proc/sys/vm/overcommit_memory")
    if overcommit is None:
        add("overcommit_memory", "n/a")
    else:
        meaning = _OVERCOMMIT.get(overcommit)
        add("overcommit_memory", int(overcommit) if overcommit.isdigit() else overcommit,
            f"{overcommit} ({meaning})" if meaning else overcommit)
    # The reservation spans twice the size (a small-block and a large-block area).
    reservable = largest_region()
    biggest = None if reservable is None else reservable // 2
    add("max_region", biggest,
        "n/a" if biggest is None else f"{format_size(biggest)} ({biggest} bytes) as --size")
    try:
        from bump_global._compare import find_preload_libraries
    except ImportError:
        libraries: Dict[str, Any] = {"jemalloc": "unknown", "mimalloc": "unknown"}
    else:
        libraries = dict(find_preload_libraries())
    for name in ("jemalloc", "mimalloc"):
        path = libraries.get(name)
        add(name, path, "not found" if path is None else str(path))
    return rows


def info_command(ns: argparse.Namespace) -> int:
    """``info``: what this platform and interpreter allow."""
    rows = collect_info()
    if ns.json:
        import json

        print(json.dumps({key: value for key, value, _ in rows}, indent=2))
        return 0
    width = max(len(key) for key, _, _ in rows) + 1
    for key, _, text in rows:
        print(f"{key + ':':<{width}} {text}")
    return 0


# ----------------------------------------------------------------------- compare


def _load_compare() -> Any:
    try:
        from bump_global import _compare
    except ModuleNotFoundError as exc:
        if exc.name != "bump_global._compare":
            raise UsageError(f"the compare command cannot load: {exc}") from exc
        raise UsageError("the compare command is not available in this version of "
                         "bump_global (bump_global._compare is missing): update "
                         "bump_global") from exc
    return _compare


# -------------------------------------------------------------------------- main


def build_parser(compare: Any = None) -> _Parser:
    """The parser; ``compare``'s options are added only when its module is given."""
    parser = _Parser(prog=PROG, description="Run Python programs under the bump_global "
                     "bump allocator, and inspect what the platform allows.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {bump_global.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run_parser(sub)
    info = sub.add_parser("info", help="show the platform, interpreter and largest region",
                          description="Show what this platform and interpreter allow.")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    compare_parser = sub.add_parser(
        "compare", help="compare allocators on a workload (bump_global, pymalloc, ...)",
        description="Compare allocators on a workload.")
    if compare is not None:
        compare.add_arguments(compare_parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``bump-global`` and ``python -m bump_global``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except UsageError as exc:
        _error(str(exc))
        return USAGE_ERROR


def _dispatch(args: List[str]) -> int:
    command = args[0] if args else None
    if command == "run":
        own, target = split_run_args(args[1:])
        ns, unknown = build_parser().parse_known_args(["run", *own])
        if unknown:
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} "
                             f"(see '{PROG} run --help')")
        return run_command(ns, target)
    if command == "compare":
        compare = _load_compare()
        ns = build_parser(compare).parse_args(args)
        return int(compare.run(ns))
    ns = build_parser().parse_args(args)
    if ns.command == "info":
        return info_command(ns)
    raise UsageError(f"no command given: use one of run, info, compare (see '{PROG} --help')")
