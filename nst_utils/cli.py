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
    "reference": (
        "nst_utils.commands.reference",
        "print the graded functions' values on the original test inputs, as JSON",
    ),
    "fetch-weights": (
        "nst_utils.commands.fetch_weights",
        "download MatConvNet's VGG-19 weights file, resumable, verified by MD5",
    ),
    "check-weights": (
        "nst_utils.commands.check_weights",
        "examine a VGG-19 weights file: size, MD5, format, layers, verdict",
    ),
    "generate": (
        "nst_utils.commands.generate",
        "paint the content image in the style of the style image(s) (defaults: the "
        "Louvre in sandstone, as the original notebook)",
    ),
    "make-student-notebook": (
        "nst_utils.commands.student_notebook",
        "regenerate the student notebook from the solved one",
    ),
    "grade": (
        "nst_utils.commands.grade",
        "grade submitted notebooks: a table (and CSV/JSON) with points and feedback",
    ),
    "make-assignment": (
        "nst_utils.commands.make_assignment",
        "write the students' download (no solutions) and a Gradescope autograder",
    ),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, `error: ...`, with exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The parser; only the sub-command named in argv (all of them without argv) has its module
    imported, so `--help` and the other commands' start-up stay quick."""
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    parser = OneLineErrorParser(
        prog="python -m nst_utils",
        description="Neural style transfer (Gatys et al. 2015) on VGG-19, the classic TF1 "
        "notebook running on TensorFlow 2.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    sub.required = True
    for name, (module_name, help_line) in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=help_line,
            description=help_line,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        if chosen is None or chosen == name:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
            command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    from . import end_start_up
    from .errors import NSTError

    own_process = argv is None  # the process's command line, not a caller's list
    end_start_up()  # from here Ctrl-C is KeyboardInterrupt, answered below or by the command
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.run(args) or 0)
    except NSTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ImportError as exc:  # a requirement missing or broken (TensorFlow, most often)
        from .quiet import interrupted_import, requirement_error

        if interrupted_import(exc):
            print("interrupted", file=sys.stderr)
            return 130
        error = requirement_error(exc)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except MemoryError:
        print(
            "error: out of memory; use a smaller image size (--width/--height) or close "
            "other programs",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if own_process:  # the command's work is done: the interpreter's shutdown is not cut
            from .stop_signals import ignore_from_now

            ignore_from_now()
