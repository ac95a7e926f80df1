"""The ``bump-global`` command line (also ``python -m bump_global``).

Kept for the entry point and for code that imported from here: the command
line lives in the :mod:`bump_global.commands` package (one module per
subcommand), the target runner in :mod:`bump_global._runner`, the platform
facts of ``info`` in :mod:`bump_global._platform`.  See docs/cli.md.
"""

from __future__ import annotations

from bump_global._platform import collect_info, largest_region
from bump_global._runner import Target, split_run_args
from bump_global.commands import PROG, UsageError, main

__all__ = ["PROG", "Target", "UsageError", "collect_info", "largest_region", "main",
           "split_run_args"]
