"""The optimisation loop shared by the notebook's `model_nn` and the command line.

It runs the training op (Adam in the original) on the generated image, reports the three costs
and saves a snapshot every `save_every` iterations, and saves the final image. It stops early,
keeping the last good image, when asked to or when a cost stops being finite.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from .config import CONFIG
from .images import save_image

tf1 = tf.compat.v1

FINAL_IMAGE = "generated_image.jpg"


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
    """The original notebook's printout of the three costs at iteration i."""
    print("Iteration " + str(i) + " :")
    print("total cost = " + str(total))
    print("content cost = " + str(content))
    print("style cost = " + str(style))


def assign_image(sess, variable, image):
    """Load a (1, H, W, 3) array into the input variable without baking it into the graph."""
    feed = tf1.placeholder(variable.dtype.base_dtype, shape=variable.get_shape(), name="image_feed")
    sess.run(variable.assign(feed), {feed: np.asarray(image, dtype=np.float32)})


def _finite(values) -> bool:
    return all(math.isfinite(float(v)) for v in values)


def optimize(sess, model, train_step, costs: Sequence, input_image, num_iterations=None,
             save_every=None, output_dir=None, means=None, initialize=True,
             report: Optional[Callable] = print_report, on_step: Optional[Callable] = None,
             should_stop: Optional[Callable[[], bool]] = None) -> RunResult:
    """Run `train_step` num_iterations times on model['input'], starting from input_image.

    costs: the (J, J_content, J_style) tensors. Every `save_every` iterations (after the step,
    as the original did) `report(i, total, content, style)` is called and `<output_dir>/<i>.png`
    saved; the final image goes to `<output_dir>/generated_image.jpg`. output_dir=False saves
    nothing. on_step(i, total, content, style) sees the costs of every iteration's starting image;
    should_stop() is asked before each iteration.
    """
    num_iterations = CONFIG.num_iterations if num_iterations is None else num_iterations
    save_every = CONFIG.save_every if save_every is None else save_every
    output_dir = CONFIG.output_dir if output_dir is None else output_dir
    variable = model["input"]
    if initialize:
        sess.run(tf1.global_variables_initializer())
    assign_image(sess, variable, input_image)
    fetches = [train_step] + list(costs)
    good_image = np.asarray(input_image, dtype=np.float32)
    result = RunResult(image=good_image, iterations=0, history=[])
    for i in range(num_iterations):
        if should_stop is not None and should_stop():
            result.stopped = "interrupted"
            break
        start_image = sess.run(variable)
        values = [float(v) for v in sess.run(fetches)[1:]]
        if not (_finite(values) and np.isfinite(start_image).all()):
            result.stopped = "non-finite"
            break
        good_image = start_image
        result.history.append(tuple(values))
        result.iterations = i + 1
        if on_step is not None:
            on_step(i, *values)
        if save_every and i % save_every == 0:
            generated_image = sess.run(variable)
            snapshot = [float(v) for v in sess.run(list(costs))]
            if report is not None:
                report(i, *snapshot)
            if output_dir is not False and _finite(snapshot):
                result.saved.append(save_image(Path(output_dir) / f"{i}.png", generated_image, means))
    final = sess.run(variable)
    if result.stopped != "non-finite" and np.isfinite(final).all():
        good_image = final
    else:
        result.stopped = result.stopped or "non-finite"
        assign_image(sess, variable, good_image)
    result.image = good_image
    if output_dir is not False:
        result.saved.append(save_image(Path(output_dir) / FINAL_IMAGE, good_image, means))
    return result
