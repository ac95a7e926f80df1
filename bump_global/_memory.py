"""Process memory figures and the human report."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional, Tuple

from bump_global._config import format_size

if TYPE_CHECKING:
    from bump_global import Memory, Stats


def process_rss() -> Tuple[int, Optional[int]]:
    """(rss, peak rss) of this process in bytes; peak is None where unknown."""
    import psutil

    info = psutil.Process().memory_info()
    peak: Optional[int] = getattr(info, "peak_wset", None)  # Windows
    if peak is None and sys.platform != "win32":
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux and the BSDs report KiB, macOS bytes.
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
    # The kernel updates the high-water mark lazily: it can lag the current RSS.
    return info.rss, None if peak is None else max(peak, info.rss)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def format_report(stats: Optional[Stats], mem: Memory) -> str:
    """A few lines summarising the allocator and the process memory."""
    peak = format_size(mem.peak_rss) if mem.peak_rss is not None else "unknown"
    process = f"process: RSS {format_size(mem.rss)}, peak RSS {peak}"
    if stats is None:
        return "bump_global: not installed\n" + process
    resident = (
        format_size(mem.region_resident) if mem.region_resident is not None else "unknown"
    )
    return "\n".join([
        f"bump_global: scope {stats.scope}, on exhausted: {stats.on_exhausted}",
        f"region: {format_size(stats.reserved)} reserved at {stats.base:#x}, "
        f"{format_size(stats.used)} used ({_pct(stats.used, stats.reserved)}), "
        f"{resident} resident",
        f"allocations: {stats.allocations:,}; frees ignored: {stats.frees_ignored:,}; "
        f"forwarded to the previous allocator: {stats.foreign_frees:,} frees, "
        f"{stats.foreign_reallocs:,} reallocs",
        f"reallocs: {stats.reallocs_in_place:,} in place, {stats.reallocs_moved:,} moved "
        f"({format_size(stats.bytes_copied)} copied)",
        f"region full: {stats.fallback_allocations:,} fallback allocations "
        f"({format_size(stats.fallback_bytes)}), {stats.failed_allocations:,} refused",
        process,
    ])
