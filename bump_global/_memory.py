"""Process memory figures."""

from __future__ import annotations

import sys
from typing import Optional, Tuple


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
