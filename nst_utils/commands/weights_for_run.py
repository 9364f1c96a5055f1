"""The weights of a `generate` run, with the settings the environment gives them.

`generate` resolves its weights path (--weights, else Config.from_env().vgg_model) and calls
`load_run_weights`; this is the one place that reads the weights' settings for it
(NST_WEIGHTS_CACHE, NST_WEIGHTS_CACHE_DIR) and decides what may be downloaded: only the
project's default path, never a path from NST_WEIGHTS or --weights.
"""

from __future__ import annotations

from ..config import Config
from ..weights import sources
from ..weights.load import RunWeights, load_for_run


def load_run_weights(path, fetch_missing: bool = False) -> RunWeights:
    """The weights at `path` for a run; a one-line `WeightsError` if they cannot serve.

    fetch_missing: `path` was not typed on the command line (it is the configured path), so
    it is downloaded when missing, provided it is the project's default path.
    """
    config = Config.from_env()
    if not fetch_missing:
        named_by = "--weights"
    elif sources.is_default_path(path):
        named_by = None
    else:
        named_by = sources.WEIGHTS_ENV
    return load_for_run(path, download_to=sources.default_weights_path() if fetch_missing else None,
                        named_by=named_by, cache=config.weights_cache,
                        cache_dir=config.weights_cache_dir)
