"""The `python -m nst_utils` / `nst` command line: one sub-command per job.

Each sub-command lives in its own module and registers itself here through COMMANDS; a
problem the user can fix (`NSTError`) is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: sub-command name -> (module that defines `add_arguments(parser)` and `run(args)`, help line)
COMMANDS = {
    "reference": ("nst_utils.commands.reference",
                  "print the graded functions' values on the original test inputs, as JSON"),
    "make-student-notebook": ("nst_utils.commands.student_notebook",
                              "regenerate the student notebook from the solved one"),
    "grade": ("nst_utils.commands.grade",
              "grade submitted notebooks: a table (and CSV/JSON) with points and feedback"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nst_utils",
        description="Neural style transfer (Gatys et al. 2015) on VGG-19, the classic TF1 "
                    "notebook running on TensorFlow 2.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_line) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_line, description=help_line,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    from .errors import NSTError

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NSTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
