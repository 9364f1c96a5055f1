"""The painting core: settings, weights and hooks in, a painted image out.

`prepare` reads the images a run's settings name and settles what the settings leave open
(the model size from the content's aspect, the blend weights, the seed); `Painter` builds the
graph (VGG-19, the costs of nst_utils.transfer, Adam or L-BFGS) in its own session and runs
the loop of nst_utils.training; `stylize` does both for one run. Nothing here reads the
command line or the environment: `commands/generate.py` maps those onto a `Settings`, and
`benchmarks/bench.py` times this same `Painter`.

The optimiser's state (the image, Adam's slots and step count, the cost history) can be saved
after each snapshot and at the end (`save_state`; `save_big_state` for a coarse-to-fine run,
with its scale and step), and a run continues from it bit for bit once `check_state` has
found it fits the run.
"""

from __future__ import annotations

import dataclasses
import io
import secrets
import time
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import ConfigError, NotEnoughMemoryError, NSTError
from .files import replace_atomically
from .settings import INITS, Settings
from .training import Hooks, RunResult

STATE_FILE = "state.npz"
#: A coarse-to-fine painting also saves its state after any step that ends this long after the
#: last save, so that quitting at once in its slow fine scales loses little work.
BIG_STATE_EVERY_SECONDS = 60.0


@dataclasses.dataclass
class Inputs:
    """The run's images as (H, W, 3) uint8 at the model size; init is None unless a file."""

    content: np.ndarray
    styles: list
    init: Optional[np.ndarray] = None


@dataclasses.dataclass
class Painting:
    """What `stylize` returns: the loop's result and the final (total, content, style) costs."""

    result: RunResult
    final_costs: tuple
    scales: Optional[list] = None  # a big print's scales (nst_utils.scales.ScalePlan.describe)


def prepare(settings: Settings) -> tuple:
    """(settings with size, blend weights and seed settled, Inputs): reads and checks every image.

    The size follows the content's aspect where a side is None (both None: 400x300); a seed of
    None is drawn at random.
    """
    from . import images, options

    blend = options.blend_weights(len(settings.style_images), settings.style_blend_weights)
    # The content's size from its header: a large photo is then decoded at a reduced scale.
    content_width, content_height = images.image_size(settings.content_image)
    width, height = options.model_size(
        (content_height, content_width),
        settings.image_width,
        settings.image_height,
        default=(400, 300),
    )
    # Whether the painting can fit at all, before any image of its size is made.
    big = paints_big(settings.replace(image_width=width, image_height=height))
    init = None
    if settings.init not in INITS:
        init = images.load_image(settings.init, (width, height))
    from .scales import style_size

    # A painting made whole fills its style targets at its own size, however small; only
    # coarse-to-fine scales resize the styles again (to at least 16 pixels) and rescale Grams.
    style_wh = style_size(width, height, settings.style_scale) if big else (width, height)
    inputs = Inputs(
        content=images.load_image(settings.content_image, (width, height)),
        styles=[images.load_image(path, style_wh) for path in settings.style_images],
        init=init,
    )
    seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
    return settings.replace(
        image_width=width, image_height=height, style_blend_weights=blend, seed=seed
    ), inputs


def network_inputs(settings: Settings, inputs: Inputs) -> tuple:
    """(content, styles, start) as network images (1, H, W, 3); luminance with preserve_colors."""
    from . import colors, images

    content, styles, init = inputs.content, inputs.styles, inputs.init
    if settings.preserve_colors:
        styles = [colors.luminance_image(p, match=content) for p in styles]
        init = None if init is None else colors.luminance_image(init)
        content = colors.luminance_image(content)

    def normalize(pixels):
        return images.reshape_and_normalize_image(pixels, settings.means)

    content_image = normalize(content)
    if settings.init == "noise":
        start_image = images.generate_noise_image(
            content_image, settings.noise_ratio, seed=settings.seed
        )
    else:
        start_image = content_image if init is None else normalize(init)
    return content_image, [normalize(p) for p in styles], start_image


def saver(settings: Settings, inputs: Inputs):
    """save(path, image) for the loop: plain, or with the content's colours put back."""
    from . import colors, images

    if not settings.preserve_colors:
        return lambda path, image: images.save_image(path, image, settings.means)

    def save(path, image):
        pixels = image[0] + settings.means_array[0]
        return images.write_image(path, colors.recombine(pixels, inputs.content))

    return save


class Painter:
    """One run's graph and session: the model at the settings' size, its costs and optimiser.

    content_image and style_images are network images (1, H, W, 3). Close it when done (or use
    it as a context manager).
    """

    def __init__(self, settings: Settings, weights, content_image, style_images):
        import tensorflow as tf

        from .lbfgs import LBFGS
        from .session import make_session
        from .transfer import build_transfer_costs
        from .vgg import WEIGHTS_COLLECTION, build_vgg_graph
        from .weights.cache import release_pages

        tf1 = tf.compat.v1
        self.settings = settings
        self.graph = tf.Graph()
        with self.graph.as_default():
            if settings.seed is not None:
                tf1.set_random_seed(settings.seed)
            self.sess = make_session(self.graph, settings)
            try:
                self.model = build_vgg_graph(
                    weights,
                    settings.image_height,
                    settings.image_width,
                    settings.pooling,
                    settings.precision,
                )
                self.costs = build_transfer_costs(self.model, settings, len(style_images))
                self.reported = self.costs.reported()
                if settings.optimizer == "adam":
                    # One variable: gating its gradient adds ops and time, nothing else.
                    self.train_step = tf1.train.AdamOptimizer(settings.learning_rate).minimize(
                        self.costs.total, gate_gradients=tf1.train.Optimizer.GATE_NONE
                    )
                else:
                    self.train_step = LBFGS(self.sess, self.model["input"], self.reported)
                # The whole graph is built: every variable initialised in one run, then the
                # targets computed. (The loop initialises again; with its executor made, 2 ms.)
                everything = self.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
                self.sess.run([v.initializer for v in everything])
                self.costs.targets.fill(self.sess, content_image, style_images)
                # TensorFlow holds the weights now: a cache file's pages behind them can go.
                release_pages(array for pair in weights.conv.values() for array in pair)
                # The image and the optimiser's state; the network's weights never change.
                weights_variables = set(self.graph.get_collection(WEIGHTS_COLLECTION))
                self.variables = [v for v in everything if v not in weights_variables]
            except BaseException:
                self.sess.close()
                raise
        self._step = None

    def start(self, image) -> None:
        """Every variable to its initial value and `image` into the input (Adam from scratch)."""
        from .training import assign_image

        self.sess.run([v.initializer for v in self.variables])
        assign_image(self.sess, self.model["input"], image)

    def step(self) -> list:
        """One Adam iteration as the loop runs it: [image after the step, J, J_content, J_style]."""
        from .training import image_after

        if self._step is None:
            with self.graph.as_default():
                after = image_after(self.train_step, self.model["input"])
            self._step = self.sess.make_callable([after, *self.reported])
        return self._step()

    def image(self) -> np.ndarray:
        return self.sess.run(self.model["input"])

    def current_costs(self) -> tuple:
        """(J, J_content, J_style) of the image the input holds."""
        return tuple(float(v) for v in self.sess.run(self.reported))

    def run(
        self,
        start_image,
        output_dir,
        hooks: Hooks,
        state: Optional[dict] = None,
        iterations: Optional[int] = None,
    ) -> RunResult:
        """The optimisation loop (nst_utils.training.optimize) from start_image, or from `state`
        (see `read_state`) when resuming, up to `iterations` (default: the settings');
        output_dir=False saves nothing."""
        from .training import optimize

        settings = self.settings
        previous = None
        if state is not None:
            self.start(state["image"])
            self.restore(state)
            start_image = state["image"]
            previous = RunResult(
                image=start_image,
                iterations=int(state["iterations"]),
                history=[tuple(row) for row in state["history"]],
                saved=[Path(output_dir) / name for name in state["snapshots"]],
            )
        with self.graph.as_default():
            return optimize(
                self.sess,
                self.model,
                self.train_step,
                self.reported,
                start_image,
                iterations or settings.num_iterations,
                settings.save_every,
                output_dir,
                settings.means,
                hooks,
                previous,
            )

    def variable_values(self) -> dict:
        """{variable name: value} of every variable: the image and the optimiser's state."""
        return dict(zip((v.name for v in self.variables), self.sess.run(self.variables)))

    def restore(self, state: dict) -> None:
        """Load the variables a state holds (Adam's slots and step count, the image)."""
        saved = state["variables"]
        missing = [v.name for v in self.variables if v.name not in saved]
        if missing and self.settings.optimizer == "adam":
            raise ConfigError(
                f"the saved state has no value for {', '.join(missing)}; it was "
                f"not written by this kind of run"
            )
        # In the run's graph: outside it, with eager execution on (as in the commands),
        # Variable.load would try to assign eagerly and fail.
        with self.graph.as_default():
            for variable in self.variables:
                if variable.name in saved:
                    variable.load(saved[variable.name], self.sess)

    def close(self):
        self.sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def save_state(path, painter: Painter, result: RunResult, output_dir) -> Path:
    """Write the optimiser's state after `result.iterations` iterations to `path`, atomically."""
    arrays = {f"var:{name}": value for name, value in painter.variable_values().items()}
    return _write_state(path, result.iterations, result.history, result.saved, output_dir, arrays)


def save_big_state(path, position, history, saved, output_dir) -> Path:
    """Write a coarse-to-fine painting's state at `position` (a nst_utils.scales.Position) to
    `path`, atomically: its scale, step, image and Adam's state, with the run's history."""
    none = np.zeros((0,), np.float32)
    arrays = {
        "scale_iterations": np.asarray(position.iterations, dtype=np.int64),
        "scale": np.int64(position.scale),
        "scale_step": np.int64(position.step),
        "image": position.image,
        "adam_t": np.int64(position.adam_t),
        "adam_m": none if position.adam_m is None else position.adam_m,
        "adam_v": none if position.adam_v is None else position.adam_v,
    }
    return _write_state(path, position.done, history, saved, output_dir, arrays)


def _write_state(path, iterations, history, saved, output_dir, arrays) -> Path:
    history = np.asarray(history, dtype=np.float64).reshape(-1, 3)
    snapshots = [
        str(Path(p).relative_to(output_dir))
        for p in saved
        if Path(p).is_relative_to(output_dir) and Path(p).stem.isdigit()
    ]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        iterations=np.int64(iterations),
        history=history,
        snapshots=np.asarray(snapshots, dtype=str),
        **arrays,
    )
    data = buffer.getvalue()
    return replace_atomically(path, lambda tmp: tmp.write_bytes(data))


def read_state(path, arrays: bool = True) -> dict:
    """The state `save_state` wrote: iterations, history, snapshots, variables and image;
    arrays=False reads the first three alone (quick, whatever the image's size)."""
    if not Path(path).exists():
        raise NSTError(
            f"{Path(path).parent} holds no saved state ({Path(path).name}): the run "
            f"stopped before its first snapshot, or it is not a run folder; start the "
            f"run again instead of resuming it"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            history = data["history"]
            if history.ndim != 2 or history.shape[1] != 3:
                raise ValueError(f"a history of shape {history.shape}, not (iterations, 3)")
            state = {
                "iterations": int(data["iterations"]),
                "history": history.tolist(),
                "snapshots": [str(s) for s in data["snapshots"]],
            }
            if not arrays:
                return state
            state["variables"] = {k[4:]: data[k] for k in data.files if k.startswith("var:")}
            if "scale" in data.files:
                state["big"] = _big_position(data)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise NSTError(
            f"cannot read the saved state {path} ({type(exc).__name__}: {exc}); the "
            f"run cannot be resumed from it; start the run again"
        ) from None
    state["image"] = state["big"].image if "big" in state else state["variables"].get("input:0")
    if state["image"] is None:
        raise NSTError(
            f"the saved state {path} holds no image; the run cannot be resumed from it; "
            f"start the run again"
        )
    return state


def check_state(settings: Settings, state: dict) -> None:
    """A one-line NSTError unless `state` (from `read_state`) can continue the run `settings`
    describe: its history as long as its iterations, its snapshots files of the run's folder,
    and an image and optimiser state of this run's kind and size. A run painted whole that no
    longer fits whole in the memory available is a NotEnoughMemoryError."""
    from . import scales

    done, width, height = state["iterations"], settings.image_width, settings.image_height
    if done != len(state["history"]) or any(
        Path(name).name != name or not Path(name).stem.isdigit() for name in state["snapshots"]
    ):
        raise ConfigError(
            f"the saved state's record of its {done} iteration(s) is damaged "
            f"(its history or snapshots do not match); start the run again"
        )
    # NaN or infinities (a damaged file) would paint garbage over the last good image.
    arrays = (
        [state["big"].image, state["big"].adam_m, state["big"].adam_v]
        if "big" in state
        else list(state["variables"].values())
    )
    for array in arrays:
        if (
            array is not None
            and np.asarray(array).dtype.kind == "f"
            and not np.isfinite(array).all()
        ):
            raise ConfigError(
                "the saved state holds NaN or infinite values (it is damaged); the "
                "run cannot be resumed from it; start the run again"
            )
    if "big" in state:
        sizes = scales.scale_sizes(width, height, settings.scales)
        scales.check_position(state["big"], sizes, done=done)
        return
    if settings.scales > 1 or settings.style_scale != 1.0:
        raise ConfigError(
            "the saved state was written by a run painted whole, not by this "
            "coarse-to-fine run; start the run again"
        )
    if np.shape(state["image"]) != (1, height, width, 3):
        raise ConfigError(
            f"the saved state holds an image of shape {np.shape(state['image'])}, "
            f"not this {width}x{height} run's; start the run again"
        )
    # Each variable Painter.restore loads, checked here before run.json is rewritten: a bad
    # one failed in restore with a traceback, or emptied the run's record.
    for name, shape in _whole_state_shapes(settings).items():
        value = state["variables"].get(name)
        if value is None or np.shape(value) != shape or value.dtype.kind != "f":
            found = (
                "no value"
                if value is None
                else f"an array of shape {np.shape(value)} and type {value.dtype}"
            )
            raise ConfigError(
                f"the saved state holds {found} for {name}, not the float array of "
                f"shape {shape} this run keeps there; start the run again"
            )
    if paints_big(settings):
        raise NotEnoughMemoryError(
            f"this run was painted whole, and a {width}x{height} painting no longer fits whole "
            f"in the memory available; free some memory and resume it again"
        )


def _whole_state_shapes(settings: Settings) -> dict:
    """{variable name: shape} of what a run painted whole saves: the image (1, H, W, 3), and
    with Adam its two slots (the image's shape) and its two scalar beta powers."""
    image = (1, settings.image_height, settings.image_width, 3)
    shapes = {"input:0": image}
    if settings.optimizer == "adam":
        shapes.update(
            {
                "beta1_power:0": (),
                "beta2_power:0": (),
                "input/Adam:0": image,
                "input/Adam_1:0": image,
            }
        )
    return shapes


def _big_position(data):
    """The nst_utils.scales.Position a coarse-to-fine state holds."""
    from .scales import Position

    t = int(data["adam_t"])
    return Position(
        iterations=[int(n) for n in data["scale_iterations"]],
        scale=int(data["scale"]),
        step=int(data["scale_step"]),
        image=data["image"],
        adam_m=data["adam_m"] if t else None,
        adam_v=data["adam_v"] if t else None,
        adam_t=t,
    )


def paints_big(settings: Settings) -> bool:
    """True when a run paints coarse to fine with nst_utils.scales: several scales, a style
    scale, or an Adam run whose whole image would not fit in the memory available.

    A NotEnoughMemoryError (one line) when the painting fits neither whole nor in the smallest
    tiles: `prepare` asks before any image of the painting's size is made.
    """
    from . import memory, scales, tiles

    fits_whole = True
    try:
        memory.check_fits(
            settings.image_width,
            settings.image_height,
            styles=len(settings.style_images),
            optimizer=settings.optimizer,
            precision=settings.precision,
        )
    except NotEnoughMemoryError:
        if settings.optimizer != "adam":
            raise
        fits_whole = False
    if not fits_whole:
        layers = [settings.content_layer] + [name for name, _ in settings.style_layers]
        scales.pick_cell(
            settings.image_width,
            settings.image_height,
            memory.available_mb()[0],
            tiles.halo_for(layers),
            styles=len(settings.style_images),
            precision=settings.precision,
        )
    return not fits_whole or settings.scales > 1 or settings.style_scale != 1.0


def paint_big(
    settings: Settings,
    weights,
    inputs: Inputs,
    output_dir,
    hooks: Hooks,
    state: Optional[dict] = None,
    keep_state: bool = True,
) -> Painting:
    """A coarse-to-fine run (nst_utils.scales), tiled where needed, reported through the same
    hooks as `Painter.run`; snapshots and the final image are at the painting's size, whatever
    scale the painting stopped at.

    With keep_state, the painting's state goes to <output_dir>/state.npz after each step that
    had a snapshot, after any step BIG_STATE_EVERY_SECONDS after the last save, and at the end;
    `state` (from `read_state`) continues it, keeping its iterations per scale (a larger total
    lengthens the finest scale).
    """
    from . import colors, scales
    from .training import FINAL_IMAGE

    unsupported = [
        what
        for what, used in (
            ("--optimizer lbfgs", settings.optimizer != "adam"),
            ("--tv-weight", settings.tv_weight),
        )
        if used
    ]
    if unsupported:
        raise ConfigError(
            f"{', '.join(unsupported)} cannot be used in a coarse-to-fine or "
            f"tiled painting (--scales, --style-scale, or a size that does not "
            f"fit in memory whole); leave it out, or paint a smaller size"
        )
    content, styles, start = inputs.content, inputs.styles, inputs.init
    if settings.preserve_colors:

        def pixels(image):
            return np.clip(np.rint(image), 0, 255).astype(np.uint8)

        styles = [pixels(colors.luminance_image(p, match=content)) for p in styles]
        start = None if start is None else pixels(colors.luminance_image(start))
        content = pixels(colors.luminance_image(content))
    resume, history, saved = None, [], []
    split = scales.split_iterations(settings.num_iterations, settings.scales)
    if state is not None:
        position = state["big"]
        split = scales.resumed_iterations(position.iterations, settings.num_iterations)
        resume = dataclasses.replace(position, iterations=split)
        history = [tuple(row) for row in state["history"]]
        saved = [Path(output_dir) / name for name in state["snapshots"]]
    plan = scales.BigPrint(settings, iterations=split)
    log_every = settings.save_every if hooks.log_every is None else hooks.log_every
    keeps_state = keep_state and output_dir is not False
    state_path = None if output_dir is False else Path(output_dir) / STATE_FILE
    snapshot_taken, last_state = [], [time.monotonic()]

    def full_size(image):
        """A scale's (1, h, w, 3) image at the painting's size, for the files and the result."""
        if image.shape[1:3] == (plan.height, plan.width):
            return image
        return scales.resize_network(image, plan.width, plan.height)

    def on_step(index, size, i, values, image):
        n = len(history)
        history.append(tuple(float(v) for v in values))
        if hooks.on_step is not None:
            hooks.on_step(n, *history[-1])
        if hooks.report is not None and log_every and n % log_every == 0:
            hooks.report(n, *history[-1])
        if output_dir is not False and settings.save_every and n % settings.save_every == 0:
            saved.append(hooks.save(Path(output_dir) / f"{n}.png", full_size(image)))
            snapshot_taken.append(n)

    def after_step(position):
        # The state beside each snapshot (one step on), and at least every BIG_STATE_EVERY_SECONDS.
        due = time.monotonic() - last_state[0] >= BIG_STATE_EVERY_SECONDS
        if keeps_state and (snapshot_taken or due):
            snapshot_taken.clear()
            save_big_state(state_path, position, history, saved, output_dir)
            last_state[0] = time.monotonic()

    done = scales.paint(
        weights,
        plan,
        content,
        styles,
        on_step=on_step,
        should_stop=hooks.should_stop,
        start=start,
        resume=resume,
        after_step=after_step,
        on_stage=hooks.on_stage,
    )
    image = full_size(done.image)  # stopped at a coarser scale, the image is still upsampled
    if output_dir is not False:
        saved.append(hooks.save(Path(output_dir) / FINAL_IMAGE, image))
    if keeps_state and done.stopped != "non-finite":
        save_big_state(state_path, done.position, history, saved, output_dir)
    result = RunResult(
        image=image, iterations=done.iterations, history=history, stopped=done.stopped, saved=saved
    )
    final = history[-1] if history else (float("nan"),) * 3
    return Painting(result=result, final_costs=final, scales=done.scales)


def stylize(
    settings: Settings,
    weights,
    inputs: Inputs,
    output_dir,
    hooks: Optional[Hooks] = None,
    state: Optional[dict] = None,
    keep_state: bool = True,
) -> Painting:
    """Paint one run (settings from `prepare`) with loaded VGG weights; save into output_dir.

    hooks.save defaults to `saver(settings, inputs)`; with keep_state, the optimiser's state
    goes to <output_dir>/state.npz after each snapshot and at the end, and `state` (from
    `read_state`) resumes a run.
    """
    import tensorflow as tf

    hooks = Hooks() if hooks is None else hooks
    if hooks.save is None:
        hooks = dataclasses.replace(hooks, save=saver(settings, inputs))
    if state is not None:
        check_state(settings, state)  # a run painted whole still fits whole
        big = "big" in state
    else:
        big = paints_big(settings)
    if big:
        return paint_big(settings, weights, inputs, output_dir, hooks, state, keep_state)
    content_image, style_images, start_image = network_inputs(settings, inputs)
    try:
        with Painter(settings, weights, content_image, style_images) as painter:
            if keep_state and output_dir is not False:
                state_path = Path(output_dir) / STATE_FILE
                previous = hooks.checkpoint

                def checkpoint(result):
                    save_state(state_path, painter, result, output_dir)
                    if previous is not None:
                        previous(result)

                hooks = dataclasses.replace(hooks, checkpoint=checkpoint)
            result = painter.run(start_image, output_dir, hooks, state)
            return Painting(result=result, final_costs=painter.current_costs())
    except (MemoryError, tf.errors.ResourceExhaustedError):
        raise NSTError(
            f"not enough memory for a {settings.image_width}x{settings.image_height} "
            f"model; try a smaller --width or --height"
        ) from None
