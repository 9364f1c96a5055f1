"""nst turns oneDNN on for TensorFlow (with frozen weights where oneDNN runs AVX2 at most) unless
the user says otherwise; the published values come out the same with it on, off, limited to
AVX2 (as on a CPU without AVX-512), with and without frozen weights, and frozen weights never
serve a stale filter."""

import json
import os

import pytest

from limits import json_child
from test_reference import check_published

CHILD = """
import json, os
from nst_utils import reference
from tensorflow.python.util import _pywrap_util_port as port
values = reference.reference_values()
print(json.dumps({"setting": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                  "onednn": bool(port.IsMklEnabled()), "values": values}))
"""


def run_child(setting, extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    env.update(extra or {})
    return json_child(["-c", CHILD], env)


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting, extra, on",
    [
        (None, None, True),  # nst's default, whatever TensorFlow's is on this CPU
        ("0", None, False),  # the user's own setting wins
        ("1", None, True),
        (None, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, True),  # oneDNN as on an AVX2-only CPU
        (None, {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "0"}, True),  # filters reordered every step
        (None, {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}, True),  # filters kept once reordered
    ],
)
def test_published_values_with_onednn_on_and_off(setting, extra, on):
    child = run_child(setting, extra)
    assert child["setting"] == ("1" if setting is None else setting)
    assert child["onednn"] is on
    check_published(child["values"])


# TF_ONEDNN_ASSUME_FROZEN_WEIGHTS (nst's setting where oneDNN runs AVX2 at most,
# nst_utils.hardware) makes each convolution keep its filter in oneDNN's layout once it has
# run. nst fills VGG's weights once per session; these check that nothing stale is ever served:
# another network with other weights in the same process, beside the first and after it, a
# weights file rewritten between two runs in one process, and a run resumed in a new process,
# each give exactly a fresh process's values.

PAINT = """
import hashlib, json, shutil, sys
import numpy as np
from nst_utils.settings import DEFAULTS
from nst_utils.stylize import Painter
from nst_utils.weights import load_weights

job = json.loads(sys.argv[1])
rng = np.random.default_rng(7)
content, style, start = (
    rng.normal(0, 40, (1, 48, 64, 3)).astype(np.float32) for _ in range(3)
)
settings = DEFAULTS.replace(image_width=64, image_height=48)


def painter(path):
    return Painter(settings.replace(vgg_model=path), load_weights(path), content, [style])


def paint(p, steps, image=start, state=None):
    p.start(image)
    if state is not None:
        p.restore(state)
    costs = [[float(v) for v in p.step()[1:]] for _ in range(steps)]
    return {"costs": costs, "image": hashlib.sha256(p.image().tobytes()).hexdigest()}


out = {}
if job["kind"] == "fresh":
    out["values"] = paint(painter(job["weights"]), 3)
elif job["kind"] == "same process":
    first = painter(job["first"])
    out["first"] = paint(first, 2)  # its kernels have cached the first network's filters
    second = painter(job["second"])
    out["beside"] = paint(second, 3)
    out["first again"] = paint(first, 2)  # still its own filters, not the second's
    first.close(), second.close()
    # The file the first network came from, rewritten with the second's weights.
    shutil.copyfile(job["second"], job["first"])
    out["rewritten"] = paint(painter(job["first"]), 3)
elif job["kind"] == "stop":  # 2 steps, the state saved, then 2 more steps without a stop
    p = painter(job["weights"])
    paint(p, 2)
    np.savez(job["state"], **p.variable_values())
    costs = [[float(v) for v in p.step()[1:]] for _ in range(2)]
    out["whole"] = {"costs": costs, "image": hashlib.sha256(p.image().tobytes()).hexdigest()}
elif job["kind"] == "assign":  # the second file's weights assigned inside the first's session
    from nst_utils.vgg import WEIGHTS_COLLECTION

    p = painter(job["first"])
    paint(p, 1)
    other = load_weights(job["second"])
    with p.graph.as_default():
        for variable in p.graph.get_collection(WEIGHTS_COLLECTION):
            layer, kind = variable.op.name.split("/")
            variable.load(other.conv[layer][0 if kind == "weights" else 1], p.sess)
    p.costs.targets.fill(p.sess, content, [style])  # the content and style targets again
    out["assigned"] = paint(p, 3)
else:  # resume
    saved = dict(np.load(job["state"]))
    state = {"variables": saved}
    image = saved["input:0"]
    out["resumed"] = paint(painter(job["weights"]), 2, image=image, state=state)
print(json.dumps(out))
"""

#: Frozen weights on this CPU and as on an AVX2-only CPU.
FROZEN = {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}
ADOPTED = {"native": FROZEN, "AVX2": {**FROZEN, "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def paint_child(job, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_ONEDNN", "TF_ENABLE"))}
    env.update(extra)
    return json_child(["-c", PAINT, json.dumps(job)], env)


@pytest.fixture(scope="module")
def two_weights(tmp_path_factory):
    from nst_utils.weights.synthetic import write_vgg19_mat

    folder = tmp_path_factory.mktemp("frozen")
    return [write_vgg19_mat(folder / f"vgg19-{seed}.mat", "new", seed=seed) for seed in (5, 6)]


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(ADOPTED))
def test_other_weights_in_the_same_process_give_a_fresh_processs_values(
    config, two_weights, tmp_path
):
    first, second = (tmp_path / "a.mat", two_weights[1])
    first.write_bytes(two_weights[0].read_bytes())
    extra = ADOPTED[config]
    fresh_first = paint_child({"kind": "fresh", "weights": str(two_weights[0])}, extra)["values"]
    fresh = paint_child({"kind": "fresh", "weights": str(second)}, extra)["values"]
    assert fresh != fresh_first  # the two networks paint differently: a stale filter would show
    same = paint_child({"kind": "same process", "first": str(first), "second": str(second)}, extra)
    assert same["first"]["costs"] == fresh_first["costs"][:2]
    assert same["beside"] == fresh
    assert same["first again"] == same["first"]  # restarted from the same start
    assert same["rewritten"] == fresh


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(ADOPTED))
def test_a_run_resumed_in_a_new_process_is_bit_exact(config, two_weights, tmp_path):
    weights, state = str(two_weights[0]), str(tmp_path / "state.npz")
    extra = ADOPTED[config]
    whole = paint_child({"kind": "stop", "weights": weights, "state": state}, extra)["whole"]
    resumed = paint_child({"kind": "resume", "weights": weights, "state": state}, extra)
    assert resumed["resumed"] == whole


@pytest.mark.slow
@pytest.mark.parametrize("frozen", ["0", "1"])
def test_weights_assigned_inside_a_session_show_the_frozen_setting_is_in_force(frozen, two_weights):
    # nst never does this (its weights are filled once per session); it shows that the
    # children above run with oneDNN keeping its filters, so their checks can fail.
    extra = {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": frozen}
    first, second = (str(path) for path in two_weights)
    fresh = paint_child({"kind": "fresh", "weights": second}, extra)["values"]
    assigned = paint_child({"kind": "assign", "first": first, "second": second}, extra)
    if frozen == "0":
        assert assigned["assigned"] == fresh
    elif assigned["assigned"] == fresh:
        pytest.skip("oneDNN runs these convolutions on TensorFlow's filter layout here: no copy")
    else:
        assert assigned["assigned"]["costs"] != fresh["costs"]  # the kept filters were used
