"""``python -m bump_global``: the bump-global command line (see bump_global.cli)."""

import sys

from bump_global.cli import main

if __name__ == "__main__":
    sys.exit(main())
