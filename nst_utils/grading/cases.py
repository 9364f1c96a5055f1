"""The inputs each graded function is checked on: the original test cell's, then random ones.

Random cases use unequal n_H, n_W and n_C so that mixing them up changes the result, and one
case passes a_C or a_S as a numpy array, as the real pipeline does (they come from sess.run).
Every case is a dict of plain values and numpy arrays with a 'label' for the feedback.
"""

from __future__ import annotations

import numpy as np

from .. import reference
from . import fake_model

ACTIVATION_SHAPES = ((1, 3, 5, 2), (1, 4, 2, 7), (1, 6, 3, 4), (1, 2, 2, 5))
GRAM_SHAPES = ((4, 6), (2, 9), (5, 3))
PUBLISHED_LABEL = "the test cell's inputs"


def _pair(rng, shape):
    return (rng.normal(1, 4, shape).astype(np.float32), rng.normal(1, 4, shape).astype(np.float32))


def _activation_cases(kind: str, names: tuple, rng) -> list:
    first, second = names
    published = reference.reference_inputs(kind)
    cases = [{first: published[first], second: published[second], "as_numpy": False,
              "label": PUBLISHED_LABEL}]
    for shape in ACTIVATION_SHAPES:
        a, b = _pair(rng, shape)
        cases.append({first: a, second: b, "as_numpy": False, "label": f"random {shape}"})
    a, b = _pair(rng, (1, 3, 4, 6))
    cases.append({first: a, second: b, "as_numpy": True,
                  "label": f"{first} as a numpy array, as sess.run returns it in the real run"})
    return cases


def build_cases(name: str, seed: int = 0) -> list:
    """The cases for graded function `name`, the first one always the original test's inputs."""
    rng = np.random.default_rng(seed)
    if name == "compute_content_cost":
        return _activation_cases("content", ("a_C", "a_G"), rng)
    if name == "compute_layer_style_cost":
        return _activation_cases("layer_style", ("a_S", "a_G"), rng)
    if name == "gram_matrix":
        cases = [{"A": reference.reference_inputs("gram")["A"], "label": PUBLISHED_LABEL}]
        for shape in GRAM_SHAPES:
            cases.append({"A": rng.normal(1, 4, shape).astype(np.float32), "label": f"random {shape}"})
        return cases
    if name == "compute_style_cost":
        layer_sets = (
            [[layer, 0.2] for layer, _ in fake_model.LAYERS],
            [["conv1_1", 0.1], ["conv3_1", 0.5], ["conv5_1", 0.4]],
            [["conv2_1", 0.7], ["conv4_1", 0.3]],
        )
        return [{"model_seed": i, "style_image": fake_model.random_image(100 + i),
                 "generated_image": fake_model.random_image(200 + i), "style_layers": layers,
                 "label": f"a small model, style layers {[layer for layer, _ in layers]}"}
                for i, layers in enumerate(layer_sets)]
    if name == "total_cost":
        j_content, j_style = reference.total_cost_inputs()
        cases = [{"J_content": j_content, "J_style": j_style, "as": "float", "label": PUBLISHED_LABEL}]
        for i in range(2):
            jc, js = (float(v) for v in rng.uniform(0.5, 50, 2))
            alpha, beta = (float(v) for v in rng.uniform(1, 60, 2))
            cases.append({"J_content": jc, "J_style": js, "alpha": alpha, "beta": beta, "as": "float",
                          "label": f"alpha={alpha:.3g}, beta={beta:.3g}"})
        jc, js = (float(v) for v in rng.uniform(0.5, 50, 2))
        cases.append({"J_content": jc, "J_style": js, "as": "tensor",
                      "label": "tensors as inputs, as in the real run"})
        cases.append({"J_content": jc, "J_style": js, "alpha": 3.0, "beta": 7.0, "as": "tensor",
                      "label": "tensors as inputs, alpha=3, beta=7"})
        return cases
    raise ValueError(f"{name!r} is not a graded function")
