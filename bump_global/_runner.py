"""How ``bump-global run`` runs its target exactly as ``python`` would.

The target is a script (a source file, compiled bytecode, or a directory or zip
file with ``__main__.py``), ``-m MODULE`` or ``-c CODE``.  sys.argv, sys.path[0],
``__main__`` and the exit code are python's.  The target's ``__main__`` namespace
is kept alive until the interpreter ends, as python keeps it, so that the
report at exit describes the program and not the teardown of its globals.
"""

from __future__ import annotations

import importlib.util
import io
import os
import runpy
import sys
import tokenize
import types
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple


class TargetError(Exception):
    """The target cannot be run (a one-line message for the user)."""


#: The namespaces of the targets run in this process: python keeps __main__
#: alive until it finalizes, and so do we.
_kept: List[Any] = []


@dataclass
class Target:
    """What ``run`` executes: a script path, a module name or code, and its arguments."""

    kind: str  # "script", "module" or "code"
    value: str
    args: List[str] = field(default_factory=list)

    def command(self) -> List[str]:
        """The target as it was typed after the options: ``script.py ARGS``, ``-m
        MODULE ARGS``, ``-c CODE ARGS`` (what a report names it by)."""
        if self.kind == "module":
            return ["-m", self.value, *self.args]
        if self.kind == "code":
            return ["-c", self.value, *self.args]
        return [self.value, *self.args]

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
            _kept.append(runpy.run_path(self.value, run_name="__main__"))
        elif self.kind == "module":
            _kept.append(runpy.run_module(self.value, run_name="__main__", alter_sys=True))
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
    _kept.append(main)
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
    """A TargetError unless python can run `path` (a file, or a directory or zip file)."""
    if path == "-":
        raise TargetError("reading the program from stdin ('-') is not supported: "
                         "save it to a file, or pass it with -c CODE")
    if not os.path.exists(path):
        raise TargetError(f"no such script: {path!r}: give the path of a Python file, "
                         "or use -m MODULE or -c CODE")
    if os.path.isdir(path):
        if not any(os.path.isfile(os.path.join(path, name))
                   for name in ("__main__.py", "__main__.pyc")):
            raise TargetError(f"{path!r} is a directory without __main__.py: give a Python "
                             "file, or a directory or zip file that has a __main__.py")
        return
    if not os.path.isfile(path):
        raise TargetError(f"{path!r} is not a regular file: give the path of a Python file")
    try:
        with open(path, "rb") as src:
            data = src.read()
    except OSError as exc:
        raise TargetError(f"cannot read {path!r} ({exc.strerror or exc}): check its "
                         "permissions") from exc
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        if not names & {"__main__.py", "__main__.pyc"}:
            raise TargetError(f"{path!r} is a zip file without __main__.py: python cannot "
                             "run it")
        return
    if data.startswith(importlib.util.MAGIC_NUMBER):
        return  # compiled bytecode of this Python version
    not_python = (f"{path!r} is not a Python script ({{}}): give a Python source file, "
                  "a directory or zip file with __main__.py, or use -m MODULE")
    if b"\0" in data:
        raise TargetError(not_python.format("it contains binary data"))
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise TargetError(not_python.format(f"it is not text in its encoding: {exc}")) from exc


def _check_module(name: str) -> None:
    """A TargetError unless ``python -m name`` would find something to run."""
    if not name or name.startswith("."):
        raise TargetError(f"invalid module name {name!r}: give an absolute module name "
                         "such as 'package.module'")
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            if importlib.util.find_spec(name + ".__main__") is None:
                raise TargetError(f"{name!r} is a package without a __main__ module: "
                                 "it cannot be run with -m; name one of its modules")
    except (ImportError, ValueError) as exc:
        raise TargetError(f"cannot find module {name!r} ({exc}): check the name and "
                         "sys.path (run from the directory that contains it)") from exc
    if spec is None:
        raise TargetError(f"no module named {name!r}: check the name and sys.path "
                         "(run from the directory that contains it)")


def split_run_args(args: Sequence[str]) -> Tuple[List[str], Optional[Target]]:
    """Split ``run``'s arguments into its own options and the target with its ARGS.

    As with ``python``, everything after SCRIPT, ``-m MODULE`` or ``-c CODE``
    belongs to the target, options included.  An option's value is taken as
    it is, even when it starts with a dash (``--size -5G`` is a bad size, not a
    missing one): such pairs are returned joined, ``--size=-5G``.
    """
    from bump_global._config import value_options

    takes_value = value_options()
    own: List[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest = args[i + 1:]
            return own, Target("script", rest[0], list(rest[1:])) if rest else None
        if arg in ("-m", "-c"):
            if i + 1 >= len(args):
                what = "MODULE" if arg == "-m" else "CODE"
                raise TargetError(f"{arg} needs an argument: {arg} {what}")
            kind = "module" if arg == "-m" else "code"
            return own, Target(kind, args[i + 1], list(args[i + 2:]))
        if arg[:2] in ("-m", "-c") and len(arg) > 2:  # -mMODULE, -cCODE
            kind = "module" if arg[1] == "m" else "code"
            return own, Target(kind, arg[2:], list(args[i + 1:]))
        if arg.startswith("-") and arg != "-":
            if arg in takes_value and i + 1 < len(args) and args[i + 1].startswith("-"):
                own.append(f"{arg}={args[i + 1]}")
                i += 2
                continue
            own.extend(args[i:i + 2] if arg in takes_value else [arg])
            i += 2 if arg in takes_value else 1
            continue
        return own, Target("script", arg, list(args[i + 1:]))
    return own, None
