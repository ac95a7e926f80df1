"""Configuration of bump_global: sizes, scopes and policies, validated once.

Everything here is pure Python with no side effect, so the CLI and the
environment activation can validate input before anything is installed.  It
imports nothing beyond what every interpreter start-up has (no re, typing or
dataclasses): ``BUMP_GLOBAL=1`` installs through it at start-up.
"""

from __future__ import annotations

from bump_global._records import _Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Union

    SizeLike = Union[int, str]

DEFAULT_SIZE = "16G"  # address space only: pages are used as they are handed out
DEFAULT_SCOPE = "python"
DEFAULT_ON_EXHAUSTED = "fallback"

#: Smallest region accepted: one chunk of the GIL arena (see _core.c).
MIN_SIZE = 1 << 20

#: Address space kept beyond `size` for on_exhausted="error" (EMERGENCY_RESERVE in _core.c).
EMERGENCY_RESERVE = 4 << 20

#: scope name -> (code shared with _core.c, description).
SCOPES = {
    "objects": (1, "OBJ domain only (PyObject_Malloc: Python objects)"),
    "python": (2, "RAW + MEM + OBJ: everything Python allocates"),
    "raw": (3, "RAW domain only (PyMem_RawMalloc); the one scope of free-threaded builds"),
}

#: gc policy name -> (code kept by _core.c, description).
GC_POLICIES = {
    "keep": (1, "CPython's cyclic GC as configured"),
    "relaxed": (2, "collections 10 times rarer (young and full); finalizers of cyclic "
                   "garbage run later"),
    "off": (3, "gc.disable(): cyclic garbage is never collected, its finalizers never run"),
}
DEFAULT_GC = "relaxed"  # chosen from docs/benchmarks.md: see the README

#: reclaim policy name -> (code shared with _core.c, description).
RECLAIM = {
    "none": (0, "free gives nothing back: every block is fresh memory (bump allocation)"),
    "last": (1, "freeing the most recent block moves the bump pointer back to it"),
    "classes": (2, "blocks up to 32 KiB in size classes with free lists, reused like "
                   "pymalloc's; freed large blocks give their pages back"),
}
DEFAULT_RECLAIM = "none"

#: policy name -> (code shared with _core.c, description).
ON_EXHAUSTED = {
    "fallback": (1, "the previous allocator serves the request; the program keeps running"),
    "error": (2, "the allocation fails and Python raises MemoryError"),
}

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_SIZE_HELP = (
    "expected a number of bytes or a string such as '512M', '4G', '64GiB' "
    "(units B, K, M, G, T, with optional 'B' or 'iB'; all are powers of 1024)"
)


def parse_size(value: SizeLike) -> int:
    """Return `value` (an int of bytes or a string such as ``"4G"``) in bytes.

    Units are binary: ``K``, ``KB`` and ``KiB`` all mean 1024 bytes.
    Raises ValueError, saying what is accepted, for anything else.
    """
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
            f"({MIN_SIZE} bytes); the default is {DEFAULT_SIZE}"
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


def _check_choice(kind: str, value: object, choices: dict[str, tuple[int, str]]) -> str:
    if not isinstance(value, str) or value not in choices:
        accepted = ", ".join(f"{name!r} ({desc})" for name, (_, desc) in choices.items())
        raise ValueError(f"invalid {kind} {value!r}: expected one of {accepted}")
    return value


class Config(_Record):
    """A validated configuration (what `install` was asked for); immutable."""

    size: int
    scope: str
    on_exhausted: str
    histogram: bool = False
    prefault: bool = True
    huge_pages: bool = True
    gc: str = DEFAULT_GC
    reclaim: str = DEFAULT_RECLAIM

    @classmethod
    def make(cls, size: SizeLike, scope: str, on_exhausted: str, histogram: bool = False,
             prefault: bool = True, huge_pages: bool = True, gc: str = DEFAULT_GC,
             reclaim: str = DEFAULT_RECLAIM) -> Config:
        for name, flag in (("histogram", histogram), ("prefault", prefault),
                           ("huge_pages", huge_pages)):
            if not isinstance(flag, bool):
                raise ValueError(f"invalid {name} {flag!r}: expected True or False")
        return cls(
            size=parse_size(size),
            scope=_check_choice("scope", scope, SCOPES),
            on_exhausted=_check_choice("on_exhausted", on_exhausted, ON_EXHAUSTED),
            histogram=histogram,
            prefault=prefault,
            huge_pages=huge_pages,
            gc=_check_choice("gc", gc, GC_POLICIES),
            reclaim=_check_choice("reclaim", reclaim, RECLAIM),
        )

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

    @classmethod
    def from_core(cls, config: tuple) -> Config:
        """The configuration ``_core.config()`` reports, decoded (size as installed)."""
        _, size, scope, policy, histogram, prefault, huge_pages, gc, reclaim = config
        return cls(size, _name(SCOPES, scope), _name(ON_EXHAUSTED, policy), histogram,
                   prefault, huge_pages, _name(GC_POLICIES, gc), _name(RECLAIM, reclaim))

    def describe(self) -> str:
        return (
            f"size={format_size(self.size)} ({self.size} bytes), scope={self.scope!r}, "
            f"on_exhausted={self.on_exhausted!r}"
            + (", histogram=True" if self.histogram else "")
            + ("" if self.prefault else ", prefault=False")
            + ("" if self.huge_pages else ", huge_pages=False")
            + ("" if self.gc == DEFAULT_GC else f", gc={self.gc!r}")
            + ("" if self.reclaim == DEFAULT_RECLAIM else f", reclaim={self.reclaim!r}")
        )


def _name(choices: dict[str, tuple[int, str]], code: int) -> str:
    return next(name for name, (c, _) in choices.items() if c == code)
