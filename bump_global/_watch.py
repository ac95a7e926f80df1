"""The watcher of a ``BUMP_GLOBAL=1`` session's root: reports if the root is killed.

Started by the root when its session starts (bump_global/_session.py), as
``python -I -m bump_global._watch DIRECTORY ROOT_PID OPTIONS``, without the
allocator, in a session of its own (a ``timeout`` or a Ctrl-C that ends the
program's process group does not end it), with the root's stderr.  It sleeps
until the root has ended (it is the root's child: its parent changes), then,
if the root did not write the report itself (its session directory is still
there), it collects the session's files and writes the report -- the root's
figures as of its end if SIGTERM ended it, else as of its last snapshot.  It
never waits for more than the collector's bounded wait once the root is gone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import List


def main(argv: List[str]) -> int:
    directory, root, options = argv[0], int(argv[1]), json.loads(argv[2])
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    while os.getppid() == root:  # reparented when the root ends
        time.sleep(0.05)
    if not os.path.isdir(directory):
        return 0  # the root wrote the report
    from bump_global import _session
    from bump_global._config import ReportOptions

    _session.collect_and_report(directory, ReportOptions(**options), None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
