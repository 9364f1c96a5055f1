"""`python -m nst_utils fetch-weights`: download MatConvNet's VGG-19 file, verified, resumable."""

import argparse
from pathlib import Path

from ..download import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from ..options import non_negative_int_arg, positive_float_arg
from ..weights import WEIGHTS_SOURCES


def add_arguments(parser):
    # The defaults that matter are computed (published URL, MD5, configured path), so each help
    # line states its own instead of argparse's "(default: None)".
    parser.formatter_class = argparse.HelpFormatter
    parser.add_argument("--dest", type=Path, default=None,
                        help="folder to save imagenet-vgg-verydeep-19.mat in (or a path ending "
                             "in .mat); default: where the project's weights file (or NST_WEIGHTS) points")
    parser.add_argument("--format", choices=tuple(WEIGHTS_SOURCES), default="new",
                        help="which published file: new (beta23+, 535 MB; the default) or old (beta16)")
    parser.add_argument("--url", default=None,
                        help="download from this URL instead (a mirror); default: the "
                             "published URL of --format")
    parser.add_argument("--md5", default=None,
                        help="expected MD5 of the file; default: the published MD5 of --format")
    parser.add_argument("--timeout", type=positive_float_arg, default=DEFAULT_TIMEOUT,
                        help=f"seconds to wait for the server before giving up (default: "
                             f"{DEFAULT_TIMEOUT:g})")
    parser.add_argument("--retries", type=non_negative_int_arg, default=DEFAULT_RETRIES,
                        help=f"times to resume a download whose connection broke mid-file "
                             f"(default: {DEFAULT_RETRIES})")
    parser.add_argument("--force", action="store_true",
                        help="download even if a file with another MD5 is already there "
                             "(it is replaced only once the new file has verified)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def destination(dest) -> Path:
    """The weights file's path from --dest: a folder gets the standard file name inside it."""
    from ..config import WEIGHTS_FILENAME
    from ..settings import Settings

    if dest is None:
        return Settings.from_env().vgg_model
    dest = Path(dest).expanduser()
    if dest.suffix.lower() == ".mat" and not dest.is_dir():
        return dest
    return dest / WEIGHTS_FILENAME


def run(args):
    from ..download import fetch_weights
    result = fetch_weights(destination(args.dest), args.format, args.url, args.md5,
                           timeout=args.timeout, retries=args.retries, force=args.force,
                           progress=not args.quiet)
    if result.downloaded:
        print(f"downloaded and verified {result.path} ({result.size:,} bytes, MD5 {result.md5})")
    else:
        print(f"{result.path} is already there and verified ({result.size:,} bytes, "
              f"MD5 {result.md5}); nothing to download")
    return 0
