"""The optimisation loop shared by the notebook's `model_nn` and the command line.

It runs the training op (Adam in the original) on the generated image, reports the three costs
and saves a snapshot every `save_every` iterations, and saves the final image. It stops early,
keeping the last good image, when asked to or when a cost stops being finite. An optimiser that
runs its own loop (L-BFGS through SciPy, see nst_utils.lbfgs) drives the same bookkeeping
(`RunTracker`), so reporting, snapshots, NaN handling and the final save are written once.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from .images import save_image
from .run_record import FINAL_IMAGE, snapshot_name
from .settings import DEFAULTS

tf1 = tf.compat.v1


@dataclasses.dataclass
class RunResult:
    """What a run produced: the final image (1, H, W, 3), how far it got, and why it stopped.

    history holds (total, content, style) of the image before each completed iteration.
    stopped is None (all iterations ran), 'interrupted' or 'non-finite'.
    """

    image: np.ndarray
    iterations: int
    history: list
    stopped: Optional[str] = None
    saved: list = dataclasses.field(default_factory=list)


def print_report(i, total, content, style):
    """The original notebook's printout of the three costs at iteration i.

    The costs print as str() of numpy float32 values did under the original's numpy (numpy's
    own 1.13 emulation: ``5.05035e+09``, ``7877.67``), whatever type they come as; the
    notebook sets the same print option for its own report.
    """
    print("Iteration " + str(i) + " :")
    print("total cost = " + _as_printed(total))
    print("content cost = " + _as_printed(content))
    print("style cost = " + _as_printed(style))


def _as_printed(value) -> str:
    with np.printoptions(legacy="1.13"):
        return str(np.float32(value))


#: graph -> {variable name: (placeholder, assign op)}, so repeated assignments add no graph nodes.
_FEEDERS = weakref.WeakKeyDictionary()


def assign_image(sess, variable, image):
    """Load a (1, H, W, 3) array into the input variable without baking it into the graph.

    The placeholder and assign op are made once per variable and reused (L-BFGS assigns an
    image at every cost evaluation).
    """
    feeders = _FEEDERS.setdefault(variable.graph, {})
    if variable.name not in feeders:
        with variable.graph.as_default():
            feed = tf1.placeholder(
                variable.dtype.base_dtype, shape=variable.get_shape(), name="image_feed"
            )
            feeders[variable.name] = (feed, variable.assign(feed))
    feed, op = feeders[variable.name]
    sess.run(op, {feed: np.asarray(image, dtype=np.float32).reshape(variable.get_shape())})


def _finite(values) -> bool:
    return all(math.isfinite(float(v)) for v in values)


@dataclasses.dataclass
class Hooks:
    """How a run talks to its caller; every hook is optional.

    report(i, total, content, style): the original's printout, every `log_every` iterations
    (None: every save_every). on_step(i, total, content, style): the costs of every iteration's
    starting image. should_stop(): asked before each iteration. save(path, image): writes a
    (1, H, W, 3) network image (default: save_image with the run's means). checkpoint(result):
    called after each snapshot and once at the end, to keep the optimiser's state.
    on_stage(text, fraction): what a long iteration is doing (a big print's scale and tile) and
    the share of it done. on_scale(records): a big print's scales (nst_utils.scales.paint's
    records) as planned and as each ends.
    """

    report: Optional[Callable] = print_report
    log_every: Optional[int] = None
    on_step: Optional[Callable] = None
    should_stop: Optional[Callable[[], bool]] = None
    save: Optional[Callable] = None
    checkpoint: Optional[Callable] = None
    on_stage: Optional[Callable[[str, float], None]] = None
    on_scale: Optional[Callable[[list], None]] = None


class RunTracker:
    """The bookkeeping of one run, shared by every optimiser.

    An optimiser calls `stop_requested()` before each iteration, `completed(i, start_image,
    values)` after iteration i (with the image it started from and that image's costs, and the
    session's variable already holding the new image), and `finish()` once at the end.
    output_dir=False saves nothing. `previous`: the result so far of a run being resumed (its
    iterations, history and snapshots carry on).
    """

    def __init__(
        self,
        sess,
        variable,
        costs: Sequence,
        input_image,
        save_every,
        output_dir,
        hooks: Hooks,
        previous: Optional[RunResult] = None,
    ):
        self.sess, self.variable, self.costs = sess, variable, list(costs)
        self.save_every, self.output_dir, self.hooks = save_every, output_dir, hooks
        self.log_every = save_every if hooks.log_every is None else hooks.log_every
        self.good_image = np.asarray(input_image, dtype=np.float32)
        self.result = RunResult(image=self.good_image, iterations=0, history=[])
        self._cost_values = None
        self._pending = None  # (i, image after step i): a snapshot waiting for its costs
        if previous is not None:
            self.result.iterations = previous.iterations
            self.result.history, self.result.saved = list(previous.history), list(previous.saved)
            # A run cut short right after a checkpoint may owe the snapshot of its last step
            # (its costs were to come from the next step): that image is the one resumed from.
            last = previous.iterations - 1
            if (
                last >= 0
                and self._saves(last)
                and not any(Path(p).name == snapshot_name(last) for p in previous.saved)
            ):
                self._pending = (last, self.good_image)

    def stop_requested(self) -> bool:
        """True (and the run marked interrupted) if the caller's should_stop() says so."""
        if self.hooks.should_stop is not None and self.hooks.should_stop():
            self.result.stopped = "interrupted"
            return True
        return False

    def current_costs(self) -> list:
        """The costs of the image the variable holds now (one compiled fetch, made once)."""
        if self._cost_values is None:
            self._cost_values = self.sess.make_callable(self.costs)
        return [float(v) for v in self._cost_values()]

    def completed(self, i, start_image, values, new_image=None) -> bool:
        """Record iteration i; False (run marked non-finite) if its starting point was not finite.

        new_image: the image after the step, when the optimiser has it already. Its costs are
        then the next iteration's `values`, so a snapshot after step i is reported and saved
        when iteration i + 1 completes (or at `finish`), with no forward pass of its own.
        """
        values = [float(v) for v in values]
        pending, self._pending = self._pending, None
        if not (_finite(values) and np.isfinite(start_image).all()):
            if pending is not None:
                self._snapshot(*pending, values)  # reported; not saved, its costs are not finite
            self.result.stopped = "non-finite"
            return False
        self.good_image = np.asarray(start_image, dtype=np.float32)
        self.result.history.append(tuple(values))
        self.result.iterations = i + 1
        hooks = self.hooks
        if hooks.on_step is not None:
            hooks.on_step(i, *values)
        if pending is not None:  # after recording i, so a checkpoint matches the session's state
            held = self.sess.run(self.variable) if new_image is None else new_image
            self._snapshot(*pending, values, held)
        log_now = hooks.report is not None and bool(self.log_every) and i % self.log_every == 0
        if self._saves(i) or log_now:
            if new_image is None:
                self._snapshot(i, self.sess.run(self.variable), self.current_costs())
            else:
                self._pending = (i, new_image)
        return True

    def _snapshot(self, i, image, costs, held=None) -> None:
        """Report and save the image after step i, whose costs are `costs`; then checkpoint.

        held: the image the session's variable holds now, when it is a later one than `image`:
        the state a checkpoint keeps, so it is kept only if finite.
        """
        hooks = self.hooks
        if hooks.report is not None and bool(self.log_every) and i % self.log_every == 0:
            hooks.report(i, *costs)
        if self._saves(i) and self.output_dir is not False and _finite(costs):
            self.result.saved.append(self.save(Path(self.output_dir) / snapshot_name(i), image))
            held = image if held is None else held
            if hooks.checkpoint is not None and np.isfinite(held).all():
                hooks.checkpoint(self.result)

    def _saves(self, i) -> bool:
        """Whether the image after step i is saved as a snapshot."""
        return bool(self.save_every) and i % self.save_every == 0

    def save(self, path, image):
        return self.hooks.save(path, image)

    def finish(self) -> RunResult:
        """Settle on the final image (the last good one if the latest is not finite) and save it."""
        if self._pending is not None:  # the last step's snapshot: the variable holds its image
            pending, self._pending = self._pending, None
            self._snapshot(*pending, self.current_costs())
        final = self.sess.run(self.variable)
        if self.result.stopped != "non-finite" and np.isfinite(final).all():
            self.good_image = final
        else:
            self.result.stopped = self.result.stopped or "non-finite"
            assign_image(self.sess, self.variable, self.good_image)
        self.result.image = self.good_image
        if self.output_dir is not False:
            self.result.saved.append(
                self.save(Path(self.output_dir) / FINAL_IMAGE, self.good_image)
            )
        if self.hooks.checkpoint is not None and self.result.stopped != "non-finite":
            self.hooks.checkpoint(self.result)
        return self.result


#: graph -> {train op name: tensor of the image after that op}, made once per graph and op.
_AFTER_STEP = weakref.WeakKeyDictionary()


def image_after(train_step, variable):
    """A tensor holding the variable's value once `train_step` has run (same session call)."""
    made = _AFTER_STEP.setdefault(variable.graph, {})
    if train_step.name not in made:
        with variable.graph.as_default(), tf.control_dependencies([train_step]):
            made[train_step.name] = tf.identity(variable.read_value(), name="image_after_step")
    return made[train_step.name]


def optimize(
    sess,
    model,
    train_step,
    costs: Sequence,
    input_image,
    num_iterations=None,
    save_every=None,
    output_dir=None,
    means=None,
    hooks: Optional[Hooks] = None,
    previous: Optional[RunResult] = None,
) -> RunResult:
    """Run `train_step` num_iterations times on model['input'], starting from input_image.

    costs: the (J, J_content, J_style) tensors. Every `save_every` iterations (after the step,
    as the original did) `<output_dir>/<i>.png` is saved and hooks.report is called (see Hooks);
    the final image goes to `<output_dir>/generated_image.jpg`. output_dir=False saves nothing.
    means: the mean pixel the default writer adds back. train_step is a TF op run once per
    iteration, or an object with a `drive(tracker, num_iterations)` method that runs its own loop
    (nst_utils.lbfgs.LBFGS). previous: the result so far of a stopped run whose variables (the
    image, the optimiser's state) the session already holds; the run resumes at iteration
    previous.iterations instead of initialising them.
    """
    num_iterations = DEFAULTS.num_iterations if num_iterations is None else num_iterations
    save_every = DEFAULTS.save_every if save_every is None else save_every
    output_dir = DEFAULTS.output_dir if output_dir is None else output_dir
    hooks = Hooks() if hooks is None else hooks
    if hooks.save is None:
        hooks = dataclasses.replace(hooks, save=lambda path, image: save_image(path, image, means))
    variable = model["input"]
    if previous is None:  # each variable's own initializer: no grouping op altering the graph
        sess.run(
            [v.initializer for v in variable.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)]
        )
    assign_image(sess, variable, input_image)
    tracker = RunTracker(
        sess, variable, costs, input_image, save_every, output_dir, hooks, previous
    )
    if hasattr(train_step, "drive"):
        train_step.drive(tracker, num_iterations)
        return tracker.finish()
    # One fixed set of fetches, compiled once: the step, the image after it and the costs of
    # the image before it.
    step = sess.make_callable([image_after(train_step, variable)] + list(costs))
    start_image = np.asarray(input_image, dtype=np.float32)
    for i in range(tracker.result.iterations, num_iterations):
        if tracker.stop_requested():
            break
        new_image, *values = step()
        if not tracker.completed(i, start_image, values, new_image):
            break
        start_image = new_image
    return tracker.finish()
