"""One record per graded function: its points, inputs, cases, dependencies and known mistakes.

Adding a graded function, or a diagnosis to one, is one entry here. A record's mistakes are
numpy re-implementations of mistaken code (value of a case -> what the mistake returns, None
where it cannot tell); `key.py` evaluates them, with the reference, in the grader's process
only. Cases are plain data: each argument says how it is passed (a tensor, a numpy array as
`sess.run` returns it in the real run, or a Python float), so the sandbox needs no knowledge of
any function to call it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from .catalog import PUBLISHED, PUBLISHED_TOLERANCE, FunctionSpec
from .diagnose import PUBLISHED_LABEL

ACTIVATION_SHAPES = ((1, 3, 5, 2), (1, 4, 2, 7), (1, 6, 3, 4), (1, 2, 2, 5), (1, 5, 2, 3))
GRAM_SHAPES = ((4, 6), (2, 9), (5, 3), (3, 7))


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A classic mistake: its key, its feedback, and what mistaken code returns on a case."""

    key: str
    message: str
    value: Callable[[dict], Optional[np.ndarray]]  # a case's inputs (float64) -> value or None


@dataclasses.dataclass(frozen=True)
class GradedFunction:
    spec: FunctionSpec
    published: Callable[[], dict]  # {parameter: value} of the original test cell
    random_cases: Callable[[np.random.Generator], list]
    mistakes: tuple = ()
    oracle: Optional[Callable] = None  # the grader's answer when another graded function calls it
    #: The matrices this function gives the graded function it calls on a case ({parameter:
    #: float64 value} -> [matrix]), right and as its known mistakes do: their answers ship with
    #: the students' build, whose check() has no reference to call in a broken one's place.
    asks: Optional[Callable[[dict], list]] = None

    @property
    def name(self) -> str:
        return self.spec.name


def argument(name, value, how="tensor") -> dict:
    return {"name": name, "value": value, "as": how}


def case(label: str, args: list, kwargs: Optional[dict] = None) -> dict:
    return {"label": label, "args": args, "kwargs": kwargs or {}}


def inputs(a_case: dict) -> dict:
    """{parameter: float64 value} of a case (positional and keyword arguments)."""
    found = {a["name"]: a["value"] for a in a_case["args"]}
    found.update({k: a["value"] for k, a in a_case.get("kwargs", {}).items()})
    return {k: np.asarray(v, dtype=np.float64) for k, v in found.items()}


def _reference_inputs(kind):
    from ..reference import reference_inputs

    return reference_inputs(kind)


def _activation_cases(first: str):
    def build(rng):
        found = []
        for shape in ACTIVATION_SHAPES[:3]:
            a, b = (rng.normal(1, 4, shape).astype(np.float32) for _ in range(2))
            found.append(case(f"random {shape}", [argument(first, a), argument("a_G", b)]))
        shape = ACTIVATION_SHAPES[3 + int(rng.integers(0, 2))]
        a, b = (rng.normal(1, 4, shape).astype(np.float32) for _ in range(2))
        found.append(
            case(
                f"{first} as a numpy array, as sess.run returns it in the real run",
                [argument(first, a, "numpy"), argument("a_G", b)],
            )
        )
        return found

    return build


def _gram_cases(rng):
    shapes = [GRAM_SHAPES[i] for i in rng.permutation(len(GRAM_SHAPES))[:3]]
    return [
        case(f"random {shape}", [argument("A", rng.normal(1, 4, shape).astype(np.float32))])
        for shape in shapes
    ]


def _total_cases(rng):
    found = []
    jc, js = (float(v) for v in rng.uniform(0.5, 50, 2))
    alpha, beta = (float(v) for v in rng.uniform(1, 60, 2))
    found.append(
        case(
            f"alpha={alpha:.3g}, beta={beta:.3g}",
            [argument("J_content", jc, "float"), argument("J_style", js, "float")],
            {"alpha": argument("alpha", alpha, "float"), "beta": argument("beta", beta, "float")},
        )
    )
    jc, js = (float(v) for v in rng.uniform(0.5, 50, 2))
    found.append(
        case(
            "tensors as inputs, as in the real run",
            [argument("J_content", jc), argument("J_style", js)],
        )
    )
    found.append(
        case(
            "tensors as inputs, alpha=3, beta=7",
            [argument("J_content", jc), argument("J_style", js)],
            {"alpha": argument("alpha", 3.0, "float"), "beta": argument("beta", 7.0, "float")},
        )
    )
    return found


def _dims(a):
    _, n_H, n_W, n_C = np.shape(a)
    return n_H, n_W, n_C


def _content(x, reduce=lambda d: np.sum(d**2), outer=lambda s: s):
    n_H, n_W, n_C = _dims(x["a_G"])
    return outer(reduce(x["a_C"] - x["a_G"])) / (4 * n_H * n_W * n_C)


def _unroll(a, transpose=True):
    n_H, n_W, n_C = _dims(a)
    return a.reshape(n_H * n_W, n_C).T if transpose else a.reshape(n_C, n_H * n_W)


def _style_asks(x) -> list:
    """What compute_layer_style_cost gives gram_matrix: a_S and a_G unrolled to (n_C, n_H*n_W),
    or, by its known mistakes, reshaped without the transpose or to (n_H*n_W, n_C)."""
    unrolls = (_unroll, lambda a: _unroll(a, transpose=False), lambda a: _unroll(a).T)
    return [unroll(x[name]) for name in ("a_S", "a_G") for unroll in unrolls]


def _layer_style(x, unroll=_unroll, reduce=lambda d: np.sum(d**2), outer=lambda s: s):
    n_H, n_W, n_C = _dims(x["a_G"])
    S, G = unroll(x["a_S"]), unroll(x["a_G"])
    return outer(reduce(S @ S.T - G @ G.T)) / (4 * n_C**2 * (n_H * n_W) ** 2)


def _total(x, swap=False, fixed=False, power=1.0):
    alpha, beta = (
        (10.0, 40.0) if fixed else (float(x.get("alpha", 10.0)), float(x.get("beta", 40.0)))
    )
    if swap:
        alpha, beta = beta, alpha
    return alpha * x["J_content"] ** power + beta * x["J_style"] ** power


SQRT = (
    "a square root where a square belongs: the cost sums the squared differences, with "
    "no square root"
)
NO_TRANSPOSE = (
    "reshaped straight to (n_C, n_H*n_W) without the transpose: the shapes fit but "
    "each row mixes channels; reshape to (n_H*n_W, n_C), then tf.transpose"
)


#: The largest Gram matrices (values in all) the grader computes for a box's stand-in.
MAX_ORACLE_VALUES = 1_000_000


def _gram_oracle(value):
    """A A^T for the sandbox's stand-in gram_matrix, from the values it sends: a matrix, or a
    batch of them (..., rows, columns) as a batched tf.matmul takes. Bounded, and so is the
    answer: a (10^6, 1) matrix would ask for 10^12 values."""
    A = np.asarray(value, dtype=np.float64)
    if (
        not 2 <= A.ndim <= 4
        or A.size > MAX_ORACLE_VALUES
        or A.shape[-2] > 1000
        or A.size // max(A.shape[-1], 1) * A.shape[-2] > MAX_ORACLE_VALUES
        or not np.all(np.isfinite(A))
    ):
        raise ValueError(
            "gram_matrix takes a finite matrix (or a batch of them) of at most 1000 rows and "
            "1e6 values"
        )
    return A @ np.swapaxes(A, -1, -2)


RECORDS = (
    GradedFunction(
        FunctionSpec(
            "compute_content_cost",
            25,
            ("a_C", "a_G"),
            published_text=str(PUBLISHED["compute_content_cost"]),
            published_tolerance=PUBLISHED_TOLERANCE["compute_content_cost"],
            normalisation="1/(4 n_H n_W n_C)",
            first_input="a_C",
            column="content",
        ),
        published=lambda: _reference_inputs("content"),
        random_cases=_activation_cases("a_C"),
        mistakes=(
            Mistake(
                "squared",
                "squared where it should not be: the sum of squared differences "
                "is squared again; square the differences, sum, then divide",
                lambda x: _content(x, outer=np.square),
            ),
            Mistake(
                "not_squared",
                "the differences are not squared: square each difference before summing",
                lambda x: _content(x, reduce=np.sum),
            ),
            Mistake("square_root", SQRT, lambda x: _content(x, outer=np.sqrt)),
            Mistake("square_root", SQRT, lambda x: _content(x, reduce=lambda d: np.sum(np.abs(d)))),
        ),
    ),
    GradedFunction(
        FunctionSpec("gram_matrix", 25, ("A",), published_tolerance=1e-5, column="gram"),
        published=lambda: _reference_inputs("gram"),
        random_cases=_gram_cases,
        mistakes=(
            Mistake(
                "transposed",
                "computes A^T A, of shape (n_H*n_W, n_H*n_W); the Gram matrix is "
                "A A^T, of shape (n_C, n_C): the transpose goes on the right",
                lambda x: x["A"].T @ x["A"],
            ),
            Mistake(
                "squared",
                "squared where it should not be: the Gram matrix is A A^T, with no square",
                lambda x: (x["A"] @ x["A"].T) ** 2,
            ),
            Mistake(
                "elementwise",
                "multiplies element by element; the Gram matrix is the matrix "
                "product A A^T (tf.matmul)",
                lambda x: x["A"] * x["A"] if x["A"].shape[0] != x["A"].shape[1] else None,
            ),
        ),
        oracle=_gram_oracle,
    ),
    GradedFunction(
        FunctionSpec(
            "compute_layer_style_cost",
            25,
            ("a_S", "a_G"),
            published_text=str(PUBLISHED["compute_layer_style_cost"]),
            published_tolerance=PUBLISHED_TOLERANCE["compute_layer_style_cost"],
            normalisation="1/(4 n_C^2 (n_H n_W)^2)",
            first_input="a_S",
            dependencies=("gram_matrix",),
            column="layer_style",
        ),
        published=lambda: _reference_inputs("layer_style"),
        random_cases=_activation_cases("a_S"),
        mistakes=(
            Mistake(
                "no_transpose",
                NO_TRANSPOSE,
                lambda x: _layer_style(x, unroll=lambda a: _unroll(a, transpose=False)),
            ),
            Mistake(
                "gram_of_rows",
                "unrolled to (n_H*n_W, n_C) without the transpose, so the "
                "Gram matrices are (n_H*n_W, n_H*n_W); transpose to (n_C, n_H*n_W) first",
                lambda x: _layer_style(x, unroll=lambda a: _unroll(a).T),
            ),
            Mistake(
                "squared",
                "squared where it should not be: the sum of squared differences is squared again",
                lambda x: _layer_style(x, outer=np.square),
            ),
            Mistake(
                "not_squared",
                "the differences of the Gram matrices are not squared",
                lambda x: _layer_style(x, reduce=np.sum),
            ),
            Mistake("square_root", SQRT, lambda x: _layer_style(x, outer=np.sqrt)),
            Mistake(
                "square_root", SQRT, lambda x: _layer_style(x, reduce=lambda d: np.sum(np.abs(d)))
            ),
        ),
        asks=_style_asks,
    ),
    GradedFunction(
        FunctionSpec(
            "total_cost",
            25,
            ("J_content", "J_style"),
            published_text=str(PUBLISHED["total_cost"]),
            published_tolerance=PUBLISHED_TOLERANCE["total_cost"],
            returns_tensor=False,
            defaults="alpha=10, beta=40",
            column="total",
        ),
        published=lambda: dict(zip(("J_content", "J_style"), _total_inputs())),
        random_cases=_total_cases,
        mistakes=(
            Mistake(
                "swapped",
                "alpha and beta are swapped: J = alpha * J_content + beta * J_style",
                lambda x: _total(x, swap=True),
            ),
            Mistake(
                "hard_coded",
                "alpha and beta are hard-coded as 10 and 40: use the alpha and beta arguments",
                lambda x: _total(x, fixed=True),
            ),
            Mistake(
                "squared",
                "squared where it should not be: J = alpha * J_content + "
                "beta * J_style, no squares",
                lambda x: _total(x, power=2.0),
            ),
        ),
    ),
)


def _total_inputs():
    from ..reference import total_cost_inputs

    return total_cost_inputs()


BY_NAME = {record.name: record for record in RECORDS}


def published_case(record: GradedFunction) -> dict:
    """The original test cell's inputs as a case (floats for total_cost, as the test cell had)."""
    values = record.published()
    how = "tensor" if record.spec.returns_tensor else "float"
    return case(
        PUBLISHED_LABEL,
        [
            argument(p, values[p] if how == "tensor" else float(values[p]), how)
            for p in record.spec.params
        ],
    )


def public_cases(record: GradedFunction, seed: int = 0) -> list:
    """What a student may see: the test cell's inputs, then random cases drawn from `seed`."""
    return [published_case(record)] + record.random_cases(np.random.default_rng(seed))


def hidden_cases(record: GradedFunction, seed: int) -> list:
    """Random cases only the grader knows (another seed), labelled as hidden."""
    found = record.random_cases(np.random.default_rng([seed, 7919]))
    for c in found:
        c["label"] = f"hidden case: {c['label']}"
        c["hidden"] = True
    return found
