"""The painting core: settings, weights and hooks in, a painted image out.

`prepare` reads the images a run's settings name and settles what the settings leave open
(the model size from the content's aspect, the blend weights, the seed); `Painter` builds the
graph (VGG-19, the costs of nst_utils.transfer, Adam or L-BFGS) in its own session and runs
the loop of nst_utils.training; `stylize` does both for one run. Nothing here reads the
command line or the environment: `commands/generate.py` maps those onto a `Settings`, and
`benchmarks/bench.py` times this same `Painter`.

The optimiser's state is saved after each snapshot and at the end, and a run continues from it
bit for bit: see nst_utils.state.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path
from typing import Optional

import numpy as np

from . import scales
from . import state as state_module
from .errors import ConfigError, NSTError
from .run_record import FINAL_IMAGE, STATE_FILE, snapshot_name
from .settings import INITS, Settings
from .training import Hooks, RunResult


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

    The size is `preflight.painting_size`'s; a seed of None is drawn at random.
    """
    from . import images, options
    from .preflight import painting_size

    blend = options.blend_weights(len(settings.style_images), settings.style_blend_weights)
    # The content's size from its header: a large photo is then decoded at a reduced scale.
    content_width, content_height = images.image_size(settings.content_image)
    width, height = painting_size(settings, (content_width, content_height))
    # Whether the painting can fit at all, before any image of its size is made.
    big = scales.paints_big(settings.replace(image_width=width, image_height=height))
    init = None
    if settings.init not in INITS:
        init = images.load_image(settings.init, (width, height))
    # A painting made whole fills its style targets at its own size, however small; only
    # coarse-to-fine scales resize the styles again (to at least 16 pixels) and rescale Grams.
    style_wh = scales.style_size(width, height, settings.style_scale) if big else (width, height)
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
        content, styles, init = colors.luminance_inputs(content, styles, init)

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
        (see nst_utils.state.read_state) when resuming, up to `iterations` (default: the
        settings');
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
    had a snapshot, after any step BIG_STATE_EVERY_SECONDS (nst_utils.state) after the last save,
    and at the end; `state` (from `read_state`) continues it, keeping its iterations per scale
    (a larger total lengthens the finest scale).
    """
    from . import colors

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
        content, styles, start = colors.luminance_inputs(content, styles, start)
        content, styles = colors.as_pixels(content), [colors.as_pixels(p) for p in styles]
        start = None if start is None else colors.as_pixels(start)
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
            saved.append(hooks.save(Path(output_dir) / snapshot_name(n), full_size(image)))
            snapshot_taken.append(n)

    def after_step(position):
        # The state beside each snapshot (one step on), and at least every BIG_STATE_EVERY_SECONDS.
        due = time.monotonic() - last_state[0] >= state_module.BIG_STATE_EVERY_SECONDS
        if keeps_state and (snapshot_taken or due):
            snapshot_taken.clear()
            state_module.save_big_state(state_path, position, history, saved, output_dir)
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
        on_scale=hooks.on_scale,
    )
    image = full_size(done.image)  # stopped at a coarser scale, the image is still upsampled
    if output_dir is not False:
        saved.append(hooks.save(Path(output_dir) / FINAL_IMAGE, image))
    if keeps_state and done.stopped != "non-finite":
        state_module.save_big_state(state_path, done.position, history, saved, output_dir)
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
        state_module.check_state(settings, state)  # a run painted whole still fits whole
        big = "big" in state
    else:
        big = scales.paints_big(settings)
    if big:
        return paint_big(settings, weights, inputs, output_dir, hooks, state, keep_state)
    content_image, style_images, start_image = network_inputs(settings, inputs)
    try:
        with Painter(settings, weights, content_image, style_images) as painter:
            if keep_state and output_dir is not False:
                state_path = Path(output_dir) / STATE_FILE
                previous = hooks.checkpoint

                def checkpoint(result):
                    state_module.save_state(
                        state_path, painter.variable_values(), result, output_dir
                    )
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
