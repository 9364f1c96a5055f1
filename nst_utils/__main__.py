"""`python -m nst_utils COMMAND`: see nst_utils.cli."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
