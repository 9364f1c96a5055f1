"""Plain facts the grader and the self-check share: cell markers, tolerances, limits, and the
description of a graded function that travels as data (to students' self-checks included)."""

from __future__ import annotations

import dataclasses
from typing import Optional

#: The values the original notebook's test cells printed (TensorFlow 1.x), and the tolerance
#: each is checked to (the total cost is computed in float64 from two Python floats).
PUBLISHED = {
    "compute_content_cost": 6.76559,
    "compute_layer_style_cost": 9.19028,
    "total_cost": 35.34667875478276,
}
PUBLISHED_TOLERANCE = {
    "compute_content_cost": 1e-5,
    "compute_layer_style_cost": 1e-5,
    "total_cost": 1e-12,
}

#: Random cases must match the reference implementation to within this (numpy.allclose).
RTOL, ATOL = 1e-4, 1e-6

#: The notebook cell markers the grader and the student-notebook generator rely on.
GRADED_HEADER = "# GRADED FUNCTION:"
START_MARKER = "### START CODE HERE ###"
END_MARKER = "### END CODE HERE ###"


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    """What the feedback needs to know of a graded function; no code, so it can be shipped."""

    name: str
    points: int
    params: tuple
    published_text: Optional[str] = None  # the value the notebook's test cell prints
    published_tolerance: float = 1e-5
    normalisation: Optional[str] = None  # the factor, for 'missing or wrong normalisation'
    first_input: Optional[str] = None  # the input that is a numpy array in the real run
    dependencies: tuple = ()  # graded functions it calls, replaced by the grader's own
    returns_tensor: bool = True
    defaults: Optional[str] = None  # its keyword defaults, for 'wrong default values'
    column: Optional[str] = None  # short name for table and CSV columns

    @classmethod
    def from_dict(cls, data: dict) -> "FunctionSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        for key in ("params", "dependencies"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-function limits of the sandbox: wall time (s), extra memory (MB), printed output
    (bytes); `audit_hook` False leaves the kernel's isolation alone (to test it)."""

    time: float = 20.0
    memory_mb: int = 1024
    output_bytes: int = 1_000_000
    audit_hook: bool = True

    def __post_init__(self):
        from ..errors import ConfigError

        if not self.time > 0:
            raise ConfigError(f"the time limit must be positive, got {self.time!r}")
        if self.memory_mb < 64:
            raise ConfigError(f"the memory limit must be at least 64 MB, got {self.memory_mb!r}")
        if self.output_bytes < 1024:
            raise ConfigError(
                f"the output limit must be at least 1024 bytes, got {self.output_bytes!r}"
            )
