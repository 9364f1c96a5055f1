"""`python -m nst_utils check-weights [PATH]`: the weights doctor; exit 0 when the file serves."""

import argparse
import json
from pathlib import Path

#: Exit status when the file cannot serve (an NSTError, such as a bad argument, exits with 2).
EXIT_UNUSABLE = 1


def add_arguments(parser):
    parser.formatter_class = argparse.HelpFormatter  # the default path is stated in the help
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help="the weights file to examine (default: the project's weights file, or "
        "NST_WEIGHTS when set)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args):
    from ..settings import Settings
    from ..weights.doctor import diagnose, format_report
    from ..weights.sources import WEIGHTS_ENV, is_default_path

    config = Settings.from_env()
    if args.path is not None:
        path, named_by = args.path, "the command line"
    else:
        path = config.vgg_model
        named_by = None if is_default_path(path) else WEIGHTS_ENV
    report = diagnose(
        path,
        named_by=named_by,
        check_cache=config.weights_cache,
        cache_dir=config.weights_cache_dir,
    )
    print(json.dumps(report.as_dict()) if args.json else format_report(report))
    return 0 if report.usable else EXIT_UNUSABLE
