"""The cost of one style-transfer run on the model dict: content, (blended) style and total
variation, built from the graded functions in nst_utils.costs.

Images here are network inputs, (1, H, W, 3) float with the mean pixel subtracted, at the
model's size.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from . import costs
from .errors import ConfigError
from .options import blend_weights
from .settings import DEFAULTS, Settings
from .training import assign_image

tf1 = tf.compat.v1


class Targets:
    """What the costs compare the generated image with: the content image's activations a_C
    (1, n_H, n_W, n_C) at the content layer and each weighted style image's Gram matrices G_S
    (n_C, n_C) per style layer, held in variables that `fill` computes with the network.

    Variables rather than constants, so the whole graph (costs, optimiser) is built, and its
    variables initialised, before the network has run once, and the graph holds no copy of them.
    """

    def __init__(self, model, settings: Settings, style_weights):
        self.model, self.content_layer = model, settings.content_layer
        self.style_count = len(style_weights)
        self.grams = costs.style_grams(model, settings.style_layers)
        # Only styles with a non-zero blend weight are compared with: (weight, {layer: G_S}).
        self.styles = [
            (
                index,
                weight,
                {
                    layer: _target(gram, f"G_S_{index}_{layer}")
                    for layer, gram in self.grams.items()
                },
            )
            for index, weight in enumerate(style_weights)
            if weight
        ]
        self.a_C = _target(model[self.content_layer], "a_C")
        self.variables = [self.a_C] + [v for _, _, grams in self.styles for v in grams.values()]
        self._feeds = [
            tf1.placeholder(tf.float32, v.shape, name="target_feed") for v in self.variables
        ]
        self._load = tf.group(*[v.assign(feed) for v, feed in zip(self.variables, self._feeds)])

    def fill(self, sess, content_image, style_images) -> None:
        """Run the network on the content image and each weighted style image (network images,
        (1, H, W, 3)) and load the targets, as the original read a_C and a_S. Loading a
        variable initialises it: the targets need no initializer of their own.

        model['input'] is left holding the last image run: assign the starting image after.
        A ConfigError, with nothing loaded, unless there are as many style images as built for.
        """
        if len(style_images) != self.style_count:
            raise ConfigError(
                f"the costs were built for {self.style_count} style image(s), not "
                f"the {len(style_images)} given; build them with style_count="
                f"{len(style_images)}"
            )
        variable = self.model["input"]
        assign_image(sess, variable, content_image)
        values = [sess.run(self.model[self.content_layer])]
        for index, _, _ in self.styles:
            assign_image(sess, variable, style_images[index])
            grams = sess.run(self.grams)
            values += [grams[layer] for layer in self.grams]
        sess.run(self._load, dict(zip(self._feeds, values)))


def _target(tensor, name):
    """A zero-filled float32 variable of `tensor`'s shape. Local, so the original loop's
    global_variables_initializer leaves the targets it optimises towards alone."""
    return tf1.Variable(
        tf.zeros(tensor.get_shape()),
        trainable=False,
        name=name,
        collections=[tf1.GraphKeys.LOCAL_VARIABLES],
    )


@dataclasses.dataclass
class TransferCosts:
    """Scalar tensors of one run: total J, J_content, J_style (blended) and J_tv, and the
    targets they compare with (fill them before evaluating)."""

    total: tf.Tensor
    content: tf.Tensor
    style: tf.Tensor
    tv: tf.Tensor
    targets: Targets

    def reported(self) -> tuple:
        """The three costs the original reports: (J, J_content, J_style)."""
        return (self.total, self.content, self.style)


def total_variation_cost(image):
    """Sum of squared differences between neighbouring pixels of a (1, H, W, 3) image.

    Smooths the result when weighted in (--tv-weight); the original had no such term.
    """
    down = image[:, 1:, :, :] - image[:, :-1, :, :]
    right = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_sum(tf.square(down)) + tf.reduce_sum(tf.square(right))


def build_transfer_costs(
    model, settings: Settings = DEFAULTS, style_count: int = 1
) -> TransferCosts:
    """J = alpha J_content + beta sum_s(w_s J_style(s)) + tv_weight J_tv, on model['input'],
    for one content image and `style_count` style images.

    The layers, alpha, beta, tv_weight and the blend weights w_s (scaled to sum to 1) are
    `settings'`. Builds graph only: with the network's weights initialised, call
    `costs.targets.fill(sess, content_image, style_images)` before evaluating the costs.
    """
    weights = blend_weights(style_count, settings.style_blend_weights)
    targets = Targets(model, settings, weights)
    J_content = costs.compute_content_cost(targets.a_C, model[settings.content_layer])
    J_style = 0
    for _, weight, style in targets.styles:
        J_style += weight * costs.style_cost_from_grams(
            model, targets.grams, style, settings.style_layers
        )
    J_style = tf.convert_to_tensor(J_style, dtype=tf.float32)
    J_tv = total_variation_cost(model["input"])
    J = costs.total_cost(J_content, J_style, alpha=settings.alpha, beta=settings.beta)
    if settings.tv_weight:
        J = J + settings.tv_weight * J_tv
    return TransferCosts(total=J, content=J_content, style=J_style, tv=J_tv, targets=targets)
