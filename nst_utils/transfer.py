"""The cost of one style-transfer run on the model dict: content, (blended) style and total
variation, built from the graded functions in nst_utils.costs.

Images here are network inputs, (1, H, W, 3) float with the mean pixel subtracted, at the
model's size.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from . import costs
from .options import blend_weights
from .settings import DEFAULTS, Settings
from .training import assign_image


@dataclasses.dataclass
class TransferCosts:
    """Scalar tensors of one run: total J, J_content, J_style (blended) and J_tv."""

    total: tf.Tensor
    content: tf.Tensor
    style: tf.Tensor
    tv: tf.Tensor

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


def build_transfer_costs(sess, model, content_image, style_images,
                         settings: Settings = DEFAULTS) -> TransferCosts:
    """J = alpha J_content + beta sum_s(w_s J_style(s)) + tv_weight J_tv, on model['input'].

    The layers, alpha, beta, tv_weight and the blend weights w_s (one per style image, scaled
    to sum to 1) are `settings`'.

    The content and each style image are assigned to model['input'] in turn to read their
    activations (a_C, a_S), as the original notebook did; the variable is left holding the last
    style image, so assign the starting image before optimising.
    """
    variable, content_layer = model["input"], settings.content_layer
    assign_image(sess, variable, content_image)
    a_C = sess.run(model[content_layer])
    J_content = costs.compute_content_cost(a_C, model[content_layer])
    J_style = 0
    for style_image, weight in zip(style_images,
                                   blend_weights(style_images, settings.style_blend_weights)):
        assign_image(sess, variable, style_image)
        if weight:
            J_style += weight * costs.compute_style_cost(model, settings.style_layers, sess=sess)
    J_style = tf.convert_to_tensor(J_style, dtype=tf.float32)
    J_tv = total_variation_cost(variable)
    J = costs.total_cost(J_content, J_style, alpha=settings.alpha, beta=settings.beta)
    if settings.tv_weight:
        J = J + settings.tv_weight * J_tv
    return TransferCosts(total=J, content=J_content, style=J_style, tv=J_tv)
