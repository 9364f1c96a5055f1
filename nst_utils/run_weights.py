"""The weights of a command-line run: read once, with the facts its record needs.

Every command that paints goes through `load_run_weights`, which also downloads the weights
when the default file is missing (the main job's first run).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .settings import Settings
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


def load_run_weights(path, fetch_missing: bool = False, config: Settings | None = None) -> RunWeights:
    """Read and check the weights file at `path` and compute its MD5: a WeightsError if unusable.

    fetch_missing: download the published file to `path` first when nothing is there. The
    weights cache follows `config` (default: Settings.from_env(), so NST_WEIGHTS_CACHE and
    NST_WEIGHTS_CACHE_DIR apply to the commands as to the notebook).
    """
    config = config or Settings.from_env()
    if fetch_missing and not Path(path).expanduser().exists():
        from .download import ensure_weights

        ensure_weights(path)
    path = check_weights_path(path).resolve()
    weights = load_weights(path, cache=config.weights_cache, cache_dir=config.weights_cache_dir)
    return RunWeights(weights=weights, path=path, size=path.stat().st_size, md5=weights.source_md5 or file_md5(path))
