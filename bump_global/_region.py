"""Reserving the region: the only platform-specific Python in bump_global.

POSIX: a private anonymous ``mmap`` made with Python's own ``mmap`` module.  A
private mapping keeps parent and child of ``fork()`` apart; a shared one (the
module's default) would hand both the same pages while each keeps its own bump
offset.  ``MAP_NORESERVE`` (its value differs per platform; Python exposes it
only from 3.13) lets a reservation far above RAM succeed under Linux's default
overcommit mode.  Where the system still refuses (strict overcommit,
``vm.overcommit_memory=2``, ignores ``MAP_NORESERVE``), the region is mapped
``PROT_NONE`` (never charged) and the C core commits it in steps with
``mprotect`` as it fills.  The C core pins the mapping when it installs: it
holds a buffer export on the mmap object for the life of the process, so
``close()`` is refused and the object is never deallocated, not even at
interpreter shutdown.  Nothing here imports ctypes: installing at start-up
stays cheap.

Windows: ``VirtualAlloc`` through ctypes reserves the region (``MEM_RESERVE``)
and commits a first step; the C core commits further steps (``MEM_COMMIT``) as
it fills, because committing charges RAM plus pagefile up front.
"""

from __future__ import annotations

import mmap
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:
    from typing import Any, Callable, Optional

#: Bytes committed at a time when the region cannot be committed at once.
COMMIT_STEP = 64 << 20

# Linux's MAP_NORESERVE differs by architecture; Python exposes it from 3.13.
_LINUX_NORESERVE = {"mips": 0x0400, "ppc": 0x40, "powerpc": 0x40, "sparc": 0x40, "alpha": 0x10000}

# Windows constants (winnt.h).
MEM_COMMIT = 0x1000
MEM_RESERVE = 0x2000
PAGE_NOACCESS = 0x01
PAGE_READWRITE = 0x04


class ReserveError(OSError):
    """The operating system refused the reservation."""


class Reservation:
    """A reserved region, as handed to the C core."""

    __slots__ = ("base", "size", "committed", "commit_step", "method", "mapping")

    def __init__(self, base: int, size: int, committed: int, commit_step: int, method: str,
                 mapping: Any = None) -> None:
        self.base = base  # address
        self.size = size  # bytes
        self.committed = committed  # bytes from base readable and writable now
        self.commit_step = commit_step  # 0 when everything is committed
        self.method = method  # how it was reserved, for reports
        self.mapping = mapping  # the mmap object (POSIX), pinned by the core at install


def granularity() -> int:
    """The unit in which regions are reserved (page, or 64 KiB on Windows)."""
    return 64 << 10 if sys.platform == "win32" else mmap.PAGESIZE


def round_size(size: int) -> int:
    g = granularity()
    return (size + g - 1) // g * g


def map_noreserve() -> int:
    """The MAP_NORESERVE flag of this platform, or 0 where it has none we trust."""
    flag = getattr(mmap, "MAP_NORESERVE", None)
    if flag is not None:
        return int(flag)
    if not sys.platform.startswith("linux"):
        # macOS defines it (0x40) but ignores it and overcommits anyway; BSDs drop it.
        return 0
    machine = os.uname().machine.lower()
    for prefix, value in _LINUX_NORESERVE.items():
        if machine.startswith(prefix):
            return value
    return 0x4000


def _address(mapping: Any) -> int:
    from bump_global import _core

    return _core.buffer_address(mapping)


def reserve_posix(size: int, incremental: bool = False,
                  mmap_fn: Callable[..., Any] = mmap.mmap,
                  address: Callable[[Any], int] = _address) -> Reservation:
    """Reserve `size` bytes (already rounded) with a private anonymous mmap.

    With `incremental`, or when a fully committed mapping is refused, the
    region is mapped PROT_NONE and committed by the core in COMMIT_STEP steps.
    """
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | map_noreserve()
    errors = []
    if not incremental:
        try:
            mapping = mmap_fn(-1, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            errors.append(exc)
        else:
            return Reservation(address(mapping), size, size, 0, "mmap", mapping)
    try:
        mapping = mmap_fn(-1, size, flags=flags, prot=0)  # PROT_NONE: not charged
    except OSError as exc:
        errors.append(exc)
        reasons = []
        for error in errors:
            reason = str(error.strerror or error)
            if reason not in reasons:
                reasons.append(reason)
        raise ReserveError(exc.errno, "; ".join(reasons)) from exc
    return Reservation(address(mapping), size, 0, COMMIT_STEP, "mmap+mprotect", mapping)


def reserve_windows(size: int, kernel32: Any = None) -> Reservation:
    """Reserve `size` bytes with VirtualAlloc and commit the first step."""
    import ctypes

    if kernel32 is None:
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    virtual_alloc = kernel32.VirtualAlloc
    # restype matters: the default c_int would truncate a 64-bit address.
    virtual_alloc.restype = ctypes.c_void_p
    virtual_alloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_uint32]
    base = virtual_alloc(None, size, MEM_RESERVE, PAGE_NOACCESS)
    if not base:
        err = ctypes.get_last_error()  # type: ignore[attr-defined]
        raise ReserveError(err, f"VirtualAlloc(MEM_RESERVE) failed, error {err}")
    first = min(size, COMMIT_STEP)
    if not virtual_alloc(base, first, MEM_COMMIT, PAGE_READWRITE):
        err = ctypes.get_last_error()  # type: ignore[attr-defined]
        raise ReserveError(err, f"VirtualAlloc(MEM_COMMIT) failed, error {err}")
    return Reservation(base, size, first, COMMIT_STEP, "VirtualAlloc")


def reserve(size: int, incremental: Optional[bool] = None) -> Reservation:
    """Reserve a region of at least `size` bytes for the life of the process."""
    size = round_size(size)
    if sys.platform == "win32":
        return reserve_windows(size)
    if incremental is None:
        incremental = os.environ.get("BUMP_GLOBAL_COMMIT") == "incremental"
    return reserve_posix(size, incremental)
