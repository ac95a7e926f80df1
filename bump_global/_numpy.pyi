"""Types of the numpy data-memory handler extension (bump_global/_numpy.c)."""

from typing import Any, Tuple

#: The PyDataMem_Handler "bump_global" in a capsule named "mem_handler".
handler: Any
#: Bytes of the size header before each array buffer.
HEADER: int

def set_handler(api: Any) -> str:
    """Make ours numpy's handler in this context; `api` is numpy's _ARRAY_API capsule.

    Returns the name of the handler it replaced.
    """

def current_handler_name(api: Any) -> str: ...
def stats() -> Tuple[int, int, int, int, int, int]:
    """(arrays, bytes_allocated, bytes_freed, live_bytes, peak_live_bytes, reallocs)"""

def calls_without_gil() -> int: ...
def frees_size_mismatch() -> int: ...
