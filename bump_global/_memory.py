"""Process memory figures: this process's own RSS and peak RSS."""

from __future__ import annotations

import sys
from typing import Optional, Tuple


def _linux_status() -> Optional[Tuple[int, int]]:
    """(VmRSS, VmHWM) in bytes from /proc/self/status, or None.

    VmHWM is this process's own high-water mark: it starts afresh at exec,
    unlike ``ru_maxrss``, which Linux carries over from the process that
    spawned it (so a child would report its parent's peak).
    """
    try:
        with open("/proc/self/status", "rb") as src:
            text = src.read()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        if line.startswith((b"VmRSS:", b"VmHWM:")):
            name, value = line.split(b":", 1)
            found[name] = int(value.split()[0]) * 1024
    if len(found) != 2:
        return None
    return found[b"VmRSS"], found[b"VmHWM"]


def process_rss() -> Tuple[int, Optional[int]]:
    """(rss, peak rss) of this process in bytes; peak is None where unknown."""
    if sys.platform.startswith("linux"):
        figures = _linux_status()
        if figures is not None:
            rss, peak = figures
            return rss, max(peak, rss)
    import psutil

    info = psutil.Process().memory_info()
    peak: Optional[int] = getattr(info, "peak_wset", None)  # Windows
    if peak is None and sys.platform != "win32":
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # The BSDs report KiB, macOS bytes.
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
    # The kernel updates the high-water mark lazily: it can lag the current RSS.
    return info.rss, None if peak is None else max(peak, info.rss)
