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
