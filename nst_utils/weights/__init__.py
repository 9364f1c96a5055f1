"""MatConvNet's VGG-19 weights: where they come from, how they are read, cached and checked.

    sources   the published files, the path and MD5 checks, the shared messages
    mat       reading the `.mat` (old, intermediate and new formats) by field name
    cache     the `.nstcache` of the 16 conv layers beside the `.mat`: a `.npy` and its stamp
    download  fetching the published file: resumable, verified, atomic
    load      the load policy: through the cache, and downloading only to the default path
    doctor    everything about a file that decides whether it can serve (check-weights)
    synthetic random-weights files of the real structure, for tests and benchmarks

Each module imports only those above it in this list (synthetic stands apart).
"""

from .load import RunWeights, load_for_run, load_weights
from .mat import VGGWeights
from .sources import WEIGHTS_SOURCES, file_md5

__all__ = [
    "VGGWeights",
    "RunWeights",
    "load_weights",
    "load_for_run",
    "WEIGHTS_SOURCES",
    "file_md5",
]
