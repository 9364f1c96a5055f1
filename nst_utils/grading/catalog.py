"""What is graded: the original's four functions, their points, tolerances and the sandbox's limits."""

from __future__ import annotations

import dataclasses

#: The graded functions in notebook order, with their points (100 in all).
POINTS = {
    "compute_content_cost": 25,
    "gram_matrix": 25,
    "compute_layer_style_cost": 25,
    "total_cost": 25,
}
GRADED_FUNCTIONS = tuple(POINTS)

#: Random cases must match the reference implementation to within this (numpy.allclose).
RTOL, ATOL = 1e-4, 1e-6

#: The notebook cell markers the grader and the student-notebook generator rely on.
GRADED_HEADER = "# GRADED FUNCTION:"
START_MARKER = "### START CODE HERE ###"
END_MARKER = "### END CODE HERE ###"


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-function limits of the sandbox: wall time (s), extra memory (MB), printed output (bytes)."""

    time: float = 20.0
    memory_mb: int = 1024
    output_bytes: int = 1_000_000

    def __post_init__(self):
        from ..errors import ConfigError

        if not self.time > 0:
            raise ConfigError(f"the time limit must be positive, got {self.time!r}")
        if self.memory_mb < 64:
            raise ConfigError(f"the memory limit must be at least 64 MB, got {self.memory_mb!r}")
        if self.output_bytes < 1024:
            raise ConfigError(f"the output limit must be at least 1024 bytes, got {self.output_bytes!r}")
