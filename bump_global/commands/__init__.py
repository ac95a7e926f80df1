"""The ``bump-global`` command line: one module per subcommand.

``run`` runs a program under the allocator (bump_global/commands/run.py),
``info`` says what this machine allows, ``compare`` times allocators on a
script, ``plot`` draws timelines, ``flamegraph`` draws the allocation sites.
Each module has ``PARSER`` (keywords of its parser), ``add_arguments(parser)`` and
``main(args) -> int``.  Errors are one line on stderr, ``bump-global: error: ...``,
and exit with :attr:`UsageError.status` (2: the command line is wrong, or
bump_global refused to install; nothing of the target ran).  Otherwise the exit
status is the target's own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, NoReturn, Optional, Sequence

PROG = "bump-global"

#: name -> one-line help, in the order --help lists them.
COMMANDS = {
    "run": "run a Python program under the bump allocator",
    "info": "show the platform, interpreter, default budget and largest region",
    "compare": "compare allocators on a workload (bump_global, pymalloc, ...)",
    "plot": "draw memory timelines written by run --timeline (needs matplotlib)",
    "flamegraph": "draw the allocation sites sampled by run --sites as a flame graph",
}


class UsageError(Exception):
    """A one-line message for the user, and the exit status (2 by default)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def error(message: str) -> None:
    """`message` on stderr as one line, with the program's prefix."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: error: {line}\n")
    sys.stderr.flush()


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one UsageError that says where to look."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"bump_global.commands.{name}")


def build_parser(only: Optional[str] = None) -> Parser:
    """The parser; the options of the subcommand `only` (all when None) are added."""
    from bump_global._version import __version__

    parser = Parser(prog=PROG, description="Run Python programs under the bump_global "
                    "bump allocator, and inspect what the platform allows.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, help in COMMANDS.items():
        command = sub.add_parser(name, help=help, allow_abbrev=False,
                                 **_module(name).PARSER if only in (None, name) else {})
        if only in (None, name):
            _module(name).add_arguments(command)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``bump-global`` and ``python -m bump_global``; the exit status."""
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    try:
        command = args[0] if args and args[0] in COMMANDS else None
        if command is None:
            build_parser().parse_args(args)  # --help, --version, or an error
            raise UsageError("no command given: use one of "
                             f"{', '.join(COMMANDS)} (see '{PROG} --help')")
        return int(_module(command).main(args[1:]))
    except UsageError as exc:
        error(str(exc))
        return exc.status
