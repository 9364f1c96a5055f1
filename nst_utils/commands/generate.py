"""`python -m nst_utils generate`: paint the content image in the style of the style image(s).

Arguments and orchestration only: options are checked in nst_utils.options, costs built in
nst_utils.transfer, the loop is training.optimize (Adam) driving nst_utils.lbfgs for L-BFGS,
and the record is written by nst_utils.run_record. Every input is checked before anything is
written; Ctrl-C or SIGTERM stops cleanly after saving the image and the record.
"""

from __future__ import annotations

import argparse
import datetime
import secrets
import signal
import time
from pathlib import Path
from types import SimpleNamespace

from ..config import DEFAULTS, PRECISIONS, Config
from ..errors import NonFiniteCostError, NSTError
from ..options import (format_style_layers, layer_arg, non_negative_float_arg,
                       non_negative_int_arg, positive_float_arg, positive_int_arg, ratio_arg,
                       seed_arg, style_layers_arg)

OPTIMIZERS = ("adam", "lbfgs")
POOLINGS = ("avg", "max")
MAX_PROGRESS_SNAPSHOTS = 12
#: Options whose default is worked out at run time; absent from args unless given.
SUPPRESS = argparse.SUPPRESS
OPTIONAL = {"style": [DEFAULTS.style_image], "style_blend_weights": None, "width": None,
            "height": None, "seed": None, "weights": None}


def add_arguments(parser):
    c = DEFAULTS
    add = parser.add_argument
    add("--content", type=Path, default=c.content_image, help="content image (PNG or JPEG)")
    add("--style", type=Path, nargs="+", default=SUPPRESS, metavar="PATH",
        help=f"style image(s), resized to the model size (default: {c.style_image})")
    add("--style-blend-weights", type=non_negative_float_arg, nargs="+", default=SUPPRESS,
        metavar="W", help="one weight per style image, scaled to sum to 1 (default: equal)")
    add("--iterations", type=positive_int_arg, default=c.num_iterations, help="optimisation steps")
    add("--learning-rate", type=positive_float_arg, default=c.learning_rate,
        help="Adam's learning rate (not used by L-BFGS)")
    add("--alpha", type=non_negative_float_arg, default=c.alpha, help="weight of the content cost")
    add("--beta", type=non_negative_float_arg, default=c.beta, help="weight of the style cost")
    add("--content-layer", type=layer_arg, default=c.content_layer, help="layer of the content cost")
    add("--style-layers", type=style_layers_arg, default=format_style_layers(c.style_layers),
        metavar="LAYER:WEIGHT,...", help="layers of the style cost and their weights")
    add("--width", type=positive_int_arg, default=SUPPRESS,
        help=f"model width in pixels (default {c.image_width}; with --height omitted, the height "
             f"follows the content's aspect)")
    add("--height", type=positive_int_arg, default=SUPPRESS,
        help=f"model height in pixels (default {c.image_height}; with --width omitted, the width "
             f"follows the content's aspect)")
    add("--init", default="noise", metavar="noise|content|PATH",
        help="starting image: noise blended with the content (the original), the content, or "
             "an image file")
    add("--noise-ratio", type=ratio_arg, default=c.noise_ratio,
        help="share of noise in the starting image for --init noise")
    add("--seed", type=seed_arg, default=SUPPRESS,
        help="seed of the noise and the graph: the same seed repeats a run bit for bit "
             "(default: drawn at random and printed)")
    add("--save-every", type=non_negative_int_arg, default=c.save_every,
        help="save <output>/<i>.png every N iterations (0: only the final image)")
    add("--log-every", type=non_negative_int_arg, default=c.save_every,
        help="print the original's cost report every N iterations (0: never)")
    add("--output", type=Path, default=c.output_dir, help="output folder")
    add("--weights", type=Path, default=SUPPRESS,
        help="VGG-19 weights file (.mat) (default: NST_WEIGHTS, else "
             f"{c.vgg_model}; downloaded there when missing)")
    add("--optimizer", choices=OPTIMIZERS, default="adam",
        help="adam (the original) or lbfgs (SciPy's L-BFGS-B on the session's loss and gradient)")
    add("--tv-weight", type=non_negative_float_arg, default=0.0,
        help="weight of a total-variation smoothness cost (0: the original, none)")
    add("--preserve-colors", action="store_true",
        help="keep the content's colours: transfer the style to luminance only")
    add("--pooling", choices=POOLINGS, default="avg",
        help="pooling between blocks: avg (the original) or VGG's own max")
    add("--precision", choices=PRECISIONS, default=c.precision,
        help="convolutions in float32 (the original) or bfloat16 (about 3x faster on CPUs with "
             "native bfloat16; the image and costs stay float32)")
    add("--no-progress", action="store_true", help="hide the progress bar")


def run(args):
    from .. import run_record
    from .weights_for_run import load_run_weights

    clock = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    for name, value in OPTIONAL.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    # Every input is checked before anything is written; the output folder comes last.
    inputs = _read_inputs(args)
    # The configured weights file is downloaded when missing; a path the user typed is not, so
    # a typo costs an error message rather than a 535 MB download to the wrong place.
    fetch_missing = args.weights is None
    if fetch_missing:
        args.weights = Config.from_env().vgg_model
    weights = load_run_weights(args.weights, fetch_missing=fetch_missing)
    output = run_record.prepare_output_dir(args.output)

    seed = args.seed if args.seed is not None else secrets.randbelow(2 ** 31)
    print(f"seed {seed}" + ("" if args.seed is not None else
                            f" (drawn at random; repeat this run with --seed {seed})"), flush=True)
    content_image, style_images, start_image = _network_inputs(args, inputs, seed)
    save = _saver(inputs.content if args.preserve_colors else None)
    result, final_costs, signal_number = _paint(args, weights, inputs, content_image, style_images,
                                                start_image, seed, output, save)

    # The record, whatever stopped the run.
    record = {
        "command": "generate",
        "settings": _settings(args, inputs, seed),
        "seed": seed,
        "seed_given": args.seed is not None,
        "versions": run_record.library_versions(),
        "weights": weights.record(),
        "started": started.isoformat(timespec="seconds"),
        "wall_time_seconds": None,
        "iterations_completed": result.iterations,
        "stopped": result.stopped,
        "signal": None if signal_number is None else signal.Signals(signal_number).name,
        "final_image": _relative(result.saved[-1], output),
        "snapshots": [_relative(p, output) for p in result.saved[:-1]],
        "final_costs": dict(zip(("total", "content", "style"), final_costs)),
        "costs": run_record.history_rows(result.history),
    }
    run_record.plot_costs(output / run_record.COSTS_PNG, result.history)
    run_record.plot_progress(output / run_record.PROGRESS_PNG, _progress_tiles(inputs, result))
    record["wall_time_seconds"] = round(time.perf_counter() - clock, 3)
    run_record.write_run_json(output / run_record.RUN_JSON, record)
    final_path = result.saved[-1]
    print(f"saved {final_path} after {result.iterations} iteration(s) in "
          f"{record['wall_time_seconds']:.1f} s; record: {output / run_record.RUN_JSON}, "
          f"{run_record.COSTS_PNG}, {run_record.PROGRESS_PNG}", flush=True)
    if result.stopped == "non-finite":
        raise NonFiniteCostError(
            f"the cost became NaN or infinite after {result.iterations} iteration(s); the last "
            f"good image was kept in {final_path}; try a lower --learning-rate")
    return 0 if signal_number is None else 128 + signal_number


def _read_inputs(args) -> SimpleNamespace:
    """The images as (H, W, 3) uint8 at the model size: content, styles, init (or None)."""
    from .. import images, options

    blend = options.blend_weights(args.style, args.style_blend_weights)
    content_raw = images.read_image(args.content)
    width, height = options.model_size(content_raw.shape, args.width, args.height,
                                       default=(DEFAULTS.image_width, DEFAULTS.image_height))
    init = None
    if args.init not in ("noise", "content"):
        init = images.load_image(args.init, (width, height))
    return SimpleNamespace(
        width=width, height=height, blend=blend, init=init,
        content=images.resize_image(content_raw, width, height),
        styles=[images.load_image(path, (width, height)) for path in args.style])


def _network_inputs(args, inputs, seed):
    """(content, styles, start) as network images (1, H, W, 3); luminance with --preserve-colors."""
    from .. import colors, images

    content, styles, init = inputs.content, inputs.styles, inputs.init
    if args.preserve_colors:
        styles = [colors.luminance_image(p, match=content) for p in styles]
        init = None if init is None else colors.luminance_image(init)
        content = colors.luminance_image(content)
    normalize = images.reshape_and_normalize_image
    content_image = normalize(content)
    if args.init == "noise":
        start_image = images.generate_noise_image(content_image, args.noise_ratio, seed=seed)
    else:
        start_image = content_image if init is None else normalize(init)
    return content_image, [normalize(p) for p in styles], start_image


def _relative(path, output) -> str:
    path = Path(path)
    return str(path.relative_to(output)) if path.is_relative_to(output) else str(path)


def _paint(args, weights, inputs, content_image, style_images, start_image, seed, output, save):
    """Build the graph and run the optimiser: (RunResult, final costs, signal number or None)."""
    import tensorflow as tf

    try:
        return _run_graph(args, weights, inputs, content_image, style_images, start_image, seed,
                          output, save)
    except (MemoryError, tf.errors.ResourceExhaustedError):
        raise NSTError(f"not enough memory for a {inputs.width}x{inputs.height} model; try a "
                       f"smaller --width or --height") from None


def _run_graph(args, weights, inputs, content_image, style_images, start_image, seed, output, save):
    import tensorflow as tf

    from ..lbfgs import LBFGS
    from ..progress import ProgressBar
    from ..session import make_session
    from ..stop_signals import StopSignals
    from ..training import optimize
    from ..transfer import build_transfer_costs
    from ..vgg import load_vgg_model

    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), make_session(graph) as sess:
        tf1.set_random_seed(seed)
        model = load_vgg_model(weights=weights.weights, image_height=inputs.height,
                               image_width=inputs.width, pooling=args.pooling,
                               precision=args.precision)
        costs = build_transfer_costs(sess, model, content_image, style_images, inputs.blend,
                                     args.content_layer, args.style_layers, args.alpha, args.beta,
                                     args.tv_weight)
        reported = costs.reported()
        if args.optimizer == "adam":
            step = tf1.train.AdamOptimizer(args.learning_rate).minimize(costs.total)
        else:
            step = LBFGS(sess, model["input"], reported)
        with StopSignals() as stop, ProgressBar(args.iterations, not args.no_progress) as bar:
            result = optimize(sess, model, step, reported, start_image,
                              num_iterations=args.iterations, save_every=args.save_every,
                              output_dir=output, report=bar.report, log_every=args.log_every,
                              on_step=bar.on_step, should_stop=stop.requested, save=save)
        final_costs = [float(v) for v in sess.run(reported)]
    return result, final_costs, stop.signal_number


def _saver(content_pixels):
    """save(path, image) for optimize: plain, or with the content's colours put back."""
    from .. import colors, images

    if content_pixels is None:
        return lambda path, image: images.save_image(path, image, DEFAULTS.means)

    def save(path, image):
        pixels = image[0] + DEFAULTS.means_array[0]
        return images.write_image(path, colors.recombine(pixels, content_pixels))
    return save


def _settings(args, inputs, seed) -> dict:
    """Every setting of the run, resolved (paths absolute, sizes and weights final)."""
    return {
        "content": str(args.content.resolve()),
        "style": [str(p.resolve()) for p in args.style],
        "style_blend_weights": list(inputs.blend),
        "iterations": args.iterations,
        "learning_rate": args.learning_rate,
        "alpha": args.alpha,
        "beta": args.beta,
        "content_layer": args.content_layer,
        "style_layers": [[name, weight] for name, weight in args.style_layers],
        "width": inputs.width,
        "height": inputs.height,
        "init": args.init if args.init in ("noise", "content") else str(Path(args.init).resolve()),
        "noise_ratio": args.noise_ratio,
        "seed": seed,
        "save_every": args.save_every,
        "log_every": args.log_every,
        "output": str(Path(args.output).resolve()),
        "weights": str(Path(args.weights).resolve()),
        "optimizer": args.optimizer,
        "tv_weight": args.tv_weight,
        "preserve_colors": args.preserve_colors,
        "pooling": args.pooling,
        "precision": args.precision,
        "means": list(DEFAULTS.means),
    }


def _progress_tiles(inputs, result):
    """(title, pixels) for progress.png: content, styles, then up to 12 snapshots and the result."""
    from .. import images

    tiles = [("content", inputs.content)]
    tiles += [(f"style {k + 1}" if len(inputs.styles) > 1 else "style", p)
              for k, p in enumerate(inputs.styles)]
    snapshots = result.saved[:-1]
    if len(snapshots) > MAX_PROGRESS_SNAPSHOTS:
        picks = sorted({round(k * (len(snapshots) - 1) / (MAX_PROGRESS_SNAPSHOTS - 1))
                        for k in range(MAX_PROGRESS_SNAPSHOTS)})
        snapshots = [snapshots[k] for k in picks]
    tiles += [(f"iteration {Path(p).stem}", images.read_image(p)) for p in snapshots]
    if result.saved:
        tiles.append((f"result ({result.iterations} it.)", images.read_image(result.saved[-1])))
    return tiles
