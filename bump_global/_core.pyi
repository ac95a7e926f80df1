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
def reserve(n: int, /) -> Optional[int]: ...
def config() -> Optional[Tuple[int, int, int, int, bool, bool, bool, int, int]]: ...
def stats() -> Optional[Tuple[int, ...]]: ...
def sample() -> Tuple[int, Optional[int]]: ...
def histogram() -> Optional[Tuple[Tuple[int, int, int], ...]]: ...
def prefault_stop() -> None: ...
def report_guard(on: bool, /) -> bool: ...
def region_resident() -> Optional[int]: ...
def buffer_address(obj: object, /) -> int: ...
