"""The costs and the image gradient of a painting too large to evaluate whole, tile by tile.

The Gram matrices and the content cost are sums over feature positions, so they can be summed
tile by tile. The image is cut into cells on the 16-pixel grid of VGG's four pools (a cell's
corners are whole pixels at every layer up to conv5_1); each tile is a cell with a halo of at
least the receptive radius of the deepest layer used, so the activations inside the cell are
exactly the whole image's. Pass 1 sums every cell's contribution to each Gram matrix (and to the
content cost); pass 2 backpropagates each cell's contribution with the whole image's Grams held
fixed (J depends on a cell's activations only through the Grams and the content term) and adds
the tiles' input gradients. The result is the whole image's costs and gradient, to float
rounding; only one tile's activations are in memory at a time.

Images are network images, (1, H, W, 3) float32 with the mean pixel subtracted.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .architecture import CONV_LAYERS
from .errors import ConfigError

#: VGG-19 pools four times before conv5_1: cells on this grid stay aligned at every layer.
GRID = 16


def layer_stride(layer: str) -> int:
    """Input pixels per position of `layer` ('conv3_1' -> 4): 2 per pool before it."""
    return 2 ** (int(layer[4]) - 1)


def receptive_radius(layer: str) -> int:
    """How far (in input pixels) the input that one position of `layer` sees reaches beyond
    that position's own pixels: 3x3 convs add one position each side, pools double the step."""
    if layer not in {c.name for c in CONV_LAYERS}:
        raise ConfigError(f"unknown layer {layer!r}")
    radius, step = 0, 1
    for conv in CONV_LAYERS:
        block, position = conv.name[4], conv.name[6]
        if position == "1" and block != "1":
            radius += step  # a 2x2 pool of stride 2 reaches one more position at this step
            step *= 2
        radius += step  # a 3x3 conv reaches one position further each side
        if conv.name == layer:
            return radius
    raise AssertionError("unreachable")


def halo_for(layers) -> int:
    """The halo (pixels, a multiple of GRID) that makes a cell's activations exact at `layers`."""
    radius = max(receptive_radius(name) for name in layers)
    return GRID * math.ceil(radius / GRID)


@dataclasses.dataclass(frozen=True)
class Tile:
    """A cell (its interior: rows top:bottom, columns left:right of the image) and the window
    around it that is evaluated (rows y0:y1, columns x0:x1), clipped to the image."""

    top: int
    left: int
    bottom: int
    right: int
    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def interior_in_window(self) -> tuple:
        """The cell's box (top, left, bottom, right) in the window's own coordinates."""
        return (
            self.top - self.y0,
            self.left - self.x0,
            self.bottom - self.y0,
            self.right - self.x0,
        )


def plan_tiles(height: int, width: int, cell: int | None, halo: int) -> list:
    """Cells of `cell` x `cell` pixels (a multiple of GRID; None: one cell, the whole image)
    covering height x width, each with its window of `halo` pixels around it."""
    if cell is not None and (cell <= 0 or cell % GRID):
        raise ConfigError(
            f"the tile's cell must be a positive multiple of {GRID} pixels, got {cell}"
        )
    if cell is None or (cell >= height and cell >= width):
        return [Tile(0, 0, height, width, 0, 0, height, width)]
    tiles = []
    for top in range(0, height, cell):
        for left in range(0, width, cell):
            bottom, right = min(height, top + cell), min(width, left + cell)
            tiles.append(
                Tile(
                    top,
                    left,
                    bottom,
                    right,
                    max(0, top - halo),
                    max(0, left - halo),
                    min(height, bottom + halo),
                    min(width, right + halo),
                )
            )
    return tiles


def largest_window(height: int, width: int, cell: int | None, halo: int) -> tuple:
    """(width, height) of the largest window `plan_tiles` evaluates: a tile's size in memory
    (its margins clipped at the image's edges)."""

    def longest(length):
        if cell is None or cell >= length:
            return length
        return max(
            min(length, start + cell + halo) - max(0, start - halo)
            for start in range(0, length, cell)
        )

    if cell is None or (cell >= height and cell >= width):
        return width, height
    return longest(width), longest(height)


def layer_size(layer: str, height: int, width: int) -> tuple:
    """(n_H, n_W) of `layer` for a height x width input (SAME pools round up)."""
    stride = layer_stride(layer)
    return -(-height // stride), -(-width // stride)


class TiledCosts:
    """The style-transfer costs and their image gradient, evaluated tile by tile.

    One graph on an input placeholder of any size serves every tile. Costs are those of
    nst_utils.transfer (alpha J_content + beta sum_s w_s J_style(s)), the style given as each
    style image's Gram matrices at the style layers.
    """

    def __init__(self, weights, settings=None, cell: int | None = None, session_config=None):
        """settings: a Settings (default: the defaults) for the content and style layers,
        alpha, beta, pooling and precision; cell: the tiles' cell (None: the whole image)."""
        import tensorflow as tf

        from . import costs, vgg
        from .settings import DEFAULTS

        tf1 = tf.compat.v1
        settings = DEFAULTS if settings is None else settings
        self.content_layer = content_layer = settings.content_layer
        self.style_layers = [(name, float(coeff)) for name, coeff in settings.style_layers]
        self.alpha, self.beta, self.cell = float(settings.alpha), float(settings.beta), cell
        layers = [content_layer] + [name for name, _ in self.style_layers]
        self.halo = halo_for(layers)
        deepest = max(layers, key=lambda name: [c.name for c in CONV_LAYERS].index(name))
        if settings.precision not in vgg.DTYPES:
            raise ConfigError(
                f"precision must be one of {', '.join(vgg.DTYPES)}, got {settings.precision!r}"
            )
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.image = tf1.placeholder(tf.float32, (1, None, None, 3), name="tile")
            self.box = tf1.placeholder(tf.int32, (4,), name="interior")
            net = vgg.vgg_layers(
                self.image, weights, settings.pooling, settings.precision, until=deepest
            )
            self.interior = {name: self._interior(net[name], layer_stride(name)) for name in layers}
            self.grams = {}
            for name, _ in self.style_layers:
                n_C = net[name].get_shape().as_list()[-1]
                self.grams[name] = costs.gram_matrix(
                    tf.transpose(tf.reshape(self.interior[name], [-1, n_C]))
                )
            n_C = net[content_layer].get_shape().as_list()[-1]
            self.a_C = tf1.placeholder(tf.float32, (1, None, None, n_C), name="a_C")
            self.content_sum = tf.reduce_sum(tf.square(self.a_C - self.interior[content_layer]))
            # Pass 2: a surrogate whose gradient is the cell's share of dJ/dimage, with
            # M_l = dJ/dG_l and the content weight fixed by the whole image.
            self.dJ_dG = {
                name: tf1.placeholder(tf.float32, self.grams[name].shape, name=f"M_{name}")
                for name in self.grams
            }
            self.content_weight = tf1.placeholder(tf.float32, (), name="content_weight")
            surrogate = self.content_weight * self.content_sum
            for name, G in self.grams.items():
                surrogate += tf.reduce_sum(self.dJ_dG[name] * G)
            self.gradient = tf.gradients(surrogate, self.image)[0]
            # One pass when the image is a single tile: J's style part in the graph, as
            # sum_l k_l ||G_l - mean_l||^2 with mean_l the blend of the style Grams and k_l
            # beta * coeff_l * (sum of blend weights) / norm_l, fed with the image's size.
            self.mean_G = {
                name: tf1.placeholder(tf.float32, G.shape, name=f"mean_{name}")
                for name, G in self.grams.items()
            }
            self.style_weight = {
                name: tf1.placeholder(tf.float32, (), name=f"k_{name}") for name in self.grams
            }
            self.distance = {
                name: tf.reduce_sum(tf.square(G - self.mean_G[name]))
                for name, G in self.grams.items()
            }
            whole = self.content_weight * self.content_sum
            for name, distance in self.distance.items():
                whole += self.style_weight[name] * distance
            self.whole_gradient = tf.gradients(whole, self.image)[0]
            self.sess = tf1.Session(graph=self.graph, config=session_config)
            self.sess.run(tf1.global_variables_initializer())

    def _content_norm(self, height, width, n_C):
        from .costs import content_normalisation

        return float(content_normalisation(*layer_size(self.content_layer, height, width), n_C))

    def _style_norm(self, name, height, width, n_C):
        from .costs import style_normalisation

        return float(style_normalisation(*layer_size(name, height, width), n_C))

    def _interior(self, activation, stride):
        """The cell's positions of a (1, h, w, C) activation (its box scaled by `stride`)."""
        top, left = self.box[0] // stride, self.box[1] // stride
        bottom, right = (self.box[2] + stride - 1) // stride, (self.box[3] + stride - 1) // stride
        return activation[:, top:bottom, left:right, :]

    def close(self):
        self.sess.close()

    def tiles(self, height, width) -> list:
        return plan_tiles(height, width, self.cell, self.halo)

    def _window(self, image, tile):
        return np.ascontiguousarray(
            image[:, tile.y0 : tile.y1, tile.x0 : tile.x1, :], dtype=np.float32
        )

    def content_target(self, content_image) -> np.ndarray:
        """a_C: the content image's activation at the content layer, (1, n_H, n_W, n_C)."""
        _, height, width, _ = np.shape(content_image)
        n_H, n_W = layer_size(self.content_layer, height, width)
        n_C = self.interior[self.content_layer].get_shape().as_list()[-1]
        out = np.zeros((1, n_H, n_W, n_C), dtype=np.float32)
        stride = layer_stride(self.content_layer)
        for tile in self.tiles(height, width):
            part = self.sess.run(
                self.interior[self.content_layer],
                {self.image: self._window(content_image, tile), self.box: tile.interior_in_window},
            )
            out[
                :,
                tile.top // stride : tile.top // stride + part.shape[1],
                tile.left // stride : tile.left // stride + part.shape[2],
            ] = part
        return out

    def style_grams(self, style_image) -> dict:
        """{style layer: G_S (n_C, n_C)} of a style image of any size, summed tile by tile."""
        _, height, width, _ = np.shape(style_image)
        total = None
        for tile in self.tiles(height, width):
            part = self.sess.run(
                self.grams,
                {self.image: self._window(style_image, tile), self.box: tile.interior_in_window},
            )
            total = part if total is None else {k: total[k] + part[k] for k in total}
        return {k: v.astype(np.float32) for k, v in total.items()}

    def _slice_a_C(self, a_C, tile):
        stride = layer_stride(self.content_layer)
        top, left = tile.top // stride, tile.left // stride
        bottom, right = -(-tile.bottom // stride), -(-tile.right // stride)
        return a_C[:, top:bottom, left:right, :]

    def costs_and_gradient(self, image, a_C, style_targets, on_tile=None) -> tuple:
        """((J, J_content, J_style), dJ/dimage (1, H, W, 3) float32) of the whole image.

        a_C from `content_target`; style_targets: [(blend weight, style_grams(...)), ...];
        on_tile(k, 2n) after each of the two passes' n tiles (not called for a single tile).
        """
        _, height, width, _ = np.shape(image)
        tiles = self.tiles(height, width)
        if len(tiles) == 1:
            return self._one_pass(image, a_C, style_targets)
        grams, content_sum = None, 0.0
        for k, tile in enumerate(tiles, 1):  # pass 1: the whole image's sums
            part, c = self.sess.run(
                (self.grams, self.content_sum),
                {
                    self.image: self._window(image, tile),
                    self.box: tile.interior_in_window,
                    self.a_C: self._slice_a_C(a_C, tile),
                },
            )
            grams = part if grams is None else {k: grams[k] + part[k] for k in grams}
            content_sum += float(c)
            if on_tile is not None:
                on_tile(k, 2 * len(tiles))
        content_norm = self._content_norm(height, width, a_C.shape[-1])
        J_content = content_sum / content_norm
        J_style, dJ_dG = 0.0, {}
        for name, coeff in self.style_layers:
            n_C = grams[name].shape[0]
            norm = self._style_norm(name, height, width, n_C)
            G = grams[name].astype(np.float64)
            dJ_dG[name] = np.zeros_like(G)
            for weight, targets in style_targets:
                diff = G - targets[name].astype(np.float64)
                J_style += weight * coeff * float(np.sum(diff**2)) / norm
                dJ_dG[name] += self.beta * weight * coeff * 2.0 * diff / norm
        J = self.alpha * J_content + self.beta * J_style
        gradient = np.zeros((1, height, width, 3), dtype=np.float32)
        feed = {self.content_weight: self.alpha / content_norm}
        feed.update({self.dJ_dG[name]: value.astype(np.float32) for name, value in dJ_dG.items()})
        for k, tile in enumerate(tiles, 1):  # pass 2: each cell's share
            feed.update(
                {
                    self.image: self._window(image, tile),
                    self.box: tile.interior_in_window,
                    self.a_C: self._slice_a_C(a_C, tile),
                }
            )
            gradient[:, tile.y0 : tile.y1, tile.x0 : tile.x1, :] += self.sess.run(
                self.gradient, feed
            )
            if on_tile is not None:
                on_tile(len(tiles) + k, 2 * len(tiles))
        return (J, J_content, J_style), gradient

    def _one_pass(self, image, a_C, style_targets) -> tuple:
        """costs_and_gradient of an image that is one tile: one forward and backward pass.

        sum_s w_s ||G - G_s||^2 = W ||G - mean||^2 + sum_s w_s ||G_s||^2 - W ||mean||^2, with
        W = sum_s w_s and mean = sum_s w_s G_s / W: the graph needs only the blend's mean.
        """
        _, height, width, _ = np.shape(image)
        content_norm = self._content_norm(height, width, a_C.shape[-1])
        feed = {
            self.image: np.ascontiguousarray(image, dtype=np.float32),
            self.box: (0, 0, height, width),
            self.a_C: a_C,
            self.content_weight: self.alpha / content_norm,
        }
        norms, constants, blend = {}, {}, sum(weight for weight, _ in style_targets)
        for name, coeff in self.style_layers:
            n_C = self.grams[name].get_shape().as_list()[0]
            norms[name] = self._style_norm(name, height, width, n_C)
            targets = [(w, t[name].astype(np.float64)) for w, t in style_targets]
            mean = sum(w * G for w, G in targets) / blend if blend else np.zeros((n_C, n_C))
            constants[name] = sum(w * float(np.sum(G**2)) for w, G in targets) - blend * float(
                np.sum(mean**2)
            )
            feed[self.mean_G[name]] = mean.astype(np.float32)
            feed[self.style_weight[name]] = self.beta * coeff * blend / norms[name]
        content_sum, distances, gradient = self.sess.run(
            (self.content_sum, self.distance, self.whole_gradient), feed
        )
        J_content = float(content_sum) / content_norm
        J_style = sum(
            coeff * (blend * float(distances[name]) + constants[name]) / norms[name]
            for name, coeff in self.style_layers
        )
        return (self.alpha * J_content + self.beta * J_style, J_content, J_style), gradient


class Adam:
    """TensorFlow 1's Adam, the whole run's optimiser (tf1.train.AdamOptimizer, its own kernel),
    stepping a numpy image with a gradient computed elsewhere (the tiles). m, v: its slots
    (None before the first step), t: the steps taken; set them to continue a run exactly."""

    def __init__(self, learning_rate=2.0, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.learning_rate, self.beta1, self.beta2, self.epsilon = (
            learning_rate,
            beta1,
            beta2,
            epsilon,
        )
        self.m = self.v = None
        self.t = 0
        self._graph = self._sess = None

    def _build(self, shape):
        import tensorflow as tf

        tf1 = tf.compat.v1
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._image = tf1.Variable(tf.zeros(shape), name="image")
            self._gradient = tf1.placeholder(tf.float32, shape, name="gradient")
            optimizer = tf1.train.AdamOptimizer(
                self.learning_rate, self.beta1, self.beta2, self.epsilon
            )
            self._step = optimizer.apply_gradients([(self._gradient, self._image)])
            self._slots = [optimizer.get_slot(self._image, name) for name in ("m", "v")]
            self._powers = list(optimizer._get_beta_accumulators())
            self._sess = tf1.Session(graph=self._graph)
            self._sess.run(tf1.global_variables_initializer())
        self._shape = shape

    def _powers_at(self, t):
        """beta1^t and beta2^t as TensorFlow's accumulators hold them (float32 products)."""
        powers = [np.float32(self.beta1), np.float32(self.beta2)]
        for _ in range(t):
            powers = [p * np.float32(b) for p, b in zip(powers, (self.beta1, self.beta2))]
        return powers

    def step(self, image: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """The image after one update (float32, same shape)."""
        if self._sess is None or self._shape != image.shape:
            self.close()
            self._build(image.shape)
        zeros = np.zeros(image.shape, np.float32)
        m = zeros if self.m is None else self.m
        v = zeros if self.v is None else self.v
        with self._graph.as_default():
            self._image.load(np.asarray(image, np.float32), self._sess)
            values = [m, v] + self._powers_at(self.t)
            for variable, value in zip(self._slots + self._powers, values):
                variable.load(value, self._sess)
        self._sess.run(self._step, {self._gradient: np.asarray(gradient, np.float32)})
        stepped, self.m, self.v = self._sess.run([self._image] + self._slots)
        self.t += 1
        return stepped

    def close(self):
        if self._sess is not None:
            self._sess.close()
            self._sess = self._graph = None
