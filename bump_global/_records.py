"""The small immutable records of bump_global: the :class:`Record` base, and what
:func:`bump_global.stats` and :func:`bump_global.memory` return (:class:`Stats`,
:class:`Memory`).

Built on a metaclass instead of dataclasses, so that installing at start-up
(``BUMP_GLOBAL=1``) imports neither dataclasses nor typing.  Imports nothing of
the package at import time.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple


class _RecordType(type):
    """Makes the fields (slots) of a record class: its annotations, in order (a value
    is a default), or, given as ``class C(Record, fields=[(name, default), ...])``,
    a list built elsewhere (bump_global/_config.py builds Config from its options)."""

    def __new__(mcls, name: str, bases: "Tuple[type, ...]", ns: "Dict[str, Any]",
                fields: "Any" = None) -> "_RecordType":
        if fields is None:
            annotations = ns.get("__annotations__")
            if annotations is None:  # 3.14+: the class's annotations are made on demand
                annotate = ns.get("__annotate_func__") or ns.get("__annotate__")
                annotations = annotate(1) if annotate is not None else {}  # 1: VALUE
            names = tuple(f for f in annotations if not f.startswith("_"))
            ns["_defaults"] = {field: ns.pop(field) for field in names if field in ns}
        else:
            names = tuple(field for field, _ in fields)
            ns["_defaults"] = dict(fields)
        ns["_fields"] = names
        ns["__slots__"] = names
        return super().__new__(mcls, name, bases, ns)


class Record(metaclass=_RecordType):
    """An immutable record: no instance dict, so building one allocates little."""

    _fields: "Tuple[str, ...]"
    _defaults: "Dict[str, Any]"

    def __init__(self, *args: "Any", **kwargs: "Any") -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields")
        for name, value in zip(fields, args):
            object.__setattr__(self, name, value)
        for name in fields[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in self._defaults:
                value = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected fields {sorted(kwargs)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _asdict(self) -> "Dict[str, Any]":
        """The fields as a dict, in order."""
        return {name: getattr(self, name) for name in self._fields}

    def replace(self, **changes: "Any") -> "Any":
        """A copy with `changes` to some fields."""
        return type(self)(**{**self._asdict(), **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._asdict() == other._asdict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self._asdict().items()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._asdict().items())
        return f"{type(self).__name__}({fields})"


class Stats(Record):
    """What the allocator has done since it was installed (see :func:`stats`)."""

    base: int
    """Address of the region."""
    reserved: int
    """The region's size: at most this many bytes are handed out (its address
    space is twice that: a small-block area and a large-block area)."""
    used: int
    """Bytes handed out (16-byte rounded), including blocks that were freed,
    except those a ``reclaim`` policy took back."""
    consumed: int
    """Bytes of the region taken by the arenas (used plus unused chunk tails)."""
    committed: int
    """Bytes of the region readable and writable now (all of it on Linux by default)."""
    allocations: int
    """Blocks bumped: malloc, calloc and moved reallocs."""
    frees_ignored: int
    """Frees of region blocks (a no-op)."""
    foreign_frees: int
    """Frees of blocks from before the install, forwarded to the previous allocator
    (frees of fallback blocks are ``fallback_frees``)."""
    foreign_reallocs: int
    """Reallocs of blocks from before the install, forwarded to the previous allocator
    (reallocs of fallback blocks are ``fallback_reallocs``)."""
    reallocs_in_place: int
    """Reallocs of the most recent block, grown or shrunk where it stands."""
    reallocs_moved: int
    """Reallocs that took a new block and copied."""
    bytes_copied: int
    """Bytes copied by moved reallocs."""
    fallback_allocations: int
    """Allocations served by the previous allocator because the region was full."""
    fallback_bytes: int
    """Bytes of those allocations."""
    failed_allocations: int
    """Allocations refused (policy "error", or a size CPython would refuse)."""
    large_allocations: int
    """Blocks placed in the large area (MEM/OBJ blocks of 64 KiB and more)."""
    bytes_released: int
    """Bytes of pages given back to the OS: the whole pages of large blocks that were
    freed or moved."""
    bytes_prefaulted: int
    """Bytes faulted in ahead of the bump (``prefault=True``): by the prefault thread,
    or, while no core is idle, by the program itself, one chunk per call."""
    frees_reclaimed: int
    """Frees that gave their block back (``reclaim`` "last" or "classes")."""
    bytes_reclaimed: int
    """Bytes of those blocks."""
    allocations_reused: int
    """Allocations served from a size class's free list (``reclaim="classes"``)."""
    fallback_frees: int
    """Frees of fallback blocks (served by the previous allocator after the region
    filled), forwarded to the previous allocator; not in ``foreign_frees``."""
    fallback_reallocs: int
    """Reallocs of fallback blocks, forwarded to the previous allocator."""
    fallback_untracked: int
    """Fallback blocks that could not be tracked (the OS refused memory for the
    set that tracks them): their frees and reallocs count as foreign ones."""
    samples: int
    """Allocations sampled so far (``sites=True``: each is recorded with its stack)."""
    config: "Any"
    """The installed configuration (a ``Config``: every install option).  Its fields
    read as attributes of the Stats too: ``stats().reclaim``, ``stats().scope``."""
    histogram: "Optional[Tuple[Tuple[int, int, int], ...]]" = None
    """With ``install(histogram=True)``: ``(upper_bound, count, bytes)`` per
    power-of-two size class of the requests (malloc, calloc and realloc sizes;
    class ``2**k`` holds sizes in ``(2**(k-1), 2**k]``, class 1 the 1-byte requests,
    class 0 the 0-byte requests), non-empty classes only."""

    def _asdict(self) -> "Dict[str, Any]":
        """The fields as a dict, in order, with the install options of :attr:`config`
        in place of it (all but ``size``, which is ``reserved``, and ``histogram``,
        which here holds the rows): what a JSON dump of the Stats needs."""
        result = super()._asdict()
        config = result.pop("config")
        histogram = result.pop("histogram")
        for name, value in config._asdict().items():
            if name not in ("size", "histogram"):
                result[name] = value
        result["histogram"] = histogram
        return result

    def __getattr__(self, name: str) -> "Any":
        """An install option, from :attr:`config` (``stats().reclaim``)."""
        if name.startswith("_") or name in type(self)._fields:
            raise AttributeError(name)
        try:
            return getattr(self.config, name)
        except AttributeError:
            raise AttributeError(f"'Stats' object has no attribute {name!r}") from None

    @property
    def address_space(self) -> int:
        """Bytes of address space reserved: the small area (with the emergency
        reserve of on_exhausted="error"), then the large area."""
        from bump_global import _core

        return 2 * self.reserved + _core.EMERGENCY_RESERVE

    def contains(self, address: int) -> bool:
        """True if `address` (e.g. ``id(obj)``) lies in the region (either area)."""
        return self.base <= address < self.base + self.address_space

    @property
    def available(self) -> int:
        """Bytes of the region never handed to an arena."""
        return self.reserved - self.consumed


class Memory(Record):
    """Process and region memory, in bytes (see :func:`memory`)."""

    rss: int
    """Resident set size of the process now."""
    peak_rss: "Optional[int]"
    """Highest resident set size so far, None where unknown."""
    region_resident: "Optional[int]"
    """Resident bytes of the region; None if not installed or unknown here."""
