"""`python -m nst_utils reference`: the graded functions on the original test inputs, as JSON."""

import json


def add_arguments(parser):
    parser.add_argument(
        "--indent",
        type=int,
        default=None,
        help="indent the JSON by this many spaces (one line if omitted)",
    )


def run(args):
    from ..quiet import import_tensorflow

    import_tensorflow()  # first, so that its start-up lines stay off the screen
    from ..reference import reference_values

    print(json.dumps(reference_values(), indent=args.indent))
    return 0
