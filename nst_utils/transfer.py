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
from .vgg import initialize_weights


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


def style_grams(model, style_layers) -> dict:
    """{layer: G (n_C, n_C)}: the Gram matrix of model[layer], unrolled as compute_layer_style_cost
    unrolls it; run with a style image assigned it gives that image's G_S."""
    grams = {}
    for layer_name, _ in style_layers:
        _, n_H, n_W, n_C = model[layer_name].get_shape().as_list()
        unrolled = tf.transpose(tf.reshape(model[layer_name], [n_H * n_W, n_C]))
        grams[layer_name] = costs.gram_matrix(unrolled)
    return grams


def style_cost_from_grams(model, grams, style_grams_values, style_layers):
    """compute_style_cost's J_style, given the style image's Gram matrices (numpy, {layer: G_S}).

    The same sum of lambda_l sum((G_S - G_G)^2) / (4 n_C^2 (n_H n_W)^2), holding each G_S
    (n_C x n_C) in the graph instead of the style image's activations (n_H n_W n_C floats per
    layer, which TensorFlow copied several times).
    """
    J_style = 0
    for layer_name, coeff in style_layers:
        _, n_H, n_W, n_C = model[layer_name].get_shape().as_list()
        GS = tf.constant(style_grams_values[layer_name], dtype=tf.float32)
        J_layer = tf.reduce_sum(tf.square(tf.subtract(GS, grams[layer_name])))
        J_style += coeff * J_layer / (4 * n_C ** 2 * (n_H * n_W) ** 2)
    return J_style


def build_transfer_costs(sess, model, content_image, style_images,
                         settings: Settings = DEFAULTS) -> TransferCosts:
    """J = alpha J_content + beta sum_s(w_s J_style(s)) + tv_weight J_tv, on model['input'].

    The layers, alpha, beta, tv_weight and the blend weights w_s (one per style image, scaled
    to sum to 1) are `settings`'.

    The content and each style image are assigned to model['input'] in turn to read a_C and
    each style's Gram matrices, as the original notebook read a_C and a_S; the variable is left
    holding the last style image, so assign the starting image before optimising.
    """
    variable, content_layer = model["input"], settings.content_layer
    initialize_weights(sess)
    assign_image(sess, variable, content_image)
    a_C = sess.run(model[content_layer])
    J_content = costs.compute_content_cost(a_C, model[content_layer])
    grams = style_grams(model, settings.style_layers)
    J_style = 0
    for style_image, weight in zip(style_images,
                                   blend_weights(style_images, settings.style_blend_weights)):
        assign_image(sess, variable, style_image)
        if weight:
            J_style += weight * style_cost_from_grams(model, grams, sess.run(grams),
                                                      settings.style_layers)
    J_style = tf.convert_to_tensor(J_style, dtype=tf.float32)
    J_tv = total_variation_cost(variable)
    J = costs.total_cost(J_content, J_style, alpha=settings.alpha, beta=settings.beta)
    if settings.tv_weight:
        J = J + settings.tv_weight * J_tv
    return TransferCosts(total=J, content=J_content, style=J_style, tv=J_tv)
