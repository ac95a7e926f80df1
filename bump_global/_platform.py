"""What this machine and interpreter allow: the facts behind ``bump-global info``."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple

from bump_global._config import default_size, format_size, memory_limit


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
    import re
    import sysconfig

    from bump_global._version import __version__

    rows: List[Tuple[str, Any, str]] = []

    def add(key: str, value: Any, text: Optional[str] = None) -> None:
        rows.append((key, value, str(value) if text is None else text))

    add("bump_global", __version__)
    add("platform", platform.platform())
    add("python", platform.python_version())
    add("implementation", f"{platform.python_implementation()} ({sys.implementation.name})")
    add("build", "free-threaded (only scope=\"raw\": its MEM and OBJ domains stay mimalloc's)"
        if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL")
    add("pythonmalloc", _pythonmalloc())
    add("page_size", mmap.PAGESIZE, f"{mmap.PAGESIZE} bytes")
    limit, source = memory_limit()
    add("memory", limit, f"{format_size(limit)} ({source})" if limit else source)
    size, why = default_size()
    shared = ", shared by the processes of a program" if sys.platform.startswith("linux") else ""
    add("default_size", size, f"{format_size(size)} ({why}{shared}); --size or "
                              "BUMP_GLOBAL_SIZE sets another, per process")
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
    from bump_global._launch import find_preload_libraries

    libraries: Dict[str, Any] = dict(find_preload_libraries())
    for name in ("jemalloc", "mimalloc"):
        path = libraries.get(name)
        add(name, path, "not found" if path is None else str(path))
    return rows
