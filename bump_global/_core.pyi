"""Type stubs for the C core (bump_global/_core.c and bump_global/core/)."""

from typing import Optional, Tuple

ALIGNMENT: int
MIN_SIZE: int
EMERGENCY_RESERVE: int
FREE_THREADED: int
STATS_FIELDS: Tuple[str, ...]

def install(
    mapping: object,
    base: int,
    size: int,
    committed: int,
    commit_step: int,
    scope: int,
    on_exhausted: int,
    histogram: bool,
    prefault: bool,
    huge_pages: bool,
    gc_policy: int,
    reclaim: int,
    /,
) -> None: ...
def config() -> Optional[Tuple[int, int, int, int, bool, bool, bool, int, int]]: ...
def stats() -> Optional[Tuple[int, ...]]: ...
def sample() -> Tuple[int, Optional[int]]: ...
def histogram() -> Optional[Tuple[Tuple[int, int, int], ...]]: ...
def prefault_stop() -> None: ...
def report_guard(on: bool, /) -> bool: ...
def region_resident() -> Optional[int]: ...
def buffer_address(obj: object, /) -> int: ...

# The native timeline sampler (bump_global/core/sampler.c; Linux only).
# sampler_check: None if it can run here, else why not.
# sampler_start: a new timeline, times in seconds since t0 (a time.perf_counter()
#   value); RuntimeError if running, OSError if it cannot start, NotImplementedError
#   off Linux.
# sampler_stop: stops and joins the thread, keeps the samples; returns the errno
#   that ended sampling early (the OS refused memory), else 0.
# sampler_pause / sampler_resume: os.fork's before / after_in_parent (same grid,
#   samples appended; deferred: at the main thread's next bytecode, after os.fork
#   has counted the threads for its warning).
# sampler_samples: (times, used, resident, rss), native-endian 8-byte items for
#   array("d").frombytes / array("q").frombytes: float64 seconds since t0; int64
#   bytes, -1 where unknown.
def sampler_check() -> Optional[str]: ...
def sampler_start(interval_s: float, t0: float, /) -> None: ...
def sampler_stop() -> int: ...
def sampler_pause() -> None: ...
def sampler_resume(deferred: bool = False, /) -> None: ...
def sampler_samples() -> Tuple[bytes, bytes, bytes, bytes]: ...
