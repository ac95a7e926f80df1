"""Type stubs for bump_global._testing (bump_global/_testing.c): test probes; not
part of the runtime."""

from typing import Optional, Tuple

def probe_realloc(
    domain: int, size: int, new_size: int, interleave: int, /
) -> Tuple[int, int, bool]: ...
def probe_reuse(
    domain: int, size: int, calloc: bool, /
) -> Tuple[int, int, Optional[bool]]: ...
def raw_from_c_thread(count: int, size: int, /) -> None: ...
