"""Every option of bump_global, defined, validated, defaulted and described once.

An option is one :class:`Option` in :data:`INSTALL_OPTIONS` (what
:func:`bump_global.install` takes) or :data:`SESSION_OPTIONS` (what to report at
exit: ``bump-global run --report/--json/...`` and the ``BUMP_GLOBAL_REPORT...``
variables).  Everything else derives from that one entry: its keyword and
``Config`` field (the name), its environment variable (``BUMP_GLOBAL_`` + the
name in capitals), its command-line flag (``--`` + the name with dashes), its
validation (its kind, and its choices), its default, its help text (the CLI's
``--help`` and :func:`bump_global.install`'s docstring) and the value the C core
receives, by name (:meth:`Config.engine_options`).  Adding an install option is
adding one entry here and its keyword to :func:`bump_global.install`; if the
engine needs it, its field, parsing and use in the C core (core/install.c).

An option is set in one of three places, and its errors name the spelling the
user wrote:

============  ======================  ===================  =====================
where         example                 ``source``           error names
============  ======================  ===================  =====================
Python API    ``install(size="4G")``  ``"api"``            ``size='4G'``
environment   ``BUMP_GLOBAL_SIZE=4G`` ``"env"``            ``BUMP_GLOBAL_SIZE='4G'``
command line  ``run --size 4G``       ``"cli"``            ``--size '4G'``
============  ======================  ===================  =====================

Also here: the sizes the options take (:func:`parse_size`, :func:`parse_bytes`,
:func:`format_size`) and what the default size is half of (:func:`memory_limit`).

``BUMP_GLOBAL=1`` start-up (bump_global/_startup.py) reads the defaults from
here, so this module imports nothing beyond the record base and what every
interpreter start-up has (no re, typing, dataclasses or __future__: annotations
are strings).
"""

import os
import sys

from bump_global._records import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import argparse
    from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

    SizeLike = Union[int, str]

ENV_PREFIX = "BUMP_GLOBAL"
TRUE_VALUES = ("1", "true", "yes", "on")
#: The test in bump_global_activate.pth skips these without importing anything.
FALSE_VALUES = ("", "0", "false", "no", "off")

#: Smallest region accepted (MIN_SIZE in the C core, core/internal.h, exported as
#: _core.MIN_SIZE; tests/test_core_layout.py checks that they agree): what the
#: interpreter allocates after the install must fit, or a program under
#: on_exhausted="error" fails at once.  scripts/min_size.py measures it per version
#: (9 MiB at most: install() then report() on 3.15); this leaves room for more.
MIN_SIZE = 16 << 20
#: Upper bound of the automatic default size, whatever the machine.
AUTO_SIZE_MAX = 1 << 40
#: The default size where the machine's memory is unknown.
UNKNOWN_MEMORY_SIZE = 16 << 30

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_UNITS_HELP = "units B, K, M, G, T, with optional 'B' or 'iB'; all are powers of 1024"
_SIZE_HELP = (f"expected a number of bytes or a string such as '512M', '4G', '64GiB' "
              f"({_UNITS_HELP}), or 'auto'")
_FLAG_HELP = "expected 1, true, yes or on (enable), or 0, false, no, off or empty (disable)"


def _error(message: str) -> Exception:
    from bump_global._errors import OptionError

    return OptionError(message)


# ------------------------------------------------------------------ sizes


def parse_bytes(value: "SizeLike", what: str = "size", minimum: int = 0) -> int:
    """`value` (an int, or a string such as ``"512K"``, ``"1.5 MiB"``) in bytes.

    Units are binary: ``K``, ``KB`` and ``KiB`` all mean 1024 bytes; ``_`` may
    separate digits.  Raises ValueError naming `what` and saying what is
    accepted; values below `minimum` are refused.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid {what} {value!r}: expected an int or a size such as "
                         f"'512K', '10 MB' ({_UNITS_HELP})")
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().replace("_", "")
        digits = len(text) - len(text.lstrip("0123456789."))
        head, unit = text[:digits], text[digits:].strip().lower()
        if (unit not in _UNITS or head.count(".") > 1 or head.strip(".") == ""
                or not head.isascii()):
            raise ValueError(f"invalid {what} {value!r}: expected an int or a size such as "
                             f"'512K', '10 MB' ({_UNITS_HELP})")
        scale = _UNITS[unit]
        number = int(float(head) * scale) if "." in head else int(head) * scale
    if number < minimum:
        raise ValueError(f"invalid {what} {value!r}: expected at least {minimum:,}")
    if number >= 1 << 62:
        raise ValueError(f"invalid {what} {value!r}: too large for an address space")
    return number


def parse_size(value: "SizeLike") -> int:
    """`value` (an int of bytes or a string such as ``"4G"``) in bytes, as a region size.

    Units are binary: ``K``, ``KB`` and ``KiB`` all mean 1024 bytes.  ``"auto"``
    gives :func:`default_size`.  Raises ValueError, saying what is accepted,
    for anything else.
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return default_size()[0]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}")
    try:
        size = parse_bytes(value)
    except ValueError as exc:
        if "too large" in str(exc):
            raise
        raise ValueError(f"invalid size {value!r}: {_SIZE_HELP}") from None
    if size < MIN_SIZE:
        raise ValueError(
            f"invalid size {value!r}: the region must be at least {MIN_SIZE >> 20}M "
            f"({MIN_SIZE} bytes): smaller ones cannot hold what the interpreter allocates "
            "after the install; the default is half of physical memory ('auto')"
        )
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


# ---------------------------------------------------- the default size


def auto_size(limit: int) -> int:
    """The default region size for `limit` bytes of memory: half, rounded down to
    a MiB, between MIN_SIZE and AUTO_SIZE_MAX."""
    return max(MIN_SIZE, min(AUTO_SIZE_MAX, (limit // 2) >> 20 << 20))


def _read_bytes(path: str, limit: int) -> "Optional[bytes]":
    """Up to `limit` bytes of `path`, or None.  os.open/os.read: no io objects and
    no codec, so reading the default size costs start-up little."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_int(path: str) -> "Optional[int]":
    data = _read_bytes(path, 64)
    text = data.strip() if data is not None else b""
    return int(text) if text.isdigit() else None


def _cgroup_limit_files() -> "List[str]":
    """memory.max (cgroup v2) or memory.limit_in_bytes (v1) of this process's cgroup."""
    data = _read_bytes("/proc/self/cgroup", 1 << 16)
    if data is None:
        return []
    files = []
    for line in data.decode("ascii", "replace").splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            files.append(f"/sys/fs/cgroup{path}/memory.max")
        elif "memory" in controllers.split(","):
            files.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    return files


def memory_limit() -> "Tuple[Optional[int], str]":
    """(bytes, where from) of the memory this process may use: the machine's
    physical memory, or its cgroup's limit when that is lower (containers);
    (None, why) where neither can be read."""
    physical = None
    if hasattr(os, "sysconf"):
        try:
            physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            physical = None
    if physical is None or physical <= 0:
        try:
            import psutil

            physical = int(psutil.virtual_memory().total)
        except Exception:  # psutil missing or unable: no figure
            return None, "physical memory unknown"
    limit, source = physical, "physical memory"
    if sys.platform.startswith("linux"):
        for path in _cgroup_limit_files():
            value = _read_int(path)
            if value is not None and 0 < value < limit:
                limit, source = value, "the cgroup's memory limit"
    return limit, source


_default_size: "Optional[Tuple[int, str]]" = None


def default_size() -> "Tuple[int, str]":
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


# ------------------------------------------------------------- options


class Option:
    """One option: its name in each place, its kind and choices (its validation), its
    default, its description, and whether the C core reads it."""

    __slots__ = ("name", "kind", "default", "help", "choices", "metavar", "engine")

    def __init__(self, name: str, kind: str, default: "Any", help: str,
                 choices: "Optional[Dict[str, Tuple[int, str]]]" = None,
                 metavar: "Optional[str]" = None, engine: bool = False) -> None:
        self.name = name          # keyword of install() and field of Config
        self.kind = kind          # size, bytes, choice, flag, interval or path
        self.default = default
        self.help = help
        self.choices = choices    # name -> (the C core's code, description)
        self.metavar = metavar
        self.engine = engine      # the C core reads it at install (core/install.c)

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def where(self, source: str) -> str:
        """The option's name as `source` spells it: ``size=``, ``BUMP_GLOBAL_SIZE``, ``--size``."""
        return {"env": self.env, "cli": self.flag}.get(source, f"{self.name}=")

    def spell(self, source: str, value: "Any") -> str:
        """How the user wrote this option in `source` ("api", "env" or "cli")."""
        if source == "env":
            return f"{self.env}={value!r}"
        if source == "cli":
            if self.kind == "flag":
                return self.flag if value else f"--no-{self.flag[2:]}"
            return f"{self.flag} {value!r}"
        return f"{self.name}={value!r}"

    def spell_on(self, source: str) -> str:
        """How the user turned this flag on: ``numpy=True``, ``BUMP_GLOBAL_NUMPY=1``
        or ``--numpy``."""
        return {"env": f"{self.env}=1", "cli": self.flag}.get(source, f"{self.name}=True")

    def check(self, value: "Any") -> "Any":
        """`value` validated (a typed value, not text); ValueError saying what is accepted."""
        if self.kind == "size":
            return parse_size(value)
        if self.kind == "bytes":
            return parse_bytes(value, "rate" if self.name.endswith("rate") else "size", 1)
        if self.kind == "choice":
            assert self.choices is not None
            if not isinstance(value, str) or value not in self.choices:
                accepted = ", ".join(f"{name!r} ({desc})"
                                     for name, (_, desc) in self.choices.items())
                raise ValueError(f"invalid {self.name} {value!r}: expected one of {accepted}")
            return value
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise ValueError(f"invalid {self.name} {value!r}: expected True or False")
            return value
        if value is None:
            return None
        if self.kind == "interval":
            try:
                interval = float(value)
            except (TypeError, ValueError):
                interval = float("nan")
            if isinstance(value, bool) or not (0 < interval < float("inf")):
                raise ValueError(f"invalid interval {value!r}: expected a positive number of "
                                 "milliseconds, e.g. 10")
            return interval
        if not isinstance(value, str) or not value:
            raise ValueError(f"invalid file name {value!r}: expected a path")
        return value

    def parse(self, text: str, source: str) -> "Any":
        """`text` (from the environment or the command line), validated; OptionError
        naming `source`'s spelling."""
        try:
            if self.kind == "flag":
                return parse_flag(text)
            return self.check(text)
        except ValueError as exc:
            raise _error(self.error(source, text, str(exc))) from None

    def error(self, source: str, value: "Any", problem: str) -> str:
        if source == "api":
            return problem
        return f"{self.spell(source, value)}: {problem}"

    def describe(self) -> str:
        """The option's help, with its accepted values and default."""
        if self.choices:
            return f"{self.help}: {', '.join(self.choices)} (default: {self.default})"
        if self.kind == "size":
            size, why = default_size()
            return f"{self.help} (default: auto = {format_size(size)}, {why})"
        if self.kind == "bytes":
            return f"{self.help} (default: {format_size(self.default)})"
        if self.kind == "flag":
            return f"{self.help} (default: {'on' if self.default else 'off'})"
        return self.help

    def to_engine(self, value: "Any") -> "Any":
        """`value` as the C core receives it: a choice's code, else the value."""
        return self.choices[value][0] if self.choices else value

    def from_engine(self, value: "Any") -> "Any":
        """A value the C core gave back, named (a choice's code becomes its name)."""
        if self.choices:
            return next(name for name, (code, _) in self.choices.items() if code == value)
        return value


#: scope name -> (code shared with the C core, description).
SCOPES = {
    "objects": (1, "OBJ domain only (PyObject_Malloc: Python objects)"),
    "python": (2, "RAW + MEM + OBJ: everything Python allocates"),
    "raw": (3, "RAW domain only (PyMem_RawMalloc); the one scope of free-threaded builds"),
}

#: gc policy name -> (code, description); applied by Python (bump_global/_gc.py).
GC_POLICIES = {
    "keep": (1, "CPython's cyclic GC as configured"),
    "relaxed": (2, "young collections 10 times rarer, and full ones; finalizers of cyclic "
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

#: on_exhausted policy name -> (code shared with the C core, description).
ON_EXHAUSTED = {
    "fallback": (1, "the previous allocator serves the request; the program keeps running"),
    "error": (2, "the allocation fails and Python raises MemoryError, once: the unwinding "
                 "after it is served by the previous allocator, up to 64 MiB"),
}

#: What install() takes, in the order of Config's fields.
INSTALL_OPTIONS = (
    Option("size", "size", "auto",
           "the budget: bytes or e.g. 512M, 4G, 64GiB, or auto (half of this machine's "
           "memory, or of its cgroup's limit, shared by the program's processes); address "
           "space is reserved, memory is used only as it is handed out", metavar="SIZE"),
    Option("scope", "choice", "python", "allocator domains served", SCOPES, engine=True),
    Option("on_exhausted", "choice", "fallback", "when the region is full", ON_EXHAUSTED,
           metavar="POLICY", engine=True),
    Option("histogram", "flag", False,
           "count requests per power-of-two size class (in the report)", engine=True),
    Option("prefault", "flag", True,
           "a helper thread faults pages in ahead of the bump while a core is idle; "
           "when none is, the program populates each new chunk in one call (Linux)",
           engine=True),
    Option("huge_pages", "flag", False,
           "transparent huge pages over the region once it holds 32 MiB (Linux); off by "
           "default: in shuffled runs they cost 1.3x the CPU of 4 KiB pages, the kernel "
           "compacting memory for them after other programs (docs/performance.md)",
           engine=True),
    Option("gc", "choice", "relaxed", "the cyclic GC, which gives a bump allocator no memory "
           "back", GC_POLICIES, metavar="POLICY"),
    Option("reclaim", "choice", "none", "what free gives back", RECLAIM, metavar="POLICY",
           engine=True),
    Option("numpy", "flag", False,
           "serve numpy's array data from the region too (a NEP 49 data handler, "
           "numpy 1.22+), counted exactly in the report"),
    Option("sites", "flag", False,
           "sample allocations by bytes and record the Python stack of each sample: the "
           "report's top allocation sites and the flame graph (docs/sites.md)"),
    Option("sites_rate", "bytes", 256 << 10,
           "with sites: mean bytes between two samples (exponentially distributed)",
           metavar="BYTES"),
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
    Option("flamegraph", "path", None, "write a flame graph of the allocation sites to FILE "
           "at exit (HTML; .folded or .json: collapsed stacks or speedscope); turns sites "
           "on", metavar="FILE"),
)

OPTIONS = {option.name: option for option in INSTALL_OPTIONS + SESSION_OPTIONS}


def engine_options(values: "Optional[Mapping[str, Any]]" = None) -> "Dict[str, Any]":
    """Every install option but the size, as the C core's install() receives them by
    name (a choice as its code): `values`' (validated), else the defaults."""
    values = values or {}
    return {option.name: option.to_engine(values.get(option.name, option.default))
            for option in INSTALL_OPTIONS[1:]}


class Config(Record, fields=[(o.name, o.default) for o in INSTALL_OPTIONS]):
    """A validated configuration (what `install` was asked for); immutable.

    Its fields are :data:`INSTALL_OPTIONS`, in order."""

    @classmethod
    def from_values(cls, values: "Mapping[str, Any]",
                    sources: "Union[str, Mapping[str, str]]" = "api") -> "Config":
        """A Config from typed values; a missing or None value takes its default.
        ValueError (from the API) or OptionError naming the bad one as its source
        spells it (`sources`: one for all, or one per option name)."""
        fields = {}
        for option in INSTALL_OPTIONS:
            source = sources if isinstance(sources, str) else sources.get(option.name, "api")
            value = values.get(option.name)
            if value is None:
                value = option.default
            try:
                fields[option.name] = option.check(value)
            except ValueError as exc:
                if source == "api":
                    raise ValueError(str(exc)) from None
                raise _error(option.error(source, value, str(exc))) from None
        return cls(**fields)

    def engine_options(self) -> "Dict[str, Any]":
        """The options but the size, by name, as the C core's install() receives them."""
        return engine_options(self._asdict())

    @classmethod
    def from_engine(cls, installed: "Mapping[str, Any]") -> "Config":
        """The configuration ``_core.config()`` gives back (size as installed), named."""
        return cls(**{option.name: option.from_engine(installed[option.name])
                      for option in INSTALL_OPTIONS})

    def describe(self, source: str = "api") -> str:
        """The options that differ from the defaults (size, scope, on_exhausted always),
        as `source` spells them."""
        parts = [f"size={format_size(self.size)} ({self.size} bytes)" if source == "api"
                 else OPTIONS["size"].spell(source, format_size(self.size).replace(" ", ""))]
        for option in INSTALL_OPTIONS[1:]:
            value = getattr(self, option.name)
            if option.name in ("scope", "on_exhausted") or value != option.default:
                parts.append(option.spell(source, value))
        return ", ".join(parts)


class ReportOptions(Record, fields=[(o.name, o.default) for o in SESSION_OPTIONS]):
    """What to report at exit: the values of :data:`SESSION_OPTIONS`."""

    @property
    def wanted(self) -> bool:
        """True if anything is to be reported at exit."""
        return bool(self.report or self.json is not None or self.timeline is not None
                    or self.flamegraph is not None)


def install_docstring(head: str) -> str:
    """`head` followed by every install option's description (install()'s docstring)."""
    lines = [head.rstrip(), "", "Options (None: the default):"]
    for option in INSTALL_OPTIONS:
        lines.append(f"    `{option.name}`: {option.describe()}.")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------- environment


def env_enabled(environ: "Mapping[str, str]") -> bool:
    """True if ``BUMP_GLOBAL`` asks for the allocator; OptionError for a bad value."""
    value = environ.get(ENV_PREFIX)
    if value is None:
        return False
    try:
        return parse_flag(value)
    except ValueError as exc:
        raise _error(f"{ENV_PREFIX}={value!r}: {exc}") from None


def read_environment(environ: "Mapping[str, str]") -> "Tuple[Dict[str, Any], List[str]]":
    """({option: typed value}, [problems]) for every ``BUMP_GLOBAL_*`` option set."""
    values: "Dict[str, Any]" = {}
    problems: "List[str]" = []
    for option in INSTALL_OPTIONS + SESSION_OPTIONS:
        text = environ.get(option.env)
        if text is None:
            continue
        try:
            values[option.name] = option.parse(text, "env")
        except ValueError as exc:
            problems.append(str(exc))
    return values, problems


def export_environment(config: Config, environ: "Dict[str, str]") -> None:
    """Set ``BUMP_GLOBAL=1`` and every install option's variable in `environ`, so that
    the program's Python children install the same configuration."""
    environ[ENV_PREFIX] = "1"
    for option in INSTALL_OPTIONS:
        value = getattr(config, option.name)
        environ[option.env] = ("1" if value else "0") if option.kind == "flag" else str(value)


def check_report_options(values: "Mapping[str, Any]", source: str) -> ReportOptions:
    """ReportOptions from typed values; OptionError when sample and timeline do not pair
    or two outputs name the same file."""
    options = ReportOptions(**{option.name: values.get(option.name, option.default)
                               for option in SESSION_OPTIONS})
    if (options.sample is None) != (options.timeline is None):
        sample, timeline = OPTIONS["sample"], OPTIONS["timeline"]
        if source == "cli":
            pair = f"{sample.flag} MS and {timeline.flag} FILE"
            example = f"{sample.flag} 10 {timeline.flag} memory.csv"
        else:
            pair = f"{sample.env} and {timeline.env}"
            example = f"{sample.env}=10 {timeline.env}=memory.csv"
        raise _error(f"{pair} go together: give both (e.g. {example}) or neither")
    files = [(name, getattr(options, name)) for name in ("json", "timeline", "flamegraph")
             if getattr(options, name) is not None]
    for i, (name, path) in enumerate(files):
        for other, other_path in files[i + 1:]:
            if os.path.abspath(path) == os.path.abspath(other_path):
                raise _error(f"{OPTIONS[name].where(source)} and {OPTIONS[other].where(source)}"
                             f" name the same file {path!r}: give two files")
    return options


# ------------------------------------------------------------ command line


def add_arguments(parser: "argparse.ArgumentParser", options: "Tuple[Option, ...]") -> None:
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


def from_namespace(ns: "argparse.Namespace", options: "Tuple[Option, ...]",
                   environment: "Mapping[str, Any]"
                   ) -> "Tuple[Dict[str, Any], Dict[str, str]]":
    """({name: typed value}, {name: where it came from}) of `options`: the command
    line's ("cli"), else `environment`'s ("env"), else the option's default
    ("default").  OptionError naming the option."""
    values: "Dict[str, Any]" = {}
    sources: "Dict[str, str]" = {}
    for option in options:
        given = getattr(ns, option.name, None)
        if given is None:
            values[option.name] = environment.get(option.name, option.default)
            sources[option.name] = "env" if option.name in environment else "default"
        else:
            values[option.name] = given if option.kind == "flag" else option.parse(given, "cli")
            sources[option.name] = "cli"
    return values, sources


def value_options() -> "Tuple[str, ...]":
    """The flags of the options that take a value (``run``'s argument splitting)."""
    return tuple(o.flag for o in INSTALL_OPTIONS + SESSION_OPTIONS if o.kind != "flag")

