"""The weights of a command-line run: read once, with the facts its record needs.

Every command that paints goes through `load_run_weights`, which also downloads the weights
when the default file is missing (the main job's first run).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .weights import VGGWeights, check_weights_path, file_md5, load_weights


@dataclasses.dataclass
class RunWeights:
    """Loaded VGG-19 weights plus the file's path, size, MD5 and format (for run.json)."""

    weights: VGGWeights
    path: Path
    size: int
    md5: str

    @property
    def format(self) -> str:
        return self.weights.format

    def record(self) -> dict:
        return {"path": str(self.path), "bytes": self.size, "md5": self.md5, "format": self.format}


def load_run_weights(path, fetch_missing: bool = False) -> RunWeights:
    """Read and check the weights file at `path` and compute its MD5: a WeightsError if unusable.

    fetch_missing: download the published file to `path` first when nothing is there.
    """
    if fetch_missing and not Path(path).expanduser().exists():
        from .download import ensure_weights

        ensure_weights(path)
    path = check_weights_path(path).resolve()
    weights = load_weights(path)
    return RunWeights(weights=weights, path=path, size=path.stat().st_size, md5=weights.source_md5 or file_md5(path))
