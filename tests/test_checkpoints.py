"""The optimiser's state on disk at any checkpoint resumes to the run that was never stopped.

A run killed at once (a second Ctrl-C quits without saving) leaves the state of its last
checkpoint; resuming it must give the same snapshots and image as the run left alone.
"""

import numpy as np
import pytest

from nst_utils.run_record import FINAL_IMAGE, STATE_FILE
from nst_utils.state import read_state
from nst_utils.stylize import prepare, stylize
from nst_utils.training import Hooks
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


@pytest.mark.slow
@pytest.mark.parametrize("save_every, kill_at", [(1, 2), (1, 3), (2, 2)])
def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_snapshots_and_image(
    save_every, kill_at, small_config, tmp_path
):
    settings, inputs = prepare(
        small_config.replace(seed=4, num_iterations=ITERATIONS, save_every=save_every, log_every=0)
    )
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


BIG_ITERATIONS = 6  # over two scales: 4 at 80x64, then 2 at 160x128


def _big_settings(small_config):
    settings, inputs = prepare(
        small_config.replace(
            seed=4,
            num_iterations=BIG_ITERATIONS,
            save_every=1,
            log_every=0,
            scales=2,
            image_width=160,
            image_height=128,
        )
    )
    return settings, inputs, load_weights(settings.vgg_model)


def _paint_big(settings, inputs, weights, folder, state=None, stop_after=None):
    steps = []
    hooks = Hooks(
        report=None,
        on_step=lambda *values: steps.append(values),
        should_stop=lambda: stop_after is not None and len(steps) >= stop_after,
    )
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


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [1, 3, 4, 5])  # 4: just as the fine scale begins
def test_a_stopped_coarse_to_fine_run_resumes_to_the_same_result(
    stop_after, small_config, tmp_path, big_whole
):
    settings, inputs, weights = _big_settings(small_config)
    folder = tmp_path / "stopped"
    stopped = _paint_big(settings, inputs, weights, folder, stop_after=stop_after)
    assert stopped.stopped == "interrupted" and stopped.iterations == stop_after
    state = read_state(folder / STATE_FILE)
    assert state["iterations"] == stop_after and len(state["history"]) == stop_after
    assert state["big"].scale == (0 if stop_after < 4 else 1)
    _same_as_whole(_paint_big(settings, inputs, weights, folder, state=state), folder, big_whole)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [2, 4])  # 4: the state after the coarse scale's last step
def test_a_coarse_to_fine_run_killed_after_a_state_resumes_to_the_same_result(
    kill_at, small_config, tmp_path, big_whole, monkeypatch
):
    from nst_utils import state as state_module

    settings, inputs, weights = _big_settings(small_config)
    writes, write = [], state_module.save_big_state

    def save_then_die(*args):
        written = write(*args)
        writes.append(written)
        if len(writes) == kill_at:
            raise Killed
        return written

    monkeypatch.setattr(state_module, "save_big_state", save_then_die)
    folder = tmp_path / "killed"
    with pytest.raises(Killed):
        _paint_big(settings, inputs, weights, folder)
    monkeypatch.setattr(state_module, "save_big_state", write)
    state = read_state(folder / STATE_FILE)
    assert state["iterations"] == kill_at and state["big"].step == kill_at
    _same_as_whole(_paint_big(settings, inputs, weights, folder, state=state), folder, big_whole)


def test_a_run_painted_whole_that_no_longer_fits_whole_is_not_resumed(small_config, monkeypatch):
    from nst_utils import memory
    from nst_utils.errors import ConfigError, NotEnoughMemoryError
    from nst_utils.state import check_state

    settings = small_config.replace(image_width=400, image_height=300, seed=1)
    image = np.zeros((1, 300, 400, 3), np.float32)
    adam = {
        "input:0": image,
        "input/Adam:0": image,
        "input/Adam_1:0": image,
        "beta1_power:0": np.float32(0.9),
        "beta2_power:0": np.float32(0.999),
    }
    whole_state = {
        "iterations": 1,
        "history": [[1.0, 1.0, 1.0]],
        "snapshots": [],
        "variables": adam,
        "image": image,
    }
    check_state(settings, whole_state)
    with pytest.raises(ConfigError, match=r"shape \(1, 300, 400, 3\), not this 401x300 run's"):
        check_state(settings.replace(image_width=401), whole_state)
    # Room for tiles of 400x300, not for the whole image.
    room = (
        memory.estimate_peak(400, 300).total_mb
        + memory.estimate_peak(400, 300, tile=(128, 128)).total_mb
    ) / 2
    monkeypatch.setenv("NST_MEMORY_LIMIT_MB", str(room))
    with pytest.raises(NotEnoughMemoryError, match="painted whole.*free some memory"):
        check_state(settings, whole_state)


@pytest.mark.slow
def test_a_coarse_to_fine_run_also_saves_its_state_on_a_clock(small_config, tmp_path, monkeypatch):
    from nst_utils import state as state_module

    settings, inputs, weights = _big_settings(small_config)
    settings = settings.replace(save_every=0)  # no snapshots: only the clock saves
    positions, write = [], state_module.save_big_state
    monkeypatch.setattr(
        state_module,
        "save_big_state",
        lambda path, position, *rest: (
            positions.append(position.done) or write(path, position, *rest)
        ),
    )
    monkeypatch.setattr(state_module, "BIG_STATE_EVERY_SECONDS", 0.0)
    _paint_big(settings, inputs, weights, tmp_path / "clock")
    assert positions == [1, 2, 3, 4, 5, 6, 6]  # after every step, then at the end
    monkeypatch.setattr(state_module, "BIG_STATE_EVERY_SECONDS", 3600.0)
    positions.clear()
    _paint_big(settings, inputs, weights, tmp_path / "hour")
    assert positions == [6]


@pytest.mark.slow
@pytest.mark.parametrize("preserve_colors", [False, True])
def test_a_coarse_to_fine_run_stopped_in_its_coarse_scale_keeps_an_image_of_the_painting_size(
    preserve_colors, small_config, tmp_path
):
    import imageio.v3 as iio

    settings, inputs, weights = _big_settings(small_config)
    settings = settings.replace(preserve_colors=preserve_colors)
    folder = tmp_path / "stopped"
    stopped = _paint_big(settings, inputs, weights, folder, stop_after=2)
    assert stopped.stopped == "interrupted" and stopped.image.shape == (1, 128, 160, 3)
    assert iio.imread(folder / FINAL_IMAGE).shape == (128, 160, 3)
    position = read_state(folder / STATE_FILE)["big"]  # the state keeps the scale's own size
    assert (position.scale, position.step, position.image.shape) == (0, 2, (1, 64, 80, 3))


@pytest.fixture(scope="module")
def big_stopped(vgg_mat, tmp_path_factory):
    """A coarse-to-fine run's folder, stopped after 2 of its 4 coarse steps, and its settings."""
    from nst_utils.settings import DEFAULTS

    folder = tmp_path_factory.mktemp("big") / "stopped"
    config = DEFAULTS.replace(vgg_model=vgg_mat, output_dir=folder.parent / "output")
    settings, inputs, weights = _big_settings(config)
    _paint_big(settings, inputs, weights, folder, stop_after=2)
    with np.load(folder / STATE_FILE) as data:
        return settings, {k: data[k] for k in data.files}


def _damaged(arrays, **changes):
    arrays = dict(arrays, **changes)
    return {k: v for k, v in arrays.items() if v is not None}


def _whole_state(arrays):
    """The same folder's state as a run painted whole would have written it."""
    image = np.zeros((1, 128, 160, 3), np.float32)
    return {
        "iterations": arrays["iterations"],
        "history": arrays["history"],
        "snapshots": arrays["snapshots"],
        "var:input:0": image,
        "var:input/Adam:0": image,
    }


DAMAGES = {
    "a step past its scale's iterations": lambda a: _damaged(a, scale_step=np.int64(40)),
    "a negative step": lambda a: _damaged(a, scale_step=np.int64(-1)),
    "a scale out of range": lambda a: _damaged(a, scale=np.int64(2)),
    "an image of another size": lambda a: _damaged(a, image=np.zeros((1, 10, 10, 3), np.float32)),
    "Adam's slots of another size": lambda a: _damaged(
        a, adam_m=np.zeros((1, 2, 2, 3), np.float32)
    ),
    "Adam's slots missing": lambda a: _damaged(a, adam_v=np.zeros((0,), np.float32)),
    "Adam's step count not the scale's": lambda a: _damaged(a, adam_t=np.int64(7)),
    "no iterations per scale": lambda a: _damaged(a, scale_iterations=np.zeros((0,), np.int64)),
    "iterations per scale of another plan": lambda a: _damaged(a, scale_iterations=np.array([6])),
    "negative iterations per scale": lambda a: _damaged(a, scale_iterations=np.array([-2, 8])),
    "a scale that is not a number": lambda a: _damaged(a, scale=np.array([0, 1])),
    "a history of another length": lambda a: _damaged(a, history=a["history"][:1]),
    "a count of iterations not its history's": lambda a: _damaged(a, iterations=np.int64(1)),
    "a snapshot outside the folder": lambda a: _damaged(a, snapshots=np.array(["../x/0.png"])),
    "an image that is not float": lambda a: _damaged(a, image=a["image"].astype(np.int64)),
    "a state of a run painted whole": _whole_state,
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_or_foreign_coarse_to_fine_state_is_refused_in_one_line(
    damage, big_stopped, tmp_path
):
    from nst_utils.errors import NSTError
    from nst_utils.state import check_state

    settings, arrays = big_stopped
    np.savez(tmp_path / STATE_FILE, **DAMAGES[damage](arrays))
    with pytest.raises(NSTError) as refused:
        check_state(settings, read_state(tmp_path / STATE_FILE))
    assert "\n" not in str(refused.value) and "start the run again" in str(refused.value)


@pytest.mark.slow
@pytest.mark.parametrize("cut", [0, 1, 100, "half"])
def test_a_truncated_state_is_refused_in_one_line(cut, big_stopped, tmp_path):
    from nst_utils.errors import NSTError

    settings, arrays = big_stopped
    np.savez(tmp_path / "whole.npz", **arrays)
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / STATE_FILE).write_bytes(data[: len(data) // 2 if cut == "half" else cut])
    with pytest.raises(NSTError, match="cannot be resumed"):
        read_state(tmp_path / STATE_FILE)


@pytest.mark.slow
def test_a_refused_resume_keeps_the_runs_record(vgg_mat, tmp_path, capsys):

    from nst_utils.cli import main

    out = tmp_path / "big"
    assert (
        main(
            [
                "generate",
                "--weights",
                str(vgg_mat),
                "--no-progress",
                "--output",
                str(out),
                "--seed",
                "2",
                "--width",
                "160",
                "--height",
                "128",
                "--scales",
                "2",
                "--iterations",
                "3",
                "--save-every",
                "1",
            ]
        )
        == 0
    )
    record = (out / "run.json").read_bytes()
    with np.load(out / STATE_FILE) as data:
        np.savez(
            out / STATE_FILE, **_damaged({k: data[k] for k in data.files}, scale_step=np.int64(40))
        )
    capsys.readouterr()
    assert main(["generate", "--resume", str(out), "--iterations", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: the saved state"), err
    assert (out / "run.json").read_bytes() == record


@pytest.mark.slow
def test_a_painter_whose_resume_failed_part_way_paints_its_next_run_from_scratch(small_config):
    """A restore that loaded some of Adam's variables before failing leaves no trace: the
    painter's next run initialises them again instead of starting from the half-loaded state."""
    from nst_utils.stylize import Painter, network_inputs

    settings, inputs = prepare(
        small_config.replace(seed=4, num_iterations=3, save_every=0, log_every=0)
    )
    weights = load_weights(settings.vgg_model)
    content, styles, start = network_inputs(settings, inputs)
    hooks = Hooks(report=None)
    with Painter(settings, weights, content, styles) as painter:
        fresh = painter.run(start, False, hooks)
        saved = painter.variable_values()
    # beta1_power and beta2_power load before the second slot, whose shape is wrong.
    damaged = {name: value * 1.5 + 0.25 for name, value in saved.items()}
    damaged["input/Adam_1:0"] = np.zeros((1, 2, 2, 3), np.float32)
    state = {
        "image": saved["input:0"],
        "variables": damaged,
        "iterations": 3,
        "history": fresh.history,
        "snapshots": [],
    }
    with Painter(settings, weights, content, styles) as painter:
        with pytest.raises(ValueError):
            painter.run(start, False, hooks, state=state)
        again = painter.run(start, False, hooks)
    assert again.history == fresh.history
    np.testing.assert_array_equal(again.image, fresh.image)


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage", ["a slot of another shape", "no beta1_power", "a step count that is not a number"]
)
def test_a_damaged_state_of_a_run_painted_whole_is_refused_in_one_line(
    damage, vgg_mat, tmp_path, capsys
):
    from nst_utils.cli import main

    out = tmp_path / "whole"
    assert (
        main(
            [
                "generate",
                "--weights",
                str(vgg_mat),
                "--no-progress",
                "--output",
                str(out),
                "--seed",
                "2",
                "--width",
                "64",
                "--height",
                "48",
                "--iterations",
                "2",
                "--save-every",
                "1",
            ]
        )
        == 0
    )
    record = (out / "run.json").read_bytes()
    with np.load(out / STATE_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    assert arrays["var:input/Adam_1:0"].shape == (1, 48, 64, 3)
    if damage == "a slot of another shape":
        arrays["var:input/Adam_1:0"] = np.zeros((1, 2, 2, 3), np.float32)
    elif damage == "no beta1_power":
        del arrays["var:beta1_power:0"]
    else:
        arrays["var:beta2_power:0"] = np.array(["x"])
    np.savez(out / STATE_FILE, **arrays)
    capsys.readouterr()
    assert main(["generate", "--resume", str(out), "--iterations", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: the saved state"), err
    assert (out / "run.json").read_bytes() == record


@pytest.mark.slow
@pytest.mark.parametrize(
    "scales, key", [("1", "var:input:0"), ("1", "var:beta1_power:0"), ("2", "image")]
)
def test_a_state_with_nan_is_refused_and_the_last_image_kept(
    scales, key, vgg_mat, tmp_path, capsys
):
    from nst_utils.cli import main

    out = tmp_path / "run"
    assert (
        main(
            [
                "generate",
                "--weights",
                str(vgg_mat),
                "--no-progress",
                "--output",
                str(out),
                "--seed",
                "2",
                "--width",
                "64",
                "--height",
                "48",
                "--scales",
                scales,
                "--iterations",
                "3",
                "--save-every",
                "1",
            ]
        )
        == 0
    )
    final = (out / "generated_image.jpg").read_bytes()
    with np.load(out / STATE_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = np.full_like(arrays[key], np.nan)
    np.savez(out / STATE_FILE, **arrays)
    capsys.readouterr()
    # It resumed, painted NaN over generated_image.jpg and called it "the last good image".
    assert main(["generate", "--resume", str(out), "--iterations", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN or infinite values" in err, err
    assert (out / "generated_image.jpg").read_bytes() == final
