"""``python -m bump_global``: the bump-global command line (bump_global.commands)."""

import sys

from bump_global.commands import main

if __name__ == "__main__":
    sys.exit(main())
