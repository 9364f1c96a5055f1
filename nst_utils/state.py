"""A run's saved state, state.npz in its folder: written after each snapshot and at the end,
read and checked before a stopped run continues from it bit for bit.

A run painted whole keeps its TensorFlow variables (the image, Adam's slots and step count,
`save_state`); a coarse-to-fine run keeps its scale, step, image and Adam's state
(`save_big_state`). Both keep the run's iterations, cost history and snapshots.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from . import scales
from .errors import ConfigError, NotEnoughMemoryError, NSTError
from .files import replace_atomically
from .run_record import is_snapshot
from .settings import Settings
from .training import RunResult

#: A coarse-to-fine painting also saves its state after any step that ends this long after the
#: last save, so that quitting at once in its slow fine scales loses little work.
BIG_STATE_EVERY_SECONDS = 60.0


def save_state(path, variables: dict, result: RunResult, output_dir) -> Path:
    """Write the optimiser's state after `result.iterations` iterations to `path`, atomically:
    `variables` ({name: value}, Painter.variable_values) and the result's history and snapshots."""
    arrays = {f"var:{name}": value for name, value in variables.items()}
    return _write_state(path, result.iterations, result.history, result.saved, output_dir, arrays)


def save_big_state(path, position, history, saved, output_dir) -> Path:
    """Write a coarse-to-fine painting's state at `position` (a nst_utils.scales.Position) to
    `path`, atomically: its scale, step, image and Adam's state, with the run's history."""
    none = np.zeros((0,), np.float32)
    arrays = {
        "scale_iterations": np.asarray(position.iterations, dtype=np.int64),
        "scale": np.int64(position.scale),
        "scale_step": np.int64(position.step),
        "image": position.image,
        "adam_t": np.int64(position.adam_t),
        "adam_m": none if position.adam_m is None else position.adam_m,
        "adam_v": none if position.adam_v is None else position.adam_v,
    }
    return _write_state(path, position.done, history, saved, output_dir, arrays)


def _write_state(path, iterations, history, saved, output_dir, arrays) -> Path:
    history = np.asarray(history, dtype=np.float64).reshape(-1, 3)
    snapshots = [
        str(Path(p).relative_to(output_dir))
        for p in saved
        if Path(p).is_relative_to(output_dir) and is_snapshot(p)
    ]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        iterations=np.int64(iterations),
        history=history,
        snapshots=np.asarray(snapshots, dtype=str),
        **arrays,
    )
    data = buffer.getvalue()
    return replace_atomically(path, lambda tmp: tmp.write_bytes(data))


def read_state(path, arrays: bool = True) -> dict:
    """The state `save_state` wrote: iterations, history, snapshots, variables and image;
    arrays=False reads the first three alone (quick, whatever the image's size)."""
    if not Path(path).exists():
        raise NSTError(
            f"{Path(path).parent} holds no saved state ({Path(path).name}): the run "
            f"stopped before its first snapshot, or it is not a run folder; start the "
            f"run again instead of resuming it"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            history = data["history"]
            if history.ndim != 2 or history.shape[1] != 3:
                raise ValueError(f"a history of shape {history.shape}, not (iterations, 3)")
            state = {
                "iterations": int(data["iterations"]),
                "history": history.tolist(),
                "snapshots": [str(s) for s in data["snapshots"]],
            }
            if not arrays:
                return state
            state["variables"] = {k[4:]: data[k] for k in data.files if k.startswith("var:")}
            if "scale" in data.files:
                state["big"] = _big_position(data)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise NSTError(
            f"cannot read the saved state {path} ({type(exc).__name__}: {exc}); the "
            f"run cannot be resumed from it; start the run again"
        ) from None
    state["image"] = state["big"].image if "big" in state else state["variables"].get("input:0")
    if state["image"] is None:
        raise NSTError(
            f"the saved state {path} holds no image; the run cannot be resumed from it; "
            f"start the run again"
        )
    return state


def check_state(settings: Settings, state: dict) -> None:
    """A one-line NSTError unless `state` (from `read_state`) can continue the run `settings`
    describe: its history as long as its iterations, its snapshots files of the run's folder,
    and an image and optimiser state of this run's kind and size. A run painted whole that no
    longer fits whole in the memory available is a NotEnoughMemoryError."""
    done, width, height = state["iterations"], settings.image_width, settings.image_height
    if done != len(state["history"]) or any(
        Path(name).name != name or not is_snapshot(name) for name in state["snapshots"]
    ):
        raise ConfigError(
            f"the saved state's record of its {done} iteration(s) is damaged "
            f"(its history or snapshots do not match); start the run again"
        )
    # NaN or infinities (a damaged file) would paint garbage over the last good image.
    arrays = (
        [state["big"].image, state["big"].adam_m, state["big"].adam_v]
        if "big" in state
        else list(state["variables"].values())
    )
    for array in arrays:
        if (
            array is not None
            and np.asarray(array).dtype.kind == "f"
            and not np.isfinite(array).all()
        ):
            raise ConfigError(
                "the saved state holds NaN or infinite values (it is damaged); the "
                "run cannot be resumed from it; start the run again"
            )
    if "big" in state:
        sizes = scales.scale_sizes(width, height, settings.scales)
        scales.check_position(state["big"], sizes, done=done)
        return
    if settings.scales > 1 or settings.style_scale != 1.0:
        raise ConfigError(
            "the saved state was written by a run painted whole, not by this "
            "coarse-to-fine run; start the run again"
        )
    if np.shape(state["image"]) != (1, height, width, 3):
        raise ConfigError(
            f"the saved state holds an image of shape {np.shape(state['image'])}, "
            f"not this {width}x{height} run's; start the run again"
        )
    # Each variable Painter.restore loads, checked here before run.json is rewritten: a bad
    # one failed in restore with a traceback, or emptied the run's record.
    for name, shape in _whole_state_shapes(settings).items():
        value = state["variables"].get(name)
        if value is None or np.shape(value) != shape or value.dtype.kind != "f":
            found = (
                "no value"
                if value is None
                else f"an array of shape {np.shape(value)} and type {value.dtype}"
            )
            raise ConfigError(
                f"the saved state holds {found} for {name}, not the float array of "
                f"shape {shape} this run keeps there; start the run again"
            )
    if scales.paints_big(settings):
        raise NotEnoughMemoryError(
            f"this run was painted whole, and a {width}x{height} painting no longer fits whole "
            f"in the memory available; free some memory and resume it again"
        )


def _whole_state_shapes(settings: Settings) -> dict:
    """{variable name: shape} of what a run painted whole saves: the image (1, H, W, 3), and
    with Adam its two slots (the image's shape) and its two scalar beta powers."""
    image = (1, settings.image_height, settings.image_width, 3)
    shapes = {"input:0": image}
    if settings.optimizer == "adam":
        shapes.update(
            {
                "beta1_power:0": (),
                "beta2_power:0": (),
                "input/Adam:0": image,
                "input/Adam_1:0": image,
            }
        )
    return shapes


def _big_position(data):
    """The nst_utils.scales.Position a coarse-to-fine state holds."""
    t = int(data["adam_t"])
    return scales.Position(
        iterations=[int(n) for n in data["scale_iterations"]],
        scale=int(data["scale"]),
        step=int(data["scale_step"]),
        image=data["image"],
        adam_m=data["adam_m"] if t else None,
        adam_v=data["adam_v"] if t else None,
        adam_t=t,
    )
