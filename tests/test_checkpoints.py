"""The optimiser's state on disk at any checkpoint resumes to the run that was never stopped.

A run killed at once (a second Ctrl-C quits without saving) leaves the state of its last
checkpoint; resuming it must give the same snapshots and image as the run left alone.
"""

import numpy as np
import pytest

from nst_utils.stylize import STATE_FILE, prepare, read_state, stylize
from nst_utils.training import FINAL_IMAGE, Hooks
from nst_utils.weights import load_weights

ITERATIONS = 5


class Killed(Exception):
    """Stands for the process ending right after a checkpoint was written."""


def _paint(settings, inputs, weights, folder, state=None, kill_at=None):
    calls = []

    def checkpoint(result):  # runs after state.npz is written
        calls.append(result.iterations)
        if len(calls) == kill_at:
            raise Killed

    hooks = Hooks(report=None, checkpoint=checkpoint)
    try:
        return stylize(settings, weights, inputs, folder, hooks, state=state).result
    except Killed:
        return None


@pytest.mark.parametrize("save_every, kill_at", [(1, 2), (1, 3), (2, 2)])
def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_snapshots_and_image(
        save_every, kill_at, small_config, tmp_path):
    settings, inputs = prepare(small_config.replace(seed=4, num_iterations=ITERATIONS,
                                                    save_every=save_every, log_every=0))
    weights = load_weights(settings.vgg_model)
    whole = _paint(settings, inputs, weights, tmp_path / "whole")
    killed = tmp_path / "killed"
    assert _paint(settings, inputs, weights, killed, kill_at=kill_at) is None
    state = read_state(killed / STATE_FILE)
    resumed = _paint(settings, inputs, weights, killed, state=state)
    names = [p.name for p in whole.saved]
    assert names == [f"{i}.png" for i in range(0, ITERATIONS, save_every)] + [FINAL_IMAGE]
    assert [p.name for p in resumed.saved] == names
    for name in names:
        assert (killed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert resumed.history == whole.history


BIG_ITERATIONS = 6          # over two scales: 4 at 80x64, then 2 at 160x128


def _big_settings(small_config):
    settings, inputs = prepare(small_config.replace(
        seed=4, num_iterations=BIG_ITERATIONS, save_every=1, log_every=0, scales=2,
        image_width=160, image_height=128))
    return settings, inputs, load_weights(settings.vgg_model)


def _paint_big(settings, inputs, weights, folder, state=None, stop_after=None):
    steps = []
    hooks = Hooks(report=None, on_step=lambda *values: steps.append(values),
                  should_stop=lambda: stop_after is not None and len(steps) >= stop_after)
    return stylize(settings, weights, inputs, folder, hooks, state=state).result


@pytest.fixture(scope="module")
def big_whole(vgg_mat, tmp_path_factory):
    from nst_utils.settings import DEFAULTS

    folder = tmp_path_factory.mktemp("big") / "whole"
    config = DEFAULTS.replace(vgg_model=vgg_mat, output_dir=folder.parent / "output")
    settings, inputs, weights = _big_settings(config)
    return folder, _paint_big(settings, inputs, weights, folder)


def _same_as_whole(resumed, folder, big_whole):
    whole_folder, whole = big_whole
    names = [p.name for p in whole.saved]
    assert names == [f"{i}.png" for i in range(BIG_ITERATIONS)] + [FINAL_IMAGE]
    assert [p.name for p in resumed.saved] == names
    assert resumed.iterations == whole.iterations == BIG_ITERATIONS
    assert resumed.history == whole.history
    np.testing.assert_array_equal(resumed.image, whole.image)
    for name in names:
        assert (folder / name).read_bytes() == (whole_folder / name).read_bytes(), name


@pytest.mark.parametrize("stop_after", [1, 3, 4, 5])   # 4: just as the fine scale begins
def test_a_stopped_coarse_to_fine_run_resumes_to_the_same_result(stop_after, small_config,
                                                                 tmp_path, big_whole):
    settings, inputs, weights = _big_settings(small_config)
    folder = tmp_path / "stopped"
    stopped = _paint_big(settings, inputs, weights, folder, stop_after=stop_after)
    assert stopped.stopped == "interrupted" and stopped.iterations == stop_after
    state = read_state(folder / STATE_FILE)
    assert state["iterations"] == stop_after and len(state["history"]) == stop_after
    assert state["big"].scale == (0 if stop_after < 4 else 1)
    _same_as_whole(_paint_big(settings, inputs, weights, folder, state=state), folder, big_whole)


@pytest.mark.parametrize("kill_at", [2, 4])            # 4: the state after the coarse scale's last step
def test_a_coarse_to_fine_run_killed_after_a_state_resumes_to_the_same_result(
        kill_at, small_config, tmp_path, big_whole, monkeypatch):
    from nst_utils import stylize as stylize_module

    settings, inputs, weights = _big_settings(small_config)
    writes, write = [], stylize_module.save_big_state

    def save_then_die(*args):
        written = write(*args)
        writes.append(written)
        if len(writes) == kill_at:
            raise Killed
        return written
    monkeypatch.setattr(stylize_module, "save_big_state", save_then_die)
    folder = tmp_path / "killed"
    with pytest.raises(Killed):
        _paint_big(settings, inputs, weights, folder)
    monkeypatch.setattr(stylize_module, "save_big_state", write)
    state = read_state(folder / STATE_FILE)
    assert state["iterations"] == kill_at and state["big"].step == kill_at
    _same_as_whole(_paint_big(settings, inputs, weights, folder, state=state), folder, big_whole)


def test_a_run_painted_whole_is_not_resumed_coarse_to_fine(small_config, tmp_path):
    from nst_utils.errors import NotEnoughMemoryError

    settings, inputs, weights = _big_settings(small_config)
    whole_state = {"iterations": 1, "history": [[1.0, 1.0, 1.0]], "snapshots": [],
                   "variables": {}, "image": np.zeros((1, 128, 160, 3), np.float32)}
    with pytest.raises(NotEnoughMemoryError, match="painted whole.*free some memory"):
        stylize(settings, weights, inputs, tmp_path / "x", Hooks(report=None), state=whole_state)


def test_a_coarse_to_fine_run_also_saves_its_state_on_a_clock(small_config, tmp_path, monkeypatch):
    from nst_utils import stylize as stylize_module

    settings, inputs, weights = _big_settings(small_config)
    settings = settings.replace(save_every=0)           # no snapshots: only the clock saves
    positions, write = [], stylize_module.save_big_state
    monkeypatch.setattr(stylize_module, "save_big_state",
                        lambda path, position, *rest: positions.append(position.done)
                        or write(path, position, *rest))
    monkeypatch.setattr(stylize_module, "BIG_STATE_EVERY_SECONDS", 0.0)
    _paint_big(settings, inputs, weights, tmp_path / "clock")
    assert positions == [1, 2, 3, 4, 5, 6, 6]           # after every step, then at the end
    monkeypatch.setattr(stylize_module, "BIG_STATE_EVERY_SECONDS", 3600.0)
    positions.clear()
    _paint_big(settings, inputs, weights, tmp_path / "hour")
    assert positions == [6]


@pytest.mark.parametrize("preserve_colors", [False, True])
def test_a_coarse_to_fine_run_stopped_in_its_coarse_scale_keeps_an_image_of_the_painting_size(
        preserve_colors, small_config, tmp_path):
    import imageio.v3 as iio

    settings, inputs, weights = _big_settings(small_config)
    settings = settings.replace(preserve_colors=preserve_colors)
    folder = tmp_path / "stopped"
    stopped = _paint_big(settings, inputs, weights, folder, stop_after=2)
    assert stopped.stopped == "interrupted" and stopped.image.shape == (1, 128, 160, 3)
    assert iio.imread(folder / FINAL_IMAGE).shape == (128, 160, 3)
    position = read_state(folder / STATE_FILE)["big"]   # the state keeps the scale's own size
    assert (position.scale, position.step, position.image.shape) == (0, 2, (1, 64, 80, 3))
