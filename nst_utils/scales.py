"""Big prints: coarse-to-fine painting, tiled where the whole image does not fit in memory.

A large painting starts small: the first scale paints a reduced size from noise, each later
scale starts from the last one's result upsampled, and only the last paints at the full size,
where few iterations are needed. Every scale is evaluated by `nst_utils.tiles` (one tile when
the whole image fits, more when `nst_utils.memory` says it does not). `style_scale` sets the
style images' size relative to the painting (1.0, the original: the painting's size), so the
brush strokes keep their size in pixels or grow with the print.

Images in: (H, W, 3) uint8 pixels; out: the network image (1, H, W, 3) float32.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np

from . import memory, tiles
from .errors import ConfigError, NotEnoughMemoryError
from .settings import DEFAULTS, Settings


def scale_sizes(width: int, height: int, scales: int, smallest: int = 64) -> list:
    """[(width, height), ...] from coarse to fine: the full size halved (scales - 1) times,
    never below `smallest` pixels on the shorter side (fewer scales then)."""
    if isinstance(scales, bool) or not isinstance(scales, int) or scales < 1:
        raise ConfigError(f"the number of scales must be a positive whole number, got {scales!r}")
    sizes = [(width, height)]
    for _ in range(scales - 1):
        w, h = sizes[0]
        if min(w, h) // 2 < smallest:
            break
        sizes.insert(0, ((w + 1) // 2, (h + 1) // 2))
    return sizes


def style_size(width: int, height: int, style_scale: float) -> tuple:
    """The size a style image is resized to for a width x height painting."""
    if not (isinstance(style_scale, (int, float)) and 0 < style_scale <= 16):
        raise ConfigError(
            f"the style scale must be a number above 0 and at most 16, got {style_scale!r}"
        )
    return max(16, round(width * style_scale)), max(16, round(height * style_scale))


def pick_cell(width: int, height: int, room_mb: float, halo: int, **options) -> int | None:
    """None when the whole width x height image fits in room_mb, else the largest tile cell
    (a multiple of 16 pixels) whose estimate fits; NotEnoughMemoryError if none does."""
    if memory.estimate_peak(width, height, big=True, **options).total_mb <= room_mb:
        return None

    def fits(cells: int) -> bool:
        window = tiles.largest_window(height, width, cells * tiles.GRID, halo)
        return memory.estimate_peak(width, height, tile=window, **options).total_mb <= room_mb

    if not fits(1):
        smallest = (tiles.GRID + 2 * halo,) * 2
        estimate = memory.estimate_peak(width, height, tile=smallest, **options)
        advice = memory.fitting_advice(width, height, room_mb, tile=smallest, **options)
        raise NotEnoughMemoryError(
            f"a {width}x{height} painting does not fit in {room_mb / 1024:.1f} GB even in the "
            f"smallest tiles (it needs about {estimate} in them); {advice}"
        )
    low, high = 1, -(-max(width, height) // tiles.GRID)  # fits(low); bisect up to high
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    # As many tiles as the largest cell makes, but even: no thin strip of cells at the edges.
    largest = low * tiles.GRID
    across, down = -(-width // largest), -(-height // largest)
    even = max(-(-width // across), -(-height // down))
    return tiles.GRID * -(-even // tiles.GRID)


@dataclasses.dataclass(frozen=True)
class ScalePlan:
    """One scale of a painting: its size, iterations, tile cell (None: whole) and how many
    tiles that makes, and its estimated peak memory."""

    width: int
    height: int
    iterations: int
    cell: int | None
    tiles: int
    estimate: memory.Estimate

    def describe(self) -> dict:
        """The plan as run.json records it."""
        return {
            "width": self.width,
            "height": self.height,
            "iterations": self.iterations,
            "tiles": self.tiles,
            "cell": self.cell,
            "estimate_mb": round(self.estimate.total_mb),
        }


def plan_scales(
    width: int,
    height: int,
    iterations: Sequence[int],
    room_mb: float,
    halo: int,
    cell: int | None = None,
    **options,
) -> list:
    """[ScalePlan, ...] coarse to fine for a coarse-to-fine (or tiled) painting: each scale's
    tiles are the largest whose estimate fits in room_mb (or `cell` when given)."""
    sizes = scale_sizes(width, height, len(iterations))
    counts = list(iterations)
    dropped = len(counts) - len(sizes)  # scales too small to paint: their steps go first
    counts = [sum(counts[: dropped + 1])] + counts[dropped + 1 :]
    plans = []
    for k, ((w, h), count) in enumerate(zip(sizes, counts)):
        options["print_pixels"] = width * height
        options["previous"] = plans[-1].estimate if plans else None
        # Room left for what the next scale adds to this one's kept memory.
        after = sizes[k + 1][0] * sizes[k + 1][1] if k + 1 < len(sizes) else w * h
        room = room_mb - memory.scale_growth_mb(w * h, after)
        chosen = cell if cell is not None else pick_cell(w, h, room, halo, **options)
        window = None if chosen is None else tiles.largest_window(h, w, chosen, halo)
        estimate = memory.estimate_peak(w, h, tile=window, big=True, **options)
        count_tiles = len(tiles.plan_tiles(h, w, chosen, halo))
        plans.append(ScalePlan(w, h, count, chosen, count_tiles, estimate))
    return plans


def run_estimate(
    width: int,
    height: int,
    *,
    room_mb: float,
    scales: int = 1,
    styles: int = 1,
    optimizer: str = "adam",
    precision: str = "float32",
    settings: Settings | None = None,
    avx2: bool | None = None,
    frozen_weights: bool | None = None,
) -> tuple:
    """(peak MB, [ScalePlan, ...]) of a `generate` run: painted whole (one plan, no cell) when
    it has one scale and fits, else coarse to fine with tiles where needed (Adam only), with
    the content and style layers of `settings` (default: the defaults); avx2 and frozen_weights
    as memory.estimate_peak takes them."""
    settings = DEFAULTS if settings is None else settings
    layers = [settings.content_layer] + [name for name, _ in settings.style_layers]
    options = dict(styles=styles, precision=precision, avx2=avx2, frozen_weights=frozen_weights)
    whole = memory.estimate_peak(width, height, optimizer=optimizer, **options)
    if scales == 1 and (whole.total_mb <= room_mb or optimizer != "adam"):
        return whole.total_mb, [ScalePlan(width, height, 0, None, 1, whole)]
    plans = plan_scales(
        width,
        height,
        [0] * scales,
        room_mb,
        tiles.halo_for(layers),
        **options,
    )
    return max(p.estimate.total_mb for p in plans), plans


def resize_network(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A (1, h, w, 3) float network image resized to (1, height, width, 3), channel by channel."""
    from PIL import Image

    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[0, :, :, c], np.float32), mode=None).resize(
                (width, height), Image.BICUBIC
            )
        )
        for c in range(3)
    ]
    return np.stack(channels, axis=-1)[None].astype(np.float32)


def _positions(layer: str, height: int, width: int) -> int:
    n_H, n_W = tiles.layer_size(layer, height, width)
    return n_H * n_W


@dataclasses.dataclass
class BigPrint:
    """What a coarse-to-fine run paints: its Settings (size, costs, Adam's learning rate, start,
    seed, style scale, pooling, precision, mean pixel), its iterations per scale (coarse to
    fine) and the tiles' cell (None: chosen from the memory available)."""

    settings: Settings
    iterations: Sequence[int]
    cell: Optional[int] = None

    @property
    def width(self) -> int:
        return self.settings.image_width

    @property
    def height(self) -> int:
        return self.settings.image_height

    @property
    def noise_ratio(self) -> float:
        """The share of noise in the first scale's start ('--init content': none)."""
        return 0.0 if self.settings.init == "content" else self.settings.noise_ratio

    def blend(self, styles: int) -> tuple:
        return self.settings.style_blend_weights or (1.0,) * styles


def split_iterations(total: int, scales: int) -> list:
    """`total` iterations over `scales` scales, coarse to fine, each scale half the last's
    (160 over 3: [93, 45, 22]): a finer scale costs 4x per iteration and needs fewer. Each
    scale gets at least one while there are enough; with fewer, the coarsest get none."""
    shares = [2 ** (scales - 1 - k) for k in range(scales)]
    counts = [max(1, total * share // sum(shares)) for share in shares]
    counts[0] += max(0, total - sum(counts))
    for least in (1, 0):  # the ones given above their share: the coarse give way
        for k in range(scales):
            counts[k] -= max(0, min(sum(counts) - total, counts[k] - least))
    return counts


def resumed_iterations(split: Sequence[int], total: int) -> list:
    """A resumed painting's iterations per scale: the split it started with, cut or lengthened
    at the fine end so that they add up to `total` (extra iterations go to the finest scale)."""
    counts, left = [], total
    for count in split:
        counts.append(min(int(count), left))
        left -= counts[-1]
    counts[-1] += left
    return counts


@dataclasses.dataclass
class Position:
    """Where a coarse-to-fine painting stands, enough to continue it exactly: `step` steps done
    at scale `scale` of `iterations` (per scale), the image (1, h, w, 3) at that scale's size,
    and Adam's state there (m and v None before its first step)."""

    iterations: list
    scale: int
    step: int
    image: np.ndarray
    adam_m: Optional[np.ndarray] = None
    adam_v: Optional[np.ndarray] = None
    adam_t: int = 0

    @property
    def done(self) -> int:
        """Steps done over all scales."""
        return sum(self.iterations[: self.scale]) + self.step


@dataclasses.dataclass
class BigPrintResult:
    """The final network image (the last finite one), the iterations run in all (with those
    before a resumption), why it stopped (None: all ran, 'interrupted', or 'non-finite') and
    the position to continue from, and per scale (coarse to fine) its size, iterations, tiles,
    estimated peak memory (ScalePlan.describe), the iterations done at it, and the seconds this
    process painted it and its peak then."""

    image: np.ndarray
    iterations: int
    stopped: Optional[str] = None
    position: Optional[Position] = None
    scales: Optional[list] = None


def paint(
    weights,
    plan: BigPrint,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    on_step: Optional[Callable] = None,
    room_mb: float | None = None,
    should_stop: Optional[Callable[[], bool]] = None,
    start: Optional[np.ndarray] = None,
    resume: Optional[Position] = None,
    after_step: Optional[Callable[[Position], None]] = None,
    on_stage: Optional[Callable[[str, float], None]] = None,
    on_scale: Optional[Callable[[list], None]] = None,
) -> BigPrintResult:
    """Paint `plan` coarse to fine, or continue it from `resume` (a Position it reported).

    content, styles, start: (H, W, 3) uint8 pixels of any size (resized at each scale); start
    (default: noise blended with the content) begins the coarsest scale.
    on_step(scale index, (width, height), iteration, (J, J_content, J_style), image) sees every
    step's starting image and its costs; should_stop() is asked before each step;
    after_step(position) sees where the painting stands after each step. on_stage(text,
    fraction) hears what a step is doing ('scale 2/3, 1500x1125, tile 5/12 of pass 1/2') and the
    share of it done, as each scale starts and each tile ends. on_scale(records) hears the
    scales' records (BigPrintResult.scales) once they are planned and again as each scale ends.
    """
    import time

    from .images import generate_noise_image, resize_image

    settings = plan.settings
    means = np.reshape(np.asarray(settings.means, dtype=np.float32), (1, 1, 1, 3))
    sizes = scale_sizes(plan.width, plan.height, len(plan.iterations))
    iterations = list(plan.iterations)
    dropped = len(iterations) - len(sizes)  # scales too small to paint: their
    iterations = [sum(iterations[: dropped + 1])] + iterations[dropped + 1 :]  # steps go first
    first_scale = 0
    if resume is not None:
        check_position(resume, sizes, iterations)
        first_scale = resume.scale
    room = memory.available_mb()[0] if room_mb is None else room_mb
    costs = tiles.TiledCosts(weights, settings)
    plans = plan_scales(
        plan.width,
        plan.height,
        iterations,
        room,
        costs.halo,
        cell=plan.cell,
        styles=len(styles),
        precision=settings.precision,
    )
    record = [dict(p.describe(), iterations_done=0, seconds=0.0) for p in plans]
    if resume is not None:
        for k in range(first_scale):
            record[k]["iterations_done"] = iterations[k]
        record[first_scale]["iterations_done"] = resume.step

    def announce():
        if on_scale is not None:
            on_scale([dict(r) for r in record])

    announce()
    image, stopped = None, None
    index, i, adam = first_scale, 0, tiles.Adam(settings.learning_rate)
    done = 0 if resume is None else resume.done
    try:
        for index in range(first_scale, len(sizes)):
            (width, height), count = sizes[index], iterations[index]

            def network(pixels):
                return pixels[None].astype(np.float32) - means

            content_k = network(resize_image(content, width, height))
            adam.close()
            adam, first = tiles.Adam(settings.learning_rate), 0
            if resume is not None and index == resume.scale:
                image, first = resume.image, resume.step
                adam.m, adam.v, adam.t = resume.adam_m, resume.adam_v, resume.adam_t
            elif image is not None:
                image = resize_network(image, width, height)
            elif start is not None:
                image = network(resize_image(start, width, height))
            else:
                image = generate_noise_image(content_k, plan.noise_ratio, seed=settings.seed)
            i = first
            if first >= count:
                continue
            began, costs.cell = time.monotonic(), plans[index].cell
            stage = f"scale {index + 1}/{len(sizes)}, {width}x{height}"

            def on_tile(k, n, stage=stage):
                if on_stage is not None:
                    pass_ = 1 + (k - 1) * 2 // n
                    tile = (k - 1) % (n // 2) + 1
                    on_stage(f"{stage}, tile {tile}/{n // 2} of pass {pass_}/2", k / n)

            tiled = f" in {plans[index].tiles} tiles" if plans[index].tiles > 1 else ""
            if on_stage is not None:
                on_stage(f"{stage}{tiled}: the targets", 0.0)
            a_C = costs.content_target(content_k)
            targets = []
            for style, weight in zip(styles, plan.blend(len(styles))):
                sw, sh = style_size(width, height, settings.style_scale)
                grams = costs.style_grams(network(resize_image(style, sw, sh)))
                # A Gram matrix sums over positions: scale it to the painting's count of them.
                grams = {
                    k: v * np.float32(_positions(k, height, width) / _positions(k, sh, sw))
                    for k, v in grams.items()
                }
                targets.append((weight, grams))
            if on_stage is not None:  # the steps (a tiled step names its tiles as it goes)
                on_stage(f"{stage}{tiled}", 0.0)
            for i in range(first, count):
                if should_stop is not None and should_stop():
                    stopped = "interrupted"
                    break
                values, gradient = costs.costs_and_gradient(image, a_C, targets, on_tile)
                if not (np.isfinite(values).all() and np.isfinite(gradient).all()):
                    stopped = "non-finite"
                    break
                if on_step is not None:
                    on_step(index, (width, height), i, values, image)
                stepped = adam.step(image, gradient)
                done += 1
                if not np.isfinite(stepped).all():  # keep the last finite image
                    stopped = "non-finite"
                    break
                image = stepped
                if after_step is not None:
                    after_step(Position(iterations, index, i + 1, image, adam.m, adam.v, adam.t))
            else:
                i = count
            record[index]["iterations_done"] = i
            record[index]["seconds"] = round(time.monotonic() - began, 1)
            record[index]["peak_mb"] = memory.peak_rss_mb()  # the process's, so far
            announce()
            del a_C, targets
            if stopped:
                break
    finally:
        costs.close()
        adam.close()
    position = Position(iterations, index, i, image, adam.m, adam.v, adam.t)
    return BigPrintResult(image, done, stopped, position, record)


def check_position(
    position: Position, sizes: list, iterations: Optional[list] = None, done: Optional[int] = None
) -> None:
    """A ConfigError unless `position` can continue a painting of these scale sizes (coarse to
    fine, as `scale_sizes` gives them), with these iterations per scale and `done` steps in all
    when given: its scale and step in range, its image that scale's (1, h, w, 3) float32, and
    Adam's state the one its step leaves (t steps taken, slots of the image's shape)."""
    counts, image = list(position.iterations), position.image
    scale, step = position.scale, position.step
    slots = (position.adam_m, position.adam_v)

    def float32_like(array, shape):
        return isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == shape

    fits = (
        len(counts) == len(sizes)
        and all(n >= 0 for n in counts)
        and (iterations is None or counts == list(iterations))
        and 0 <= scale < len(sizes)
        and 0 <= step <= counts[scale]
        and float32_like(image, (1, sizes[scale][1], sizes[scale][0], 3))
        and position.adam_t == step
        and all(s is None if step == 0 else float32_like(s, image.shape) for s in slots)
        and (done is None or position.done == done)
    )
    if not fits:
        raise ConfigError(
            "the saved state does not match this coarse-to-fine painting (its "
            "scales, sizes, iterations or optimiser state differ, or it is "
            "damaged); start the run again"
        )


def paints_big(settings) -> bool:
    """True when a run paints coarse to fine with nst_utils.scales: several scales, a style
    scale, or an Adam run whose whole image would not fit in the memory available.

    A NotEnoughMemoryError (one line) when the painting fits neither whole nor in the smallest
    tiles: nst_utils.stylize.prepare asks before any image of the painting's size is made.
    """
    fits_whole = True
    try:
        memory.check_fits(
            settings.image_width,
            settings.image_height,
            styles=len(settings.style_images),
            optimizer=settings.optimizer,
            precision=settings.precision,
        )
    except NotEnoughMemoryError:
        if settings.optimizer != "adam":
            raise
        fits_whole = False
    if not fits_whole:
        layers = [settings.content_layer] + [name for name, _ in settings.style_layers]
        pick_cell(
            settings.image_width,
            settings.image_height,
            memory.available_mb()[0],
            tiles.halo_for(layers),
            styles=len(settings.style_images),
            precision=settings.precision,
        )
    return not fits_whole or settings.scales > 1 or settings.style_scale != 1.0
