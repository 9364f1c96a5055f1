"""`python -m nst_utils fetch-weights`: download MatConvNet's VGG-19 file, verified, resumable."""

import argparse
import shlex
from pathlib import Path

from ..config import WEIGHTS_FILENAME
from ..settings import Settings
from ..errors import WeightsError
from ..options import non_negative_int_arg, positive_float_arg
from ..weights.download import DEFAULT_RETRIES, DEFAULT_TIMEOUT, fetch_weights
from ..weights.sources import (
    DEFAULT_FORMAT,
    FETCH_COMMAND,
    WEIGHTS_ENV,
    WEIGHTS_SOURCES,
    default_weights_path,
    fetch_command_for,
    is_default_path,
)


def add_arguments(parser):
    # The defaults that matter are computed (published URL, MD5, default path), so each help
    # line states its own instead of argparse's "(default: None)". Options left out stay None,
    # so an error can suggest the very command that was typed.
    parser.formatter_class = argparse.HelpFormatter
    parser.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="folder to save imagenet-vgg-verydeep-19.mat in (or a path ending "
        "in .mat); default: pretrained-model/ in the project",
    )
    parser.add_argument(
        "--format",
        choices=tuple(WEIGHTS_SOURCES),
        default=None,
        help="which published file: new (beta23+, 535 MB; the default) or old (beta16)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="download from this URL instead (a mirror); default: the published URL of --format",
    )
    parser.add_argument(
        "--md5",
        default=None,
        help="expected MD5 of the file; default: the published MD5 of --format",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float_arg,
        default=None,
        help=f"seconds to wait for the server before giving up (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int_arg,
        default=None,
        help=f"times to resume a download whose connection broke mid-file "
        f"(default: {DEFAULT_RETRIES})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="download even if a file with another MD5 is already there "
        "(it is replaced only once the new file has verified)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def destination(dest) -> Path:
    """The weights file's path from --dest: a folder gets the standard file name inside it.

    Without --dest, the project's default path; never the path NST_WEIGHTS names, so a typo
    there cannot start a 535 MB download to the wrong place.
    """
    if dest is None:
        configured = Settings.from_env().vgg_model
        if not is_default_path(configured):
            raise WeightsError(
                f"{WEIGHTS_ENV} points at {configured}, but fetch-weights "
                f"downloads only to the default path or to --dest: run "
                f"`{fetch_command_for(configured)}` to download there, or unset "
                f"{WEIGHTS_ENV} to download to the default {default_weights_path()}"
            )
        return default_weights_path()
    dest = Path(dest).expanduser()
    if dest.suffix.lower() == ".mat" and not dest.is_dir():
        return dest
    return dest / WEIGHTS_FILENAME


def typed_command(args) -> str:
    """The fetch-weights command line with exactly the options given, shell-quoted."""
    words = []
    for option, value in (
        ("--dest", args.dest),
        ("--format", args.format),
        ("--url", args.url),
        ("--md5", args.md5),
        ("--timeout", args.timeout),
        ("--retries", args.retries),
    ):
        if value is not None:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    words += [flag for flag, on in (("--force", args.force), ("--quiet", args.quiet)) if on]
    return " ".join([FETCH_COMMAND] + [shlex.quote(word) for word in words])


def run(args):
    result = fetch_weights(
        destination(args.dest),
        args.format or DEFAULT_FORMAT,
        args.url,
        args.md5,
        timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
        retries=DEFAULT_RETRIES if args.retries is None else args.retries,
        force=args.force,
        progress=not args.quiet,
        retry=typed_command(args),
    )
    if result.downloaded:
        print(f"downloaded and verified {result.path} ({result.size:,} bytes, MD5 {result.md5})")
    else:
        print(
            f"{result.path} is already there and verified ({result.size:,} bytes, "
            f"MD5 {result.md5}); nothing to download"
        )
    return 0
