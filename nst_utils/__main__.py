"""`python -m nst_utils COMMAND`: see nst_utils.cli."""

import sys


def run() -> int:
    """The command line, with Ctrl-C during start-up (TensorFlow's import included) answered by
    one line and status 130 rather than a traceback."""
    try:
        from .cli import main

        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
