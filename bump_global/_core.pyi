"""Type stubs for the C core (bump_global/_core.c)."""

from typing import Optional, Tuple

ALIGNMENT: int
MIN_SIZE: int
FREE_THREADED: int

def install(
    base: int,
    size: int,
    committed: int,
    commit_step: int,
    scope: int,
    on_exhausted: int,
    histogram: bool,
    /,
) -> None: ...
def config() -> Optional[Tuple[int, int, int, int, bool]]: ...
def stats() -> Optional[Tuple[int, ...]]: ...
def sample() -> Tuple[int, Optional[int]]: ...
def histogram() -> Optional[Tuple[Tuple[int, int, int], ...]]: ...
def resident(addr: int, length: int, /) -> Optional[int]: ...
def probe_realloc(
    domain: int, size: int, new_size: int, interleave: int, /
) -> Tuple[int, int, bool]: ...
