"""Variants: what changes between the runs of one job, as data.

A variant adds variables to a run's environment, and may preload an allocator
(``LD_PRELOAD``), wrap the command (memray's ``python -m memray run ...`` goes
between the interpreter and the program), load an engine build first on
``PYTHONPATH``, and need a package in the benchmark venv.  The peers "with the same
GC policy" carry ``GCX=1``: the sitecustomize on every run's ``PYTHONPATH``
(``bump_global._launch.GC_PEER_SITECUSTOMIZE``) then calls bump_global's own
``apply_gc_policy("relaxed")``.  bump_global's variables are derived from the
package's option list through :func:`install_options`, and only there.

To add a variant, add a row to :data:`VARIANTS` (``default=False`` keeps it out of
bench.py's default set); on any command line a variant is also
``[NAME=]KEY=VALUE[+KEY=VALUE...]`` (:func:`parse_variant`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bump_global._launch import GC_PEER_VARIABLES, PACKAGE_HINTS

BASE = "pymalloc"
GC_PEER = "pymalloc+gc"
FALSE_WORDS = ("", "0", "false", "no", "off")

def install_options() -> Dict[str, Any]:
    """name -> option object (``.name``, ``.env``, ``.flag``) of bump_global's install
    options: the one place that knows where the package keeps its option list."""
    from bump_global._config import INSTALL_OPTIONS

    return {option.name: option for option in INSTALL_OPTIONS}


def option_variable(key: str) -> Optional[str]:
    """The environment variable of install option `key` (its name, or its flag such
    as ``--reclaim``); None when `key` names no option."""
    for option in install_options().values():
        if key in (option.name, option.flag):
            return str(option.env)
    return None


def bump_env(**values: str) -> Dict[str, str]:
    """``BUMP_GLOBAL=1`` and the variable of each install option in `values`
    (``bump_env(reclaim="classes")``); ValueError for an unknown option."""
    env = {"BUMP_GLOBAL": "1"}
    for name, value in values.items():
        variable = option_variable(name)
        if variable is None:
            raise ValueError(f"bump_global has no install option {name!r}")
        env[variable] = value
    return env


@dataclass(frozen=True)
class Variant:
    """How the runs of one variant differ from a plain run."""

    name: str
    what: str
    env: Mapping[str, str] = field(default_factory=dict)
    #: "mimalloc" or "jemalloc": LD_PRELOAD that library (env has PYTHONMALLOC=malloc)
    preload: Optional[str] = None
    #: arguments put after the interpreter ("{out}": a file in the run folder)
    wrapper: Tuple[str, ...] = ()
    #: pip requirements of the variant, installed in the benchmark venv
    requires: Tuple[str, ...] = ()
    #: the name of an engine build loaded first on PYTHONPATH (see harness.builds)
    build: Optional[str] = None
    min_python: Tuple[int, int] = (3, 9)
    #: in bench.py's default set
    default: bool = True

    @property
    def bump(self) -> bool:
        return self.env.get("BUMP_GLOBAL", "").strip().lower() not in FALSE_WORDS

    @property
    def gc_peer(self) -> bool:
        return all(self.env.get(k) == v for k, v in GC_PEER_VARIABLES.items())


def _peer(name: str, what: str, **kwargs: Any) -> Variant:
    env = {**kwargs.pop("env", {}), **GC_PEER_VARIABLES}
    return Variant(name, what, env, **kwargs)


MEMRAY = ("-m", "memray", "run", "--quiet", "--force", "-o", "{out}")

VARIANTS: Tuple[Variant, ...] = (
    Variant(BASE, "CPython's default allocator, nothing set"),
    _peer(GC_PEER, "pymalloc, GC thresholds x10 (young and full: gc='relaxed' for anyone)"),
    _peer("mimalloc+gc", "LD_PRELOAD libmimalloc + PYTHONMALLOC=malloc, GC x10",
          env={"PYTHONMALLOC": "malloc"}, preload="mimalloc"),
    _peer("jemalloc+gc", "LD_PRELOAD libjemalloc + PYTHONMALLOC=malloc, GC x10",
          env={"PYTHONMALLOC": "malloc"}, preload="jemalloc"),
    _peer("cpy-mimalloc+gc", "PYTHONMALLOC=mimalloc (CPython's own, 3.13+), GC x10",
          env={"PYTHONMALLOC": "mimalloc"}, min_python=(3, 13)),
    Variant("bump", "BUMP_GLOBAL=1: bump_global's default (pure bump, no huge pages, "
            "gc='relaxed')", bump_env()),
    Variant("bump-huge", "BUMP_GLOBAL=1 BUMP_GLOBAL_HUGE_PAGES=1 (the default until "
            "these measurements)", bump_env(huge_pages="1")),
    Variant("bump-classes", "BUMP_GLOBAL=1 BUMP_GLOBAL_RECLAIM=classes (size classes with "
            "free lists: the speed configuration)", bump_env(reclaim="classes")),
    Variant("bump-noprefault", "BUMP_GLOBAL=1 BUMP_GLOBAL_PREFAULT=0 (no prefault thread)",
            bump_env(prefault="0"), default=False),
    Variant("bump-sites", "BUMP_GLOBAL=1 BUMP_GLOBAL_SITES=1 (allocation sites sampled)",
            bump_env(sites="1"), default=False),
    Variant("bump-classes-sites", "BUMP_GLOBAL=1 BUMP_GLOBAL_RECLAIM=classes "
            "BUMP_GLOBAL_SITES=1", bump_env(reclaim="classes", sites="1"), default=False),
    Variant("memray", "python -m memray run --quiet --force -o FILE (memray's default mode)",
            wrapper=MEMRAY, requires=("memray",), default=False),
    Variant("memray-py", "memray run --trace-python-allocators (every pymalloc block too)",
            wrapper=(*MEMRAY, "--trace-python-allocators"), requires=("memray",),
            default=False),
    Variant("tracemalloc", "PYTHONTRACEMALLOC=1 (python -X tracemalloc, in every process)",
            {"PYTHONTRACEMALLOC": "1"}, default=False),
)
NAMES = [v.name for v in VARIANTS]
SPEC_HELP = ("a name from " + ", ".join(NAMES) + ", or [NAME=]KEY=VALUE[+KEY=VALUE...] "
             "(KEY: a variable, or an install option's name or flag such as reclaim or "
             "--reclaim; any bump_global option implies BUMP_GLOBAL=1)")


def parse_variant(spec: str) -> Variant:
    """A variant from its name in VARIANTS, or from ``[NAME=]KEY=VALUE[+KEY=VALUE...]``
    (``classes=reclaim=classes``, ``BUMP_GLOBAL_RECLAIM=classes``,
    ``mimalloc+gc=GCX=1+PYTHONMALLOC=malloc+LD_PRELOAD=libmimalloc.so.2``); ValueError
    in one line naming what is wrong."""
    known = {v.name: v for v in VARIANTS}
    spec = spec.strip()
    if spec in known:
        return known[spec]
    if "=" not in spec:
        raise ValueError(f"unknown variant {spec!r}: expected {SPEC_HELP}")
    name, _, rest = spec.partition("=")
    if "=" not in rest.split("+")[0]:
        name, rest = spec, spec
    env: Dict[str, str] = {}
    for item in rest.split("+"):
        key, sep, value = item.partition("=")
        variable = option_variable(key)
        if variable is None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{item!r} in variant {spec!r} is not KEY=VALUE")
        if not sep:
            raise ValueError(f"{item!r} in variant {spec!r} is not KEY=VALUE")
        env[variable or key] = value
    if any(k.startswith("BUMP_GLOBAL_") for k in env) and "BUMP_GLOBAL" not in env:
        env["BUMP_GLOBAL"] = "1"
    variant = Variant(name, spec, env, min_python=(3, 13) if env.get(
        "PYTHONMALLOC") == "mimalloc" else (3, 9))
    if variant.bump and env.get("PYTHONTRACEMALLOC", "0") not in FALSE_WORDS:
        raise ValueError(f"variant {spec!r}: tracemalloc cannot run together with "
                         "bump_global (bump_global refuses to install under it): drop one")
    return variant


def parse_variants(text: Optional[str], who: str) -> Optional[List[Variant]]:
    """The variants of a comma-separated --variants value (None: not given); one line
    naming the option and what is accepted for a bad one."""
    if text is None:
        return None
    try:
        return [parse_variant(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise SystemExit(f"{who}: --variants: {exc}") from None


def importable(python: str, module: str) -> bool:
    """Whether `python` can import `module`."""
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True,
                          check=False).returncode == 0


def select_variants(wanted: Optional[Sequence[Variant]], pyversion: Tuple[int, ...],
                    libraries: Mapping[str, Optional[str]], python: Optional[str] = None,
                    reference: str = BASE) -> Tuple[List[Variant], List[str]]:
    """The variants to run, `reference` first (always run), and one line per variant
    left out (a missing library, a Python too old, a requirement `python` cannot
    import).  `wanted` None: the default set."""
    chosen_from = [v for v in VARIANTS if v.default] if wanted is None else list(wanted)
    # (the default of next() is evaluated first: a reference given on the command line
    # is in chosen_from, not in VARIANTS)
    ref = next((v for v in [*chosen_from, *VARIANTS] if v.name == reference))
    chosen, notes = [ref], []
    for v in chosen_from:
        if v.name == reference:
            continue
        if v.preload and not libraries.get(v.preload):
            notes.append(f"variant {v.name} skipped: lib{v.preload} not found "
                         f"({PACKAGE_HINTS[v.preload]})")
        elif tuple(pyversion) < v.min_python:
            notes.append(f"variant {v.name} skipped: needs Python "
                         f"{'.'.join(map(str, v.min_python))}+ (this is "
                         f"{'.'.join(map(str, pyversion[:2]))})")
        elif python and v.requires and not all(importable(python, r) for r in v.requires):
            notes.append(f"variant {v.name} skipped: {python} cannot import "
                         f"{', '.join(v.requires)} (pip install {' '.join(v.requires)})")
        else:
            chosen.append(v)
    return chosen, notes


def with_builds(variants: Sequence[Variant], builds: Sequence[str]) -> List[Variant]:
    """Each bump variant once per engine build (``bump@old``, ``bump@new``); the
    others, which do not load the engine, once."""
    if not builds:
        return list(variants)
    out: List[Variant] = []
    for v in variants:
        if v.bump:
            out += [replace(v, name=f"{v.name}@{b}", what=f"{v.what}; build {b}", build=b)
                    for b in builds]
        else:
            out.append(v)
    return out


def run_variables(variant: Variant, libraries: Mapping[str, Optional[str]]) -> Dict[str, str]:
    """The variables that make a run variant `variant` (given to the command only)."""
    extra = dict(variant.env)
    if variant.preload:
        extra["LD_PRELOAD"] = libraries.get(variant.preload) or ""
    return extra


def wrap(argv: Sequence[str], python: str, variant: Variant, out: str) -> List[str]:
    """`argv` with the variant's wrapper after the interpreter (a console script such
    as ``bin/black`` is run as a script by ``python WRAPPER``)."""
    if not variant.wrapper:
        return list(argv)
    wrapper = [a.replace("{out}", out) for a in variant.wrapper]
    rest = argv[1:] if argv[0] == python else argv
    return [python, *wrapper, *rest]
