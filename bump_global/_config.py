"""Every option of bump_global, defined, validated, defaulted and described once.

An option is set in one of three places, and its errors name the spelling the
user wrote:

============  ======================  ===================  =====================
where         example                 ``source``           error names
============  ======================  ===================  =====================
Python API    ``install(size="4G")``  ``"api"``            ``size='4G'``
environment   ``BUMP_GLOBAL_SIZE=4G`` ``"env"``            ``BUMP_GLOBAL_SIZE='4G'``
command line  ``run --size 4G``       ``"cli"``            ``--size '4G'``
============  ======================  ===================  =====================

:data:`INSTALL_OPTIONS` are what :func:`bump_global.install` takes (the fields
of :class:`Config`, in the order the C core's ``install`` receives them);
:data:`SESSION_OPTIONS` say what to report at exit (``bump-global run`` and
``BUMP_GLOBAL_REPORT``...).  The environment activation, the CLI (through
:func:`add_arguments` and :func:`from_namespace`), the report and the
benchmarks all read options from here: adding one means adding one
:class:`Option` below (and, for an install option, a field of :class:`Config`
and its place in the C core's ``install``).

Everything here is pure Python with no side effect and imports nothing beyond
what every interpreter start-up has (no re, typing or dataclasses):
``BUMP_GLOBAL=1`` installs through it at start-up.
"""

from __future__ import annotations

from bump_global._record import Record

# MIN_SIZE (smallest region: one chunk of the GIL arena, GIL_CHUNK in the C core),
# AUTO_SIZE_MAX (upper bound of the automatic default) and memory_limit() live in
# the start-up module, which BUMP_GLOBAL=1 runs without importing this one.
from bump_global._startup import (  # noqa: F401  (re-exported)
    AUTO_SIZE_MAX,
    MIN_SIZE,
    UNKNOWN_MEMORY_SIZE,
    auto_size,
    memory_limit,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse
    from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

    SizeLike = Union[int, str]

#: The default region size: "auto" is half of the memory this machine (or the
#: process's cgroup) has, so a program that never frees is served by the
#: fallback allocator before it can take the machine down (see default_size()).
DEFAULT_SIZE = "auto"
DEFAULT_SCOPE = "python"
DEFAULT_ON_EXHAUSTED = "fallback"
DEFAULT_GC = "relaxed"  # chosen from docs/benchmarks.md: see the README
DEFAULT_RECLAIM = "none"


#: Address space kept beyond `size` for on_exhausted="error" (EMERGENCY_RESERVE in
#: the C core; tests/test_core_layout.py checks that they agree).
EMERGENCY_RESERVE = 4 << 20

#: scope name -> (code shared with the C core, description).
SCOPES = {
    "objects": (1, "OBJ domain only (PyObject_Malloc: Python objects)"),
    "python": (2, "RAW + MEM + OBJ: everything Python allocates"),
    "raw": (3, "RAW domain only (PyMem_RawMalloc); the one scope of free-threaded builds"),
}

#: gc policy name -> (code kept by the C core, description).
GC_POLICIES = {
    "keep": (1, "CPython's cyclic GC as configured"),
    "relaxed": (2, "collections 10 times rarer (young and full); finalizers of cyclic "
                   "garbage run later"),
    "off": (3, "gc.disable(): cyclic garbage is never collected, its finalizers never run"),
}

#: reclaim policy name -> (code shared with the C core, description).
RECLAIM = {
    "none": (0, "free gives nothing back: every block is fresh memory (bump allocation)"),
    "last": (1, "freeing the most recent block moves the bump pointer back to it"),
    "classes": (2, "blocks up to 64 KiB in size classes with free lists, reused like "
                   "pymalloc's; freed large blocks give their pages back"),
}

#: policy name -> (code shared with the C core, description).
ON_EXHAUSTED = {
    "fallback": (1, "the previous allocator serves the request; the program keeps running"),
    "error": (2, "the allocation fails and Python raises MemoryError"),
}

ENV_PREFIX = "BUMP_GLOBAL"
TRUE_VALUES = ("1", "true", "yes", "on")
#: Keep in sync with the test in bump_global_activate.pth (it skips these without importing).
FALSE_VALUES = ("", "0", "false", "no", "off")

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_SIZE_HELP = (
    "expected a number of bytes or a string such as '512M', '4G', '64GiB' "
    "(units B, K, M, G, T, with optional 'B' or 'iB'; all are powers of 1024), or 'auto'"
)
_FLAG_HELP = "expected 1, true, yes or on (enable), or 0, false, no, off or empty (disable)"


class OptionError(ValueError):
    """A bad option value; the message is one line naming what the user set."""


# ------------------------------------------------------------------ values


def parse_size(value: SizeLike) -> int:
    """Return `value` (an int of bytes or a string such as ``"4G"``) in bytes.

    Units are binary: ``K``, ``KB`` and ``KiB`` all mean 1024 bytes.  ``"auto"``
    gives :func:`default_size`.  Raises ValueError, saying what is accepted,
    for anything else.
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return default_size()[0]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}")
    if isinstance(value, int):
        size = value
    else:
        text = value.strip()
        digits = len(text) - len(text.lstrip("0123456789."))
        number, unit = text[:digits], text[digits:].strip().lower()
        if (unit not in _UNITS or number.count(".") > 1 or number.strip(".") == ""
                or not number.isascii()):
            raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}")
        scale = _UNITS[unit]
        if "." in number:
            size = int(float(number) * scale)
        else:
            size = int(number) * scale
    if size < MIN_SIZE:
        raise ValueError(
            f"invalid size {value!r}: the region must be at least 1M "
            f"({MIN_SIZE} bytes); the default is half of physical memory ('auto')"
        )
    if size >= 1 << 62:
        raise ValueError(f"invalid size {value!r}: too large for an address space")
    return size


def format_size(n: float) -> str:
    """Human-readable binary size: ``format_size(1536) == '1.5 KiB'``."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


def parse_flag(value: str) -> bool:
    """An on/off value (case-insensitive, surrounding spaces ignored); ValueError otherwise."""
    word = value.strip().lower()
    if word in TRUE_VALUES:
        return True
    if word in FALSE_VALUES:
        return False
    raise ValueError(f"invalid value {value!r}: {_FLAG_HELP}")


_default_size: Optional[Tuple[int, str]] = None


def default_size() -> Tuple[int, str]:
    """(bytes, explanation) of the default region size: half of :func:`memory_limit`,
    rounded down to a MiB, at most 1 TiB; 16 GiB where the memory is unknown."""
    global _default_size
    if _default_size is None:
        limit, source = memory_limit()
        if limit is None:
            _default_size = (UNKNOWN_MEMORY_SIZE,
                             f"{format_size(UNKNOWN_MEMORY_SIZE)} ({source})")
        else:
            _default_size = (auto_size(limit), f"half of {source} ({format_size(limit)})")
    return _default_size


def _check_choice(kind: str, value: object, choices: Dict[str, Tuple[int, str]]) -> str:
    if not isinstance(value, str) or value not in choices:
        accepted = ", ".join(f"{name!r} ({desc})" for name, (_, desc) in choices.items())
        raise ValueError(f"invalid {kind} {value!r}: expected one of {accepted}")
    return value


def _check_bool(kind: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"invalid {kind} {value!r}: expected True or False")
    return value


def _check_interval(kind: str, value: object) -> float:
    try:
        interval = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        interval = float("nan")
    if isinstance(value, bool) or not (0 < interval < float("inf")):
        raise ValueError(f"invalid interval {value!r}: expected a positive number of "
                         "milliseconds, e.g. 10")
    return interval


def _check_path(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"invalid file name {value!r}: expected a path")
    return value


# ----------------------------------------------------------------- options


class Option:
    """One option: its name in each place, its default, how it is checked and described."""

    __slots__ = ("name", "kind", "default", "help", "choices", "metavar")

    def __init__(self, name: str, kind: str, default: Any, help: str,
                 choices: Optional[Dict[str, Tuple[int, str]]] = None,
                 metavar: Optional[str] = None) -> None:
        self.name = name          # keyword of install() and field of Config
        self.kind = kind          # size, choice, flag, interval or path
        self.default = default
        self.help = help
        self.choices = choices
        self.metavar = metavar

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def where(self, source: str) -> str:
        """The option's name as `source` spells it: ``size=``, ``BUMP_GLOBAL_SIZE``, ``--size``."""
        return {"env": self.env, "cli": self.flag}.get(source, f"{self.name}=")

    def spell(self, source: str, value: Any) -> str:
        """How the user wrote this option in `source` ("api", "env" or "cli")."""
        if source == "env":
            return f"{self.env}={value!r}"
        if source == "cli":
            if self.kind == "flag":
                return self.flag if value else f"--no-{self.flag[2:]}"
            return f"{self.flag} {value!r}"
        return f"{self.name}={value!r}"

    def check(self, value: Any) -> Any:
        """`value` validated (a typed value, not text); ValueError saying what is accepted."""
        if self.kind == "size":
            return parse_size(value)
        if self.kind == "choice":
            assert self.choices is not None
            return _check_choice(self.name, value, self.choices)
        if self.kind == "flag":
            return _check_bool(self.name, value)
        if self.kind == "interval":
            return None if value is None else _check_interval(self.name, value)
        return None if value is None else _check_path(self.name, value)

    def parse(self, text: str, source: str) -> Any:
        """`text` (from the environment or the command line), validated; OptionError
        naming `source`'s spelling."""
        try:
            if self.kind == "flag":
                return parse_flag(text)
            return self.check(text)
        except ValueError as exc:
            raise OptionError(self.error(source, text, str(exc))) from None

    def error(self, source: str, value: Any, problem: str) -> str:
        if source == "api":
            return problem
        return f"{self.spell(source, value)}: {problem}"

    def describe(self) -> str:
        """The option's help, with its accepted values and default."""
        if self.choices:
            names = ", ".join(self.choices)
            return f"{self.help}: {names} (default: {self.default})"
        if self.kind == "size":
            size, why = default_size()
            return f"{self.help} (default: auto = {format_size(size)}, {why})"
        if self.kind == "flag":
            return f"{self.help} (default: {'on' if self.default else 'off'})"
        return self.help


#: What install() takes, in the order of Config's fields.
INSTALL_OPTIONS = (
    Option("size", "size", DEFAULT_SIZE,
           "region to reserve: bytes or e.g. 512M, 4G, 64GiB, or auto", metavar="SIZE"),
    Option("scope", "choice", DEFAULT_SCOPE, "allocator domains served", SCOPES),
    Option("on_exhausted", "choice", DEFAULT_ON_EXHAUSTED, "when the region is full",
           ON_EXHAUSTED, metavar="POLICY"),
    Option("histogram", "flag", False,
           "count requests per power-of-two size class (in the report)"),
    Option("prefault", "flag", True,
           "a helper thread faults pages in ahead of the bump while a core is idle; "
           "when none is, the program populates each new chunk in one call (Linux)"),
    Option("huge_pages", "flag", False,
           "transparent huge pages over the region once it holds 32 MiB (Linux); off by "
           "default: in shuffled runs they cost 1.3x the CPU of 4 KiB pages, the kernel "
           "compacting memory for them after other programs (docs/performance.md)"),
    Option("gc", "choice", DEFAULT_GC, "the cyclic GC", GC_POLICIES, metavar="POLICY"),
    Option("reclaim", "choice", DEFAULT_RECLAIM, "what free gives back", RECLAIM,
           metavar="POLICY"),
    Option("numpy", "flag", False,
           "serve numpy's array data from the region too (a NEP 49 data handler, "
           "numpy 1.22+), counted exactly in the report"),
)

#: What to report at exit (bump-global run and the environment activation).
SESSION_OPTIONS = (
    Option("report", "flag", False, "print the report to stderr at exit"),
    Option("json", "path", None, "write the report as JSON to FILE at exit (schema "
           "bump_global.report/2: every process of the program)", metavar="FILE"),
    Option("sample", "interval", None, "sample memory every MS milliseconds (needs "
           "--timeline)", metavar="MS"),
    Option("timeline", "path", None, "write the samples to FILE at exit: CSV if it ends in "
           ".csv, else JSON lines", metavar="FILE"),
)

OPTIONS = {option.name: option for option in INSTALL_OPTIONS + SESSION_OPTIONS}


class Config(Record):
    """A validated configuration (what `install` was asked for); immutable.

    Its fields are :data:`INSTALL_OPTIONS`, in order (a test checks it).
    """

    size: int
    scope: str
    on_exhausted: str
    histogram: bool = False
    prefault: bool = True
    huge_pages: bool = False
    gc: str = DEFAULT_GC
    reclaim: str = DEFAULT_RECLAIM
    numpy: bool = False

    @classmethod
    def make(cls, size: SizeLike = DEFAULT_SIZE, scope: str = DEFAULT_SCOPE,
             on_exhausted: str = DEFAULT_ON_EXHAUSTED, histogram: bool = False,
             prefault: bool = True, huge_pages: bool = False, gc: str = DEFAULT_GC,
             reclaim: str = DEFAULT_RECLAIM, numpy: bool = False) -> Config:
        """Validate install()'s arguments; ValueError naming the bad one."""
        return cls.from_values({"size": size, "scope": scope, "on_exhausted": on_exhausted,
                                "histogram": histogram, "prefault": prefault,
                                "huge_pages": huge_pages, "gc": gc, "reclaim": reclaim,
                                "numpy": numpy})

    @classmethod
    def from_values(cls, values: Mapping[str, Any], source: str = "api") -> Config:
        """A Config from typed values (missing ones take their default)."""
        fields = {}
        for option in INSTALL_OPTIONS:
            value = values.get(option.name, option.default)
            try:
                fields[option.name] = option.check(value)
            except ValueError as exc:
                error = ValueError if source == "api" else OptionError
                raise error(option.error(source, value, str(exc))) from None
        return cls(**fields)

    @property
    def scope_code(self) -> int:
        return SCOPES[self.scope][0]

    @property
    def on_exhausted_code(self) -> int:
        return ON_EXHAUSTED[self.on_exhausted][0]

    @property
    def gc_code(self) -> int:
        return GC_POLICIES[self.gc][0]

    @property
    def reclaim_code(self) -> int:
        return RECLAIM[self.reclaim][0]

    def core_arguments(self) -> Tuple[Any, ...]:
        """The policy arguments of the C core's install(), after the region's."""
        return (self.scope_code, self.on_exhausted_code, self.histogram, self.prefault,
                self.huge_pages, self.gc_code, self.reclaim_code)

    @classmethod
    def from_core(cls, config: tuple, numpy: bool = False) -> Config:
        """The configuration ``_core.config()`` reports, decoded (size as installed);
        `numpy` is kept by Python (the numpy handler is its own extension)."""
        _, size, scope, policy, histogram, prefault, huge_pages, gc, reclaim = config
        return cls(size, _name(SCOPES, scope), _name(ON_EXHAUSTED, policy), histogram,
                   prefault, huge_pages, _name(GC_POLICIES, gc), _name(RECLAIM, reclaim),
                   numpy)

    def spell_flag(self, name: str, source: str) -> str:
        """How the user turned flag `name` on: ``numpy=True``, ``BUMP_GLOBAL_NUMPY=1``
        or ``--numpy``."""
        option = OPTIONS[name]
        return {"env": f"{option.env}=1", "cli": option.flag}.get(source, f"{name}=True")

    def describe(self, source: str = "api") -> str:
        """The options that differ from the defaults (size always), as `source` spells them."""
        parts = [f"size={format_size(self.size)} ({self.size} bytes)" if source == "api"
                 else OPTIONS["size"].spell(source, format_size(self.size).replace(" ", ""))]
        for option in INSTALL_OPTIONS[1:]:
            value = getattr(self, option.name)
            if option.name in ("scope", "on_exhausted") or value != option.default:
                parts.append(option.spell(source, value))
        return ", ".join(parts)


def _name(choices: Dict[str, Tuple[int, str]], code: int) -> str:
    return next(name for name, (c, _) in choices.items() if c == code)


class Session(Record):
    """What to report at exit: the values of :data:`SESSION_OPTIONS`."""

    report: bool = False
    json: Optional[str] = None
    sample: Optional[float] = None
    timeline: Optional[str] = None

    @property
    def wanted(self) -> bool:
        """True if anything is to be reported at exit."""
        return self.report or self.json is not None or self.timeline is not None


# ------------------------------------------------------------- environment


def env_enabled(environ: Mapping[str, str]) -> bool:
    """True if ``BUMP_GLOBAL`` asks for the allocator; OptionError for a bad value."""
    value = environ.get(ENV_PREFIX)
    if value is None:
        return False
    try:
        return parse_flag(value)
    except ValueError as exc:
        raise OptionError(f"{ENV_PREFIX}={value!r}: {exc}") from None


def read_environment(environ: Mapping[str, str]) -> Tuple[Dict[str, Any], List[str]]:
    """({option: typed value}, [problems]) for every ``BUMP_GLOBAL_*`` option set."""
    values: Dict[str, Any] = {}
    problems: List[str] = []
    for option in INSTALL_OPTIONS + SESSION_OPTIONS:
        text = environ.get(option.env)
        if text is None:
            continue
        try:
            values[option.name] = option.parse(text, "env")
        except OptionError as exc:
            problems.append(str(exc))
    return values, problems


def check_session(values: Mapping[str, Any], source: str) -> Session:
    """A Session from typed values; OptionError when sample and timeline do not pair."""
    session = Session(**{option.name: values.get(option.name, option.default)
                         for option in SESSION_OPTIONS})
    if (session.sample is None) != (session.timeline is None):
        sample, timeline = OPTIONS["sample"], OPTIONS["timeline"]
        if source == "cli":
            pair = f"{sample.flag} MS and {timeline.flag} FILE"
            example = f"{sample.flag} 10 {timeline.flag} memory.csv"
        else:
            pair = f"{sample.env} and {timeline.env}"
            example = f"{sample.env}=10 {timeline.env}=memory.csv"
        raise OptionError(f"{pair} go together: give both (e.g. {example}) or neither")
    if session.json is not None and session.json == session.timeline:
        raise OptionError("the JSON report and the timeline name the same file: give two files")
    return session


# ------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser, options: Tuple[Option, ...]) -> None:
    """Add `options` to `parser`; every default is None, so what the user set is known."""
    import argparse

    for option in options:
        if option.kind == "flag":
            parser.add_argument(option.flag, dest=option.name, default=None,
                                action=argparse.BooleanOptionalAction,
                                help=option.describe())
        else:
            parser.add_argument(option.flag, dest=option.name, default=None,
                                metavar=option.metavar or option.name.upper(),
                                help=option.describe())


def from_namespace(ns: argparse.Namespace, options: Tuple[Option, ...],
                   defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """{name: typed value} of `options`: the command line's, else `defaults`' (the
    environment's), else the option's default.  OptionError naming the option."""
    values: Dict[str, Any] = {}
    for option in options:
        given = getattr(ns, option.name, None)
        if given is None:
            values[option.name] = defaults.get(option.name, option.default)
        elif option.kind == "flag":
            values[option.name] = given
        else:
            values[option.name] = option.parse(given, "cli")
    return values
