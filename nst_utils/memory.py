"""How much memory a run will need, said before anything is built, and whether it fits.

`estimate_peak` predicts a run's peak resident memory from its size and options; the figures
below were measured on full-size VGG-19 runs (benchmarks/memory.py prints the measured peaks
beside this estimate). `check_fits` compares the estimate with the memory this process may
still use (the cgroup's limit and the kernel's MemAvailable) and raises `NotEnoughMemoryError`
with the estimate, what is available and the largest size that would fit.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .errors import ConfigError, NotEnoughMemoryError

MB = 1 << 20

#: Floats per input pixel in the activations the step keeps, VGG-19 up to conv5_1 (conv1_x:
#: 2x64 channels at full size, conv2_x: 2x128 at 1/4, conv3_x: 4x256 at 1/16, conv4_x: 4x512
#: at 1/64, conv5_1: 512 at 1/256, with the pools between).
ACTIVATION_FLOATS_PER_PIXEL = (
    2 * 64
    + 64 / 4
    + 2 * 128 / 4
    + 128 / 16
    + 4 * 256 / 16
    + 256 / 64
    + 4 * 512 / 64
    + 512 / 256
    + 512 / 256
)
#: Floats per input pixel that one style image's activations at the five style layers take
#: (conv1_1 64, conv2_1 128/4, conv3_1 256/16, conv4_1 512/64, conv5_1 512/256).
STYLE_FLOATS_PER_PIXEL = 64 + 128 / 4 + 256 / 16 + 512 / 64 + 512 / 256

# Fitted by benchmarks/memory_fit.py to the peaks of real `generate` runs (/usr/bin/time's
# maximum resident size, and a big print's peak so far at the end of each scale; TensorFlow
# 2.21 with oneDNN, full-size VGG-19, weights from nst's cache) over sizes 200x150 to 6000x4500,
# whole, coarse to fine, tiled, both precisions and L-BFGS, natively (AVX-512), with oneDNN
# capped at AVX2 and on a CPU with AVX2 only, with and without frozen weights: every case's
# highest peak is at or under its estimate, which is at most 15% over it natively and 33% with
# AVX2, whose peaks vary more from one run to the next (benchmarks/RESULTS.md has the grid).
#: The process before painting: Python, TensorFlow (about 530 MB), the weights and the graph.
BASE_MB = 764.27
#: Peak bytes per input pixel per activation float of a whole run's step (forward and backward
#: together), float32.
STEP_BYTES_PER_FLOAT = 7.5813
#: The same for a big print's scale painted in one tile (nst_utils.tiles: one graph for inputs
#: of any size, one forward and backward pass).
SCALE_BYTES_PER_FLOAT = 5.2971
#: And per input pixel of the largest window of a scale painted in several tiles (two passes
#: over the tiles: the Gram matrices, then each tile's share of the gradient).
TILE_BYTES_PER_FLOAT = 5.174
#: What a big print holds besides BASE_MB: its graph for inputs of any size, Adam's graph,
#: and the buffers they keep between scales and tiles.
BIG_BASE_MB = 82.0
#: bfloat16 keeps the activations in half the bytes, plus the float32 copies of the entries read.
BFLOAT16_FACTOR = 0.75
#: Bytes per input pixel per style-activation float for each style image after the first.
STYLE_BYTES_PER_FLOAT = 1.4
#: L-BFGS keeps its history of image-sized float64 vectors beside the graph.
LBFGS_IMAGE_COPIES = 28
#: A big print keeps whole-image arrays besides one tile's activations: the image, its
#: gradient, Adam's two moments and their temporaries (float32, 3 channels), the content
#: target, the style image and the full-size copies for the snapshots.
TILED_BYTES_PER_PIXEL = 256.25
#: And at every scale, arrays the size of the finished print: the content and style pixels,
#: and each snapshot made full size and written.
PRINT_BYTES_PER_PIXEL = 100.5
#: Where oneDNN runs AVX2 at most (nst_utils.hardware) its convolutions keep more per pixel than
#: with AVX-512: this share of the step more, without and with frozen weights (other kernels,
#: other buffers).
AVX2_STEP_EXTRA = 0.63
AVX2_FROZEN_STEP_EXTRA = 0.217
#: A big print's process keeps what a scale took for the scales after it (the allocators hold
#: freed memory), and each scale then adds this share of the growth of its whole-image arrays
#: (measured: 6000x4500 after 3000x2250 added 2.5-2.9 GB to the peak before, whatever its
#: tiles): a scale's peak is at least the scale before's estimate plus that.
NEXT_SCALE_GROWTH = 0.26
#: With frozen weights (set where oneDNN runs AVX2 at most) each convolution keeps its filter
#: reordered in oneDNN's layout for the session's life, for the forward and the backward pass.
FROZEN_FILTERS_MB = 150.0


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A run's predicted peak resident memory, in MB, with its parts."""

    width: int
    height: int
    parts: dict

    @property
    def total_mb(self) -> float:
        return sum(self.parts.values())

    def growth_to(self, pixels: int) -> float:
        """MB a big print's next scale of `pixels` adds to what this scale leaves kept."""
        return scale_growth_mb(self.width * self.height, pixels)

    def __str__(self) -> str:
        return f"{self.total_mb / 1024:.1f} GB"


def scale_growth_mb(pixels: int, next_pixels: int) -> float:
    """MB a big print's scale of next_pixels adds to what its scale of `pixels` left kept."""
    return NEXT_SCALE_GROWTH * TILED_BYTES_PER_PIXEL * max(0, next_pixels - pixels) / MB


def _check_size(width, height):
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"the {name} must be a positive whole number, got {value!r}")


def estimate_peak(
    width: int,
    height: int,
    *,
    styles: int = 1,
    optimizer: str = "adam",
    precision: str = "float32",
    tile: tuple | None = None,
    big: bool = False,
    print_pixels: int | None = None,
    avx2: bool | None = None,
    frozen_weights: bool | None = None,
    previous: Estimate | None = None,
) -> Estimate:
    """The peak resident memory of a width x height run, before anything is built.

    styles: how many style images; optimizer 'adam' or 'lbfgs'; precision 'float32' or
    'bfloat16'; tile: (width, height) of the tiles a tiled run evaluates at once (with their
    halos), or None for the whole image; big: painted by nst_utils.scales (coarse to fine or
    tiled; implied by a tile), not by the whole-image graph; print_pixels: a big print's full
    size in pixels when this is one of its coarser scales; avx2: whether oneDNN runs AVX2 at
    most, and frozen_weights: whether it keeps its reordered filters (None: as this CPU and
    this process's environment say, nst_utils.hardware); previous: a big print's previous
    scale's estimate, whose memory the process keeps.
    """
    _check_size(width, height)
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"the optimizer must be adam or lbfgs, got {optimizer!r}")
    if precision not in ("float32", "bfloat16"):
        raise ConfigError(f"the precision must be float32 or bfloat16, got {precision!r}")
    pixels = width * height
    step_pixels = pixels if tile is None else min(pixels, tile[0] * tile[1])
    big = big or tile is not None
    kind, per_float = "step", STEP_BYTES_PER_FLOAT
    if big:
        tiled = step_pixels < pixels
        kind = "tile step" if tiled else "scale step"
        per_float = TILE_BYTES_PER_FLOAT if tiled else SCALE_BYTES_PER_FLOAT
    step = per_float * ACTIVATION_FLOATS_PER_PIXEL * step_pixels / MB
    if precision == "bfloat16":
        step *= BFLOAT16_FACTOR
    parts = {
        "base": BASE_MB,
        kind: step,
        "styles": STYLE_BYTES_PER_FLOAT
        * STYLE_FLOATS_PER_PIXEL
        * step_pixels
        * (max(1, styles) - 1)
        / MB,
    }
    if big:
        parts["big base"] = BIG_BASE_MB
        parts["image"] = TILED_BYTES_PER_PIXEL * pixels / MB
        parts["print"] = PRINT_BYTES_PER_PIXEL * (print_pixels or pixels) / MB
    from . import hardware

    avx2 = hardware.onednn_runs_avx2_at_most() if avx2 is None else avx2
    frozen = hardware.frozen_weights_in_force() if frozen_weights is None else frozen_weights
    if avx2:
        extra = AVX2_FROZEN_STEP_EXTRA if frozen else AVX2_STEP_EXTRA
        parts["AVX2 frozen step" if frozen else "AVX2 step"] = extra * step
    if frozen:
        parts["frozen filters"] = FROZEN_FILTERS_MB
    if big and previous is not None:
        own = sum(parts.values())
        kept = previous.total_mb + previous.growth_to(pixels) - own
        if kept > 0:
            parts["kept from the scale before"] = kept
    if optimizer == "lbfgs":
        parts["lbfgs"] = LBFGS_IMAGE_COPIES * 8 * 3 * pixels / MB
    return Estimate(width, height, parts)


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far (VmHWM), in MB; None where /proc has none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return None if not text or text == "max" else int(text)
    except ValueError:
        return None


def cgroup_room_mb(
    root=Path("/sys/fs/cgroup"), membership=Path("/proc/self/cgroup")
) -> float | None:
    """MB this process's cgroup may still use (its limit less its usage), or None if unlimited.

    cgroup v2: memory.max and memory.current in the process's own group (then the root's);
    cgroup v1: memory.limit_in_bytes and memory.usage_in_bytes of the memory controller's group.
    """
    groups = {}
    try:
        for line in membership.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            groups[controllers] = path.lstrip("/")
    except (OSError, ValueError):
        pass
    candidates = [
        (root / groups.get("", ""), "memory.max", "memory.current"),
        (root, "memory.max", "memory.current"),
    ]
    v1 = next((path for names, path in groups.items() if "memory" in names.split(",")), None)
    if v1 is not None:
        candidates += [(root / "memory" / v1, "memory.limit_in_bytes", "memory.usage_in_bytes")]
    candidates += [(root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for folder, limit_file, usage_file in candidates:
        limit = _read_int(folder / limit_file)
        if limit is not None and limit < (1 << 60):
            usage = _read_int(folder / usage_file) or 0
            return max(0.0, (limit - usage) / MB)
    return None


def available_mb() -> tuple[float, str]:
    """(MB this process can still count on, where that figure comes from)."""
    import psutil

    options = [(psutil.virtual_memory().available / MB, "MemAvailable")]
    room = cgroup_room_mb()
    if room is not None:
        options.append((room, "the cgroup's limit"))
    override = os.environ.get("NST_MEMORY_LIMIT_MB")
    if override:
        try:
            options.append((float(override), "NST_MEMORY_LIMIT_MB"))
        except ValueError:
            raise ConfigError(
                f"NST_MEMORY_LIMIT_MB must be a number of MB, got {override!r}"
            ) from None
    return min(options)


def largest_fitting(width: int, height: int, room_mb: float, **options) -> tuple[int, int] | None:
    """The largest size with the aspect of width x height whose estimate fits in room_mb."""
    _check_size(width, height)
    low, high = 0.0, 1.0
    if estimate_peak(width, height, **options).total_mb <= room_mb:
        return width, height
    for _ in range(40):  # bisect on the scale
        mid = (low + high) / 2
        w, h = max(1, int(width * mid)), max(1, int(height * mid))
        if estimate_peak(w, h, **options).total_mb <= room_mb:
            low = mid
        else:
            high = mid
    w, h = int(width * low), int(height * low)
    return (w, h) if w >= 1 and h >= 1 else None


def check_fits(width: int, height: int, **options) -> Estimate:
    """The estimate for this run; raises NotEnoughMemoryError (one line) when it will not fit."""
    estimate = estimate_peak(width, height, **options)
    room, source = available_mb()
    if estimate.total_mb <= room:
        return estimate
    raise NotEnoughMemoryError(
        f"a {width}x{height} run needs about {estimate} of memory but {room / 1024:.1f} GB is "
        f"available ({source}); {fitting_advice(width, height, room, **options)}"
    )


def fitting_advice(width: int, height: int, room_mb: float, **options) -> str:
    """What to do when a width x height run does not fit in room_mb: the largest size of its
    aspect that does, or to free memory when none does."""
    fits = largest_fitting(width, height, room_mb, **options)
    if fits is None:
        return "close other programs or use a larger machine"
    return (
        f"the largest {width}:{height} size that fits is about {fits[0]}x{fits[1]} "
        f"(--width {fits[0]})"
    )
